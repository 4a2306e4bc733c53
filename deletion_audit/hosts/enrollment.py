"""Enrollment: one-time tokens issued by people, redeemed once by an agent.

A token is ``<secret>.<fingerprint>``: the secret (32 random bytes, base64url) is stored as
its SHA-256 only; the fingerprint is the first 16 hex digits of SHA-256 of the log's
verifier key string, so the agent can check the server's log key before trusting it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deletion_audit.cases.access import CaseAccess
from deletion_audit.cases.permissions import PROSECUTOR
from deletion_audit.cases.service import log_event
from deletion_audit.core import keys
from deletion_audit.core.b64 import b64decode, b64encode
from deletion_audit.core.errors import FormatError
from deletion_audit.core.predicates import AgentHost, KeyRegistrationPredicate, format_timestamp
from deletion_audit.errors import Forbidden, Unprocessable
from deletion_audit.hosts.errors import TokenExpired, TokenInvalid, TokenUsed
from deletion_audit.log.service import append_event
from deletion_audit.models import (
    Agent,
    AgentStatus,
    Binding,
    EnrollmentToken,
    OnSiteSession,
    Party,
    PartyRole,
    Scope,
)

FINGERPRINT_DIGITS = 16
RegistrationRole = Literal["respondent", "vendor", "custodian", "forensic-lab", "procuratorate"]
DEFAULT_HEARTBEAT_SECONDS = 300
# The key-registration predicate's role names (DESIGN: how an examiner's agent is told
# from the company's).
_REGISTRATION_ROLES: dict[PartyRole, RegistrationRole] = {
    PartyRole.RESPONDENT: "respondent", PartyRole.VENDOR: "vendor",
    PartyRole.CUSTODIAN: "custodian", PartyRole.FORENSIC_LAB: "forensic-lab",
    PartyRole.PROCURATORATE: "procuratorate",
}


def fingerprint(verifier_key: str) -> str:
    """First 16 hex digits of SHA-256 of the log's verifier key string (no newline)."""
    return hashlib.sha256(verifier_key.encode()).hexdigest()[:FINGERPRINT_DIGITS]


def _secret_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True)
class IssuedToken:
    row: EnrollmentToken
    token: str


def issue_token(
    session: Session, *, access: CaseAccess, party_id: int | None, scope_ids: list[int],
    session_id: int | None, expires_in: timedelta, verifier_key: str, now: datetime,
) -> IssuedToken:
    case_id = access.case.id
    party = access.party if party_id is None else session.get(Party, party_id)
    if party is None or party.case_id != case_id:
        raise Unprocessable(f"case {case_id} has no party {party_id}")
    if party.id != access.party.id and access.role != PROSECUTOR:
        raise Forbidden("only a prosecutor may issue enrollment tokens for another party")
    if PartyRole(party.role) not in _REGISTRATION_ROLES:
        raise Unprocessable(f"a {party.role} party runs no agents")
    wanted = sorted(set(scope_ids))
    if wanted:
        found = set(session.execute(
            select(Scope.id).where(Scope.case_id == case_id, Scope.id.in_(wanted))
        ).scalars())
        missing = [s for s in wanted if s not in found]
        if missing:
            raise Unprocessable(f"case {case_id} has no scope(s) {missing}")
    if session_id is not None:
        onsite = session.get(OnSiteSession, session_id)
        if onsite is None or onsite.case_id != case_id:
            raise Unprocessable(f"case {case_id} has no session {session_id}")
        outside = sorted(set(wanted) - set(onsite.scope_ids))
        if outside:
            raise Unprocessable(f"scope(s) {outside} are not inspected by session {session_id}")
    secret = secrets.token_urlsafe(32)
    row = EnrollmentToken(
        secret_hash=_secret_hash(secret), case_id=case_id, party_id=party.id,
        party_role=party.role, scope_ids=wanted, session_id=session_id, created_at=now,
        created_by=access.user_id, expires_at=now + expires_in,
    )
    session.add(row)
    session.flush()
    return IssuedToken(row=row, token=f"{secret}.{fingerprint(verifier_key)}")


