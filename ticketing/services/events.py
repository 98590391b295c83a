"""What the state machine tells the rest of the app: each event, to the listeners.

The state machine (services/lifecycle.py) publishes every event it records; the
consequences (the resident's and the staff's notifications, the report-back to the
county centre, …) are listeners registered at start-up by `create_app`. A new
consequence of an event is a new listener, not an edit to the state machine, and
services need not import the channels that react.

Listeners run in the event's transaction, in the order they subscribed, before the
caller commits; one that raises rolls the whole transition back.
"""
from __future__ import annotations

from collections.abc import Callable

from flask import Flask, current_app

from ticketing.models import Ticket, TicketEvent

Listener = Callable[[Ticket, TicketEvent], None]

KEY = "minhu.ticket_event_listeners"


def subscribe(app: Flask, listener: Listener) -> None:
    """Have `listener(ticket, event)` called for every event of this app; once only."""
    listeners = app.extensions.setdefault(KEY, [])
    if listener not in listeners:
        listeners.append(listener)


def listeners(app: Flask) -> tuple[Listener, ...]:
    """The listeners of this app, in the order they are called."""
    return tuple(app.extensions.get(KEY, ()))


def publish(ticket: Ticket, event: TicketEvent) -> None:
    """Call every listener of the current app with a newly recorded event."""
    for listener in listeners(current_app):
        listener(ticket, event)
