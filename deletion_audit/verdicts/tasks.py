"""The debounced verdict job: a fixed APScheduler job; each case in its own transaction,
so one case's failure neither blocks nor undoes the others. A late or repeated run is
harmless: it does whatever is due at ``now``."""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError

from deletion_audit.clock import Clock
from deletion_audit.db import Database
from deletion_audit.log.identity import LogKeys
from deletion_audit.verdicts import service, summaries

log = logging.getLogger(__name__)


def recompute_verdicts(db: Database, *, keys: LogKeys, clock: Clock) -> list[int]:
    """Recompute every case that is due; return their ids."""
    with db.read() as session:
        due = service.cases_due(session, now=clock.now())
    done = []
    for case_id, mark_ids in due:
        try:
            with db.write() as session:
                # Summaries first: logged before the verdict version they accompany.
                summaries.issue_missing(session, case_id=case_id, service_key=keys.service_key,
                                        now=clock.now())
                service.recompute(session, case_id=case_id, mark_ids=mark_ids,
                                  service_key=keys.service_key, now=clock.now())
        except IntegrityError:
            # Another instance numbered the same version first; its marks stay for the next
            # run, which computes afresh.
            log.info("verdict version taken concurrently", extra={"case_id": case_id})
            continue
        done.append(case_id)
    if done:
        log.info("recomputed verdicts", extra={"cases": done})
    return done
