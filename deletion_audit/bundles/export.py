"""Export a case as a bundle: a zip written straight to a stream, in bounded memory.

Every event the bundle carries is covered by its one checkpoint (events past it are left
out), and each comes with its inclusion proof to it. The zip is written with data
descriptors (the output need not be seekable) and zip64 records, so a 26-million-item
manifest streams from the database to the client without a second copy.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from deletion_audit.bundles import layout, sessions
from deletion_audit.bundles.layout import BundleIndex, EventLine, IndexEntry, Tier
from deletion_audit.bundles.rederive import CaseEvent, events_of_case, write_manifest_file
from deletion_audit.core import dsse, keys, merkle
from deletion_audit.core.b64 import b64encode
from deletion_audit.core.canonical import canonical_json
from deletion_audit.core.leaves import Disclosure, disclosure_of
from deletion_audit.core.predicates import format_timestamp
from deletion_audit.core.tlog_proof import TlogProof
from deletion_audit.errors import BadRequest, Conflict, NotFound
from deletion_audit.log.identity import get_identity
from deletion_audit.log.service import latest_checkpoint, node_reader
from deletion_audit.models import (
    Agent,
    Attestation,
    Case,
    Event,
    Judgment,
    LogCheckpoint,
    LogLeaf,
    Manifest,
    Refusal,
    Review,
    Verdict,
)
from deletion_audit.verdicts.summaries import rebuild_envelope

# Events per database round trip (rows and proof nodes).
_BATCH = 500
# A consistency proof from each of the log's latest checkpoints (about 1 KiB each), so a
# checkpoint anyone kept in that span anchors the bundle; an older one is asked for by size.
CONSISTENCY_CHECKPOINTS = 10_000
KEY_EVENTS = ("key-registration", "key-revocation")


class _Member:
    """A zip member being written, hashed as it goes (the index lists its digest)."""

    def __init__(self, archive: zipfile.ZipFile, path: str) -> None:
        self.path = path
        self._fh = archive.open(path, "w", force_zip64=True)
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._fh.write(data)
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    def close(self) -> IndexEntry:
        self._fh.close()
        return IndexEntry(path=self.path, sha256=self._hash.hexdigest(), size=self.size)


class _Bundle:
    def __init__(self, out: IO[bytes]) -> None:
        self.archive = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED,
                                       allowZip64=True)
        self.files: list[IndexEntry] = []

    def member(self, path: str) -> _Member:
        return _Member(self.archive, path)

    def done(self, member: _Member) -> None:
        self.files.append(member.close())

    def add(self, path: str, data: bytes) -> None:
        member = self.member(path)
        member.write(data)
        self.done(member)


@dataclass(frozen=True)
class ExportRequest:
    case_id: int
    tier: Tier
    service_key: Ed25519PrivateKey
    now: datetime
    consistent_with: tuple[int, ...] = ()
    """Tree sizes of checkpoints the recipient kept, beyond the latest the bundle covers
    by default (:data:`CONSISTENCY_CHECKPOINTS`)."""


def check_exportable(session: Session, *, case_id: int) -> LogCheckpoint:
    """What must hold before a bundle starts streaming: the case and a checkpoint exist."""
    if session.get(Case, case_id) is None:
        raise NotFound(f"no case {case_id}")
    checkpoint = latest_checkpoint(session)
    if checkpoint is None:
        raise Conflict("the log has no signed checkpoint yet: integrate the log first")
    return checkpoint


def write_bundle(session: Session, request: ExportRequest, out: IO[bytes]) -> BundleIndex:
    """Write the case's bundle of ``request.tier`` to ``out`` and return its index."""
    checkpoint = check_exportable(session, case_id=request.case_id)
    case = session.get_one(Case, request.case_id)
    identity = get_identity(session)
    if identity is None:
        raise Conflict("the database has no log identity")
    if keys.raw_public(request.service_key.public_key()) != identity.service_public_key:
        raise Conflict("the service key given is not this log's service key")
    size = checkpoint.size
    bundle = _Bundle(out)
    events = [e for e in events_of_case(session, request.case_id) if e.index < size]
    bundle.add(layout.CHECKPOINT, checkpoint.note.encode())
    _write_consistency(session, bundle, size, request.consistent_with)
    member = bundle.member(layout.EVENTS)
    rows = _write_events(session, member, [e.index for e in events], size, request.tier)
    bundle.done(member)
    key_ids = _key_ids(session, request.case_id, identity.log_public_key,
                       identity.service_public_key)
    # People who signed statements of the case name their key in the event.
    key_ids.update(str(e.body["keyId"]) for e in events
                   if e.type in layout.ENVELOPE_EVENTS and e.body.get("keyId"))
    # Participants who co-signed a session record: their keys' registrations.
    key_ids.update(sessions.signer_key_ids((e.type, e.body) for e in events))
    member = bundle.member(layout.KEYS)
    _write_events(session, member, _key_event_indices(session, key_ids, size), size,
                  Tier.PUBLIC)
    bundle.done(member)
    if request.tier is Tier.COURT:
        _write_envelopes(session, bundle, request.case_id, events)
        _write_judgments(session, bundle, request.case_id, events)
    _write_manifest(session, bundle, request.case_id, size, request.tier)
    _write_verdict(session, bundle, request.case_id, rows, checkpoint)
    for event in events:
        if event.type == "summary":
            envelope = rebuild_envelope(session, body=event.body,
                                        service_key=request.service_key)
            bundle.add(layout.summary_path(layout.sha256_hex(envelope)), envelope)
    sessions.write_sessions(session, case_id=request.case_id, size=size, tier=request.tier,
                            add=bundle.add)
    index = BundleIndex(
        tier=request.tier, case_id=case.id, case_number=case.case_number,
        origin=identity.origin, log_size=size, exported_at=format_timestamp(request.now),
        files=tuple(bundle.files))
    signed = dsse.sign(index.payload(), layout.INDEX_PAYLOAD_TYPE, request.service_key)
    bundle.add(layout.INDEX, signed.to_json())
    bundle.archive.close()
    return index