def _redeem(session: Session, token: str, verifier_key: str, now: datetime) -> EnrollmentToken:
    secret, _, print_ = token.rpartition(".")
    if not secret or not hmac.compare_digest(print_, fingerprint(verifier_key)):
        raise TokenInvalid("this enrollment token is not one of this server's")
    row = session.execute(
        select(EnrollmentToken).where(EnrollmentToken.secret_hash == _secret_hash(secret))
        .with_for_update()
    ).scalar_one_or_none()
    if row is None:
        raise TokenInvalid("unknown enrollment token; ask for a new one")
    if row.used_at is not None:
        raise TokenUsed("this enrollment token was used already; ask for a new one")
    if now >= row.expires_at:
        raise TokenExpired(f"this enrollment token expired at {format_timestamp(row.expires_at)}"
                           "; ask for a new one")
    row.used_at = now
    return row


def _sha256_or_none(value: str | None) -> str | None:
    return hashlib.sha256(value.encode()).hexdigest() if value else None


def enroll(
    session: Session, *, token: str, public_key: str, host: dict[str, Any], build_digest: str,
    agent_version: str, verifier_key: str, now: datetime,
) -> Agent:
    """Redeem a token: a new agent with its key, bound to the token's scopes, its key
    registration logged as a public event (place details only as SHA-256)."""
    try:
        raw = b64decode(public_key)
        if len(raw) != 32 or b64encode(raw) != public_key:
            raise FormatError("not 32 bytes of standard base64")
        verifying = keys.public_key_from_raw(raw)
    except FormatError as exc:
        raise Unprocessable(f"public_key: {exc}") from None
    grant = _redeem(session, token, verifier_key, now)
    agent = Agent(
        public_id="agt_" + secrets.token_hex(8), case_id=grant.case_id,
        party_id=grant.party_id, key_id=keys.key_id(verifying), public_key=raw,
        status=AgentStatus.ACTIVE.value, enrolled_at=now, host=host,
        build_digest=build_digest, agent_version=agent_version, enrolled_via=grant.id,
        session_id=grant.session_id, heartbeat_seconds=DEFAULT_HEARTBEAT_SECONDS,
    )
    try:
        with session.begin_nested():
            session.add(agent)
            session.flush()
    except IntegrityError:
        raise Unprocessable("this public key is already enrolled; generate a new key") from None
    registration = KeyRegistrationPredicate(
        key_id=agent.key_id, public_key=public_key, subject_type="agent",
        subject_id=agent.public_id, registered_at=now, case_id=str(grant.case_id),
        party_id=str(grant.party_id), role=_REGISTRATION_ROLES[PartyRole(grant.party_role)],
        scope_ids=[str(s) for s in grant.scope_ids],
        session_id=str(grant.session_id) if grant.session_id is not None else None,
        build_digest=build_digest, agent_version=agent_version,
        host=AgentHost(hostname_sha256=_sha256_or_none(host.get("hostname")),
                       machine_id_sha256=_sha256_or_none(host.get("machine_id")),
                       os=host.get("os"), machine=host.get("machine")),
    )
    append_event(session, event_type="key-registration", event=registration.to_predicate(),
                 now=now)
    # Bound after its key is registered: in log order, a binding names a known agent (a
    # replay of the case's events relies on it).
    for scope_id in grant.scope_ids:
        _bind_by_token(session, agent=agent, scope_id=scope_id, now=now)
    return agent


def _bind_by_token(session: Session, *, agent: Agent, scope_id: int, now: datetime) -> None:
    scope = session.get(Scope, scope_id)
    if scope is None or scope.case_id != agent.case_id:
        return  # scopes are of the case when the token is issued and are never removed
    row = Binding(case_id=agent.case_id, scope_id=scope.id, agent_id=agent.id,
                  created_at=now, created_by=None)
    session.add(row)
    session.flush()
    log_event(session, "binding", {
        "action": "bound", "caseId": agent.case_id, "bindingId": row.id, "scopeId": scope.id,
        "specDigest": scope.spec_digest, "agentId": agent.public_id, "by": None,
        "enrollmentTokenId": agent.enrolled_via,
    }, now=now)
