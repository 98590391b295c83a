"""Two staff acting on one ticket at the same moment: exactly one wins (PostgreSQL)."""
from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.factories import T0, World, advance, calendar, make_ticket
from tests.races import read_then_at_once
from ticketing.extensions import db
from ticketing.models import Ticket, TicketEvent, User
from ticketing.services.errors import Conflict, ServiceError
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore

pytestmark = pytest.mark.postgres


def race(app: Flask, ticket_id: int, attempts: list[Callable[[Ticket], None]]) -> list[str]:
    """Each attempt in its own thread and session, on the ticket read there, released
    together and committed; how each ended."""
    def reading(attempt: Callable[[Ticket], None]) -> Callable[[], Callable[[], None]]:
        def read() -> Callable[[], None]:
            ticket = db.session.get_one(Ticket, ticket_id)

            def act() -> None:
                attempt(ticket)
                db.session.commit()
            return act
        return read

    return sorted(outcome(ended) for ended in read_then_at_once(app, [reading(a) for a in attempts]))


def outcome(ended: object) -> str:
    """How an attempt ended: it won, lost the race (`Conflict`), or was refused."""
    if isinstance(ended, Conflict):
        return "conflict"
    if isinstance(ended, ServiceError):
        return f"refused: {ended}"
    if isinstance(ended, Exception):
        raise ended
    return "won"


def events_of(ticket_id: int, action: str) -> int:
    return db.session.scalar(
        select(func.count()).select_from(TicketEvent)
        .where(TicketEvent.ticket_id == ticket_id, TicketEvent.action == action)
    ) or 0


def test_two_team_members_accepting_at_once_make_one_acceptance(
    app: Flask, world: World, store: PhotoStore
) -> None:
    ticket = make_ticket(world, store, category="elderly.help")
    perform(ticket, "dispatch", Actor.staff(world.dora), T0, calendar(), team=world.volunteers)
    db.session.commit()
    second = User(username="vic", display_name="Vic", role="volunteer", password_hash="x",
                  team_id=world.volunteers.id)
    db.session.add(second)
    db.session.commit()
    member_ids = [world.vera.id, second.id]
    ticket_id = ticket.id
    db.session.remove()

    def accept_as(user_id: int) -> Callable[[Ticket], None]:
        def attempt(ticket: Ticket) -> None:
            user = db.session.get(User, user_id)
            assert user is not None
            perform(ticket, "accept", Actor.staff(user), T0, calendar())
        return attempt

    outcomes = race(app, ticket_id, [accept_as(uid) for uid in member_ids])
    assert outcomes == ["conflict", "won"]
    assert events_of(ticket_id, "accept") == 1
    stored = db.session.get(Ticket, ticket_id)
    assert stored is not None and stored.status == "accepted" and stored.assignee_id in member_ids


def test_an_accept_racing_a_return_leaves_one_of_them(
    app: Flask, world: World, store: PhotoStore
) -> None:
    ticket = make_ticket(world, store)
    advance(ticket, "dispatched", world)
    ticket_id, gina_id = ticket.id, world.gina.id
    db.session.remove()

    def as_gina(name: str, note: str = "") -> Callable[[Ticket], None]:
        def attempt(ticket: Ticket) -> None:
            gina = db.session.get(User, gina_id)
            assert gina is not None
            perform(ticket, name, Actor.staff(gina), T0, calendar(), note=note)
        return attempt

    outcomes = race(app, ticket_id, [as_gina("accept"), as_gina("return", "不是我的网格")])
    assert outcomes == ["conflict", "won"]
    assert events_of(ticket_id, "accept") + events_of(ticket_id, "return") == 1
