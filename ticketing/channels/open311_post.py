"""Open311 POST requests: an app's form post becomes a ticket through the one intake call.

Order of checks: the client app's api_key (403), its rate limit (429), arguments
that are not text as sent -- invalid UTF-8, a NUL byte -- (400, each named), the
jurisdiction (404/400), the service_code (400/404), the place and fields (400), then
intake. Every POST files a new ticket: GeoReport v2 has no idempotency key, so a
retried POST files twice. The ticket's external id is a fresh random token, which
`GET tokens/{token}` answers.

Kept in `Ticket.extra`: the answers to the category's attributes, keyed by their
codes, and under the reserved key "_open311" the client app's key id and what the
app sent that we do not otherwise use (email, device_id, account_id, media_url).
"""
from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from flask_babel import force_locale
from werkzeug.datastructures import MultiDict

from ticketing.channels.open311 import (
    CHANNEL,
    Open311Error,
    attribute_definitions,
    find_service,
    is_true,
    jurisdiction_ids,
    service_notice,
)
from ticketing.channels.open311_format import parse_w3c, w3c
from ticketing.extensions import db
from ticketing.labels import locale_of
from ticketing.models import (
    ApiKey,
    Building,
    Category,
    KeyKind,
    SlaTier,
    Ticket,
)
from ticketing.services import apikeys, emergency, geo, intake, placing, ratelimit
from ticketing.services.errors import InvalidInput, ValidationFailed
from ticketing.services.lifecycle import Actor
from ticketing.services.photos import PhotoStore

RESERVED_KEY = "_open311"
MAX_ATTRIBUTE_TEXT = {"string": 200, "text": intake.MAX_DESCRIPTION}
MAX_CLIENT_ID = 100
MAX_EMAIL = 254
MAX_URL = 1000
NO_PLACE = "address_string or lat/long inside the jurisdiction required"
# intake's field names → the Open311 arguments they come from.
FIELD_NAMES = {
    "description": "description",
    "phone": "phone",
    "name": "first_name/last_name",
    "address_text": "address_string",
    "location": "lat/long",
    "category_id": "service_code",
    "community_id": "address_string",
    "complex_id": "address_string",
    "building_id": "address_id",
    "grid_id": "lat/long",
}


def authenticate(key: str | None, now: datetime) -> ApiKey:
    """The client app's active Open311 key; `Open311Error(403)` otherwise."""
    key = (key or "").strip()
    if not key:
        raise Open311Error(403, "api_key is missing -- can't proceed with create_request.")
    row = apikeys.verify(KeyKind.OPEN311, key, now)
    if row is None:
        raise Open311Error(403, "Invalid api_key received -- can't proceed with create_request.")
    return row


def check_rate(row: ApiKey, now: datetime) -> None:
    """Count this POST against the key's limit; `Open311Error(429)` with Retry-After beyond it."""
    try:
        ratelimit.check("open311_key", str(row.id), now)
    except ratelimit.RateLimited as exc:
        raise Open311Error(429, f"too many requests with this api_key; retry after {exc.retry_after} s",
                           headers={"Retry-After": str(exc.retry_after)}) from None


# --- attributes --------------------------------------------------------------


def posted_attributes(form: MultiDict[str, str]) -> dict[str, list[str]]:
    """`attribute[code]=v` and `attribute[code][]=v` (repeated) as {code: [values]}."""
    posted: dict[str, list[str]] = {}
    for name in form:
        if not name.startswith("attribute[") or not name.endswith("]"):
            continue
        code = name[len("attribute["):-1].removesuffix("][")
        if code and "[" not in code and "]" not in code:
            posted.setdefault(code, []).extend(v for v in form.getlist(name) if v.strip())
    return posted


class BadAnswer(ValueError):
    """An attribute's answer is not valid; the message says why ("must be …")."""


