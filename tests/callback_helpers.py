"""回访 in tests: tickets rated a given way, and the callback tasks they opened."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from tests.factories import T0, World, advance, calendar, make_ticket
from ticketing.extensions import db
from ticketing.models import Building, CallbackTask, Ticket, User
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore


def rated(world: World, store: PhotoStore, rating: str, at: datetime = T0, building: Building | None = None,
          handler: User | None = None, **fields: object) -> Ticket:
    """A ticket filed, handled and resolved at `at`, then rated `rating` by the resident; commits."""
    ticket = advance(make_ticket(world, store, now=at, building=building, **fields), "resolved", world, now=at,
                     handler=handler)
    perform(ticket, "rate", Actor.resident(), at, calendar(), rating=rating, note="")
    db.session.commit()
    return ticket


def tasks_of(ticket: Ticket) -> list[CallbackTask]:
    """The ticket's callback tasks, oldest first."""
    return list(db.session.scalars(select(CallbackTask).where(CallbackTask.ticket_id == ticket.id)
                                   .order_by(CallbackTask.id)))


def task_of(ticket: Ticket) -> CallbackTask:
    """The ticket's one callback task."""
    tasks = tasks_of(ticket)
    assert len(tasks) == 1, tasks
    return tasks[0]
