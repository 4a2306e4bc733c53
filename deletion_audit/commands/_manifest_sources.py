"""What ``manifest build`` reads besides files: the subjects map with its per-case key, and
database rows as ``record`` items."""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import hmac
import os
import secrets
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from deletion_audit.commands._common import CliError
from deletion_audit.core import manifest as mf

KEY_SIZE: Final = 32
ENCODINGS: Final = ("raw", "hex", "base64")


# -- subjects ------------------------------------------------------------------------------


def load_subject_key(path: Path) -> tuple[bytes, bool]:
    """The per-case pseudonym key in ``path`` (64 hex digits), or a new one written there
    with O_EXCL and mode 0600; returns the key and whether it was created.

    The key turns person identifiers into pseudonyms that can be counted without names;
    whoever holds it can test a guessed identifier, so it never leaves the examiner's hands
    except into escrow.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path), False
    except OSError as exc:
        raise CliError(f"cannot create subject key {path}: {exc.strerror}") from None
    key = secrets.token_bytes(KEY_SIZE)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key.hex() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise CliError(f"cannot write subject key {path}: {exc.strerror}") from None
    return key, True


def _read_key(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read subject key {path}: {exc}") from None
    if len(text) != 2 * KEY_SIZE:
        raise CliError(f"subject key {path} must hold {2 * KEY_SIZE} hex digits (256 bits)")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise CliError(f"subject key {path} is not hex") from None


def pseudonym(key: bytes, identifier: str) -> str:
    """HMAC-SHA256 of the identifier's UTF-8 bytes under the case key, lowercase hex."""
    return hmac.new(key, identifier.encode("utf-8"), hashlib.sha256).hexdigest()


def _candidates(path: str, roots: Sequence[str]) -> set[str]:
    if os.path.isabs(path):
        return {os.path.normpath(path)}
    out = set()
    for root in roots:
        base = root if os.path.isdir(root) else os.path.dirname(root)
        out.add(os.path.normpath(os.path.join(base, path)))
    return out


@dataclass(frozen=True)
class SubjectMap:
    """Evidence file (absolute path) → the person it shows: identifiers as read, turned
    into pseudonyms by :meth:`pseudonymised` before anything is written."""

    by_path: Mapping[str, str]

    def pseudonym(self, path: str) -> str | None:
        return self.by_path.get(path)

    def pseudonymised(self, key: bytes) -> SubjectMap:
        return SubjectMap({path: pseudonym(key, who) for path, who in self.by_path.items()})

    @classmethod
    def from_csv(cls, csv_path: Path, roots: Sequence[str], files: Sequence[str]) -> SubjectMap:
        """Read ``path,subject`` rows; a path is absolute or relative to a PATH argument
        (to its directory for a file argument). A row that names no evidence file, or
        names one ambiguously or twice, is an error with its line: a typo in the map must
        not silently lose a person."""
        evidence = set(files)
        by_path: dict[str, str] = {}
        try:
            with csv_path.open(newline="", encoding="utf-8-sig") as handle:
                reader = csv.DictReader(handle)
                fields = reader.fieldnames or []
                if "path" not in fields or "subject" not in fields:
                    raise CliError(f"{csv_path}:1: the header must name columns path,subject")
                for row in reader:
                    where = f"{csv_path}:{reader.line_num}"
                    path, identifier = _row(row, where)
                    matches = _candidates(path, roots) & evidence
                    if not matches:
                        raise CliError(f"{where}: no evidence file {path} under the paths")
                    if len(matches) > 1:
                        raise CliError(f"{where}: {path} matches several evidence files; "
                                       f"give an absolute path")
                    (match,) = matches
                    if match in by_path:
                        raise CliError(f"{where}: {path} is listed twice")
                    by_path[match] = identifier
        except UnicodeDecodeError as exc:
            raise CliError(f"{csv_path}: not UTF-8 text: {exc.reason}") from None
        except csv.Error as exc:
            raise CliError(f"{csv_path}: bad CSV: {exc}") from None
        except OSError as exc:
            raise CliError(f"cannot read {csv_path}: {exc.strerror}") from None
        return cls(by_path)


def _row(row: Mapping[str, str | None], where: str) -> tuple[str, str]:
    path = (row.get("path") or "").strip()
    identifier = (row.get("subject") or "").strip()
    if not path:
        raise CliError(f"{where}: empty path")
    if not identifier:
        raise CliError(f"{where}: empty subject for {path}")
    return path, identifier


# -- database rows -------------------------------------------------------------------------


@dataclass(frozen=True)
class SqlSource:
    """A SQL scope of DESIGN.md: table, key columns, content column, encoding, filter."""

    url: str
    table: str
    key_columns: tuple[str, ...]
    content_column: str
    encoding: str
    where: str | None = None


def decode_content(value: object, encoding: str) -> bytes:
    """The content bytes of one cell; ValueError says why they cannot be had."""
    if isinstance(value, memoryview):
        value = value.tobytes()
    if encoding == "raw":
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return value.encode("utf-8")
        raise ValueError(f"content is {type(value).__name__}, not bytes or text")
    if not isinstance(value, str | bytes):
        raise ValueError(f"content is {type(value).__name__}, not {encoding} text")
    text = value.strip() if isinstance(value, str) else value.strip().decode("ascii", "replace")
    try:
        if encoding == "hex":
            return binascii.a2b_hex(text)
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"content is not valid {encoding}") from None


def read_sql_records(source: SqlSource, *, source_code: str | None,
                     skipped: Counter[str]) -> Iterator[mf.ManifestEntry]:
    """Each row's content as a ``record`` item, streamed; NULL content is counted as
    skipped. SQLAlchemy is imported here only: it is in the server extra."""
    try:
        import sqlalchemy as sa
    except ModuleNotFoundError:
        raise CliError("--sql needs the server extra: pip install "
                       "'deletion-audit[server]'") from None
    schema, _, name = source.table.rpartition(".")
    columns: list[Any] = [sa.column(c) for c in (*source.key_columns, source.content_column)]
    query = sa.select(*columns).select_from(sa.table(name, schema=schema or None))
    if source.where:
        # The examiner's own filter on the examiner's own copy: raw SQL by design.
        query = query.where(sa.text(source.where))
    try:
        engine = sa.create_engine(source.url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise CliError(f"--sql: cannot use database URL: {exc}") from None
    try:
        with engine.connect() as conn:
            rows = conn.execution_options(yield_per=2000).execute(query)
            for row in rows:
                entry = _record(row, source, source_code, skipped)
                if entry is not None:
                    yield entry
    except sa.exc.SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise CliError(f"database {source.table}: {first}") from None
    finally:
        engine.dispose()


def _record(row: Sequence[Any], source: SqlSource, source_code: str | None,
            skipped: Counter[str]) -> mf.ManifestEntry | None:
    *key, value = row
    if value is None:
        skipped["NULL content"] += 1
        return None
    try:
        content = decode_content(value, source.encoding)
    except ValueError as exc:
        where = ", ".join(f"{c}={k!r}" for c, k in zip(source.key_columns, key, strict=True))
        raise CliError(f"database {source.table} row ({where}): {exc}") from None
    return mf.ManifestEntry(
        digest=hashlib.sha256(content).hexdigest(), kind="record", size=len(content),
        source=source_code,
    )
