"""Open311 GeoReport v2, filing: POST requests, api keys, rate limits, places, attributes, hostile input."""
from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from tests.factories import PHONE, T0, World
from tests.open311_helpers import NOW, URL, errors_of, json_of, tags, with_attributes, xml_of
from ticketing import web
from ticketing.channels.open311_post import NO_PLACE
from ticketing.extensions import db
from ticketing.models import KeyKind, Ticket
from ticketing.services import apikeys

FORM_TYPE = "application/x-www-form-urlencoded"
GRID_A2 = {"type": "Polygon", "coordinates": [[[116.40, 39.90], [116.41, 39.90], [116.41, 39.91],
                                               [116.40, 39.91], [116.40, 39.90]]]}


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The web layer's clock stands at NOW (rate-limit windows depend on it)."""
    monkeypatch.setattr(web, "now", lambda: NOW)


@pytest.fixture()
def api_key(world: World) -> str:
    """An active Open311 key of a client app."""
    return apikeys.issue(KeyKind.OPEN311, "Test app", T0)[1]


def form(key: str, **fields: Any) -> dict[str, Any]:
    """A complete POST: a stairwell light in 红星小区 3号楼; `fields` change it (None leaves one out)."""
    data = {"api_key": key, "service_code": "repair.stair_light", "description": "3号楼楼道灯不亮",
            "phone": PHONE, "address_string": "东怡街79号院3栋", "first_name": "三丰", "last_name": "张"}
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def post(client: FlaskClient, data: Any, fmt: str = "json", **options: Any) -> TestResponse:
    return client.post(f"{URL}/requests.{fmt}", data=data, **options)


def tickets() -> list[Ticket]:
    db.session.expire_all()
    return list(db.session.scalars(select(Ticket).order_by(Ticket.id)))


def filed(response: TestResponse) -> Ticket:
    """The one ticket a successful POST filed."""
    assert response.status_code == 201, response.get_data(as_text=True)
    number = json_of(response)[0]["service_request_id"]
    return next(t for t in tickets() if t.number == number)


# --- filing ------------------------------------------------------------------

def test_a_post_files_a_ticket_and_answers_with_its_number_and_token(
    client: FlaskClient, world: World, api_key: str,
) -> None:
    response = post(client, form(api_key, email="zhang@example.com", device_id="dev-1", account_id="acct-9",
                                 media_url="https://example.com/p.jpg"))
    data = json_of(response)
    assert len(data) == 1 and list(data[0]) == ["service_request_id", "service_notice", "account_id", "token"]
    ticket = filed(response)
    assert (data[0]["account_id"], data[0]["token"]) == ("acct-9", ticket.external_id)
    assert data[0]["service_notice"]
    assert (ticket.channel, ticket.description, ticket.requester_phone, ticket.requester_name) == (
        "open311", "3号楼楼道灯不亮", PHONE, "张三丰")
    assert (ticket.complex_id, ticket.building_id) == (world.managed.id, world.building_managed.id)
    assert ticket.extra == {"_open311": {"api_key_id": 1, "email": "zhang@example.com",
                                         "media_url": "https://example.com/p.jpg", "device_id": "dev-1",
                                         "account_id": "acct-9"}}
    assert api_key not in json.dumps(ticket.extra)


def test_the_xml_answer_is_service_requests_with_one_request(client: FlaskClient, world: World,
                                                             api_key: str) -> None:
    response = post(client, form(api_key), fmt="xml")
    assert response.status_code == 201
    root = xml_of(response)
    assert root.tag == "service_requests" and tags(root) == ["request"]
    assert tags(root[0]) == ["service_request_id", "service_notice", "account_id", "token"]
    assert root[0].findtext("service_request_id") == tickets()[0].number
    assert root[0].find("account_id").text is None


