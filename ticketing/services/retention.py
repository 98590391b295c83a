"""Retention (个人信息保存期限): the requester's personal data of tickets closed long ago
is erased; the tickets, their history, counts and ledgers stay.

A ticket is due when it is in a final state (closed, rejected, merged) and was
closed more than `retention_days` ago. Erasing it:

- blanks the requester's name, phone, unit and room, and WeChat openid, and forgets
  the map point (a point reported from a phone is often a home);
- keeps the place part of the typed address and masks the household part
  (`privacy.mask_address`), so the ledger still says where;
- masks numbers, ID numbers, rooms and the requester's name inside the free texts
  (description, result, rating comment, category answers, the history's notes, the
  messages sent about it, the ledger lines' results and the 回访 callers' notes) with
  `privacy.mask_text`;
- deletes the ticket's photos, rows and files: a photo may show a person or the
  inside of a home, and no count depends on it;
- stamps `personal_data_erased_at`, which also makes a second run skip it.

Then a WeChat follower none of whose tickets is linked to them any more, and who told
us nothing since the cutoff, loses the phone and place remembered for them
(services/followers.py `forget_unlinked`).

Work goes in batches of `BATCH` tickets, one transaction each; photo files are
removed after their batch commits (a crash in between leaves only orphan files).
The reveal log and the audit log keep who looked and who changed what; neither
holds a requester's data.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select

from ticketing.extensions import db
from ticketing.models import (
    FINAL_STATUSES,
    CallbackTask,
    LedgerLine,
    Notification,
    Photo,
    Ticket,
    TicketEvent,
)
from ticketing.services import followers, privacy
from ticketing.services.photos import PhotoStore

log = logging.getLogger(__name__)

BATCH = 500
# Ticket numbers a dry run lists; the count covers them all.
SHOWN = 20


@dataclass
class PurgeResult:
    """What a purge erased (or, in a dry run, would erase)."""

    dry_run: bool
    tickets: int = 0
    photos: int = 0
    followers: int = 0  # WeChat followers whose remembered phone and place were erased
    numbers: list[str] = field(default_factory=list)  # the first SHOWN, oldest closed first


def cutoff(now: datetime, retention_days: int) -> datetime:
    """Tickets closed before this moment are due."""
    return now - timedelta(days=retention_days)


def due(now: datetime, retention_days: int) -> ColumnElement[bool]:
    """A WHERE clause on Ticket: final, closed before the cutoff, not yet erased."""
    return and_(Ticket.status.in_([str(s) for s in FINAL_STATUSES]), Ticket.closed_at.is_not(None),
                Ticket.closed_at < cutoff(now, retention_days), Ticket.personal_data_erased_at.is_(None))


def purge(now: datetime, retention_days: int, store: PhotoStore, dry_run: bool = False,
          batch: int = BATCH) -> PurgeResult:
    """Erase the personal data of every due ticket (see the module's docstring); commits
    per batch. A dry run only counts and lists, writing nothing."""
    where = due(now, retention_days)
    result = PurgeResult(dry_run=dry_run)
    result.numbers = list(db.session.scalars(
        select(Ticket.number).where(where).order_by(Ticket.closed_at, Ticket.id).limit(SHOWN)))
    if dry_run:
        result.tickets = db.session.scalar(select(func.count()).select_from(Ticket).where(where)) or 0
        result.photos = db.session.scalar(
            select(func.count()).select_from(Photo).join(Ticket, Photo.ticket_id == Ticket.id).where(where)) or 0
        result.followers = followers.count_unlinked_after(cutoff(now, retention_days), ~where)
        return result
    while True:
        tickets = list(db.session.scalars(select(Ticket).where(where).order_by(Ticket.id).limit(batch)))
        if not tickets:
            result.followers = followers.forget_unlinked(cutoff(now, retention_days))
            db.session.commit()
            return result
        keys = erase_batch(tickets, now)
        db.session.commit()
        for key in keys:
            store.delete(key)
        result.tickets += len(tickets)
        result.photos += len(keys)
        log.info("retention: erased the personal data of %d tickets", len(tickets))


def erase_batch(tickets: list[Ticket], now: datetime) -> list[str]:
    """Erase the tickets' personal data in the session; return the photo keys to delete."""
    by_id = {ticket.id: ticket for ticket in tickets}
    ids = list(by_id)
    # Texts first: mask_text needs the requester's name and phone to find them.
    for event in db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id.in_(ids))):
        if event.note:
            event.note = privacy.mask_text(event.note, by_id[event.ticket_id])
    for message in db.session.scalars(select(Notification).where(Notification.ticket_id.in_(ids))):
        assert message.ticket_id is not None  # chosen by it
        message.body = privacy.mask_text(message.body, by_id[message.ticket_id])
        message.subject = privacy.mask_text(message.subject, by_id[message.ticket_id])
        if message.channel != "inbox":
            message.address = ""  # the resident's phone, openid or e-mail
        if message.params:  # the values an SMS template was filled with: the note is free text
            message.params = {name: privacy.mask_text(str(value), by_id[message.ticket_id])
                              for name, value in message.params.items()}
    for line in db.session.scalars(select(LedgerLine).where(LedgerLine.ticket_id.in_(ids))):
        if line.result:
            line.result = privacy.mask_text(line.result, by_id[line.ticket_id])
    for task in db.session.scalars(select(CallbackTask).where(CallbackTask.ticket_id.in_(ids))):
        owner = by_id[task.ticket_id]
        task.note = privacy.mask_text(task.note, owner)
        task.attempt_log = [{**entry, "note": privacy.mask_text(entry.get("note", ""), owner)}
                            for entry in task.attempt_log or []]
    photos = list(db.session.scalars(select(Photo).where(Photo.ticket_id.in_(ids))))
    for photo in photos:
        db.session.delete(photo)
    for ticket in tickets:
        erase_ticket(ticket, now)
    db.session.flush()
    return [photo.storage_key for photo in photos]


def erase_ticket(ticket: Ticket, now: datetime) -> None:
    """The ticket's own columns: texts masked, then the requester's data blanked."""
    ticket.description = privacy.mask_text(ticket.description, ticket)
    ticket.result_note = privacy.mask_text(ticket.result_note, ticket)
    ticket.rating_comment = privacy.mask_text(ticket.rating_comment, ticket)
    ticket.extra = {key: masked_answer(value, ticket) for key, value in (ticket.extra or {}).items()}
    ticket.address_text = privacy.mask_address(ticket.address_text or "")
    ticket.requester_name = ""
    ticket.requester_phone = ""
    ticket.unit_room = ""
    ticket.resident_openid = None
    ticket.lat = ticket.lon = None
    ticket.personal_data_erased_at = now


def masked_answer(value: Any, ticket: Ticket) -> Any:
    """A category answer with text masked; numbers and choices stay."""
    return privacy.mask_text(value, ticket) if isinstance(value, str) else value
