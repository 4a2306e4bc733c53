"""Age summaries for scopes under a ``retention`` rule: per kind of object, how many, the
oldest, and a histogram over the predicate's fixed buckets. Only counts and one instant
per kind leave the host, never a locator.

The kind is the MIME top-level type guessed from the locator's name (``image`` for
``face.jpg``); every row of a SQL scope is a ``row`` (the scope's table is what the rule
is about); objects whose kind cannot be told are ``other``."""

from __future__ import annotations

import mimetypes
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from deletion_audit.core.predicates import AGE_BUCKETS, AgeSummary

OTHER = "other"
SQL_KIND = "row"


def kind_of(locator: str) -> str:
    guessed, _ = mimetypes.guess_type(locator, strict=False)
    return guessed.split("/", 1)[0] if guessed else OTHER


def bucket(age_hours: float) -> str:
    for label, bound in AGE_BUCKETS:
        if age_hours < bound:
            return label
    return AGE_BUCKETS[-1][0]  # pragma: no cover - the last bound is infinite


@dataclass
class _Kind:
    count: int = 0
    oldest: float = float("inf")
    histogram: Counter[str] = field(default_factory=Counter)


class AgeTally:
    """Feed ``(locator, modified_at)`` during the scan, :meth:`summary` at its end; ages
    are measured at ``at`` (the scan's start), so memory stays bounded however many
    objects the scope holds. ``kind`` fixes one kind for every object (a SQL scope's rows).
    An object written after ``at`` counts as age 0."""

    def __init__(self, at: datetime, *, kind: str | None = None) -> None:
        self.at = at.timestamp()
        self.kind = kind
        self._kinds: dict[str, _Kind] = {}

    def add(self, locator: str, modified_at: float | None) -> None:
        if modified_at is None:
            return
        kind = self.kind or kind_of(locator)
        entry = self._kinds.setdefault(kind, _Kind())
        entry.count += 1
        entry.oldest = min(entry.oldest, modified_at)
        entry.histogram[bucket(max(0.0, self.at - modified_at) / 3600)] += 1

    def summary(self) -> dict[str, AgeSummary]:
        return {kind: AgeSummary(count=e.count,
                                 oldest=datetime.fromtimestamp(e.oldest, UTC),
                                 histogram=dict(e.histogram))
                for kind, e in sorted(self._kinds.items())}