def test_the_token_gives_back_the_service_request_id(client: FlaskClient, world: World, api_key: str) -> None:
    answer = json_of(post(client, form(api_key)))[0]
    root = xml_of(client.get(f"{URL}/tokens/{answer['token']}.xml"))
    assert root.tag == "service_requests" and tags(root[0]) == ["service_request_id", "token"]
    assert root[0].findtext("service_request_id") == answer["service_request_id"]
    assert json_of(client.get(f"{URL}/tokens/{answer['token']}.json")) == [
        {"service_request_id": answer["service_request_id"], "token": answer["token"]}]


def test_the_same_post_twice_files_two_tickets(client: FlaskClient, world: World, api_key: str) -> None:
    first, second = (json_of(post(client, form(api_key)))[0] for _ in range(2))
    assert first["service_request_id"] != second["service_request_id"] and first["token"] != second["token"]
    assert len(tickets()) == 2


def test_the_key_may_come_in_the_query_string_and_locale_chooses_the_notice(
    client: FlaskClient, world: World, api_key: str,
) -> None:
    response = client.post(f"{URL}/requests.json?api_key={api_key}&locale=en", data=form("", api_key=None))
    assert response.status_code == 201
    assert "accepted within" in json_of(response)[0]["service_notice"]


def test_multipart_posts_are_accepted_and_their_media_ignored(client: FlaskClient, world: World,
                                                              api_key: str) -> None:
    data = {**form(api_key), "media": (io.BytesIO(b"\x89PNG not really"), "photo.png")}
    ticket = filed(post(client, data, content_type="multipart/form-data"))
    assert ticket.photos == []


def test_a_point_in_a_grid_places_the_request(client: FlaskClient, world: World, api_key: str) -> None:
    world.grid_a2.boundary = json.dumps(GRID_A2)
    db.session.commit()
    ticket = filed(post(client, form(api_key, address_string=None, lat="39.905", long="116.405")))
    assert (ticket.community_id, ticket.grid_id) == (world.community_a.id, world.grid_a2.id)
    assert ticket.complex_id is None
    assert (ticket.lat, ticket.lon) == (39.905, 116.405)
    assert json_of(client.get(f"{URL}/requests/{ticket.number}.json"))[0]["address"] == "东怡社区第二网格"


def test_address_id_is_a_building_id(client: FlaskClient, world: World, api_key: str) -> None:
    ticket = filed(post(client, form(api_key, address_string=None, address_id=str(world.building_east.id))))
    assert (ticket.building_id, ticket.community_id) == (world.building_east.id, world.community_b.id)


@pytest.mark.parametrize("fields, message", [
    ({"address_string": "北京市朝阳区"}, NO_PLACE),
    ({"address_string": None}, NO_PLACE),
    ({"address_string": None, "lat": "31.2", "long": "121.5"}, NO_PLACE),
    ({"address_string": None, "address_id": "999999"}, "address_id is not a building of this jurisdiction"),
    ({"address_id": "3号楼"}, "address_id is not a building of this jurisdiction"),
    ({"lat": "abc", "long": "116.4"}, "lat and long must both be given, as WGS-84 degrees"),
    ({"lat": "39.9"}, "lat and long must both be given, as WGS-84 degrees"),
    ({"lat": "91", "long": "116.4"}, "lat must lie within -90..90 and long within -180..180"),
    ({"lat": "nan", "long": "inf"}, "lat must lie within -90..90 and long within -180..180"),
])
def test_a_request_we_cannot_place_is_400(client: FlaskClient, world: World, api_key: str,
                                          fields: dict[str, Any], message: str) -> None:
    response = post(client, form(api_key, **fields), fmt="xml")
    assert response.status_code == 400
    assert errors_of(response, "xml") == [(400, message)]
    assert tickets() == []


# --- refusals before anything is read -----------------------------------------

