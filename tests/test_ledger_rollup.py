"""Roll-ups of the ledgers over places and periods, each handler's 三率, trends, and today so far.

The figures come from the hand-worked days of tests/ledger_day.py (the 17th, 18th and
19th of November 2026), worked out again here by hand.
"""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select, true

from tests.factories import TZ, World, make_ticket
from tests.ledger_day import DAY, dispatch, hand_worked_day, local
from ticketing.extensions import db
from ticketing.models import HandlerDay, Ledger, Ticket, utcnow
from ticketing.services import ledger, ledger_report, scope
from ticketing.services.ledger_report import Rate, period
from ticketing.services.photos import PhotoStore

DAYS = (DAY - timedelta(days=1), DAY, DAY + timedelta(days=1))


@pytest.fixture()
def days(world: World, store: PhotoStore) -> dict[str, Ticket]:
    tickets = hand_worked_day(world, store)
    for day in DAYS:
        ledger.compile_day(day, TZ, utcnow())
    return tickets


def rates(response: tuple[int, int], resolution: tuple[int, int], satisfaction: tuple[int, int]) -> dict[str, Rate]:
    return {"response": Rate(*response), "resolution": Rate(*resolution), "satisfaction": Rate(*satisfaction)}


def test_a_week_is_monday_to_sunday_and_a_month_the_calendar_month() -> None:
    assert period("day", DAY) == ledger_report.Period("day", DAY, DAY)
    assert period("week", DAY) == ledger_report.Period("week", date(2026, 11, 16), date(2026, 11, 22))
    assert period("month", DAY) == ledger_report.Period("month", date(2026, 11, 1), date(2026, 11, 30))
    assert period("month", date(2028, 2, 10)).last == date(2028, 2, 29)
    assert period("week", DAY).previous().first == date(2026, 11, 9)
    with pytest.raises(ValueError):
        period("year", DAY)


def test_each_handler_has_his_share_of_the_rates_of_the_day(world: World, days: dict[str, Ticket]) -> None:
    rows = {(r.grid_id, r.name): r for r in db.session.scalars(select(HandlerDay).where(HandlerDay.day == DAY))}
    assert set(rows) == {(world.grid_a1.id, world.gina.display_name), (world.grid_a2.id, world.greg.display_name)}
    gina = rows[(world.grid_a1.id, world.gina.display_name)]
    # t1 accepted in time, resolved, rated satisfied; t2 accepted in time; t5 resolved,
    # closed after a reopening (not solved first time), rated basically satisfied.
    assert (gina.handler_key, gina.user_id, gina.accepted, gina.resolved) == (f"u{world.gina.id}", world.gina.id, 2, 2)
    assert ledger_report.rates_of(gina) == rates((2, 2), (1, 2), (2, 2))
    greg = rows[(world.grid_a2.id, world.greg.display_name)]
    # u3 in time, u2 late, u1 expired in his hands.
    assert (greg.accepted, greg.resolved) == (2, 0)
    assert ledger_report.rates_of(greg) == rates((1, 3), (0, 0), (0, 0))


def test_the_handlers_of_a_grid_add_up_to_its_ledger(world: World, days: dict[str, Ticket]) -> None:
    for row in db.session.scalars(select(Ledger)):
        handlers = db.session.scalars(select(HandlerDay).where(HandlerDay.grid_id == row.grid_id,
                                                               HandlerDay.day == row.day)).all()
        for name in ledger_report.RATES:
            for part in ("num", "den"):
                assert sum(getattr(h, f"{name}_{part}") for h in handlers) == getattr(row, f"{name}_{part}")


def test_compiling_again_replaces_the_handler_rows(world: World, days: dict[str, Ticket]) -> None:
    before = sorted((r.grid_id, r.day, r.handler_key, r.response_num, r.response_den)
                    for r in db.session.scalars(select(HandlerDay)))
    ledger.compile_day(DAY, TZ, utcnow())
    db.session.expire_all()
    after = sorted((r.grid_id, r.day, r.handler_key, r.response_num, r.response_den)
                   for r in db.session.scalars(select(HandlerDay)))
    assert after == before and len(after) == 4  # gina on the 18th and 19th, greg on the 18th, gina's resolve on the 17th


