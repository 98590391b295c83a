"""Residents without a mobile phone: walk-in, hall and phone entry take a landline or no
phone at all; group-chat drafts without a number are filed; nobody of them is texted
(services/phones.py, services/intake.py, services/notify.py)."""
from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import csrf_token, login
from tests.factories import T0, TZ, World, advance, make_ticket
from tests.tracking_helpers import link
from ticketing.extensions import db
from ticketing.models import KeyKind, Notification, Ticket
from ticketing.services import apikeys, intake, phones, tracking
from ticketing.services.errors import ValidationFailed
from ticketing.services.lifecycle import Actor
from ticketing.services.photos import PhotoStore

LANDLINE = "0371-12345678"
STORED_LANDLINE = "037112345678"


def sms_of(ticket: Ticket) -> list[Notification]:
    return list(db.session.scalars(select(Notification).where(
        Notification.ticket_id == ticket.id, Notification.channel == "sms")))


def taken(world: World, store: PhotoStore, channel: str = "walk_in", **fields: Any) -> Ticket:
    """A request a dispatcher entered for a resident."""
    return make_ticket(world, store, channel=channel, actor=Actor.staff(world.dora), **fields)


# --- the rule --------------------------------------------------------------------------


@pytest.mark.parametrize("typed, stored", [
    ("0371-12345678", "037112345678"), ("010 1234 5678", "01012345678"), ("(010) 1234 5678", "01012345678"),
    ("（0371）6123456", "03716123456"), ("+86 10 1234 5678", "01012345678"), ("０３７１－１２３４５６７８", "037112345678"),
    ("12345678", None), ("010-123456", None), ("0371-0123456", None), ("13812345678", None), ("", None),
])
def test_a_landline_is_read_with_its_area_code(typed: str, stored: str | None) -> None:
    assert phones.clean_landline(typed) == stored


def test_only_a_mobile_can_be_texted() -> None:
    assert [phones.kind_of(p) for p in ("13812345678", STORED_LANDLINE, "")] == ["mobile", "landline", "none"]
    assert [phones.can_text(p) for p in ("13812345678", STORED_LANDLINE, "")] == [True, False, False]


@pytest.mark.parametrize("channel", ["walk_in", "service_hall", "phone", "wechat_group"])
def test_the_doors_staff_use_take_a_landline(world: World, store: PhotoStore, channel: str) -> None:
    assert taken(world, store, channel, phone=LANDLINE).requester_phone == STORED_LANDLINE


