"""回访: which results open a callback, the queue, the outcome of a call, and the whole loop."""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.callback_helpers import rated, task_of, tasks_of
from tests.conftest import csrf_token, login
from tests.factories import T0, TZ, World, advance, calendar, make_ticket
from tests.races import read_then_at_once
from ticketing import web
from ticketing.console import callbacks as callback_pages
from ticketing.extensions import db
from ticketing.models import (
    CallbackTask,
    HandlerDay,
    KeyKind,
    Ledger,
    Notification,
    RevealLog,
    Status,
    Ticket,
    TicketEvent,
    User,
)
from ticketing.services import (
    apikeys,
    callbacks,
    ledger,
    ledger_report,
    navigation,
    sweep,
    tracking,
)
from ticketing.services.callbacks import Outcome
from ticketing.services.errors import Conflict, IllegalTransition, InvalidInput, NotAllowed
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore

# Wednesday 2026-11-18 10:00 in Shanghai; two working days later is Friday 10:00.
FRIDAY = datetime(2026, 11, 20, 10, 0, tzinfo=TZ).astimezone(UTC)


@pytest.fixture(autouse=True)
def _no_samples(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """No sample of the satisfied unless a test asks for one, so that counts are exact."""
    monkeypatch.setitem(app.config, "CALLBACK_SAMPLE_PERCENT", 0)


def record(task: CallbackTask, user: Any, at: datetime = T0, **outcome: Any) -> callbacks.Recorded:
    done = callbacks.record_outcome(task, user, Outcome(**outcome), at, calendar())
    db.session.commit()
    return done


# --- Where tasks come from -------------------------------------------------------------


def test_a_not_satisfied_rating_opens_a_callback_due_in_two_working_days(world: World, store: PhotoStore) -> None:
    ticket = rated(world, store, "unsatisfied")
    task = task_of(ticket)
    assert (task.reason, task.state, task.work_round, task.attempts) == ("unsatisfied", "open", 0, 0)
    assert (task.created_at, task.due_at) == (T0, FRIDAY)
    assert ticket.status == Status.CLOSED  # closed, but not silently: the community office calls back


def test_the_dispatchers_and_supervisors_of_the_community_are_told(world: World, store: PhotoStore) -> None:
    rated(world, store, "unsatisfied")
    told = set(db.session.scalars(select(Notification.user_id).where(Notification.kind == "callback")))
    assert told == {world.dora.id, world.sam.id}


def test_asking_for_a_redo_after_choosing_not_satisfied_opens_a_callback(world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "resolved", world)
    perform(ticket, "reopen", Actor.resident(), T0, calendar(), note="还是不亮", unsatisfied=True)
    db.session.commit()
    task = task_of(ticket)
    assert (task.reason, task.work_round, ticket.status) == ("unsatisfied", 0, Status.ACCEPTED)
    assert ticket.events[-1].detail == {"unsatisfied": True}


def test_a_plain_redo_request_opens_no_callback(world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "resolved", world)
    perform(ticket, "reopen", Actor.resident(), T0, calendar(), note="还是不亮")
    db.session.commit()
    assert tasks_of(ticket) == []


def test_a_result_nobody_rated_gets_a_callback_when_the_sweep_closes_it(world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "resolved", world)  # Wednesday 10:00
    not_yet = datetime(2026, 11, 23, 9, 59, tzinfo=TZ).astimezone(UTC)  # 3 working days: Monday 10:00
    sweep.auto_close(not_yet, calendar(), sweep.SweepResult(), 500)
    assert tasks_of(ticket) == []
    closing = datetime(2026, 11, 23, 10, 1, tzinfo=TZ).astimezone(UTC)
    sweep.auto_close(closing, calendar(), sweep.SweepResult(), 500)
    db.session.refresh(ticket)
    task = task_of(ticket)
    assert (ticket.status, task.reason, task.created_at) == (Status.CLOSED, "not_rated", closing)
    assert task.due_at == datetime(2026, 11, 25, 10, 1, tzinfo=TZ).astimezone(UTC)


def test_a_walk_in_request_gets_a_callback_when_resolved_and_no_second_when_closed_unrated(
        world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, channel="walk_in", actor=Actor.staff(world.dora))
    advance(ticket, "resolved", world)
    assert task_of(ticket).reason == "staff_entry"
    perform(ticket, "auto_close", Actor.system(), T0 + timedelta(days=5), calendar())
    db.session.commit()
    assert [t.reason for t in tasks_of(ticket)] == ["staff_entry"]


def test_a_web_request_resolved_gets_no_callback(world: World, store: PhotoStore) -> None:
    assert tasks_of(advance(make_ticket(world, store), "resolved", world)) == []


def test_the_sample_of_the_satisfied_is_a_share_and_the_same_every_time() -> None:
    chosen = [i for i in range(1, 2001) if callbacks.sampled(i, 10)]
    assert 150 <= len(chosen) <= 250
    assert chosen == [i for i in range(1, 2001) if callbacks.sampled(i, 10)]
    assert all(callbacks.sampled(i, 100) for i in range(1, 200))
    assert not any(callbacks.sampled(i, 0) for i in range(1, 200))
    assert set(chosen) >= {i for i in range(1, 2001) if callbacks.sampled(i, 5)}


def test_a_sampled_satisfied_rating_opens_a_callback(
        app: Flask, world: World, store: PhotoStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "CALLBACK_SAMPLE_PERCENT", 100)
    assert task_of(rated(world, store, "basic")).reason == "sample"
    monkeypatch.setitem(app.config, "CALLBACK_SAMPLE_PERCENT", 0)
    assert tasks_of(rated(world, store, "satisfied")) == []


def test_an_event_heard_twice_opens_one_task(world: World, store: PhotoStore) -> None:
    ticket = rated(world, store, "unsatisfied")
    rating = ticket.events[-1]
    callbacks.on_event(ticket, rating)
    callbacks.on_event(ticket, rating)
    db.session.commit()
    assert len(tasks_of(ticket)) == 1
    assert db.session.scalar(select(func.count()).select_from(Notification)
                             .where(Notification.kind == "callback")) == 2  # dora and sam, once each


def test_not_satisfied_again_after_a_redo_opens_a_second_callback(world: World, store: PhotoStore) -> None:
    ticket = rated(world, store, "unsatisfied")
    record(task_of(ticket), world.dora, reached=True, solved=False, note="灯还是不亮", redo={"assignee": world.gina})
    advance_again(ticket, world)
    perform(ticket, "rate", Actor.resident(), T0 + timedelta(days=1), calendar(), rating="unsatisfied")
    db.session.commit()
    assert [(t.reason, t.work_round, t.state) for t in tasks_of(ticket)] == [
        ("unsatisfied", 0, "done"), ("unsatisfied", 1, "open")]


def advance_again(ticket: Ticket, world: World, at: datetime = T0 + timedelta(hours=3)) -> None:
    """gina takes the redone ticket and resolves it again."""
    perform(ticket, "accept", Actor.staff(world.gina), at, calendar())
    perform(ticket, "resolve", Actor.staff(world.gina), at, calendar(), note="换了新灯座")
    db.session.commit()


# --- Working a task ----------------------------------------------------------------------


def test_revealing_the_phone_to_call_is_logged_as_a_callback(world: World, store: PhotoStore) -> None:
    task = task_of(rated(world, store, "unsatisfied"))
    callbacks.reveal(world.dora, task, T0, "10.0.0.8")
    db.session.commit()
    log = db.session.scalars(select(RevealLog)).one()
    assert (log.user_id, log.ticket_id, log.purpose) == (world.dora.id, task.ticket_id, "callback")
    with pytest.raises(NotAllowed):
        callbacks.reveal(world.gina, task, T0)


def test_a_resident_not_reached_is_tried_three_times_then_the_callback_fails(
        world: World, store: PhotoStore) -> None:
    task = task_of(rated(world, store, "unsatisfied"))
    for n in (1, 2):
        record(task, world.dora, T0 + timedelta(hours=n), reached=False, note="无人接听")
        assert (task.state, task.attempts) == ("open", n)
    record(task, world.sam, T0 + timedelta(hours=3), reached=False, note="空号")
    assert (task.state, task.attempts, task.reached, task.finished_by_id) == ("failed", 3, False, world.sam.id)
    assert [entry["reached"] for entry in task.attempt_log] == [False, False, False]
    lines = [e for e in task.ticket.events if e.action == "callback"]
    assert [(e.detail["attempt"], e.public) for e in lines] == [(1, False), (2, False), (3, False)]
    with pytest.raises(IllegalTransition):
        record(task, world.dora, reached=False)


def test_reached_and_solved_with_a_rating_on_a_result_not_yet_rated_records_it_as_the_residents(
        world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, channel="phone", actor=Actor.staff(world.dora))
    advance(ticket, "resolved", world)
    done = record(task_of(ticket), world.dora, T0 + timedelta(hours=2), reached=True, solved=True,
                  rating="satisfied", note="居民说灯已修好")
    assert (ticket.status, ticket.rating, ticket.rated_at) == (Status.CLOSED, "satisfied", T0 + timedelta(hours=2))
    assert [e.action for e in done.events] == ["callback", "callback_rate"]
    rating = done.events[-1]
    assert (rating.actor_id, rating.public) == (world.dora.id, True)
    assert rating.detail == {"rating": "satisfied", "given_by": "callback", "callback_id": done.task.id}
    assert (done.task.state, done.task.rating_recorded) == ("done", True)


def test_a_rating_on_the_call_does_not_replace_the_residents_own(world: World, store: PhotoStore) -> None:
    ticket = rated(world, store, "unsatisfied")
    done = record(task_of(ticket), world.dora, reached=True, solved=True, rating="satisfied")
    assert ticket.rating == "unsatisfied"
    assert (done.task.rating, done.task.rating_recorded) == ("satisfied", False)
    assert not any(e.action == "callback_rate" for e in ticket.events)


def test_an_outcome_that_does_not_hang_together_changes_nothing(world: World, store: PhotoStore) -> None:
    ticket = rated(world, store, "unsatisfied")
    task = task_of(ticket)
    events = len(ticket.events)
    refusals = [(Outcome(True), "solved"), (Outcome(True, False, note=" "), "note"),
                (Outcome(False, solved=True), "solved"), (Outcome(True, True, redo={"assignee": world.gina}), "redo"),
                (Outcome(True, True, rating="great"), "rating")]
    for outcome, field in refusals:
        with pytest.raises(InvalidInput) as refused:
            callbacks.record_outcome(task, world.dora, outcome, T0, calendar())
        assert refused.value.field == field
    db.session.expire_all()
    assert (task.attempts, task.state, len(ticket.events), ticket.status) == (0, "open", events, Status.CLOSED)


def test_a_redo_to_someone_who_cannot_handle_it_changes_nothing(world: World, store: PhotoStore) -> None:
    ticket = rated(world, store, "unsatisfied")
    task = task_of(ticket)
    with pytest.raises(InvalidInput) as refused:
        callbacks.record_outcome(task, world.dora, Outcome(True, False, note="没修好", redo={"assignee": world.gabe}),
                                 T0, calendar())
    assert refused.value.field == "handler"
    db.session.expire_all()
    assert (task.attempts, task.state, ticket.status, ticket.rating) == (0, "open", Status.CLOSED, "unsatisfied")


def test_a_callback_changed_since_it_was_read_is_a_conflict(world: World, store: PhotoStore) -> None:
    task = task_of(rated(world, store, "unsatisfied"))
    shown = task.version
    record(task, world.sam, reached=False)
    with pytest.raises(Conflict):
        callbacks.record_outcome(task, world.dora, Outcome(False), T0, calendar(), version=shown)


def test_the_same_idempotency_key_records_a_try_once(world: World, store: PhotoStore) -> None:
    task = task_of(rated(world, store, "unsatisfied"))
    for _ in range(2):
        done = callbacks.record_outcome(task, world.dora, Outcome(False), T0, calendar(), key="try-1")
        db.session.commit()
    assert done.replayed and task.attempts == 1


def test_only_dispatchers_supervisors_and_admins_in_scope_work_a_callback(world: World, store: PhotoStore) -> None:
    task = task_of(rated(world, store, "unsatisfied"))
    assert [name for name in ("adam", "sam", "sue", "dora", "dan", "gina") if callbacks.find(world.people[name], task.id)
            ] == ["adam", "sam", "sue", "dora"]
    # The navigation counts the same tasks, whatever the kind of scope: one statement per
    # kind, built once (services/navigation.py), the place a parameter.
    assert [navigation.badges(world.people[name], 100).to_call for name in ("adam", "sam", "sue", "dora", "dan", "gina")
            ] == [1, 1, 1, 1, 0, 0]
    # The navigation's count stops at `up_to`.
    task_of(rated(world, store, "unsatisfied"))
    assert navigation.badges(world.dora, 100).to_call == 2 and navigation.badges(world.dora, 1).to_call == 1
    with pytest.raises(NotAllowed):
        callbacks.record_outcome(task, world.dan, Outcome(False), T0, calendar())


def test_the_queue_lists_open_tasks_soonest_due_first_and_marks_the_overdue(world: World, store: PhotoStore) -> None:
    later = task_of(rated(world, store, "unsatisfied", at=T0 + timedelta(hours=1)))
    sooner = task_of(rated(world, store, "unsatisfied"))
    finished = task_of(rated(world, store, "unsatisfied"))
    record(finished, world.dora, reached=True, solved=True)
    page = callbacks.queue(world.dora, "open", 1, FRIDAY + timedelta(minutes=30))
    assert [t.id for t in page.tasks] == [sooner.id, later.id]
    assert page.counts == {"open": 2, "overdue": 1, "done": 1, "failed": 0, "all": 3}
    assert [t.id for t in callbacks.queue(world.dora, "overdue", 1, FRIDAY + timedelta(minutes=30)).tasks] == [sooner.id]


# --- The whole loop ----------------------------------------------------------------------


def test_not_satisfied_then_called_redone_resolved_and_rated_satisfied(world: World, store: PhotoStore) -> None:
    ticket = rated(world, store, "unsatisfied")
    task = task_of(ticket)
    call = T0 + timedelta(hours=2)
    done = record(task, world.dora, call, reached=True, solved=False, rating="unsatisfied",
                  note="楼道灯仍然不亮，请重新维修", redo={"assignee": world.greg})
    redo = done.events[-1]
    assert (redo.action, redo.from_status, redo.to_status, redo.public) == ("redo", "closed", "dispatched", True)
    assert redo.detail["callback_id"] == task.id and redo.detail["previous_rating"] == "unsatisfied"
    assert (ticket.status, ticket.assignee_id, ticket.reopen_count) == (Status.DISPATCHED, world.greg.id, 1)
    assert (ticket.rating, ticket.closed_at, ticket.resolved_at) == (None, None, None)
    assert (ticket.dispatched_at, ticket.accepted_at) == (call, None)
    assert ticket.accept_due_at is not None and ticket.accept_due_at > call  # fresh clocks, as a new dispatch
    assert db.session.scalars(select(Notification.user_id).where(
        Notification.kind == "assigned", Notification.ticket_id == ticket.id).order_by(Notification.id)).all() == [
        world.gina.id, world.greg.id]
    assert (task.state, task.reached, task.solved, task.redone) == ("done", True, False, True)
    perform(ticket, "accept", Actor.staff(world.greg), call, calendar())
    perform(ticket, "resolve", Actor.staff(world.greg), call + timedelta(hours=1), calendar(), note="更换了灯座")
    perform(ticket, "rate", Actor.resident(), call + timedelta(hours=2), calendar(), rating="satisfied")
    db.session.commit()
    assert (ticket.status, ticket.rating) == (Status.CLOSED, "satisfied")
    assert [t.state for t in tasks_of(ticket)] == ["done"]


# --- The ledger -----------------------------------------------------------------------------


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ).astimezone(UTC)


