"""Sessions: open, enroll the examiner's agent, challenge, record, co-sign, close.

Every step is a logged (restricted) ``session`` event. Services flush, never commit.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature as _BadSig
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from deletion_audit.cases.access import CaseAccess
from deletion_audit.cases.service import log_event
from deletion_audit.core import dsse
from deletion_audit.core.b64 import b64encode
from deletion_audit.core.predicates import format_timestamp
from deletion_audit.errors import Conflict, NotFound, Unprocessable
from deletion_audit.events import Logged
from deletion_audit.hosts import challenges, enrollment
from deletion_audit.models import (
    Agent,
    AgentStatus,
    Binding,
    CaseRole,
    ChallengeOrigin,
    Membership,
    OnSiteSession,
    Party,
    PartyRole,
    Scope,
    SessionOutcome,
    SessionParticipant,
    SessionSignature,
    SessionState,
    UserKey,
)
from deletion_audit.sessions import errors, notices
from deletion_audit.sessions.rules import RuleError, parse_rule
from deletion_audit.verdicts.recording import mark_changed

# The hearing rule: participants are told three days ahead (a shorter notice is recorded
# and shown, not refused: an unannounced inspection is the prosecutor's call).
NOTICE = timedelta(days=3)
EXAMINER_PARTIES = frozenset({PartyRole.PROCURATORATE.value, PartyRole.FORENSIC_LAB.value})
MAX_REASON = 4000


@dataclass(frozen=True)
class ParticipantSpec:
    user_id: int
    notified_at: datetime | None = None


def _event(sess: OnSiteSession, action: str, by: int | None, **fields: Any) -> dict[str, Any]:
    return {"action": action, "caseId": sess.case_id, "sessionId": sess.id, **fields,
            "by": by}


def _active_keys(session: Session, user_id: int) -> list[UserKey]:
    return list(session.execute(select(UserKey).where(
        UserKey.user_id == user_id, UserKey.revoked_at.is_(None)).order_by(UserKey.id)
    ).scalars())


def open_session(
    session: Session, *, access: CaseAccess, place: str, planned_at: datetime,
    participants: Sequence[ParticipantSpec], scope_ids: Sequence[int], sign_off: str,
    now: datetime,
) -> Logged[OnSiteSession]:
    case_id = access.case.id
    place = place.strip()
    if not place or len(place) > 512:
        raise Unprocessable("place must be 1-512 characters")
    wanted = sorted(set(scope_ids))
    if not wanted:
        raise Unprocessable("a session inspects at least one scope")
    found = set(session.execute(select(Scope.id).where(
        Scope.case_id == case_id, Scope.id.in_(wanted))).scalars())
    missing = [s for s in wanted if s not in found]
    if missing:
        raise Unprocessable(f"case {case_id} has no scope(s) {missing}")
    if len({p.user_id for p in participants}) != len(participants) or not participants:
        raise Unprocessable("list each participant once, at least one")
    roles = dict(session.execute(select(Membership.user_id, Membership.role).where(
        Membership.case_id == case_id,
        Membership.user_id.in_([p.user_id for p in participants]))).all())
    for spec in participants:
        if spec.user_id not in roles:
            raise Unprocessable(f"user {spec.user_id} is not a member of case {case_id}")
        if not _active_keys(session, spec.user_id):
            raise Unprocessable(f"user {spec.user_id} has no registered key to sign with; "
                                "they register one with POST /api/v1/users/me/keys")
        if spec.notified_at is not None and spec.notified_at > now:
            raise Unprocessable(f"user {spec.user_id}: notified_at is in the future")
    try:
        rule = parse_rule(sign_off)
        rule.check_possible(CaseRole(roles[p.user_id]) for p in participants)
    except RuleError as exc:
        raise Unprocessable(str(exc)) from None
    sess = OnSiteSession(case_id=case_id, place=place, planned_at=planned_at, scope_ids=wanted,
                         sign_off=rule.text, state=SessionState.OPEN.value,
                         opened_by=access.user_id, opened_at=now)
    session.add(sess)
    session.flush()
    rows = [SessionParticipant(session_id=sess.id, user_id=p.user_id, role=roles[p.user_id],
                               notified_at=p.notified_at or now) for p in participants]
    session.add_all(rows)
    session.flush()
    leaf = log_event(session, "session", _event(
        sess, "opened", access.user_id, place=place, plannedAt=format_timestamp(planned_at),
        scopeIds=wanted, signOff=rule.text,
        participants=[{"userId": r.user_id, "role": r.role,
                       "notifiedAt": format_timestamp(r.notified_at)} for r in rows]), now=now)
    notices.announce(session, sess=sess, roles={r.role for r in rows}, now=now)
    return Logged(row=sess, leaf_hash=leaf)


def sessions_query(case_id: int) -> Select[OnSiteSession]:
    return select(OnSiteSession).where(OnSiteSession.case_id == case_id)


def get_session(session: Session, *, case_id: int, session_id: int,
                for_update: bool = False) -> OnSiteSession:
    stmt = select(OnSiteSession).where(OnSiteSession.id == session_id,
                                       OnSiteSession.case_id == case_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.execute(stmt).scalar_one_or_none()
    if row is None:
        raise NotFound(f"case {case_id} has no session {session_id}")
    return row


def participants_of(session: Session, session_id: int) -> list[SessionParticipant]:
    return list(session.execute(select(SessionParticipant).where(
        SessionParticipant.session_id == session_id).order_by(SessionParticipant.id)).scalars())


def signatures_of(session: Session, session_id: int) -> list[SessionSignature]:
    return list(session.execute(select(SessionSignature).where(
        SessionSignature.session_id == session_id).order_by(SessionSignature.id)).scalars())


def _require_open(sess: OnSiteSession, what: str) -> None:
    if sess.state != SessionState.OPEN.value:
        raise Conflict(f"session {sess.id} is {sess.state}; {what} only while it is open")


def issue_token(
    session: Session, *, access: CaseAccess, sess: OnSiteSession, party_id: int | None,
    expires_in: timedelta, verifier_key: str, now: datetime,
) -> enrollment.IssuedToken:
    """An enrollment token for the examiner's agent: scoped to the session, bound to its
    scopes beside the company's agents."""
    _require_open(sess, "the examiner's agent is enrolled")
    party = access.party if party_id is None else session.get(Party, party_id)
    if party is None or party.case_id != sess.case_id:
        raise Unprocessable(f"case {sess.case_id} has no party {party_id}")
    if party.role not in EXAMINER_PARTIES:
        raise Unprocessable("a session's agent is the examiner's: its party is the "
                            f"procuratorate or a forensic lab, not a {party.role}")
    issued = enrollment.issue_token(
        session, access=access, party_id=party.id, scope_ids=list(sess.scope_ids),
        session_id=sess.id, expires_in=expires_in, verifier_key=verifier_key, now=now)
    log_event(session, "session", _event(sess, "token-issued", access.user_id,
                                         tokenId=issued.row.id, partyId=party.id), now=now)
    return issued


