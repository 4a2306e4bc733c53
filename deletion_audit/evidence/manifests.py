"""Registering an evidence manifest: streamed, bounded in memory, atomic to readers.

The envelope is checked first (a registered key of an examiner of the case signed it, and its
statement names this case); then the file is read once, in batches, into a manifest in state
``importing`` that no reader sees, each batch its own short transaction so a long import
never holds SQLite's write lock for seconds. The end of the file must match what was signed
(digest, count, root); one small transaction then makes the manifest ``active``, supersedes
the previous one and logs the registration. Any failure removes every row it wrote.
"""

from __future__ import annotations

import hashlib
import logging
from binascii import unhexlify
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from deletion_audit.core import bloom, dsse, keys, merkle
from deletion_audit.core.errors import FormatError, PredicateError, SignatureError
from deletion_audit.core.manifest import Groups, ManifestError, read_manifest
from deletion_audit.core.predicates import ManifestPredicate, expect_predicate
from deletion_audit.core.statements import parse_statement
from deletion_audit.db import Database
from deletion_audit.errors import Conflict, Forbidden, NotFound, Unprocessable
from deletion_audit.evidence import bulk
from deletion_audit.log.service import append_event
from deletion_audit.models.cases import CaseRole, Membership
from deletion_audit.models.identity import UserKey
from deletion_audit.models.manifests import (
    KIND_CODES,
    Manifest,
    ManifestFilter,
    ManifestItem,
    ManifestNode,
)
from deletion_audit.verdicts.recording import mark_changed

log = logging.getLogger(__name__)

BATCH = 20_000
STORED_LEVEL = 8  # manifest_nodes keeps levels >= 8; lower ones come from 256 item rows
BLOCK_LEAVES = 1 << STORED_LEVEL
KIND_BYTES = {name.encode("ascii"): code for name, code in KIND_CODES.items()}
ABANDONED_AFTER = timedelta(hours=1)

KeyLookup = Callable[[Session, int], Sequence[tuple[str, Ed25519PublicKey]]]


@dataclass(frozen=True)
class Registration:
    manifest_id: int
    count: int
    root: bytes
    leaf_hash: bytes
    supersedes: int | None


@dataclass(frozen=True)
class _Signed:
    predicate: ManifestPredicate
    file_sha256: str
    statement_id: bytes
    key_id: str


def _check_envelope(
    envelope_json: dict[str, Any], *, case_number: str,
    examiner_keys: Sequence[tuple[str, Ed25519PublicKey]],
) -> _Signed:
    try:
        envelope = dsse.Envelope.from_json(envelope_json)
        statement = parse_statement(envelope.payload)
        predicate = expect_predicate(statement, ManifestPredicate)
    except (FormatError, PredicateError) as exc:
        raise Unprocessable(f"the manifest envelope is not valid: {exc}") from None
    if not examiner_keys:
        raise Forbidden("no examiner of this case has a registered signing key")
    try:
        verified = dsse.verify(envelope, [k for _, k in examiner_keys])
    except SignatureError:
        raise Forbidden(
            "the manifest is not signed by a registered key of an examiner of this case"
        ) from None
    if predicate.case_number != case_number:
        raise Unprocessable(
            f"the manifest is for case {predicate.case_number!r}, not {case_number!r}"
        )
    if predicate.examiner_key_id is not None and predicate.examiner_key_id not in (
        verified.key_ids
    ):
        raise Unprocessable("the manifest header names a different examiner key than signed it")
    digests = [s.sha256 for s in statement.subject if s.sha256]
    if len(digests) != 1:
        raise Unprocessable("the manifest statement must have exactly one subject with a sha256")
    return _Signed(
        predicate=predicate, file_sha256=digests[0],
        statement_id=hashlib.sha256(envelope.payload).digest(), key_id=verified.key_ids[0],
    )


def _remove_rows(session: Session, manifest_id: int) -> None:
    session.execute(delete(ManifestItem).where(ManifestItem.manifest_id == manifest_id))
    session.execute(delete(ManifestNode).where(ManifestNode.manifest_id == manifest_id))
    session.execute(delete(ManifestFilter).where(ManifestFilter.manifest_id == manifest_id))
    session.execute(delete(Manifest).where(Manifest.id == manifest_id))


def _perfect_root(hashes: list[bytes]) -> bytes:
    """RFC 6962 root of a power-of-two number of leaf hashes, a level at a time."""
    sha256 = hashlib.sha256
    while len(hashes) > 1:
        hashes = [sha256(b"\x01" + hashes[i] + hashes[i + 1]).digest()
                  for i in range(0, len(hashes), 2)]
    return hashes[0]


