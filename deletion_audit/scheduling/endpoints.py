"""``GET /api/v1/cases/{id}/judgments``: the findings the service made on its own clock,
each with its signed statement (a DSSE envelope, verifiable with the service key)."""

from __future__ import annotations

import base64
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select

from deletion_audit.cases.access import authorize
from deletion_audit.cases.permissions import Action
from deletion_audit.deps import DbRead
from deletion_audit.identity.deps import CurrentUser, bearer
from deletion_audit.models import Agent, Judgment
from deletion_audit.pagination import Page, PageParams, paginate

router = APIRouter(prefix="/api/v1/cases/{case_id}/judgments", tags=["judgments"])


class JudgmentRead(BaseModel):
    id: int
    finding: str
    agent_id: str | None
    obligation_id: int | None
    since: datetime
    judged_at: datetime
    statement_id: str
    leaf_hash: str
    envelope: str
    """The DSSE envelope's JSON, base64."""


@router.get("", response_model=Page[JudgmentRead], **bearer(400, 404))
def list_judgments(case_id: int, caller: CurrentUser, session: DbRead,
                   page: PageParams) -> Page[JudgmentRead]:
    authorize(session, user_id=caller.user_id, case_id=case_id,
              action=Action.READ_JUDGMENTS)
    rows, cursor = paginate(session, select(Judgment).where(Judgment.case_id == case_id),
                            key=Judgment.id, page=page, list_name="judgments")
    agent_ids = {r.agent_id for r in rows if r.agent_id is not None}
    public: dict[int, str] = {}
    for agent_id, public_id in session.execute(
            select(Agent.id, Agent.public_id).where(Agent.id.in_(agent_ids))):
        public[agent_id] = public_id
    return Page(items=[JudgmentRead(
        id=r.id, finding=r.finding,
        agent_id=public.get(r.agent_id) if r.agent_id is not None else None,
        obligation_id=r.obligation_id, since=r.since, judged_at=r.judged_at,
        statement_id=r.statement_id, leaf_hash=r.leaf_hash.hex(),
        envelope=base64.b64encode(r.envelope).decode()) for r in rows], next_cursor=cursor)
