"""Every agent monitors the log: a checkpoint inconsistent with the one it kept is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from deletion_audit.core import keys
from deletion_audit.core.checkpoint import Checkpoint, sign_checkpoint
from deletion_audit.core.merkle import MemoryTree, leaf_hash
from deletion_audit.core.note import NoteSigner
from deletion_audit_agent.client import AgentClient, Backoff
from deletion_audit_agent.monitor import LogForkError, observe
from deletion_audit_agent.state import State

SIGNER = NoteSigner("audit.test/log", keys.generate())
VKEY = SIGNER.verifier.vkey()


def tree(n: int, tag: str = "") -> MemoryTree:
    t = MemoryTree()
    for i in range(n):
        t.append(leaf_hash(f"{tag if i >= 3 else ''}{i}".encode()))
    return t


def note(t: MemoryTree, size: int) -> str:
    return sign_checkpoint(Checkpoint(SIGNER.name, size, t.root(size)), SIGNER)


def served(t: MemoryTree) -> AgentClient:
    def handler(request: httpx.Request) -> httpx.Response:
        q = parse_qs(request.url.query.decode())
        first, second = int(q["first"][0]), int(q["second"][0])
        return httpx.Response(200, json={"first": first, "second": second, "hashes": [
            h.hex() for h in t.consistency_proof(first, second)]})

    return AgentClient("http://127.0.0.1:1", backoff=Backoff(base=0, attempts=1),
                       transport=httpx.MockTransport(handler))


@pytest.fixture
def state(tmp_path: Path) -> Iterator[State]:
    s = State(tmp_path)
    yield s
    s.close()


class TestObserve:
    def test_growth_consistent_with_the_kept_checkpoint_is_kept(self, state: State) -> None:
        honest = tree(9)
        observe(state, served(honest), note(honest, 4), VKEY)
        seen = observe(state, served(honest), note(honest, 9), VKEY)
        assert seen.size == 9
        assert state.get("checkpoint") == note(honest, 9)

    def test_an_older_but_consistent_checkpoint_is_accepted_and_not_kept(
        self, state: State
    ) -> None:
        honest = tree(9)
        observe(state, served(honest), note(honest, 9), VKEY)
        observe(state, served(honest), note(honest, 5), VKEY)
        assert state.get("checkpoint") == note(honest, 9)

    def test_a_forked_log_is_refused(self, state: State) -> None:
        honest, forked = tree(9), tree(12, tag="x")
        observe(state, served(honest), note(honest, 9), VKEY)
        with pytest.raises(LogForkError, match="not consistent"):
            observe(state, served(forked), note(forked, 12), VKEY)
        assert state.get("checkpoint") == note(honest, 9)

    def test_two_roots_for_one_size_are_refused(self, state: State) -> None:
        honest, forked = tree(9), tree(9, tag="x")
        observe(state, served(honest), note(honest, 9), VKEY)
        with pytest.raises(LogForkError, match="different roots"):
            observe(state, served(forked), note(forked, 9), VKEY)

    def test_a_checkpoint_of_another_key_is_refused(self, state: State) -> None:
        other = NoteSigner("audit.test/log", keys.generate())
        honest = tree(3)
        forged = sign_checkpoint(Checkpoint(other.name, 3, honest.root()), other)
        with pytest.raises(LogForkError, match="does not verify"):
            observe(state, served(honest), forged, VKEY)