def test_a_rating_given_on_a_call_counts_in_the_satisfaction_rate_as_the_residents_own(
        world: World, store: PhotoStore) -> None:
    unrated = advance(make_ticket(world, store, now=local(13, 10)), "resolved", world, now=local(13, 10))
    perform(unrated, "auto_close", Actor.system(), local(18, 9), calendar())
    walk_in = make_ticket(world, store, now=local(17, 10), channel="walk_in", actor=Actor.staff(world.dora))
    advance(walk_in, "resolved", world, now=local(17, 10))
    db.session.commit()
    record(task_of(unrated), world.dora, local(18, 10), reached=True, solved=True, rating="satisfied")
    record(task_of(walk_in), world.dora, local(18, 11), reached=True, solved=True, rating="unsatisfied")
    ledger.compile_day(local(18, 12).astimezone(TZ).date(), TZ, local(19, 1))
    row = db.session.scalar(select(Ledger).where(Ledger.grid_id == world.grid_a1.id))
    assert (row.satisfaction_num, row.satisfaction_den) == (1, 2)
    # The walk-in was still resolved: the rating on the call closed it; the other was closed already.
    assert (row.closed, row.resolution_num, row.resolution_den) == (2, 2, 2)
    handlers = db.session.scalars(select(HandlerDay).where(HandlerDay.grid_id == world.grid_a1.id)).all()
    assert [(h.handler_key, h.satisfaction_num, h.satisfaction_den) for h in handlers] == [(f"u{world.gina.id}", 1, 2)]


