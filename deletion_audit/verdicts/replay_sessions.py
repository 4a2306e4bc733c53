"""On-site sessions in a verdict replay: the ``session`` events rebuild what the verdict
reads of a session (its state, participants and co-signatures), and every co-signature is
checked against the record it was logged with and the signer's logged key registration, so
a ``witnessed`` grade in a replayed verdict rests on signatures, not on the word of an event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from deletion_audit.core import dsse
from deletion_audit.core.b64 import b64decode
from deletion_audit.models import (
    CaseRole,
    OnSiteSession,
    SessionParticipant,
    SessionSignature,
    SessionState,
)
from deletion_audit.sessions.rules import RuleError, parse_rule


class SessionReplayError(ValueError):
    """A session event that does not follow from the earlier ones."""


@dataclass
class SessionReplay:
    session: Session
    case_id: int
    signers: dict[int, list[tuple[CaseRole, str]]] = field(default_factory=dict)

    def apply(self, body: Mapping[str, Any], *, now: datetime,
              user_keys: Mapping[str, Ed25519PublicKey]) -> None:
        action = body["action"]
        if action == "opened":
            self._opened(body, now)
            return
        sess = self.session.get(OnSiteSession, body["sessionId"])
        if sess is None:
            raise SessionReplayError(f"session {body['sessionId']} was not opened by an "
                                     "earlier event")
        if action == "recorded":
            self._recorded(sess, body, now)
        elif action == "signed":
            self._signed(sess, body, now, user_keys)
        elif action == "refused":
            participant = self._participant(sess, int(body["by"]))
            participant.refused_at, participant.refusal_reason = now, body["reason"]
            sess.state, sess.closed_at = SessionState.REFUSED.value, now
        elif action == "closed":
            self._closed(sess, body, now)
        elif action not in ("token-issued", "challenged"):
            raise SessionReplayError(f"unknown session action {action!r}")

    def _opened(self, body: Mapping[str, Any], now: datetime) -> None:
        sid = int(body["sessionId"])
        self.session.add(OnSiteSession(
            id=sid, case_id=self.case_id, place=body["place"],
            planned_at=datetime.fromisoformat(body["plannedAt"]),
            scope_ids=list(body["scopeIds"]), sign_off=body["signOff"],
            state=SessionState.OPEN.value, opened_by=body["by"], opened_at=now))
        self.session.flush()
        for p in body["participants"]:
            self.session.add(SessionParticipant(
                session_id=sid, user_id=p["userId"], role=CaseRole(p["role"]).value,
                notified_at=datetime.fromisoformat(p["notifiedAt"])))
        self.signers[sid] = []

    def _recorded(self, sess: OnSiteSession, body: Mapping[str, Any], now: datetime) -> None:
        if sess.state not in (SessionState.OPEN.value, SessionState.RECORDED.value):
            raise SessionReplayError(f"session {sess.id} is {sess.state}; it takes no record")
        if self.signers.get(sess.id):
            raise SessionReplayError(f"session {sess.id}'s record changes after it was signed")
        record = b64decode(body["record"])
        if hashlib.sha256(record).hexdigest() != body["recordDigest"]:
            raise SessionReplayError(f"session {sess.id}'s record does not have its digest")
        sess.record, sess.record_digest = record, body["recordDigest"]
        sess.items, sess.items_salt = body["lists"], bytes.fromhex(body["salt"])
        sess.state, sess.recorded_at = SessionState.RECORDED.value, now

    def _participant(self, sess: OnSiteSession, user_id: int) -> SessionParticipant:
        row = self.session.execute(select(SessionParticipant).where(
            SessionParticipant.session_id == sess.id, SessionParticipant.user_id == user_id)
        ).scalar_one_or_none()
        if row is None:
            raise SessionReplayError(f"user {user_id} is not a participant of session "
                                     f"{sess.id}")
        return row

    def _signed(self, sess: OnSiteSession, body: Mapping[str, Any], now: datetime,
                user_keys: Mapping[str, Ed25519PublicKey]) -> None:
        if sess.state != SessionState.RECORDED.value or sess.record is None:
            raise SessionReplayError(f"session {sess.id} is {sess.state}; it takes no "
                                     "signature")
        if body["recordDigest"] != sess.record_digest:
            raise SessionReplayError(f"a signature of session {sess.id} names another record")
        participant = self._participant(sess, int(body["by"]))
        key_id = str(body["keyId"])
        key = user_keys.get(key_id)
        if key is None:
            raise SessionReplayError(f"key {key_id} has no key registration among the events")
        sig = b64decode(body["sig"])
        try:
            key.verify(sig, dsse.pae(dsse.IN_TOTO_PAYLOAD_TYPE, sess.record))
        except InvalidSignature:
            raise SessionReplayError(f"the signature by key {key_id} does not verify over "
                                     f"session {sess.id}'s record") from None
        self.session.add(SessionSignature(
            session_id=sess.id, participant_id=participant.id, kind=body["kind"],
            key_id=key_id, sig=sig, record_digest=body["recordDigest"], signed_at=now,
            leaf_hash=bytes(32)))
        self.signers.setdefault(sess.id, []).append((CaseRole(participant.role), key_id))

    def _closed(self, sess: OnSiteSession, body: Mapping[str, Any], now: datetime) -> None:
        roles = [CaseRole(p.role) for p in self.session.execute(select(SessionParticipant).where(
            SessionParticipant.session_id == sess.id)).scalars()]
        signed = self.signers.get(sess.id, [])
        try:
            met = parse_rule(sess.sign_off).met(participants=roles,
                                                signed=[r for r, _ in signed])
        except RuleError as exc:
            raise SessionReplayError(str(exc)) from None
        if not met:
            raise SessionReplayError(f"session {sess.id} closes, but its signatures do not "
                                     f"meet its sign-off rule {sess.sign_off}")
        sess.state, sess.outcome, sess.closed_at = (SessionState.CLOSED.value,
                                                    body["outcome"], now)
