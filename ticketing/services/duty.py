"""Who is on duty now: weekly shifts (which may run past midnight), the on-call flag, leave.

The tests of duty are SQL clauses, so routing can pick among thousands of staff in
one query; `is_on_duty()` and `on_duty_until()` answer the same for one person.
Times of day are local (the calendar's time zone); the database stores UTC.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from sqlalchemy import ColumnElement, and_, exists, not_, or_, select

from ticketing.extensions import db
from ticketing.models import DutyShift, Leave, User
from ticketing.services.sqlparts import among


@dataclass(frozen=True)
class LocalMoment:
    """A moment as the roster sees it: local date, weekday (0 = Monday) and time of day."""

    day: date
    weekday: int
    clock: time

    @classmethod
    def of(cls, now: datetime, tz: tzinfo) -> LocalMoment:
        """The local moment of an aware UTC time."""
        local = now.astimezone(tz)
        return cls(local.date(), local.weekday(), local.time().replace(tzinfo=None))


def shift_covers(moment: LocalMoment) -> ColumnElement[bool]:
    """A WHERE clause on DutyShift: the shift covers the local moment.

    A shift whose end is not after its start runs past midnight: it covers the
    evening of its weekday and the early hours of the next day.
    """
    t, today, yesterday = moment.clock, moment.weekday, (moment.weekday - 1) % 7
    overnight = DutyShift.ends <= DutyShift.starts
    return or_(
        and_(DutyShift.weekday == today, DutyShift.starts <= t,
             or_(DutyShift.ends > t, overnight)),
        and_(DutyShift.weekday == yesterday, overnight, DutyShift.ends > t),
    )


def on_leave(day: date) -> ColumnElement[bool]:
    """A WHERE clause on User: the person has leave that includes `day`."""
    return exists().where(Leave.user_id == User.id, Leave.first_day <= day, Leave.last_day >= day)


def on_duty(now: datetime, tz: tzinfo) -> ColumnElement[bool]:
    """A WHERE clause on User: active, not on leave today, and on call or in a shift now."""
    moment = LocalMoment.of(now, tz)
    in_shift = exists().where(DutyShift.user_id == User.id, shift_covers(moment))
    return and_(User.active.is_(True), not_(on_leave(moment.day)), or_(User.on_call.is_(True), in_shift))


def is_on_duty(user: User, now: datetime, tz: tzinfo) -> bool:
    """True when `user` may be given a ticket now (the same test routing uses)."""
    found = db.session.scalar(select(User.id).where(User.id == user.id, on_duty(now, tz)))
    return found is not None


def on_duty_among(user_ids: Iterable[int], now: datetime, tz: tzinfo) -> dict[int, bool]:
    """`is_on_duty` for several people, in one query: by id, whether each may be given a
    ticket now."""
    ids = set(user_ids)
    if not ids:
        return {}
    found = set(db.session.scalars(select(User.id).where(among(User.id, ids), on_duty(now, tz))))
    return {user_id: user_id in found for user_id in ids}


def on_duty_until(user_id: int, now: datetime, tz: tzinfo) -> datetime | None:
    """When the shift covering `now` ends (the latest, if shifts overlap); None if none does."""
    return on_duty_until_many([user_id], now, tz)[user_id]


def on_duty_until_many(user_ids: Iterable[int], now: datetime, tz: tzinfo) -> dict[int, datetime | None]:
    """`on_duty_until` for several people, in one query."""
    moment = LocalMoment.of(now, tz)
    until: dict[int, datetime | None] = {user_id: None for user_id in user_ids}
    if not until:
        return until
    shifts = db.session.execute(
        select(DutyShift.user_id, DutyShift.weekday, DutyShift.starts, DutyShift.ends)
        .where(among(DutyShift.user_id, until), shift_covers(moment))
    ).all()
    for user_id, weekday, starts, ends in shifts:
        end = _end_of(moment, weekday, starts, ends, tz)
        latest = until[user_id]
        until[user_id] = end if latest is None else max(latest, end)
    return until


def _end_of(moment: LocalMoment, weekday: int, starts: time, ends: time, tz: tzinfo) -> datetime:
    """The aware end of a shift that covers `moment`."""
    start_day = moment.day if weekday == moment.weekday and starts <= moment.clock else (
        moment.day - timedelta(days=1))
    end_day = start_day + timedelta(days=1) if ends <= starts else start_day
    return datetime.combine(end_day, ends, tzinfo=tz)
