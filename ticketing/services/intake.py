"""The one intake call every channel ends in.

normalise and bound the text → idempotency (channel + external id) → place it
(services/placing.py) → classify → store ticket, first event, photos and the routing
job's outbox row in one transaction. Routing itself comes after, in the dispatcher (services/routing.py).
"""
from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import cache
from typing import Any, TypeVar

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnDefault, Table, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import class_mapper, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from ticketing.extensions import db
from ticketing.models import (
    Category,
    Channel,
    Photo,
    SlaTier,
    Status,
    Ticket,
    TicketEvent,
)
from ticketing.queues import HIGH, ROUTE_TICKET
from ticketing.services import (
    classify,
    events,
    notify,
    numbering,
    outbox,
    phones,
    placing,
    refcache,
)
from ticketing.services.errors import Busy, InvalidInput, ValidationFailed
from ticketing.services.lifecycle import Actor
from ticketing.services.photos import PhotoStore, clean_photo
from ticketing.services.placing import Placement

T = TypeVar("T")

MAX_DESCRIPTION = 2000
MAX_NAME = 32
MAX_ADDRESS = 200
MAX_ROOM = 64
DEFAULT_TIER = "general"
# Where a request goes when its channel has no category picker and nothing was guessed.
FALLBACK_CATEGORY = "suggestion.general"
MOBILE = re.compile(r"^1[3-9]\d{9}$")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass
class IntakeRequest:
    """What a channel hands to intake, before any checking."""

    channel: str
    description: str
    phone: str
    name: str = ""
    category_id: int | None = None
    community_id: int | None = None
    complex_id: int | None = None
    building_id: int | None = None
    # A grid known without a building, e.g. the phone's location placed in a grid polygon.
    grid_id: int | None = None
    address_text: str = ""
    unit_room: str = ""
    external_id: str | None = None
    photos: list[bytes] = field(default_factory=list)
    # The WeChat official account follower who sent it (channel wechat_oa).
    openid: str | None = None
    # Where the reporter was (WGS-84), when the channel gave a location.
    lat: float | None = None
    lon: float | None = None
    # Answers to the category's extra fields (Open311 attributes), keyed by field code.
    extra: dict[str, object] = field(default_factory=dict)
    # A channel without a category picker (WeChat), or a resident who answered "not
    # sure", sets this: with no category_id the classifier's guess is used, else
    # FALLBACK_CATEGORY. Staff forms keep requiring one.
    guess_category: bool = False
    # Staff ticked "no phone" (walk-in, hall, phone, WeChat group: services/phones.py):
    # an empty phone is then accepted, and no SMS will be attempted.
    no_phone: bool = False


def clean_text(value: str | None, multiline: bool = False) -> str:
    """NFC-normalise, drop control characters, collapse spaces, trim.

    NFC rather than NFKC: NFKC would turn Chinese punctuation (，！？（）) into ASCII.
    """
    text = unicodedata.normalize("NFC", value or "")
    text = CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    if not multiline:
        text = " ".join(text.split())
    else:
        text = "\n".join(" ".join(line.split()) for line in text.split("\n"))
        text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def clean_phone(value: str | None) -> str | None:
    """A mainland mobile number from what was typed, or None if it is not one."""
    # NFKC turns full-width digits and plus signs (１３８, ＋86) into ASCII.
    digits = re.sub(r"[\s\-()]", "", unicodedata.normalize("NFKC", clean_text(value)))
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    return digits if MOBILE.match(digits) else None


def valid_location(lat: float | None, lon: float | None) -> bool:
    """Both absent, or both finite and on the globe."""
    if lat is None or lon is None:
        return lat is None and lon is None
    return math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180


