"""``/api/v1/cases/{id}/sessions``: on-site verification sessions (现场勘验)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from sqlalchemy.orm import Session

from deletion_audit.cases.access import authorize
from deletion_audit.cases.permissions import Action
from deletion_audit.core import dsse
from deletion_audit.core.b64 import b64decode, b64encode
from deletion_audit.core.errors import FormatError
from deletion_audit.core.predicates import SessionPredicate, expect_predicate
from deletion_audit.core.statements import parse_statement
from deletion_audit.deps import Context, DbRead, DbWrite
from deletion_audit.errors import Unprocessable
from deletion_audit.hosts.schemas import (
    EnrollmentTokenRead,
    IssuedChallengeRead,
    IssuedChallengesRead,
)
from deletion_audit.identity.deps import CurrentUser, bearer
from deletion_audit.models import ChallengeOrigin, OnSiteSession
from deletion_audit.pagination import Page, PageParams, paginate
from deletion_audit.sessions import errors, service
from deletion_audit.sessions import results as session_results
from deletion_audit.sessions.schemas import (
    CoSignatureCreate,
    CoSignatureRead,
    ItemsRead,
    ParticipantRead,
    RecordCreate,
    RecordRead,
    RefusalCreate,
    ResultsRead,
    ScanResultRead,
    ScopeResultRead,
    SessionChallengesCreate,
    SessionCreate,
    SessionRead,
    SessionTokenCreate,
)

router = APIRouter(prefix="/api/v1/cases/{case_id}/sessions", tags=["sessions"])


def session_read(session: Session, row: OnSiteSession, leaf: bytes | None = None
                 ) -> SessionRead:
    signatures = service.signatures_of(session, row.id)
    signed = {s.participant_id: s for s in signatures}
    envelope = service.record_envelope(row, signatures)
    people = []
    for p in service.participants_of(session, row.id):
        days = (row.planned_at - p.notified_at) / timedelta(days=1)
        mine = signed.get(p.id)
        people.append(ParticipantRead(
            user_id=p.user_id, role=p.role, notified_at=p.notified_at,
            notice_days=round(days, 2), short_notice=row.planned_at - p.notified_at
            < service.NOTICE, signed_at=mine.signed_at if mine else None,
            key_id=mine.key_id if mine else None, refused_at=p.refused_at,
            refusal_reason=p.refusal_reason))
    return SessionRead(
        id=row.id, case_id=row.case_id, place=row.place, planned_at=row.planned_at,
        scope_ids=row.scope_ids, sign_off=row.sign_off, state=row.state,  # type: ignore[arg-type]
        outcome=row.outcome,  # type: ignore[arg-type]
        opened_at=row.opened_at, recorded_at=row.recorded_at, record_digest=row.record_digest,
        closed_at=row.closed_at, participants=people,
        envelope=envelope.to_json_dict() if envelope else None,
        leaf_hash=leaf.hex() if leaf else None)


@router.post("", status_code=201, response_model=SessionRead, **bearer(404))
def open_session(case_id: int, body: SessionCreate, caller: CurrentUser, session: DbWrite,
                 ctx: Context) -> SessionRead:
    """Open a session: place, planned time, participants (case members with registered
    keys; their role is their role in the case; when each was told), the scopes to inspect
    and the sign-off rule."""
    access = authorize(session, user_id=caller.user_id, case_id=case_id,
                       action=Action.OPEN_SESSIONS)
    logged = service.open_session(
        session, access=access, place=body.place, planned_at=body.planned_at,
        participants=[service.ParticipantSpec(p.user_id, p.notified_at)
                      for p in body.participants],
        scope_ids=body.scope_ids, sign_off=body.sign_off, now=ctx.clock.now())
    return session_read(session, logged.row, logged.leaf_hash)


@router.get("", response_model=Page[SessionRead], **bearer(400, 404))
def list_sessions(case_id: int, caller: CurrentUser, session: DbRead, page: PageParams
                  ) -> Page[SessionRead]:
    authorize(session, user_id=caller.user_id, case_id=case_id, action=Action.READ_SESSIONS)
    rows, cursor = paginate(session, service.sessions_query(case_id), key=OnSiteSession.id,
                            page=page, list_name="sessions")
    return Page(items=[session_read(session, r) for r in rows], next_cursor=cursor)


@router.get("/{session_id}", response_model=SessionRead, **bearer(404))
def get_session(case_id: int, session_id: int, caller: CurrentUser, session: DbRead
                ) -> SessionRead:
    authorize(session, user_id=caller.user_id, case_id=case_id, action=Action.READ_SESSIONS)
    return session_read(session, service.get_session(session, case_id=case_id,
                                                     session_id=session_id))


@router.post("/{session_id}/enrollment-tokens", status_code=201,
             response_model=EnrollmentTokenRead, **bearer(404, 409))
def issue_session_token(case_id: int, session_id: int, body: SessionTokenCreate,
                        caller: CurrentUser, session: DbWrite, ctx: Context
                        ) -> EnrollmentTokenRead:
    """A one-time token for the examiner's agent, scoped to the session and bound to its
    scopes beside the company's agent. Shown once."""
    access = authorize(session, user_id=caller.user_id, case_id=case_id,
                       action=Action.RUN_SESSIONS)
    sess = service.get_session(session, case_id=case_id, session_id=session_id,
                               for_update=True)
    issued = service.issue_token(
        session, access=access, sess=sess, party_id=body.party_id,
        expires_in=timedelta(hours=body.expires_in_hours),
        verifier_key=ctx.keys.verifier.vkey(), now=ctx.clock.now())
    row = issued.row
    return EnrollmentTokenRead(id=row.id, token=issued.token, expires_at=row.expires_at,
                               case_id=row.case_id, party_id=row.party_id,
                               party_role=row.party_role, scope_ids=row.scope_ids)


