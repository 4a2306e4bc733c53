"""``deletion-audit manifest register``: the API's import, straight into the database."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from deletion_audit.cli import main
from deletion_audit.models import Manifest, ManifestItem
from tests.support.evidence import entries, examiner_key, write_signed
from tests.support.log import LogEnv
from tests.support.world import World


class TestRegisterCommand:
    def _run(self, env: LogEnv, world: World, manifest: Path, envelope: Path) -> tuple[int, str]:
        result = CliRunner().invoke(main, [
            "manifest", "register", str(manifest), str(envelope), "--case", str(world.case_id),
            "--db", env.settings.database_url,
        ])
        return result.exit_code, result.output

    def test_registers_and_reports(self, env: LogEnv, world: World, tmp_path: Path) -> None:
        key: Ed25519PrivateKey = examiner_key(world)
        signed = write_signed(tmp_path, key, case=world.case_number, items=entries(600))
        envelope = tmp_path / "m.dsse.json"
        envelope.write_text(json.dumps(signed.envelope))
        code, out = self._run(env, world, signed.path, envelope)
        assert code == 0, out
        assert f"600 items, root {signed.summary.root_hex}" in out
        with env.db.read() as session:
            assert session.scalar(select(Manifest.state)) == "active"
            assert session.scalar(select(func.count()).select_from(ManifestItem)) == 600

    def test_a_bad_line_names_file_and_line_and_leaves_nothing(
        self, env: LogEnv, world: World, tmp_path: Path
    ) -> None:
        signed = write_signed(tmp_path, examiner_key(world), case=world.case_number,
                              items=entries(5))
        lines = signed.path.read_bytes().split(b"\n")
        lines[4] = lines[4].replace(b'"kind":"', b'"kind":"z')
        signed.path.write_bytes(b"\n".join(lines))
        envelope = tmp_path / "m.dsse.json"
        envelope.write_text(json.dumps(signed.envelope))
        code, out = self._run(env, world, signed.path, envelope)
        assert code == 1
        assert f"{signed.path}: line 5: unknown kind" in out
        with env.db.read() as session:
            assert session.scalar(select(func.count()).select_from(Manifest)) == 0

    def test_unknown_case(self, env: LogEnv, world: World, tmp_path: Path) -> None:
        signed = write_signed(tmp_path, examiner_key(world), case=world.case_number,
                              items=entries(2))
        envelope = tmp_path / "m.dsse.json"
        envelope.write_text(json.dumps(signed.envelope))
        result = CliRunner().invoke(main, [
            "manifest", "register", str(signed.path), str(envelope), "--case", "4242",
            "--db", env.settings.database_url])
        assert result.exit_code == 1
        assert "no case with id 4242" in result.output
