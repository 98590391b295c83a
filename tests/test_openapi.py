"""The staff API's OpenAPI document: valid, complete, and true — the API fuzzed against it.

The fuzzing runs schemathesis in-process (WSGI) with every check it has, on valid and
invalid requests, as dora the dispatcher, with tickets in several states in the database.
It is derandomized (a fixed seed: the same cases on every run) and bounded (50 examples
per operation besides the coverage cases), so it cannot make the suite flaky or slow.
"""
from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.modes import GenerationMode
from sqlalchemy import select

from tests.callback_helpers import rated, task_of
from tests.factories import PHONE, T0, TZ, World, advance, make_ticket
from ticketing.api import openapi
from ticketing.api.contract import PHONE_PATTERN
from ticketing.api.inputs import NOT_BLANK_PATTERN, VISIBLE_PATTERN
from ticketing.extensions import db
from ticketing.models import KeyKind, Status, Ticket, utcnow
from ticketing.services import apikeys, intake
from ticketing.services.lifecycle import Actor
from ticketing.services.photos import PhotoStore

PREFIX = "/api/v1"


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


# --- The document and the server agree, value by value -----------------------------------
# What schemathesis found where they did not: each probe is a value the document and the
# server must judge alike (refused: 422 naming the field, or `blamed`).

TICKET_LIST, TRANSITIONS_OF = "GET /tickets", "POST /tickets/{number}/transitions"
NOTE = {"action": "note", "note": "已联系居民"}
Value = Any  # a value, or a function of the world and the ticket acted on that gives it


def probe(operation: str, name: str, value: Value, valid: bool, blamed: str = "", **extra: Any) -> Any:
    method, path = operation.split()
    where = f"{method} {path.rsplit('/', 1)[-1]}" + (f" {extra['action']}" if "action" in extra else "")
    shown = value.__name__ if callable(value) else repr(value)
    return pytest.param(operation, name, value, valid, blamed or name, extra, id=f"{where}: {name}={shown}")


def building_id_as_float(world: World, ticket: Ticket) -> float:
    return float(world.building_courtyard.id)


def version_as_float(world: World, ticket: Ticket) -> float:
    return float(ticket.version)


PROBES = [
    # description and phone: the document said any string; now it says what intake takes.
    probe("POST /tickets", "description", "", False),
    probe("POST /tickets", "description", " \t\u3000\n", False),
    probe("POST /tickets", "description", "\x07", False),
    probe("POST /tickets", "description", "灯不亮 ", True),
    probe("POST /tickets", "phone", "", False),
    probe("POST /tickets", "phone", "12345", False),
    probe("POST /tickets", "phone", "１３８１２３４５６７８", False),  # full-width digits
    probe("POST /tickets", "phone", "+86 138-1234-5678", True),
    # A category code is never all digits (in a query string, digits are an id, from 1).
    probe("POST /tickets", "category", "0", False),
    probe(TICKET_LIST, "category", "0", False),
    probe(TICKET_LIST, "category", "repair", True),
    # Integers are values: 3.0 is 3, as in JSON Schema.
    probe("POST /tickets", "building_id", building_id_as_float, True),
    probe(TRANSITIONS_OF, "version", version_as_float, True, **NOTE),
    # lat and lon together or not at all; no NUL in any text.
    probe("POST /tickets", "lat", 39.9, False, blamed="location"),
    probe("POST /tickets", "name", "张\x00三", False),
    # Times are RFC 3339, as the format says (no leap second: Python has none), not any ISO 8601.
    probe(TICKET_LIST, "created_after", "2026-11-18t10:00:00z", True),
    probe(TICKET_LIST, "created_after", "20261118T100000+0800", False),
    probe(TICKET_LIST, "created_after", "2026-12-31T23:59:60Z", False),
    # A parameter sent empty is refused, not ignored.
    probe(TICKET_LIST, "category", "", False),
    probe(TICKET_LIST, "q", "", False),
    probe(TICKET_LIST, "cursor", "", False),
    probe(TICKET_LIST, "created_after", "", False),
    # States separated by commas, as the prose always said; nothing empty between them.
    probe(TICKET_LIST, "status", ["submitted,dispatched"], True),
    probe(TICKET_LIST, "status", ["submitted,"], False),
    # Each action takes its own input (required), a note where the state machine wants one, no other inputs.
    probe(TRANSITIONS_OF, "public", True, True, **NOTE),
    probe(TRANSITIONS_OF, "handler", "user:1", False, **NOTE),
    probe(TRANSITIONS_OF, "public", True, False, action="reject", note="重复"),
    probe(TRANSITIONS_OF, "note", "  ", False, action="reject"),
    probe(TRANSITIONS_OF, "handler", None, False, action="dispatch"),
    # If-Match: entity tags of versions or *; a version the ticket never had is 409, not 422.
    probe(TRANSITIONS_OF, "If-Match", '"0"', True, **NOTE),
    probe(TRANSITIONS_OF, "If-Match", 'W/"1", 2', True, **NOTE),
    probe(TRANSITIONS_OF, "If-Match", '"1', False, **NOTE),
    probe(TRANSITIONS_OF, "If-Match", "*", True, **NOTE),
]


