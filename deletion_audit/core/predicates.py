"""Our predicate types: one namespace of versioned URIs, one model per predicate.

Every predicate type deletion-audit defines is ``https://deletion-audit.org/attestation/
<name>/v<major>`` and is registered in :data:`PREDICATE_MODELS`, nowhere else.

:class:`~deletion_audit.core.errors.PredicateError` is *the* error for our predicates: a
statement whose ``predicateType`` is in our namespace but unknown, or whose predicate breaks
its schema, raises it with the predicate type and the offending field(s) in the message.
Statements with foreign predicate types are not our business here (:func:`parse_predicate`
returns ``None``), so generic tools keep accepting any valid in-toto Statement.

Unlike the Statement layer, our predicates reject unknown fields (``extra="forbid"``). The
in-toto rule to ignore them exists so that producers can evolve independently of consumers;
here we are the only producer, so an unknown field is a bug or a forgery, and a predicate
that means something new gets a new major version (a new URI) instead. Types are strict for
the same reason: ``"3"`` is not a sequence number, ``1`` is not ``true``.

Field names are lowerCamelCase on the wire (in-toto convention) and snake_case in Python;
times are RFC 3339 UTC with ``Z``; digests and key ids are lowercase hex SHA-256.

Each model is deliberately small and separate: later work extends one predicate without
touching the others (a new optional field within a major version, or a new version).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from deletion_audit.core.b64 import b64decode, b64encode
from deletion_audit.core.errors import FormatError, PredicateError
from deletion_audit.core.statements import Statement

NAMESPACE = "https://deletion-audit.org/attestation/"

# The most item digests one statement may carry (DESIGN: multi-part results).
MAX_DIGESTS_PER_STATEMENT = 10_000


def predicate_type_uri(name: str, version: int = 1) -> str:
    return f"{NAMESPACE}{name}/v{version}"


MANIFEST = predicate_type_uri("manifest")
SCAN = predicate_type_uri("scan")
DELETION = predicate_type_uri("deletion")
CUSTODY = predicate_type_uri("custody")
CUSTODY_STATEMENT = predicate_type_uri("custody", 2)
DEIDENTIFY = predicate_type_uri("deidentify")
VENDOR = predicate_type_uri("vendor")
KEY_REGISTRATION = predicate_type_uri("key-registration")
SESSION = predicate_type_uri("session")
SUMMARY = predicate_type_uri("summary")
JUDGMENT = predicate_type_uri("judgment")
VERDICT = predicate_type_uri("verdict")


# -- field types -----------------------------------------------------------------------

_RFC3339_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z")


def _parse_timestamp(value: object) -> datetime:
    if isinstance(value, datetime):
        if value.utcoffset() != timedelta(0):
            raise ValueError("must be a UTC datetime")
        return value
    if not isinstance(value, str) or not _RFC3339_Z.fullmatch(value):
        raise ValueError("must be an RFC 3339 UTC time like 2026-03-02T01:30:00Z")
    return datetime.fromisoformat(value)


def format_timestamp(value: datetime) -> str:
    """RFC 3339 UTC with ``Z``, seconds precision unless there are microseconds."""
    text = value.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


Timestamp = Annotated[
    datetime, BeforeValidator(_parse_timestamp), PlainSerializer(format_timestamp, return_type=str)
]
HexDigest = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""Lowercase hex SHA-256 (item digests, key ids, statement ids, roots)."""
NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,63}$")]
ReasonCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]
"""A verdict's reason code (``source_not_covered``: DESIGN.md spells them with ``_``)."""
Count = Annotated[int, Field(ge=0)]
DigestList = Annotated[list[HexDigest], Field(max_length=MAX_DIGESTS_PER_STATEMENT)]


