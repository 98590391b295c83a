"""The OpenAPI 3.1 document of the staff API, built from the code it describes.

Request bodies and query parameters come from the specs in contract.py (the very
objects that read requests); enums from the models and the state machine; error
codes from errors.py. `document()` is served at /api/v1/openapi.json; a test checks
that it is valid, covers every route, and that the API answers as it says.
"""
from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from ticketing.api.contract import (
    ACTION_PARAMS,
    CALLBACK_LIST,
    CALLBACK_OUTCOME,
    CHANNEL_ROLES,
    HOTSPOT_LIST,
    KEY_PATTERN,
    MAX_PAGE_SIZE,
    NEW_TICKET,
    STAFF_ACTIONS,
    TICKET_LIST,
    TRANSITION,
)
from ticketing.api.errors import ALL_CODES
from ticketing.api.inputs import MAX_BODY_BYTES, NOT_BLANK_PATTERN, NUMBER_PATTERN, Query, nullable
from ticketing.api.operations import IF_MATCH_PATTERN, MAX_IF_MATCH
from ticketing.forms import MAX_ID
from ticketing.models import (
    CallbackReason,
    CallbackState,
    Channel,
    HandlerKind,
    Rating,
    Role,
    Status,
)
from ticketing.services.lifecycle import TRANSITIONS

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}
NUMBER: Schema = {"type": "number"}
TIME: Schema = {"type": "string", "format": "date-time"}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def ref_or_null(name: str) -> Schema:
    return {"anyOf": [ref(name), {"type": "null"}]}


def enum(values: Any) -> Schema:
    return {"type": "string", "enum": [str(v) for v in values]}


def obj(properties: dict[str, Schema], description: str = "") -> Schema:
    """An object with exactly these properties, all present."""
    out: Schema = {"type": "object", "properties": properties, "required": list(properties),
                   "additionalProperties": False}
    if description:
        out["description"] = description
    return out


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


# The free texts: phone, landline and ID numbers, rooms and the requester's name inside
# are masked (services/privacy.py mask_text) unless the answer is a reveal.
FREE_TEXT: Schema = {"type": "string", "description": "Numbers, rooms and the requester's name in it "
                     "masked unless revealed (POST …/reveal)."}

SUMMARY_FIELDS: dict[str, Schema] = {
    "number": {"type": "string", "description": "The ticket number, e.g. 261118-0001."},
    "status": enum(Status),
    "version": {"type": "integer", "description": "Changes with every change; send it back as `version` or If-Match."},
    "channel": enum(Channel),
    "category": ref("CategoryRef"),
    "community_id": INTEGER,
    "grid_id": nullable(INTEGER),
    "description": FREE_TEXT,
    "handler": ref("Handler"),
    "deadline": {**nullable(TIME), "description": "The deadline that applies now: accept-by while dispatched, else resolve-by."},
    "overdue": BOOLEAN,
    "escalation_level": {"type": "integer", "description": "0 grid, 1 community, 2 street, 3 referred upstream."},
    "supervised": {"type": "boolean", "description": "Flagged for supervision (overdue or escalated)."},
    "created_at": TIME,
    "updated_at": TIME,
}

DETAIL_FIELDS: dict[str, Schema] = {
    "tier": obj({"code": STRING, "name_zh": STRING, "name_en": STRING}),
    "place": ref("Place"),
    "requester": obj({"name": STRING, "phone": STRING, "revealed": BOOLEAN},
                     "The resident; masked unless revealed (POST …/reveal)."),
    "routing": ref_or_null("Routing"),
    "unrouted_reason": STRING,
    **{name: nullable(TIME) for name in ("accept_due_at", "resolve_due_at", "dispatched_at", "accepted_at",
                                         "held_at", "resolved_at", "closed_at")},
    "hold_until": {**nullable({"type": "string", "format": "date"}),
                   "description": "While on hold: the local date what is awaited is expected by."},
    "hold_reason": {**FREE_TEXT, "description": "While on hold: what is awaited (the hold's note). "
                    + FREE_TEXT["description"]},
    "result_note": FREE_TEXT,
    "rating": nullable(enum(Rating)),
    "rating_comment": FREE_TEXT,
    "return_count": INTEGER,
    "reopen_count": INTEGER,
    "merged_into": nullable(STRING),
    "duplicates": {**array(STRING), "description": "Numbers of tickets merged into this one."},
    "actions": {**array(enum(STAFF_ACTIONS)), "description": "What this account may do now (POST …/transitions)."},
    "can_reveal": BOOLEAN,
    "events": array(ref("Event")),
}


