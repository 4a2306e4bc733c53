"""A case's verdict re-derived from its logged events alone (DESIGN, Contracts: the verdict).

"Every input of the verdict is an event, logged and bundled, so ``verify`` can rebuild the
case in a temporary SQLite and run the very same verdict code." :func:`events_of_case`
selects those events (the exporter bundles them); :func:`replay_verdict` writes them, in log
order, into the tables the engine reads of a fresh SQLite database — statements through
:func:`~deletion_audit.verdicts.recording.record_statement`, as ingest does, after checking
each envelope's signature with the key its agent registered — and runs
:func:`~deletion_audit.verdicts.engine.compute_report` and
:func:`~deletion_audit.verdicts.service.verdict_predicate`, the functions the service signs
with. Rows keep the ids the events carry, so the report names the same scopes, obligations
and data flows.

What a replay cannot know from the events, it does not need: people, organisations and
tokens (foreign keys are not enforced in the replay database, which holds only the
verdict's inputs), an attestation's row id (internal; rows are numbered in log order).
Each event is checked against what came before it (a binding names a registered agent, an
obligation's change starts from the state the earlier events left, a statement's fields
are those of its signed envelope), so a dropped or altered event either changes the
outcome or stops the replay with a :class:`ReplayError` that names the event.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError
from sqlalchemy import String, cast, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deletion_audit.cases.scopes import spec_digest
from deletion_audit.core import dsse
from deletion_audit.core.b64 import b64decode
from deletion_audit.core.errors import FormatError, PredicateError, SignatureError
from deletion_audit.core.keys import public_key_from_raw
from deletion_audit.core.predicates import (
    CUSTODY_STATEMENT,
    DEIDENTIFY,
    DELETION,
    SCAN,
    VENDOR,
    CustodyStatementPredicate,
    DeidentifyPredicate,
    DeletionPredicate,
    KeyRegistrationPredicate,
    PredicateModel,
    ScanPredicate,
    VendorPredicate,
    expect_predicate,
)
from deletion_audit.core.statements import parse_statement, statement_id
from deletion_audit.models import (
    Agent,
    AgentStatus,
    Attestation,
    Binding,
    Challenge,
    DataFlow,
    Event,
    KeyRevocationReason,
    LogLeaf,
    Manifest,
    Obligation,
    ObligationState,
    Party,
    Review,
    ReviewKind,
    ReviewState,
    Scope,
    UserKey,
)
from deletion_audit.reviews import commitment as review_commitment
from deletion_audit.verdicts.engine import compute_report
from deletion_audit.verdicts.recording import (
    PersonPredicate,
    record_person_statement,
    record_statement,
)
from deletion_audit.verdicts.replay_sessions import SessionReplay, SessionReplayError
from deletion_audit.verdicts.replay_store import (
    ItemsLoad,
    ManifestFileError,
    create_deferred_indexes,
    replay_engine,
)
from deletion_audit.verdicts.schemas import Report
from deletion_audit.verdicts.service import verdict_predicate

log = logging.getLogger(__name__)

# The event types a replay reads: the verdict's inputs, and the verdict events themselves
# (their version and time say which verdict a log size stands for).
REPLAYED_TYPES = frozenset({
    "party", "key-registration", "key-revocation", "manifest", "scope", "data-flow",
    "binding", "challenge", "obligation", "acceptance", "attestation", "verdict", "session",
    "review",
})
_STATEMENT_MODELS: dict[str, type[ScanPredicate] | type[DeletionPredicate]] = {
    SCAN: ScanPredicate, DELETION: DeletionPredicate,
}
# Statements people sign (attestations/people.py): their events name a user and a key.
_PERSON_MODELS: dict[str, type[PersonPredicate]] = {
    VENDOR: VendorPredicate, CUSTODY_STATEMENT: CustodyStatementPredicate,
    DEIDENTIFY: DeidentifyPredicate,
}


@dataclass(frozen=True)
class ReplayEvent:
    index: int
    """Log index of the event's leaf."""
    type: str
    """Event type (core/leaves.py ``EVENT_TYPES``)."""
    body: Mapping[str, Any]
    """The event body exactly as logged (with ``at`` where the writer added it)."""


