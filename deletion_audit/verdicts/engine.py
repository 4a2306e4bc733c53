"""The verdict of a case, exactly as DESIGN.md's truth table says.

``not_verified`` ⇔ some manifest item is present in the latest challenged scan of some
scope, or an obligation is overdue or breached, or the latest closed follow-up review found
an item present again. Otherwise ``insufficient_evidence`` ⇔ some
scope or declared data flow lacks a challenged complete scan (or a vendor statement) after
its last deletion, an emptiness rule fires, or forensics found items in a location no scope
covers, or a scope under a retention rule has a latest challenged scan without an age
summary (``retention_unchecked``), or the latest closed follow-up review had other
findings or no response.
Otherwise ``verified``.

Item-sized work is set-based SQL (verdicts/queries.py); the Python here loops over scopes,
scans, data flows and obligations only — a case has tens of those, not millions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import FromClause, func, select
from sqlalchemy.orm import Session

from deletion_audit.cases import retention
from deletion_audit.core.predicates import VENDOR
from deletion_audit.models import (
    Agent,
    Binding,
    CaseRole,
    Challenge,
    ChallengeOrigin,
    DataFlow,
    DeletionRecord,
    KeyRevocationReason,
    Manifest,
    Obligation,
    ObligationKind,
    ObligationState,
    OnSiteSession,
    Party,
    PartyRole,
    PersonStatement,
    Review,
    ReviewOutcome,
    ReviewState,
    ScanItem,
    ScanRecord,
    Scope,
    SessionParticipant,
    SessionSignature,
    SessionState,
    UserKey,
)
from deletion_audit.models.manifests import KIND_CODES, KIND_NAMES
from deletion_audit.verdicts import custody, queries
from deletion_audit.verdicts.reasons import LIMIT_EN, LIMIT_ZH, REASONS, outcome_of
from deletion_audit.verdicts.schemas import (
    DataFlowVerdict,
    Grade,
    ItemCounts,
    ManifestRef,
    ObligationVerdict,
    PeopleCounts,
    ReasonRead,
    Report,
    ScanRead,
    ScopeVerdict,
    StateCounts,
    Text,
)

# Whose agent is the examiner's: DESIGN, "Who attests" (the token's party role).
EXAMINER_PARTIES = frozenset({PartyRole.FORENSIC_LAB.value, PartyRole.PROCURATORATE.value})
_GRADE_RANK: dict[Grade, int] = {"company": 1, "examiner": 2, "witnessed": 3}
_IN_FORCE = (ObligationState.IN_FORCE.value,)


def grade_of(party_role: str, challenge_origin: str, *, witnessed: bool = False) -> Grade:
    """A scan's evidence grade: ``witnessed`` when it answered a challenge of an on-site
    session that closed by its sign-off rule with witnesses' signatures; otherwise by whose
    agent ran it."""
    if witnessed and challenge_origin == ChallengeOrigin.SESSION.value:
        return "witnessed"
    return "examiner" if party_role in EXAMINER_PARTIES else "company"


def witnessed_sessions(session: Session, case_id: int) -> set[int]:
    """Sessions closed by their sign-off rule with at least one witness's signature."""
    return set(session.execute(
        select(OnSiteSession.id)
        .join(SessionSignature, SessionSignature.session_id == OnSiteSession.id)
        .join(SessionParticipant, SessionParticipant.id == SessionSignature.participant_id)
        .where(OnSiteSession.case_id == case_id,
               OnSiteSession.state == SessionState.CLOSED.value,
               SessionParticipant.role == CaseRole.WITNESS.value)).scalars())


@dataclass(frozen=True)
class _Scan:
    pk: int
    scope_id: int
    read: ScanRead
    ages: bool


@dataclass
class _Found:
    """Reasons as they are found, with what each concerns."""

    codes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, code: str, **concerns: Any) -> None:
        entry = self.codes.setdefault(code, {"scope_ids": [], "data_flow_ids": [],
                                             "obligation_ids": [], "items": None})
        for key in ("scope_ids", "data_flow_ids", "obligation_ids"):
            entry[key].extend(concerns.get(key, []))
        if concerns.get("items") is not None:
            entry["items"] = (entry["items"] or 0) + concerns["items"]

    def reasons(self) -> list[ReasonRead]:
        return [_reason(code, **entry) for code, entry in sorted(self.codes.items())]


def _reason(code: str, **concerns: Any) -> ReasonRead:
    return ReasonRead(code=code, zh=REASONS[code][1], en=REASONS[code][2], **concerns)


def active_manifest(session: Session, case_id: int) -> Manifest | None:
    return session.execute(select(Manifest).where(
        Manifest.case_id == case_id, Manifest.state == "active")).scalar_one_or_none()


