"""Duplicate hints: open tickets about the same thing at the same place, filed close together.

The rule (from the issue): an open ticket at the same building, in the same
category, filed within 72 hours of this one, is a likely duplicate. The window runs
both ways, so the older ticket's page shows the newer one too, and the dispatcher
can merge from either side.

A weaker hint covers tickets placed only at complex level (a self-managed courtyard
with no buildings on file, or an address typed without one): same complex, same
category, within the window, where at least one of the two tickets has no building.
Two tickets at *different* buildings are never hinted. The rule is symmetric: if A
is a hint on B's page, B is one on A's.

Routing uses the same rule (`first_handled`): a new ticket that likely duplicates
one already dispatched goes to that ticket's handler (services/routing.py).

Hints are only what the viewer may see (`scope.ticket_scope`); merging stays the
state machine's call (`lifecycle`), which these hints only offer.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    false,
    func,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql

from ticketing.extensions import db
from ticketing.models import FINAL_STATUSES, OPEN_STATUSES, Status, Ticket, User
from ticketing.services import scope
from ticketing.services.lifecycle import Actor, allowed

WINDOW = timedelta(hours=72)
LIMIT = 5


class Placed(Protocol):
    """What the pairing rule reads of a ticket: a loaded `Ticket`, or a row of its columns."""

    id: int
    status: str
    category_id: int
    complex_id: int | None
    building_id: int | None
    created_at: datetime


class Handled(Placed, Protocol):
    """What routing reads of a ticket a new one may duplicate: where and when it was
    filed, and whose hand it is in."""

    number: str
    community_id: int
    assignee_id: int | None
    team_id: int | None
    company_id: int | None


@dataclass(slots=True)
class NearTicket:
    """An open ticket `near_many` found, as the columns of `Handled`: not a loaded Ticket."""

    id: int
    number: str
    status: str
    category_id: int
    complex_id: int | None
    building_id: int | None
    community_id: int
    created_at: datetime
    assignee_id: int | None
    team_id: int | None
    company_id: int | None


def eligible(ticket: Ticket) -> bool:
    """Whether hints make sense for `ticket`: it is placed in a complex and not finished."""
    return ticket.status not in FINAL_STATUSES and ticket.complex_id is not None


def same_place(ticket: Ticket) -> ColumnElement[bool]:
    """SQL: tickets at the same building, or (weaker) in the same complex where one has no building."""
    if ticket.building_id is None:
        return Ticket.complex_id == ticket.complex_id
    return or_(
        Ticket.building_id == ticket.building_id,
        and_(Ticket.complex_id == ticket.complex_id, Ticket.building_id.is_(None)),
    )


def pairs(ticket: Placed, other: Placed) -> bool:
    """The same rule as the SQL of `candidates`, for two loaded tickets."""
    if other.id == ticket.id or other.status not in OPEN_STATUSES:
        return False
    if other.category_id != ticket.category_id or other.complex_id is None:
        return False
    if abs(other.created_at - ticket.created_at) > WINDOW:
        return False
    if ticket.building_id is not None and other.building_id is not None:
        return other.building_id == ticket.building_id
    return other.complex_id == ticket.complex_id


def candidates(ticket: Ticket, user: User, now: datetime, limit: int = LIMIT) -> list[Ticket]:
    """Open tickets `user` may see that look like duplicates of `ticket`, same building first, newest first.

    The window is anchored at the ticket's own filing time, not at `now`, so a
    ticket keeps its hints for as long as both stay open; `now` is taken for the
    shape every service shares (and unused today).
    """
    if not eligible(ticket):
        return []
    same_building = (
        Ticket.building_id == ticket.building_id if ticket.building_id is not None else false()
    )
    query = (
        select(Ticket)
        .where(
            Ticket.id != ticket.id,
            Ticket.category_id == ticket.category_id,
            same_place(ticket),
            Ticket.created_at >= ticket.created_at - WINDOW,
            Ticket.created_at <= ticket.created_at + WINDOW,
            Ticket.status.in_(OPEN_STATUSES),
            scope.ticket_scope(user),
        )
        .order_by(case((same_building, 0), else_=1), Ticket.created_at.desc(), Ticket.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(query))


HANDLED = (Status.DISPATCHED, Status.ACCEPTED, Status.ON_HOLD)


def first_handled(ticket: Ticket, near: Iterable[Handled] | None = None) -> Handled | None:
    """The first ticket filed before `ticket` that it likely duplicates and that has a hand
    (a person, or a team's or company's queue): routing sends the duplicate there.

    No viewer's scope: this is routing's question. The SQL narrows to the category,
    place and window (or `near`, what `near_many` found for a whole batch); the rest is
    `pairs` on the loaded rows, which inside a routing batch already carry the batch's
    assignments (held back, not yet flushed).
    """
    if not eligible(ticket):
        return None
    others: Iterable[Handled] = near if near is not None else db.session.scalars(
        select(Ticket)
        .where(Ticket.id != ticket.id, Ticket.category_id == ticket.category_id, same_place(ticket),
               Ticket.created_at >= ticket.created_at - WINDOW, Ticket.created_at <= ticket.created_at,
               Ticket.status.in_(OPEN_STATUSES))
        .order_by(Ticket.created_at, Ticket.id)
        .limit(LIMIT * 4)
    )
    for other in others:
        before = (other.created_at, other.id) < (ticket.created_at, ticket.id)
        held = other.assignee_id is not None or other.team_id is not None or other.company_id is not None
        if before and held and other.status in HANDLED and pairs(ticket, other):
            return other
    return None


Near = dict[tuple[int, int], list[Handled]]
# The columns of `NearTicket`, in its order.
NEAR_COLUMNS = (Ticket.id, Ticket.number, Ticket.status, Ticket.category_id, Ticket.complex_id, Ticket.building_id,
                Ticket.community_id, Ticket.created_at, Ticket.assignee_id, Ticket.team_id, Ticket.company_id)


def near_many(tickets: Iterable[Ticket]) -> Near:
    """What `first_handled` may find for each of `tickets`, for all of them in one query
    (routing a batch): per category and complex, the tickets filed in the window before
    the earliest of them up to the latest that are in a hand now, with the batch's own
    tickets (a ticket routed earlier in the batch is in a hand by the time the next one
    looks); oldest first, grouped by (category, complex) so each ticket of the batch
    walks only its own group (`near_of`).

    The others come as plain rows (`NearTicket`): a storm puts hundreds of open tickets
    in a batch's windows, and loading each as a Ticket was a third of a routing batch's
    CPU. Tickets nobody has yet are not read at all: `first_handled` would pass them by."""
    tickets = list(tickets)
    spans: dict[tuple[int, int], list[datetime]] = {}
    mine: dict[int, Handled] = {}
    for ticket in tickets:
        if eligible(ticket):
            assert ticket.complex_id is not None
            spans.setdefault((ticket.category_id, ticket.complex_id), []).append(ticket.created_at)
            mine[ticket.id] = ticket
    if not spans:
        return {}
    grouped: Near = {}
    for row in db.session.execute(_near_query(spans)):
        if row.id not in mine:
            grouped.setdefault((row.category_id, row.complex_id), []).append(NearTicket(*row))
    for own in mine.values():
        assert own.complex_id is not None
        grouped.setdefault((own.category_id, own.complex_id), []).append(own)
    for group in grouped.values():
        group.sort(key=lambda other: (other.created_at, other.id))
    return grouped


def _near_query(spans: dict[tuple[int, int], list[datetime]]) -> Select[Any]:
    """The tickets in a hand (`HANDLED`) in one of the (category, complex) windows. On
    PostgreSQL the windows are four array parameters joined as rows (`unnest`), so the
    statement's text is the same for every batch and its plan is kept
    (services/sqlparts.py); a condition per window made a new statement, planned anew,
    for each batch."""
    handled = Ticket.status.in_(HANDLED)
    if db.session.get_bind().dialect.name != "postgresql":
        return select(*NEAR_COLUMNS).where(handled, or_(*(
            and_(Ticket.category_id == category_id, Ticket.complex_id == complex_id,
                 Ticket.created_at.between(min(times) - WINDOW, max(times)))
            for (category_id, complex_id), times in spans.items())))
    keys = list(spans)
    windows = func.unnest(
        bindparam("categories", [c for c, _ in keys], type_=postgresql.ARRAY(Integer)),
        bindparam("complexes", [x for _, x in keys], type_=postgresql.ARRAY(Integer)),
        bindparam("since", [min(spans[k]) - WINDOW for k in keys], type_=postgresql.ARRAY(DateTime(timezone=True))),
        bindparam("until", [max(spans[k]) for k in keys], type_=postgresql.ARRAY(DateTime(timezone=True))),
    ).table_valued("category_id", "complex_id", "since", "until").render_derived(name="windows")
    return select(*NEAR_COLUMNS).join(windows, and_(
        Ticket.category_id == windows.c.category_id, Ticket.complex_id == windows.c.complex_id,
        Ticket.created_at.between(windows.c.since, windows.c.until))).where(handled)


def near_of(near: Near, ticket: Ticket) -> list[Handled]:
    """What `near_many` found in `ticket`'s category and complex."""
    if ticket.complex_id is None:
        return []
    return near.get((ticket.category_id, ticket.complex_id), [])


