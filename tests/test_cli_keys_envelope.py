"""``deletion-audit keygen`` and ``envelope sign | cosign | verify`` through the real CLI."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from deletion_audit.cli import main
from deletion_audit.core import dsse, keys
from deletion_audit.core.b64 import b64encode

DIGEST = "ab" * 32
STATEMENT: dict[str, Any] = {
    "_type": "https://in-toto.io/Statement/v1",
    "subject": [{"name": "manifest.jsonl", "digest": {"sha256": DIGEST}}],
    "predicateType": "https://example.com/anything/v1",
    "predicate": {"note": "our predicates are not checked by the generic tools"},
}


# Every test runs in its own temporary directory (the `work` fixture).
pytestmark = pytest.mark.usefixtures("work")


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    # Two spaces and a final newline: sign must keep the file's bytes, not re-serialise.
    (tmp_path / "statement.json").write_text(json.dumps(STATEMENT, indent=2) + "\n")
    return tmp_path


def _keygen(name: str, *extra: str) -> str:
    result = run("keygen", name, *extra)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


class TestKeygen:
    def test_writes_the_pair_and_prints_the_key_id(self, work: Path) -> None:
        result = run("keygen", "signer")
        assert result.exit_code == 0
        kid = result.stdout.strip()
        assert kid == keys.key_id(keys.load_public_key(work / "signer.pub"))
        assert stat.S_IMODE((work / "signer").stat().st_mode) == 0o600

    def test_refuses_to_overwrite(self, work: Path) -> None:
        _keygen("signer")
        before = (work / "signer").read_bytes()
        result = run("keygen", "signer")
        assert result.exit_code == 1
        assert "signer already exists" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert (work / "signer").read_bytes() == before

    def test_passphrase_file(self, work: Path) -> None:
        (work / "pw").write_text("s3cret\n")
        kid = _keygen("signer", "--passphrase-file", "pw")
        loaded = keys.load_private_key(work / "signer", passphrase=b"s3cret")
        assert keys.key_id(loaded) == kid

    def test_empty_passphrase_file_is_refused(self, work: Path) -> None:
        (work / "pw").write_text("\n")
        result = run("keygen", "signer", "--passphrase-file", "pw")
        assert result.exit_code == 1
        assert "passphrase file pw is empty" in result.stderr
        assert not (work / "signer").exists()


class TestEnvelopeSign:
    def test_signs_the_file_bytes_as_given(self, work: Path) -> None:
        kid = _keygen("signer")
        result = run("envelope", "sign", "statement.json", "--key", "signer", "-o", "env.json")
        assert result.exit_code == 0, result.output
        envelope = dsse.from_json((work / "env.json").read_bytes())
        assert envelope.payload == (work / "statement.json").read_bytes()
        assert envelope.payload_type == dsse.IN_TOTO_PAYLOAD_TYPE
        assert envelope.signatures[0].keyid == kid

    def test_refuses_to_overwrite_without_force(self, work: Path) -> None:
        _keygen("signer")
        (work / "env.json").write_text("precious")
        result = run("envelope", "sign", "statement.json", "--key", "signer", "-o", "env.json")
        assert result.exit_code == 1
        assert "env.json already exists; use --force" in result.stderr
        assert (work / "env.json").read_text() == "precious"

    def test_force_overwrites(self, work: Path) -> None:
        _keygen("signer")
        (work / "env.json").write_text("old")
        result = run("envelope", "sign", "statement.json", "--key", "signer", "-o", "env.json",
                     "--force")
        assert result.exit_code == 0
        assert dsse.from_json((work / "env.json").read_bytes()).payload_type == (
            dsse.IN_TOTO_PAYLOAD_TYPE
        )

    def test_invalid_statement_is_refused_naming_the_file(self, work: Path) -> None:
        _keygen("signer")
        (work / "bad.json").write_text(json.dumps({**STATEMENT, "subject": []}))
        result = run("envelope", "sign", "bad.json", "--key", "signer", "-o", "env.json")
        assert result.exit_code == 1
        assert "bad.json" in result.stderr
        assert "subject" in result.stderr
        assert not (work / "env.json").exists()

    def test_encrypted_key_needs_its_passphrase(self, work: Path) -> None:
        (work / "pw").write_text("pw")
        _keygen("signer", "--passphrase-file", "pw")
        result = run("envelope", "sign", "statement.json", "--key", "signer", "-o", "env.json")
        assert result.exit_code == 1
        assert "signer is encrypted" in result.stderr
        result = run("envelope", "sign", "statement.json", "--key", "signer",
                     "--passphrase-file", "pw", "-o", "env.json")
        assert result.exit_code == 0

    def test_wrong_passphrase(self, work: Path) -> None:
        (work / "pw").write_text("pw")
        (work / "other").write_text("nope")
        _keygen("signer", "--passphrase-file", "pw")
        result = run("envelope", "sign", "statement.json", "--key", "signer",
                     "--passphrase-file", "other", "-o", "env.json")
        assert result.exit_code == 1
        assert "wrong passphrase for signer" in result.stderr

    def test_stdout(self, work: Path) -> None:
        _keygen("signer")
        result = run("envelope", "sign", "statement.json", "--key", "signer", "-o", "-")
        assert result.exit_code == 0
        assert dsse.from_json(result.stdout).payload == (work / "statement.json").read_bytes()


class TestEnvelopeCosign:
    def _signed(self) -> None:
        _keygen("a")
        _keygen("b")
        assert run("envelope", "sign", "statement.json", "--key", "a", "-o", "env.json"
                   ).exit_code == 0

    def test_adds_a_signature_to_a_file(self, work: Path) -> None:
        self._signed()
        result = run("envelope", "cosign", "env.json", "--key", "b", "-o", "env2.json")
        assert result.exit_code == 0, result.output
        envelope = dsse.from_json((work / "env2.json").read_bytes())
        assert len(envelope.signatures) == 2

    def test_writes_stdout_by_default(self) -> None:
        self._signed()
        result = run("envelope", "cosign", "env.json", "--key", "b")
        assert result.exit_code == 0
        assert len(dsse.from_json(result.stdout).signatures) == 2

    def test_same_key_twice_is_refused(self, work: Path) -> None:
        self._signed()
        result = run("envelope", "cosign", "env.json", "--key", "a", "-o", "env2.json")
        assert result.exit_code == 1
        assert "env.json: the envelope is already signed by key" in result.stderr
        assert not (work / "env2.json").exists()

    def test_in_place_needs_force(self, work: Path) -> None:
        self._signed()
        assert run("envelope", "cosign", "env.json", "--key", "b", "-o", "env.json"
                   ).exit_code == 1
        result = run("envelope", "cosign", "env.json", "--key", "b", "-o", "env.json", "--force")
        assert result.exit_code == 0
        assert len(dsse.from_json((work / "env.json").read_bytes()).signatures) == 2

    def test_malformed_envelope_names_the_file(self, work: Path) -> None:
        _keygen("b")
        (work / "env.json").write_text("{}")
        result = run("envelope", "cosign", "env.json", "--key", "b")
        assert result.exit_code == 1
        assert result.stderr.startswith("error: env.json: envelope has no payloadType")


class TestEnvelopeVerify:
    def _two_signed(self) -> None:
        _keygen("a")
        _keygen("b")
        _keygen("c")
        assert run("envelope", "sign", "statement.json", "--key", "a", "-o", "one.json"
                   ).exit_code == 0
        assert run("envelope", "cosign", "one.json", "--key", "b", "-o", "two.json"
                   ).exit_code == 0

    def test_verified_prints_subject_and_predicate_type(self) -> None:
        self._two_signed()
        result = run("envelope", "verify", "one.json", "--pub", "a.pub")
        assert result.exit_code == 0, result.output
        assert f"subject: manifest.jsonl sha256:{DIGEST}" in result.stdout
        assert "predicate type: https://example.com/anything/v1" in result.stdout

    def test_threshold_met(self) -> None:
        self._two_signed()
        result = run("envelope", "verify", "two.json", "--pub", "a.pub", "--pub", "b.pub",
                     "--pub", "c.pub", "--threshold", "2")
        assert result.exit_code == 0
        assert "2 signature(s) of 2 required" in result.stdout

    def test_threshold_not_met(self) -> None:
        self._two_signed()
        result = run("envelope", "verify", "one.json", "--pub", "a.pub", "--pub", "b.pub",
                     "--threshold", "2")
        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr.strip() == (
            "error: one.json: not verified: 1 of 2 required signature(s) verified "
            "(the envelope has 1 signature(s), 2 key(s) are trusted)"
        )

    def test_untrusted_key(self) -> None:
        self._two_signed()
        result = run("envelope", "verify", "one.json", "--pub", "c.pub")
        assert result.exit_code == 1
        assert "not verified: 0 of 1" in result.stderr

    def test_private_key_file_works_as_pub(self) -> None:
        self._two_signed()
        assert run("envelope", "verify", "one.json", "--pub", "a").exit_code == 0

    def test_tampered_payload(self, work: Path) -> None:
        self._two_signed()
        wire = json.loads((work / "one.json").read_text())
        statement = json.loads(dsse.from_json(wire).payload)
        statement["subject"][0]["digest"]["sha256"] = "cd" * 32
        wire["payload"] = b64encode(json.dumps(statement).encode())
        (work / "forged.json").write_text(json.dumps(wire))
        result = run("envelope", "verify", "forged.json", "--pub", "a.pub")
        assert result.exit_code == 1
        assert "not verified" in result.stderr

    def test_threshold_above_key_count_is_a_usage_error(self) -> None:
        self._two_signed()
        result = run("envelope", "verify", "two.json", "--pub", "a.pub", "--threshold", "2")
        assert result.exit_code == 2
        assert "exceeds the 1 distinct trusted key" in result.stderr

    def test_malformed_envelope_is_not_exit_2(self, work: Path) -> None:
        _keygen("a")
        (work / "bad.json").write_text("{not json")
        result = run("envelope", "verify", "bad.json", "--pub", "a.pub")
        assert result.exit_code not in (0, 2)
        assert result.stderr.startswith("error: bad.json: envelope is not valid JSON")
        assert len(result.stderr.strip().splitlines()) == 1

    def test_unreadable_key_file_is_not_exit_2(self, work: Path) -> None:
        self._two_signed()
        (work / "junk.pub").write_text("junk")
        result = run("envelope", "verify", "one.json", "--pub", "junk.pub")
        assert result.exit_code not in (0, 2)
        assert "junk.pub is not a PEM file" in result.stderr

    def test_signed_payload_that_is_not_a_statement(self, work: Path) -> None:
        key = keys.generate()
        keys.save_public_key(work / "k.pub", key.public_key())
        envelope = dsse.sign(b"not json", dsse.IN_TOTO_PAYLOAD_TYPE, key)
        (work / "env.json").write_bytes(envelope.to_json())
        result = run("envelope", "verify", "env.json", "--pub", "k.pub")
        assert result.exit_code == 1
        assert "signatures verify, but the payload is not a valid in-toto Statement" in (
            result.stderr
        )

    def test_json_output(self) -> None:
        self._two_signed()
        result = run("envelope", "verify", "two.json", "--pub", "a.pub", "--pub", "b.pub",
                     "--json")
        assert result.exit_code == 0
        report = json.loads(result.stdout)
        assert report["verified"] is True
        assert len(report["keyIds"]) == 2
        assert report["subjects"] == STATEMENT["subject"]
        assert report["predicateType"] == STATEMENT["predicateType"]

    def test_pub_is_required(self) -> None:
        self._two_signed()
        assert run("envelope", "verify", "one.json").exit_code == 2
