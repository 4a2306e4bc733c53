"""Ingest under load (issue 5 target), on SQLite and PostgreSQL.

- 16 concurrent HTTP clients over loopback, each an enrolled agent sending its own chain of
  signed deletion statements of 10 digests (about 2 KiB each) to ``POST /api/v1/attestations``:
  at least 500 attestations/s sustained, p99 at most 100 ms.

A real server process (the app ``deletion-audit serve`` runs, with its jobs) on 127.0.0.1.
Printed beside a baseline measured in the same run: a no-op endpoint added to the same app,
under the same load (the same bodies, the same 16 keep-alive connections). Requests are
signed before the clock starts (RFC 9421 signatures carry their own time and nonce), so the
figure is the server's, not the load generator's signing. Each line also gives the server's
CPU time per request (its processes' user + system time, from /proc), which says whether
the server is bound by its CPU or by waiting; on PostgreSQL the database server's own
(its postmaster's and backends'); the load generator's (this process's 16 client
threads); and the whole machine's (every process, other jobs' included: the two cores'
budget is 4 ms a request at 500/s).

Run from the repository root:
    .venv/bin/python -m benchmarks.ingest [--per-client N] [--workers N]
        [--engine sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms
from sqlalchemy import func, select

from benchmarks._engines import ENGINES, run_engines
from deletion_audit.clock import FixedClock
from deletion_audit.db import make_engine
from deletion_audit.migrations import upgrade
from deletion_audit.models import Attestation, Refusal
from tests.support.agents import AgentClient, declare_scope, enroll
from tests.support.log import make_log_env
from tests.support.world import make_world

CLIENTS = 16
NOOP = "/bench/noop"
INGEST = "/api/v1/attestations"


@dataclass(frozen=True)
class Prepared:
    path: str
    headers: dict[str, str]
    body: bytes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(url: str, data_dir: Path, workers: int
                  ) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks._bench_server", url,
                             str(data_dir), str(port), str(workers)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise SystemExit(f"the server exited: {err}")
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("the server did not answer /healthz within 60 s")
        time.sleep(0.1)


def _signed_request(http: httpx.Client, agent: AgentClient, body: bytes) -> Prepared:
    request = http.build_request("POST", INGEST, content=body,
                                 headers={"Content-Type": "application/json"})
    signer = HTTPMessageSigner(signature_algorithm=algorithms.ED25519,
                               key_resolver=MappingKeyResolver(
                                   public_keys={}, private_keys={agent.agent_id: agent.key}))
    signer.sign(request, key_id=agent.agent_id, label="da", created=datetime.now(UTC),
                nonce=secrets.token_urlsafe(16),
                covered_component_ids=("@method", "@target-uri"), body=body)
    keep = ("content-type", "content-digest", "signature", "signature-input")
    return Prepared(INGEST, {k: v for k, v in request.headers.items() if k.lower() in keep},
                    body)


def _prepare(http: httpx.Client, agent: AgentClient, scope: dict[str, object],
             count: int) -> list[Prepared]:
    out, prev = [], None
    for seq in range(count):
        digests = [secrets.token_hex(32) for _ in range(10)]
        signed = agent.sign_statement(agent.deletion(
            seq=seq, prev=prev, scope=scope, deleted_at=datetime.now(UTC), digests=digests))
        prev = signed.statement_id
        out.append(_signed_request(http, agent, signed.envelope))
    return out


def _load(base: str, per_client: Sequence[list[Prepared]], *, path: str | None = None
          ) -> tuple[float, list[float], int]:
    """Send each client's requests in order on its own keep-alive connection, all clients
    at once. Returns (seconds, latencies, failures)."""
    host, port = base.removeprefix("http://").split(":")
    latencies: list[list[float]] = [[] for _ in per_client]
    failures = [0] * len(per_client)
    start = threading.Barrier(len(per_client) + 1)

    def client(i: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        start.wait()
        for req in per_client[i]:
            t0 = time.perf_counter()
            conn.request("POST", path or req.path, body=req.body, headers=req.headers)
            response = conn.getresponse()
            response.read()
            latencies[i].append(time.perf_counter() - t0)
            if response.status not in (200, 201, 204):
                failures[i] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(per_client))]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, [x for lat in latencies for x in lat], sum(failures)


def _server_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by the server process and its children
    (``--workers`` processes), read from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # a process that ended while we looked
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _postmaster(url: str) -> int | None:
    """The PostgreSQL server's postmaster (its backends are its children), found by the
    port of ``url``; None for SQLite."""
    if not url.startswith("postgresql"):
        return None
    port = url.rsplit(":", 1)[1].split("/", 1)[0]
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"postgres") and b"-p" in args and port.encode() in args:
            return int(cmdline.parent.name)
    return None


def _cpu(pids: Sequence[int | None]) -> tuple[float, ...]:
    return tuple(_server_cpu(pid) if pid is not None else 0.0 for pid in pids)


def _report(name: str, seconds: float, latencies: list[float], failures: int,
            cpu: Sequence[float]) -> float:
    rate = len(latencies) / seconds
    cuts = statistics.quantiles(latencies, n=100)
    server, postgres, clients, machine = (x / len(latencies) * 1000 for x in cpu)
    pg = f" + PostgreSQL {postgres:.2f}" if postgres else ""
    print(f"  {name:<26} {rate:8.0f} req/s  p50 {cuts[49] * 1000:6.1f} ms  "
          f"p99 {cuts[98] * 1000:6.1f} ms  failures {failures}  "
          f"server CPU {server:.2f}{pg} ms/req (clients {clients:.2f}, machine {machine:.2f})")
    return rate


def _machine_cpu() -> float:
    """CPU seconds (user + system, every process and the kernel) the machine used so far."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(x) for i, x in enumerate(fields[:8]) if i not in (3, 4))  # not idle, iowait
    return busy / os.sysconf("SC_CLK_TCK")


