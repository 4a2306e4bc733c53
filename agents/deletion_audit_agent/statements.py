"""Building and signing the agent's statements: scan (multi-part) and deletion.

Each statement is an in-toto Statement v1 whose subject is the scope: name
``scope:<id>``, digest the SHA-256 of the scope specification the agent obeyed. Payloads
are canonical JSON (RFC 8785), so a statement's id is stable from the outbox to the server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deletion_audit.core import dsse
from deletion_audit.core.predicates import (
    MAX_DIGESTS_PER_STATEMENT,
    AgeSummary,
    DeletionPredicate,
    PredicateModel,
    ScanCounts,
    ScanPredicate,
)
from deletion_audit.core.statements import Statement, Subject, statement_bytes
from deletion_audit_agent.state import Builder


def statement_for(predicate: PredicateModel, scope_id: str, spec_digest: str) -> Statement:
    subject = Subject(name=f"scope:{scope_id}", digest={"sha256": spec_digest})
    return Statement(subject=(subject,), predicate_type=predicate.PREDICATE_TYPE,
                     predicate=predicate.to_predicate())


def sign(key: Ed25519PrivateKey, statement: Statement) -> tuple[bytes, bytes]:
    payload = statement_bytes(statement)
    envelope = dsse.sign(payload, dsse.IN_TOTO_PAYLOAD_TYPE, key)
    return payload, envelope.to_json()


@dataclass(frozen=True)
class Chain:
    """What every statement of this agent carries besides its seq and prev."""

    case_id: str
    agent_id: str
    build_digest: str


@dataclass(frozen=True)
class ScanReport:
    scope_id: str
    spec_digest: str
    scan_id: str
    challenge: str | None
    present: Sequence[str]
    skipped_path_hashes: Sequence[str]
    counts: ScanCounts
    root: str
    coverage: Literal["complete", "partial"]
    started_at: datetime
    finished_at: datetime
    ages: Mapping[str, AgeSummary] | None = None


def _chunks(items: Sequence[str], count: int) -> list[list[str]]:
    size = MAX_DIGESTS_PER_STATEMENT
    return [list(items[i * size:(i + 1) * size]) for i in range(count)]


def scan_builders(key: Ed25519PrivateKey, chain: Chain, report: ScanReport) -> list[Builder]:
    """One builder per part: at most 10,000 digests of each list per part; the last part
    carries the totals, the root and the coverage."""
    size = MAX_DIGESTS_PER_STATEMENT
    parts = max(1, -(-len(report.present) // size), -(-len(report.skipped_path_hashes) // size))
    present = _chunks(report.present, parts)
    skipped = _chunks(report.skipped_path_hashes, parts)
    builders: list[Builder] = []
    for index in range(parts):
        last = index == parts - 1

        def build(seq: int, prev: str | None, index: int = index, last: bool = last
                  ) -> tuple[bytes, bytes]:
            predicate = ScanPredicate(
                case_id=chain.case_id, agent_id=chain.agent_id, seq=seq, prev=prev,
                agent_build_digest=chain.build_digest, scope_id=report.scope_id,
                scope_spec_digest=report.spec_digest, scan_id=report.scan_id,
                part=index + 1, last=last, challenge=report.challenge,
                present_digests=present[index], skipped_path_hashes=skipped[index],
                coverage=report.coverage if last else None,
                counts=report.counts if last else None, root=report.root if last else None,
                ages=dict(report.ages) if last and report.ages is not None else None,
                started_at=report.started_at, finished_at=report.finished_at)
            return sign(key, statement_for(predicate, report.scope_id, report.spec_digest))

        builders.append(build)
    return builders


def deletion_builder(key: Ed25519PrivateKey, chain: Chain, *, scope_id: str, spec_digest: str,
                     grade: str, method: str, digests: Sequence[str],
                     deleted_at: datetime) -> Builder:
    def build(seq: int, prev: str | None) -> tuple[bytes, bytes]:
        predicate = DeletionPredicate(
            case_id=chain.case_id, agent_id=chain.agent_id, seq=seq, prev=prev,
            agent_build_digest=chain.build_digest, scope_id=scope_id,
            grade=grade,  # type: ignore[arg-type]  # checked by the model (strict Literal)
            method=method, deleted_digests=list(digests), deleted_at=deleted_at)
        return sign(key, statement_for(predicate, scope_id, spec_digest))

    return build
