"""The access matrix, generated from the permission table (deletion_audit/cases/
permissions.py): every case endpoint × every role of the table, plus a non-member.

Allowed → neither 403 nor 404 (2xx, or a 409 when an earlier allowed caller already
changed the state); a member without the right → 403; a non-member → 404, exactly as for a
case that does not exist.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from deletion_audit.app import create_app
from deletion_audit.cases.permissions import (
    ALL_ROLES,
    PENDING,
    PERMISSIONS,
    Action,
    Role,
    describe_role,
    is_allowed,
)
from deletion_audit.core import dsse, keys
from deletion_audit.core.b64 import b64decode, b64encode
from deletion_audit.core.predicates import PredicateModel
from deletion_audit.identity import service as people
from deletion_audit.models import OrgKind, PartyRole
from tests.conftest import T0
from tests.support import evidence, statements
from tests.support.agents import AgentClient, enroll_request
from tests.support.evidence import SignedManifest, examiner_key, write_signed
from tests.support.log import LogEnv
from tests.support.world import World, add_agent


@dataclass
class Setup:
    """Things in the case the endpoints act on."""

    world: World
    ids: dict[str, Any] = field(default_factory=dict)


# A request body; "$name" values are ids from the Setup, "{role}" the caller's role.
Body = dict[str, Any] | None


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    action: Action
    body: Body = None
    upload: bool = False
    # Requests that are not plain JSON: "manifest" (a fresh signed manifest, multipart),
    # "chunk" (raw bytes at Upload-Offset 0), "complete" (the setup's upload's envelope),
    # or one of STATEMENTS (a person's statement about the case, signed with their key).
    special: str | None = None

    def __str__(self) -> str:
        suffix = f" ({self.special})" if self.special in STATEMENTS else ""
        return f"{self.method} {self.path}{suffix}"


# People's signed statements go to one endpoint that is not under a case path: the case is
# the one the statement names (tests/support/statements.py builds them).
STATEMENTS = ("vendor", "custody", "deidentify")


def _name(role: Role) -> str:
    return f"{role[0].value}-{role[1].value}".replace("_", "-")


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/api/v1/cases/{case_id}", Action.READ_CASE),
    Endpoint("POST", "/api/v1/cases/{case_id}/status", Action.CHANGE_STATUS,
             {"status": "remediating"}),
    Endpoint("GET", "/api/v1/cases/{case_id}/parties", Action.READ_CASE),
    Endpoint("POST", "/api/v1/cases/{case_id}/parties", Action.ADD_PARTIES,
             {"organisation": "second-vendor", "role": "vendor"}),
    Endpoint("GET", "/api/v1/cases/{case_id}/members", Action.READ_CASE),
    Endpoint("POST", "/api/v1/cases/{case_id}/members", Action.ADD_MEMBERS,
             {"user": "second-officer", "role": "company_officer",
                           "party_id": "$respondent_party"}),
    Endpoint("GET", "/api/v1/cases/{case_id}/obligations", Action.READ_CASE),
    Endpoint("POST", "/api/v1/cases/{case_id}/obligations", Action.SET_OBLIGATIONS,
             {"kind": "retention", "title": "人脸到访后24小时内删除",
                           "details": {"max_age_hours": 24}}),
    Endpoint("GET", "/api/v1/cases/{case_id}/obligations/{document_obligation}",
             Action.READ_CASE),
    Endpoint("POST", "/api/v1/cases/{case_id}/obligations/{retention}/waive",
             Action.WAIVE_OBLIGATIONS, {"reason": "已由行政机关处理"}),
    Endpoint("POST", "/api/v1/cases/{case_id}/obligations/{retention}/state",
             Action.SET_OBLIGATIONS,
             {"state": "breached", "reason": "回头看发现未删除"}),
    Endpoint("POST",
             "/api/v1/cases/{case_id}/obligations/{empty_document_obligation}/documents",
             Action.SUBMIT_DOCUMENTS, upload=True),
    Endpoint("GET", "/api/v1/cases/{case_id}/obligations/{document_obligation}/documents",
             Action.READ_DOCUMENTS),
    Endpoint("GET", "/api/v1/cases/{case_id}/obligations/{document_obligation}/documents/"
             "{document}/content", Action.READ_DOCUMENTS),
    Endpoint("POST", "/api/v1/cases/{case_id}/obligations/{document_obligation}/documents/"
             "{document}/accept", Action.ACCEPT_DOCUMENTS, {}),
    Endpoint("POST", "/api/v1/cases/{case_id}/obligations/{document_obligation}/documents/"
             "{document}/reject", Action.ACCEPT_DOCUMENTS,
             {"reason": "未加盖公章"}),
    Endpoint("GET", "/api/v1/cases/{case_id}/scopes", Action.READ_SCOPES),
    Endpoint("POST", "/api/v1/cases/{case_id}/scopes", Action.DECLARE_SCOPES,
             {"name": "nas-{role}", "kind": "directory",
                           "spec": {"root": "/srv/faces"}, "location_codes": ["SH-QP/NAS1"]}),
    Endpoint("GET", "/api/v1/cases/{case_id}/scopes/{scope}", Action.READ_SCOPES),
    Endpoint("GET", "/api/v1/cases/{case_id}/data-flows", Action.READ_SCOPES),
    Endpoint("POST", "/api/v1/cases/{case_id}/data-flows", Action.DECLARE_DATA_FLOWS,
             {"kind": "cloud_upload", "description": "每日上传云端",
                           "destination": "oss://bucket", "scope_id": "$scope"}),
    Endpoint("GET", "/api/v1/cases/{case_id}/scopes/{scope}/bindings", Action.READ_SCOPES),
    Endpoint("POST", "/api/v1/cases/{case_id}/scopes/{scope}/bindings", Action.BIND_SCOPES,
             {"agent_id": "$free_agent"}),
    Endpoint("DELETE", "/api/v1/cases/{case_id}/scopes/{scope}/bindings/{bound_agent}",
             Action.BIND_SCOPES),
    Endpoint("GET", "/api/v1/cases/{case_id}/manifests", Action.READ_CASE),
    Endpoint("POST", "/api/v1/cases/{case_id}/manifests", Action.REGISTER_MANIFESTS,
             special="manifest"),
    Endpoint("GET", "/api/v1/cases/{case_id}/manifests/{manifest}", Action.READ_CASE),
    Endpoint("POST", "/api/v1/cases/{case_id}/manifests/uploads", Action.REGISTER_MANIFESTS),
    Endpoint("GET", "/api/v1/cases/{case_id}/manifests/uploads/{upload}",
             Action.REGISTER_MANIFESTS),
    Endpoint("PUT", "/api/v1/cases/{case_id}/manifests/uploads/{empty_upload}",
             Action.REGISTER_MANIFESTS, special="chunk"),
    Endpoint("POST", "/api/v1/cases/{case_id}/manifests/uploads/{upload}/complete",
             Action.REGISTER_MANIFESTS, special="complete"),
    Endpoint("GET", "/api/v1/cases/{case_id}/manifests/{manifest}/filter",
             Action.MATCH_MANIFESTS),
    Endpoint("POST", "/api/v1/cases/{case_id}/manifests/{manifest}/confirm",
             Action.MATCH_MANIFESTS, {"digests": []}),
    Endpoint("POST", "/api/v1/cases/{case_id}/enrollment-tokens",
             Action.ISSUE_ENROLLMENT_TOKENS, {"expires_in_hours": 24}),
    Endpoint("GET", "/api/v1/cases/{case_id}/agents", Action.READ_SCOPES),
    Endpoint("POST", "/api/v1/cases/{case_id}/challenges", Action.ISSUE_CHALLENGES, {}),
    Endpoint("POST", "/api/v1/cases/{case_id}/deletion-requests", Action.REQUEST_DELETION,
             {"scope_id": "$scope"}),
    Endpoint("GET", "/api/v1/cases/{case_id}/deletion-requests", Action.READ_SCOPES),
    Endpoint("POST", "/api/v1/cases/{case_id}/agents/{revocable_agent}/revoke",
             Action.REVOKE_AGENTS, {"kind": "decommissioned", "reason": "主机报废"}),
    Endpoint("GET", "/api/v1/cases/{case_id}/verdict", Action.READ_VERDICTS),
    Endpoint("GET", "/api/v1/cases/{case_id}/judgments", Action.READ_JUDGMENTS),
    Endpoint("GET", "/api/v1/cases/{case_id}/reviews", Action.READ_JUDGMENTS),
    Endpoint("POST", "/api/v1/cases/{case_id}/reviews", Action.START_REVIEWS),
    Endpoint("GET", "/api/v1/cases/{case_id}/reviews/plan", Action.READ_JUDGMENTS),
    Endpoint("PUT", "/api/v1/cases/{case_id}/reviews/plan", Action.START_REVIEWS, {}),
    Endpoint("GET", "/api/v1/cases/{case_id}/recipients", Action.MANAGE_NOTIFICATIONS),
    Endpoint("POST", "/api/v1/cases/{case_id}/recipients", Action.MANAGE_NOTIFICATIONS,
             {"role": "prosecutor", "channel": "email", "address": "zhang@procuratorate.example"}),
    Endpoint("GET", "/api/v1/cases/{case_id}/items", Action.READ_ITEMS),
    Endpoint("GET", "/api/v1/cases/{case_id}/export?tier=court", Action.EXPORT_BUNDLES),
    Endpoint("GET", "/api/v1/cases/{case_id}/export?tier=public",
             Action.EXPORT_PUBLIC_BUNDLES),
    Endpoint("POST", "/api/v1/cases/{case_id}/sessions", Action.OPEN_SESSIONS,
             special="open-session"),
    Endpoint("GET", "/api/v1/cases/{case_id}/sessions", Action.READ_SESSIONS),
    Endpoint("GET", "/api/v1/cases/{case_id}/sessions/{open_session}", Action.READ_SESSIONS),
    Endpoint("POST", "/api/v1/cases/{case_id}/sessions/{open_session}/enrollment-tokens",
             Action.RUN_SESSIONS, {}),
    Endpoint("POST", "/api/v1/cases/{case_id}/sessions/{open_session}/challenges",
             Action.RUN_SESSIONS, {}),
    Endpoint("GET", "/api/v1/cases/{case_id}/sessions/{recorded_session}/results",
             Action.READ_SESSIONS),
    Endpoint("POST", "/api/v1/cases/{case_id}/sessions/{recorded_session}/record",
             Action.RUN_SESSIONS, {"environment": {"hostname": "nvr-01"}}),
    Endpoint("GET", "/api/v1/cases/{case_id}/sessions/{recorded_session}/record",
             Action.READ_SESSIONS),
    Endpoint("GET", "/api/v1/cases/{case_id}/sessions/{recorded_session}/items",
             Action.READ_SESSION_ITEMS),
    # Every member of the matrix's session is one of its participants, so the table's
    # answer is what each gets; a member who is not a participant is refused by the session
    # itself (tests/sessions).
    Endpoint("POST", "/api/v1/cases/{case_id}/sessions/{recorded_session}/signatures",
             Action.SIGN_SESSIONS, special="co-sign"),
    Endpoint("POST", "/api/v1/cases/{case_id}/sessions/{recorded_session}/refusals",
             Action.SIGN_SESSIONS, {"reason": "未看到机器铭牌"}),
    Endpoint("POST", "/api/v1/attestations", Action.SUBMIT_VENDOR_STATEMENTS,
             special="vendor"),
    Endpoint("POST", "/api/v1/attestations", Action.SUBMIT_CUSTODY_STATEMENTS,
             special="custody"),
    Endpoint("POST", "/api/v1/attestations", Action.SUBMIT_DEIDENTIFY_STATEMENTS,
             special="deidentify"),
]

# Endpoints that are not about one case: creating and listing cases are checked in
# test_cases_api.py (only a procuratorate opens cases; the list shows only my cases).
NOT_CASE_SCOPED = {("POST", "/api/v1/cases"), ("GET", "/api/v1/cases")}


def _setup(world: World, client: TestClient) -> Setup:
    setup = Setup(world=world)
    env = world.env
    with env.db.write() as session:
        vendor = people.create_organisation(session, name="second-vendor", kind=OrgKind.COMPANY,
                                            actor="test", now=env.clock.now())
        company = people.get_organisation(session, "sales-office")
        people.create_user(session, name="second-officer", organisation=company, actor="test",
                           now=env.clock.now())
        assert vendor.id
    h = world.prosecutor.headers
    base = f"/api/v1/cases/{world.case_id}"
    deadline = {"start_event": "检察建议书送达", "served_on": "2026-03-02",
                "preset": "reply-2-months"}
    for key, title in (("document_obligation", "承诺书"), ("empty_document_obligation", "制度")):
        r = client.post(f"{base}/obligations", headers=h, json={
            "kind": "document", "title": title, "deadline": deadline})
        assert r.status_code == 201, r.text
        setup.ids[key] = r.json()["id"]
    r = client.post(f"{base}/obligations", headers=h, json={
        "kind": "retention", "title": "定期删除", "details": {"max_age_hours": 24}})
    setup.ids["retention"] = r.json()["id"]
    r = client.post(f"{base}/obligations/{setup.ids['document_obligation']}/documents",
                    headers=world.company.headers,
                    files={"file": ("承诺书.pdf", b"%PDF-1.4 undertaking", "application/pdf")})
    assert r.status_code == 201, r.text
    setup.ids["document"] = r.json()["id"]
    r = client.post(f"{base}/scopes", headers=world.company.headers, json={
        "name": "nas", "kind": "directory", "spec": {"root": "/srv/faces"}})
    setup.ids["scope"] = r.json()["id"]
    setup.ids["free_agent"] = add_agent(world)
    setup.ids["bound_agent"] = add_agent(world)
    setup.ids["revocable_agent"] = add_agent(world)
    r = client.post(f"{base}/scopes/{setup.ids['scope']}/bindings", headers=h,
                    json={"agent_id": setup.ids["bound_agent"]})
    assert r.status_code == 201, r.text
    _setup_manifests(setup, client)
    setup.ids["case_id"] = world.case_id
    setup.ids["respondent_party"] = world.parties[PartyRole.RESPONDENT]
    return setup


def _setup_sessions(setup: Setup, client: TestClient) -> None:
    """Two sessions every member of the case takes part in: one open with the examiner's
    agent enrolled, one with a record built from that agent's scan."""
    world, ids = setup.world, setup.ids
    ids["session_signers"] = {
        p.headers["Authorization"]: statements.Signer.register(client, p)
        for p in world.people.values() if p.role is not None}
    ids["session_body"] = {
        "place": "某售楼处机房", "planned_at": "2026-03-05T01:30:00Z", "sign_off": "all",
        "scope_ids": [ids["scope"]],
        "participants": [{"user_id": p.user_id} for p in world.people.values()
                         if p.role is not None]}
    for name in ("open_session", "recorded_session"):
        r = client.post(f"{world.url}/sessions", headers=world.prosecutor.headers,
                        json=ids["session_body"])
        assert r.status_code == 201, r.text
        sid = ids[name] = r.json()["id"]
        r = client.post(f"{world.url}/sessions/{sid}/enrollment-tokens",
                        headers=world.examiner.headers, json={})
        assert r.status_code == 201, r.text
        key = keys.generate()
        r = client.post("/api/v1/agents/enroll", json=enroll_request(r.json()["token"], key))
        assert r.status_code == 201, r.text
        agent = AgentClient(client=client, agent_id=r.json()["agent_id"], key=key,
                            case_id=world.case_id)
    r = client.post(f"{world.url}/sessions/{sid}/challenges", headers=world.examiner.headers,
                    json={})
    assert r.status_code == 201, r.text
    [nonce] = [c["nonce"] for c in agent.get("/api/v1/agents/challenges").json()["challenges"]]
    scope = client.get(f"{world.url}/scopes/{ids['scope']}",
                       headers=world.prosecutor.headers).json()
    signed = agent.sign_statement(agent.scan(seq=0, prev=None, scope=scope, challenge=nonce,
                                             finished_at=T0))
    assert agent.submit(signed).status_code == 201
    r = client.post(f"{world.url}/sessions/{sid}/record", headers=world.examiner.headers,
                    json={"environment": {"hostname": "nvr-01"}})
    assert r.status_code == 201, r.text
    ids["record"] = b64decode(r.json()["payload"])


