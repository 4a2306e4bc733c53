"""Ingest of a statement signed by a person: a vendor party's statement about a data flow,
a custodian's statement about a sealed backup, an examiner's de-identification check.

People submit to the same ``POST /api/v1/attestations`` as agents, authenticated by their
bearer token instead of a request signature. The checks, in order:

1. the envelope is a DSSE envelope (else 422 ``bad_envelope``, not recorded: there is no
   statement to record);
2. **earlier outcome**: statement id = SHA-256 of the payload; the same person sending the
   same statement again gets its original answer (the 201 receipt, or the same refusal);
3. **key**: the envelope verifies with one of the person's registered, unrevoked keys —
   else ``key_revoked`` (403, it verifies with a revoked key of theirs), ``invalid_signature``
   (400, it names a key of theirs but does not verify with it: a tampered payload),
   ``wrong_key`` (403, it verifies with a key registered to someone else) or
   ``unknown_key`` (401);
4. **predicate**: one people submit (``vendor``, ``custody`` v2, ``deidentify``) — the
   ``session`` predicate is refused as ``session_record`` (422: session records are co-signed
   through the session endpoints), any other as ``unknown_predicate`` (422); then its
   schema, strictly (422 ``bad_predicate``);
5. **case**: a case the person is a member of (else 404 ``wrong_case``, exactly as the API
   answers for a case one cannot see) in a role the permission table allows for the
   predicate (403 ``not_permitted``);
6. **content** against the case (422): the data flow, the obligation, the party, the medium,
   the rules, and a time that is not in the future;
7. stored whole, as received, with its log leaf (restricted event ``attestation``), in the
   caller's transaction, and recorded for the verdict (verdicts/recording.py).

From step 3 on, a refusal is recorded (``Refusal`` with the person, and a logged
``refusal`` event) and is never evidence. It is attributed to a case only when the person
is a member of the case the statement names. A body over the limit is refused with 413 by
the size limit before the request is read or authenticated (hosts/limits.py): with no
statement and no known submitter there is nothing to record.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from deletion_audit.attestations.ingest import BadEnvelope, _flush_once, _Refuse
from deletion_audit.attestations.known import Outcome, receipt
from deletion_audit.cases import custody
from deletion_audit.cases.access import CaseAccess, case_access
from deletion_audit.cases.permissions import Action, describe_role, who_may
from deletion_audit.cases.service import log_event
from deletion_audit.core import dsse
from deletion_audit.core.errors import FormatError, SignatureError
from deletion_audit.core.keys import public_key_from_raw
from deletion_audit.core.predicates import (
    CUSTODY_STATEMENT,
    DEIDENTIFY,
    SESSION,
    VENDOR,
    CustodyStatementPredicate,
    DeidentifyPredicate,
    VendorPredicate,
    expect_predicate,
    format_timestamp,
)
from deletion_audit.core.statements import parse_statement, statement_id
from deletion_audit.errors import NotFound, Unprocessable
from deletion_audit.models import (
    Agent,
    Attestation,
    DataFlow,
    Obligation,
    ObligationKind,
    ObligationState,
    Refusal,
    UserKey,
)
from deletion_audit.verdicts.recording import PersonPredicate, record_person_statement

# A statement dated further ahead than this on the domain clock is refused: a vendor must
# not be able to date a statement after deletions that have not happened yet.
FUTURE_SKEW = timedelta(minutes=5)

_ACCEPTED: dict[str, tuple[type[PersonPredicate], Action]] = {
    VENDOR: (VendorPredicate, Action.SUBMIT_VENDOR_STATEMENTS),
    CUSTODY_STATEMENT: (CustodyStatementPredicate, Action.SUBMIT_CUSTODY_STATEMENTS),
    DEIDENTIFY: (DeidentifyPredicate, Action.SUBMIT_DEIDENTIFY_STATEMENTS),
}


class WrongSubmitter(Unprocessable):
    code = "wrong_submitter"


@dataclass(frozen=True)
class _Judged:
    """What ingest found a statement concerns: recorded, logged and replayed alike."""

    access: CaseAccess
    data_flow_id: int | None = None
    obligation_id: int | None = None


def ingest_person(session: Session, *, user_id: int, envelope: bytes, now: datetime) -> Outcome:
    parsed = _open(envelope)
    sid = statement_id(parsed.payload)
    earlier = _earlier_outcome(session, user_id, sid)
    if earlier is not None:
        return earlier
    key: UserKey | None = None
    try:
        key = _signing_key(session, user_id, parsed)
        predicate_type, predicate = _predicate(parsed.payload)
        judged = _judge(session, user_id, predicate_type, predicate, now)
    except _Refuse as refusal:
        return _refuse(session, user_id=user_id, key=key, sid=sid, payload=parsed.payload,
                       envelope=envelope, refusal=refusal, now=now)
    return _store(session, key=key, sid=sid, predicate=predicate, judged=judged,
                  envelope=envelope, now=now)


def _open(envelope: bytes) -> dsse.Envelope:
    try:
        parsed = dsse.Envelope.from_json(envelope)
    except FormatError as exc:
        raise BadEnvelope(f"not a DSSE envelope: {exc}") from None
    if parsed.payload_type != dsse.IN_TOTO_PAYLOAD_TYPE:
        raise BadEnvelope(f"payloadType must be {dsse.IN_TOTO_PAYLOAD_TYPE}")
    return parsed


def _earlier_outcome(session: Session, user_id: int, sid: str) -> Outcome | None:
    accepted = session.execute(
        select(Attestation).where(Attestation.statement_id == sid)).scalar_one_or_none()
    if accepted is not None:
        if accepted.user_id != user_id:
            raise WrongSubmitter("this statement was already submitted by its signer; "
                                 "only the signer submits a statement")
        return Outcome(201, receipt(accepted))
    refused = session.execute(select(Refusal).where(
        Refusal.user_id == user_id, Refusal.statement_id == sid)).scalar_one_or_none()
    if refused is not None:
        return Outcome(refused.status, dict(refused.body))
    return None


def _verifies(envelope: dsse.Envelope, public_key: bytes) -> bool:
    try:
        dsse.verify(envelope, [public_key_from_raw(public_key)])
    except SignatureError:
        return False
    return True


def _signing_key(session: Session, user_id: int, envelope: dsse.Envelope) -> UserKey:
    """The person's registered, unrevoked key that signed the envelope; otherwise the most
    precise refusal. The keyid is only a hint: verification is by key (DESIGN, Keys)."""
    mine = session.execute(select(UserKey).where(UserKey.user_id == user_id)
                           .order_by(UserKey.id)).scalars().all()
    active = [k for k in mine if k.revoked_at is None]
    for key in active:
        if _verifies(envelope, key.public_key):
            return key
    for key in mine:
        if key.revoked_at is not None and _verifies(envelope, key.public_key):
            raise _Refuse(403, "key_revoked", f"key {key.key_id} was revoked at "
                          f"{format_timestamp(key.revoked_at)}; sign with a registered key",
                          key_id=key.key_id)
    hints = {s.keyid for s in envelope.signatures}
    named = [k.key_id for k in active if k.key_id in hints]
    if named:
        raise _Refuse(400, "invalid_signature", f"the signature by your key {named[0]} does "
                      "not verify: the payload or the signature was altered after signing",
                      key_id=named[0])
    others: list[bytes] = [*session.execute(select(UserKey.public_key).where(
        UserKey.key_id.in_(hints), UserKey.user_id != user_id)).scalars(),
        *session.execute(select(Agent.public_key).where(Agent.key_id.in_(hints))).scalars()]
    if any(_verifies(envelope, public) for public in others):
        raise _Refuse(403, "wrong_key", "the envelope is signed by a key registered to "
                      "another person or an agent; sign with a key of your own")
    raise _Refuse(401, "unknown_key", "the envelope is not signed by any key registered to "
                  "you; register its public key with POST /api/v1/users/me/keys")


def _predicate(payload: bytes) -> tuple[str, PersonPredicate]:
    try:
        statement = parse_statement(payload)
    except FormatError as exc:
        raise _Refuse(422, "bad_predicate", f"not an in-toto statement: {exc}") from None
    kind = statement.predicate_type
    if kind == SESSION:
        raise _Refuse(422, "session_record", "a session record is built by the server and "
                      "co-signed with POST /api/v1/cases/{id}/sessions/{sid}/signatures "
                      "(deletion-audit session sign); this endpoint does not accept it")
    entry = _ACCEPTED.get(kind)
    if entry is None:
        accepted = ", ".join(sorted(_ACCEPTED))
        raise _Refuse(422, "unknown_predicate", f"people submit {accepted}; not {kind} "
                      "(scan and deletion statements come from agents)", accepted=sorted(
                          _ACCEPTED))
    try:
        return kind, expect_predicate(statement, entry[0])
    except FormatError as exc:
        raise _Refuse(422, "bad_predicate", str(exc)) from None


def _access(session: Session, user_id: int, case_ref: str) -> CaseAccess | None:
    if not case_ref.isdigit():
        return None
    try:
        return case_access(session, user_id=user_id, case_id=int(case_ref))
    except NotFound:
        return None


def _judge(
    session: Session, user_id: int, kind: str, predicate: PersonPredicate, now: datetime
) -> _Judged:
    access = _access(session, user_id, predicate.case_id)
    if access is None:
        raise _Refuse(404, "wrong_case", f"case {predicate.case_id} is not one of your "
                      "cases; a statement names the case its signer is a member of")
    action = _ACCEPTED[kind][1]
    if not access.can(action):
        raise _Refuse(403, "not_permitted", f"{describe_role(access.role)} may not "
                      f"{action.value.replace('_', ' ')} in case {access.case.id}; allowed: "
                      f"{who_may(action)}")
    if isinstance(predicate, VendorPredicate):
        judged = _judge_vendor(session, access, predicate)
        when = predicate.stated_at
    elif isinstance(predicate, CustodyStatementPredicate):
        judged = _judge_custody(session, access, predicate)
        when = predicate.occurred_at
    else:
        judged = _judge_deidentify(session, access, predicate)
        when = predicate.checked_at
    if when > now + FUTURE_SKEW:
        raise _Refuse(422, "stated_in_future", f"the statement is dated "
                      f"{format_timestamp(when)}, after the server's time "
                      f"{format_timestamp(now)}")
    return judged


def _own_party(access: CaseAccess, party_ref: str) -> None:
    if party_ref != str(access.party.id):
        raise _Refuse(422, "wrong_party", f"the statement names party {party_ref}, but you "
                      f"sign for party {access.party.id} in case {access.case.id}")


def _judge_vendor(session: Session, access: CaseAccess, predicate: VendorPredicate) -> _Judged:
    _own_party(access, predicate.party_id)
    flow = (session.get(DataFlow, int(predicate.flow_id))
            if predicate.flow_id.isdigit() else None)
    if flow is None or flow.case_id != access.case.id:
        raise _Refuse(422, "unknown_flow", f"case {access.case.id} has no data flow "
                      f"{predicate.flow_id}")
    if flow.vendor_party_id != access.party.id:
        declared = ("no vendor party" if flow.vendor_party_id is None
                    else f"vendor party {flow.vendor_party_id}")
        raise _Refuse(422, "wrong_party", f"data flow {flow.id} was declared with "
                      f"{declared}; only that party's statement covers it")
    return _Judged(access=access, data_flow_id=flow.id)


def _obligation(session: Session, access: CaseAccess, ref: str) -> Obligation | None:
    row = session.get(Obligation, int(ref)) if ref.isdigit() else None
    return row if row is not None and row.case_id == access.case.id else None


def _judge_custody(
    session: Session, access: CaseAccess, predicate: CustodyStatementPredicate
) -> _Judged:
    _own_party(access, predicate.party_id)
    row = _obligation(session, access, predicate.obligation_id)
    if row is None or row.kind != ObligationKind.CUSTODY_UNTIL.value:
        raise _Refuse(422, "unknown_obligation", f"case {access.case.id} has no custody-until "
                      f"obligation {predicate.obligation_id}")
    custodian = row.details.get("custodian_party_id")
    if custodian is not None and custodian != access.party.id:
        raise _Refuse(422, "wrong_party", f"obligation {row.id} names custodian party "
                      f"{custodian}, not yours ({access.party.id})")
    if row.details.get("medium") != predicate.medium_id:
        raise _Refuse(422, "wrong_medium", f"obligation {row.id} is about medium "
                      f"{row.details.get('medium')!r}, not {predicate.medium_id!r}")
    return _Judged(access=access, obligation_id=row.id)


def _judge_deidentify(
    session: Session, access: CaseAccess, predicate: DeidentifyPredicate
) -> _Judged:
    rows = session.execute(select(Obligation).where(
        Obligation.case_id == access.case.id,
        Obligation.kind == ObligationKind.DEIDENTIFY.value).order_by(Obligation.id)).scalars()
    matching = [r for r in rows if r.details.get("dataset") == predicate.dataset_name]
    if not matching:
        raise _Refuse(422, "unknown_obligation", f"case {access.case.id} has no deidentify "
                      f"obligation for dataset {predicate.dataset_name!r}")
    # The one still to be judged, if any; otherwise the latest (a waived one stays waived).
    live = [r for r in matching if r.state != ObligationState.WAIVED.value]
    row = (live or matching)[-1]
    missing = sorted(set(row.details.get("rules", [])) - set(predicate.rules))
    if predicate.result == "pass" and missing:
        # A pass under fewer rules than the obligation's is no pass; a fail is a fail.
        raise _Refuse(422, "incomplete_rules", f"obligation {row.id} requires rules "
                      f"{', '.join(missing)} too; a pass must check every rule",
                      missing=missing)
    return _Judged(access=access, obligation_id=row.id)


def _case_of(session: Session, user_id: int, payload: bytes) -> int | None:
    """The case a refused statement is attributed to: the one it names, if the submitter
    is a member (never a case the submitter cannot see)."""
    try:
        case_ref = parse_statement(payload).predicate.get("caseId")
    except FormatError:
        return None
    access = _access(session, user_id, case_ref) if isinstance(case_ref, str) else None
    return access.case.id if access is not None else None


def _refuse(
    session: Session, *, user_id: int, key: UserKey | None, sid: str, payload: bytes,
    envelope: bytes, refusal: _Refuse, now: datetime,
) -> Outcome:
    body: dict[str, Any] = {"code": refusal.code, "message": refusal.message,
                            **refusal.details, "statement_id": sid}
    case_id = _case_of(session, user_id, payload)
    leaf = log_event(session, "refusal", {
        "caseId": case_id, "userId": user_id, "keyId": key.key_id if key else None,
        "statementId": sid, "code": refusal.code,
        "envelopeSha256": hashlib.sha256(envelope).hexdigest(),
    }, now=now)
    session.add(Refusal(agent_id=None, user_id=user_id, case_id=case_id, seq=None,
                        statement_id=sid, code=refusal.code, status=refusal.status,
                        body=body, envelope=envelope, received_at=now, leaf_hash=leaf))
    _flush_once(session)
    return Outcome(refusal.status, body, refused=refusal.code)


def _store(
    session: Session, *, key: UserKey, sid: str, predicate: PersonPredicate, judged: _Judged,
    envelope: bytes, now: datetime,
) -> Outcome:
    access = judged.access
    leaf = log_event(session, "attestation", {
        "caseId": access.case.id, "userId": key.user_id, "keyId": key.key_id,
        "partyId": access.party.id, "partyRole": access.party.role, "statementId": sid,
        "predicateType": predicate.PREDICATE_TYPE, "dataFlowId": judged.data_flow_id,
        "obligationId": judged.obligation_id,
        "envelopeSha256": hashlib.sha256(envelope).hexdigest(),
    }, now=now)
    row = Attestation(
        statement_id=sid, agent_id=None, user_id=key.user_id, user_key_id=key.id,
        case_id=access.case.id, seq=None, prev=None, predicate_type=predicate.PREDICATE_TYPE,
        envelope=envelope, received_at=now, leaf_hash=leaf,
    )
    session.add(row)
    _flush_once(session)
    record_person_statement(
        session, attestation=row, predicate=predicate, user_id=key.user_id,
        key_id=key.key_id, party_id=access.party.id, data_flow_id=judged.data_flow_id,
        obligation_id=judged.obligation_id, now=now)
    if isinstance(predicate, CustodyStatementPredicate):
        # Scans that arrived before the statement are judged against it now.
        custody.check_destruction(session, case_id=access.case.id, statement_id=sid, now=now)
    return Outcome(201, receipt(row))