def test_a_community_day_adds_up_its_grids(world: World, days: dict[str, Ticket]) -> None:
    day = ledger_report.rollup(Ledger.community_id == world.community_a.id, period("day", DAY))
    assert day.ledgers == 2
    assert day.counts == {"new": 6, "dispatched": 6, "accepted": 4, "resolved": 2, "closed": 2, "escalated": 1,
                          "reopened": 1, "open_at_end": 8, "overdue_at_end": 2,
                          "callback_due": 0, "callback_in_time": 0, "callback_reached": 0,
                          "patrol_new": 0, "patrol_resolved": 0, "on_hold_at_end": 0}
    assert day.rates == rates((3, 5), (1, 2), (2, 2))
    # Acceptances of 30 and 60 min (A1) and 10 and 10 min (A2): 6,600 s / 4.
    assert (day.accept_mean_s, day.accept_p90_s) == (1650, 3600)
    assert (day.resolve_mean_s, day.resolve_p90_s) == (117030, 190800)
    assert day.by_channel == {"web": 4, "walk_in": 1, "phone": 1}
    assert day.by_category == {"repair.stair_light": 6}


def test_a_week_adds_counts_and_rate_parts_takes_the_last_days_stock_and_weighs_the_times(
        world: World, days: dict[str, Ticket]) -> None:
    week = ledger_report.rollup(Ledger.community_id == world.community_a.id, period("week", DAY))
    assert week.ledgers == 6  # two grids, three compiled days
    assert week.counts == {"new": 9, "dispatched": 7, "accepted": 5, "resolved": 3, "closed": 2, "escalated": 1,
                           "reopened": 1, "open_at_end": 9, "overdue_at_end": 1,
                           "callback_due": 0, "callback_in_time": 0, "callback_reached": 0,
                           "patrol_new": 0, "patrol_resolved": 0, "on_hold_at_end": 0}
    assert week.rates == rates((3, 6), (1, 2), (2, 2))
    # 30 + 60 + 10 + 10 min and t8's 22 h: 85,800 s / 5 (the daily means would average to 27,500).
    assert week.accept_mean_s == 17160 and week.accept_p90_s == 79200
    # t5's 23 h on the 17th, t1's 12 h 01 min and t5's 2 d 5 h on the 18th.
    assert week.resolve_mean_s == 105620 and week.resolve_p90_s == 190800
    month = ledger_report.rollup(Ledger.community_id == world.community_a.id, period("month", DAY))
    assert (month.counts, month.rates, month.accept_mean_s) == (week.counts, week.rates, week.accept_mean_s)


def test_a_street_holds_its_communities_and_a_quiet_community_has_nothing(
        world: World, days: dict[str, Ticket]) -> None:
    street = ledger_report.rollup(Ledger.street_id == world.street.id, period("week", DAY))
    community = ledger_report.rollup(Ledger.community_id == world.community_a.id, period("week", DAY))
    assert street.ledgers == 9 and street.counts == community.counts and street.rates == community.rates
    quiet = ledger_report.rollup(Ledger.community_id == world.community_b.id, period("week", DAY))
    assert quiet.counts["new"] == 0 and quiet.rates["response"].percent == "—" and quiet.accept_mean_s is None


def test_grids_and_handlers_are_ranked_by_the_rate_asked_for(world: World, days: dict[str, Ticket]) -> None:
    street = Ledger.street_id == world.street.id
    grids = ledger_report.grid_ranking(street, period("week", DAY))
    assert [(g.key, g.rates["response"]) for g in grids] == [
        ("CA-01", Rate(2, 3)), ("CA-02", Rate(1, 3)), ("CB-01", Rate(0, 0))]
    handlers = ledger_report.handler_ranking(HandlerDay.street_id == world.street.id, period("week", DAY))
    assert [(h.name, h.rates["response"], h.extra) for h in handlers] == [
        (world.gina.display_name, Rate(2, 3), {"accepted": 3, "resolved": 3, "callback": Rate(0, 0)}),
        (world.greg.display_name, Rate(1, 3), {"accepted": 2, "resolved": 0, "callback": Rate(0, 0)})]
    by_resolution = ledger_report.handler_ranking(true(), period("week", DAY), by="resolution")
    assert [h.name for h in by_resolution] == [world.gina.display_name, world.greg.display_name]
    assert by_resolution[0].rates["resolution"].percent == "50.0%"


