"""The case's facts in a verdict replay: one handler per event type writes what the event
says into the tables the engine reads, after checking it against what came before it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from deletion_audit.cases.scopes import spec_digest
from deletion_audit.core.b64 import b64decode
from deletion_audit.core.keys import public_key_from_raw
from deletion_audit.core.predicates import KeyRegistrationPredicate
from deletion_audit.models import (
    Agent,
    AgentStatus,
    Binding,
    Challenge,
    DataFlow,
    KeyRevocationReason,
    Manifest,
    Obligation,
    ObligationKind,
    ObligationState,
    Party,
    Review,
    ReviewKind,
    ReviewState,
    Scope,
    UserKey,
)
from deletion_audit.reviews import commitment as review_commitment
from deletion_audit.verdicts import custody
from deletion_audit.verdicts.replay_events import ReplayError, ReplayEvent, event_time
from deletion_audit.verdicts.replay_sessions import SessionReplay, SessionReplayError
from deletion_audit.verdicts.replay_state import ReplayAgent
from deletion_audit.verdicts.replay_statements import StatementReplay
from deletion_audit.verdicts.replay_store import ItemsLoad, ManifestFileError


@dataclass
class Replayer(StatementReplay):
    parties: set[int] = field(default_factory=set)
    manifest: Manifest | None = None
    manifest_event: ReplayEvent | None = None
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
            self.clock = event_time(ev, ev.body["at"], "at")
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
        self.agents[reg.subject_id] = ReplayAgent(pk=pk, key=public_key_from_raw(raw))
        self.clock = max(self.clock or reg.registered_at, reg.registered_at)

    def key_revocation(self, ev: ReplayEvent) -> None:
        b = ev.body
        if b.get("subjectType") == "user":
            key = self.session.execute(select(UserKey).where(
                UserKey.key_id == b["keyId"])).scalar_one_or_none()
            if key is None:
                raise ReplayError(f"key {b['keyId']} has no earlier registration", at=ev)
            key.revoked_at = event_time(ev, b["revokedAt"], "revokedAt")
            key.revocation_reason = KeyRevocationReason(b["reason"]).value
            return
        if b.get("subjectType") != "agent":
            return
        row = self.session.get_one(Agent, self._agent(ev, b["subjectId"]).pk)
        kind = AgentStatus(b["kind"])
        row.status, row.status_changed_at = kind.value, self.now
        row.revoked_at = row.revoked_at or event_time(ev, b["revokedAt"], "revokedAt")
        if kind is AgentStatus.COMPROMISED:
            row.compromised_since = event_time(ev, b["since"], "since")

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
            expires_at=event_time(ev, b["expiresAt"], "expiresAt"), issued_by=b["by"],
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
            closes_at = event_time(ev, b["closesAt"], "closesAt")
            self.session.add(Review(
                id=b["reviewId"], case_id=self.case_id, kind=b["kind"],
                state=ReviewState.OPEN.value, due_at=event_time(ev, b["dueAt"], "dueAt"),
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

    def _custody_breach_shown(self, ev: ReplayEvent, row: Obligation) -> None:
        """A custody breach the service logged for items found after the destruction
        statement (cases/custody.py) is re-derived from the statements replayed so far:
        the scopes it names must have such a scan."""
        named = {int(s) for s in ev.body["scopeIds"]}
        since = custody.destroyed_at(self.session, row.id)
        found = ({d.scope_id for d in custody.dirty_scans(
            self.session, case_id=self.case_id, since=since)} if since is not None else set())
        if not named or not named <= found:
            raise ReplayError(f"obligation {row.id}'s breach names scopes {sorted(named)}, but "
                              "no counted scan of them after the custodian's destruction "
                              "statement found manifest items", at=ev)

    def obligation(self, ev: ReplayEvent) -> None:
        b = ev.body
        action = b["action"]
        if action == "set":
            deadline = b["deadline"]
            self.session.add(Obligation(
                id=b["obligationId"], case_id=self.case_id, kind=b["kind"], title=b["title"],
                details=b["details"], state=b["state"], deadline=deadline,
                due_at=event_time(ev, deadline["due_at"], "deadline.due_at") if deadline else None,
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
            if b.get("scopeIds") is not None and row.kind == ObligationKind.CUSTODY_UNTIL.value:
                self._custody_breach_shown(ev, row)
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