def _co_sign(client: TestClient, setup: Setup, headers: dict[str, str]) -> int:
    ids = setup.ids
    signer = ids["session_signers"].get(headers["Authorization"])
    key = signer.key if signer is not None else keys.generate()
    sig = key.sign(dsse.pae(dsse.IN_TOTO_PAYLOAD_TYPE, ids["record"]))
    path = f"/api/v1/cases/{ids['case_id']}/sessions/{ids['recorded_session']}/signatures"
    return client.post(path, headers=headers, json={
        "kind": "dsse", "keyid": keys.key_id(key), "sig": b64encode(sig)}).status_code


def _setup_manifests(setup: Setup, client: TestClient) -> None:
    world = setup.world
    directory = world.env.settings.data_dir / "manifests"
    directory.mkdir(parents=True, exist_ok=True)
    key = examiner_key(world)
    counter = iter(range(1, 10_000))

    def fresh() -> SignedManifest:
        n = next(counter)
        return write_signed(directory, key, case=world.case_number,
                            items=evidence.entries(3, seed=n), name=f"m{n}.jsonl")

    setup.ids["fresh_manifest"] = fresh
    h = world.prosecutor.headers
    base = f"{world.url}/manifests"
    first = fresh()
    r = client.post(base, headers=h, files={
        "manifest": ("m.jsonl", first.path.read_bytes()),
        "envelope": ("e.json", json.dumps(first.envelope).encode())})
    assert r.status_code == 201, r.text
    setup.ids["manifest"] = r.json()["id"]
    upload = client.post(f"{base}/uploads", headers=h).json()["id"]
    pending = fresh()
    client.put(f"{base}/uploads/{upload}", headers={**h, "Upload-Offset": "0"},
               content=pending.path.read_bytes())
    setup.ids["upload"] = upload
    setup.ids["upload_envelope"] = pending.envelope
    setup.ids["empty_upload"] = client.post(f"{base}/uploads", headers=h).json()["id"]


