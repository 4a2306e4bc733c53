"""The write side of agents' statements in a server process: the agents' keys read so
far, and a group-commit writer (deletion_audit/group_commit.py) that stores the statements
waiting in one transaction, each isolated from the others.

Per statement, the writer reads the agent's status as it is now (a revocation committed
before the batch began is judged at once), records the request's nonce, and ingests the
statement (ingest.py) — all in the batch's transaction, so a statement is stored with its
nonce, its log leaf and its item rows, or none of them; its answer is given after the
commit. The batch's deletion statements are done set-wise, each agent's first (under
load an agent usually has one statement waiting: it waits for its answer before the
next): one query for their agents' status and nonces, one for what the store holds about
them, one insert per table for those stored. A statement not simply stored there (an
earlier outcome, a refusal, a nonce already used), an agent's later statements
and any other statement take the path of one statement, after them in the same
transaction, in the order queued. Per batch, the nonce table is pruned (at most once a
second), and each case that got a statement is marked once for a new verdict (the verdict
job recomputes a marked case once, however many marks it has).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from deletion_audit import deferred
from deletion_audit.attestations import ingest
from deletion_audit.attestations.known import Outcome
from deletion_audit.db import Database
from deletion_audit.group_commit import PER_JOB, GroupCommit
from deletion_audit.hosts.signatures import (
    AgentKey,
    load_agent_key,
    prune_nonces,
    record_nonces,
    signed_by,
    signed_by_many,
)
from deletion_audit.verdicts.recording import mark_changed

# Bounds the cache of agents' keys (a case has hundreds of agents, an installation a few
# thousand); past it the cache starts again.
MAX_KEYS = 10_000
# PostgreSQL takes concurrent writers (row locks, no database-wide lock). While each
# statement cost about ten round trips, a second writer thread overlapped them with the
# first's (16 agents at once: 1 writer 254/s, 2 writers 282-286/s, 4 263/s, 8 264/s). Set-
# wise, a batch costs about a dozen whatever its size, and one writer makes larger
# batches: 397, 413/s with p99 70-74 ms against 353, 380/s with p99 92-97 ms for two, in
# the same minutes. SQLite has one write lock: one writer.
POSTGRES_WRITERS = 1
PRUNE_SECONDS = 1.0
# Where the set-wise step leaves, in the batch's session, the cases it marked (and when).
_MARKED = "marked_cases"
# Before it takes a batch, the writer lets the server's event loop run what it has ready,
# and then once more what that scheduled: the handlers of requests read meanwhile, which
# verify their statements and queue them one after another on the loop. Those join this
# batch instead of waiting out the whole of it for the next. 16 agents on PostgreSQL, two
# server processes, six alternating runs each (benchmarks.ingest): 530 /s mean
# (488-572), 3.20 ms of the machine's CPU a statement without; 563 /s (510-594), 2.98 ms
# with. The wait is bounded: a loop busy for longer is not waited for.
SETTLE_HOPS = 2
SETTLE_SECONDS = 0.005


class StatementWriter:
    def __init__(self, db: Database, *, writers: int | None = None,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        """``writers``: writer threads (by default one on SQLite, POSTGRES_WRITERS on
        PostgreSQL). ``loop``: the event loop whose handlers submit statements, if any
        (each batch then waits for it to settle: SETTLE_HOPS)."""
        self._db = db
        self._loop = loop
        self._keys: dict[str, AgentKey] = {}
        self._lock = threading.Lock()
        if writers is None:
            writers = POSTGRES_WRITERS if db.dialect == "postgresql" else 1
        self._pruned_at = float("-inf")
        self._commit = GroupCommit(db, writers=writers, prologue=self._prune, epilogue=_mark,
                                   bulk=_ingest_many,
                                   settle=self._settle if loop is not None else None)

    def cached_key(self, public_id: str) -> AgentKey | None:
        return self._keys.get(public_id)

    def load_key(self, public_id: str) -> AgentKey:
        """The agent's key from the database (UnknownAgent if there is none), kept."""
        with self._db.read() as session:
            key = load_agent_key(session, public_id)
        with self._lock:
            if len(self._keys) >= MAX_KEYS:
                self._keys.clear()
            self._keys[public_id] = key
        return key

    def submit(
        self, agent: AgentKey, *, nonce: str, prepared: ingest.Prepared, now: datetime,
        transport_now: datetime,
    ) -> Future[Outcome]:
        """Queue a statement whose request signature verified; ``now`` is the domain
        clock's time of its arrival, ``transport_now`` the real one (the nonce's)."""

        def work(session: Session) -> Outcome:
            who = signed_by(session, agent, nonce, transport_now)
            return ingest.ingest_prepared(session, agent=who, prepared=prepared, now=now,
                                          mark=False)

        return self._commit.submit(work, _Queued(agent, nonce, prepared, now, transport_now))

    def close(self) -> None:
        self._commit.close()

    def _settle(self) -> None:
        """Wait (at most SETTLE_SECONDS) until the loop has run SETTLE_HOPS rounds of
        its ready callbacks."""
        loop = self._loop
        if loop is None:
            return
        settled = threading.Event()

        def hop(left: int) -> None:
            if left > 1:
                loop.call_soon(hop, left - 1)
            else:
                settled.set()

        try:
            loop.call_soon_threadsafe(hop, SETTLE_HOPS)
        except RuntimeError:  # the loop is closed: nothing more will come from it
            return
        settled.wait(SETTLE_SECONDS)

    def _prune(self, session: Session) -> None:
        # At most once a second: a nonce kept a second longer is harmless (the window is
        # ten minutes), and the DELETE cost as much as a statement's own inserts.
        if time.monotonic() - self._pruned_at >= PRUNE_SECONDS:
            prune_nonces(session, datetime.now(UTC))
            self._pruned_at = time.monotonic()


