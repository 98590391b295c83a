"""Who hears about what: staff in their in-app inbox, residents by SMS or WeChat.

`on_event()` is called by the state machine and intake for every event, inside the
same transaction: it writes the notifications and, for residents' messages, the
outbox rows that will deliver them. `deliver()` sends one message exactly once per
claim, retrying with backoff until MAX_ATTEMPTS, then marks it failed for admins.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    ColumnElement,
    CursorResult,
    String,
    and_,
    case,
    exists,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)

from ticketing.extensions import db
from ticketing.labels import RATING_LABELS, format_deadline, locale_of, localized_name
from ticketing.models import Channel, Notification, Role, Status, Ticket, TicketEvent, User
from ticketing.queues import DEFAULT, DELIVER_NOTIFICATION
from ticketing.services import duty, outbox, phones
from ticketing.services.classify import phone_in_text
from ticketing.services.emergency import URGENT_TIER
from ticketing.services.merged import main_of, merged_tickets
from ticketing.services.privacy import mask_phone, mask_text
from ticketing.services.senders import PermanentSendError, SendError, sender_for
from ticketing.services.sqlparts import among
from ticketing.services.tracking import tracking_token

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# Session key of the work `batched()` holds back.
DEFERRED = "minhu.notify_deferred"
RESIDENT_LOCALE = "zh"

# kind → (subject, body); placeholders: number, category, link, note, rating, deadline.
MESSAGES: dict[str, tuple[Any, Any]] = {
    "received": (_l("Request %(number)s received"),
                 _l("Your request %(number)s (%(category)s) has been received. Follow it here: %(link)s")),
    "accepted": (_l("Request %(number)s is being handled"),
                 _l("Your request %(number)s has been accepted and is being handled. Details: %(link)s")),
    "resolved": (_l("Request %(number)s resolved: please rate"),
                 _l("Your request %(number)s has been resolved: %(note)s Please confirm and rate it: %(link)s")),
    "closed": (_l("Request %(number)s closed"),
               _l("Your request %(number)s is closed. Thank you. Details: %(link)s")),
    "rejected": (_l("Request %(number)s not accepted"),
                 _l("Your request %(number)s could not be taken on: %(note)s Details: %(link)s")),
    "assigned": (_l("New ticket %(number)s"),
                 _l("Ticket %(number)s (%(category)s) was sent to you. Accept it by %(deadline)s.")),
    "returned": (_l("Ticket %(number)s was returned"),
                 _l("Ticket %(number)s came back to the dispatcher: %(note)s")),
    "rated": (_l("Ticket %(number)s was rated"),
              _l("The resident rated ticket %(number)s: %(rating)s. %(note)s")),
    "reopened": (_l("Ticket %(number)s was reopened"),
                 _l("The resident asked for ticket %(number)s to be redone: %(note)s")),
    "warning": (_l("Ticket %(number)s is due soon"),
                _l("Ticket %(number)s is due by %(deadline)s.")),
    "escalated": (_l("Ticket %(number)s was escalated to you"),
                  _l("Ticket %(number)s (%(category)s) needs your supervision: %(note)s")),
    "expired": (_l("Ticket %(number)s was not accepted in time"),
                _l("Ticket %(number)s goes back for routing to someone else: %(note)s")),
    "unrouted": (_l("Ticket %(number)s needs a handler"),
                 _l("Ticket %(number)s could not be routed automatically: %(note)s")),
    "breach": (_l("Ticket %(number)s is overdue"),
               _l("Ticket %(number)s missed its deadline of %(deadline)s.")),
    "urgent": (_l("Urgent ticket %(number)s"),
               _l("Urgent: ticket %(number)s (%(category)s) needs action at once: %(link)s")),
    "withdrawn": (_l("Ticket %(number)s was withdrawn"),
                  _l("The resident withdrew ticket %(number)s; nothing more is to be done. %(note)s")),
    "info_added": (_l("The resident added to ticket %(number)s"),
                   _l("The resident added information to ticket %(number)s: %(note)s")),
    "merged_rated": (_l("A resident rated the work on ticket %(number)s"),
                     _l("The resident of ticket %(number)s, merged into the ticket you handled, rated the "
                        "result: %(rating)s. %(note)s")),
    "callback": (_l("Ticket %(number)s: the resident is not satisfied"),
                 _l("The resident is not satisfied with ticket %(number)s (%(category)s). %(note)s "
                    "Please call them back within 2 working days: see the callback queue.")),
    "reassigned": (_l("Ticket %(number)s was reassigned"),
                   _l("Ticket %(number)s was given to another handler; you need not work on it any more: %(note)s")),
    "hold_due": (_l("Ticket %(number)s: the hold's date has come"),
                 _l("Ticket %(number)s was on hold until today, waiting for: %(note)s "
                    "Resume it, or put it on hold again with a new date.")),
}

# event action → (resident message or None, staff message or None)
EVENT_MESSAGES: dict[str, tuple[str | None, str | None]] = {
    "submit": ("received", None),
    "dispatch": (None, "assigned"),
    "accept": ("accepted", None),
    "return": (None, "returned"),
    "resolve": ("resolved", None),
    "rate": (None, "rated"),
    "reopen": (None, "reopened"),
    "auto_close": ("closed", None),
    "reject": ("rejected", None),
    "escalate": (None, "escalated"),
    "expire": (None, "expired"),
    "withdraw": (None, "withdrawn"),
    "add_info": (None, "info_added"),
    "rate_merged": (None, "merged_rated"),
    "callback_rate": (None, "rated"),
    "redo": (None, "assigned"),
    "reassign": (None, "assigned"),
    "transfer": (None, "assigned"),
}
# event action → a second staff message, to the hand the event took the ticket from.
TOLD_BEFORE: dict[str, str] = {"reassign": "reassigned"}


def render(kind: str, locale: str, values: Mapping[str, Any]) -> tuple[str, str]:
    """Subject and body of a message in a locale."""
    subject, body = MESSAGES[kind]
    with force_locale(locale_of(locale)):
        return str(subject) % values, str(body) % values


def values_for(ticket: Ticket, note: str = "", rating: str | None = None) -> dict[str, Any]:
    """What the messages about a ticket can mention (never the requester's details)."""
    config = current_app.config
    link = config["PUBLIC_URL"].rstrip("/") + "/t/" + tracking_token(ticket, config["SECRET_KEY"])
    tz = ZoneInfo(config["TIMEZONE"])
    return {
        "number": ticket.number,
        "category": localized_name(ticket.category),
        "link": link,
        "note": note,
        "rating": str(RATING_LABELS.get(rating or "", "")),
        "deadline": format_deadline(ticket.current_deadline, tz, "%m-%d"),
    }


def _add(kind: str, key: str, channel: str, ticket: Ticket, values: Mapping[str, Any], now: datetime,
         user: User | None = None, address: str = "", fresh: bool = False) -> bool:
    """Store one notification unless one with the same key exists; residents' go to the
    outbox. Whether one was written.

    `fresh` keys (those of an event written in this transaction) cannot exist yet, so
    they skip the look-up; the unique key still guards them. Inside `batched()` inbox
    messages are kept as plain rows and written at the end in one executemany: nothing
    needs their ids, and the ORM's multi-row INSERT … RETURNING of a routing batch's
    few hundred messages cost more to build and parse than the messages themselves.
    """
    if not fresh and db.session.scalar(
            select(Notification.id).where(Notification.dedupe_key == key)) is not None:
        return False
    locale = (user.locale if user is not None and user.locale else RESIDENT_LOCALE)
    subject, body = render(kind, locale, values)
    inbox = channel == "inbox"
    deferred = db.session.info.get(DEFERRED)
    if inbox and deferred is not None:
        deferred.inbox.append({
            "dedupe_key": key, "kind": kind, "channel": channel, "ticket_id": ticket.id,
            "user_id": user.id if user else None, "address": address, "locale": locale,
            "subject": subject, "body": body, "status": "sent", "sender": "inbox",
            "attempts": 0, "last_error": "", "created_at": now, "sent_at": now,
        })
        return True
    notification = Notification(
        dedupe_key=key, kind=kind, channel=channel, ticket_id=ticket.id,
        user_id=user.id if user else None, address=address, locale=locale,
        subject=subject, body=body, created_at=now,
        params=None if inbox else {name: str(value) for name, value in values.items()},
        status="sent" if inbox else "pending", sent_at=now if inbox else None,
        sender="inbox" if inbox else "",
    )
    db.session.add(notification)
    if not inbox:
        if deferred is not None:
            deferred.deliveries.append(notification)
        else:
            db.session.flush()
            outbox.emit(DELIVER_NOTIFICATION, notification.id, queue=DEFAULT)
    return True


def inbox_rows(kind: str, ticket: Ticket, users: Iterable[User], key: str, now: datetime) -> list[dict[str, Any]]:
    """Inbox messages as plain rows, for one bulk INSERT when a sweep writes thousands."""
    values = values_for(ticket)
    rows = []
    for user in users:
        locale = user.locale or RESIDENT_LOCALE
        subject, body = render(kind, locale, values)
        rows.append({
            "dedupe_key": f"{key}:u{user.id}", "kind": kind, "channel": "inbox", "ticket_id": ticket.id,
            "user_id": user.id, "address": "", "locale": locale, "subject": subject, "body": body,
            "status": "sent", "sender": "inbox", "attempts": 0, "last_error": "", "created_at": now, "sent_at": now,
        })
    return rows


def notify_staff(kind: str, ticket: Ticket, users: Iterable[User], key: str, now: datetime,
                 note: str = "", rating: str | None = None, fresh: bool = False) -> int:
    """Put a message in each user's inbox; returns how many were new."""
    # Quoted masked: an inbox is read without a logged reveal, and a comment may carry a number.
    values = values_for(ticket, mask_text(note, ticket), rating)
    return sum(_add(kind, f"{key}:u{user.id}", "inbox", ticket, values, now, user=user, fresh=fresh)
               for user in users)


def notify_resident(kind: str, ticket: Ticket, key: str, now: datetime, note: str = "",
                    fresh: bool = False) -> bool:
    """Queue a message to the requester: on WeChat to the follower who filed it through
    the official account, else by SMS to the phone they gave. A landline or no phone
    (services/phones.py) gets nothing: staff told them to come back or call. A grid
    worker's own patrol report has no resident: nothing is sent (the phone on it is the
    worker's)."""
    if ticket.channel == Channel.PATROL:
        return False
    if ticket.resident_openid:
        return _add(kind, f"{key}:r", "wechat", ticket, values_for(ticket, note), now,
                    address=ticket.resident_openid, fresh=fresh)
    if not phones.can_text(ticket.requester_phone):
        return False
    return _add(kind, f"{key}:r", "sms", ticket, values_for(ticket, note), now,
                address=ticket.requester_phone, fresh=fresh)


@dataclass
class Deferred:
    """What `batched()` holds back: events whose messages are still to be written, and
    residents' messages still waiting for their delivery rows."""

    events: list[tuple[Ticket, TicketEvent]] = field(default_factory=list)
    deliveries: list[Notification] = field(default_factory=list)
    inbox: list[dict[str, Any]] = field(default_factory=list)
    # The dispatchers of the places of the batch's tickets, by (community id, street id):
    # the first message for dispatchers looks up those of every place at once
    # (`dispatchers_of`), not those of each ticket in turn. `places` holds the places a
    # caller knows ahead (`expect_places`: routing's batch) beside those of the events.
    dispatchers: dict[tuple[int, int], list[User]] = field(default_factory=dict)
    places: set[tuple[int, int]] = field(default_factory=set)


@contextmanager
def batched() -> Iterator[None]:
    """Write the messages of the events made inside at the end, after one flush.

    For a job that changes many tickets at once (routing a batch): instead of a flush
    per event (its id keys its messages) and per resident's message (its id goes in
    the delivery row), the tickets, events and messages go out as a few multi-row
    statements, and the residents' messages get one delivery row between them. Autoflush is off inside, so the work must not query for rows it has
    changed but not flushed; an error leaves the caller to roll back.
    """
    if DEFERRED in db.session.info:
        yield  # already batched by the caller
        return
    deferred = db.session.info[DEFERRED] = Deferred()
    try:
        with db.session.no_autoflush:
            yield
            number_rows([event for _, event in deferred.events])
            db.session.flush()
            for ticket, event in deferred.events:
                _write(ticket, event)
            if deferred.inbox:
                db.session.execute(insert(Notification), deferred.inbox)
            if deferred.deliveries:
                number_rows(deferred.deliveries)
                db.session.flush()
                # One outbox row for all of them: the delivery job takes a list.
                outbox.emit(DELIVER_NOTIFICATION, *(n.id for n in deferred.deliveries), queue=DEFAULT)
    finally:
        db.session.info.pop(DEFERRED, None)


# The next ids of a table's serial column, as many as asked for, in one statement (PostgreSQL).
NEXT_IDS = text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)")
# Fewer new rows than this are inserted as the ORM does: numbering them would cost a statement more.
NUMBERED_FROM = 8


