"""A case's verdict re-derived from its logged events alone (DESIGN, Contracts: the verdict).

"Every input of the verdict is an event, logged and bundled, so ``verify`` can rebuild the
case in a temporary SQLite and run the very same verdict code." :func:`events_of_case`
selects those events (the exporter bundles them); :func:`replay_verdict` writes them, in log
order, into the tables the engine reads of a fresh SQLite database — statements through
:func:`~deletion_audit.verdicts.recording.record_statement`, as ingest does, after checking
each envelope's signature with the key its agent registered — and runs
:func:`~deletion_audit.verdicts.engine.compute_report` and
:func:`~deletion_audit.verdicts.service.verdict_predicate`, the functions the service signs
with. Rows keep the ids the events carry, so the report names the same scopes, obligations
and data flows.

What a replay cannot know from the events, it does not need: people, organisations and
tokens (foreign keys are not enforced in the replay database, which holds only the
verdict's inputs), an attestation's row id (internal; rows are numbered in log order).
Each event is checked against what came before it (a binding names a registered agent, an
obligation's change starts from the state the earlier events left, a statement's fields
are those of its signed envelope), so a dropped or altered event either changes the
outcome or stops the replay with a :class:`ReplayError` that names the event.

The replay's parts, by concern: ``replay_events`` (the events, their selection),
``replay_state`` (what earlier events established), ``replay_statements`` (signed
statements), ``replay_facts`` (every other event type's handler), ``replay_sessions``
(on-site sessions), ``replay_store`` (the replay database and the manifest's items).
"""

from __future__ import annotations

import itertools
import logging
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from deletion_audit.verdicts.engine import compute_report
from deletion_audit.verdicts.replay_events import (
    REPLAYED_TYPES,
    ReplayError,
    ReplayEvent,
    case_of,
    event_time,
    events_of_case,
)
from deletion_audit.verdicts.replay_facts import Replayer
from deletion_audit.verdicts.replay_store import (
    ItemsLoad,
    ItemsLoaded,
    create_deferred_indexes,
    prepare_verdict,
    replay_engine,
)
from deletion_audit.verdicts.schemas import Report
from deletion_audit.verdicts.service import verdict_predicate

