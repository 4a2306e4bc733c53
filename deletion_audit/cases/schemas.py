"""Request and response bodies of the cases API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from deletion_audit.cases.deadlines import HolidayRule, PeriodUnit
from deletion_audit.models import (
    CaseRole,
    CaseStatus,
    DataFlowKind,
    ObligationKind,
    ObligationState,
    PartyRole,
    ScopeKind,
)

LEAF_HASH = Field(default=None, description="the log leaf of this write (write responses only)")


class CaseCreate(BaseModel):
    case_number: str = Field(min_length=1, max_length=128,
                             description="案号, e.g. (2024)沪03民特25号")
    title: str = Field(min_length=1, max_length=512)


class CaseRead(BaseModel):
    id: int
    case_number: str
    title: str
    status: CaseStatus
    procuratorate: str
    created_at: datetime
    status_changed_at: datetime
    leaf_hash: str | None = LEAF_HASH


class MyRoleRead(BaseModel):
    party_id: int
    party_role: PartyRole
    case_role: CaseRole
    allowed_actions: list[str]


class CaseDetailRead(CaseRead):
    me: MyRoleRead


class StatusChange(BaseModel):
    status: CaseStatus
    reason: str | None = Field(default=None, max_length=4000,
                               description="required when going back or reopening")


class PartyCreate(BaseModel):
    organisation: str = Field(min_length=1, max_length=64, description="organisation name")
    role: PartyRole


class PartyRead(BaseModel):
    id: int
    organisation: str
    organisation_name: str
    role: PartyRole
    created_at: datetime
    leaf_hash: str | None = LEAF_HASH


class MemberCreate(BaseModel):
    user: str = Field(min_length=1, max_length=64, description="user name")
    party_id: int
    role: CaseRole


class MemberRead(BaseModel):
    id: int
    user: str
    user_name: str
    party_id: int
    role: CaseRole
    created_at: datetime
    leaf_hash: str | None = LEAF_HASH


class DeadlineCreate(BaseModel):
    """A deadline rule: give a ``preset`` or an ``amount`` and ``unit``."""

    start_event: str = Field(min_length=1, max_length=128,
                             description="what starts the clock, e.g. 检察建议书送达")
    served_on: date = Field(description="date of service (送达), Beijing time")
    preset: str | None = Field(default=None, max_length=64,
                               description="reply-2-months, announcement-30-days, ...")
    amount: int | None = Field(default=None, ge=0, le=3650)
    unit: PeriodUnit | None = None
    holiday_rule: HolidayRule | None = None

    @model_validator(mode="after")
    def _preset_or_period(self) -> DeadlineCreate:
        if self.preset is None and (self.amount is None or self.unit is None):
            raise ValueError("give a preset, or an amount and a unit")
        if self.preset is not None and (self.amount is not None or self.unit is not None):
            raise ValueError("a preset sets the period; do not give amount or unit with it")
        return self


class DeadlineRead(BaseModel):
    start_event: str
    served_on: date
    amount: int
    unit: PeriodUnit
    holiday_rule: HolidayRule
    preset: str | None
    last_day: date
    due_at: datetime
    provisional: bool


class ObligationCreate(BaseModel):
    kind: ObligationKind
    title: str = Field(min_length=1, max_length=512)
    details: dict[str, Any] = Field(default_factory=dict)
    deadline: DeadlineCreate | None = None


class ObligationRead(BaseModel):
    id: int
    kind: ObligationKind
    title: str
    details: dict[str, Any]
    state: ObligationState
    deadline: DeadlineRead | None
    due_at: datetime | None
    due_provisional: bool
    waiver_reason: str | None
    waived_at: datetime | None
    state_changed_at: datetime
    created_at: datetime
    leaf_hash: str | None = LEAF_HASH
    pending: PendingRead | None = None
    """What a custody-until obligation in force still lacks to be discharged."""


class PendingRead(BaseModel):
    code: str
    zh: str
    en: str
    scope_ids: list[int] = []


class WaiverCreate(BaseModel):
    reason: str = Field(min_length=1, max_length=4000)


class ObligationStateChange(BaseModel):
    state: ObligationState
    reason: str = Field(min_length=1, max_length=4000)


class DocumentDecision(BaseModel):
    reason: str | None = Field(default=None, max_length=4000)


class DocumentRead(BaseModel):
    id: int
    obligation_id: int
    digest: str
    size: int
    media_type: str
    filename: str
    state: str
    submitted_at: datetime
    decided_at: datetime | None
    decision_reason: str | None
    leaf_hash: str | None = LEAF_HASH


class ScopeCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    kind: ScopeKind
    spec: dict[str, Any] = Field(description="directory: root, exclude; sql: table, "
                                 "key_columns, content_column, encoding, filter; "
                                 "object_store: endpoint, bucket, prefix")
    expects_data: bool = Field(default=True, description="whether it should hold data now")
    location_codes: list[str] = Field(default_factory=list, max_length=200)
    timestamp_field: str | None = Field(default=None, max_length=128)


class ScopeRead(BaseModel):
    id: int
    party_id: int
    name: str
    kind: ScopeKind
    spec: dict[str, Any]
    spec_digest: str
    expects_data: bool
    location_codes: list[str]
    timestamp_field: str | None
    created_at: datetime
    leaf_hash: str | None = LEAF_HASH


class DataFlowCreate(BaseModel):
    kind: DataFlowKind
    description: str = Field(min_length=1, max_length=512)
    destination: str = Field(min_length=1, max_length=512)
    scope_id: int | None = Field(default=None, description="a scope covering the copies")
    vendor_party_id: int | None = Field(default=None,
                                        description="a vendor party that will make a statement")


class DataFlowRead(BaseModel):
    id: int
    party_id: int
    kind: DataFlowKind
    description: str
    destination: str
    scope_id: int | None
    vendor_party_id: int | None
    coverage: Literal["scope", "vendor_statement", "none"]
    created_at: datetime
    leaf_hash: str | None = LEAF_HASH


class BindingCreate(BaseModel):
    agent_id: str = Field(min_length=1, max_length=64, description="the agent's public id")


class BindingRead(BaseModel):
    id: int
    scope_id: int
    agent_id: str
    created_at: datetime
    created_by: int | None
    unbound_at: datetime | None
    leaf_hash: str | None = LEAF_HASH
