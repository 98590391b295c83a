"""The dispatcher console: the queue, its tabs and filters, and tickets entered for residents."""
from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select

from tests.conftest import csrf_token, login
from tests.factories import (
    T0,
    World,
    advance,
    calendar,
    make_ticket,
    make_user,
    png_bytes,
)
from ticketing.console import queue as console_queue
from ticketing.extensions import db
from ticketing.models import Ticket, TicketEvent, utcnow
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore

# These tests read the English labels; Chinese is checked in test_translations.
pytestmark = pytest.mark.usefixtures("english")


def numbers_on(html: str) -> list[str]:
    """The ticket numbers listed on a queue page, in order."""
    return re.findall(r'class="title" href="/tickets/([0-9-]+)"', html)


def page(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def ticket_count() -> int:
    return db.session.scalar(select(func.count(Ticket.id))) or 0


def return_to_dispatcher(ticket: Ticket, world: World, reason: str) -> None:
    """Dispatch the ticket to gina, who hands it back with a reason."""
    advance(ticket, "dispatched", world)
    perform(ticket, "return", Actor.staff(world.gina), T0, calendar(), note=reason)
    db.session.commit()


# The queue


def test_dora_sees_community_a_tickets_and_not_community_b(
    client: FlaskClient, world: World, store: PhotoStore,
) -> None:
    mine = make_ticket(world, store, building=world.building_courtyard)
    theirs = make_ticket(world, store, building=world.building_east)
    login(client, world.dora)
    listed = numbers_on(page(client, "/console/"))
    assert mine.number in listed
    assert theirs.number not in listed


def test_the_street_supervisor_sees_both_communities(
    client: FlaskClient, world: World, store: PhotoStore,
) -> None:
    a = make_ticket(world, store, building=world.building_courtyard)
    b = make_ticket(world, store, building=world.building_east)
    login(client, world.sue)
    assert set(numbers_on(page(client, "/console/"))) == {a.number, b.number}


def test_a_returned_ticket_is_flagged_with_its_reason(
    client: FlaskClient, world: World, store: PhotoStore,
) -> None:
    ticket = make_ticket(world, store)
    return_to_dispatcher(ticket, world, "不是本网格的小区")
    login(client, world.dora)
    html = page(client, "/console/")
    assert numbers_on(html) == [ticket.number]
    assert "Returned" in html
    assert "不是本网格的小区" in html


def test_urgent_tickets_come_first_then_the_oldest(
    client: FlaskClient, world: World, store: PhotoStore,
) -> None:
    old = make_ticket(world, store, now=T0 - timedelta(hours=5))
    newer = make_ticket(world, store, now=T0 - timedelta(hours=1))
    gas = make_ticket(world, store, now=T0, category="repair.gas")
    no_water = make_ticket(world, store, now=T0 - timedelta(minutes=30), category="repair.no_water")
    login(client, world.dora)
    assert numbers_on(page(client, "/console/")) == [gas.number, no_water.number, old.number, newer.number]


def test_the_overdue_tab_holds_tickets_past_their_deadline(
    client: FlaskClient, world: World, store: PhotoStore,
) -> None:
    late = advance(make_ticket(world, store), "dispatched", world, now=T0)
    late_work = advance(make_ticket(world, store), "accepted", world, now=T0 - timedelta(days=30))
    on_time = make_ticket(world, store, now=utcnow())
    advance(on_time, "dispatched", world, now=utcnow())
    waiting = make_ticket(world, store)
    login(client, world.dora)
    html = page(client, "/console/?tab=overdue")
    assert set(numbers_on(html)) == {late.number, late_work.number}
    assert on_time.number not in html and waiting.number not in html
    assert "badge-overdue" in html


def test_each_tab_shows_its_states(client: FlaskClient, world: World, store: PhotoStore) -> None:
    submitted = make_ticket(world, store)
    dispatched = advance(make_ticket(world, store), "dispatched", world)
    held = advance(make_ticket(world, store), "on_hold", world)
    resolved = advance(make_ticket(world, store), "resolved", world)
    login(client, world.dora)
    assert numbers_on(page(client, "/console/?tab=awaiting")) == [submitted.number]
    assert numbers_on(page(client, "/console/?tab=dispatched")) == [dispatched.number]
    assert numbers_on(page(client, "/console/?tab=in_progress")) == [held.number]
    assert numbers_on(page(client, "/console/?tab=resolved")) == [resolved.number]
    assert len(numbers_on(page(client, "/console/?tab=all"))) == 4


def test_search_by_ticket_number(client: FlaskClient, world: World, store: PhotoStore) -> None:
    wanted = make_ticket(world, store)
    other = make_ticket(world, store)
    login(client, world.dora)
    listed = numbers_on(page(client, f"/console/?number={wanted.number}"))
    assert listed == [wanted.number]
    assert other.number not in listed


def test_search_by_the_last_four_digits_of_the_phone(
    client: FlaskClient, world: World, store: PhotoStore,
) -> None:
    wanted = make_ticket(world, store, phone="13900004321")
    make_ticket(world, store, phone="13900001234")
    login(client, world.dora)
    assert numbers_on(page(client, "/console/?phone=4321")) == [wanted.number]


def test_filter_by_grid(client: FlaskClient, world: World, store: PhotoStore) -> None:
    make_ticket(world, store, building=world.building_courtyard)
    west = make_ticket(world, store, building=world.building_west)
    login(client, world.dora)
    assert numbers_on(page(client, f"/console/?grid={world.grid_a2.id}")) == [west.number]


def test_filter_by_category_group(client: FlaskClient, world: World, store: PhotoStore) -> None:
    make_ticket(world, store, category="repair.stair_light")
    noise = make_ticket(world, store, category="dispute.noise")
    group = world.category("dispute")
    login(client, world.dora)
    assert numbers_on(page(client, f"/console/?group={group.id}")) == [noise.number]


def test_the_queue_is_paged(client: FlaskClient, world: World, store: PhotoStore,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console_queue, "PER_PAGE", 2)
    tickets = [make_ticket(world, store, now=T0 + timedelta(minutes=i)) for i in range(3)]
    login(client, world.dora)
    assert numbers_on(page(client, "/console/")) == [t.number for t in tickets[:2]]
    assert numbers_on(page(client, "/console/?page=2")) == [tickets[2].number]


def test_the_requester_phone_is_masked_in_the_queue(
    client: FlaskClient, world: World, store: PhotoStore,
) -> None:
    make_ticket(world, store, phone="13912345678")
    login(client, world.dora)
    html = page(client, "/console/")
    assert "139****5678" in html
    assert "13912345678" not in html


@pytest.mark.parametrize("persona", ["gina", "vera", "pete"])
def test_handlers_get_404_on_the_console(client: FlaskClient, world: World, persona: str) -> None:
    login(client, persona)
    assert client.get("/console/").status_code == 404
    assert client.get("/console/new").status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(client: FlaskClient, world: World) -> None:
    response = client.get("/console/")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


def test_sam_reads_the_queue_but_cannot_enter_tickets(
    client: FlaskClient, world: World, store: PhotoStore,
) -> None:
    ticket = make_ticket(world, store)
    login(client, world.sam)
    html = page(client, "/console/")
    assert numbers_on(html) == [ticket.number]
    assert "/console/new" not in html
    assert client.get("/console/new").status_code == 404


@pytest.fixture()
def count_queries() -> Iterator[list[str]]:
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    yield statements
    event.remove(db.engine, "before_cursor_execute", record)


def fill(world: World, store: PhotoStore, n: int) -> None:
    """n tickets: waiting, returned, dispatched, in progress, in turn."""
    for i in range(n):
        ticket = make_ticket(world, store, building=[world.building_managed, world.building_west][i % 2])
        if i % 4 == 1:
            return_to_dispatcher(ticket, world, "退回")
        elif i % 4 == 2:
            advance(ticket, "dispatched", world, handler=world.greg if i % 2 else world.gina)
        elif i % 4 == 3:
            advance(ticket, "accepted", world, handler=world.greg if i % 2 else world.gina)


@pytest.mark.parametrize("tab", ["awaiting", "all"])
def test_the_queue_takes_the_same_number_of_queries_for_3_or_30_tickets(
    client: FlaskClient, world: World, store: PhotoStore, count_queries: list[str], tab: str,
) -> None:
    login(client, world.dora)
    counts = []
    for more in (3, 27):  # 3, then 30 tickets: one page either way
        fill(world, store, more)
        count_queries.clear()
        html = page(client, f"/console/?tab={tab}")
        counts.append(len(count_queries))
        assert numbers_on(html)
    assert counts[0] == counts[1], counts


# Entering a ticket for a resident


def new_ticket_form(client: FlaskClient, world: World, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "csrf_token": csrf_token(client, "/console/new"),
        "channel": "walk_in",
        "category_id": str(world.category("repair.water_leak").id),
        "community_id": str(world.community_a.id),
        "complex_id": str(world.courtyard.id),
        "building_id": str(world.building_courtyard.id),
        "unit_room": "1单元201",
        "description": "厨房水管漏水，楼下已经渗水",
        "name": "李大爷",
        "phone": "13700001111",
    }
    data.update(overrides)
    return data


def test_dora_files_a_walk_in_ticket(client: FlaskClient, world: World) -> None:
    login(client, world.dora)
    response = client.post("/console/new", data=new_ticket_form(client, world))
    ticket = db.session.scalar(select(Ticket))
    assert ticket is not None
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/tickets/{ticket.number}")
    assert ticket.channel == "walk_in"
    assert ticket.created_by_id == world.dora.id
    assert ticket.requester_phone == "13700001111"
    submit = db.session.scalar(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id))
    assert submit is not None and submit.action == "submit"
    assert (submit.actor_kind, submit.actor_id) == ("staff", world.dora.id)


