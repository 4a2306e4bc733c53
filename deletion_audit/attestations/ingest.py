"""Ingest of an agent's signed statement, in the order agents/PROTOCOL.md gives:

1. the envelope verifies with the requesting agent's key;
2. the earlier outcome (statement id = SHA-256 of the payload): the same answer again;
3. a fork: another statement of this agent already holds the ``seq``;
4. key status: a decommissioned key's statements made before its revocation count for
   24 hours; a compromised key's statements made from its since-time on are void;
5. schema, case, agent, scope binding, scope specification, chain (``prev``), challenge;
6. stored whole, as received, with its log leaf, in the caller's transaction.

:func:`prepare` does what needs no database (step 1 and the parsing of step 5) before the
write transaction opens; :func:`ingest_prepared` does the rest inside it, raising what
:func:`prepare` found only there, after the request's own checks (its nonce), in the
protocol's order.

From step 2 on, a refusal is recorded (with the answer given) and logged, so the chain
stays whole and a repeat gets the same answer; nothing else of a refused statement is
written. This module answers with an :class:`Outcome` rather than raising, because a
recorded refusal must be committed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import (
    Table,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deletion_audit.attestations.known import (
    ATT,
    AgentPredicate,
    BoundScope,
    Known,
    Outcome,
    Parsed,
    WrongAgent,
    known_from_rows,
    lookup,
    lookup_keys,
    read_known_many,
    receipt,
)
from deletion_audit.cases import custody, retention
from deletion_audit.cases.service import log_event, log_events
from deletion_audit.core import dsse
from deletion_audit.core.errors import FormatError, SignatureError
from deletion_audit.core.keys import public_key_from_raw
from deletion_audit.core.predicates import (
    DELETION,
    SCAN,
    DeletionPredicate,
    ScanPredicate,
    expect_predicate,
    format_timestamp,
)
from deletion_audit.core.statements import parse_statement, statement_id
from deletion_audit.errors import AuditError, Unprocessable
from deletion_audit.hosts.errors import BadSignature
from deletion_audit.models import (
    AgentStatus,
    Attestation,
    Challenge,
    Refusal,
    Scope,
    ScopeKind,
)
from deletion_audit.verdicts.recording import record_deletions, record_statement

# DESIGN: a decommissioned agent may flush its outbox for this long after revocation.
DECOMMISSION_GRACE = timedelta(hours=24)
_MODELS: dict[str, type[ScanPredicate] | type[DeletionPredicate]] = {
    SCAN: ScanPredicate, DELETION: DeletionPredicate,
}


class BadEnvelope(Unprocessable):
    code = "bad_envelope"


class _Refuse(Exception):
    """A control-flow signal inside ingest: refuse and record, never propagated."""

    def __init__(self, http_status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message = http_status, code, message
        self.details = details


def open_envelope(public_key: bytes, envelope: bytes) -> bytes:
    """The verified payload; the envelope must be signed by the requesting agent's key."""
    try:
        parsed = dsse.Envelope.from_json(envelope)
    except FormatError as exc:
        raise BadEnvelope(f"not a DSSE envelope: {exc}") from None
    if parsed.payload_type != dsse.IN_TOTO_PAYLOAD_TYPE:
        raise BadEnvelope(f"payloadType must be {dsse.IN_TOTO_PAYLOAD_TYPE}")
    try:
        verified = dsse.verify(parsed, [public_key_from_raw(public_key)])
    except SignatureError:
        raise BadSignature("the envelope is not signed by this agent's key") from None
    return verified.payload


def _parse(payload: bytes) -> Parsed:
    sid = statement_id(payload)
    try:
        statement = parse_statement(payload)
    except FormatError as exc:
        return Parsed(sid, None, None, f"not an in-toto statement: {exc}", None)
    seq = statement.predicate.get("seq")
    raw_seq = seq if type(seq) is int and seq >= 0 else None
    model = _MODELS.get(statement.predicate_type)
    if model is None:
        return Parsed(sid, statement, None, "agents submit scan and deletion statements, "
                       f"not {statement.predicate_type}", raw_seq)
    try:
        predicate: AgentPredicate = expect_predicate(statement, model)
    except FormatError as exc:
        return Parsed(sid, statement, None, str(exc), raw_seq)
    return Parsed(sid, statement, predicate, None, raw_seq)


