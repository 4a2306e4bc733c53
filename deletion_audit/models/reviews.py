"""Follow-up reviews (回头看): each case's plan and its reviews, each due at an instant of the
domain clock. An unannounced review's instant is drawn when the plan is anchored and only
a salted commitment to it is logged until the review opens."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from deletion_audit.models.base import Base, UtcDateTime, check_in


class ReviewKind(StrEnum):
    ANNOUNCED = "announced"
    UNANNOUNCED = "unannounced"
    # Started now by the prosecutor.
    ON_DEMAND = "on_demand"


class ReviewState(StrEnum):
    PLANNED = "planned"
    OPEN = "open"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class ReviewOutcome(StrEnum):
    CLEAN = "clean"
    FINDINGS = "findings"
    NO_RESPONSE = "no_response"


class ReviewPlan(Base):
    """A case's review plan. ``anchored_at`` is the case's first ``verified`` verdict: the
    reviews are scheduled (and the unannounced ones drawn) when it is set."""

    __tablename__ = "review_plans"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    offsets_days: Mapped[list[int]] = mapped_column(JSON)
    unannounced_count: Mapped[int] = mapped_column(Integer)
    window_from_days: Mapped[int] = mapped_column(Integer)
    window_to_days: Mapped[int] = mapped_column(Integer)
    response_hours: Mapped[int] = mapped_column(Integer)
    anchored_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Review(Base):
    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    # Known to the service from the start; an unannounced one is shown to nobody (API, log)
    # before it opens.
    due_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    # Unannounced: hex SHA-256(due instant ‖ salt), logged when drawn; the salt is logged
    # with the instant when the review opens.
    commitment: Mapped[str | None] = mapped_column(String(64))
    salt: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    response_hours: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    opened_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    closes_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    challenge_ids: Mapped[list[int] | None] = mapped_column(JSON)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    outcome: Mapped[str | None] = mapped_column(String(16))
    findings: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    statement_id: Mapped[str | None] = mapped_column(String(64))
    envelope: Mapped[bytes | None] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))

    __table_args__ = (
        CheckConstraint(check_in("kind", ReviewKind), name="kind"),
        CheckConstraint(check_in("state", ReviewState), name="state"),
        CheckConstraint(f"outcome IS NULL OR {check_in('outcome', ReviewOutcome)}",
                        name="outcome"),
    )
