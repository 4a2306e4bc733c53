"""What the store already holds about an agent's statement: its own earlier outcome, who
holds its places in the agent's chain (``seq`` and ``seq - 1``), and the scope it names if
that is bound to the agent — read in one query for one statement (:func:`lookup`) or for a
batch's statements of distinct agents (:func:`read_known_many`), on ingest's hot path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Integer,
    LargeBinary,
    String,
    Table,
    and_,
    bindparam,
    exists,
    literal,
    null,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session

from deletion_audit.core.predicates import DeletionPredicate, ScanPredicate, format_timestamp
from deletion_audit.core.statements import Statement
from deletion_audit.db import padded_batches
from deletion_audit.errors import Unprocessable
from deletion_audit.models import Attestation, Binding, Refusal, Scope
from deletion_audit.models.base import UtcDateTime

AgentPredicate = ScanPredicate | DeletionPredicate


class WrongAgent(Unprocessable):
    code = "wrong_agent"


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict[str, Any]
    refused: str | None = None
    """The refusal's code when this call refused the statement (not when repeating one)."""
    stored: tuple[int, datetime] | None = None
    """The case and time of the statement this call stored (not when repeating its
    receipt): what ``ingest_prepared(mark=False)``'s caller marks for a new verdict."""


@dataclass(frozen=True)
class Parsed:
    sid: str
    statement: Statement | None
    predicate: AgentPredicate | None
    problem: str | None
    raw_seq: int | None


def receipt(row: Attestation | Accepted) -> dict[str, Any]:
    return {"statement_id": row.statement_id, "leaf_hash": row.leaf_hash.hex(),
            "seq": row.seq, "received_at": format_timestamp(row.received_at)}


@dataclass(frozen=True)
class Accepted:
    statement_id: str
    agent_id: int | None
    seq: int | None
    leaf_hash: bytes
    received_at: datetime


@dataclass(frozen=True)
class EarlierRefusal:
    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Known:
    """What the store already holds about a statement and its places in the chain — its
    own earlier outcome, who holds ``seq`` and ``seq - 1``, and the scope it names if that
    is bound to the agent — read in one query (the hot path: every agent statement passes
    here)."""

    agent_id: int
    sid: str
    accepted: Accepted | None
    refused: EarlierRefusal | None
    holders: dict[int, str]
    scope: BoundScope | None

    def earlier_outcome(self) -> Outcome | None:
        if self.accepted is not None:
            if self.accepted.agent_id != self.agent_id:
                raise WrongAgent("this statement was submitted by another agent")
            return Outcome(201, receipt(self.accepted))
        if self.refused is not None:
            return Outcome(self.refused.status, dict(self.refused.body))
        return None

    def holder(self, seq: int) -> str | None:
        """The id of the statement that holds ``seq`` in the agent's chain, if any: an
        accepted one, or a refused one other than a fork (a fork never takes a place)."""
        return self.holders.get(seq)


# Built once, run with parameters: on this path, constructing a statement costs more than
# running it. Seqs are a range, not an IN list (an expanding IN is compiled on every call);
# an empty range is lo > hi. The accepted and the refused rows come in one query: the
# statement's own earlier outcome and who holds ``seq`` and ``seq - 1``.
ATT = cast(Table, Attestation.__table__).c


_REF = cast(Table, Refusal.__table__).c


_SCOPE = cast(Table, Scope.__table__).c


_BINDING = cast(Table, Binding.__table__).c


_KNOWN = union_all(
    select(literal("accepted").label("src"), ATT.id.label("row"), ATT.statement_id,
           ATT.agent_id, ATT.seq, ATT.leaf_hash, ATT.received_at,
           type_coerce(null(), String).label("code"), type_coerce(null(), Integer)
           .label("status"), type_coerce(null(), JSON).label("body"))
    .where(or_(ATT.statement_id == bindparam("sid"),
               and_(ATT.agent_id == bindparam("agent_id"),
                    ATT.seq.between(bindparam("lo"), bindparam("hi"))))),
    select(literal("refused"), _REF.id, _REF.statement_id, _REF.agent_id, _REF.seq,
           type_coerce(null(), LargeBinary), type_coerce(null(), UtcDateTime()), _REF.code,
           _REF.status, _REF.body)
    .where(_REF.agent_id == bindparam("agent_id"),
           or_(_REF.statement_id == bindparam("sid"),
               and_(_REF.seq.between(bindparam("lo"), bindparam("hi")),
                    _REF.code != "fork"))),
    select(literal("scope"), _SCOPE.id, _SCOPE.spec_digest, type_coerce(null(), Integer),
           type_coerce(null(), Integer), type_coerce(null(), LargeBinary),
           type_coerce(null(), UtcDateTime()), _SCOPE.kind, type_coerce(null(), Integer),
           type_coerce(null(), JSON))
    .where(_SCOPE.id == bindparam("scope_id"),
           exists().where(_BINDING.scope_id == _SCOPE.id,
                          _BINDING.agent_id == bindparam("agent_id"),
                          _BINDING.unbound_at.is_(None))),
)


# A scope id that is not a small decimal number names no scope (no row has id -1).
NO_SCOPE = -1


def lookup_keys(parsed: Parsed) -> tuple[list[int], int, int, int]:
    """What a statement's lookup asks for: the seqs of its places in the chain (``seq``
    and ``seq - 1``), as a range lo-hi (an empty range is lo > hi), and the scope id it
    names."""
    seqs: list[int] = []
    if parsed.raw_seq is not None:
        seqs = [s for s in (parsed.raw_seq, parsed.raw_seq - 1) if s >= 0]
    lo, hi = (min(seqs), max(seqs)) if seqs else (1, 0)
    ref = parsed.predicate.scope_id if parsed.predicate is not None else ""
    scope_id = int(ref) if ref.isascii() and ref.isdigit() and len(ref) <= 18 else NO_SCOPE
    return seqs, lo, hi, scope_id


