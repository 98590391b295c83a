"""Governance tasks (治理任务): opening, scope, linking new tickets, the before/after counts.

Sam supervises community A, Sue the whole street; Dora and Dan dispatch A and B. The
tasks below open at T0, Wednesday 2026-11-18 10:00 in Shanghai, at 槐树院 (grid A1)
about stair lights unless a test says otherwise.
"""
from __future__ import annotations

import threading
from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from flask import Flask
from flask_babel import force_locale
from sqlalchemy import select, text

from tests.factories import T0, TZ, World, make_ticket
from tests.governance_helpers import days, local, open_task, task_input
from ticketing.extensions import db
from ticketing.models import AuditEntry, Building, GovernanceTaskTicket, Status, Ticket
from ticketing.services import governance, ledger_report
from ticketing.services.errors import IllegalTransition, NotAllowed, ValidationFailed
from ticketing.services.photos import PhotoStore


def links() -> set[tuple[int, int]]:
    return set(db.session.execute(select(GovernanceTaskTicket.task_id, GovernanceTaskTicket.ticket_id)).tuples())


def errors_of(world: World, user: object = None, **fields: object) -> dict[str, str]:
    with force_locale("en"), pytest.raises(ValidationFailed) as failed:
        governance.open_task(user or world.sam, task_input(world, **fields), T0, TZ)  # type: ignore[arg-type]
    db.session.rollback()
    with force_locale("en"):
        return {name: str(message) for name, message in failed.value.errors.items()}


# --- opening --------------------------------------------------------------------------------


def test_a_supervisor_opens_a_task_that_knows_its_grid_community_and_street(world: World) -> None:
    task = open_task(world)
    assert (task.level, task.place_id, task.status, task.opened_at, task.opened_by_id) == (
        "complex", world.courtyard.id, "open", T0, world.sam.id)
    assert (task.grid_id, task.community_id, task.street_id) == (
        world.grid_a1.id, world.community_a.id, world.street.id)
    assert task.responsible_name == world.gina.display_name
    assert db.session.scalar(select(AuditEntry.action).where(AuditEntry.target_type == "governance_task")) == \
        "governance_task.create"


def test_a_building_in_another_grid_than_its_complex_puts_the_task_in_that_grid(world: World) -> None:
    world.building_courtyard.grid = world.grid_a2
    db.session.commit()
    task = open_task(world, place=f"building:{world.building_courtyard.id}")
    assert (task.grid_id, task.community_id) == (world.grid_a2.id, world.community_a.id)


def test_a_community_task_has_no_grid(world: World) -> None:
    task = open_task(world, place=f"community:{world.community_a.id}", category_id=None)
    assert (task.grid_id, task.community_id, task.category_id) == (None, world.community_a.id, None)


def test_the_title_is_required_and_bounded(world: World) -> None:
    assert "title" in errors_of(world, title="  ")
    assert "at most 100" in errors_of(world, title="灯" * 101)["title"]


def test_the_deadline_is_required_and_not_in_the_past(world: World) -> None:
    assert "deadline" in errors_of(world, deadline=None)
    assert "past" in errors_of(world, deadline=date(2026, 11, 17))["deadline"]
    open_task(world, deadline=date(2026, 11, 18))  # today is fine


def test_the_place_must_exist_and_lie_in_the_openers_scope(world: World) -> None:
    assert "place" in errors_of(world, place="complex:999999")
    assert "place" in errors_of(world, place="nowhere")
    assert "not in your area" in errors_of(world, place=f"complex:{world.east.id}")["place"]
    assert open_task(world, world.sue, place=f"complex:{world.east.id}").community_id == world.community_b.id


def test_the_category_must_exist(world: World) -> None:
    assert "category_id" in errors_of(world, category_id=999999)


def test_someone_responsible_is_picked_from_the_lists_or_typed_in(world: World) -> None:
    assert "responsible" in errors_of(world, responsible="")
    assert "responsible" in errors_of(world, responsible=f"user:{world.adam.id}")  # not Sam's to name
    assert "responsible" in errors_of(world, responsible=f"user:{world.gabe.id}")  # community B's worker
    typed = open_task(world, responsible="", responsible_unit="区住建委")
    assert (typed.responsible_user_id, typed.responsible_name) == (None, "区住建委")
    company = open_task(world, responsible=f"company:{world.company.id}", responsible_unit="区住建委")
    assert company.responsible_name == f"{world.company.name} · 区住建委"
    team = open_task(world, responsible=f"team:{world.volunteers.id}")
    assert team.responsible_team_id == world.volunteers.id