@pytest.mark.parametrize("fmt", ["xml", "json"])
@pytest.mark.parametrize("key, message", [
    (None, "api_key is missing -- can't proceed with create_request."),
    ("o311_guessed", "Invalid api_key received -- can't proceed with create_request."),
])
def test_a_missing_or_invalid_key_is_403_before_anything_else(client: FlaskClient, world: World, fmt: str,
                                                              key: str | None, message: str) -> None:
    response = post(client, {"api_key": key} if key else {}, fmt=fmt,
                    content_type="application/x-www-form-urlencoded")
    assert response.status_code == 403
    assert errors_of(response, fmt) == [(403, message)]


def test_a_revoked_key_or_a_staff_key_is_403(client: FlaskClient, world: World, api_key: str) -> None:
    row = apikeys.verify(KeyKind.OPEN311, api_key, T0)
    assert row is not None
    apikeys.revoke(row, T0)
    staff_key = apikeys.issue(KeyKind.STAFF, "Staff app", T0, user=world.gina)[1]
    for key in (api_key, staff_key):
        response = post(client, form(key))
        assert response.status_code == 403 and errors_of(response, "json")[0][0] == 403
    assert tickets() == []


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_posts_beyond_the_keys_limit_are_429_with_retry_after(
    client: FlaskClient, ctx: Flask, world: World, api_key: str, monkeypatch: pytest.MonkeyPatch, fmt: str,
) -> None:
    monkeypatch.setitem(ctx.config["RATE_LIMITS"], "open311_key", (2, 60))
    assert [post(client, form(api_key), fmt=fmt).status_code for _ in range(2)] == [201, 201]
    response = post(client, form(api_key), fmt=fmt)
    assert response.status_code == 429 and response.headers["Retry-After"] == "60"
    assert errors_of(response, fmt) == [(429, "too many requests with this api_key; retry after 60 s")]
    assert len(tickets()) == 2
    other = apikeys.issue(KeyKind.OPEN311, "Other app", T0)[1]
    assert post(client, form(other), fmt=fmt).status_code == 201


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_a_body_over_64_kb_is_413(client: FlaskClient, world: World, api_key: str, fmt: str) -> None:
    response = post(client, form(api_key, description="灯" * 30000), fmt=fmt)
    assert response.status_code == 413
    assert errors_of(response, fmt) == [(413, "request body larger than 65536 bytes")]
    assert tickets() == []


def test_a_body_over_64_kb_without_a_length_is_413(client: FlaskClient, world: World, api_key: str) -> None:
    body = ("api_key=" + api_key + "&description=" + "x" * 70000).encode()
    response = client.post(f"{URL}/requests.json", input_stream=io.BytesIO(body),
                           content_type="application/x-www-form-urlencoded",
                           environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 413 and errors_of(response, "json")[0][0] == 413


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "application/xml"])
def test_a_body_that_is_not_a_form_is_415(client: FlaskClient, world: World, api_key: str,
                                          content_type: str) -> None:
    response = client.post(f"{URL}/requests.xml", data=json.dumps(form(api_key)), content_type=content_type)
    assert response.status_code == 415
    assert "application/x-www-form-urlencoded" in errors_of(response, "xml")[0][1]


def test_an_empty_post_needs_no_content_type_and_is_403(client: FlaskClient, world: World) -> None:
    response = client.post(f"{URL}/requests.json")
    assert response.status_code == 403 and errors_of(response, "json")[0][0] == 403


def test_the_post_sets_no_cookie(client: FlaskClient, world: World, api_key: str) -> None:
    assert "Set-Cookie" not in post(client, form(api_key)).headers


# --- the request's fields ------------------------------------------------------

def test_an_unknown_jurisdiction_is_404_and_a_known_one_files(client: FlaskClient, world: World,
                                                              api_key: str) -> None:
    response = post(client, form(api_key, jurisdiction_id="nowhere"))
    assert response.status_code == 404 and errors_of(response, "json") == [
        (404, "jurisdiction_id 'nowhere' was not found")]
    assert post(client, form(api_key, jurisdiction_id="ST01")).status_code == 201


