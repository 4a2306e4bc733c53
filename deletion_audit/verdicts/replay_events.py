"""The events a verdict replay reads, and how they are selected from the log.

:func:`events_of_case` selects a case's events (the exporter bundles them);
:class:`ReplayEvent` is one of them, :class:`ReplayError` names the event that does not fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from deletion_audit.bundles.rederive import case_events
from deletion_audit.models import Event, LogLeaf

# The event types a replay reads: the verdict's inputs, and the verdict events themselves
# (their version and time say which verdict a log size stands for).
REPLAYED_TYPES = frozenset({
    "party", "key-registration", "key-revocation", "manifest", "scope", "data-flow",
    "binding", "challenge", "obligation", "acceptance", "attestation", "verdict", "session",
    "review",
})


@dataclass(frozen=True)
class ReplayEvent:
    index: int
    """Log index of the event's leaf."""
    type: str
    """Event type (core/leaves.py ``EVENT_TYPES``)."""
    body: Mapping[str, Any]
    """The event body exactly as logged (with ``at`` where the writer added it)."""


class ReplayError(ValueError):
    """The events do not rebuild a case: named by the event's log index where there is one."""

    def __init__(self, message: str, *, at: ReplayEvent | None = None) -> None:
        where = f"event {at.index} ({at.type}): " if at is not None else ""
        super().__init__(where + message)


# -- selecting --------------------------------------------------------------------------


def events_of_case(session: Session, case_id: int) -> list[ReplayEvent]:
    """Every integrated event the replay of ``case_id`` reads, in log order."""
    rows = session.execute(
        select(LogLeaf.idx, Event.type, Event.body)
        .join(LogLeaf, LogLeaf.leaf_hash == Event.leaf_hash)
        .where(Event.type.in_(REPLAYED_TYPES), LogLeaf.idx.is_not(None), case_events(case_id))
        .order_by(LogLeaf.idx)
        .execution_options(yield_per=2_000))
    out = []
    signers: set[str] = set()
    for idx, event_type, body in rows:
        if event_type == "key-registration" and body.get("subjectType") != "agent":
            continue
        if event_type == "attestation" and body.get("userId") is not None:
            signers.add(str(body["keyId"]))
        if event_type == "session" and body.get("action") == "signed":
            signers.add(str(body["keyId"]))
        out.append(ReplayEvent(index=int(idx), type=event_type, body=body))
    if signers:
        out.extend(_user_key_registrations(session, signers))
        out.sort(key=lambda ev: ev.index)
    return out


def _user_key_registrations(session: Session, key_ids: set[str]) -> list[ReplayEvent]:
    """The registrations and revocations of the keys people signed the case's statements
    with (public events that name no case)."""
    rows = session.execute(
        select(LogLeaf.idx, Event.type, Event.body)
        .join(LogLeaf, LogLeaf.leaf_hash == Event.leaf_hash)
        .where(Event.type.in_(["key-registration", "key-revocation"]),
               LogLeaf.idx.is_not(None),
               cast(Event.body["keyId"].as_string(), String).in_(sorted(key_ids))))
    return [ReplayEvent(index=int(idx), type=event_type, body=body)
            for idx, event_type, body in rows if body.get("subjectType") == "user"]


def event_time(ev: ReplayEvent, value: object, what: str) -> datetime:
    if not isinstance(value, str):
        raise ReplayError(f"{what} is not a timestamp", at=ev)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ReplayError(f"{what} {value!r} is not a timestamp", at=ev) from None
    if parsed.utcoffset() is None:
        raise ReplayError(f"{what} {value!r} has no time zone", at=ev)
    return parsed


def case_of(body: Mapping[str, Any]) -> int | None:
    value = body.get("caseId", body.get("case"))
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None
