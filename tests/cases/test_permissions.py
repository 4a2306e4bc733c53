"""The permission table itself: complete, consistent with the member roles, strict where
the design says so."""

from __future__ import annotations

from deletion_audit.cases.permissions import (
    ALL_ROLES,
    DATA_HOLDERS,
    MEMBER_ROLES,
    PENDING,
    PERMISSIONS,
    PROSECUTOR,
    RESPONDENT,
    WITNESS,
    Action,
    is_allowed,
    who_may,
)
from deletion_audit.models import CaseRole, PartyRole


class TestPermissionTable:
    def test_every_action_has_an_entry_of_real_roles(self) -> None:
        assert set(PERMISSIONS) == set(Action)
        for action, roles in PERMISSIONS.items():
            assert roles, action
            assert roles <= ALL_ROLES, action

    def test_every_party_role_has_member_roles(self) -> None:
        assert set(MEMBER_ROLES) == set(PartyRole)
        assert {r for roles in MEMBER_ROLES.values() for r in roles} == set(CaseRole)

    def test_prosecutor_only_actions(self) -> None:
        for action in (Action.CHANGE_STATUS, Action.ADD_PARTIES, Action.ADD_MEMBERS,
                       Action.SET_OBLIGATIONS, Action.WAIVE_OBLIGATIONS,
                       Action.ACCEPT_DOCUMENTS, Action.BIND_SCOPES):
            assert PERMISSIONS[action] == {PROSECUTOR}, action

    def test_the_respondent_submits_documents_and_declares(self) -> None:
        assert PERMISSIONS[Action.SUBMIT_DOCUMENTS] == {RESPONDENT}
        assert PERMISSIONS[Action.DECLARE_SCOPES] == DATA_HOLDERS
        assert not is_allowed(Action.DECLARE_SCOPES, PROSECUTOR)

    def test_witnesses_read_the_case_but_not_scopes_or_documents(self) -> None:
        assert is_allowed(Action.READ_CASE, WITNESS)
        assert is_allowed(Action.READ_VERDICTS, WITNESS)
        assert not is_allowed(Action.READ_SCOPES, WITNESS)
        assert not is_allowed(Action.READ_DOCUMENTS, WITNESS)

    def test_pending_actions_are_in_the_table(self) -> None:
        assert PENDING <= set(PERMISSIONS)
        assert Action.START_REVIEWS not in PENDING
        assert Action.EXPORT_BUNDLES not in PENDING

    def test_who_may_reads_well(self) -> None:
        assert who_may(Action.SUBMIT_DOCUMENTS) == "company_officer of the respondent"