def test_a_double_click_on_file_makes_one_ticket(client: FlaskClient, world: World) -> None:
    login(client, world.dora)
    data = new_ticket_form(client, world, submission_id="0123456789abcdef0123456789abcdef")
    first = client.post("/console/new", data=data)
    second = client.post("/console/new", data=data)
    assert first.headers["Location"] == second.headers["Location"]
    assert ticket_count() == 1


def test_the_new_number_is_flashed_after_filing(client: FlaskClient, world: World) -> None:
    login(client, world.dora)
    response = client.post("/console/new", data=new_ticket_form(client, world), follow_redirects=True)
    ticket = db.session.scalar(select(Ticket))
    assert ticket is not None
    assert f"Ticket {ticket.number} filed." in response.get_data(as_text=True)


def test_a_phone_channel_ticket_is_accepted(client: FlaskClient, world: World) -> None:
    login(client, world.dora)
    response = client.post("/console/new", data=new_ticket_form(client, world, channel="phone"))
    assert response.status_code == 303
    assert db.session.scalar(select(Ticket.channel)) == "phone"


def test_a_typed_address_places_the_ticket_in_the_community(client: FlaskClient, world: World) -> None:
    login(client, world.dora)
    data = new_ticket_form(client, world, complex_id="", building_id="", address_text="东怡街79号院3栋")
    assert client.post("/console/new", data=data).status_code == 303
    ticket = db.session.scalar(select(Ticket))
    assert ticket is not None and ticket.building_id == world.building_managed.id