@pytest.mark.parametrize("code, status, message", [
    (None, 400, "service_code was not provided"),
    ("repair.unicorns", 404, "service_code 'repair.unicorns' was not found"),
])
def test_a_missing_or_unknown_service_code_is_refused(client: FlaskClient, world: World, api_key: str,
                                                      code: str | None, status: int, message: str) -> None:
    response = post(client, form(api_key, service_code=code), fmt="xml")
    assert response.status_code == status and errors_of(response, "xml") == [(status, message)]


def test_every_problem_is_named_at_once(client: FlaskClient, world: World, api_key: str) -> None:
    response = post(client, form(api_key, description=" ", phone="12345", address_string="火星"))
    assert response.status_code == 400
    assert [d for _, d in errors_of(response, "json")] == [
        "description is required: what is wrong, and where",
        "phone is not a mainland mobile number (11 digits, e.g. 13812345678)",
        NO_PLACE,
    ]


def test_a_missing_phone_is_named(client: FlaskClient, world: World, api_key: str) -> None:
    response = post(client, form(api_key, phone=None))
    assert errors_of(response, "json") == [
        (400, "phone is required: the requester's mainland mobile number, e.g. 13812345678")]


@pytest.mark.parametrize("fields, message", [
    ({"description": "灯" * 2001}, "description: Please keep the description under 2000 characters."),
    ({"first_name": "名" * 20, "last_name": "姓" * 20}, "first_name/last_name: The name is too long."),
    ({"email": "not-an-address"}, "email is not an e-mail address"),
    ({"media_url": "javascript:alert(1)"}, "media_url must be an http(s) URL of at most 1000 characters"),
    ({"device_id": "d" * 101}, "device_id may be at most 100 characters"),
])
def test_fields_intake_or_the_channel_refuse_are_named_in_english(
    client: FlaskClient, world: World, api_key: str, fields: dict[str, Any], message: str,
) -> None:
    response = post(client, form(api_key, **fields))
    assert response.status_code == 400 and errors_of(response, "json") == [(400, message)]
    assert tickets() == []


def test_markup_in_the_description_comes_back_escaped(client: FlaskClient, world: World, api_key: str) -> None:
    hostile = "<request><status>closed</status></request>]]>&amp;<!-- x -->"
    number = json_of(post(client, form(api_key, description=hostile)))[0]["service_request_id"]
    response = client.get(f"{URL}/requests/{number}.xml")
    root = xml_of(response)
    assert tags(root) == ["request"] and root[0].findtext("status") == "open"
    assert root[0].findtext("description") == hostile
    assert b"<status>closed" not in response.data
    assert json_of(client.get(f"{URL}/requests/{number}.json"))[0]["description"] == hostile


# --- attributes ----------------------------------------------------------------

def raw_form(key: str, field: str, escaped: str) -> str:
    """A complete url-encoded POST whose `field` is the percent-escaped bytes `escaped`."""
    return urlencode(form(key, **{field: "MARK"})).replace("MARK", escaped)


@pytest.mark.parametrize("field", ["description", "address_string", "first_name", "last_name", "phone", "email"])
def test_invalid_utf8_in_a_field_is_400_naming_it(client: FlaskClient, world: World, api_key: str,
                                                  field: str) -> None:
    response = post(client, raw_form(api_key, field, "%FF%FE%FD"), content_type=FORM_TYPE)
    assert response.status_code == 400
    assert errors_of(response, "json") == [(400, f"{field} is not valid UTF-8")]
    assert tickets() == []


@pytest.mark.parametrize("field", ["description", "address_string", "first_name", "phone", "device_id"])
def test_a_nul_byte_in_a_field_is_400_naming_it(client: FlaskClient, world: World, api_key: str,
                                                field: str) -> None:
    response = post(client, raw_form(api_key, field, "%E6%A5%BC%00%E9%81%93"), content_type=FORM_TYPE)
    assert response.status_code == 400
    assert errors_of(response, "json") == [(400, f"{field} contains a NUL byte")]
    assert tickets() == []


