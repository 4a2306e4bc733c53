"""Verify catches every tampering with its reason and exit code (DESIGN: 3 the evidence
fails verification, 4 cannot verify)."""

from __future__ import annotations

import json
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from deletion_audit.bundles import checks, export, layout, manifest_check, reading
from deletion_audit.bundles.layout import Tier
from deletion_audit.bundles.verify import Anchor, Exit
from deletion_audit.core import dsse, keys
from deletion_audit.core.b64 import b64decode, b64encode
from deletion_audit.core.checkpoint import Checkpoint, parse_checkpoint_text, sign_checkpoint
from deletion_audit.core.leaves import decode_leaf
from deletion_audit.core.note import NoteSigner
from tests.bundles.conftest import Bundles, codes, deleted_and_clean, jsonl, read_member

# Verification is offline and reads only the zip: every tampering here starts from a bundle
# exported from SQLite. Bundles exported from PostgreSQL are verified in test_export.py.
pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def court(bundles: Bundles) -> Path:
    deleted_and_clean(bundles.case)
    return bundles.export(Tier.COURT)


def _flip(data: bytes, at: int | None = None) -> bytes:
    i = len(data) // 2 if at is None else at
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]


def _lines(data: bytes) -> list[dict[str, object]]:
    return jsonl(data)


def _dump(lines: list[dict[str, object]]) -> bytes:
    from deletion_audit.core.canonical import canonical_json

    return b"".join(canonical_json(line) + b"\n" for line in lines)


def _type(line: dict[str, object]) -> str:
    return decode_leaf(b64decode(str(line["leaf"]))).type


class TestFiles:
    def test_a_byte_of_any_file(self, bundles: Bundles, court: Path) -> None:
        with zipfile.ZipFile(court) as zf:
            names = zf.namelist()
        assert len(names) >= 10
        for name in names:
            tampered = bundles.tamper(court, change=lambda n, d, name=name: _flip(d)
                                      if n == name else d)
            report = bundles.verify(tampered)
            assert report.exit is Exit.FAILED, name
            expected = "index_signature" if name == layout.INDEX else "file_altered"
            assert expected in codes(report), (name, report.problems)

    def test_a_file_removed(self, bundles: Bundles, court: Path) -> None:
        envelope = next(n for n in zipfile.ZipFile(court).namelist()
                        if n.startswith(layout.ENVELOPES))
        report = bundles.verify(bundles.tamper(
            court, change=lambda n, d: None if n == envelope else d))
        assert report.exit is Exit.FAILED
        assert "file_missing" in codes(report)
        assert any(envelope in p.message for p in report.problems)

    def test_a_file_added(self, bundles: Bundles, court: Path) -> None:
        report = bundles.verify(bundles.tamper(court, add={"notes.txt": b"trust me"}))
        assert report.exit is Exit.FAILED
        assert codes(report) == {"file_added"}

    def test_the_index_removed(self, bundles: Bundles, court: Path) -> None:
        report = bundles.verify(bundles.tamper(
            court, change=lambda n, d: None if n == layout.INDEX else d))
        assert report.exit is Exit.FAILED
        assert "file_missing" in codes(report)


