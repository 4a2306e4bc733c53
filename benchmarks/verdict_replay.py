"""Re-deriving a large case's verdict from its logged events (verdict replay target).

- A 1,000,000-item case — 1,000,000 deletion claims in 100 signed statements of 10,000
  digests, then one clean challenged scan — replays well inside 10 s: a fresh SQLite built
  from the case's events, the envelopes and the manifest file, and the same verdict code.

The case is built for real: the manifest registered by the import, the scope, agent,
challenge and statements through the HTTP API and ingest. The live verdict
(``compute_report`` on the source database) is timed in the same run as the baseline. The
replay's inputs are written the way a bundle holds them (events as JSON Lines, one file per
envelope, the manifest file regenerated from the database) and the replay runs in a child
process, so its peak RSS is its own.

Run from the repository root:
    .venv/bin/python -m benchmarks.verdict_replay [--items N] [--engine sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from benchmarks._engines import ENGINES, run_engines
from benchmarks.manifest_register import peak_rss_mb
from deletion_audit.app import create_app
from deletion_audit.clock import FixedClock, SystemClock
from deletion_audit.core import dsse, keys
from deletion_audit.core import manifest as mf
from deletion_audit.core.statements import parse_statement, statement_bytes
from deletion_audit.db import make_engine
from deletion_audit.evidence.export import write_manifest_file
from deletion_audit.evidence.manifests import examiner_keys, register_manifest
from deletion_audit.migrations import upgrade
from deletion_audit.models import Attestation
from deletion_audit.verdicts.engine import active_manifest, compute_report
from deletion_audit.verdicts.replay import ReplayEvent, events_of_case, replay_verdict
from deletion_audit.verdicts.service import latest_verdict
from deletion_audit.verdicts.tasks import recompute_verdicts
from tests.support.agents import declare_scope, enroll
from tests.support.evidence import examiner_key
from tests.support.log import LogEnv, make_log_env
from tests.support.world import World, make_world

PER_STATEMENT = 10_000


def _entries(n: int) -> Iterator[mf.ManifestEntry]:
    digests = sorted(hashlib.sha256(i.to_bytes(8, "big")).hexdigest() for i in range(n))
    people = max(1, n // 50)
    for i, digest in enumerate(digests):
        yield mf.ManifestEntry(
            digest=digest, kind=("image", "video", "record")[i % 3], size=1000 + i % 5000,
            subject=hashlib.sha256(b"p%d" % (i % people)).hexdigest(), source="SH-QP/NAS1")


def _register(env: LogEnv, world: World, directory: Path, n: int) -> list[str]:
    key = examiner_key(world)
    path = directory / "manifest.jsonl"
    header = mf.ManifestHeader(case=world.case_number, count=0,
                               created_at="2026-03-02T01:30:00Z",
                               examiner_key_id=keys.key_id(key.public_key()))
    summary = mf.write_manifest(path, header, _entries(n)).summary
    envelope = dsse.sign(statement_bytes(mf.statement_for(summary, path.name)),
                         dsse.IN_TOTO_PAYLOAD_TYPE, key)
    with env.db.read() as session:
        found = examiner_keys(session, world.case_id)
    with path.open("rb") as stream:
        register_manifest(env.db, case_id=world.case_id, case_number=world.case_number,
                          stream=stream, envelope=json.loads(envelope.to_json()),
                          examiner_keys=found, registered_by=None, now=env.clock.now())
    with path.open("rb") as stream:
        next(stream)
        return [line[11:75].decode() for line in stream]


def _build_case(env: LogEnv, directory: Path, n: int) -> World:
    world = make_world(env)
    digests = _register(env, world, directory, n)
    now = env.clock.now()
    with TestClient(create_app(env.ctx, run_jobs=False)) as client:
        scope = declare_scope(client, world, name="nvr")
        agent = enroll(client, world, scope_ids=[scope["id"]])
        prev = None
        seq = 0
        for start in range(0, n, PER_STATEMENT):
            signed = agent.sign_statement(agent.deletion(
                seq=seq, prev=prev, scope=scope, deleted_at=now,
                digests=digests[start:start + PER_STATEMENT]))
            r = agent.submit(signed)
            assert r.status_code == 201, r.text
            seq, prev = seq + 1, signed.statement_id
        r = agent.post("/api/v1/agents/challenges", json={"scope_id": scope["id"]})
        assert r.status_code == 201, r.text
        signed = agent.sign_statement(agent.scan(
            seq=seq, prev=prev, scope=scope, challenge=r.json()["nonce"],
            finished_at=now + timedelta(minutes=1)))
        r = agent.submit(signed)
        assert r.status_code == 201, r.text
    return world


def _write_inputs(env: LogEnv, world: World, out: Path) -> dict[str, Any]:
    """The replay's inputs as a bundle holds them; returns the signed verdict predicate."""
    (out / "envelopes").mkdir(parents=True)
    with env.db.read() as session:
        verdict = latest_verdict(session, case_id=world.case_id)
        assert verdict is not None
        with (out / "events.jsonl").open("w") as events:
            for ev in events_of_case(session, world.case_id):
                events.write(json.dumps({"index": ev.index, "type": ev.type,
                                         "body": ev.body}) + "\n")
        for envelope in session.execute(select(Attestation.envelope).where(
                Attestation.case_id == world.case_id)).scalars():
            name = hashlib.sha256(envelope).hexdigest()
            (out / "envelopes" / name).write_bytes(envelope)
        manifest = active_manifest(session, world.case_id)
        assert manifest is not None
        started = time.perf_counter()
        with (out / "manifest.jsonl").open("wb") as stream:
            write_manifest_file(session, manifest.id, stream)
        print(f"manifest file regenerated from the database in "
              f"{time.perf_counter() - started:.2f} s")
    (out / "size").write_text(str(verdict.as_of_log_size))
    signed = parse_statement(dsse.Envelope.from_json(verdict.envelope).payload).predicate
    return dict(signed)


