"""The daily ledger: a small day whose every count, rate and time was worked out by hand.

The day is Wednesday 2026-11-18 in Shanghai: [17th 16:00Z, 18th 16:00Z). Times below
are local. Grid A1 (gina) and A2 (greg) have the tickets; B1 has none.

A1  t1  filed 17th 23:59; dispatched 08:00 (accept-by 10:00), accepted 08:30,
        resolved 12:00, rated satisfied 13:00
    t2  filed 00:01 (web); dispatched 09:00 (accept-by 11:00), accepted 10:00;
        resolve-by the 20th
    t3  filed 23:59 (walk-in); still submitted
    t4  filed 19th 00:01: another day
    t5  filed 16th 10:00, resolved 17th; reopened 09:00, resolved 15:00, rated basic 16:00
    t6  filed 15th, submitted, untouched on the day
    t7  filed 17th, dispatched 17th (accept-by 17th 12:00), never accepted
    t8  filed 10:00 (web); dispatched 11:00 (accept-by 23:00); accepted on the 19th
A2  u1  filed 10:00 (phone); dispatched 10:30 (accept-by 12:00), expired 12:30
    u2  filed 09:00 (web); dispatched 09:10 (accept-by 09:15), accepted 09:20 (late)
    u3  filed 08:00 (web); dispatched 08:10 (accept-by 09:00), accepted 08:20, escalated 14:00
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.factories import TZ, World, calendar, make_ticket
from ticketing.extensions import db
from ticketing.models import Ledger, LedgerLine, Ticket, User, utcnow
from ticketing.services import ledger
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore

DAY = date(2026, 11, 18)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A Shanghai time in November 2026, as the aware UTC time it is stored as."""
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ).astimezone(ledger.timezone.utc)


def act(ticket: Ticket, name: str, actor: Actor, at: datetime, **params: Any) -> None:
    perform(ticket, name, actor, at, calendar(), **params)
    db.session.commit()


def dispatch(world: World, ticket: Ticket, at: datetime, accept_by: datetime, to: User) -> None:
    act(ticket, "dispatch", Actor.staff(world.dora), at, assignee=to)
    ticket.accept_due_at = accept_by  # the deadline by hand, not by the tier's working hours
    db.session.commit()


def accept(ticket: Ticket, at: datetime, by: User, resolve_by: datetime | None = None) -> None:
    act(ticket, "accept", Actor.staff(by), at)
    if resolve_by is not None:
        ticket.resolve_due_at = resolve_by
        db.session.commit()


@pytest.fixture()
def day(world: World, store: PhotoStore) -> dict[str, Ticket]:
    gina, greg = world.gina, world.greg
    a1, a2 = world.building_courtyard, world.building_west
    t: dict[str, Ticket] = {}
    t["t1"] = make_ticket(world, store, now=local(17, 23, 59), building=a1)
    dispatch(world, t["t1"], local(18, 8), local(18, 10), gina)
    accept(t["t1"], local(18, 8, 30), gina)
    act(t["t1"], "resolve", Actor.staff(gina), local(18, 12), note="已更换灯泡")
    act(t["t1"], "rate", Actor.resident(), local(18, 13), rating="satisfied")
    t["t2"] = make_ticket(world, store, now=local(18, 0, 1), building=a1)
    dispatch(world, t["t2"], local(18, 9), local(18, 11), gina)
    accept(t["t2"], local(18, 10), gina, resolve_by=local(20, 18))
    t["t3"] = make_ticket(world, store, now=local(18, 23, 59), building=a1, channel="walk_in",
                          actor=Actor.staff(world.dora))
    t["t4"] = make_ticket(world, store, now=local(19, 0, 1), building=a1)
    t["t5"] = make_ticket(world, store, now=local(16, 10), building=a1)
    dispatch(world, t["t5"], local(16, 11), local(16, 12), gina)
    accept(t["t5"], local(16, 11, 30), gina)
    act(t["t5"], "resolve", Actor.staff(gina), local(17, 9), note="已疏通")
    act(t["t5"], "reopen", Actor.resident(), local(18, 9), note="又堵了")
    act(t["t5"], "resolve", Actor.staff(gina), local(18, 15), note="更换了管道")
    act(t["t5"], "rate", Actor.resident(), local(18, 16), rating="basic")
    t["t6"] = make_ticket(world, store, now=local(15, 10), building=a1)
    t["t7"] = make_ticket(world, store, now=local(17, 9), building=a1)
    dispatch(world, t["t7"], local(17, 10), local(17, 12), gina)
    t["t8"] = make_ticket(world, store, now=local(18, 10), building=a1)
    dispatch(world, t["t8"], local(18, 11), local(18, 23), gina)
    accept(t["t8"], local(19, 9), gina)
    t["u1"] = make_ticket(world, store, now=local(18, 10), building=a2, channel="phone",
                          actor=Actor.staff(world.dora))
    dispatch(world, t["u1"], local(18, 10, 30), local(18, 12), greg)
    act(t["u1"], "expire", Actor.system(), local(18, 12, 30))
    t["u2"] = make_ticket(world, store, now=local(18, 9), building=a2)
    dispatch(world, t["u2"], local(18, 9, 10), local(18, 9, 15), greg)
    accept(t["u2"], local(18, 9, 20), greg, resolve_by=local(25, 18))
    t["u3"] = make_ticket(world, store, now=local(18, 8), building=a2)
    dispatch(world, t["u3"], local(18, 8, 10), local(18, 9), greg)
    accept(t["u3"], local(18, 8, 20), greg, resolve_by=local(25, 18))
    act(t["u3"], "escalate", Actor.staff(greg), local(18, 14), note="需要街道协调")
    return t


