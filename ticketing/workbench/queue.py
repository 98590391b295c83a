"""The handler's "my tickets": their own and their team's unclaimed ones, soonest deadline first."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import selectinload

from ticketing.extensions import db
from ticketing.models import Status, Ticket, User
from ticketing.services import scope, sla
from ticketing.services.workdays import WorkCalendar

# Tab → the states it lists; "resolved" lists what the handler finished lately.
TABS: dict[str, tuple[str, ...]] = {
    "open": (Status.DISPATCHED, Status.ACCEPTED, Status.ON_HOLD),
    "accept": (Status.DISPATCHED,),
    "progress": (Status.ACCEPTED,),
    "hold": (Status.ON_HOLD,),
    "resolved": (Status.RESOLVED, Status.CLOSED),
}
RECENT = timedelta(days=30)


@dataclass(frozen=True)
class Item:
    """One line of the workbench."""

    ticket: Ticket
    overdue: bool
    due_soon: bool

    @property
    def unclaimed(self) -> bool:
        """A team's or company's ticket that no member has accepted yet."""
        return self.ticket.assignee_id is None


def current_deadline_column() -> ColumnElement[datetime]:
    """SQL for `Ticket.current_deadline`, to sort by."""
    return case((Ticket.status == Status.DISPATCHED, Ticket.accept_due_at), else_=Ticket.resolve_due_at)


def tickets(user: User, tab: str, now: datetime) -> list[Ticket]:
    """The tickets of one tab of `user`'s workbench, in the order they are shown."""
    query = select(Ticket).where(scope.handler_queue(user), Ticket.status.in_(TABS[tab]))
    if tab == "resolved":
        query = query.where(Ticket.resolved_at >= now - RECENT).order_by(Ticket.resolved_at.desc())
    else:
        query = query.order_by(current_deadline_column().asc().nulls_last())
    query = query.order_by(Ticket.id).options(
        selectinload(Ticket.category), selectinload(Ticket.tier), selectinload(Ticket.complex),
        selectinload(Ticket.building), selectinload(Ticket.team), selectinload(Ticket.company),
    )
    return list(db.session.scalars(query))


def items(user: User, tab: str, now: datetime, calendar: WorkCalendar) -> list[Item]:
    """The tab's tickets with their overdue and due-soon marks."""
    return [
        Item(ticket, ticket.is_overdue(now), sla.due_soon(ticket, now, calendar))
        for ticket in tickets(user, tab, now)
    ]


def counts(user: User, now: datetime) -> dict[str, int]:
    """How many tickets each tab holds."""
    by_status = dict(db.session.execute(
        select(Ticket.status, func.count())
        .where(scope.handler_queue(user), Ticket.status.in_(TABS["open"]))
        .group_by(Ticket.status)
    ).tuples().all())
    result = {tab: sum(by_status.get(s, 0) for s in states) for tab, states in TABS.items() if tab != "resolved"}
    result["resolved"] = db.session.scalar(
        select(func.count()).select_from(Ticket)
        .where(scope.handler_queue(user), Ticket.status.in_(TABS["resolved"]),
               Ticket.resolved_at >= now - RECENT)
    ) or 0
    return result