class PredicateModel(BaseModel):
    """Base of our predicates: strict, closed, immutable, lowerCamelCase on the wire."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        # Python code builds predicates by field name; parse_predicate reads the wire form
        # by alias only, so a snake_case key in a statement is an unknown field.
        validate_by_name=True,
    )

    PREDICATE_TYPE: ClassVar[str]

    def to_predicate(self) -> dict[str, Any]:
        """The predicate object for a Statement: aliases, JSON types, and optional fields
        left out while they hold their default, so that adding an optional field later
        does not change the bytes of statements that do not use it. (Required fields are
        always written, ``null`` included: ``prev`` of a first statement.)"""
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=True)


class _Chained(PredicateModel):
    """What every agent statement carries: its place in the agent's history."""

    case_id: NonEmpty
    agent_id: NonEmpty
    seq: Count
    prev: HexDigest | None
    """Statement id of the agent's previous statement; null only for its first."""
    agent_build_digest: HexDigest

    @model_validator(mode="after")
    def _first_has_no_prev(self) -> _Chained:
        if (self.seq == 0) != (self.prev is None):
            raise ValueError("prev is null exactly for the agent's first statement (seq 0)")
        return self


# -- manifest --------------------------------------------------------------------------


class ManifestPredicate(PredicateModel):
    """The examiner's commitment to a manifest file (the statement's subject)."""

    PREDICATE_TYPE: ClassVar[str] = MANIFEST

    format_name: NonEmpty
    format_version: Annotated[int, Field(ge=1)]
    case_number: NonEmpty
    hash_algorithm: Literal["sha256"]
    count: Annotated[int, Field(gt=0)]
    root: HexDigest
    """RFC 6962 root over the manifest's leaves."""
    created_at: Timestamp
    examiner_key_id: HexDigest | None
    """As in the manifest header: null when the file names no examiner key (then the
    envelope's signature alone says who signed). Always written, null included."""


# -- scan ------------------------------------------------------------------------------


class ScanCounts(PredicateModel):
    objects: Count
    """Objects seen in the scope."""
    hashed: Count
    hashed_bytes: Count
    present: Count
    """Manifest items found present, over all parts."""
    skipped: dict[Slug, Count] = Field(default_factory=dict)
    """Objects not hashed, by reason (``too-large``, ``unreadable``, ...)."""


AGE_BUCKETS: tuple[tuple[str, float], ...] = (
    ("under-1h", 1.0), ("under-24h", 24.0), ("under-7d", 24.0 * 7), ("under-30d", 24.0 * 30),
    ("older", float("inf")),
)
"""A scan's age histogram: each label counts objects younger than its bound in hours (and
not younger than the previous one)."""


class AgeSummary(PredicateModel):
    """The ages of one kind of object in a scope under a ``retention`` rule: how many, the
    oldest's instant (file mtime, object LastModified, the SQL scope's timestamp column),
    and a histogram over :data:`AGE_BUCKETS`, ages measured at the scan's ``startedAt``."""

    count: Count
    oldest: Timestamp
    histogram: dict[Slug, Count]

    @model_validator(mode="after")
    def _histogram_adds_up(self) -> AgeSummary:
        unknown = set(self.histogram) - {label for label, _ in AGE_BUCKETS}
        if unknown:
            raise ValueError(f"unknown age buckets: {sorted(unknown)}")
        if sum(self.histogram.values()) != self.count:
            raise ValueError("the age histogram does not add up to count")
        return self


class ScanPredicate(_Chained):
    """One part of an agent's scan of one scope. The last part carries the totals."""

    PREDICATE_TYPE: ClassVar[str] = SCAN

    scope_id: NonEmpty
    scope_spec_digest: HexDigest
    scan_id: NonEmpty
    part: Annotated[int, Field(ge=1)]
    last: bool
    challenge: NonEmpty | None = None
    """The nonce of the challenge this scan answers; absent for an unchallenged scan."""
    present_digests: DigestList
    """Manifest items (confirmed hits) found in this part."""
    skipped_path_hashes: DigestList = Field(default_factory=list)
    """Keyed hashes of skipped paths: the paths themselves stay on the host."""
    coverage: Literal["complete", "partial"] | None = None
    counts: ScanCounts | None = None
    root: HexDigest | None = None
    """RFC 6962 root, in scan order, over every object hashed in all parts."""
    ages: dict[Slug, AgeSummary] | None = None
    """Per kind of object, its age summary: only on the last part, only for a scope under a
    ``retention`` rule (optional: statements without it keep their bytes)."""
    started_at: Timestamp
    finished_at: Timestamp

    @model_validator(mode="after")
    def _totals_on_last_part(self) -> ScanPredicate:
        totals = (self.counts, self.root, self.coverage)
        if self.last and any(t is None for t in totals):
            raise ValueError("the last part must carry counts, root and coverage")
        if not self.last and any(t is not None for t in totals):
            raise ValueError("only the last part carries counts, root and coverage")
        if not self.last and self.ages is not None:
            raise ValueError("only the last part carries ages")
        if self.finished_at < self.started_at:
            raise ValueError("finishedAt is before startedAt")
        return self