def compiled(world: World, grid: Any) -> Ledger:
    found = db.session.scalar(select(Ledger).where(Ledger.grid_id == grid.id, Ledger.day == DAY))
    assert found is not None
    return found


COUNTS = ("new", "dispatched", "accepted", "resolved", "closed", "escalated", "reopened",
          "open_at_end", "overdue_at_end", "response_num", "response_den", "resolution_num",
          "resolution_den", "satisfaction_num", "satisfaction_den",
          "accept_mean_s", "accept_p90_s", "resolve_mean_s", "resolve_p90_s")


def figures(row: Ledger) -> dict[str, Any]:
    return {name: getattr(row, name) for name in COUNTS}


def test_every_count_rate_and_time_of_the_day_is_as_worked_out_by_hand(
        world: World, day: dict[str, Ticket]) -> None:
    assert ledger.compile_day(DAY, TZ, utcnow()) == 3
    a1 = compiled(world, world.grid_a1)
    assert figures(a1) == {
        "new": 3, "dispatched": 3, "accepted": 2, "resolved": 2, "closed": 2, "escalated": 0, "reopened": 1,
        "open_at_end": 5, "overdue_at_end": 2,
        "response_num": 2, "response_den": 2, "resolution_num": 1, "resolution_den": 2,
        "satisfaction_num": 2, "satisfaction_den": 2,
        # t1 30 min and t2 60 min; t1 12 h 01 min and t5 2 d 5 h from filing to resolving
        "accept_mean_s": 2700, "accept_p90_s": 3600, "resolve_mean_s": 117030, "resolve_p90_s": 190800,
    }
    assert a1.by_channel == {"web": 2, "walk_in": 1}
    assert a1.by_category == {"repair.stair_light": 3}
    assert a1.by_status == {"closed": 2, "accepted": 1, "submitted": 1, "dispatched": 1}
    assert a1.rate("response") == 1 and a1.rate("resolution") == 0.5 and a1.rate("satisfaction") == 1
    a2 = compiled(world, world.grid_a2)
    assert figures(a2) == {
        "new": 3, "dispatched": 3, "accepted": 2, "resolved": 0, "closed": 0, "escalated": 1, "reopened": 0,
        "open_at_end": 3, "overdue_at_end": 0,
        "response_num": 1, "response_den": 3, "resolution_num": 0, "resolution_den": 0,
        "satisfaction_num": 0, "satisfaction_den": 0,
        "accept_mean_s": 600, "accept_p90_s": 600, "resolve_mean_s": None, "resolve_p90_s": None,
    }
    assert a2.by_status == {"submitted": 1, "accepted": 2}
    assert a2.rate("resolution") is None
    b1 = compiled(world, world.grid_b1)
    assert b1.new == 0 and b1.open_at_end == 0 and b1.lines == []


def test_a_line_per_ticket_touched_with_its_state_when_the_day_ended(world: World, day: dict[str, Ticket]) -> None:
    ledger.compile_day(DAY, TZ, utcnow())
    lines = {line.ticket_id: line for line in compiled(world, world.grid_a1).lines}
    t = day
    assert set(lines) == {t["t1"].id, t["t2"].id, t["t3"].id, t["t5"].id, t["t8"].id}
    # t8 was accepted on the 19th: on the 18th it was dispatched, and past its accept-by.
    assert lines[t["t8"].id].detail() == {
        "ticket_id": t["t8"].id, "status": "dispatched", "handler": world.gina.display_name,
        "deadline": local(18, 23), "overdue": True, "result": "", "rating": None}
    assert (lines[t["t5"].id].status, lines[t["t5"].id].result, lines[t["t5"].id].rating) == (
        "closed", "更换了管道", "basic")
    assert (lines[t["t2"].id].deadline, lines[t["t2"].id].overdue) == (local(20, 18), False)
    assert (lines[t["t3"].id].status, lines[t["t3"].id].handler) == ("submitted", "")