def number_rows(new: Sequence[TicketEvent | Notification]) -> None:
    """PostgreSQL: give a batch's new events, or its new messages, their ids from the
    sequence in one statement, in the order they were made, before the flush that
    inserts them.

    With its ids known, the flush inserts them as one executemany of a short statement,
    which psycopg sends in a pipeline and parses once per process. Else the ORM sends
    one multi-row INSERT … RETURNING whose text, thousands of characters and
    parameters, psycopg converts anew for every batch (past its statement cache's
    limits): two fifths of a routing batch's CPU, events and residents' messages.
    """
    rows = [row for row in new if row.id is None]
    if len(rows) < NUMBERED_FROM or db.session.get_bind().dialect.name != "postgresql":
        return
    table = type(rows[0]).__tablename__
    assert all(type(row).__tablename__ == table for row in rows), "one table at a time"
    ids = sorted(db.session.scalars(NEXT_IDS, {"table": table, "n": len(rows)}))
    for row, row_id in zip(rows, ids, strict=True):
        row.id = row_id


def on_event(ticket: Ticket, event: TicketEvent) -> None:
    """Write the notifications an event calls for (same transaction as the event);
    inside `batched()`, when the batch ends."""
    deferred = db.session.info.get(DEFERRED)
    if deferred is not None:
        deferred.events.append((ticket, event))
        return
    _write(ticket, event)


