"""Duty rosters (值班表): who an admin or supervisor may edit, weekly shifts, on call, leave.

Routing reads these rows to decide who is on duty; this module only keeps them
correct: times are HH:MM, a shift whose end is not after its start runs past
midnight, shifts of one person never overlap, leave ends on or after it starts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, time
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import ColumnElement, and_, delete, select

from ticketing.extensions import db
from ticketing.models import HANDLER_ROLES, DutyShift, Leave, User
from ticketing.services import scope
from ticketing.services.errors import ValidationFailed

HH_MM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
MAX_NOTE = 200
LEAVE_FIELDS = ("first_day", "last_day", "note")


@dataclass(frozen=True)
class ShiftInput:
    """One row of the weekly pattern as entered: a weekday and two HH:MM strings."""

    weekday: int
    starts: str
    ends: str

    @property
    def blank(self) -> bool:
        """True when both times were left empty (the row is unused)."""
        return not self.starts.strip() and not self.ends.strip()


def editable_people(editor: User) -> ColumnElement[bool]:
    """A WHERE clause for the handlers whose roster `editor` may change: the active
    handlers among the accounts they manage (`scope.managed_people`)."""
    return and_(User.role.in_(HANDLER_ROLES), User.active.is_(True), scope.managed_people(editor))


def editable_person(editor: User, person_id: int) -> User | None:
    """The handler `person_id` if `editor` may change their roster, else None."""
    return db.session.scalar(select(User).where(User.id == person_id, editable_people(editor)))


def parse_time(text: str) -> time | None:
    """`HH:MM` (also `H:MM`, or `HH:MM:SS` with zero seconds as browsers may send) → time."""
    text = text.strip()
    if text.endswith(":00") and text.count(":") == 2:
        text = text[:-3]
    match = HH_MM.fullmatch(text)
    return time(int(match.group(1)), int(match.group(2))) if match else None


def minutes(value: time) -> int:
    """Minutes since midnight."""
    return value.hour * 60 + value.minute


def week_span(weekday: int, starts: time, ends: time) -> tuple[int, int]:
    """The shift as [start, end) minutes since Monday 00:00; the end may pass Sunday night."""
    start = weekday * MINUTES_PER_DAY + minutes(starts)
    length = (minutes(ends) - minutes(starts)) % MINUTES_PER_DAY
    return start, start + length


def spans_overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """True when two week spans overlap, counting Sunday night running into Monday."""
    return any(a[0] < b[1] + shift and b[0] + shift < a[1]
               for shift in (-MINUTES_PER_WEEK, 0, MINUTES_PER_WEEK))


def check_shifts(rows: list[ShiftInput]) -> list[tuple[int, time, time]]:
    """The shifts the rows describe; raises ValidationFailed keyed by row index ("0", "1"…)."""
    errors: dict[str, Any] = {}
    shifts: list[tuple[int, int, time, time]] = []
    for index, row in enumerate(rows):
        if row.blank:
            continue
        starts, ends = parse_time(row.starts), parse_time(row.ends)
        if not 0 <= row.weekday <= 6:
            errors[str(index)] = _("Choose a day of the week.")
        elif starts is None or ends is None:
            errors[str(index)] = _("Enter both times as HH:MM, e.g. 08:30.")
        elif starts == ends:
            errors[str(index)] = _(
                "A shift cannot end when it starts. For a night shift enter e.g. 22:00 to 06:00.")
        else:
            shifts.append((index, row.weekday, starts, ends))
    for i, (index, weekday, starts, ends) in enumerate(shifts):
        span = week_span(weekday, starts, ends)
        for _other_index, other_day, other_starts, other_ends in shifts[:i]:
            if spans_overlap(span, week_span(other_day, other_starts, other_ends)):
                errors.setdefault(str(index), _("This shift overlaps another one."))
    if errors:
        raise ValidationFailed(errors)
    return sorted((weekday, starts, ends) for _index, weekday, starts, ends in shifts)


def save_roster(person: User, rows: list[ShiftInput], on_call: bool) -> list[DutyShift]:
    """Replace `person`'s weekly shifts and set their on-call flag; the caller commits.

    Nothing changes when a row is wrong (ValidationFailed, keyed by row index).
    """
    shifts = check_shifts(rows)
    db.session.execute(delete(DutyShift).where(DutyShift.user_id == person.id))
    saved = [DutyShift(user_id=person.id, weekday=weekday, starts=starts, ends=ends)
             for weekday, starts, ends in shifts]
    db.session.add_all(saved)
    person.on_call = on_call
    db.session.flush()
    return saved


def shifts_of(person_ids: list[int]) -> dict[int, list[DutyShift]]:
    """Each person's shifts in week order."""
    result: dict[int, list[DutyShift]] = {pid: [] for pid in person_ids}
    if person_ids:
        for shift in db.session.scalars(
            select(DutyShift).where(DutyShift.user_id.in_(person_ids))
            .order_by(DutyShift.weekday, DutyShift.starts)
        ):
            result[shift.user_id].append(shift)
    return result


def leave_of(person_ids: list[int], today: date) -> dict[int, list[Leave]]:
    """Each person's current and future leave, soonest first."""
    result: dict[int, list[Leave]] = {pid: [] for pid in person_ids}
    if person_ids:
        for leave in db.session.scalars(
            select(Leave).where(Leave.user_id.in_(person_ids), Leave.last_day >= today)
            .order_by(Leave.first_day, Leave.id)
        ):
            result[leave.user_id].append(leave)
    return result


def add_leave(person: User, first_day: date | None, last_day: date | None, note: str) -> Leave:
    """Record a leave period (inclusive dates); raises ValidationFailed; the caller commits."""
    errors: dict[str, Any] = {}
    if first_day is None:
        errors["first_day"] = _("Enter the first day of leave.")
    if last_day is None:
        errors["last_day"] = _("Enter the last day of leave.")
    elif first_day is not None and last_day < first_day:
        errors["last_day"] = _("The last day cannot be before the first day.")
    note = note.strip()
    if len(note) > MAX_NOTE:
        errors["note"] = _("The note may be at most %(n)d characters.", n=MAX_NOTE)
    if errors or first_day is None or last_day is None:
        raise ValidationFailed(errors)
    leave = Leave(user_id=person.id, first_day=first_day, last_day=last_day, note=note)
    db.session.add(leave)
    db.session.flush()
    return leave


def remove_leave(person: User, leave_id: int) -> Leave | None:
    """Delete one of `person`'s leave periods and return it; None when they have no such leave."""
    leave = db.session.scalar(select(Leave).where(Leave.id == leave_id, Leave.user_id == person.id))
    if leave is not None:
        db.session.delete(leave)
        db.session.flush()
    return leave


def roster_record(person: User) -> dict[str, Any]:
    """A person's weekly shifts and on-call flag as the audit log keeps them."""
    shifts = shifts_of([person.id])[person.id]
    return {"shifts": [f"{s.weekday} {s.starts:%H:%M}-{s.ends:%H:%M}" for s in shifts],
            "on_call": bool(person.on_call)}
