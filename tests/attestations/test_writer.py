"""Agents' statements through the group-commit writer (attestations/writer.py): statements
queued at once are stored in their chains, and the request's own checks (its nonce) still
come before the statement's, in PROTOCOL.md's order."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from deletion_audit.attestations import ingest
from deletion_audit.attestations import writer as writer_module
from deletion_audit.attestations.known import Outcome, receipt
from deletion_audit.attestations.writer import StatementWriter
from deletion_audit.core.leaves import encode_leaf
from deletion_audit.hosts.errors import Replayed
from deletion_audit.models import (
    Agent,
    Attestation,
    DeletedItem,
    DeletionRecord,
    Event,
    LogLeaf,
    Refusal,
    RequestNonce,
    VerdictMark,
)
from tests.conftest import T0
from tests.support.agents import AgentClient, Signed, declare_scope, enroll
from tests.support.log import LogEnv
from tests.support.world import World

BEFORE = T0 - timedelta(minutes=1)


@pytest.fixture
def scope(client: TestClient, world: World) -> dict[str, Any]:
    return declare_scope(client, world)


@pytest.fixture
def agent(client: TestClient, world: World, scope: dict[str, Any]) -> AgentClient:
    return enroll(client, world, scope_ids=[scope["id"]])


def _count(env: LogEnv, model: Any) -> int:
    with env.db.read() as s:
        count: int = s.execute(select(func.count()).select_from(model)).scalar_one()
    return count


class TestQueuedAtOnce:
    def test_statements_of_several_agents_queued_at_once_are_stored_in_their_chains(
        self, client: TestClient, world: World, env: LogEnv
    ) -> None:
        scope = declare_scope(client, world)
        agents = [enroll(client, world, scope_ids=[scope["id"]]) for _ in range(3)]
        writer = StatementWriter(env.db)
        futures = []
        for agent in agents:
            key = writer.load_key(agent.agent_id)
            prev = None
            for seq in range(4):
                signed = agent.sign_statement(agent.deletion(
                    seq=seq, prev=prev, scope=scope, deleted_at=BEFORE,
                    digests=[secrets.token_hex(32) for _ in range(3)]))
                prev = signed.statement_id
                futures.append((signed, writer.submit(
                    key, nonce=secrets.token_urlsafe(16),
                    prepared=ingest.prepare(key.public_key, signed.envelope),
                    now=T0, transport_now=datetime.now(UTC))))
        outcomes = [(signed, future.result(timeout=60)) for signed, future in futures]
        writer.close()
        assert [o.status for _, o in outcomes] == [201] * 12
        assert all(o.body["statement_id"] == s.statement_id for s, o in outcomes)
        with env.db.read() as s:
            chains = s.execute(select(Attestation.agent_id, Attestation.seq, Attestation.prev,
                                      Attestation.statement_id)
                               .order_by(Attestation.agent_id, Attestation.seq)).all()
        assert len(chains) == 12
        for before, after in itertools.pairwise(chains):
            if before.agent_id == after.agent_id:
                assert (after.seq, after.prev) == (before.seq + 1, before.statement_id)
        assert _count(env, DeletedItem) == 36
        assert _count(env, RequestNonce) == 12
        assert _count(env, Refusal) == 0
        # One mark for a new verdict per transaction that stored statements of the case.
        assert 1 <= _count(env, VerdictMark) <= 12


class TestRequestChecksFirst:
    def test_a_statement_sent_with_a_used_nonce_is_refused_and_not_stored(
        self, agent: AgentClient, scope: dict[str, Any], env: LogEnv
    ) -> None:
        nonce = secrets.token_urlsafe(16)
        first = agent.sign_statement(agent.deletion(seq=0, prev=None, scope=scope,
                                                    deleted_at=BEFORE))
        assert agent.submit(first, nonce=nonce).status_code == 201
        second = agent.sign_statement(agent.deletion(seq=1, prev=first.statement_id,
                                                     scope=scope, deleted_at=BEFORE))
        r = agent.submit(second, nonce=nonce)
        assert (r.status_code, r.json()["code"]) == (401, "replayed")
        assert (_count(env, Attestation), _count(env, Refusal)) == (1, 0)
        assert agent.submit(second).status_code == 201

    def test_a_bad_envelope_with_a_used_nonce_is_answered_replayed(
        self, agent: AgentClient, scope: dict[str, Any], env: LogEnv
    ) -> None:
        nonce = secrets.token_urlsafe(16)
        first = agent.sign_statement(agent.deletion(seq=0, prev=None, scope=scope,
                                                    deleted_at=BEFORE))
        assert agent.submit(first, nonce=nonce).status_code == 201
        r = agent.post("/api/v1/attestations", content=b'{"payload": 1}', nonce=nonce)
        assert (r.status_code, r.json()["code"]) == (401, "replayed")
        r = agent.post("/api/v1/attestations", content=b'{"payload": 1}')
        assert (r.status_code, r.json()["code"]) == (422, "bad_envelope")
        assert _count(env, RequestNonce) == 1  # a refused request's nonce is not kept

    def test_an_agent_enrolled_after_the_writer_started_is_known(
        self, client: TestClient, world: World, agent: AgentClient, scope: dict[str, Any]
    ) -> None:
        first = agent.sign_statement(agent.deletion(seq=0, prev=None, scope=scope,
                                                    deleted_at=BEFORE))
        assert agent.submit(first).status_code == 201
        later = enroll(client, world, scope_ids=[scope["id"]])
        signed = later.sign_statement(later.deletion(seq=0, prev=None, scope=scope,
                                                     deleted_at=BEFORE))
        assert later.submit(signed).status_code == 201


class TestScopeReference:
    @pytest.mark.parametrize("scope_id", ["9" * 30, "\u00b2", "-1"])
    def test_a_scope_id_that_names_no_scope_is_unbound(
        self, agent: AgentClient, scope: dict[str, Any], env: LogEnv, scope_id: str
    ) -> None:
        signed = agent.sign_statement(agent.deletion(
            seq=0, prev=None, scope={**scope, "id": scope_id}, deleted_at=BEFORE))
        r = agent.submit(signed)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "unbound_scope"
        assert (_count(env, Attestation), _count(env, Refusal)) == (0, 1)



def _revoke(client: TestClient, world: World, agent: AgentClient, **body: Any) -> None:
    r = client.post(f"{world.url}/agents/{agent.agent_id}/revoke",
                    headers=world.prosecutor.headers, json={"reason": "测试", **body})
    assert r.status_code == 200, r.text


def _in_one_batch(
    writer: StatementWriter, statements: list[tuple[AgentClient, Signed, str]]
) -> list[Outcome | Exception]:
    """Queue the statements while the writer (of one thread) is held by a first job, so
    that they make its next batch (one transaction, set-wise where the writer can); their
    answers."""
    started, release = threading.Event(), threading.Event()

    def hold(_session: Session) -> Outcome:
        started.set()
        release.wait(timeout=30)
        return Outcome(200, {})

    held = writer._commit.submit(hold)
    assert started.wait(timeout=30)
    futures = []
    for agent, signed, nonce in statements:
        key = writer.load_key(agent.agent_id)
        futures.append(writer.submit(key, nonce=nonce,
                                     prepared=ingest.prepare(key.public_key, signed.envelope),
                                     now=T0, transport_now=datetime.now(UTC)))
    release.set()
    held.result(timeout=60)
    answers: list[Outcome | Exception] = []
    for future in futures:
        try:
            answers.append(future.result(timeout=60))
        except Exception as exc:  # the request's refusal, as the endpoint would raise it
            answers.append(exc)
    return answers


def _nonce() -> str:
    return secrets.token_urlsafe(16)


class TestSetWise:
    """A batch's deletion statements are judged and stored set-wise (one query and one
    insert per table for all): each gets the answer, and leaves the rows, that it gets
    alone — refusals, repeats and replays included, which take the path of one statement
    in the same transaction."""

    def test_each_statement_of_a_mixed_batch_gets_its_answer_of_one_by_one(
        self, client: TestClient, world: World, scope: dict[str, Any], env: LogEnv
    ) -> None:
        a, b, c, d, e, f, g, h = (enroll(client, world, scope_ids=[scope["id"]])
                                  for _ in range(8))
        earlier = {}
        for agent in (b, c, e, f, h):
            signed = agent.sign_statement(agent.deletion(seq=0, prev=None, scope=scope,
                                                         deleted_at=BEFORE))
            f_nonce = _nonce()
            r = agent.submit(signed, nonce=f_nonce)
            assert r.status_code == 201, r.text
            earlier[agent.agent_id] = (signed, r.json(), f_nonce)
        _revoke(client, world, e, kind="decommissioned")
        before = (_count(env, Attestation), _count(env, Refusal), _count(env, RequestNonce))

        fresh = a.sign_statement(a.deletion(seq=0, prev=None, scope=scope, deleted_at=BEFORE,
                                            digests=["a" * 64, "b" * 64]))
        repeat = earlier[b.agent_id][0]
        fork = c.sign_statement(c.deletion(seq=0, prev=None, scope=scope, deleted_at=BEFORE,
                                           digests=["c" * 64]))
        unbound = d.sign_statement(d.deletion(seq=0, prev=None, scope={**scope, "id": "999999"},
                                              deleted_at=BEFORE))
        after_revocation = e.sign_statement(e.deletion(
            seq=1, prev=earlier[e.agent_id][0].statement_id, scope=scope,
            deleted_at=T0 + timedelta(minutes=5)))
        replayed = f.sign_statement(f.deletion(seq=1, prev=earlier[f.agent_id][0].statement_id,
                                               scope=scope, deleted_at=BEFORE))
        g0 = g.sign_statement(g.deletion(seq=0, prev=None, scope=scope, deleted_at=BEFORE))
        g1 = g.sign_statement(g.deletion(seq=1, prev=g0.statement_id, scope=scope,
                                         deleted_at=BEFORE))
        wrong_prev = h.sign_statement(h.deletion(seq=1, prev="e" * 64, scope=scope,
                                                 deleted_at=BEFORE))
        writer = StatementWriter(env.db, writers=1)
        answers = _in_one_batch(writer, [
            (a, fresh, _nonce()), (b, repeat, _nonce()), (c, fork, _nonce()),
            (d, unbound, _nonce()), (e, after_revocation, _nonce()),
            (f, replayed, earlier[f.agent_id][2]), (g, g0, _nonce()), (g, g1, _nonce()),
            (h, wrong_prev, _nonce())])
        writer.close()

        def outcome(i: int) -> Outcome:
            out = answers[i]
            assert isinstance(out, Outcome), out
            return out

        def answer(i: int) -> tuple[int, str | None]:
            return outcome(i).status, outcome(i).body.get("code")

        assert answer(0) == (201, None)
        assert outcome(0).body["statement_id"] == fresh.statement_id
        assert answer(1) == (201, None)
        assert outcome(1).body == earlier[b.agent_id][1]
        assert answer(2) == (409, "fork")
        assert answer(3) == (422, "unbound_scope")
        assert answer(4) == (403, "revoked")
        assert isinstance(answers[5], Replayed)
        assert [answer(6), answer(7)] == [(201, None), (201, None)]
        assert answer(8) == (409, "fork")
        # Stored: a's, g's two; refused and recorded: c's, d's, e's, h's; the replay leaves
        # nothing, and every other request's nonce is kept.
        assert (_count(env, Attestation), _count(env, Refusal),
                _count(env, RequestNonce)) == (before[0] + 3, before[1] + 4, before[2] + 8)
        with env.db.read() as s:
            items = s.execute(select(DeletedItem.digest).join(
                Attestation, Attestation.id == DeletedItem.attestation_id)
                .where(Attestation.statement_id == fresh.statement_id)).scalars().all()
            chain = s.execute(select(Attestation.seq, Attestation.prev).join(
                Agent, Agent.id == Attestation.agent_id).where(Agent.public_id == g.agent_id)
                .order_by(Attestation.seq)).all()
        assert sorted(items) == [bytes.fromhex("a" * 64), bytes.fromhex("b" * 64)]
        assert [tuple(r) for r in chain] == [(0, None), (1, g0.statement_id)]

    def test_a_statement_stored_set_wise_is_logged_and_stored_as_one_stored_alone(
        self, client: TestClient, world: World, scope: dict[str, Any], env: LogEnv
    ) -> None:
        agents = [enroll(client, world, scope_ids=[scope["id"]]) for _ in range(3)]
        alone = agents[0].sign_statement(agents[0].deletion(seq=0, prev=None, scope=scope,
                                                            deleted_at=BEFORE))
        writer = StatementWriter(env.db, writers=1)
        [first] = _in_one_batch(writer, [(agents[0], alone, _nonce())])
        together = [agent.sign_statement(agent.deletion(seq=0, prev=None, scope=scope,
                                                        deleted_at=BEFORE))
                    for agent in agents[1:]]
        run: list[str] = []

        def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            run.append(statement.split("(")[0].strip())

        sa_event.listen(env.db.engine, "before_cursor_execute", seen)
        try:
            answers = _in_one_batch(writer, [(agent, signed, _nonce())
                                             for agent, signed in zip(agents[1:], together,
                                                                      strict=True)])
        finally:
            sa_event.remove(env.db.engine, "before_cursor_execute", seen)
        writer.close()
        # Set-wise: one insert a table for both statements (one by one: one each); on
        # PostgreSQL, those of the leaves, events, deletion records, nonces and verdict
        # mark are one statement (deferred.py), the deleted items a COPY.
        assert run.count("INSERT INTO attestations") == 1
        gathered = [r for r in run if r.startswith("WITH")]
        if env.db.dialect == "postgresql":
            assert len(gathered) == 1
            assert not [r for r in run if r.startswith(("INSERT INTO log_leaves",
                                                        "INSERT INTO events",
                                                        "INSERT INTO request_nonces",
                                                        "INSERT INTO verdict_marks"))]
        else:
            assert gathered == []
        assert all(isinstance(o, Outcome) and o.status == 201
                   for o in [first, *answers])
        with env.db.read() as s:
            rows = {row.statement_id: row for row in s.execute(select(Attestation)).scalars()}
            events = {e.body["statementId"]: e for e in s.execute(
                select(Event).where(Event.type == "attestation")).scalars()}
            leaves = {leaf.leaf_hash: leaf.data for leaf in s.execute(select(LogLeaf)).scalars()}
            records = s.execute(select(DeletionRecord.attestation_id, DeletionRecord.count,
                                       DeletionRecord.grade)).all()
        shapes = set()
        for signed, outcome in zip([alone, *together], [first, *answers], strict=True):
            assert isinstance(outcome, Outcome)
            row, event = rows[signed.statement_id], events[signed.statement_id]
            assert outcome.body == receipt(row)
            assert row.envelope == signed.envelope
            assert event.leaf_hash == row.leaf_hash
            # The leaf commits to the logged event with its salt, as for any restricted one.
            assert leaves[row.leaf_hash] == encode_leaf("attestation", event.body,
                                                        salt=event.salt).data
            shapes.add((tuple(sorted(event.body)), row.scope_id, row.predicate_type,
                        row.received_at))
        assert len(shapes) == 1
        assert sorted((count, grade) for _, count, grade in records) == [(1, "logical")] * 3


class TestSettle:
    """Before it takes a batch, a writer given the server's event loop lets that loop run
    what it had ready and then what that scheduled (the handlers that queue statements),
    within a bounded wait."""

    @pytest.fixture
    def loop(self) -> Any:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        yield loop
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()

    def test_the_writer_waits_for_what_the_loop_scheduled_before_it_settled(
        self, env: LogEnv, loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(writer_module, "SETTLE_SECONDS", 30.0)  # no early give-up
        ran: list[str] = []

        def handler() -> None:  # a request read: its handler is scheduled in turn
            ran.append("read")
            loop.call_soon(lambda: ran.append("queued"))

        writer = StatementWriter(env.db, loop=loop)
        loop.call_soon_threadsafe(handler)
        writer._settle()
        assert ran == ["read", "queued"]

    def test_a_closed_loop_is_not_waited_for(self, env: LogEnv,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(writer_module, "SETTLE_SECONDS", 30.0)
        loop = asyncio.new_event_loop()
        loop.close()
        done = threading.Event()

        def settle() -> None:
            StatementWriter(env.db, loop=loop)._settle()
            done.set()

        threading.Thread(target=settle, daemon=True).start()
        assert done.wait(timeout=10)  # not the 30 s bound

    def test_a_loop_that_does_not_run_is_waited_for_only_the_bound(
        self, env: LogEnv, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(writer_module, "SETTLE_SECONDS", 0.01)
        loop = asyncio.new_event_loop()
        try:
            StatementWriter(env.db, loop=loop)._settle()  # returns: the bound
            assert loop._ready  # type: ignore[attr-defined]  # its hop never ran
        finally:
            loop.close()