def _write(ticket: Ticket, event: TicketEvent) -> None:
    resident_kind, staff_kind = EVENT_MESSAGES.get(event.action, (None, None))
    if resident_kind is None and staff_kind is None:
        return
    if event.id is None:
        db.session.flush()  # the event's id keys its messages
    key = f"ev{event.id}"
    note = event.note if event.public else ""
    if resident_kind is not None:
        notify_resident(resident_kind, ticket, key, event.at, note=note, fresh=True)
    if event.action in MERGED_FOLLOW:
        notify_merged_residents(MERGED_FOLLOW[event.action], ticket, key, event.at, note)
    if staff_kind == "assigned" and ticket.status != Status.DISPATCHED:
        # "Sent to you: accept it by …" asks for what the transaction's next steps have
        # done: a patrol report is filed already its worker's own (services/patrol.py).
        staff_kind = None
    if staff_kind is not None:
        rating = (event.detail or {}).get("rating")
        notify_staff(staff_kind, ticket, staff_for(staff_kind, ticket, event), key, event.at,
                     note=event.note, rating=rating, fresh=True)
    if event.action in URGENT_ALERTS:
        with db.session.no_autoflush:  # its look-ups must not write the messages above early
            alert_urgent(ticket, event)
    before = TOLD_BEFORE.get(event.action)
    if before is not None:
        notify_staff(before, ticket, previous_handlers(event), f"{key}:{before}", event.at,
                     note=event.note, fresh=True)


