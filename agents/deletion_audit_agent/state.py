"""The agent's local state: one SQLite file under ``state_dir``.

It holds what must survive a ``kill -9``: the enrollment, the statement counter, the outbox
(every statement is written here, signed, *before* it is sent, and leaves only on a 201 or
into the dead letters on a permanent refusal), the newest checkpoint seen, the last scan per
scope, the incremental hash cache, deletions about to happen (written ahead, so a crash
between a removal and its note is resolved on restart by looking at the locator) and
deletions not yet attested. The counter and the
outbox row move in one transaction, so a crash never leaves a numbered statement unsent
nor a number used twice: the server's view of the chain has no false gap.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deletion_audit.core.statements import statement_id

STATE_FILE = "state.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY, statement_id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
    scope_id TEXT, envelope BLOB NOT NULL, created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT);
CREATE TABLE IF NOT EXISTS sent (
    seq INTEGER PRIMARY KEY, statement_id TEXT NOT NULL, kind TEXT NOT NULL,
    receipt TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY, statement_id TEXT NOT NULL, kind TEXT NOT NULL,
    envelope BLOB NOT NULL, status INTEGER NOT NULL, code TEXT NOT NULL,
    message TEXT NOT NULL, refused_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS last_scan (
    scope_id TEXT PRIMARY KEY, summary TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hash_cache (
    dev INTEGER NOT NULL, ino INTEGER NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, digest BLOB NOT NULL,
    PRIMARY KEY (dev, ino));
CREATE TABLE IF NOT EXISTS pending_deletions (
    scope_id TEXT NOT NULL, digest TEXT NOT NULL, method TEXT NOT NULL, grade TEXT NOT NULL,
    deleted_at TEXT NOT NULL, PRIMARY KEY (scope_id, digest));
CREATE TABLE IF NOT EXISTS deletion_intents (
    scope_id TEXT NOT NULL, locator TEXT NOT NULL, digest TEXT NOT NULL, method TEXT NOT NULL,
    grade TEXT NOT NULL, noted_at TEXT NOT NULL, PRIMARY KEY (scope_id, locator));
"""


@dataclass(frozen=True)
class Enrollment:
    agent_id: str
    server: str
    key_path: str
    log_key: str
    """The log's C2SP verifier key, checked against the token's fingerprint."""
    case_id: str
    party_role: str | None
    heartbeat_seconds: int


@dataclass(frozen=True)
class OutboxItem:
    seq: int
    statement_id: str
    kind: str
    scope_id: str | None
    envelope: bytes
    attempts: int


@dataclass(frozen=True)
class DeadLetter:
    seq: int
    statement_id: str
    kind: str
    status: int
    code: str
    message: str
    refused_at: str


@dataclass(frozen=True)
class PendingDeletion:
    digest: str
    method: str
    grade: str
    deleted_at: str


@dataclass(frozen=True)
class DeletionIntent:
    """A removal about to be made: if the agent dies before noting its outcome, the next
    start looks at the locator (gone: it was removed; there: it was not)."""

    locator: str
    digest: str
    method: str
    grade: str
    noted_at: str


# A statement builder: given (seq, prev) returns (payload bytes, envelope bytes).
Builder = Callable[[int, str | None], tuple[bytes, bytes]]


