"""The scanning core: the streaming root, the statements' shape, and proof checking."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deletion_audit.core import dsse
from deletion_audit.core.manifest import ManifestEntry, entry_leaf
from deletion_audit.core.merkle import MemoryTree, leaf_hash, root_from_leaf_hashes
from deletion_audit.core.predicates import ScanCounts, ScanPredicate, expect_predicate
from deletion_audit.core.statements import parse_statement
from deletion_audit_agent.scanning import (
    ManifestRef,
    ProofCheckError,
    check_confirmation,
    confirm,
    path_hash,
    tally,
)
from deletion_audit_agent.sources.base import Hashed, Skipped
from deletion_audit_agent.state import State
from deletion_audit_agent.statements import Chain, ScanReport, scan_builders

T = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)


def digest(n: int) -> bytes:
    return hashlib.sha256(str(n).encode()).digest()


class Manifest:
    """A small manifest and the server's honest confirmation of it."""

    def __init__(self, items: list[bytes]) -> None:
        entries = sorted((ManifestEntry(digest=d.hex(), kind="image", size=10) for d in items),
                         key=lambda e: e.digest)
        self.leaves = [entry_leaf(e) for e in entries]
        self.tree = MemoryTree()
        for leaf in self.leaves:
            self.tree.append(leaf_hash(leaf))
        self.ref = ManifestRef(id=7, root=self.tree.root(), count=len(entries))

    def answer(self, digests: list[str]) -> dict[str, Any]:
        hits = []
        for index, leaf in enumerate(self.leaves):
            if leaf[:32].hex() in digests:
                hits.append({"digest": leaf[:32].hex(), "index": index, "leaf": leaf.hex(),
                             "proof": [p.hex() for p in self.tree.inclusion_proof(index)]})
        return {"manifest_id": 7, "size": self.ref.count, "root": self.ref.root.hex(),
                "hits": hits}


def never(_digest: bytes) -> bool:
    return False


class TestTally:
    def test_root_is_rfc6962_over_digests_in_scan_order(self) -> None:
        seen = [Hashed(f"/f{i}", digest(i), i) for i in range(7)]
        out = tally(seen, never, b"k")
        assert out.root == root_from_leaf_hashes([leaf_hash(digest(i)) for i in range(7)]).hex()
        assert (out.objects, out.hashed, out.hashed_bytes) == (7, 7, 21)

    def test_skips_are_counted_by_reason_with_keyed_path_hashes(self) -> None:
        seen = [Skipped("/srv/张三.jpg", "symlink"), Hashed("/a", digest(1), 1),
                Skipped("/b", "unreadable")]
        out = tally(seen, never, b"secret")
        assert dict(out.skipped) == {"symlink": 1, "unreadable": 1}
        assert out.skipped_path_hashes == [path_hash(b"secret", "/srv/张三.jpg"),
                                           path_hash(b"secret", "/b")]
        assert path_hash(b"other", "/b") != path_hash(b"secret", "/b")

    def test_filter_hits_keep_every_copy(self) -> None:
        seen = [Hashed("/a", digest(1), 1), Hashed("/b", digest(1), 1),
                Hashed("/c", digest(2), 1)]
        out = tally(seen, lambda d: d == digest(1), b"k")
        assert out.candidates == {digest(1): ["/a", "/b"]}


class TestConfirmation:
    manifest = Manifest([digest(i) for i in range(20)])

    def test_honest_answer_is_believed(self) -> None:
        asked = [digest(3), digest(99)]
        present = confirm(asked, self.manifest.ref, self.manifest.answer)
        assert present == {digest(3)}

    def test_a_bad_proof_is_refused(self) -> None:
        answer = self.manifest.answer([digest(3).hex()])
        answer["hits"][0]["proof"][0] = "00" * 32
        with pytest.raises(ProofCheckError, match="does not verify"):
            check_confirmation(answer, self.manifest.ref, {digest(3)})

    def test_a_leaf_of_another_digest_is_refused(self) -> None:
        answer = self.manifest.answer([digest(4).hex()])
        answer["hits"][0]["digest"] = digest(3).hex()
        with pytest.raises(ProofCheckError, match="does not start with it"):
            check_confirmation(answer, self.manifest.ref, {digest(3)})

    def test_a_hit_never_asked_about_is_refused(self) -> None:
        answer = self.manifest.answer([digest(4).hex()])
        with pytest.raises(ProofCheckError, match="not asked"):
            check_confirmation(answer, self.manifest.ref, {digest(3)})

    def test_another_root_is_refused(self) -> None:
        other = ManifestRef(id=7, root=b"\1" * 32, count=self.manifest.ref.count)
        with pytest.raises(ProofCheckError, match="root or size"):
            check_confirmation(self.manifest.answer([]), other, set())


