"""The grid patrol's rules: placing a worker's report, and the worker owning it.

The patrol page and the staff API's patrol channel both use them.

A patrol report (巡查) is the grid worker's own finding, not a resident's request:
it is placed where the worker stood (`place_report`: the grid around the point, else
the nearest of the worker's own grids, so that it never falls outside every grid's
ledger), and it is theirs at once (`own_report`: dispatched to them and accepted, not
routed). With 马上就办 and a result it is resolved on the spot too
(`take_on_the_spot`). Nobody is asked to rate it: notify.py sends no resident
message for it, the state machine lets no resident rate or reopen it (lifecycle.py),
the SLA sweep closes it as soon as it is resolved (services/sweep.py), and the
ledger keeps it out of the 满意率 and counts it apart (services/ledger.py).
"""
from __future__ import annotations

from datetime import datetime

from ticketing.extensions import db
from ticketing.models import Community, Grid, Ticket, User
from ticketing.services import geo, placing
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.workdays import WorkCalendar

TAKEN_ON_THE_SPOT = "patrol: taken on the spot"
OWN_REPORT = "patrol: the worker's own report"


def place_point(user: User, lat: float, lng: float) -> Grid | None:
    """The grid containing the point: the worker's own grids first, then the street's."""
    grid = geo.grid_at(user.grids, lat, lng)
    if grid is None and user.street_id is not None:
        others = db.session.scalars(
            db.select(Grid).join(Grid.community)
            .where(Community.street_id == user.street_id, Grid.boundary.is_not(None))
            .order_by(Grid.code)
        )
        grid = geo.grid_at(others, lat, lng)
    return grid


def place_report(user: User, lat: float | None, lng: float | None) -> Grid | None:
    """Where a patrol report without a building belongs: the grid around the point, else
    (no point, or outside every grid's boundary) the worker's own grid nearest to it;
    None only for a worker without an open grid."""
    if lat is not None and lng is not None:
        grid = place_point(user, lat, lng)
        if grid is not None:
            return grid
    return own_grid(user, lat, lng)


def own_grid(user: User, lat: float | None = None, lng: float | None = None) -> Grid | None:
    """The worker's open grid whose boundary comes nearest the point; the first without one."""
    grids = [grid for grid in user.grids if placing.grid_open(grid)]
    if lat is None or lng is None or len(grids) < 2:
        return grids[0] if grids else None
    return min(grids, key=lambda grid: _distance(grid, lat, lng))


def _distance(grid: Grid, lat: float, lng: float) -> float:
    """Squared distance in degrees from the point to the nearest corner of the grid's
    boundary (grids are a few hundred metres across: enough to choose between a worker's
    grids); infinite without a boundary."""
    corners = [corner for shape in geo.polygons(grid.boundary) for ring in shape[:1] for corner in ring]
    try:
        return min(((float(c[1]) - lat) ** 2 + (float(c[0]) - lng) ** 2 for c in corners), default=float("inf"))
    except (TypeError, IndexError, ValueError):
        return float("inf")


def own_report(ticket: Ticket, worker: User, now: datetime, calendar: WorkCalendar,
               rule: str = OWN_REPORT) -> None:
    """Dispatch the worker's new report to them and accept it: they found it, they own it.

    The caller commits; a refused step raises the state machine's `ServiceError`.
    """
    perform(ticket, "dispatch", Actor.system(), now, calendar, assignee=worker, rule=rule)
    perform(ticket, "accept", Actor.staff(worker), now, calendar)


def take_on_the_spot(ticket: Ticket, worker: User, result: str, now: datetime, calendar: WorkCalendar) -> None:
    """马上就办: the report is the worker's, and with a result it is resolved at once.

    The caller commits; a refused step raises the state machine's `ServiceError`.
    """
    own_report(ticket, worker, now, calendar, rule=TAKEN_ON_THE_SPOT)
    if result:
        perform(ticket, "resolve", Actor.staff(worker), now, calendar, note=result)
