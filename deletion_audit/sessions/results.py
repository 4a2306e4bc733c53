"""What a session found, from the scans that answered its challenges, and the record the
server builds from it with the examiner's environment check and remarks."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from deletion_audit.cases.access import CaseAccess
from deletion_audit.cases.service import log_event
from deletion_audit.core.b64 import b64encode
from deletion_audit.core.predicates import (
    EnvironmentCheck,
    SessionParticipantEntry,
    SessionPredicate,
    SessionScan,
    SessionScope,
    SessionSummary,
)
from deletion_audit.core.statements import statement_id
from deletion_audit.errors import Conflict
from deletion_audit.events import Logged
from deletion_audit.models import (
    Agent,
    Binding,
    Challenge,
    OnSiteSession,
    Organisation,
    Party,
    ScanItem,
    ScanRecord,
    Scope,
    SessionState,
    User,
)
from deletion_audit.sessions import record as records
from deletion_audit.sessions.rules import parse_rule
from deletion_audit.sessions.service import (
    EXAMINER_PARTIES,
    new_salt,
    participants_of,
    sha256_text,
    signatures_of,
)

_BEIJING = timedelta(hours=8)


@dataclass(frozen=True)
class ScanResult:
    scope_id: int
    agent_id: str
    attested_by: str
    build_digest: str | None
    scan_id: str
    challenge_id: int
    coverage: str | None
    objects: int
    started_at: datetime
    finished_at: datetime
    present: tuple[str, ...]


@dataclass(frozen=True)
class ScopeResult:
    scope_id: int
    spec_digest: str
    scans: tuple[ScanResult, ...]

    @property
    def present(self) -> set[str]:
        return {d for s in self.scans for d in s.present}

    def _by(self, who: str) -> set[str] | None:
        mine = [s for s in self.scans if s.attested_by == who]
        return {d for s in mine for d in s.present} if mine else None

    @property
    def examiner_only(self) -> int:
        """Items the examiner's scan found that the company's own scan did not report
        (0 when the company's agent did not scan in the session)."""
        examiner, company = self._by("examiner"), self._by("company")
        return len(examiner - company) if examiner is not None and company is not None else 0

    @property
    def company_only(self) -> int:
        examiner, company = self._by("examiner"), self._by("company")
        return len(company - examiner) if examiner is not None and company is not None else 0


def session_results(session: Session, sess: OnSiteSession) -> list[ScopeResult]:
    """Per scope, the latest finished scan of each agent that answered a challenge of the
    session, with the manifest items it found present."""
    rows = session.execute(
        select(ScanRecord, Agent.public_id, Agent.build_digest, Party.role)
        .join(Challenge, Challenge.id == ScanRecord.challenge_id)
        .join(Agent, Agent.id == ScanRecord.agent_id)
        .join(Party, Party.id == Agent.party_id)
        .where(Challenge.session_id == sess.id, ScanRecord.finished.is_(True))
        .order_by(ScanRecord.finished_at, ScanRecord.id)).all()
    latest: dict[tuple[int, str], Any] = {}
    for row in rows:
        latest[(row[0].scope_id, row[1])] = row
    pks = [r[0].id for r in latest.values()]
    items: dict[int, list[str]] = defaultdict(list)
    if pks:
        for pk, digest in session.execute(select(ScanItem.scan_pk, ScanItem.digest).where(
                ScanItem.scan_pk.in_(pks))):
            items[pk].append(digest.hex())
    specs = dict(session.execute(select(Scope.id, Scope.spec_digest).where(
        Scope.id.in_(sess.scope_ids))).all())
    out = []
    for scope_id in sess.scope_ids:
        scans = tuple(ScanResult(
            scope_id=scan.scope_id, agent_id=public_id, build_digest=build,
            attested_by="examiner" if role in EXAMINER_PARTIES else "company",
            scan_id=scan.scan_id, challenge_id=scan.challenge_id or 0,
            coverage=scan.coverage, objects=scan.objects or 0, started_at=scan.started_at,
            finished_at=scan.finished_at, present=tuple(sorted(items[scan.id])))
            for (sid, _), (scan, public_id, build, role) in sorted(latest.items())
            if sid == scope_id)
        out.append(ScopeResult(scope_id=scope_id, spec_digest=specs[scope_id], scans=scans))
    return out


@dataclass(frozen=True)
class EnvironmentInput:
    hostname: str | None
    machine_id: str | None
    volume_ids: tuple[str, ...]
    note: str


def _declared_hosts(session: Session, sess: OnSiteSession) -> list[dict[str, Any]]:
    """Host facts the company's agents bound to the session's scopes reported."""
    rows = session.execute(
        select(Agent.host, Party.role).join(Binding, Binding.agent_id == Agent.id)
        .join(Party, Party.id == Agent.party_id)
        .where(Binding.scope_id.in_(sess.scope_ids), Agent.case_id == sess.case_id)).all()
    return [host for host, role in rows if host and role not in EXAMINER_PARTIES]


def _host_matches(declared: list[dict[str, Any]], env: EnvironmentInput) -> bool:
    if not env.hostname and not env.machine_id:
        return False
    for host in declared:
        if env.hostname and host.get("hostname") != env.hostname:
            continue
        if env.machine_id and host.get("machine_id") not in (None, env.machine_id):
            continue
        return True
    return False


def _beijing(value: datetime) -> str:
    return (value + _BEIJING).strftime("%Y-%m-%d %H:%M")


def build_record(
    session: Session, *, access: CaseAccess, sess: OnSiteSession, environment: EnvironmentInput,
    remarks: str, now: datetime,
) -> Logged[OnSiteSession]:
    """The record from the session's scans, the environment check and the remarks. It may
    be rebuilt until the first co-signature; after that it is what people signed."""
    if sess.state not in (SessionState.OPEN.value, SessionState.RECORDED.value):
        raise Conflict(f"session {sess.id} is {sess.state}; its record is final")
    if signatures_of(session, sess.id):
        raise Conflict(f"session {sess.id}'s record has co-signatures; it cannot change")
    results = session_results(session, sess)
    for scope in results:
        if not any(s.attested_by == "examiner" for s in scope.scans):
            raise Conflict(f"scope {scope.scope_id} has no scan by the examiner's agent "
                           f"answering a challenge of session {sess.id} yet")
    people = participants_of(session, sess.id)
    orgs = dict(session.execute(select(User.id, Organisation.display_name).join(
        Organisation, Organisation.id == User.organisation_id).where(
        User.id.in_([p.user_id for p in people]))).all())
    salt = new_salt()
    lists = {"caseId": str(sess.case_id), "sessionId": str(sess.id), "scopes": [
        {"scopeId": str(r.scope_id), "scans": [
            {"agentId": s.agent_id, "scanId": s.scan_id, "present": list(s.present)}
            for s in r.scans]} for r in results]}
    scopes = [SessionScope(
        scope_id=str(r.scope_id), spec_digest=r.spec_digest, items_present=len(r.present),
        found_by_examiner_only=r.examiner_only, found_by_company_only=r.company_only,
        scans=[SessionScan(agent_id=s.agent_id, attested_by=s.attested_by,  # type: ignore[arg-type]
                           agent_build_digest=s.build_digest, scan_id=s.scan_id,
                           challenge_id=str(s.challenge_id), coverage=s.coverage,
                           objects=s.objects, items_present=len(s.present)) for s in r.scans])
        for r in results]
    all_scans = [s for r in results for s in r.scans]
    present = sum(len(r.present) for r in results)
    objects = sum(s.objects for s in all_scans if s.attested_by == "examiner")
    host_ok = _host_matches(_declared_hosts(session, sess), environment)
    rule = parse_rule(sess.sign_off)
    text = records.Facts(
        place=sess.place, when=_beijing(min(s.started_at for s in all_scans)),
        roles=[p.role for p in people], scopes=scopes, objects=objects, present=present,
        host_ok=host_ok, remarks=remarks.strip(), rule=rule)
    predicate = SessionPredicate(
        case_id=str(sess.case_id), session_id=str(sess.id), place=sess.place,
        planned_at=sess.planned_at, sign_off=sess.sign_off,
        participants=[SessionParticipantEntry(
            user_id=str(p.user_id), role=p.role,  # type: ignore[arg-type]
            organisation=orgs[p.user_id], notified_at=p.notified_at) for p in people],
        scopes=scopes, scan_ids=[s.scan_id for s in all_scans], objects_scanned=objects,
        items_present=present, items_commitment=records.commitment(salt, lists),
        environment=EnvironmentCheck(
            checked_by=str(access.user_id), checked_at=now, host_matches_declared=host_ok,
            hostname_sha256=sha256_text(environment.hostname),
            machine_id_sha256=sha256_text(environment.machine_id),
            volume_ids_sha256=[sha256_text(v) or "" for v in environment.volume_ids if v],
            note=environment.note.strip()),
        remarks=remarks.strip(),
        summary=SessionSummary(zh=records.summary_zh(text), en=records.summary_en(text)),
        outcome="findings" if present else "clean",
        started_at=min(s.started_at for s in all_scans),
        finished_at=max(s.finished_at for s in all_scans))
    payload = records.record_payload(predicate)
    sess.record, sess.record_digest = payload, statement_id(payload)
    sess.items, sess.items_salt = lists, salt
    sess.recorded_at, sess.recorded_by = now, access.user_id
    sess.state = SessionState.RECORDED.value
    session.flush()
    leaf = log_event(session, "session", {
        "action": "recorded", "caseId": sess.case_id, "sessionId": sess.id,
        "recordDigest": sess.record_digest, "itemsCommitment": predicate.items_commitment,
        "itemsPresent": present, "outcome": predicate.outcome, "salt": salt.hex(),
        "lists": lists, "record": b64encode(payload), "by": access.user_id}, now=now)
    return Logged(row=sess, leaf_hash=leaf)