CALLBACK_FIELDS: dict[str, Schema] = {
    "id": INTEGER,
    "reason": {**enum(CallbackReason), "description": (
        "unsatisfied: rated not satisfied (or asked for a redo after choosing it); not_rated: closed without "
        "rating; staff_entry: filed at the station, hall or by phone; sample: a share of the satisfied.")},
    "state": {**enum(CallbackState), "description": "open: to call; done: reached; failed: not reached after "
                                                    "the last try."},
    "version": {"type": "integer", "description": "Changes with every try; send it back as `version`."},
    "created_at": TIME,
    "due_at": {**TIME, "description": "2 working days after the task was opened."},
    "overdue": {"type": "boolean", "description": "Open past its deadline."},
    "attempts": INTEGER,
    "reached": nullable(BOOLEAN),
    "solved": nullable(BOOLEAN),
    "rating": {**nullable(enum(Rating)), "description": "The rating the resident gave on the call."},
    "rating_recorded": {"type": "boolean", "description": "Recorded on the ticket as the resident's own."},
    "redone": {"type": "boolean", "description": "The ticket was sent back to be redone."},
    "finished_at": nullable(TIME),
}

CALLBACK_DETAIL_FIELDS: dict[str, Schema] = {
    "note": FREE_TEXT,
    "finished_by": ref_or_null("Person"),
    "tries": array(obj({"at": TIME, "by": ref_or_null("Person"), "reached": BOOLEAN, "note": FREE_TEXT})),
}


HOTSPOT_FIELDS: dict[str, Schema] = {
    "id": INTEGER,
    "level": {**enum(("building", "complex", "grid", "community")), "description": "What kind of place."},
    "place_id": {"type": "integer", "description": "The id of the building, complex, grid or community."},
    "place_name": STRING,
    "community_id": INTEGER,
    "grid_id": {**nullable(INTEGER), "description": "null for a community's cluster."},
    "category": ref("CategoryRef"),
    "count": {"type": "integer", "description": "Tickets in the window."},
    "previous_count": {"type": "integer", "description": "Tickets in the same number of days just before."},
    "trend": {"type": "integer", "description": "count - previous_count."},
    "is_new": {"type": "boolean", "description": "Nothing of the kind in the period before."},
    "score": {"type": "integer", "description": "count + 2 × unsatisfied + 2 × reopened + max(0, trend): the rank."},
    "unsatisfied": {"type": "integer", "description": "Tickets rated not satisfied."},
    "reopened": {"type": "integer", "description": "Tickets reopened at least once."},
    "merged": {"type": "integer", "description": "Tickets filed under another category that joined by their wording."},
    "first_at": TIME,
    "last_at": TIME,
    "weekly": {**array(INTEGER), "description": "Tickets per 7 days of the window, oldest first."},
    "handlers": array(obj({"name": STRING, "count": INTEGER})),
    "wording": {"type": "string", "description": "The typical wording of the tickets, numbers and rooms masked."},
    "tickets": {**array(STRING), "description": "Numbers of its latest tickets, latest first."},
}