def validate(
    req: IntakeRequest,
) -> tuple[dict[str, object], Placement | None, Category | None, classify.Guess]:
    """Normalise `req` in place, classify its text, and collect every problem at once."""
    errors: dict[str, object] = {}
    req.description = clean_text(req.description, multiline=True)
    req.name = clean_text(req.name)
    req.address_text = clean_text(req.address_text)
    req.unit_room = clean_text(req.unit_room)
    if req.channel not in {c.value for c in Channel}:
        errors["channel"] = _l("Unknown channel.")
    if not req.description:
        errors["description"] = _l("Please describe the problem.")
    elif len(req.description) > MAX_DESCRIPTION:
        errors["description"] = _l("Please keep the description under %(n)d characters.", n=MAX_DESCRIPTION)
    if len(req.name) > MAX_NAME:
        errors["name"] = _l("The name is too long.")
    if len(req.address_text) > MAX_ADDRESS:
        errors["address_text"] = _l("The address is too long.")
    if len(req.unit_room) > MAX_ROOM:
        errors["unit_room"] = _l("The unit and room are too long.")
    if not valid_location(req.lat, req.lon):
        errors["location"] = _l("The location is not a valid latitude and longitude.")
    check_phone(req, errors)
    bounded = 0 < len(req.description) <= MAX_DESCRIPTION
    guess = classify.classify(req.description) if bounded else classify.Guess(None, 0.0)
    # With its tiers, from the cache: storing the ticket then reads no catalogue row.
    category = refcache.category(req.category_id) if req.category_id else None
    if category is None and req.category_id is None and req.guess_category and req.description:
        category = guessed_category(guess)
    if category is None or not category.active:
        errors["category_id"] = _l("Choose what kind of problem it is.")
    placement = placing.resolve(req.building_id, req.complex_id, req.community_id, req.grid_id,
                                req.address_text, errors)
    return errors, placement, category, guess


def check_phone(req: IntakeRequest, errors: dict[str, object]) -> None:
    """Store the phone as services/phones.py says: a mobile on every door; on the doors
    where staff take the request, a landline with its area code or, when they ticked
    "no phone" and typed none, nothing (a group-chat message needs no tick: its requester
    is the group nickname). Else the problem goes in `errors`."""
    phone = clean_phone(req.phone)
    if phone is None and phones.accepts_landline(req.channel):
        phone = phones.clean_landline(req.phone)
        none_said = req.no_phone or req.channel == Channel.WECHAT_GROUP
        if phone is None and none_said and not phones.digits_of(req.phone):
            phone = ""
        if phone is None:
            errors["phone"] = (
                _l("Enter an 11-digit mobile number or a landline with its area code "
                   "(e.g. 0371-12345678), or leave it empty.") if req.channel == Channel.WECHAT_GROUP
                else _l("Enter an 11-digit mobile number or a landline with its area code "
                        "(e.g. 0371-12345678), or tick “No phone”."))
            return
    if phone is None:
        errors["phone"] = _l("Enter an 11-digit mobile number, e.g. 13812345678.")
    else:
        req.phone = phone


def guessed_category(guess: classify.Guess) -> Category | None:
    """The guessed category when it is still active, else the fallback category."""
    if guess.category is not None:
        found = refcache.category(guess.category.id)
        if found is not None and found.active:
            return found
    fallback = refcache.category(FALLBACK_CATEGORY)
    return fallback if fallback is not None and fallback.active else None


def raised_tier(tier: SlaTier, guess: classify.Guess) -> SlaTier | None:
    """The tier of the guess's urgent words when it is more urgent than `tier`, else None."""
    if guess.urgent_tier is None or classify.tier_urgency(guess.urgent_tier) >= classify.tier_urgency(tier):
        return None
    return db.session.get(SlaTier, guess.urgent_tier.id)


# Built once: building a statement for every ticket costs more than running it.
EXISTING = select(Ticket.id).where(Ticket.channel == bindparam("channel"),
                                   Ticket.external_id == bindparam("external_id"))


