"""Time limits and the escalation ladder: what a missed deadline leads to, and 上报 by hand.

Gina handles tickets of grid A1 in community A; Sam supervises community A, Sue the
whole street; Dora dispatches in community A, Dan in community B.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from tests.conftest import csrf_token, login
from tests.factories import T0, TZ, World, advance, calendar, make_ticket
from tests.races import at_once
from ticketing.extensions import db
from ticketing.models import Notification, OutboxMessage, Ticket, TicketEvent, User
from ticketing.services import sweep as sweep_module
from ticketing.services.errors import IllegalTransition
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore
from ticketing.services.sweep import SweepResult, sweep

GAS = "repair.gas"  # urgent: accept within 15 minutes, resolve within 24 hours, clock time
ACCEPT_MISSED = T0 + timedelta(minutes=16)
RESOLVE_MISSED = T0 + timedelta(hours=24, minutes=1)


def recipients(kind: str) -> list[str]:
    """Who got an inbox message of a kind, in order."""
    return list(db.session.scalars(
        select(User.username).join(Notification, Notification.user_id == User.id)
        .where(Notification.kind == kind).order_by(Notification.id)
    ))


def fresh(ticket_id: int) -> Ticket:
    """The ticket as the database has it now."""
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket_id)
    assert ticket is not None
    return ticket


def events(ticket_id: int, action: str) -> list[TicketEvent]:
    return list(db.session.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket_id, TicketEvent.action == action)
        .order_by(TicketEvent.id)))


def route_jobs(ticket_id: int) -> list[OutboxMessage]:
    """The routing jobs recorded for a ticket."""
    rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.job == "workers.jobs.route_ticket"))
    return [row for row in rows if row.args == [ticket_id]]


def escalate_by_hand(ticket: Ticket, world: World, times: int = 1) -> Ticket:
    """Gina passes her ticket up `times` rungs."""
    for _ in range(times):
        perform(ticket, "escalate", Actor.staff(world.gina), T0, calendar(), note="超出网格能力")
    db.session.commit()
    return ticket


# --- a missed accept-by -------------------------------------------------------


def test_a_missed_accept_by_sends_the_ticket_back_without_its_handler(world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store, category=GAS), "dispatched", world)
    result = sweep(ACCEPT_MISSED, calendar())
    assert (result.accept_breached, result.expired, result.errors) == (1, 1, 0)
    stored = fresh(ticket.id)
    assert stored.status == "submitted"
    assert stored.assignee_id is None and stored.handler_kind is None and stored.accept_due_at is None
    [expired] = events(ticket.id, "expire")
    assert expired.actor_kind == "system" and expired.detail["missed_by"] == world.gina.id
    assert expired.note and not expired.public


def test_a_missed_accept_by_asks_the_router_again_in_the_same_transaction(
    world: World, store: PhotoStore
) -> None:
    ticket = advance(make_ticket(world, store, category=GAS), "dispatched", world)
    before = len(route_jobs(ticket.id))
    sweep(ACCEPT_MISSED, calendar())
    jobs = route_jobs(ticket.id)
    assert len(jobs) == before + 1 and jobs[-1].queue == "high"


def test_a_missed_accept_by_alerts_the_dispatchers_of_the_community(world: World, store: PhotoStore) -> None:
    advance(make_ticket(world, store, category=GAS), "dispatched", world)
    sweep(ACCEPT_MISSED, calendar())
    assert recipients("expired") == ["dora"]  # not Dan, of community B
    assert sorted(recipients("breach")) == ["dora", "gina"]


def test_a_second_sweep_does_not_expire_again(world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store, category=GAS), "dispatched", world)
    sweep(ACCEPT_MISSED, calendar())
    assert sweep(ACCEPT_MISSED + timedelta(minutes=1), calendar()) == SweepResult()
    assert len(events(ticket.id, "expire")) == 1


# --- a missed resolve-by ------------------------------------------------------


def test_a_missed_resolve_by_raises_the_ticket_to_the_community(world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store, category=GAS), "accepted", world)
    result = sweep(RESOLVE_MISSED, calendar())
    assert (result.resolve_breached, result.escalated, result.errors) == (1, 1, 0)
    stored = fresh(ticket.id)
    assert stored.escalation_level == 1 and stored.supervised is True
    assert stored.escalated_at == RESOLVE_MISSED and stored.status == "accepted"
    [escalated] = events(ticket.id, "escalate")
    assert escalated.actor_kind == "system" and escalated.detail == {"level": 1}
    assert escalated.note  # the reason the supervisors read on the list


def test_the_community_supervisor_is_told_and_the_street_supervisor_is_not(
    world: World, store: PhotoStore
) -> None:
    advance(make_ticket(world, store, category=GAS), "accepted", world)
    sweep(RESOLVE_MISSED, calendar())
    assert recipients("escalated") == ["sam"]


def test_a_missed_resolve_by_escalates_once_per_deadline(world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store, category=GAS), "accepted", world)
    sweep(RESOLVE_MISSED, calendar())
    assert sweep(RESOLVE_MISSED + timedelta(hours=5), calendar()).escalated == 0
    assert fresh(ticket.id).escalation_level == 1
    assert recipients("escalated") == ["sam"]


def test_a_missed_new_deadline_raises_the_ticket_to_the_street(world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store, category=GAS), "accepted", world)
    sweep(RESOLVE_MISSED, calendar())
    new_deadline = RESOLVE_MISSED + timedelta(hours=2)
    perform(fresh(ticket.id), "extend", Actor.staff(world.sam), RESOLVE_MISSED + timedelta(minutes=5),
            calendar(), note="给两小时", deadline=new_deadline)
    db.session.commit()
    assert sweep(new_deadline - timedelta(minutes=1), calendar()).escalated == 0
    assert sweep(new_deadline + timedelta(minutes=1), calendar()).escalated == 1
    stored = fresh(ticket.id)
    assert stored.escalation_level == 2 and stored.breached_for == new_deadline
    assert recipients("escalated") == ["sam", "sue"]


def test_the_top_of_the_ladder_is_not_passed_and_the_street_hears_of_the_breach(
    world: World, store: PhotoStore
) -> None:
    ticket = escalate_by_hand(advance(make_ticket(world, store, category=GAS), "accepted", world), world, 3)
    result = sweep(RESOLVE_MISSED, calendar())
    assert (result.resolve_breached, result.escalated, result.errors, result.conflicts) == (1, 0, 0, 0)
    assert fresh(ticket.id).escalation_level == 3
    assert sorted(recipients("breach")) == ["dora", "gina", "sue"]
    assert sweep(RESOLVE_MISSED + timedelta(hours=1), calendar()) == SweepResult()


def test_a_ticket_escalated_by_hand_after_its_deadline_is_not_raised_twice(
    world: World, store: PhotoStore
) -> None:
    ticket = advance(make_ticket(world, store, category=GAS), "accepted", world)
    perform(ticket, "escalate", Actor.staff(world.gina), RESOLVE_MISSED - timedelta(seconds=30), calendar(),
            note="需要社区协调")
    db.session.commit()
    result = sweep(RESOLVE_MISSED, calendar())
    assert (result.resolve_breached, result.escalated) == (1, 0)
    assert fresh(ticket.id).escalation_level == 1


# --- a sweep racing a handler -------------------------------------------------


def handler_acts_before_the_claim(app: Flask, monkeypatch: pytest.MonkeyPatch, ticket_id: int,
                                  user_id: int, action: str, **params: Any) -> None:
    """Make the handler act in their own session just before the sweep claims the breach."""
    real_claim = sweep_module.claim

    def handler_first(*args: Any, **kwargs: Any) -> bool:
        with app.app_context():
            theirs = db.session.get(Ticket, ticket_id)
            user = db.session.get(User, user_id)
            assert theirs is not None and user is not None
            perform(theirs, action, Actor.staff(user), RESOLVE_MISSED, calendar(), **params)
            db.session.commit()
            db.session.remove()
        return real_claim(*args, **kwargs)

    monkeypatch.setattr(sweep_module, "claim", handler_first)


def test_a_handler_resolving_as_the_sweep_runs_wins_and_nothing_is_escalated(
    app: Flask, world: World, store: PhotoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = advance(make_ticket(world, store, category=GAS), "accepted", world)
    handler_acts_before_the_claim(app, monkeypatch, ticket.id, world.gina.id, "resolve", note="已修好")
    result = sweep(RESOLVE_MISSED, calendar())
    assert (result.resolve_breached, result.escalated, result.errors) == (0, 0, 0)
    stored = fresh(ticket.id)
    assert stored.status == "resolved" and stored.escalation_level == 0
    assert recipients("escalated") == []


def test_a_handler_escalating_as_the_sweep_runs_makes_one_rung(
    app: Flask, world: World, store: PhotoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = advance(make_ticket(world, store, category=GAS), "accepted", world)
    handler_acts_before_the_claim(app, monkeypatch, ticket.id, world.gina.id, "escalate", note="需要社区协调")
    result = sweep(RESOLVE_MISSED, calendar())
    assert (result.resolve_breached, result.escalated, result.errors) == (1, 0, 0)
    assert fresh(ticket.id).escalation_level == 1
    assert len(events(ticket.id, "escalate")) == 1


# --- escalation by hand (HTTP) --------------------------------------------------


def act(client: FlaskClient, ticket: Ticket, name: str, **data: object) -> TestResponse:
    """Post one action form of the ticket page, with a valid CSRF token."""
    token = csrf_token(client, f"/tickets/{ticket.number}")
    return client.post(f"/tickets/{ticket.number}/act/{name}",
                       data={"csrf_token": token, **data}, content_type="multipart/form-data")


def page(client: FlaskClient, ticket: Ticket) -> str:
    return client.get(f"/tickets/{ticket.number}").get_data(as_text=True)


def test_the_handler_is_offered_escalate_and_not_the_supervisors_actions(
    client: FlaskClient, world: World, store: PhotoStore
) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    login(client, world.gina)
    html = page(client, ticket)
    assert 'id="action-escalate"' in html and 'id="escalate-note"' in html
    assert 'id="action-deescalate"' not in html and 'id="action-extend"' not in html


def test_the_handler_escalates_with_a_reason(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    login(client, world.gina)
    response = act(client, ticket, "escalate", note="屋顶漏水需要维修资金，超出网格能力")
    assert response.status_code == 303
    stored = fresh(ticket.id)
    assert stored.escalation_level == 1 and stored.supervised is True and stored.status == "accepted"
    [event] = events(ticket.id, "escalate")
    assert event.actor_id == world.gina.id and "维修资金" in event.note and not event.public
    assert recipients("escalated") == ["sam"]


def test_escalating_without_a_reason_is_400_and_changes_nothing(
    client: FlaskClient, world: World, store: PhotoStore
) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    login(client, world.gina)
    response = act(client, ticket, "escalate", note="  ")
    assert response.status_code == 400
    stored = fresh(ticket.id)
    assert stored.escalation_level == 0 and stored.supervised is False
    assert events(ticket.id, "escalate") == [] and recipients("escalated") == []


def test_a_ticket_referred_upstream_cannot_be_escalated_further(
    client: FlaskClient, world: World, store: PhotoStore
) -> None:
    ticket = escalate_by_hand(advance(make_ticket(world, store), "accepted", world), world, 3)
    with pytest.raises(IllegalTransition):
        perform(ticket, "escalate", Actor.staff(world.gina), T0, calendar(), note="再上报")
    login(client, world.gina)
    assert 'id="action-escalate"' not in page(client, ticket)
    response = act(client, ticket, "escalate", note="再上报")
    assert response.status_code == 409
    assert fresh(ticket.id).escalation_level == 3 and len(events(ticket.id, "escalate")) == 3


def test_the_supervisor_sends_a_ticket_back_down(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = escalate_by_hand(advance(make_ticket(world, store), "accepted", world), world)
    login(client, world.sam)
    assert 'id="action-deescalate"' in page(client, ticket)
    response = act(client, ticket, "deescalate", note="网格可以处理，请网格员继续办理")
    assert response.status_code == 303
    stored = fresh(ticket.id)
    assert stored.escalation_level == 0 and stored.supervised is False
    [event] = events(ticket.id, "deescalate")
    assert event.actor_id == world.sam.id and event.detail == {"level": 0}


def test_sending_back_down_needs_a_reason(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = escalate_by_hand(advance(make_ticket(world, store), "accepted", world), world)
    login(client, world.sam)
    assert act(client, ticket, "deescalate", note="").status_code == 400
    assert fresh(ticket.id).escalation_level == 1


def test_a_ticket_at_grid_level_offers_no_send_back_down(
    client: FlaskClient, world: World, store: PhotoStore
) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    login(client, world.sam)
    html = page(client, ticket)
    assert 'id="action-deescalate"' not in html and 'id="action-extend"' in html


def test_the_supervisor_sets_a_new_deadline_in_local_time(
    client: FlaskClient, world: World, store: PhotoStore
) -> None:
    ticket = escalate_by_hand(advance(make_ticket(world, store), "accepted", world), world)
    login(client, world.sam)
    assert 'type="datetime-local"' in page(client, ticket)
    response = act(client, ticket, "extend", deadline="2030-01-15T18:30", note="协调维修资金，延期办理")
    assert response.status_code == 303
    stored = fresh(ticket.id)
    assert stored.resolve_due_at == datetime(2030, 1, 15, 18, 30, tzinfo=TZ)
    assert stored.resolve_due_at == datetime(2030, 1, 15, 10, 30, tzinfo=UTC)
    [event] = events(ticket.id, "extend")
    assert event.actor_id == world.sam.id and event.detail["new"].startswith("2030-01-15T10:30")


def test_a_new_deadline_for_a_dispatched_ticket_is_its_accept_by(
    client: FlaskClient, world: World, store: PhotoStore
) -> None:
    ticket = advance(make_ticket(world, store), "dispatched", world)
    login(client, world.sam)
    assert act(client, ticket, "extend", deadline="2030-01-15T09:00", note="周末无人").status_code == 303
    assert fresh(ticket.id).accept_due_at == datetime(2030, 1, 15, 9, 0, tzinfo=TZ)


@pytest.mark.parametrize("deadline", ["2020-01-15T09:00", "", "tomorrow"])
def test_a_past_or_unreadable_deadline_is_400(
    client: FlaskClient, world: World, store: PhotoStore, deadline: str
) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    due = ticket.resolve_due_at
    login(client, world.sam)
    response = act(client, ticket, "extend", deadline=deadline, note="延期")
    assert response.status_code == 400
    assert fresh(ticket.id).resolve_due_at == due and events(ticket.id, "extend") == []


def test_the_handler_cannot_set_their_own_deadline(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    due = ticket.resolve_due_at
    login(client, world.gina)
    assert act(client, ticket, "extend", deadline="2030-01-15T09:00", note="我想晚点").status_code == 403
    assert fresh(ticket.id).resolve_due_at == due


def test_a_supervisor_of_another_community_cannot_touch_the_ticket(
    client: FlaskClient, world: World, store: PhotoStore
) -> None:
    ticket = escalate_by_hand(advance(make_ticket(world, store), "accepted", world), world)
    other = User(username="sid", display_name="Sid", role="supervisor", password_hash=world.sam.password_hash,
                 street_id=world.street.id, community_id=world.community_b.id)
    db.session.add(other)
    db.session.commit()
    login(client, "sid")
    assert act(client, ticket, "deescalate", note="不归我管").status_code == 404
    assert fresh(ticket.id).escalation_level == 1


def test_the_street_supervisor_assigns_an_escalated_ticket_from_the_handlers_offered(
    client: FlaskClient, world: World, store: PhotoStore
) -> None:
    ticket = escalate_by_hand(advance(make_ticket(world, store), "accepted", world), world, 2)
    perform(ticket, "return", Actor.staff(world.gina), T0, calendar(), note="不是我的网格")
    db.session.commit()
    login(client, world.sue)
    html = page(client, ticket)
    assert f'value="user:{world.greg.id}"' in html
    assert act(client, ticket, "dispatch", handler=f"user:{world.greg.id}").status_code == 303
    stored = fresh(ticket.id)
    assert stored.status == "dispatched" and stored.assignee_id == world.greg.id
    assert stored.escalation_level == 2  # assigning does not undo the ladder


# --- two sweeps at once (PostgreSQL) ----------------------------------------------


@pytest.mark.postgres
def test_two_sweeps_at_once_escalate_and_expire_each_overdue_ticket_once(
    app: Flask, world: World, store: PhotoStore
) -> None:
    day_before = T0 - timedelta(hours=25)
    late = [advance(make_ticket(world, store, category=GAS, now=day_before), "accepted", world,
                    now=day_before).id for _ in range(6)]
    unaccepted = [advance(make_ticket(world, store, category=GAS, now=day_before), "dispatched", world,
                          now=day_before).id for _ in range(3)]
    routes_before = {ticket_id: len(route_jobs(ticket_id)) for ticket_id in unaccepted}
    db.session.remove()
    results = at_once(app, [lambda: sweep(T0, calendar())] * 2)
    assert sum(r.errors for r in results) == 0
    assert sum(r.escalated for r in results) == len(late)
    assert sum(r.expired for r in results) == len(unaccepted)
    for ticket_id in late:
        assert fresh(ticket_id).escalation_level == 1
        assert len(events(ticket_id, "escalate")) == 1
    for ticket_id in unaccepted:
        assert len(events(ticket_id, "expire")) == 1
        assert len(route_jobs(ticket_id)) == routes_before[ticket_id] + 1
    assert recipients("escalated") == ["sam"] * len(late)
    total = db.session.scalar(select(func.count()).select_from(TicketEvent).where(
        TicketEvent.action.in_(["escalate", "expire"])))
    assert total == len(late) + len(unaccepted)
