"""The notice of a session, queued in the outbox (sent by the notification job) for the
case's recipients in the roles of its participants: the hearing rule gives three days'
notice, and the session records when each participant was told."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from deletion_audit.models import Case, OnSiteSession, OutboxMessage, Recipient
from deletion_audit.notifications.service import message_id
from deletion_audit.notifications.templates import beijing


def announce(session: Session, *, sess: OnSiteSession, roles: set[str], now: datetime
             ) -> list[OutboxMessage]:
    case = session.get_one(Case, sess.case_id)
    subject = (f"【现场勘验通知】案件 {case.case_number}：{beijing(sess.planned_at)} / "
               f"On-site verification in case {case.case_number}")
    body = (f"案件 {case.case_number}（{case.title}）定于 {beijing(sess.planned_at)} 在"
            f"{sess.place}进行现场勘验，您是参加人之一。勘验结束后，请阅读记录摘要并用您的"
            f"密钥签署（deletion-audit session sign {case.id}/{sess.id}）。\n\n——\n\n"
            f"An on-site verification of case {case.case_number} is planned at "
            f"{sess.planned_at.isoformat()} at {sess.place}; you take part. Afterwards, read "
            f"the record's summary and co-sign it with your key "
            f"(deletion-audit session sign {case.id}/{sess.id}).\n")
    about = f"session:{sess.id}:opened"
    rows = []
    for recipient in session.execute(select(Recipient).where(
            Recipient.case_id == sess.case_id, Recipient.step == 0,
            Recipient.role.in_(sorted(roles))).order_by(Recipient.id)).scalars():
        row = OutboxMessage(
            message_id=message_id(about, 0, recipient.id), case_id=sess.case_id,
            recipient_id=recipient.id, channel=recipient.channel, subject=subject, body=body,
            payload={"type": "session.opened", "step": 0,
                     "data": {"caseId": sess.case_id, "sessionId": sess.id,
                              "plannedAt": sess.planned_at.isoformat()}},
            created_at=now, attempts=0, next_attempt_at=now)
        session.add(row)
        rows.append(row)
    session.flush()
    return rows
