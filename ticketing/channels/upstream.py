"""County centre orders (派单): signed JSON in, signed status reports back.

A county centre (12345 / 民呼必应) posts an order to `POST /api/v1/upstream/orders`,
signed with its shared secret (see docs/upstream-api.md). The order becomes a ticket
through the one intake call, with channel `county_center` and external id
`<centre>:<order_no>`, so a resend returns the same ticket. When that ticket is
accepted, resolved or closed (or reopened), `on_event` records an outbox row for
`workers.jobs.report_upstream`, which posts the new status to the centre's callback
URL, signed the same way.

Configuration: `UPSTREAM_CENTERS` (config.py). Secrets are never logged.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from sqlalchemy import select
from werkzeug.datastructures import Headers

from ticketing.extensions import db
from ticketing.models import (
    Building,
    Channel,
    Community,
    Ticket,
    TicketEvent,
    utcnow,
)
from ticketing.queues import REPORT_UPSTREAM
from ticketing.services import outbox, placing, refcache, texts
from ticketing.services.errors import ValidationFailed

# intake (and through it lifecycle) is imported inside the functions that use it: this
# module is a listener of lifecycle's events and is loaded by create_app, not by lifecycle.

log = logging.getLogger(__name__)

CHANNEL = Channel.COUNTY_CENTER.value
MAX_BODY_BYTES = 64 * 1024
WINDOW_SECONDS = 5 * 60
MAX_ORDER_NO = 100
EXTERNAL_ID_LENGTH = 100  # tickets.external_id is String(100)
MAX_BUILDING_ID = 2**31 - 1  # buildings.id is a 32-bit integer
# The order's fields (docs/upstream-api.md); any other is refused, so that a misspelt
# optional field (`adress`) is not dropped without a word.
TEXT_FIELDS = ("order_no", "description", "phone", "name", "category", "community_code", "address")
ORDER_FIELDS = frozenset({*TEXT_FIELDS, "building_id"})
CALLBACK_TIMEOUT = 10
HEADER_CENTRE = "X-Minhu-Centre"
HEADER_TIMESTAMP = "X-Minhu-Timestamp"
HEADER_SIGNATURE = "X-Minhu-Signature"
# Transitions reported back, and the status the centre is told.
REPORTED_ACTIONS = frozenset({"accept", "resolve", "rate", "auto_close", "reopen"})
REPORT_ACTION = "upstream_report"
# intake's field names → the names of the order's JSON fields.
FIELD_NAMES = {
    "category_id": "category",
    "community_id": "community_code",
    "complex_id": "address",
    "address_text": "address",
}


class Refused(Exception):
    """The request is refused before it is read as an order; `status` is the HTTP status."""

    def __init__(self, status: int, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields or {}

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message}
        if self.fields:
            out["fields"] = self.fields
        return out


@dataclass(frozen=True)
class Centre:
    id: str
    secret: str
    callback_url: str

    def __repr__(self) -> str:  # never show the secret
        return f"Centre({self.id!r})"


def centres(config: Mapping[str, Any] | None = None) -> dict[str, Centre]:
    """The configured centres."""
    config = current_app.config if config is None else config
    raw = config.get("UPSTREAM_CENTERS") or {}
    return {cid: Centre(cid, entry["secret"], entry["callback_url"]) for cid, entry in raw.items()}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """hex(HMAC-SHA256(secret, timestamp + "." + body))."""
    message = timestamp.encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signed_headers(centre: Centre, body: bytes, now: datetime) -> dict[str, str]:
    """The headers of a signed message from us about `centre`'s orders."""
    timestamp = str(int(now.timestamp()))
    return {
        "Content-Type": "application/json; charset=utf-8",
        HEADER_CENTRE: centre.id,
        HEADER_TIMESTAMP: timestamp,
        HEADER_SIGNATURE: sign(centre.secret, timestamp, body),
    }


def authenticate(headers: Headers, body: bytes, now: datetime) -> Centre:
    """The centre that signed this request; `Refused(401)` when it is not one we know,
    the timestamp is outside the window, or the signature does not match."""
    centre = centres().get((headers.get(HEADER_CENTRE) or "").strip())
    if centre is None:
        raise Refused(401, "unknown centre")
    raw_ts = (headers.get(HEADER_TIMESTAMP) or "").strip()
    if not raw_ts.isascii() or not raw_ts.isdigit() or len(raw_ts) > 12:
        raise Refused(401, "missing or malformed timestamp")
    if abs(now.timestamp() - int(raw_ts)) > WINDOW_SECONDS:
        raise Refused(401, "timestamp outside the 5-minute window")
    given = (headers.get(HEADER_SIGNATURE) or "").strip().lower()
    expected = sign(centre.secret, raw_ts, body)
    if not hmac.compare_digest(given.encode("ascii", "replace"), expected.encode("ascii")):
        raise Refused(401, "bad signature")
    return centre


