"""The manifest file: entries, header, and the streaming reader with every refusal."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deletion_audit.core import manifest as mf
from deletion_audit.core import merkle
from deletion_audit.core.errors import FormatError
from deletion_audit.core.manifest._format import ENTRY_LINE
from tests.support.manifest_lines import (
    CASE,
    CREATED,
    digest_of,
    entries_st,
    entry_obj,
    expect_error,
    header_obj,
    jcs,
    manifest_bytes,
    reference_root,
    sorted_entries,
)


class TestEntry:
    @given(entries_st)
    def test_fast_rendering_is_jcs(self, entry: mf.ManifestEntry) -> None:
        assert entry.canonical() == jcs(entry.to_json_dict())

    @given(entries_st)
    def test_every_canonical_valid_entry_takes_the_fast_path(self, entry: mf.ManifestEntry) -> None:
        # Guards the reader's shortcut: a valid canonical line must never reach the slow
        # diagnosis, which refuses everything that gets there.
        assert ENTRY_LINE.fullmatch(jcs(entry.to_json_dict())) is not None

    @given(entries_st)
    def test_leaf_is_digest_then_hash_of_the_rest(self, entry: mf.ManifestEntry) -> None:
        rest = {k: v for k, v in entry.to_json_dict().items() if k != "digest"}
        leaf = mf.entry_leaf(entry)
        assert len(leaf) == 64
        assert leaf == bytes.fromhex(entry.digest) + hashlib.sha256(jcs(rest)).digest()
        line, leaf_hash = mf.prepare_entry(entry)
        assert line == jcs(entry.to_json_dict()) + b"\n"
        assert leaf_hash == merkle.leaf_hash(leaf)

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"digest": "AB" * 32}, "digest has bad hex"),
            ({"digest": "ab" * 31}, "digest has wrong length"),
            ({"kind": "photo"}, "unknown kind 'photo'"),
            ({"size": -1}, "size must not be negative"),
            ({"size": True}, "size must be an integer"),
            ({"size": 2**53}, "size is larger than"),
            ({"source": "a b"}, "source may hold only"),
            ({"source": "x" * 129}, "source must be 1 to 128"),
            ({"subject": "xyz"}, "subject has wrong length"),
            ({"pdq": 5}, "pdq must be a string"),
        ],
    )
    def test_invalid_values_are_refused(self, changes: dict[str, Any], message: str) -> None:
        with pytest.raises(FormatError, match=message):
            mf.ManifestEntry(**entry_obj(1, **changes))

    @given(entries_st)
    def test_prepare_values_equals_prepare_entry(self, entry: mf.ManifestEntry) -> None:
        assert mf.prepare_values(entry.digest, entry.kind, entry.size, entry.subject,
                                 entry.pdq, entry.source) == mf.prepare_entry(entry)

    def test_prepare_values_checks_like_the_entry(self) -> None:
        with pytest.raises(FormatError, match="unknown kind 'photo'"):
            mf.prepare_values(digest_of(1), "photo", 5)
        with pytest.raises(FormatError, match="source may hold only"):
            mf.prepare_values(digest_of(1), "image", 5, source="a b")

    def test_entries_are_frozen(self) -> None:
        entry = mf.ManifestEntry(**entry_obj(1))
        with pytest.raises(AttributeError):
            entry.size = 2  # type: ignore[misc]


class TestHeader:
    def test_canonical_line(self) -> None:
        header = mf.ManifestHeader(case=CASE, count=3, created_at=CREATED)
        assert header.canonical() == jcs(header_obj(3))

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"case": ""}, "case must be a non-blank string"),
            ({"created_at": "2026-03-02T01:30:00+08:00"}, "created_at must be a UTC time"),
            ({"created_at": "2026-02-30T01:30:00Z"}, "not a real date"),
            ({"examiner_key_id": "ab"}, "examiner_key_id has wrong length"),
            ({"count": -1}, "count must be a non-negative integer"),
        ],
    )
    def test_invalid_values_are_refused(self, changes: dict[str, Any], message: str) -> None:
        fields = {"case": CASE, "count": 1, "created_at": CREATED, **changes}
        with pytest.raises(FormatError, match=message):
            mf.ManifestHeader(**fields)

    def test_created_at_is_utc_whole_seconds(self) -> None:
        from datetime import UTC, datetime, timedelta, timezone

        beijing = timezone(timedelta(hours=8))
        value = datetime(2026, 3, 2, 9, 30, 5, 123456, tzinfo=beijing)
        assert mf.format_created_at(value) == "2026-03-02T01:30:05Z"
        with pytest.raises(ValueError, match="timezone-aware"):
            mf.format_created_at(datetime(2026, 3, 2))  # noqa: DTZ001 - the error under test
        assert mf.format_created_at(datetime(2026, 3, 2, tzinfo=UTC)) == "2026-03-02T00:00:00Z"


class TestReader:
    def test_roundtrip_summary(self) -> None:
        entries = sorted_entries(5)
        data = manifest_bytes(header_obj(5), entries)
        with mf.read_manifest(io.BytesIO(data)) as reader:
            assert reader.header == mf.ManifestHeader(CASE, 5, CREATED, None)
            got = list(reader)
            summary = reader.summary
        assert [e.to_json_dict() for e in got] == entries
        assert summary.count == 5
        assert summary.sha256 == hashlib.sha256(data).hexdigest()
        assert summary.root == reference_root(entries)

    def test_records_carry_rfc6962_leaf_hashes(self) -> None:
        entries = sorted_entries(7)
        reader = mf.read_manifest(io.BytesIO(manifest_bytes(header_obj(7), entries)))
        tree = merkle.MemoryTree()
        for entry, leaf_hash in reader.records():
            assert leaf_hash == merkle.leaf_hash(mf.entry_leaf(entry))
            tree.append(leaf_hash)
        assert reader.summary.root == tree.root()
        # The leaves support inclusion proofs to the committed root (what `confirm` sends).
        proof = tree.inclusion_proof(3)
        merkle.verify_inclusion(tree.nodes[(0, 3)], 3, 7, proof, reader.summary.root)

    def test_optional_fields_roundtrip(self) -> None:
        entries = sorted(
            [entry_obj(1, subject="ab" * 32, pdq="cd" * 32, source="store-143:cam/22"),
             entry_obj(2, kind="record", size=0), entry_obj(3, source="A.b_c")],
            key=lambda e: e["digest"],
        )
        reader = mf.read_manifest(io.BytesIO(manifest_bytes(header_obj(3), entries)))
        assert [e.to_json_dict() for e in reader] == entries

    def test_reads_from_a_path_and_closes_it(self, tmp_path: Path) -> None:
        path = tmp_path / "m.jsonl"
        path.write_bytes(manifest_bytes(header_obj(2), sorted_entries(2)))
        reader = mf.read_manifest(path)
        assert reader.read_all().count == 2
        assert reader._stream.closed

    def test_summary_only_at_the_end(self) -> None:
        reader = mf.read_manifest(io.BytesIO(manifest_bytes(header_obj(2), sorted_entries(2))))
        with pytest.raises(RuntimeError, match="not been read to its end"):
            _ = reader.summary
        reader.read_all()
        with pytest.raises(RuntimeError, match="only once"):
            list(reader)

    def test_lines_split_across_reads(self) -> None:
        # Pipes and sockets return short reads: a line may arrive in pieces.
        data = manifest_bytes(header_obj(40), sorted_entries(40))

        class Trickle(io.RawIOBase):
            def __init__(self) -> None:
                self.pos = 0

            def readable(self) -> bool:
                return True

            def read(self, size: int = -1) -> bytes:
                chunk = data[self.pos:self.pos + 7]
                self.pos += len(chunk)
                return chunk

        summary = mf.validate_manifest(Trickle())  # type: ignore[arg-type]
        assert summary.sha256 == hashlib.sha256(data).hexdigest()
        assert summary.count == 40

    @given(st.lists(entries_st, min_size=1, max_size=30, unique_by=lambda e: e.digest))
    def test_any_valid_manifest_reads_back(self, entries: list[mf.ManifestEntry]) -> None:
        ordered = sorted((e.to_json_dict() for e in entries), key=lambda e: e["digest"])
        data = manifest_bytes(header_obj(len(ordered)), ordered)
        reader = mf.read_manifest(io.BytesIO(data))
        assert [e.to_json_dict() for e in reader] == ordered
        assert reader.summary.root == reference_root(ordered)

    @given(st.data())
    def test_an_accepted_file_is_exactly_canonical(self, data: st.DataObject) -> None:
        # Whatever bytes a mutation leaves, the reader either refuses them with a line
        # number or accepts a file that re-renders byte for byte: no second spelling of a
        # manifest (and so of its signed digest) exists.
        raw = bytearray(manifest_bytes(header_obj(3), sorted_entries(3)))
        for _ in range(data.draw(st.integers(1, 3))):
            pos = data.draw(st.integers(0, len(raw) - 1))
            raw[pos] = data.draw(st.sampled_from(b' "{},:0aAf9\n\r\\-.xz'))
        problem: mf.ManifestError | None = None
        try:
            reader = mf.read_manifest(io.BytesIO(bytes(raw)))
            entries = list(reader)
        except mf.ManifestError as exc:
            problem = exc
        if problem is not None:
            assert problem.line is not None
            assert problem.line >= 1
            return
        rebuilt = reader.header.canonical() + b"\n" + b"".join(
            e.canonical() + b"\n" for e in entries)
        assert rebuilt == bytes(raw)


class TestReaderErrors:
    """Every way a manifest can be wrong names its line and the problem."""

    def test_bad_json(self) -> None:
        entries = [jcs(e) for e in sorted_entries(3)]
        entries[1] = entries[1][:40]
        data = jcs(header_obj(3)) + b"\n" + b"\n".join(entries) + b"\n"
        expect_error(data, 3, "bad JSON")

    def test_not_utf8(self) -> None:
        data = jcs(header_obj(1)) + b'\n{"digest":"\xff"}\n'
        expect_error(data, 2, "bad JSON: entry is not UTF-8")

    def test_entry_not_canonical_whitespace(self) -> None:
        entries = sorted_entries(2)
        data = (jcs(header_obj(2)) + b"\n" + jcs(entries[0]) + b"\n"
                + json.dumps(entries[1]).encode() + b"\n")
        expect_error(data, 3, "entry is not in canonical form")

    def test_entry_not_canonical_key_order(self) -> None:
        entry = sorted_entries(1)[0]
        line = json.dumps({"size": entry["size"], "digest": entry["digest"],
                           "kind": entry["kind"]}, separators=(",", ":")).encode()
        expect_error(jcs(header_obj(1)) + b"\n" + line + b"\n", 2, "not in canonical form")

    def test_entry_not_canonical_number(self) -> None:
        entry = sorted_entries(1)[0]
        line = jcs(entry).replace(b'"size":1', b'"size":1.0e0')
        expect_error(jcs(header_obj(1)) + b"\n" + line + b"\n", 2, "size must be an integer")

    def test_header_not_canonical(self) -> None:
        data = json.dumps(header_obj(1)).encode() + b"\n" + jcs(sorted_entries(1)[0]) + b"\n"
        expect_error(data, 1, "header is not in canonical form")

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"digest": "AB" * 32}, "digest has bad hex"),
            ({"digest": "zz" * 32}, "digest has bad hex"),
            ({"digest": "ab" * 33}, "digest has wrong length: 66 characters"),
            ({"digest": 12}, "digest must be a string"),
            ({"subject": "ab" * 31}, "subject has wrong length"),
            ({"pdq": "Ab" * 32}, "pdq has bad hex"),
            ({"kind": "photo"}, "unknown kind 'photo'"),
            ({"size": -5}, "size must not be negative"),
            ({"size": "5"}, "size must be an integer"),
            ({"size": 2**53}, "size is larger than 9007199254740991"),
            ({"source": "路径"}, "source may hold only"),
            ({"source": ""}, "source must be 1 to 128"),
            ({"name": "张三.jpg"}, "unknown field 'name' in entry"),
        ],
    )
    def test_bad_entry_values(self, changes: dict[str, Any], message: str) -> None:
        entries = sorted_entries(3)
        entries[2] = {**entries[2], **changes}
        expect_error(manifest_bytes(header_obj(3), entries), 4, message)

    @pytest.mark.parametrize("field", ["digest", "kind", "size"])
    def test_missing_entry_field(self, field: str) -> None:
        entries = sorted_entries(2)
        del entries[0][field]
        expect_error(manifest_bytes(header_obj(2), entries), 2, f"missing field '{field}'")

    def test_entry_not_an_object(self) -> None:
        data = jcs(header_obj(1)) + b"\n[1,2]\n"
        expect_error(data, 2, "entry is not a JSON object")

    def test_duplicate_digest(self) -> None:
        entries = sorted_entries(3)
        entries.insert(2, {**entries[1], "size": 7})
        expect_error(manifest_bytes(header_obj(4), entries), 4, "duplicate digest")

    def test_out_of_order_digest(self) -> None:
        entries = sorted_entries(4)
        entries[1], entries[2] = entries[2], entries[1]
        expect_error(manifest_bytes(header_obj(4), entries), 4, "out-of-order digest")

    def test_more_entries_than_the_count(self) -> None:
        expect_error(manifest_bytes(header_obj(2), sorted_entries(3)), 4,
                     "header count mismatch: more entries than the header's count 2")

    def test_fewer_entries_than_the_count(self) -> None:
        expect_error(manifest_bytes(header_obj(5), sorted_entries(3)), 5,
                     "truncated file: header count mismatch, the header says 5 entries "
                     "but the file has 3")

    def test_last_line_without_newline(self) -> None:
        data = manifest_bytes(header_obj(3), sorted_entries(3))[:-1]
        expect_error(data, 4, "truncated file: the last line has no newline")

    def test_cut_mid_line(self) -> None:
        data = manifest_bytes(header_obj(3), sorted_entries(3))[:-30]
        expect_error(data, 4, "truncated file")

    def test_header_without_newline(self) -> None:
        expect_error(jcs(header_obj(1)), 1, "truncated file")

    def test_empty_manifest_is_refused(self) -> None:
        expect_error(jcs(header_obj(0)) + b"\n", 1, "empty manifest: count 0 is refused")

    def test_empty_file(self) -> None:
        expect_error(b"", 1, "empty file: no header line")

    def test_empty_line(self) -> None:
        entries = sorted_entries(2)
        data = jcs(header_obj(3)) + b"\n" + jcs(entries[0]) + b"\n\n" + jcs(entries[1]) + b"\n"
        expect_error(data, 3, "empty line")

    def test_windows_line_endings(self) -> None:
        data = manifest_bytes(header_obj(2), sorted_entries(2)).replace(b"\n", b"\r\n")
        expect_error(data, 1, "line ends with CR")

    def test_overlong_line(self) -> None:
        entries = sorted_entries(2)
        data = (jcs(header_obj(2)) + b"\n" + jcs(entries[0]) + b"\n"
                + b"x" * (mf.MAX_LINE + 10) + b"\n")
        expect_error(data, 3, "line longer than 4096 bytes")

    def test_overlong_line_is_not_buffered_whole(self) -> None:
        data = jcs(header_obj(1)) + b"\n" + b"y" * (3 * 1024 * 1024)
        expect_error(data, 2, "line longer than 4096 bytes")

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"format": "other"}, "format must be 'deletion-audit-manifest'"),
            ({"version": 2}, "unsupported version 2"),
            ({"version": True}, "unsupported version True"),
            ({"hash": "sm3"}, "hash must be 'sha256'"),
            ({"count": "2"}, "count must be a non-negative integer"),
            ({"created_at": "2026-03-02"}, "created_at must be a UTC time"),
            ({"examiner_key_id": "AB" * 32}, "examiner_key_id has bad hex"),
            ({"case": "  "}, "case must be a non-blank string"),
            ({"signed_by": "x"}, "unknown field 'signed_by' in header"),
        ],
    )
    def test_bad_header(self, changes: dict[str, Any], message: str) -> None:
        header = {**header_obj(2), **changes}
        expect_error(manifest_bytes(header, sorted_entries(2)), 1, message)

    def test_missing_header_field(self) -> None:
        header = header_obj(1)
        del header["examiner_key_id"]
        expect_error(manifest_bytes(header, sorted_entries(1)), 1,
                     "missing field 'examiner_key_id' in header")

    def test_manifest_error_is_a_format_error(self) -> None:
        assert issubclass(mf.ManifestError, FormatError)
