"""The staff JSON API (/api/v1): token auth, filing, reading, revealing, listing, acting."""
from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.factories import PHONE, T0, World, advance, make_ticket
from ticketing.extensions import db
from ticketing.models import ApiKey, KeyKind, RevealLog, Status, Ticket, TicketEvent, User, utcnow
from ticketing.services import apikeys, patrol
from ticketing.services.errors import InvalidInput
from ticketing.services.lifecycle import TRANSITIONS
from ticketing.services.photos import PhotoStore

URL = "/api/v1"


class Api:
    """A client that sends one staff key with every request."""

    def __init__(self, client: FlaskClient, key: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {key}"}

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(URL + path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        if body is not None:
            kwargs.setdefault("json", body)
        return self.client.post(URL + path, headers=headers, **kwargs)


def issue_key(user: User, name: str = "test app") -> str:
    _row, key = apikeys.issue(KeyKind.STAFF, name, T0, user=user)
    return key


@pytest.fixture()
def api_as(client: FlaskClient) -> Callable[[User], Api]:
    """`api_as(world.dora)`: the API, acting as that persona."""
    return lambda user: Api(client, issue_key(user))


def new_ticket(world: World, **changes: Any) -> dict[str, Any]:
    body = {"description": "3号楼楼道灯不亮", "phone": PHONE, "name": "李四", "category": "repair.stair_light",
            "building_id": world.building_courtyard.id, "unit_room": "2单元301"}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def ticket_count() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Ticket)) or 0


def error_code(response: Any) -> str:
    return str(response.get_json()["error"]["code"])


# --- Auth ----------------------------------------------------------------------------


def test_a_request_without_a_key_is_401_with_a_bearer_challenge(client: FlaskClient, world: World) -> None:
    response = client.get(f"{URL}/me")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert error_code(response) == "unauthorized"


def test_a_wrong_key_is_401(client: FlaskClient, world: World) -> None:
    response = Api(client, "mhs_not-a-key").get("/me")
    assert response.status_code == 401 and 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_revoked_key_is_401(client: FlaskClient, world: World) -> None:
    key = issue_key(world.dora)
    apikeys.revoke(db.session.scalars(select(ApiKey)).one(), T0)
    assert Api(client, key).get("/me").status_code == 401


def test_the_key_of_an_inactive_account_is_401(client: FlaskClient, world: World) -> None:
    key = issue_key(world.dora)
    world.dora.active = False
    db.session.commit()
    assert Api(client, key).get("/me").status_code == 401


def test_an_open311_key_is_not_a_staff_key(client: FlaskClient, world: World) -> None:
    _row, key = apikeys.issue(KeyKind.OPEN311, "an app", T0)
    assert Api(client, key).get("/me").status_code == 401


def test_me_names_the_account_the_key_acts_as(api_as: Callable[[User], Api], world: World) -> None:
    body = api_as(world.gina).get("/me").get_json()
    assert body["username"] == "gina" and body["role"] == "grid_worker"
    assert body["grid_ids"] == [world.grid_a1.id] and body["channels"] == ["wechat_group", "patrol"]
    assert body["key"]["prefix"].startswith("mhs_")


def test_the_openapi_document_needs_no_key(client: FlaskClient, world: World) -> None:
    response = client.get(f"{URL}/openapi.json")
    assert response.status_code == 200 and response.get_json()["openapi"].startswith("3.1")


# --- Reference data ----------------------------------------------------------------------


def test_categories_are_the_leaves_with_their_group(api_as: Callable[[User], Api], world: World) -> None:
    categories = api_as(world.dora).get("/categories").get_json()["categories"]
    light = next(c for c in categories if c["code"] == "repair.stair_light")
    assert light["group"]["code"] == "repair" and light["tier"] == "general"


def test_places_are_the_dispatchers_community_whole(api_as: Callable[[User], Api], world: World) -> None:
    [community] = api_as(world.dora).get("/places").get_json()["communities"]
    assert community["id"] == world.community_a.id
    complexes = {cx["name"]: cx for grid in community["grids"] for cx in grid["complexes"]}
    assert complexes["红星小区"]["managed"] and complexes["红星小区"]["buildings"][0]["name"] == "3号楼"


