"""Personal access tokens and the CurrentUser dependency, on both engines."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from deletion_audit.errors import BadRequest, Conflict, Unauthorized
from deletion_audit.identity import service, tokens
from deletion_audit.models import AccessToken, AuditRecord, Event, OrgKind, User
from tests.conftest import T0
from tests.support.log import LogEnv


def _user(env: LogEnv, name: str = "zhang") -> User:
    with env.db.write() as session:
        org = service.create_organisation(session, name="qingpu", kind=OrgKind.PROCURATORATE,
                                          actor="test", now=T0)
        return service.create_user(session, name=name, organisation=org, actor="test", now=T0)


def _issue(env: LogEnv, user: User, **kwargs: object) -> tokens.IssuedToken:
    with env.db.write() as session:
        return tokens.create_token(session, user=session.get_one(User, user.id), actor="test",
                                   now=env.clock.now(), **kwargs)  # type: ignore[arg-type]


class TestTokenFormat:
    def test_prefix_length_and_hash_only_storage(self, env: LogEnv) -> None:
        issued = _issue(env, _user(env))
        assert tokens.TOKEN_PATTERN.fullmatch(issued.secret)
        assert issued.secret.startswith("dapat_")
        with env.db.read() as session:
            row = session.execute(select(AccessToken)).scalar_one()
        assert row.token_hash == tokens.hash_token(issued.secret)
        assert issued.secret.encode() not in row.token_hash
        assert row.public_id.startswith("tok_")

    def test_default_expiry_is_ninety_days(self, env: LogEnv) -> None:
        issued = _issue(env, _user(env))
        assert issued.token.expires_at == T0 + timedelta(days=90)

    def test_two_tokens_differ(self, env: LogEnv) -> None:
        user = _user(env)
        assert _issue(env, user).secret != _issue(env, user).secret

    def test_days_out_of_range_are_refused(self, env: LogEnv) -> None:
        user = _user(env)
        with pytest.raises(BadRequest, match="1 to 366 days"):
            _issue(env, user, days=0)

    def test_tokens_and_accounts_go_to_the_audit_table_not_the_log(self, env: LogEnv) -> None:
        _issue(env, _user(env))
        with env.db.read() as session:
            actions = session.execute(
                select(AuditRecord.action).order_by(AuditRecord.id)
            ).scalars().all()
            event_types = set(session.execute(select(Event.type)).scalars())
        assert actions == ["organisation-created", "user-created", "token-created"]
        assert event_types == {"key-registration"}  # only log init's own keys


class TestAuthenticate:
    def _auth(self, env: LogEnv, header: str | None) -> User:
        with env.db.read() as session:
            return tokens.authenticate(session, authorization=header, now=env.clock.now())[0]

    def test_valid_token(self, env: LogEnv) -> None:
        user = _user(env)
        issued = _issue(env, user)
        assert self._auth(env, f"Bearer {issued.secret}").id == user.id

    @pytest.mark.parametrize(
        ("header", "message"),
        [
            (None, "authentication required"),
            ("Basic abc", "must be 'Bearer <token>'"),
            ("Bearer ghp_notours", "start with dapat_"),
            ("Bearer dapat_" + "A" * 43, "unknown token"),
        ],
    )
    def test_refusals_say_why(self, env: LogEnv, header: str | None, message: str) -> None:
        with pytest.raises(Unauthorized, match=message):
            self._auth(env, header)

    def test_expired(self, env: LogEnv) -> None:
        issued = _issue(env, _user(env), days=1)
        env.clock.advance(timedelta(days=1))
        with pytest.raises(Unauthorized, match="expired"):
            self._auth(env, f"Bearer {issued.secret}")

    def test_revoked(self, env: LogEnv) -> None:
        issued = _issue(env, _user(env))
        with env.db.write() as session:
            tokens.revoke_token(session, public_id=issued.token.public_id, actor="t", now=T0)
        with pytest.raises(Unauthorized, match="revoked"):
            self._auth(env, f"Bearer {issued.secret}")

    def test_revoking_twice_is_a_conflict(self, env: LogEnv) -> None:
        issued = _issue(env, _user(env))
        with env.db.write() as session:
            tokens.revoke_token(session, public_id=issued.token.public_id, actor="t", now=T0)
        with pytest.raises(Conflict), env.db.write() as session:
            tokens.revoke_token(session, public_id=issued.token.public_id, actor="t", now=T0)

    def test_disabled_user(self, env: LogEnv) -> None:
        user = _user(env)
        issued = _issue(env, user)
        with env.db.write() as session:
            service.disable_user(session, user=session.get_one(User, user.id), actor="t", now=T0)
        with pytest.raises(Unauthorized, match="disabled"):
            self._auth(env, f"Bearer {issued.secret}")


class TestCurrentUser:
    def test_me_and_last_used(self, env: LogEnv, client: TestClient) -> None:
        issued = _issue(env, _user(env))
        r = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {issued.secret}"})
        assert r.status_code == 200
        assert r.json()["name"] == "zhang"
        assert r.json()["organisation_kind"] == "procuratorate"
        with env.db.read() as session:
            assert session.get_one(AccessToken, issued.token.id).last_used_at == T0

    def test_last_used_is_throttled(self, env: LogEnv, client: TestClient) -> None:
        issued = _issue(env, _user(env))
        headers = {"Authorization": f"Bearer {issued.secret}"}
        client.get("/api/v1/users/me", headers=headers)
        env.clock.advance(timedelta(seconds=30))
        client.get("/api/v1/users/me", headers=headers)
        with env.db.read() as session:
            assert session.get_one(AccessToken, issued.token.id).last_used_at == T0
        env.clock.advance(timedelta(seconds=30))
        client.get("/api/v1/users/me", headers=headers)
        with env.db.read() as session:
            assert session.get_one(AccessToken, issued.token.id).last_used_at == env.clock.now()

    def test_missing_token_is_401_with_a_clear_message(self, client: TestClient) -> None:
        r = client.get("/api/v1/cases")
        assert r.status_code == 401
        assert r.json()["code"] == "unauthorized"
        assert "Bearer" in r.json()["message"]

    def test_expired_token_is_401(self, env: LogEnv, client: TestClient) -> None:
        issued = _issue(env, _user(env), days=1)
        env.clock.advance(timedelta(days=2))
        r = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {issued.secret}"})
        assert r.status_code == 401
        assert "expired" in r.json()["message"]

    def test_read_only_token_reads_but_cannot_write(
        self, env: LogEnv, client: TestClient
    ) -> None:
        issued = _issue(env, _user(env), read_only=True)
        headers = {"Authorization": f"Bearer {issued.secret}"}
        assert client.get("/api/v1/cases", headers=headers).status_code == 200
        r = client.post("/api/v1/cases", headers=headers,
                        json={"case_number": "(2026)沪0118民初1号", "title": "t"})
        assert r.status_code == 403
        assert "read-only" in r.json()["message"]

    def test_every_non_public_path_declares_the_bearer_scheme(self, client: TestClient) -> None:
        spec = client.get("/openapi.json").json()
        for path, operations in spec["paths"].items():
            if not path.startswith(("/api/v1/cases", "/api/v1/users")):
                continue
            for operation in operations.values():
                assert operation["security"] == [{"bearerToken": []}], path
                assert "401" in operation["responses"], path