def parse_body(content_type: str | None, body: bytes) -> dict[str, Any]:
    """The order's JSON object; `Refused` with 415 or 400 otherwise."""
    mimetype = (content_type or "").split(";", 1)[0].strip().lower()
    if mimetype != "application/json":
        raise Refused(415, "Content-Type must be application/json")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "body is not valid UTF-8 JSON") from None
    except RecursionError:  # e.g. 30,000 nested "[": an order is one flat object
        raise Refused(400, "body is nested too deeply") from None
    if not isinstance(data, dict):
        raise Refused(400, "body must be a JSON object")
    return data


def check_fields(data: Mapping[str, Any]) -> None:
    """Refuse, naming each field, what the database could not take as sent: unknown
    fields, texts that are not strings or hold a NUL or a lone surrogate, a
    building_id that is not an integer our ids can reach. `Refused(400)`."""
    errors = {str(name)[:64]: "unknown field" for name in data if name not in ORDER_FIELDS}
    for name in TEXT_FIELDS:
        value = data.get(name)
        if value is None:
            continue
        problem = "must be a string" if not isinstance(value, str) else texts.text_problem(value)
        if problem:
            errors[name] = problem
    building_id = data.get("building_id")
    if building_id is not None:
        if isinstance(building_id, bool) or not isinstance(building_id, int):
            errors["building_id"] = "must be an integer"
        elif not 1 <= building_id <= MAX_BUILDING_ID:
            errors["building_id"] = f"must be an integer from 1 to {MAX_BUILDING_ID}"
    if errors:
        raise Refused(400, "invalid order", errors)


def _text(data: Mapping[str, Any], key: str, errors: dict[str, str]) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        errors[key] = "must be a string"
        return ""
    return value


def order_number(centre: Centre, data: Mapping[str, Any]) -> tuple[str, str]:
    """The order number and our external id for it; `Refused(400)` when unusable."""
    from ticketing.services import intake

    errors: dict[str, str] = {}
    order_no = intake.clean_text(_text(data, "order_no", errors))
    if "order_no" in errors:
        pass
    elif not order_no:
        errors["order_no"] = "required"
    elif len(order_no) > MAX_ORDER_NO or len(centre.id) + 1 + len(order_no) > EXTERNAL_ID_LENGTH:
        errors["order_no"] = f"at most {min(MAX_ORDER_NO, EXTERNAL_ID_LENGTH - len(centre.id) - 1)} characters"
    if errors:
        raise Refused(400, "invalid order", errors)
    return order_no, f"{centre.id}:{order_no}"


def intake_request(external_id: str, data: Mapping[str, Any]) -> Any:
    """Map an order that passed `check_fields` to an `intake.IntakeRequest`; `Refused(400)`
    with field errors on bad input."""
    from ticketing.services import intake

    errors: dict[str, str] = {}
    description = _text(data, "description", errors)
    phone = _text(data, "phone", errors)
    name = _text(data, "name", errors)
    address = _text(data, "address", errors)
    category_code = _text(data, "category", errors).strip()
    community_code = _text(data, "community_code", errors).strip()
    building_id = data.get("building_id")  # an id in range: check_fields saw to it
    if not description.strip() and "description" not in errors:
        errors["description"] = "required"
    category_id = None
    if category_code:
        category = refcache.category(category_code)  # with its tiers, for intake (cached)
        if category is None or not category.active:
            errors["category"] = "unknown category code"
        else:
            category_id = category.id
    elif "category" not in errors:
        errors["category"] = "required"
    community_id = None
    if building_id is not None:
        above = placing.building_place(building_id)  # open buildings, cached
        if above is not None:
            community_id = above.community_id
        else:  # a deactivated building is known: intake says it cannot be chosen
            building = db.session.get(Building, building_id)
            if building is None:
                errors["building_id"] = "unknown building"
            else:
                community_id = building.complex.grid.community_id
    elif community_code:
        community_id = refcache.remember(("community code", community_code), lambda: db.session.scalar(
            select(Community.id).where(Community.code == community_code)))
        if community_id is None:
            errors["community_code"] = "unknown community"
    elif "building_id" not in errors and "community_code" not in errors:
        errors["place"] = "give building_id, or community_code and address"
    if errors:
        raise Refused(400, "invalid order", errors)
    return intake.IntakeRequest(
        channel=CHANNEL,
        external_id=external_id,
        description=description,
        phone=phone,
        name=name,
        category_id=category_id,
        community_id=community_id,
        building_id=building_id,
        address_text=address,
    )


