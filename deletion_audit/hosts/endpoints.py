"""The agent API under ``/api/v1/agents`` (signed, RFC 9421; ``enroll`` is public and the
token authenticates) and the people's agent endpoints under ``/api/v1/cases/{id}``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from deletion_audit.cases.access import authorize
from deletion_audit.cases.permissions import Action
from deletion_audit.deps import Context, DbRead, DbWrite
from deletion_audit.errors import BadRequest, Conflict, NotFound
from deletion_audit.evidence import proofs
from deletion_audit.evidence.endpoints import filter_response
from deletion_audit.evidence.schemas import ConfirmRead, ConfirmRequest, HitRead
from deletion_audit.hosts import challenges, deletions, enrollment, revocation, service
from deletion_audit.hosts.schemas import (
    AgentRead,
    CaseChallengesCreate,
    ChallengeCreate,
    ChallengeRead,
    ChallengesRead,
    DeletionRequestCreate,
    DeletionRequestRead,
    DeletionTaskState,
    EnrollmentTokenCreate,
    EnrollmentTokenRead,
    EnrollRead,
    EnrollRequest,
    HeartbeatRead,
    HeartbeatRequest,
    IssuedChallengeRead,
    IssuedChallengesRead,
    RevokeRequest,
    ScopesRead,
    TaskRead,
    TasksRead,
)
from deletion_audit.hosts.signatures import CurrentAgent, SignedBy, signed
from deletion_audit.identity.deps import CurrentUser, bearer
from deletion_audit.models import (
    Agent,
    AgentStatus,
    Challenge,
    ChallengeOrigin,
    DeletionRequest,
    EnrollmentToken,
    Manifest,
)
from deletion_audit.pagination import Page, PageParams, paginate
from deletion_audit.schemas import PUBLIC, error_responses

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])
case_router = APIRouter(prefix="/api/v1/cases/{case_id}", tags=["agents"])


def _now_real() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def challenge_read(row: Challenge) -> ChallengeRead:
    return ChallengeRead(id=row.id, scope_id=row.scope_id, nonce=row.nonce,
                         expires_at=row.expires_at, origin=ChallengeOrigin(row.origin))


# -- people -------------------------------------------------------------------------------


@case_router.post("/enrollment-tokens", status_code=201, response_model=EnrollmentTokenRead,
                  **bearer(404))
def issue_enrollment_token(
    case_id: int, body: EnrollmentTokenCreate, caller: CurrentUser, session: DbWrite,
    ctx: Context,
) -> EnrollmentTokenRead:
    """A one-time, expiring token that enrolls one agent for a party of the case, bound to
    the given scopes. The token is shown once; only its hash is kept."""
    access = authorize(session, user_id=caller.user_id, case_id=case_id,
                       action=Action.ISSUE_ENROLLMENT_TOKENS)
    issued = enrollment.issue_token(
        session, access=access, party_id=body.party_id, scope_ids=body.scope_ids,
        session_id=body.session_id, expires_in=timedelta(hours=body.expires_in_hours),
        verifier_key=ctx.keys.verifier.vkey(), now=ctx.clock.now())
    row = issued.row
    return EnrollmentTokenRead(id=row.id, token=issued.token, expires_at=row.expires_at,
                               case_id=row.case_id, party_id=row.party_id,
                               party_role=row.party_role, scope_ids=row.scope_ids)


def _agent_reads(session: Session, rows: list[Agent], leaf: bytes | None = None
                 ) -> list[AgentRead]:
    bound = revocation.live_bindings(session, agent_ids=[a.id for a in rows])
    return [AgentRead(agent_id=a.public_id, party_id=a.party_id, key_id=a.key_id,
                      status=AgentStatus(a.status), enrolled_at=a.enrolled_at,
                      last_seen_at=a.last_seen_at, heartbeat_seconds=a.heartbeat_seconds,
                      agent_version=a.agent_version, revoked_at=a.revoked_at,
                      compromised_since=a.compromised_since, scope_ids=bound[a.id],
                      leaf_hash=leaf.hex() if leaf else None) for a in rows]


@case_router.get("/agents", response_model=Page[AgentRead], **bearer(400, 404))
def list_agents(
    case_id: int, caller: CurrentUser, session: DbRead, page: PageParams
) -> Page[AgentRead]:
    """The case's agents: status, last heartbeat, live bindings."""
    authorize(session, user_id=caller.user_id, case_id=case_id, action=Action.READ_SCOPES)
    rows, cursor = paginate(session, select(Agent).where(Agent.case_id == case_id),
                            key=Agent.id, page=page, list_name="agents")
    return Page(items=_agent_reads(session, list(rows)), next_cursor=cursor)