def issue_challenges(
    session: Session, *, access: CaseAccess, sess: OnSiteSession, ttl: timedelta,
    now: datetime,
) -> list[tuple[Any, Agent]]:
    """A challenge (origin ``session``) for every live binding of the session's scopes to
    the examiner's agent enrolled for this session and to the company's agents."""
    _require_open(sess, "challenges are issued")
    rows = session.execute(
        select(Binding, Agent, Party.role).join(Agent, Agent.id == Binding.agent_id)
        .join(Party, Party.id == Agent.party_id)
        .where(Binding.scope_id.in_(sess.scope_ids), Binding.unbound_at.is_(None),
               Agent.case_id == sess.case_id, Agent.status == AgentStatus.ACTIVE.value)
        .order_by(Binding.scope_id, Agent.id)).all()
    chosen = [(b, a) for b, a, role in rows
              if a.session_id == sess.id or role not in EXAMINER_PARTIES]
    if not any(a.session_id == sess.id for _, a in chosen):
        raise Conflict(f"no agent enrolled for session {sess.id} is bound to its scopes: "
                       "enroll the examiner's agent with a session token first")
    issued = [(challenges.issue_challenge(
        session, agent=agent, scope_id=binding.scope_id, origin=ChallengeOrigin.SESSION,
        ttl=ttl, issued_by=access.user_id, now=now, session_id=sess.id), agent)
        for binding, agent in chosen]
    log_event(session, "session", _event(sess, "challenged", access.user_id,
                                         challengeIds=[c.id for c, _ in issued]), now=now)
    return issued


# -- co-signing -----------------------------------------------------------------------


def record_envelope(sess: OnSiteSession, signatures: Sequence[SessionSignature]
                    ) -> dsse.Envelope | None:
    """The one envelope of the record with every co-signature; None before the first."""
    if sess.record is None or not signatures:
        return None
    return dsse.Envelope(sess.record, dsse.IN_TOTO_PAYLOAD_TYPE,
                         tuple(dsse.Signature(keyid=s.key_id, sig=s.sig) for s in signatures))


def _participant(session: Session, sess: OnSiteSession, user_id: int) -> SessionParticipant:
    row = session.execute(select(SessionParticipant).where(
        SessionParticipant.session_id == sess.id, SessionParticipant.user_id == user_id)
    ).scalar_one_or_none()
    if row is None:
        raise errors.NotParticipant(f"you are not a participant of session {sess.id}; only "
                                    "the people listed when it was opened sign its record")
    return row


def _require_signable(sess: OnSiteSession) -> bytes:
    if sess.state in (SessionState.CLOSED.value, SessionState.REFUSED.value):
        raise errors.SessionClosed(f"session {sess.id} is {sess.state}; it takes no more "
                                   "signatures")
    if sess.record is None:
        raise errors.NoRecord(f"session {sess.id} has no record to sign yet")
    return sess.record