@router.post("/{session_id}/challenges", status_code=201, response_model=IssuedChallengesRead,
             **bearer(404, 409))
def issue_session_challenges(case_id: int, session_id: int, body: SessionChallengesCreate,
                             caller: CurrentUser, session: DbWrite, ctx: Context
                             ) -> IssuedChallengesRead:
    """Challenges (origin ``session``) for the examiner's session agent and the company's
    agents bound to the session's scopes."""
    access = authorize(session, user_id=caller.user_id, case_id=case_id,
                       action=Action.RUN_SESSIONS)
    sess = service.get_session(session, case_id=case_id, session_id=session_id,
                               for_update=True)
    issued = service.issue_challenges(session, access=access, sess=sess,
                                      ttl=timedelta(hours=body.ttl_hours), now=ctx.clock.now())
    return IssuedChallengesRead(challenges=[
        IssuedChallengeRead(id=row.id, agent_id=agent.public_id, scope_id=row.scope_id,
                            expires_at=row.expires_at, origin=ChallengeOrigin(row.origin))
        for row, agent in issued])


@router.get("/{session_id}/results", response_model=ResultsRead, **bearer(404))
def get_results(case_id: int, session_id: int, caller: CurrentUser, session: DbRead
                ) -> ResultsRead:
    """What the scans answering the session's challenges found, per scope (counts), and how
    the examiner's scan compares with the company's."""
    authorize(session, user_id=caller.user_id, case_id=case_id, action=Action.READ_SESSIONS)
    sess = service.get_session(session, case_id=case_id, session_id=session_id)
    return ResultsRead(session_id=sess.id, scopes=[ScopeResultRead(
        scope_id=r.scope_id, items_present=len(r.present),
        found_by_examiner_only=r.examiner_only, found_by_company_only=r.company_only,
        scans=[ScanResultRead(
            agent_id=s.agent_id, attested_by=s.attested_by,  # type: ignore[arg-type]
            agent_build_digest=s.build_digest, scan_id=s.scan_id, challenge_id=s.challenge_id,
            coverage=s.coverage, objects=s.objects, items_present=len(s.present),
            finished_at=s.finished_at) for s in r.scans])
        for r in session_results.session_results(session, sess)])


def record_read(row: OnSiteSession, leaf: bytes | None = None) -> RecordRead:
    if row.record is None or row.record_digest is None:
        raise errors.NoRecord(f"session {row.id} has no record yet")
    predicate = expect_predicate(parse_statement(row.record), SessionPredicate)
    return RecordRead(session_id=row.id, payload_type=dsse.IN_TOTO_PAYLOAD_TYPE,
                      payload=b64encode(row.record), digest=row.record_digest,
                      summary_zh=predicate.summary.zh, summary_en=predicate.summary.en,
                      state=row.state, leaf_hash=leaf.hex() if leaf else None)


