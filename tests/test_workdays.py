"""Working days: the official calendar with 调休, admin overrides, and the fallback."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from flask import Flask

from tests.factories import TZ
from ticketing.extensions import db
from ticketing.models import CalendarDay, SlaTier
from ticketing.services import sla
from ticketing.services.workdays import WorkCalendar, cached_calendar, load_calendar

DAY = timedelta(days=1)


def local(*args: int) -> datetime:
    """A Shanghai wall-clock time as an aware datetime."""
    return datetime(*args, tzinfo=TZ)  # type: ignore[misc]


def general_tier() -> SlaTier:
    return SlaTier(code="general", name_zh="一般", name_en="General", accept_minutes=1440,
                   resolve_minutes=5 * 1440, working_days=True)


def test_a_make_up_saturday_is_a_working_day() -> None:
    assert WorkCalendar(TZ).is_workday(date(2025, 10, 11))


def test_national_day_is_not_a_working_day() -> None:
    assert not WorkCalendar(TZ).is_workday(date(2025, 10, 3))


def test_a_general_ticket_accepted_before_national_day_is_due_after_it() -> None:
    # Accepted 14:00 on Tue 30 Sep 2025, the last working day before 1–8 October.
    # Working days after it: 9 Oct (Thu), 10 (Fri), 11 (Sat, 调休), 13 (Mon), 14 (Tue).
    due = sla.resolve_deadline(general_tier(), local(2025, 9, 30, 14, 0), WorkCalendar(TZ))
    assert due == local(2025, 10, 14, 14, 0)


def test_one_working_day_from_a_friday_afternoon_ends_on_monday() -> None:
    due = sla.accept_deadline(general_tier(), local(2025, 11, 14, 16, 30), WorkCalendar(TZ))
    assert due == local(2025, 11, 17, 16, 30)


def test_a_ticket_filed_on_a_holiday_starts_counting_on_the_next_working_day() -> None:
    due = sla.accept_deadline(general_tier(), local(2025, 10, 4, 9, 0), WorkCalendar(TZ))
    assert due == local(2025, 10, 10, 0, 0)  # the whole of Thursday 9 October


def test_clock_tiers_ignore_the_calendar() -> None:
    urgent = SlaTier(code="urgent", name_zh="紧急", name_en="Urgent", accept_minutes=15,
                     resolve_minutes=1440, working_days=False)
    start = local(2025, 10, 1, 23, 50)
    assert sla.accept_deadline(urgent, start, WorkCalendar(TZ)) == start + timedelta(minutes=15)


def test_a_year_without_official_data_falls_back_to_monday_to_friday() -> None:
    cal = WorkCalendar(TZ)
    assert cal.is_workday(date(2031, 1, 6))  # a Monday
    assert not cal.is_workday(date(2031, 1, 4))  # a Saturday


def test_an_admin_override_beats_the_official_calendar() -> None:
    cal = WorkCalendar(TZ, overrides={date(2025, 11, 19): False, date(2025, 11, 22): True})
    assert not cal.is_workday(date(2025, 11, 19))
    assert cal.is_workday(date(2025, 11, 22))


def test_overrides_are_loaded_from_the_admin_table(ctx: Flask) -> None:
    db.session.add(CalendarDay(day=date(2031, 1, 6), is_workday=False, note="台风停工"))
    db.session.commit()
    assert not load_calendar(TZ).is_workday(date(2031, 1, 6))


def test_the_kept_calendar_sees_an_admin_change_made_in_this_process_at_once(ctx: Flask) -> None:
    assert cached_calendar(TZ).is_workday(date(2031, 1, 7))  # a Tuesday, now kept
    db.session.add(CalendarDay(day=date(2031, 1, 7), is_workday=False, note="台风停工"))
    db.session.commit()
    assert not cached_calendar(TZ).is_workday(date(2031, 1, 7))
    db.session.delete(db.session.get(CalendarDay, date(2031, 1, 7)))
    db.session.commit()
    assert cached_calendar(TZ).is_workday(date(2031, 1, 7))


def test_working_time_between_skips_holidays() -> None:
    cal = WorkCalendar(TZ)
    assert cal.between(local(2025, 9, 30, 12, 0), local(2025, 10, 9, 12, 0)) == DAY


def test_a_hold_over_a_weekend_moves_a_working_day_deadline_by_working_time_only() -> None:
    tier, cal = general_tier(), WorkCalendar(TZ)
    held, resumed = local(2025, 11, 14, 12, 0), local(2025, 11, 17, 12, 0)  # Fri noon → Mon noon
    pause = sla.counted_pause(tier, held, resumed, cal)
    assert pause == DAY
    assert sla.extend_for_pause(tier, local(2025, 11, 19, 9, 0), pause, cal) == local(2025, 11, 20, 9, 0)


@pytest.mark.parametrize("hours", [0, 1, 23, 24, 25, 24 * 9])
def test_add_and_between_agree(hours: int) -> None:
    cal = WorkCalendar(TZ)
    start = datetime(2025, 9, 29, 1, 0, tzinfo=UTC)
    end = cal.add(start, timedelta(hours=hours))
    assert cal.between(start, end) == timedelta(hours=hours)


def test_deadlines_keep_the_zone_of_their_start() -> None:
    start = datetime(2025, 11, 14, 8, 30, tzinfo=UTC)
    due = sla.accept_deadline(general_tier(), start, WorkCalendar(TZ))
    assert due.tzinfo is UTC


def test_a_ticket_is_due_soon_in_the_last_quarter_of_its_limit(ctx: Flask) -> None:
    from ticketing.models import Ticket

    tier = SlaTier(code="utility", name_zh="水电", name_en="Utilities", accept_minutes=30,
                   resolve_minutes=1440, working_days=False)
    start = local(2025, 11, 14, 9, 0)
    ticket = Ticket(status="dispatched", tier=tier, accept_due_at=start + timedelta(minutes=30))
    cal = WorkCalendar(TZ)
    assert not sla.due_soon(ticket, start + timedelta(minutes=22), cal)
    assert sla.due_soon(ticket, start + timedelta(minutes=23), cal)
    assert not sla.due_soon(ticket, start + timedelta(minutes=31), cal)  # overdue, not "soon"


def test_a_deadline_at_midnight_reads_as_24_00_of_the_day_before(ctx: Flask) -> None:
    show = ctx.jinja_env.filters["deadline"]
    assert show(local(2025, 10, 10, 0, 0)) == "2025-10-09 24:00"
    assert show(local(2025, 10, 10, 14, 5)) == "2025-10-10 14:05"