@dataclass(frozen=True)
class _Queued:
    agent: AgentKey
    nonce: str
    prepared: ingest.Prepared
    now: datetime
    transport_now: datetime


def _ingest_many(session: Session, queued: list[_Queued]) -> list[Any]:
    """The batch's deletion statements that are each their agent's first in the batch (and
    whose id is once in it) at once; PER_JOB for the others, which run after them in the
    order queued (an agent's later statements after its first), and for what this does not
    store."""
    sids = [ingest.plain_deletion(q.prepared) for q in queued]
    ids = Counter(sid for sid in sids if sid is not None)
    first: set[int] = set()
    places = []
    for i, (q, sid) in enumerate(zip(queued, sids, strict=True)):
        if q.agent.id not in first:
            first.add(q.agent.id)
            if sid is not None and ids[sid] == 1:
                places.append(i)
    out: list[Any] = [PER_JOB] * len(queued)
    if len(places) < 2:
        return out  # one statement: the path of one is as cheap
    # On PostgreSQL the step's inserts of leaves, events, deletion records, nonces and
    # verdict marks go out as one statement at its end (deferred.py); the attestations'
    # own insert, whose ids those rows carry, and the deleted items' COPY are sent where
    # they are.
    with deferred.gathering(session):
        signed = signed_by_many(session, [(queued[i].agent, queued[i].nonce) for i in places])
        ready = [(i, who) for i, who in zip(places, signed, strict=True) if who is not None]
        outcomes = ingest.ingest_deletions(
            session, [(who, queued[i].prepared, queued[i].now) for i, who in ready])
        kept = []
        for (i, _), outcome in zip(ready, outcomes, strict=True):
            if outcome is not None:
                out[i] = outcome
                kept.append((queued[i].agent.id, queued[i].nonce, queued[i].transport_now))
        record_nonces(session, kept)
        # Their cases are marked here, with the rest; the epilogue marks the others'.
        session.info[_MARKED] = _mark_cases(
            session, [o for o in out if o is not PER_JOB], skip={})
    return out


def _latest(outcomes: list[Outcome]) -> dict[int, datetime]:
    latest: dict[int, datetime] = {}
    for outcome in outcomes:
        if outcome.stored is not None:
            case_id, at = outcome.stored
            latest[case_id] = max(at, latest.get(case_id, at))
    return latest


def _mark_cases(session: Session, outcomes: list[Outcome],
                skip: dict[int, datetime]) -> dict[int, datetime]:
    """Mark each case that got a statement, once, at its latest arrival — unless ``skip``
    already marked it at that time or later. Returns each case's latest arrival."""
    latest = _latest(outcomes)
    for case_id, at in sorted(latest.items()):
        if case_id in skip and skip[case_id] >= at:
            continue
        mark_changed(session, case_id=case_id, now=at)
    return latest


def _mark(session: Session, outcomes: list[Outcome]) -> None:
    """One mark per case that got a statement in this transaction, at the latest arrival
    (those the set-wise step marked already, at that time or later, are not marked again)."""
    _mark_cases(session, outcomes, skip=session.info.pop(_MARKED, {}))