def test_the_ledger_counts_the_callbacks_due_each_day_per_grid_and_handler(world: World, store: PhotoStore) -> None:
    """Due on Wednesday the 18th (opened Monday the 16th): in A1, t1 reached in time, t2 not reached
    after the deadline, t3 still open; in A2, u1 reached the day after. t4 is due on Thursday."""
    t1 = task_of(rated(world, store, "unsatisfied", at=local(16, 10)))
    t2 = task_of(rated(world, store, "unsatisfied", at=local(16, 15)))
    task_of(rated(world, store, "unsatisfied", at=local(16, 20)))
    task_of(rated(world, store, "unsatisfied", at=local(17, 9)))
    walk_in = make_ticket(world, store, now=local(16, 9), building=world.building_west, channel="walk_in",
                          actor=Actor.staff(world.dora))
    u1 = task_of(advance(walk_in, "resolved", world, now=local(16, 9), handler=world.greg))
    busy = make_ticket(world, store, now=local(18, 8))  # gina has a 三率 event of her own that day
    advance(busy, "accepted", world, now=local(18, 8))
    record(t1, world.dora, local(17, 10), reached=True, solved=True)
    for hour in (16, 17, 18):
        record(t2, world.dora, local(18, hour), reached=False)
    record(u1, world.dora, local(19, 9), reached=True, solved=False, note="还有问题")
    ledger.compile_day(local(18, 12).astimezone(TZ).date(), TZ, local(19, 12))
    rows = {r.grid_id: r for r in db.session.scalars(select(Ledger))}
    figures = {grid: (r.callback_due, r.callback_in_time, r.callback_reached) for grid, r in rows.items()}
    assert figures == {world.grid_a1.id: (3, 1, 1), world.grid_a2.id: (1, 0, 1), world.grid_b1.id: (0, 0, 0)}
    handlers = {(h.grid_id, h.handler_key): (h.callback_due, h.callback_in_time, h.callback_reached, h.accepted, h.name)
                for h in db.session.scalars(select(HandlerDay))}
    assert handlers == {(world.grid_a1.id, f"u{world.gina.id}"): (3, 1, 1, 1, world.gina.display_name),
                        (world.grid_a2.id, f"u{world.greg.id}"): (1, 0, 1, 0, world.greg.display_name)}
    ledger.compile_day(local(18, 12).astimezone(TZ).date(), TZ, local(19, 12))  # again: the same rows
    db.session.expire_all()
    again = {(h.grid_id, h.handler_key): (h.callback_due, h.callback_in_time, h.callback_reached, h.accepted, h.name)
             for h in db.session.scalars(select(HandlerDay))}
    assert again == handlers


