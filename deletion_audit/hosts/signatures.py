"""RFC 9421 HTTP Message Signatures on agent requests (agents/PROTOCOL.md, "Signed
requests"), verified with the ``http-message-signatures`` library.

The transport clock is always real time, whatever the domain clock says: a signature's
freshness is a fact about the network, not about the case. Each refusal is distinct so an
agent knows what to do (``clock_skew`` carries the server's time). A nonce is recorded only
once its signature verified, so unauthenticated traffic cannot fill the table or burn an
agent's nonces; the table is shared by every instance and pruned as it goes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, cast

import http_sf
from fastapi import Depends, Request
from http_message_signatures import (
    ContentDigest,
    HTTPMessageSignaturesException,
    HTTPMessageVerifier,
    MappingKeyResolver,
    algorithms,
)
from sqlalchemy import (
    LargeBinary,
    String,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    insert,
    literal,
    null,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.datastructures import Headers

from deletion_audit import deferred
from deletion_audit.context import AppContext
from deletion_audit.core.keys import public_key_from_raw
from deletion_audit.core.predicates import format_timestamp
from deletion_audit.db import padded_batches
from deletion_audit.deps import Context
from deletion_audit.errors import AuditError
from deletion_audit.hosts.errors import (
    BadContentDigest,
    BadSignature,
    ClockSkew,
    Replayed,
    Revoked,
    UnknownAgent,
)
from deletion_audit.models import Agent, AgentStatus, RequestNonce
from deletion_audit.models.base import UtcDateTime
from deletion_audit.schemas import error_responses

LABEL = "da"
WINDOW = timedelta(seconds=300)
# A signature created at t is accepted until t + WINDOW, and may arrive as early as
# t - WINDOW: its nonce must be remembered for twice the window.
NONCE_RETENTION = 2 * WINDOW
REQUIRED = ("@method", "@target-uri")

# OpenAPI: an agent's endpoint declares the signature scheme (app.SECURITY_SCHEMES).
SIGNED: dict[str, Any] = {"security": [{"httpSignature": []}]}


def signed(*codes: int) -> dict[str, Any]:
    """Route keyword arguments for an endpoint agents call with a signed request."""
    return {"openapi_extra": SIGNED,
            "responses": error_responses(*sorted({400, 401, 403, 413, 422, *codes}))}


@dataclass(frozen=True)
class SignedBy:
    """The agent whose key signed the request, detached from any session."""

    id: int
    public_id: str
    case_id: int
    party_id: int
    key_id: str
    public_key: bytes
    status: AgentStatus
    revoked_at: datetime | None = None
    compromised_since: datetime | None = None
    nonce: str = ""
    """The request's nonce (for a caller that records it in its own transaction)."""


@dataclass(frozen=True)
class SignatureParams:
    created: int
    nonce: str
    keyid: str
    covered: frozenset[str] = frozenset()
    """The components the signature covers, those without parameters."""


@dataclass(frozen=True)
class _Message:
    """What the library's component resolver reads from a request."""

    method: str
    url: str
    headers: Headers


class _Verifier(HTTPMessageVerifier):
    # The creation time is judged before (with the protocol's window and a distinct
    # refusal); the library's own check only has to accept what passed it.
    max_clock_skew = WINDOW


def _params(headers: Headers) -> SignatureParams:
    raw = headers.get("signature-input")
    if raw is None or "signature" not in headers:
        raise BadSignature("the request is not signed (Signature-Input and Signature headers "
                           f"with label {LABEL!r})")
    try:
        parsed: Any = http_sf.parse(raw.encode(), tltype="dictionary")
    except (ValueError, TypeError):
        raise BadSignature("Signature-Input is not a structured field dictionary") from None
    member = parsed.get(LABEL)
    if member is None:
        raise BadSignature(f"no signature labelled {LABEL!r}")
    params = member[1]
    created, nonce, keyid = params.get("created"), params.get("nonce"), params.get("keyid")
    if type(created) is not int or not isinstance(nonce, str) or not isinstance(keyid, str):
        raise BadSignature("the signature needs created, nonce and keyid parameters")
    if len(nonce) < 16 or len(nonce) > 128:
        raise BadSignature("the nonce must be 16-128 characters")
    covered = frozenset(name for name, flags in member[0] if isinstance(name, str) and not flags)
    return SignatureParams(created=created, nonce=nonce, keyid=keyid, covered=covered)


