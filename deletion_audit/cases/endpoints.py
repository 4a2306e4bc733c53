"""``/api/v1/cases``: cases, their parties and members, and status changes.

Every handler authenticates (``CurrentUser``), then checks the permission table through
``authorize`` before anything else, so a non-member always gets 404 and a member without
the right 403, whatever the body.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.orm import Session

from deletion_audit.cases import service
from deletion_audit.cases.access import CaseAccess, authorize
from deletion_audit.cases.closure import close_case
from deletion_audit.cases.permissions import PERMISSIONS, Action
from deletion_audit.cases.schemas import (
    CaseCreate,
    CaseDetailRead,
    CaseRead,
    MemberCreate,
    MemberRead,
    MyRoleRead,
    PartyCreate,
    PartyRead,
    StatusChange,
)
from deletion_audit.deps import Context, DbRead, DbWrite
from deletion_audit.identity.deps import CurrentUser, bearer
from deletion_audit.models import (
    Case,
    CaseRole,
    CaseStatus,
    Membership,
    Organisation,
    Party,
    PartyRole,
    User,
)
from deletion_audit.pagination import Page, PageParams, paginate

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])


def _hex(leaf_hash: bytes | None) -> str | None:
    return leaf_hash.hex() if leaf_hash else None


def _org_names(session: Session, ids: set[int]) -> dict[int, tuple[str, str]]:
    if not ids:
        return {}
    rows = session.execute(
        select(Organisation.id, Organisation.name, Organisation.display_name)
        .where(Organisation.id.in_(ids))
    )
    return {i: (name, shown) for i, name, shown in rows}


def _case_reads(
    session: Session, cases: Sequence[Case], leaf_hash: bytes | None = None
) -> list[CaseRead]:
    orgs = _org_names(session, {c.procuratorate_id for c in cases})
    return [
        CaseRead(id=c.id, case_number=c.case_number, title=c.title, status=CaseStatus(c.status),
                 procuratorate=orgs[c.procuratorate_id][0], created_at=c.created_at,
                 status_changed_at=c.status_changed_at, leaf_hash=_hex(leaf_hash))
        for c in cases
    ]


def _detail(session: Session, access: CaseAccess, leaf_hash: bytes | None = None) -> CaseDetailRead:
    base = _case_reads(session, [access.case], leaf_hash)[0]
    me = MyRoleRead(
        party_id=access.party.id, party_role=PartyRole(access.party.role),
        case_role=CaseRole(access.membership.role),
        allowed_actions=sorted(a.value for a in PERMISSIONS
                               if a is not Action.CREATE_CASE and access.can(a)),
    )
    return CaseDetailRead(**base.model_dump(), me=me)


@router.post("", status_code=201, response_model=CaseDetailRead, **bearer(409))
def create_case(
    body: CaseCreate, caller: CurrentUser, session: DbWrite, ctx: Context
) -> CaseDetailRead:
    """Open a case. The caller's organisation (a procuratorate) becomes its procuratorate
    party and the caller its prosecutor."""
    user = session.get_one(User, caller.user_id)
    logged = service.create_case(session, creator=user, case_number=body.case_number,
                                 title=body.title, now=ctx.clock.now())
    access = authorize(session, user_id=user.id, case_id=logged.row.id,
                       action=Action.READ_CASE)
    return _detail(session, access, logged.leaf_hash)


@router.get("", response_model=Page[CaseRead], **bearer(400))
def list_cases(caller: CurrentUser, session: DbRead, page: PageParams) -> Page[CaseRead]:
    """The cases I am a member of."""
    rows, cursor = paginate(session, service.cases_query(caller.user_id), key=Case.id,
                            page=page, list_name="cases")
    return Page(items=_case_reads(session, rows), next_cursor=cursor)


@router.get("/{case_id}", response_model=CaseDetailRead, **bearer(404))
def get_case(case_id: int, caller: CurrentUser, session: DbRead) -> CaseDetailRead:
    access = authorize(session, user_id=caller.user_id, case_id=case_id,
                       action=Action.READ_CASE)
    return _detail(session, access)


@router.post("/{case_id}/status", response_model=CaseDetailRead, **bearer(404, 409))
def change_status(
    case_id: int, body: StatusChange, caller: CurrentUser, session: DbWrite, ctx: Context
) -> CaseDetailRead:
    """Move the case along its transition table; going back and reopening need a reason.
    An invalid transition is a 409 naming the allowed ones. Closing decommissions the
    case's active agents and cancels its reviews not yet opened, in the same transaction."""
    access = authorize(session, user_id=caller.user_id, case_id=case_id,
                       action=Action.CHANGE_STATUS)
    now = ctx.clock.now()
    logged = service.change_status(session, access=access, target=body.status,
                                   reason=body.reason, now=now)
    if body.status is CaseStatus.CLOSED:
        close_case(session, case_id=case_id, by=access.user_id, now=now)
    return _detail(session, access, logged.leaf_hash)


