"""The app ``deletion-audit serve`` runs, with one extra route for load baselines: a no-op
``POST /bench/noop`` that reads the body and answers 204 (same processes, same middleware).

    python -m benchmarks._bench_server DATABASE_URL DATA_DIR PORT [WORKERS]
"""

from __future__ import annotations

import os
import sys

import uvicorn
from fastapi import FastAPI, Request, Response

from deletion_audit.app import app_from_environment


def bench_app() -> FastAPI:
    app = app_from_environment()

    @app.post("/bench/noop", status_code=204)
    async def noop(request: Request) -> Response:
        await request.body()
        return Response(status_code=204)

    return app


def main() -> None:
    url, data_dir, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    workers = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    os.environ.update({"DELETION_AUDIT_ENVIRONMENT": "test", "DELETION_AUDIT_DATA_DIR": data_dir,
                       "DELETION_AUDIT_DB_URL": url})
    uvicorn.run("benchmarks._bench_server:bench_app", factory=True, workers=workers,
                host="127.0.0.1", port=port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