def _counted_scans(session: Session, case_id: int) -> list[_Scan]:
    present = (select(func.count()).where(ScanItem.scan_pk == ScanRecord.id)
               .correlate(ScanRecord).scalar_subquery())
    witnessed = witnessed_sessions(session, case_id)
    rows = session.execute(
        select(ScanRecord, Agent.public_id, Party.role, Challenge.origin,
               Challenge.session_id, present)
        .join(Agent, Agent.id == ScanRecord.agent_id)
        .join(Party, Party.id == Agent.party_id)
        .join(Challenge, Challenge.id == ScanRecord.challenge_id)
        .where(queries.counted_scans(case_id))
        .order_by(ScanRecord.finished_at, ScanRecord.id)
    ).all()
    return [_Scan(pk=scan.id, scope_id=scan.scope_id, ages=scan.ages_reported, read=ScanRead(
        scan_id=scan.scan_id, agent_id=public_id,
        grade=grade_of(role, origin, witnessed=session_id in witnessed),
        challenge_origin=origin, coverage=scan.coverage, objects=scan.objects,
        present=n, started_at=scan.started_at, finished_at=scan.finished_at))
        for scan, public_id, role, origin, session_id, n in rows]


def _item_counts(session: Session, states: FromClause) -> ItemCounts:
    by_kind: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    totals: dict[str, int] = defaultdict(int)
    for kind, state, n in session.execute(queries.counts_by_kind_and_state(states)):
        by_kind[KIND_NAMES.get(kind, str(kind))][state] += n
        totals[state] += n
    return ItemCounts(
        total=sum(totals.values()), **totals,
        by_kind={k: StateCounts(total=sum(v.values()), **v)
                 for k, v in sorted(by_kind.items(), key=lambda kv: KIND_CODES.get(kv[0], 99))})


def _items_and_people(session: Session, case_id: int,
                      manifest: Manifest | None) -> tuple[ItemCounts, PeopleCounts]:
    if manifest is None:
        return ItemCounts(), PeopleCounts(total=0, all_deleted=0)
    with queries.item_state_table(session, case_id, manifest.id) as states:
        items = _item_counts(session, states)
        total, all_deleted = session.execute(queries.people_counts(states)).one()
    return items, PeopleCounts(total=total, all_deleted=int(all_deleted))


def _scope_verdicts(
    session: Session, *, case_id: int, manifest: Manifest | None, scopes: Sequence[Scope],
    found: _Found,
) -> list[ScopeVerdict]:
    scans = _counted_scans(session, case_id)
    bound = set(session.execute(select(Binding.scope_id).where(
        Binding.case_id == case_id, Binding.unbound_at.is_(None))).scalars())
    last_deletion = dict(session.execute(
        select(DeletionRecord.scope_id, func.max(DeletionRecord.deleted_at))
        .where(DeletionRecord.case_id == case_id).group_by(DeletionRecord.scope_id)).all())
    ruled = retention.scopes_under_rules(session, case_id=case_id,
                                         scope_ids=[s.id for s in scopes], states=_IN_FORCE)
    out = []
    for scope in scopes:
        mine = [s for s in scans if s.scope_id == scope.id]
        deleted_at = last_deletion.get(scope.id)
        evidence = [s.read for s in mine if s.read.coverage == "complete"
                    and (deleted_at is None or s.read.started_at >= deleted_at)]
        grade = max((s.grade for s in evidence), key=_GRADE_RANK.__getitem__, default=None)
        latest = mine[-1] if mine else None
        clean = [s.read for s in mine if s.read.present == 0]
        vanished = 0
        if latest is not None and manifest is not None:
            vanished = session.execute(queries.vanished_items(
                case_id, manifest.id, scope.id, latest.pk, latest.read.finished_at)).scalar_one()
        if scope.id not in bound:
            found.add("scope_not_bound", scope_ids=[scope.id])
        if not evidence:
            found.add("scope_not_scanned", scope_ids=[scope.id])
        if scope.expects_data and not any((s.read.objects or 0) > 0 for s in mine):
            found.add("expected_data_never_seen", scope_ids=[scope.id])
        if vanished:
            found.add("vanished_without_deletion", scope_ids=[scope.id], items=vanished)
        if scope.id in ruled and latest is not None and not latest.ages:
            # Its latest scan carried no age summary: the rule is not shown kept there.
            found.add("retention_unchecked", scope_ids=[scope.id])
        out.append(ScopeVerdict(
            id=scope.id, name=scope.name, expects_data=scope.expects_data,
            bound=scope.id in bound, grade=grade, covered=bool(evidence),
            last_deletion_at=deleted_at, latest_challenged_scan=latest.read if latest else None,
            last_clean_challenged_scan=clean[-1] if clean else None, vanished_items=vanished))
    return out


