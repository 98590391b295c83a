"""The holiday calendar as admins run it: a year's special days with their source,
admin entries, and the confirmation of a year's 调休 make-up working days.

Every change goes through `set_day`, `unset_day` or `confirm_year`, and each of
them through `record_change`: the one place that makes a calendar change
attributable. Callers commit.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from chinese_calendar import Holiday
from sqlalchemy import select

from ticketing.extensions import db
from ticketing.models import CalendarDay, CalendarYear, User
from ticketing.services import audit
from ticketing.services.holidays import (
    ADMIN,
    DAY,
    official_holiday_of,
    official_source,
    official_workday,
    package_knows,
    statutory_holidays,
)

log = logging.getLogger(__name__)

# A year whose first day is this close (or that has begun) must be confirmed.
CONFIRM_AHEAD = timedelta(days=90)
# The years the pages and commands accept: lunar-python and the law cover them.
FIRST_YEAR, LAST_YEAR = 2000, 2099
MAX_NOTE = 200


@dataclass(frozen=True)
class SpecialDay:
    """A day that is not an ordinary Monday–Friday working day or weekend, or that an admin set."""

    day: date
    is_workday: bool
    source: str  # package | statutory | admin
    holiday: Holiday | None  # the holiday it belongs to (or makes up for), from the official calendar
    note: str = ""  # the admin's note
    official_workday: bool | None = None  # for an admin entry: what it replaces
    set_by: User | None = None
    set_at: datetime | None = None

    @property
    def holiday_zh(self) -> str:
        """The holiday's Chinese name, from the package's table, or ""."""
        return self.holiday.chinese if self.holiday else ""

    @property
    def cli_note(self) -> str:
        """The note the command line prints: the admin's, else the holiday's name."""
        return self.note or self.holiday_zh


def ordinary_workday(day: date) -> bool:
    """Monday–Friday working, weekends off: what a day is when nothing says otherwise."""
    return day.weekday() < 5


def days_of(year: int) -> list[date]:
    """Every date of a Gregorian year."""
    first = date(year, 1, 1)
    return [first + DAY * n for n in range((date(year + 1, 1, 1) - first).days)]


def admin_entries(year: int) -> dict[date, CalendarDay]:
    """The admin's entries of a year, by day."""
    rows = db.session.scalars(
        select(CalendarDay).where(CalendarDay.day >= date(year, 1, 1), CalendarDay.day < date(year + 1, 1, 1))
    )
    return {row.day: row for row in rows}


def year_days(year: int) -> list[SpecialDay]:
    """Every day of the year that differs from Monday–Friday working, and every admin entry,
    in date order, each with its source."""
    entries, source, result = admin_entries(year), official_source(year), []
    for day in days_of(year):
        official = official_workday(day)
        row = entries.get(day)
        if row is not None:
            result.append(SpecialDay(day, row.is_workday, ADMIN, official_holiday_of(day), row.note,
                                     official, row.set_by, row.set_at))
        elif official != ordinary_workday(day):
            result.append(SpecialDay(day, official, source, official_holiday_of(day)))
    return result


def weekend_holidays(year: int) -> list[tuple[date, Holiday]]:
    """Statutory holidays of a year the package does not know that fall on a weekend: the
    State Council usually moves them, which only an admin can enter."""
    if package_knows(year):
        return []
    return [(day, holiday) for day, holiday in sorted(statutory_holidays(year).items())
            if not ordinary_workday(day)]


# --- changes ----------------------------------------------------------------


def record_change(action: str, subject: str, actor: User | None, now: datetime,
                  before: dict[str, object] | None = None, after: dict[str, object] | None = None) -> None:
    """Put a calendar change on the audit log: the single place every change passes through.

    No actor means a command run in a shell.
    """
    via, label = ("web", None) if actor is not None else ("cli", audit.shell_user())
    target = "calendar_year" if action == "confirm" else "calendar_day"
    audit.record(actor, f"calendar.{action}", target, subject, subject, before, after, now,
                 via=via, actor_label=label)


def set_day(day: date, is_workday: bool, note: str, actor: User | None, now: datetime) -> CalendarDay:
    """Add or change the admin's entry for a day (a holiday or a working day)."""
    row = db.session.get(CalendarDay, day) or CalendarDay(day=day)
    before = None if row.is_workday is None else day_entry(row)
    row.is_workday, row.note = is_workday, note.strip()[:MAX_NOTE]
    row.set_by_id, row.set_at = (actor.id if actor is not None else None), now
    db.session.add(row)
    record_change("set", day.isoformat(), actor, now, before, day_entry(row))
    return row


def day_entry(row: CalendarDay) -> dict[str, object]:
    """An admin entry as the audit log keeps it."""
    return {"is_workday": bool(row.is_workday), "note": row.note or ""}


def unset_day(day: date, actor: User | None, now: datetime) -> bool:
    """Remove the admin's entry for a day; False when there was none."""
    row = db.session.get(CalendarDay, day)
    if row is None:
        return False
    db.session.delete(row)
    record_change("unset", day.isoformat(), actor, now, day_entry(row), None)
    return True


def confirm_year(year: int, actor: User | None, now: datetime) -> CalendarYear | None:
    """Record that the year's make-up working days are entered; None for a year the
    package knows (nothing to confirm). Confirming again keeps the first confirmation."""
    if package_knows(year):
        return None
    row = db.session.get(CalendarYear, year)
    if row is None:
        row = CalendarYear(year=year, confirmed_by_id=actor.id if actor is not None else None, confirmed_at=now)
        db.session.add(row)
        record_change("confirm", str(year), actor, now, None, {"confirmed": "yes"})
    return row


def apply_schedule(entries: list[tuple[date, bool, str]], actor: User | None, now: datetime) -> int:
    """Write a pasted or uploaded schedule as admin entries; the number of days written."""
    for day, is_workday, note in entries:
        set_day(day, is_workday, note, actor, now)
    return len(entries)


# --- confirmation ---------------------------------------------------------------


def confirmation(year: int) -> CalendarYear | None:
    """The admin's confirmation of a year, if any."""
    return db.session.get(CalendarYear, year)


def is_confirmed(year: int) -> bool:
    """True when the year's make-up working days are known: from the package, or confirmed."""
    return package_knows(year) or confirmation(year) is not None


def unconfirmed_years(now: datetime, tz: tzinfo) -> list[int]:
    """The years that have begun or begin within 90 days whose make-up days nobody confirmed."""
    today = now.astimezone(tz).date()
    years = range(today.year, (today + CONFIRM_AHEAD).year + 1)
    unknown = [year for year in years if not package_knows(year)]
    if not unknown:
        return []
    confirmed = set(db.session.scalars(select(CalendarYear.year).where(CalendarYear.year.in_(unknown))))
    return [year for year in unknown if year not in confirmed]


def readiness_warnings(now: datetime, tz: tzinfo) -> list[str]:
    """Machine-readable warnings for /readyz (English, like the rest of its body)."""
    return [f"calendar {year} is not confirmed: its make-up working days (tiaoxiu) are not entered, "
            "so deadlines may count them as holidays; enter the State Council schedule and confirm the year"
            for year in unconfirmed_years(now, tz)]


def warn_unconfirmed(now: datetime, tz: tzinfo) -> list[int]:
    """Log a warning for each unconfirmed upcoming year (run once a day); the years."""
    years = unconfirmed_years(now, tz)
    for year in years:
        log.warning("calendar %d is not confirmed: enter its make-up working days (tiaoxiu) as published "
                    "by the State Council on the calendar page, then confirm the year", year)
    return years
