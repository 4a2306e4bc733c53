"""Recipients and the outbox. A message is a row written in the transaction of the event
that causes it, under an id derived from what it is about (the judgment's episode, the
step, the recipient), so the same event can never queue it twice."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from deletion_audit.errors import Unprocessable
from deletion_audit.models import Case, CaseRole, Channel, OutboxMessage, Recipient
from deletion_audit.notifications.destinations import check_url
from deletion_audit.notifications.templates import render

_EMAIL = re.compile(r"^[^@\s<>\"]{1,64}@[A-Za-z0-9.-]{1,253}$")
_SECRET = re.compile(r"^whsec_[A-Za-z0-9+/=]{16,120}$")
MAX_STEP = 9


def add_recipient(
    session: Session, *, case_id: int, role: str, channel: str, address: str,
    secret: str | None = None, step: int = 0, after_hours: int = 0, created_by: int | None,
    development: bool, now: datetime,
) -> Recipient:
    """A recipient of a case's notifications in a case role, told at ``step`` (0 at once;
    n > 0 ``after_hours`` after the finding, if it still stands then)."""
    if role not in {r.value for r in CaseRole}:
        raise Unprocessable(f"unknown role {role!r}: one of {', '.join(r.value for r in CaseRole)}")
    if channel == Channel.EMAIL.value:
        if not _EMAIL.match(address):
            raise Unprocessable(f"not an e-mail address: {address!r}")
        if secret is not None:
            raise Unprocessable("an e-mail recipient takes no secret")
    elif channel == Channel.WEBHOOK.value:
        check_url(address, development=development)
        if secret is None or not _SECRET.match(secret):
            raise Unprocessable("a webhook recipient needs a Standard Webhooks secret "
                                "(whsec_ followed by base64)")
    else:
        raise Unprocessable(f"unknown channel {channel!r}: email or webhook")
    if not 0 <= step <= MAX_STEP:
        raise Unprocessable(f"step must be 0-{MAX_STEP}")
    if after_hours < 0 or (step == 0 and after_hours != 0) or (step > 0 and after_hours == 0):
        raise Unprocessable("step 0 is told at once (after_hours 0); a later step needs "
                            "after_hours > 0")
    row = Recipient(case_id=case_id, role=role, channel=channel, address=address,
                    secret=secret, step=step, after_hours=after_hours, created_at=now,
                    created_by=created_by)
    session.add(row)
    session.flush()
    return row


def recipients(session: Session, *, case_id: int) -> list[Recipient]:
    return list(session.execute(select(Recipient).where(Recipient.case_id == case_id)
                                .order_by(Recipient.step, Recipient.id)).scalars())


def escalation_delays(session: Session, *, case_id: int) -> dict[int, timedelta]:
    """Each later step of the case and how long after a finding it comes."""
    delays: dict[int, timedelta] = {}
    for row in recipients(session, case_id=case_id):
        if row.step > 0:
            delay = timedelta(hours=row.after_hours)
            delays[row.step] = min(delays.get(row.step, delay), delay)
    return delays


def message_id(about: str, step: int, recipient_id: int) -> str:
    digest = hashlib.sha256(f"{about}|{step}|{recipient_id}".encode()).hexdigest()
    return f"msg_{digest[:40]}"


def enqueue(
    session: Session, *, case: Case, finding: str, about: str, step: int,
    context: Mapping[str, object], data: Mapping[str, object], now: datetime,
    payload_type: str | None = None,
) -> list[OutboxMessage]:
    """Queue the message of ``finding`` for the case's recipients at ``step`` (its payload
    typed ``judgment.<finding>`` unless ``payload_type`` says otherwise)."""
    subject, body = render(finding, {"case_number": case.case_number,
                                     "case_title": case.title, **context}, step=step)
    rows = []
    for recipient in recipients(session, case_id=case.id):
        if recipient.step != step:
            continue
        mid = message_id(about, step, recipient.id)
        if session.execute(select(OutboxMessage.id).where(
                OutboxMessage.message_id == mid)).first() is not None:
            continue
        row = OutboxMessage(
            message_id=mid, case_id=case.id, recipient_id=recipient.id,
            channel=recipient.channel, subject=subject, body=body,
            payload={"type": payload_type or f"judgment.{finding}", "step": step,
                     "data": dict(data)},
            created_at=now, attempts=0, next_attempt_at=now)
        session.add(row)
        rows.append(row)
    session.flush()
    return rows
