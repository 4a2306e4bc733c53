"""The public, read-only log API, and the C2SP tlog-tiles view of the same tree."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy.orm import Session

from deletion_audit.core import tiles
from deletion_audit.core.b64 import b64encode
from deletion_audit.core.errors import FormatError
from deletion_audit.core.tlog_proof import TlogProof
from deletion_audit.deps import Context, DbRead
from deletion_audit.errors import BadRequest, NotFound
from deletion_audit.log import service
from deletion_audit.log.schemas import (
    ConsistencyProofRead,
    EntryRead,
    InclusionProofRead,
    LeafProofRead,
)
from deletion_audit.schemas import PUBLIC, error_responses

router = APIRouter(prefix="/api/v1/log", tags=["log"])

# The C2SP tlog-tiles view lives under this prefix: <prefix>/checkpoint, <prefix>/tile/...
TILES_PREFIX = "/api/v1/log/tiles"
tiles_router = APIRouter(prefix=TILES_PREFIX, tags=["log"])

_IMMUTABLE = "public, max-age=31536000, immutable"
_MUTABLE = "no-cache"


def _latest_note(session: DbRead) -> str:
    cp = service.latest_checkpoint(session)
    if cp is None:
        raise NotFound("the log has not signed a checkpoint yet")
    return cp.note


@router.get(
    "/checkpoint", response_class=PlainTextResponse, openapi_extra=PUBLIC,
    responses=error_responses(404),
    summary="The latest signed checkpoint (C2SP tlog-checkpoint signed note)",
)
def get_checkpoint(session: DbRead) -> PlainTextResponse:
    return PlainTextResponse(_latest_note(session), headers={"Cache-Control": _MUTABLE})


@router.get(
    "/key", response_class=PlainTextResponse, openapi_extra=PUBLIC,
    summary="The log's verifier key (C2SP signed-note vkey)",
)
def get_key(ctx: Context) -> PlainTextResponse:
    return PlainTextResponse(ctx.keys.verifier.vkey() + "\n")


@router.get(
    "/entries/{index}", response_model=EntryRead, openapi_extra=PUBLIC,
    responses=error_responses(400, 404),
)
def get_entry(session: DbRead, index: Annotated[int, Path(ge=0)]) -> EntryRead:
    leaf = service.entry(session, index)
    return EntryRead(
        index=index, leaf_hash=leaf.leaf_hash.hex(), data=b64encode(leaf.data),
        leaf=json.loads(leaf.data),
    )


@router.get(
    "/leaf/{leaf_hash}", response_model=LeafProofRead, openapi_extra=PUBLIC,
    responses=error_responses(400, 404),
    summary="Index and inclusion proof of a leaf, once integrated (404 until then)",
)
def get_leaf(session: DbRead, leaf_hash: str) -> LeafProofRead:
    index, size, hashes, note = _leaf_proof(session, leaf_hash)
    return LeafProofRead(
        leaf_hash=leaf_hash.lower(), index=index, size=size,
        hashes=[h.hex() for h in hashes], checkpoint=note,
    )


@router.get(
    "/leaf/{leaf_hash}/tlog-proof", response_class=PlainTextResponse, openapi_extra=PUBLIC,
    responses=error_responses(400, 404),
    summary="The same proof as a C2SP tlog-proof@v1 file, verifiable offline",
)
def get_leaf_tlog_proof(session: DbRead, leaf_hash: str) -> PlainTextResponse:
    index, _, hashes, note = _leaf_proof(session, leaf_hash)
    proof = TlogProof(index=index, hashes=tuple(hashes), checkpoint=note)
    return PlainTextResponse(proof.text(), media_type="text/plain; charset=utf-8")


def _leaf_proof(session: Session, leaf_hash: str) -> tuple[int, int, list[bytes], str]:
    try:
        raw = bytes.fromhex(leaf_hash)
    except ValueError:
        raise BadRequest("leaf hash must be 64 hex digits") from None
    if len(raw) != 32:
        raise BadRequest("leaf hash must be 64 hex digits")
    leaf = service.leaf_by_hash(session, raw)
    cp = service.latest_checkpoint(session)
    if leaf.idx is None or cp is None or leaf.idx >= cp.size:
        raise NotFound("the leaf is not integrated yet; ask again shortly")
    return leaf.idx, cp.size, service.inclusion_proof(session, index=leaf.idx, size=cp.size), \
        cp.note


@router.get(
    "/proof/inclusion", response_model=InclusionProofRead, openapi_extra=PUBLIC,
    responses=error_responses(400),
)
def get_inclusion_proof(
    session: DbRead, index: Annotated[int, Query(ge=0)], size: Annotated[int, Query(ge=1)]
) -> InclusionProofRead:
    hashes = service.inclusion_proof(session, index=index, size=size)
    return InclusionProofRead(index=index, size=size, hashes=[h.hex() for h in hashes])


@router.get(
    "/proof/consistency", response_model=ConsistencyProofRead, openapi_extra=PUBLIC,
    responses=error_responses(400),
)
def get_consistency_proof(
    session: DbRead, first: Annotated[int, Query(ge=1)], second: Annotated[int, Query(ge=1)]
) -> ConsistencyProofRead:
    hashes = service.consistency_proof(session, first=first, second=second)
    return ConsistencyProofRead(first=first, second=second, hashes=[h.hex() for h in hashes])


@tiles_router.get("/checkpoint", response_class=PlainTextResponse, openapi_extra=PUBLIC,
                  responses=error_responses(404))
def get_tiles_checkpoint(session: DbRead) -> PlainTextResponse:
    return PlainTextResponse(_latest_note(session), headers={"Cache-Control": _MUTABLE})


@tiles_router.get(
    "/tile/{path:path}", openapi_extra=PUBLIC, responses=error_responses(400, 404),
    response_class=Response, summary="C2SP tlog-tiles: hash tiles and entry bundles",
)
def get_tile(session: DbRead, path: str) -> Response:
    try:
        ref = tiles.parse_tile_path("tile/" + path)
    except FormatError as exc:
        raise BadRequest(str(exc)) from None
    cp = service.latest_checkpoint(session)
    size = cp.size if cp is not None else 0
    level = 0 if ref.level is None else ref.level
    available = tiles.tile_width_for(level, ref.index, size)
    want = ref.width or tiles.TILE_WIDTH
    if available is None or want > available or (ref.width is None and available < 256):
        raise NotFound("no such tile in the latest checkpoint")
    if ref.level is None:
        body = tiles.encode_entry_bundle(service.tile_entries(session, index=ref.index, width=want))
    else:
        body = b"".join(service.tile_hashes(session, level=level, index=ref.index, width=want))
    # A full tile never changes; a partial one is replaced by a wider one as the log grows,
    # but a given width is immutable too (its content is a prefix of the full tile).
    return Response(body, media_type="application/octet-stream",
                    headers={"Cache-Control": _IMMUTABLE})