def _resolve(value: Any, setup: Setup, role: Role | None) -> Any:
    if isinstance(value, str) and value.startswith("$"):
        return setup.ids[value[1:]]
    if isinstance(value, str) and "{role}" in value:
        return value.replace("{role}", _name(role) if role else "outsider")
    return value


def _statement(client: TestClient, kind: str, setup: Setup,
               headers: dict[str, str]) -> int:
    """Submit a fresh statement of ``kind`` about ``setup.ids["case_id"]``, signed with a key
    the caller registered (each call's statement differs: its time)."""
    world, ids = setup.world, setup.ids
    if "flow" not in ids:
        ids["flow"] = statements.data_flow(client, world)
        ids["custody"] = statements.custody_obligation(client, world)
        statements.deidentify_obligation(client, world)
        ids["signers"], ids["calls"] = {}, 0
    token = headers["Authorization"]
    if token not in ids["signers"]:
        person = next(p for p in world.people.values() if p.headers["Authorization"] == token)
        ids["signers"][token] = statements.Signer.register(client, person)
    signer: statements.Signer = ids["signers"][token]
    ids["calls"] += 1
    when = T0 - timedelta(seconds=ids["calls"])
    predicate: PredicateModel
    if kind == "vendor":
        predicate = signer.vendor(world, flow_id=ids["flow"], stated_at=when,
                                  case_id=ids["case_id"])
    elif kind == "custody":
        predicate = signer.custody(world, obligation_id=ids["custody"], occurred_at=when)
        predicate = predicate.model_copy(update={"case_id": str(ids["case_id"])})
    else:
        predicate = signer.deidentify(world, checked_at=when)
        predicate = predicate.model_copy(update={"case_id": str(ids["case_id"])})
    return signer.submit(signer.sign(predicate)).status_code


