"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2): what the public may read.

Services are our leaf categories; a jurisdiction is a street (`jurisdiction_id` is
its code); a service request is a ticket, its `service_request_id` the ticket
number. Filing a request is in `open311_post.py`, the XML/JSON writing in
`open311_format.py`, the HTTP side in `ticketing/api/open311.py`; see docs/open311.md.

Only tickets of public categories are read here (services/publication.py); any other
is absent from lists and answered by number exactly as a number never issued. Nothing
here shows who asked: no name, phone, room or WeChat id, and the free text of a
request is shown with mobile numbers, the requester's name and room masked.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from flask_babel import format_timedelta
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload
from werkzeug.datastructures import MultiDict

from ticketing.channels.open311_format import parse_w3c, w3c
from ticketing.extensions import db
from ticketing.models import (
    OPEN_STATUSES,
    Category,
    Channel,
    Grid,
    HandlerKind,
    SlaTier,
    Street,
    Ticket,
    TicketEvent,
)
from ticketing.services import refcache
from ticketing.services.catalog import leaf_categories
from ticketing.services.privacy import mask_text
from ticketing.services.publication import publicly_listed

CHANNEL = Channel.OPEN311.value
SPEC_URL = "http://wiki.open311.org/GeoReport_v2"
# When this endpoint's behaviour last changed (the discovery document's changeset).
CHANGESET = "2026-11-21T00:00:00+08:00"
MAX_REQUESTS = 1000
DEFAULT_SPAN = timedelta(days=90)
# Positions are shown to about 10 m: the building, not the flat.
COORDINATE_DIGITS = 4
STATUSES = ("open", "closed")
TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Our ticket numbers ("261121-0042"); anything else, a NUL above all, is looked up as nothing.
NUMBER = re.compile(r"[0-9A-Za-z-]{1,20}")


class Open311Error(Exception):
    """A request answered with the spec's error document: one or more (code, description)."""

    def __init__(self, status: int, *descriptions: str, headers: dict[str, str] | None = None) -> None:
        super().__init__("; ".join(descriptions))
        self.status = status
        self.descriptions = descriptions
        self.headers = headers or {}

    def document(self) -> list[dict[str, Any]]:
        """The `<errors>` document."""
        return [{"code": self.status, "description": text} for text in self.descriptions]


def language(locale: str | None, accepted: str | None) -> str:
    """"en" when the client asks for English (`locale`, else Accept-Language), else "zh"."""
    choice = (locale or accepted or "").strip().lower().replace("_", "-")
    return "en" if choice == "en" or choice.startswith("en-") else "zh"


def localized(row: Any, field: str, lang: str) -> str:
    """`<field>_en` of a row in English when it has one, else `<field>_zh`."""
    english = getattr(row, f"{field}_en", "") if lang == "en" else ""
    return str(english or getattr(row, f"{field}_zh", "") or "")


def jurisdiction(jurisdiction_id: str | None) -> list[Street]:
    """The streets a request is about: the one named, or the only one we serve."""
    code = (jurisdiction_id or "").strip()
    if code:
        street = db.session.scalar(select(Street).where(Street.code == code))
        if street is None:
            raise Open311Error(404, f"jurisdiction_id {code[:64]!r} was not found")
        return [street]
    streets = list(db.session.scalars(select(Street).order_by(Street.code).limit(2)))
    if len(streets) == 1:
        return streets
    if not streets:
        raise Open311Error(404, "no jurisdiction is served here yet")
    raise Open311Error(400, "jurisdiction_id was not provided; this endpoint serves several streets")


def jurisdiction_ids(jurisdiction_id: str | None) -> tuple[int, ...]:
    """The ids of `jurisdiction`'s streets, cached (services/refcache.py); the same errors."""
    code = (jurisdiction_id or "").strip()
    return refcache.remember(("open311 jurisdiction", code),
                             lambda: tuple(s.id for s in jurisdiction(code))) or ()


# --- services ----------------------------------------------------------------