def attribute_value(definition: dict[str, Any], values: list[str], tz: tzinfo) -> Any:
    """One attribute's answer as stored; `ValueError` when it is not valid (`BadAnswer` says why)."""
    datatype = str(definition.get("datatype") or "string")
    if datatype == "multivaluelist":
        keys = {str(v.get("key", "")) for v in definition.get("values") or [] if isinstance(v, dict)}
        chosen = list(dict.fromkeys(v.strip() for v in values))
        if any(v not in keys for v in chosen):
            raise BadAnswer("must be keys of its values list")
        return chosen
    if len(values) > 1:
        raise BadAnswer("takes one value")
    value = values[0].strip()
    if datatype == "singlevaluelist":
        keys = {str(v.get("key", "")) for v in definition.get("values") or [] if isinstance(v, dict)}
        if value not in keys:
            raise BadAnswer("must be one of the keys of its values list")
        return value
    if datatype == "number":
        number = float(value)  # ValueError for anything but a number
        if not math.isfinite(number):
            raise BadAnswer("must be a finite number")
        return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
    if datatype == "datetime":
        return w3c(parse_w3c(value, tz), tz)
    text = intake.clean_text(value, multiline=datatype == "text")
    limit = MAX_ATTRIBUTE_TEXT.get(datatype, MAX_ATTRIBUTE_TEXT["string"])
    if len(text) > limit:
        raise BadAnswer(f"may be at most {limit} characters")
    return text


def check_attributes(category: Category, form: MultiDict[str, str], tz: tzinfo,
                     errors: list[str]) -> dict[str, Any]:
    """The answers to the category's attributes, keyed by code; problems go to `errors`.

    Attributes the category does not define are ignored.
    """
    posted = posted_attributes(form)
    answers: dict[str, Any] = {}
    for definition in attribute_definitions(category):
        code = str(definition["code"])
        if not is_true(definition.get("variable"), default=True):
            continue
        values = posted.get(code, [])
        if not values:
            if is_true(definition.get("required")):
                errors.append(f"attribute[{code}] is required")
            continue
        try:
            answers[code] = attribute_value(definition, values, tz)
        except BadAnswer as exc:
            errors.append(f"attribute[{code}] {exc}")
        except ValueError:
            errors.append(f"attribute[{code}] is not a valid {definition.get('datatype') or 'string'}")
    return answers


# --- place -------------------------------------------------------------------


@dataclass
class Place:
    """Where the request is, as intake's place ids."""

    community_id: int | None = None
    complex_id: int | None = None
    building_id: int | None = None
    grid_id: int | None = None
    lat: float | None = None
    lon: float | None = None


def point(form: MultiDict[str, str], errors: list[str]) -> tuple[float, float] | None:
    """lat and long as WGS-84 degrees, or None when neither is given."""
    raw_lat, raw_lon = (form.get("lat") or "").strip(), (form.get("long") or "").strip()
    if not raw_lat and not raw_lon:
        return None
    try:
        lat, lon = float(raw_lat), float(raw_lon)
    except ValueError:
        errors.append("lat and long must both be given, as WGS-84 degrees")
        return None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        errors.append("lat must lie within -90..90 and long within -180..180")
        return None
    return lat, lon


def locate(street_ids: Sequence[int], form: MultiDict[str, str], errors: list[str]) -> Place:
    """Place the request: address_id (a building id), else a complex named in address_string
    (from the cached place names: services/placing.py), else the grid whose boundary holds lat/long."""
    reported = len(errors)
    place = Place()
    found = point(form, errors)
    if found is not None:
        place.lat, place.lon = found
    raw_id = (form.get("address_id") or "").strip()
    if raw_id:
        known = raw_id.isdigit() and len(raw_id) < 10
        above = placing.building_place(int(raw_id)) if known else None  # open buildings, cached
        if above is not None:
            street_id: int | None = above.street_id
        else:  # a deactivated building is still this jurisdiction's: intake says it cannot be chosen
            building = db.session.get(Building, int(raw_id)) if known else None
            street_id = building.complex.grid.community.street_id if building is not None else None
        if street_id is None or street_id not in street_ids:
            errors.append("address_id is not a building of this jurisdiction")
        else:
            place.building_id = int(raw_id)
        return place
    text = intake.clean_text(form.get("address_string"))
    if text:
        named = placing.place_in_streets(street_ids, text)
        if named is not None:
            place.community_id, place.complex_id, place.building_id = (
                named.community_id, named.complex_id, named.building_id)
            return place
    if found is not None:
        # A deactivated grid (or one under a deactivated place) takes no new tickets.
        grid = geo.open_grid_at(*found, street_ids=street_ids)
        if grid is not None:
            place.community_id, place.grid_id = grid.community_id, grid.id
            return place
    if len(errors) == reported:
        errors.append(NO_PLACE)
    return place


# --- the request -------------------------------------------------------------


def requester_name(form: MultiDict[str, str]) -> str:
    """first_name and last_name as one name: 张 + 三丰 → 张三丰; John + Smith → John Smith."""
    first = intake.clean_text(form.get("first_name"))
    last = intake.clean_text(form.get("last_name"))
    if all("\u4e00" <= ch <= "\u9fff" for ch in first + last):
        return last + first
    return " ".join(part for part in (first, last) if part)


