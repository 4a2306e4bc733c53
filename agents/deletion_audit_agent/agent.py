"""An enrolled agent at work: scopes, challenges, the manifest filter, scans and deletions.

Every operation writes its statements to the outbox before sending them, so a crash at any
point loses nothing: the next command (or ``run``) sends what is left.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from deletion_audit.core import keys
from deletion_audit.core.bloom import BloomFilter
from deletion_audit.core.errors import FormatError
from deletion_audit.core.predicates import (
    MAX_DIGESTS_PER_STATEMENT,
    ScanCounts,
    format_timestamp,
)
from deletion_audit_agent.ages import SQL_KIND, AgeTally
from deletion_audit_agent.build import build_digest
from deletion_audit_agent.client import AgentClient
from deletion_audit_agent.config import AgentConfig, SqlAccess, resolve_access
from deletion_audit_agent.monitor import observe
from deletion_audit_agent.outbox import FlushResult, flush
from deletion_audit_agent.scanning import ManifestRef, Tally, confirm, tally
from deletion_audit_agent.sources import Throttle, open_source
from deletion_audit_agent.state import Enrollment, State
from deletion_audit_agent.statements import Chain, ScanReport, deletion_builder, scan_builders


class AgentError(Exception):
    """Something the operator must fix; the message says what."""


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class ServerScope:
    id: Any
    """As the server spells it (an integer today); statements carry it as a string."""
    name: str
    kind: str
    spec: Mapping[str, Any]
    spec_digest: str
    manifest: ManifestRef | None
    ages: bool = False
    """A retention rule names the scope: its scans carry an age summary per kind."""
    timestamp_field: str | None = None
    """A SQL scope's timestamp column, for its age summary."""

    @property
    def key(self) -> str:
        return str(self.id)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> ServerScope:
        manifest = body.get("manifest")
        return cls(id=body["id"], name=str(body.get("name", "")), kind=str(body["kind"]),
                   spec=dict(body["spec"]), spec_digest=str(body["spec_digest"]),
                   manifest=ManifestRef.from_scope(manifest) if manifest else None,
                   ages=body.get("ages") is True,
                   timestamp_field=body.get("timestamp_field") or None)


@dataclass(frozen=True)
class Found:
    digest: str
    locators: tuple[str, ...]


@dataclass(frozen=True)
class Discovery:
    scan_id: str
    scope: ServerScope
    tally: Tally
    present: tuple[Found, ...]
    narrowed: bool
    started_at: datetime
    finished_at: datetime


@dataclass(frozen=True)
class ScanResult:
    scope_id: str
    scan_id: str
    challenged: bool
    objects: int
    hashed: int
    present: int
    skipped: dict[str, int]
    coverage: str
    root: str
    statements: int
    flush: FlushResult

    def summary(self) -> dict[str, Any]:
        return {"scope_id": self.scope_id, "scan_id": self.scan_id,
                "challenged": self.challenged, "objects": self.objects, "hashed": self.hashed,
                "present": self.present, "skipped": self.skipped, "coverage": self.coverage,
                "root": self.root, "statements": self.statements,
                "sent": self.flush.sent, "dead_letters": self.flush.dead,
                "outbox": self.flush.pending}


Progress = Callable[[int], None]


