"""Cases, parties and members over HTTP, on both engines."""

from __future__ import annotations

from fastapi.testclient import TestClient

from deletion_audit.identity import service as people
from deletion_audit.identity import tokens
from deletion_audit.models import OrgKind, PartyRole
from tests.support.log import LogEnv
from tests.support.world import World

CASES = "/api/v1/cases"


class TestCreateCase:
    def test_creator_becomes_the_procuratorate_party_and_prosecutor(
        self, client: TestClient, world: World
    ) -> None:
        r = client.post(CASES, headers=world.prosecutor.headers,
                        json={"case_number": "(2025)浙0502民初88号", "title": "景区人脸"})
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["status"] == "open"
        assert body["procuratorate"] == "qingpu-procuratorate"
        assert body["me"]["party_role"] == "procuratorate"
        assert body["me"]["case_role"] == "prosecutor"
        assert "change_status" in body["me"]["allowed_actions"]
        assert len(body["leaf_hash"]) == 64
        members = client.get(f"{CASES}/{body['id']}/members",
                             headers=world.prosecutor.headers).json()["items"]
        assert [(m["user"], m["role"]) for m in members] == [("prosecutor", "prosecutor")]

    def test_only_a_procuratorate_opens_cases(self, client: TestClient, world: World) -> None:
        r = client.post(CASES, headers=world.company.headers,
                        json={"case_number": "X-1", "title": "t"})
        assert r.status_code == 403
        assert "procuratorate" in r.json()["message"]

    def test_case_number_is_unique_per_procuratorate(
        self, env: LogEnv, client: TestClient, world: World
    ) -> None:
        body = {"case_number": world.case_number, "title": "again"}
        assert client.post(CASES, headers=world.prosecutor.headers, json=body).status_code == 409
        # Another procuratorate may use the same number.
        with env.db.write() as session:
            org = people.create_organisation(session, name="huzhou", kind=OrgKind.PROCURATORATE,
                                             actor="t", now=env.clock.now())
            user = people.create_user(session, name="li", organisation=org, actor="t",
                                      now=env.clock.now())
            secret = tokens.create_token(session, user=user, actor="t",
                                         now=env.clock.now()).secret
        r = client.post(CASES, headers={"Authorization": f"Bearer {secret}"}, json=body)
        assert r.status_code == 201

    def test_blank_and_missing_fields_are_422(self, client: TestClient, world: World) -> None:
        r = client.post(CASES, headers=world.prosecutor.headers, json={"case_number": ""})
        assert r.status_code == 422
        assert "case_number" in r.json()["message"]


