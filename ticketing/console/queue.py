"""The dispatcher's queue: tabs, filters, counts and one page of tickets, in a fixed number of queries."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select, true
from sqlalchemy.orm import contains_eager

from ticketing.extensions import db
from ticketing.models import Category, SlaTier, Status, Ticket, User
from ticketing.services import duplicates, scope, timeline
from ticketing.services.ticket_lists import (
    IN_PROGRESS,
    current_deadline,
    list_item_options,
    page_span,
)

PER_PAGE = 50
DEFAULT_TAB = "awaiting"

# tab code → label, in the order the tabs are shown.
TABS: dict[str, Any] = {
    "awaiting": _l("Awaiting dispatch"),
    "dispatched": _l("Dispatched"),
    "in_progress": _l("In progress"),
    "overdue": _l("Overdue"),
    "resolved": _l("Resolved"),
    "all": _l("All"),
}


@dataclass(frozen=True)
class QueueFilters:
    """What the dispatcher narrowed the queue to; empty values filter nothing."""

    number: str = ""
    phone_digits: str = ""
    grid_id: int | None = None
    group_id: int | None = None
    rating: str = ""  # a Rating, or "none": closed without one


@dataclass
class QueuePage:
    """One page of one tab, with the counts of every tab under the same filters."""

    tab: str
    tickets: list[Ticket]
    counts: dict[str, int]
    page: int
    pages: int
    return_reasons: dict[int, str] = field(default_factory=dict)
    # Ids of the page's tickets with a likely duplicate in scope (services/duplicates.py).
    duplicates: set[int] = field(default_factory=set)

    @property
    def total(self) -> int:
        """How many tickets the current tab holds."""
        return self.counts[self.tab]


def overdue_condition(now: datetime) -> ColumnElement[bool]:
    """Dispatched past the accept-by time, or accepted past the resolve-by time."""
    return or_(
        and_(Ticket.status == Status.DISPATCHED, Ticket.accept_due_at < now),
        and_(Ticket.status == Status.ACCEPTED, Ticket.resolve_due_at < now),
    )


def tab_condition(tab: str, now: datetime) -> ColumnElement[bool]:
    """The WHERE clause of a tab."""
    if tab == "awaiting":
        return Ticket.status == Status.SUBMITTED
    if tab == "dispatched":
        return Ticket.status == Status.DISPATCHED
    if tab == "in_progress":
        return Ticket.status.in_(IN_PROGRESS)
    if tab == "overdue":
        return overdue_condition(now)
    if tab == "resolved":
        return Ticket.status == Status.RESOLVED
    return true()


def tab_order(tab: str) -> list[Any]:
    """Awaiting: most urgent tier first, then oldest; resolved: latest first; others by deadline."""
    if tab == "awaiting":
        return [SlaTier.rank, Ticket.created_at, Ticket.id]
    if tab == "resolved":
        return [Ticket.resolved_at.desc(), Ticket.id.desc()]
    deadline = current_deadline()
    # Tickets without a deadline (closed, rejected …) go last, newest first.
    return [deadline.is_(None), deadline, Ticket.created_at.desc(), Ticket.id.desc()]


def filter_conditions(filters: QueueFilters) -> list[ColumnElement[bool]]:
    """The WHERE clauses of the filters that are set."""
    conditions: list[ColumnElement[bool]] = []
    if filters.number:
        conditions.append(Ticket.number.contains(filters.number, autoescape=True))
    if filters.phone_digits:
        conditions.append(Ticket.requester_phone.endswith(filters.phone_digits, autoescape=True))
    if filters.grid_id is not None:
        conditions.append(Ticket.grid_id == filters.grid_id)
    if filters.group_id is not None:
        group = select(Category.id).where(
            or_(Category.id == filters.group_id, Category.parent_id == filters.group_id)
        )
        conditions.append(Ticket.category_id.in_(group))
    if filters.rating == "none":
        conditions.append(and_(Ticket.status == Status.CLOSED, Ticket.rating.is_(None)))
    elif filters.rating:
        conditions.append(Ticket.rating == filters.rating)
    return conditions


def tab_counts(where: list[ColumnElement[bool]], now: datetime) -> dict[str, int]:
    """How many tickets each tab holds, in one query."""
    columns = [
        func.count(Ticket.id).label(tab) if tab == "all"
        else func.coalesce(func.sum(case((tab_condition(tab, now), 1), else_=0)), 0).label(tab)
        for tab in TABS
    ]
    row = db.session.execute(select(*columns).where(*where)).one()
    return {tab: int(row._mapping[tab]) for tab in TABS}


def page_query(tab: str, where: list[ColumnElement[bool]], now: datetime) -> Select[tuple[Ticket]]:
    """The tickets of a tab with everything an item shows loaded alongside."""
    return (
        select(Ticket)
        .join(Ticket.tier)
        .where(*where, tab_condition(tab, now))
        .options(contains_eager(Ticket.tier), *list_item_options())
        .order_by(*tab_order(tab))
    )


def return_reasons(tickets: list[Ticket]) -> dict[int, str]:
    """The reason given with the latest return of each returned, waiting ticket."""
    return timeline.latest_notes([t.id for t in tickets if t.status == Status.SUBMITTED and t.return_count],
                                 "return")


def load_queue(user: User, tab: str, filters: QueueFilters, page: int, now: datetime) -> QueuePage:
    """One page of `tab` among the tickets `user` may see, narrowed by `filters`."""
    tab = tab if tab in TABS else DEFAULT_TAB
    where = [scope.ticket_scope(user), *filter_conditions(filters)]
    counts = tab_counts(where, now)
    page, pages, offset = page_span(counts[tab], page, PER_PAGE)
    tickets: list[Ticket] = []
    if counts[tab]:
        query = page_query(tab, where, now).limit(PER_PAGE).offset(offset)
        tickets = list(db.session.scalars(query).unique())
    return QueuePage(tab, tickets, counts, page, pages, return_reasons(tickets),
                     duplicates.flagged(tickets, user))