def service_ids() -> dict[str, int]:
    """Every service code with its category's id (cached: services/refcache.py)."""
    return refcache.remember(("open311 services",), lambda: {c.code: c.id for c in leaf_categories()}) or {}


def find_service(code: str) -> Category | None:
    """The active leaf category with this service code, with its tiers (cached: no SQL when fresh)."""
    category_id = service_ids().get(code)
    return None if category_id is None else refcache.category(category_id)


def service_record(category: Category, lang: str) -> dict[str, Any]:
    """One `<service>` of the service list."""
    group = category.group
    return {
        "service_code": category.code,
        "service_name": localized(category, "name", lang),
        "description": localized(category, "hint", lang) or localized(group, "hint", lang),
        "metadata": bool(category.extra_fields),
        "type": "realtime",
        "keywords": ", ".join((category.keywords or "").split()),
        "group": localized(group, "name", lang),
    }


def service_list(lang: str) -> list[dict[str, Any]]:
    """The `<services>` document: every leaf category residents can choose."""
    return [service_record(category, lang) for category in leaf_categories()]


def order_of(field: dict[str, Any], default: int = 0) -> int:
    """An extra field's display order; `default` when it has none that is a number."""
    try:
        return int(field.get("order") or default)
    except (TypeError, ValueError):
        return default


def attribute_definitions(category: Category) -> list[dict[str, Any]]:
    """The category's extra fields that have a code, in their display order."""
    fields = [f for f in category.extra_fields or [] if isinstance(f, dict) and str(f.get("code") or "")]
    return sorted(fields, key=lambda f: (order_of(f), str(f["code"])))


def is_true(value: Any, default: bool = False) -> bool:
    """A boolean of an extra-field definition, which may be written as text."""
    if value is None:
        return default
    return value is True or str(value).strip().lower() in ("true", "1", "yes")


def service_definition(category: Category) -> dict[str, Any]:
    """The `<service_definition>` document: the category's extra fields as attributes."""
    attributes = []
    for position, field in enumerate(attribute_definitions(category), start=1):
        attributes.append({
            "variable": is_true(field.get("variable"), default=True),
            "code": str(field["code"]),
            "datatype": str(field.get("datatype") or "string"),
            "required": is_true(field.get("required")),
            "datatype_description": str(field.get("datatype_description") or ""),
            "order": order_of(field, position),
            "description": str(field.get("description") or ""),
            "values": [{"key": str(v.get("key", "")), "name": str(v.get("name", ""))}
                       for v in field.get("values") or [] if isinstance(v, dict)],
        })
    return {"service_code": category.code, "attributes": attributes}


# --- service requests --------------------------------------------------------


def grid_label(grid: Grid) -> str:
    """The grid's name with its community's in front, unless the name carries it already."""
    community = grid.community.name
    return grid.name if grid.name.startswith(community) else community + grid.name


def agency(ticket: Ticket) -> str:
    """Who handles the ticket: its property company, team or grid, else its community."""
    if ticket.company is not None:
        return ticket.company.name
    if ticket.team is not None:
        return ticket.team.name
    if ticket.grid is not None and (ticket.handler_kind == HandlerKind.GRID_WORKER or ticket.assignee_id):
        return grid_label(ticket.grid)
    return ticket.community.name


def public_address(ticket: Ticket) -> str:
    """The building (or complex, grid, community) the ticket is placed in.

    Never the address as typed: it may carry a room, a name or a phone number.
    """
    if ticket.complex is not None:
        building = ticket.building.name if ticket.building is not None else ""
        return ticket.community.name + ticket.complex.name + building
    if ticket.grid is not None:
        return grid_label(ticket.grid)
    return ticket.community.name


def public_text(text: str, ticket: Ticket) -> str:
    """Free text as the public may read it: the staff pages' masking rule (services/privacy.py)."""
    return mask_text(text, ticket)