def test_every_problem_is_reported_at_once(world: World) -> None:
    assert set(errors_of(world, title="", deadline=None, responsible="", place="", category_id=999999)) == {
        "title", "deadline", "responsible", "place", "category_id"}


@pytest.mark.parametrize("who", ["dora", "gina", "pete"])
def test_only_supervisors_and_admins_open_tasks(world: World, who: str) -> None:
    with pytest.raises(NotAllowed):
        governance.open_task(getattr(world, who), task_input(world), T0, TZ)


# --- scope, open and overdue ----------------------------------------------------------------


def test_each_reader_sees_the_tasks_of_their_scope(world: World) -> None:
    a = open_task(world)
    b = open_task(world, world.sue, place=f"complex:{world.east.id}")
    assert governance.open_tasks(None) == [a, b]
    assert governance.open_tasks(world.sam) == governance.open_tasks(world.dora) == [a]
    assert governance.open_tasks(world.dan) == [b]
    assert governance.open_tasks(world.pete) == []
    assert governance.find(world.dan, a.id) is None and governance.find(world.sue, a.id) is a


def test_a_task_is_overdue_once_its_local_deadline_day_is_over(world: World) -> None:
    task = open_task(world, deadline=date(2026, 11, 18))
    late_evening = local(11, 18, 23, 59)
    assert governance.overdue_tasks(None, late_evening, TZ) == []
    assert governance.overdue_tasks(None, local(11, 19, 0, 1), TZ) == [task]  # 16:01 UTC, still the 18th there
    assert governance.overdue_tasks(world.dan, local(11, 19, 0, 1), TZ) == []
    governance.close_task(world.sam, task, "灯已修好", local(11, 19, 9))
    assert governance.overdue_tasks(None, local(11, 20), TZ) == []
    assert governance.open_tasks(None) == []


# --- editing and closing ---------------------------------------------------------------------


def test_editing_keeps_a_past_deadline_but_refuses_a_new_one_in_the_past(world: World) -> None:
    task = open_task(world, deadline=date(2026, 11, 20))
    later = local(11, 25)
    governance.edit_task(world.sam, task, task_input(world, title="新标题", deadline=date(2026, 11, 20)), later, TZ)
    assert task.title == "新标题"
    with pytest.raises(ValidationFailed) as failed:
        governance.edit_task(world.sam, task, task_input(world, deadline=date(2026, 11, 21)), later, TZ)
    assert set(failed.value.errors) == {"deadline"}


def test_editing_leaves_the_place_and_category_as_they_were(world: World) -> None:
    task = open_task(world)
    governance.edit_task(world.sam, task, task_input(world, place=f"complex:{world.west.id}", category_id=None),
                         T0, TZ)
    assert (task.place_id, task.category_id) == (world.courtyard.id, world.category("repair.stair_light").id)


def test_closing_needs_a_note_and_a_closed_task_changes_no_more(world: World) -> None:
    task = open_task(world)
    with pytest.raises(ValidationFailed):
        governance.close_task(world.sam, task, "  ", T0)
    governance.close_task(world.sam, task, "更换了声控开关，三周无新诉求", T0 + days(20))
    db.session.commit()
    assert (task.status, task.closed_by_id, task.closed_at) == ("closed", world.sam.id, T0 + days(20))
    with pytest.raises(IllegalTransition):
        governance.close_task(world.sam, task, "again", T0 + days(21))
    with pytest.raises(IllegalTransition):
        governance.edit_task(world.sam, task, task_input(world), T0 + days(21), TZ)


def test_a_dispatcher_may_not_close_a_task(world: World) -> None:
    with pytest.raises(NotAllowed):
        governance.close_task(world.dora, open_task(world), "done", T0)


# --- linking ----------------------------------------------------------------------------------


def test_new_tickets_at_the_place_and_in_the_category_are_linked_and_no_others(
        world: World, store: PhotoStore) -> None:
    earlier = make_ticket(world, store, now=T0 - days(1))
    task = open_task(world)
    after = make_ticket(world, store, now=T0 + days(1))
    make_ticket(world, store, now=T0 + days(1), category="repair.water_leak")  # another category
    make_ticket(world, store, now=T0 + days(1), building=world.building_west)  # another place
    rejected = make_ticket(world, store, now=T0 + days(1))
    rejected.status = Status.REJECTED
    db.session.commit()
    assert governance.link_new(T0 + days(1)) == 1
    assert links() == {(task.id, after.id)}
    assert earlier.id not in {ticket.id for ticket in governance.linked_tickets(task)}
    assert governance.of_ticket(after) == [task]


