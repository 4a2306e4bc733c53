"""The one permission check every case endpoint goes through.

Visibility comes from membership only: a case the caller is not a member of answers 404
exactly like a case that does not exist, so case ids reveal nothing. A member without the
right gets 403 naming who has it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from deletion_audit.cases.permissions import Action, Role, describe_role, is_allowed, who_may
from deletion_audit.errors import Forbidden, NotFound
from deletion_audit.models import Case, CaseRole, Membership, Party, PartyRole


@dataclass(frozen=True)
class CaseAccess:
    case: Case
    membership: Membership
    party: Party

    @property
    def role(self) -> Role:
        return PartyRole(self.party.role), CaseRole(self.membership.role)

    @property
    def user_id(self) -> int:
        return self.membership.user_id

    def can(self, action: Action) -> bool:
        return is_allowed(action, self.role)


def case_not_found(case_id: int) -> NotFound:
    return NotFound(f"case {case_id} not found")


def case_access(session: Session, *, user_id: int, case_id: int) -> CaseAccess:
    row = session.execute(
        select(Case, Membership, Party)
        .join(Membership, Membership.case_id == Case.id)
        .join(Party, Party.id == Membership.party_id)
        .where(Case.id == case_id, Membership.user_id == user_id)
    ).one_or_none()
    if row is None:
        raise case_not_found(case_id)
    case, membership, party = row
    return CaseAccess(case=case, membership=membership, party=party)


def authorize(session: Session, *, user_id: int, case_id: int, action: Action) -> CaseAccess:
    """The caller's access to the case if the permission table allows ``action``:
    404 for a non-member, 403 for a member without the right."""
    access = case_access(session, user_id=user_id, case_id=case_id)
    if not access.can(action):
        raise Forbidden(
            f"{describe_role(access.role)} may not {action.value.replace('_', ' ')} "
            f"in case {case_id}; allowed: {who_may(action)}"
        )
    return access
