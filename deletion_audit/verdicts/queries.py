"""The set-based building blocks of the verdict: which scan counts, and each manifest
item's state. Everything here is one SQL statement over whole sets — never a Python loop
over items — so it holds for 26 million items on PostgreSQL.

Item states: ``present`` (in the latest challenged scan of some scope), else ``deleted``
(named by an accepted deletion statement of the case), else ``unseen`` — never counted as
deleted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    FromClause,
    LargeBinary,
    MetaData,
    Select,
    SmallInteger,
    String,
    Subquery,
    Table,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import Session, aliased

from deletion_audit.models import (
    Agent,
    AgentStatus,
    DeletedItem,
    DeletionRecord,
    ManifestItem,
    ScanItem,
    ScanRecord,
)


class ItemState(StrEnum):
    PRESENT = "present"
    DELETED = "deleted"
    UNSEEN = "unseen"


def _voided(made_at: Any, agent_id: Any) -> ColumnElement[bool]:
    """A statement of a compromised key made at or after its since-time is void (DESIGN,
    Agent ↔ server) — also when it was accepted before the compromise was known."""
    # An alias: callers join the statement's agent too, and must not correlate with it.
    signer = aliased(Agent)
    return exists().where(
        signer.id == agent_id, signer.status == AgentStatus.COMPROMISED.value,
        or_(signer.compromised_since.is_(None), made_at >= signer.compromised_since))


def counted_scans(case_id: int) -> ColumnElement[bool]:
    """The scans the verdict counts: challenged (judged fresh at ingest), with their last
    part received, not voided. An unchallenged scan is the agent's word with no freshness:
    ignored."""
    return and_(ScanRecord.case_id == case_id, ScanRecord.challenge_id.is_not(None),
                ScanRecord.finished.is_(True),
                ~_voided(ScanRecord.started_at, ScanRecord.agent_id))


def void_deletions(case_id: int) -> Select[Any]:
    """Ids of the case's deletion statements a compromise voided (a handful of rows)."""
    return select(DeletionRecord.attestation_id).where(
        DeletionRecord.case_id == case_id,
        _voided(DeletionRecord.deleted_at, DeletionRecord.agent_id))


def latest_scans(case_id: int) -> Subquery:
    """The latest counted scan of each scope (``id``, ``scope_id``)."""
    ranked = select(
        ScanRecord.id, ScanRecord.scope_id,
        func.row_number().over(
            partition_by=ScanRecord.scope_id,
            order_by=(ScanRecord.finished_at.desc(), ScanRecord.id.desc()),
        ).label("rn"),
    ).where(counted_scans(case_id)).subquery("ranked")
    return select(ranked.c.id, ranked.c.scope_id).where(ranked.c.rn == 1).subquery("latest")


def _present_digests(case_id: int) -> Select[Any]:
    latest = latest_scans(case_id)
    return select(ScanItem.digest).join(latest, ScanItem.scan_pk == latest.c.id)


def _deleted_digests(case_id: int) -> Select[Any]:
    return select(DeletedItem.digest).where(
        DeletedItem.case_id == case_id,
        DeletedItem.attestation_id.not_in(void_deletions(case_id)))


def item_states(case_id: int, manifest_id: int, *, hash_join: bool) -> Select[Any]:
    """Every manifest item with its state.

    ``hash_join`` (PostgreSQL): left joins against the two distinct digest sets, which the
    planner runs as hash joins that spill to disk at 26 million rows (an ``IN`` there is a
    hashed subplan only while it fits in ``work_mem``, a rescan per row after). SQLite
    builds no index on a joined derived table (a scan per row: quadratic), but answers
    ``IN (subquery)`` from an ephemeral index: ``n log n``.
    """
    if hash_join:
        present = _present_digests(case_id).distinct().subquery("present")
        deleted = _deleted_digests(case_id).distinct().subquery("deleted")
        is_present: ColumnElement[bool] = present.c.digest.is_not(None)
        is_deleted: ColumnElement[bool] = deleted.c.digest.is_not(None)
    else:
        is_present = ManifestItem.digest.in_(_present_digests(case_id))
        is_deleted = ManifestItem.digest.in_(_deleted_digests(case_id))
    state = case(
        (is_present, literal(ItemState.PRESENT.value)),
        (is_deleted, literal(ItemState.DELETED.value)),
        else_=literal(ItemState.UNSEEN.value),
    ).label("state")
    stmt = select(ManifestItem.ordinal, ManifestItem.digest, ManifestItem.kind,
                  ManifestItem.size, ManifestItem.subject, ManifestItem.source, state)
    if hash_join:
        stmt = (stmt.outerjoin(present, present.c.digest == ManifestItem.digest)
                .outerjoin(deleted, deleted.c.digest == ManifestItem.digest))
    return stmt.where(ManifestItem.manifest_id == manifest_id)


