"""The daily ledger compiled: a small day whose every count, rate and time was worked
out by hand (the day and its tickets are described in tests/ledger_day.py)."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.factories import TZ, World, make_ticket
from tests.ledger_day import DAY, act, dispatch, hand_worked_day, local
from ticketing.extensions import db
from ticketing.models import Ledger, LedgerLine, Ticket, utcnow
from ticketing.services import ledger
from ticketing.services.lifecycle import Actor
from ticketing.services.photos import PhotoStore


@pytest.fixture()
def day(world: World, store: PhotoStore) -> dict[str, Ticket]:
    return hand_worked_day(world, store)


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