def test_the_day_ends_at_local_midnight(world: World, day: dict[str, Ticket]) -> None:
    """23:59 on the 17th and 00:01 on the 19th are other days; 00:01 and 23:59 on the 18th are this one."""
    ledger.compile_day(DAY, TZ, utcnow())
    ledger.compile_day(DAY + timedelta(days=1), TZ, utcnow())
    before = db.session.scalar(select(Ledger).where(Ledger.grid_id == world.grid_a1.id,
                                                   Ledger.day == DAY + timedelta(days=1)))
    assert before is not None
    assert before.new == 1 and before.by_channel == {"web": 1}  # t4 only
    assert before.accepted == 1  # t8, the next morning
    assert compiled(world, world.grid_a1).new == 3


def test_compiling_again_gives_the_same_rows(world: World, day: dict[str, Ticket]) -> None:
    ledger.compile_day(DAY, TZ, utcnow())
    first = compiled(world, world.grid_a1)
    ids, before = first.id, (figures(first), first.by_status, [line.detail() for line in first.lines])
    ledger.compile_day(DAY, TZ, utcnow())
    db.session.expire_all()
    again = compiled(world, world.grid_a1)
    assert again.id == ids
    assert (figures(again), again.by_status, [line.detail() for line in again.lines]) == before
    assert db.session.scalar(select(db.func.count()).select_from(Ledger)) == 3
    assert db.session.scalar(select(db.func.count()).select_from(LedgerLine)) == 8


def test_what_happens_later_does_not_change_the_day_but_late_entries_are_folded_in(
        world: World, store: PhotoStore, day: dict[str, Ticket]) -> None:
    ledger.compile_day(DAY, TZ, utcnow())
    # The next days: t3 is dispatched and t2 resolved; the 18th still ended as it did.
    dispatch(world, day["t3"], local(19, 9), local(19, 11), world.gina)
    act(day["t2"], "resolve", Actor.staff(world.gina), local(19, 10), note="已修好")
    # A paper form from the 18th is entered late, dated when it was received.
    make_ticket(world, store, now=local(18, 17), building=world.building_courtyard, channel="walk_in",
                actor=Actor.staff(world.dora))
    ledger.compile_day(DAY, TZ, utcnow())
    a1 = compiled(world, world.grid_a1)
    assert a1.new == 4 and a1.open_at_end == 6
    assert a1.by_status == {"closed": 2, "accepted": 1, "submitted": 2, "dispatched": 1}


def test_only_the_grids_named_are_compiled(world: World, day: dict[str, Ticket]) -> None:
    assert ledger.compile_day(DAY, TZ, utcnow(), grid_codes=["CA-02"]) == 1
    assert [row.grid_id for row in db.session.scalars(select(Ledger))] == [world.grid_a2.id]
    assert ledger.compile_day(DAY, TZ, utcnow(), grid_codes=["NO-SUCH"]) == 0


def test_the_nightly_entry_compiles_yesterday_through_the_scheduler(
        world: World, day: dict[str, Ticket], monkeypatch: pytest.MonkeyPatch) -> None:
    from workers import jobs
    from workers.scheduler import SCHEDULE, fire

    nightly = next(e for e in SCHEDULE if e.id == "nightly-ledgers")
    ten_past_midnight = local(19, 0, 10)
    assert nightly.slot_at(ten_past_midnight + timedelta(minutes=5), TZ) == ten_past_midnight
    monkeypatch.setattr(jobs, "utcnow", lambda: ten_past_midnight)
    assert fire(nightly, ten_past_midnight, TZ) == "fired"
    assert sorted(row.day for row in db.session.scalars(select(Ledger))) == [DAY] * 3
    assert compiled(world, world.grid_a1).new == 3


def test_flask_ledger_compile_for_a_day_and_a_grid(app: Any, world: World, day: dict[str, Ticket]) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["ledger", "compile", "--date", "2026-11-18", "--grid", "CA-01"])
    assert result.exit_code == 0, result.output
    assert "2026-11-18" in result.output and "1 grids" in result.output
    assert compiled(world, world.grid_a1).new == 3
    bad = runner.invoke(args=["ledger", "compile", "--date", "18/11/2026"])
    assert bad.exit_code == 2 and "not a date" in bad.output
    unknown = runner.invoke(args=["ledger", "compile", "--date", "2026-11-18", "--grid", "NOPE"])
    assert unknown.exit_code == 1 and "check the grid codes" in unknown.output
