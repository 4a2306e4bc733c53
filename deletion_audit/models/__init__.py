"""Every ORM class, one module per aggregate."""

from deletion_audit.models.agents import (
    Agent,
    AgentStatus,
    Challenge,
    ChallengeOrigin,
    DeletionRequest,
    EnrollmentToken,
    RequestNonce,
)
from deletion_audit.models.attestations import Attestation, PersonStatement, Refusal
from deletion_audit.models.base import Base
from deletion_audit.models.cases import Case, CaseRole, CaseStatus, Membership, Party, PartyRole
from deletion_audit.models.identity import (
    AccessToken,
    AuditRecord,
    KeyRevocationReason,
    Organisation,
    OrgKind,
    User,
    UserKey,
)
from deletion_audit.models.log import (
    Event,
    LogCheckpoint,
    LogIdentity,
    LogLeaf,
    LogNode,
    LogState,
)
from deletion_audit.models.manifests import (
    Manifest,
    ManifestFilter,
    ManifestItem,
    ManifestNode,
    ManifestUpload,
)
from deletion_audit.models.notifications import Channel, OutboxMessage, Recipient
from deletion_audit.models.obligations import (
    Document,
    DocumentContent,
    DocumentState,
    Obligation,
    ObligationKind,
    ObligationState,
)
from deletion_audit.models.scheduling import Escalation, Finding, Judgment, SchedulerLease
from deletion_audit.models.scopes import Binding, DataFlow, DataFlowKind, Scope, ScopeKind
from deletion_audit.models.verdicts import (
    DeletedItem,
    DeletionRecord,
    ScanItem,
    ScanRecord,
    Verdict,
    VerdictMark,
)

__all__ = [
    "AccessToken",
    "Agent",
    "AgentStatus",
    "Attestation",
    "AuditRecord",
    "Base",
    "Binding",
    "Case",
    "CaseRole",
    "CaseStatus",
    "Challenge",
    "ChallengeOrigin",
    "Channel",
    "DataFlow",
    "DataFlowKind",
    "DeletedItem",
    "DeletionRecord",
    "DeletionRequest",
    "Document",
    "DocumentContent",
    "DocumentState",
    "EnrollmentToken",
    "Escalation",
    "Event",
    "Finding",
    "Judgment",
    "KeyRevocationReason",
    "LogCheckpoint",
    "LogIdentity",
    "LogLeaf",
    "LogNode",
    "LogState",
    "Manifest",
    "ManifestFilter",
    "ManifestItem",
    "ManifestNode",
    "ManifestUpload",
    "Membership",
    "Obligation",
    "ObligationKind",
    "ObligationState",
    "OrgKind",
    "Organisation",
    "OutboxMessage",
    "Party",
    "PartyRole",
    "PersonStatement",
    "Recipient",
    "Refusal",
    "RequestNonce",
    "ScanItem",
    "ScanRecord",
    "SchedulerLease",
    "Scope",
    "ScopeKind",
    "User",
    "UserKey",
    "Verdict",
    "VerdictMark",
]
