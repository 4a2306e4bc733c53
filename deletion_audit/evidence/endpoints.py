"""``/api/v1/cases/{case_id}/manifests``: register, read, and the agents' matching material.

An import runs its own short transactions (see evidence.manifests), so these endpoints check
the caller in a read session and then hand the database to the import, never a request-long
write transaction.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import IO, Annotated, Any

from fastapi import APIRouter, File, Form, Header, Request, UploadFile
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from deletion_audit.cases.access import authorize
from deletion_audit.cases.permissions import Action
from deletion_audit.context import AppContext
from deletion_audit.deps import Context, DbRead
from deletion_audit.errors import BadRequest, Conflict, NotFound, PayloadTooLarge
from deletion_audit.evidence import manifests, proofs
from deletion_audit.evidence.schemas import (
    ConfirmRead,
    ConfirmRequest,
    HitRead,
    ManifestComplete,
    ManifestRead,
    UploadRead,
)
from deletion_audit.evidence.tasks import upload_path
from deletion_audit.identity.deps import Caller, CurrentUser, bearer
from deletion_audit.models.manifests import Manifest, ManifestUpload
from deletion_audit.pagination import Page, PageParams, paginate

router = APIRouter(prefix="/api/v1/cases/{case_id}/manifests", tags=["evidence"])

MAX_ENVELOPE = 1 << 20
MAX_CHUNK = 64 << 20
MAX_UPLOAD = 16 << 30


def manifest_read(row: Manifest) -> ManifestRead:
    return ManifestRead(
        id=row.id, case_id=row.case_id, state=row.state, case_number=row.case_number,
        count=row.count, root=row.root.hex(), file_sha256=row.file_sha256.hex(),
        header=row.header, examiner_key_id=row.examiner_key_id, kinds=row.kinds,
        people=row.subjects, supersedes=row.supersedes_id,
        superseded_reason=row.superseded_reason,
        leaf_hash=row.leaf_hash.hex() if row.leaf_hash else None, activated_at=row.activated_at,
    )


def _register(
    ctx: AppContext, caller: Caller, case_id: int, stream: IO[bytes],
    envelope: dict[str, Any], supersede_reason: str | None,
) -> ManifestRead:
    with ctx.db.read() as session:
        access = authorize(session, user_id=caller.user_id, case_id=case_id,
                           action=Action.REGISTER_MANIFESTS)
        keys = manifests.examiner_keys(session, case_id)
        case_number = access.case.case_number
    result = manifests.register_manifest(
        ctx.db, case_id=case_id, case_number=case_number, stream=stream, envelope=envelope,
        examiner_keys=keys, registered_by=caller.user_id, now=ctx.clock.now(),
        supersede_reason=supersede_reason,
    )
    with ctx.db.read() as session:
        return manifest_read(session.get_one(Manifest, result.manifest_id))


def _parse_envelope(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_ENVELOPE:
        raise PayloadTooLarge(f"the envelope is larger than {MAX_ENVELOPE} bytes")
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"the envelope is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadRequest("the envelope must be a JSON object")
    return value


@router.post("", status_code=201, response_model=ManifestRead, **bearer(400, 404, 409, 413))
def register_manifest(
    case_id: int,
    caller: CurrentUser,
    ctx: Context,
    manifest: Annotated[UploadFile, File(description="the manifest, JSON Lines")],
    envelope: Annotated[UploadFile, File(description="the examiner's DSSE envelope")],
    supersede_reason: Annotated[str | None, Form(max_length=2000)] = None,
) -> ManifestRead:
    """Register a signed manifest in one request (see ``uploads`` for large files).

    422 names the first bad line; nothing becomes visible unless the whole file is valid."""
    envelope_json = _parse_envelope(envelope.file.read(MAX_ENVELOPE + 1))
    return _register(ctx, caller, case_id, manifest.file, envelope_json, supersede_reason)


@router.get("", response_model=Page[ManifestRead], **bearer(400, 404))
def list_manifests(
    case_id: int, caller: CurrentUser, session: DbRead, page: PageParams
) -> Page[ManifestRead]:
    authorize(session, user_id=caller.user_id, case_id=case_id, action=Action.READ_CASE)
    query = select(Manifest).where(Manifest.case_id == case_id, Manifest.state != "importing")
    rows, cursor = paginate(session, query, key=Manifest.id, page=page, list_name="manifests")
    return Page(items=[manifest_read(r) for r in rows], next_cursor=cursor)


@router.get("/{manifest_id}", response_model=ManifestRead, **bearer(404))
def get_manifest(
    case_id: int, manifest_id: int, caller: CurrentUser, session: DbRead
) -> ManifestRead:
    """Header, counts by kind, people count and root."""
    authorize(session, user_id=caller.user_id, case_id=case_id, action=Action.READ_CASE)
    return manifest_read(
        manifests.get_manifest(session, case_id=case_id, manifest_id=manifest_id))


# -- resumable upload ----------------------------------------------------------------------


def _upload_path(ctx: AppContext, upload_id: str) -> Path:
    return upload_path(ctx.settings, upload_id)


def _get_upload(session: Session, case_id: int, upload_id: str) -> ManifestUpload:
    row = session.get(ManifestUpload, upload_id)
    if row is None or row.case_id != case_id:
        raise NotFound("no such upload in this case (it may have been completed or expired)")
    return row


@router.post("/uploads", status_code=201, response_model=UploadRead, **bearer(404))
def start_upload(case_id: int, caller: CurrentUser, ctx: Context) -> UploadRead:
    """Start a resumable upload: PUT chunks at ``received``, then complete it."""
    now = ctx.clock.now()
    upload_id = secrets.token_urlsafe(24)
    with ctx.db.write() as session:
        authorize(session, user_id=caller.user_id, case_id=case_id,
                  action=Action.REGISTER_MANIFESTS)
        path = _upload_path(ctx, upload_id)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.touch(mode=0o600, exist_ok=False)
        session.add(ManifestUpload(id=upload_id, case_id=case_id, created_by=caller.user_id,
                                   received=0, created_at=now, touched_at=now))
    return UploadRead(id=upload_id, received=0)


@router.get("/uploads/{upload_id}", response_model=UploadRead, **bearer(404))
def get_upload(case_id: int, upload_id: str, caller: CurrentUser, session: DbRead) -> UploadRead:
    """How much has arrived: where to resume."""
    authorize(session, user_id=caller.user_id, case_id=case_id,
              action=Action.REGISTER_MANIFESTS)
    row = _get_upload(session, case_id, upload_id)
    return UploadRead(id=row.id, received=row.received)


@router.put("/uploads/{upload_id}", response_model=UploadRead, **bearer(400, 404, 409, 413))
async def put_chunk(
    case_id: int, upload_id: str, request: Request, caller: CurrentUser, ctx: Context,
    upload_offset: Annotated[int, Header(ge=0, description="where this chunk starts")],
) -> UploadRead:
    """Append a chunk (raw bytes) at ``Upload-Offset``, which must equal ``received``."""
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > MAX_CHUNK:
            raise PayloadTooLarge(f"a chunk may be at most {MAX_CHUNK} bytes")
    received = await run_in_threadpool(
        _append_chunk, ctx, caller, case_id, upload_id, upload_offset, bytes(body))
    return UploadRead(id=upload_id, received=received)


def _append_chunk(ctx: AppContext, caller: Caller, case_id: int, upload_id: str,
                  offset: int, body: bytes) -> int:
    with ctx.db.write() as session:
        authorize(session, user_id=caller.user_id, case_id=case_id,
                  action=Action.REGISTER_MANIFESTS)
        row = _get_upload(session, case_id, upload_id)
        if row.manifest_id is not None:
            raise Conflict(f"this upload is already registered as manifest {row.manifest_id}")
        if offset != row.received:
            raise Conflict(f"the upload has {row.received} bytes: send the chunk that starts "
                           "there", received=row.received)
        if row.received + len(body) > MAX_UPLOAD:
            raise PayloadTooLarge(f"a manifest upload may be at most {MAX_UPLOAD} bytes")
        # The file is written before the row commits; a crash in between leaves bytes past
        # ``received`` that the next chunk at ``received`` overwrites (truncate below).
        with _upload_path(ctx, upload_id).open("r+b") as handle:
            handle.seek(row.received)
            handle.write(body)
            handle.truncate()
        row.received += len(body)
        row.touched_at = ctx.clock.now()
        return row.received


@router.post("/uploads/{upload_id}/complete", status_code=201, response_model=ManifestRead,
             **bearer(400, 404, 409))
def complete_upload(
    case_id: int, upload_id: str, body: ManifestComplete, caller: CurrentUser, ctx: Context
) -> ManifestRead:
    """Import the uploaded file with its envelope. A failed import keeps the upload (complete
    it again with the right envelope); a completed one answers 409 naming its manifest."""
    with ctx.db.read() as session:
        authorize(session, user_id=caller.user_id, case_id=case_id,
                  action=Action.REGISTER_MANIFESTS)
        upload = _get_upload(session, case_id, upload_id)
        if upload.manifest_id is not None:
            raise Conflict(f"this upload is already registered as manifest "
                           f"{upload.manifest_id}", manifest_id=upload.manifest_id)
    path = _upload_path(ctx, upload_id)
    with path.open("rb") as stream:
        result = _register(ctx, caller, case_id, stream, body.envelope, body.supersede_reason)
    with ctx.db.write() as session:
        row = session.get_one(ManifestUpload, upload_id)
        row.manifest_id = result.id
        row.touched_at = ctx.clock.now()
    path.unlink(missing_ok=True)
    return result


# -- matching material ---------------------------------------------------------------------


def _active_for_matching(session: Session, caller: Caller, case_id: int,
                         manifest_id: int) -> Manifest:
    authorize(session, user_id=caller.user_id, case_id=case_id, action=Action.MATCH_MANIFESTS)
    row = manifests.get_manifest(session, case_id=case_id, manifest_id=manifest_id)
    if row.state != "active":
        raise Conflict(f"manifest {manifest_id} is {row.state}; match against the active one")
    return row


@router.get("/{manifest_id}/filter", response_class=StreamingResponse, **bearer(404, 409))
def get_filter(
    case_id: int, manifest_id: int, caller: CurrentUser, session: DbRead, ctx: Context
) -> StreamingResponse:
    """The manifest's Bloom filter (core.bloom format): candidates to confirm, not proof."""
    row = _active_for_matching(session, caller, case_id, manifest_id)
    return filter_response(ctx, row)