def client_details(form: MultiDict[str, str], key: ApiKey, errors: list[str]) -> dict[str, Any]:
    """What the app sent about its user that we keep but do not use, with the key's id."""
    sent = {name: intake.clean_text(form.get(name)) for name in ("email", "media_url", "device_id", "account_id")}
    if sent["email"] and ("@" not in sent["email"] or len(sent["email"]) > MAX_EMAIL):
        errors.append("email is not an e-mail address")
    url = sent["media_url"]
    if url and (not url.startswith(("http://", "https://")) or len(url) > MAX_URL):
        errors.append(f"media_url must be an http(s) URL of at most {MAX_URL} characters")
    for name in ("device_id", "account_id"):
        if len(sent[name]) > MAX_CLIENT_ID:
            errors.append(f"{name} may be at most {MAX_CLIENT_ID} characters")
    return {"api_key_id": key.id, **{name: value for name, value in sent.items() if value}}


@dataclass
class Filed:
    """A ticket an Open311 POST filed, with what the response tells the app."""

    ticket: Ticket
    token: str
    tier: SlaTier
    account_id: str | None = None
    category: Category | None = None

    def document(self, lang: str) -> list[dict[str, Any]]:
        """The POST response: `<service_requests><request>` with the ticket number and token;
        the notice adds what to do at once when the request describes an emergency."""
        guidance = emergency.for_request(self.category, self.ticket.description or "", lang)
        notice = " ".join(filter(None, (emergency.short_text(guidance, lang), service_notice(self.tier, lang))))
        return [{
            "service_request_id": self.ticket.number,
            "service_notice": notice,
            "account_id": self.account_id,
            "token": self.token,
        }]


def intake_errors(exc: ValidationFailed) -> list[str]:
    """intake's field problems, named by the Open311 arguments, in English."""
    with force_locale(locale_of("en")):
        return [f"{FIELD_NAMES.get(name, name)}: {message}" for name, message in exc.errors.items()]


def file_request(form: MultiDict[str, str], now: datetime, tz: tzinfo, store: PhotoStore,
                 max_photo_bytes: int, unreadable: Sequence[str] = ()) -> Filed:
    """File an app's POST as a ticket (see the module's docstring for the order of checks).

    `unreadable` says which arguments were not text as sent (channels/rawform.py).
    """
    key = authenticate(form.get("api_key"), now)
    check_rate(key, now)
    if unreadable:
        raise Open311Error(400, *unreadable)
    street_ids = jurisdiction_ids(form.get("jurisdiction_id"))
    code = (form.get("service_code") or "").strip()
    if not code:
        raise Open311Error(400, "service_code was not provided")
    category = find_service(code)
    if category is None:
        raise Open311Error(404, f"service_code {code[:64]!r} was not found")
    errors: list[str] = []
    if not (form.get("description") or "").strip():
        errors.append("description is required: what is wrong, and where")
    phone = (form.get("phone") or "").strip()
    if not phone:
        errors.append("phone is required: the requester's mainland mobile number, e.g. 13812345678")
    elif intake.clean_phone(phone) is None:
        errors.append("phone is not a mainland mobile number (11 digits, e.g. 13812345678)")
    answers = check_attributes(category, form, tz, errors)
    place = locate(street_ids, form, errors)
    details = client_details(form, key, errors)
    if errors:
        raise Open311Error(400, *errors)
    token = secrets.token_urlsafe(18)
    req = intake.IntakeRequest(
        channel=CHANNEL, external_id=token, description=form.get("description") or "", phone=phone,
        name=requester_name(form), category_id=category.id,
        community_id=place.community_id, complex_id=place.complex_id, building_id=place.building_id,
        grid_id=place.grid_id, lat=place.lat, lon=place.lon,
        address_text=form.get("address_string") or "",
        extra={**answers, RESERVED_KEY: details},
    )
    try:
        # looked_up: the external id is the token made just above, which no ticket has yet.
        ticket, _ = intake.submit(req, Actor.resident(), now, tz, store, max_photo_bytes, max_photos=0,
                                  looked_up=True)
    except ValidationFailed as exc:
        raise Open311Error(400, *intake_errors(exc)) from None
    except InvalidInput as exc:
        raise Open311Error(400, f"the request could not be filed: {exc}") from None
    # Read while the category (and so its tiers) is still held: from the session, no SELECT.
    return Filed(ticket, token, ticket.tier, details.get("account_id"), category)