def find_existing(channel: str, external_id: str | None) -> Ticket | None:
    """The ticket already filed for this (channel, external id), if any."""
    if not external_id:
        return None
    # The id first, over the (channel, external_id) index: a first delivery, the usual
    # case, then reads one column of one index entry instead of the whole row.
    found = db.session.scalar(EXISTING, {"channel": channel, "external_id": external_id})
    return db.session.get(Ticket, found) if found is not None else None


def submit(
    req: IntakeRequest,
    actor: Actor,
    now: datetime,
    tz: tzinfo,
    store: PhotoStore,
    max_photo_bytes: int,
    max_photos: int = 3,
    route: bool = True,
    looked_up: bool = False,
    steps: Steps | None = None,
) -> tuple[Ticket, bool]:
    """File a request; return the ticket and whether it is new.

    The same (channel, external id) filed again returns the first ticket. On
    PostgreSQL the statement that stores a new ticket looks for it first
    (`_store_at_once`), so a first delivery pays no statement for the look-up; a
    repeat that this input no longer passes is looked for before the errors are
    raised. With `looked_up` the caller has just looked for it with `find_existing`,
    or has just made the id itself, so it is not looked for again; a race with another
    delivery still ends in the first ticket, by the unique index. Bad input
    raises `ValidationFailed` with every field's problem, and nothing is stored.
    A new ticket is routed by a job recorded in the same transaction, which first
    writes the resident's "received" message (notify.confirm_receipt), so that the
    request stores three rows and the messages are made in batches behind it. With
    `route` False (a patrol report, the worker's own; the demo's history, moved by
    hand) there is no routing job and the message is written here.

    `steps` are the caller's first steps with a new ticket (a patrol report made the
    worker's own, services/patrol.py): planned by the state machine on the ticket
    before it is stored (lifecycle.plan), which is then stored as they leave it, with
    their events, in the same write, and never half-done. When one raises, nothing is
    stored.
    """
    at_once = _stores_at_once()
    look_up = bool(req.external_id) and not looked_up
    existing = find_existing(req.channel, req.external_id) if look_up and not at_once else None
    if existing is not None:
        return existing, False
    errors, placement, category, guess = validate(req)
    if len(req.photos) > max_photos:
        errors["photos"] = _l("At most %(n)d photos.", n=max_photos)
    cleaned = []
    status = 400
    if "photos" not in errors:
        try:
            cleaned = [clean_photo(data, max_photo_bytes) for data in req.photos]
        except (InvalidInput, Busy) as exc:
            errors["photos"], status = exc.message, exc.status
    if errors:
        # A repeat of a request filed before, which its input no longer passes (a category
        # closed since): the first ticket, as before validating.
        existing = find_existing(req.channel, req.external_id) if look_up and at_once else None
        if existing is not None:
            return existing, False
        raise ValidationFailed(errors, status=status)
    assert placement is not None and category is not None
    tier = category.effective_tier() or db.session.scalar(
        select(SlaTier).where(SlaTier.code == DEFAULT_TIER)
    )
    if tier is None:
        raise InvalidInput(_l("No time-limit tier is configured."))
    urgent = raised_tier(tier, guess)
    try:
        with store.staged() as written:
            ticket, created = _store(req, actor, now, tz, placement, category, urgent or tier, guess,
                                     guess.urgent_words if urgent is not None else (), route=route,
                                     look_up=look_up, steps=steps)
            if not created:  # filed before (`_store_at_once`): nothing written
                return ticket, False
            for photo in cleaned:
                key = store.write(photo, now)
                written.append(key)
                db.session.add(Photo(
                    ticket=ticket, kind="report", storage_key=key,
                    content_type=photo.content_type, size_bytes=len(photo.data), created_at=now,
                ))
            commit_keeping_loaded()
    except IntegrityError:
        db.session.rollback()
        # Two deliveries of one external message raced; the other one stored it.
        existing = find_existing(req.channel, req.external_id)
        if existing is None:
            raise
        return existing, False
    except Exception:
        db.session.rollback()
        raise
    return ticket, True


