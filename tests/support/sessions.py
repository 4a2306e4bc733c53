"""On-site sessions for API tests: participants with registered keys, the examiner's agent
enrolled with a session token, scans answering the session's challenges, co-signatures.

    onsite = OnSite.start(case)                 # case: tests/verdicts/conftest.py's Case
    sid = onsite.open()
    examiner_agent = onsite.enroll_examiner_agent(sid)
    onsite.challenge(sid)
    onsite.scan(examiner_agent, present=case.digests[:3])
    onsite.record(sid)
    onsite.sign(sid, "prosecutor")
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deletion_audit.core import dsse, keys
from deletion_audit.core.b64 import b64decode, b64encode
from tests.support.agents import HOST, AgentClient, enroll_request
from tests.support.statements import Signer
from tests.verdicts.conftest import Case

# Who takes part (world.people names) and the hearing's usual rule.
PARTICIPANTS = ("prosecutor", "examiner", "officer", "witness", "regulator")
RULE = "prosecutor+2-witnesses"


@dataclass
class OnSite:
    case: Case
    signers: dict[str, Signer] = field(default_factory=dict)

    @classmethod
    def start(cls, case: Case, names: tuple[str, ...] = PARTICIPANTS) -> OnSite:
        onsite = cls(case=case)
        for name in names:
            onsite.signers[name] = Signer.register(case.client, case.world[name])
        return onsite

    @property
    def client(self) -> httpx.Client:
        return self.case.client

    def url(self, sid: int | None = None) -> str:
        base = f"{self.case.world.url}/sessions"
        return base if sid is None else f"{base}/{sid}"

    def headers(self, name: str) -> dict[str, str]:
        return self.case.world[name].headers

    def open(self, *, names: tuple[str, ...] = PARTICIPANTS, rule: str = RULE,
             notice: timedelta = timedelta(days=3)) -> int:
        now = self.case.env.clock.now()
        r = self.client.post(self.url(), headers=self.headers("prosecutor"), json={
            "place": "某售楼处机房", "planned_at": (now + notice).isoformat(),
            "scope_ids": [self.case.scope["id"]], "sign_off": rule,
            "participants": [{"user_id": self.case.world[n].user_id,
                              "notified_at": now.isoformat()} for n in names]})
        assert r.status_code == 201, r.text
        sid: int = r.json()["id"]
        return sid

    def enroll_examiner_agent(self, sid: int) -> AgentClient:
        r = self.client.post(f"{self.url(sid)}/enrollment-tokens",
                             headers=self.headers("examiner"), json={})
        assert r.status_code == 201, r.text
        key = keys.generate()
        r = self.client.post("/api/v1/agents/enroll", json=enroll_request(r.json()["token"], key))
        assert r.status_code == 201, r.text
        body = r.json()
        return AgentClient(client=self.client, agent_id=body["agent_id"], key=key,
                           case_id=body["case_id"], enrolled=body)

    def challenge(self, sid: int) -> list[dict[str, Any]]:
        r = self.client.post(f"{self.url(sid)}/challenges", headers=self.headers("examiner"),
                             json={})
        assert r.status_code == 201, r.text
        issued: list[dict[str, Any]] = r.json()["challenges"]
        return issued

    def scan(self, agent: AgentClient, *, present: list[str] | None = None,
             minutes: int = 0) -> dict[str, Any]:
        """A scan by ``agent`` answering its open session challenge for the case's scope."""
        r = agent.get("/api/v1/agents/challenges")
        assert r.status_code == 200, r.text
        [challenge] = [c for c in r.json()["challenges"] if c["origin"] == "session"]
        chain = self.case._chain(agent)
        self.case.scans += 1
        predicate = agent.scan(
            seq=chain.seq, prev=chain.prev, scope=self.case.scope,
            scan_id=f"scan-{self.case.scans}", challenge=challenge["nonce"],
            present=present or [],
            finished_at=self.case.env.clock.now() + timedelta(minutes=minutes))
        return self.case._submit(chain, predicate)

    def record(self, sid: int, *, remarks: str = "现场核对了设备序列号",
               hostname: str = str(HOST["hostname"])) -> dict[str, Any]:
        r = self.client.post(f"{self.url(sid)}/record", headers=self.headers("examiner"), json={
            "environment": {"hostname": hostname, "machine_id": HOST["machine_id"],
                            "volume_ids": ["UUID=4f1c-9a2e"], "note": "机器铭牌与申报一致"},
            "remarks": remarks})
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    def fetch_record(self, sid: int, name: str = "prosecutor") -> dict[str, Any]:
        r = self.client.get(f"{self.url(sid)}/record", headers=self.headers(name))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def signature(self, sid: int, name: str, *, key: Ed25519PrivateKey | None = None,
                  payload: bytes | None = None) -> dict[str, Any]:
        """A ``dsse`` co-signature by ``name`` over the record (or over ``payload``)."""
        record = self.fetch_record(sid, name)
        signed = payload if payload is not None else b64decode(record["payload"])
        key = key or self.signers[name].key
        return {"kind": "dsse", "keyid": keys.key_id(key),
                "sig": b64encode(key.sign(dsse.pae(dsse.IN_TOTO_PAYLOAD_TYPE, signed))),
                "payload_sha256": hashlib.sha256(signed).hexdigest()}

    def post_signature(self, sid: int, name: str, body: dict[str, Any]) -> httpx.Response:
        return self.client.post(f"{self.url(sid)}/signatures", headers=self.headers(name),
                                json=body)

    def sign(self, sid: int, name: str) -> dict[str, Any]:
        r = self.post_signature(sid, name, self.signature(sid, name))
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    def get(self, sid: int) -> dict[str, Any]:
        r = self.client.get(self.url(sid), headers=self.headers("prosecutor"))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body