def _call(client: TestClient, endpoint: Endpoint, setup: Setup, role: Role | None,
          headers: dict[str, str]) -> int:
    if endpoint.special in STATEMENTS:
        return _statement(client, endpoint.special, setup, headers)
    if endpoint.special == "co-sign":
        return _co_sign(client, setup, headers)
    if endpoint.special == "open-session":
        path = endpoint.path.format(**setup.ids)
        return client.post(path, headers=headers,
                           json=setup.ids["session_body"]).status_code
    path = endpoint.path.format(**setup.ids)
    kwargs: dict[str, Any] = {"headers": headers}
    if endpoint.special == "manifest":
        signed = setup.ids["fresh_manifest"]()
        kwargs["files"] = {"manifest": ("m.jsonl", signed.path.read_bytes()),
                           "envelope": ("e.json", json.dumps(signed.envelope).encode())}
        kwargs["data"] = {"supersede_reason": "补充鉴定"}
    elif endpoint.special == "chunk":
        kwargs["headers"] = {**headers, "Upload-Offset": "0"}
        kwargs["content"] = b'{"format":"deletion-audit-manifest"}\n'
    elif endpoint.special == "complete":
        kwargs["json"] = {"envelope": setup.ids["upload_envelope"],
                          "supersede_reason": "补充鉴定"}
    elif endpoint.upload:
        kwargs["files"] = {"file": ("制度.pdf", b"%PDF-1.4 policy", "application/pdf")}
    elif endpoint.body is not None:
        kwargs["json"] = {k: _resolve(v, setup, role) for k, v in endpoint.body.items()}
    return client.request(endpoint.method, path, **kwargs).status_code