def test_invalid_utf8_in_a_multipart_field_is_400_naming_it(client: FlaskClient, world: World,
                                                            api_key: str) -> None:
    parts = [(name.encode(), value.encode()) for name, value in form(api_key, description=None).items()]
    parts.append((b"description", b"\xe6\xa5\xbc\xff\xfe\xfd"))
    body = b"".join(b'--B\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % part for part in parts)
    response = post(client, body + b"--B--\r\n", content_type="multipart/form-data; boundary=B")
    assert response.status_code == 400
    assert errors_of(response, "json") == [(400, "description is not valid UTF-8")]
    assert tickets() == []


def test_invalid_utf8_in_the_query_string_of_a_post_is_400_naming_it(client: FlaskClient, world: World,
                                                                     api_key: str) -> None:
    response = client.post(f"{URL}/requests.json?last_name=%FF", data=form(api_key, last_name=None))
    assert response.status_code == 400
    assert errors_of(response, "json") == [(400, "last_name is not valid UTF-8")]


def test_text_that_is_not_valid_is_checked_after_the_key(client: FlaskClient, world: World) -> None:
    response = post(client, raw_form("not-a-key", "description", "%FF"), content_type=FORM_TYPE)
    assert response.status_code == 403


def test_a_sent_replacement_character_is_text_like_any_other(client: FlaskClient, world: World,
                                                             api_key: str) -> None:
    ticket = filed(post(client, raw_form(api_key, "description", "%E6%A5%BC%EF%BF%BD"), content_type=FORM_TYPE))
    assert ticket.description == "楼\ufffd"


def test_attributes_are_checked_and_kept_by_code(client: FlaskClient, world: World, api_key: str) -> None:
    with_attributes()
    ticket = filed(post(client, {
        **form(api_key), "attribute[side]": "s", "attribute[floor]": "3", "attribute[parts][]": ["bulb", "switch"],
        "attribute[seen]": "2026-11-17T20:00:00Z", "attribute[unknown]": "ignored",
    }))
    answers = {k: v for k, v in ticket.extra.items() if k != "_open311"}
    assert answers == {"side": "s", "floor": 3, "parts": ["bulb", "switch"], "seen": "2026-11-18T04:00:00+08:00"}


@pytest.mark.parametrize("attributes, message", [
    ({}, "attribute[side] is required"),
    ({"attribute[side]": "east"}, "attribute[side] must be one of the keys of its values list"),
    ({"attribute[side]": ["n", "s"]}, "attribute[side] takes one value"),
    ({"attribute[side]": "n", "attribute[floor]": "three"}, "attribute[floor] is not a valid number"),
    ({"attribute[side]": "n", "attribute[parts][]": ["bulb", "fuse"]},
     "attribute[parts] must be keys of its values list"),
    ({"attribute[side]": "n", "attribute[seen]": "last week"}, "attribute[seen] is not a valid datetime"),
])
def test_attribute_answers_that_do_not_fit_their_definition_are_400(
    client: FlaskClient, world: World, api_key: str, attributes: dict[str, Any], message: str,
) -> None:
    with_attributes()
    response = post(client, {**form(api_key), **attributes}, fmt="xml")
    assert response.status_code == 400 and errors_of(response, "xml") == [(400, message)]
    assert tickets() == []


@pytest.mark.redis
def test_with_redis_the_keys_limit_is_counted_in_redis(redis_app: Flask, world: World, api_key: str,
                                                       redis_conn: Any) -> None:
    redis_app.config["RATE_LIMITS"] = dict(redis_app.config["RATE_LIMITS"], open311_key=(1, 60))
    client = redis_app.test_client()
    assert post(client, form(api_key)).status_code == 201
    response = post(client, form(api_key), fmt="xml")
    assert response.status_code == 429 and errors_of(response, "xml")[0][0] == 429
    assert redis_conn.keys("minhu:rl:open311_key:*")
    assert len(tickets()) == 1