def flagged(tickets: Iterable[Ticket], user: User) -> set[int]:
    """Ids of those `tickets` that have at least one candidate `user` may see, in one query.

    For a list page: one query fetches the open tickets in scope that share a
    category and a complex with a ticket of the page and fall in its window; the
    building rule and "not itself" are checked here, the same as `pairs`.
    """
    page = [t for t in tickets if eligible(t)]
    if not page:
        return set()
    near = or_(*(
        and_(Ticket.category_id == t.category_id, Ticket.complex_id == t.complex_id,
             Ticket.created_at.between(t.created_at - WINDOW, t.created_at + WINDOW))
        for t in page
    ))
    others = db.session.execute(
        select(Ticket.id, Ticket.status, Ticket.category_id, Ticket.complex_id,
               Ticket.building_id, Ticket.created_at)
        .where(near, Ticket.status.in_(OPEN_STATUSES), scope.ticket_scope(user))
    ).all()
    return {t.id for t in page if any(pairs(t, other) for other in others)}


@dataclass(frozen=True)
class Hint:
    """One likely duplicate as the ticket page shows it, with the merges the viewer may do."""

    ticket: Ticket
    same_building: bool
    merge_here: bool  # the page's ticket may be merged into this one
    merge_there: bool  # this one may be merged into the page's ticket


def may_merge(actor: Actor, ticket: Ticket) -> bool:
    """Whether the state machine lets `actor` merge `ticket` (into some other ticket) now."""
    return any(t.name == "merge" for t in allowed(actor, ticket))


def hints(ticket: Ticket, actor: Actor, now: datetime) -> list[Hint]:
    """The candidates of `ticket` for a staff viewer, each with the merge buttons they may use."""
    if actor.user is None:
        return []
    here = may_merge(actor, ticket)
    return [
        Hint(
            ticket=other,
            same_building=ticket.building_id is not None and other.building_id == ticket.building_id,
            merge_here=here,
            merge_there=may_merge(actor, other),
        )
        for other in candidates(ticket, actor.user, now)
    ]