# Events after which an urgent ticket is announced by SMS too: filed → the dispatchers,
# routed, or given to another handler → that handler.
URGENT_ALERTS = frozenset({"submit", "dispatch", "reassign", "transfer", "redo"})


def alert_urgent(ticket: Ticket, event: TicketEvent) -> int:
    """An urgent ticket (the urgent tier) reaches people by SMS at once, not only in the
    inbox: the community's dispatchers when it is filed (they get it in the inbox too),
    its handler when it is routed — while it waits with a team or company, their members
    on duty. One alert per ticket and person, whatever happens afterwards; people
    without a mobile number on their account get the inbox message only. The number of SMS."""
    if ticket.tier is None or ticket.tier.code != URGENT_TIER:
        return 0
    filed = event.action == "submit"
    people = dispatchers_of(ticket) if filed else handlers_on_duty(ticket, event.at)
    # By the ticket's index: a LIKE on the key alone read the whole table for every
    # urgent ticket (no btree serves it outside the C collation).
    done = set(db.session.scalars(select(Notification.dedupe_key).where(
        Notification.ticket_id == ticket.id, Notification.dedupe_key.like(f"urgent:t{ticket.id}:%"))))
    base = current_app.config["PUBLIC_URL"].rstrip("/")
    values = {**values_for(ticket), "link": f"{base}/tickets/{ticket.number}"}
    sent = 0
    for user in people:
        key = f"urgent:t{ticket.id}:u{user.id}"
        if filed and key not in done:
            _add("urgent", key, "inbox", ticket, values, event.at, user=user, fresh=True)
        mobile = phone_in_text(user.phone or "")
        if mobile and f"{key}:sms" not in done:
            _add("urgent", f"{key}:sms", "sms", ticket, values, event.at, user=user, address=mobile, fresh=True)
            sent += 1
    return sent