def _verify(
    message: _Message, agent: SignedBy | AgentKey, body: bytes, params: SignatureParams
) -> None:
    # The coverage is checked on the Signature-Input member already parsed (the one the
    # library verifies: it refuses any other signature beside it), not by the library's
    # require_components, which parses the component lists again (a sixth of its cost).
    required = (*REQUIRED, "content-digest") if body else REQUIRED
    missing = [name for name in required if name not in params.covered]
    if missing:
        raise BadSignature(f"the signature must cover {', '.join(required)}; it does not "
                           f"cover {', '.join(missing)}")
    resolver = MappingKeyResolver(
        public_keys={agent.public_id: public_key_from_raw(agent.public_key)}, private_keys={})
    verifier = _Verifier(signature_algorithm=algorithms.ED25519, key_resolver=resolver)
    try:
        results = verifier.verify(message, max_age=None)
    except HTTPMessageSignaturesException as exc:
        raise BadSignature(f"the request signature does not verify: {exc}") from None
    if len(results) != 1 or results[0].label != LABEL:
        raise BadSignature(f"expected exactly one signature labelled {LABEL!r}")
    try:
        ContentDigest.verify_components(results[0].covered_components, body)
    except HTTPMessageSignaturesException:
        raise BadContentDigest("Content-Digest does not match the request body") from None


_AGENTS = cast(Table, Agent.__table__).c
_NONCES = cast(Table, RequestNonce.__table__)
# Built once (constructing a statement costs more than running it on this path).
_AGENT_AND_NONCE = select(
    _AGENTS.id, _AGENTS.public_id, _AGENTS.case_id, _AGENTS.party_id, _AGENTS.key_id,
    _AGENTS.public_key, _AGENTS.status, _AGENTS.revoked_at, _AGENTS.compromised_since,
    exists().where(_NONCES.c.agent_id == _AGENTS.id,
                   _NONCES.c.nonce == bindparam("nonce")).label("used"),
).where(_AGENTS.public_id == bindparam("public_id"))
_PRUNE_NONCES = delete(_NONCES).where(_NONCES.c.created_at < bindparam("cutoff"))
_INSERT_NONCE = insert(_NONCES)


def _load_agent(ctx: AppContext, public_id: str, nonce: str) -> tuple[SignedBy, bool]:
    """The agent, and whether it already used ``nonce`` — one query, as every signed
    request starts here."""
    with ctx.db.read() as session:
        found = session.execute(_AGENT_AND_NONCE,
                                {"public_id": public_id, "nonce": nonce}).first()
    if found is None:
        raise UnknownAgent(f"no agent {public_id!r} is enrolled here; enroll with a new token")
    return SignedBy(id=found.id, public_id=found.public_id, case_id=found.case_id,
                    party_id=found.party_id, key_id=found.key_id, public_key=found.public_key,
                    status=AgentStatus(found.status), revoked_at=found.revoked_at,
                    compromised_since=found.compromised_since), bool(found.used)


def remember_nonce(session: Session, agent_id: int, nonce: str, now: datetime) -> None:
    """Record a request's nonce in the caller's transaction (and prune those past the
    replay window); Replayed if it is already there."""
    session.execute(_PRUNE_NONCES, {"cutoff": now - NONCE_RETENTION})
    try:
        session.execute(_INSERT_NONCE, {"agent_id": agent_id, "nonce": nonce,
                                        "created_at": now})
    except IntegrityError:
        # The same request raced itself: one of them is the replay.
        raise Replayed("this request's nonce was already used") from None


def _remember(ctx: AppContext, agent_id: int, nonce: str, now: datetime) -> None:
    with ctx.db.write() as session:
        remember_nonce(session, agent_id, nonce, now)


def signature_params(headers: Headers, now: datetime) -> SignatureParams:
    """The signature's parameters, its creation time checked on the transport clock."""
    params = _params(headers)
    created = datetime.fromtimestamp(params.created, tz=UTC)
    if abs(now - created) > WINDOW:
        raise ClockSkew(f"the signature was created at {format_timestamp(created)}, more than "
                        f"{int(WINDOW.total_seconds())} s from the server's time; fix the "
                        "host clock", server_time=format_timestamp(now.replace(microsecond=0)))
    return params


