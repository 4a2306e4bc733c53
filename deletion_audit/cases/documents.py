"""Documents the respondent submits for a ``document`` obligation (undertaking letter,
policy, training record), kept by SHA-256 digest, accepted or rejected by the prosecutor."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from deletion_audit.cases.access import CaseAccess
from deletion_audit.cases.obligations import get_obligation
from deletion_audit.cases.service import log_event
from deletion_audit.errors import Conflict, NotFound, PayloadTooLarge, Unprocessable
from deletion_audit.events import Logged
from deletion_audit.models import (
    Document,
    DocumentContent,
    DocumentState,
    Obligation,
    ObligationKind,
    ObligationState,
)

MAX_DOCUMENT_BYTES = 25 * 1024 * 1024
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$")


def _document_obligation(session: Session, access: CaseAccess, obligation_id: int) -> Obligation:
    row = get_obligation(session, case_id=access.case.id, obligation_id=obligation_id,
                         for_update=True)
    if row.kind != ObligationKind.DOCUMENT:
        raise Conflict(f"obligation {row.id} is a {row.kind} obligation, not a document one")
    return row


def submit_document(
    session: Session, *, access: CaseAccess, obligation_id: int, data: bytes,
    media_type: str, filename: str, now: datetime,
) -> Logged[Document]:
    obligation = _document_obligation(session, access, obligation_id)
    if not data:
        raise Unprocessable("the document is empty")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise PayloadTooLarge(f"a document is at most {MAX_DOCUMENT_BYTES} bytes")
    media_type = media_type.split(";", 1)[0].strip().lower()
    if not _MEDIA_TYPE.fullmatch(media_type):
        raise Unprocessable(f"{media_type!r} is not a media type (e.g. application/pdf)")
    filename = filename.strip()[:256] or "document"
    if obligation.state in (ObligationState.WAIVED, ObligationState.ACCEPTED):
        raise Conflict(f"obligation {obligation.id} is {obligation.state}; nothing to submit")
    if obligation.state == ObligationState.SUBMITTED:
        raise Conflict(f"a document for obligation {obligation.id} awaits the prosecutor's "
                       "decision; submit again if it is rejected")
    digest = hashlib.sha256(data).hexdigest()
    if session.get(DocumentContent, digest) is None:
        session.add(DocumentContent(digest=digest, size=len(data), data=data))
        # No ORM relationship orders the two inserts, so the content goes in first.
        session.flush()
    row = Document(
        case_id=access.case.id, obligation_id=obligation.id, digest=digest, size=len(data),
        media_type=media_type, filename=filename, state=DocumentState.SUBMITTED.value,
        submitted_at=now, submitted_by=access.user_id,
    )
    session.add(row)
    obligation.state, obligation.state_changed_at = ObligationState.SUBMITTED.value, now
    session.flush()
    leaf = log_event(session, "obligation", {
        "action": "document-submitted", "caseId": access.case.id,
        "obligationId": obligation.id, "documentId": row.id, "digest": digest,
        "size": len(data), "mediaType": media_type, "by": access.user_id,
    }, now=now)
    return Logged(row=row, leaf_hash=leaf)


def decide_document(
    session: Session, *, access: CaseAccess, obligation_id: int, document_id: int,
    accept: bool, reason: str | None, now: datetime,
) -> Logged[Document]:
    obligation = _document_obligation(session, access, obligation_id)
    row = get_document(session, obligation=obligation, document_id=document_id)
    if row.state != DocumentState.SUBMITTED:
        raise Conflict(f"document {row.id} was already {row.state}")
    if obligation.state == ObligationState.WAIVED:
        raise Conflict(f"obligation {obligation.id} was waived")
    text = (reason or "").strip()
    if not accept and not text:
        raise Unprocessable("a rejection needs a reason the company can act on")
    if len(text) > 4000:
        raise Unprocessable("the reason is at most 4000 characters")
    outcome = DocumentState.ACCEPTED if accept else DocumentState.REJECTED
    row.state, row.decided_at, row.decided_by = outcome.value, now, access.user_id
    row.decision_reason = text or None
    obligation.state = (ObligationState.ACCEPTED if accept else ObligationState.REJECTED).value
    obligation.state_changed_at = now
    session.flush()
    leaf = log_event(session, "acceptance", {
        "action": outcome.value, "caseId": access.case.id, "obligationId": obligation.id,
        "documentId": row.id, "digest": row.digest, "reason": text, "by": access.user_id,
    }, now=now)
    return Logged(row=row, leaf_hash=leaf)


def documents_query(obligation_id: int) -> Select[Document]:
    return select(Document).where(Document.obligation_id == obligation_id)


def get_document(session: Session, *, obligation: Obligation, document_id: int) -> Document:
    row = session.get(Document, document_id)
    if row is None or row.obligation_id != obligation.id:
        raise NotFound(f"obligation {obligation.id} has no document {document_id}")
    return row


def document_bytes(session: Session, document: Document) -> bytes:
    return session.get_one(DocumentContent, document.digest).data
