"""The verdict report (stored as JSON in each version, signed by its digest) and the item
list's rows."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Grade = Literal["company", "examiner", "witnessed"]
OutcomeName = Literal["verified", "insufficient_evidence", "not_verified"]
StateName = Literal["present", "deleted", "unseen"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Text(_Frozen):
    zh: str
    en: str


class ReasonRead(_Frozen):
    code: str
    zh: str
    en: str
    scope_ids: list[int] = []
    data_flow_ids: list[int] = []
    obligation_ids: list[int] = []
    items: int | None = None


class StateCounts(_Frozen):
    total: int = 0
    present: int = 0
    deleted: int = 0
    unseen: int = 0


class ItemCounts(StateCounts):
    by_kind: dict[str, StateCounts] = {}


class PeopleCounts(_Frozen):
    total: int
    all_deleted: int
    """People (subject pseudonyms) whose every item is deleted."""


class ScanRead(_Frozen):
    scan_id: str
    agent_id: str
    grade: Grade
    challenge_origin: str
    coverage: str | None
    objects: int | None
    present: int
    started_at: datetime
    finished_at: datetime


class ScopeVerdict(_Frozen):
    id: int
    name: str
    expects_data: bool
    bound: bool
    grade: Grade | None
    """The strongest evidence of the scope's deletion: a challenged complete scan after its
    last deletion by the company's agent, or by an agent the examiner runs."""
    covered: bool
    """It has a challenged complete scan after its last deletion."""
    last_deletion_at: datetime | None
    latest_challenged_scan: ScanRead | None
    last_clean_challenged_scan: ScanRead | None
    vanished_items: int


class DataFlowVerdict(_Frozen):
    id: int
    kind: str
    covered: bool
    covered_by: Literal["scope", "vendor_statement"] | None


class ObligationVerdict(_Frozen):
    id: int
    kind: str
    title: str
    state: str
    due_at: datetime | None
    fulfilled: bool
    overdue: bool
    blocking: bool
    # Left out when None, so reports signed before the field existed keep their digests.
    pending: ReasonRead | None = Field(default=None, exclude_if=lambda v: v is None)
    """What an obligation in force still lacks to be discharged (custody-until: the
    destruction statement, or clean scans of the scopes it names after it)."""


class ManifestRef(_Frozen):
    id: int
    root: str
    count: int


class Report(_Frozen):
    """What a verdict says, before it is numbered and signed."""

    case_id: int
    outcome: OutcomeName
    reasons: list[ReasonRead]
    manifest: ManifestRef | None
    items: ItemCounts
    people: PeopleCounts
    scopes: list[ScopeVerdict]
    data_flows: list[DataFlowVerdict]
    obligations: list[ObligationVerdict]
    limit: Text


class AsOf(_Frozen):
    log_size: int
    time: datetime


class VerdictRead(_Frozen):
    case_id: int
    version: int
    outcome: OutcomeName
    as_of: AsOf
    stale: bool
    """A change is waiting for the next recomputation."""
    report: Report
    statement_id: str
    envelope: str
    """The service-signed DSSE envelope (JSON) of the verdict statement."""
    leaf_hash: str


class ItemRead(_Frozen):
    ordinal: int
    digest: str
    kind: str
    size: int
    subject: str | None
    source: str | None
    state: StateName