def authenticate(
    ctx: AppContext, *, method: str, url: str, headers: Headers, body: bytes,
    allow_revoked: bool, now: datetime, remember: bool = True,
) -> SignedBy:
    """Check a signed request in the protocol's order; ``now`` is the transport clock.
    ``remember=False`` leaves recording the nonce to the caller's own transaction
    (:func:`remember_nonce`)."""
    params = signature_params(headers, now)
    agent, used = _load_agent(ctx, params.keyid, params.nonce)
    if used:
        raise Replayed("this request's nonce was already used")
    _verify(_Message(method=method, url=url, headers=headers), agent, body, params)
    if remember:
        _remember(ctx, agent.id, params.nonce, now)
    if agent.status is not AgentStatus.ACTIVE and not allow_revoked:
        raise Revoked(f"agent {agent.public_id} is {agent.status.value}; it may not act "
                      "any more", key_status=agent.status.value)
    return dataclasses.replace(agent, nonce=params.nonce)


@dataclass(frozen=True)
class AgentKey:
    """What never changes for an enrolled agent — its ids, case, party and key (a host's
    new key is a new agent) — so a process may keep it between requests. Its status is
    not here: :func:`signed_by` reads it fresh in the request's own transaction."""

    id: int
    public_id: str
    case_id: int
    party_id: int
    key_id: str
    public_key: bytes


_AGENT_KEY = select(_AGENTS.id, _AGENTS.public_id, _AGENTS.case_id, _AGENTS.party_id,
                    _AGENTS.key_id, _AGENTS.public_key).where(
                        _AGENTS.public_id == bindparam("public_id"))
_AGENT_NOW = select(
    _AGENTS.public_key, _AGENTS.status, _AGENTS.revoked_at, _AGENTS.compromised_since,
    exists().where(_NONCES.c.agent_id == _AGENTS.id,
                   _NONCES.c.nonce == bindparam("nonce")).label("used"),
).where(_AGENTS.id == bindparam("id"))


def load_agent_key(session: Session, public_id: str) -> AgentKey:
    found = session.execute(_AGENT_KEY, {"public_id": public_id}).first()
    if found is None:
        raise UnknownAgent(f"no agent {public_id!r} is enrolled here; enroll with a new token")
    return AgentKey(id=found.id, public_id=found.public_id, case_id=found.case_id,
                    party_id=found.party_id, key_id=found.key_id, public_key=found.public_key)


def verify_signature(
    agent: AgentKey, params: SignatureParams, *, method: str, url: str, headers: Headers,
    body: bytes,
) -> None:
    """The request's RFC 9421 signature (``params``: :func:`signature_params` of its
    headers) and content digest, with the agent's key."""
    _verify(_Message(method=method, url=url, headers=headers), agent, body, params)


def signed_by(session: Session, agent: AgentKey, nonce: str, now: datetime) -> SignedBy:
    """In the caller's write transaction, for a request whose signature verified: the
    agent's status as it is now, and the request's nonce recorded (Replayed if it was
    used). Pruning the nonce table is left to the caller (:func:`prune_nonces`)."""
    found = session.connection().execute(_AGENT_NOW, {"id": agent.id, "nonce": nonce}).first()
    if found is None or found.public_key != agent.public_key:
        raise UnknownAgent(f"no agent {agent.public_id!r} is enrolled here; enroll with a new "
                           "token")
    if found.used:
        raise Replayed("this request's nonce was already used")
    try:
        session.connection().execute(_INSERT_NONCE, {"agent_id": agent.id, "nonce": nonce,
                                                     "created_at": now})
    except IntegrityError:
        raise Replayed("this request's nonce was already used") from None
    return SignedBy(id=agent.id, public_id=agent.public_id, case_id=agent.case_id,
                    party_id=agent.party_id, key_id=agent.key_id, public_key=agent.public_key,
                    status=AgentStatus(found.status), revoked_at=found.revoked_at,
                    compromised_since=found.compromised_since, nonce=nonce)


# A batch's agents at once, and which of them already used the nonce of its request there:
# built once per size (4, 8, 16 or 32 requests; the unused slots name agent -1, which no
# row has), with one term a request, which both engines answer with one index search a
# term (an EXISTS over the batch's nonces cost the PostgreSQL server 1.0 ms a batch of 16
# with a few thousand nonces kept, this 0.5 ms; the table holds ten minutes of requests).
_MANY_SIZES = (4, 8, 16, 32)