class State:
    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.dir = state_dir
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE where a counter
        # moves), so a concurrent `scan` and `run` never hand out the same seq.
        self._db = sqlite3.connect(state_dir / STATE_FILE, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        os.chmod(state_dir / STATE_FILE, 0o600)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- meta --------------------------------------------------------------------------

    def get(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, value: Any) -> None:
        self._db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                         "DO UPDATE SET value = excluded.value", (key, json.dumps(value)))

    def secret(self, key: str) -> bytes:
        """A random local secret, made once (the key of the skipped-path hashes)."""
        with self._tx():
            value = self.get(key)
            if value is None:
                value = os.urandom(32).hex()
                self.put(key, value)
        return bytes.fromhex(value)

    @property
    def enrollment(self) -> Enrollment | None:
        value = self.get("enrollment")
        return None if value is None else Enrollment(**value)

    def save_enrollment(self, enrollment: Enrollment) -> None:
        self.put("enrollment", enrollment.__dict__)

    # -- the chain and the outbox -------------------------------------------------------

    def append(self, kind: str, scope_id: str | None, build: Builder, now: str) -> OutboxItem:
        """Number, build and store one statement in one transaction."""
        with self._tx():
            chain = self.get("chain") or {"next_seq": 0, "prev": None}
            seq, prev = chain["next_seq"], chain["prev"]
            payload, envelope = build(seq, prev)
            sid = statement_id(payload)
            self._db.execute(
                "INSERT INTO outbox (seq, statement_id, kind, scope_id, envelope, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)", (seq, sid, kind, scope_id, envelope, now))
            self.put("chain", {"next_seq": seq + 1, "prev": sid})
        return OutboxItem(seq, sid, kind, scope_id, envelope, 0)

    def outbox(self) -> list[OutboxItem]:
        rows = self._db.execute("SELECT seq, statement_id, kind, scope_id, envelope, attempts "
                                "FROM outbox ORDER BY seq").fetchall()
        return [OutboxItem(*row) for row in rows]

    def mark_sent(self, item: OutboxItem, receipt: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM outbox WHERE seq = ?", (item.seq,))
            db.execute("INSERT OR REPLACE INTO sent (seq, statement_id, kind, receipt) "
                       "VALUES (?, ?, ?, ?)",
                       (item.seq, item.statement_id, item.kind, json.dumps(receipt)))

    def mark_failed_attempt(self, item: OutboxItem, error: str) -> None:
        self._db.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ? "
                         "WHERE seq = ?", (error, item.seq))

    def dead_letter(self, item: OutboxItem, status: int, code: str, message: str,
                    now: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM outbox WHERE seq = ?", (item.seq,))
            db.execute("INSERT OR REPLACE INTO dead_letters (seq, statement_id, kind, envelope, "
                       "status, code, message, refused_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (item.seq, item.statement_id, item.kind, item.envelope, status, code,
                        message, now))

    def dead_letters(self) -> list[DeadLetter]:
        rows = self._db.execute("SELECT seq, statement_id, kind, status, code, message, "
                                "refused_at FROM dead_letters ORDER BY seq").fetchall()
        return [DeadLetter(*row) for row in rows]

    def sent_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM sent").fetchone()[0])

    def last_receipt(self) -> dict[str, Any] | None:
        """The server's receipt of the newest statement sent (its leaf hash among it)."""
        row = self._db.execute("SELECT receipt FROM sent ORDER BY seq DESC LIMIT 1").fetchone()
        return dict(json.loads(row[0])) if row else None

    # -- scans -------------------------------------------------------------------------

    def record_scan(self, scope_id: str, summary: dict[str, Any]) -> None:
        self._db.execute("INSERT OR REPLACE INTO last_scan (scope_id, summary) VALUES (?, ?)",
                         (scope_id, json.dumps(summary)))

    def last_scans(self) -> dict[str, dict[str, Any]]:
        rows = self._db.execute("SELECT scope_id, summary FROM last_scan").fetchall()
        return {scope_id: json.loads(summary) for scope_id, summary in rows}

    # -- the incremental hash cache (unchallenged scans only) -----------------------------

    def cached_digest(self, st: os.stat_result) -> bytes | None:
        row = self._db.execute(
            "SELECT digest FROM hash_cache WHERE dev = ? AND ino = ? AND size = ? AND "
            "mtime_ns = ? AND ctime_ns = ?",
            (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)).fetchone()
        return None if row is None else bytes(row[0])

    def cache_digests(self, entries: list[tuple[os.stat_result, bytes]]) -> None:
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO hash_cache (dev, ino, size, mtime_ns, ctime_ns, digest) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, digest)
                 for st, digest in entries])

    # -- deletions done but not yet attested ----------------------------------------------

    def intend_deletion(self, scope_id: str, digest: str, locators: list[str], method: str,
                        grade: str, now: str) -> None:
        """Written (and synced) before any of the removals it names."""
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO deletion_intents (scope_id, locator, digest, method, "
                "grade, noted_at) VALUES (?, ?, ?, ?, ?, ?)",
                [(scope_id, loc, digest, method, grade, now) for loc in locators])

    def deletion_intents(self) -> dict[str, list[DeletionIntent]]:
        rows = self._db.execute("SELECT scope_id, locator, digest, method, grade, noted_at "
                                "FROM deletion_intents ORDER BY scope_id, locator").fetchall()
        out: dict[str, list[DeletionIntent]] = {}
        for scope_id, *rest in rows:
            out.setdefault(scope_id, []).append(DeletionIntent(*rest))
        return out

    def drop_intent(self, scope_id: str, locator: str) -> None:
        """The removal did not happen (it failed, or the object is still there)."""
        self._db.execute("DELETE FROM deletion_intents WHERE scope_id = ? AND locator = ?",
                         (scope_id, locator))

    def note_deleted(self, scope_id: str, digest: str, method: str, grade: str,
                     now: str, *, locator: str | None = None) -> None:
        """A removal done: pending attestation, and its intent (if any) resolved, at once."""
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO pending_deletions (scope_id, digest, method, "
                       "grade, deleted_at) VALUES (?, ?, ?, ?, ?)",
                       (scope_id, digest, method, grade, now))
            if locator is not None:
                db.execute("DELETE FROM deletion_intents WHERE scope_id = ? AND locator = ?",
                           (scope_id, locator))

    def pending_deletions(self) -> dict[str, list[PendingDeletion]]:
        rows = self._db.execute("SELECT scope_id, digest, method, grade, deleted_at FROM "
                                "pending_deletions ORDER BY scope_id, digest").fetchall()
        out: dict[str, list[PendingDeletion]] = {}
        for scope_id, *rest in rows:
            out.setdefault(scope_id, []).append(PendingDeletion(*rest))
        return out

    def append_deletion(self, scope_id: str, digests: list[str], build: Builder,
                        now: str) -> OutboxItem:
        """The deletion statement enters the outbox and its pending rows leave, atomically:
        a crash can neither lose a deletion nor attest it twice."""
        with self._tx() as db:
            chain = self.get("chain") or {"next_seq": 0, "prev": None}
            seq, prev = chain["next_seq"], chain["prev"]
            payload, envelope = build(seq, prev)
            sid = statement_id(payload)
            db.execute(
                "INSERT INTO outbox (seq, statement_id, kind, scope_id, envelope, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)", (seq, sid, "deletion", scope_id, envelope, now))
            self.put("chain", {"next_seq": seq + 1, "prev": sid})
            db.executemany("DELETE FROM pending_deletions WHERE scope_id = ? AND digest = ?",
                           [(scope_id, d) for d in digests])
        return OutboxItem(seq, sid, "deletion", scope_id, envelope, 0)
