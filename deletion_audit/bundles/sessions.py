"""On-site sessions in a bundle: each record's one DSSE envelope with its co-signatures (both
tiers), and the item lists that open its commitment (court tier).

``verify`` checks every co-signature against the signers' logged key registrations (a
person's key registration names the person), that each signer is a participant the record
lists, whether the record's sign-off rule is met, and — in a court bundle — that the record
is the one logged and that the lists open its ``itemsCommitment``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from deletion_audit.bundles.layout import Tier
from deletion_audit.core import dsse
from deletion_audit.core.canonical import canonical_json, parse_json
from deletion_audit.core.errors import CoreError
from deletion_audit.core.predicates import SessionPredicate, expect_predicate
from deletion_audit.core.statements import parse_statement, statement_id
from deletion_audit.models import CaseRole, LogLeaf, OnSiteSession, SessionSignature
from deletion_audit.sessions.rules import RuleError, parse_rule

SESSIONS = "sessions/"
_ENVELOPE = re.compile(r"sessions/([0-9]+)/envelope\.json")


def envelope_path(session_id: int | str) -> str:
    return f"{SESSIONS}{session_id}/envelope.json"


def items_path(session_id: int | str) -> str:
    return f"{SESSIONS}{session_id}/items.json"


def signer_key_ids(events: Iterable[tuple[str, Mapping[str, Any]]]) -> set[str]:
    """Keys that co-signed a session record of the case: their registrations go in the
    bundle's keys.jsonl."""
    return {str(body["keyId"]) for event_type, body in events
            if event_type == "session" and body.get("action") == "signed"}


def write_sessions(session: Session, *, case_id: int, size: int, tier: Tier,
                   add: Callable[[str, bytes], None]) -> int:
    """Each session of the case with a co-signature logged within the bundle's checkpoint:
    its envelope, and in the court tier its item lists. Returns how many."""
    rows = session.execute(
        select(OnSiteSession, SessionSignature)
        .join(SessionSignature, SessionSignature.session_id == OnSiteSession.id)
        .join(LogLeaf, LogLeaf.leaf_hash == SessionSignature.leaf_hash)
        .where(OnSiteSession.case_id == case_id, LogLeaf.idx < size)
        .order_by(OnSiteSession.id, SessionSignature.id)).all()
    grouped: dict[int, tuple[OnSiteSession, list[SessionSignature]]] = {}
    for sess, signature in rows:
        grouped.setdefault(sess.id, (sess, []))[1].append(signature)
    for sid, (sess, signatures) in grouped.items():
        assert sess.record is not None  # noqa: S101 - a signature needs a record
        envelope = dsse.Envelope(sess.record, dsse.IN_TOTO_PAYLOAD_TYPE, tuple(
            dsse.Signature(keyid=s.key_id, sig=s.sig) for s in signatures))
        add(envelope_path(sid), envelope.to_json())
        if tier is Tier.COURT and sess.items is not None and sess.items_salt is not None:
            add(items_path(sid), canonical_json({"salt": sess.items_salt.hex(),
                                                 "lists": sess.items}) + b"\n")
    return len(grouped)


class _Key(Protocol):
    @property
    def public(self) -> Ed25519PublicKey: ...
    @property
    def subject_type(self) -> str: ...
    @property
    def subject_id(self) -> str: ...


class _Members(Protocol):
    names: set[str]

    def has(self, name: str) -> bool: ...
    def read(self, name: str) -> bytes: ...


@dataclass(frozen=True)
class BundledSession:
    session_id: str
    outcome: str
    signers: tuple[tuple[str, str], ...]
    """(user id, role) of each verified co-signature."""
    sign_off: str
    sign_off_met: bool

    @property
    def witnessed(self) -> bool:
        return self.sign_off_met and any(r == CaseRole.WITNESS.value for _, r in self.signers)

    def to_json(self) -> dict[str, Any]:
        return {"sessionId": self.session_id, "outcome": self.outcome,
                "signOff": self.sign_off, "signOffMet": self.sign_off_met,
                "witnessed": self.witnessed,
                "signers": [{"userId": u, "role": r} for u, r in self.signers]}


