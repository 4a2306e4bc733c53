"""Who may do what in a case: ONE table, keyed by the member's (party role, case role).

Every endpoint checks it through :func:`deletion_audit.cases.access.authorize`, and the
access-matrix test is generated from it. A person has one membership per case, so one role
pair decides. Actions whose endpoints arrive with later issues are in the table already
(:data:`PENDING`), so the policy is decided in one place before the code that needs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from deletion_audit.models import CaseRole, PartyRole

Role = tuple[PartyRole, CaseRole]


class Action(StrEnum):
    CREATE_CASE = "create_case"
    READ_CASE = "read_case"
    CHANGE_STATUS = "change_status"
    ADD_PARTIES = "add_parties"
    ADD_MEMBERS = "add_members"
    SET_OBLIGATIONS = "set_obligations"
    WAIVE_OBLIGATIONS = "waive_obligations"
    SUBMIT_DOCUMENTS = "submit_documents"
    ACCEPT_DOCUMENTS = "accept_documents"
    READ_DOCUMENTS = "read_documents"
    DECLARE_SCOPES = "declare_scopes"
    DECLARE_DATA_FLOWS = "declare_data_flows"
    READ_SCOPES = "read_scopes"
    BIND_SCOPES = "bind_scopes"
    ISSUE_ENROLLMENT_TOKENS = "issue_enrollment_tokens"
    ISSUE_CHALLENGES = "issue_challenges"
    REQUEST_DELETION = "request_deletion"
    REVOKE_AGENTS = "revoke_agents"
    REGISTER_MANIFESTS = "register_manifests"
    MATCH_MANIFESTS = "match_manifests"
    START_REVIEWS = "start_reviews"
    MANAGE_NOTIFICATIONS = "manage_notifications"
    READ_JUDGMENTS = "read_judgments"
    READ_VERDICTS = "read_verdicts"
    READ_ITEMS = "read_items"
    EXPORT_BUNDLES = "export_bundles"
    EXPORT_PUBLIC_BUNDLES = "export_public_bundles"
    SUBMIT_VENDOR_STATEMENTS = "submit_vendor_statements"
    SUBMIT_CUSTODY_STATEMENTS = "submit_custody_statements"
    SUBMIT_DEIDENTIFY_STATEMENTS = "submit_deidentify_statements"
    OPEN_SESSIONS = "open_sessions"
    RUN_SESSIONS = "run_sessions"
    READ_SESSIONS = "read_sessions"
    SIGN_SESSIONS = "sign_sessions"
    READ_SESSION_ITEMS = "read_session_items"


PROSECUTOR: Role = (PartyRole.PROCURATORATE, CaseRole.PROSECUTOR)
EXAMINER: Role = (PartyRole.PROCURATORATE, CaseRole.EXAMINER)
LAB_EXAMINER: Role = (PartyRole.FORENSIC_LAB, CaseRole.EXAMINER)
RESPONDENT: Role = (PartyRole.RESPONDENT, CaseRole.COMPANY_OFFICER)
VENDOR: Role = (PartyRole.VENDOR, CaseRole.COMPANY_OFFICER)
CUSTODIAN: Role = (PartyRole.CUSTODIAN, CaseRole.COMPANY_OFFICER)
REGULATOR: Role = (PartyRole.REGULATOR, CaseRole.WITNESS)
WITNESS: Role = (PartyRole.WITNESS_BODY, CaseRole.WITNESS)

# Which case roles a member of each kind of party may hold.
MEMBER_ROLES: Mapping[PartyRole, frozenset[CaseRole]] = {
    PartyRole.PROCURATORATE: frozenset({CaseRole.PROSECUTOR, CaseRole.EXAMINER}),
    PartyRole.FORENSIC_LAB: frozenset({CaseRole.EXAMINER}),
    PartyRole.RESPONDENT: frozenset({CaseRole.COMPANY_OFFICER}),
    PartyRole.VENDOR: frozenset({CaseRole.COMPANY_OFFICER}),
    PartyRole.CUSTODIAN: frozenset({CaseRole.COMPANY_OFFICER}),
    PartyRole.REGULATOR: frozenset({CaseRole.WITNESS}),
    PartyRole.WITNESS_BODY: frozenset({CaseRole.WITNESS}),
}

ALL_ROLES: frozenset[Role] = frozenset(
    (party, case_role) for party, roles in MEMBER_ROLES.items() for case_role in roles
)
EXAMINERS = frozenset({EXAMINER, LAB_EXAMINER})
# Parties that hold data and run agents on their own systems.
DATA_HOLDERS = frozenset({RESPONDENT, VENDOR, CUSTODIAN})

PERMISSIONS: Mapping[Action, frozenset[Role]] = {
    # Whoever opens a case becomes its procuratorate party's prosecutor.
    Action.CREATE_CASE: frozenset({PROSECUTOR}),
    Action.READ_CASE: ALL_ROLES,
    Action.CHANGE_STATUS: frozenset({PROSECUTOR}),
    Action.ADD_PARTIES: frozenset({PROSECUTOR}),
    Action.ADD_MEMBERS: frozenset({PROSECUTOR}),
    Action.SET_OBLIGATIONS: frozenset({PROSECUTOR}),
    Action.WAIVE_OBLIGATIONS: frozenset({PROSECUTOR}),
    Action.SUBMIT_DOCUMENTS: frozenset({RESPONDENT}),
    Action.ACCEPT_DOCUMENTS: frozenset({PROSECUTOR}),
    # Undertakings and policies are read by the procuratorate and the company; witnesses
    # see the outcome (obligation states), not the letters.
    Action.READ_DOCUMENTS: frozenset({PROSECUTOR, RESPONDENT}),
    Action.DECLARE_SCOPES: DATA_HOLDERS,
    Action.DECLARE_DATA_FLOWS: frozenset({RESPONDENT}),
    # Scope specifications name paths, tables and buckets: not for witnesses.
    Action.READ_SCOPES: frozenset({PROSECUTOR}) | EXAMINERS | DATA_HOLDERS,
    Action.BIND_SCOPES: frozenset({PROSECUTOR}),
    Action.ISSUE_ENROLLMENT_TOKENS: frozenset({PROSECUTOR}) | EXAMINERS | DATA_HOLDERS,
    # A challenge asks the company's and the examiner's agents for a fresh scan.
    Action.ISSUE_CHALLENGES: frozenset({PROSECUTOR}) | EXAMINERS,
    # The prosecutor orders deletion; a data holder may ask its own agents. Either way the
    # host's configuration decides whether its agent deletes on request.
    Action.REQUEST_DELETION: frozenset({PROSECUTOR}) | DATA_HOLDERS,
    Action.REVOKE_AGENTS: frozenset({PROSECUTOR, RESPONDENT}),
    Action.REGISTER_MANIFESTS: frozenset({PROSECUTOR}) | EXAMINERS,
    # The filter and confirmed hits are matching material for the agents that scan; until
    # agents authenticate themselves, the people who run agents fetch it.
    Action.MATCH_MANIFESTS: EXAMINERS | DATA_HOLDERS,
    # Follow-up reviews (回头看): the prosecutor plans them and may start one at once; they
    # are read with the other service findings (READ_JUDGMENTS).
    Action.START_REVIEWS: frozenset({PROSECUTOR}),
    # Who is told of findings, and where (addresses, webhook URLs): the prosecutor decides.
    Action.MANAGE_NOTIFICATIONS: frozenset({PROSECUTOR}),
    # The service's findings name agents and hosts: for those who handle evidence or data.
    Action.READ_JUDGMENTS: frozenset({PROSECUTOR}) | EXAMINERS | DATA_HOLDERS,
    Action.READ_VERDICTS: ALL_ROLES,
    # Item rows carry digests, pseudonyms and location codes: the verdict's counts are for
    # every member, the rows only for those who handle the evidence or the data.
    Action.READ_ITEMS: frozenset({PROSECUTOR}) | EXAMINERS | DATA_HOLDERS,
    # Court bundles open every restricted event (digests, pseudonyms, locations, salts):
    # for those who handle the evidence. Public bundles hold counts and proofs only.
    Action.EXPORT_BUNDLES: frozenset({PROSECUTOR}) | EXAMINERS,
    Action.EXPORT_PUBLIC_BUNDLES: ALL_ROLES,
    # Signed statements of people (POST /api/v1/attestations, bearer). A vendor speaks for
    # the data flows declared with its own party; a custodian for the sealed backup it
    # holds (CASES.md case 4). Whether a published dataset meets its masking rules is
    # checked by the examiner side, not asserted by the company that published it: a
    # company's own "pass" would be no evidence (CASES.md case 9).
    Action.SUBMIT_VENDOR_STATEMENTS: frozenset({VENDOR}),
    Action.SUBMIT_CUSTODY_STATEMENTS: frozenset({CUSTODIAN}),
    Action.SUBMIT_DEIDENTIFY_STATEMENTS: EXAMINERS,
    # On-site sessions (CASES.md case 5): the prosecutor opens one; the examiner's side
    # enrolls its agent, challenges and builds the record; every member may read a record
    # (it holds counts and a commitment only), and the participants listed in the session
    # sign or refuse it (checked against the session, not this table). The item lists that
    # open the commitment are court material.
    Action.OPEN_SESSIONS: frozenset({PROSECUTOR}),
    Action.RUN_SESSIONS: frozenset({PROSECUTOR}) | EXAMINERS,
    Action.READ_SESSIONS: ALL_ROLES,
    Action.SIGN_SESSIONS: ALL_ROLES,
    Action.READ_SESSION_ITEMS: frozenset({PROSECUTOR}) | EXAMINERS,
}

# Actions whose endpoints come with later issues (agents, manifests, reviews, verdicts,
# bundles); the access-matrix test lists them as not yet covered.
PENDING: frozenset[Action] = frozenset()


def is_allowed(action: Action, role: Role) -> bool:
    return role in PERMISSIONS[action]


def describe_role(role: Role) -> str:
    party, case_role = role
    return f"{case_role.value} of the {party.value}"


def who_may(action: Action) -> str:
    return ", ".join(sorted(describe_role(r) for r in PERMISSIONS[action]))
