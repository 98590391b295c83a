"""Open311 GeoReport v2, reading service requests: one request field by field, and the filtered list.

No personal data of the requester may appear in any answer.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from tests.factories import T0, TZ, World, advance, calendar
from tests.open311_helpers import (
    NOW,
    REQUEST_FIELDS,
    URL,
    W3C_LOCAL,
    errors_of,
    json_of,
    tags,
    ticket_of,
    xml_of,
)
from ticketing import web
from ticketing.extensions import db
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The web layer's clock stands at NOW."""
    monkeypatch.setattr(web, "now", lambda: NOW)


# --- one request -------------------------------------------------------------

def test_a_request_has_the_spec_fields_in_order(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = ticket_of(world, store, lat=33.8681234, lon=113.0469876)
    root = xml_of(client.get(f"{URL}/requests/{ticket.number}.xml"))
    assert root.tag == "service_requests" and tags(root) == ["request"]
    request = root[0]
    assert tags(request) == REQUEST_FIELDS
    values = {child.tag: child.text for child in request}
    assert values["service_request_id"] == ticket.number
    assert values["status"] == "open"
    assert (values["service_code"], values["service_name"]) == ("repair.stair_light", "楼道灯不亮")
    assert values["requested_datetime"] == "2026-11-18T10:00:00+08:00"
    assert W3C_LOCAL.match(values["updated_datetime"])
    assert values["address"] == "东怡社区槐树院1号楼"
    assert values["address_id"] == str(world.building_courtyard.id)
    assert values["agency_responsible"] == "东怡社区"
    assert (values["lat"], values["long"]) == ("33.8681", "113.047")
    assert values["zipcode"] is None and values["media_url"] is None
    assert "accepted within" in values["service_notice"] or "受理" in values["service_notice"]


def test_the_json_request_is_a_list_of_one_with_the_same_values(
    client: FlaskClient, world: World, store: PhotoStore,
) -> None:
    ticket = ticket_of(world, store)
    data = json_of(client.get(f"{URL}/requests/{ticket.number}.json"))
    assert len(data) == 1 and list(data[0]) == REQUEST_FIELDS
    request = data[0]
    assert request["address_id"] == world.building_courtyard.id
    assert request["lat"] is None and request["status_notes"] is None and request["expected_datetime"] is None
    root = xml_of(client.get(f"{URL}/requests/{ticket.number}.xml"))[0]
    assert {k: (str(v) if v is not None else None) for k, v in request.items()} == {c.tag: c.text for c in root}


def test_no_personal_data_of_the_requester_is_shown(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = ticket_of(world, store, name="欧阳娜娜", phone="13912345678", unit_room="2单元301",
                       description="欧阳娜娜家门口的灯坏了，2单元301，电话13912345678", openid="oWX-secret-openid")
    for url in (f"{URL}/requests/{ticket.number}", f"{URL}/requests"):
        for fmt in ("xml", "json"):
            text = client.get(f"{url}.{fmt}?start_date=2026-11-01").get_data(as_text=True)
            assert ticket.number in text
            for secret in ("欧阳娜娜", "13912345678", "2单元301", "oWX-secret-openid"):
                assert secret not in text
    description = json_of(client.get(f"{URL}/requests/{ticket.number}.json"))[0]["description"]
    assert description == "欧***家门口的灯坏了，***，电话139****5678"


@pytest.mark.parametrize("status, expected", [
    ("dispatched", "open"), ("on_hold", "open"), ("resolved", "closed"), ("closed", "closed"),
])
def test_status_is_open_until_the_ticket_is_resolved(
    client: FlaskClient, world: World, store: PhotoStore, status: str, expected: str,
) -> None:
    ticket = advance(ticket_of(world, store), status, world)
    assert json_of(client.get(f"{URL}/requests/{ticket.number}.json"))[0]["status"] == expected


def test_a_rejected_ticket_is_closed_with_the_reason_as_status_notes(
    client: FlaskClient, world: World, store: PhotoStore,
) -> None:
    ticket = ticket_of(world, store)
    perform(ticket, "reject", Actor.staff(world.dora), T0, calendar(), note="重复反映，已合并处理")
    db.session.commit()
    request = json_of(client.get(f"{URL}/requests/{ticket.number}.json"))[0]
    assert (request["status"], request["status_notes"]) == ("closed", "重复反映，已合并处理")


def test_status_notes_are_the_latest_public_note_only(
    client: FlaskClient, world: World, store: PhotoStore,
) -> None:
    ticket = advance(ticket_of(world, store), "accepted", world)
    perform(ticket, "note", Actor.staff(world.gina), T0, calendar(), note="灯泡已订购，明天更换", public=True)
    perform(ticket, "note", Actor.staff(world.gina), T0, calendar(), note="住户不好沟通", public=False)
    db.session.commit()
    assert json_of(client.get(f"{URL}/requests/{ticket.number}.json"))[0]["status_notes"] == "灯泡已订购，明天更换"


def test_agency_and_expected_datetime_follow_the_handler_and_deadline(
    client: FlaskClient, world: World, store: PhotoStore,
) -> None:
    ticket = advance(ticket_of(world, store), "accepted", world)
    request = json_of(client.get(f"{URL}/requests/{ticket.number}.json"))[0]
    assert request["agency_responsible"] == "东怡社区第一网格"
    assert request["expected_datetime"] == ticket.resolve_due_at.astimezone(TZ).isoformat()
    assert W3C_LOCAL.match(request["expected_datetime"])


def test_a_property_company_ticket_names_the_company(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = ticket_of(world, store, building=world.building_managed)
    ticket.company = world.company
    db.session.commit()
    request = json_of(client.get(f"{URL}/requests/{ticket.number}.json"))[0]
    assert (request["agency_responsible"], request["address"]) == ("红心物业服务公司", "东怡社区红星小区3号楼")


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_an_unknown_request_is_404(client: FlaskClient, world: World, fmt: str) -> None:
    response = client.get(f"{URL}/requests/261118-9999.{fmt}")
    assert response.status_code == 404
    assert errors_of(response, fmt) == [(404, "service_request_id '261118-9999' was not found")]


def test_a_request_number_with_a_nul_byte_is_404(client: FlaskClient, world: World) -> None:
    response = client.get(f"{URL}/requests/261118-%00.json")
    assert response.status_code == 404


# --- the list of requests ----------------------------------------------------

def numbers(client: FlaskClient, query: str = "") -> list[str]:
    return [r["service_request_id"] for r in json_of(client.get(f"{URL}/requests.json{query}"))]


def test_the_list_holds_the_last_90_days_newest_first(
    client: FlaskClient, world: World, store: PhotoStore, clock: None,
) -> None:
    old = ticket_of(world, store, now=NOW - timedelta(days=91))
    first = ticket_of(world, store)
    second = ticket_of(world, store, now=T0 + timedelta(minutes=5))
    assert numbers(client) == [second.number, first.number]
    assert old.number in numbers(client, "?start_date=2026-08-01T00:00:00Z")
    root = xml_of(client.get(f"{URL}/requests.xml"))
    assert root.tag == "service_requests" and tags(root) == ["request", "request"]
    assert all(tags(r) == REQUEST_FIELDS for r in root)


def test_start_and_end_date_select_by_requested_time(
    client: FlaskClient, world: World, store: PhotoStore, clock: None,
) -> None:
    early = ticket_of(world, store, now=T0 - timedelta(days=2))
    late = ticket_of(world, store)
    assert numbers(client, "?end_date=2026-11-17T00:00:00%2B08:00") == [early.number]
    assert numbers(client, "?start_date=2026-11-17T00:00:00Z") == [late.number]
    assert numbers(client, "?start_date=2026-11-15&end_date=2026-11-16T12:00:00Z") == [early.number]


def test_service_request_ids_override_the_other_filters(
    client: FlaskClient, world: World, store: PhotoStore, clock: None,
) -> None:
    old = ticket_of(world, store, now=NOW - timedelta(days=200))
    new = ticket_of(world, store)
    ticket_of(world, store)
    query = f"?service_request_id={old.number},{new.number},nonsense&status=closed&start_date=2026-11-18"
    assert sorted(numbers(client, query)) == sorted([old.number, new.number])


def test_service_code_and_status_filter_the_list(
    client: FlaskClient, world: World, store: PhotoStore, clock: None,
) -> None:
    light = ticket_of(world, store)
    door = ticket_of(world, store, category="repair.door")
    advance(door, "resolved", world)
    assert numbers(client, "?service_code=repair.door") == [door.number]
    assert sorted(numbers(client, "?service_code=repair.door,repair.stair_light")) == sorted(
        [light.number, door.number])
    assert numbers(client, "?status=open") == [light.number]
    assert numbers(client, "?status=closed") == [door.number]
    assert len(numbers(client, "?status=open,closed")) == 2


def test_the_list_stops_at_the_limit(
    client: FlaskClient, world: World, store: PhotoStore, clock: None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ticketing.channels import open311

    monkeypatch.setattr(open311, "MAX_REQUESTS", 2)
    newest = [ticket_of(world, store, now=T0 + timedelta(minutes=m)) for m in range(3)][::-1]
    assert numbers(client) == [t.number for t in newest[:2]]


@pytest.mark.parametrize("query, message", [
    ("?start_date=yesterday", "start_date must be a W3C datetime, e.g. 2010-01-01T00:00:00Z"),
    ("?end_date=2026-13-01", "end_date must be a W3C datetime, e.g. 2010-01-01T00:00:00Z"),
    ("?start_date=2026-01-01T00:00:00Z&end_date=2026-06-01T00:00:00Z",
     "start_date and end_date may not span more than 90 days"),
    ("?start_date=2026-06-01&end_date=2026-05-01", "start_date is after end_date"),
    ("?status=pending", "status must be open or closed (comma-separated for both)"),
])
@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_bad_filters_are_400_with_the_reason(client: FlaskClient, world: World, query: str, message: str,
                                              fmt: str) -> None:
    response = client.get(f"{URL}/requests.{fmt}{query}")
    assert response.status_code == 400
    assert errors_of(response, fmt) == [(400, message)]


@pytest.mark.parametrize("query,message", [
    ("?service_request_id=261118-%00", "service_request_id contains a NUL byte"),
    ("?jurisdiction_id=ST%00", "jurisdiction_id contains a NUL byte"),
    ("?service_code=%FF%FE", "service_code is not valid UTF-8"),
])
def test_parameters_that_are_not_text_are_400_naming_them(client: FlaskClient, world: World, query: str,
                                                          message: str) -> None:
    response = client.get(f"{URL}/requests.json{query}")
    assert response.status_code == 400
    assert errors_of(response, "json") == [(400, message)]
