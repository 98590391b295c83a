"""The 督办 lists: escalated and supervised tickets, one list per rung of the ladder.

A ticket is on a list while it is open and either escalated (level 1 community,
2 street, 3 referred upstream) or flagged 督办. Supervisors act on the ticket page;
the list shows what is late, by how much, and why it came up. Scope is the console's:
a community's people see their community, a street's people the street.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, and_, case, func, or_, select

from ticketing.extensions import db
from ticketing.models import OPEN_STATUSES, Role, Ticket, User
from ticketing.services import scope, timeline
from ticketing.services.ticket_lists import current_deadline, list_item_options, page_span

PER_PAGE = 50

# level → label, in the order of the ladder. Level 0 (grid) has no list of its own:
# a ticket flagged 督办 without being escalated shows with the community's.
LEVELS: dict[int, Any] = {
    1: _l("Community"),
    2: _l("Street"),
    3: _l("Referred upstream"),
}
LEVEL_LABELS: dict[int, Any] = {0: _l("Grid"), **LEVELS}


@dataclass
class SupervisionPage:
    """One page of the 督办 list at the chosen levels, with the count of every level."""

    levels: tuple[int, ...]
    tickets: list[Ticket]
    counts: dict[int, int]
    page: int
    pages: int
    reasons: dict[int, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """How many tickets the chosen levels hold."""
        return sum(self.counts[level] for level in self.levels)


def default_levels(user: User) -> tuple[int, ...]:
    """What a user sees first: a community's people level 1, a street's levels 2 and 3."""
    if user.role == Role.ADMIN:
        return tuple(LEVELS)
    if user.community_id is not None:
        return (1,)
    return (2, 3)


def chosen_levels(user: User, asked: str | None) -> tuple[int, ...]:
    """The level asked for in the query string if it is one, else the user's default."""
    if asked and asked.isdigit() and int(asked) in LEVELS:
        return (int(asked),)
    return default_levels(user)


def supervised_condition() -> ColumnElement[bool]:
    """Open, and escalated or flagged 督办."""
    return and_(
        Ticket.status.in_(list(OPEN_STATUSES)),
        or_(Ticket.supervised.is_(True), Ticket.escalation_level >= 1),
    )


def list_level() -> ColumnElement[int]:
    """The list a ticket shows on: its level, the community's when flagged at grid level."""
    return case((Ticket.escalation_level < 1, 1), else_=Ticket.escalation_level)


def level_counts(user: User) -> dict[int, int]:
    """How many tickets each level's list holds for `user`, in one query."""
    level = list_level()
    rows = db.session.execute(
        select(level, func.count(Ticket.id))
        .where(scope.ticket_scope(user), supervised_condition())
        .group_by(level)
    ).all()
    counts = dict.fromkeys(LEVELS, 0)
    for value, count in rows:
        counts[min(int(value), max(LEVELS))] += int(count)
    return counts


def count_for(user: User) -> int:
    """How many tickets are on `user`'s default lists (the console's link shows it)."""
    counts = level_counts(user)
    return sum(counts[level] for level in default_levels(user))


def escalation_reasons(tickets: list[Ticket]) -> dict[int, str]:
    """The note of each ticket's latest escalation."""
    return timeline.latest_notes([t.id for t in tickets if t.escalation_level >= 1], "escalate")


def load_supervision(user: User, levels: tuple[int, ...], page: int) -> SupervisionPage:
    """One page of the tickets on the lists of `levels` that `user` may see, latest first."""
    counts = level_counts(user)
    total = sum(counts[level] for level in levels)
    page, pages, offset = page_span(total, page, PER_PAGE)
    tickets: list[Ticket] = []
    if total:
        deadline = current_deadline()
        query = (
            select(Ticket)
            .where(scope.ticket_scope(user), supervised_condition(), list_level().in_(levels))
            .options(*list_item_options())
            # The longest overdue first; those with no deadline (awaiting a handler) last.
            .order_by(deadline.is_(None), deadline, Ticket.escalated_at, Ticket.id)
            .limit(PER_PAGE)
            .offset(offset)
        )
        tickets = list(db.session.scalars(query).unique())
    return SupervisionPage(levels, tickets, counts, page, pages, escalation_reasons(tickets))


def overdue_by(ticket: Ticket, now: datetime) -> datetime | None:
    """The deadline the ticket is late against, or None while it is not late."""
    return ticket.current_deadline if ticket.is_overdue(now) else None
