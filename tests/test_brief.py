"""The supervisors' morning brief: what it holds, for whom, and the 红/黄/绿 rules."""
from __future__ import annotations

import pytest
from flask import Flask
from flask_babel import force_locale

from tests.brief_helpers import NOW, TODAY, YESTERDAY, brief_world
from tests.factories import World, advance, calendar, make_ticket
from ticketing.extensions import db
from ticketing.models import Ticket
from ticketing.services import brief, hotspots
from ticketing.services.brief_rules import GREEN, RED, RULES, YELLOW, GridFigures, judge
from ticketing.services.brief_send import summary
from ticketing.services.ledger_report import Rate
from ticketing.services.photos import PhotoStore


@pytest.fixture()
def tickets(world: World, store: PhotoStore) -> dict[str, Ticket]:
    return brief_world(world, store)


def numbers(listing: brief.Listing) -> list[str]:
    return [line.number for line in listing.lines]


# --- each section -------------------------------------------------------------------


def test_the_brief_reports_yesterdays_ledger_with_each_rate_and_its_n(world: World, tickets: dict) -> None:
    composed = brief.compose(world.sue, TODAY, NOW, calendar())
    assert composed.yesterday_day == YESTERDAY and composed.compiled
    assert (composed.yesterday.counts["new"], composed.yesterday.counts["resolved"]) == (14, 9)
    assert composed.yesterday.rates["response"] == Rate(18, 20)
    assert composed.rate_shown("response") and composed.rate_shown("satisfaction")


def test_a_rate_over_fewer_than_ten_tickets_is_not_shown(world: World, tickets: dict) -> None:
    composed = brief.compose(world.sue, TODAY, NOW, calendar())
    assert composed.yesterday.rates["resolution"] == Rate(3, 4)
    assert not composed.rate_shown("resolution")
    with force_locale("zh"):
        _, lines = summary(composed)
    assert "解决率 样本少（n=4）" in lines[0] and "75.0%" not in lines[0]
    assert "响应率 90.0%（n=20）" in lines[0]


def test_the_brief_says_when_yesterdays_ledgers_are_not_compiled(world: World) -> None:
    composed = brief.compose(world.sue, TODAY, NOW, calendar())
    assert not composed.compiled
    with force_locale("en"):
        assert "not compiled yet" in summary(composed)[1][0]


def test_a_ticket_due_later_today_is_on_the_breach_list(world: World, tickets: dict) -> None:
    composed = brief.compose(world.sue, TODAY, NOW, calendar())
    assert numbers(composed.due_today) == [tickets["due"].number]
    assert tickets["due"].number not in numbers(composed.overdue)


def test_overdue_tickets_are_listed_the_longest_late_first(world: World, tickets: dict) -> None:
    composed = brief.compose(world.sue, TODAY, NOW, calendar())
    assert numbers(composed.overdue) == [tickets["far"].number, tickets["late"].number]
    assert composed.overdue.lines[0].place == "西岭社区 · 第一网格"


def test_a_ticket_on_hold_is_never_about_to_breach_nor_overdue(world: World, store: PhotoStore,
                                                               tickets: dict) -> None:
    held = advance(make_ticket(world, store, now=NOW), "on_hold", world, now=NOW)
    held.resolve_due_at = NOW  # paused: the deadline does not run
    db.session.commit()
    composed = brief.compose(world.sue, TODAY, NOW, calendar())
    assert held.number not in numbers(composed.due_today) + numbers(composed.overdue)


def test_a_supervised_ticket_is_on_the_supervision_list(world: World, tickets: dict) -> None:
    composed = brief.compose(world.sue, TODAY, NOW, calendar())
    assert numbers(composed.supervised) == [tickets["flagged"].number]


def test_a_callback_due_today_is_listed_and_a_late_one_counted(world: World, tickets: dict) -> None:
    composed = brief.compose(world.sue, TODAY, NOW, calendar())
    assert numbers(composed.callbacks) == [tickets["called"].number]
    assert composed.callbacks.lines[0].reason == "staff_entry" and composed.callbacks_late == 0
    later = brief.compose(world.sue, TODAY, NOW.replace(hour=11), calendar())  # 19:00 local
    assert later.callbacks_late == 1


def test_a_long_list_shows_its_first_lines_and_counts_the_rest(monkeypatch: pytest.MonkeyPatch, world: World,
                                                               tickets: dict) -> None:
    monkeypatch.setattr(brief, "LIST_MAX", 1)
    composed = brief.compose(world.sue, TODAY, NOW, calendar())
    assert (composed.overdue.total, len(composed.overdue.lines), composed.overdue.more) == (2, 1, 1)