def test_a_grid_worker_reads_only_his_grids(world: World, days: dict[str, Ticket]) -> None:
    gina = scope.place_scope(world.gina, Ledger.grid_id, Ledger.community_id, Ledger.street_id)
    assert [g.key for g in ledger_report.grid_ranking(gina, period("week", DAY))] == ["CA-01"]
    sam = scope.place_scope(world.sam, Ledger.grid_id, Ledger.community_id, Ledger.street_id)
    assert [g.key for g in ledger_report.grid_ranking(sam, period("week", DAY))] == ["CA-01", "CA-02"]
    pete = scope.place_scope(world.pete, Ledger.grid_id, Ledger.community_id, Ledger.street_id)
    assert ledger_report.rollup(pete, period("week", DAY)).ledgers == 0


def test_the_trend_has_a_point_per_day_and_zeros_where_nothing_was_compiled(
        world: World, days: dict[str, Ticket]) -> None:
    points = ledger_report.trend(Ledger.community_id == world.community_a.id, DAY + timedelta(days=1))
    assert len(points) == 30 and points[-1].day == DAY + timedelta(days=1)
    by_day = {p.day: p for p in points}
    assert (by_day[DAY].new, by_day[DAY].resolved, by_day[DAY].open_at_end, by_day[DAY].overdue_at_end) == (6, 2, 8, 2)
    assert by_day[DAY].rates["response"] == Rate(3, 5)
    assert by_day[DAY - timedelta(days=5)].new == 0


def test_today_so_far_counts_overdue_at_the_moment_of_compiling(world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, now=local(18, 9), building=world.building_west)
    dispatch(world, ticket, local(18, 9, 30), local(18, 15), world.greg)

    def overdue(now_local_hour: int) -> int:
        ledger.compile_day(DAY, TZ, local(18, now_local_hour))
        db.session.expire_all()
        row = db.session.scalar(select(Ledger).where(Ledger.grid_id == world.grid_a2.id, Ledger.day == DAY))
        assert row is not None and row.open_at_end == 1 and row.compiled_at == local(18, now_local_hour)
        return row.overdue_at_end

    assert overdue(12) == 0  # at noon the accept-by of 15:00 is still ahead
    assert overdue(16) == 1
    ledger.compile_day(DAY, TZ, utcnow())  # and after the day, as the nightly job does
    assert db.session.scalar(select(Ledger.overdue_at_end).where(Ledger.grid_id == world.grid_a2.id)) == 1


def test_the_today_entry_compiles_today_through_the_scheduler(
        world: World, days: dict[str, Ticket], monkeypatch: pytest.MonkeyPatch) -> None:
    from workers import jobs
    from workers.scheduler import SCHEDULE, fire

    entry = next(e for e in SCHEDULE if e.id == "today-ledgers")
    at = local(20, 10, 5)
    assert entry.every == 600 and entry.slot_at(at, TZ) == local(20, 10)
    monkeypatch.setattr(jobs, "utcnow", lambda: at)
    assert fire(entry, at, TZ) == "fired"
    today = db.session.scalars(select(Ledger).where(Ledger.day == date(2026, 11, 20))).all()
    assert len(today) == 3 and {row.compiled_at for row in today} == {at}


def test_a_ticket_spanning_days_is_on_the_ledger_of_each_day_it_was_touched(
        world: World, days: dict[str, Ticket]) -> None:
    from ticketing.models import LedgerLine

    def line(ticket: str, day: date) -> LedgerLine | None:
        return db.session.scalar(select(LedgerLine).join(Ledger).where(
            LedgerLine.ticket_id == days[ticket].id, Ledger.day == day))

    # t5: resolved on the 17th, reopened and closed on the 18th, untouched on the 19th.
    assert (line("t5", DAYS[0]).status, line("t5", DAYS[1]).status, line("t5", DAYS[2])) == ("resolved", "closed", None)
    # t1: filed at 23:59 on the 17th, worked on the 18th: on both, as it stood each night.
    assert (line("t1", DAYS[0]).status, line("t1", DAYS[1]).status) == ("submitted", "closed")
    # t7 was touched only on the 17th, but stays open and overdue in the grid's count every night.
    assert line("t7", DAYS[1]) is None
    overdue = [db.session.scalar(select(Ledger.overdue_at_end).where(Ledger.grid_id == world.grid_a1.id, Ledger.day == d))
               for d in DAYS]
    assert overdue == [1, 2, 1]  # t7 each night; t8 too on the 18th, accepted late on the 19th