def test_a_task_for_every_category_links_every_category_at_its_place(world: World, store: PhotoStore) -> None:
    task = open_task(world, category_id=None, place=f"grid:{world.grid_a1.id}")
    light = make_ticket(world, store, now=T0 + days(1))
    leak = make_ticket(world, store, now=T0 + days(1), category="repair.water_leak", building=world.building_managed)
    make_ticket(world, store, now=T0 + days(1), building=world.building_west)  # grid A2
    governance.link_new(T0 + days(1))
    assert links() == {(task.id, light.id), (task.id, leak.id)}


def test_linking_again_adds_nothing(world: World, store: PhotoStore) -> None:
    task = open_task(world)
    ticket = make_ticket(world, store, now=T0 + days(1))
    assert governance.link_new(T0 + days(1)) == 1
    assert governance.link_new(T0 + days(1)) == 0
    db.session.commit()
    assert links() == {(task.id, ticket.id)}


def test_a_ticket_filed_as_the_task_opens_is_linked_at_once(world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, now=T0)
    task = open_task(world, at=T0)
    assert links() == {(task.id, ticket.id)}


def test_a_closed_task_links_no_more(world: World, store: PhotoStore) -> None:
    task = open_task(world)
    governance.close_task(world.sam, task, "done", T0 + days(1))
    make_ticket(world, store, now=T0 + days(2))
    assert governance.link_new(T0 + days(2)) == 0


