"""Verify a bundle offline: nothing but the bundle and an anchor (the log's verifier key, or
a checkpoint kept earlier).

Every check runs and every problem is reported with its reason code, so one tampering shows
everywhere it is caught. Exit codes (DESIGN, Contracts → bundles): 0 verified, 1 intact but
the verdict is not ``verified``, 3 the evidence fails verification, 4 cannot verify.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

from deletion_audit.bundles import layout
from deletion_audit.bundles.checks import Checker, NoConsistencyProof
from deletion_audit.bundles.layout import BundleIndex
from deletion_audit.bundles.reading import BundleUnreadable, Members
from deletion_audit.bundles.sessions import BundledSession
from deletion_audit.core.checkpoint import Checkpoint, open_checkpoint
from deletion_audit.core.errors import CoreError
from deletion_audit.core.note import NoteVerifier


class Exit(IntEnum):
    VERIFIED = 0
    NOT_VERIFIED = 1
    FAILED = 3
    CANNOT_VERIFY = 4


@dataclass(frozen=True)
class Anchor:
    """What the verifier trusts: the log's verifier key string, or a kept checkpoint note."""

    log_key: str | None = None
    trusted_checkpoint: str | None = None


@dataclass(frozen=True)
class Problem:
    code: str
    message: str


@dataclass
class Report:
    exit: Exit = Exit.CANNOT_VERIFY
    problems: list[Problem] = field(default_factory=list)
    tier: str | None = None
    case_id: int | None = None
    case_number: str | None = None
    origin: str | None = None
    log_size: int | None = None
    anchored_by: str | None = None
    verdict: dict[str, Any] | None = None
    rederived: dict[str, Any] | None = None
    rederive_ran: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    sessions: list[BundledSession] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "exitCode": int(self.exit), "result": self.result,
            "tier": self.tier, "caseId": self.case_id, "caseNumber": self.case_number,
            "log": {"origin": self.origin, "size": self.log_size,
                    "anchoredBy": self.anchored_by},
            "verdict": self.verdict, "rederivedVerdict": self.rederived,
            "verdictRederived": self.rederive_ran, "counts": self.counts,
            "sessions": [s.to_json() for s in self.sessions],
            "problems": [{"code": p.code, "message": p.message} for p in self.problems],
        }

    @property
    def result(self) -> str:
        return {Exit.VERIFIED: "verified", Exit.NOT_VERIFIED: "intact",
                Exit.FAILED: "failed", Exit.CANNOT_VERIFY: "cannot_verify"}[self.exit]