class TestLogProofs:
    """With the index re-signed (an insider holding the service key), the log still
    catches each change."""

    def test_a_proof_hash(self, bundles: Bundles, court: Path) -> None:
        def change(name: str, data: bytes) -> bytes:
            if name != layout.EVENTS:
                return data
            lines = _lines(data)
            proof = list(lines[3]["proof"])  # type: ignore[call-overload]
            proof[0] = b64encode(_flip(b64decode(proof[0]), 0))
            lines[3]["proof"] = proof
            return _dump(lines)

        report = bundles.verify(bundles.tamper(court, change=change, resign=True))
        assert report.exit is Exit.FAILED
        assert "inclusion_proof" in codes(report)

    def test_an_event_body(self, bundles: Bundles, court: Path) -> None:
        def change(name: str, data: bytes) -> bytes:
            if name != layout.EVENTS:
                return data
            lines = _lines(data)
            opened = next(line for line in lines if "body" in line
                          and _type(line) == "attestation")
            body = dict(opened["body"])  # type: ignore[call-overload]
            body["scopeId"] = 999
            opened["body"] = body
            return _dump(lines)

        report = bundles.verify(bundles.tamper(court, change=change, resign=True))
        assert report.exit is Exit.FAILED
        assert "event_opening" in codes(report)

    def test_the_checkpoint(self, bundles: Bundles, court: Path) -> None:
        def change(name: str, data: bytes) -> bytes:
            if name != layout.CHECKPOINT:
                return data
            text = data.decode()
            lines = text.split("\n")
            lines[1] = str(int(lines[1]) + 1)
            return "\n".join(lines).encode()

        report = bundles.verify(bundles.tamper(court, change=change, resign=True))
        assert report.exit is Exit.FAILED
        assert "checkpoint" in codes(report)

    def test_a_checkpoint_signed_by_another_log_key(
            self, bundles: Bundles, court: Path) -> None:
        """A forger who re-signs the checkpoint with a key of his own is caught by the
        anchor: it is not the key the verifier trusts."""
        forger = NoteSigner(bundles.env.ctx.keys.origin, keys.generate())

        def change(name: str, data: bytes) -> bytes:
            if name != layout.CHECKPOINT:
                return data
            parsed = parse_checkpoint_text(data.decode())
            return sign_checkpoint(Checkpoint(parsed.origin, parsed.size, parsed.root_hash),
                                   forger).encode()

        tampered = bundles.tamper(court, change=change, resign=True)
        assert "checkpoint" in codes(bundles.verify(tampered))
        # Verified against the forger's key instead, the log key registration betrays him.
        report = bundles.verify(tampered, Anchor(log_key=forger.verifier.vkey()))
        assert report.exit is Exit.FAILED
        assert "anchor_mismatch" in codes(report)


class TestStatements:
    def test_a_statement_dropped(self, bundles: Bundles, court: Path) -> None:
        """The deletion statement and its event removed, the index re-signed: the agent's
        chain shows the gap, and the verdict re-derived from what is left is not the
        signed one."""
        events = _lines(read_member(court, layout.EVENTS))
        deletion = [line for line in events if _type(line) == "attestation"][1]
        body = deletion["body"]
        assert isinstance(body, dict)
        envelope = layout.envelope_path(str(body["envelopeSha256"]))

        def change(name: str, data: bytes) -> bytes | None:
            if name == envelope:
                return None
            if name == layout.EVENTS:
                return _dump([line for line in events if line is not deletion])
            return data

        report = bundles.verify(bundles.tamper(court, change=change, resign=True))
        assert report.exit is Exit.FAILED
        assert "chain" in codes(report)
        assert "verdict_mismatch" in codes(report)

    def test_the_last_statement_dropped(self, bundles: Bundles, court: Path) -> None:
        """The clean scan removed: no gap is left in the chain, but the re-derived verdict
        differs from the signed one."""
        events = _lines(read_member(court, layout.EVENTS))
        last = [line for line in events if _type(line) == "attestation"][-1]
        body = last["body"]
        assert isinstance(body, dict)
        envelope = layout.envelope_path(str(body["envelopeSha256"]))

        def change(name: str, data: bytes) -> bytes | None:
            if name == envelope:
                return None
            if name == layout.EVENTS:
                return _dump([line for line in events if line is not last])
            return data

        report = bundles.verify(bundles.tamper(court, change=change, resign=True))
        assert report.exit is Exit.FAILED
        assert "verdict_mismatch" in codes(report)

    def test_an_envelope_missing_for_its_event(self, bundles: Bundles, court: Path) -> None:
        envelope = next(n for n in zipfile.ZipFile(court).namelist()
                        if n.startswith(layout.ENVELOPES))
        report = bundles.verify(bundles.tamper(
            court, change=lambda n, d: None if n == envelope else d, resign=True))
        assert report.exit is Exit.FAILED
        assert "envelope" in codes(report)

    @pytest.mark.parametrize("kept", [checks.KEPT_PAYLOADS, 0], ids=["kept", "read-again"])
    def test_each_statement_signature_is_verified_once(
            self, bundles: Bundles, court: Path, monkeypatch: pytest.MonkeyPatch,
            kept: int) -> None:
        """The bundle's own check verifies each envelope, and the replay does not verify the
        same bytes with the same key again (regression: every envelope was verified twice,
        about 1.5 s at 1,000,000 deleted items) — whether it was handed the payload or
        reads the envelope again (past the bound on kept payloads)."""
        monkeypatch.setattr(checks, "KEPT_PAYLOADS", kept)
        real_verify = dsse.verify
        payloads: Counter[bytes] = Counter()

        def counted(envelope: dsse.Envelope, *args: Any, **kwargs: Any) -> Any:
            payloads[envelope.payload] += 1
            return real_verify(envelope, *args, **kwargs)

        monkeypatch.setattr(dsse, "verify", counted)
        report = bundles.verify(court)
        assert (report.exit, report.rederive_ran) == (Exit.VERIFIED, True)
        with zipfile.ZipFile(court) as zf:
            statements = [dsse.Envelope.from_json(zf.read(n)).payload for n in zf.namelist()
                          if n.startswith(layout.ENVELOPES)]
        assert len(statements) >= 2
        assert [payloads[p] for p in statements] == [1] * len(statements)