def _party_reads(
    session: Session, parties: Sequence[Party], leaf_hash: bytes | None = None
) -> list[PartyRead]:
    orgs = _org_names(session, {p.organisation_id for p in parties})
    return [
        PartyRead(id=p.id, organisation=orgs[p.organisation_id][0],
                  organisation_name=orgs[p.organisation_id][1], role=PartyRole(p.role),
                  created_at=p.created_at, leaf_hash=_hex(leaf_hash))
        for p in parties
    ]


@router.post("/{case_id}/parties", status_code=201, response_model=PartyRead,
             **bearer(404, 409))
def add_party(
    case_id: int, body: PartyCreate, caller: CurrentUser, session: DbWrite, ctx: Context
) -> PartyRead:
    access = authorize(session, user_id=caller.user_id, case_id=case_id,
                       action=Action.ADD_PARTIES)
    logged = service.add_party(session, access=access, organisation=body.organisation,
                               role=body.role, now=ctx.clock.now())
    return _party_reads(session, [logged.row], logged.leaf_hash)[0]


@router.get("/{case_id}/parties", response_model=Page[PartyRead], **bearer(400, 404))
def list_parties(
    case_id: int, caller: CurrentUser, session: DbRead, page: PageParams
) -> Page[PartyRead]:
    authorize(session, user_id=caller.user_id, case_id=case_id, action=Action.READ_CASE)
    rows, cursor = paginate(session, service.parties_query(case_id), key=Party.id, page=page,
                            list_name="parties")
    return Page(items=_party_reads(session, rows), next_cursor=cursor)


def _member_reads(
    session: Session, members: Sequence[Membership], leaf_hash: bytes | None = None
) -> list[MemberRead]:
    ids = {m.user_id for m in members}
    users = {u.id: u for u in session.execute(select(User).where(User.id.in_(ids))).scalars()}
    return [
        MemberRead(id=m.id, user=users[m.user_id].name, user_name=users[m.user_id].display_name,
                   party_id=m.party_id, role=CaseRole(m.role), created_at=m.created_at,
                   leaf_hash=_hex(leaf_hash))
        for m in members
    ]


@router.post("/{case_id}/members", status_code=201, response_model=MemberRead,
             **bearer(404, 409))
def add_member(
    case_id: int, body: MemberCreate, caller: CurrentUser, session: DbWrite, ctx: Context
) -> MemberRead:
    """Add a person to the case through their own organisation's party."""
    access = authorize(session, user_id=caller.user_id, case_id=case_id,
                       action=Action.ADD_MEMBERS)
    logged = service.add_member(session, access=access, user_name=body.user,
                                party_id=body.party_id, role=body.role, now=ctx.clock.now())
    return _member_reads(session, [logged.row], logged.leaf_hash)[0]


@router.get("/{case_id}/members", response_model=Page[MemberRead], **bearer(400, 404))
def list_members(
    case_id: int, caller: CurrentUser, session: DbRead, page: PageParams
) -> Page[MemberRead]:
    authorize(session, user_id=caller.user_id, case_id=case_id, action=Action.READ_CASE)
    rows, cursor = paginate(session, service.members_query(case_id), key=Membership.id,
                            page=page, list_name="members")
    return Page(items=_member_reads(session, rows), next_cursor=cursor)
