"""People's signed statements for API tests: a key registered through the API, and
statements signed with it and submitted with the person's bearer token.

    signer = Signer.register(client, world.people["vendor-officer"])
    r = signer.submit(signer.sign(signer.vendor(world, flow_id=3)))
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deletion_audit.core import dsse, keys
from deletion_audit.core.b64 import b64encode
from deletion_audit.core.predicates import (
    CustodyStatementPredicate,
    DeidentifyPredicate,
    PredicateModel,
    VendorPredicate,
)
from deletion_audit.core.statements import Statement, Subject, statement_bytes, statement_id
from deletion_audit.models import PartyRole
from tests.support.agents import Signed
from tests.support.world import Person, World

DATASET_DIGEST = "a" * 64


def statement_payload(predicate_type: str, predicate: dict[str, Any],
                      subject: str = "case") -> bytes:
    return statement_bytes(Statement(
        subject=(Subject(name=subject, digest={"sha256": hashlib.sha256(
            subject.encode()).hexdigest()}),),
        predicate_type=predicate_type, predicate=predicate))


def sign_payload(payload: bytes, key: Ed25519PrivateKey) -> Signed:
    envelope = dsse.sign(payload, dsse.IN_TOTO_PAYLOAD_TYPE, key)
    return Signed(envelope=envelope.to_json(), statement_id=statement_id(payload), seq=-1)


@dataclass
class Signer:
    """A person with a registered key of their own."""

    client: httpx.Client
    person: Person
    key: Ed25519PrivateKey

    @classmethod
    def register(cls, client: httpx.Client, person: Person,
                 key: Ed25519PrivateKey | None = None) -> Signer:
        key = key or keys.generate()
        r = client.post("/api/v1/users/me/keys", headers=person.headers,
                        json={"public_key": b64encode(keys.raw_public(key))})
        assert r.status_code == 201, r.text
        return cls(client=client, person=person, key=key)

    @property
    def key_id(self) -> str:
        return keys.key_id(self.key)

    def sign(self, predicate: PredicateModel, *, key: Ed25519PrivateKey | None = None) -> Signed:
        return sign_payload(statement_payload(predicate.PREDICATE_TYPE,
                                              predicate.to_predicate()), key or self.key)

    def submit(self, signed: Signed | bytes) -> httpx.Response:
        body = signed if isinstance(signed, bytes) else signed.envelope
        return self.client.post("/api/v1/attestations", content=body,
                                headers={**self.person.headers,
                                         "Content-Type": "application/json"})

    # -- predicates -----------------------------------------------------------------------

    @staticmethod
    def vendor(world: World, *, flow_id: int, stated_at: datetime, status: str = "deleted",
               party_id: int | None = None, case_id: int | None = None) -> VendorPredicate:
        return VendorPredicate(
            case_id=str(case_id or world.case_id),
            party_id=str(party_id or world.parties[PartyRole.VENDOR]),
            flow_id=str(flow_id), status=status, item_count=12, stated_at=stated_at)

    @staticmethod
    def custody(world: World, *, obligation_id: int, occurred_at: datetime,
                action: str = "destroyed", medium: str = "tape-7") -> CustodyStatementPredicate:
        return CustodyStatementPredicate(
            case_id=str(world.case_id), obligation_id=str(obligation_id),
            party_id=str(world.parties[PartyRole.CUSTODIAN]), medium_id=medium,
            action=action, item_count=830_000, occurred_at=occurred_at)

    @staticmethod
    def deidentify(world: World, *, checked_at: datetime, result: str = "pass",
                   dataset: str = "公示名单", rules: list[str] | None = None,
                   ) -> DeidentifyPredicate:
        return DeidentifyPredicate(
            case_id=str(world.case_id), dataset_name=dataset, dataset_digest=DATASET_DIGEST,
            records=87_000, rules=rules or ["mask-name", "mask-id-7-14"], result=result,
            checked_at=checked_at)


def data_flow(client: httpx.Client, world: World, **body: Any) -> int:
    """A data flow the company declares; by default one to the world's vendor party."""
    fields = {"kind": "vendor", "description": "人脸比对服务", "destination": "供应商云端",
              "vendor_party_id": world.parties[PartyRole.VENDOR], **body}
    r = client.post(f"{world.url}/data-flows", headers=world.company.headers, json=fields)
    assert r.status_code == 201, r.text
    flow_id: int = r.json()["id"]
    return flow_id


def obligation(client: httpx.Client, world: World, **body: Any) -> int:
    r = client.post(f"{world.url}/obligations", headers=world.prosecutor.headers, json=body)
    assert r.status_code == 201, r.text
    oid: int = r.json()["id"]
    return oid


def custody_obligation(client: httpx.Client, world: World, *,
                       custodian: int | None = None) -> int:
    """A sealed backup held by the world's custodian party until a date (CASES.md case 4)."""
    return obligation(client, world, kind="custody-until", title="备份封存，到期彻底删除",
                      details={"medium": "tape-7", "custodian_party_id":
                               custodian or world.parties[PartyRole.CUSTODIAN]},
                      deadline={"start_event": "疫苗有效期届满", "served_on": "2027-03-02",
                                "amount": 10, "unit": "days"})


def deidentify_obligation(client: httpx.Client, world: World) -> int:
    """A published list to be masked (CASES.md case 9)."""
    return obligation(client, world, kind="deidentify", title="公示名单去标识化",
                      details={"dataset": "公示名单", "rules": ["mask-name", "mask-id-7-14"]})