class TestListAndGet:
    def test_list_shows_only_my_cases_with_keyset_pages(
        self, client: TestClient, world: World
    ) -> None:
        for i in range(4):
            client.post(CASES, headers=world.prosecutor.headers,
                        json={"case_number": f"(2026)沪0118民初{i}号", "title": f"c{i}"})
        seen: list[int] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = client.get(CASES, headers=world.prosecutor.headers, params=params).json()
            seen += [c["id"] for c in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == sorted(seen)
        assert len(seen) == 5
        # The company officer is a member of the world's case only.
        mine = client.get(CASES, headers=world.company.headers).json()["items"]
        assert [c["id"] for c in mine] == [world.case_id]
        assert client.get(CASES, headers=world.outsider.headers).json()["items"] == []

    def test_a_cursor_from_another_list_is_refused(
        self, client: TestClient, world: World
    ) -> None:
        members = client.get(f"{CASES}/{world.case_id}/members",
                             headers=world.prosecutor.headers, params={"limit": 1}).json()
        r = client.get(CASES, headers=world.prosecutor.headers,
                       params={"cursor": members["next_cursor"]})
        assert r.status_code == 400
        assert "start again" in r.json()["message"]

    def test_limit_out_of_range_is_422(self, client: TestClient, world: World) -> None:
        r = client.get(CASES, headers=world.prosecutor.headers, params={"limit": 0})
        assert r.status_code == 422

    def test_non_member_gets_the_same_404_as_for_a_missing_case(
        self, client: TestClient, world: World
    ) -> None:
        theirs = client.get(f"{CASES}/{world.case_id}", headers=world.outsider.headers)
        missing = client.get(f"{CASES}/424242", headers=world.outsider.headers)
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json()["code"] == missing.json()["code"] == "not_found"
        assert theirs.json()["message"].replace(str(world.case_id), "N") == \
            missing.json()["message"].replace("424242", "N")

    def test_get_shows_my_role(self, client: TestClient, world: World) -> None:
        body = client.get(f"{CASES}/{world.case_id}", headers=world.witness.headers).json()
        assert body["me"]["party_role"] == "witness_body"
        # A witness reads the case, its verdicts and sessions, signs sessions and takes the
        # public bundle: nothing that names items, people or places.
        assert body["me"]["allowed_actions"] == [
            "export_public_bundles", "read_case", "read_sessions", "read_verdicts",
            "sign_sessions"]


class TestParties:
    def test_add_and_list(self, env: LogEnv, client: TestClient, world: World) -> None:
        with env.db.write() as session:
            people.create_organisation(session, name="cloud-co", display_name="某云服务商",
                                       kind=OrgKind.COMPANY, actor="t", now=env.clock.now())
        r = client.post(f"{CASES}/{world.case_id}/parties", headers=world.prosecutor.headers,
                        json={"organisation": "cloud-co", "role": "vendor"})
        assert r.status_code == 201
        assert r.json()["organisation_name"] == "某云服务商"
        listed = client.get(f"{CASES}/{world.case_id}/parties",
                            headers=world.witness.headers).json()["items"]
        assert ("cloud-co", "vendor") in [(p["organisation"], p["role"]) for p in listed]
        again = client.post(f"{CASES}/{world.case_id}/parties",
                            headers=world.prosecutor.headers,
                            json={"organisation": "cloud-co", "role": "custodian"})
        assert again.status_code == 409

    def test_unknown_org_and_role(self, client: TestClient, world: World) -> None:
        url = f"{CASES}/{world.case_id}/parties"
        r = client.post(url, headers=world.prosecutor.headers,
                        json={"organisation": "nobody", "role": "vendor"})
        assert r.status_code == 422
        assert "no organisation named" in r.json()["message"]
        r = client.post(url, headers=world.prosecutor.headers,
                        json={"organisation": "other-company", "role": "judge"})
        assert r.status_code == 422

    def test_a_company_cannot_be_a_procuratorate_party(
        self, client: TestClient, world: World
    ) -> None:
        r = client.post(f"{CASES}/{world.case_id}/parties", headers=world.prosecutor.headers,
                        json={"organisation": "other-company", "role": "procuratorate"})
        assert r.status_code == 422


class TestMembers:
    def _person(self, env: LogEnv, name: str, org_name: str) -> None:
        with env.db.write() as session:
            org = people.get_organisation(session, org_name)
            people.create_user(session, name=name, organisation=org, actor="t",
                               now=env.clock.now())

    def test_member_joins_through_their_own_organisation(
        self, env: LogEnv, client: TestClient, world: World
    ) -> None:
        self._person(env, "wang", "sales-office")
        url = f"{CASES}/{world.case_id}/members"
        respondent = world.parties[PartyRole.RESPONDENT]
        procuratorate = world.parties[PartyRole.PROCURATORATE]
        wrong_party = client.post(url, headers=world.prosecutor.headers, json={
            "user": "wang", "party_id": procuratorate, "role": "prosecutor"})
        assert wrong_party.status_code == 422
        assert "own organisation" in wrong_party.json()["message"]
        wrong_role = client.post(url, headers=world.prosecutor.headers, json={
            "user": "wang", "party_id": respondent, "role": "prosecutor"})
        assert wrong_role.status_code == 422
        assert "company_officer" in wrong_role.json()["message"]
        ok = client.post(url, headers=world.prosecutor.headers, json={
            "user": "wang", "party_id": respondent, "role": "company_officer"})
        assert ok.status_code == 201
        assert ok.json()["user"] == "wang"
        again = client.post(url, headers=world.prosecutor.headers, json={
            "user": "wang", "party_id": respondent, "role": "company_officer"})
        assert again.status_code == 409

    def test_unknown_user_or_party(self, client: TestClient, world: World) -> None:
        url = f"{CASES}/{world.case_id}/members"
        r = client.post(url, headers=world.prosecutor.headers,
                        json={"user": "ghost", "party_id": 1, "role": "witness"})
        assert r.status_code == 422
        r = client.post(url, headers=world.prosecutor.headers,
                        json={"user": "outsider", "party_id": 9999, "role": "witness"})
        assert r.status_code == 422
        assert "no party 9999" in r.json()["message"]