# What a vendor party's statement says about a data flow, and whether it covers it.
_VENDOR_COVERS = frozenset({"deleted", "not-received"})
_RETAINED = "retained-under-custody"


def _custodian_parties(session: Session, case_id: int) -> set[int]:
    """Parties named custodian by a ``custody-until`` obligation that stands (in force or
    discharged: neither breached nor waived)."""
    rows = session.execute(select(Obligation.details).where(
        Obligation.case_id == case_id,
        Obligation.kind == ObligationKind.CUSTODY_UNTIL.value,
        Obligation.state.in_([ObligationState.IN_FORCE.value,
                              ObligationState.DISCHARGED.value]))).scalars()
    return {d["custodian_party_id"] for d in rows if d.get("custodian_party_id") is not None}


def _latest_vendor_statements(session: Session, case_id: int) -> dict[int, tuple[datetime, str]]:
    """Each data flow's latest vendor statement: (stated_at, status). A statement signed by
    a key later revoked as compromised does not count: a person's key revocation has no
    since-time, so nothing it signed can be told from a forgery."""
    compromised = select(UserKey.id).where(
        UserKey.key_id == PersonStatement.key_id,
        UserKey.revocation_reason == KeyRevocationReason.COMPROMISED.value)
    latest: dict[int, tuple[datetime, str]] = {}
    for flow_id, stated_at, status in session.execute(
        select(PersonStatement.data_flow_id, PersonStatement.stated_at, PersonStatement.outcome)
        .where(PersonStatement.case_id == case_id, PersonStatement.predicate_type == VENDOR,
               ~compromised.exists())
        .order_by(PersonStatement.stated_at, PersonStatement.attestation_id)):
        if flow_id is not None:
            latest[flow_id] = (stated_at, status)
    return latest


def _data_flows(session: Session, *, case_id: int, covered_scopes: set[int],
                found: _Found) -> list[DataFlowVerdict]:
    """A flow is covered by its scope's challenged scan, or by its vendor party's latest
    statement made after the last deletion relevant to it (its scope's, or the case's when
    it names no scope): ``deleted`` or ``not-received`` cover it; ``retained-under-custody``
    covers it only while a custody-until obligation names that vendor party its custodian
    (the copy is then a sealed backup the custody obligation governs, CASES.md case 4)."""
    last_deletion = dict(session.execute(
        select(DeletionRecord.scope_id, func.max(DeletionRecord.deleted_at))
        .where(DeletionRecord.case_id == case_id).group_by(DeletionRecord.scope_id)).all())
    case_deletion = max(last_deletion.values(), default=None)
    statements = _latest_vendor_statements(session, case_id)
    custodians = _custodian_parties(session, case_id) if statements else set()
    out = []
    for flow in session.execute(select(DataFlow).where(DataFlow.case_id == case_id)
                                .order_by(DataFlow.id)).scalars():
        covered_by: Literal["scope", "vendor_statement"] | None = None
        if flow.scope_id is not None and flow.scope_id in covered_scopes:
            covered_by = "scope"
        elif flow.vendor_party_id is not None and flow.id in statements:
            since = (last_deletion.get(flow.scope_id) if flow.scope_id is not None
                     else case_deletion)
            stated_at, status = statements[flow.id]
            if since is None or stated_at >= since:
                if status in _VENDOR_COVERS or (
                        status == _RETAINED and flow.vendor_party_id in custodians):
                    covered_by = "vendor_statement"
        if covered_by is None:
            found.add("data_flow_not_covered", data_flow_ids=[flow.id])
        out.append(DataFlowVerdict(id=flow.id, kind=flow.kind, covered=covered_by is not None,
                                   covered_by=covered_by))
    return out


_DONE: dict[str, frozenset[str]] = {
    ObligationKind.DOCUMENT.value: frozenset({ObligationState.ACCEPTED.value}),
    ObligationKind.CUSTODY_UNTIL.value: frozenset({ObligationState.DISCHARGED.value}),
}