_INSERT_ATTESTATION = insert(cast(Table, Attestation.__table__)).returning(ATT.id)
_INSERT_ATTESTATIONS = insert(cast(Table, Attestation.__table__)).returning(
    ATT.id, ATT.statement_id)


class AgentFacts(Protocol):
    """What ingest reads of the submitting agent: its row, or the facts the signature layer
    read with it (one query fewer on the hot path; a revocation committed after that read
    is judged as if the statement had arrived just before it)."""

    @property
    def id(self) -> int: ...
    @property
    def public_id(self) -> str: ...
    @property
    def case_id(self) -> int: ...
    @property
    def public_key(self) -> bytes: ...
    @property
    def status(self) -> str: ...
    @property
    def revoked_at(self) -> datetime | None: ...
    @property
    def compromised_since(self) -> datetime | None: ...


@dataclass(frozen=True)
class Prepared:
    """A statement as far as it can be judged without the database: its envelope opened
    with the agent's key, its statement and predicate parsed. ``error`` is a refusal of the
    request found here (a bad envelope or signature), raised by :func:`ingest_prepared`."""

    envelope: bytes
    envelope_sha256: str
    parsed: Parsed | None
    error: AuditError | None = None


def prepare(public_key: bytes, envelope: bytes) -> Prepared:
    """Open and parse a statement (CPU only: run before the write transaction opens)."""
    digest = hashlib.sha256(envelope).hexdigest()
    try:
        payload = open_envelope(public_key, envelope)
    except AuditError as exc:
        return Prepared(envelope, digest, None, exc)
    return Prepared(envelope, digest, _parse(payload))


def ingest(session: Session, *, agent: AgentFacts, envelope: bytes, now: datetime) -> Outcome:
    return ingest_prepared(session, agent=agent, prepared=prepare(agent.public_key, envelope),
                           now=now)


def ingest_prepared(
    session: Session, *, agent: AgentFacts, prepared: Prepared, now: datetime,
    mark: bool = True,
) -> Outcome:
    """Steps 2-6 in the caller's transaction (step 1's outcome is in ``prepared``).
    ``mark=False`` leaves marking the case of a stored statement for a new verdict to the
    caller (``Outcome.stored``), which marks each case once per transaction."""
    if prepared.error is not None:
        raise prepared.error
    parsed = prepared.parsed
    assert parsed is not None  # noqa: S101 - set whenever error is not
    known = lookup(session, agent.id, parsed)
    earlier = known.earlier_outcome()
    if earlier is not None:
        return earlier
    try:
        _check_fork(known, parsed)
        _check_key_status(agent, parsed.predicate, now)
        if parsed.predicate is None:
            raise _Refuse(422, "bad_predicate", parsed.problem or "invalid statement")
        scope, challenge = _check_content(session, agent, known, parsed.predicate, now)
    except _Refuse as refusal:
        return _refuse(session, agent, parsed, prepared, refusal, now)
    return _store(session, agent, parsed, parsed.predicate, scope, challenge, prepared, now,
                  mark=mark)


def plain_deletion(prepared: Prepared) -> str | None:
    """The statement id of a statement :func:`ingest_deletions` may take: an opened and
    parsed deletion statement (None for anything else)."""
    parsed = prepared.parsed
    if prepared.error is None and parsed is not None and isinstance(parsed.predicate,
                                                                    DeletionPredicate):
        return parsed.sid
    return None