class ReplayError(ValueError):
    """The events do not rebuild a case: named by the event's log index where there is one."""

    def __init__(self, message: str, *, at: ReplayEvent | None = None) -> None:
        where = f"event {at.index} ({at.type}): " if at is not None else ""
        super().__init__(where + message)


@dataclass(frozen=True)
class Replayed:
    report: Report
    """The full report (its canonical digest is the verdict statement's subject)."""
    predicate: dict[str, Any]
    """The verdict predicate, as the service signs it."""


# -- selecting --------------------------------------------------------------------------


def _case_key(case_id: int) -> Any:
    """Events of the case: ``caseId`` is an integer in most bodies and a string in the public
    key events; the manifest event calls it ``case``. Compared as text on both engines."""
    key = str(case_id)
    return or_(cast(Event.body["caseId"].as_string(), String) == key,
               cast(Event.body["case"].as_string(), String) == key)


def events_of_case(session: Session, case_id: int) -> list[ReplayEvent]:
    """Every integrated event the replay of ``case_id`` reads, in log order."""
    rows = session.execute(
        select(LogLeaf.idx, Event.type, Event.body)
        .join(LogLeaf, LogLeaf.leaf_hash == Event.leaf_hash)
        .where(Event.type.in_(REPLAYED_TYPES), LogLeaf.idx.is_not(None), _case_key(case_id))
        .order_by(LogLeaf.idx)
        .execution_options(yield_per=2_000))
    out = []
    signers: set[str] = set()
    for idx, event_type, body in rows:
        if event_type == "key-registration" and body.get("subjectType") != "agent":
            continue
        if event_type == "attestation" and body.get("userId") is not None:
            signers.add(str(body["keyId"]))
        if event_type == "session" and body.get("action") == "signed":
            signers.add(str(body["keyId"]))
        out.append(ReplayEvent(index=int(idx), type=event_type, body=body))
    if signers:
        out.extend(_user_key_registrations(session, signers))
        out.sort(key=lambda ev: ev.index)
    return out


def _user_key_registrations(session: Session, key_ids: set[str]) -> list[ReplayEvent]:
    """The registrations and revocations of the keys people signed the case's statements
    with (public events that name no case)."""
    rows = session.execute(
        select(LogLeaf.idx, Event.type, Event.body)
        .join(LogLeaf, LogLeaf.leaf_hash == Event.leaf_hash)
        .where(Event.type.in_(["key-registration", "key-revocation"]),
               LogLeaf.idx.is_not(None),
               cast(Event.body["keyId"].as_string(), String).in_(sorted(key_ids))))
    return [ReplayEvent(index=int(idx), type=event_type, body=body)
            for idx, event_type, body in rows if body.get("subjectType") == "user"]


# -- replaying --------------------------------------------------------------------------


def _time(ev: ReplayEvent, value: object, what: str) -> datetime:
    if not isinstance(value, str):
        raise ReplayError(f"{what} is not a timestamp", at=ev)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ReplayError(f"{what} {value!r} is not a timestamp", at=ev) from None
    if parsed.utcoffset() is None:
        raise ReplayError(f"{what} {value!r} has no time zone", at=ev)
    return parsed


def _case_of(body: Mapping[str, Any]) -> int | None:
    value = body.get("caseId", body.get("case"))
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


@dataclass(frozen=True)
class _Agent:
    pk: int
    key: Ed25519PublicKey