def _signing_key(session: Session, user_id: int, keyid: str) -> UserKey:
    key = session.execute(select(UserKey).where(UserKey.key_id == keyid)).scalar_one_or_none()
    if key is None or key.user_id != user_id:
        raise errors.UnknownKey(f"key {keyid} is not registered to you; register it with "
                                "POST /api/v1/users/me/keys")
    if key.revoked_at is not None:
        raise errors.KeyRevoked(f"key {keyid} was revoked at "
                                f"{format_timestamp(key.revoked_at)}; sign with a registered key")
    return key


def sign(
    session: Session, *, access: CaseAccess, sess: OnSiteSession, keyid: str, sig: bytes,
    payload_sha256: str | None, now: datetime,
) -> Logged[SessionSignature]:
    """Accept a ``dsse`` co-signature over the record's PAE from a listed participant's
    registered, unrevoked key; close the session once its sign-off rule is met."""
    record = _require_signable(sess)
    me = _participant(session, sess, access.user_id)
    if me.refused_at is not None:
        raise errors.SessionClosed(f"you refused to sign session {sess.id}")
    if payload_sha256 is not None and payload_sha256 != sess.record_digest:
        raise errors.RecordChanged(
            f"you signed a record with digest {payload_sha256}, but session {sess.id}'s record "
            f"is {sess.record_digest}; fetch the record again, read it, and sign that")
    key = _signing_key(session, access.user_id, keyid)
    done = signatures_of(session, sess.id)
    if any(s.key_id == key.key_id for s in done):
        raise errors.DuplicateSignature(f"key {key.key_id} already signed session {sess.id}")
    if any(s.participant_id == me.id for s in done):
        raise errors.AlreadySigned(f"you already signed session {sess.id} with another key")
    try:
        Ed25519PublicKey.from_public_bytes(key.public_key).verify(
            sig, dsse.pae(dsse.IN_TOTO_PAYLOAD_TYPE, record))
    except _BadSig:
        raise errors.InvalidSignature(
            f"the signature by key {key.key_id} does not verify over session {sess.id}'s "
            f"record {sess.record_digest}: it was made over other bytes (a changed record) "
            "or altered") from None
    row = SessionSignature(session_id=sess.id, participant_id=me.id, kind="dsse",
                           key_id=key.key_id, sig=sig, record_digest=sess.record_digest or "",
                           signed_at=now, leaf_hash=b"")
    leaf = log_event(session, "session", _event(
        sess, "signed", access.user_id, kind="dsse", keyId=key.key_id, sig=b64encode(sig),
        recordDigest=sess.record_digest, role=me.role), now=now)
    row.leaf_hash = leaf
    session.add(row)
    session.flush()
    _close_if_met(session, sess, [*done, row], now)
    return Logged(row=row, leaf_hash=leaf)


def _close_if_met(session: Session, sess: OnSiteSession, done: Sequence[SessionSignature],
                  now: datetime) -> None:
    people = participants_of(session, sess.id)
    role_of = {p.id: CaseRole(p.role) for p in people}
    rule = parse_rule(sess.sign_off)
    if not rule.met(participants=role_of.values(),
                    signed=[role_of[s.participant_id] for s in done]):
        return
    findings = bool(sess.items and any(
        scan["present"] for scope in sess.items["scopes"] for scan in scope["scans"]))
    outcome = SessionOutcome.FINDINGS if findings else SessionOutcome.CLEAN
    sess.state, sess.outcome, sess.closed_at = SessionState.CLOSED.value, outcome.value, now
    session.flush()
    log_event(session, "session", _event(
        sess, "closed", None, outcome=outcome.value, recordDigest=sess.record_digest,
        keyIds=[s.key_id for s in done]), now=now)
    # A closed session changes the scopes' grades: the verdict is recomputed.
    mark_changed(session, case_id=sess.case_id, now=now)


def refuse(session: Session, *, access: CaseAccess, sess: OnSiteSession, reason: str,
           now: datetime) -> Logged[SessionParticipant]:
    """A participant refuses to sign, with reasons: the session ends ``refused``."""
    _require_signable(sess)
    me = _participant(session, sess, access.user_id)
    text = reason.strip()
    if not text or len(text) > MAX_REASON:
        raise Unprocessable(f"a refusal needs its reasons (1-{MAX_REASON} characters)")
    if any(s.participant_id == me.id for s in signatures_of(session, sess.id)):
        raise errors.AlreadySigned(f"you already signed session {sess.id}")
    me.refused_at, me.refusal_reason = now, text
    sess.state, sess.closed_at = SessionState.REFUSED.value, now
    session.flush()
    leaf = log_event(session, "session", _event(
        sess, "refused", access.user_id, reason=text, recordDigest=sess.record_digest,
        role=me.role), now=now)
    return Logged(row=me, leaf_hash=leaf)


def items_attachment(sess: OnSiteSession) -> dict[str, Any]:
    """The court-only attachment that opens the record's commitment."""
    if sess.items is None or sess.items_salt is None:
        raise errors.NoRecord(f"session {sess.id} has no record yet")
    return {"salt": sess.items_salt.hex(), "lists": sess.items}


def new_salt() -> bytes:
    return secrets.token_bytes(32)


def sha256_text(value: str | None) -> str | None:
    return hashlib.sha256(value.encode()).hexdigest() if value else None

