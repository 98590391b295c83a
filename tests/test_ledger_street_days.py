"""The street and community roll-ups the compile writes, and the dashboard's small-sample rule.

The roll-ups must always equal the grid ledgers they add up: every figure of a day, a
week and a month of the hand-worked days (tests/ledger_day.py), read both ways, and
again after one grid's day is recompiled or a grid moves to another community. The
rankings are checked against the rule they had when they were sorted in Python.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import login
from tests.factories import TZ, World, make_ticket
from tests.ledger_day import DAY, hand_worked_day, local
from ticketing.extensions import db
from ticketing.models import Grid, HandlerDay, Ledger, StreetDay, Ticket, utcnow
from ticketing.services import ledger, ledger_report, ledger_rollup
from ticketing.services.ledger_report import MIN_TICKETS, Ranked, Rate, Whole, period
from ticketing.services.photos import PhotoStore

DAYS = (DAY - timedelta(days=1), DAY, DAY + timedelta(days=1))


@pytest.fixture()
def days(world: World, store: PhotoStore) -> dict[str, Ticket]:
    tickets = hand_worked_day(world, store)
    for day in DAYS:
        ledger.compile_day(day, TZ, utcnow())
    return tickets


def areas(world: World) -> list[tuple[Any, Whole]]:
    """Each whole area as the grid ledgers select it, and as its roll-up."""
    return [(Ledger.street_id == world.street.id, Whole("street", world.street.id)),
            (Ledger.grid_id.is_not(None), Whole("street")),
            (Ledger.community_id == world.community_a.id, Whole("community", world.community_a.id)),
            (Ledger.community_id == world.community_b.id, Whole("community", world.community_b.id))]


def assert_rollups_add_up(world: World) -> None:
    db.session.expire_all()
    for where, whole in areas(world):
        for kind in ledger_report.PERIODS:
            span = period(kind, DAY)
            assert ledger_report.rollup(where, span, whole) == ledger_report.rollup(where, span), (whole, kind)
        assert ledger_report.trend(where, DAY + timedelta(days=1), whole=whole) == ledger_report.trend(
            where, DAY + timedelta(days=1))
        for day in DAYS:
            assert ledger_report.as_of(where, day, whole) == ledger_report.as_of(where, day)


def test_the_roll_ups_equal_their_grid_ledgers_for_a_day_a_week_and_a_month(
        world: World, days: dict[str, Ticket]) -> None:
    week = ledger_report.rollup(Ledger.street_id == world.street.id, period("week", DAY),
                                Whole("street", world.street.id))
    assert week.ledgers == 9 and week.counts["new"] == 9 and week.rates["response"] == Rate(3, 6)
    assert_rollups_add_up(world)


def test_a_recompiled_grid_day_updates_its_street_and_community_in_the_same_compile(
        world: World, store: PhotoStore, days: dict[str, Ticket]) -> None:
    before = db.session.scalar(select(StreetDay.new).where(StreetDay.day == DAY))
    make_ticket(world, store, now=local(18, 15), channel="phone")  # a late entry in A1
    ledger.compile_day(DAY, TZ, utcnow(), grid_codes=[world.grid_a1.code])
    db.session.expire_all()
    assert db.session.scalar(select(StreetDay.new).where(StreetDay.day == DAY)) == before + 1
    assert_rollups_add_up(world)


def test_a_grid_that_moved_leaves_its_old_community_when_its_day_is_recompiled(
        world: World, days: dict[str, Ticket]) -> None:
    world.grid_a2.community = world.community_b
    db.session.commit()
    ledger.compile_day(DAY, TZ, utcnow(), grid_codes=[world.grid_a2.code])
    assert_rollups_add_up(world)


# --- rankings and the small-sample rule ------------------------------------------


def ledgers_with(world: World, dens: dict[str, tuple[int, int]]) -> None:
    """Grids of community A with these response rates (num, den) on DAY, and a handler each."""
    for i, (name, (num, den)) in enumerate(dens.items()):
        grid = Grid(community=world.community_a, code=f"R{i:03d}", name=name)
        db.session.add(grid)
        db.session.flush()
        place = {"grid_id": grid.id, "community_id": world.community_a.id, "street_id": world.street.id, "day": DAY}
        db.session.add(Ledger(**place, compiled_at=utcnow(), response_num=num, response_den=den, new=den))
        db.session.add(HandlerDay(**place, handler_key=f"t{i}", name=name, response_num=num, response_den=den,
                                  accepted=num, resolved=0))
    ledger_rollup.write(DAY, [world.street.id], [world.community_a.id])  # as the compile does
    db.session.commit()


def python_ranking(lines: list[Ranked], by: str) -> list[tuple[str, int]]:
    """The rule of the rankings as they were sorted in Python before the database did it,
    with the small-sample rule: (name, rank) best first, the unranked after, rank 0."""
    def order(line: Ranked) -> tuple[bool, float, int, str]:
        rate = line.rates[by]
        return (not rate.enough, -(rate.value or 0) if rate.enough else 0, -rate.den, line.name)
    ordered = sorted(lines, key=order)
    return [(line.name, place if line.rates[by].enough else 0) for place, line in enumerate(ordered, start=1)]


RATES_OF_25 = {f"网格{i:02d}": (n, d) for i, (n, d) in enumerate(
    [(9, 10), (18, 20), (10, 10), (5, 10), (9, 9), (3, 3), (0, 0), (20, 20), (7, 10), (14, 20), (1, 12), (11, 12),
     (12, 12), (6, 12), (2, 4), (8, 15), (15, 15), (9, 15), (13, 15), (10, 15), (4, 11), (11, 11), (6, 11), (0, 10),
     (5, 13)])}


def test_a_grid_with_nine_tickets_is_not_ranked_and_one_with_ten_is(world: World) -> None:
    ledgers_with(world, {"九件": (9, 9), "十件": (5, 10)})
    ranking = ledger_report.grids_ranked(Ledger.street_id == world.street.id, period("day", DAY))
    assert [(line.name, line.rank) for line in ranking.top] == [("十件", 1)]
    assert [(line.name, line.rank) for line in ranking.unranked] == [("九件", 0)]
    assert (ranking.ranked, ranking.unranked_count) == (1, 1)
    assert not ledger_report.enough(MIN_TICKETS - 1) and ledger_report.enough(MIN_TICKETS)


def test_the_database_ranks_as_python_did_with_ties_by_tickets_then_name(world: World) -> None:
    ledgers_with(world, RATES_OF_25)
    span, where = period("day", DAY), Ledger.street_id == world.street.id
    whole = ledger_report.grids_ranked(where, span)
    assert [(line.name, line.rank) for line in whole.lines] == python_ranking(whole.lines, "response")
    # 100% over 20, 15, 12, 11 and 10 tickets: the one over more tickets first.
    assert [line.name for line in whole.top[:5]] == ["网格07", "网格16", "网格12", "网格21", "网格02"]
    handlers = ledger_report.handlers_ranked(HandlerDay.street_id == world.street.id, span)
    assert [(h.name, h.rank) for h in handlers.lines] == [(g.name, g.rank) for g in whole.lines]
    # Cut to its two ends: the best ten and the worst ten of the 21 ranked, the first 20 unranked.
    ends = ledger_report.grids_ranked(where, span, ends=10)
    assert ends.top == whole.top[:10] and ends.bottom == whole.top[-10:] and ends.unranked == whole.unranked
    assert ends.cut and (ends.ranked, ends.unranked_count) == (21, 4)
    # By pages of the whole list, the unranked after the ranked.
    pages = [ledger_report.grids_ranked(where, span, page=(n, 10)) for n in (1, 2, 3)]
    assert [line for p in pages for line in p.lines] == whole.lines and pages[2].pages == 3
    assert ledger_report.grids_ranked(where, span, page=(9, 10)).page == 1  # past the end: the first page


def test_the_dashboard_ranks_apart_and_says_why(client: FlaskClient, world: World, english: None) -> None:
    ledgers_with(world, {"九件": (9, 9), "十件": (5, 10)})
    login(client, world.sue)
    html = client.get(f"/ledger/?day={DAY}&area=community:CA").get_data(as_text=True)
    assert "A rate over fewer than 10 tickets is not shown" in html
    grids = html.split('id="grid-ranking"')[1].split('id="handler-ranking"')[0]
    ranked, apart = grids.split("Not ranked: fewer than 10 tickets behind the rate")
    assert "十件" in ranked and "50.0%" in ranked and "九件" not in ranked
    assert "九件" in apart and "n=9" in apart and "100.0%" not in apart  # its 9 / 9 is not shown
    assert "73.7%" in html and "14 / 19" in html  # the area's response rate, over enough tickets


@pytest.mark.parametrize("query", ["period=day", "period=week", "period=month", "period=month&area=community:CA",
                                   "period=week&all=grid", "period=week&all=handler&page=7", "all=1"])
def test_the_dashboard_renders_for_each_period_area_and_whole_ranking(
        client: FlaskClient, world: World, days: dict[str, Ticket], query: str) -> None:
    login(client, world.sue)
    response = client.get(f"/ledger/?day={DAY}&{query}")
    assert response.status_code == 200 and "grid-ranking" in response.get_data(as_text=True)


def test_a_grids_own_day_shows_its_rates_marked_as_a_small_sample(
        client: FlaskClient, world: World, days: dict[str, Ticket], english: None) -> None:
    login(client, world.sam)
    html = client.get(f"/ledger/grid/{world.grid_a1.code}/{DAY}").get_data(as_text=True)
    assert "100.0%" in html and "small sample" in html  # its 2 of 2 accepted in time, marked