class _Importer:
    """One import's streaming state: rows, stored nodes, filter bits, counts.

    Nodes at level >= 8 come from a second frontier over the roots of whole 256-leaf
    blocks, so the per-entry work is appending to lists (the reader has already checked
    and hashed the line).
    """

    def __init__(self, db: Database, manifest_id: int, signed: _Signed, now: datetime) -> None:
        self.db = db
        self.manifest_id = manifest_id
        self.now = now
        self.count = 0
        self.upper = merkle.Frontier()
        self.block: list[bytes] = []
        self.filter = bloom.BloomBuilder(signed.predicate.count, bytes.fromhex(
            signed.predicate.root))
        self.kinds: Counter[bytes] = Counter()
        self.subjects: set[bytes] = set()
        self.items: list[bulk.ItemRow] = []
        self.nodes: list[bulk.NodeRow] = []

    def add(self, fields: Groups, leaf: bytes) -> None:
        digest, kind, pdq, size, source, subject = fields
        self.items.append((
            self.manifest_id, self.count, unhexlify(digest), KIND_BYTES[kind], int(size),
            None if subject is None else unhexlify(subject),
            None if source is None else source.decode("ascii"),
            None if pdq is None else unhexlify(pdq),
        ))
        self.count += 1
        self.kinds[kind] += 1
        if subject is not None:
            self.subjects.add(subject)
        block = self.block
        block.append(leaf)
        if len(block) == BLOCK_LEAVES:
            for level, idx, h in self.upper.append(_perfect_root(block)):
                self.nodes.append((self.manifest_id, level + STORED_LEVEL, idx, h))
            self.block = []
        if len(self.items) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.items:
            return
        self.filter.add(b"".join([row[2] for row in self.items]))
        with self.db.write() as session:
            bulk.insert_items(session, self.items)
            bulk.insert_nodes(session, self.nodes)
            session.execute(update(Manifest).where(Manifest.id == self.manifest_id)
                            .values(touched_at=self.now))
        self.items = []
        self.nodes = []


def register_manifest(
    db: Database,
    *,
    case_id: int,
    case_number: str,
    stream: IO[bytes],
    envelope: dict[str, Any],
    examiner_keys: Sequence[tuple[str, Ed25519PublicKey]],
    registered_by: int | None,
    now: datetime,
    supersede_reason: str | None = None,
) -> Registration:
    """Import and activate a manifest; Unprocessable (422) names the first bad line."""
    signed = _check_envelope(envelope, case_number=case_number, examiner_keys=examiner_keys)
    with db.read() as session:
        previous = _active(session, case_id)
        if previous is not None and not supersede_reason:
            raise Conflict(
                "the case already has an active manifest: give a reason to supersede it",
                manifest_id=previous.id,
            )
        if previous is not None and previous.statement_id == signed.statement_id:
            raise Conflict("this manifest is already registered", manifest_id=previous.id)
    predicate = signed.predicate
    with db.write() as session:
        row = Manifest(
            case_id=case_id, state="importing", case_number=predicate.case_number,
            count=predicate.count, root=bytes.fromhex(predicate.root),
            file_sha256=bytes.fromhex(signed.file_sha256), header={}, envelope=envelope,
            statement_id=signed.statement_id, examiner_key_id=signed.key_id,
            registered_by=registered_by, created_at=now, touched_at=now,
        )
        session.add(row)
        session.flush()
        manifest_id = row.id
    try:
        importer = _Importer(db, manifest_id, signed, now)
        with read_manifest(stream) as reader:
            for fields, leaf in reader.raw_records():
                importer.add(fields, leaf)
            importer.flush()
            summary = reader.summary
        _check_summary(summary, signed)
        with db.write() as session:
            return _activate(
                session, manifest_id=manifest_id, case_id=case_id, importer=importer,
                header=summary.header.to_json_dict(), previous=previous,
                supersede_reason=supersede_reason, now=now,
            )
    except ManifestError as exc:
        _abandon(db, manifest_id)
        raise Unprocessable(str(exc), line=exc.line) from None
    except BaseException:
        _abandon(db, manifest_id)
        raise


def _check_summary(summary: Any, signed: _Signed) -> None:
    predicate = signed.predicate
    if summary.sha256 != signed.file_sha256:
        raise Unprocessable("the file's SHA-256 does not match the signed manifest statement")
    if summary.count != predicate.count:
        raise Unprocessable(
            f"the file has {summary.count} entries, the signed statement says {predicate.count}"
        )
    if summary.root_hex != predicate.root:
        raise Unprocessable("the file's root does not match the signed manifest root")


