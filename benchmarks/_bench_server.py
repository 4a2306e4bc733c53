"""The app ``deletion-audit serve`` runs, with one extra route for load baselines: a no-op
``POST /bench/noop`` that reads the body and answers 204 (same process, same middleware).

    python -m benchmarks._bench_server DATABASE_URL DATA_DIR PORT
"""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn
from fastapi import Request, Response

from deletion_audit.app import build_context, create_app
from deletion_audit.config import Settings


def main() -> None:
    url, data_dir, port = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    settings = Settings(environment="test", data_dir=data_dir, db_url=url)
    app = create_app(build_context(settings))

    @app.post("/bench/noop", status_code=204)
    async def noop(request: Request) -> Response:
        await request.body()
        return Response(status_code=204)

    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
