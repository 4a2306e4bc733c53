"""Cases, parties, members and status changes. Every change is a logged (restricted)
event written in the caller's transaction: they are inputs of the verdict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from deletion_audit.cases.access import CaseAccess
from deletion_audit.cases.permissions import MEMBER_ROLES
from deletion_audit.cases.status import check_transition, is_reopening
from deletion_audit.core.predicates import format_timestamp
from deletion_audit.errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from deletion_audit.events import Logged
from deletion_audit.log.service import append_event, append_events
from deletion_audit.models import (
    Case,
    CaseRole,
    CaseStatus,
    Membership,
    Organisation,
    OrgKind,
    Party,
    PartyRole,
    User,
)
from deletion_audit.verdicts.recording import VERDICT_INPUTS, mark_changed


def log_event(
    session: Session, event_type: str, event: Mapping[str, Any], *, now: datetime
) -> bytes:
    body = {**event, "at": format_timestamp(now)}
    leaf = append_event(session, event_type=event_type, event=body, now=now).leaf_hash
    case_id = event.get("caseId")
    if isinstance(case_id, str) and case_id.isdigit():
        case_id = int(case_id)
    if event_type in VERDICT_INPUTS and isinstance(case_id, int):
        # Every input of the verdict is a logged event: logging it asks for a new verdict.
        mark_changed(session, case_id=case_id, now=now)
    return leaf


def log_events(
    session: Session, event_type: str, events: Sequence[tuple[Mapping[str, Any], datetime]]
) -> list[bytes]:
    """:func:`log_event` for several events of one type at once, each with its time (two
    statements, not two each); their leaf hashes, in order."""
    leaves = append_events(session, event_type=event_type, events=[
        ({**event, "at": format_timestamp(at)}, at) for event, at in events])
    if event_type in VERDICT_INPUTS:
        for event, at in events:
            case_id = event.get("caseId")
            if isinstance(case_id, str) and case_id.isdigit():
                case_id = int(case_id)
            if isinstance(case_id, int):
                mark_changed(session, case_id=case_id, now=at)
    return leaves


def _text(what: str, value: str, limit: int) -> str:
    text = value.strip()
    if not text or len(text) > limit:
        raise BadRequest(f"{what} must be 1-{limit} characters")
    return text


def create_case(
    session: Session, *, creator: User, case_number: str, title: str, now: datetime
) -> Logged[Case]:
    """Open a case: the creator's organisation becomes its procuratorate party and the
    creator its first prosecutor."""
    org = session.get_one(Organisation, creator.organisation_id)
    if org.kind != OrgKind.PROCURATORATE:
        raise Forbidden(
            f"only a procuratorate's people open cases; {org.name} is a {org.kind}"
        )
    case_number = _text("case number", case_number, 128)
    title = _text("title", title, 512)
    taken = session.execute(
        select(Case.id).where(Case.procuratorate_id == org.id, Case.case_number == case_number)
    ).first()
    if taken is not None:
        raise Conflict(f"{org.name} already has a case numbered {case_number}")
    case = Case(procuratorate_id=org.id, case_number=case_number, title=title,
                status=CaseStatus.OPEN.value, created_at=now, created_by=creator.id,
                status_changed_at=now)
    session.add(case)
    session.flush()
    leaf = log_event(session, "case", {
        "action": "opened", "caseId": case.id, "caseNumber": case_number, "title": title,
        "procuratorateId": org.id, "by": creator.id,
    }, now=now)
    party = _add_party(session, case=case, org=org, role=PartyRole.PROCURATORATE,
                       by=creator.id, now=now)
    _add_member(session, case=case, user=creator, party=party.row, role=CaseRole.PROSECUTOR,
                by=creator.id, now=now)
    return Logged(row=case, leaf_hash=leaf)


def cases_query(user_id: int) -> Select[Case]:
    """The cases ``user_id`` is a member of (and only those)."""
    return select(Case).join(Membership, Membership.case_id == Case.id).where(
        Membership.user_id == user_id
    )


def add_party(
    session: Session, *, access: CaseAccess, organisation: str, role: PartyRole, now: datetime
) -> Logged[Party]:
    org = session.execute(
        select(Organisation).where(Organisation.name == organisation)
    ).scalar_one_or_none()
    if org is None:
        raise Unprocessable(f"no organisation named {organisation!r}")
    if role is PartyRole.PROCURATORATE and org.kind != OrgKind.PROCURATORATE:
        raise Unprocessable(f"{org.name} is a {org.kind}, not a procuratorate")
    return _add_party(session, case=access.case, org=org, role=role, by=access.user_id,
                      now=now)


def _add_party(
    session: Session, *, case: Case, org: Organisation, role: PartyRole, by: int,
    now: datetime,
) -> Logged[Party]:
    existing = session.execute(
        select(Party).where(Party.case_id == case.id, Party.organisation_id == org.id)
    ).scalar_one_or_none()
    if existing is not None:
        raise Conflict(f"{org.name} is already a party of case {case.id} "
                       f"(as {existing.role})")
    party = Party(case_id=case.id, organisation_id=org.id, role=role.value, created_at=now,
                  created_by=by)
    session.add(party)
    session.flush()
    leaf = log_event(session, "party", {
        "action": "added", "caseId": case.id, "partyId": party.id, "organisationId": org.id,
        "organisation": org.name, "organisationName": org.display_name, "role": role.value,
        "by": by,
    }, now=now)
    return Logged(row=party, leaf_hash=leaf)


def parties_query(case_id: int) -> Select[Party]:
    return select(Party).where(Party.case_id == case_id)


def get_party(session: Session, *, case_id: int, party_id: int) -> Party:
    party = session.get(Party, party_id)
    if party is None or party.case_id != case_id:
        raise NotFound(f"case {case_id} has no party {party_id}")
    return party


def add_member(
    session: Session, *, access: CaseAccess, user_name: str, party_id: int, role: CaseRole,
    now: datetime,
) -> Logged[Membership]:
    user = session.execute(select(User).where(User.name == user_name)).scalar_one_or_none()
    if user is None:
        raise Unprocessable(f"no user named {user_name!r}")
    party = session.get(Party, party_id)
    if party is None or party.case_id != access.case.id:
        raise Unprocessable(f"case {access.case.id} has no party {party_id}")
    return _add_member(session, case=access.case, user=user, party=party, role=role,
                       by=access.user_id, now=now)


def _add_member(
    session: Session, *, case: Case, user: User, party: Party, role: CaseRole, by: int,
    now: datetime,
) -> Logged[Membership]:
    party_role = PartyRole(party.role)
    if role not in MEMBER_ROLES[party_role]:
        allowed = ", ".join(sorted(r.value for r in MEMBER_ROLES[party_role]))
        raise Unprocessable(f"a member of the {party_role.value} party can be: {allowed}")
    if user.organisation_id != party.organisation_id:
        raise Unprocessable(
            f"{user.name} does not belong to party {party.id}'s organisation; people join a "
            "case through their own organisation's party"
        )
    if user.disabled_at is not None:
        raise Unprocessable(f"user {user.name} is disabled")
    taken = session.execute(
        select(Membership.id).where(Membership.case_id == case.id, Membership.user_id == user.id)
    ).first()
    if taken is not None:
        raise Conflict(f"{user.name} is already a member of case {case.id}")
    member = Membership(case_id=case.id, user_id=user.id, party_id=party.id, role=role.value,
                        created_at=now, created_by=by)
    session.add(member)
    session.flush()
    leaf = log_event(session, "membership", {
        "action": "added", "caseId": case.id, "membershipId": member.id, "userId": user.id,
        "user": user.name, "userName": user.display_name, "partyId": party.id,
        "role": role.value, "by": by,
    }, now=now)
    return Logged(row=member, leaf_hash=leaf)


def members_query(case_id: int) -> Select[Membership]:
    return select(Membership).where(Membership.case_id == case_id)


def change_status(
    session: Session, *, access: CaseAccess, target: CaseStatus, reason: str | None,
    now: datetime,
) -> Logged[Case]:
    case = access.case
    # Lock the row (PostgreSQL) so two concurrent changes cannot both pass the table.
    session.refresh(case, with_for_update=True)
    current = CaseStatus(case.status)
    check_transition(current, target, reason)
    case.status = target.value
    case.status_changed_at = now
    session.flush()
    leaf = log_event(session, "case-status", {
        "caseId": case.id, "from": current.value, "to": target.value,
        "reopening": is_reopening(current, target), "reason": (reason or "").strip(),
        "by": access.user_id,
    }, now=now)
    return Logged(row=case, leaf_hash=leaf)
