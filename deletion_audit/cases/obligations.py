"""Obligations: what the company must do, each with its kind's states and a deadline rule.

States by kind (DESIGN, Contracts: the verdict):

- ``delete-manifest`` is ``pending``: it follows the manifest's items, which the verdict
  reads; only a waiver changes its row;
- ``document`` goes ``pending`` → ``submitted`` → ``accepted`` | ``rejected`` (a rejected one
  may be submitted again), driven by its documents (cases/documents.py);
- ``retention``, ``custody-until`` and ``deidentify`` are ongoing: ``in_force``, ``breached``
  or ``discharged``, set by the prosecutor (later issues judge some of them);
- any of them may be ``waived`` by the prosecutor, with a logged reason; a waiver is final.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from deletion_audit.cases.access import CaseAccess
from deletion_audit.cases.deadlines import DeadlineRule, compute_due
from deletion_audit.cases.service import log_event
from deletion_audit.core.predicates import format_timestamp
from deletion_audit.errors import Conflict, NotFound, Unprocessable
from deletion_audit.events import Logged
from deletion_audit.models import Obligation, ObligationKind, ObligationState

K, St = ObligationKind, ObligationState

INITIAL_STATE: Mapping[ObligationKind, ObligationState] = {
    K.DELETE_MANIFEST: St.PENDING,
    K.DOCUMENT: St.PENDING,
    K.RETENTION: St.IN_FORCE,
    K.CUSTODY_UNTIL: St.IN_FORCE,
    K.DEIDENTIFY: St.IN_FORCE,
}
ONGOING = frozenset({K.RETENTION, K.CUSTODY_UNTIL, K.DEIDENTIFY})
ONGOING_STATES = frozenset({St.IN_FORCE, St.BREACHED, St.DISCHARGED})
# Kinds whose obligation is meaningless without a date.
DEADLINE_REQUIRED = frozenset({K.DELETE_MANIFEST, K.DOCUMENT, K.CUSTODY_UNTIL})

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,63}$")]


class _Details(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeleteManifestDetails(_Details):
    pass


class DocumentDetails(_Details):
    document_kind: Literal[
        "undertaking", "policy", "procedure", "incident-plan", "training-record", "reply",
        "other",
    ] = "other"


class RetentionDetails(_Details):
    """E.g. faces deleted within 24 hours of each visit (case 5)."""

    max_age_hours: Annotated[int, Field(gt=0, le=24 * 366 * 10)]
    scope_ids: list[int] = []
    """The scopes the rule covers; none named: every scope of the case."""
    kinds: list[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,63}$")]] = []
    """The kinds of object it limits (``image``: the agent's age summary names kinds by
    MIME type); none named: every kind. A SQL scope's rows are all held to the rule."""


class CustodyDetails(_Details):
    """A sealed backup held until a date, then destroyed (case 4)."""

    medium: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    custodian_party_id: int | None = None
    scope_id: int | None = None
    """The custodian's ``sealed_container`` scope: each scan of it re-hashes the container,
    compared with the digest the custodian's ``sealed`` statement recorded."""


class DeidentifyDetails(_Details):
    """Masking rules a published dataset must meet (case 9)."""

    dataset: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    rules: Annotated[list[Slug], Field(min_length=1)]


DETAILS: Mapping[ObligationKind, type[_Details]] = {
    K.DELETE_MANIFEST: DeleteManifestDetails,
    K.DOCUMENT: DocumentDetails,
    K.RETENTION: RetentionDetails,
    K.CUSTODY_UNTIL: CustodyDetails,
    K.DEIDENTIFY: DeidentifyDetails,
}


def parse_details(kind: ObligationKind, details: Mapping[str, Any]) -> dict[str, Any]:
    try:
        model = DETAILS[kind].model_validate(dict(details))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'details'}: {e['msg']}"
            for e in exc.errors()
        )
        raise Unprocessable(f"details of a {kind.value} obligation: {problems}") from None
    return model.model_dump(mode="json")


def deadline_json(rule: DeadlineRule) -> dict[str, Any]:
    due = compute_due(rule)
    return {**rule.to_json(), "last_day": due.last_day.isoformat(),
            "due_at": format_timestamp(due.due_at), "provisional": due.provisional}


