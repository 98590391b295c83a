"""What a ticket's timeline says of its events: shared by the staff page and the staff API."""
from __future__ import annotations

from typing import Any

from ticketing.models import Ticket, TicketEvent


def routing_event(ticket: Ticket) -> TicketEvent | None:
    """The dispatch that gave the ticket its current handler ("why did this come to me?")."""
    if ticket.assignee_id is None and ticket.team_id is None and ticket.company_id is None:
        return None
    for event in reversed(ticket.events):
        if event.action == "dispatch":
            return event
    return None


def event_summary(event: TicketEvent) -> dict[str, Any]:
    """The parts of an event's detail worth a line on the timeline."""
    detail = event.detail or {}
    return {
        "to": detail.get("assignee") or detail.get("team") or detail.get("company") or "",
        "rule": detail.get("rule", ""),
        "merged_into": detail.get("merged_into", ""),
        "urgent": list(detail.get("urgent") or ()),
    }