__all__ = [
    "REPLAYED_TYPES", "ReplayError", "ReplayEvent", "Replayed", "events_of_case", "replay_case",
    "replay_verdict",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Replayed:
    report: Report
    """The full report (its canonical digest is the verdict statement's subject)."""
    predicate: dict[str, Any]
    """The verdict predicate, as the service signs it."""


def _names_a_case(ev: ReplayEvent) -> bool:
    """People's key events are not a case's (a key signs in several cases)."""
    return not (ev.type in ("key-registration", "key-revocation")
                and ev.body.get("subjectType") != "agent")


def _check_order(events: Sequence[ReplayEvent]) -> int:
    """The events' case (one case only), after checking they are in strict log order."""
    case_ids = set()
    last = -1
    for ev in events:
        if ev.index <= last:
            raise ReplayError(f"events are not in log order: index {ev.index} after {last}",
                              at=ev)
        last = ev.index
        if not _names_a_case(ev):
            continue
        case_id = case_of(ev.body)
        if case_id is None:
            raise ReplayError("names no case", at=ev)
        case_ids.add(case_id)
    if len(case_ids) != 1:
        raise ReplayError(f"the events must be of one case, not {sorted(case_ids) or 'none'}")
    return case_ids.pop()


def _verdict_at(
    events: Iterable[ReplayEvent], as_of_size: int, version: int | None,
    as_of: datetime | None,
) -> tuple[int, datetime]:
    """Which version a log size stands for, and its domain time: from the verdict event
    that logged ``asOfLogSize`` (the latest such version), unless both are given."""
    if version is not None and as_of is not None:
        return version, as_of
    found = [ev for ev in events if ev.type == "verdict"
             and ev.body.get("asOfLogSize") == as_of_size
             and (version is None or ev.body.get("version") == version)]
    if not found:
        raise ReplayError(f"no verdict event was computed as of log size {as_of_size}: give "
                          "its version and time")
    chosen = max(found, key=lambda ev: int(ev.body["version"]))
    return (version if version is not None else int(chosen.body["version"]),
            as_of if as_of is not None else event_time(chosen, chosen.body.get("at"), "at"))


def replay_case(
    events: Sequence[ReplayEvent], *, envelopes: Mapping[str, bytes],
    manifest_path: Path | None, as_of_size: int, workdir: Path, version: int | None = None,
    as_of: datetime | None = None, items: ItemsLoaded | None = None,
    verified: Mapping[tuple[str, bytes], bytes | None] | None = None,
) -> Replayed:
    """Rebuild the case from ``events`` with index below ``as_of_size`` and compute its
    verdict; see :func:`replay_verdict`."""
    counted = [ev for ev in events if ev.index < as_of_size]
    case_id = _check_order(events)
    version, as_of = _verdict_at(events, as_of_size, version, as_of)
    directory = Path(tempfile.mkdtemp(prefix="verdict-replay-", dir=workdir))
    engine = replay_engine(directory, items.items if items is not None else None)
    registered = [ev.body for ev in counted if ev.type == "manifest"]
    load = items if items is not None else ItemsLoad(directory, manifest_path, *(
        (registered[-1].get("manifest"), registered[-1].get("count") or 0) if registered
        else (None, 0)))
    try:
        with Session(engine) as session, session.begin():
            marks = [(time.perf_counter(), time.process_time())]
            replayer = Replayer(session=session, case_id=case_id, verified=verified or {})
            for ev in counted:
                replayer.apply(ev, envelopes)
            create_deferred_indexes(session)
            marks.append((time.perf_counter(), time.process_time()))
            replayer.load_manifest(manifest_path, load)
            prepare_verdict(session)
            marks.append((time.perf_counter(), time.process_time()))
            report = compute_report(session, case_id=case_id, now=as_of)
            marks.append((time.perf_counter(), time.process_time()))
            log.debug("verdict replay of case %s (wall/CPU seconds of this process): %d "
                      "events %s, manifest items (waited for) %s, verdict %s", case_id,
                      len(counted), *(f"{b[0] - a[0]:.2f}/{b[1] - a[1]:.2f}"
                                      for a, b in itertools.pairwise(marks)))
        predicate = verdict_predicate(report, version=version, log_size=as_of_size,
                                      now=as_of)
        return Replayed(report=report, predicate=predicate.to_predicate())
    finally:
        load.cancel()
        engine.dispose()
        shutil.rmtree(directory, ignore_errors=True)


def replay_verdict(
    events: Sequence[ReplayEvent], *, envelopes: Mapping[str, bytes],
    manifest_path: Path | None, as_of_size: int, workdir: Path, version: int | None = None,
    as_of: datetime | None = None, items: ItemsLoaded | None = None,
    verified: Mapping[tuple[str, bytes], bytes | None] | None = None,
) -> dict[str, Any]:
    """The verdict predicate of the case as of log size ``as_of_size``, rebuilt from its
    events alone: exactly what the service signed for the same inputs.

    ``envelopes`` maps the lowercase hex SHA-256 of each statement envelope to its bytes
    (a lazy mapping does for a large case: each is read once); ``manifest_path`` is the
    active manifest's JSON Lines file. The verdict's version and domain time come from the
    verdict event logged with ``asOfLogSize == as_of_size`` (it lies beyond that size, so
    include it in ``events``), or from ``version`` and ``as_of`` — e.g. from the signed
    predicate being checked. ``items``: the manifest's items already being loaded from
    ``manifest_path`` by the caller (a bundle's verifier, while it checks the file), instead
    of by the replay. ``verified``: (envelope SHA-256, raw public key) pairs whose signature
    the caller has verified on exactly those bytes — a bundle's verifier checks every
    envelope before the replay — which the replay then does not verify again, each with
    the verified payload if the caller kept it (None: the replay reads the envelope); every
    other envelope's signature is verified here. Raises :class:`ReplayError` naming the
    event that does not fit.
    """
    return replay_case(events, envelopes=envelopes, manifest_path=manifest_path,
                       as_of_size=as_of_size, workdir=workdir, version=version,
                       as_of=as_of, items=items, verified=verified).predicate