def test_the_job_links_through_the_scheduler(world: World, store: PhotoStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from workers import jobs
    from workers.scheduler import SCHEDULE, fire

    task = open_task(world)
    ticket = make_ticket(world, store, now=T0 + days(1))
    entry = next(e for e in SCHEDULE if e.id == "governance-links")
    at = T0 + days(1) + timedelta(minutes=10)
    assert entry.every == 600
    monkeypatch.setattr(jobs, "utcnow", lambda: at)
    assert fire(entry, at, TZ) == "fired"
    db.session.expire_all()
    assert links() == {(task.id, ticket.id)}


# --- what the tasks show ------------------------------------------------------------------------


def test_the_ledger_of_a_grid_shows_the_tasks_that_cover_it_that_day(world: World) -> None:
    complex_task = open_task(world)
    community_task = open_task(world, place=f"community:{world.community_a.id}")
    open_task(world, place=f"complex:{world.west.id}")  # grid A2
    open_task(world, world.sue, place=f"complex:{world.east.id}")  # community B
    assert governance.covering_grid(world.grid_a1, date(2026, 11, 18), TZ) == [complex_task, community_task]
    assert governance.covering_grid(world.grid_a1, date(2026, 11, 17), TZ) == []  # not opened yet
    governance.close_task(world.sam, complex_task, "done", local(11, 20))
    assert governance.covering_grid(world.grid_a1, date(2026, 11, 20), TZ) == [complex_task, community_task]
    assert governance.covering_grid(world.grid_a1, date(2026, 11, 21), TZ) == [community_task]


def test_a_complex_covers_the_grid_of_each_of_its_buildings(world: World) -> None:
    extra = Building(name="9号楼", complex=world.courtyard, grid=world.grid_a2)
    db.session.add(extra)
    db.session.commit()
    task = open_task(world)
    assert governance.covering_grid(world.grid_a2, date(2026, 11, 18), TZ) == [task]


def test_the_dashboard_block_lists_the_areas_open_tasks_overdue_first(world: World) -> None:
    later = open_task(world, deadline=date(2026, 12, 30))
    sooner = open_task(world, place=f"complex:{world.west.id}", deadline=date(2026, 11, 20))
    other = open_task(world, world.sue, place=f"complex:{world.east.id}")
    assert governance.in_area(world.sue, None, None) == [sooner, other, later]
    assert governance.in_area(world.sue, world.community_a.id, None) == [sooner, later]
    assert governance.in_area(world.sam, world.community_b.id, None) == []


def test_the_snapshot_keeps_what_the_cluster_said(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    spot = SimpleNamespace(id=7, place_name="槐树院", category_id=world.category("repair.stair_light").id,
                           count=9, previous_count=2, days=30, first_at=T0 - days(25), last_at=T0 - days(1))
    monkeypatch.setattr(governance.hotspots, "visible",
                        lambda user, hotspot_id: spot if hotspot_id == spot.id else None)
    text = governance.hotspot_snapshot(world.sam, 7, date(2026, 11, 18))
    assert "槐树院" in text and "9" in text and "2026-10-24" in text
    assert governance.hotspot_snapshot(world.sam, 8, date(2026, 11, 18)) == ""


# --- before and after -----------------------------------------------------------------------------


def file_at(world: World, store: PhotoStore, *times: object, **fields: object) -> list[Ticket]:
    return [make_ticket(world, store, now=at, **fields) for at in times]  # type: ignore[arg-type]


def test_weekly_counts_each_monday_week_before_and_after_the_opening(world: World, store: PhotoStore) -> None:
    file_at(world, store, local(10, 18, 20),  # Sunday before the first week: not shown
            local(10, 19, 0, 5), local(10, 28), local(11, 16, 9), local(11, 18, 9, 59))
    task = open_task(world)  # Wednesday 18 November, 10:00
    file_at(world, store, local(11, 18, 10), local(11, 24))
    file_at(world, store, local(11, 24), category="repair.water_leak")  # not its category
    weeks = governance.weekly(task, local(11, 25, 12), TZ)
    assert [(w.start, w.before, w.after) for w in weeks] == [
        (date(2026, 10, 19), 1, 0), (date(2026, 10, 26), 1, 0), (date(2026, 11, 2), 0, 0),
        (date(2026, 11, 9), 0, 0), (date(2026, 11, 16), 2, 1), (date(2026, 11, 23), 0, 1)]


def test_complaints_that_fell_show_the_change_per_week(world: World, store: PhotoStore) -> None:
    file_at(world, store, *(local(10, 20) + days(3 * i) for i in range(10)))  # 10 in the month before
    task = open_task(world)
    file_at(world, store, local(11, 20))
    effect = governance.effect(task, T0 + days(14), TZ)
    before_weeks = (T0 - local(10, 19, 0)) / timedelta(days=7)
    assert (effect.before, effect.after) == (10, 1)
    assert effect.before_mean == pytest.approx(10 / before_weeks)
    assert effect.after_mean == pytest.approx(0.5)
    assert effect.change == pytest.approx(0.5 - 10 / before_weeks)
    assert effect.change_percent == pytest.approx(100 * (0.5 - 10 / before_weeks) / (10 / before_weeks))
    assert effect.judged and effect.reduced


def test_too_few_tickets_are_not_judged(world: World, store: PhotoStore) -> None:
    file_at(world, store, local(11, 2), local(11, 9), local(11, 16))
    task = open_task(world)
    effect = governance.effect(task, T0 + days(14), TZ)
    assert effect.before + effect.after < ledger_report.MIN_TICKETS
    assert effect.too_few and not effect.judged and not effect.reduced
    assert effect.change < 0  # fewer, but three tickets prove nothing


def test_the_first_week_after_the_opening_is_too_early_to_judge(world: World, store: PhotoStore) -> None:
    file_at(world, store, *(local(10, 20) + days(3 * i) for i in range(10)))
    task = open_task(world)
    effect = governance.effect(task, T0 + days(6), TZ)
    assert effect.too_early and not effect.too_few and not effect.judged
    assert governance.effects([task], T0 + days(8), TZ)[task.id].judged


def test_nothing_before_has_no_percentage(world: World) -> None:
    effect = governance.effect(open_task(world), T0 + days(14), TZ)
    assert (effect.before, effect.after, effect.change_percent) == (0, 0, None)


@pytest.mark.postgres
def test_two_link_runs_at_once_add_each_link_once(app: Flask, world: World, store: PhotoStore) -> None:
    """The second run starts before the first commits: it waits on the (task, ticket) key,
    then adds nothing and fails on nothing (ON CONFLICT DO NOTHING)."""
    open_task(world)
    make_ticket(world, store, now=T0 + days(1))
    db.session.remove()
    inserted, release = threading.Event(), threading.Event()
    added: dict[str, int] = {}
    failures: list[Exception] = []

    def run(name: str) -> None:
        with app.app_context():
            try:
                added[name] = governance.link_new(T0 + days(1))
                if name == "first":
                    inserted.set()
                    release.wait(timeout=10)
                db.session.commit()
            except Exception as exc:  # noqa: BLE001  (reported below, not lost in the thread)
                failures.append(exc)
            finally:
                db.session.remove()

    first, second = (threading.Thread(target=run, args=(name,)) for name in ("first", "second"))
    first.start()
    assert inserted.wait(timeout=10)
    second.start()
    waiting_on_a_lock(expected=1)
    release.set()
    first.join(timeout=10)
    second.join(timeout=10)
    assert failures == [] and added == {"first": 1, "second": 0}
    assert len(links()) == 1


def waiting_on_a_lock(expected: int) -> None:
    """Wait (at most 10 s) until `expected` backends of this database wait on a lock."""
    import time

    deadline = time.monotonic() + 10
    query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                 "AND wait_event_type = 'Lock'")
    while time.monotonic() < deadline:
        with db.engine.connect() as conn:
            if conn.execute(query).scalar() == expected:
                return
        time.sleep(0.01)
    raise AssertionError("the second run never waited on the first")
