"""The examiner's signed statement over a manifest file, and checking a file against it.

Loaded on first use by the package (it brings cryptography and pydantic with it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from deletion_audit.core import dsse
from deletion_audit.core.errors import CoreError, FormatError, PredicateError, SignatureError
from deletion_audit.core.manifest._format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    HASH_ALGORITHM,
    ManifestSummary,
    StrPath,
)
from deletion_audit.core.manifest._reader import validate_manifest
from deletion_audit.core.predicates import ManifestPredicate, expect_predicate
from deletion_audit.core.statements import Statement, Subject, parse_statement


class ManifestMismatchError(CoreError):
    """A manifest and its signed statement disagree, or the signature does not verify.

    ``checks`` names every check that failed: ``statement``, ``digest``, ``count``,
    ``root``, ``header``, ``signature``, ``examiner-key``.
    """

    def __init__(self, failures: Sequence[tuple[str, str]]) -> None:
        self.checks = tuple(check for check, _ in failures)
        self.failures = tuple(failures)
        super().__init__("; ".join(f"{check}: {why}" for check, why in failures))


def manifest_predicate(summary: ManifestSummary) -> ManifestPredicate:
    header = summary.header
    return ManifestPredicate(
        format_name=FORMAT_NAME, format_version=FORMAT_VERSION, case_number=header.case,
        hash_algorithm=HASH_ALGORITHM, count=summary.count, root=summary.root_hex,
        created_at=datetime.fromisoformat(header.created_at),
        examiner_key_id=header.examiner_key_id,
    )


def statement_for(summary: ManifestSummary, name: str) -> Statement:
    """The statement an examiner signs: subject = the file, predicate = its commitment."""
    predicate = manifest_predicate(summary)
    return Statement(
        subject=(Subject(name=name, digest={"sha256": summary.sha256}),),
        predicate_type=predicate.PREDICATE_TYPE,
        predicate=predicate.to_predicate(),
    )


def manifest_statement(path: StrPath) -> Statement:
    """Validate the manifest at ``path`` fully and return its statement."""
    return statement_for(validate_manifest(path), Path(path).name)


@dataclass(frozen=True, slots=True)
class ManifestVerification:
    summary: ManifestSummary
    predicate: ManifestPredicate
    signer_hints: tuple[str, ...]
    """The envelope's keyids: unauthenticated hints."""
    key_ids: tuple[str, ...] = ()
    """Trusted keys whose signatures verified; empty when no key was given."""


def _signed_predicate(envelope: dsse.Envelope) -> tuple[Statement, ManifestPredicate]:
    if envelope.payload_type != dsse.IN_TOTO_PAYLOAD_TYPE:
        raise ManifestMismatchError([("statement", f"payload type is {envelope.payload_type}, "
                                                   f"not {dsse.IN_TOTO_PAYLOAD_TYPE}")])
    try:
        statement = parse_statement(envelope.payload)
        return statement, expect_predicate(statement, ManifestPredicate)
    except (FormatError, PredicateError) as exc:
        raise ManifestMismatchError([("statement", str(exc))]) from None


def _content_failures(summary: ManifestSummary, statement: Statement,
                      predicate: ManifestPredicate) -> list[tuple[str, str]]:
    failures: list[tuple[str, str]] = []
    signed = [s.sha256 for s in statement.subject]
    if summary.sha256 not in signed:
        failures.append(("digest", f"the file's SHA-256 {summary.sha256} is not the signed "
                                   f"subject {', '.join(str(s) for s in signed)}"))
    if predicate.count != summary.count:
        failures.append(("count", f"the file has {summary.count} entries, the statement "
                                  f"says {predicate.count}"))
    if predicate.root != summary.root_hex:
        failures.append(("root", f"the file's root {summary.root_hex} is not the signed "
                                 f"root {predicate.root}"))
    expected = manifest_predicate(summary)
    differing = [
        name for name in ("format_name", "format_version", "case_number", "hash_algorithm",
                          "created_at", "examiner_key_id")
        if getattr(expected, name) != getattr(predicate, name)
    ]
    if differing:
        failures.append(("header", f"the file's header differs from the statement in "
                                   f"{', '.join(differing)}"))
    return failures


def check_manifest_envelope(path: StrPath, envelope: dsse.Envelope) -> ManifestVerification:
    """Every check but the signature: the file against the statement in ``envelope``.

    ManifestError if the file is malformed; ManifestMismatchError naming each failed check.
    """
    statement, predicate = _signed_predicate(envelope)
    summary = validate_manifest(path)
    failures = _content_failures(summary, statement, predicate)
    if failures:
        raise ManifestMismatchError(failures)
    hints = tuple(s.keyid for s in envelope.signatures)
    return ManifestVerification(summary, predicate, hints)


def verify_manifest(
    path: StrPath, envelope: dsse.Envelope, public_keys: Sequence[Ed25519PublicKey]
) -> ManifestVerification:
    """Check the file's digest, count, root and header against the signed statement, and
    the signature against ``public_keys``, together; ManifestMismatchError names every check
    that failed. A header that names the examiner's key must be signed by that key."""
    if not public_keys:
        raise ValueError("verify_manifest needs at least one public key")
    _signed_predicate(envelope)
    return verify_summary(validate_manifest(path), envelope, public_keys)


def verify_summary(
    summary: ManifestSummary, envelope: dsse.Envelope, public_keys: Sequence[Ed25519PublicKey]
) -> ManifestVerification:
    """:func:`verify_manifest` for a file already read (a reader's summary): for a caller
    that streams the entries somewhere else on the same pass."""
    if not public_keys:
        raise ValueError("verify_summary needs at least one public key")
    statement, predicate = _signed_predicate(envelope)
    failures = _content_failures(summary, statement, predicate)
    key_ids: tuple[str, ...] = ()
    try:
        key_ids = dsse.verify(envelope, public_keys).key_ids
    except SignatureError as exc:
        failures.append(("signature", str(exc)))
    examiner = summary.header.examiner_key_id
    if key_ids and examiner is not None and examiner not in key_ids:
        failures.append(("examiner-key", f"the header names examiner key {examiner}, but "
                                         f"the envelope is signed by {', '.join(key_ids)}"))
    if failures:
        raise ManifestMismatchError(failures)
    hints = tuple(s.keyid for s in envelope.signatures)
    return ManifestVerification(summary, predicate, hints, key_ids)
