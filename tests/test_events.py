"""The state machine publishes its events; what follows from them are listeners."""
from __future__ import annotations

import pytest
from flask import Flask

from tests.factories import T0, World, calendar, make_ticket
from ticketing.channels import upstream
from ticketing.models import Ticket, TicketEvent
from ticketing.services import callbacks, events, notify
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore


def test_the_app_subscribes_notifications_then_the_report_back_then_callbacks(ctx: Flask) -> None:
    assert events.listeners(ctx) == (notify.on_event, upstream.on_event, callbacks.on_event)


def test_a_new_listener_hears_each_transition_without_an_edit_to_the_state_machine(
    ctx: Flask, world: World, store: PhotoStore, monkeypatch: pytest.MonkeyPatch,
) -> None:
    heard: list[tuple[Ticket, TicketEvent]] = []
    monkeypatch.setitem(ctx.extensions, events.KEY, [*events.listeners(ctx), lambda t, e: heard.append((t, e))])
    ticket = make_ticket(world, store)

    event = perform(ticket, "dispatch", Actor.staff(world.dora), T0, calendar(), assignee=world.gina)

    assert heard == [(ticket, event)]


def test_a_listener_subscribed_twice_is_called_once() -> None:
    app = Flask(__name__)

    def listener(ticket: Ticket, event: TicketEvent) -> None:
        """Does nothing."""

    events.subscribe(app, listener)
    events.subscribe(app, listener)

    assert events.listeners(app) == (listener,)