def handlers_on_duty(ticket: Ticket, now: datetime) -> list[User]:
    """The assignee; else the members on duty of the team or company the ticket waits with."""
    if ticket.assignee is not None:
        return [ticket.assignee]
    if ticket.team_id is None and ticket.company_id is None:
        return []
    where = User.team_id == ticket.team_id if ticket.team_id is not None else User.company_id == ticket.company_id
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    return list(db.session.scalars(select(User).where(where, duty.on_duty(now, tz)).order_by(User.id)))


# Events of a main ticket whose resident's message also goes to the residents whose
# tickets were merged into it: the result, and a dispatcher's refusal of the whole.
MERGED_FOLLOW = {"resolve": "resolved", "reject": "rejected"}


def notify_merged_residents(kind: str, main: Ticket, key: str, now: datetime, note: str) -> int:
    """Give the residents whose tickets were merged into `main` its message of `kind`,
    each with their own tracking link (where they rate it or ask for a redo:
    services/merged.py); how many were written. One message per resident and event.

    The result note was written for the main ticket's requester: it is quoted masked
    (services/privacy.py), so nothing of theirs reaches the others.
    """
    masked = mask_text(note, main)
    written = 0
    for merged in merged_tickets(main):
        written += notify_resident(kind, merged, f"{key}:m{merged.id}", now, note=masked)
    return written


def receipt_unwritten() -> ColumnElement[bool]:
    """Join condition from a ticket to its submit events whose resident's "received"
    message is not written yet (keyed `ev<event id>:r`, as `_write` keys it), so that
    whoever loads tickets to route learns this in the same statement."""
    key = literal("ev") + TicketEvent.id.cast(String) + literal(":r")
    return and_(TicketEvent.ticket_id == Ticket.id, TicketEvent.action == "submit",
                ~exists().where(Notification.dedupe_key == key))


def confirm_receipt(unwritten: list[tuple[Ticket, TicketEvent]]) -> int:
    """Write the messages of these submit events, found without theirs by
    `receipt_unwritten()`; how many there were. Intake leaves this to the routing job
    (services/intake.py)."""
    for ticket, event in unwritten:
        on_event(ticket, event)
    return len(unwritten)


