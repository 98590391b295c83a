"""The SLA sweep: 75 % warnings, breaches, auto-closing, the morning digest; exactly once."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.factories import T0, TZ, World, advance, calendar, make_ticket
from tests.races import at_once
from ticketing.extensions import db
from ticketing.models import Notification, Ticket, TicketEvent, User
from ticketing.services import sweep as sweep_module
from ticketing.services.digest import digest
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore
from ticketing.services.sweep import SweepResult, sweep

GAS = "repair.gas"  # urgent: accept within 15 minutes, resolve within 24 hours, clock time
LIGHT = "repair.stair_light"  # general: 1 working day to accept, 5 to resolve


def local(*args: int) -> datetime:
    """A Shanghai wall-clock time."""
    return datetime(*args, tzinfo=TZ)


def staff_messages(kind: str) -> list[tuple[str, str]]:
    """(username, dedupe key) of every inbox message of a kind."""
    rows = db.session.execute(
        select(User.username, Notification.dedupe_key).join(User, Notification.user_id == User.id)
        .where(Notification.kind == kind).order_by(Notification.id)
    ).all()
    return [(username, key) for username, key in rows]


def recipients(kind: str) -> list[str]:
    return [username for username, _ in staff_messages(kind)]


def fresh(ticket_id: int) -> Ticket:
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket_id)
    assert ticket is not None
    return ticket


# --- 75 % warnings ---------------------------------------------------------------


def test_it_warns_the_handler_at_75_percent_of_the_accept_limit_once(world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store, category=GAS), "dispatched", world)
    result = sweep(T0 + timedelta(minutes=12), calendar())
    assert result.warned == 1
    assert recipients("warning") == ["gina"]
    again = sweep(T0 + timedelta(minutes=13), calendar())
    assert again.warned == 0
    assert recipients("warning") == ["gina"]
    assert fresh(ticket.id).warned_for == ticket.accept_due_at


def test_it_sends_nothing_before_75_percent(world: World, store: PhotoStore) -> None:
    advance(make_ticket(world, store, category=GAS), "dispatched", world)
    assert sweep(T0 + timedelta(minutes=11), calendar()) == SweepResult()
    assert recipients("warning") == []


def test_it_warns_in_the_last_quarter_of_the_resolve_limit(world: World, store: PhotoStore) -> None:
    advance(make_ticket(world, store, category=GAS), "accepted", world)
    assert sweep(T0 + timedelta(hours=17, minutes=59), calendar()).warned == 0
    assert sweep(T0 + timedelta(hours=18), calendar()).warned == 1
    assert recipients("warning") == ["gina"]


def test_a_ticket_on_hold_is_not_warned(world: World, store: PhotoStore) -> None:
    advance(make_ticket(world, store, category=GAS), "on_hold", world)
    assert sweep(T0 + timedelta(hours=20), calendar()).warned == 0
    assert recipients("warning") == []


def test_a_working_day_tier_is_warned_by_working_time_left(world: World, store: PhotoStore) -> None:
    # Dispatched Friday 05:00: accept by Monday 05:00, a quarter is 6 working hours.
    advance(make_ticket(world, store, category=LIGHT, now=local(2026, 11, 20, 5)), "dispatched",
            world, now=local(2026, 11, 20, 5))
    assert sweep(local(2026, 11, 20, 22), calendar()).warned == 0  # 2 + 5 = 7 working hours left
    # Saturday 23:00: 30 clock hours left, but only Monday's 5 working hours.
    assert sweep(local(2026, 11, 21, 23), calendar()).warned == 1
    assert recipients("warning") == ["gina"]


def test_a_new_deadline_is_warned_again(world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store, category=GAS), "dispatched", world)
    sweep(T0 + timedelta(minutes=12), calendar())
    perform(ticket, "accept", Actor.staff(world.gina), T0 + timedelta(minutes=13), calendar())
    db.session.commit()
    sweep(T0 + timedelta(minutes=13, hours=18), calendar())
    assert recipients("warning") == ["gina", "gina"]


# --- breaches --------------------------------------------------------------------


def test_a_missed_accept_by_tells_the_handler_and_the_dispatchers_once(world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store, category=GAS), "dispatched", world)
    result = sweep(T0 + timedelta(minutes=16), calendar())
    assert (result.accept_breached, result.expired) == (1, 1)
    assert sorted(recipients("breach")) == ["dora", "gina"]
    assert recipients("expired") == ["dora"]  # the ticket came back to her queue
    assert sweep(T0 + timedelta(minutes=17), calendar()).accept_breached == 0
    assert sorted(recipients("breach")) == ["dora", "gina"] and recipients("expired") == ["dora"]
    assert fresh(ticket.id).supervised is False


def test_a_missed_resolve_by_escalates_once_and_flags_the_ticket_supervised(
    world: World, store: PhotoStore
) -> None:
    ticket = advance(make_ticket(world, store, category=GAS), "accepted", world)
    result = sweep(T0 + timedelta(hours=24, minutes=1), calendar())
    assert (result.resolve_breached, result.escalated) == (1, 1)
    assert sorted(recipients("breach")) == ["dora", "gina"]
    stored = fresh(ticket.id)
    assert stored.supervised is True and stored.escalation_level == 1
    assert stored.status == "accepted"  # a level, not a state: the handler carries on
    assert sweep(T0 + timedelta(hours=25), calendar()).resolve_breached == 0
    assert len(recipients("breach")) == 2
    assert fresh(ticket.id).escalation_level == 1


def test_a_ticket_on_hold_past_its_deadline_is_not_breached(world: World, store: PhotoStore) -> None:
    advance(make_ticket(world, store, category=GAS), "on_hold", world)
    assert sweep(T0 + timedelta(hours=30), calendar()).resolve_breached == 0
    assert recipients("breach") == []


def test_a_breached_ticket_gets_no_late_warning(world: World, store: PhotoStore) -> None:
    advance(make_ticket(world, store, category=GAS), "dispatched", world)
    sweep(T0 + timedelta(minutes=20), calendar())
    assert recipients("warning") == []


# --- auto-close ------------------------------------------------------------------


def test_a_resolved_ticket_closes_itself_after_3_working_days(world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "resolved", world)  # Wednesday 10:00
    result = sweep(local(2026, 11, 23, 10, 1), calendar())  # Monday: Thu, Fri, Mon
    assert result.auto_closed == 1
    stored = fresh(ticket.id)
    assert stored.status == "closed" and stored.rating is None
    actions = db.session.scalars(select(TicketEvent.action).where(TicketEvent.ticket_id == ticket.id))
    assert "auto_close" in list(actions)
    closed = db.session.scalars(select(Notification).where(Notification.kind == "closed")).all()
    assert [(n.channel, n.address) for n in closed] == [("sms", ticket.requester_phone)]


def test_a_weekend_does_not_count_towards_auto_closing(world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "resolved", world)
    assert sweep(local(2026, 11, 21, 10, 1), calendar()).auto_closed == 0  # 3 days, 2 working
    assert sweep(local(2026, 11, 23, 9), calendar()).auto_closed == 0
    assert fresh(ticket.id).status == "resolved"


def test_a_resident_rating_at_the_same_moment_wins_over_auto_close(
    app: Flask, world: World, store: PhotoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = advance(make_ticket(world, store), "resolved", world)
    ticket_id = ticket.id
    real_perform = sweep_module.perform

    def resident_rates_first(ticket: Ticket, *args: Any, **kwargs: Any) -> Any:
        with app.app_context():  # another session: the resident's request
            theirs = db.session.get(Ticket, ticket_id)
            assert theirs is not None
            perform(theirs, "rate", Actor.resident(), T0 + timedelta(days=5), calendar(), rating="basic")
            db.session.commit()
            db.session.remove()
        return real_perform(ticket, *args, **kwargs)

    monkeypatch.setattr(sweep_module, "perform", resident_rates_first)
    result = sweep(local(2026, 11, 23, 10, 1), calendar())
    assert (result.auto_closed, result.conflicts, result.errors) == (0, 1, 0)
    stored = fresh(ticket_id)
    assert stored.status == "closed" and stored.rating == "basic"


# --- morning digest --------------------------------------------------------------


def test_the_digest_lists_what_is_due_today_once_per_handler(world: World, store: PhotoStore) -> None:
    due_today = advance(make_ticket(world, store), "dispatched", world)  # accept by Thursday 10:00
    advance(make_ticket(world, store), "accepted", world)  # resolve by next week
    assert digest(local(2026, 11, 19, 8), calendar()) == 1
    message = db.session.scalars(select(Notification).where(Notification.kind == "digest")).one()
    assert message.user_id == world.gina.id and message.channel == "inbox"
    assert due_today.number in message.body and message.body.count("\n") == 0
    assert digest(local(2026, 11, 19, 8, 5), calendar()) == 0


# --- two sweeps at once (PostgreSQL) ---------------------------------------------


@pytest.mark.postgres
def test_two_sweeps_at_the_same_moment_warn_and_breach_once(
    app: Flask, world: World, store: PhotoStore
) -> None:
    warned = [advance(make_ticket(world, store, category=GAS), "dispatched", world,
                      now=T0 + timedelta(minutes=5)) for _ in range(4)]
    day_before = T0 - timedelta(hours=25)
    breached = [advance(make_ticket(world, store, category=GAS, now=day_before), "accepted", world,
                        now=day_before) for _ in range(4)]
    week_before = T0 - timedelta(days=7)
    closing = advance(make_ticket(world, store, now=week_before), "resolved", world, now=week_before)
    closing_id = closing.id
    db.session.remove()
    now = T0 + timedelta(minutes=17)  # the first four are at 80 %, the others a day late
    results = at_once(app, [lambda: sweep(now, calendar())] * 2)
    assert sum(r.errors for r in results) == 0
    assert sum(r.warned for r in results) == len(warned)
    assert sum(r.resolve_breached for r in results) == len(breached)
    assert sum(r.escalated for r in results) == len(breached)
    assert sum(r.auto_closed for r in results) == 1
    assert recipients("warning") == ["gina"] * len(warned)
    assert sorted(recipients("breach")) == ["dora"] * len(breached) + ["gina"] * len(breached)
    closes = db.session.scalar(select(func.count()).select_from(TicketEvent).where(
        TicketEvent.ticket_id == closing_id, TicketEvent.action == "auto_close"))
    assert closes == 1