def test_a_photo_is_stored_with_the_ticket(client: FlaskClient, world: World) -> None:
    login(client, world.dora)
    data = new_ticket_form(client, world, photos=[(io.BytesIO(png_bytes()), "leak.png")])
    response = client.post("/console/new", data=data, content_type="multipart/form-data")
    assert response.status_code == 303
    ticket = db.session.scalar(select(Ticket))
    assert ticket is not None and len(ticket.photos) == 1


@pytest.mark.parametrize("field, value, message", [
    ("phone", "", "11-digit mobile number"),
    ("description", "   ", "describe the problem"),
    ("channel", "web", "Choose how the request came in."),
    ("category_id", "", "Choose what kind of problem it is."),
])
def test_bad_input_creates_nothing(
    client: FlaskClient, world: World, field: str, value: str, message: str,
) -> None:
    login(client, world.dora)
    response = client.post("/console/new", data=new_ticket_form(client, world, **{field: value}))
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert ticket_count() == 0


def test_dora_cannot_file_in_community_b(client: FlaskClient, world: World) -> None:
    login(client, world.dora)
    data = new_ticket_form(client, world, community_id=str(world.community_b.id),
                           complex_id=str(world.east.id), building_id=str(world.building_east.id))
    response = client.post("/console/new", data=data)
    assert response.status_code == 400
    assert "Choose a community you serve." in response.get_data(as_text=True)
    assert ticket_count() == 0


def test_a_building_of_another_community_is_refused(client: FlaskClient, world: World) -> None:
    login(client, world.dora)
    data = new_ticket_form(client, world, complex_id="", building_id=str(world.building_east.id))
    response = client.post("/console/new", data=data)
    assert response.status_code == 400
    assert ticket_count() == 0


def test_an_oversized_photo_is_refused_with_413(client: FlaskClient, world: World, ctx: Flask) -> None:
    login(client, world.dora)
    big = png_bytes() + b"\0" * ctx.config["MAX_PHOTO_BYTES"]
    data = new_ticket_form(client, world, photos=[(io.BytesIO(big), "big.png")])
    response = client.post("/console/new", data=data, content_type="multipart/form-data")
    assert response.status_code == 413
    assert ticket_count() == 0


def test_the_form_offers_only_the_dispatchers_community(client: FlaskClient, world: World) -> None:
    login(client, world.dora)
    html = page(client, "/console/new")
    assert world.community_a.name in html
    assert world.community_b.name not in html
    assert world.east.name not in html


def test_a_street_dispatcher_may_file_in_every_community_of_the_street(
    client: FlaskClient, world: World,
) -> None:
    make_user("stella", "dispatcher", street=world.street)
    db.session.commit()
    login(client, "stella")
    data = new_ticket_form(client, world, community_id=str(world.community_b.id),
                           complex_id=str(world.east.id), building_id=str(world.building_east.id))
    assert client.post("/console/new", data=data).status_code == 303
    assert db.session.scalar(select(Ticket.community_id)) == world.community_b.id


def test_filing_without_csrf_token_is_refused(client: FlaskClient, world: World) -> None:
    login(client, world.dora)
    data = new_ticket_form(client, world)
    del data["csrf_token"]
    assert client.post("/console/new", data=data).status_code == 400
    assert ticket_count() == 0