def schemas() -> dict[str, Schema]:
    """The components' schemas."""
    error = obj({"code": enum(ALL_CODES), "message": {"type": "string", "description": "For people; in Chinese."}})
    return {
        "Error": obj({"error": error}),
        "ValidationError": obj({"error": error, "errors": {
            "type": "object", "additionalProperties": STRING,
            "description": "A message per field (or query parameter, or header) that is wrong.",
        }}),
        "Person": obj({"id": INTEGER, "display_name": STRING, "role": enum(Role)}),
        "Named": obj({"id": INTEGER, "name": STRING}),
        "CategoryRef": obj({"id": INTEGER, "code": STRING, "name_zh": STRING, "name_en": STRING}),
        "Handler": obj({
            "kind": nullable(enum(HandlerKind)),
            "assignee": ref_or_null("Person"),
            "team": ref_or_null("Named"),
            "company": ref_or_null("Named"),
        }, "Who has the ticket: a person, or a team's or company's queue, or nobody yet."),
        "TicketSummary": obj(SUMMARY_FIELDS),
        "Ticket": obj({**SUMMARY_FIELDS, **DETAIL_FIELDS}),
        "Place": obj({
            "community": ref("Named"),
            "grid": ref_or_null("Named"),
            "complex": {"anyOf": [obj({"id": INTEGER, "name": STRING, "managed": BOOLEAN}), {"type": "null"}]},
            "building": ref_or_null("Named"),
            "address_text": STRING,
            "unit_room": STRING,
            "lat": nullable(NUMBER),
            "lon": nullable(NUMBER),
        }, "Address text and room masked, location null, unless revealed."),
        "Routing": obj({"rule": STRING, "reason": STRING, "at": TIME, "by": ref_or_null("Person"), "note": FREE_TEXT},
                       "The dispatch that gave the handler the ticket: `manual` or the rule's name."),
        "Event": obj({
            "id": INTEGER, "at": TIME,
            "action": {"type": "string", "description": "submit, or a transition, or another recorded step."},
            "actor_kind": enum(("resident", "staff", "system")),
            "actor": ref_or_null("Person"),
            "from_status": nullable(enum(Status)),
            "to_status": nullable(enum(Status)),
            "note": FREE_TEXT,
            "public": {"type": "boolean", "description": "false: staff only."},
            "to": {"type": "string", "description": "For a dispatch: who it went to."},
            "rule": STRING,
            "merged_into": STRING,
        }),
        "TicketList": obj({"tickets": array(ref("TicketSummary")), "next_cursor": {
            **nullable(STRING), "description": "Pass as `cursor` for the next page; null on the last.",
        }}),
        "TicketCreated": obj({"number": STRING, "status": enum(Status), "created": BOOLEAN, "url": STRING}),
        "Me": obj({
            "id": INTEGER, "username": STRING, "display_name": STRING, "role": enum(Role),
            **{name: nullable(INTEGER) for name in ("street_id", "community_id", "company_id", "team_id")},
            "grid_ids": array(INTEGER),
            "channels": {**array(enum(CHANNEL_ROLES)), "description": "Channels this account may file on."},
            "key": obj({"id": INTEGER, "name": STRING, "prefix": STRING, "created_at": TIME}),
        }),
        "Category": obj({"id": INTEGER, "code": STRING, "name_zh": STRING, "name_en": STRING,
                         "group": ref("CategoryRef"), "tier": nullable(STRING)}),
        "CategoryList": obj({"categories": array(ref("Category"))}),
        "Places": obj({"communities": array(obj({
            "id": INTEGER, "code": STRING, "name": STRING, "grids": array(obj({
                "id": INTEGER, "code": STRING, "name": STRING, "complexes": array(obj({
                    "id": INTEGER, "name": STRING, "managed": BOOLEAN, "buildings": array(ref("Named")),
                })),
            })),
        }))}),
        "NewTicket": new_ticket_schema(),
        "Transition": transition_schema(),
        "CallbackSummary": obj({**CALLBACK_FIELDS, "ticket": ref("TicketSummary")}),
        "Callback": obj({**CALLBACK_FIELDS, **CALLBACK_DETAIL_FIELDS, "ticket": ref("Ticket")}),
        "CallbackList": obj({"callbacks": array(ref("CallbackSummary")), "next_cursor": {
            **nullable(STRING), "description": "Pass as `cursor` for the next page; null on the last.",
        }}),
        "CallbackOutcome": outcome_schema(),
        "Hotspot": obj(HOTSPOT_FIELDS, "A recurring problem (高频诉求): the tickets of one place and category in "
                                       "the window, as the nightly run stored them."),
        "HotspotList": obj({
            "date": {**nullable({"type": "string", "format": "date"}),
                     "description": "The local day the run was for; null when none was ever run."},
            "days": INTEGER,
            "found_at": nullable(TIME),
            "min_count": {**nullable(INTEGER), "description": "The fewest tickets a cluster had to have."},
            "total": {"type": "integer", "description": "Clusters in scope (this answer holds at most `limit`)."},
            "hotspots": array(ref("Hotspot")),
        }),
    }