def _write_consistency(session: Session, bundle: _Bundle, size: int,
                       requested: Sequence[int]) -> None:
    read = node_reader(session)
    for first in requested:
        if not 1 <= first <= size:
            raise BadRequest(f"no consistency proof from size {first}: the bundle's "
                             f"checkpoint has size {size}")
    latest = session.execute(
        select(LogCheckpoint.size).where(LogCheckpoint.size < size)
        .order_by(LogCheckpoint.size.desc()).limit(CONSISTENCY_CHECKPOINTS)).scalars()
    sizes = sorted(set(latest) | {s for s in requested if s < size})
    member = bundle.member(layout.CONSISTENCY)
    for start in range(0, len(sizes), _BATCH):
        batch = sizes[start:start + _BATCH]
        ranges = {s: merkle.consistency_ranges(s, size) for s in batch}
        cached = _cached_reader(read, [r for rs in ranges.values() for r in rs]
                                + [(0, s) for s in batch])
        for first in batch:
            root = merkle.tree_root(first, cached)
            proof = merkle.hashes_for_ranges(ranges[first], cached)
            member.write(canonical_json({
                "size": first, "root": b64encode(root),
                "proof": [b64encode(h) for h in proof]}) + b"\n")
    bundle.done(member)


def _cached_reader(read: merkle.NodeReader,
                   ranges: Sequence[tuple[int, int]]) -> merkle.NodeReader:
    """One round trip for the nodes of many proofs."""
    wanted = sorted({n for a, b in ranges for n in merkle.range_nodes(a, b)})
    got = dict(read(wanted)) if wanted else {}

    def cached(ids: Sequence[merkle.NodeId]) -> Mapping[merkle.NodeId, bytes]:
        return {i: got[i] for i in ids if i in got}

    return cached


def _write_events(
    session: Session, member: _Member, indices: Sequence[int], size: int, tier: Tier
) -> dict[int, tuple[str, Mapping[str, Any]]]:
    """Write one line per event (index order) and return each event's type and body."""
    read = node_reader(session)
    seen: dict[int, tuple[str, Mapping[str, Any]]] = {}
    for start in range(0, len(indices), _BATCH):
        batch = indices[start:start + _BATCH]
        rows = {idx: (data, event_type, body, salt) for idx, data, event_type, body, salt in
                session.execute(
                    select(LogLeaf.idx, LogLeaf.data, Event.type, Event.body, Event.salt)
                    .join(Event, Event.leaf_hash == LogLeaf.leaf_hash)
                    .where(LogLeaf.idx.in_(batch)))}
        ranges = {i: merkle.inclusion_ranges(i, size) for i in batch}
        cached = _cached_reader(read, [r for rs in ranges.values() for r in rs])
        for idx in batch:
            data, event_type, body, salt = rows[idx]
            opened = (tier is Tier.COURT
                      and disclosure_of(event_type) is Disclosure.RESTRICTED)
            line = EventLine(index=idx, leaf=data,
                             proof=tuple(merkle.hashes_for_ranges(ranges[idx], cached)),
                             body=body if opened else None, salt=salt if opened else None)
            member.write(line.encode())
            seen[idx] = (event_type, body)
    return seen


