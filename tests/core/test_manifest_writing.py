"""The manifest file: the sorting writer, the root fold, the signed statement, speed."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deletion_audit.core import dsse, keys, merkle
from deletion_audit.core import manifest as mf
from deletion_audit.core.manifest._writer import _fold_root
from deletion_audit.core.statements import Statement, Subject, statement_bytes
from tests.support.manifest_lines import (
    CASE,
    CREATED,
    digest_of,
    entries_st,
    entry_obj,
    header_obj,
    manifest_bytes,
    reference_root,
    sorted_entries,
)


class TestWriter:
    def header(self) -> mf.ManifestHeader:
        return mf.ManifestHeader(case=CASE, count=0, created_at=CREATED)

    def entries(self, n: int) -> list[mf.ManifestEntry]:
        return [mf.ManifestEntry(**entry_obj(i)) for i in range(n)]

    def test_sorts_and_sets_the_count(self, tmp_path: Path) -> None:
        path = tmp_path / "m.jsonl"
        written = mf.write_manifest(path, self.header(), reversed(self.entries(20)))
        data = path.read_bytes()
        assert data == manifest_bytes(header_obj(20), sorted_entries(20))
        assert written.summary == mf.validate_manifest(path)
        assert written.summary.root == reference_root(sorted_entries(20))
        assert written.duplicates == 0
        assert written.kinds == {"image": 20}

    def test_accepts_prepared_entries(self, tmp_path: Path) -> None:
        entries = self.entries(9)
        mixed = [mf.prepare_entry(e) if i % 2 else e for i, e in enumerate(entries)]
        a = mf.write_manifest(tmp_path / "a", self.header(), mixed)
        b = mf.write_manifest(tmp_path / "b", self.header(), entries)
        assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()
        assert a.summary == b.summary.__class__(a.summary.header, 9, b.summary.root,
                                                b.summary.sha256)

    def test_duplicates_are_refused_unless_merged(self, tmp_path: Path) -> None:
        entries = self.entries(3)
        again = mf.ManifestEntry(**entry_obj(1, source="store-2"))
        with pytest.raises(mf.ManifestError, match=f"duplicate digest {digest_of(1)}"):
            mf.write_manifest(tmp_path / "m", self.header(), [*entries, again])
        assert not (tmp_path / "m").exists()
        written = mf.write_manifest(tmp_path / "m", self.header(), [*entries, again, again],
                                    merge_duplicates=True)
        assert written.duplicates == 2
        assert written.summary.count == 3
        # The kept one is the entry whose canonical line sorts first: deterministic.
        kept = [e for e in mf.read_manifest(tmp_path / "m") if e.digest == digest_of(1)]
        assert kept == [min(entries[1], again, key=lambda e: e.canonical())]

    def test_spilled_runs_give_the_same_file(self, tmp_path: Path) -> None:
        entries = self.entries(50) + self.entries(5)
        small = mf.write_manifest(tmp_path / "a", self.header(), entries,
                                  merge_duplicates=True, run_size=7)
        whole = mf.write_manifest(tmp_path / "b", self.header(), entries,
                                  merge_duplicates=True)
        assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()
        assert small.summary.root == whole.summary.root
        assert small.duplicates == whole.duplicates == 5
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]

    def test_tallies_kinds_and_people(self, tmp_path: Path) -> None:
        people = ["ab" * 32, "cd" * 32]
        entries = [
            mf.ManifestEntry(**entry_obj(i, kind=mf.KINDS[i % 3], subject=people[i % 2]))
            for i in range(9)
        ] + [mf.ManifestEntry(**entry_obj(20, kind="record", source="db"))]
        for run_size in (4, 1000):
            written = mf.write_manifest(tmp_path / "m", self.header(), entries,
                                        run_size=run_size)
            assert written.kinds == {"image": 3, "video": 3, "record": 4}
            assert written.subjects == 2

    def test_empty_input_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(mf.ManifestError, match="empty manifest"):
            mf.write_manifest(tmp_path / "m", self.header(), [])
        assert list(tmp_path.iterdir()) == []

    def test_a_failing_source_leaves_no_file(self, tmp_path: Path) -> None:
        def entries() -> Any:
            yield from self.entries(3)
            raise OSError("disk gone")

        (tmp_path / "m").write_bytes(b"old")
        with pytest.raises(OSError, match="disk gone"):
            mf.write_manifest(tmp_path / "m", self.header(), entries())
        assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
        assert (tmp_path / "m").read_bytes() == b"old"

    @given(st.lists(entries_st, min_size=1, max_size=40), st.integers(1, 8))
    def test_writer_output_always_reads_back(self, entries: list[mf.ManifestEntry],
                                             run_size: int) -> None:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "m"
            written = mf.write_manifest(path, self.header(), entries, merge_duplicates=True,
                                        run_size=run_size)
            assert mf.validate_manifest(path) == written.summary
            assert written.summary.count + written.duplicates == len(entries)
            assert written.summary.count == len({e.digest for e in entries})


class TestFoldRoot:
    @given(st.integers(0, 70))
    def test_equals_the_rfc6962_tree(self, n: int) -> None:
        leaves = [hashlib.sha256(bytes([i])).digest() for i in range(n)]
        tree = merkle.MemoryTree()
        for leaf in leaves:
            tree.append(leaf)
        assert _fold_root(leaves) == tree.root()


class TestStatement:
    key = keys.generate()
    other = keys.generate()

    def write(self, tmp_path: Path, n: int = 4, key_id: str | None = None) -> Path:
        path = tmp_path / "manifest.jsonl"
        path.write_bytes(manifest_bytes(header_obj(n, examiner_key_id=key_id),
                                        sorted_entries(n)))
        return path

    def sign(self, statement: Statement, key: Any = None) -> dsse.Envelope:
        return dsse.sign(statement_bytes(statement), dsse.IN_TOTO_PAYLOAD_TYPE,
                         key or self.key)

    def test_statement_commits_to_file_header_count_and_root(self, tmp_path: Path) -> None:
        path = self.write(tmp_path, key_id=keys.key_id(self.key))
        statement = mf.manifest_statement(path)
        assert statement.subject == (Subject("manifest.jsonl", {
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}),)
        assert statement.predicate_type == "https://deletion-audit.org/attestation/manifest/v1"
        assert dict(statement.predicate) == {
            "formatName": "deletion-audit-manifest", "formatVersion": 1, "caseNumber": CASE,
            "hashAlgorithm": "sha256", "count": 4,
            "root": reference_root(sorted_entries(4)).hex(), "createdAt": CREATED,
            "examinerKeyId": keys.key_id(self.key),
        }

    def test_null_examiner_key_is_carried_as_null(self, tmp_path: Path) -> None:
        statement = mf.manifest_statement(self.write(tmp_path))
        assert statement.predicate["examinerKeyId"] is None

    def test_verify_passes(self, tmp_path: Path) -> None:
        path = self.write(tmp_path, key_id=keys.key_id(self.key))
        envelope = self.sign(mf.manifest_statement(path))
        result = mf.verify_manifest(path, envelope, [self.other.public_key(),
                                                     self.key.public_key()])
        assert result.key_ids == (keys.key_id(self.key),)
        assert result.summary.count == 4

    def test_tampered_entry_fails_digest_and_root(self, tmp_path: Path) -> None:
        path = self.write(tmp_path)
        envelope = self.sign(mf.manifest_statement(path))
        path.write_bytes(path.read_bytes().replace(b'"size":100', b'"size":900', 1))
        with pytest.raises(mf.ManifestMismatchError) as caught:
            mf.verify_manifest(path, envelope, [self.key.public_key()])
        assert caught.value.checks == ("digest", "root")

    def test_dropped_entry_fails_count(self, tmp_path: Path) -> None:
        path = self.write(tmp_path, n=4)
        envelope = self.sign(mf.manifest_statement(path))
        path.write_bytes(manifest_bytes(header_obj(3), sorted_entries(4)[:3]))
        with pytest.raises(mf.ManifestMismatchError) as caught:
            mf.check_manifest_envelope(path, envelope)
        assert caught.value.checks == ("digest", "count", "root")

    def test_changed_header_fails_header(self, tmp_path: Path) -> None:
        path = self.write(tmp_path)
        envelope = self.sign(mf.manifest_statement(path))
        path.write_bytes(manifest_bytes(header_obj(4, case="（2025）other"),
                                        sorted_entries(4)))
        with pytest.raises(mf.ManifestMismatchError, match=r"header: .* case_number") as caught:
            mf.verify_manifest(path, envelope, [self.key.public_key()])
        assert caught.value.checks == ("digest", "header")

    def test_wrong_key_fails_signature(self, tmp_path: Path) -> None:
        path = self.write(tmp_path)
        envelope = self.sign(mf.manifest_statement(path))
        with pytest.raises(mf.ManifestMismatchError, match="signature: 0 of 1") as caught:
            mf.verify_manifest(path, envelope, [self.other.public_key()])
        assert caught.value.checks == ("signature",)

    def test_header_names_another_examiner(self, tmp_path: Path) -> None:
        path = self.write(tmp_path, key_id=keys.key_id(self.other))
        envelope = self.sign(mf.manifest_statement(path))
        with pytest.raises(mf.ManifestMismatchError, match="examiner-key: the header names"):
            mf.verify_manifest(path, envelope, [self.key.public_key()])

    def test_envelope_of_another_predicate(self, tmp_path: Path) -> None:
        path = self.write(tmp_path)
        statement = Statement((Subject("x", {"sha256": "ab" * 32}),),
                              "https://example.com/other/v1", {})
        with pytest.raises(mf.ManifestMismatchError, match="statement: expected predicate") \
                as caught:
            mf.check_manifest_envelope(path, self.sign(statement))
        assert caught.value.checks == ("statement",)

    def test_malformed_manifest_names_its_line(self, tmp_path: Path) -> None:
        path = self.write(tmp_path)
        envelope = self.sign(mf.manifest_statement(path))
        entries = sorted_entries(4)
        entries[1], entries[2] = entries[2], entries[1]
        path.write_bytes(manifest_bytes(header_obj(4), entries))
        with pytest.raises(mf.ManifestError, match="line 4: out-of-order"):
            mf.verify_manifest(path, envelope, [self.key.public_key()])

    def test_verify_needs_a_key(self, tmp_path: Path) -> None:
        path = self.write(tmp_path)
        with pytest.raises(ValueError, match="at least one public key"):
            mf.verify_manifest(path, self.sign(mf.manifest_statement(path)), [])

    def test_a_summary_read_elsewhere_is_checked_like_the_file(self, tmp_path: Path) -> None:
        """verify_summary: the same checks for a caller that read the file on its own pass."""
        path = self.write(tmp_path, key_id=keys.key_id(self.key))
        envelope = self.sign(mf.manifest_statement(path))
        result = mf.verify_summary(mf.validate_manifest(path), envelope,
                                   [self.key.public_key()])
        assert (result.summary.count, result.key_ids) == (4, (keys.key_id(self.key),))
        path.write_bytes(path.read_bytes().replace(b'"size":100', b'"size":900', 1))
        with pytest.raises(mf.ManifestMismatchError) as caught:
            mf.verify_summary(mf.validate_manifest(path), envelope, [self.other.public_key()])
        assert caught.value.checks == ("digest", "root", "signature")


class TestSpeed:
    def test_reads_many_lines_in_bounded_memory(self, tmp_path: Path) -> None:
        # A regression guard on the import path's shape (streaming, no per-line objects kept),
        # not a benchmark: 200,000 lines must stay within a few MB of Python allocations.
        import tracemalloc

        n = 200_000
        path = tmp_path / "big.jsonl"
        header = mf.ManifestHeader(case=CASE, count=0, created_at=CREATED)
        mf.write_manifest(path, header, (mf.ManifestEntry(
            hashlib.sha256(i.to_bytes(4, "big")).hexdigest(), "record", i) for i in range(n)))
        tracemalloc.start()
        try:
            summary = mf.validate_manifest(path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert summary.count == n
        assert peak < 8 * 1024 * 1024