@pytest.mark.parametrize("channel", ["web", "open311", "patrol"])
def test_the_other_doors_still_want_a_mobile(world: World, store: PhotoStore, channel: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        make_ticket(world, store, channel=channel, phone=LANDLINE, no_phone=True)
    assert str(refused.value.errors["phone"]) == "请填写11位手机号码，例如 13812345678。"  # a mobile only


def test_no_phone_must_be_said_not_forgotten(world: World, store: PhotoStore) -> None:
    with pytest.raises(ValidationFailed) as forgotten:
        taken(world, store, phone="")
    assert "勾选“无电话”" in str(forgotten.value.errors["phone"])
    assert taken(world, store, phone="", no_phone=True).requester_phone == ""
    with pytest.raises(ValidationFailed):  # a number typed wrong is not "no phone"
        taken(world, store, phone="12345", no_phone=True)


# --- nobody without a mobile is texted -----------------------------------------------------


@pytest.mark.parametrize("phone", [LANDLINE, ""])
def test_no_sms_is_attempted_for_a_landline_or_no_phone(world: World, store: PhotoStore, phone: str) -> None:
    ticket = taken(world, store, phone=phone, no_phone=not phone)
    advance(ticket, "resolved", world)
    assert sms_of(ticket) == []
    assert db.session.scalars(select(Notification).where(  # the staff are told as always
        Notification.ticket_id == ticket.id, Notification.channel == "inbox")).first() is not None


def test_a_mobile_entered_at_the_hall_is_texted_as_before(world: World, store: PhotoStore) -> None:
    ticket = taken(world, store, phone="13700001111")
    assert [m.kind for m in sms_of(ticket)] == ["received"]


# --- finding the request again ---------------------------------------------------------------


def test_a_landlines_last_four_digits_find_the_request(world: World, store: PhotoStore) -> None:
    ticket = taken(world, store, phone=LANDLINE)
    assert tracking.lookup(ticket.number, "5678").id == ticket.id
    assert tracking.lookup(ticket.number, "1234") is None


def test_without_a_phone_only_the_link_finds_the_request(
        client: FlaskClient, world: World, store: PhotoStore, ctx: Flask) -> None:
    ticket = taken(world, store, phone="", no_phone=True)
    assert all(tracking.lookup(ticket.number, digits) is None for digits in ("0000", "    ", ""))
    assert client.get(link(ticket, ctx)).status_code == 200


# --- the dispatcher's entry form and slip ---------------------------------------------------------


def entry_form(client: FlaskClient, world: World, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "csrf_token": csrf_token(client, "/console/new"), "channel": "walk_in",
        "category_id": str(world.category("repair.water_leak").id), "community_id": str(world.community_a.id),
        "complex_id": str(world.courtyard.id), "building_id": str(world.building_courtyard.id),
        "description": "厨房水管漏水", "name": "李大爷", "phone": LANDLINE,
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_the_console_files_a_walk_in_with_a_landline_and_says_no_sms_will_reach_them(
        client: FlaskClient, world: World) -> None:
    login(client, world.dora)
    client.get("/lang/en")
    response = client.post("/console/new", data=entry_form(client, world), follow_redirects=True)
    assert response.status_code == 200
    ticket = db.session.scalars(select(Ticket)).one()
    assert ticket.requester_phone == STORED_LANDLINE and sms_of(ticket) == []
    html = response.get_data(as_text=True)
    assert "No SMS can reach this resident" in html and "landline: no SMS" in html
    assert f'href="/console/slip/{ticket.number}"' in html


def test_the_console_files_for_a_resident_with_no_phone(client: FlaskClient, world: World) -> None:
    login(client, world.dora)
    response = client.post("/console/new", data=entry_form(client, world, phone="", no_phone="y"))
    assert response.status_code == 303
    ticket = db.session.scalars(select(Ticket)).one()
    assert ticket.requester_phone == "" and sms_of(ticket) == []


def test_the_console_refuses_an_empty_phone_without_the_box_ticked(client: FlaskClient, world: World) -> None:
    login(client, world.dora)
    client.get("/lang/en")
    response = client.post("/console/new", data=entry_form(client, world, phone=""))
    assert response.status_code == 400
    assert "or tick “No phone”" in response.get_data(as_text=True)
    assert db.session.scalars(select(Ticket)).first() is None


def test_the_slip_of_a_resident_without_a_phone_says_the_code_is_their_only_way(
        client: FlaskClient, world: World, store: PhotoStore, ctx: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ctx.config, "PUBLIC_URL", "https://minhu.example.org")
    ticket = taken(world, store, phone="", no_phone=True)
    login(client, world.dora)
    client.get("/lang/en")
    html = client.get(f"/console/slip/{ticket.number}").get_data(as_text=True)
    assert ticket.number in html and "You gave no phone number" in html
    assert "the only way to follow your request online" in html
    assert "https://minhu.example.org" + link(ticket, ctx) in html and 'class="qr"' in html


def test_the_slip_of_a_landline_resident_explains_the_last_four_digits(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = taken(world, store, phone=LANDLINE)
    login(client, world.dora)
    client.get("/lang/en")
    html = client.get(f"/console/slip/{ticket.number}").get_data(as_text=True)
    assert "We cannot send text messages to a landline." in html


def test_another_communitys_dispatcher_gets_no_slip(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = taken(world, store, phone=LANDLINE)
    login(client, world.dan)
    assert client.get(f"/console/slip/{ticket.number}").status_code == 404


# --- the group chat and the staff API ------------------------------------------------------------


def test_a_group_chat_draft_without_a_number_is_filed_under_the_nickname(
        client: FlaskClient, world: World) -> None:
    login(client, world.dora)
    response = client.post("/patrol/groupchat/file", data={
        "csrf_token": csrf_token(client, "/patrol/groupchat"),
        "rows-0-include": "y", "rows-0-key": uuid.uuid4().hex, "rows-0-sender": "槐树院老王", "rows-0-time": "10:32",
        "rows-0-category_id": str(world.category("repair.stair_light").id),
        "rows-0-community_id": str(world.community_a.id), "rows-0-building_id": str(world.building_courtyard.id),
        "rows-0-phone": "", "rows-0-name": "槐树院老王", "rows-0-description": "1号楼楼道灯不亮",
    })
    assert response.status_code == 303
    ticket = db.session.scalars(select(Ticket)).one()
    assert (ticket.channel, ticket.requester_name, ticket.requester_phone) == ("wechat_group", "槐树院老王", "")
    assert sms_of(ticket) == []


def api_post(client: FlaskClient, world: World, **changes: Any) -> Any:
    _row, key = apikeys.issue(KeyKind.STAFF, "hall tablet", T0, user=world.dora)
    db.session.commit()
    body = {"channel": "phone", "description": "厨房水管漏水", "category": "repair.water_leak",
            "building_id": world.building_courtyard.id, **changes}
    return client.post("/api/v1/tickets", json={k: v for k, v in body.items() if v is not None},
                       headers={"Authorization": f"Bearer {key}"})


def test_the_staff_api_takes_a_landline_on_the_phone_channel(client: FlaskClient, world: World) -> None:
    response = api_post(client, world, phone="(0371) 1234 5678")
    assert response.status_code == 201, response.get_json()
    assert db.session.scalars(select(Ticket)).one().requester_phone == STORED_LANDLINE


def test_the_staff_api_files_without_a_phone_only_when_told_there_is_none(client: FlaskClient, world: World) -> None:
    assert api_post(client, world).status_code == 422
    response = api_post(client, world, no_phone=True)
    assert response.status_code == 201, response.get_json()
    assert db.session.scalars(select(Ticket)).one().requester_phone == ""


def test_intake_reads_a_full_width_landline(world: World, store: PhotoStore) -> None:
    req = intake.IntakeRequest(channel="phone", description="灯不亮", phone="０１０ １２３４ ５６７８",
                               building_id=world.building_courtyard.id,
                               category_id=world.category("repair.stair_light").id)
    ticket, _ = intake.submit(req, Actor.staff(world.dora), T0, TZ, store, 10**7, route=False)
    assert ticket.requester_phone == "01012345678"


def test_a_group_chat_message_needs_no_number_and_no_tick(world: World, store: PhotoStore) -> None:
    ticket = taken(world, store, "wechat_group", phone="", name="槐树院老王")
    assert (ticket.requester_phone, ticket.requester_name) == ("", "槐树院老王")