def set_obligation(
    session: Session, *, access: CaseAccess, kind: ObligationKind, title: str,
    details: Mapping[str, Any], deadline: DeadlineRule | None, now: datetime,
) -> Logged[Obligation]:
    title = title.strip()
    if not title:
        raise Unprocessable("an obligation needs a title")
    if deadline is None and kind in DEADLINE_REQUIRED:
        raise Unprocessable(f"a {kind.value} obligation needs a deadline rule")
    clean = parse_details(kind, details)
    due = compute_due(deadline) if deadline is not None else None
    state = INITIAL_STATE[kind]
    row = Obligation(
        case_id=access.case.id, kind=kind.value, title=title, details=clean,
        state=state.value, deadline=deadline_json(deadline) if deadline else None,
        due_at=due.due_at if due else None, due_provisional=bool(due and due.provisional),
        state_changed_at=now, created_at=now, created_by=access.user_id,
    )
    session.add(row)
    session.flush()
    leaf = log_event(session, "obligation", {
        "action": "set", "caseId": access.case.id, "obligationId": row.id, "kind": kind.value,
        "title": title, "details": clean, "deadline": row.deadline, "state": state.value,
        "by": access.user_id,
    }, now=now)
    return Logged(row=row, leaf_hash=leaf)


def obligations_query(case_id: int) -> Select[Obligation]:
    return select(Obligation).where(Obligation.case_id == case_id)


def get_obligation(
    session: Session, *, case_id: int, obligation_id: int, for_update: bool = False
) -> Obligation:
    stmt = select(Obligation).where(Obligation.id == obligation_id,
                                    Obligation.case_id == case_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.execute(stmt).scalar_one_or_none()
    if row is None:
        raise NotFound(f"case {case_id} has no obligation {obligation_id}")
    return row


def _require_reason(reason: str | None, what: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise Unprocessable(f"{what} needs a reason")
    if len(text) > 4000:
        raise Unprocessable(f"the reason for {what} is at most 4000 characters")
    return text


def waive(
    session: Session, *, access: CaseAccess, obligation_id: int, reason: str, now: datetime
) -> Logged[Obligation]:
    row = get_obligation(session, case_id=access.case.id, obligation_id=obligation_id,
                         for_update=True)
    text = _require_reason(reason, "a waiver")
    if row.state == St.WAIVED:
        raise Conflict(f"obligation {row.id} is already waived")
    previous = row.state
    row.state, row.state_changed_at = St.WAIVED.value, now
    row.waiver_reason, row.waived_at, row.waived_by = text, now, access.user_id
    session.flush()
    leaf = log_event(session, "obligation", {
        "action": "waived", "caseId": access.case.id, "obligationId": row.id,
        "from": previous, "reason": text, "by": access.user_id,
    }, now=now)
    return Logged(row=row, leaf_hash=leaf)


def set_state(
    session: Session, *, access: CaseAccess, obligation_id: int, state: ObligationState,
    reason: str | None, now: datetime,
) -> Logged[Obligation]:
    """The prosecutor's finding on an ongoing obligation: in force, breached, discharged."""
    row = get_obligation(session, case_id=access.case.id, obligation_id=obligation_id,
                         for_update=True)
    kind = ObligationKind(row.kind)
    if kind not in ONGOING:
        raise Conflict(
            f"a {kind.value} obligation's state is not set by hand "
            + ("(it follows its documents)" if kind is K.DOCUMENT else
               "(it follows the manifest's items)")
        )
    if state not in ONGOING_STATES:
        names = ", ".join(sorted(s.value for s in ONGOING_STATES))
        raise Unprocessable(f"a {kind.value} obligation can be: {names} (or waived)")
    if row.state == St.WAIVED:
        raise Conflict(f"obligation {row.id} was waived; a waiver is final")
    if row.state == state:
        raise Conflict(f"obligation {row.id} is already {state.value}")
    text = _require_reason(reason, f"marking an obligation {state.value}")
    previous = row.state
    row.state, row.state_changed_at = state.value, now
    session.flush()
    leaf = log_event(session, "obligation", {
        "action": "state", "caseId": access.case.id, "obligationId": row.id,
        "from": previous, "to": state.value, "reason": text, "by": access.user_id,
    }, now=now)
    return Logged(row=row, leaf_hash=leaf)


def record_breach(session: Session, row: Obligation, *, reason: str, statement_id: str,
                  now: datetime, **extra: Any) -> bytes:
    """The service's own finding that ``row`` is breached, borne out by the statement
    ``statement_id`` (a scan, a custodian's statement): the same logged state change as a
    prosecutor's (:func:`set_state`), by nobody. Its leaf hash."""
    previous = row.state
    row.state, row.state_changed_at = St.BREACHED.value, now
    session.flush()
    return log_event(session, "obligation", {
        "action": "state", "caseId": row.case_id, "obligationId": row.id,
        "from": previous, "to": St.BREACHED.value, "reason": reason, **extra,
        "by": None, "statementId": statement_id,
    }, now=now)