@contextmanager
def item_state_table(session: Session, case_id: int, manifest_id: int) -> Iterator[FromClause]:
    """The item states as a table the aggregates below read: computed once.

    PostgreSQL plans the state query inline in each aggregate well (hash joins); on SQLite
    each inline use re-runs the ``IN`` lookups over every item, so the states are written
    once to a temporary table (per connection, dropped after) and read twice from it.
    """
    hash_join = session.get_bind().dialect.name != "sqlite"
    states = item_states(case_id, manifest_id, hash_join=hash_join)
    if hash_join:
        yield states.subquery("states")
        return
    temp = Table("verdict_item_states", MetaData(), Column("kind", SmallInteger),
                 Column("state", String(8)), Column("subject", LargeBinary),
                 prefixes=["TEMPORARY"])
    conn = session.connection()
    temp.drop(conn, checkfirst=True)
    temp.create(conn)
    try:
        sub = states.subquery("states")
        conn.execute(temp.insert().from_select(
            ["kind", "state", "subject"], select(sub.c.kind, sub.c.state, sub.c.subject)))
        yield temp
    finally:
        temp.drop(conn, checkfirst=True)


def counts_by_kind_and_state(states: FromClause) -> Select[Any]:
    return (select(states.c.kind, states.c.state, func.count().label("n"))
            .group_by(states.c.kind, states.c.state))


def people_counts(states: FromClause) -> Select[Any]:
    """(people, people whose every item is deleted), by subject pseudonym."""
    per_person = (
        select(states.c.subject,
               func.sum(case((states.c.state == ItemState.DELETED.value, 0), else_=1))
               .label("open"))
        .where(states.c.subject.is_not(None)).group_by(states.c.subject).subquery("people")
    )
    return select(func.count(),
                  func.coalesce(func.sum(case((per_person.c.open == 0, 1), else_=0)), 0))


def uncovered_sources(manifest_id: int, location_codes: list[str]) -> Select[int, int]:
    """(items, distinct sources) found by forensics in a location no scope covers."""
    where = [ManifestItem.manifest_id == manifest_id, ManifestItem.source.is_not(None)]
    if location_codes:
        where.append(ManifestItem.source.not_in(location_codes))
    return select(func.count(), func.count(func.distinct(ManifestItem.source))).where(*where)


def vanished_items(case_id: int, manifest_id: int, scope_id: int, latest_pk: int,
                   latest_finished_at: Any) -> Select[Any]:
    """Manifest items an earlier counted scan of the scope found, that its latest scan no
    longer finds, and that no deletion statement for the scope names: emptiness is
    suspicious, not success."""
    earlier = (
        select(ScanItem.digest).join(ScanRecord, ScanRecord.id == ScanItem.scan_pk)
        .where(counted_scans(case_id), ScanRecord.scope_id == scope_id,
               ScanRecord.id != latest_pk, ScanRecord.finished_at <= latest_finished_at)
        .distinct().subquery("earlier")
    )
    still = exists().where(ScanItem.scan_pk == latest_pk, ScanItem.digest == earlier.c.digest)
    deleted = exists().where(DeletedItem.case_id == case_id,
                             DeletedItem.scope_id == scope_id,
                             DeletedItem.digest == earlier.c.digest,
                             DeletedItem.attestation_id.not_in(void_deletions(case_id)))
    in_manifest = exists().where(ManifestItem.manifest_id == manifest_id,
                                 ManifestItem.digest == earlier.c.digest)
    return select(func.count()).select_from(earlier).where(~still, ~deleted, in_manifest)


def scope_filter(case_id: int, scope_id: int, location_codes: list[str]) -> ColumnElement[bool]:
    """Items that belong to a scope: found there by forensics (its location codes), present
    in its latest counted scan, or named by a deletion statement for it."""
    latest = latest_scans(case_id)
    present = exists().where(ScanItem.scan_pk == latest.c.id, latest.c.scope_id == scope_id,
                             ScanItem.digest == ManifestItem.digest)
    deleted = exists().where(DeletedItem.case_id == case_id, DeletedItem.scope_id == scope_id,
                             DeletedItem.digest == ManifestItem.digest,
                             DeletedItem.attestation_id.not_in(void_deletions(case_id)))
    clauses: list[ColumnElement[bool]] = [present, deleted]
    if location_codes:
        clauses.append(ManifestItem.source.in_(location_codes))
    return or_(*clauses)
