"""The ingest path without HTTP: what one agent statement costs the server in CPU.

Calls exactly what ``POST /api/v1/attestations`` calls for an agent, for signed deletion
statements of 10 digests, and prints the CPU time per statement (the process's, the
writer thread's included) of each part:

- the request's side, on no database: the RFC 9421 check (``signature_params``,
  ``verify_signature`` with the agent's kept key) and opening the envelope
  (``ingest.prepare``: the DSSE signature, the statement and predicate parsed);
- the writer's side: the agent's status read fresh, the nonce recorded, ``ingest`` —
  once with one statement per transaction (each waited for before the next, as a lone
  agent sends them), once in waves of one statement from each of 16 agents queued at
  once (group commit: the writer takes what waits, up to 32, in one transaction and
  stores the deletion statements set-wise).

Baseline in the same run: the same number of bare write transactions of the same database
(one nonce row each), through the same ``Database``. Also printed: how long the verdict
job then takes for the case, and how much of it is computing the report (which on SQLite
runs off the write lock).

Run from the repository root:
    .venv/bin/python -m benchmarks.ingest_path [--statements N] [--engine sqlite|postgresql|both]
        [--profile FILE.prof]
"""

from __future__ import annotations

import argparse
import cProfile
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms
from sqlalchemy import event, insert
from starlette.datastructures import Headers

from benchmarks._engines import ENGINES, run_engines
from benchmarks.ingest import _postmaster, _server_cpu
from deletion_audit.app import create_app
from deletion_audit.attestations import ingest
from deletion_audit.attestations.known import Outcome
from deletion_audit.attestations.writer import StatementWriter
from deletion_audit.clock import FixedClock
from deletion_audit.context import AppContext
from deletion_audit.db import make_engine
from deletion_audit.hosts.signatures import AgentKey, signature_params, verify_signature
from deletion_audit.migrations import upgrade
from deletion_audit.models import RequestNonce
from deletion_audit.verdicts.engine import compute_report
from deletion_audit.verdicts.tasks import recompute_verdicts
from tests.support.agents import AgentClient, declare_scope, enroll
from tests.support.log import make_log_env
from tests.support.world import make_world

WARM_UP = 96
# Agents sending at once, as in benchmarks.ingest: the writer stores their statements
# set-wise (each agent's first in a batch).
AGENTS = 16


@dataclass(frozen=True)
class _Request:
    url: str
    headers: Headers
    body: bytes


@dataclass(frozen=True)
class _Checked:
    agent: AgentKey
    nonce: str
    prepared: ingest.Prepared


def _requests(client: TestClient, agent: AgentClient, scope: dict[str, object],
              count: int, first_seq: int, prev: str | None) -> list[_Request]:
    out = []
    for seq in range(first_seq, first_seq + count):
        signed = agent.sign_statement(agent.deletion(
            seq=seq, prev=prev, scope=scope, deleted_at=datetime.now(UTC),
            digests=[secrets.token_hex(32) for _ in range(10)]))
        prev = signed.statement_id
        request = client.build_request("POST", "/api/v1/attestations", content=signed.envelope,
                                       headers={"Content-Type": "application/json"})
        HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=MappingKeyResolver(
            public_keys={}, private_keys={agent.agent_id: agent.key})).sign(
            request, key_id=agent.agent_id, label="da", created=datetime.now(UTC),
            nonce=secrets.token_urlsafe(16), covered_component_ids=("@method", "@target-uri"),
            body=signed.envelope)
        out.append(_Request(str(request.url), Headers(headers=dict(request.headers)),
                            signed.envelope))
    return out


@contextmanager
def _cpu(into: list[float], profiler: cProfile.Profile | None) -> Iterator[None]:
    if profiler is not None:
        profiler.enable()
    start = time.process_time()
    yield
    into.append(time.process_time() - start)
    if profiler is not None:
        profiler.disable()


@contextmanager
def _statements(ctx: AppContext, statements: int, postmaster: int | None
                ) -> Iterator[list[float]]:
    """Counts the SQL statements run through SQLAlchemy meanwhile, with each transaction's
    BEGIN and COMMIT (each a round trip on PostgreSQL), per statement stored and per
    transaction: yields a list that holds the two figures afterwards. Not counted: the
    deleted items' insert, which goes to the driver (a COPY on PostgreSQL, an executemany
    on SQLite: one per transaction set-wise, one per statement one by one), and
    PostgreSQL's pre-ping of the pool's connection (one per transaction). A third figure:
    the PostgreSQL server's CPU milliseconds per statement (``postmaster`` and its
    backends; 0 on SQLite)."""
    sent = [0, 0]

    def executed(*_args: object) -> None:
        sent[0] += 1

    def began(*_args: object) -> None:
        sent[0] += 2  # BEGIN, COMMIT
        sent[1] += 1

    engine = ctx.db.engine
    event.listen(engine, "before_cursor_execute", executed)
    event.listen(engine, "begin", began)
    out: list[float] = []
    cpu = _server_cpu(postmaster) if postmaster is not None else 0.0
    try:
        yield out
    finally:
        event.remove(engine, "before_cursor_execute", executed)
        event.remove(engine, "begin", began)
    cpu = (_server_cpu(postmaster) - cpu) if postmaster is not None else 0.0
    out += [sent[0] / statements, sent[0] / max(sent[1], 1), cpu / statements * 1000]


