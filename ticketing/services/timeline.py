"""What a ticket's timeline says of its events: shared by the staff page and the staff API."""
from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import select

from ticketing.extensions import db
from ticketing.models import Ticket, TicketEvent

# The events that give a ticket a handler: a dispatch, a reassignment (改派), a transfer (转办).
DISPATCHING = ("dispatch", "reassign", "transfer", "redo")  # a redo after a 回访 dispatches too


def routing_event(ticket: Ticket) -> TicketEvent | None:
    """The dispatch that gave the ticket its current handler ("why did this come to me?")."""
    if ticket.assignee_id is None and ticket.team_id is None and ticket.company_id is None:
        return None
    for event in reversed(ticket.events):
        if event.action in DISPATCHING:
            return event
    return None


def event_summary(event: TicketEvent) -> dict[str, Any]:
    """The parts of an event's detail worth a line on the timeline."""
    detail = event.detail or {}
    return {
        "to": detail.get("assignee") or detail.get("team") or detail.get("company") or "",
        "from": detail.get("from", ""),
        "rule": detail.get("rule", ""),
        "merged_into": detail.get("merged_into", ""),
        "urgent": list(detail.get("urgent") or ()),
    }


def latest_notes(ticket_ids: Collection[int], action: str) -> dict[int, str]:
    """The note of each ticket's latest event of `action` (why it was returned, escalated…)."""
    if not ticket_ids:
        return {}
    rows = db.session.execute(
        select(TicketEvent.ticket_id, TicketEvent.note)
        .where(TicketEvent.ticket_id.in_(ticket_ids), TicketEvent.action == action)
        .order_by(TicketEvent.id)
    )
    return {ticket_id: note for ticket_id, note in rows}  # later rows overwrite earlier ones