def when(conditions: Schema, then: Schema) -> Schema:
    """`then` applies to objects whose properties match `conditions` (all of them present)."""
    return {"if": {"properties": conditions, "required": list(conditions)}, "then": then}


def new_ticket_schema() -> Schema:
    """NEW_TICKET's fields; lat and lon come together or not at all (null is not sent)."""
    out = NEW_TICKET.schema()
    out["allOf"] = [when({one: NUMBER}, {"properties": {other: NUMBER}, "required": [other]})
                    for one, other in (("lat", "lon"), ("lon", "lat"))]
    return out


def transition_schema() -> Schema:
    """TRANSITION's fields, and what each action takes (operations.transition_inputs, the state
    machine): its own input, required (public: optional); a note with some text where the
    state machine requires one; and none of the inputs of other actions (null is not sent)."""
    out = TRANSITION.schema()
    rules = []
    for action in STAFF_ACTIONS:
        own = ACTION_PARAMS.get(action)
        properties: dict[str, Schema] = {name: {"type": "null"} for name in dict.fromkeys(ACTION_PARAMS.values())
                                         if name != own}
        required = [own] if own is not None and own != "public" else []
        if TRANSITIONS[action].note_required:
            properties["note"] = {"type": "string", "pattern": NOT_BLANK_PATTERN}
            required.append("note")
        for name in required:
            properties.setdefault(name, {"not": {"type": "null"}})
        rules.append(when({"action": {"const": action}}, {"properties": properties, "required": required}))
    out["allOf"] = rules
    return out


def outcome_schema() -> Schema:
    """CALLBACK_OUTCOME's fields, and how they hang together (services/callbacks.py
    `check_outcome`): not reached, nothing more than a note; reached, solved or not said;
    not solved, a note with some text; solved, no redo (null is not sent)."""
    out = CALLBACK_OUTCOME.schema()
    nothing = {"type": "null"}
    out["allOf"] = [
        when({"reached": {"const": False}}, {"properties": {name: nothing for name in ("solved", "rating", "redo_to")}}),
        when({"reached": {"const": True}}, {"properties": {"solved": {"not": nothing}}, "required": ["solved"]}),
        when({"solved": {"const": False}}, {"properties": {"note": {"type": "string", "pattern": NOT_BLANK_PATTERN}},
                                            "required": ["note"]}),
        when({"solved": {"const": True}}, {"properties": {"redo_to": nothing}}),
    ]
    return out


def json_content(schema: Schema) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


ERRORS: dict[str, tuple[str, str]] = {
    "400": ("BadRequest", "The body is not JSON, or not a JSON object."),
    "401": ("Unauthorized", "No key, or not a valid staff key of an active account."),
    "403": ("Forbidden", "The account may not do this."),
    "404": ("NotFound", "No such ticket (or callback), or not in the account's scope."),
    "409": ("Conflict", ("illegal_transition: not in this state; version_mismatch: changed since read; "
                         "conflict: changed by someone else just now. Reload and try again.")),
    "413": ("PayloadTooLarge", f"The body is larger than {MAX_BODY_BYTES} bytes."),
    "415": ("UnsupportedMediaType", "The body must be application/json."),
    "422": ("ValidationFailed", "Fields are wrong; `errors` says which and why."),
}


def responses() -> dict[str, Any]:
    """The shared error responses."""
    out: dict[str, Any] = {}
    for status, (name, description) in ERRORS.items():
        schema = ref("ValidationError") if status == "422" else ref("Error")
        out[name] = {"description": description, "content": json_content(schema)}
    out["Unauthorized"]["headers"] = {"WWW-Authenticate": {"schema": STRING, "description": 'Bearer realm="minhu"'}}
    return out


