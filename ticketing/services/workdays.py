"""The working-day calendar: China's official holidays and 调休 make-up days.

The `chinese-calendar` package knows the State Council's schedule for the years it
has data for; a year it does not know gets the statutory holidays computed from the
law (services/holidays.py); admins add or override single days (`CalendarDay`),
which is how a later year's 调休 make-up working days get in.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo

from sqlalchemy import select

from ticketing.extensions import db
from ticketing.models import CalendarDay
from ticketing.services import refcache
from ticketing.services.holidays import official_workday

DAY = timedelta(days=1)
# Guards the day walk against a calendar with no working days at all.
MAX_DAYS_SCANNED = 3660

__all__ = ["DAY", "WorkCalendar", "cached_calendar", "load_calendar", "official_workday"]


@dataclass(frozen=True)
class WorkCalendar:
    """Working days in one time zone, with admin overrides taking precedence."""

    tz: tzinfo
    overrides: dict[date, bool] = field(default_factory=dict)

    def is_workday(self, day: date) -> bool:
        """True when the day is a working day."""
        if day in self.overrides:
            return self.overrides[day]
        return official_workday(day)

    def next_workday(self, day: date) -> date:
        """The first working day on or after `day`."""
        for _ in range(MAX_DAYS_SCANNED):
            if self.is_workday(day):
                return day
            day += DAY
        raise ValueError("no working day within ten years; check the calendar overrides")

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The moment `duration` of working time after `start` (an aware datetime).

        Working time runs only on working days, midnight to midnight local time, so
        "1 working day" from 14:00 on a working day ends at 14:00 on the next one,
        and from a holiday it ends at the end of the next working day.
        """
        local = start.astimezone(self.tz)
        day = local.date()
        offset = local - datetime.combine(day, time(), self.tz)
        if not self.is_workday(day):
            day, offset = self.next_workday(day + DAY), timedelta()
        remaining = duration
        while True:
            left_today = DAY - offset
            if remaining <= left_today:
                moment = datetime.combine(day, time(), self.tz) + offset + remaining
                return moment.astimezone(start.tzinfo)
            remaining -= left_today
            day, offset = self.next_workday(day + DAY), timedelta()

    def between(self, start: datetime, end: datetime) -> timedelta:
        """The working time that passes from `start` to `end` (zero if end ≤ start)."""
        if end <= start:
            return timedelta()
        total = timedelta()
        cursor = start.astimezone(self.tz)
        stop = end.astimezone(self.tz)
        while cursor < stop:
            midnight = datetime.combine(cursor.date() + DAY, time(), self.tz)
            piece_end = min(midnight, stop)
            if self.is_workday(cursor.date()):
                total += piece_end - cursor
            cursor = piece_end
        return total


def load_calendar(tz: tzinfo) -> WorkCalendar:
    """The calendar with every admin override from the database."""
    rows = db.session.execute(select(CalendarDay.day, CalendarDay.is_workday)).all()
    return WorkCalendar(tz=tz, overrides={day: is_workday for day, is_workday in rows})


def cached_calendar(tz: tzinfo) -> WorkCalendar:
    """`load_calendar`, kept per process (services/refcache.py): what a request's
    deadlines are counted by. An admin's change made in this process is seen at once, one
    made in another within `refcache.TTL` seconds. The scheduled jobs load it afresh."""
    calendar = refcache.remember(("calendar", str(tz)), lambda: load_calendar(tz))
    assert calendar is not None  # load_calendar always makes one
    return calendar