def _agents_now(size: int) -> Any:
    slots = range(size)
    return union_all(
        select(_AGENTS.id, _AGENTS.public_key, _AGENTS.status, _AGENTS.revoked_at,
               _AGENTS.compromised_since, literal(False).label("used"))
        .where(_AGENTS.id.in_([bindparam(f"id_{k}") for k in slots])),
        select(_NONCES.c.agent_id, type_coerce(null(), LargeBinary),
               type_coerce(null(), String), type_coerce(null(), UtcDateTime()),
               type_coerce(null(), UtcDateTime()), literal(True))
        .where(or_(*(and_(_NONCES.c.agent_id == bindparam(f"id_{k}"),
                          _NONCES.c.nonce == bindparam(f"nonce_{k}")) for k in slots))),
    )


_AGENTS_NOW = {size: _agents_now(size) for size in _MANY_SIZES}
# Several rows: RETURNING makes SQLAlchemy send them as one multi-row INSERT (its
# "insertmanyvalues"); without it psycopg's executemany runs one INSERT a row in the
# PostgreSQL server.
_INSERT_NONCES = insert(_NONCES).returning(_NONCES.c.id)


def signed_by_many(
    session: Session, requests: Sequence[tuple[AgentKey, str]]
) -> list[SignedBy | None]:
    """:func:`signed_by` for several requests of distinct agents, in one query: each
    agent's status as it is now in the caller's write transaction, for a request whose
    signature verified — without recording the nonces (:func:`record_nonces`, once the
    caller knows which it keeps). None for a request that takes :func:`signed_by` itself,
    which answers it: an agent no longer there, or a nonce already used."""
    if not requests:
        return []
    found: dict[int, Any] = {}
    used: set[int] = set()
    pairs = [(agent.id, nonce) for agent, nonce in requests]
    for size, batch in padded_batches(pairs, _MANY_SIZES, (-1, "")):
        params: dict[str, Any] = {}
        for k, (agent_id, nonce) in enumerate(batch):
            params.update({f"id_{k}": agent_id, f"nonce_{k}": nonce})
        for hit in session.connection().execute(_AGENTS_NOW[size], params):
            if hit.used:
                used.add(hit.id)
            else:
                found[hit.id] = hit
    out: list[SignedBy | None] = []
    for agent, nonce in requests:
        row = found.get(agent.id)
        if row is None or row.public_key != agent.public_key or agent.id in used:
            out.append(None)
            continue
        out.append(SignedBy(id=agent.id, public_id=agent.public_id, case_id=agent.case_id,
                            party_id=agent.party_id, key_id=agent.key_id,
                            public_key=agent.public_key, status=AgentStatus(row.status),
                            revoked_at=row.revoked_at,
                            compromised_since=row.compromised_since, nonce=nonce))
    return out


def record_nonces(session: Session, used: Sequence[tuple[int, str, datetime]]) -> None:
    """Record requests' nonces (agent id, nonce, the request's arrival on the transport
    clock) in one statement, or with the inserts being gathered (deferred.py); an
    IntegrityError if one is already there, then or when they are sent (a request raced
    itself: the caller runs its requests again one by one, and :func:`signed_by` answers
    the replay)."""
    if not used:
        return
    waiting = deferred.gathered(session)
    if waiting is not None:
        waiting.add(_NONCES, ("agent_id", "nonce", "created_at"), list(used))
    else:
        session.connection().execute(_INSERT_NONCES, [
            {"agent_id": agent_id, "nonce": nonce, "created_at": at}
            for agent_id, nonce, at in used]).all()


def prune_nonces(session: Session, now: datetime) -> None:
    """Remove the nonces past the replay window."""
    session.connection().execute(_PRUNE_NONCES, {"cutoff": now - NONCE_RETENTION})


async def raw_body(request: Request) -> bytes:
    return await request.body()


def _dependency(allow_revoked: bool) -> Any:
    def current_agent(
        request: Request, ctx: Context, body: Annotated[bytes, Depends(raw_body)]
    ) -> SignedBy:
        try:
            return authenticate(ctx, method=request.method, url=str(request.url),
                                headers=request.headers, body=body,
                                allow_revoked=allow_revoked, now=datetime.now(UTC))
        except AuditError as exc:
            ctx.metrics.refusals.labels(reason=exc.code).inc()
            raise

    return current_agent


CurrentAgent = Annotated[SignedBy, Depends(_dependency(allow_revoked=False))]
"""An active agent's signed request."""
SigningAgent = Annotated[SignedBy, Depends(_dependency(allow_revoked=True))]
"""Any enrolled agent's signed request: ingest judges a revoked key's statements itself."""
