"""A judgment: a finding the service makes on its own clock, as an in-toto statement with
a :class:`~deletion_audit.core.predicates.JudgmentPredicate` signed with the service key,
logged (restricted: it names agents and obligations) and stored with its envelope — and,
in the same transaction, the notifications it causes and its escalation steps."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from deletion_audit.cases.service import log_event
from deletion_audit.core import dsse
from deletion_audit.core.canonical import canonical_json
from deletion_audit.core.predicates import JudgmentPredicate, format_timestamp
from deletion_audit.core.statements import Statement, Subject, statement_bytes, statement_id
from deletion_audit.models import Case, Escalation, Finding, Judgment
from deletion_audit.notifications import service as notifications
from deletion_audit.notifications.templates import beijing


def already_judged(session: Session, episode: str) -> bool:
    return session.execute(select(Judgment.id).where(
        Judgment.episode == episode)).first() is not None


def sign_judgment(predicate: JudgmentPredicate, *, episode: str,
                  service_key: Ed25519PrivateKey) -> tuple[bytes, str]:
    """The DSSE envelope of the judgment's statement and the statement's id."""
    body = predicate.to_predicate()
    subject = Subject(name=f"judgment:{episode}",
                      digest={"sha256": hashlib.sha256(canonical_json(body)).hexdigest()})
    payload = statement_bytes(Statement(subject=(subject,),
                                        predicate_type=predicate.PREDICATE_TYPE,
                                        predicate=body))
    envelope = dsse.sign(payload, dsse.IN_TOTO_PAYLOAD_TYPE, service_key)
    return envelope.to_json(), statement_id(payload)


def judge(
    session: Session, *, case: Case, finding: Finding, episode: str, since: datetime,
    detail: str, context: Mapping[str, object], agent_id: int | None = None,
    agent_public_id: str | None = None, obligation_id: int | None = None,
    service_key: Ed25519PrivateKey, now: datetime,
) -> Judgment:
    """Sign, log and store one judgment, queue its step-0 messages and schedule its later
    steps. The caller checks :func:`already_judged` first; the episode's unique
    constraint stops a concurrent instance that judged it too (its transaction fails)."""
    predicate = JudgmentPredicate(
        case_id=str(case.id), finding=finding.value, agent_id=agent_public_id,
        obligation_id=str(obligation_id) if obligation_id is not None else None,
        detail=detail, judged_at=now)
    envelope, sid = sign_judgment(predicate, episode=episode, service_key=service_key)
    leaf = log_event(session, "judgment", {
        "caseId": case.id, "finding": finding.value, "episode": episode,
        "agentId": agent_public_id, "obligationId": obligation_id,
        "since": format_timestamp(since), "detail": detail, "statementId": sid,
        "envelopeSha256": hashlib.sha256(envelope).hexdigest(),
    }, now=now)
    row = Judgment(case_id=case.id, finding=finding.value, episode=episode,
                   agent_id=agent_id, obligation_id=obligation_id, since=since,
                   judged_at=now, statement_id=sid, envelope=envelope, leaf_hash=leaf)
    session.add(row)
    session.flush()
    full_context = {**context, "since": beijing(since), "judged_at": beijing(now),
                    "statement_id": sid}
    data = {"caseId": case.id, "finding": finding.value, "statementId": sid,
            "since": format_timestamp(since), "judgedAt": format_timestamp(now),
            "agentId": agent_public_id, "obligationId": obligation_id}
    notifications.enqueue(session, case=case, finding=finding.value, about=episode, step=0,
                          context=full_context, data=data, now=now)
    for step, delay in sorted(notifications.escalation_delays(session,
                                                              case_id=case.id).items()):
        session.add(Escalation(judgment_id=row.id, step=step, due_at=now + delay))
    session.flush()
    return row


def message_context(judgment: Judgment, context: Mapping[str, object]) -> dict[str, object]:
    """What a later step's message says: the judgment's own facts."""
    return {**context, "since": beijing(judgment.since), "judged_at": beijing(judgment.judged_at),
            "statement_id": judgment.statement_id}