def documented(doc: dict[str, Any], operation: str, name: str, request: dict[str, Any]) -> bool:
    """Whether the document says the request's `name` (its body, for a body field) is valid."""
    method, path = operation.split()
    op = doc["paths"][path][method.lower()]
    params = {p["name"]: p["schema"] for p in op.get("parameters", [])}
    if name in params:
        value = request["query"].get(name, request["headers"].get(name))
        # A query value is text; digits are also read as the integer they spell.
        readings = [value, int(value)] if isinstance(value, str) and value.isdigit() else [value]
        return any(conforms(params[name], v) for v in readings)
    body_schema = doc["components"]["schemas"][op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                                               .rsplit("/", 1)[-1]]
    return conforms(body_schema, request["body"])


def conforms(schema: dict[str, Any], value: Any) -> bool:
    """JSON Schema 2020-12 with formats checked, as schemathesis reads the document."""
    return jsonschema_rs.Draft202012Validator(schema, validate_formats=True).is_valid(value)


@pytest.mark.parametrize(("operation", "name", "value", "valid", "blamed", "extra"), PROBES)
def test_the_document_and_the_server_judge_a_value_alike(
    client: FlaskClient, world: World, store: PhotoStore,
    operation: str, name: str, value: Value, valid: bool, blamed: str, extra: dict[str, Any],
) -> None:
    ticket = make_ticket(world, store)
    if callable(value):
        value = value(world, ticket)
    _row, key = apikeys.issue(KeyKind.STAFF, "probe", T0, user=world.dora)
    request: dict[str, Any] = {"query": {}, "headers": {"Authorization": f"Bearer {key}"}, "body": None}
    if operation == TICKET_LIST:
        request["query"][name] = value
    elif name == "If-Match":
        request["headers"][name], request["body"] = value, extra
    elif operation == "POST /tickets":
        request["body"] = {"description": "楼道灯不亮", "phone": PHONE, "category": "repair.stair_light",
                           "building_id": world.building_courtyard.id, **extra, name: value}
    else:
        request["body"] = {**extra, name: value}
    assert documented(openapi.document(), operation, name, request) is valid
    method, path = operation.split()
    response = client.open(PREFIX + path.replace("{number}", ticket.number), method=method,
                           query_string=request["query"], headers=request["headers"], json=request["body"])
    refused = response.status_code == 422
    assert refused is not valid and response.status_code < 500, response.get_json()
    assert not refused or blamed in response.get_json()["errors"], response.get_json()


def test_the_text_patterns_are_what_intake_and_the_state_machine_read() -> None:
    """VISIBLE: clean_text leaves something; NOT_BLANK: strip() does. Python's whitespace and the
    control characters all lie below U+3100; the patterns are written alike for ECMA 262."""
    for char in map(chr, [*range(0x3100), 0xFEFF, 0x1F600]):
        assert (re.fullmatch(VISIBLE_PATTERN, char) is None) is (intake.clean_text(char, multiline=True) == "")
        assert (re.fullmatch(NOT_BLANK_PATTERN, char) is None) is (char.strip() == "")


def test_every_phone_the_document_allows_is_one_intake_takes() -> None:
    spellings = ["13812345678", "+8613812345678", "0086 138 1234 5678", "+86-138-1234-5678", "138 1234-5678"]
    for phone in spellings:
        assert re.fullmatch(PHONE_PATTERN, phone) and intake.clean_phone(phone) == "13812345678"


# --- Fuzzing ------------------------------------------------------------------------------

# The fuzzer's key is a fixed string, so that schemathesis can send it as the configured
# credential: then it also sends requests without it, or with a garbled one (ignored_auth,
# missing_required_header). The fixture gives the key dora's account.
FUZZ_KEY = "mhs_fuzzer-0123456789abcdefghijklmnopqrstuv"
OPEN = (Status.SUBMITTED, Status.DISPATCHED, Status.ACCEPTED, Status.ON_HOLD)