def _key_ids(session: Session, case_id: int, log_key: bytes, service_key: bytes) -> set[str]:
    ids = {hashlib.sha256(log_key).hexdigest(), hashlib.sha256(service_key).hexdigest()}
    ids.update(session.execute(select(Agent.key_id).where(Agent.case_id == case_id)).scalars())
    ids.update(session.execute(select(Manifest.examiner_key_id).where(
        Manifest.case_id == case_id, Manifest.leaf_hash.is_not(None))).scalars())
    return ids


def _key_event_indices(session: Session, key_ids: set[str], size: int) -> list[int]:
    rows = session.execute(
        select(LogLeaf.idx, Event.body).join(Event, Event.leaf_hash == LogLeaf.leaf_hash)
        .where(Event.type.in_(KEY_EVENTS), LogLeaf.idx < size).order_by(LogLeaf.idx))
    return [int(idx) for idx, body in rows if body.get("keyId") in key_ids]


def _write_judgments(
    session: Session, bundle: _Bundle, case_id: int, events: Sequence[CaseEvent]
) -> None:
    """The envelopes of the service's judgments and review outcomes the events name."""
    wanted = {str(e.body["envelopeSha256"]) for e in events if layout.judges(e.type, e.body)}
    if not wanted:
        return
    for model in (Judgment, Review):
        for envelope in session.execute(select(model.envelope).where(
                model.case_id == case_id, model.envelope.is_not(None))
                .order_by(model.id)).scalars():
            digest = layout.sha256_hex(envelope) if envelope is not None else ""
            if envelope is not None and digest in wanted:
                bundle.add(layout.judgment_path(digest), envelope)
                wanted.discard(digest)
    if wanted:
        raise Conflict(f"{len(wanted)} logged judgment(s) of case {case_id} have no stored "
                       f"envelope (first: {sorted(wanted)[0]})")


def _write_envelopes(
    session: Session, bundle: _Bundle, case_id: int, events: Sequence[CaseEvent]
) -> None:
    wanted = {str(e.body["envelopeSha256"]) for e in events
              if e.type in layout.ENVELOPE_EVENTS and "envelopeSha256" in e.body}
    for model in (Attestation, Refusal):
        envelopes = session.execute(
            select(model.envelope).where(model.case_id == case_id).order_by(model.id)
            .execution_options(yield_per=16)).scalars()
        for envelope in envelopes:
            digest = layout.sha256_hex(envelope)
            if digest in wanted:
                bundle.add(layout.envelope_path(digest), envelope)
                wanted.discard(digest)
    if wanted:
        raise Conflict(f"{len(wanted)} logged statement(s) of case {case_id} have no stored "
                       f"envelope (first: {sorted(wanted)[0]})")


def _write_manifest(
    session: Session, bundle: _Bundle, case_id: int, size: int, tier: Tier
) -> None:
    """The active manifest (its registration covered by the checkpoint): the examiner's
    envelope in both tiers, the file itself in the court tier."""
    row = session.execute(
        select(Manifest).join(LogLeaf, LogLeaf.leaf_hash == Manifest.leaf_hash)
        .where(Manifest.case_id == case_id, Manifest.state == "active", LogLeaf.idx < size)
    ).scalar_one_or_none()
    if row is None:
        return
    bundle.add(layout.MANIFEST_ENVELOPE,
               json.dumps(row.envelope, indent=2, ensure_ascii=False).encode() + b"\n")
    if tier is Tier.COURT:
        member = bundle.member(layout.MANIFEST)
        write_manifest_file(session, row.id, member)
        bundle.done(member)


def _write_verdict(
    session: Session, bundle: _Bundle, case_id: int,
    events: Mapping[int, tuple[str, Mapping[str, Any]]], checkpoint: LogCheckpoint,
) -> None:
    """The latest verdict version whose event the bundle carries, with that event's leaf
    and a C2SP tlog-proof of it: the verdict's place in the log in a format any tlog tool
    checks."""
    logged = {str(body.get("envelopeSha256")): idx for idx, (event_type, body)
              in events.items() if event_type == "verdict"}
    rows = session.execute(select(Verdict.envelope).where(Verdict.case_id == case_id)
                           .order_by(Verdict.version.desc())).scalars()
    for envelope in rows:
        index = logged.get(layout.sha256_hex(envelope))
        if index is None:
            continue
        bundle.add(layout.VERDICT, envelope)
        leaf = session.execute(select(LogLeaf.data).where(LogLeaf.idx == index)).scalar_one()
        proof = TlogProof(index=index, checkpoint=checkpoint.note, hashes=tuple(
            merkle.inclusion_proof(index, checkpoint.size, node_reader(session))))
        bundle.add(layout.VERDICT_LEAF, leaf)
        bundle.add(layout.VERDICT_PROOF, proof.text().encode())
        return
