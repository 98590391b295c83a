"""Who is on duty: weekly shifts (also past midnight), the on-call flag, leave."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import Flask

from tests.factories import T0, TZ, World, give_leave, give_shift, put_on_call
from ticketing.extensions import db
from ticketing.services.duty import is_on_duty, on_duty_until

WEDNESDAY, TUESDAY = 2, 1


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """An aware time in Shanghai on 2026-11-<day>."""
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ)


def test_a_day_shift_covers_its_hours_only(world: World) -> None:
    give_shift(world.gina, WEDNESDAY, "08:30", "17:30")
    db.session.commit()
    assert is_on_duty(world.gina, T0, TZ)
    assert is_on_duty(world.gina, local(18, 8, 30), TZ)
    assert not is_on_duty(world.gina, local(18, 17, 30), TZ)
    assert not is_on_duty(world.gina, local(18, 8, 29), TZ)


def test_a_shift_is_on_its_weekday_only(world: World) -> None:
    give_shift(world.gina, TUESDAY, "08:30", "17:30")
    db.session.commit()
    assert not is_on_duty(world.gina, T0, TZ)
    assert is_on_duty(world.gina, T0 - timedelta(days=1), TZ)


def test_a_night_shift_runs_past_midnight_into_the_next_day(world: World) -> None:
    give_shift(world.gina, TUESDAY, "22:00", "06:00")
    db.session.commit()
    assert is_on_duty(world.gina, local(17, 23, 0), TZ)
    assert is_on_duty(world.gina, local(18, 2, 0), TZ)
    assert not is_on_duty(world.gina, local(18, 6, 0), TZ)
    assert not is_on_duty(world.gina, local(17, 21, 59), TZ)
    # Tuesday's night shift does not cover Wednesday night.
    assert not is_on_duty(world.gina, local(18, 23, 0), TZ)


def test_on_call_is_on_duty_at_any_hour_without_shifts(world: World) -> None:
    put_on_call(world.gina)
    assert is_on_duty(world.gina, local(22, 3, 0), TZ)
    assert not is_on_duty(world.greg, local(22, 3, 0), TZ)


def test_leave_takes_a_person_off_duty_for_its_days(world: World) -> None:
    put_on_call(world.gina)
    give_leave(world.gina, date(2026, 11, 17), date(2026, 11, 18))
    db.session.commit()
    assert not is_on_duty(world.gina, T0, TZ)
    assert is_on_duty(world.gina, T0 + timedelta(days=1), TZ)


def test_an_inactive_account_is_never_on_duty(world: World) -> None:
    put_on_call(world.gina)
    world.gina.active = False
    db.session.commit()
    assert not is_on_duty(world.gina, T0, TZ)


def test_the_shift_end_is_told_in_local_time(world: World) -> None:
    give_shift(world.gina, WEDNESDAY, "08:30", "17:30")
    give_shift(world.greg, TUESDAY, "22:00", "06:00")
    db.session.commit()
    assert on_duty_until(world.gina.id, T0, TZ) == local(18, 17, 30)
    assert on_duty_until(world.greg.id, local(18, 1, 0), TZ) == local(18, 6, 0)
    assert on_duty_until(world.greg.id, local(17, 23, 0), TZ) == local(18, 6, 0)
    assert on_duty_until(world.greg.id, T0, TZ) is None


def test_duty_ignores_utc_dates(ctx: Flask, world: World) -> None:
    # 07:00 in Shanghai on Wednesday is still Tuesday 23:00 in UTC.
    give_shift(world.gina, WEDNESDAY, "06:00", "08:00")
    db.session.commit()
    assert is_on_duty(world.gina, local(18, 7, 0), TZ)


def test_the_demo_has_someone_on_duty_for_every_grid_company_and_team_at_every_hour(ctx: Flask) -> None:
    from sqlalchemy import select

    from ticketing.demo import load_demo
    from ticketing.models import Grid, PropertyCompany, Team, User, user_grids
    from ticketing.services.duty import on_duty

    load_demo(now=T0)
    units = ([("grid", g.id) for g in db.session.scalars(select(Grid))]
             + [("company", c.id) for c in db.session.scalars(select(PropertyCompany))]
             + [("team", t.id) for t in db.session.scalars(select(Team))])
    monday = local(16, 0, 0)
    for half_hours in range(7 * 48):
        moment = monday + timedelta(minutes=30 * half_hours)
        people = db.session.execute(
            select(User.id, User.company_id, User.team_id, user_grids.c.grid_id)
            .outerjoin(user_grids, user_grids.c.user_id == User.id)
            .where(User.role.in_(("grid_worker", "property_staff", "volunteer")), on_duty(moment, TZ))
        ).all()
        covered = ({("grid", g) for _, _, _, g in people if g} | {("company", c) for _, c, _, _ in people if c}
                   | {("team", t) for _, _, t, _ in people if t})
        assert set(units) <= covered, f"nobody on duty at {moment}: {set(units) - covered}"