def ingest_deletions(
    session: Session, statements: Sequence[tuple[AgentFacts, Prepared, datetime]]
) -> list[Outcome | None]:
    """Steps 2-6 for several deletion statements (:func:`plain_deletion`) of distinct
    agents and distinct ids, at once, in the caller's transaction: one query reads what
    the store holds about all of them, and each table gets one insert for all those
    stored. Each is judged exactly as :func:`ingest_prepared` (``mark=False``) judges it;
    one that this call does not store — an earlier outcome, a refusal — is answered None,
    and nothing of it is written: the caller passes it to :func:`ingest_prepared`, which
    gives (and records) its answer. With distinct agents and ids, no statement here bears
    on another's judgment (chains are per agent)."""
    keys: list[tuple[Parsed, list[int], int]] = []
    query: list[tuple[str, int, int, int, int]] = []
    for agent, prepared, _ in statements:
        parsed = prepared.parsed
        assert parsed is not None  # noqa: S101 - plain_deletion
        seqs, lo, hi, scope_id = lookup_keys(parsed)
        keys.append((parsed, seqs, scope_id))
        query.append((parsed.sid, agent.id, lo, hi, scope_id))
    rows = read_known_many(session, query)
    by_sid: dict[str, list[Any]] = {}
    by_agent: dict[int, list[Any]] = {}
    for r in rows:
        by_agent.setdefault(r.agent_id, []).append(r)
        if r.src == "accepted":
            by_sid.setdefault(r.statement_id, []).append(r)
    out: list[Outcome | None] = []
    stored: list[tuple[int, AgentFacts, Parsed, DeletionPredicate, BoundScope, Prepared,
                       datetime]] = []
    for i, ((agent, prepared, now), (parsed, seqs, scope_id)) in enumerate(
            zip(statements, keys, strict=True)):
        out.append(None)
        # The rows _KNOWN would have read for this statement alone.
        mine = [r for r in by_agent.get(agent.id, ())
                if (r.src == "scope" and int(r.row) == scope_id)
                or (r.src != "scope" and (r.statement_id == parsed.sid or r.seq in seqs))]
        mine += [r for r in by_sid.get(parsed.sid, ()) if r.agent_id != agent.id]
        known = known_from_rows(agent.id, parsed, seqs, mine)
        try:
            if known.earlier_outcome() is not None:
                continue
            _check_fork(known, parsed)
            _check_key_status(agent, parsed.predicate, now)
            predicate = parsed.predicate
            assert isinstance(predicate, DeletionPredicate)  # noqa: S101 - plain_deletion
            scope, _ = _check_content(session, agent, known, predicate, now)
        except (_Refuse, WrongAgent):
            continue  # ingest_prepared answers (and records) it
        stored.append((i, agent, parsed, predicate, scope, prepared, now))
    if not stored:
        return out
    leaves = log_events(session, "attestation", [({
        "caseId": agent.case_id, "agentId": agent.public_id, "statementId": parsed.sid,
        "seq": predicate.seq, "prev": predicate.prev,
        "predicateType": DELETION, "scopeId": scope.id, "scanId": None, "part": None,
        "challengeId": None, "envelopeSha256": prepared.envelope_sha256,
    }, now) for _, agent, parsed, predicate, scope, prepared, now in stored])
    fields = [{
        "statement_id": parsed.sid, "agent_id": agent.id, "case_id": agent.case_id,
        "seq": predicate.seq, "prev": predicate.prev, "predicate_type": DELETION,
        "scope_id": scope.id, "scan_id": None, "part": None, "challenge_id": None,
        "envelope": prepared.envelope, "received_at": now, "leaf_hash": leaf,
    } for (_, agent, parsed, predicate, scope, prepared, now), leaf in zip(
        stored, leaves, strict=True)]
    ids = {r.statement_id: r.id for r in session.connection().execute(
        _INSERT_ATTESTATIONS, fields)}
    rows_stored = [Attestation(id=ids[f["statement_id"]], **f) for f in fields]
    record_deletions(session, [(row, predicate) for row, (_, _, _, predicate, *_) in zip(
        rows_stored, stored, strict=True)])
    for row, (i, agent, *_rest, now) in zip(rows_stored, stored, strict=True):
        out[i] = Outcome(201, receipt(row), stored=(agent.case_id, now))
    return out


def _check_fork(known: Known, parsed: Parsed) -> None:
    if parsed.raw_seq is None:
        return
    holder = known.holder(parsed.raw_seq)
    if holder is not None and holder != parsed.sid:
        raise _Refuse(409, "fork", f"statement {holder} already holds seq {parsed.raw_seq}",
                      seq=parsed.raw_seq, held_by=holder)


def _made_at(predicate: AgentPredicate) -> datetime:
    return (predicate.finished_at if isinstance(predicate, ScanPredicate)
            else predicate.deleted_at)