def run(engine_name: str, url: str, directory: Path, statements: int,
        profile: Path | None = None) -> None:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    env = make_log_env(directory, url, FixedClock(datetime.now(UTC).replace(microsecond=0)))
    world = make_world(env)
    client = TestClient(create_app(env.ctx, run_jobs=False), base_url="http://testserver")
    scope = declare_scope(client, world)
    agents = [enroll(client, world, scope_ids=[int(str(scope["id"]))]) for _ in range(AGENTS)]
    ctx = env.ctx
    writer = StatementWriter(ctx.db)
    waves = -(-(WARM_UP + 2 * statements) // AGENTS)
    chains = [_requests(client, agent, scope, waves, 0, None) for agent in agents]
    # Wave k: each agent's k-th statement (an agent sends its next once answered).
    requests = [chain[k] for k in range(waves) for chain in chains]
    profiler = cProfile.Profile() if profile is not None else None

    def check(r: _Request) -> _Checked:
        params = signature_params(r.headers, datetime.now(UTC))
        key = writer.cached_key(params.keyid) or writer.load_key(params.keyid)
        verify_signature(key, params, method="POST", url=r.url, headers=r.headers, body=r.body)
        return _Checked(key, params.nonce, ingest.prepare(key.public_key, r.body))

    def queue(c: _Checked) -> Callable[[], Outcome]:
        return writer.submit(c.agent, nonce=c.nonce, prepared=c.prepared,
                             now=ctx.clock.now(), transport_now=datetime.now(UTC)).result

    def stored(outcome: Outcome) -> None:
        if outcome.status != 201:
            raise SystemExit(f"statement refused: {outcome.body}")

    for r in requests[:WARM_UP]:
        stored(queue(check(r))())
    one_by_one = requests[WARM_UP:WARM_UP + statements]
    batched = requests[WARM_UP + statements:WARM_UP + 2 * statements]
    request_side: list[float] = []
    with _cpu(request_side, profiler):
        checked = [check(r) for r in one_by_one]
    single: list[float] = []
    postmaster = _postmaster(url)
    with _cpu(single, profiler), _statements(ctx, statements, postmaster) as single_sql:
        for c in checked:
            stored(queue(c)())
    checked = [check(r) for r in batched]
    grouped: list[float] = []
    with _cpu(grouped, profiler), _statements(ctx, statements, postmaster) as grouped_sql:
        for start in range(0, len(checked), AGENTS):
            for wait in [queue(c) for c in checked[start:start + AGENTS]]:
                stored(wait())
    writer.close()
    verdict = _verdict_seconds(ctx, world.case_id)
    if profiler is not None and profile is not None:
        profiler.dump_stats(profile.with_suffix(f".{engine_name}{profile.suffix}"))

    baseline: list[float] = []
    with _cpu(baseline, None):
        for _ in range(statements):
            with ctx.db.write() as session:
                session.execute(insert(RequestNonce).values(
                    agent_id=1, nonce=secrets.token_hex(16), created_at=datetime.now(UTC)))
    ms = [x / statements * 1000 for x in (request_side[0], single[0], grouped[0], baseline[0])]
    print(f"{engine_name}: {statements} statements of 10 digests each way")
    print(f"  request side (RFC 9421 check, envelope opened): {ms[0]:.2f} ms CPU per statement")
    print(f"  writer, one statement per transaction: {ms[1]:.2f} ms CPU; in all "
          f"{ms[0] + ms[1]:.2f} ms (at most {1000 / (ms[0] + ms[1]):.0f}/s on one core); "
          f"{single_sql[0]:.1f} SQL statements per statement{_pg(single_sql[2])}")
    print(f"  writer, group commit: {ms[2]:.2f} ms CPU; in all {ms[0] + ms[2]:.2f} ms "
          f"(at most {1000 / (ms[0] + ms[2]):.0f}/s on one core); {grouped_sql[0]:.1f} SQL "
          f"statements per statement, {grouped_sql[1]:.1f} statements per transaction"
          f"{_pg(grouped_sql[2])}")
    print(f"  bare write transaction (baseline): {ms[3]:.2f} ms CPU; ratio "
          f"{(ms[0] + ms[1]) / ms[3]:.1f} one by one, {(ms[0] + ms[2]) / ms[3]:.1f} grouped")
    total = len(requests)
    print(f"  the verdict job's run for this case afterwards ({total} statements, "
          f"{total * 10} deleted items): {verdict[0] * 1000:.0f} ms, of which computing the "
          f"report {verdict[1] * 1000:.0f} ms (on SQLite off the write lock)")
    client.close()
    env.db.dispose()


def _pg(ms: float) -> str:
    return f"; the PostgreSQL server {ms:.2f} ms CPU" if ms else ""


def _verdict_seconds(ctx: AppContext, case_id: int) -> tuple[float, float]:
    """Wall time of the verdict job's run for the case (verdicts/tasks.py, a minute on, so
    its marks are due), and of computing the report alone (the part that runs off SQLite's
    write lock)."""
    start = time.perf_counter()
    done = recompute_verdicts(ctx.db, keys=ctx.keys,
                              clock=FixedClock(ctx.clock.now() + timedelta(minutes=1)))
    job = time.perf_counter() - start
    if done != [case_id]:
        raise SystemExit(f"the verdict job recomputed {done}, not [{case_id}]")
    start = time.perf_counter()
    with ctx.db.read() as session:
        compute_report(session, case_id=case_id, now=ctx.clock.now())
    return job, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=1000)
    parser.add_argument("--engine", choices=ENGINES, default="both")
    parser.add_argument("--profile", type=Path, default=None,
                        help="write cProfile statistics of the measured statements to this "
                        "file (the engine's name inserted before its suffix); the CPU "
                        "figures then include the profiler's own cost")
    args = parser.parse_args()
    run_engines(args.engine,
                lambda engine, url, d: run(engine, url, d, args.statements, args.profile))


if __name__ == "__main__":
    main()
