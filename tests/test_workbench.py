"""The handler workbench: my tickets, soonest deadline first, overdue ones marked."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from tests.conftest import csrf_token, login
from tests.factories import World, advance, make_ticket
from ticketing.extensions import db
from ticketing.models import Ticket, utcnow
from ticketing.services.photos import PhotoStore

# These tests read the English labels; Chinese is checked in test_translations.
pytestmark = pytest.mark.usefixtures("english")


def listed(html: str) -> list[str]:
    """The ticket numbers on a workbench page, in order."""
    return re.findall(r'class="title" href="/tickets/([0-9-]+)"', html)


def item_of(html: str, number: str) -> str:
    """The list item of one ticket."""
    match = re.search(r'<li class="([^"]*)">\s*<div class="top">\s*<a class="title" href="/tickets/'
                      + re.escape(number) + r'".*?</li>', html, re.DOTALL)
    assert match, f"{number} is not listed"
    return match.group(0)


def workbench(client: FlaskClient, tab: str = "") -> str:
    response = client.get("/workbench/" + (f"?tab={tab}" if tab else ""))
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_workbench_lists_only_the_handlers_tickets_soonest_deadline_first(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    now = utcnow()
    resolving = advance(make_ticket(world, store, now=now), "accepted", world, now=now)
    to_accept = advance(make_ticket(world, store, now=now), "dispatched", world, now=now)
    urgent = advance(make_ticket(world, store, now=now, category="repair.gas"), "dispatched", world, now=now)
    late = advance(make_ticket(world, store, now=now - timedelta(days=30)), "dispatched", world,
                   now=now - timedelta(days=30))
    gregs = advance(make_ticket(world, store, now=now), "dispatched", world, now=now, handler=world.greg)
    waiting = make_ticket(world, store, now=now)
    login(client, world.gina)
    html = workbench(client)
    assert listed(html) == [late.number, urgent.number, to_accept.number, resolving.number]
    assert gregs.number not in html and waiting.number not in html
    assert "overdue" in item_of(html, late.number).split(">")[0]
    assert "badge-overdue" in item_of(html, late.number)
    assert "badge-overdue" not in item_of(html, to_accept.number)


def test_a_ticket_with_a_quarter_of_its_limit_left_is_due_soon(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    then = utcnow() - timedelta(minutes=12)  # urgent: accept within 15 minutes
    ticket = advance(make_ticket(world, store, now=then, category="repair.gas"), "dispatched", world, now=then)
    fresh = advance(make_ticket(world, store, category="repair.gas", now=utcnow()), "dispatched", world, now=utcnow())
    login(client, world.gina)
    html = workbench(client)
    assert "due-soon" in item_of(html, ticket.number).split(">")[0]
    assert "due-soon" not in item_of(html, fresh.number).split(">")[0]


def test_the_tabs_split_the_tickets_by_state(client: FlaskClient, world: World, store: PhotoStore) -> None:
    now = utcnow()
    dispatched = advance(make_ticket(world, store, now=now), "dispatched", world, now=now)
    accepted = advance(make_ticket(world, store, now=now), "accepted", world, now=now)
    held = advance(make_ticket(world, store, now=now), "on_hold", world, now=now)
    resolved = advance(make_ticket(world, store, now=now), "resolved", world, now=now)
    long_ago = now - timedelta(days=40)
    old = advance(make_ticket(world, store, now=long_ago), "closed", world, now=long_ago)
    login(client, world.gina)
    assert listed(workbench(client, "accept")) == [dispatched.number]
    assert listed(workbench(client, "progress")) == [accepted.number]
    assert listed(workbench(client, "hold")) == [held.number]
    assert listed(workbench(client, "resolved")) == [resolved.number]
    assert old.number not in workbench(client, "resolved")


def test_a_dispatched_ticket_has_a_one_tap_accept_button(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "dispatched", world)
    login(client, world.gina)
    html = workbench(client)
    assert f'action="/tickets/{ticket.number}/act/accept"' in item_of(html, ticket.number)
    token = csrf_token(client, "/workbench/")
    response = client.post(f"/tickets/{ticket.number}/act/accept", data={"csrf_token": token})
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).status == "accepted"  # type: ignore[union-attr]


def test_vera_sees_her_teams_unclaimed_ticket_and_accepts_it(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, category="elderly.help", now=utcnow())
    login(client, world.dora)
    token = csrf_token(client, f"/tickets/{ticket.number}")
    client.post(f"/tickets/{ticket.number}/act/dispatch",
                data={"csrf_token": token, "handler": f"team:{world.volunteers.id}"})
    client.post("/auth/logout", data={"csrf_token": token})
    login(client, world.vera)
    html = workbench(client)
    assert "not yet claimed" in item_of(html, ticket.number)
    token = csrf_token(client, "/workbench/")
    assert client.post(f"/tickets/{ticket.number}/act/accept", data={"csrf_token": token}).status_code == 303
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)  # type: ignore[assignment]
    assert ticket.status == "accepted" and ticket.assignee_id == world.vera.id


def test_a_team_ticket_is_not_on_another_teams_workbench(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, category="elderly.help")
    advance(ticket, "dispatched", world, handler=world.vera)
    login(client, world.mia)
    assert ticket.number not in workbench(client)


@pytest.mark.parametrize("persona", ["sam", "sue", "dora", "dan", "adam"])
def test_supervisors_dispatchers_and_admins_get_404(client: FlaskClient, world: World, persona: str) -> None:
    login(client, persona)
    assert client.get("/workbench/").status_code == 404


def test_the_workbench_needs_a_login(client: FlaskClient, world: World) -> None:
    response = client.get("/workbench/")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
