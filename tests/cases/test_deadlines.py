"""Deadline rules on real PRC dates (holiday data from chinese_calendar)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from deletion_audit.cases.deadlines import (
    PRESETS,
    DeadlineRule,
    HolidayRule,
    PeriodUnit,
    RuleError,
    add_months,
    build_rule,
    compute_due,
    from_preset,
)


def rule(served: date, amount: int, unit: PeriodUnit,
         holiday: HolidayRule = HolidayRule.NEXT_WORKING_DAY) -> DeadlineRule:
    return DeadlineRule(start_event="检察建议书送达", served_on=served, amount=amount, unit=unit,
                        holiday_rule=holiday)


class TestAddMonths:
    @pytest.mark.parametrize(
        ("start", "months", "expected"),
        [
            (date(2026, 1, 31), 1, date(2026, 2, 28)),  # no Feb 31: the month's last day
            (date(2028, 1, 31), 1, date(2028, 2, 29)),  # leap year
            (date(2026, 3, 31), 2, date(2026, 5, 31)),
            (date(2026, 12, 15), 2, date(2027, 2, 15)),  # across the year end
            (date(2026, 8, 31), 1, date(2026, 9, 30)),
        ],
    )
    def test_corresponding_day_or_month_end(self, start: date, months: int,
                                            expected: date) -> None:
        assert add_months(start, months) == expected


class TestComputeDue:
    def test_day_of_service_is_not_counted(self) -> None:
        # Served Tue 3 March 2026, 1 day: the last day is Wed 4 March.
        due = compute_due(rule(date(2026, 3, 3), 1, PeriodUnit.DAYS))
        assert due.last_day == date(2026, 3, 4)

    def test_due_instant_is_end_of_last_day_in_beijing(self) -> None:
        due = compute_due(rule(date(2026, 3, 3), 1, PeriodUnit.DAYS))
        # 24:00 Beijing (UTC+8) on 4 March is 16:00 UTC on 4 March.
        assert due.due_at == datetime(2026, 3, 4, 16, 0, tzinfo=UTC)
        assert due.provisional is False

    def test_last_day_on_a_weekend_moves_to_monday(self) -> None:
        # Served Mon 2 March 2026 + 5 days = Sat 7 March → Mon 9 March.
        due = compute_due(rule(date(2026, 3, 2), 5, PeriodUnit.DAYS))
        assert due.last_day == date(2026, 3, 9)

    def test_holiday_rule_none_keeps_the_weekend_day(self) -> None:
        due = compute_due(rule(date(2026, 3, 2), 5, PeriodUnit.DAYS, HolidayRule.NONE))
        assert due.last_day == date(2026, 3, 7)

    def test_last_day_in_national_day_holiday_moves_past_it(self) -> None:
        # 1 Sep 2026 + 30 days = 1 Oct (National Day, holiday 1-7 Oct) → Thu 8 Oct.
        due = compute_due(rule(date(2026, 9, 1), 30, PeriodUnit.DAYS))
        assert due.last_day == date(2026, 10, 8)

    def test_working_days_skip_national_day_and_count_the_make_up_saturday(self) -> None:
        # Served Mon 28 Sep 2026: 29, 30 Sep; 1-7 Oct off; 8, 9 Oct; Sat 10 Oct is a
        # make-up workday (调休), so it is the fifth working day.
        due = compute_due(rule(date(2026, 9, 28), 5, PeriodUnit.WORKING_DAYS))
        assert due.last_day == date(2026, 10, 10)

    def test_month_end_clamp_lands_on_a_make_up_workday(self) -> None:
        # Jan 31 + 1 month = Feb 28, 2026: a Saturday, but a Spring Festival make-up
        # workday, so it stays.
        due = compute_due(rule(date(2026, 1, 31), 1, PeriodUnit.MONTHS))
        assert due.last_day == date(2026, 2, 28)

    def test_month_period_ending_in_spring_festival(self) -> None:
        # 15 Jan + 1 month = 15 Feb 2026, inside the Spring Festival holiday (15-23 Feb).
        due = compute_due(rule(date(2026, 1, 15), 1, PeriodUnit.MONTHS))
        assert due.last_day == date(2026, 2, 24)

    def test_working_days_across_spring_festival(self) -> None:
        # Served Thu 12 Feb 2026: Fri 13, Sat 14 (make-up workday), then 15-23 off,
        # Tue 24 is the third working day.
        due = compute_due(rule(date(2026, 2, 12), 3, PeriodUnit.WORKING_DAYS))
        assert due.last_day == date(2026, 2, 24)

    def test_beyond_published_holiday_data_is_provisional(self) -> None:
        due = compute_due(rule(date(2026, 12, 20), 30, PeriodUnit.DAYS))
        assert due.last_day == date(2027, 1, 19)
        assert due.provisional is True

    def test_a_period_that_stays_within_published_data_is_not_provisional(self) -> None:
        due = compute_due(rule(date(2026, 11, 1), 10, PeriodUnit.WORKING_DAYS))
        assert due.provisional is False

    def test_zero_working_days_is_refused(self) -> None:
        with pytest.raises(RuleError, match="1 to"):
            rule(date(2026, 3, 2), 0, PeriodUnit.WORKING_DAYS)


class TestPresets:
    def test_two_month_reply(self) -> None:
        # Served Mon 2 March 2026 → 2 May, inside the Labour Day holiday (1-5 May) → 6 May.
        r = from_preset("reply-2-months", start_event="检察建议书送达", served_on=date(2026, 3, 2))
        assert (r.amount, r.unit) == (2, PeriodUnit.MONTHS)
        assert compute_due(r).last_day == date(2026, 5, 6)

    def test_thirty_day_announcement(self) -> None:
        r = from_preset("announcement-30-days", start_event="公告", served_on=date(2026, 4, 1))
        # 1 May is Labour Day (1-5 May): the period ends on Wed 6 May.
        assert compute_due(r).last_day == date(2026, 5, 6)

    def test_unknown_preset_names_the_known_ones(self) -> None:
        with pytest.raises(RuleError, match="reply-2-months"):
            from_preset("reply-3-years", start_event="x", served_on=date(2026, 3, 2))

    def test_every_preset_evaluates(self) -> None:
        for name in PRESETS:
            r = from_preset(name, start_event="x", served_on=date(2026, 3, 2))
            assert compute_due(r).last_day > date(2026, 3, 2)

    def test_build_rule_needs_a_preset_or_a_period(self) -> None:
        with pytest.raises(RuleError, match="preset"):
            build_rule(start_event="x", served_on=date(2026, 3, 2), amount=3)
        with pytest.raises(RuleError, match="no amount"):
            build_rule(start_event="x", served_on=date(2026, 3, 2), preset="reply-2-months",
                       amount=3)

    def test_rule_round_trips_through_json(self) -> None:
        r = build_rule(start_event="送达", served_on=date(2026, 3, 2), preset="reply-2-months",
                       holiday_rule=HolidayRule.NONE)
        assert DeadlineRule.from_json(r.to_json()) == r
        assert r.holiday_rule is HolidayRule.NONE