def service_notice(tier: SlaTier, lang: str) -> str:
    """What the time limits of the ticket's tier promise, in the request's language."""
    def span(minutes: int) -> str:
        unit = "day" if tier.working_days else ("hour" if minutes % 60 == 0 else "minute")
        return format_timedelta(timedelta(minutes=minutes), granularity=unit, threshold=10**6)

    values = {"tier": localized(tier, "name", lang), "accept": span(tier.accept_minutes),
              "resolve": span(tier.resolve_minutes)}
    if tier.working_days:
        return _("%(tier)s: accepted within %(accept)s and resolved within %(resolve)s, "
                 "counting working days only.", **values)
    return _("%(tier)s: accepted within %(accept)s and resolved within %(resolve)s.", **values)


def open311_status(ticket: Ticket) -> str:
    """open while the ticket needs work; closed once resolved, closed, rejected or merged."""
    return "open" if ticket.status in OPEN_STATUSES else "closed"


def request_record(ticket: Ticket, note: str, tz: tzinfo, lang: str) -> dict[str, Any]:
    """One `<request>` of the service requests document, in the spec's element order."""
    def coordinate(value: float | None) -> float | None:
        return round(value, COORDINATE_DIGITS) if value is not None else None

    return {
        "service_request_id": ticket.number,
        "status": open311_status(ticket),
        "status_notes": public_text(note, ticket),
        "service_name": localized(ticket.category, "name", lang),
        "service_code": ticket.category.code,
        "description": public_text(ticket.description, ticket),
        "agency_responsible": agency(ticket),
        "service_notice": service_notice(ticket.tier, lang),
        "requested_datetime": w3c(ticket.created_at, tz),
        "updated_datetime": w3c(ticket.updated_at, tz),
        "expected_datetime": w3c(ticket.current_deadline, tz),
        "address": public_address(ticket),
        "address_id": ticket.building_id,
        "zipcode": None,
        "lat": coordinate(ticket.lat),
        "long": coordinate(ticket.lon),
        # Photos are shown only to the requester and staff, so none is linked here.
        "media_url": None,
    }


def latest_public_notes(ticket_ids: Sequence[int]) -> dict[int, str]:
    """Each ticket's latest public note (its status_notes), by ticket id."""
    if not ticket_ids:
        return {}
    latest = (
        select(func.max(TicketEvent.id))
        .where(TicketEvent.ticket_id.in_(ticket_ids), TicketEvent.public.is_(True), TicketEvent.note != "")
        .group_by(TicketEvent.ticket_id)
    )
    rows = db.session.execute(select(TicketEvent.ticket_id, TicketEvent.note).where(TicketEvent.id.in_(latest)))
    return {ticket_id: note for ticket_id, note in rows}


def request_records(tickets: Sequence[Ticket], tz: tzinfo, lang: str) -> list[dict[str, Any]]:
    """The `<service_requests>` document of these tickets."""
    notes = latest_public_notes([t.id for t in tickets])
    return [request_record(t, notes.get(t.id, ""), tz, lang) for t in tickets]


@dataclass(frozen=True)
class RequestQuery:
    """The filters of GET requests, checked; `numbers` overrides all the others."""

    start: datetime
    end: datetime
    numbers: tuple[str, ...] = ()
    service_codes: tuple[str, ...] = ()
    statuses: frozenset[str] = frozenset()


def listed(args: MultiDict[str, str], name: str) -> list[str]:
    """A comma-separated argument (also given several times) as its non-empty items."""
    return [item.strip() for value in args.getlist(name) for item in value.split(",") if item.strip()]


def parse_date(args: MultiDict[str, str], name: str, tz: tzinfo) -> datetime | None:
    """A W3C datetime argument; `Open311Error(400)` when it is not one."""
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return parse_w3c(raw, tz)
    except ValueError:
        raise Open311Error(400, f"{name} must be a W3C datetime, e.g. 2010-01-01T00:00:00Z") from None


