"""Service-signed, counts-only summaries of scans, for the public tier of bundles.

One per finished scan, issued by the debounced verdict job and logged as a public
``summary`` event carrying the counts and the envelope's SHA-256 — never digests, paths or
locations. The envelope itself is not stored: every input of the statement is fixed once the
scan finished (its parts, its counts, the time logged with the event), and Ed25519 signatures
are deterministic (RFC 8032), so the exporter rebuilds it byte for byte and checks it against
the logged SHA-256.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from deletion_audit.cases.service import log_event
from deletion_audit.core import dsse
from deletion_audit.core.predicates import SummaryPredicate, format_timestamp
from deletion_audit.core.statements import Statement, Subject, statement_bytes, statement_id
from deletion_audit.errors import Conflict
from deletion_audit.models import Agent, Attestation, Event, ScanItem, ScanRecord


@dataclass(frozen=True)
class SignedSummary:
    predicate: SummaryPredicate
    envelope: bytes
    statement_id: str


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def build_summary(
    session: Session, *, scan: ScanRecord, issued_at: datetime, service_key: Ed25519PrivateKey
) -> SignedSummary:
    """The summary statement of ``scan``, signed: the same bytes for the same inputs."""
    agent = session.get_one(Agent, scan.agent_id)
    parts = list(session.execute(
        select(Attestation.statement_id).where(
            Attestation.agent_id == scan.agent_id, Attestation.scan_id == scan.scan_id)
        .order_by(Attestation.part, Attestation.seq)).scalars())
    present = session.execute(select(func.count()).select_from(ScanItem).where(
        ScanItem.scan_pk == scan.id)).scalar_one()
    predicate = SummaryPredicate(
        case_id=str(scan.case_id), scope_id=str(scan.scope_id), agent_id=agent.public_id,
        scan_id=scan.scan_id, statement_ids=parts, challenged=scan.challenge_id is not None,
        objects=scan.objects or 0, items_present=present, finished_at=scan.finished_at,
        issued_at=issued_at)
    # The subject is the scan's last statement: its id is the SHA-256 of its payload.
    subject = Subject(name=f"scan:{agent.public_id}:{scan.scan_id}",
                      digest={"sha256": parts[-1]})
    payload = statement_bytes(Statement(subject=(subject,),
                                        predicate_type=predicate.PREDICATE_TYPE,
                                        predicate=predicate.to_predicate()))
    envelope = dsse.sign(payload, dsse.IN_TOTO_PAYLOAD_TYPE, service_key).to_json()
    return SignedSummary(predicate=predicate, envelope=envelope,
                         statement_id=statement_id(payload))


def _summarised(session: Session, case_id: int) -> set[tuple[str, str]]:
    done: set[tuple[str, str]] = set()
    rows = session.execute(select(Event.body).where(Event.type == "summary"))
    for (body,) in rows:
        if body.get("caseId") == case_id:
            done.add((str(body.get("agentId")), str(body.get("scanId"))))
    return done


def issue_missing(
    session: Session, *, case_id: int, service_key: Ed25519PrivateKey, now: datetime
) -> int:
    """Sign and log a summary for every finished scan of the case that lacks one."""
    done = _summarised(session, case_id)
    scans = session.execute(
        select(ScanRecord, Agent.public_id).join(Agent, Agent.id == ScanRecord.agent_id)
        .where(ScanRecord.case_id == case_id, ScanRecord.finished.is_(True))
        .order_by(ScanRecord.id)).all()
    issued = 0
    for scan, agent_public_id in scans:
        if (agent_public_id, scan.scan_id) in done:
            continue
        # Whole seconds: the logged "at" is the time the statement is rebuilt with.
        at = now.replace(microsecond=0)
        signed = build_summary(session, scan=scan, issued_at=at, service_key=service_key)
        p = signed.predicate
        log_event(session, "summary", {
            "caseId": case_id, "scopeId": scan.scope_id, "agentId": agent_public_id,
            "scanId": scan.scan_id, "parts": len(p.statement_ids),
            "challenged": p.challenged, "objects": p.objects, "itemsPresent": p.items_present,
            "finishedAt": format_timestamp(p.finished_at), "statementId": signed.statement_id,
            "envelopeSha256": hashlib.sha256(signed.envelope).hexdigest(),
        }, now=at)
        issued += 1
    return issued


def rebuild_envelope(
    session: Session, *, body: Mapping[str, Any], service_key: Ed25519PrivateKey
) -> bytes:
    """The envelope a logged summary event names, rebuilt and checked against its SHA-256."""
    scan = session.execute(
        select(ScanRecord).join(Agent, Agent.id == ScanRecord.agent_id)
        .where(Agent.public_id == body["agentId"], ScanRecord.scan_id == body["scanId"])
    ).scalar_one_or_none()
    if scan is None:
        raise Conflict(f"the summary of scan {body['scanId']} names no stored scan")
    signed = build_summary(session, scan=scan, issued_at=_parse_time(body["at"]),
                           service_key=service_key)
    if hashlib.sha256(signed.envelope).hexdigest() != body["envelopeSha256"]:
        raise Conflict(f"the summary of scan {body['scanId']} no longer matches its logged "
                       "digest: the scan's stored records changed")
    return signed.envelope
