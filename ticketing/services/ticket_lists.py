"""What the staff's ticket lists share: the deadline a ticket works against, what a
line loads, and paging. Used by the console's queue, the 督办 list (services/supervision.py)
and, for paging, every paged page."""
from __future__ import annotations

import math
from typing import Any

from sqlalchemy import ColumnElement, case
from sqlalchemy.orm import joinedload

from ticketing.models import Status, Ticket

IN_PROGRESS = (Status.ACCEPTED, Status.ON_HOLD)


def current_deadline() -> ColumnElement[Any]:
    """SQL for `Ticket.current_deadline`: the deadline the ticket works against now."""
    return case(
        (Ticket.status == Status.DISPATCHED, Ticket.accept_due_at),
        (Ticket.status.in_(IN_PROGRESS), Ticket.resolve_due_at),
        else_=None,
    )


def list_item_options() -> list[Any]:
    """What a ticket line of the console's lists shows, loaded with the page."""
    return [joinedload(relation) for relation in (
        Ticket.category, Ticket.community, Ticket.complex, Ticket.building,
        Ticket.assignee, Ticket.team, Ticket.company,
    )]


def page_span(total: int, page: int, per_page: int) -> tuple[int, int, int]:
    """(page, pages, offset) for a list of `total` rows: the page clamped to 1…pages."""
    pages = max(1, math.ceil(total / per_page))
    page = min(max(page, 1), pages)
    return page, pages, (page - 1) * per_page