def run(engine: str, url: str, directory: Path, per_client: int, workers: int) -> None:
    engine_ = make_engine(url)
    upgrade(engine_)
    engine_.dispose()
    env = make_log_env(directory, url, FixedClock(datetime.now(UTC).replace(microsecond=0)))
    world = make_world(env)
    proc, base = _start_server(url, directory, workers)
    try:
        with httpx.Client(base_url=base, timeout=30) as http:
            scope = declare_scope(http, world)
            agents = [enroll(http, world, scope_ids=[int(str(scope["id"]))])
                      for _ in range(CLIENTS)]
            t0 = time.perf_counter()
            prepared = [_prepare(http, a, scope, per_client) for a in agents]
            print(f"{engine}, {workers} server process(es): {CLIENTS} clients x {per_client} "
                  f"statements of "
                  f"{len(prepared[0][0].body)} bytes (signed in "
                  f"{time.perf_counter() - t0:.1f} s, before the clock starts)")
        pids = (proc.pid, _postmaster(url))

        def used() -> tuple[float, ...]:
            return (*_cpu(pids), time.process_time(), _machine_cpu())

        cpu = used()
        base_s, base_lat, base_fail = _load(base, prepared, path=NOOP)
        after = used()
        noop = _report("no-op endpoint (baseline)", base_s, base_lat, base_fail,
                       [b - a for a, b in zip(cpu, after, strict=True)])
        seconds, latencies, failures = _load(base, prepared)
        rate = _report("POST /api/v1/attestations", seconds, latencies, failures,
                       [b - a for a, b in zip(after, used(), strict=True)])
        p99 = statistics.quantiles(latencies, n=100)[98] * 1000
        print(f"  ingest: {rate:.0f} attestations/s (target >= 500), p99 {p99:.1f} ms "
              f"(target <= 100); {rate / noop:.2f}x the no-op endpoint's rate")
        with env.db.read() as session:
            stored = session.scalar(select(func.count()).select_from(Attestation))
            refused = session.scalar(select(func.count()).select_from(Refusal))
        print(f"  stored {stored} attestations, {refused} refusals "
              f"(expected {CLIENTS * per_client}, 0)")
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        env.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-client", type=int, default=500)
    parser.add_argument("--engine", choices=ENGINES, default="both")
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes (serve --workers)")
    args = parser.parse_args()
    run_engines(args.engine,
                lambda engine, url, d: run(engine, url, d, args.per_client, args.workers))


if __name__ == "__main__":
    main()