class Agent:
    def __init__(self, config: AgentConfig, state: State) -> None:
        enrollment = state.enrollment
        if enrollment is None:
            raise AgentError(f"not enrolled (state {config.state_dir}); run "
                             "`deletion-audit-agent enroll --server URL --token TOKEN` first")
        self.config = config
        self.state = state
        self.enrollment: Enrollment = enrollment
        self.key = keys.load_private_key(enrollment.key_path)
        self.client = AgentClient(enrollment.server, agent_id=enrollment.agent_id, key=self.key,
                                  backoff=config.backoff)
        self.chain = Chain(case_id=enrollment.case_id, agent_id=enrollment.agent_id,
                           build_digest=build_digest())
        self.throttle = Throttle(config.throttle_bytes_per_second)

    def close(self) -> None:
        self.client.close()

    def _contacted(self) -> None:
        if self.client.last_contact is not None:
            self.state.put("last_contact", format_timestamp(self.client.last_contact))

    # -- the server's view ---------------------------------------------------------------

    def check_log(self, note: str | None = None) -> None:
        observe(self.state, self.client, note, self.enrollment.log_key)

    def scopes(self) -> list[ServerScope]:
        body = self.client.get_json("/agents/scopes")
        self.state.put("scopes", body["scopes"])
        self._contacted()
        return [ServerScope.from_json(s) for s in body["scopes"]]

    def scope(self, scope_id: str) -> ServerScope:
        for scope in self.scopes():
            if scope.key == scope_id:
                return scope
        raise AgentError(f"scope {scope_id} is not bound to this agent "
                         f"({self.enrollment.agent_id})")

    def challenge_for(self, scope: ServerScope) -> str:
        """An open challenge for the scope, or a fresh one asked for on demand."""
        for challenge in self.client.get_json("/agents/challenges")["challenges"]:
            if str(challenge["scope_id"]) == scope.key:
                return str(challenge["nonce"])
        return str(self.client.post_json("/agents/challenges", {"scope_id": scope.id})["nonce"])

    @contextmanager
    def manifest_filter(self, manifest: ManifestRef) -> Iterator[BloomFilter]:
        """The manifest's filter, downloaded once per root and memory-mapped."""
        directory = self.state.dir / "filters"
        directory.mkdir(exist_ok=True, mode=0o700)
        path = directory / f"{manifest.root.hex()}.bloom"
        if not path.exists():
            partial = path.with_suffix(f".{secrets.token_hex(4)}.part")
            try:
                self.client.download(f"/agents/manifests/{manifest.id}/filter", str(partial))
                os.replace(partial, path)
            finally:
                partial.unlink(missing_ok=True)
        try:
            bloom = BloomFilter.open(path)
        except FormatError as exc:
            path.unlink(missing_ok=True)
            raise AgentError(f"the server's manifest filter is unreadable: {exc}") from None
        if bloom.root != manifest.root:
            bloom.close()
            path.unlink(missing_ok=True)
            raise AgentError("the server's manifest filter is for another manifest root")
        try:
            yield bloom
        finally:
            bloom.close()

    # -- scanning ------------------------------------------------------------------------

    @contextmanager
    def _skip_log(self, scan_id: str) -> Iterator[Callable[[str, str, str], None]]:
        """Skipped paths stay on this host (file names often carry names or ID numbers):
        ``scans/<scan_id>.skipped.tsv`` maps each keyed hash the statement carries back to
        its path, for the operator."""
        directory = self.state.dir / "scans"
        directory.mkdir(exist_ok=True, mode=0o700)
        path = directory / f"{scan_id}.skipped.tsv"
        handle = None

        def write(hashed: str, reason: str, locator: str) -> None:
            nonlocal handle
            if handle is None:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                handle = os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape")
            handle.write(f"{hashed}\t{reason}\t{locator}\n")

        try:
            yield write
        finally:
            if handle is not None:
                handle.close()

    def discover(self, scope: ServerScope, *, use_cache: bool = False,
                 progress: Progress | None = None) -> Discovery:
        """Hash every object of the scope, probe the filter, confirm hits with proofs."""
        if scope.manifest is None:
            raise AgentError(f"scope {scope.key}'s case has no active manifest to look for")
        access = resolve_access(scope.key, scope.kind, scope.spec,
                                self.config.scopes.get(scope.key))
        if isinstance(access, SqlAccess) and scope.ages and scope.timestamp_field:
            access = replace(access, timestamp_column=scope.timestamp_field)
        path_key = self.state.secret("path_key")
        started = utcnow()
        scan_id = "scn_" + secrets.token_hex(16)
        with self.manifest_filter(scope.manifest) as bloom, self._skip_log(scan_id) as skip:
            source = open_source(access, jobs=self.config.jobs, throttle=self.throttle,
                                 cache=self.state, use_cache=use_cache)
            try:
                ages = AgeTally(started, kind=SQL_KIND if isinstance(access, SqlAccess)
                                else None) if scope.ages else None
                seen = tally(source.scan(), bloom.might_contain, path_key, progress, skip,
                             ages)
            finally:
                source.close()
        manifest = scope.manifest
        present = confirm(seen.candidates, manifest,
                          lambda batch: self.client.post_json(
                              f"/agents/manifests/{manifest.id}/confirm", {"digests": batch}))
        found = tuple(Found(d.hex(), tuple(seen.candidates[d])) for d in sorted(present))
        return Discovery(scan_id=scan_id, scope=scope, tally=seen, present=found,
                         narrowed=bool(getattr(access, "narrowed", False)),
                         started_at=started, finished_at=utcnow())

    def scan(self, scope: ServerScope, *, challenge: str | None = None, challenged: bool = True,
             progress: Progress | None = None) -> ScanResult:
        """A scan submitted as signed statements. Challenged scans (the default) answer an
        open or on-demand challenge and re-read everything; an unchallenged scan may reuse
        cached hashes, and the verdict does not count it."""
        self.check_log()
        if challenged and challenge is None:
            challenge = self.challenge_for(scope)
        found = self.discover(scope, use_cache=challenge is None, progress=progress)
        return self.submit_scan(found, challenge)

    def submit_scan(self, found: Discovery, challenge: str | None) -> ScanResult:
        seen = found.tally
        coverage: Literal["complete", "partial"] = (
            "partial" if seen.skipped or found.narrowed else "complete")
        report = ScanReport(
            scope_id=found.scope.key, spec_digest=found.scope.spec_digest,
            scan_id=found.scan_id, challenge=challenge,
            present=[f.digest for f in found.present],
            skipped_path_hashes=seen.skipped_path_hashes,
            counts=ScanCounts(objects=seen.objects, hashed=seen.hashed,
                              hashed_bytes=seen.hashed_bytes, present=len(found.present),
                              skipped=dict(seen.skipped)),
            root=seen.root, coverage=coverage, started_at=found.started_at,
            finished_at=found.finished_at,
            ages=seen.ages.summary() if seen.ages is not None else None)
        builders = scan_builders(self.key, self.chain, report)
        now = format_timestamp(utcnow())
        for build in builders:
            self.state.append("scan", report.scope_id, build, now)
        result = self.flush()
        scan = ScanResult(
            scope_id=report.scope_id, scan_id=report.scan_id, challenged=challenge is not None,
            objects=seen.objects, hashed=seen.hashed, present=len(found.present),
            skipped=dict(seen.skipped), coverage=coverage, root=seen.root,
            statements=len(builders), flush=result)
        self.state.record_scan(report.scope_id, {**scan.summary(), "finished_at": now})
        return scan

    # -- deleting ------------------------------------------------------------------------

    def delete(self, found: Discovery) -> list[tuple[str, str, str | None]]:
        """Remove what ``found`` confirmed; each removal is noted locally at once, so a
        crash before the statement is attested on the next start. Returns (digest,
        locator, error or None) per copy."""
        scope = found.scope
        access = resolve_access(scope.key, scope.kind, scope.spec,
                                self.config.scopes.get(scope.key))
        source = open_source(access, jobs=self.config.jobs, throttle=self.throttle,
                             overwrite=self.config.overwrite_before_unlink)
        outcomes: list[tuple[str, str, str | None]] = []
        try:
            for item in found.present:
                wanted = [(loc, bytes.fromhex(item.digest)) for loc in item.locators]
                # Written ahead: a crash between a removal and its note below is resolved on
                # the next start by looking at the locator (recover_deletions).
                self.state.intend_deletion(scope.key, item.digest, list(item.locators),
                                           source.method, source.grade,
                                           format_timestamp(utcnow()))
                for removal in source.delete(wanted):
                    if removal.ok:
                        self.state.note_deleted(scope.key, item.digest, source.method,
                                                source.grade, format_timestamp(utcnow()),
                                                locator=removal.locator)
                    else:
                        self.state.drop_intent(scope.key, removal.locator)
                    outcomes.append((item.digest, removal.locator, removal.error))
        finally:
            source.close()
        return outcomes

    def recover_deletions(self, scopes: Mapping[str, ServerScope]) -> int:
        """Resolve the removals a crash left unnoted: a locator that is gone was removed
        (noted at its intent's time, to be attested); one still there was not. Returns the
        removals recovered."""
        recovered = 0
        for scope_id, intents in self.state.deletion_intents().items():
            scope = scopes.get(scope_id)
            if scope is None:
                continue
            access = resolve_access(scope.key, scope.kind, scope.spec,
                                    self.config.scopes.get(scope.key))
            source = open_source(access, jobs=self.config.jobs, throttle=self.throttle)
            try:
                for intent in intents:
                    if source.exists(intent.locator):
                        self.state.drop_intent(scope_id, intent.locator)
                        continue
                    self.state.note_deleted(scope_id, intent.digest, intent.method,
                                            intent.grade, intent.noted_at,
                                            locator=intent.locator)
                    recovered += 1
            finally:
                source.close()
        return recovered

    def attest_deletions(self, scopes: Mapping[str, ServerScope]) -> int:
        """Deletion statements for every removal not yet attested (grouped by method),
        after resolving any a crash left half-noted."""
        self.recover_deletions(scopes)
        written = 0
        for scope_id, pending in self.state.pending_deletions().items():
            scope = scopes.get(scope_id)
            if scope is None:
                continue
            groups: dict[tuple[str, str], list[str]] = {}
            for p in pending:
                groups.setdefault((p.method, p.grade), []).append(p.digest)
            deleted_at = max(datetime.fromisoformat(p.deleted_at) for p in pending)
            for (method, grade), digests in groups.items():
                for start in range(0, len(digests), MAX_DIGESTS_PER_STATEMENT):
                    chunk = digests[start:start + MAX_DIGESTS_PER_STATEMENT]
                    build = deletion_builder(self.key, self.chain, scope_id=scope_id,
                                             spec_digest=scope.spec_digest, grade=grade,
                                             method=method, digests=chunk,
                                             deleted_at=deleted_at)
                    self.state.append_deletion(scope_id, chunk, build,
                                               format_timestamp(utcnow()))
                    written += 1
        return written

    # -- talking -------------------------------------------------------------------------

    def flush(self) -> FlushResult:
        result = flush(self.state, self.client)
        self._contacted()
        return result

    def heartbeat(self) -> dict[str, Any]:
        kept = self.state.get("checkpoint")
        size = None
        if kept:
            from deletion_audit.core.checkpoint import parse_checkpoint_text

            size = parse_checkpoint_text(kept).size
        body: dict[str, Any] = self.client.post_json("/agents/heartbeat", {
            "outbox": len(self.state.outbox()), "dead_letters": len(self.state.dead_letters()),
            "last_checkpoint_size": size})
        self._contacted()
        if body.get("checkpoint"):
            self.check_log(body["checkpoint"])
        return body

    def tasks(self) -> list[dict[str, Any]]:
        return list(self.client.get_json("/agents/tasks")["tasks"])