def report(present: int, skipped: int = 0) -> ScanReport:
    return ScanReport(
        scope_id="12", spec_digest="c" * 64, scan_id="scn_1", challenge="nonce-1",
        present=sorted(digest(i).hex() for i in range(present)),
        skipped_path_hashes=["e" * 64] * skipped,
        counts=ScanCounts(objects=present + skipped, hashed=present, hashed_bytes=present,
                          present=present, skipped={"unreadable": skipped} if skipped else {}),
        root="d" * 64, coverage="partial" if skipped else "complete", started_at=T,
        finished_at=T)


class TestScanStatements:
    chain = Chain(case_id="3", agent_id="agt_0123456789abcdef", build_digest="b" * 64)

    def _signed(self, tmp_path: Any, rep: ScanReport) -> list[ScanPredicate]:
        from deletion_audit.core import keys

        key = keys.generate()
        state = State(tmp_path)
        out = []
        for build in scan_builders(key, self.chain, rep):
            item = state.append("scan", "12", build, "t")
            envelope = dsse.from_json(item.envelope)
            verified = dsse.verify(envelope, [key.public_key()])
            statement = parse_statement(verified.payload)
            assert statement.subject[0].name == "scope:12"
            assert statement.subject[0].sha256 == "c" * 64
            out.append(expect_predicate(statement, ScanPredicate))
        state.close()
        return out

    def test_one_part_carries_everything(self, tmp_path: Any) -> None:
        (part,) = self._signed(tmp_path, report(3))
        assert (part.seq, part.prev, part.part, part.last) == (0, None, 1, True)
        assert part.challenge == "nonce-1"
        assert part.coverage == "complete"
        assert part.counts is not None
        assert part.counts.present == 3
        assert part.root == "d" * 64

    def test_past_ten_thousand_digests_it_is_multi_part(self, tmp_path: Any) -> None:
        parts = self._signed(tmp_path, report(10_001, skipped=2))
        assert [(p.part, p.last) for p in parts] == [(1, False), (2, True)]
        assert [len(p.present_digests) for p in parts] == [10_000, 1]
        assert parts[0].counts is None
        assert parts[0].root is None
        assert parts[1].prev is not None
        assert parts[1].seq == parts[0].seq + 1
        assert {p.scan_id for p in parts} == {"scn_1"}
        assert {p.challenge for p in parts} == {"nonce-1"}
        assert parts[1].coverage == "partial"


class TestConfirmationProperties:
    @given(size=st.integers(1, 40), picks=st.sets(st.integers(0, 39), max_size=6),
           flip=st.integers(0, 10_000))
    def test_honest_answers_verify_and_any_flipped_proof_byte_is_refused(
        self, size: int, picks: set[int], flip: int
    ) -> None:
        manifest = Manifest([digest(i) for i in range(size)])
        asked = {digest(i) for i in picks}
        answer = manifest.answer([d.hex() for d in asked])
        in_manifest = {digest(i) for i in range(size)}
        assert check_confirmation(answer, manifest.ref, asked) == asked & in_manifest
        places = [(hit, i) for hit in answer["hits"] for i in range(len(hit["proof"]))]
        if not places:
            return  # a one-item manifest: no proof hashes to tamper with
        hit, index = places[flip % len(places)]
        raw = bytearray(bytes.fromhex(hit["proof"][index]))
        raw[flip % 32] ^= 1 << (flip % 8)
        hit["proof"][index] = raw.hex()
        with pytest.raises(ProofCheckError):
            check_confirmation(answer, manifest.ref, asked)
