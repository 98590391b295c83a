"""After filing: the resident adds words and photos to an open request, or withdraws it
before anyone accepted it; both are on the timeline (services/additions.py, the
"add_info" and "withdraw" transitions)."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from tests.factories import T0, World, advance, calendar, make_ticket, png_bytes
from tests.tracking_helpers import inbox, link, post_on
from ticketing.extensions import db
from ticketing.models import Photo, Status, Ticket
from ticketing.services import additions
from ticketing.services.effects import MAX_ADDITIONS
from ticketing.services.errors import Conflict, IllegalTransition, InvalidInput
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore


def stored_files(app: Flask) -> set[Path]:
    return {p for p in Path(app.config["UPLOAD_FOLDER"]).rglob("*") if p.is_file()}


def photo_count(ticket: Ticket) -> int:
    return db.session.scalar(select(func.count()).select_from(Photo).where(Photo.ticket_id == ticket.id)) or 0


def add(ticket: Ticket, store: PhotoStore, text: str = "", photos: list[bytes] = (), minutes: int = 5) -> None:
    additions.add_info(ticket, text, list(photos), T0 + timedelta(minutes=minutes), calendar(), store, 10**7, 3)


# --- what the page offers ---------------------------------------------------------------


@pytest.mark.parametrize("state, adds, withdraws", [
    ("submitted", True, True), ("dispatched", True, True), ("accepted", True, False),
    ("on_hold", True, False), ("resolved", False, False), ("closed", False, False),
])
def test_the_page_offers_adding_while_open_and_withdrawing_until_accepted(
        client: FlaskClient, world: World, store: PhotoStore, ctx: Flask, state: str, adds: bool,
        withdraws: bool) -> None:
    ticket = make_ticket(world, store)
    if state != "submitted":
        advance(ticket, state, world)
    html = client.get(link(ticket, ctx)).get_data(as_text=True)
    assert (f'action="{link(ticket, ctx)}/add"' in html) is adds
    assert (f'action="{link(ticket, ctx)}/withdraw"' in html) is withdraws


# --- adding information -------------------------------------------------------------------


def test_the_resident_adds_words_and_a_photo_and_the_handler_is_told(
        client: FlaskClient, world: World, store: PhotoStore, ctx: Flask) -> None:
    ticket = advance(make_ticket(world, store), "dispatched", world)
    response = post_on(client, ticket, ctx, "add", photos=[(png_bytes(), "more.png")], text="晚上八点以后最暗")
    assert response.status_code == 303
    db.session.expire_all()
    event = ticket.events[-1]
    assert (event.action, event.public, event.actor_kind, event.note) == ("add_info", True, "resident", "晚上八点以后最暗")
    assert event.detail == {"photos": 1} and ticket.status == Status.DISPATCHED
    assert [p.kind for p in ticket.photos] == ["report"] and len(stored_files(ctx)) == 1
    [told] = inbox(world.gina.id, "info_added")
    assert "晚上八点以后最暗" in told.body
    html = client.get(link(ticket, ctx)).get_data(as_text=True)
    assert "居民补充了信息" in html and "晚上八点以后最暗" in html
    assert f"{link(ticket, ctx)}/photos/{ticket.photos[0].id}" in html


def test_adding_nothing_is_refused_beside_the_field(
        client: FlaskClient, world: World, store: PhotoStore, ctx: Flask) -> None:
    client.get("/lang/en")
    ticket = make_ticket(world, store)
    response = post_on(client, ticket, ctx, "add", text="   ")
    assert response.status_code == 400
    assert "Write what you want to add, or choose a photo." in response.get_data(as_text=True)
    db.session.expire_all()
    assert [e.action for e in ticket.events] == ["submit"]


def test_a_file_that_is_no_photo_is_refused_and_leaves_nothing(
        client: FlaskClient, world: World, store: PhotoStore, ctx: Flask) -> None:
    ticket = make_ticket(world, store)
    response = post_on(client, ticket, ctx, "add", photos=[(png_bytes(), "a.png"), (b"not an image", "b.jpg")],
                       text="补充")
    assert response.status_code == 400
    db.session.expire_all()
    assert [e.action for e in ticket.events] == ["submit"]
    assert photo_count(ticket) == 0 and stored_files(ctx) == set()


def test_more_photos_than_a_filing_takes_are_refused(world: World, store: PhotoStore, ctx: Flask) -> None:
    ticket = make_ticket(world, store)
    with pytest.raises(InvalidInput) as refused:
        add(ticket, store, "补充", [png_bytes()] * 4)
    assert refused.value.field == "photos" and stored_files(ctx) == set()


def test_a_closed_request_takes_no_more_and_keeps_no_file(world: World, store: PhotoStore, ctx: Flask) -> None:
    ticket = advance(make_ticket(world, store), "closed", world)
    with pytest.raises(IllegalTransition):
        add(ticket, store, "补充", [png_bytes()])
    db.session.refresh(ticket)
    assert photo_count(ticket) == 0 and stored_files(ctx) == set()


def test_a_resident_adds_at_most_ten_times(world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    for n in range(MAX_ADDITIONS):
        add(ticket, store, f"补充{n}")
        db.session.commit()
    with pytest.raises(IllegalTransition):
        add(ticket, store, "再补充")
    db.session.refresh(ticket)
    assert sum(e.action == "add_info" for e in ticket.events) == MAX_ADDITIONS


def test_an_addition_racing_another_change_is_a_conflict_and_keeps_no_file(
        world: World, store: PhotoStore, ctx: Flask) -> None:
    ticket = make_ticket(world, store)
    ticket_id = ticket.id
    db.session.remove()
    stale = db.session.get(Ticket, ticket_id)
    with db.engine.begin() as conn:  # the dispatcher acts behind this session's back
        conn.execute(update(Ticket).where(Ticket.id == ticket_id).values(version=Ticket.version + 1))
    with pytest.raises(Conflict):
        add(stale, store, "补充", [png_bytes()])
    assert stored_files(ctx) == set()


# --- withdrawing --------------------------------------------------------------------------


def test_the_resident_withdraws_a_waiting_request(
        client: FlaskClient, world: World, store: PhotoStore, ctx: Flask) -> None:
    ticket = make_ticket(world, store)
    response = post_on(client, ticket, ctx, "withdraw", reason="自己修好了", confirm="y")
    assert response.status_code == 303
    db.session.expire_all()
    assert ticket.status == Status.WITHDRAWN and ticket.closed_at is not None
    event = ticket.events[-1]
    assert (event.action, event.public, event.note, event.detail) == (
        "withdraw", True, "自己修好了", {"was_dispatched": False})
    html = client.get(link(ticket, ctx)).get_data(as_text=True)
    assert "已撤回" in html and "居民已撤回" in html
    assert "/add" not in html and "/withdraw" not in html


def test_withdrawing_needs_the_box_ticked(client: FlaskClient, world: World, store: PhotoStore, ctx: Flask) -> None:
    client.get("/lang/en")
    ticket = make_ticket(world, store)
    response = post_on(client, ticket, ctx, "withdraw", reason="自己修好了")
    assert response.status_code == 400 and "Tick the box to confirm." in response.get_data(as_text=True)
    db.session.expire_all()
    assert ticket.status == Status.SUBMITTED


def test_withdrawing_a_dispatched_request_tells_the_handler_and_ends_the_accept_by(
        client: FlaskClient, world: World, store: PhotoStore, ctx: Flask) -> None:
    ticket = advance(make_ticket(world, store), "dispatched", world)
    assert post_on(client, ticket, ctx, "withdraw", confirm="y").status_code == 303
    db.session.expire_all()
    assert ticket.status == Status.WITHDRAWN and ticket.accept_due_at is None
    assert ticket.events[-1].detail == {"was_dispatched": True}
    [told] = inbox(world.gina.id, "withdrawn")
    assert ticket.number in told.subject
    with pytest.raises(IllegalTransition):
        perform(ticket, "accept", Actor.staff(world.gina), T0, calendar())


def test_an_accepted_request_can_no_longer_be_withdrawn(
        client: FlaskClient, world: World, store: PhotoStore, ctx: Flask) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    assert post_on(client, ticket, ctx, "withdraw", confirm="y").status_code == 409
    db.session.expire_all()
    assert ticket.status == Status.ACCEPTED and ticket.events[-1].action == "accept"


def test_a_request_others_were_merged_into_cannot_be_withdrawn(world: World, store: PhotoStore) -> None:
    main = make_ticket(world, store)
    dup = make_ticket(world, store, phone="13900001111")
    perform(dup, "merge", Actor.staff(world.dora), T0, calendar(), target=main)
    db.session.commit()
    with pytest.raises(IllegalTransition):
        perform(main, "withdraw", Actor.resident(), T0, calendar())
    db.session.refresh(main)
    assert main.status == Status.SUBMITTED


def test_a_county_centre_order_is_withdrawn_where_it_was_filed(world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, channel="county_center", external_id="C-1")
    with pytest.raises(IllegalTransition):
        perform(ticket, "withdraw", Actor.resident(), T0, calendar())
