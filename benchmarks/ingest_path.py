"""The ingest path without HTTP: what one agent statement costs the server in CPU.

Calls exactly what ``POST /api/v1/attestations`` calls for an agent — the RFC 9421 check
(``authenticate``), then in one write transaction the request's nonce and ``ingest`` — for
signed deletion statements of 10 digests, one after the other in one thread, and prints the
CPU time per statement. Baseline in the same run: the same number of bare write
transactions of the same database (one nonce row each), through the same ``Database``.

Run from the repository root:
    .venv/bin/python -m benchmarks.ingest_path [--statements N] [--engine sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms
from sqlalchemy import insert
from starlette.datastructures import Headers

from benchmarks._engines import ENGINES, run_engines
from deletion_audit.app import create_app
from deletion_audit.attestations import ingest
from deletion_audit.clock import FixedClock
from deletion_audit.db import make_engine
from deletion_audit.hosts.signatures import authenticate, remember_nonce
from deletion_audit.migrations import upgrade
from deletion_audit.models import RequestNonce
from tests.support.agents import declare_scope, enroll
from tests.support.log import make_log_env
from tests.support.world import make_world

WARM_UP = 100


def run(engine_name: str, url: str, directory: Path, statements: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    env = make_log_env(directory, url, FixedClock(datetime.now(UTC).replace(microsecond=0)))
    world = make_world(env)
    client = TestClient(create_app(env.ctx, run_jobs=False), base_url="http://testserver")
    scope = declare_scope(client, world)
    agent = enroll(client, world, scope_ids=[int(str(scope["id"]))])
    requests: list[tuple[str, Headers, bytes]] = []
    prev = None
    for seq in range(WARM_UP + statements):
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
        requests.append((str(request.url), Headers(headers=dict(request.headers)),
                         signed.envelope))
    ctx = env.ctx

    def one(url_: str, headers: Headers, body: bytes) -> None:
        who = authenticate(ctx, method="POST", url=url_, headers=headers, body=body,
                           allow_revoked=True, now=datetime.now(UTC), remember=False)
        with ctx.db.write() as session:
            remember_nonce(session, who.id, who.nonce, datetime.now(UTC))
            out = ingest.ingest(session, agent=who, envelope=body, now=ctx.clock.now())
        if out.status != 201:
            raise SystemExit(f"statement refused: {out.body}")

    for request in requests[:WARM_UP]:
        one(*request)
    cpu = time.process_time()
    for request in requests[WARM_UP:]:
        one(*request)
    per_statement = (time.process_time() - cpu) / statements

    cpu = time.process_time()
    for _ in range(statements):
        with ctx.db.write() as session:
            session.execute(insert(RequestNonce).values(
                agent_id=1, nonce=secrets.token_hex(16), created_at=datetime.now(UTC)))
    per_transaction = (time.process_time() - cpu) / statements
    print(f"{engine_name}: {statements} statements of 10 digests, one thread")
    print(f"  authenticate + ingest: {per_statement * 1000:.2f} ms CPU per statement "
          f"(at most {1 / per_statement:.0f}/s on one core)")
    print(f"  bare write transaction (baseline): {per_transaction * 1000:.2f} ms CPU; "
          f"ratio {per_statement / per_transaction:.1f}")
    client.close()
    env.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=1000)
    parser.add_argument("--engine", choices=ENGINES, default="both")
    args = parser.parse_args()
    run_engines(args.engine, lambda engine, url, d: run(engine, url, d, args.statements))


if __name__ == "__main__":
    main()
