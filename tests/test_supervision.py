"""The 督办 lists: escalated tickets are visible to the right supervisors and to no one else.

Sam supervises community A and reads level 1 by default; Sue supervises the street and
reads levels 2 and 3 by default. Dan dispatches community B; Sid supervises community B.
"""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from tests.conftest import login
from tests.factories import T0, World, advance, calendar, make_ticket, make_user
from ticketing.extensions import db
from ticketing.models import Role, Ticket
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore

pytestmark = pytest.mark.usefixtures("english")

URL = "/console/supervision"


def escalated(world: World, store: PhotoStore, level: int, reason: str = "超出网格能力",
              at_hours: float = 0, **fields: object) -> Ticket:
    """An accepted ticket of Gina's (or Gabe's in community B) raised `level` rungs."""
    when = T0 + timedelta(hours=at_hours)
    handler = world.gabe if fields.get("building") is world.building_east else world.gina
    ticket = advance(make_ticket(world, store, now=when, **fields), "accepted", world, now=when, handler=handler)
    for _ in range(level):
        perform(ticket, "escalate", Actor.staff(handler), when, calendar(), note=reason)
    db.session.commit()
    return ticket


def numbers(client: FlaskClient, query: str = "") -> list[str]:
    """The ticket numbers on the list, in order."""
    response = client.get(URL + query)
    assert response.status_code == 200
    return re.findall(r'class="title" href="/tickets/([\d-]+)"', response.get_data(as_text=True))


@pytest.fixture()
def sid(world: World) -> str:
    make_user("sid", Role.SUPERVISOR, street=world.street, community=world.community_b)
    db.session.commit()
    return "sid"


def test_sam_sees_his_communitys_level_1_tickets_by_default(
    client: FlaskClient, world: World, store: PhotoStore
) -> None:
    one = escalated(world, store, 1)
    two = escalated(world, store, 2)
    login(client, world.sam)
    assert numbers(client) == [one.number]
    assert numbers(client, "?level=2") == [two.number]


def test_sue_sees_levels_2_and_3_of_the_street_by_default_and_may_pick_level_1(
    client: FlaskClient, world: World, store: PhotoStore
) -> None:
    one = escalated(world, store, 1)
    two = escalated(world, store, 2)
    three = escalated(world, store, 3)
    in_b = escalated(world, store, 2, building=world.building_east)
    login(client, world.sue)
    assert sorted(numbers(client)) == sorted([two.number, three.number, in_b.number])
    assert numbers(client, "?level=1") == [one.number]
    assert numbers(client, "?level=3") == [three.number]


def test_the_list_holds_no_ticket_that_was_not_escalated_or_is_done(
    client: FlaskClient, world: World, store: PhotoStore
) -> None:
    advance(make_ticket(world, store), "accepted", world)
    done = escalated(world, store, 1)
    perform(done, "resolve", Actor.staff(world.gina), T0, calendar(), note="已修好")
    db.session.commit()
    login(client, world.sam)
    assert numbers(client) == []


def test_a_ticket_flagged_without_a_level_shows_with_the_community(
    client: FlaskClient, world: World, store: PhotoStore
) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    ticket.supervised = True
    db.session.commit()
    login(client, world.sam)
    assert numbers(client) == [ticket.number]


def test_the_longest_overdue_comes_first(client: FlaskClient, world: World, store: PhotoStore) -> None:
    later = escalated(world, store, 1, at_hours=3)
    earlier = escalated(world, store, 1)
    login(client, world.sam)
    assert numbers(client) == [earlier.number, later.number]


def test_a_row_shows_handler_level_deadline_and_the_reason(
    client: FlaskClient, world: World, store: PhotoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = escalated(world, store, 1, reason="屋顶漏水需要维修资金")  # resolve by next Wednesday 10:00
    monkeypatch.setattr("ticketing.console.views.now", lambda: T0 + timedelta(days=8))
    login(client, world.sam)
    html = client.get(URL).get_data(as_text=True)
    assert ticket.number in html and "屋顶漏水需要维修资金" in html
    assert "Gina" in html and "Community" in html and "槐树院" in html
    assert re.search(r"<dt>Overdue by</dt><dd>24 h</dd>", html)
    assert "138****5678" not in html and "13812345678" not in html


def test_counts_per_level_are_shown(client: FlaskClient, world: World, store: PhotoStore) -> None:
    escalated(world, store, 2)
    escalated(world, store, 2)
    login(client, world.sue)
    html = client.get(URL).get_data(as_text=True)
    assert re.search(r'level=2"[^>]*>\s*Street <span class="count">2</span>', html)


def test_dan_sees_nothing_of_community_a(client: FlaskClient, world: World, store: PhotoStore) -> None:
    for level in (1, 2, 3):
        escalated(world, store, level)
    own = escalated(world, store, 1, building=world.building_east)
    login(client, world.dan)
    assert numbers(client) == [own.number]
    for level in ("2", "3"):
        assert numbers(client, f"?level={level}") == []


def test_a_supervisor_of_another_community_sees_nothing_of_community_a(
    client: FlaskClient, world: World, store: PhotoStore, sid: str
) -> None:
    for level in (1, 2, 3):
        escalated(world, store, level)
    login(client, sid)
    for query in ("", "?level=1", "?level=2", "?level=3"):
        assert numbers(client, query) == []


def test_dora_reads_the_list_of_her_community(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = escalated(world, store, 1)
    login(client, world.dora)
    response = client.get(URL)
    assert ticket.number in response.get_data(as_text=True)
    assert "Supervisors act on these tickets" in response.get_data(as_text=True)


def test_adam_sees_every_level(client: FlaskClient, world: World, store: PhotoStore) -> None:
    tickets = [escalated(world, store, level) for level in (1, 2, 3)]
    login(client, world.adam)
    assert sorted(numbers(client)) == sorted(t.number for t in tickets)


@pytest.mark.parametrize("persona", ["gina", "pete", "vera"])
def test_handlers_get_404(client: FlaskClient, world: World, store: PhotoStore, persona: str) -> None:
    escalated(world, store, 1)
    login(client, persona)
    assert client.get(URL).status_code == 404
    assert client.get(URL + "?level=1").status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(client: FlaskClient, world: World) -> None:
    response = client.get(URL)
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_an_unknown_level_falls_back_to_the_default(client: FlaskClient, world: World, store: PhotoStore) -> None:
    one = escalated(world, store, 1)
    login(client, world.sam)
    assert numbers(client, "?level=9") == [one.number]
    assert numbers(client, "?level=x") == [one.number]


def test_the_console_links_to_the_list_with_its_count(
    client: FlaskClient, world: World, store: PhotoStore
) -> None:
    escalated(world, store, 1)
    escalated(world, store, 1)
    escalated(world, store, 2)
    login(client, world.sam)
    html = client.get("/console/").get_data(as_text=True)
    assert re.search(r'href="/console/supervision">\s*Supervision list <span class="count">2</span>', html)
