"""A resident whose request was merged into another is followed, not dropped.

A dispatcher merges a duplicate into the ticket that carries the same problem (the
"main" ticket); the duplicate's state becomes `merged`, a final state, and all the work
happens on the main ticket. Its resident still:

- sees on their own tracking page that the problem is handled together with the same
  problem reported by others, the main ticket's state and its public timeline
  (`MainView`: nothing of the main ticket's requester — no name, phone, room or
  description, their own words on the timeline left out, staff notes masked);
- gets the main ticket's "resolved" message with their own link (services/notify.py
  `notify_merged_residents`);
- rates the result (`rate`) and asks for a redo (`ask_redo`) from their own page.

Where the rating and the redo go — the choice made here:

- The **rating** is this resident's verdict, so it is recorded on their own ticket
  (`rate_merged`: rating, comment, time; the ticket stays `merged`) and the main
  ticket's handler is told. It does not close the main ticket or overwrite its
  requester's rating: two residents may judge the same work differently, and each
  verdict stays theirs.
- A **redo** request is about the work, which lives on the main ticket: it reopens the
  main ticket (its `reopen`, with the same 7-day window after the result), and a
  `reopen_merged` event on the resident's own ticket keeps their reason. Both in one
  transaction; of two residents asking at once, one reopens it and the other gets a
  Conflict, as any two actions on one ticket do.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ticketing.extensions import db
from ticketing.models import Status, Ticket, TicketEvent
from ticketing.services import lifecycle
from ticketing.services.effects import MAX_MERGE_DEPTH, main_of
from ticketing.services.privacy import mask_text
from ticketing.services.workdays import WorkCalendar

__all__ = ["MainView", "ask_redo", "can_rate", "main_of", "main_view", "merged_tickets", "rate", "redo_until"]


def merged_tickets(main: Ticket) -> list[Ticket]:
    """The tickets merged into `main`, directly or through a ticket merged into it, by level."""
    found: list[Ticket] = []
    frontier = [main.id]
    for _depth in range(MAX_MERGE_DEPTH):
        level = list(db.session.scalars(
            select(Ticket).where(Ticket.merged_into_id.in_(frontier), Ticket.status == Status.MERGED)
            .order_by(Ticket.id)))
        if not level:
            break
        found += level
        frontier = [t.id for t in level]
    return found


@dataclass(frozen=True)
class MainEvent:
    """One line of the main ticket's timeline as a merged resident sees it."""

    at: datetime
    action: str
    note: str
    public: bool = True


@dataclass(frozen=True)
class MainView:
    """What a merged resident may see of the main ticket."""

    ticket: Ticket
    events: Sequence[MainEvent]
    result_note: str


def main_view(ticket: Ticket) -> MainView | None:
    """The main ticket as the resident of a merged `ticket` may see it; None when not merged.

    Public events only; what its own requester (or another merged resident) wrote is
    left out, and the staff's notes are masked with the main requester's details.
    """
    main = main_of(ticket)
    if main is ticket:
        return None
    events = [
        MainEvent(e.at, e.action, "" if e.actor_kind == "resident" else mask_text(e.note, main))
        for e in main.events if e.public
    ]
    return MainView(main, events, mask_text(main.result_note, main))


def can_rate(ticket: Ticket) -> bool:
    """True when the merged ticket's resident may give their verdict now: the main ticket
    has a result and this resident has not rated yet."""
    main = main_of(ticket)
    return main is not ticket and main.status in (Status.RESOLVED, Status.CLOSED) and ticket.rated_at is None


def redo_until(ticket: Ticket, now: datetime) -> datetime | None:
    """Until when the merged ticket's resident may ask for a redo (the main ticket's own
    window after its result), or None when not now."""
    main = main_of(ticket)
    if main is ticket or main.status != Status.RESOLVED or main.resolved_at is None:
        return None
    until = main.resolved_at + lifecycle.REOPEN_WINDOW
    return until if now <= until else None


def rate(ticket: Ticket, rating: str | None, comment: str, now: datetime, calendar: WorkCalendar) -> TicketEvent:
    """Record the merged resident's verdict on their own ticket; the caller commits."""
    return lifecycle.perform(ticket, "rate_merged", lifecycle.Actor.resident(), now, calendar,
                             note=comment, rating=rating)


def ask_redo(ticket: Ticket, reason: str, now: datetime, calendar: WorkCalendar) -> TicketEvent:
    """Reopen the main ticket at the merged resident's request, keeping their reason on
    their own ticket too; the caller commits.

    The main ticket's timeline (read by its requester and the other merged residents)
    gets the reason masked with this resident's details.
    """
    actor = lifecycle.Actor.resident()
    main = main_of(ticket)
    lifecycle.perform(ticket, "reopen_merged", actor, now, calendar, note=reason, flush=False)
    event = lifecycle.perform(main, "reopen", actor, now, calendar, note=mask_text(reason.strip(), ticket))
    event.detail = {**(event.detail or {}), "merged_from": ticket.number}
    return event