def test_the_dashboard_adds_up_the_callbacks_and_ranks_them(world: World, store: PhotoStore) -> None:
    t1 = task_of(rated(world, store, "unsatisfied", at=local(16, 10)))
    task_of(rated(world, store, "unsatisfied", at=local(17, 10)))
    record(t1, world.dora, local(17, 10), reached=True, solved=True)
    for day in (18, 19):
        ledger.compile_day(datetime(2026, 11, day).date(), TZ, local(20, 1))
    span = ledger_report.period("week", datetime(2026, 11, 18).date())
    figures = ledger_report.rollup(Ledger.grid_id.is_not(None), span)
    assert (figures.counts["callback_due"], figures.counts["callback_in_time"], figures.callbacks.num) == (2, 1, 1)
    assert figures.callbacks.percent == "50.0%"
    grids = {line.key: line.extra["callback"] for line in ledger_report.grid_ranking(
        Ledger.grid_id.is_not(None), span)}
    assert (grids["CA-01"].num, grids["CA-01"].den) == (1, 2)
    handlers = ledger_report.handler_ranking(HandlerDay.grid_id.is_not(None), span)
    assert [(line.name, line.extra["callback"].den) for line in handlers] == [(world.gina.display_name, 2)]


# --- Through the pages ----------------------------------------------------------------------


