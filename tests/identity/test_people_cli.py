"""``org add``, ``user add``, ``token create/list/revoke`` and ``key register``."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from deletion_audit.cli import main
from deletion_audit.commands._common import CliError
from deletion_audit.commands.people import register_over_http
from deletion_audit.core import keys
from deletion_audit.identity import tokens
from deletion_audit.models import AuditRecord, Organisation, User, UserKey
from tests.support.log import LogEnv
from tests.support.world import World


def run(env: LogEnv, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [*args, "--db", env.settings.database_url])
    return result.exit_code, result.stdout, result.stderr


class TestOrgAndUser:
    def test_add_org_and_user(self, env: LogEnv) -> None:
        code, out, _ = run(env, "org", "add", "qingpu", "--display-name", "上海市青浦区人民检察院",
                           "--kind", "procuratorate")
        assert code == 0, out
        code, out, _ = run(env, "user", "add", "zhang", "--org", "qingpu")
        assert code == 0
        assert "zhang added to qingpu" in out
        with env.db.read() as session:
            org = session.execute(select(Organisation)).scalar_one()
            user = session.execute(select(User)).scalar_one()
            actors = set(session.execute(select(AuditRecord.actor)).scalars())
        assert (org.display_name, org.kind) == ("上海市青浦区人民检察院", "procuratorate")
        assert user.organisation_id == org.id
        assert all(a.startswith("cli") for a in actors)

    def test_errors_are_one_line_and_non_zero(self, env: LogEnv) -> None:
        run(env, "org", "add", "qingpu")
        code, _, err = run(env, "org", "add", "qingpu")
        assert code == 1
        assert err.strip() == "error: organisation 'qingpu' already exists"
        code, _, err = run(env, "user", "add", "zhang", "--org", "nowhere")
        assert code == 1
        assert err.strip() == "error: no organisation named 'nowhere'"
        code, _, err = run(env, "org", "add", "Bad Name")
        assert code == 1
        assert "not valid" in err
        assert len(err.strip().splitlines()) == 1

    def test_unmigrated_database_says_what_to_do(self, tmp_path: Path) -> None:
        result = CliRunner().invoke(main, ["org", "add", "x1", "--db",
                                           f"sqlite:///{tmp_path / 'empty.sqlite3'}"])
        assert result.exit_code == 1
        assert "deletion-audit db upgrade" in result.stderr

    def test_disable_user(self, env: LogEnv) -> None:
        run(env, "org", "add", "qingpu")
        run(env, "user", "add", "zhang", "--org", "qingpu")
        code, _, _ = run(env, "user", "disable", "zhang")
        assert code == 0
        with env.db.read() as session:
            assert session.execute(select(User)).scalar_one().disabled


class TestTokens:
    def test_create_prints_the_token_once_and_stores_its_hash(self, env: LogEnv) -> None:
        run(env, "org", "add", "qingpu")
        run(env, "user", "add", "zhang", "--org", "qingpu")
        code, out, err = run(env, "token", "create", "zhang", "--days", "7", "--read-only")
        assert code == 0
        secret = out.strip()
        assert tokens.TOKEN_PATTERN.fullmatch(secret)
        assert "read-only" in err
        assert "shown only now" in err
        code, listing, _ = run(env, "token", "list", "zhang")
        assert code == 0
        assert secret not in listing
        token_id = listing.splitlines()[1].split("\t")[0]
        assert token_id.startswith("tok_")
        assert "read-only\tactive" in listing
        code, out, _ = run(env, "token", "revoke", token_id)
        assert code == 0
        assert "revoked" in run(env, "token", "list", "zhang")[1].splitlines()[1]
        code, _, err = run(env, "token", "revoke", token_id)
        assert code == 1
        assert "already revoked" in err

    def test_days_out_of_range_is_a_usage_error(self, env: LogEnv) -> None:
        code, _, err = run(env, "token", "create", "zhang", "--days", "0")
        assert code == 2
        assert "--days" in err

    def test_unknown_user(self, env: LogEnv) -> None:
        code, _, err = run(env, "token", "create", "nobody")
        assert code == 1
        assert "no user named 'nobody'" in err


class TestKeyRegister:
    def test_register_in_the_database(self, env: LogEnv, world: World, tmp_path: Path) -> None:
        key_id = keys.write_keypair(tmp_path / "examiner.pem")
        code, out, _ = run(env, "key", "register", str(tmp_path / "examiner.pem.pub"),
                           "--user", "examiner", "--label", "lab laptop")
        assert code == 0
        assert out.strip() == key_id
        with env.db.read() as session:
            row = session.execute(select(UserKey)).scalar_one()
        assert (row.user_id, row.label) == (world.examiner.user_id, "lab laptop")

    def test_register_over_http_as_the_tokens_owner(
        self, client: TestClient, world: World, tmp_path: Path
    ) -> None:
        key_id = keys.write_keypair(tmp_path / "me.pem")
        pem = (tmp_path / "me.pem.pub").read_text()
        body = register_over_http(client, token=world.examiner.token, public_key_pem=pem,
                                  label="")
        assert body["key_id"] == key_id
        with pytest.raises(CliError, match=r"refused the key \(409\).*already registered"):
            register_over_http(client, token=world.examiner.token, public_key_pem=pem,
                               label="")
        with pytest.raises(CliError, match=r"\(401\)"):
            register_over_http(client, token="dapat_x", public_key_pem=pem, label="")

    def test_plain_http_to_a_remote_server_is_refused(
        self, env: LogEnv, tmp_path: Path
    ) -> None:
        keys.write_keypair(tmp_path / "me.pem")
        (tmp_path / "token").write_text("dapat_" + "a" * 43)
        code, _, err = run(env, "key", "register", str(tmp_path / "me.pem.pub"), "--server",
                           "http://audit.example.gov.cn", "--token-file",
                           str(tmp_path / "token"))
        assert code == 1
        assert "plain HTTP" in err

    def test_needs_server_or_user(self, env: LogEnv, tmp_path: Path) -> None:
        keys.write_keypair(tmp_path / "me.pem")
        code, _, err = run(env, "key", "register", str(tmp_path / "me.pem.pub"))
        assert code == 1
        assert "--server URL" in err

    def test_missing_key_file(self, env: LogEnv, tmp_path: Path) -> None:
        code, _, err = run(env, "key", "register", str(tmp_path / "none.pub"), "--user", "x")
        assert code == 1
        assert "does not exist" in err