class _Cannot(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def verify_bundle(path: Path, anchor: Anchor, *, workdir: Path | None = None) -> Report:
    """Verify the bundle at ``path`` against ``anchor``."""
    report = Report()
    if anchor.log_key is None and anchor.trusted_checkpoint is None:
        report.problems.append(Problem("no_anchor", "no anchor: give the log's key "
                                       "(--log-key) or a checkpoint kept earlier "
                                       "(--trusted-checkpoint)"))
        return report
    try:
        members = Members(path)
    except BundleUnreadable as exc:
        report.problems.append(Problem("unreadable", str(exc)))
        return report
    try:
        with tempfile.TemporaryDirectory(dir=workdir, prefix="bundle-verify-") as tmp:
            _verify(members, anchor, report, Path(tmp))
    except _Cannot as exc:
        report.problems.append(Problem(exc.code, str(exc)))
        report.exit = Exit.CANNOT_VERIFY
        return report
    except BundleUnreadable as exc:
        report.problems.append(Problem("unreadable", str(exc)))
        report.exit = Exit.CANNOT_VERIFY
        return report
    finally:
        members.close()
    if report.problems:
        report.exit = Exit.FAILED
    elif report.verdict is not None and report.verdict.get("outcome") == "verified":
        report.exit = Exit.VERIFIED
    else:
        report.exit = Exit.NOT_VERIFIED
    return report


def _verify(members: Members, anchor: Anchor, report: Report, workdir: Path) -> None:
    checker = Checker(members, report_problem=lambda c, m: report.problems.append(
        Problem(c, m)))
    if not members.has(layout.CHECKPOINT):
        raise _Cannot("unreadable", f"the bundle has no {layout.CHECKPOINT}: not a bundle")
    checker.read_keys()
    verifier = _log_verifier(checker, anchor, report)
    try:
        checkpoint = open_checkpoint(members.read(layout.CHECKPOINT).decode(), verifier)
    except (CoreError, UnicodeDecodeError) as exc:
        report.problems.append(Problem("checkpoint", f"the bundle's checkpoint does not "
                                       f"verify with the log key: {exc}"))
        # Nothing is proven without it; the file index still says what else changed.
        checker.check_keys(proven=False)
        index = checker.read_index()
        if index is not None:
            checker.check_files(index)
        return
    report.origin, report.log_size = checkpoint.origin, checkpoint.size
    checker.checkpoint = checkpoint
    if anchor.trusted_checkpoint is not None:
        _check_trusted(checker, verifier, anchor.trusted_checkpoint, checkpoint)
    else:
        checker.check_consistency_file()
    checker.check_keys()
    index = checker.read_index()
    if index is not None:
        _describe(report, index)
        checker.tier = index.tier
        checker.case_id = index.case_id
        if index.log_size != checkpoint.size:
            report.problems.append(Problem("index", f"the index names log size "
                                           f"{index.log_size}, the checkpoint {checkpoint.size}"))
    checker.check_events()
    # The manifest's pass (a worker for a large one) starts first, to run beside the rest.
    checker.check_manifest(workdir)
    try:
        checker.check_envelopes()
        report.verdict = checker.check_verdict()
        checker.check_summaries()
        checker.check_judgments()
        report.sessions = checker.check_sessions()
        checker.check_chains()
        if index is not None and index.tier is layout.Tier.COURT and \
                report.verdict is not None:
            report.rederived, report.rederive_ran = checker.rederive(report.verdict, workdir)
    finally:
        checker.finish_manifest()
    # After the pass: it hashed the manifest member on its way.
    if index is not None:
        checker.check_files(index)
    report.counts = checker.counts


def _describe(report: Report, index: BundleIndex) -> None:
    report.tier, report.case_id = index.tier.value, index.case_id
    report.case_number = index.case_number


def _log_verifier(checker: Checker, anchor: Anchor, report: Report) -> NoteVerifier:
    bundled = checker.log_vkey
    if anchor.log_key is not None:
        try:
            verifier = NoteVerifier.from_vkey(anchor.log_key.strip())
        except CoreError as exc:
            raise _Cannot("no_anchor", f"the log key given is not a verifier key: {exc}") from None
        report.anchored_by = "log-key"
        if bundled is not None and bundled != verifier.vkey():
            report.problems.append(Problem(
                "anchor_mismatch", "the bundle's log key registration names another key "
                "than the one you trust: the bundle is not from this log"))
        return verifier
    if bundled is None:
        raise _Cannot("no_anchor", "the bundle carries no log key registration to check "
                      "the kept checkpoint with; verify with --log-key")
    report.anchored_by = "trusted-checkpoint"
    return NoteVerifier.from_vkey(bundled)


def _check_trusted(checker: Checker, verifier: NoteVerifier, note: str,
                   checkpoint: Checkpoint) -> None:
    try:
        trusted = open_checkpoint(note, verifier)
    except CoreError as exc:
        checker.problem("anchor_mismatch", f"the kept checkpoint was not signed by the "
                        f"bundle's log key: {exc}")
        return
    if trusted.size > checkpoint.size:
        raise _Cannot("anchor_newer", f"the kept checkpoint (size {trusted.size}) is newer "
                      f"than the bundle's ({checkpoint.size}): export a fresh bundle")
    try:
        checker.check_consistency_file(trusted=trusted)
    except NoConsistencyProof as exc:
        raise _Cannot("no_consistency_proof", str(exc)) from None
