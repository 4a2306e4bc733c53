"""The verdict of a large case (issue 5 target), on SQLite and PostgreSQL.

- 1,000,000 manifest items, 1,000,000 deletion claims across 100 deletion statements, and a
  clean challenged scan after them: the verdict in at most 10 s.

The case is written straight into the tables ingest fills (bulk inserts), so the figure is
the verdict's own cost, not ingest's. Printed beside a baseline: one full scan of the
manifest's items (``SELECT count(*), sum(size)``) on the same engine in the same run.

Run from the repository root:
    .venv/bin/python -m benchmarks.verdict [--items N] [--engine sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import hashlib
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from benchmarks._engines import ENGINES, run_engines
from deletion_audit.clock import FixedClock
from deletion_audit.db import make_engine
from deletion_audit.migrations import upgrade
from deletion_audit.models import (
    Agent,
    Attestation,
    Binding,
    Challenge,
    DeletedItem,
    DeletionRecord,
    Manifest,
    ManifestItem,
    PartyRole,
    ScanRecord,
    Scope,
)
from deletion_audit.verdicts.engine import compute_report
from tests.conftest import T0
from tests.support.log import LogEnv, make_log_env
from tests.support.world import World, add_agent, make_world

STATEMENTS = 100
CHUNK = 50_000


def _digest(i: int) -> bytes:
    return hashlib.sha256(i.to_bytes(8, "big")).digest()


def _populate(env: LogEnv, world: World, items: int) -> int:
    now = env.clock.now()
    public_id = add_agent(world)
    with env.db.write() as session:
        agent = session.execute(select(Agent).where(Agent.public_id == public_id)).scalar_one()
        manifest = Manifest(
            case_id=world.case_id, state="active", case_number=world.case_number, count=items,
            root=b"\0" * 32, file_sha256=b"\0" * 32, header={}, envelope={},
            statement_id=b"\0" * 32, examiner_key_id="0" * 64, kinds={"image": items},
            subjects=items // 50, created_at=now, touched_at=now)
        scope = Scope(case_id=world.case_id, party_id=world.parties[PartyRole.RESPONDENT],
                      name="nvr", kind="directory", spec={"root": "/srv/nvr"},
                      spec_digest="0" * 64, expects_data=True, location_codes=["SH-QP/NVR"],
                      created_at=now, created_by=world.prosecutor.user_id)
        session.add_all([manifest, scope])
        session.flush()
        session.add(Binding(case_id=world.case_id, scope_id=scope.id, agent_id=agent.id,
                            created_at=now))
        rows = ({"manifest_id": manifest.id, "ordinal": i, "digest": _digest(i), "kind": 1,
                 "size": 1000, "subject": _digest(i % (items // 50 or 1) + 10**9),
                 "source": "SH-QP/NVR", "pdq": None} for i in range(items))
        batch: list[dict[str, object]] = []
        for row in rows:
            batch.append(row)
            if len(batch) == CHUNK:
                session.execute(insert(ManifestItem), batch)
                batch = []
        if batch:
            session.execute(insert(ManifestItem), batch)
        per = -(-items // STATEMENTS)
        for n in range(STATEMENTS):
            att = Attestation(
                statement_id=f"{n:064x}", agent_id=agent.id, case_id=world.case_id, seq=n,
                prev=None, predicate_type="deletion", scope_id=scope.id, envelope=b"{}",
                received_at=now, leaf_hash=b"\0" * 32)
            session.add(att)
            session.flush()
            session.add(DeletionRecord(attestation_id=att.id, case_id=world.case_id,
                                       scope_id=scope.id, agent_id=agent.id, grade="logical",
                                       count=per, deleted_at=now))
            digests = range(n * per, min(items, (n + 1) * per))
            for start in range(0, len(digests), CHUNK):
                session.execute(insert(DeletedItem), [
                    {"attestation_id": att.id, "digest": _digest(i), "case_id": world.case_id,
                     "scope_id": scope.id} for i in digests[start:start + CHUNK]])
        challenge = Challenge(case_id=world.case_id, agent_id=agent.id, scope_id=scope.id,
                              nonce="n" * 32, origin="prosecutor", issued_at=now,
                              expires_at=now + timedelta(minutes=15), used_by_scan_id="s")
        session.add(challenge)
        session.flush()
        session.add(ScanRecord(case_id=world.case_id, scope_id=scope.id, agent_id=agent.id,
                               scan_id="s", challenge_id=challenge.id, parts=1, finished=True,
                               coverage="complete", objects=items, started_at=now,
                               finished_at=now, received_at=now))
        return manifest.id


def measure(engine_name: str, url: str, directory: Path, items: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    env = make_log_env(directory, url, FixedClock(T0))
    world = make_world(env)
    started = time.perf_counter()
    manifest_id = _populate(env, world, items)
    print(f"[{engine_name}] populated {items:,} items and claims in "
          f"{time.perf_counter() - started:.1f} s")
    if engine_name == "postgresql":
        with env.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")
    with env.db.read() as session:
        started = time.perf_counter()
        session.execute(select(func.count(), func.sum(ManifestItem.size))
                        .where(ManifestItem.manifest_id == manifest_id)).one()
        baseline = time.perf_counter() - started
        started = time.perf_counter()
        report = compute_report(session, case_id=world.case_id,
                                now=env.clock.now() + timedelta(minutes=1))
        took = time.perf_counter() - started
    print(f"[{engine_name}] verdict: {report.outcome}, items {report.items.deleted:,} "
          f"deleted / {report.items.total:,}; people {report.people.all_deleted:,} all "
          f"deleted")
    print(f"[{engine_name}] verdict {took:.2f} s (target <= 10 s); baseline full scan of "
          f"the items {baseline:.2f} s; ratio {took / baseline:.1f}")
    env.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--engine", choices=ENGINES, default="both")
    args = parser.parse_args()
    run_engines(args.engine, lambda name, url, d: measure(name, url, d, args.items))


if __name__ == "__main__":
    main()
