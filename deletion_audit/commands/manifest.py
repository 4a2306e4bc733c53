"""``manifest build | sign | verify``: the examiner's evidence manifest (DESIGN.md, Flows 1).

``build`` (here) hashes seized copies — files, and database rows with ``--sql`` — into a
manifest; ``sign`` and ``verify`` (:mod:`deletion_audit.commands.manifest_sign`) sign its
statement and check a manifest against its envelope.

Subcommands load when used, as the top-level commands do: a build of many small files is
measured against ``openssl dgst`` and should not spend its start-up importing the
cryptography and pydantic it never uses. The server's ``register`` joins through
:data:`SUBCOMMANDS` (or ``manifest_group.add_command``).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from deletion_audit.commands import _evidence
from deletion_audit.commands._common import CliError
from deletion_audit.commands._manifest_sources import (
    ENCODINGS,
    SqlSource,
    SubjectMap,
    load_subject_key,
    read_sql_records,
)
from deletion_audit.core import manifest as mf
from deletion_audit.core.errors import FormatError

_FilePath = click.Path(dir_okay=False, path_type=Path)
_SOURCE_CODE = re.compile(r"[A-Za-z0-9._:/-]{1,128}")
_REDRAW_SECONDS = 0.1

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "sign": ("deletion_audit.commands.manifest_sign", "sign_command"),
    "verify": ("deletion_audit.commands.manifest_sign", "verify_command"),
    "register": ("deletion_audit.commands.manifest_register", "register"),
}
"""Subcommands defined in other modules: name → (module, attribute)."""


class _LazyGroup(click.Group):
    def __init__(self, *args: Any, lazy: Mapping[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module_name, attr = self.lazy[cmd_name]
            command: click.Command = getattr(importlib.import_module(module_name), attr)
            return command
        return super().get_command(ctx, cmd_name)


@click.group("manifest", cls=_LazyGroup, lazy=SUBCOMMANDS)
def manifest_group() -> None:
    """Build, sign and verify evidence manifests."""


# -- build ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Root:
    """A PATH argument: an absolute path and the location code its items carry."""

    path: str
    source: str | None


def _check_code(code: str, what: str) -> str:
    if not _SOURCE_CODE.fullmatch(code):
        raise click.BadParameter(
            f"{code!r} is not a location code (1-128 of A-Z a-z 0-9 . _ : / -)",
            param_hint=what,
        )
    return code


def _roots(arguments: Sequence[str], default_source: str | None) -> list[Root]:
    roots = []
    for argument in arguments:
        path, source = argument, default_source
        # PATH=CODE, unless the whole argument names an existing file (names may hold '=').
        if "=" in argument and not os.path.lexists(argument):
            path, code = argument.rsplit("=", 1)
            source = _check_code(code, f"PATH=CODE {argument!r}")
        if not os.path.lexists(path):
            raise CliError(f"evidence path {path} does not exist")
        roots.append(Root(os.path.abspath(path), source))
    return roots


def _progress(enabled: bool, total: int | None, what: str) -> AbstractContextManager[Any]:
    """A rich progress bar on a terminal; nothing in a pipe or a log."""
    if not enabled:
        return nullcontext(None)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    # No refresh thread (auto_refresh off): hashing may fork worker processes, which is
    # only safe in a single-threaded parent. _advance redraws instead.
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), transient=True, auto_refresh=False,
    )
    progress.add_task(what, total=total)
    return progress


def _advance(bar: Any) -> Callable[[int], None] | None:
    if bar is None:
        return None
    task = bar.tasks[0].id
    last = [0.0]

    def advance(count: int) -> None:
        bar.advance(task, count)
        now = time.monotonic()
        if now - last[0] >= _REDRAW_SECONDS:
            last[0] = now
            bar.refresh()

    return advance


@dataclass
class Tally:
    files: int = 0
    records: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


def _file_entries(
    found: _evidence.Walk, roots: Sequence[Root], subjects: SubjectMap | None, jobs: int,
    advance: Callable[[int], None] | None,
) -> Iterator[mf.PreparedEntry]:
    sources = [root.source for root in roots]
    pseudonym = subjects.pseudonym if subjects else _no_subject
    tasks = [(path, sources[root], pseudonym(path))
             for path, root in zip(found.files, found.root_of, strict=True)]
    try:
        yield from _evidence.hash_files(tasks, jobs=jobs, progress=advance)
    except OSError as exc:
        raise CliError(f"cannot read {exc.filename}: {exc.strerror}") from None


def _no_subject(_path: str) -> None:
    return None


def _summary(written: mf.WrittenManifest, out: Path, tally: Tally) -> dict[str, Any]:
    summary = written.summary
    return {
        "manifest": str(out),
        "case": summary.header.case,
        "count": summary.count,
        "kinds": dict(sorted(written.kinds.items())),
        "people": written.subjects,
        "files": tally.files,
        "records": tally.records,
        "duplicatesMerged": written.duplicates,
        "skipped": dict(sorted(tally.skipped.items())),
        "root": summary.root_hex,
        "sha256": summary.sha256,
    }


def _print_summary(report: dict[str, Any]) -> None:
    kinds = ", ".join(f"{kind} {n}" for kind, n in report["kinds"].items())
    click.echo(f"wrote {report['manifest']}: {report['count']} items ({kinds}), "
               f"{report['people']} people")
    click.echo(f"  from {report['files']} files and {report['records']} database rows; "
               f"merged {report['duplicatesMerged']} duplicate(s) (identical content)")
    if report["skipped"]:
        skipped = ", ".join(f"{n} {why}" for why, n in report["skipped"].items())
        click.echo(f"  skipped: {skipped}")
    click.echo(f"  root: {report['root']}")
    click.echo(f"  sha256: {report['sha256']}")


def _sql_source(sql: str | None, table: str | None, key_columns: str | None,
                content_column: str | None, encoding: str, where: str | None) -> SqlSource | None:
    if sql is None:
        if any(v is not None for v in (table, key_columns, content_column, where)):
            raise click.UsageError("--table, --key-columns, --content-column and --where "
                                   "go with --sql")
        return None
    if not table or not key_columns or not content_column:
        missing = [name for name, value in (("--table", table), ("--key-columns", key_columns),
                                            ("--content-column", content_column)) if not value]
        raise click.UsageError(f"--sql needs {', '.join(missing)}")
    keys_ = tuple(c.strip() for c in key_columns.split(",") if c.strip())
    if not keys_:
        raise click.UsageError("--key-columns names no column")
    return SqlSource(url=sql, table=table, key_columns=keys_, content_column=content_column,
                     encoding=encoding, where=where)


@manifest_group.command("build")
@click.argument("paths", nargs=-1, metavar="PATH[=CODE]...")
@click.option("--case", "case", required=True, help="Case number (案号).")
@click.option("-o", "--output", "out", required=True, type=_FilePath,
              help="Manifest file to write.")
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
@click.option("--source", "source", default=None,
              help="Location code for every item without its own PATH=CODE.")
@click.option("--subjects", "subjects_csv", type=click.Path(dir_okay=False, exists=True,
              path_type=Path), help="CSV with columns path,subject (person identifiers).")
@click.option("--subject-key", "subject_key", type=_FilePath,
              help="Per-case 256-bit pseudonym key; generated there if missing.")
@click.option("--examiner-pub", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The examiner's key (public or private PEM): named in the header.")
@click.option("--jobs", type=click.IntRange(min=1), default=os.cpu_count() or 1,
              show_default="CPU count", help="Parallel hashing workers.")
@click.option("--sql", default=None, help="Database URL whose rows are items (records).")
@click.option("--table", default=None, help="Table holding the records ([schema.]name).")
@click.option("--key-columns", default=None, help="Comma-separated key columns.")
@click.option("--content-column", default=None, help="Column holding each record's content.")
@click.option("--encoding", type=click.Choice(ENCODINGS), default="raw", show_default=True,
              help="How the content column encodes the bytes.")
@click.option("--where", default=None, help="SQL filter for the rows.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary.")
def build_command(
    paths: tuple[str, ...], case: str, out: Path, force: bool, source: str | None,
    subjects_csv: Path | None, subject_key: Path | None, examiner_pub: Path | None, jobs: int,
    sql: str | None, table: str | None, key_columns: str | None, content_column: str | None,
    encoding: str, where: str | None, as_json: bool,
) -> None:
    """Hash evidence copies into a sorted, canonical manifest.

    Walks each PATH (no symlinks followed) and, with --sql, the rows of a table. Items
    with identical content are one item. Prints a summary: items by kind, people,
    duplicates merged, what was skipped, and the root.
    """
    sql_source = _sql_source(sql, table, key_columns, content_column, encoding, where)
    if not paths and sql_source is None:
        raise click.UsageError("give at least one PATH or --sql")
    if (subjects_csv is None) != (subject_key is None):
        raise click.UsageError("--subjects and --subject-key go together")
    if out.exists() and not force:
        raise CliError(f"{out} already exists; use --force to overwrite it")
    try:
        header = mf.ManifestHeader(
            case=case, count=0, created_at=mf.format_created_at(datetime.now(UTC)),
            examiner_key_id=_examiner_key_id(examiner_pub),
        )
    except FormatError as exc:
        raise click.BadParameter(str(exc), param_hint="--case") from None
    default_source = _check_code(source, "--source") if source else None
    roots = _roots(paths, default_source)
    try:
        found = _evidence.walk([root.path for root in roots])
    except _evidence.WalkError as exc:
        raise CliError(str(exc)) from None
    subjects = _subjects(subjects_csv, subject_key, roots, found)
    tally = Tally(files=len(found.files), skipped=found.skipped)
    written = _write(out, header, _Inputs(found, roots, subjects, sql_source, default_source),
                     jobs, tally)
    report = _summary(written, out, tally)
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        _print_summary(report)


def _examiner_key_id(path: Path | None) -> str | None:
    if path is None:
        return None
    # cryptography loads only when a key is named (see the module docstring).
    from deletion_audit.core import keys
    from deletion_audit.core.errors import KeyFileError

    try:
        return keys.key_id(keys.load_public_key(path))
    except KeyFileError as exc:
        raise CliError(str(exc)) from None


def _subjects(csv_path: Path | None, key_path: Path | None, roots: Sequence[Root],
              found: _evidence.Walk) -> SubjectMap | None:
    if csv_path is None or key_path is None:
        return None
    # The map is checked whole before a key is made: a failed build leaves nothing behind.
    identifiers = SubjectMap.from_csv(csv_path, [root.path for root in roots], found.files)
    key, created = load_subject_key(key_path)
    if created:
        click.echo(
            f"generated the case's subject key in {key_path} (mode 0600): the examiner must "
            f"keep it and escrow a copy with the procuratorate; without it no pseudonym "
            f"can be re-derived", err=True,
        )
    return identifiers.pseudonymised(key)


@dataclass(frozen=True)
class _Inputs:
    found: _evidence.Walk
    roots: Sequence[Root]
    subjects: SubjectMap | None
    sql: SqlSource | None
    default_source: str | None


def _write(out: Path, header: mf.ManifestHeader, inputs: _Inputs, jobs: int,
           tally: Tally) -> mf.WrittenManifest:
    def entries(
        advance: Callable[[int], None] | None,
    ) -> Iterator[mf.ManifestEntry | mf.PreparedEntry]:
        yield from _file_entries(inputs.found, inputs.roots, inputs.subjects, jobs, advance)
        if inputs.sql is not None:
            for entry in read_sql_records(inputs.sql, source_code=inputs.default_source,
                                          skipped=tally.skipped):
                tally.records += 1
                yield entry

    files = len(inputs.found.files)
    with _progress(sys.stderr.isatty(), files or None, "hashing") as bar:
        try:
            return mf.write_manifest(out, header, entries(_advance(bar)),
                                     merge_duplicates=True)
        except mf.ManifestError as exc:
            raise CliError(f"{out}: {exc}") from None
        except OSError as exc:
            raise CliError(f"cannot write {out}: {exc.strerror}") from None