def commit_keeping_loaded() -> None:
    """Commit without expiring what the session holds.

    The new ticket's values are the ones just written (RETURNING gave the server's),
    so reading `ticket.number` afterwards needs no SELECT.
    """
    session = db.session()
    session.expire_on_commit = False
    try:
        db.session.commit()
    finally:
        session.expire_on_commit = True


def _store(
    req: IntakeRequest,
    actor: Actor,
    now: datetime,
    tz: tzinfo,
    placement: Placement,
    category: Category,
    tier: SlaTier,
    guess: classify.Guess,
    urgent_words: tuple[str, ...],
    route: bool = True,
    look_up: bool = False,
    steps: Steps | None = None,
) -> tuple[Ticket, bool]:
    """Insert the ticket, its submit event and, when it is to be routed, its routing job;
    else write the resident's "received" message now. Returns the ticket and whether it
    is new. With `steps` (not routed), the ticket is inserted as they leave it, their
    events after the submit event, and every event is told to the listeners.

    No unit of work: ORM-enabled INSERT … RETURNING gives back a persistent Ticket
    without a flush or a SELECT after it. On PostgreSQL the number, the ticket, the
    event and the routing job are one statement (`_store_at_once`), which with
    `look_up` first looks for a ticket of the same (channel, external id) and stores
    nothing when there is one: that one is returned. Elsewhere the caller has looked.
    """
    actor_id = actor.user.id if actor.user else None
    values: dict[str, Any] = {
        "channel": req.channel,
        "external_id": req.external_id or None,
        "status": Status.SUBMITTED,
        "category_id": category.id,
        "tier_id": tier.id,
        "street_id": placement.street_id,
        "community_id": placement.community_id,
        "grid_id": placement.grid_id,
        "complex_id": placement.complex_id,
        "building_id": placement.building_id,
        "address_text": req.address_text,
        "unit_room": req.unit_room,
        "description": req.description,
        "requester_name": req.name,
        "requester_phone": req.phone,
        "resident_openid": (req.openid or "").strip()[:64] or None,
        "lat": req.lat,
        "lon": req.lon,
        "extra": dict(req.extra),
        "guess_category_id": guess.category.id if guess.category is not None else None,
        "guess_confidence": guess.confidence if guess.category is not None else None,
        "created_at": now,
        "updated_at": now,
        "created_by_id": actor_id,
    }
    submitted: dict[str, Any] = {
        "at": now, "actor_kind": actor.kind, "actor_id": actor_id, "action": "submit", "from_status": None,
        "to_status": Status.SUBMITTED, "public": True, "note": "", "detail": submit_detail(req.channel, tier, urgent_words),
    }
    assert steps is None or not route, "a ticket its first steps have placed in someone's hands is not routed"
    values, planned = _planned(values, category, tier, steps)
    logged = [submitted, *planned]
    if _stores_at_once():
        stored = _store_at_once(values, logged, now, tz, route, look_up)
        if isinstance(stored, Ticket):
            if steps is not None:  # what they changed beside the draft (a handler's row) is not kept
                for touched in list(db.session.dirty):
                    db.session.expire(touched)
            return stored, False
        ticket, events_stored = stored
        _with_reference(ticket, category, tier)
    else:
        ticket = _with_reference(db.session.scalars(
            insert(Ticket).returning(Ticket), [dict(values, number=numbering.next_ticket_number(now, tz))]).one(),
            category, tier)
        logged = [dict(event, ticket_id=ticket.id) for event in logged]
        if route:
            db.session.execute(insert(TicketEvent.__table__), logged)
            outbox.emit_now(ROUTE_TICKET, ticket.id, queue=HIGH)
            return ticket, True
        ids = db.session.scalars(insert(TicketEvent.__table__).returning(
            TicketEvent.__table__.c.id, sort_by_parameter_order=True), logged).all()
        events_stored = [_as_loaded(TicketEvent, {"id": event_id, **event})
                         for event_id, event in zip(ids, logged, strict=True)]
    if not route:
        with notify.batched():
            notify.on_event(ticket, events_stored[0])  # the resident's "received"
            for event in events_stored[1:]:
                events.publish(ticket, event)  # as lifecycle.perform tells its events
    return ticket, True


