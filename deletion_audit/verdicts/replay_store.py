"""The replay's throwaway SQLite database, and the manifest's items loaded into it.

The database is the project's schema (the models) with changes that leave every query
the same: ``manifest_items`` lives in a second database file ATTACHed to the first (SQLite
resolves an unqualified table name in the attached databases when the main one has no
such table), so a process of its own can load the items while the events are replayed;
it is stored clustered by ``(manifest_id, digest)`` (``WITHOUT ROWID``: one B-tree, filled
in file order, which is digest order, where the model's table has three) and a loader fills
only the columns the verdict reads (kind, subject, source: not the ordinal, size or pdq,
left NULL); and the secondary index of ``deleted_items`` is built after the statements are
recorded, one sort instead of a million random B-tree inserts.

The items come from the registered file, streamed. The import (evidence/manifests.py)
checks every line, hashes each entry three times, builds the tree nodes and the filter; a
replay needs only the rows the verdict reads. The file's SHA-256 must be the one the
manifest event logged — which the examiner signed together with the root — so checking it
proves the rows are the registered ones; each line is only matched against the canonical
entry expression (the one the import's reader uses). Bounded memory at any size.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import marshal
import multiprocessing
import subprocess
import sys
from binascii import unhexlify
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy import Column, Engine, MetaData, PrimaryKeyConstraint, Table, create_engine, event
from sqlalchemy.orm import Session

from deletion_audit.core.manifest import (
    BatchFields,
    ManifestError,
    ManifestReader,
    parse_header,
)
from deletion_audit.core.manifest._format import BLOCK, ENTRY_LINE, MAX_LINE
from deletion_audit.db import make_engine
from deletion_audit.evidence import bulk
from deletion_audit.models import Base, DeletedItem, ManifestItem
from deletion_audit.models.manifests import KIND_CODES

BATCH = 50_000
# Below this many items a second process costs more than it saves.
PARALLEL_FROM = 100_000
ITEMS_SCHEMA = "items"
# Durability buys nothing in a database thrown away after one verdict. The page cache is
# a bound (KiB when negative), not an allocation: memory stays bounded at any case size.
# SQLite's sorter takes as much again for the verdict's GROUP BYs, and the items loader
# runs beside: 128 MiB keeps the verify of a 26-million-item case under 1 GiB in all.
# Large pages (set before the first table) make bulk inserts about a fifth cheaper.
PRAGMAS = ("PRAGMA page_size=65536", "PRAGMA journal_mode=OFF", "PRAGMA synchronous=OFF",
           "PRAGMA foreign_keys=OFF", "PRAGMA cache_size=-131072")
_KINDS = {name.encode("ascii"): code for name, code in KIND_CODES.items()}
def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


_ITEMS = _table(ManifestItem)
DELETED = _table(DeletedItem).name
_DEFERRED = tuple(_table(DeletedItem).indexes)


def _clustered(model: Table, key: tuple[str, str]) -> Table:
    """``model``'s table for the replay: its columns (nullable beyond ``key``), ``key`` the
    primary key of a WITHOUT ROWID table — one B-tree, where a rowid table with a composite
    key has two (the rows, and the key's index) besides its other indexes."""
    return Table(model.name, MetaData(),
                 *(Column(c.name, c.type, nullable=c.name not in key) for c in model.columns),
                 PrimaryKeyConstraint(*key), sqlite_with_rowid=False)


_REPLAY_ITEMS = _clustered(_ITEMS, ("manifest_id", "digest"))
# The deleted items, recorded a statement at a time with ascending ids and sorted digests:
# every insert appends to the one B-tree.
_REPLAY_DELETED = _clustered(_table(DeletedItem), ("attestation_id", "digest"))
# What the verdict reads of an item (verdicts/queries.py): its manifest, digest, kind,
# subject and source.
_LOADED_COLUMNS = ("manifest_id", "digest", "kind", "subject", "source")
_INSERT_LOADED = (f"INSERT INTO {_ITEMS.name} ({', '.join(_LOADED_COLUMNS)}) "  # noqa: S608 - fixed names
                  f"VALUES ({', '.join('?' * len(_LOADED_COLUMNS))})")
LoadedRow = tuple[int, bytes, int, bytes | None, str | None]


class ManifestFileError(ValueError):
    """The manifest file is not the one the log registered, or not a manifest at all."""


@dataclass(frozen=True)
class LoadedManifest:
    header: dict[str, object]
    count: int
    sha256: str


def _pragmas(dbapi_conn: Any, *extra: str) -> None:
    cur = dbapi_conn.cursor()
    for pragma in (*PRAGMAS, *extra):
        cur.execute(pragma)
    cur.close()


def _items_engine(path: Path, *extra: str) -> Engine:
    engine = create_engine(f"sqlite:///{path}")
    event.listen(engine, "connect", lambda conn, _record: _pragmas(conn, *extra))
    return engine


def create_items_database(path: Path) -> None:
    """An empty items database at ``path``, for a replay to attach and a loader to fill."""
    items_engine = _items_engine(path)
    _REPLAY_ITEMS.create(items_engine)
    items_engine.dispose()


def replay_engine(directory: Path, items: Path | None = None) -> Engine:
    """A fresh database in ``directory``, its items database attached: a fresh one in
    ``directory`` too, or ``items`` (made by :func:`create_items_database`) when another
    process loads it."""
    if items is None:
        items = directory / "items.sqlite3"
        create_items_database(items)
    engine = make_engine(f"sqlite:///{directory / 'case.sqlite3'}")

    @event.listens_for(engine, "connect", insert=True)
    def _page_size(dbapi_conn: Any, _record: Any) -> None:
        # Before make_engine's own listener: switching to WAL creates the file, and the
        # page size is fixed from then on.
        dbapi_conn.execute(PRAGMAS[0])

    @event.listens_for(engine, "connect")
    def _attach(dbapi_conn: Any, _record: Any) -> None:
        # make_engine's own listener ran first (WAL, foreign keys): these override it.
        _pragmas(dbapi_conn)
        dbapi_conn.execute(f"ATTACH DATABASE ? AS {ITEMS_SCHEMA}", (str(items),))

    Base.metadata.create_all(engine, tables=[t for t in Base.metadata.sorted_tables
                                             if t is not _ITEMS and t.name != DELETED])
    # Without its secondary index: create_deferred_indexes builds it after the statements.
    _REPLAY_DELETED.create(engine)
    return engine


def create_deferred_indexes(session: Session) -> None:
    for index in _DEFERRED:
        index.create(session.connection())


# The verdict's GROUP BYs sort every item. SQLite's sorter keeps up to the main database's
# page cache in memory before it writes a sorted run out (and never less than 250 pages):
# with the replay's 128 MiB cache a 1,000,000-item sort is one run sorted in memory, with
# 16 MiB it is a few runs merged, which costs less (the people GROUP BY 1.14 → 0.80 CPU s;
# the runs are temporary files the OS keeps in its cache). Smaller runs are also less memory.
# Runs are what the sorter's helper threads work on: with two, one run is sorted while the
# next is read (the verdict runs after the items' loader is done, so the other core is
# free: 2.3 → 2.1 s wall for 0.3 CPU s more at 1,000,000 items).
VERDICT_PRAGMAS = ("PRAGMA main.cache_size=-16384", "PRAGMA threads=2")


def prepare_verdict(session: Session) -> None:
    """Once the events are recorded and the items loaded: the replay database's settings
    for the verdict's queries (the queries themselves are the service's)."""
    conn = session.connection()
    for pragma in VERDICT_PRAGMAS:
        conn.exec_driver_sql(pragma)


def load_items(session: Session, *, path: Path, manifest_id: int) -> LoadedManifest:
    """Insert the file's entries as ``manifest_items`` rows of ``manifest_id``; return its
    header, entry count and SHA-256 for the caller to hold against the logged ones."""
    hasher = hashlib.sha256()
    match = ENTRY_LINE.fullmatch
    kinds = _KINDS
    rows: list[bulk.ItemRow] = []
    ordinal = 0
    prev = b""
    header = None
    tail = b""
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise ManifestFileError(f"{path}: cannot read the manifest file: {exc}") from None
    with stream:
        while block := stream.read(BLOCK):
            hasher.update(block)
            lines = (tail + block).split(b"\n") if tail else block.split(b"\n")
            tail = lines.pop()
            if len(tail) > MAX_LINE:
                raise ManifestFileError(f"{path}: line {ordinal + 2}: longer than {MAX_LINE} "
                                        "bytes")
            if header is None and lines:
                try:
                    header = parse_header(lines.pop(0))
                except ManifestError as exc:
                    raise ManifestFileError(f"{path}: {exc}") from None
            for raw in lines:
                m = match(raw)
                if m is None:
                    raise ManifestFileError(f"{path}: line {ordinal + 2}: not a canonical "
                                            "manifest entry")
                digest, kind, pdq, size, source, subject = m.groups()
                if digest <= prev:
                    raise ManifestFileError(f"{path}: line {ordinal + 2}: entries are not "
                                            "strictly ascending by digest")
                prev = digest
                rows.append((
                    manifest_id, ordinal, unhexlify(digest), kinds[kind], int(size),
                    None if subject is None else unhexlify(subject),
                    None if source is None else source.decode("ascii"),
                    None if pdq is None else unhexlify(pdq),
                ))
                ordinal += 1
                if len(rows) >= BATCH:
                    bulk.insert_items(session, rows)
                    rows = []
    if tail:
        raise ManifestFileError(f"{path}: truncated: the last line has no newline")
    if header is None:
        raise ManifestFileError(f"{path}: empty file: no header line")
    bulk.insert_items(session, rows)
    return LoadedManifest(header=header.to_json_dict(), count=ordinal,
                          sha256=hasher.hexdigest())


def load_read_items(reader: ManifestReader, *, items: Path, manifest_id: int,
                    beside: bool = False) -> None:
    """Insert the entries ``reader`` yields as ``manifest_items`` rows of ``manifest_id`` in
    the items database at ``items``: the caller reads and checks the manifest (root, count,
    signature) on the same pass, and gets its summary from ``reader``.

    ``beside``: the inserts run in a forked process of their own, sent one batch at a
    time, while this one checks and hashes the lines that follow (a verify's worker on a
    large manifest: SQLite's inserts are as much work as the checking, and the replay's
    process leaves a core idle while it waits for both).

    Each batch is committed on its own: this runs beside a replay that attaches the
    database whenever it starts, and a write transaction held across the whole file would
    lock it out once the pages spill to disk. The replay reads the rows only after this
    returns (or the rows do not count: an error is all it gets)."""
    with (_ForkedLoader(items, manifest_id) if beside else _Loader(items, manifest_id)) as load:
        for found in reader.field_batches():
            load(found)


def _insert_loaded(conn: Any, rows: list[LoadedRow]) -> None:
    """One batch of item rows, in a transaction of its own (see :func:`load_read_items`)."""
    with conn:
        conn.executemany(_INSERT_LOADED, rows)


class _Loader:
    """Entries inserted as item rows here, a batch at a time, through one connection to the
    items database."""

    def __init__(self, items: Path, manifest_id: int, *, at_least: int | None = None) -> None:
        """``at_least``: rows to gather before an insert (:data:`BATCH` by default; each
        insert at most that many)."""
        # Every insert appends (digests ascend): a small page cache does, and this process
        # runs beside the replay's, whose memory it adds to.
        self._engine = _items_engine(items, "PRAGMA cache_size=-65536")
        self._conn = self._engine.connect()
        self._manifest_id = manifest_id
        self._at_least = BATCH if at_least is None else at_least
        self._rows: list[LoadedRow] = []

    def __enter__(self) -> _Loader:
        return self

    def __call__(self, found: list[BatchFields]) -> None:
        kinds, manifest_id, rows = _KINDS, self._manifest_id, self._rows
        rows += [(manifest_id, unhexlify(digest), kinds[kind],
                  unhexlify(subject) if subject else None,
                  source.decode("ascii") if source else None)
                 for digest, kind, _pdq, _size, source, subject in found]
        while rows and len(rows) >= self._at_least:
            self._insert(rows[:BATCH])
            del rows[:BATCH]

    def _insert(self, rows: list[LoadedRow]) -> None:
        _insert_loaded(self._conn.connection.driver_connection, rows)

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            if exc_type is None:
                self._insert(self._rows)
        finally:
            self._conn.close()
            self._engine.dispose()


def _load_sent(items: Path, manifest_id: int, batches: Connection,
               answer: Connection) -> None:
    """A forked loader's work: insert the entries of each batch it receives until an empty
    message, then answer ``None``, or why it failed."""
    try:
        # What each message brings is inserted at once: the sender blocks on the pipe while
        # an insert runs, and short ones keep both processes going (1,000,000 entries: the
        # pass took 7.6 s with inserts of 50,000 rows, 5.4 s this way).
        with _Loader(items, manifest_id, at_least=1) as load:
            while data := batches.recv_bytes():
                load(marshal.loads(data))  # noqa: S302 - from our own parent process
    except Exception as exc:  # any failure is reported to the sender
        answer.send(f"{type(exc).__name__}: {exc}")
        return
    answer.send(None)


class _ForkedLoader:
    """Entries sent, a batch at a time, to a forked process that inserts them
    (:func:`_load_sent`); the pipe's buffer bounds what is in flight, so memory stays a
    batch or two."""

    def __init__(self, items: Path, manifest_id: int) -> None:
        # fork: the child needs no re-import, and the verifier's worker has no threads.
        context = multiprocessing.get_context("fork")
        receive, self._batches = context.Pipe(duplex=False)
        self._answer, send = context.Pipe(duplex=False)
        self._process = context.Process(target=_load_sent,
                                        args=(items, manifest_id, receive, send),
                                        daemon=True)
        self._process.start()
        receive.close()
        send.close()

    def __enter__(self) -> _ForkedLoader:
        return self

    def __call__(self, found: list[BatchFields]) -> None:
        try:
            # marshal, not pickle: lists of tuples of bytes, to our own forked child, at
            # half pickle's cost to write.
            self._batches.send_bytes(marshal.dumps(found))
        except OSError:  # the loader died (its answer says why, if it could give one)
            self._failed()

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            if exc_type is None:
                self._batches.send_bytes(b"")  # the end
                if (why := self._answer.recv()) is not None:
                    self._failed(why)
        except ItemsLoadError:
            raise
        except (OSError, EOFError):
            self._failed()
        finally:
            if self._process.is_alive() and exc_type is not None:
                self._process.kill()
            self._process.join()
            self._batches.close()
            self._answer.close()

    def _failed(self, why: str | None = None) -> NoReturn:
        if why is None:
            with contextlib.suppress(OSError, EOFError):
                why = self._answer.recv() if self._answer.poll(10) else None
        self._process.kill()
        raise ItemsLoadError(f"loading the replay's items failed: {why or 'the loader died'}")


class ItemsLoadError(OSError):
    """The items could not be written (a full disk, a killed loader): not the manifest's
    fault, but nothing can be re-derived without them."""


def _load_in_child(path: Path, items: Path, manifest_id: int) -> dict[str, Any]:
    """The child process's work: load the items database, say what was loaded."""
    engine = _items_engine(items)
    try:
        with Session(engine) as session, session.begin():
            loaded = load_items(session, path=path, manifest_id=manifest_id)
    except ManifestFileError as exc:
        return {"error": str(exc)}
    finally:
        engine.dispose()
    return {"header": loaded.header, "count": loaded.count, "sha256": loaded.sha256}


class ItemsLoad:
    """The manifest's items being loaded: by a child process from the start of the replay
    (large manifests), or in the replay's own session when asked for (small ones).

    The child is this module run by the same interpreter (not multiprocessing: a spawned
    child would re-import the caller's main script, a forked one could inherit a threaded
    server's held locks)."""

    def __init__(self, directory: Path, path: Path | None, manifest_id: int | None,
                 count: int) -> None:
        self.path, self.manifest_id = path, manifest_id
        self._process: subprocess.Popen[bytes] | None = None
        if path is not None and manifest_id is not None and count >= PARALLEL_FROM:
            self._process = subprocess.Popen(  # noqa: S603 - our own module, our arguments
                [sys.executable, "-m", __name__, str(path), str(directory / "items.sqlite3"),
                 str(manifest_id)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def result(self, session: Session, path: Path, manifest_id: int) -> LoadedManifest:
        """The loaded manifest; ManifestFileError if the file is not a manifest."""
        if self._process is None:
            return load_items(session, path=path, manifest_id=manifest_id)
        if (path, manifest_id) != (self.path, self.manifest_id):
            raise RuntimeError(f"the items of manifest {self.manifest_id} are being loaded, "
                               f"not those of {manifest_id}")
        out, err = self._process.communicate()
        code, self._process = self._process.returncode, None
        try:
            answer = json.loads(out)
        except ValueError:
            last = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise ManifestFileError(f"{path}: loading the items failed (exit code {code}): "
                                    f"{last[0]}") from None
        if "error" in answer:
            raise ManifestFileError(str(answer["error"]))
        return LoadedManifest(header=answer["header"], count=answer["count"],
                              sha256=answer["sha256"])

    def cancel(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.communicate()
            self._process = None


class ItemsLoaded(ItemsLoad):
    """The manifest's items loaded by someone else into the database at ``items`` (made by
    :func:`create_items_database`): a bundle's verifier does it while it checks the
    manifest file, one pass for both. ``wait`` returns what was loaded once it is, or
    raises ManifestFileError; the replay holds it against the logged manifest as always."""

    def __init__(self, items: Path, manifest_id: int,
                 wait: Callable[[], LoadedManifest]) -> None:
        super().__init__(items.parent, None, None, 0)
        self.items, self.loaded_id, self._wait = items, manifest_id, wait

    def result(self, session: Session, path: Path, manifest_id: int) -> LoadedManifest:
        if manifest_id != self.loaded_id:
            raise ManifestFileError(f"{path}: the items of manifest {self.loaded_id} were "
                                    f"loaded, but manifest {manifest_id} is the active one")
        return self._wait()

    def cancel(self) -> None:
        """The loader belongs to the caller, which waits for it."""


if __name__ == "__main__":
    _manifest, _items, _manifest_id = sys.argv[1:4]
    sys.stdout.write(json.dumps(_load_in_child(Path(_manifest), Path(_items),
                                               int(_manifest_id))))