@case_router.post("/agents/{agent_id}/revoke", response_model=AgentRead, **bearer(404, 409))
def revoke_agent(
    case_id: int, agent_id: str, body: RevokeRequest, caller: CurrentUser, session: DbWrite,
    ctx: Context,
) -> AgentRead:
    """Revoke an agent's key: ``decommissioned`` (its outbox may be flushed for 24 hours)
    or ``compromised`` (statements made from ``since`` on are void). Logged publicly."""
    access = authorize(session, user_id=caller.user_id, case_id=case_id,
                       action=Action.REVOKE_AGENTS)
    logged = revocation.revoke(session, access=access, agent_public_id=agent_id,
                               kind=AgentStatus(body.kind), since=body.since,
                               reason=body.reason, now=ctx.clock.now())
    return _agent_reads(session, [logged.row], logged.leaf_hash)[0]


@case_router.post("/challenges", status_code=201, response_model=IssuedChallengesRead,
                  **bearer(404, 409))
def issue_challenges(
    case_id: int, body: CaseChallengesCreate, caller: CurrentUser, session: DbWrite,
    ctx: Context,
) -> IssuedChallengesRead:
    """Fresh challenges, one per binding (agent, scope), each logged: the scans that answer
    them are the ones the verdict counts."""
    authorize(session, user_id=caller.user_id, case_id=case_id,
              action=Action.ISSUE_CHALLENGES)
    issued = challenges.issue_case_challenges(
        session, case_id=case_id, scope_ids=body.scope_ids,
        ttl=timedelta(hours=body.ttl_hours), issued_by=caller.user_id, now=ctx.clock.now())
    return IssuedChallengesRead(challenges=[
        IssuedChallengeRead(id=row.id, agent_id=agent.public_id, scope_id=row.scope_id,
                            expires_at=row.expires_at, origin=ChallengeOrigin(row.origin))
        for row, agent in issued
    ])


def _deletion_request_read(
    session: Session, row: DeletionRequest, now: datetime
) -> DeletionRequestRead:
    return DeletionRequestRead(
        id=row.id, scope_id=row.scope_id, reason=row.reason, created_at=row.created_at,
        expires_at=row.expires_at, leaf_hash=row.leaf_hash.hex(),
        agents=[DeletionTaskState(agent_id=s.agent_id, state=s.state)
                for s in deletions.task_states(session, request=row, now=now)])


@case_router.post("/deletion-requests", status_code=201, response_model=DeletionRequestRead,
                  **bearer(404, 409))
def request_deletion(
    case_id: int, body: DeletionRequestCreate, caller: CurrentUser, session: DbWrite,
    ctx: Context,
) -> DeletionRequestRead:
    """Ask the agents bound to a scope to delete the manifest items they find there. Each
    sees a ``delete`` task until it has scanned the scope clean; an agent carries it out
    only if its host's configuration allows remote deletion. Logged."""
    access = authorize(session, user_id=caller.user_id, case_id=case_id,
                       action=Action.REQUEST_DELETION)
    now = ctx.clock.now()
    logged = deletions.request_deletion(
        session, access=access, scope_id=body.scope_id, reason=body.reason,
        ttl=timedelta(hours=body.ttl_hours), now=now)
    return _deletion_request_read(session, logged.row, now)


@case_router.get("/deletion-requests", response_model=Page[DeletionRequestRead],
                 **bearer(400, 404))
def list_deletion_requests(
    case_id: int, caller: CurrentUser, session: DbRead, page: PageParams, ctx: Context
) -> Page[DeletionRequestRead]:
    """The case's deletion requests, with where each stands with each bound agent."""
    authorize(session, user_id=caller.user_id, case_id=case_id, action=Action.READ_SCOPES)
    rows, cursor = paginate(
        session, select(DeletionRequest).where(DeletionRequest.case_id == case_id),
        key=DeletionRequest.id, page=page, list_name="deletion requests")
    now = ctx.clock.now()
    return Page(items=[_deletion_request_read(session, r, now) for r in rows],
                next_cursor=cursor)


# -- agents -------------------------------------------------------------------------------


@router.post("/enroll", status_code=201, response_model=EnrollRead, openapi_extra=PUBLIC,
             responses=error_responses(401, 413, 422))
def enroll(body: EnrollRequest, session: DbWrite, ctx: Context) -> EnrollRead:
    """Redeem a one-time enrollment token: registers the agent's key (a public log event)
    and binds it to the token's scopes."""
    agent = enrollment.enroll(
        session, token=body.token, public_key=body.public_key,
        host=body.host.model_dump(), build_digest=body.build_digest,
        agent_version=body.agent_version, verifier_key=ctx.keys.verifier.vkey(),
        now=ctx.clock.now())
    grant_role = session.execute(select(EnrollmentToken.party_role).where(
        EnrollmentToken.id == agent.enrolled_via)).scalar_one()
    return EnrollRead(
        agent_id=agent.public_id, case_id=agent.case_id, party_id=agent.party_id,
        party_role=grant_role, scopes=service.agent_scopes(session, agent=agent),
        heartbeat_seconds=agent.heartbeat_seconds, server_time=_now_real(),
        checkpoint=service.checkpoint_note(session))


