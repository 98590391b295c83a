"""The governance tasks other pages show: the ledger dashboard's block, a grid's day, and
the tasks a ticket belongs to (templates/governance/_*_block.html, _ticket_tasks.html).

Shared by the ledger and staff blueprints, which may not import the governance one, so it
lives beside place_choices.py. Each is one call from the page's view and reads only the
task tables (and place names): the dashboard stays free of ticket scans.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from ticketing.models import GovernanceTask, Grid, Ticket, User
from ticketing.services import governance
from ticketing.web import local_tz

SHOWN = 5  # tasks in a block; the rest are behind "all"


@dataclass(frozen=True)
class TaskBlock:
    """A few tasks to show, how many there are, their places by name, and today (local)."""

    tasks: list[GovernanceTask]
    total: int
    places: dict[int, str]
    today: date


def _block(tasks: list[GovernanceTask], today: date) -> TaskBlock:
    shown = tasks[:SHOWN]
    return TaskBlock(shown, len(tasks), governance.place_labels(shown), today)


def for_area(user: User, community_id: int | None, street_id: int | None, now: datetime) -> TaskBlock:
    """The open tasks of a dashboard's area, overdue (earliest deadline) first."""
    return _block(governance.in_area(user, community_id, street_id), now.astimezone(local_tz()).date())


def for_grid_day(grid: Grid, day: date, now: datetime) -> TaskBlock:
    """The tasks that covered the grid on that local day."""
    tz = local_tz()
    return _block(governance.covering_grid(grid, day, tz), now.astimezone(tz).date())


def for_ticket(ticket: Ticket) -> list[GovernanceTask]:
    """The tasks a ticket is linked to."""
    return governance.of_ticket(ticket)