class TestKeys:
    def test_an_agent_key_swapped(self, bundles: Bundles, court: Path) -> None:
        """The agent's registration carries another key: its leaf no longer is the
        logged one."""
        other = keys.generate()

        def change(name: str, data: bytes) -> bytes:
            if name != layout.KEYS:
                return data
            lines = _lines(data)
            for line in lines:
                leaf = json.loads(b64decode(str(line["leaf"])))
                if leaf["event"]["subjectType"] == "agent":
                    leaf["event"]["publicKey"] = b64encode(keys.raw_public(other.public_key()))
                    leaf["event"]["keyId"] = keys.key_id(other.public_key())
                    from deletion_audit.core.canonical import canonical_json

                    line["leaf"] = b64encode(canonical_json(leaf))
            return _dump(lines)

        report = bundles.verify(bundles.tamper(court, change=change, resign=True))
        assert report.exit is Exit.FAILED
        assert "inclusion_proof" in codes(report)
        assert "key_registration" in codes(report)

    def test_the_service_key_registration_removed(self, bundles: Bundles, court: Path) -> None:
        def change(name: str, data: bytes) -> bytes:
            if name != layout.KEYS:
                return data
            return _dump([line for line in _lines(data) if json.loads(
                b64decode(str(line["leaf"])))["event"].get("subjectType") != "service"])

        report = bundles.verify(bundles.tamper(court, change=change, resign=True))
        assert report.exit is Exit.FAILED
        assert {"key_registration", "index_signature"} <= codes(report)


class TestVerdict:
    def test_a_verdict_signed_by_someone_else(self, bundles: Bundles, court: Path) -> None:
        from deletion_audit.core import dsse

        original = dsse.Envelope.from_json(read_member(court, layout.VERDICT))
        forged = dsse.sign(original.payload, original.payload_type, keys.generate()).to_json()
        report = bundles.verify(bundles.tamper(
            court, change=lambda n, d: forged if n == layout.VERDICT else d, resign=True))
        assert report.exit is Exit.FAILED
        assert "verdict" in codes(report)


class TestAnchors:
    def test_no_anchor(self, bundles: Bundles, court: Path) -> None:
        report = bundles.verify(court, Anchor())
        assert report.exit is Exit.CANNOT_VERIFY
        assert codes(report) == {"no_anchor"}

    def test_not_a_zip(self, bundles: Bundles, tmp_path: Path) -> None:
        path = tmp_path / "bundle.zip"
        path.write_bytes(b"PK\x03\x04 this is not a zip")
        report = bundles.verify(path)
        assert report.exit is Exit.CANNOT_VERIFY
        assert codes(report) == {"unreadable"}

    def test_a_missing_file(self, bundles: Bundles, tmp_path: Path) -> None:
        report = bundles.verify(tmp_path / "nothing.zip")
        assert report.exit is Exit.CANNOT_VERIFY
        assert codes(report) == {"unreadable"}

    def test_a_malformed_log_key(self, bundles: Bundles, court: Path) -> None:
        report = bundles.verify(court, Anchor(log_key="not a key"))
        assert report.exit is Exit.CANNOT_VERIFY
        assert codes(report) == {"no_anchor"}

    def test_a_checkpoint_kept_earlier(self, bundles: Bundles) -> None:
        kept = bundles.checkpoint()
        deleted_and_clean(bundles.case)
        path = bundles.export(Tier.COURT)
        assert parse_checkpoint_text(kept).size < parse_checkpoint_text(
            read_member(path, layout.CHECKPOINT).decode()).size
        report = bundles.verify(path, Anchor(trusted_checkpoint=kept))
        assert report.problems == []
        assert report.exit is Exit.VERIFIED
        assert report.anchored_by == "trusted-checkpoint"

    def test_the_kept_checkpoint_is_the_bundles_own(self, bundles: Bundles,
                                                      court: Path) -> None:
        kept = read_member(court, layout.CHECKPOINT).decode()
        report = bundles.verify(court, Anchor(trusted_checkpoint=kept))
        assert report.exit is Exit.VERIFIED

    def test_a_kept_checkpoint_of_a_forked_log(self, bundles: Bundles) -> None:
        """A checkpoint this log's key signed over another tree: the bundle's log does not
        extend it."""
        kept = parse_checkpoint_text(bundles.checkpoint())
        deleted_and_clean(bundles.case)
        path = bundles.export(Tier.COURT)
        fork = sign_checkpoint(Checkpoint(kept.origin, kept.size, bytes(32)),
                               bundles.env.ctx.keys.log_signer)
        report = bundles.verify(path, Anchor(trusted_checkpoint=fork))
        assert report.exit is Exit.FAILED
        assert "consistency" in codes(report)

    def test_a_kept_checkpoint_of_another_log(self, bundles: Bundles, court: Path) -> None:
        other = NoteSigner(bundles.env.ctx.keys.origin, keys.generate())
        kept = sign_checkpoint(Checkpoint(other.name, 3, bytes(32)), other)
        report = bundles.verify(court, Anchor(trusted_checkpoint=kept))
        assert report.exit is Exit.FAILED
        assert "anchor_mismatch" in codes(report)

    def test_a_kept_checkpoint_newer_than_the_bundle(self, bundles: Bundles,
                                                       court: Path) -> None:
        bundles.case.scan(minutes=5)
        bundles.env.integrate()
        report = bundles.verify(court, Anchor(trusted_checkpoint=bundles.checkpoint()))
        assert report.exit is Exit.CANNOT_VERIFY
        assert codes(report) == {"anchor_newer"}