# --- Filing ---------------------------------------------------------------------------


def test_a_dispatcher_files_a_walk_in_ticket(api_as: Callable[[User], Api], world: World) -> None:
    response = api_as(world.dora).post("/tickets", new_ticket(world, channel="walk_in"))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert response.headers["Location"] == f"{URL}/tickets/{body['number']}" == body["url"]
    ticket = db.session.scalars(select(Ticket)).one()
    assert (ticket.channel, ticket.created_by_id, ticket.unit_room) == ("walk_in", world.dora.id, "2单元301")


def test_the_default_channel_of_a_dispatcher_is_the_service_hall(api_as: Callable[[User], Api], world: World) -> None:
    assert api_as(world.dora).post("/tickets", new_ticket(world)).status_code == 201
    assert db.session.scalars(select(Ticket.channel)).one() == "service_hall"


def test_a_category_may_be_given_by_id(api_as: Callable[[User], Api], world: World) -> None:
    body = new_ticket(world, category=world.category("repair.water_leak").id)
    assert api_as(world.dora).post("/tickets", body).status_code == 201


def test_the_same_external_id_again_returns_the_first_ticket_with_200(api_as: Callable[[User], Api], world: World) -> None:
    api = api_as(world.dora)
    first = api.post("/tickets", new_ticket(world, external_id="app-0001"))
    again = api.post("/tickets", new_ticket(world, external_id="app-0001", description="又报一次"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["number"] == first.get_json()["number"] and not again.get_json()["created"]
    assert ticket_count() == 1
    assert db.session.scalars(select(Ticket.external_id)).one() == f"app-0001@{world.dora.id}"


def test_the_idempotency_key_header_works_like_external_id(api_as: Callable[[User], Api], world: World) -> None:
    api = api_as(world.dora)
    headers = {"Idempotency-Key": "6f1c2d3e-0000-4000-8000-000000000001"}
    assert api.post("/tickets", new_ticket(world), headers=headers).status_code == 201
    assert api.post("/tickets", new_ticket(world), headers=headers).status_code == 200
    assert ticket_count() == 1


def test_an_external_id_that_differs_from_the_header_is_422(api_as: Callable[[User], Api], world: World) -> None:
    response = api_as(world.dora).post("/tickets", new_ticket(world, external_id="a"),
                                       headers={"Idempotency-Key": "b"})
    assert response.status_code == 422 and "external_id" in response.get_json()["errors"]


def test_another_account_with_the_same_key_files_its_own_ticket(api_as: Callable[[User], Api], world: World) -> None:
    mine = api_as(world.dora).post("/tickets", new_ticket(world, external_id="k1")).get_json()
    theirs = api_as(world.adam).post("/tickets", new_ticket(world, external_id="k1"))
    assert theirs.status_code == 201 and theirs.get_json()["number"] != mine["number"]


def test_invalid_fields_are_422_with_a_message_each(api_as: Callable[[User], Api], world: World) -> None:
    response = api_as(world.dora).post("/tickets", new_ticket(
        world, phone="12345", description="   ", category="no.such", surname="x"))
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"]["code"] == "validation_failed"
    # Every field of the wrong shape at once; intake is not asked about the rest.
    assert set(body["errors"]) == {"surname", "phone", "description"}
    response = api_as(world.dora).post("/tickets", new_ticket(world, category="no.such", building_id=99999))
    assert set(response.get_json()["errors"]) == {"category", "building_id"}  # what intake finds, at once too
    assert ticket_count() == 0


def test_fields_of_the_wrong_type_are_422(api_as: Callable[[User], Api], world: World) -> None:
    response = api_as(world.dora).post("/tickets", new_ticket(
        world, building_id="3", lat=True, description=["x"], external_id="with space"))
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"building_id", "lat", "description", "external_id"}


def test_a_body_that_is_not_json_is_415(api_as: Callable[[User], Api], world: World) -> None:
    response = api_as(world.dora).post("/tickets", data="description=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415 and error_code(response) == "unsupported_media_type"


@pytest.mark.parametrize("raw", [b"{", b'{"lat": NaN}', b"[1, 2]", b"\xff\xfe", b"[" * 60000])
def test_a_malformed_body_is_400(api_as: Callable[[User], Api], world: World, raw: bytes) -> None:
    response = api_as(world.dora).post("/tickets", data=raw, content_type="application/json")
    assert response.status_code == 400 and error_code(response) == "bad_request"


def test_a_huge_body_is_413(api_as: Callable[[User], Api], world: World) -> None:
    response = api_as(world.dora).post("/tickets", new_ticket(world, description="x" * 70000))
    assert response.status_code == 413 and error_code(response) == "payload_too_large"
    assert ticket_count() == 0


def test_a_grid_worker_files_a_patrol_ticket_with_their_own_phone(api_as: Callable[[User], Api], world: World) -> None:
    world.gina.phone = "13900001111"
    db.session.commit()
    body = {"description": "楼道堆放杂物", "category": "safety.fire_exit", "building_id": world.building_courtyard.id}
    assert api_as(world.gina).post("/tickets", body).status_code == 201
    ticket = db.session.scalars(select(Ticket)).one()
    assert (ticket.channel, ticket.requester_phone, ticket.requester_name) == ("patrol", "13900001111", "Gina")


def test_a_patrol_ticket_the_worker_cannot_take_is_not_stored(
    api_as: Callable[[User], Api], world: World, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Filed and made the worker's in one transaction: a refusal stores nothing."""
    def refused(ticket: Ticket, *args: object) -> list[TicketEvent]:
        ticket.status = Status.DISPATCHED
        raise InvalidInput("That person cannot handle tickets.", field="handler")

    monkeypatch.setattr(patrol, "own_report", refused)
    body = {"description": "楼道堆放杂物", "category": "safety.fire_exit", "phone": PHONE,
            "building_id": world.building_courtyard.id}
    response = api_as(world.gina).post("/tickets", body)
    assert response.status_code == 422 and ticket_count() == 0
    assert db.session.scalars(select(TicketEvent)).all() == []


def test_a_patrol_report_with_a_location_is_placed_in_the_grid_around_it(api_as: Callable[[User], Api], world: World) -> None:
    square = [[[116.0, 39.0], [116.1, 39.0], [116.1, 39.1], [116.0, 39.1], [116.0, 39.0]]]
    world.grid_a2.boundary = json.dumps({"type": "Polygon", "coordinates": square})
    db.session.commit()
    body = {"description": "路灯不亮", "category": "repair.stair_light", "phone": PHONE, "lat": 39.05, "lon": 116.05}
    assert api_as(world.gina).post("/tickets", body).status_code == 201
    ticket = db.session.scalars(select(Ticket)).one()
    assert (ticket.grid_id, ticket.lat) == (world.grid_a2.id, 39.05)


def test_a_grid_worker_may_not_file_walk_in_tickets(api_as: Callable[[User], Api], world: World) -> None:
    response = api_as(world.gina).post("/tickets", new_ticket(world, channel="walk_in"))
    assert response.status_code == 403 and ticket_count() == 0


def test_a_supervisor_may_not_file_tickets(api_as: Callable[[User], Api], world: World) -> None:
    assert api_as(world.sam).post("/tickets", new_ticket(world)).status_code == 403


def test_a_dispatcher_may_not_file_in_another_community(api_as: Callable[[User], Api], world: World) -> None:
    response = api_as(world.dora).post("/tickets", new_ticket(world, building_id=world.building_east.id))
    assert response.status_code == 422 and set(response.get_json()["errors"]) == {"building_id"}
    assert ticket_count() == 0


def test_a_grid_given_alone_places_the_ticket_in_its_community(api_as: Callable[[User], Api], world: World) -> None:
    body = new_ticket(world, building_id=None, grid_id=world.grid_a2.id)
    assert api_as(world.dora).post("/tickets", body).status_code == 201
    ticket = db.session.scalars(select(Ticket)).one()
    assert (ticket.community_id, ticket.grid_id) == (world.community_a.id, world.grid_a2.id)


# --- Reading and revealing ----------------------------------------------------------------


def test_a_ticket_shows_masked_personal_data(api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    response = api_as(world.dora).get(f"/tickets/{ticket.number}")
    body = response.get_json()
    assert response.status_code == 200 and response.headers["ETag"] == f'"{body["version"]}"'
    assert body["requester"] == {"name": "张**", "phone": "138****5678", "revealed": False}
    assert body["place"]["unit_room"] == "***" and body["place"]["building"]["id"] == world.building_courtyard.id
    assert PHONE not in response.get_data(as_text=True)
    assert body["can_reveal"] and "dispatch" in body["actions"]
    assert [e["action"] for e in body["events"]] == ["submit"]


def test_the_timeline_includes_internal_notes(api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    api = api_as(world.gina)
    api.post(f"/tickets/{ticket.number}/transitions", {"action": "note", "note": "钥匙在门卫"})
    events = api.get(f"/tickets/{ticket.number}").get_json()["events"]
    assert events[-1]["note"] == "钥匙在门卫" and events[-1]["public"] is False
    assert events[1]["action"] == "dispatch" and events[1]["to"] == "Gina"


def test_a_ticket_outside_the_scope_is_404(api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, building=world.building_east)
    response = api_as(world.dora).get(f"/tickets/{ticket.number}")
    assert response.status_code == 404 and error_code(response) == "not_found"


@pytest.mark.parametrize("number", ["x" * 21, "261118%000001", "261118-0001%2F..", "%E2%80%8B"])
def test_a_malformed_number_is_404(api_as: Callable[[User], Api], world: World, number: str) -> None:
    assert api_as(world.dora).get(f"/tickets/{number}").status_code == 404


def reveal_logs() -> list[RevealLog]:
    db.session.expire_all()
    return list(db.session.scalars(select(RevealLog)))


def test_reveal_logs_once_and_shows_the_whole_phone(api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    response = api_as(world.dora).post(f"/tickets/{ticket.number}/reveal")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert response.get_json()["requester"] == {"name": "张三丰", "phone": PHONE, "revealed": True}
    [entry] = reveal_logs()
    assert (entry.user_id, entry.ticket_id, entry.purpose) == (world.dora.id, ticket.id, "view")


def test_a_grid_worker_who_is_not_the_handler_cannot_reveal(api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    response = api_as(world.gina).post(f"/tickets/{ticket.number}/reveal")
    assert response.status_code == 403 and reveal_logs() == []


def test_reveal_outside_the_scope_is_404(api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, building=world.building_east)
    assert api_as(world.dora).post(f"/tickets/{ticket.number}/reveal").status_code == 404
    assert reveal_logs() == []


# --- Listing ------------------------------------------------------------------------------


def numbers(response: Any) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [t["number"] for t in response.get_json()["tickets"]]


def test_the_list_holds_only_tickets_in_scope_newest_first(api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    a1 = make_ticket(world, store)
    make_ticket(world, store, building=world.building_east)
    a2 = make_ticket(world, store, building=world.building_west)
    assert numbers(api_as(world.dora).get("/tickets")) == [a2.number, a1.number]
    assert numbers(api_as(world.gina).get("/tickets")) == [a1.number]


def test_the_list_filters_by_status_repeated_or_with_commas(api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    submitted = make_ticket(world, store)
    accepted = advance(make_ticket(world, store), "accepted", world)
    resolved = advance(make_ticket(world, store), "resolved", world)
    api = api_as(world.dora)
    assert numbers(api.get("/tickets?status=accepted")) == [accepted.number]
    assert numbers(api.get("/tickets?status=submitted&status=resolved")) == [resolved.number, submitted.number]
    assert numbers(api.get("/tickets?status=submitted,resolved")) == [resolved.number, submitted.number]


def test_the_list_filters_by_place_category_assignee_and_number(api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    light = advance(make_ticket(world, store), "accepted", world)
    leak = make_ticket(world, store, building=world.building_west, category="repair.water_leak")
    api = api_as(world.dora)
    assert numbers(api.get(f"/tickets?grid_id={world.grid_a2.id}")) == [leak.number]
    assert numbers(api.get(f"/tickets?community_id={world.community_b.id}")) == []
    assert numbers(api.get("/tickets?category=repair.water_leak")) == [leak.number]
    assert numbers(api.get("/tickets?category=repair")) == [leak.number, light.number]
    assert numbers(api.get(f"/tickets?q={light.number}")) == [light.number]
    assert numbers(api.get(f"/tickets?q={light.number[:6]}")) == [leak.number, light.number]
    assert numbers(api.get(f"/tickets?q={light.number[:7]}")) == [leak.number, light.number]
    assert numbers(api.get("/tickets?q=991231")) == []
    assert numbers(api_as(world.gina).get("/tickets?assignee=me")) == [light.number]
    assert numbers(api.get("/tickets?assignee=me")) == []


def test_the_list_filters_by_overdue_and_time_received(api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    early = advance(make_ticket(world, store, now=T0 - timedelta(days=30)), "dispatched", world, now=T0 - timedelta(days=30))
    late = make_ticket(world, store)
    api = api_as(world.dora)
    assert numbers(api.get("/tickets?overdue=true")) == [early.number]
    assert numbers(api.get("/tickets?overdue=false")) == [late.number]
    after = (T0 - timedelta(days=1)).isoformat()
    assert numbers(api.get("/tickets", query_string={"created_after": after})) == [late.number]
    assert numbers(api.get("/tickets", query_string={"created_before": after})) == [early.number]


def test_pages_follow_the_cursor_without_gaps_or_repeats(api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    made = [make_ticket(world, store).number for _ in range(5)]
    api = api_as(world.dora)
    seen, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = api.get("/tickets", query_string=query).get_json()
        seen += [t["number"] for t in body["tickets"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == made[::-1]


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "status=open", "overdue=yes",
                                   "created_after=2026-11-18T10:00:00", "cursor=abc", "category=no.such",
                                   "grid_id=99999999999999", "q=%00"])
def test_bad_list_parameters_are_422(api_as: Callable[[User], Api], world: World, query: str) -> None:
    response = api_as(world.dora).get(f"/tickets?{query}")
    assert response.status_code == 422 and query.split("=")[0] in response.get_json()["errors"]


# --- Transitions ----------------------------------------------------------------------------


def act(api: Api, ticket: Ticket, action: str, **fields: Any) -> Any:
    return api.post(f"/tickets/{ticket.number}/transitions", {"action": action, **fields})


def status_of(ticket: Ticket) -> str:
    db.session.expire_all()
    return db.session.get(Ticket, ticket.id).status  # type: ignore[union-attr]


def test_a_dispatcher_dispatches_to_a_grid_worker(api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    response = act(api_as(world.dora), ticket, "dispatch", handler=f"user:{world.gina.id}", note="请尽快")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "dispatched" and body["handler"]["assignee"]["id"] == world.gina.id
    assert body["routing"]["rule"] == "manual" and body["accept_due_at"] is not None


def test_a_grid_worker_accepts_and_resolves(api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "dispatched", world)
    api = api_as(world.gina)
    accepted = act(api, ticket, "accept").get_json()
    assert accepted["status"] == "accepted" and "resolve" in accepted["actions"]
    resolved = act(api, ticket, "resolve", note="已更换灯泡", version=accepted["version"])
    assert resolved.status_code == 200 and resolved.get_json()["result_note"] == "已更换灯泡"
    assert status_of(ticket) == Status.RESOLVED


def test_an_action_the_state_does_not_allow_is_409(api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    response = act(api_as(world.gina), ticket, "accept")
    assert response.status_code == 409 and error_code(response) == "illegal_transition"


def test_an_action_the_account_may_not_take_is_403(api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    response = act(api_as(world.gina), ticket, "dispatch", handler=f"user:{world.gina.id}")
    assert response.status_code == 403 and status_of(ticket) == Status.SUBMITTED


def test_a_missing_note_or_handler_is_422_on_that_field(api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    response = act(api_as(world.gina), ticket, "resolve")
    assert response.status_code == 422 and set(response.get_json()["errors"]) == {"note"}
    other = make_ticket(world, store)
    response = act(api_as(world.dora), other, "dispatch", handler="user:99999")
    assert response.status_code == 422 and set(response.get_json()["errors"]) == {"handler"}
    assert status_of(other) == Status.SUBMITTED


def test_property_staff_of_a_company_that_does_not_manage_the_complex_are_422(
        api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)  # 槐树院, self-managed: pete's company has nothing to do there
    response = act(api_as(world.dora), ticket, "dispatch", handler=f"user:{world.pete.id}")
    assert response.status_code == 422 and set(response.get_json()["errors"]) == {"handler"}
    db.session.expire_all()
    unchanged = db.session.get(Ticket, ticket.id)
    assert (unchanged.status, unchanged.assignee_id, unchanged.company_id) == (Status.SUBMITTED, None, None)
    assert [e.action for e in unchanged.events] == ["submit"]


def test_property_staff_of_the_managing_company_may_be_dispatched(
        api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, building=world.building_managed)
    response = act(api_as(world.dora), ticket, "dispatch", handler=f"user:{world.pete.id}")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["handler"]["assignee"]["id"] == world.pete.id


def test_a_team_of_another_community_is_422(api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, building=world.building_east, category="elderly.help")  # community B
    response = act(api_as(world.dan), ticket, "dispatch", handler=f"team:{world.volunteers.id}")
    assert response.status_code == 422 and set(response.get_json()["errors"]) == {"handler"}
    assert status_of(ticket) == Status.SUBMITTED


def test_inputs_of_other_actions_are_refused(api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "dispatched", world)
    response = act(api_as(world.gina), ticket, "accept", handler=f"user:{world.gina.id}")
    assert response.status_code == 422 and set(response.get_json()["errors"]) == {"handler"}
    assert status_of(ticket) == Status.DISPATCHED


def test_an_unknown_action_is_422(api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    assert act(api_as(world.dora), ticket, "rate").status_code == 422  # the resident's, not staff's


def test_a_stale_version_is_409_and_changes_nothing(api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "dispatched", world)
    stale = ticket.version - 1
    response = act(api_as(world.gina), ticket, "accept", version=stale)
    assert response.status_code == 409 and error_code(response) == "version_mismatch"
    assert status_of(ticket) == Status.DISPATCHED


def test_if_match_carries_the_version_too(api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "dispatched", world)
    api = api_as(world.gina)
    etag = api.get(f"/tickets/{ticket.number}").headers["ETag"]
    stale = api.post(f"/tickets/{ticket.number}/transitions", {"action": "accept"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 409
    fresh = api.post(f"/tickets/{ticket.number}/transitions", {"action": "accept"}, headers={"If-Match": etag})
    assert fresh.status_code == 200 and status_of(ticket) == Status.ACCEPTED


def test_a_change_by_someone_else_at_the_same_moment_is_409(
    api_as: Callable[[User], Api], world: World, store: PhotoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ticketing.api import staff
    from ticketing.services.errors import Conflict

    ticket = advance(make_ticket(world, store), "dispatched", world)

    def lost_the_race(*args: Any, **kwargs: Any) -> None:
        raise Conflict("reload")

    monkeypatch.setattr(staff, "perform", lost_the_race)
    response = act(api_as(world.gina), ticket, "accept")
    assert response.status_code == 409 and error_code(response) == "conflict"


def test_a_dispatcher_merges_a_duplicate_by_number(api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    keep, dup = make_ticket(world, store), make_ticket(world, store)
    body = act(api_as(world.dora), dup, "merge", target=keep.number).get_json()
    assert body["status"] == "merged" and body["merged_into"] == keep.number
    assert api_as(world.dora).get(f"/tickets/{keep.number}").get_json()["duplicates"] == [dup.number]
    outside = make_ticket(world, store, building=world.building_east)
    response = act(api_as(world.dora), keep, "merge", target=outside.number)
    assert response.status_code == 422 and set(response.get_json()["errors"]) == {"target"}


def test_a_supervisor_sets_a_new_deadline(api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    deadline = (utcnow() + timedelta(days=3)).replace(microsecond=0)
    response = act(api_as(world.sam), ticket, "extend", note="需要采购配件", deadline=deadline.isoformat())
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["resolve_due_at"] == deadline.isoformat().replace("+00:00", "Z")
    naive = act(api_as(world.sam), ticket, "extend", note="x", deadline="2030-01-01T10:00:00")
    assert naive.status_code == 422 and set(naive.get_json()["errors"]) == {"deadline"}


def test_a_public_note_is_public(api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    act(api_as(world.dora), ticket, "note", note="已联系居民", public=True)
    event = db.session.scalars(select(TicketEvent).where(TicketEvent.action == "note")).one()
    assert event.public


@pytest.mark.skipif("recategorize" not in TRANSITIONS, reason="no recategorize action in the state machine")
def test_a_dispatcher_changes_the_category(api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    body = act(api_as(world.dora), ticket, "recategorize", category="repair.water_leak").get_json()
    assert body["category"]["code"] == "repair.water_leak"
    response = act(api_as(world.dora), ticket, "recategorize", category="no.such")
    assert response.status_code == 422 and set(response.get_json()["errors"]) == {"category"}


def test_transitions_need_a_json_body(api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    response = api_as(world.dora).post(f"/tickets/{ticket.number}/transitions", data="action=accept")
    assert response.status_code == 415


# --- Errors are JSON everywhere -----------------------------------------------------------------


def test_an_unknown_path_under_the_api_is_a_json_404(api_as: Callable[[User], Api], world: World) -> None:
    response = api_as(world.dora).get("/nothing/here")
    assert response.status_code == 404 and response.mimetype == "application/json"


def test_a_wrong_method_is_a_json_405_naming_the_allowed_ones(api_as: Callable[[User], Api], world: World) -> None:
    response = api_as(world.dora).client.delete(f"{URL}/tickets")
    assert response.status_code == 405 and error_code(response) == "method_not_allowed"
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_the_county_centre_api_keeps_its_own_errors(client: FlaskClient, world: World) -> None:
    response = client.post(f"{URL}/upstream/orders", data=b"{}", content_type="application/json")
    assert response.status_code == 401 and "error" in response.get_json()
    assert not isinstance(response.get_json()["error"], dict)


def test_an_unexpected_failure_is_a_json_500_that_saves_nothing(
    api_as: Callable[[User], Api], world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ticketing.api import serialize

    monkeypatch.setattr(serialize, "me", lambda *args: 1 / 0)
    response = api_as(world.dora).get("/me")
    assert response.status_code == 500 and error_code(response) == "server_error"
    assert "ZeroDivision" not in response.get_data(as_text=True)


# --- The CLI ----------------------------------------------------------------------------------


def test_create_token_prints_a_key_that_works_once(ctx: Flask, client: FlaskClient, world: World) -> None:
    result = ctx.test_cli_runner().invoke(args=["api", "create-token", "dora", "--name", "station tablet"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[-1]
    assert Api(client, key).get("/me").get_json()["username"] == "dora"
    listing = ctx.test_cli_runner().invoke(args=["api", "tokens"])
    assert "station tablet" in listing.output and key not in listing.output


def test_revoke_token_stops_the_key(ctx: Flask, client: FlaskClient, world: World) -> None:
    key = issue_key(world.dora)
    row_id = db.session.scalars(select(ApiKey.id)).one()
    result = ctx.test_cli_runner().invoke(args=["api", "revoke-token", str(row_id)])
    assert result.exit_code == 0, result.output
    assert Api(client, key).get("/me").status_code == 401


def test_create_token_refuses_an_unknown_account(ctx: Flask, world: World) -> None:
    result = ctx.test_cli_runner().invoke(args=["api", "create-token", "nobody", "--name", "x"])
    assert result.exit_code != 0 and "nobody" in result.output


def test_json_bodies_keep_chinese_readable(api_as: Callable[[User], Api], world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    raw = api_as(world.dora).get(f"/tickets/{ticket.number}").get_data()
    assert "楼道灯".encode() in raw and json.loads(raw)["number"] == ticket.number


# --- the per-process cache of keys, categories and places (services/refcache.py) ---


def count_statements(action: Callable[[], Any]) -> tuple[Any, list[str]]:
    """Run `action`; return its result and the SQL statements it sent."""
    from sqlalchemy import event

    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        return action(), seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def test_a_second_ticket_reads_key_category_and_building_from_the_cache(
        api_as: Callable[[User], Api], world: World) -> None:
    api = api_as(world.dora)
    assert api.post("/tickets", new_ticket(world, external_id="first")).status_code == 201
    response, statements = count_statements(lambda: api.post("/tickets", new_ticket(world, external_id="second")))
    assert response.status_code == 201
    looked_up = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    for table in ("api_keys", "categories", "buildings"):
        assert not any(f"FROM {table}" in s for s in looked_up), table
    assert ticket_count() == 2


def test_a_key_revoked_by_another_process_stops_working_at_once(
        client: FlaskClient, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import update

    from ticketing.services import refcache

    monkeypatch.setattr(refcache, "clock", lambda: 0.0)  # the cached key never goes stale
    key = issue_key(world.dora)
    assert Api(client, key).get("/me").status_code == 200
    # Another process revokes it with SQL of its own: this process's ORM never sees the change.
    with db.engine.begin() as conn:
        conn.execute(update(ApiKey).values(revoked_at=utcnow()))
    assert Api(client, key).get("/me").status_code == 401


def test_a_role_changed_by_another_process_counts_at_once(
        client: FlaskClient, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import update

    from ticketing.services import refcache

    monkeypatch.setattr(refcache, "clock", lambda: 0.0)
    key = issue_key(world.dora)
    assert Api(client, key).get("/me").get_json()["role"] == "dispatcher"
    with db.engine.begin() as conn:
        conn.execute(update(User).where(User.id == world.dora.id).values(role="supervisor"))
    assert Api(client, key).get("/me").get_json()["role"] == "supervisor"


def test_a_category_deactivated_here_is_refused_at_once(api_as: Callable[[User], Api], world: World) -> None:
    api = api_as(world.dora)
    assert api.post("/tickets", new_ticket(world, external_id="before")).status_code == 201
    world.category("repair.stair_light").active = False
    db.session.commit()
    response = api.post("/tickets", new_ticket(world, external_id="after"))
    assert response.status_code == 422 and set(response.get_json()["errors"]) == {"category"}


def test_a_request_that_changes_a_cached_row_leaves_the_cache_as_it_was(ctx: Flask, world: World) -> None:
    from ticketing.services import refcache

    category = refcache.category("repair.stair_light")
    assert category is not None
    category.name = "改了名字"
    db.session.rollback()
    again = refcache.category("repair.stair_light")
    assert again is not None and again.name == world.category("repair.stair_light").name


def test_a_building_moved_here_is_placed_in_its_new_complex_at_once(
        api_as: Callable[[User], Api], world: World) -> None:
    api = api_as(world.dora)
    moved, courtyard, west = world.building_courtyard, world.building_courtyard.complex, world.building_west.complex
    assert api.post("/tickets", new_ticket(world, external_id="before")).status_code == 201
    moved.complex = west  # in another grid of the same community
    db.session.commit()
    assert api.post("/tickets", new_ticket(world, external_id="after")).status_code == 201
    before, after = db.session.scalars(select(Ticket).order_by(Ticket.id)).all()
    assert (before.complex_id, before.grid_id) == (courtyard.id, world.grid_a1.id)
    assert (after.complex_id, after.grid_id) == (west.id, world.grid_a2.id)