@dataclass
class FuzzData:
    """What the fuzzer aims at: dora's tickets, places she files in, categories, people to dispatch to."""

    numbers: list[str]  # the last one is outside her scope
    places: list[tuple[str, int]]
    categories: list[int | str]
    handlers: list[str]
    callbacks: list[int] = field(default_factory=list)  # 回访 tasks; the last one is outside her scope


@pytest.fixture()
def fuzz_data(world: World, store: PhotoStore) -> FuzzData:
    """Dora's key (FUZZ_KEY); tickets of hers in several states, and one outside her scope."""
    tickets = [
        make_ticket(world, store),
        advance(make_ticket(world, store), "dispatched", world),
        advance(make_ticket(world, store, building=world.building_west), "accepted", world, handler=world.greg),
        advance(make_ticket(world, store), "resolved", world),
        make_ticket(world, store),
        make_ticket(world, store, building=world.building_east),
    ]
    walk_in = make_ticket(world, store, channel="walk_in", actor=Actor.staff(world.dora))
    callbacks = [task_of(rated(world, store, "unsatisfied")), task_of(advance(walk_in, "resolved", world)),
                 task_of(rated(world, store, "unsatisfied", building=world.building_east, handler=world.gabe))]
    row, _key = apikeys.issue(KeyKind.STAFF, "fuzzer", T0, user=world.dora)
    row.key_hash, row.prefix = apikeys.digest(FUZZ_KEY), FUZZ_KEY[:12]
    db.session.commit()
    categories = [world.category(code) for code in ("repair.stair_light", "repair.water_leak", "safety.fire_exit")]
    return FuzzData(
        numbers=[t.number for t in tickets],
        places=[("building_id", world.building_courtyard.id), ("complex_id", world.west.id),
                ("community_id", world.community_a.id), ("grid_id", world.grid_a2.id)],
        categories=[ref for c in categories for ref in (c.code, c.id)],
        handlers=[f"user:{world.gina.id}", f"user:{world.greg.id}", f"team:{world.volunteers.id}"],
        callbacks=[task.id for task in callbacks],
    )


def pick(value: Any, choices: int) -> int:
    """A choice derived from a generated value: the same value, the same choice, on every run."""
    return zlib.crc32(json.dumps(value, sort_keys=True, default=lambda other: None).encode()) % choices


def positive(case: Any, location: ParameterLocation) -> bool:
    """Whether the case's part at `location` was generated valid."""
    return case.meta is None or not case.meta.is_negative_at(location)


def aim(case: Any, data: FuzzData) -> None:
    """Point valid requests at real data, so that they get past "no such …" to the paths beyond.

    What the document cannot know (which tickets, categories, places and people exist, and
    which the account may use) is replaced in the parts generated valid; the parts generated
    invalid are sent as they are. Schemathesis checks the changed request against the document
    again, so a request counts as valid or not by what is sent.
    """
    number = (case.path_parameters or {}).get("number")
    if number is not None and positive(case, ParameterLocation.PATH):
        choice = pick((number, case.body, dict(case.headers or {})), len(data.numbers))
        case.path_parameters = {**case.path_parameters, "number": data.numbers[choice]}
    task_id = (case.path_parameters or {}).get("task_id")
    if task_id is not None and positive(case, ParameterLocation.PATH):
        choice = pick((task_id, case.body, dict(case.headers or {})), len(data.callbacks))
        case.path_parameters = {**case.path_parameters, "task_id": data.callbacks[choice]}
    if case.path == "/tickets" and case.method == "GET" and "category" in (case.query or {}) \
            and positive(case, ParameterLocation.QUERY):
        case.query = {**case.query, "category": str(data.categories[pick(case.query, len(data.categories))])}
    if not isinstance(case.body, dict) or not positive(case, ParameterLocation.BODY):
        return
    if case.path == "/tickets":
        aim_new_ticket(case, data)
    elif case.path.endswith("/transitions"):
        aim_transition(case, data)
    elif case.path.endswith("/outcome") and case.body.get("redo_to") is not None:
        case.body = {**case.body, "redo_to": data.handlers[pick(case.body, len(data.handlers))]}