class TestManifest:
    @pytest.mark.parametrize("in_a_worker", [False, True], ids=["inline", "worker"])
    def test_the_manifest_file_altered(self, bundles: Bundles, court: Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       in_a_worker: bool) -> None:
        """One size changed in the file, the index re-signed: the file is no longer the
        one the examiner signed (checked in a worker process for a large file)."""
        if in_a_worker:
            monkeypatch.setattr(manifest_check, "PARALLEL_FROM_BYTES", 0)

        def change(name: str, data: bytes) -> bytes:
            if name != layout.MANIFEST:
                return data
            lines = data.split(b"\n")
            lines[2] = lines[2].replace(b'"size":', b'"size":1', 1)
            return b"\n".join(lines)

        report = bundles.verify(bundles.tamper(court, change=change, resign=True))
        assert report.exit is Exit.FAILED
        assert "manifest" in codes(report)
        assert any("digest" in p.message for p in report.problems if p.code == "manifest")

    def test_a_large_manifest_checked_in_a_worker_verifies(
            self, bundles: Bundles, court: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(manifest_check, "PARALLEL_FROM_BYTES", 0)
        report = bundles.verify(court)
        assert report.problems == []
        assert report.counts["items"] == 6


    @pytest.mark.parametrize("in_a_worker", [False, True], ids=["inline", "worker"])
    def test_the_replay_reads_the_items_of_the_manifests_own_pass(
            self, bundles: Bundles, court: Path, monkeypatch: pytest.MonkeyPatch,
            in_a_worker: bool) -> None:
        """The file is read once: the pass that checks it loads the replay's items, and the
        replay does not read the file again (regression: it parsed it a second time)."""
        if in_a_worker:
            monkeypatch.setattr(manifest_check, "PARALLEL_FROM_BYTES", 0)

        def no_second_read(*_args: object, **_kwargs: object) -> None:
            raise AssertionError("the replay read the manifest file itself")

        monkeypatch.setattr("deletion_audit.verdicts.replay_store.load_items", no_second_read)
        report = bundles.verify(court)
        assert report.problems == []
        assert report.rederive_ran
        assert report.rederived == report.verdict
        assert report.counts["items"] == 6

    @pytest.mark.parametrize("in_a_worker", [False, True], ids=["inline", "worker"])
    def test_a_damaged_manifest_member_cannot_be_verified(
            self, bundles: Bundles, court: Path, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch, in_a_worker: bool) -> None:
        """A byte flipped in the manifest's compressed data: the zip, not the evidence, is
        broken (cannot verify), also when the pass runs in a worker."""
        if in_a_worker:
            monkeypatch.setattr(manifest_check, "PARALLEL_FROM_BYTES", 0)
        with zipfile.ZipFile(court) as zf:
            info = zf.getinfo(layout.MANIFEST)
        raw = court.read_bytes()
        # The local header: 30 bytes, the name and the extra field, then the data.
        name_len = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little")
        extra_len = int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30],
                                   "little")
        start = info.header_offset + 30 + name_len + extra_len
        damaged = tmp_path / "damaged.zip"
        damaged.write_bytes(_flip(raw, start + info.compress_size // 2))
        report = bundles.verify(damaged)
        assert report.exit is Exit.CANNOT_VERIFY
        assert "unreadable" in codes(report)
        assert any(layout.MANIFEST in p.message for p in report.problems)


class TestConsistencyWindow:
    def test_a_checkpoint_older_than_the_window_cannot_anchor_by_default(
            self, bundles: Bundles, monkeypatch: pytest.MonkeyPatch) -> None:
        kept = bundles.checkpoint()
        deleted_and_clean(bundles.case)
        monkeypatch.setattr(export, "CONSISTENCY_CHECKPOINTS", 1)
        path = bundles.export(Tier.PUBLIC)
        report = bundles.verify(path, Anchor(trusted_checkpoint=kept))
        assert report.exit is Exit.CANNOT_VERIFY
        assert codes(report) == {"no_consistency_proof"}
        # Asked for by size, the proof is there.
        size = parse_checkpoint_text(kept).size
        path = bundles.export(Tier.PUBLIC, name="asked.zip", consistent_with=(size,))
        report = bundles.verify(path, Anchor(trusted_checkpoint=kept))
        assert report.problems == []
        assert report.exit is Exit.VERIFIED


class TestVerdictProof:
    def test_the_verdicts_tlog_proof_checks_with_the_core_verifier(
            self, bundles: Bundles, court: Path) -> None:
        from deletion_audit.core.tlog_proof import parse_tlog_proof

        proof = parse_tlog_proof(read_member(court, layout.VERDICT_PROOF).decode())
        leaf = read_member(court, layout.VERDICT_LEAF)
        checkpoint = proof.verify(leaf, bundles.env.ctx.keys.verifier)
        assert checkpoint.size == bundles.verify(court).log_size
        assert decode_leaf(leaf).type == "verdict"

    def test_a_tlog_proof_of_another_event(self, bundles: Bundles, court: Path) -> None:
        events = _lines(read_member(court, layout.EVENTS))
        other = next(line for line in events if _type(line) == "summary")
        from deletion_audit.core.tlog_proof import TlogProof, parse_tlog_proof

        original = parse_tlog_proof(read_member(court, layout.VERDICT_PROOF).decode())
        forged = TlogProof(index=int(str(other["index"])), checkpoint=original.checkpoint,
                           hashes=tuple(b64decode(str(h)) for h in other["proof"]))  # type: ignore[attr-defined]

        def change(name: str, data: bytes) -> bytes:
            if name == layout.VERDICT_PROOF:
                return forged.text().encode()
            if name == layout.VERDICT_LEAF:
                return b64decode(str(other["leaf"]))
            return data

        report = bundles.verify(bundles.tamper(court, change=change, resign=True))
        assert report.exit is Exit.FAILED
        assert "verdict" in codes(report)


class TestDamagedZip:
    def test_bytes_flipped_anywhere_in_the_zip_never_crash(
            self, bundles: Bundles, court: Path, tmp_path: Path) -> None:
        """Damage to the container itself (headers, compressed streams, the central
        directory) is 'cannot verify' or 'fails', never a crash; it passes only where the
        flipped byte is container metadata (a timestamp) and every file reads the same."""
        raw = court.read_bytes()
        with zipfile.ZipFile(court) as zf:
            original = {n: zf.read(n) for n in zf.namelist()}
        for n, at in enumerate(range(0, len(raw), max(1, len(raw) // 60))):
            damaged = tmp_path / f"damaged-{n}.zip"
            damaged.write_bytes(_flip(raw, at))
            report = bundles.verify(damaged)
            if report.exit is Exit.VERIFIED:
                with zipfile.ZipFile(damaged) as zf:
                    assert {m: zf.read(m) for m in zf.namelist()} == original, at
                continue
            assert report.exit in (Exit.FAILED, Exit.CANNOT_VERIFY), (at, report.problems)
            assert report.problems, at

    def test_a_member_reads_the_same_through_isa_l(self, court: Path) -> None:
        """The verifier inflates with ISA-L when installed (as the project installs it);
        every member reads exactly as zipfile's own zlib reads it."""
        with zipfile.ZipFile(court) as zf:
            for name in zf.namelist():
                with reading.open_member(zf, name) as member:
                    assert "isal" in type(getattr(member, "_decompressor", None)).__module__
                    assert member.read() == zf.read(name), name