def link(ticket: Ticket, app: Flask) -> str:
    return "/t/" + tracking.tracking_token(ticket, app.config["SECRET_KEY"])


def post(client: FlaskClient, url: str, **data: str) -> Any:
    return client.post(url, data={"csrf_token": csrf_token(client, "/track"), **data})


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Set the clock of the resident and console pages."""
    def set_to(when: datetime) -> None:
        monkeypatch.setattr(web, "now", lambda: when)
        monkeypatch.setattr(callback_pages, "now", lambda: when)
    return set_to


def test_choosing_not_satisfied_offers_a_redo_first(
        client: FlaskClient, english: None, app: Flask, world: World, store: PhotoStore,
        clock: Callable[[datetime], None]) -> None:
    clock(T0 + timedelta(hours=1))
    ticket = advance(make_ticket(world, store), "resolved", world)
    response = post(client, link(ticket, app) + "/rate", rating="unsatisfied", comment="灯还是不亮")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="unsatisfied"' in html
    assert html.index("Ask for it to be redone") < html.index("Rate “not satisfied” and close")
    assert "灯还是不亮" in html  # carried over as the reason
    db.session.expire_all()
    assert ticket.status == Status.RESOLVED and tasks_of(ticket) == []
    response = post(client, link(ticket, app) + "/reopen", reason="灯还是不亮", unsatisfied="1")
    assert response.status_code == 303
    db.session.expire_all()
    assert ticket.status == Status.ACCEPTED and task_of(ticket).reason == "unsatisfied"
    page = client.get(link(ticket, app)).get_data(as_text=True)
    assert "The community office will call you back about this request by 2026-11-20 11:00" in page


def test_the_whole_loop_through_the_pages(
        client: FlaskClient, english: None, app: Flask, world: World, store: PhotoStore,
        clock: Callable[[datetime], None]) -> None:
    clock(T0 + timedelta(hours=1))
    ticket = advance(make_ticket(world, store), "resolved", world)
    response = post(client, link(ticket, app) + "/rate", rating="unsatisfied", comment="灯还是不亮", confirmed="1")
    assert response.status_code == 303
    db.session.expire_all()
    assert (ticket.status, ticket.rating) == (Status.CLOSED, "unsatisfied")
    task = task_of(ticket)

    login(client, world.dora)
    queue = client.get("/console/callbacks").get_data(as_text=True)
    assert f'href="/console/callbacks/{task.id}"' in queue and "Not satisfied" in queue
    console = client.get("/console/").get_data(as_text=True)
    assert 'class="nav-callbacks">Callbacks' in console and 'title="1 to call"' in console
    page = client.get(f"/console/callbacks/{task.id}").get_data(as_text=True)
    assert "138****5678" in page and "13812345678" not in page and "What to say" in page
    revealed = post(client, f"/console/callbacks/{task.id}/reveal")
    assert revealed.status_code == 200 and 'href="tel:13812345678"' in revealed.get_data(as_text=True)
    assert revealed.headers["Cache-Control"] == "no-store"
    assert db.session.scalar(select(RevealLog.purpose)) == "callback"

    clock(T0 + timedelta(hours=2))
    response = post(client, f"/console/callbacks/{task.id}/outcome", reached="yes", version=str(task.version),
                    solved="no", handler=f"user:{world.gina.id}", rating="", note="居民说灯还是不亮")
    assert response.status_code == 303
    db.session.expire_all()
    assert (ticket.status, ticket.assignee_id, task.state, task.redone) == (Status.DISPATCHED, world.gina.id, "done", True)
    assert "sent back to be redone" in client.get(f"/console/callbacks/{task.id}").get_data(as_text=True)

    advance_again(ticket, world, T0 + timedelta(hours=3))
    clock(T0 + timedelta(hours=4))
    response = post(client, link(ticket, app) + "/rate", rating="satisfied")
    assert response.status_code == 303
    db.session.expire_all()
    assert (ticket.status, ticket.rating, ticket.reopen_count) == (Status.CLOSED, "satisfied", 1)


def test_a_dispatcher_of_another_community_gets_404(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    task = task_of(rated(world, store, "unsatisfied"))
    login(client, world.dan)
    assert client.get(f"/console/callbacks/{task.id}").status_code == 404
    assert post(client, f"/console/callbacks/{task.id}/outcome", reached="no").status_code == 404
    assert post(client, f"/console/callbacks/{task.id}/reveal").status_code == 404
    assert f"/console/callbacks/{task.id}" not in client.get("/console/callbacks").get_data(as_text=True)
    db.session.expire_all()
    assert task.attempts == 0 and db.session.scalar(select(func.count()).select_from(RevealLog)) == 0


def test_a_grid_worker_has_no_callback_queue(client: FlaskClient, world: World) -> None:
    login(client, world.gina)
    assert client.get("/console/callbacks").status_code == 404


def test_a_refused_outcome_shows_the_reason_beside_the_field(
        client: FlaskClient, english: None, world: World, store: PhotoStore) -> None:
    task = task_of(rated(world, store, "unsatisfied"))
    login(client, world.dora)
    response = post(client, f"/console/callbacks/{task.id}/outcome", reached="yes", solved="no", note="",
                    handler="")
    assert response.status_code == 400 and "Say what is still wrong." in response.get_data(as_text=True)
    db.session.expire_all()
    assert task.attempts == 0


def test_the_console_filters_tickets_by_rating(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    unhappy, happy = rated(world, store, "unsatisfied"), rated(world, store, "satisfied")
    unrated = advance(make_ticket(world, store), "resolved", world)
    perform(unrated, "auto_close", Actor.system(), T0 + timedelta(days=5), calendar())
    db.session.commit()
    login(client, world.dora)

    def listed(rating: str) -> set[str]:
        html = client.get(f"/console/?tab=all&rating={rating}").get_data(as_text=True)
        return {n for n in (unhappy.number, happy.number, unrated.number) if f"/tickets/{n}" in html}

    assert listed("unsatisfied") == {unhappy.number}
    assert listed("satisfied") == {happy.number}
    assert listed("none") == {unrated.number}
    assert listed("") == {unhappy.number, happy.number, unrated.number}


# --- Through the staff API -----------------------------------------------------------------


def api_headers(user: Any) -> dict[str, str]:
    _row, key = apikeys.issue(KeyKind.STAFF, "call centre", T0, user=user)
    return {"Authorization": f"Bearer {key}"}


def test_the_api_lists_the_open_callbacks_of_the_accounts_scope(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    mine = task_of(rated(world, store, "unsatisfied"))
    done = task_of(rated(world, store, "unsatisfied"))
    record(done, world.dora, reached=True, solved=True)
    task_of(rated(world, store, "unsatisfied", building=world.building_east, handler=world.gabe))  # community B
    body = client.get("/api/v1/callbacks?state=open", headers=api_headers(world.dora)).get_json()
    assert [(c["id"], c["reason"], c["state"]) for c in body["callbacks"]] == [(mine.id, "unsatisfied", "open")]
    assert body["callbacks"][0]["ticket"]["number"] == mine.ticket.number and body["next_cursor"] is None
    everything = client.get("/api/v1/callbacks?limit=1", headers=api_headers(world.sue)).get_json()
    assert len(everything["callbacks"]) == 1 and everything["next_cursor"] is not None
    assert client.get("/api/v1/callbacks", headers=api_headers(world.gina)).get_json()["callbacks"] == []


def test_the_api_records_an_outcome_once_per_idempotency_key(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    task = task_of(rated(world, store, "unsatisfied"))
    headers = {**api_headers(world.dora), "Idempotency-Key": "call-7"}
    url = f"/api/v1/callbacks/{task.id}/outcome"
    first = client.post(url, json={"reached": False, "note": "无人接听"}, headers=headers)
    again = client.post(url, json={"reached": False, "note": "无人接听"}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.get_json() == again.get_json() and first.get_json()["attempts"] == 1
    assert first.get_json()["tries"][0]["by"]["id"] == world.dora.id
    redo = client.post(url, json={"reached": True, "solved": False, "note": "没修好",
                                  "redo_to": f"user:{world.gina.id}"}, headers=api_headers(world.dora))
    body = redo.get_json()
    assert redo.status_code == 200 and (body["state"], body["redone"], body["ticket"]["status"]) == (
        "done", True, "dispatched")
    finished = client.post(url, json={"reached": False}, headers=api_headers(world.dora))
    assert finished.status_code == 409 and finished.get_json()["error"]["code"] == "illegal_transition"


def test_the_api_refuses_an_outcome_that_does_not_hang_together(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    task = task_of(rated(world, store, "unsatisfied"))
    url = f"/api/v1/callbacks/{task.id}/outcome"
    for body, field in (({"reached": True}, "solved"), ({"reached": True, "solved": False}, "note"),
                        ({"reached": True, "solved": False, "note": "x", "redo_to": "user:999"}, "redo_to"),
                        ({"reached": "yes"}, "reached")):
        response = client.post(url, json=body, headers=api_headers(world.dora))
        assert response.status_code == 422 and field in response.get_json()["errors"], (body, response.get_json())
    db.session.expire_all()
    assert task.attempts == 0


def test_the_api_shows_a_callback_masked_and_reveals_it_logged(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    task = task_of(rated(world, store, "unsatisfied"))
    headers = api_headers(world.dora)
    body = client.get(f"/api/v1/callbacks/{task.id}", headers=headers).get_json()
    assert body["ticket"]["requester"] == {"name": "张**", "phone": "138****5678", "revealed": False}
    assert db.session.scalar(select(func.count()).select_from(RevealLog)) == 0
    shown = client.post(f"/api/v1/callbacks/{task.id}/reveal", headers=headers).get_json()
    assert shown["ticket"]["requester"]["phone"] == "13812345678"
    assert db.session.scalar(select(RevealLog.purpose)) == "callback"
    other = api_headers(world.dan)
    assert client.get(f"/api/v1/callbacks/{task.id}", headers=other).status_code == 404
    assert client.post(f"/api/v1/callbacks/{task.id}/outcome", json={"reached": False},
                       headers=other).status_code == 404


def test_the_timeline_names_the_callback(world: World, store: PhotoStore) -> None:
    ticket = rated(world, store, "unsatisfied")
    record(task_of(ticket), world.dora, reached=False, note="无人接听")
    line = db.session.scalars(select(TicketEvent).where(TicketEvent.action == "callback")).one()
    assert (line.from_status, line.to_status, line.note) == ("closed", "closed", "无人接听")
    assert line.detail["reached"] is False and line.detail["state"] == "open"


def test_retention_masks_what_the_callers_wrote(world: World, store: PhotoStore) -> None:
    from ticketing.services import retention

    ticket = rated(world, store, "unsatisfied")
    task = task_of(ticket)
    record(task, world.dora, reached=False, note="张三丰的手机13812345678没人接")
    record(task, world.dora, T0 + timedelta(hours=1), reached=True, solved=True, note="已打 13812345678 联系上")
    retention.erase_batch([ticket], T0 + timedelta(days=4000))
    db.session.commit()
    db.session.expire_all()
    assert "13812345678" not in task.note and "13812345678" not in str(task.attempt_log)
    assert "138****5678" in task.note and "张**" in task.attempt_log[0]["note"]


def test_the_ticket_page_links_its_callbacks_for_those_who_work_them(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = rated(world, store, "unsatisfied")
    task = task_of(ticket)
    login(client, world.dora)
    assert f'href="/console/callbacks/{task.id}"' in client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/track")})
    login(client, world.gina)
    page = client.get(f"/tickets/{ticket.number}")
    assert page.status_code == 200 and "/console/callbacks/" not in page.get_data(as_text=True)


# --- Two at once (PostgreSQL) ----------------------------------------------------------------


def at_once(app: Flask, attempts: list[Callable[[], Callable[[], object]]]) -> list[str]:
    """Each attempt in its own thread and session: read first (the callable), then released
    together to act (the callable it returns) and commit; how each ended."""
    def committing(attempt: Callable[[], Callable[[], object]]) -> Callable[[], Callable[[], str]]:
        def read() -> Callable[[], str]:
            act = attempt()

            def act_and_commit() -> str:
                act()
                db.session.commit()
                return "won"
            return act_and_commit
        return read

    ended = read_then_at_once(app, [committing(attempt) for attempt in attempts])
    for outcome in ended:
        if isinstance(outcome, Exception) and not isinstance(outcome, Conflict):
            raise outcome
    return sorted("conflict" if isinstance(outcome, Conflict) else str(outcome) for outcome in ended)


@pytest.mark.postgres
def test_two_requests_opening_the_same_task_at_once_make_one(app: Flask, world: World, store: PhotoStore) -> None:
    ticket_id = advance(make_ticket(world, store), "closed", world).id
    db.session.remove()

    def open_it() -> Callable[[], object]:
        ticket = db.session.get(Ticket, ticket_id)
        assert ticket is not None
        return lambda: callbacks.open_task(ticket, "unsatisfied", 0, T0, calendar())

    assert at_once(app, [open_it, open_it]) == ["won", "won"]
    assert db.session.scalar(select(func.count()).select_from(CallbackTask)) == 1


@pytest.mark.postgres
def test_two_callers_recording_at_once_make_one_try(app: Flask, world: World, store: PhotoStore) -> None:
    task_id, caller_ids = task_of(rated(world, store, "unsatisfied")).id, (world.dora.id, world.sam.id)
    db.session.remove()

    def call_as(user_id: int) -> Callable[[], Callable[[], object]]:
        def read() -> Callable[[], object]:
            task = db.session.get(CallbackTask, task_id)
            caller = db.session.get(User, user_id)
            assert task is not None and caller is not None
            assert task.ticket.community is not None  # everything the rules read, read now
            return lambda: callbacks.record_outcome(task, caller, Outcome(False, note="无人接听"), T0, calendar())
        return read

    assert at_once(app, [call_as(uid) for uid in caller_ids]) == ["conflict", "won"]
    task = db.session.get(CallbackTask, task_id)
    assert task is not None and task.attempts == 1 and len(task.attempt_log) == 1


def test_a_patrol_report_closed_unrated_is_nobodys_to_call(world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, channel="patrol")
    event = TicketEvent(ticket=ticket, action="auto_close", actor_kind="system", detail={})
    assert callbacks.reason_for(ticket, event, 100) is None
    event.action = "resolve"
    assert callbacks.reason_for(ticket, event, 100) is None


def test_a_merged_residents_not_satisfied_is_called_back(world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    event = TicketEvent(ticket=ticket, action="rate_merged", actor_kind="resident",
                        detail={"rating": "unsatisfied", "main": "X"})
    assert callbacks.reason_for(ticket, event, 0) == "unsatisfied"
    event.detail = {"rating": "satisfied", "main": "X"}
    assert callbacks.reason_for(ticket, event, 0) is None