# -- deletion --------------------------------------------------------------------------


class DeletionPredicate(_Chained):
    """Items an agent removed from one scope, and how thoroughly."""

    PREDICATE_TYPE: ClassVar[str] = DELETION

    scope_id: NonEmpty
    grade: Literal["logical", "restricted", "sanitised", "deidentified"]
    method: Slug
    """How: ``unlink``, ``sql-delete``, ``object-delete``, ``overwrite``, ..."""
    deleted_digests: Annotated[
        list[HexDigest], Field(min_length=1, max_length=MAX_DIGESTS_PER_STATEMENT)
    ]
    deleted_at: Timestamp


# -- custody ---------------------------------------------------------------------------


class CustodyPredicate(_Chained):
    """A sealed backup (``custody-until`` obligation): sealed, or later destroyed."""

    PREDICATE_TYPE: ClassVar[str] = CUSTODY

    medium_id: NonEmpty
    action: Literal["sealed", "destroyed"]
    item_count: Count
    items_root: HexDigest | None = None
    """The inventory root of what was sealed."""
    container_digest: HexDigest | None = None
    """``sealed``: the SHA-256 of the sealed container as a whole, which the custodian's
    agent re-hashes (a ``sealed_container`` scope) until the custody ends."""
    occurred_at: Timestamp


class CustodyStatementPredicate(PredicateModel):
    """A custodian party's own statement about a sealed backup it holds (``custody-until``
    obligation, CASES.md case 4), signed by a person of that party. A new major version of
    custody rather than a change to v1: v1 is an agent's chained statement (seq, prev,
    build digest), which a person has no use for; this one names the obligation instead."""

    PREDICATE_TYPE: ClassVar[str] = CUSTODY_STATEMENT

    case_id: NonEmpty
    obligation_id: NonEmpty
    party_id: NonEmpty
    medium_id: NonEmpty
    action: Literal["sealed", "destroyed", "sanitised"]
    item_count: Count
    items_root: HexDigest | None = None
    """The inventory root of what was sealed."""
    container_digest: HexDigest | None = None
    """``sealed``: the SHA-256 of the sealed container as a whole, which the custodian's
    agent re-hashes (a ``sealed_container`` scope) until the custody ends."""
    occurred_at: Timestamp


# -- deidentify ------------------------------------------------------------------------


class DeidentifyPredicate(PredicateModel):
    """A published dataset checked against masking rules (never called anonymous)."""

    PREDICATE_TYPE: ClassVar[str] = DEIDENTIFY

    case_id: NonEmpty
    dataset_name: NonEmpty
    dataset_digest: HexDigest
    records: Count
    rules: Annotated[list[Slug], Field(min_length=1)]
    result: Literal["pass", "fail"]
    checked_at: Timestamp


# -- vendor ----------------------------------------------------------------------------


class VendorPredicate(PredicateModel):
    """A vendor party's statement about one declared data flow."""

    PREDICATE_TYPE: ClassVar[str] = VENDOR

    case_id: NonEmpty
    party_id: NonEmpty
    flow_id: NonEmpty
    status: Literal["deleted", "not-received", "retained-under-custody"]
    item_count: Count | None = None
    stated_at: Timestamp


# -- key registration ------------------------------------------------------------------


class AgentHost(PredicateModel):
    hostname_sha256: HexDigest | None = None
    machine_id_sha256: HexDigest | None = None
    os: Annotated[str, StringConstraints(max_length=256)] | None = None
    machine: Annotated[str, StringConstraints(max_length=64)] | None = None