def receive(
    centre: Centre, data: Mapping[str, Any], now: datetime, tz: Any, store: Any, max_photo_bytes: int,
) -> tuple[Ticket, bool, str]:
    """File an authenticated order: (ticket, created?, order_no). A resend returns the
    ticket of the first delivery. Bad fields raise `Refused(400)` with field errors."""
    from ticketing.services import intake
    from ticketing.services.lifecycle import Actor

    check_fields(data)
    order_no, external_id = order_number(centre, data)
    try:
        req = intake_request(external_id, data)
    except Refused:
        # A resend of an order filed before that its fields no longer pass (a category
        # closed since) still gets the first ticket.
        existing = intake.find_existing(CHANNEL, external_id)
        if existing is None:
            raise
        return existing, False, order_no
    try:
        # A resend is found by intake, by the order's external id: the first ticket.
        ticket, created = intake.submit(req, Actor.system(), now, tz, store, max_photo_bytes, max_photos=0)
    except ValidationFailed as exc:
        fields = {FIELD_NAMES.get(k, k): str(v) for k, v in exc.errors.items()}
        raise Refused(exc.status, "invalid order", fields) from None
    log.info("upstream order %s from centre %s filed as ticket %s (new=%s)",
             order_no, centre.id, ticket.number, created)
    return ticket, created, order_no


# --- report back -------------------------------------------------------------


def split_external_id(ticket: Ticket) -> tuple[str, str] | None:
    """(centre id, order number) of a ticket that came from a county centre."""
    if ticket.channel != CHANNEL or not ticket.external_id or ":" not in ticket.external_id:
        return None
    centre_id, order_no = ticket.external_id.split(":", 1)
    return centre_id, order_no


def on_event(ticket: Ticket, event: TicketEvent) -> None:
    """Record the report-back job for an event the centre must hear of (same transaction).

    A listener of the state machine's events (services/events.py), registered by `create_app`.
    """
    if event.action not in REPORTED_ACTIONS:
        return
    origin = split_external_id(ticket)
    if origin is None:
        return
    if origin[0] not in centres():
        log.warning("ticket %s came from centre %s, which is no longer configured; not reported",
                    ticket.number, origin[0])
        return
    db.session.flush()  # the ticket's and the event's ids
    outbox.emit(REPORT_UPSTREAM, ticket.id, event.id)


def report_payload(ticket: Ticket, event: TicketEvent, order_no: str) -> dict[str, Any]:
    """What the centre is told about one event of its order."""
    at = event.at if event.at.tzinfo else event.at.replace(tzinfo=UTC)
    return {
        "order_no": order_no,
        "ticket": ticket.number,
        "status": event.to_status or ticket.status,
        "at": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "note": event.note if event.public else "",
    }


class ReportFailed(Exception):
    """The centre did not take the report; the outbox retries it."""


def already_reported(ticket: Ticket, event_id: int) -> bool:
    rows = db.session.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket.id, TicketEvent.action == REPORT_ACTION)
    )
    return any((row.detail or {}).get("event_id") == event_id for row in rows)


def report(ticket_id: int, event_id: int, now: datetime | None = None) -> str:
    """Post one event to the centre's callback URL; raises `ReportFailed` so it is retried.

    Idempotent: an event already reported is not posted again. A success is written on
    the ticket as an internal event `upstream_report`; failures are in the outbox row's
    last error and the log.
    """
    import requests

    ticket = db.session.get(Ticket, ticket_id)
    event = db.session.get(TicketEvent, event_id)
    if ticket is None or event is None or event.ticket_id != ticket.id:
        return "no such ticket or event"
    origin = split_external_id(ticket)
    if origin is None:
        return "not an upstream ticket"
    centre = centres().get(origin[0])
    if centre is None:
        log.warning("centre %s of ticket %s is not configured; report dropped", origin[0], ticket.number)
        return "centre not configured"
    if already_reported(ticket, event.id):
        return "already reported"
    now = now or utcnow()
    body = json.dumps(report_payload(ticket, event, origin[1]), ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")
    log.info("reporting ticket %s (%s) to centre %s", ticket.number, event.to_status, centre.id)
    try:
        response = requests.post(centre.callback_url, data=body,
                                 headers=signed_headers(centre, body, now), timeout=CALLBACK_TIMEOUT)
    except requests.RequestException as exc:
        log.warning("report of ticket %s to centre %s failed: %s", ticket.number, centre.id,
                    type(exc).__name__)
        raise ReportFailed(f"centre {centre.id}: {type(exc).__name__}") from None
    if not 200 <= response.status_code < 300:
        log.warning("centre %s answered %s to the report of ticket %s",
                    centre.id, response.status_code, ticket.number)
        raise ReportFailed(f"centre {centre.id} answered HTTP {response.status_code}")
    db.session.add(TicketEvent(
        ticket=ticket, at=now, actor_kind="system", actor_id=None, action=REPORT_ACTION,
        from_status=None, to_status=None, note="", public=False,
        detail={"centre": centre.id, "event_id": event.id, "status": event.to_status,
                "status_code": response.status_code},
    ))
    db.session.commit()
    return f"reported {event.to_status} to {centre.id} ({response.status_code})"
