"""The staff API's OpenAPI document: valid, complete, and true — the API fuzzed against it.

The fuzzing runs schemathesis in-process (WSGI) as dora the dispatcher, with tickets
in several states in the database. It is derandomized (the same cases on every run)
and bounded, so it cannot make the suite flaky or slow.
"""
from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import PHONE, T0, World, advance, make_ticket
from ticketing.api import openapi
from ticketing.models import KeyKind, Status, Ticket
from ticketing.services import apikeys
from ticketing.services.photos import PhotoStore

PREFIX = "/api/v1"
CHECKS = [schemathesis.checks.not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def test_the_document_is_valid_openapi(client: FlaskClient) -> None:
    response = client.get(f"{PREFIX}/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    validate(response.get_json())
    assert response.get_json() == openapi.document()


def flask_routes(app: Flask) -> set[tuple[str, str]]:
    """(path as OpenAPI writes it, method) of every route of the staff API."""
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX + "/") or rule.rule.startswith(PREFIX + "/upstream/"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule.removeprefix(PREFIX))
        routes |= {(path, method.lower()) for method in rule.methods or () if method not in ("HEAD", "OPTIONS")}
    return routes


def test_every_route_is_documented_and_every_documented_route_exists(app: Flask) -> None:
    doc = openapi.document()
    documented = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert flask_routes(app) == documented
    assert doc["servers"] == [{"url": PREFIX}]


def test_the_enums_come_from_the_code(app: Flask) -> None:
    schemas = openapi.document()["components"]["schemas"]
    assert schemas["TicketSummary"]["properties"]["status"]["enum"] == [s.value for s in Status]
    actions = schemas["Transition"]["properties"]["action"]["enum"]
    assert {"accept", "resolve", "dispatch"} <= set(actions) and "rate" not in actions


def test_every_operation_documents_401_and_every_error_is_json(app: Flask) -> None:
    doc = openapi.document()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if path != "/openapi.json":
                assert "401" in op["responses"], (method, path)
    for response in doc["components"]["responses"].values():
        assert list(response["content"]) == ["application/json"]


# --- Fuzzing ------------------------------------------------------------------------------


@dataclass
class FuzzData:
    """What the fuzzer aims at: a dispatcher's key, her tickets, a building of hers."""

    key: str
    numbers: list[str]
    building_id: int


@pytest.fixture()
def fuzz_data(world: World, store: PhotoStore) -> FuzzData:
    """Dora's key; tickets of hers in several states, and one outside her scope."""
    tickets = [
        make_ticket(world, store),
        advance(make_ticket(world, store), "dispatched", world),
        advance(make_ticket(world, store, building=world.building_west), "accepted", world, handler=world.greg),
        advance(make_ticket(world, store), "resolved", world),
        make_ticket(world, store, building=world.building_east),
    ]
    _row, key = apikeys.issue(KeyKind.STAFF, "fuzzer", T0, user=world.dora)
    return FuzzData(key, [t.number for t in tickets], world.building_courtyard.id)


def pick(value: Any, choices: int) -> int:
    """A choice derived from a generated value: the same value, the same choice, on every run."""
    return zlib.crc32(json.dumps(value, sort_keys=True, default=lambda other: None).encode()) % choices


def aim(case: Any, data: FuzzData) -> None:
    """Point most generated requests at real data, so the paths past "not found" are fuzzed too.

    Random ticket numbers become real ones (some stay random); a third of the new-ticket
    bodies get a valid phone, category and building around whatever else was generated (and
    mostly no idempotency key, so they file new tickets); two thirds of the actions keep only
    their note, and half of those become a note, so generated text reaches the timeline too.
    """
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data.key}"}
    number = (case.path_parameters or {}).get("number")
    if number is not None:
        choice = pick((number, case.body), len(data.numbers) + 2)
        if choice < len(data.numbers):
            case.path_parameters["number"] = data.numbers[choice]
    if case.method == "POST" and case.path == "/tickets" and isinstance(case.body, dict) and not pick(case.body, 3):
        dropped = ("channel", "community_id", "complex_id", "grid_id", "external_id")
        kept = {k: v for k, v in case.body.items() if k not in dropped}
        case.body = {**kept, "phone": PHONE, "category": "repair.stair_light", "building_id": data.building_id}
        case.headers.pop("Idempotency-Key", None)
    choice = pick(case.body, 3) if case.path.endswith("/transitions") and isinstance(case.body, dict) else 0
    if choice:
        case.body = {k: v for k, v in case.body.items() if k in ("action", "note")}
        case.headers.pop("If-Match", None)
        if choice == 2 and isinstance(case.body.get("note", ""), str):
            case.body.update(action="note", note=case.body.get("note", "") + " (fuzz)")


# Built from the same function that serves /api/v1/openapi.json (the first test checks they agree);
# one test per operation, each with a fresh database.
schema = schemathesis.openapi.from_dict(openapi.document())


@schema.parametrize()
@settings(max_examples=30, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_the_api_answers_as_documented(case: Any, app: Flask, fuzz_data: FuzzData) -> None:
    aim(case, fuzz_data)
    # Each request gets its own app context, hence its own database session, as in production.
    with app.app_context():
        case.call_and_validate(app=app, checks=CHECKS)


# --- Real answers conform too -----------------------------------------------------------------


def call(app: Flask, key: str, path: str, method: str, **parts: Any) -> Any:
    """One request built by schemathesis from the document, its answer checked against it."""
    case = schema[path][method].Case(**parts)
    with app.app_context():
        return case.call_and_validate(app=app, headers={"Authorization": f"Bearer {key}"}, checks=CHECKS)


def test_a_ticket_in_every_shape_conforms(app: Flask, world: World, store: PhotoStore) -> None:
    _row, key = apikeys.issue(KeyKind.STAFF, "conformance", T0, user=world.dora)
    keep = advance(make_ticket(world, store, lat=39.9, lon=116.4), "resolved", world)
    dup = make_ticket(world, store)
    number = {"number": dup.number}
    call(app, key, "/tickets/{number}/transitions", "POST", path_parameters=number,
         body={"action": "merge", "target": keep.number})
    for path, method in (("/tickets/{number}", "GET"), ("/tickets/{number}/reveal", "POST")):
        for ticket in (keep, dup):
            response = call(app, key, path, method, path_parameters={"number": ticket.number})
            assert response.status_code == 200
    created = call(app, key, "/tickets", "POST", body={
        "description": "楼道灯不亮", "phone": "13812345678", "category": "repair.stair_light",
        "building_id": world.building_managed.id, "channel": "phone",
    })
    assert created.status_code == 201
    for path in ("/tickets", "/me", "/categories", "/places"):
        assert call(app, key, path, "GET").status_code == 200
    assert Ticket.query.count() == 3