def _activate(
    session: Session, *, manifest_id: int, case_id: int, importer: _Importer,
    header: dict[str, Any], previous: Manifest | None, supersede_reason: str | None,
    now: datetime,
) -> Registration:
    current = _active(session, case_id, for_update=True)
    if (current.id if current else None) != (previous.id if previous else None):
        raise Conflict("another manifest was registered in this case meanwhile: try again")
    row = session.get(Manifest, manifest_id)
    if row is None or row.state != "importing":
        raise Conflict("the import was cleaned up before it finished: try again")
    for number, chunk in enumerate(importer.filter.chunks()):
        session.add(ManifestFilter(manifest_id=manifest_id, chunk=number, data=chunk))
        session.flush()  # one chunk in flight at a time
    if previous is not None:
        session.execute(update(Manifest).where(Manifest.id == previous.id).values(
            state="superseded", superseded_reason=supersede_reason))
    event = {
        "case": case_id, "manifest": manifest_id, "count": row.count, "root": row.root.hex(),
        "fileSha256": row.file_sha256.hex(), "statementId": row.statement_id.hex(),
        "examinerKeyId": row.examiner_key_id, "supersedes": previous.id if previous else None,
        "reason": supersede_reason,
    }
    appended = append_event(session, event_type="manifest", event=event, now=now)
    mark_changed(session, case_id=case_id, now=now)
    row.state = "active"
    row.header = header
    row.kinds = {kind.decode("ascii"): n for kind, n in importer.kinds.items()}
    row.subjects = len(importer.subjects)
    row.supersedes_id = previous.id if previous else None
    row.leaf_hash = appended.leaf_hash
    row.activated_at = now
    session.flush()
    return Registration(manifest_id=manifest_id, count=row.count, root=row.root,
                        leaf_hash=appended.leaf_hash,
                        supersedes=previous.id if previous else None)


def _abandon(db: Database, manifest_id: int) -> None:
    try:
        with db.write() as session:
            _remove_rows(session, manifest_id)
    except Exception:  # the sweep removes it later; the original error matters more
        log.exception("could not remove the failed import of manifest %s", manifest_id)


def _active(session: Session, case_id: int, *, for_update: bool = False) -> Manifest | None:
    query = select(Manifest).where(Manifest.case_id == case_id, Manifest.state == "active")
    if for_update:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def sweep_abandoned(db: Database, *, now: datetime) -> int:
    """Remove imports that stopped touching their row (a crashed or killed import)."""
    with db.read() as session:
        stale = session.execute(select(Manifest.id).where(
            Manifest.state == "importing", Manifest.touched_at < now - ABANDONED_AFTER,
        )).scalars().all()
    for manifest_id in stale:
        with db.write() as session:
            _remove_rows(session, manifest_id)
    return len(stale)


def filter_size(manifest: Manifest) -> int:
    return bloom.BloomHeader.for_items(manifest.count, manifest.root).size_bytes


def filter_chunks(db: Database, manifest_id: int) -> Iterator[bytes]:
    """The stored filter file, chunk by chunk, each read in its own short transaction (a
    download may be slow; it must not hold a transaction open)."""
    number = 0
    while True:
        with db.read() as session:
            data = session.execute(select(ManifestFilter.data).where(
                ManifestFilter.manifest_id == manifest_id, ManifestFilter.chunk == number,
            )).scalar_one_or_none()
        if data is None:
            return
        yield data
        number += 1


def get_manifest(session: Session, *, case_id: int, manifest_id: int) -> Manifest:
    row = session.get(Manifest, manifest_id)
    if row is None or row.case_id != case_id or row.state == "importing":
        raise NotFound("no such manifest in this case")
    return row


def examiner_keys(session: Session, case_id: int) -> list[tuple[str, Ed25519PublicKey]]:
    """The registered, unrevoked keys of the case's examiners: who may sign its manifest."""
    rows = session.execute(
        select(UserKey.key_id, UserKey.public_key)
        .join(Membership, Membership.user_id == UserKey.user_id)
        .where(Membership.case_id == case_id, Membership.role == CaseRole.EXAMINER,
               UserKey.revoked_at.is_(None))
        .order_by(UserKey.key_id)
    ).all()
    return [(key_id, keys.public_key_from_raw(raw)) for key_id, raw in rows]