def staff_for(kind: str, ticket: Ticket, event: TicketEvent) -> list[User]:
    """The staff a message of this kind about this ticket goes to."""
    if kind in ("returned", "unrouted", "expired"):
        return dispatchers_of(ticket)
    if kind == "escalated":
        return supervisors_of(ticket, ticket.escalation_level)
    if kind in ("rated", "reopened"):
        return [ticket.assignee] if ticket.assignee is not None else []
    if kind == "merged_rated":  # whoever handles the ticket it was merged into
        main = main_of(ticket)
        return handlers_of(main) if main is not ticket else []
    return handlers_of(ticket)


def handlers_of(ticket: Ticket) -> list[User]:
    """The assignee, or every active member of the team or company it waits with."""
    if ticket.assignee is not None:
        return [ticket.assignee]
    if ticket.team_id is not None:
        where = User.team_id == ticket.team_id
    elif ticket.company_id is not None:
        where = User.company_id == ticket.company_id
    else:
        return []
    return list(db.session.scalars(select(User).where(where, User.active.is_(True)).order_by(User.id)))


def previous_handlers(event: TicketEvent) -> list[User]:
    """The hand an event took the ticket from (`from_*` of its detail, services/handoff.py)."""
    detail = event.detail or {}
    if detail.get("from_assignee_id") is not None:
        user = db.session.get(User, int(detail["from_assignee_id"]))
        return [user] if user is not None else []
    if detail.get("from_team_id") is not None:
        where = User.team_id == int(detail["from_team_id"])
    elif detail.get("from_company_id") is not None:
        where = User.company_id == int(detail["from_company_id"])
    else:
        return []
    return list(db.session.scalars(select(User).where(where, User.active.is_(True)).order_by(User.id)))


def supervisors_of(ticket: Ticket, level: int) -> list[User]:
    """Level 1: the community's supervisors; level 2 and up: the street's."""
    if level <= 0:
        return []
    where = (User.community_id == ticket.community_id) if level == 1 else (
        User.community_id.is_(None) & (User.street_id == ticket.street_id))
    return list(db.session.scalars(
        select(User).where(User.role == Role.SUPERVISOR, User.active.is_(True), where).order_by(User.id)
    ))


def dispatchers_of(ticket: Ticket) -> list[User]:
    """The active dispatchers of the ticket's community, and those of its whole street.

    Inside `batched()`, looked up once for the places of every ticket whose messages the
    batch holds or that it was told of (`expect_places`): an urgent ticket's alert, a
    returned or unrouted one's message."""
    place = (ticket.community_id, ticket.street_id)
    deferred = db.session.info.get(DEFERRED)
    if deferred is None:
        return dispatchers_at([place])[place]
    known = deferred.dispatchers
    if place not in known:
        wanted = {place} | deferred.places | {(t.community_id, t.street_id) for t, _ in deferred.events}
        known.update(dispatchers_at(wanted - known.keys()))
    return known[place]


def expect_places(tickets: Iterable[Ticket]) -> None:
    """Inside `batched()`: these tickets' places are among those whose dispatchers the
    batch may need (`dispatchers_of`), so the first look-up takes them too. Outside a
    batch it does nothing."""
    deferred = db.session.info.get(DEFERRED)
    if deferred is not None:
        deferred.places.update((t.community_id, t.street_id) for t in tickets)


def dispatchers_at(places: Iterable[tuple[int, int]]) -> dict[tuple[int, int], list[User]]:
    """`dispatchers_of` for every (community id, street id) of `places`, in one query."""
    places = set(places)
    found = list(db.session.scalars(
        select(User).where(
            User.role == Role.DISPATCHER, User.active.is_(True),
            or_(among(User.community_id, {community for community, _ in places}),
                (User.community_id.is_(None)) & among(User.street_id, {street for _, street in places})),
        ).order_by(User.id)
    ))
    return {(community, street): [user for user in found if user.community_id == community or (
        user.community_id is None and user.street_id == street)] for community, street in places}


class RetryLater(RuntimeError):
    """Delivery failed but may succeed later; the queue retries with backoff."""


def deliver(notification_id: int, now: datetime) -> str:
    """Send one pending message once; returns what happened.

    The claim (pending → sending) is a conditional UPDATE, so a job that runs twice,
    or two workers, send it once. A failure puts it back to pending and raises
    `RetryLater`, until the last attempt, which marks it failed for admins to see.
    """
    outcome = _deliver([notification_id], now)[notification_id]
    if isinstance(outcome, RetryLater):
        raise outcome
    return outcome


