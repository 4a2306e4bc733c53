"""Deadlines are rules, not timestamps (DESIGN, Contracts: Deadlines).

A rule is a start event with its date of **service** (送达: clocks start at service, not at
issue), a period, and what happens when the last day is not a working day. The due instant
is derived:

- the day of service is not counted; counting starts the next day (Civil Code Art. 201;
  Civil Procedure Law Art. 85);
- months end on the corresponding day of the final month, or on its last day when it has
  no such day (Civil Code Art. 202: Jan 31 + 1 month is Feb 28 or 29);
- working days are counted on the PRC calendar, make-up workdays (调休) included;
- a last day that is a statutory rest day (weekends included) moves to the next working
  day (Civil Code Art. 203), unless the rule says otherwise;
- the period ends at 24:00 Beijing time of the last day (Art. 203), stored in UTC.

Holiday data comes from ``chinese_calendar`` (the State Council's yearly notices), which
knows only the years already published. Beyond them a date counts as working on weekdays
only and the result is marked **provisional**: it may move when the notice appears.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import chinese_calendar  # type: ignore[import-untyped]  # ships no type information

BEIJING = ZoneInfo("Asia/Shanghai")
MAX_AMOUNT = 3650


class PeriodUnit(StrEnum):
    DAYS = "days"
    WORKING_DAYS = "working_days"
    MONTHS = "months"


class HolidayRule(StrEnum):
    NEXT_WORKING_DAY = "next_working_day"
    """A last day that is a rest day moves to the next working day (Civil Code Art. 203)."""
    NONE = "none"
    """The last day stands whatever day it is."""


class RuleError(ValueError):
    """A rule that cannot be evaluated (bad amount, unknown preset)."""


@dataclass(frozen=True)
class DeadlineRule:
    start_event: str
    served_on: date
    amount: int
    unit: PeriodUnit
    holiday_rule: HolidayRule = HolidayRule.NEXT_WORKING_DAY
    preset: str | None = None

    def __post_init__(self) -> None:
        low = 1 if self.unit is PeriodUnit.WORKING_DAYS else 0
        if not low <= self.amount <= MAX_AMOUNT:
            raise RuleError(f"a period of {self.unit.value} is {low} to {MAX_AMOUNT}, "
                            f"not {self.amount}")
        if not self.start_event.strip():
            raise RuleError("a deadline rule names its start event")

    def to_json(self) -> dict[str, Any]:
        return {
            "start_event": self.start_event, "served_on": self.served_on.isoformat(),
            "amount": self.amount, "unit": self.unit.value,
            "holiday_rule": self.holiday_rule.value, "preset": self.preset,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DeadlineRule:
        return cls(
            start_event=data["start_event"], served_on=date.fromisoformat(data["served_on"]),
            amount=data["amount"], unit=PeriodUnit(data["unit"]),
            holiday_rule=HolidayRule(data["holiday_rule"]), preset=data.get("preset"),
        )


@dataclass(frozen=True)
class Preset:
    amount: int
    unit: PeriodUnit
    holiday_rule: HolidayRule
    description: str


PRESETS: Mapping[str, Preset] = {
    # 诉前检察建议: the addressee replies in writing within two months of service.
    "reply-2-months": Preset(2, PeriodUnit.MONTHS, HolidayRule.NEXT_WORKING_DAY,
                             "检察建议书面回复：送达之日起两个月内"),
    # The same reply when the matter is urgent.
    "urgent-reply-15-days": Preset(15, PeriodUnit.DAYS, HolidayRule.NEXT_WORKING_DAY,
                                   "紧急情形书面回复：送达之日起十五日内"),
    # A court confirmation of an agreement is announced for 30 days (公告期).
    "announcement-30-days": Preset(30, PeriodUnit.DAYS, HolidayRule.NEXT_WORKING_DAY,
                                   "公告期三十日"),
    # 2025 face-recognition measures: filing within 30 working days.
    "filing-30-working-days": Preset(30, PeriodUnit.WORKING_DAYS,
                                     HolidayRule.NEXT_WORKING_DAY, "三十个工作日内备案"),
}


def from_preset(name: str, *, start_event: str, served_on: date) -> DeadlineRule:
    preset = PRESETS.get(name)
    if preset is None:
        raise RuleError(f"unknown deadline preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    return DeadlineRule(start_event=start_event, served_on=served_on, amount=preset.amount,
                        unit=preset.unit, holiday_rule=preset.holiday_rule, preset=name)


def build_rule(
    *, start_event: str, served_on: date, preset: str | None = None, amount: int | None = None,
    unit: PeriodUnit | None = None, holiday_rule: HolidayRule | None = None,
) -> DeadlineRule:
    """A rule from a preset (its holiday rule may be overridden) or from a period."""
    if preset is not None:
        if amount is not None or unit is not None:
            raise RuleError("a preset sets the period; give no amount or unit with it")
        rule = from_preset(preset, start_event=start_event, served_on=served_on)
        return replace(rule, holiday_rule=holiday_rule) if holiday_rule else rule
    if amount is None or unit is None:
        raise RuleError("give a preset, or an amount and a unit")
    return DeadlineRule(start_event=start_event, served_on=served_on, amount=amount,
                        unit=unit, holiday_rule=holiday_rule or HolidayRule.NEXT_WORKING_DAY)


@dataclass(frozen=True)
class Due:
    last_day: date
    due_at: datetime
    """24:00 Beijing time of ``last_day``, in UTC: overdue when ``now >= due_at``."""
    provisional: bool
    """Some day the result depends on lies beyond the published holiday data."""


class WorkCalendar(Protocol):
    def is_working_day(self, day: date) -> bool | None:
        """Whether ``day`` is a working day, or ``None`` beyond the calendar's data."""


class PrcCalendar:
    """The PRC calendar as ``chinese_calendar`` publishes it (make-up workdays included)."""

    def is_working_day(self, day: date) -> bool | None:
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            return None


PRC_CALENDAR = PrcCalendar()


class _Counter:
    """Answers working-day questions and remembers whether it had to guess."""

    def __init__(self, cal: WorkCalendar) -> None:
        self.cal = cal
        self.guessed = False

    def working(self, day: date) -> bool:
        known = self.cal.is_working_day(day)
        if known is None:
            self.guessed = True
            return day.weekday() < 5
        return known


def add_months(day: date, months: int) -> date:
    """The corresponding day ``months`` later, or that month's last day (Art. 202)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def end_of_day(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), BEIJING).astimezone(UTC)


def compute_due(rule: DeadlineRule, cal: WorkCalendar = PRC_CALENDAR) -> Due:
    counter = _Counter(cal)
    if rule.unit is PeriodUnit.WORKING_DAYS:
        last, counted = rule.served_on, 0
        while counted < rule.amount:
            last += timedelta(days=1)
            counted += counter.working(last)
    else:
        if rule.unit is PeriodUnit.DAYS:
            last = rule.served_on + timedelta(days=rule.amount)
        else:
            last = add_months(rule.served_on, rule.amount)
        if rule.holiday_rule is HolidayRule.NEXT_WORKING_DAY:
            while not counter.working(last):
                last += timedelta(days=1)
    return Due(last_day=last, due_at=end_of_day(last), provisional=counter.guessed)