def parse_query(args: MultiDict[str, str], now: datetime, tz: tzinfo) -> RequestQuery:
    """The filters of GET requests; the range defaults to the last 90 days and may not span more."""
    numbers = listed(args, "service_request_id")
    if len(numbers) > MAX_REQUESTS:
        raise Open311Error(400, f"at most {MAX_REQUESTS} service_request_id values at once")
    statuses = frozenset(listed(args, "status"))
    if statuses - set(STATUSES):
        raise Open311Error(400, "status must be open or closed (comma-separated for both)")
    start, end = parse_date(args, "start_date", tz), parse_date(args, "end_date", tz)
    if start is not None and end is not None:
        if start > end:
            raise Open311Error(400, "start_date is after end_date")
        if end - start > DEFAULT_SPAN:
            raise Open311Error(400, "start_date and end_date may not span more than 90 days")
    elif start is not None:
        end = start + DEFAULT_SPAN
    else:
        end = end or now
        start = end - DEFAULT_SPAN
    return RequestQuery(start, end, tuple(numbers), tuple(listed(args, "service_code")), statuses)


def with_relations() -> Any:
    """What a request record reads of a ticket, loaded with it."""
    return (joinedload(Ticket.category), joinedload(Ticket.tier), joinedload(Ticket.community),
            joinedload(Ticket.grid).joinedload(Grid.community), joinedload(Ticket.complex),
            joinedload(Ticket.building), joinedload(Ticket.company), joinedload(Ticket.team))


def find_requests(streets: Sequence[Street], query: RequestQuery) -> list[Ticket]:
    """The public tickets of these streets the query asks for, newest first, at most 1000."""
    stmt = select(Ticket).where(Ticket.street_id.in_([s.id for s in streets]), publicly_listed())
    if query.numbers:
        stmt = stmt.where(Ticket.number.in_(query.numbers))
    else:
        stmt = stmt.where(Ticket.created_at >= query.start, Ticket.created_at <= query.end)
        if query.service_codes:
            stmt = stmt.join(Ticket.category).where(Category.code.in_(query.service_codes))
        if query.statuses == {"open"}:
            stmt = stmt.where(Ticket.status.in_(OPEN_STATUSES))
        elif query.statuses == {"closed"}:
            stmt = stmt.where(Ticket.status.not_in(OPEN_STATUSES))
    stmt = stmt.options(*with_relations()).order_by(Ticket.created_at.desc(), Ticket.id.desc())
    return list(db.session.scalars(stmt.limit(MAX_REQUESTS)).unique())


def find_request(streets: Sequence[Street], number: str) -> Ticket:
    """The public ticket with this number in these streets; `Open311Error(404)` otherwise."""
    # A private ticket gets the very 404 of a number never issued: numbers are
    # sequential, so any difference would let a caller count the private ones.
    ticket = None
    if NUMBER.fullmatch(number):
        ticket = db.session.scalar(
            select(Ticket).where(Ticket.number == number, Ticket.street_id.in_([s.id for s in streets]),
                                 publicly_listed())
            .options(*with_relations())
        )
    if ticket is None:
        raise Open311Error(404, f"service_request_id {number[:40]!r} was not found")
    return ticket


def find_token(streets: Sequence[Street], token: str) -> Ticket:
    """The ticket an Open311 POST filed under this token, private ones too; 404 otherwise."""
    # Only the filing app holds the token; the number lets the resident follow a
    # private request on the /track page.
    ticket = None
    if TOKEN.fullmatch(token):
        ticket = db.session.scalar(select(Ticket).where(
            Ticket.channel == CHANNEL, Ticket.external_id == token,
            Ticket.street_id.in_([s.id for s in streets]),
        ))
    if ticket is None:
        raise Open311Error(404, "token was not found")
    return ticket


def discovery(endpoint_url: str, public_url: str, production: bool) -> dict[str, Any]:
    """The service discovery document (http://wiki.open311.org/Service_Discovery)."""
    return {
        "changeset": CHANGESET,
        "contact": f"Ask the operators of {public_url}.",
        "key_service": f"API keys for posting requests are issued by the operators of {public_url}.",
        "endpoints": [{
            "specification": SPEC_URL,
            "url": endpoint_url,
            "changeset": CHANGESET,
            "type": "production" if production else "test",
            "formats": ["text/xml", "application/json"],
        }],
    }
