"""One leader among the instances, through a row both engines can update atomically.

Taking the lease is one conditional UPDATE — ``holder = me WHERE holder = me OR expired`` —
so of two instances racing for a lapsed lease exactly one sees its row updated (PostgreSQL
re-checks the condition on the locked row; SQLite writers are serialised); an INSERT makes
the row the first time, and losing that race is a unique violation. Times are on the
transport clock: a lease is about processes, not about cases. Leadership only avoids
doing work twice; every effect is also guarded in the database (a judgment's unique
episode, an outbox message's unique id), so a leader that lost its lease mid-job without
knowing it does no harm.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deletion_audit.db import Database
from deletion_audit.models import SchedulerLease

LEASE_NAME = "scheduler"


def _take(session: Session, *, name: str, holder: str, now: datetime,
          ttl: timedelta) -> bool:
    result = session.execute(
        update(SchedulerLease)
        .where(SchedulerLease.name == name,
               or_(SchedulerLease.holder == holder, SchedulerLease.expires_at <= now))
        .values(holder=holder, expires_at=now + ttl,
                # A renewal keeps the time it was taken; a takeover starts anew.
                acquired_at=case((SchedulerLease.holder == holder, SchedulerLease.acquired_at),
                                 else_=now))
        .execution_options(synchronize_session=False))
    if result.rowcount:  # type: ignore[attr-defined]
        return True
    if session.get(SchedulerLease, name) is not None:
        return False
    session.add(SchedulerLease(name=name, holder=holder, acquired_at=now, expires_at=now + ttl))
    session.flush()
    return True


def acquire(db: Database, *, holder: str, now: datetime, ttl: timedelta,
            name: str = LEASE_NAME) -> bool:
    """Take or renew the lease; True if ``holder`` leads until ``now + ttl``."""
    try:
        with db.write() as session:
            return _take(session, name=name, holder=holder, now=now, ttl=ttl)
    except IntegrityError:
        return False  # another instance made the row first: it leads


def release(db: Database, *, holder: str, now: datetime, name: str = LEASE_NAME) -> None:
    """Let a standby take over at once (a clean shutdown)."""
    with db.write() as session:
        session.execute(update(SchedulerLease)
                        .where(SchedulerLease.name == name, SchedulerLease.holder == holder)
                        .values(expires_at=now)
                        .execution_options(synchronize_session=False))


def current_holder(db: Database, *, now: datetime, name: str = LEASE_NAME) -> str | None:
    with db.read() as session:
        row = session.get(SchedulerLease, name)
        return row.holder if row is not None and row.expires_at > now else None
