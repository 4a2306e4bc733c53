"""``deletion-audit export`` and ``deletion-audit verify`` through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from deletion_audit.bundles import export
from deletion_audit.cli import main
from tests.bundles.conftest import Bundles, deleted_and_clean


def _export(bundles: Bundles, tier: str, out: Path, *extra: str) -> tuple[int, str]:
    settings = bundles.env.settings
    result = CliRunner().invoke(main, [
        "export", str(bundles.case.world.case_id), "--tier", tier, "-o", str(out),
        "--data-dir", str(settings.data_dir), "--db", settings.db_url, *extra])
    return result.exit_code, result.output


def _verify(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["verify", *args])
    return result.exit_code, result.output


class TestExportCommand:
    def test_exports_both_tiers(self, bundles: Bundles, tmp_path: Path) -> None:
        deleted_and_clean(bundles.case)
        for tier in ("court", "public"):
            out = tmp_path / f"{tier}.zip"
            code, output = _export(bundles, tier, out)
            assert code == 0, output
            assert f"{tier} bundle of case" in output
            code, output = _verify(str(out), "--log-key", bundles.log_key, "--lang", "en")
            assert code == 0, output
            assert output.startswith("VERIFIED")

    def test_an_unknown_case(self, bundles: Bundles, tmp_path: Path) -> None:
        out = tmp_path / "x.zip"
        settings = bundles.env.settings
        result = CliRunner().invoke(main, [
            "export", "999", "--tier", "court", "-o", str(out),
            "--data-dir", str(settings.data_dir), "--db", settings.db_url])
        assert result.exit_code == 1
        assert "no case 999" in result.output
        assert not out.exists()
        assert list(tmp_path.glob(".x.zip.*")) == []

    def test_a_bad_tier_is_a_usage_error(self, bundles: Bundles, tmp_path: Path) -> None:
        code, output = _export(bundles, "secret", tmp_path / "x.zip")
        assert code == 2
        assert "secret" in output


class TestVerifyCommand:
    def test_exit_codes_and_languages(self, bundles: Bundles, tmp_path: Path) -> None:
        bundles.case.scan(present=bundles.case.digests[:1])
        out = tmp_path / "court.zip"
        assert _export(bundles, "court", out)[0] == 0
        code, output = _verify(str(out), "--log-key", bundles.log_key)
        assert code == 1, output
        assert "证据完整" in output
        assert "未删除" in output
        code, output = _verify(str(out), "--log-key", bundles.log_key, "--lang", "en")
        assert code == 1
        assert "INTACT, NOT VERIFIED" in output
        assert "not verified" in output

    def test_json_for_machines(self, bundles: Bundles, tmp_path: Path) -> None:
        deleted_and_clean(bundles.case)
        out = tmp_path / "court.zip"
        assert _export(bundles, "court", out)[0] == 0
        code, output = _verify(str(out), "--log-key", bundles.log_key, "--json")
        assert code == 0
        body = json.loads(output)
        assert body["result"] == "verified"
        assert body["tier"] == "court"
        assert body["verdictRederived"] is True
        assert body["rederivedVerdict"]["outcome"] == "verified"
        assert body["problems"] == []

    def test_a_kept_checkpoint_file(self, bundles: Bundles, tmp_path: Path) -> None:
        kept = tmp_path / "kept.checkpoint"
        kept.write_text(bundles.checkpoint())
        deleted_and_clean(bundles.case)
        out = tmp_path / "public.zip"
        assert _export(bundles, "public", out)[0] == 0
        code, output = _verify(str(out), "--trusted-checkpoint", str(kept), "--lang", "en")
        assert code == 0, output
        assert "the checkpoint you kept" in output

    def test_tampered_is_3_with_its_reason(self, bundles: Bundles, tmp_path: Path) -> None:
        deleted_and_clean(bundles.case)
        out = tmp_path / "court.zip"
        assert _export(bundles, "court", out)[0] == 0
        tampered = bundles.tamper(out, add={"extra.bin": b"\x00"})
        code, output = _verify(str(tampered), "--log-key", bundles.log_key, "--lang", "en")
        assert code == 3
        assert "FAILED" in output
        assert "[file_added] extra.bin" in output

    def test_no_anchor_is_4(self, bundles: Bundles, tmp_path: Path) -> None:
        out = tmp_path / "court.zip"
        assert _export(bundles, "court", out)[0] == 0
        code, output = _verify(str(out), "--json")
        assert code == 4
        assert json.loads(output)["problems"][0]["code"] == "no_anchor"

    def test_unreadable_is_4(self, tmp_path: Path) -> None:
        path = tmp_path / "b.zip"
        path.write_bytes(b"garbage")
        code, output = _verify(str(path), "--log-key", "x+00000000+AA==", "--lang", "en")
        assert code == 4
        assert "CANNOT VERIFY" in output

    def test_an_unreadable_kept_checkpoint_is_4(self, tmp_path: Path) -> None:
        code, output = _verify(str(tmp_path / "b.zip"), "--trusted-checkpoint",
                               str(tmp_path / "missing"))
        assert code == 4
        assert "cannot read the kept checkpoint" in output

    def test_both_anchors_is_a_usage_error(self, tmp_path: Path) -> None:
        kept = tmp_path / "kept"
        kept.write_text("x")
        code, _ = _verify(str(tmp_path / "b.zip"), "--log-key", "k",
                          "--trusted-checkpoint", str(kept))
        assert code == 2

    def test_verify_needs_no_database(self, bundles: Bundles, tmp_path: Path) -> None:
        """The bundle alone: the database is gone when it is verified."""
        deleted_and_clean(bundles.case)
        out = tmp_path / "court.zip"
        assert _export(bundles, "court", out)[0] == 0
        bundles.env.db.dispose()
        if bundles.env.settings.db_url.startswith("sqlite:///"):
            Path(bundles.env.settings.db_url.removeprefix("sqlite:///")).unlink()
        code, output = _verify(str(out), "--log-key", bundles.log_key, "--json")
        assert code == 0, output
        assert json.loads(output)["counts"]["items"] == len(bundles.case.digests)


class TestConsistentWith:
    def test_an_old_kept_checkpoint_asked_for(self, bundles: Bundles, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
        kept = tmp_path / "kept.checkpoint"
        kept.write_text(bundles.checkpoint())
        deleted_and_clean(bundles.case)
        monkeypatch.setattr(export, "CONSISTENCY_CHECKPOINTS", 1)
        out = tmp_path / "public.zip"
        assert _export(bundles, "public", out, "--consistent-with", str(kept))[0] == 0
        code, output = _verify(str(out), "--trusted-checkpoint", str(kept), "--lang", "en")
        assert code == 0, output

    def test_not_a_checkpoint(self, bundles: Bundles, tmp_path: Path) -> None:
        bad = tmp_path / "bad"
        bad.write_text("hello")
        code, output = _export(bundles, "public", tmp_path / "x.zip", "--consistent-with",
                               str(bad))
        assert code == 1
        assert "not a checkpoint" in output


class TestExportToStandardOutput:
    def test_a_pipe_gets_the_zip(self, bundles: Bundles, tmp_path: Path) -> None:
        deleted_and_clean(bundles.case)
        settings = bundles.env.settings
        result = CliRunner().invoke(main, [
            "export", str(bundles.case.world.case_id), "--tier", "public", "-o", "-",
            "--data-dir", str(settings.data_dir), "--db", settings.db_url])
        assert result.exit_code == 0, result.output
        out = tmp_path / "piped.zip"
        out.write_bytes(result.stdout_bytes)
        code, output = _verify(str(out), "--log-key", bundles.log_key, "--lang", "en")
        assert code == 0, output