class KeyRegistrationPredicate(PredicateModel):
    """A key and who holds it; every key we accept a signature from is registered."""

    PREDICATE_TYPE: ClassVar[str] = KEY_REGISTRATION

    key_id: HexDigest
    public_key: NonEmpty
    """Standard base64 of the raw 32-byte Ed25519 public key."""
    subject_type: Literal["agent", "user", "service", "log"]
    subject_id: NonEmpty
    registered_at: Timestamp
    case_id: NonEmpty | None = None
    party_id: NonEmpty | None = None
    role: Literal["respondent", "vendor", "custodian", "forensic-lab",
                  "procuratorate"] | None = None
    """The party an agent was enrolled for: how an examiner's agent is told from the
    company's."""
    scope_ids: list[NonEmpty] | None = None
    session_id: NonEmpty | None = None
    note_verifier_key: NonEmpty | None = None
    """C2SP signed-note verifier key string, for the log key."""
    build_digest: HexDigest | None = None
    """An agent's: the digest of the agent build that enrolled."""
    agent_version: NonEmpty | None = None
    host: AgentHost | None = None
    """An agent's host facts; the place details only as SHA-256 (the log is public)."""

    @model_validator(mode="after")
    def _key_id_matches(self) -> KeyRegistrationPredicate:
        try:
            raw = b64decode(self.public_key)
        except FormatError as exc:
            raise ValueError(f"publicKey: {exc}") from None
        if b64encode(raw) != self.public_key:
            raise ValueError("publicKey must be standard, padded base64")
        if len(raw) != 32:
            raise ValueError(f"publicKey must be 32 bytes, got {len(raw)}")
        if hashlib.sha256(raw).hexdigest() != self.key_id:
            raise ValueError("keyId is not the SHA-256 of publicKey")
        return self


# -- session ---------------------------------------------------------------------------


class SessionParticipantEntry(PredicateModel):
    """Who was there: a case member (by id), the role they hold in the case, their
    organisation, and when they were told of the session."""

    user_id: NonEmpty
    role: Literal["prosecutor", "examiner", "company_officer", "witness"]
    organisation: NonEmpty
    notified_at: Timestamp


class SessionScan(PredicateModel):
    """One scan that answered a challenge of the session, and whose agent ran it."""

    agent_id: NonEmpty
    attested_by: Literal["examiner", "company"]
    agent_build_digest: HexDigest | None
    scan_id: NonEmpty
    challenge_id: NonEmpty
    coverage: NonEmpty | None
    objects: Count
    items_present: Count


class SessionScope(PredicateModel):
    """What the session found in one scope, and how the examiner's scan compares with the
    company's own (items only one of them found)."""

    scope_id: NonEmpty
    spec_digest: HexDigest
    scans: Annotated[list[SessionScan], Field(min_length=1)]
    items_present: Count
    found_by_examiner_only: Count
    found_by_company_only: Count


class EnvironmentCheck(PredicateModel):
    """What the examiner checked on site: the machine inspected is the one declared. Host
    facts only as SHA-256 (the record is public)."""

    checked_by: NonEmpty
    checked_at: Timestamp
    host_matches_declared: bool
    hostname_sha256: HexDigest | None = None
    machine_id_sha256: HexDigest | None = None
    volume_ids_sha256: list[HexDigest] = []
    note: Annotated[str, StringConstraints(max_length=4096)] = ""


class SessionSummary(PredicateModel):
    """The plain-language text a participant reads before signing: part of the record, so
    what they read is exactly what they sign."""

    zh: Annotated[str, StringConstraints(min_length=1, max_length=8192)]
    en: Annotated[str, StringConstraints(min_length=1, max_length=8192)]


class SessionPredicate(PredicateModel):
    """An on-site verification record, co-signed by its participants (one DSSE envelope
    with several signatures).

    Counts and a salted commitment only: the public tier checks every signature, the
    court tier adds the item lists that open ``items_commitment``
    (``SHA-256(salt ‖ JCS(lists))``).
    """

    PREDICATE_TYPE: ClassVar[str] = SESSION

    case_id: NonEmpty
    session_id: NonEmpty
    place: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    planned_at: Timestamp
    sign_off: NonEmpty
    """The rule that closes the session: ``all``, or terms like ``prosecutor+2-witnesses``."""
    participants: Annotated[list[SessionParticipantEntry], Field(min_length=1)]
    scopes: Annotated[list[SessionScope], Field(min_length=1)]
    scan_ids: Annotated[list[NonEmpty], Field(min_length=1)]
    objects_scanned: Count
    items_present: Count
    items_commitment: HexDigest
    environment: EnvironmentCheck
    remarks: Annotated[str, StringConstraints(max_length=8192)] = ""
    summary: SessionSummary
    outcome: Literal["clean", "findings"]
    started_at: Timestamp
    finished_at: Timestamp