@router.post("/heartbeat", response_model=HeartbeatRead, **signed())
def heartbeat(
    agent: CurrentAgent, body: HeartbeatRequest, session: DbWrite, ctx: Context
) -> HeartbeatRead:
    """I am alive: the outbox and dead-letter counts; answers with the interval, the
    number of open tasks and the newest checkpoint."""
    now = ctx.clock.now()
    row = service.record_heartbeat(session, agent_id=agent.id, report=body.model_dump(),
                                   now=now)
    tasks = len(challenges.open_challenges(session, agent_id=agent.id, now=now)) + len(
        deletions.open_tasks(session, agent_id=agent.id, now=now))
    return HeartbeatRead(server_time=_now_real(), heartbeat_seconds=row.heartbeat_seconds,
                         tasks=tasks, checkpoint=service.checkpoint_note(session))


@router.get("/scopes", response_model=ScopesRead, **signed())
def agent_scopes(agent: CurrentAgent, session: DbRead) -> ScopesRead:
    """The scopes bound to this agent, with the case's active manifest."""
    return ScopesRead(scopes=service.agent_scopes(session, agent=session.get_one(
        Agent, agent.id)))


@router.get("/challenges", response_model=ChallengesRead, **signed())
def list_challenges(agent: CurrentAgent, session: DbRead, ctx: Context) -> ChallengesRead:
    """Open (unexpired, unused) challenges of this agent's bindings."""
    rows = challenges.open_challenges(session, agent_id=agent.id, now=ctx.clock.now())
    return ChallengesRead(challenges=[challenge_read(r) for r in rows])


@router.post("/challenges", status_code=201, response_model=ChallengeRead, **signed(404))
def request_challenge(
    agent: CurrentAgent, body: ChallengeCreate, session: DbWrite, ctx: Context
) -> ChallengeRead:
    """A short-lived challenge (15 minutes) for a bound scope, asked by the agent itself."""
    row = challenges.issue_challenge(
        session, agent=session.get_one(Agent, agent.id), scope_id=body.scope_id,
        origin=ChallengeOrigin.AGENT, ttl=challenges.ON_DEMAND_TTL, issued_by=None,
        now=ctx.clock.now())
    return challenge_read(row)


@router.get("/tasks", response_model=TasksRead, **signed())
def tasks(agent: CurrentAgent, session: DbRead, ctx: Context) -> TasksRead:
    """What to do: a scan per open challenge, a deletion per open deletion request."""
    now = ctx.clock.now()
    scans = challenges.open_challenges(session, agent_id=agent.id, now=now)
    deletes = deletions.open_tasks(session, agent_id=agent.id, now=now)
    return TasksRead(tasks=[
        *(TaskRead(id=f"scan-{r.id}", kind="scan", scope_id=r.scope_id,
                   challenge=challenge_read(r)) for r in scans),
        *(TaskRead(id=f"delete-{r.id}", kind="delete", scope_id=r.scope_id, challenge=None)
          for r in deletes),
    ])


def _matching_manifest(session: Session, agent: SignedBy, manifest_id: int) -> Manifest:
    row = session.get(Manifest, manifest_id)
    if row is None or row.case_id != agent.case_id or row.state == "importing":
        raise NotFound(f"no manifest {manifest_id} in this agent's case")
    if row.state != "active":
        raise Conflict(f"manifest {manifest_id} is {row.state}; match against the active one")
    return row


@router.get("/manifests/{manifest_id}/filter", response_class=StreamingResponse,
            **signed(404, 409))
def agent_filter(
    manifest_id: int, agent: CurrentAgent, session: DbRead, ctx: Context
) -> StreamingResponse:
    """The manifest's Bloom filter (core.bloom format) for this agent's case."""
    return filter_response(ctx, _matching_manifest(session, agent, manifest_id))


@router.post("/manifests/{manifest_id}/confirm", response_model=ConfirmRead,
             **signed(404, 409))
def agent_confirm(
    manifest_id: int, body: ConfirmRequest, agent: CurrentAgent, session: DbRead
) -> ConfirmRead:
    """Each true hit with its manifest leaf and an inclusion proof to the signed root."""
    row = _matching_manifest(session, agent, manifest_id)
    try:
        digests = [bytes.fromhex(d) for d in body.digests]
    except ValueError:
        raise BadRequest("digests must be hex") from None
    if any(len(d) != 32 for d in digests):
        raise BadRequest("each digest must be 32 bytes (64 hex digits)")
    hits = proofs.confirm(session, manifest=row, digests=digests)
    return ConfirmRead(
        manifest_id=row.id, size=row.count, root=row.root.hex(),
        hits=[HitRead(digest=h.digest.hex(), index=h.index, leaf=h.leaf.hex(),
                      proof=[p.hex() for p in h.proof]) for h in hits])