def _verifies(public: Ed25519PublicKey, sig: bytes, message: bytes) -> bool:
    try:
        public.verify(sig, message)
    except InvalidSignature:
        return False
    return True


def check_sessions(
    members: _Members, *, keys: Mapping[str, _Key], case_id: int | None, tier: Tier | None,
    logged_records: set[str] | None, problem: Callable[[str, str], None],
) -> list[BundledSession]:
    """Every session envelope of the bundle. ``logged_records``: the record digests the
    court tier's opened ``session`` events name (None in the public tier)."""
    out = []
    paths = sorted((n for n in members.names if _ENVELOPE.fullmatch(n)),
                   key=lambda n: int(_ENVELOPE.fullmatch(n).group(1)))  # type: ignore[union-attr]
    for path in paths:
        try:
            envelope = dsse.Envelope.from_json(members.read(path))
            predicate = expect_predicate(parse_statement(envelope.payload), SessionPredicate)
        except CoreError as exc:
            problem("session", f"{path}: not a session record: {exc}")
            continue
        if case_id is not None and predicate.case_id != str(case_id):
            problem("session", f"{path}: a session record of case {predicate.case_id}")
        digest = statement_id(envelope.payload)
        if logged_records is not None and digest not in logged_records:
            problem("session", f"{path}: record {digest} is not the one the session logged")
        roles = {p.user_id: p.role for p in predicate.participants}
        message = dsse.pae(envelope.payload_type, envelope.payload)
        signers: dict[str, str] = {}
        for number, signature in enumerate(envelope.signatures):
            key = keys.get(signature.keyid)
            if key is None or key.subject_type != "user" or not _verifies(
                    key.public, signature.sig, message):
                problem("session", f"{path}: signature {number} (key {signature.keyid}) does "
                        "not verify with a logged key registration of a person")
                continue
            if key.subject_id not in roles:
                problem("session", f"{path}: signature {number} is by user {key.subject_id}, "
                        "who is not a participant of the session")
                continue
            signers[key.subject_id] = roles[key.subject_id]
        try:
            met = parse_rule(predicate.sign_off).met(
                participants=[CaseRole(r) for r in roles.values()],
                signed=[CaseRole(r) for r in signers.values()])
        except RuleError as exc:
            problem("session", f"{path}: {exc}")
            met = False
        if tier is Tier.COURT:
            _check_items(members, predicate, path.removesuffix("envelope.json") + "items.json",
                         problem)
        out.append(BundledSession(
            session_id=predicate.session_id, outcome=predicate.outcome,
            signers=tuple(sorted(signers.items())), sign_off=predicate.sign_off,
            sign_off_met=met))
    return out


def _check_items(members: _Members, predicate: SessionPredicate, path: str,
                 problem: Callable[[str, str], None]) -> None:
    if not members.has(path):
        problem("session", f"the court bundle has no {path} to open session "
                f"{predicate.session_id}'s commitment")
        return
    try:
        attachment = parse_json(members.read(path), what=path)
        salt = bytes.fromhex(attachment["salt"])
        lists = attachment["lists"]
        opened = hashlib.sha256(salt + canonical_json(lists)).hexdigest()
        present = sum(len({d for scan in scope["scans"] for d in scan["present"]})
                      for scope in lists["scopes"])
    except (CoreError, KeyError, TypeError, ValueError) as exc:
        problem("session", f"{path}: unreadable ({exc})")
        return
    if opened != predicate.items_commitment:
        problem("session", f"{path} does not open session {predicate.session_id}'s "
                "itemsCommitment")
    elif present != predicate.items_present:
        problem("session", f"{path} lists {present} items; the record says "
                f"{predicate.items_present}")
