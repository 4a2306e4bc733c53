"""Agents for API tests: enrollment through the API and a signing client.

    agent = enroll(client, world, scope_ids=[scope_id])
    agent.post("/api/v1/agents/heartbeat", json={"outbox": 0, "dead_letters": 0})
    agent.post("/api/v1/attestations", content=agent.scan(seq=0, scope=scope).envelope)

Requests are signed as PROTOCOL.md says (label ``da``; ``@method``, ``@target-uri`` and
``content-digest`` when there is a body; ``created``, ``nonce``, ``keyid``, ``alg``) with
the ``http-message-signatures`` library, the one the agent uses too. Keyword arguments
(``created``, ``nonce``, ``body_after_signing``) make the faulty requests the tests need.
"""

from __future__ import annotations

import hashlib
import json as jsonlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms

from deletion_audit.core import dsse, keys
from deletion_audit.core.b64 import b64encode
from deletion_audit.core.predicates import (
    DeletionPredicate,
    PredicateModel,
    ScanCounts,
    ScanPredicate,
)
from deletion_audit.core.statements import Statement, Subject, statement_bytes, statement_id
from deletion_audit.models import PartyRole
from tests.support.world import Person, World

BUILD_DIGEST = "b" * 64
HOST = {"hostname": "nvr-01", "os": "Linux 6.8", "machine": "x86_64",
        "machine_id": "4c4c4544-0044", "boot_id": None}


@dataclass(frozen=True)
class Signed:
    """A signed statement: the envelope bytes as sent, and its id."""

    envelope: bytes
    statement_id: str
    seq: int


@dataclass
class AgentClient:
    client: httpx.Client  # a TestClient, or an httpx.Client on a real server's base URL
    agent_id: str
    key: Ed25519PrivateKey
    case_id: int
    enrolled: dict[str, Any] = field(default_factory=dict)

    # -- signed requests ------------------------------------------------------------------

    def request(
        self, method: str, path: str, *, json: Any = None, content: bytes | None = None,
        created: datetime | None = None, nonce: str | None = None,
        key: Ed25519PrivateKey | None = None, key_id: str | None = None,
        body_after_signing: bytes | None = None,
    ) -> httpx.Response:
        body = jsonlib.dumps(json).encode() if json is not None else (content or b"")
        headers = {"Content-Type": "application/json"} if body else {}
        request = self.client.build_request(method, path, content=body, headers=headers)
        kid = key_id or self.agent_id
        signer = HTTPMessageSigner(
            signature_algorithm=algorithms.ED25519,
            key_resolver=MappingKeyResolver(public_keys={},
                                            private_keys={kid: key or self.key}))
        signer.sign(request, key_id=kid, label="da",
                    created=created or datetime.now(UTC),
                    nonce=nonce or secrets.token_urlsafe(16),
                    covered_component_ids=("@method", "@target-uri"),
                    body=body or None)
        if body_after_signing is not None:
            request = self.client.build_request(method, path, content=body_after_signing,
                                                headers=dict(request.headers))
        return self.client.send(request)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def submit(self, signed: Signed, **kwargs: Any) -> httpx.Response:
        return self.post("/api/v1/attestations", content=signed.envelope, **kwargs)

    # -- statements -----------------------------------------------------------------------

    def sign_statement(self, predicate: PredicateModel, *,
                       key: Ed25519PrivateKey | None = None) -> Signed:
        subject = Subject(name=f"agent:{self.agent_id}",
                          digest={"sha256": hashlib.sha256(self.agent_id.encode()).hexdigest()})
        payload = statement_bytes(Statement(subject=(subject,),
                                            predicate_type=predicate.PREDICATE_TYPE,
                                            predicate=predicate.to_predicate()))
        envelope = dsse.sign(payload, dsse.IN_TOTO_PAYLOAD_TYPE, key or self.key)
        seq = int(predicate.to_predicate()["seq"])
        return Signed(envelope=envelope.to_json(), statement_id=statement_id(payload), seq=seq)

    def scan(
        self, *, seq: int, prev: str | None, scope: dict[str, Any], scan_id: str = "scan-1",
        part: int = 1, last: bool = True, challenge: str | None = None,
        present: list[str] | None = None, finished_at: datetime, **overrides: Any,
    ) -> ScanPredicate:
        fields: dict[str, Any] = {
            "case_id": str(self.case_id), "agent_id": self.agent_id, "seq": seq,
            "prev": prev, "agent_build_digest": BUILD_DIGEST, "scope_id": str(scope["id"]),
            "scope_spec_digest": scope["spec_digest"], "scan_id": scan_id, "part": part,
            "last": last, "challenge": challenge, "present_digests": present or [],
            "started_at": finished_at, "finished_at": finished_at,
        }
        if last:
            fields |= {"coverage": "complete", "root": "c" * 64, "counts": ScanCounts(
                objects=3, hashed=3, hashed_bytes=3000, present=len(present or []))}
        return ScanPredicate(**(fields | overrides))

    def deletion(self, *, seq: int, prev: str | None, scope: dict[str, Any],
                 deleted_at: datetime, digests: list[str] | None = None) -> DeletionPredicate:
        return DeletionPredicate(
            case_id=str(self.case_id), agent_id=self.agent_id, seq=seq, prev=prev,
            agent_build_digest=BUILD_DIGEST, scope_id=str(scope["id"]), grade="logical",
            method="unlink", deleted_digests=digests or ["d" * 64], deleted_at=deleted_at)


def issue_token(client: httpx.Client, world: World, *, by: Person | None = None,
                scope_ids: list[int] | None = None, **body: Any) -> httpx.Response:
    person = by or world.prosecutor
    return client.post(f"{world.url}/enrollment-tokens", headers=person.headers,
                       json={"scope_ids": scope_ids or [], **body})


def enroll_request(token: str, key: Ed25519PrivateKey) -> dict[str, Any]:
    return {"token": token, "public_key": b64encode(keys.raw_public(key)), "host": HOST,
            "build_digest": BUILD_DIGEST, "agent_version": "0.1.0"}


def enroll(client: httpx.Client, world: World, *, scope_ids: list[int] | None = None,
           party_id: int | None = None) -> AgentClient:
    """A new agent enrolled through the API with a token the prosecutor issued."""
    party = party_id if party_id is not None else world.parties[PartyRole.RESPONDENT]
    r = issue_token(client, world, scope_ids=scope_ids, party_id=party)
    assert r.status_code == 201, r.text
    key = keys.generate()
    r = client.post("/api/v1/agents/enroll", json=enroll_request(r.json()["token"], key))
    assert r.status_code == 201, r.text
    body = r.json()
    return AgentClient(client=client, agent_id=body["agent_id"], key=key,
                       case_id=body["case_id"], enrolled=body)


def declare_scope(client: httpx.Client, world: World, name: str = "nas") -> dict[str, Any]:
    r = client.post(f"{world.url}/scopes", headers=world.company.headers, json={
        "name": name, "kind": "directory", "spec": {"root": f"/srv/{name}"},
        "location_codes": ["SH-QP/NAS1"]})
    assert r.status_code == 201, r.text
    scope: dict[str, Any] = r.json()
    return scope