def answer(schema: Schema, description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": json_content(schema)}
    if headers:
        out["headers"] = headers
    return out


def operation(summary: str, ok: dict[str, dict[str, Any]], errors: tuple[str, ...], **extra: Any) -> dict[str, Any]:
    """An operation answering `ok` or one of the shared `errors` (401 is always possible)."""
    out: dict[str, Any] = {"summary": summary, "operationId": extra.pop("operation_id"), "responses": {
        **ok, **{status: {"$ref": f"#/components/responses/{ERRORS[status][0]}"} for status in ("401", *errors)},
    }}
    out.update(extra)
    return out


def parameter(name: str, where: str, schema: Schema, description: str = "", required: bool = False) -> Schema:
    out: Schema = {"name": name, "in": where, "required": required, "schema": schema}
    if description:
        out["description"] = description
    return out


NUMBER_PARAM = parameter("number", "path", {"type": "string", "pattern": NUMBER_PATTERN, "maxLength": 20},
                         "The ticket number.", required=True)
ETAG = {"ETag": {"schema": STRING, "description": 'The ticket\'s version, quoted: "3".'}}
TASK_PARAM = parameter("task_id", "path", {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                       "The callback's id.", required=True)


def query_parameters() -> list[Schema]:
    """The ticket list's filters, from the specs that read them."""
    return list_parameters(TICKET_LIST)


def list_parameters(query: Query) -> list[Schema]:
    """A list's filters, from the specs that read them."""
    out = []
    for name, spec in query.params.items():
        param = parameter(name, "query", spec.schema(), spec.description)
        if name in query.repeatable:
            param.update(style="form", explode=True)
        out.append(param)
    return out


def json_body(schema_name: str) -> dict[str, Any]:
    return {"required": True, "content": json_content(ref(schema_name))}


def paths() -> dict[str, Any]:
    """Every route of the API."""
    ticket = answer(ref("Ticket"), "The ticket.", ETAG)
    callback = answer(ref("Callback"), "The callback.", {"ETag": {
        "schema": STRING, "description": 'The callback\'s version, quoted: "2".'}})
    return {
        "/openapi.json": {"get": {
            "summary": "This document", "operationId": "openapi", "security": [],
            "responses": {"200": answer({"type": "object"}, "The OpenAPI document.")},
        }},
        "/me": {"get": operation("Who the key acts as", {"200": answer(ref("Me"), "The account.")}, (),
                                 operation_id="me")},
        "/categories": {"get": operation(
            "Categories to file under", {"200": answer(ref("CategoryList"), "Active categories.")}, (),
            operation_id="categories")},
        "/places": {"get": operation(
            "Places to file in", {"200": answer(ref("Places"), "The account's communities, whole.")}, (),
            operation_id="places",
            description="Dispatchers and supervisors: their community or street. Others: their street and "
                        "the communities of their grids. Admins: everything.")},
        "/tickets": {
            "get": operation(
                "List tickets", {"200": answer(ref("TicketList"), "A page, newest first.")}, ("422",),
                operation_id="listTickets", parameters=query_parameters(),
                description=f"Tickets in the account's scope. Pages of at most {MAX_PAGE_SIZE}, "
                            "ordered by id, newest first; stable under inserts."),
            "post": operation(
                "File a ticket",
                {"201": answer(ref("TicketCreated"), "Filed.", {"Location": {"schema": STRING}}),
                 "200": answer(ref("TicketCreated"), "Filed before with this idempotency key.",
                               {"Location": {"schema": STRING}})},
                ("400", "403", "413", "415", "422"),
                operation_id="createTicket", requestBody=json_body("NewTicket"),
                parameters=[parameter("Idempotency-Key", "header", {"type": "string", "pattern": KEY_PATTERN,
                                                                      "maxLength": 64},
                                      "Same as the body's external_id.")],
                description="Through the same intake as every channel: checked, placed, classified, "
                            "stored and routed. 403 when the account may not file on the channel."),
        },
        "/tickets/{number}": {"get": operation(
            "A ticket", {"200": ticket}, ("404",), operation_id="getTicket", parameters=[NUMBER_PARAM],
            description="Personal data masked; the timeline includes internal events.")},
        "/tickets/{number}/reveal": {"post": operation(
            "A ticket with the requester's details whole", {"200": ticket}, ("403", "404"),
            operation_id="revealTicket", parameters=[NUMBER_PARAM],
            description="Allowed to the handler, and dispatchers, supervisors and admins in scope; "
                        "each reveal is logged. No body.")},
        "/tickets/{number}/transitions": {"post": operation(
            "Act on a ticket", {"200": ticket}, ("400", "403", "404", "409", "413", "415", "422"),
            operation_id="transitionTicket", requestBody=json_body("Transition"),
            parameters=[NUMBER_PARAM, parameter(
                "If-Match", "header", {"type": "string", "maxLength": MAX_IF_MATCH, "pattern": IF_MATCH_PATTERN},
                'The version last read, e.g. "3" (the ETag), or several separated by commas, or *.')],
            description="One action of the state machine, as on the ticket page.")},
        "/hotspots": {"get": operation(
            "List recurring problems", {"200": answer(ref("HotspotList"), "Most significant first.")}, ("422",),
            operation_id="listHotspots", parameters=list_parameters(HOTSPOT_LIST),
            description="The clusters (高频诉求) of the latest nightly run on or before `date`, in the account's "
                        "scope: dispatchers and supervisors their community or street, grid workers their grids' "
                        "buildings, complexes and grids, admins all (an empty list for others).")},
        "/callbacks": {"get": operation(
            "List callbacks", {"200": answer(ref("CallbackList"), "A page, newest first.")}, ("422",),
            operation_id="listCallbacks", parameters=list_parameters(CALLBACK_LIST),
            description=f"The 回访 tasks of the tickets in the account's scope: dispatchers, supervisors and "
                        f"admins (an empty list for others). Pages of at most {MAX_PAGE_SIZE}, ordered by id, "
                        "newest first; stable under inserts.")},
        "/callbacks/{task_id}": {"get": operation(
            "A callback", {"200": callback}, ("404",), operation_id="getCallback", parameters=[TASK_PARAM],
            description="The task, every try, and its ticket as GET /tickets/{number} shows it (masked).")},
        "/callbacks/{task_id}/reveal": {"post": operation(
            "A callback with the resident's phone whole", {"200": callback}, ("403", "404"),
            operation_id="revealCallback", parameters=[TASK_PARAM],
            description="To call the resident: logged as a reveal for a callback. No body.")},
        "/callbacks/{task_id}/outcome": {"post": operation(
            "Record a try at the call", {"200": callback}, ("400", "403", "404", "409", "413", "415", "422"),
            operation_id="recordCallback", requestBody=json_body("CallbackOutcome"),
            parameters=[TASK_PARAM, parameter("Idempotency-Key", "header", {
                "type": "string", "pattern": KEY_PATTERN, "maxLength": 64},
                "Retrying with the same key records nothing again and answers the task as it is.")],
            description="As on the task's page: not reached (after the last try the task fails), or reached: "
                        "solved or not, a redo, the resident's rating, a note. 409 illegal_transition when the "
                        "task is finished or the ticket's state allows no redo; 409 conflict when the task "
                        "changed since `version` or at the same moment.")},
    }


INFO = {
    "title": "Minhu staff API",
    "version": "1",
    "description": (
        "For staff apps: file tickets, read and list them, and act on them. Authenticate with "
        "`Authorization: Bearer <key>`, a staff key from `flask api create-token USERNAME --name NAME`; "
        "the key acts exactly as its account (scope and the state machine's rules). Every answer is JSON; "
        'errors are `{"error": {"code", "message"}}`, and 422 adds `errors` per field. See docs/staff-api.md.'
    ),
}


@lru_cache(maxsize=1)
def _document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": INFO,
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths(),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "A staff API key (mhs_…)."}},
            "schemas": schemas(),
            "responses": responses(),
        },
    }


def document() -> dict[str, Any]:
    """The OpenAPI document (a copy: callers may change it freely)."""
    return copy.deepcopy(_document())