@router.post("/{session_id}/record", status_code=201, response_model=RecordRead,
             **bearer(404, 409))
def build_record(case_id: int, session_id: int, body: RecordCreate, caller: CurrentUser,
                 session: DbWrite, ctx: Context) -> RecordRead:
    """Build the record from the session's scans, with the examiner's environment check and
    remarks; it can be rebuilt until its first co-signature."""
    access = authorize(session, user_id=caller.user_id, case_id=case_id,
                       action=Action.RUN_SESSIONS)
    sess = service.get_session(session, case_id=case_id, session_id=session_id,
                               for_update=True)
    env = body.environment
    logged = session_results.build_record(
        session, access=access, sess=sess, environment=session_results.EnvironmentInput(
            hostname=env.hostname, machine_id=env.machine_id,
            volume_ids=tuple(env.volume_ids), note=env.note),
        remarks=body.remarks, now=ctx.clock.now())
    return record_read(logged.row, logged.leaf_hash)


@router.get("/{session_id}/record", response_model=RecordRead, **bearer(404, 409))
def get_record(case_id: int, session_id: int, caller: CurrentUser, session: DbRead
               ) -> RecordRead:
    """The exact DSSE payload the participants sign, with its Chinese and English summary
    (which the payload itself carries)."""
    authorize(session, user_id=caller.user_id, case_id=case_id, action=Action.READ_SESSIONS)
    return record_read(service.get_session(session, case_id=case_id, session_id=session_id))


@router.get("/{session_id}/items", response_model=ItemsRead, **bearer(404, 409))
def get_items(case_id: int, session_id: int, caller: CurrentUser, session: DbRead
              ) -> ItemsRead:
    """The court-only attachment: the item lists and the salt that open the record's
    commitment."""
    authorize(session, user_id=caller.user_id, case_id=case_id,
              action=Action.READ_SESSION_ITEMS)
    sess = service.get_session(session, case_id=case_id, session_id=session_id)
    attachment = service.items_attachment(sess)
    return ItemsRead(session_id=sess.id, salt=attachment["salt"], lists=attachment["lists"])


@router.post("/{session_id}/signatures", status_code=201, response_model=CoSignatureRead,
             **bearer(404, 409))
def co_sign(case_id: int, session_id: int, body: CoSignatureCreate, caller: CurrentUser,
            session: DbWrite, ctx: Context) -> CoSignatureRead:
    """A participant's co-signature over the record. Refused: a non-participant
    (``not_participant``), a key not registered to the caller or revoked, a second signature
    by one key (``duplicate_signature``) or one person (``already_signed``), a signature over
    other bytes than the record (``record_changed``, ``invalid_signature``), after closure
    (``session_closed``)."""
    access = authorize(session, user_id=caller.user_id, case_id=case_id,
                       action=Action.SIGN_SESSIONS)
    sess = service.get_session(session, case_id=case_id, session_id=session_id,
                               for_update=True)
    try:
        sig = b64decode(body.sig)
    except FormatError as exc:
        raise Unprocessable(f"sig: {exc}") from None
    logged = service.sign(session, access=access, sess=sess, keyid=body.keyid, sig=sig,
                          payload_sha256=body.payload_sha256, now=ctx.clock.now())
    return CoSignatureRead(session_id=sess.id, key_id=logged.row.key_id,
                           signed_at=logged.row.signed_at, state=sess.state,
                           outcome=sess.outcome, leaf_hash=logged.leaf_hash.hex())


@router.post("/{session_id}/refusals", status_code=201, response_model=SessionRead,
             **bearer(404, 409))
def refuse(case_id: int, session_id: int, body: RefusalCreate, caller: CurrentUser,
           session: DbWrite, ctx: Context) -> SessionRead:
    """A participant refuses to sign, giving reasons: the session ends ``refused``."""
    access = authorize(session, user_id=caller.user_id, case_id=case_id,
                       action=Action.SIGN_SESSIONS)
    sess = service.get_session(session, case_id=case_id, session_id=session_id,
                               for_update=True)
    logged = service.refuse(session, access=access, sess=sess, reason=body.reason,
                            now=ctx.clock.now())
    return session_read(session, sess, logged.leaf_hash)


