"""Recompute the log from its stored leaves in one pass and check it against every
checkpoint it signed (``deletion-audit log verify``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from deletion_audit.core import merkle
from deletion_audit.core.checkpoint import open_checkpoint
from deletion_audit.core.errors import CoreError
from deletion_audit.core.keys import public_key_from_raw
from deletion_audit.core.note import NoteVerifier, note_key_id
from deletion_audit.log import service
from deletion_audit.models import LogCheckpoint, LogIdentity

_COMPARE_BATCH = 4_000


@dataclass
class LogReport:
    size: int = 0
    checkpoints: int = 0
    problems: list[str] = field(default_factory=list)
    first_bad_index: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, message: str, index: int | None = None) -> None:
        self.problems.append(message)
        if index is not None and (self.first_bad_index is None or index < self.first_bad_index):
            self.first_bad_index = index


def _checkpoints(session: Session) -> Iterator[LogCheckpoint]:
    yield from session.execute(select(LogCheckpoint).order_by(LogCheckpoint.size)).scalars()


def verify_log(session: Session, verifier: NoteVerifier | None = None) -> LogReport:
    report = LogReport()
    identity = session.get(LogIdentity, 1)
    if identity is None:
        report.fail("the database has no log identity")
        return report
    if verifier is None:
        public = public_key_from_raw(identity.log_public_key)
        verifier = NoteVerifier(identity.origin, note_key_id(identity.origin, public), public)
    checkpoints = list(_checkpoints(session))
    report.checkpoints = len(checkpoints)
    for cp in checkpoints:
        try:
            opened = open_checkpoint(cp.note, verifier)
        except CoreError as exc:
            report.fail(f"checkpoint of size {cp.size} does not verify: {exc}")
            continue
        if opened.size != cp.size or opened.root_hash != cp.root:
            report.fail(f"checkpoint row of size {cp.size} disagrees with its signed note")
    pending_cps = list(checkpoints)
    read = service.node_reader(session)
    frontier = merkle.Frontier()
    expected = 0
    to_compare: list[tuple[int, int, bytes]] = []

    def compare() -> None:
        stored = read([(lvl, i) for lvl, i, _ in to_compare])
        for lvl, i, h in to_compare:
            if stored.get((lvl, i)) != h:
                first_leaf = i << lvl
                report.fail(
                    f"stored hash of subtree ({lvl}, {i}) is wrong: leaves from index "
                    f"{first_leaf} were altered", first_leaf,
                )
                break
        to_compare.clear()

    for idx, leaf_hash, data in service.iter_integrated(session):
        if idx != expected:
            report.fail(f"leaf at index {expected} is missing (removed row)", expected)
            break
        if merkle.leaf_hash(data) != leaf_hash:
            report.fail(f"leaf at index {idx} was altered (its data no longer hashes to it)", idx)
            break
        to_compare.extend(frontier.append(leaf_hash))
        if len(to_compare) >= _COMPARE_BATCH:
            compare()
        expected += 1
        while pending_cps and pending_cps[0].size == frontier.size:
            cp = pending_cps.pop(0)
            compare()  # the stored hashes name the altered leaf more precisely than a root
            if report.ok and frontier.root() != cp.root:
                report.fail(
                    f"the tree recomputed from the leaves does not match the checkpoint of "
                    f"size {cp.size}", cp.size - 1,
                )
        if not report.ok:
            break
    if to_compare and report.ok:
        compare()
    report.size = frontier.size
    state_size = service.current_size(session)
    if report.ok and frontier.size != state_size:
        report.fail(f"the log's state says {state_size} leaves, the leaves give {frontier.size}",
                    frontier.size)
    for cp in pending_cps:
        if report.ok:
            report.fail(f"checkpoint of size {cp.size} is beyond the stored leaves", frontier.size)
    return report
