"""Organisations and users, and the internal audit table for account administration.

Account details are not verdict inputs and name people, so they go to ``audit_records``,
never to the public log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from deletion_audit.errors import BadRequest, Conflict, NotFound
from deletion_audit.models import AuditRecord, Organisation, OrgKind, User

# Machine names (CLI arguments, URLs); people and organisations are shown by display name.
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
NAME_RULE = "2-64 characters: lowercase letters, digits, '.', '_', '-', starting alphanumeric"


def check_name(what: str, name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise BadRequest(f"{what} name {name!r} is not valid: {NAME_RULE}")
    return name


def check_display_name(display_name: str) -> str:
    text = display_name.strip()
    if not text or len(text) > 256 or any(ord(c) < 32 for c in text):
        raise BadRequest("display name must be 1-256 printable characters")
    return text


def audit(
    session: Session, *, actor: str, action: str, subject: str,
    detail: Mapping[str, Any] | None = None, now: datetime,
) -> None:
    session.add(AuditRecord(at=now, actor=actor, action=action, subject=subject,
                            detail=dict(detail or {})))


def create_organisation(
    session: Session, *, name: str, display_name: str | None = None,
    kind: OrgKind = OrgKind.OTHER, actor: str, now: datetime,
) -> Organisation:
    check_name("organisation", name)
    shown = check_display_name(display_name or name)
    if find_organisation(session, name) is not None:
        raise Conflict(f"organisation {name!r} already exists")
    org = Organisation(name=name, display_name=shown, kind=kind.value, created_at=now)
    session.add(org)
    session.flush()
    audit(session, actor=actor, action="organisation-created", subject=f"organisation:{org.id}",
          detail={"name": name, "display_name": shown, "kind": kind.value}, now=now)
    return org


def find_organisation(session: Session, name: str) -> Organisation | None:
    return session.execute(
        select(Organisation).where(Organisation.name == name)
    ).scalar_one_or_none()


def get_organisation(session: Session, name: str) -> Organisation:
    org = find_organisation(session, name)
    if org is None:
        raise NotFound(f"no organisation named {name!r}")
    return org


def create_user(
    session: Session, *, name: str, organisation: Organisation, display_name: str | None = None,
    actor: str, now: datetime,
) -> User:
    check_name("user", name)
    shown = check_display_name(display_name or name)
    if find_user(session, name) is not None:
        raise Conflict(f"user {name!r} already exists")
    user = User(organisation_id=organisation.id, name=name, display_name=shown, created_at=now)
    session.add(user)
    session.flush()
    audit(session, actor=actor, action="user-created", subject=f"user:{user.id}",
          detail={"name": name, "display_name": shown, "organisation": organisation.name},
          now=now)
    return user


def find_user(session: Session, name: str) -> User | None:
    return session.execute(select(User).where(User.name == name)).scalar_one_or_none()


def get_user(session: Session, name: str) -> User:
    user = find_user(session, name)
    if user is None:
        raise NotFound(f"no user named {name!r}")
    return user


def disable_user(session: Session, *, user: User, actor: str, now: datetime) -> None:
    """A disabled user's tokens stop working at once; memberships and keys stay on record."""
    if user.disabled_at is not None:
        raise Conflict(f"user {user.name!r} is already disabled")
    user.disabled_at = now
    session.flush()
    audit(session, actor=actor, action="user-disabled", subject=f"user:{user.id}", now=now)