# The caller's first steps with a new ticket (intake.submit's `steps`): the state
# machine's transitions planned on it (lifecycle.plan), and their events.
Steps = Callable[[Ticket], list[TicketEvent]]


def _planned(values: dict[str, Any], category: Category, tier: SlaTier,
             steps: Steps | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ticket's column values after the caller's first steps, and their events' (in
    order): the steps are taken on a ticket made of `values`, not stored, with its
    category and tier as loaded."""
    if steps is None:
        return values, []
    draft: Ticket = class_mapper(Ticket).class_manager.new_instance()
    draft.__dict__.update(with_defaults(Ticket.__table__, values))
    _with_reference(draft, category, tier)
    planned = steps(draft)
    return ({c.key: draft.__dict__[c.key] for c in Ticket.__table__.c if c.key in draft.__dict__},
            [{c.key: event.__dict__.get(c.key) for c in TicketEvent.__table__.c if c.key not in ("id", "ticket_id")}
             for event in planned])


def _stores_at_once() -> bool:
    """Whether `_store` stores a ticket in one statement (PostgreSQL's data-modifying CTEs)."""
    return db.session.get_bind().dialect.name == "postgresql"


def _with_reference(ticket: Ticket, category: Category, tier: SlaTier) -> Ticket:
    """The new ticket with its category and tier as loaded, the rows intake has just used:
    what reads them next (a message, a deadline, the emergency guidance) needs no SELECT."""
    set_committed_value(ticket, "category", category)
    set_committed_value(ticket, "tier", tier)
    return ticket


def _store_at_once(values: dict[str, Any], logged: list[dict[str, Any]], now: datetime, tz: tzinfo,
                   route: bool, look_up: bool = False) -> tuple[Ticket, list[TicketEvent]] | Ticket:
    """PostgreSQL: number (from the day's sequence, services/numbering.py), ticket, its
    events (`logged`: the submit event, and those of the caller's first steps) and, with
    `route`, the routing job in one statement of data-modifying CTEs: one round trip
    instead of four. With `look_up`, the same statement first
    looks for a ticket of the same (channel, external id), and when there is one it
    draws no number, stores nothing and returns that ticket.

    The row values travel as two JSON parameters: with a handful of parameters and a
    short text, psycopg keeps the statement's parsed form and PostgreSQL its plan
    (prepared after a few uses), where sixty parameters had both redone for every
    ticket. The new Ticket is built from the values it was stored with and joins
    the session as if loaded, so nothing is read back but its id and number; so
    does the event.
    """
    ticket_values = with_defaults(Ticket.__table__, values)
    day = numbering.ticket_day(now, tz)
    ticket_id, number, event_ids, queued_id, prior_id = db.session.connection().exec_driver_sql(
        _at_once_sql(route, look_up), {
            "day": day, "sequence": numbering.prepare_day(day),
            "ticket": json.dumps(ticket_values, default=_json_value, ensure_ascii=False),
            "events": json.dumps(logged, default=_json_value, ensure_ascii=False),
            "job": ROUTE_TICKET, "queue": HIGH, "created_at": now,
            "channel": values["channel"], "external_id": values["external_id"],
        }).one()
    if prior_id is not None:
        prior = db.session.get(Ticket, prior_id)
        assert prior is not None, "found by the statement just now, in this transaction"
        return prior
    if queued_id is not None:
        outbox.relay_soon(queued_id)
    ticket = _as_loaded(Ticket, {"id": ticket_id, "number": number, **ticket_values})
    # The events' ids were drawn in the order they were given (`_at_once_sql`).
    return ticket, [_as_loaded(TicketEvent, {"id": event_id, "ticket_id": ticket_id, **event})
                    for event_id, event in zip(event_ids, logged, strict=True)]


def _as_loaded(model: type[T], values: dict[str, Any]) -> T:
    """An instance with these column values, in the session as if just loaded.

    The values go straight into the new instance's dict, as a load puts them: setting
    them one by one through the constructor records each as a change, which
    `make_transient_to_detached` then forgets again.
    """
    instance: T = class_mapper(model).class_manager.new_instance()
    instance.__dict__.update(values)
    make_transient_to_detached(instance)
    db.session.add(instance)
    return instance


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a column value")


@cache
def _at_once_sql(route: bool, look_up: bool) -> str:
    """The statement of `_store_at_once` (psycopg's parameter style), built once per
    process; without `route`, no routing job; with `look_up`, the ticket filed before
    under the same key, if any, and then nothing else (nextval is not called when its
    WHERE fails). Its one row: the new ticket's id and number, the events' ids in the
    order they were given (inserted in that order, so drawn from the sequence in that
    order), the job's id, and the earlier ticket's id (NULL, or all the others NULL)."""
    ticket_columns = [c.name for c in Ticket.__table__.c if c.name not in ("id", "number")]
    event_columns = [c.name for c in TicketEvent.__table__.c if c.name not in ("id", "ticket_id")]
    prior = PRIOR if look_up else ""
    # The number as numbering.format_number makes it: at least four digits, more past 9999.
    return f"""
WITH {prior}bumped AS (SELECT nextval(%(sequence)s::regclass) AS last{" WHERE NOT EXISTS (SELECT FROM prior)" if look_up else ""}),
stored AS (
  INSERT INTO tickets (number, {", ".join(ticket_columns)})
  SELECT %(day)s || '-' || lpad(bumped.last::text, greatest(4, length(bumped.last::text)), '0'),
         {", ".join(f"t.{c}" for c in ticket_columns)}
  FROM bumped, json_populate_record(NULL::tickets, %(ticket)s::json) AS t
  RETURNING id, number),
logged AS (
  INSERT INTO ticket_events (ticket_id, {", ".join(event_columns)})
  SELECT stored.id, {", ".join(f"e.{c}" for c in event_columns)}
  FROM stored, json_populate_recordset(NULL::ticket_events, %(events)s::json) WITH ORDINALITY AS e
  ORDER BY e.ordinality
  RETURNING id){QUEUED if route else ""}
SELECT stored.id, stored.number, (SELECT array_agg(id ORDER BY id) FROM logged),
       {"queued.id" if route else "NULL::integer"}, NULL::integer
FROM stored{", queued" if route else ""}{PRIOR_ROW if look_up else ""}"""


# The ticket filed before under the request's key (the unique index on channel and external_id).
PRIOR = """prior AS (
  SELECT id FROM tickets WHERE channel = %(channel)s AND external_id = %(external_id)s),
"""
PRIOR_ROW = """
UNION ALL SELECT NULL, NULL, NULL, NULL, prior.id FROM prior"""


QUEUED = """,
queued AS (
  INSERT INTO outbox (job, args, queue, created_at, enqueue_count, last_error)
  SELECT %(job)s, json_build_array(stored.id), %(queue)s, %(created_at)s, 0, '' FROM stored
  RETURNING id)"""


def with_defaults(table: Table, values: dict[str, Any]) -> dict[str, Any]:
    """`values` and the Python-side defaults of the columns they leave out: an INSERT
    nested in a CTE gets no defaults from SQLAlchemy."""
    full = dict(values)
    for column in table.c:
        default = column.default
        if column.key not in full and isinstance(default, ColumnDefault):
            full[column.key] = default.arg(None) if default.is_callable else default.arg
    return full


def submit_detail(channel: str, tier: SlaTier, urgent_words: tuple[str, ...]) -> dict[str, object]:
    """The submit event's detail: the channel, and the urgent words that raised the tier."""
    detail: dict[str, object] = {"channel": channel}
    if urgent_words:
        detail.update(urgent=list(urgent_words), urgent_tier=tier.code)
    return detail
