"""The patrol's rules as a service: 马上就办 at the time the caller gives."""
from __future__ import annotations

from datetime import timedelta

from tests.factories import T0, World, calendar, make_ticket
from ticketing.services.lifecycle import Actor
from ticketing.services.patrol import TAKEN_ON_THE_SPOT, take_on_the_spot
from ticketing.services.photos import PhotoStore


def test_taking_it_on_the_spot_records_each_step_at_the_time_passed_in(world: World, store: PhotoStore) -> None:
    at = T0 + timedelta(hours=3)
    ticket = make_ticket(world, store, now=at, channel="patrol", actor=Actor.staff(world.gina),
                         steps=lambda draft: take_on_the_spot(draft, world.gina, "换了灯泡", at, calendar()))

    steps = [(e.action, e.at.replace(tzinfo=None)) for e in ticket.events if e.action != "submit"]
    assert steps == [(name, at.replace(tzinfo=None)) for name in ("dispatch", "accept", "resolve")]
    assert ticket.status == "resolved" and ticket.assignee_id == world.gina.id
    assert ticket.events[-3].detail["rule"] == TAKEN_ON_THE_SPOT