# -- summary ---------------------------------------------------------------------------


class SummaryPredicate(PredicateModel):
    """The service's counts-only summary of one scan, for the public tier."""

    PREDICATE_TYPE: ClassVar[str] = SUMMARY

    case_id: NonEmpty
    scope_id: NonEmpty
    agent_id: NonEmpty
    scan_id: NonEmpty
    statement_ids: Annotated[list[HexDigest], Field(min_length=1)]
    """Ids of the scan's statements (all parts) that this summarises."""
    challenged: bool
    objects: Count
    items_present: Count
    finished_at: Timestamp
    issued_at: Timestamp


# -- judgment --------------------------------------------------------------------------


class JudgmentPredicate(PredicateModel):
    """A finding the service made on its own clock (silent agent, overdue deadline, ...)."""

    PREDICATE_TYPE: ClassVar[str] = JUDGMENT

    case_id: NonEmpty
    finding: Slug
    """``no-response``, ``silent-agent``, ``overdue``, ``fork``, ``chain-gap``, ..."""
    agent_id: NonEmpty | None = None
    scope_id: NonEmpty | None = None
    obligation_id: NonEmpty | None = None
    detail: Annotated[str, StringConstraints(max_length=4096)] = ""
    judged_at: Timestamp


# -- verdict ---------------------------------------------------------------------------


class VerdictItemCounts(PredicateModel):
    total: Count
    present: Count
    deleted: Count
    unseen: Count


class VerdictPredicate(PredicateModel):
    """The reconciliation of a case as of a log size: one outcome, with its reasons."""

    PREDICATE_TYPE: ClassVar[str] = VERDICT

    case_id: NonEmpty
    version: Annotated[int, Field(ge=1)]
    outcome: Literal["verified", "not_verified", "insufficient_evidence"]
    reasons: list[ReasonCode]
    items: VerdictItemCounts
    as_of_log_size: Count
    as_of: Timestamp


# -- registry and parsing --------------------------------------------------------------

PREDICATE_MODELS: Mapping[str, type[PredicateModel]] = {
    model.PREDICATE_TYPE: model
    for model in (
        ManifestPredicate, ScanPredicate, DeletionPredicate, CustodyPredicate,
        CustodyStatementPredicate,
        DeidentifyPredicate, VendorPredicate, KeyRegistrationPredicate, SessionPredicate,
        SummaryPredicate, JudgmentPredicate, VerdictPredicate,
    )
}

M = TypeVar("M", bound=PredicateModel)


def is_ours(predicate_type: str) -> bool:
    return predicate_type.startswith(NAMESPACE)


def parse_predicate(statement: Statement) -> PredicateModel | None:
    """Our predicate model for ``statement``, or ``None`` for a foreign predicate type.

    PredicateError for a predicate type in our namespace that we do not define, or a
    predicate that breaks its schema.
    """
    if not is_ours(statement.predicate_type):
        return None
    model = PREDICATE_MODELS.get(statement.predicate_type)
    if model is None:
        known = ", ".join(sorted(PREDICATE_MODELS))
        raise PredicateError(
            f"unknown predicate type {statement.predicate_type} of deletion-audit; "
            f"known: {known}"
        )
    return _validate(model, statement)


def expect_predicate(statement: Statement, model: type[M]) -> M:
    """The statement's predicate as ``model``; PredicateError if it is of another type."""
    if statement.predicate_type != model.PREDICATE_TYPE:
        raise PredicateError(
            f"expected predicate type {model.PREDICATE_TYPE}, got {statement.predicate_type}"
        )
    return _validate(model, statement)


def _validate(model: type[M], statement: Statement) -> M:
    try:
        return model.model_validate(dict(statement.predicate), by_alias=True, by_name=False)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_location(error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise PredicateError(
            f"predicate of type {statement.predicate_type} is invalid: {problems}"
        ) from None


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(predicate)"