def aim_new_ticket(case: Any, data: FuzzData) -> None:
    """A category, a place of dora's, a phone for the channels that need one, one idempotency key."""
    body = {k: v for k, v in case.body.items() if k not in ("building_id", "complex_id", "community_id", "grid_id")}
    if body.get("category") is not None:
        body["category"] = data.categories[pick(body, len(data.categories))]
    place, place_id = data.places[pick(body, len(data.places))]
    body[place] = place_id
    if body.get("phone") is None:
        body["phone"] = PHONE
    header = (case.headers or {}).get("Idempotency-Key")
    if header is not None and body.get("external_id") not in (None, header):
        case.headers = {**case.headers, "Idempotency-Key": body["external_id"]}
    case.body = body


def aim_transition(case: Any, data: FuzzData) -> None:
    """The action's input made real: a handler, an open ticket to merge into, a new category,
    a deadline ahead. Two thirds without a version, so that actions are taken; of those, half
    become a note with the generated text, so that it reaches the timeline too."""
    body = dict(case.body)
    choice = pick(body, 3)
    if choice == 2:
        body = {"action": "note", "note": f"{body.get('note') or ''} (fuzz)",
                **({"public": body["public"]} if body.get("public") is not None else {})}
    number = case.path_parameters["number"]
    ticket = db.session.scalar(select(Ticket).where(Ticket.number == number))
    if body.get("handler") is not None:
        handlers = data.handlers
        if body.get("action") in ("reassign", "transfer") and ticket is not None:
            # Passed on to someone else: the hand that has it is no new handler (422 on handler).
            current = f"user:{ticket.assignee_id}" if ticket.assignee_id else f"team:{ticket.team_id}"
            handlers = [h for h in handlers if h != current]
        body["handler"] = handlers[pick(body, len(handlers))]
    if body.get("target") is not None:
        targets = db.session.scalars(select(Ticket.number).where(
            Ticket.number.in_(data.numbers[:-1]), Ticket.number != number, Ticket.status.in_(OPEN))).all()
        body["target"] = sorted(targets)[pick(body, len(targets))] if targets else data.numbers[0]
    if body.get("category") is not None:
        current = {ticket.category.code, ticket.category_id} if ticket is not None else set()
        choices = [ref for ref in data.categories if ref not in current]
        body["category"] = choices[pick(body, len(choices))]
    if body.get("deadline") is not None:
        body["deadline"] = "2099-01-01T10:00:00+08:00"
    if body.get("until") is not None:  # a hold's expected date: from today to 30 days ahead
        body["until"] = (utcnow().astimezone(TZ).date() + timedelta(days=1)).isoformat()
    if choice:
        body.pop("version", None)
        case.headers = {k: v for k, v in (case.headers or {}).items() if k != "If-Match"}
    case.body = body


# Built from the same function that serves /api/v1/openapi.json (the first test checks they agree);
# one test per operation, each with a fresh database.
schema = schemathesis.openapi.from_dict(openapi.document())
schema.config.seed = 13
schema.config.generation.update(modes=list(GenerationMode))
schema.config.phases.update(phases=["examples", "coverage", "fuzzing"])


@schema.auth()
class FuzzerKey:
    """The credential schemathesis sends (and leaves out, or garbles, to see the 401s)."""

    def get(self, case: Any, context: Any) -> str:
        return FUZZ_KEY

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def test_the_fuzzer_runs_every_check() -> None:
    load_all_checks()
    names = CHECKS.get_all_names()
    checks = schema.config.checks_config_for()
    assert {"negative_data_rejection", "positive_data_acceptance", "ignored_auth"} <= set(names)
    assert all(checks.get_by_name(name=name).enabled for name in names)


@schema.parametrize()
@settings(max_examples=50, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_the_api_answers_as_documented(case: Any, app: Flask, fuzz_data: FuzzData) -> None:
    # Checks that send requests of their own (ignored_auth) send them to the app too.
    case.operation.schema.app = app
    # Each request gets its own app context, hence its own database session, as in production.
    with app.app_context():
        aim(case, fuzz_data)
        db.session.remove()
    with app.app_context():
        case.call_and_validate(app=app)


# --- Real answers conform too -----------------------------------------------------------------


def call(app: Flask, key: str, path: str, method: str, **parts: Any) -> Any:
    """One request built by schemathesis from the document, its answer checked against it."""
    case = schema[path][method].Case(**parts)
    case.operation.schema.app = app
    with app.app_context():
        return case.call_and_validate(app=app, headers={"Authorization": f"Bearer {key}"})


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
