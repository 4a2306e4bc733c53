"""The sender job: every queued message, at least once, under its stable id.

A message is read, delivered, then marked sent in a transaction of its own: a process
that dies before the delivery leaves the row queued for the next run (of this instance or
of the standby that takes over); one that dies after it but before the mark delivers it
again under the same id, which receivers use to drop the repeat. Attempts are on the
transport clock: a first attempt at once, retries with a growing backoff.
"""

from __future__ import annotations

import json
import logging
import smtplib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate

import httpx
from sqlalchemy import or_, select
from standardwebhooks import Webhook

from deletion_audit.config import Settings
from deletion_audit.db import Database
from deletion_audit.models import Channel, OutboxMessage, Recipient
from deletion_audit.notifications.destinations import DestinationRefused, check_resolved

log = logging.getLogger(__name__)

# Backoff doubling from 5 s to an hour, then hourly: about three days of attempts, enough
# for a receiver's weekend outage, before a message is given up as failed.
MAX_ATTEMPTS = 80
FIRST_BACKOFF = timedelta(seconds=5)
MAX_BACKOFF = timedelta(hours=1)
TIMEOUT_SECONDS = 10.0


class DeliveryFailed(Exception):
    """A delivery that may succeed later (a refused connection, a 5xx, a full mailbox)."""


@dataclass
class SendReport:
    sent: list[str] = field(default_factory=list)
    retrying: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def backoff(attempts: int) -> timedelta:
    delay: timedelta = FIRST_BACKOFF * (2 ** max(attempts - 1, 0))
    return min(delay, MAX_BACKOFF)


def _send_email(message: OutboxMessage, recipient: Recipient, settings: Settings,
                now: datetime) -> None:
    if settings.smtp_host is None:
        raise DeliveryFailed("no SMTP server configured (DELETION_AUDIT_SMTP_HOST)")
    mail = EmailMessage()
    mail["From"] = settings.smtp_from
    mail["To"] = recipient.address
    mail["Subject"] = message.subject
    mail["Date"] = formatdate(now.timestamp(), usegmt=True)
    # The stable id: a repeat after a crash carries the same Message-ID.
    mail["Message-ID"] = f"<{message.message_id}@{settings.smtp_from.rsplit('@', 1)[-1]}>"
    mail.set_content(message.body, charset="utf-8")
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port,
                          timeout=TIMEOUT_SECONDS) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password or "")
            smtp.send_message(mail)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryFailed(f"SMTP {settings.smtp_host}:{settings.smtp_port}: {exc}") from exc


def webhook_body(message: OutboxMessage, now: datetime) -> str:
    """The Standard Webhooks payload: ``type``, ``timestamp`` and ``data``."""
    payload = message.payload
    return json.dumps({"type": payload.get("type", "notification"),
                       "timestamp": now.isoformat(),
                       "data": {**payload.get("data", {}), "step": payload.get("step", 0),
                                "subject": message.subject, "text": message.body}},
                      ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _send_webhook(message: OutboxMessage, recipient: Recipient, settings: Settings,
                  now: datetime) -> None:
    check_resolved(recipient.address, development=settings.is_development)
    assert recipient.secret is not None  # noqa: S101 - add_recipient requires one
    body = webhook_body(message, now)
    signature = Webhook(recipient.secret).sign(message.message_id, now, body)
    headers = {"content-type": "application/json", "webhook-id": message.message_id,
               "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": signature}
    try:
        response = httpx.post(recipient.address, content=body.encode(), headers=headers,
                              timeout=TIMEOUT_SECONDS, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"POST {recipient.address}: {exc}") from exc
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"POST {recipient.address}: HTTP {response.status_code}")


def deliver(message: OutboxMessage, recipient: Recipient, *, settings: Settings,
            now: datetime) -> None:
    if message.channel == Channel.EMAIL.value:
        _send_email(message, recipient, settings, now)
    else:
        _send_webhook(message, recipient, settings, now)


def send_pending(db: Database, *, settings: Settings, now: datetime,
                 limit: int = 100) -> SendReport:
    """Deliver what is queued and due at ``now`` (transport clock)."""
    report = SendReport()
    with db.read() as session:
        pending = session.execute(
            select(OutboxMessage, Recipient)
            .join(Recipient, Recipient.id == OutboxMessage.recipient_id)
            .where(OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None),
                   # A first attempt at once: the row's times are the domain clock's.
                   or_(OutboxMessage.attempts == 0, OutboxMessage.next_attempt_at <= now))
            .order_by(OutboxMessage.id).limit(limit)).all()
    for message, recipient in pending:
        error: str | None = None
        permanent = False
        try:
            deliver(message, recipient, settings=settings, now=now)
        except DestinationRefused as exc:
            error, permanent = exc.message, True
        except DeliveryFailed as exc:
            error = str(exc)
        except Exception as exc:
            # A bug must not stall the queue behind one message: it is retried like a
            # failed delivery, and logged with its traceback.
            log.exception("notification could not be sent",
                          extra={"message_id": message.message_id})
            error = f"{type(exc).__name__}: {exc}"
        with db.write() as session:
            row = session.get_one(OutboxMessage, message.id)
            row.attempts += 1
            if error is None:
                row.sent_at, row.last_error = now, None
                report.sent.append(row.message_id)
                continue
            row.last_error = error
            if permanent or row.attempts >= MAX_ATTEMPTS:
                row.failed_at = now
                report.failed.append(row.message_id)
                log.warning("notification failed", extra={"message_id": row.message_id,
                                                           "error": error})
            else:
                row.next_attempt_at = now + backoff(row.attempts)
                report.retrying.append(row.message_id)
    return report
