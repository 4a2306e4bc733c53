"""``/api/v1/cases/{id}/obligations``: obligations, waivers, states and documents."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile
from fastapi.responses import Response
from sqlalchemy.orm import Session

from deletion_audit.cases import documents, obligations
from deletion_audit.cases.access import authorize
from deletion_audit.cases.deadlines import DeadlineRule, RuleError, build_rule
from deletion_audit.cases.permissions import Action
from deletion_audit.cases.schemas import (
    DeadlineCreate,
    DeadlineRead,
    DocumentDecision,
    DocumentRead,
    ObligationCreate,
    ObligationRead,
    ObligationStateChange,
    PendingRead,
    WaiverCreate,
)
from deletion_audit.deps import Context, DbRead, DbWrite
from deletion_audit.errors import Unprocessable
from deletion_audit.identity.deps import CurrentUser, bearer
from deletion_audit.models import Document, Obligation, ObligationKind, ObligationState
from deletion_audit.pagination import Page, PageParams, paginate
from deletion_audit.verdicts import custody as custody_status
from deletion_audit.verdicts.reasons import REASONS

router = APIRouter(prefix="/api/v1/cases/{case_id}/obligations", tags=["obligations"])


def _rule(body: DeadlineCreate) -> DeadlineRule:
    try:
        return build_rule(start_event=body.start_event, served_on=body.served_on,
                          preset=body.preset, amount=body.amount, unit=body.unit,
                          holiday_rule=body.holiday_rule)
    except RuleError as exc:
        raise Unprocessable(f"deadline: {exc}") from None


def _pending(session: Session, row: Obligation) -> PendingRead | None:
    waiting = custody_status.pending(session, row)
    if waiting is None:
        return None
    _, zh, en = REASONS[waiting.code]
    return PendingRead(code=waiting.code, zh=zh, en=en, scope_ids=list(waiting.scope_ids))


def obligation_read(row: Obligation, leaf_hash: bytes | None = None,
                    session: Session | None = None) -> ObligationRead:
    """``session`` given: with what the obligation still lacks, if anything."""
    deadline: dict[str, Any] | None = row.deadline
    return ObligationRead(
        id=row.id, kind=ObligationKind(row.kind), title=row.title, details=row.details,
        state=ObligationState(row.state),
        deadline=DeadlineRead.model_validate(deadline) if deadline else None,
        due_at=row.due_at, due_provisional=row.due_provisional,
        waiver_reason=row.waiver_reason, waived_at=row.waived_at,
        state_changed_at=row.state_changed_at, created_at=row.created_at,
        leaf_hash=leaf_hash.hex() if leaf_hash else None,
        pending=_pending(session, row) if session is not None else None,
    )


def document_read(row: Document, leaf_hash: bytes | None = None) -> DocumentRead:
    return DocumentRead(
        id=row.id, obligation_id=row.obligation_id, digest=row.digest, size=row.size,
        media_type=row.media_type, filename=row.filename, state=row.state,
        submitted_at=row.submitted_at, decided_at=row.decided_at,
        decision_reason=row.decision_reason, leaf_hash=leaf_hash.hex() if leaf_hash else None,
    )


@router.post("", status_code=201, response_model=ObligationRead, **bearer(404))
def set_obligation(
    case_id: int, body: ObligationCreate, caller: CurrentUser, session: DbWrite, ctx: Context
) -> ObligationRead:
    """Set an obligation with its deadline rule; the due instant is derived (Beijing end of
    the last day, in UTC; ``provisional`` beyond published holiday data)."""
    access = authorize(session, user_id=caller.user_id, case_id=case_id,
                       action=Action.SET_OBLIGATIONS)
    rule = _rule(body.deadline) if body.deadline is not None else None
    logged = obligations.set_obligation(session, access=access, kind=body.kind,
                                        title=body.title, details=body.details,
                                        deadline=rule, now=ctx.clock.now())
    return obligation_read(logged.row, logged.leaf_hash)


@router.get("", response_model=Page[ObligationRead], **bearer(400, 404))
def list_obligations(
    case_id: int, caller: CurrentUser, session: DbRead, page: PageParams
) -> Page[ObligationRead]:
    authorize(session, user_id=caller.user_id, case_id=case_id, action=Action.READ_CASE)
    rows, cursor = paginate(session, obligations.obligations_query(case_id),
                            key=Obligation.id, page=page, list_name="obligations")
    return Page(items=[obligation_read(r, session=session) for r in rows], next_cursor=cursor)


@router.get("/{obligation_id}", response_model=ObligationRead, **bearer(404))
def get_obligation(
    case_id: int, obligation_id: int, caller: CurrentUser, session: DbRead
) -> ObligationRead:
    authorize(session, user_id=caller.user_id, case_id=case_id, action=Action.READ_CASE)
    return obligation_read(obligations.get_obligation(session, case_id=case_id,
                                                      obligation_id=obligation_id),
                           session=session)


@router.post("/{obligation_id}/waive", response_model=ObligationRead, **bearer(404, 409))
def waive_obligation(
    case_id: int, obligation_id: int, body: WaiverCreate, caller: CurrentUser,
    session: DbWrite, ctx: Context,
) -> ObligationRead:
    """Waive an obligation; the reason is logged with the waiver, which is final."""
    access = authorize(session, user_id=caller.user_id, case_id=case_id,
                       action=Action.WAIVE_OBLIGATIONS)
    logged = obligations.waive(session, access=access, obligation_id=obligation_id,
                               reason=body.reason, now=ctx.clock.now())
    return obligation_read(logged.row, logged.leaf_hash)


@router.post("/{obligation_id}/state", response_model=ObligationRead, **bearer(404, 409))
def set_obligation_state(
    case_id: int, obligation_id: int, body: ObligationStateChange, caller: CurrentUser,
    session: DbWrite, ctx: Context,
) -> ObligationRead:
    """Record that an ongoing obligation (retention, custody-until, deidentify) is in force,
    breached or discharged, with a reason."""
    access = authorize(session, user_id=caller.user_id, case_id=case_id,
                       action=Action.SET_OBLIGATIONS)
    logged = obligations.set_state(session, access=access, obligation_id=obligation_id,
                                   state=body.state, reason=body.reason, now=ctx.clock.now())
    return obligation_read(logged.row, logged.leaf_hash)


@router.post("/{obligation_id}/documents", status_code=201, response_model=DocumentRead,
             **bearer(404, 409, 413))
def submit_document(
    case_id: int, obligation_id: int, file: Annotated[UploadFile, File()],
    caller: CurrentUser, session: DbWrite, ctx: Context,
) -> DocumentRead:
    """Submit a document (multipart field ``file``) for a ``document`` obligation; kept by
    its SHA-256 digest."""
    access = authorize(session, user_id=caller.user_id, case_id=case_id,
                       action=Action.SUBMIT_DOCUMENTS)
    data = file.file.read(documents.MAX_DOCUMENT_BYTES + 1)
    logged = documents.submit_document(
        session, access=access, obligation_id=obligation_id, data=data,
        media_type=file.content_type or "application/octet-stream",
        filename=file.filename or "document", now=ctx.clock.now(),
    )
    return document_read(logged.row, logged.leaf_hash)


@router.get("/{obligation_id}/documents", response_model=Page[DocumentRead],
            **bearer(400, 404))
def list_documents(
    case_id: int, obligation_id: int, caller: CurrentUser, session: DbRead, page: PageParams
) -> Page[DocumentRead]:
    authorize(session, user_id=caller.user_id, case_id=case_id,
              action=Action.READ_DOCUMENTS)
    obligations.get_obligation(session, case_id=case_id, obligation_id=obligation_id)
    rows, cursor = paginate(session, documents.documents_query(obligation_id), key=Document.id,
                            page=page, list_name="documents")
    return Page(items=[document_read(r) for r in rows], next_cursor=cursor)


@router.get("/{obligation_id}/documents/{document_id}/content", response_class=Response,
            **bearer(404))
def get_document_content(
    case_id: int, obligation_id: int, document_id: int, caller: CurrentUser, session: DbRead
) -> Response:
    authorize(session, user_id=caller.user_id, case_id=case_id,
              action=Action.READ_DOCUMENTS)
    obligation = obligations.get_obligation(session, case_id=case_id,
                                            obligation_id=obligation_id)
    row = documents.get_document(session, obligation=obligation, document_id=document_id)
    # Uploaded bytes are served as a download in a sandbox, never rendered as our origin.
    return Response(
        documents.document_bytes(session, row), media_type=row.media_type,
        headers={"Content-Disposition": f'attachment; filename="document-{row.id}"',
                 "X-Content-Type-Options": "nosniff",
                 "Content-Security-Policy": "sandbox", "ETag": f'"{row.digest}"'},
    )


def _decide(
    case_id: int, obligation_id: int, document_id: int, body: DocumentDecision,
    caller: CurrentUser, session: DbWrite, ctx: Context, *, accept: bool,
) -> DocumentRead:
    access = authorize(session, user_id=caller.user_id, case_id=case_id,
                       action=Action.ACCEPT_DOCUMENTS)
    logged = documents.decide_document(
        session, access=access, obligation_id=obligation_id, document_id=document_id,
        accept=accept, reason=body.reason, now=ctx.clock.now(),
    )
    return document_read(logged.row, logged.leaf_hash)


@router.post("/{obligation_id}/documents/{document_id}/accept", response_model=DocumentRead,
             **bearer(404, 409))
def accept_document(
    case_id: int, obligation_id: int, document_id: int, body: DocumentDecision,
    caller: CurrentUser, session: DbWrite, ctx: Context,
) -> DocumentRead:
    return _decide(case_id, obligation_id, document_id, body, caller, session, ctx,
                   accept=True)


@router.post("/{obligation_id}/documents/{document_id}/reject", response_model=DocumentRead,
             **bearer(404, 409))
def reject_document(
    case_id: int, obligation_id: int, document_id: int, body: DocumentDecision,
    caller: CurrentUser, session: DbWrite, ctx: Context,
) -> DocumentRead:
    """Reject a submitted document with a reason; the company may submit again."""
    return _decide(case_id, obligation_id, document_id, body, caller, session, ctx,
                   accept=False)