# The decision is the permission table's, taken in Python over the same queries on either
# engine: every endpoint runs on SQLite, and one endpoint of each kind of resource runs on
# PostgreSQL as well.
ON_POSTGRES = {
    "GET /api/v1/cases/{case_id}",
    "GET /api/v1/cases/{case_id}/members",
    "POST /api/v1/cases/{case_id}/obligations/{empty_document_obligation}/documents",
    "POST /api/v1/cases/{case_id}/scopes",
    "POST /api/v1/cases/{case_id}/manifests",
    "POST /api/v1/cases/{case_id}/agents/{revocable_agent}/revoke",
    "GET /api/v1/cases/{case_id}/verdict",
    "GET /api/v1/cases/{case_id}/items",
    "PUT /api/v1/cases/{case_id}/reviews/plan",
    "GET /api/v1/cases/{case_id}/export?tier=public",
    "GET /api/v1/cases/{case_id}/sessions/{recorded_session}/items",
    "POST /api/v1/attestations (vendor)",
}
MATRIX = [pytest.param(engine, endpoint, id=f"{engine}-{endpoint}")
          for engine in ("sqlite", "postgresql") for endpoint in ENDPOINTS
          if engine == "sqlite" or str(endpoint) in ON_POSTGRES]


class TestAccessMatrix:
    def test_the_postgresql_sample_names_endpoints_of_the_matrix(self) -> None:
        assert ON_POSTGRES <= {str(e) for e in ENDPOINTS}

    @pytest.mark.parametrize(("db_url", "endpoint"), MATRIX, indirect=["db_url"])
    def test_every_role_gets_what_the_table_says(
        self, env: LogEnv, world: World, endpoint: Endpoint
    ) -> None:
        with TestClient(create_app(env.ctx, run_jobs=False)) as client:
            setup = _setup(world, client)
            if "/sessions" in endpoint.path:
                _setup_sessions(setup, client)
            outcomes: dict[str, int] = {}
            # Denied roles first: a refused request must change nothing an allowed one needs.
            for role in sorted(ALL_ROLES, key=lambda r: is_allowed(endpoint.action, r)):
                person = world.by_role(role)
                status = _call(client, endpoint, setup, role, person.headers)
                outcomes[describe_role(role)] = status
                if is_allowed(endpoint.action, role):
                    assert status < 300 or status == 409, (role, status)
                else:
                    assert status == 403, (role, status)
            status = _call(client, endpoint, setup, None, world.outsider.headers)
            assert status == 404, ("non-member", status)
            # A case that does not exist answers exactly as one the caller is not in.
            setup.ids["case_id"] = 999_999
            missing = _call(client, endpoint, setup, None, world.prosecutor.headers)
            assert missing == 404, ("nonexistent case", missing)
            assert any(s < 300 for s in outcomes.values()), outcomes


def _shape(path: str) -> str:
    """A path with its parameters blanked (and no query): the matrix names them after what
    they hold."""
    return re.sub(r"\{[^}]+\}", "{}", path.split("?", 1)[0])


class TestMatrixCoverage:
    def test_every_case_route_is_in_the_matrix(self, env: LogEnv) -> None:
        app = create_app(env.ctx, run_jobs=False)
        routes = {
            (method.upper(), _shape(path))
            for path, operations in app.openapi()["paths"].items()
            if path.startswith("/api/v1/cases")
            for method in operations
        }
        listed = {(m, _shape(p)) for m, p in
                  {(e.method, e.path) for e in ENDPOINTS} | NOT_CASE_SCOPED
                  if p.startswith("/api/v1/cases")}
        assert routes - listed == set(), "case endpoints missing from the access matrix"
        assert listed - routes == set(), "matrix lists endpoints the app does not have"

    def test_every_action_is_covered_or_pending(self) -> None:
        covered = {e.action for e in ENDPOINTS} | {Action.CREATE_CASE}
        assert covered | PENDING == set(PERMISSIONS)
        # A pending action has no endpoint yet; when one lands, it leaves PENDING.
        assert covered & PENDING == set()