def deliver_many(notification_ids: list[int], now: datetime) -> set[int]:
    """Send several pending messages, each as `deliver()` would; the ids to retry later."""
    outcomes = _deliver(notification_ids, now)
    return {i for i, outcome in outcomes.items() if isinstance(outcome, RetryLater)}


def _deliver(notification_ids: list[int], now: datetime) -> dict[int, str | RetryLater]:
    """Claim the pending ones in one UPDATE, send each, and record every outcome."""
    outcomes: dict[int, str | RetryLater] = dict.fromkeys(_record_sent(notification_ids, now), "sent")
    rest = [i for i in notification_ids if i not in outcomes]
    claimed = set(db.session.scalars(
        update(Notification)
        .where(among(Notification.id, rest), Notification.status == "pending")
        .values(status="sending", attempts=Notification.attempts + 1, claimed_at=now)
        .returning(Notification.id)
    )) if rest else set()
    db.session.commit()
    others = [i for i in rest if i not in claimed]
    if others:
        statuses = dict(db.session.execute(
            select(Notification.id, Notification.status).where(among(Notification.id, others))).tuples().all())
        for i in others:
            # Another run holds it, or a dead worker left it: not done yet, so the outbox
            # row must stay and come back once release_stuck() has freed the message.
            outcomes[i] = (RetryLater(f"notification {i} is being sent by another run")
                           if statuses.get(i) == "sending" else "not pending")
    if not claimed:
        return outcomes
    messages = db.session.scalars(select(Notification).where(among(Notification.id, claimed))).all()
    for notification in messages:
        sender: Any = None
        try:
            sender = sender_for(notification.channel, current_app.config)
            sender.send(notification)
        except SendError as exc:
            # A provider's "never" (a wrong number, template or signature) is not retried.
            final = notification.attempts >= MAX_ATTEMPTS or isinstance(exc, PermanentSendError)
            notification.status = "failed" if final else "pending"
            notification.last_error = str(exc)[:2000]
            log.warning("notification %s to %s failed (attempt %s): %s", notification.id,
                        mask_phone(notification.address), notification.attempts, exc)
            outcomes[notification.id] = "failed" if final else RetryLater(str(exc))
        else:
            notification.status, notification.sent_at, notification.sender = "sent", now, sender.name
            outcomes[notification.id] = "sent"
        if sender is None or getattr(sender, "external", True):
            db.session.commit()
    db.session.commit()
    return outcomes


RESIDENT_CHANNELS = ("sms", "wechat", "email")


def _record_sent(notification_ids: list[int], now: datetime) -> list[int]:
    """Mark sent, in one UPDATE, the pending messages whose channel's sender only records
    them (nothing leaves the system, so there is nothing to claim first); their ids."""
    names: dict[str, str] = {}
    for channel in RESIDENT_CHANNELS:
        try:
            sender = sender_for(channel, current_app.config)
        except SendError:
            continue  # misconfigured: the usual path records the error on each message
        if not getattr(sender, "external", True):
            names[channel] = sender.name
    if not names or not notification_ids:
        return []
    return list(db.session.scalars(
        update(Notification)
        .where(among(Notification.id, notification_ids), Notification.status == "pending",
               Notification.channel.in_(list(names)))
        .values(status="sent", attempts=Notification.attempts + 1, claimed_at=now, sent_at=now,
                sender=case(names, value=Notification.channel))
        .returning(Notification.id)
    ))


def release_stuck(now: datetime, older_than_minutes: int = 10) -> int:
    """Messages left "sending" by a worker that died go back to pending."""
    from datetime import timedelta

    result = db.session.execute(
        update(Notification)
        .where(Notification.status == "sending",
               Notification.claimed_at < now - timedelta(minutes=older_than_minutes))
        .values(status="pending")
    )
    db.session.commit()
    return cast(CursorResult[Any], result).rowcount
