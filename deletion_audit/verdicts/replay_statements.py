"""Signed statements in a verdict replay: each attestation event's envelope verified with
the key its signer registered, checked against the event, and recorded as ingest records it
(:func:`~deletion_audit.verdicts.recording.record_statement`)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from deletion_audit.core import dsse
from deletion_audit.core.errors import FormatError, PredicateError, SignatureError
from deletion_audit.core.keys import raw_public
from deletion_audit.core.predicates import (
    CUSTODY_STATEMENT,
    DEIDENTIFY,
    DELETION,
    SCAN,
    VENDOR,
    CustodyStatementPredicate,
    DeidentifyPredicate,
    DeletionPredicate,
    PredicateModel,
    ScanPredicate,
    VendorPredicate,
    expect_predicate,
)
from deletion_audit.core.statements import parse_statement, statement_id
from deletion_audit.models import Attestation, Challenge
from deletion_audit.verdicts.recording import (
    PersonPredicate,
    record_person_statement,
    record_statement,
)
from deletion_audit.verdicts.replay_events import ReplayError, ReplayEvent
from deletion_audit.verdicts.replay_state import ReplayAgent, ReplayState

_STATEMENT_MODELS: dict[str, type[ScanPredicate] | type[DeletionPredicate]] = {
    SCAN: ScanPredicate, DELETION: DeletionPredicate,
}
# Statements people sign (attestations/people.py): their events name a user and a key.
_PERSON_MODELS: dict[str, type[PersonPredicate]] = {
    VENDOR: VendorPredicate, CUSTODY_STATEMENT: CustodyStatementPredicate,
    DEIDENTIFY: DeidentifyPredicate,
}


@dataclass
class StatementReplay(ReplayState):
    """The attestation events' handlers (agents' scans and deletions, people's statements)."""

    def _statement(
        self, ev: ReplayEvent, envelopes: Mapping[str, bytes], key: Ed25519PublicKey,
        signer: str, models: Mapping[str, type[PredicateModel]],
    ) -> tuple[str, str, PredicateModel]:
        """The envelope the event names, verified with the signer's registered key: its
        statement id, predicate type and predicate."""
        try:
            payload = self._verified_payload(ev, envelopes, key)
            statement = parse_statement(payload)
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
        return statement_id(payload), statement.predicate_type, predicate

    def _verified_payload(self, ev: ReplayEvent, envelopes: Mapping[str, bytes],
                          key: Ed25519PublicKey) -> bytes:
        """The payload of the envelope the event names, signed by ``key``. The caller's
        ``verified`` pairs spare the check of the same bytes with the same key (and the
        reading, when their payload was kept); any other envelope is verified here."""
        sha = ev.body["envelopeSha256"]
        pair = (sha, raw_public(key))
        kept = self.verified.get(pair)
        if kept is not None:
            return kept
        envelope = envelopes.get(sha)
        if envelope is None or hashlib.sha256(envelope).hexdigest() != sha:
            raise ReplayError(f"the envelope with SHA-256 {sha} is missing", at=ev)
        parsed = dsse.Envelope.from_json(envelope)
        return parsed.payload if pair in self.verified else dsse.verify(parsed, [key]).payload

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

    def _challenge_of(self, ev: ReplayEvent, scan: ScanPredicate | None, agent: ReplayAgent,
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
