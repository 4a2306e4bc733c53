"""The FastAPI application factory: a thin shell over the domain."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from deletion_audit import __version__
from deletion_audit.attestations import endpoints as attestation_endpoints
from deletion_audit.bundles import endpoints as bundle_endpoints
from deletion_audit.cases import endpoints as case_endpoints
from deletion_audit.cases import obligation_endpoints, scope_endpoints
from deletion_audit.clock import Clock, SystemClock
from deletion_audit.config import Settings
from deletion_audit.context import AppContext
from deletion_audit.db import Database
from deletion_audit.errors import AuditError
from deletion_audit.evidence import endpoints as evidence_endpoints
from deletion_audit.hosts import endpoints as host_endpoints
from deletion_audit.hosts.limits import BodyLimit
from deletion_audit.identity import endpoints as identity_endpoints
from deletion_audit.log import endpoints as log_endpoints
from deletion_audit.log.identity import check_not_rolled_back, load_keys
from deletion_audit.log.service import current_size
from deletion_audit.metrics import Metrics
from deletion_audit.notifications import endpoints as notification_endpoints
from deletion_audit.reviews import endpoints as review_endpoints
from deletion_audit.scheduling import endpoints as judgment_endpoints
from deletion_audit.scheduling.runner import JobRunner
from deletion_audit.schemas import PUBLIC
from deletion_audit.sessions import endpoints as session_endpoints
from deletion_audit.verdicts import endpoints as verdict_endpoints

log = logging.getLogger(__name__)

SECURITY_SCHEMES: dict[str, Any] = {
    "bearerToken": {
        "type": "http", "scheme": "bearer",
        "description": "A person's personal access token.",
    },
    "httpSignature": {
        "type": "apiKey", "in": "header", "name": "Signature",
        "description": "An agent's RFC 9421 HTTP message signature "
        "(@method, @target-uri, content-digest; created, nonce, keyid).",
    },
}


def build_context(
    settings: Settings, *, db: Database | None = None, clock: Clock | None = None
) -> AppContext:
    """Open the database and check the instance's identity; raises StartupRefused."""
    db = db or Database(settings.database_url)
    clock = clock or SystemClock(settings.domain_clock_offset)
    with db.read() as session:
        keys = load_keys(session, settings)
        check_not_rolled_back(session, keys_=keys, checkpoint_path=settings.checkpoint_path)
    return AppContext(settings=settings, db=db, clock=clock, keys=keys,
                      metrics=Metrics(db, clock))


def create_app(ctx: AppContext, *, run_jobs: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The jobs run only while this instance leads (scheduling/runner.py).
        runner = JobRunner(ctx) if run_jobs else None
        if runner is not None:
            runner.start()
        try:
            yield
        finally:
            if runner is not None:
                runner.shutdown()

    app = FastAPI(
        title="deletion-audit", version=__version__, lifespan=lifespan,
        description="Verifiable deletion of illegally collected personal data: signed agent "
        "attestations checked against an evidence manifest, a public transparency log, and "
        "evidence bundles anyone can verify offline.",
    )
    app.state.ctx = ctx
    _install_error_handlers(app)
    # First: routes are matched in order, one regular expression each, and agents' statements
    # are the busiest path (its prefix is no other router's).
    app.include_router(attestation_endpoints.router)
    app.include_router(log_endpoints.router)
    app.include_router(log_endpoints.tiles_router)
    app.include_router(identity_endpoints.router)
    app.include_router(case_endpoints.router)
    app.include_router(obligation_endpoints.router)
    app.include_router(scope_endpoints.router)
    app.include_router(evidence_endpoints.router)
    app.include_router(host_endpoints.case_router)
    app.include_router(host_endpoints.router)
    app.include_router(verdict_endpoints.router)
    app.include_router(judgment_endpoints.router)
    app.include_router(review_endpoints.router)
    app.include_router(notification_endpoints.router)
    app.include_router(bundle_endpoints.router)
    app.include_router(session_endpoints.router)
    app.add_middleware(BodyLimit)

    @app.get("/healthz", openapi_extra=PUBLIC, tags=["ops"])
    def healthz() -> dict[str, Any]:
        with ctx.db.read() as session:
            return {"status": "ok", "log_size": current_size(session)}

    @app.get("/metrics", openapi_extra=PUBLIC, tags=["ops"], response_class=PlainTextResponse)
    def metrics() -> Response:
        return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AuditError)
    async def _audit_error(_request: Request, exc: AuditError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', 'invalid')}"
            for err in exc.errors()
        ]
        return JSONResponse(
            {"code": "invalid_request", "message": "; ".join(parts) or "invalid request"},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse({"code": code, "message": str(exc.detail)},
                            status_code=exc.status_code)


# A server holds many long-lived objects (the app and its routes, SQLAlchemy's metadata and
# statement caches, the models' classes); the collector's full passes over them, at the
# default thresholds, made the tail of ingest's latency under load (p99 113 ms against 75
# ms with them frozen, benchmarks/RESULTS.md). What requests allocate is mostly freed by
# reference counting; cycles are still collected, less often.
GC_THRESHOLDS = (50_000, 50, 50)


def settle_for_serving() -> None:
    """Call in a server process once its app is built: what exists now is kept out of the
    cyclic collector's passes, which run less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def app_from_environment() -> FastAPI:
    """The app of one worker process of ``serve --workers N`` (uvicorn's factory): the
    settings come from the environment (``DELETION_AUDIT_*``), which ``serve`` sets from its
    own options before it starts the workers. Every worker may run the jobs; only the one
    holding the scheduler's lease does."""
    settings = Settings()
    run_jobs = os.environ.get("DELETION_AUDIT_SERVE_JOBS", "1") == "1"
    app = create_app(build_context(settings), run_jobs=run_jobs)
    settle_for_serving()
    return app