def _obligations(session: Session, *, case_id: int, deletion_shown: bool, now: datetime,
                 found: _Found) -> list[ObligationVerdict]:
    """Overdue: the derived due instant passed on the domain clock and the obligation is
    neither fulfilled nor waived. ``delete-manifest`` is fulfilled when deletion is shown
    (no item present, every scope covered); ``document`` when accepted; ``custody-until``
    when discharged (verdicts/custody.py: a destruction statement and clean scans of every
    other scope after it), and one in force says what it still lacks (``pending``; a
    reason of the verdict once it is overdue). ``retention`` and ``deidentify`` in force do
    not block; any breached obligation does."""
    out = []
    for row in session.execute(select(Obligation).where(Obligation.case_id == case_id)
                               .order_by(Obligation.id)).scalars():
        waived = row.state == ObligationState.WAIVED.value
        if row.kind == ObligationKind.DELETE_MANIFEST.value:
            fulfilled = deletion_shown
        else:
            fulfilled = row.state in _DONE.get(row.kind, frozenset(
                {ObligationState.DISCHARGED.value, ObligationState.IN_FORCE.value}))
        due = row.due_at is not None and row.due_at <= now
        overdue = not waived and due and not fulfilled
        breached = row.state == ObligationState.BREACHED.value
        if overdue:
            found.add("obligation_overdue", obligation_ids=[row.id])
        if breached:
            found.add("obligation_breached", obligation_ids=[row.id])
        waiting = custody.pending(session, row)
        if waiting is not None and overdue:
            # Expired: the verdict names what custody's end still lacks.
            found.add(waiting.code, obligation_ids=[row.id], scope_ids=list(waiting.scope_ids))
        out.append(ObligationVerdict(
            id=row.id, kind=row.kind, title=row.title, state=row.state, due_at=row.due_at,
            fulfilled=fulfilled, overdue=overdue, blocking=overdue or breached,
            pending=_reason(waiting.code, obligation_ids=[row.id],
                            scope_ids=list(waiting.scope_ids)) if waiting else None))
    return out


def _review_reasons(session: Session, *, case_id: int, found: _Found) -> None:
    """The rule for follow-up reviews (回头看). The latest closed review of the case speaks
    until a later one closes (a prosecutor may start one at once after the company acts):

    - ``findings`` with a manifest item present again → ``review_items_present``, which
      makes the case ``not_verified`` (DESIGN's truth table: an item present in a
      challenged scan);
    - ``findings`` otherwise (partial coverage: a new or unreadable area; a refused
      statement: a broken agent history) → ``review_findings``, and ``no_response`` →
      ``review_no_response``: both ``insufficient_evidence`` — deletion is no longer shown
      for every scope, but nothing shows an item back;
    - ``clean`` adds nothing.
    """
    latest = session.execute(
        select(Review).where(Review.case_id == case_id,
                             Review.state == ReviewState.CLOSED.value)
        .order_by(Review.closed_at.desc(), Review.id.desc()).limit(1)).scalar_one_or_none()
    if latest is None or latest.outcome == ReviewOutcome.CLEAN.value:
        return
    findings = latest.findings or []
    scopes = sorted({f["scopeId"] for f in findings if isinstance(f.get("scopeId"), int)})
    if latest.outcome == ReviewOutcome.NO_RESPONSE.value:
        found.add("review_no_response", scope_ids=scopes)
        return
    back = [f for f in findings if f.get("code") == "items_present"]
    if back:
        found.add("review_items_present", scope_ids=sorted({f["scopeId"] for f in back}),
                  items=sum(int(f.get("items", 0)) for f in back))
    else:
        found.add("review_findings", scope_ids=scopes)


def compute_report(session: Session, *, case_id: int, now: datetime) -> Report:
    found = _Found()
    manifest = active_manifest(session, case_id)
    if manifest is None:
        found.add("no_manifest")
    scopes = session.execute(select(Scope).where(Scope.case_id == case_id)
                             .order_by(Scope.id)).scalars().all()
    scope_verdicts = _scope_verdicts(session, case_id=case_id, manifest=manifest,
                                     scopes=scopes, found=found)
    items, people = _items_and_people(session, case_id, manifest)
    if items.present:
        found.add("items_present", scope_ids=[
            s.id for s in scope_verdicts
            if s.latest_challenged_scan is not None and s.latest_challenged_scan.present])
    if not scopes:
        found.add("no_scope_declared")
    if manifest is not None:
        codes = sorted({c for s in scopes for c in s.location_codes})
        n_items, _ = session.execute(queries.uncovered_sources(manifest.id, codes)).one()
        if n_items:
            found.add("source_not_covered", items=n_items)
    covered = {s.id for s in scope_verdicts if s.covered}
    flows = _data_flows(session, case_id=case_id, covered_scopes=covered, found=found)
    deletion_shown = (manifest is not None and items.present == 0 and bool(scopes)
                      and all(s.covered for s in scope_verdicts))
    obligations = _obligations(session, case_id=case_id, deletion_shown=deletion_shown,
                               now=now, found=found)
    _review_reasons(session, case_id=case_id, found=found)
    outcome = outcome_of(set(found.codes))
    return Report(
        case_id=case_id, outcome=outcome.value, reasons=found.reasons(),
        manifest=ManifestRef(id=manifest.id, root=manifest.root.hex(), count=manifest.count)
        if manifest else None,
        items=items, people=people, scopes=scope_verdicts, data_flows=flows,
        obligations=obligations, limit=Text(zh=LIMIT_ZH, en=LIMIT_EN))