class _EnvelopeDirectory(Mapping[str, bytes]):
    """Envelopes read one at a time, when the replay asks for them: bounded memory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __getitem__(self, name: str) -> bytes:
        path = self.directory / name
        if len(name) != 64 or not path.is_file():
            raise KeyError(name)
        return path.read_bytes()

    def __iter__(self) -> Iterator[str]:
        return (p.name for p in self.directory.iterdir())

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.iterdir())


def child(directory: str) -> None:
    """Replay from the written inputs; print the seconds, the peak RSS and the predicate."""
    base = Path(directory)
    with (base / "events.jsonl").open() as lines:
        events = [ReplayEvent(index=o["index"], type=o["type"], body=o["body"])
                  for o in map(json.loads, lines)]
    started, cpu = time.perf_counter(), _cpu_seconds()
    predicate = replay_verdict(events, envelopes=_EnvelopeDirectory(base / "envelopes"),
                               manifest_path=base / "manifest.jsonl",
                               as_of_size=int((base / "size").read_text()), workdir=base)
    elapsed = time.perf_counter() - started
    print(json.dumps({"seconds": elapsed, "cpu": _cpu_seconds() - cpu, "rss_mb": peak_rss_mb(),
                      "predicate": predicate}))


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the replay's item loader): on
    two shared cores, wall time says as much about the neighbours as about the replay."""
    own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                         resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(engine_name: str, url: str, directory: Path, items: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    clock = FixedClock(SystemClock().now().replace(microsecond=0))
    env = make_log_env(directory, url, clock)
    started = time.perf_counter()
    world = _build_case(env, directory, items)
    print(f"[{engine_name}] built the case ({items:,} items, registered, deleted through "
          f"{-(-items // PER_STATEMENT)} statements, one clean scan) in "
          f"{time.perf_counter() - started:.1f} s")
    if engine_name == "postgresql":
        with env.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")
    env.integrate()
    verdict_time: datetime = clock.now() + timedelta(minutes=2)
    with env.db.read() as session:
        started = time.perf_counter()
        report = compute_report(session, case_id=world.case_id, now=verdict_time)
        live = time.perf_counter() - started
    recompute_verdicts(env.db, keys=env.ctx.keys, clock=FixedClock(verdict_time))
    env.integrate()
    signed = _write_inputs(env, world, directory / "bundle")
    env.db.dispose()
    out = subprocess.run([sys.executable, "-m", "benchmarks.verdict_replay", "--child",
                          str(directory / "bundle")], check=True, capture_output=True,
                         text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    same = result["predicate"] == signed
    print(f"[{engine_name}] live verdict: {report.outcome}, {report.items.deleted:,} of "
          f"{report.items.total:,} deleted, in {live:.2f} s")
    print(f"[{engine_name}] replay from events + envelopes + manifest file: "
          f"{result['seconds']:.2f} s (target well inside 10 s; {result['cpu']:.2f} s of CPU "
          f"in two processes); ratio to the live verdict {result['seconds'] / live:.2f}; "
          f"peak RSS {result['rss_mb']:.0f} MB; predicate "
          f"{'equals' if same else 'DIFFERS FROM'} the signed one")
    if not same:
        raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--engine", choices=ENGINES, default="sqlite")
    parser.add_argument("--child", metavar="DIRECTORY")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    run_engines(args.engine, lambda name, url, d: measure(name, url, d, args.items))


if __name__ == "__main__":
    main()