def _check_key_status(agent: AgentFacts, predicate: AgentPredicate | None, now: datetime) -> None:
    status = AgentStatus(agent.status)
    if status is AgentStatus.ACTIVE:
        return
    made = _made_at(predicate) if predicate is not None else None
    if status is AgentStatus.DECOMMISSIONED:
        assert agent.revoked_at is not None  # noqa: S101 - set with the status
        if made is None or made >= agent.revoked_at:
            raise _Refuse(403, "revoked", f"agent {agent.public_id} was decommissioned at "
                          f"{format_timestamp(agent.revoked_at)}; this statement was made "
                          "after it", key_status="decommissioned")
        if now > agent.revoked_at + DECOMMISSION_GRACE:
            raise _Refuse(403, "revoked", f"agent {agent.public_id} was decommissioned more "
                          "than 24 hours ago; its outbox can no longer be flushed",
                          key_status="decommissioned")
        return
    since = agent.compromised_since
    if made is None or since is None or made >= since:
        raise _Refuse(403, "revoked", f"agent {agent.public_id}'s key is compromised since "
                      f"{format_timestamp(since) if since else 'enrollment'}; statements made "
                      "from then on are void", key_status="compromised")


def _check_content(
    session: Session, agent: AgentFacts, known: Known, predicate: AgentPredicate, now: datetime
) -> tuple[BoundScope, Challenge | None]:
    if predicate.case_id != str(agent.case_id):
        raise _Refuse(422, "wrong_case", f"this agent attests for case {agent.case_id}, not "
                      f"{predicate.case_id}")
    if predicate.agent_id != agent.public_id:
        raise _Refuse(422, "wrong_agent", f"the statement names agent {predicate.agent_id}, "
                      f"but {agent.public_id} signed it")
    scope = known.scope
    if scope is None:
        raise _Refuse(422, "unbound_scope", f"scope {predicate.scope_id} is not bound to "
                      f"agent {agent.public_id}")
    if isinstance(predicate, ScanPredicate) and predicate.scope_spec_digest != scope.spec_digest:
        raise _Refuse(422, "stale_scope", f"scope {scope.id}'s specification is now "
                      f"{scope.spec_digest}; fetch the scopes again and rescan",
                      spec_digest=scope.spec_digest)
    if predicate.seq > 0:
        holder = known.holder(predicate.seq - 1)
        if holder is not None and holder != predicate.prev:
            raise _Refuse(409, "fork", f"prev names {predicate.prev}, but statement {holder} "
                          f"holds seq {predicate.seq - 1}", seq=predicate.seq, held_by=holder)
    challenge = None
    if isinstance(predicate, ScanPredicate) and predicate.challenge is not None:
        challenge = _judge_challenge(session, agent, scope, predicate, now)
    return scope, challenge


def _judge_challenge(
    session: Session, agent: AgentFacts, scope: BoundScope, predicate: ScanPredicate,
    now: datetime,
) -> Challenge:
    """Freshness is judged once, when the scan's first part arrives; later parts and
    retries of the same ``scan_id`` share that judgment."""
    row = session.execute(select(Challenge).where(
        Challenge.nonce == predicate.challenge).with_for_update()).scalar_one_or_none()
    if row is None or row.agent_id != agent.id or row.scope_id != scope.id:
        raise _Refuse(422, "unknown_challenge", "this challenge was not issued for this agent "
                      "and scope")
    if row.used_by_scan_id == predicate.scan_id:
        return row
    if row.used_by_scan_id is not None:
        raise _Refuse(422, "reused_challenge", f"challenge {row.id} was answered by another "
                      "scan; ask for a new one")
    if now >= row.expires_at:
        raise _Refuse(422, "stale_challenge", f"challenge {row.id} expired at "
                      f"{format_timestamp(row.expires_at)}; ask for a new one")
    row.used_by_scan_id, row.judged_at = predicate.scan_id, now
    return row