@dataclass
class _Replayer:
    session: Session
    case_id: int
    agents: dict[str, _Agent] = field(default_factory=dict)
    user_keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    parties: set[int] = field(default_factory=set)
    scopes: set[int] = field(default_factory=set)
    manifest: Manifest | None = None
    manifest_event: ReplayEvent | None = None
    clock: datetime | None = None
    onsite: SessionReplay | None = None
    review_commitments: dict[int, str] = field(default_factory=dict)

    # Each handler writes one event's facts; a body missing a field raises KeyError,
    # which :meth:`apply` turns into a ReplayError naming the event.

    def apply(self, ev: ReplayEvent, envelopes: Mapping[str, bytes]) -> None:
        handlers: dict[str, Callable[[ReplayEvent], None]] = {
            "party": self.party, "key-registration": self.key_registration,
            "key-revocation": self.key_revocation, "manifest": self.manifest_registered,
            "scope": self.scope, "data-flow": self.data_flow, "binding": self.binding,
            "challenge": self.challenge, "obligation": self.obligation,
            "acceptance": self.acceptance, "session": self.onsite_session,
            "review": self.review,
        }
        if "at" in ev.body:
            self.clock = _time(ev, ev.body["at"], "at")
        try:
            if ev.type == "attestation":
                self.attestation(ev, envelopes)
            elif ev.type in handlers:
                handlers[ev.type](ev)
            self.session.flush()
        except ReplayError:
            raise
        except IntegrityError as exc:
            raise ReplayError(f"conflicts with an earlier event: {exc.orig}", at=ev) from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ReplayError(f"malformed body ({type(exc).__name__}: {exc})", at=ev) from None

    @property
    def now(self) -> datetime:
        if self.clock is None:
            raise ReplayError("no timed event precedes this one")
        return self.clock

    def _agent(self, ev: ReplayEvent, public_id: object) -> _Agent:
        agent = self.agents.get(str(public_id))
        if agent is None:
            raise ReplayError(f"agent {public_id} has no earlier key registration", at=ev)
        return agent

    def _scope(self, ev: ReplayEvent, scope_id: object) -> int:
        if not isinstance(scope_id, int) or scope_id not in self.scopes:
            raise ReplayError(f"scope {scope_id} was not declared by an earlier event", at=ev)
        return scope_id

    def party(self, ev: ReplayEvent) -> None:
        b = ev.body
        self.session.add(Party(id=b["partyId"], case_id=self.case_id,
                               organisation_id=b["organisationId"], role=b["role"],
                               created_at=self.now, created_by=b["by"]))
        self.parties.add(b["partyId"])

    def key_registration(self, ev: ReplayEvent) -> None:
        try:
            reg = KeyRegistrationPredicate.model_validate(dict(ev.body))
        except ValidationError as exc:
            raise ReplayError(f"not a key registration: {exc.errors()[0]['msg']}",
                              at=ev) from None
        if reg.subject_type == "user":
            raw = b64decode(reg.public_key)
            self.session.add(UserKey(
                user_id=int(reg.subject_id), key_id=reg.key_id, public_key=raw, label="",
                registered_at=reg.registered_at, registration_leaf_hash=bytes(32)))
            self.user_keys[reg.key_id] = public_key_from_raw(raw)
            return
        if reg.subject_type != "agent":
            return
        party_id = int(reg.party_id or "0")
        if party_id not in self.parties:
            raise ReplayError(f"agent {reg.subject_id}'s party {reg.party_id} was not added "
                              "by an earlier event", at=ev)
        raw = b64decode(reg.public_key)
        pk = len(self.agents) + 1
        self.session.add(Agent(
            id=pk, public_id=reg.subject_id, case_id=self.case_id, party_id=party_id,
            key_id=reg.key_id, public_key=raw, status=AgentStatus.ACTIVE.value,
            enrolled_at=reg.registered_at, build_digest=reg.build_digest,
            agent_version=reg.agent_version))
        self.agents[reg.subject_id] = _Agent(pk=pk, key=public_key_from_raw(raw))
        self.clock = max(self.clock or reg.registered_at, reg.registered_at)

    def key_revocation(self, ev: ReplayEvent) -> None:
        b = ev.body
        if b.get("subjectType") == "user":
            key = self.session.execute(select(UserKey).where(
                UserKey.key_id == b["keyId"])).scalar_one_or_none()
            if key is None:
                raise ReplayError(f"key {b['keyId']} has no earlier registration", at=ev)
            key.revoked_at = _time(ev, b["revokedAt"], "revokedAt")
            key.revocation_reason = KeyRevocationReason(b["reason"]).value
            return
        if b.get("subjectType") != "agent":
            return
        row = self.session.get_one(Agent, self._agent(ev, b["subjectId"]).pk)
        kind = AgentStatus(b["kind"])
        row.status, row.status_changed_at = kind.value, self.now
        row.revoked_at = row.revoked_at or _time(ev, b["revokedAt"], "revokedAt")
        if kind is AgentStatus.COMPROMISED:
            row.compromised_since = _time(ev, b["since"], "since")

    def manifest_registered(self, ev: ReplayEvent) -> None:
        b = ev.body
        previous = self.manifest.id if self.manifest is not None else None
        if b["supersedes"] != previous:
            raise ReplayError(f"supersedes manifest {b['supersedes']}, but the active one is "
                              f"{previous}", at=ev)
        if self.manifest is not None:
            self.manifest.state = "superseded"
        now = self.now
        self.manifest = Manifest(
            id=b["manifest"], case_id=self.case_id, state="active", case_number="",
            count=b["count"], root=bytes.fromhex(b["root"]),
            file_sha256=bytes.fromhex(b["fileSha256"]), header={}, envelope={},
            statement_id=bytes.fromhex(b["statementId"]), examiner_key_id=b["examinerKeyId"],
            supersedes_id=previous, created_at=now, touched_at=now, activated_at=now)
        self.manifest_event = ev
        self.session.add(self.manifest)

    def scope(self, ev: ReplayEvent) -> None:
        b = ev.body
        if spec_digest(b["spec"]) != b["specDigest"]:
            raise ReplayError(f"scope {b['scopeId']}'s specification does not have the "
                              "digest it was logged with", at=ev)
        self.session.add(Scope(
            id=b["scopeId"], case_id=self.case_id, party_id=b["partyId"], name=b["name"],
            kind=b["kind"], spec=b["spec"], spec_digest=b["specDigest"],
            expects_data=b["expectsData"], location_codes=list(b["locationCodes"]),
            timestamp_field=b["timestampField"], created_at=self.now, created_by=b["by"]))
        self.scopes.add(b["scopeId"])

    def data_flow(self, ev: ReplayEvent) -> None:
        b = ev.body
        if b["scopeId"] is not None:
            self._scope(ev, b["scopeId"])
        self.session.add(DataFlow(
            id=b["dataFlowId"], case_id=self.case_id, party_id=b["partyId"], kind=b["kind"],
            description=b["description"], destination=b["destination"],
            scope_id=b["scopeId"], vendor_party_id=b["vendorPartyId"], created_at=self.now,
            created_by=b["by"]))

    def binding(self, ev: ReplayEvent) -> None:
        b = ev.body
        agent = self._agent(ev, b["agentId"])
        scope_id = self._scope(ev, b["scopeId"])
        if b["action"] == "bound":
            self.session.add(Binding(id=b["bindingId"], case_id=self.case_id,
                                     scope_id=scope_id, agent_id=agent.pk,
                                     created_at=self.now, created_by=b["by"]))
            return
        row = self.session.get(Binding, b["bindingId"])
        if row is None or row.agent_id != agent.pk or row.unbound_at is not None:
            raise ReplayError(f"unbinds binding {b['bindingId']}, which is not live", at=ev)
        row.unbound_at, row.unbound_by = self.now, b["by"]

    def challenge(self, ev: ReplayEvent) -> None:
        b = ev.body
        self.session.add(Challenge(
            id=b["challengeId"], case_id=self.case_id,
            agent_id=self._agent(ev, b["agentId"]).pk, scope_id=self._scope(ev, b["scopeId"]),
            nonce=b["nonce"], origin=b["origin"], issued_at=self.now,
            expires_at=_time(ev, b["expiresAt"], "expiresAt"), issued_by=b["by"],
            session_id=b.get("sessionId")))

    def onsite_session(self, ev: ReplayEvent) -> None:
        if self.onsite is None:
            self.onsite = SessionReplay(self.session, self.case_id)
        try:
            self.onsite.apply(ev.body, now=self.now, user_keys=self.user_keys)
        except SessionReplayError as exc:
            raise ReplayError(str(exc), at=ev) from None

    def _opened_commitment(self, ev: ReplayEvent) -> None:
        """An unannounced review's instant is the one committed to when it was drawn."""
        b = ev.body
        committed = self.review_commitments.get(int(b["reviewId"]))
        if committed is None:
            raise ReplayError(f"unannounced review {b['reviewId']} has no earlier commitment",
                              at=ev)
        if b.get("commitment") != committed or not review_commitment.verify(
                committed, str(b["dueAt"]), str(b["salt"])):
            raise ReplayError(f"review {b['reviewId']}'s instant and salt do not open its "
                              "commitment", at=ev)

    def review(self, ev: ReplayEvent) -> None:
        """Follow-up reviews: the closed ones are verdict inputs (engine
        ``_review_reasons``); an unannounced one's reveal is checked against its
        commitment."""
        b = ev.body
        action = b["action"]
        if action == "committed":
            self.review_commitments[int(b["reviewId"])] = str(b["commitment"])
        elif action in ("opened", "cancelled") and b["kind"] == ReviewKind.UNANNOUNCED.value:
            self._opened_commitment(ev)
        if action == "opened":
            closes_at = _time(ev, b["closesAt"], "closesAt")
            self.session.add(Review(
                id=b["reviewId"], case_id=self.case_id, kind=b["kind"],
                state=ReviewState.OPEN.value, due_at=_time(ev, b["dueAt"], "dueAt"),
                response_hours=int((closes_at - self.now).total_seconds() // 3600),
                created_at=self.now, opened_at=self.now, closes_at=closes_at,
                challenge_ids=list(b["challengeIds"])))
        elif action == "closed":
            row = self.session.get(Review, b["reviewId"])
            if row is None or row.state != ReviewState.OPEN.value:
                raise ReplayError(f"review {b['reviewId']} closes without opening", at=ev)
            row.state, row.closed_at = ReviewState.CLOSED.value, self.now
            row.outcome, row.findings = b["outcome"], list(b["findings"])

    def _obligation(self, ev: ReplayEvent, expected: object = None) -> Obligation:
        row = self.session.get(Obligation, ev.body["obligationId"])
        if row is None:
            raise ReplayError(f"obligation {ev.body['obligationId']} was not set by an "
                              "earlier event", at=ev)
        if expected is not None and row.state != expected:
            raise ReplayError(f"obligation {row.id} changes from {expected}, but the earlier "
                              f"events leave it {row.state}", at=ev)
        return row

    def obligation(self, ev: ReplayEvent) -> None:
        b = ev.body
        action = b["action"]
        if action == "set":
            deadline = b["deadline"]
            self.session.add(Obligation(
                id=b["obligationId"], case_id=self.case_id, kind=b["kind"], title=b["title"],
                details=b["details"], state=b["state"], deadline=deadline,
                due_at=_time(ev, deadline["due_at"], "deadline.due_at") if deadline else None,
                due_provisional=bool(deadline and deadline.get("provisional")),
                state_changed_at=self.now, created_at=self.now, created_by=b["by"]))
            return
        if action == "waived":
            row = self._obligation(ev, b["from"])
            row.state = ObligationState.WAIVED.value
            row.waiver_reason, row.waived_at, row.waived_by = b["reason"], self.now, b["by"]
        elif action == "state":
            row = self._obligation(ev, b["from"])
            row.state = ObligationState(b["to"]).value
        elif action == "document-submitted":
            row = self._obligation(ev)
            row.state = ObligationState.SUBMITTED.value
        else:
            raise ReplayError(f"unknown obligation action {action!r}", at=ev)
        row.state_changed_at = self.now

    def acceptance(self, ev: ReplayEvent) -> None:
        row = self._obligation(ev, ObligationState.SUBMITTED.value)
        decided = {"accepted": ObligationState.ACCEPTED, "rejected": ObligationState.REJECTED}
        row.state = decided[ev.body["action"]].value
        row.state_changed_at = self.now

    def _statement(
        self, ev: ReplayEvent, envelopes: Mapping[str, bytes], key: Ed25519PublicKey,
        signer: str, models: Mapping[str, type[PredicateModel]],
    ) -> tuple[str, str, PredicateModel]:
        """The envelope the event names, verified with the signer's registered key: its
        statement id, predicate type and predicate."""
        b = ev.body
        envelope = envelopes.get(b["envelopeSha256"])
        if envelope is None or hashlib.sha256(envelope).hexdigest() != b["envelopeSha256"]:
            raise ReplayError(f"the envelope with SHA-256 {b['envelopeSha256']} is missing",
                              at=ev)
        try:
            verified = dsse.verify(dsse.Envelope.from_json(envelope), [key])
            statement = parse_statement(verified.payload)
            model = models.get(statement.predicate_type)
            if model is None:
                raise ReplayError(f"{signer} does not make {statement.predicate_type} "
                                  "statements", at=ev)
            predicate = expect_predicate(statement, model)
        except SignatureError:
            raise ReplayError(f"the envelope is not signed by {signer}'s registered key",
                              at=ev) from None
        except (FormatError, PredicateError) as exc:
            raise ReplayError(f"the envelope does not hold a valid statement: {exc}",
                              at=ev) from None
        return statement_id(verified.payload), statement.predicate_type, predicate

    def _check_logged(self, ev: ReplayEvent, logged: Mapping[str, object]) -> None:
        for name, value in logged.items():
            if ev.body.get(name) != value:
                raise ReplayError(f"{name} is {ev.body.get(name)!r}, but the signed statement "
                                  f"says {value!r}", at=ev)

    def attestation(self, ev: ReplayEvent, envelopes: Mapping[str, bytes]) -> None:
        if ev.body.get("userId") is not None:
            self.person_attestation(ev, envelopes)
            return
        b = ev.body
        agent = self._agent(ev, b["agentId"])
        scope_id = self._scope(ev, b["scopeId"])
        sid, predicate_type, parsed = self._statement(
            ev, envelopes, agent.key, f"agent {b['agentId']}", _STATEMENT_MODELS)
        predicate = parsed if isinstance(parsed, ScanPredicate | DeletionPredicate) else None
        assert predicate is not None  # noqa: S101 - _STATEMENT_MODELS holds only these
        scan = predicate if isinstance(predicate, ScanPredicate) else None
        self._check_logged(ev, {
            "statementId": sid, "caseId": self.case_id,
            "agentId": predicate.agent_id, "scopeId": int(predicate.scope_id)
            if predicate.scope_id.isdigit() else predicate.scope_id,
            "seq": predicate.seq, "prev": predicate.prev, "predicateType": predicate_type,
            "scanId": scan.scan_id if scan else None, "part": scan.part if scan else None,
        })
        challenge_id = self._challenge_of(ev, scan, agent, scope_id)
        row = Attestation(
            statement_id=sid, agent_id=agent.pk, case_id=self.case_id,
            seq=predicate.seq, prev=predicate.prev, predicate_type=predicate_type,
            scope_id=scope_id, scan_id=scan.scan_id if scan else None,
            part=scan.part if scan else None, challenge_id=challenge_id,
            # The bundle holds the envelope; the verdict never reads it back, and copying
            # a 26-million-item case's envelopes would double the replay's writes.
            envelope=b"", received_at=self.now, leaf_hash=bytes(32))
        self.session.add(row)
        self.session.flush()
        record_statement(self.session, attestation=row, predicate=predicate,
                         challenge_id=challenge_id, now=self.now)

    def person_attestation(self, ev: ReplayEvent, envelopes: Mapping[str, bytes]) -> None:
        """A statement a person signed (vendor, custody, de-identification), recorded as
        ingest records it, with what ingest judged it concerns (logged with it)."""
        b = ev.body
        key = self.user_keys.get(str(b["keyId"]))
        if key is None:
            raise ReplayError(f"key {b['keyId']} has no key registration among the events",
                              at=ev)
        sid, predicate_type, parsed = self._statement(
            ev, envelopes, key, f"user {b['userId']}", _PERSON_MODELS)
        predicate = parsed if isinstance(parsed, VendorPredicate | CustodyStatementPredicate
                                         | DeidentifyPredicate) else None
        assert predicate is not None  # noqa: S101 - _PERSON_MODELS holds only these
        logged: dict[str, object] = {"statementId": sid, "predicateType": predicate_type}
        if predicate.case_id != str(self.case_id):
            raise ReplayError(f"the signed statement is for case {predicate.case_id}", at=ev)
        if isinstance(predicate, VendorPredicate):
            logged |= {"dataFlowId": int(predicate.flow_id) if predicate.flow_id.isdigit()
                       else predicate.flow_id}
        elif isinstance(predicate, CustodyStatementPredicate):
            logged |= {"obligationId": int(predicate.obligation_id)
                       if predicate.obligation_id.isdigit() else predicate.obligation_id}
        self._check_logged(ev, logged)
        row = Attestation(
            statement_id=sid, agent_id=None, user_id=b["userId"], case_id=self.case_id,
            seq=None, prev=None, predicate_type=predicate_type, envelope=b"",
            received_at=self.now, leaf_hash=bytes(32))
        self.session.add(row)
        self.session.flush()
        record_person_statement(
            self.session, attestation=row, predicate=predicate, user_id=b["userId"],
            key_id=str(b["keyId"]), party_id=b["partyId"], data_flow_id=b["dataFlowId"],
            obligation_id=b["obligationId"], now=self.now)

    def _challenge_of(self, ev: ReplayEvent, scan: ScanPredicate | None, agent: _Agent,
                      scope_id: int) -> int | None:
        """The challenge ingest judged the scan to answer (logged with the statement): it
        must be the one whose nonce the agent signed, issued to this agent and scope."""
        challenge_id = ev.body["challengeId"]
        nonce = scan.challenge if scan is not None else None
        if challenge_id is None:
            if nonce is not None:
                raise ReplayError("the statement answers a challenge its event does not name",
                                  at=ev)
            return None
        row = self.session.get(Challenge, challenge_id)
        if (row is None or row.nonce != nonce or row.agent_id != agent.pk
                or row.scope_id != scope_id):
            raise ReplayError(f"challenge {challenge_id} is not the one the statement "
                              "answers", at=ev)
        return int(challenge_id)

    def load_manifest(self, manifest_path: Path | None, items: ItemsLoad) -> None:
        manifest, ev = self.manifest, self.manifest_event
        if manifest is None or ev is None:
            return
        if manifest_path is None:
            raise ReplayError(f"manifest {manifest.id} is active but no manifest file was "
                              "given", at=ev)
        try:
            loaded = items.result(self.session, manifest_path, manifest.id)
        except ManifestFileError as exc:
            raise ReplayError(str(exc), at=ev) from None
        if loaded.sha256 != manifest.file_sha256.hex():
            raise ReplayError(f"{manifest_path}: the file's SHA-256 {loaded.sha256} is not the "
                              f"registered manifest's {manifest.file_sha256.hex()}", at=ev)
        if loaded.count != manifest.count:
            raise ReplayError(f"{manifest_path}: {loaded.count} entries, the registered "
                              f"manifest has {manifest.count}", at=ev)
        manifest.header = loaded.header
        manifest.case_number = str(loaded.header["case"])
        self.session.flush()


def _names_a_case(ev: ReplayEvent) -> bool:
    """People's key events are not a case's (a key signs in several cases)."""
    return not (ev.type in ("key-registration", "key-revocation")
                and ev.body.get("subjectType") != "agent")


def _check_order(events: Sequence[ReplayEvent]) -> int:
    """The events' case (one case only), after checking they are in strict log order."""
    case_ids = set()
    last = -1
    for ev in events:
        if ev.index <= last:
            raise ReplayError(f"events are not in log order: index {ev.index} after {last}",
                              at=ev)
        last = ev.index
        if not _names_a_case(ev):
            continue
        case_id = _case_of(ev.body)
        if case_id is None:
            raise ReplayError("names no case", at=ev)
        case_ids.add(case_id)
    if len(case_ids) != 1:
        raise ReplayError(f"the events must be of one case, not {sorted(case_ids) or 'none'}")
    return case_ids.pop()


def _verdict_at(
    events: Iterable[ReplayEvent], as_of_size: int, version: int | None,
    as_of: datetime | None,
) -> tuple[int, datetime]:
    """Which version a log size stands for, and its domain time: from the verdict event
    that logged ``asOfLogSize`` (the latest such version), unless both are given."""
    if version is not None and as_of is not None:
        return version, as_of
    found = [ev for ev in events if ev.type == "verdict"
             and ev.body.get("asOfLogSize") == as_of_size
             and (version is None or ev.body.get("version") == version)]
    if not found:
        raise ReplayError(f"no verdict event was computed as of log size {as_of_size}: give "
                          "its version and time")
    chosen = max(found, key=lambda ev: int(ev.body["version"]))
    return (version if version is not None else int(chosen.body["version"]),
            as_of if as_of is not None else _time(chosen, chosen.body.get("at"), "at"))


def replay_case(
    events: Sequence[ReplayEvent], *, envelopes: Mapping[str, bytes],
    manifest_path: Path | None, as_of_size: int, workdir: Path, version: int | None = None,
    as_of: datetime | None = None,
) -> Replayed:
    """Rebuild the case from ``events`` with index below ``as_of_size`` and compute its
    verdict; see :func:`replay_verdict`."""
    counted = [ev for ev in events if ev.index < as_of_size]
    case_id = _check_order(events)
    version, as_of = _verdict_at(events, as_of_size, version, as_of)
    directory = Path(tempfile.mkdtemp(prefix="verdict-replay-", dir=workdir))
    engine = replay_engine(directory)
    registered = [ev.body for ev in counted if ev.type == "manifest"]
    items = ItemsLoad(directory, manifest_path, *(
        (registered[-1].get("manifest"), registered[-1].get("count") or 0) if registered
        else (None, 0)))
    try:
        with Session(engine) as session, session.begin():
            marks = [(time.perf_counter(), time.process_time())]
            replayer = _Replayer(session=session, case_id=case_id)
            for ev in counted:
                replayer.apply(ev, envelopes)
            create_deferred_indexes(session)
            marks.append((time.perf_counter(), time.process_time()))
            replayer.load_manifest(manifest_path, items)
            marks.append((time.perf_counter(), time.process_time()))
            report = compute_report(session, case_id=case_id, now=as_of)
            marks.append((time.perf_counter(), time.process_time()))
            log.debug("verdict replay of case %s (wall/CPU seconds of this process): %d "
                      "events %s, manifest items (waited for) %s, verdict %s", case_id,
                      len(counted), *(f"{b[0] - a[0]:.2f}/{b[1] - a[1]:.2f}"
                                      for a, b in itertools.pairwise(marks)))
        predicate = verdict_predicate(report, version=version, log_size=as_of_size,
                                      now=as_of)
        return Replayed(report=report, predicate=predicate.to_predicate())
    finally:
        items.cancel()
        engine.dispose()
        shutil.rmtree(directory, ignore_errors=True)


def replay_verdict(
    events: Sequence[ReplayEvent], *, envelopes: Mapping[str, bytes],
    manifest_path: Path | None, as_of_size: int, workdir: Path, version: int | None = None,
    as_of: datetime | None = None,
) -> dict[str, Any]:
    """The verdict predicate of the case as of log size ``as_of_size``, rebuilt from its
    events alone: exactly what the service signed for the same inputs.

    ``envelopes`` maps the lowercase hex SHA-256 of each statement envelope to its bytes
    (a lazy mapping does for a large case: each is read once); ``manifest_path`` is the
    active manifest's JSON Lines file. The verdict's version and domain time come from the
    verdict event logged with ``asOfLogSize == as_of_size`` (it lies beyond that size, so
    include it in ``events``), or from ``version`` and ``as_of`` — e.g. from the signed
    predicate being checked. Raises :class:`ReplayError` naming the event that does not
    fit.
    """
    return replay_case(events, envelopes=envelopes, manifest_path=manifest_path,
                       as_of_size=as_of_size, workdir=workdir, version=version,
                       as_of=as_of).predicate