def filter_response(ctx: AppContext, manifest: Manifest) -> StreamingResponse:
    """The filter streamed from its stored chunks; immutable for its manifest root."""
    return StreamingResponse(
        manifests.filter_chunks(ctx.db, manifest.id), media_type="application/octet-stream",
        headers={"Content-Length": str(manifests.filter_size(manifest)),
                 "Cache-Control": "private, max-age=31536000, immutable",
                 "ETag": f'"{manifest.root.hex()}"'},
    )


@router.post("/{manifest_id}/confirm", response_model=ConfirmRead, **bearer(400, 404, 409))
def confirm(
    case_id: int, manifest_id: int, body: ConfirmRequest, caller: CurrentUser, session: DbRead
) -> ConfirmRead:
    """Answer each true hit with its manifest leaf and an inclusion proof to the signed root;
    digests not in the manifest are simply absent from ``hits``."""
    row = _active_for_matching(session, caller, case_id, manifest_id)
    try:
        digests = [bytes.fromhex(d) for d in body.digests]
    except ValueError:
        raise BadRequest("digests must be hex") from None
    if any(len(d) != 32 for d in digests):
        raise BadRequest("each digest must be 32 bytes (64 hex digits)")
    hits = proofs.confirm(session, manifest=row, digests=digests)
    return ConfirmRead(
        manifest_id=row.id, size=row.count, root=row.root.hex(),
        hits=[HitRead(digest=h.digest.hex(), index=h.index, leaf=h.leaf.hex(),
                      proof=[p.hex() for p in h.proof]) for h in hits],
    )

