"""The outbox: written before sending, numbered without gaps, left only on 201 or into the
dead letters."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from deletion_audit_agent.state import Builder, State


def builder(tag: str) -> Builder:
    def build(seq: int, prev: str | None) -> tuple[bytes, bytes]:
        payload = f"{tag}:{seq}:{prev}".encode()
        return payload, b"envelope of " + payload

    return build


@pytest.fixture
def state(tmp_path: Path) -> Iterator[State]:
    s = State(tmp_path / "state")
    yield s
    s.close()


class TestOutbox:
    def test_statements_chain_by_seq_and_prev(self, state: State) -> None:
        first = state.append("scan", "1", builder("a"), "t")
        second = state.append("scan", "1", builder("b"), "t")
        assert (first.seq, second.seq) == (0, 1)
        assert first.envelope == b"envelope of a:0:None"
        assert second.envelope == f"envelope of b:1:{first.statement_id}".encode()
        assert first.statement_id == hashlib.sha256(b"a:0:None").hexdigest()
        assert [i.seq for i in state.outbox()] == [0, 1]

    def test_a_builder_that_fails_uses_no_number(self, state: State) -> None:
        def broken(_seq: int, _prev: str | None) -> tuple[bytes, bytes]:
            raise RuntimeError("disk full")

        with pytest.raises(RuntimeError):
            state.append("scan", "1", broken, "t")
        assert state.append("scan", "1", builder("a"), "t").seq == 0

    def test_sent_leaves_the_outbox_and_the_chain_goes_on(self, state: State) -> None:
        item = state.append("scan", "1", builder("a"), "t")
        state.mark_sent(item, {"statement_id": item.statement_id})
        assert state.outbox() == []
        assert state.sent_count() == 1
        assert state.append("scan", "1", builder("b"), "t").seq == 1

    def test_the_newest_receipt_is_at_hand(self, state: State) -> None:
        assert state.last_receipt() is None
        for tag in ("a", "b"):
            item = state.append("scan", "1", builder(tag), "t")
            state.mark_sent(item, {"statement_id": item.statement_id, "leaf_hash": tag * 64})
        assert state.last_receipt() == {"statement_id": item.statement_id,
                                        "leaf_hash": "b" * 64}

    def test_a_refusal_becomes_a_dead_letter(self, state: State) -> None:
        item = state.append("scan", "1", builder("a"), "t")
        state.dead_letter(item, 422, "stale_scope", "scope changed", "t")
        assert state.outbox() == []
        (dead,) = state.dead_letters()
        assert (dead.seq, dead.status, dead.code) == (0, 422, "stale_scope")

    def test_survives_reopening(self, tmp_path: Path) -> None:
        first = State(tmp_path / "s")
        item = first.append("scan", "1", builder("a"), "t")
        first.close()
        again = State(tmp_path / "s")
        assert again.outbox() == [item]
        assert again.append("scan", "1", builder("b"), "t").seq == 1
        again.close()

    def test_the_state_file_is_private(self, state: State) -> None:
        assert (state.dir / "state.sqlite3").stat().st_mode & 0o077 == 0


class TestDeletionIntents:
    def test_a_noted_removal_resolves_its_intent_in_the_same_step(self, state: State) -> None:
        state.intend_deletion("1", "aa" * 32, ["/a", "/b"], "unlink", "logical", "t0")
        assert [i.locator for i in state.deletion_intents()["1"]] == ["/a", "/b"]
        state.note_deleted("1", "aa" * 32, "unlink", "logical", "t1", locator="/a")
        state.drop_intent("1", "/b")
        assert state.deletion_intents() == {}
        (pending,) = state.pending_deletions()["1"]
        assert (pending.digest, pending.deleted_at) == ("aa" * 32, "t1")

    def test_intents_survive_reopening(self, tmp_path: Path) -> None:
        first = State(tmp_path / "s")
        first.intend_deletion("2", "bb" * 32, ["[7]"], "sql-delete", "logical", "t0")
        first.close()
        again = State(tmp_path / "s")
        (intent,) = again.deletion_intents()["2"]
        assert (intent.digest, intent.method, intent.noted_at) == ("bb" * 32, "sql-delete",
                                                                    "t0")
        again.close()


class TestPendingDeletions:
    def test_attesting_removes_them_in_the_same_step(self, state: State) -> None:
        state.note_deleted("1", "aa" * 32, "unlink", "logical", "2026-03-02T01:30:00Z")
        state.note_deleted("1", "aa" * 32, "unlink", "logical", "2026-03-02T01:31:00Z")
        assert len(state.pending_deletions()["1"]) == 1
        item = state.append_deletion("1", ["aa" * 32], builder("d"), "t")
        assert item.kind == "deletion"
        assert state.pending_deletions() == {}