def test_only_new_or_growing_recurring_problems_are_in_the_brief(monkeypatch: pytest.MonkeyPatch,
                                                                  world: World) -> None:
    stair_light = world.category("repair.stair_light").id
    found = [hotspots.Summary(i, "building", i, name, stair_light, count, previous, count)
             for i, (name, count, previous) in enumerate((("3号楼", 6, 0), ("西苑", 5, 2), ("东苑", 3, 4)), 1)]
    asked = []
    monkeypatch.setattr(brief, "recurring_problems", lambda user, day: asked.append((user, day)) or found)
    composed = brief.compose(world.sam, TODAY, NOW, calendar())
    assert [p.place_name for p in composed.hotspots.lines] == ["3号楼", "西苑"]
    assert asked == [(world.sam, TODAY)]


def test_governance_tasks_past_their_deadline_are_in_the_brief(monkeypatch: pytest.MonkeyPatch,
                                                               world: World) -> None:
    monkeypatch.setattr(brief, "tasks_past_deadline", lambda user, now: ["task"] * 7 if now == NOW else [])
    composed = brief.compose(world.sam, TODAY, NOW, calendar())
    assert (composed.overdue_tasks.total, composed.overdue_tasks.more) == (7, 7 - brief.LIST_MAX)


# --- scope ----------------------------------------------------------------------------


def test_a_community_supervisor_sees_only_their_community(world: World, tickets: dict) -> None:
    composed = brief.compose(world.sam, TODAY, NOW, calendar())
    assert composed.scope_name == "东怡社区"
    assert numbers(composed.overdue) == [tickets["late"].number]
    assert composed.yesterday.counts["new"] == 13
    assert {grid.code for grid in composed.grids} == {"CA-01", "CA-02"}


def test_a_street_supervisor_narrowed_to_a_community_reads_what_its_supervisor_reads(
        world: World, tickets: dict) -> None:
    community_b = brief.community_for(world.sue, "CB")
    assert community_b is not None
    composed = brief.compose(brief.as_community_supervisor(world.sue, community_b), TODAY, NOW, calendar())
    assert numbers(composed.overdue) == [tickets["far"].number]
    assert [grid.code for grid in composed.grids] == ["CB-01"]
    assert brief.community_for(world.sam, "CB") is None
    assert world.sue.community_id is None  # the stand-in changed nobody


# --- 红/黄/绿 ---------------------------------------------------------------------------


def grid(counts: dict[str, int] | None = None, rates: dict[str, Rate] | None = None) -> GridFigures:
    return GridFigures(1, "G1", "第一网格", "东怡社区", counts or {}, rates or {})


def test_a_grid_with_a_supervised_ticket_is_red() -> None:
    judged = judge(grid({"supervised": 1}))
    assert judged.colour == RED and [r.measure for r in judged.reasons] == ["supervised"]


def test_three_overdue_tickets_make_a_grid_red_and_one_yellow() -> None:
    assert judge(grid({"overdue": 3})).colour == RED
    assert judge(grid({"overdue": 1})).colour == YELLOW


def test_a_low_rate_over_enough_tickets_colours_the_grid() -> None:
    assert judge(grid(rates={"satisfaction": Rate(7, 10)})).colour == RED
    assert judge(grid(rates={"response": Rate(17, 20)})).colour == YELLOW
    assert judge(grid(rates={"response": Rate(18, 20)})).colour == GREEN


def test_a_low_rate_over_too_few_tickets_colours_nothing() -> None:
    assert judge(grid(rates={"satisfaction": Rate(0, 9)})).colour == GREEN


def test_a_grid_with_nothing_wrong_is_green() -> None:
    judged = judge(grid({"due_today": 2}, {"response": Rate(10, 10)}))
    assert (judged.colour, judged.reasons) == (GREEN, [])


def test_the_worlds_grids_are_coloured_worst_first(world: World, tickets: dict) -> None:
    composed = brief.compose(world.sue, TODAY, NOW, calendar())
    assert [(g.code, g.colour) for g in composed.grids] == [("CA-01", RED), ("CA-02", YELLOW), ("CB-01", YELLOW)]
    assert composed.colour_counts == {RED: 1, YELLOW: 2, GREEN: 0}


def test_each_rule_is_written_from_its_own_thresholds(app: Flask) -> None:
    with app.test_request_context(), force_locale("zh"):
        texts = {(rule.colour, rule.measure): rule.text() for rule in RULES}
    assert texts[(RED, "overdue")] == "超期件：3 件及以上"
    assert texts[(YELLOW, "satisfaction")] == "近 7 天满意率低于 90%"
