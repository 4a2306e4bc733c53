"""``/api/v1/cases/{id}/recipients``: who is told of the case's findings, in which role, at
which escalation step. The webhook secret is written, never read back."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from deletion_audit.cases.access import authorize
from deletion_audit.cases.permissions import Action
from deletion_audit.deps import Context, DbRead, DbWrite
from deletion_audit.identity.deps import CurrentUser, bearer
from deletion_audit.models import Recipient
from deletion_audit.notifications import service
from deletion_audit.pagination import Page, PageParams, paginate

router = APIRouter(prefix="/api/v1/cases/{case_id}/recipients", tags=["notifications"])


class RecipientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["prosecutor", "examiner", "company_officer", "witness"]
    channel: Literal["email", "webhook"]
    address: str = Field(min_length=3, max_length=2048,
                         description="an e-mail address, or the webhook's https URL")
    secret: str | None = Field(default=None, max_length=128,
                               description="a webhook's Standard Webhooks secret (whsec_...)")
    step: int = Field(default=0, ge=0, le=service.MAX_STEP,
                      description="0: told when a finding is made; n: an escalation step")
    after_hours: int = Field(default=0, ge=0, le=24 * 90,
                             description="for a step n > 0: hours after the finding, sent "
                             "only if the finding still stands then")


class RecipientRead(BaseModel):
    id: int
    role: str
    channel: str
    address: str
    step: int
    after_hours: int
    created_at: datetime


def _read(row: Recipient) -> RecipientRead:
    return RecipientRead(id=row.id, role=row.role, channel=row.channel, address=row.address,
                         step=row.step, after_hours=row.after_hours, created_at=row.created_at)


@router.post("", status_code=201, response_model=RecipientRead, **bearer(404))
def add_recipient(case_id: int, body: RecipientCreate, caller: CurrentUser, session: DbWrite,
                  ctx: Context) -> RecipientRead:
    """Add a recipient; private and loopback webhook destinations are refused outside
    development."""
    authorize(session, user_id=caller.user_id, case_id=case_id,
              action=Action.MANAGE_NOTIFICATIONS)
    row = service.add_recipient(
        session, case_id=case_id, role=body.role, channel=body.channel, address=body.address,
        secret=body.secret, step=body.step, after_hours=body.after_hours,
        created_by=caller.user_id, development=ctx.settings.is_development,
        now=ctx.clock.now())
    return _read(row)


@router.get("", response_model=Page[RecipientRead], **bearer(400, 404))
def list_recipients(case_id: int, caller: CurrentUser, session: DbRead,
                    page: PageParams) -> Page[RecipientRead]:
    authorize(session, user_id=caller.user_id, case_id=case_id,
              action=Action.MANAGE_NOTIFICATIONS)
    rows, cursor = paginate(session, select(Recipient).where(Recipient.case_id == case_id),
                            key=Recipient.id, page=page, list_name="recipients")
    return Page(items=[_read(r) for r in rows], next_cursor=cursor)