def lookup(session: Session, agent_id: int, parsed: Parsed) -> Known:
    seqs, lo, hi, scope_id = lookup_keys(parsed)
    rows = session.connection().execute(_KNOWN, {"sid": parsed.sid, "agent_id": agent_id,
                                                 "lo": lo, "hi": hi,
                                                 "scope_id": scope_id}).all()
    return known_from_rows(agent_id, parsed, seqs, rows)


def known_from_rows(agent_id: int, parsed: Parsed, seqs: list[int], rows: Sequence[Any]) -> Known:
    """The facts of :class:`Known` from the rows of ``_KNOWN`` (or of the rows that
    concern this statement in a batch's ``read_known_many``)."""
    scope = next((BoundScope(int(r.row), r.code, r.statement_id) for r in rows
                  if r.src == "scope"), None)
    accepted = next((Accepted(r.statement_id, r.agent_id, r.seq, r.leaf_hash, r.received_at)
                     for r in rows if r.src == "accepted" and r.statement_id == parsed.sid),
                    None)
    holders = {int(r.seq): str(r.statement_id) for r in rows
               if r.src == "accepted" and r.agent_id == agent_id and r.seq in seqs}
    refused = None
    if accepted is None:
        # The first refusal recorded for this id is its answer.
        refused = next((EarlierRefusal(r.status, dict(r.body)) for r in sorted(
            (r for r in rows if r.src == "refused"), key=lambda r: int(r.row))
            if r.statement_id == parsed.sid), None)
    for r in sorted((r for r in rows if r.src == "refused"), key=lambda r: int(r.row)):
        if r.seq in seqs and r.code != "fork" and r.seq not in holders:
            holders[r.seq] = r.statement_id
    return Known(agent_id, parsed.sid, accepted, refused, holders, scope)


# _KNOWN for several statements at once: an OR of one term a statement, which both
# engines answer with one index search a term (SQLite plans a row-value IN list as a
# scan). Built once per size (4, 8, 16 or 32 statements; the unused terms name agent -1,
# which no row has): the same text each time lets SQLite's statement cache and
# PostgreSQL's prepared statements skip parsing and planning, and nothing is compiled
# per batch.
_KNOWN_SIZES = (4, 8, 16, 32)


def _known_many_statement(size: int) -> Any:
    def p(name: str, k: int) -> Any:
        return bindparam(f"{name}_{k}")

    accepted = or_(*(or_(ATT.statement_id == p("sid", k),
                         and_(ATT.agent_id == p("agent", k),
                              ATT.seq.between(p("lo", k), p("hi", k))))
                     for k in range(size)))
    refused = or_(*(and_(_REF.agent_id == p("agent", k),
                         or_(_REF.statement_id == p("sid", k),
                             and_(_REF.seq.between(p("lo", k), p("hi", k)),
                                  _REF.code != "fork")))
                    for k in range(size)))
    bound = or_(*(and_(_BINDING.agent_id == p("agent", k), _BINDING.scope_id == p("scope", k))
                  for k in range(size)))
    return union_all(
        select(literal("accepted").label("src"), ATT.id.label("row"), ATT.statement_id,
               ATT.agent_id, ATT.seq, ATT.leaf_hash, ATT.received_at,
               type_coerce(null(), String).label("code"), type_coerce(null(), Integer)
               .label("status"), type_coerce(null(), JSON).label("body")).where(accepted),
        select(literal("refused"), _REF.id, _REF.statement_id, _REF.agent_id, _REF.seq,
               type_coerce(null(), LargeBinary), type_coerce(null(), UtcDateTime()), _REF.code,
               _REF.status, _REF.body).where(refused),
        select(literal("scope"), _SCOPE.id, _SCOPE.spec_digest, _BINDING.agent_id,
               type_coerce(null(), Integer), type_coerce(null(), LargeBinary),
               type_coerce(null(), UtcDateTime()), _SCOPE.kind, type_coerce(null(), Integer),
               type_coerce(null(), JSON))
        .join(cast(Table, Binding.__table__), _BINDING.scope_id == _SCOPE.id)
        .where(bound, _BINDING.unbound_at.is_(None)),
    )


_KNOWN_MANY = {size: _known_many_statement(size) for size in _KNOWN_SIZES}


def read_known_many(
    session: Session, keys: Sequence[tuple[str, int, int, int, int]]
) -> list[Any]:
    """The rows of ``_KNOWN`` for statements of distinct agents, (sid, agent id, lo, hi,
    scope id) each; a scope row carries the agent it is bound to in ``agent_id``."""
    rows: list[Any] = []
    for size, batch in padded_batches(keys, _KNOWN_SIZES, ("", -1, 1, 0, NO_SCOPE)):
        params: dict[str, Any] = {}
        for k, (sid, agent_id, lo, hi, scope_id) in enumerate(batch):
            params.update({f"sid_{k}": sid, f"agent_{k}": agent_id, f"lo_{k}": lo,
                           f"hi_{k}": hi, f"scope_{k}": scope_id})
        rows += session.connection().execute(_KNOWN_MANY[size], params).all()
    return rows


@dataclass(frozen=True)
class BoundScope:
    id: int
    kind: str
    spec_digest: str