def _refuse(
    session: Session, agent: AgentFacts, parsed: Parsed, prepared: Prepared, refusal: _Refuse,
    now: datetime,
) -> Outcome:
    body = {"code": refusal.code, "message": refusal.message, **refusal.details,
            "statement_id": parsed.sid}
    leaf = log_event(session, "refusal", {
        "caseId": agent.case_id, "agentId": agent.public_id, "statementId": parsed.sid,
        "seq": parsed.raw_seq, "code": refusal.code,
        "envelopeSha256": prepared.envelope_sha256,
    }, now=now)
    session.add(Refusal(agent_id=agent.id, case_id=agent.case_id, seq=parsed.raw_seq,
                        statement_id=parsed.sid, code=refusal.code, status=refusal.status,
                        body=body, envelope=prepared.envelope, received_at=now,
                        leaf_hash=leaf))
    _flush_once(session)
    return Outcome(refusal.status, body, refused=refusal.code)


def _store(
    session: Session, agent: AgentFacts, parsed: Parsed, predicate: AgentPredicate,
    scope: BoundScope, challenge: Challenge | None, prepared: Prepared, now: datetime, *,
    mark: bool,
) -> Outcome:
    assert parsed.statement is not None  # noqa: S101 - a predicate implies its statement
    scan = predicate if isinstance(predicate, ScanPredicate) else None
    leaf = log_event(session, "attestation", {
        "caseId": agent.case_id, "agentId": agent.public_id, "statementId": parsed.sid,
        "seq": predicate.seq, "prev": predicate.prev,
        "predicateType": parsed.statement.predicate_type, "scopeId": scope.id,
        "scanId": scan.scan_id if scan else None, "part": scan.part if scan else None,
        "challengeId": challenge.id if challenge else None,
        "envelopeSha256": prepared.envelope_sha256,
    }, now=now)
    fields: dict[str, Any] = {
        "statement_id": parsed.sid, "agent_id": agent.id, "case_id": agent.case_id,
        "seq": predicate.seq, "prev": predicate.prev,
        "predicate_type": parsed.statement.predicate_type, "scope_id": scope.id,
        "scan_id": scan.scan_id if scan else None, "part": scan.part if scan else None,
        "challenge_id": challenge.id if challenge else None, "envelope": prepared.envelope,
        "received_at": now, "leaf_hash": leaf,
    }
    session.flush()  # the challenge claimed above goes first
    try:
        attestation_id = session.connection().execute(_INSERT_ATTESTATION, fields).scalar_one()
    except IntegrityError:
        # The same statement (or seq) arrived twice at once; the retry gets the outcome.
        raise ConcurrentSubmission("this statement (or its seq) is being stored by a "
                                   "concurrent request; send it again") from None
    # Not added to the session: the row is written; this object carries its facts on.
    row = Attestation(id=attestation_id, **fields)
    try:
        record_statement(session, attestation=row, predicate=predicate,
                         challenge_id=challenge.id if challenge else None, now=now, mark=mark)
    except IntegrityError:
        # Two parts of one scan opened its record at once; the retry finds it.
        raise ConcurrentSubmission("another part of this scan is being stored by a "
                                   "concurrent request; send it again") from None
    if scan is not None and scan.last and scan.ages is not None:
        retention.check_scan(session, case_id=agent.case_id, scope_id=scope.id, predicate=scan,
                             statement_id=parsed.sid, now=now)
    if scan is not None and scan.last:
        if scope.kind == ScopeKind.SEALED_CONTAINER.value:
            custody.check_container(session, case_id=agent.case_id,
                                    scope=session.get_one(Scope, scope.id), predicate=scan,
                                    statement_id=parsed.sid, now=now)
        # Items found after a custodian's destruction statement breach its custody.
        custody.check_destruction(session, case_id=agent.case_id, statement_id=parsed.sid,
                                  now=now, agent_id=agent.id, scan_id=scan.scan_id)
    return Outcome(201, receipt(row), stored=(agent.case_id, now))


class ConcurrentSubmission(AuditError):
    """Retryable (a 5xx, so agents retry it): never a refusal of the statement itself."""

    status_code = 503
    code = "concurrent_submission"


def _flush_once(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError:
        # The same statement (or seq) arrived twice at once; the retry gets the outcome.
        raise ConcurrentSubmission("this statement (or its seq) is being stored by a "
                                   "concurrent request; send it again") from None
