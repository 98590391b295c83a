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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ticketing.extensions import db
from ticketing.models import Community, Grid, Ticket, TicketEvent, User, user_grids
from ticketing.services import geo, placing
from ticketing.services.lifecycle import Actor, plan
from ticketing.services.workdays import WorkCalendar

TAKEN_ON_THE_SPOT = "patrol: taken on the spot"
OWN_REPORT = "patrol: the worker's own report"


@dataclass(frozen=True)
class OwnGrid:
    """One of a grid worker's grids, as ids with the places above it."""

    id: int
    community_id: int
    street_id: int


def own_grids(user: User) -> list[OwnGrid]:
    """The user's grids (a grid worker's), in code order.

    One statement, read afresh for every request: a grid taken from a worker is gone at once.
    """
    return [OwnGrid(*row) for row in db.session.execute(
        select(Grid.id, Grid.community_id, Community.street_id)
        .join(user_grids, user_grids.c.grid_id == Grid.id).join(Community, Grid.community_id == Community.id)
        .where(user_grids.c.user_id == user.id).order_by(Grid.code))]


def place_point(own: Sequence[OwnGrid], street_id: int | None, lat: float, lng: float) -> geo.GridArea | None:
    """The open grid containing the point: the worker's own grids (`own_grids`) first, then
    those of their street (`street_id`). From the cached boundaries (services/geo.py)."""
    mine = {grid.id for grid in own}
    grid = geo.area_at((a for a in geo.open_grid_areas() if a.id in mine), lat, lng) if mine else None
    if grid is None and street_id is not None:
        grid = geo.open_grid_at(lat, lng, street_ids={street_id})
    return grid


def place_report(own: Sequence[OwnGrid], street_id: int | None, lat: float | None,
                 lng: float | None) -> geo.GridArea | OwnGrid | None:
    """Where a patrol report without a building belongs: the grid around the point, else
    (no point, or outside every grid's boundary) the worker's own grid nearest to it;
    None only for a worker without an open grid."""
    if lat is not None and lng is not None:
        grid = place_point(own, street_id, lat, lng)
        if grid is not None:
            return grid
    return own_grid(own, lat, lng)


def own_grid(own: Sequence[OwnGrid], lat: float | None = None, lng: float | None = None) -> OwnGrid | None:
    """The worker's open grid whose boundary comes nearest the point; the first without one.
    Whether a grid is open, and its boundary, come from the cache."""
    grids = [grid for grid in own if placing.grid_place(grid.id) is not None]
    if lat is None or lng is None or len(grids) < 2:
        return grids[0] if grids else None
    areas = {area.id: area for area in geo.open_grid_areas()}
    return min(grids, key=lambda grid: _distance(areas.get(grid.id), lat, lng))


def _distance(area: geo.GridArea | None, lat: float, lng: float) -> float:
    """Squared distance in degrees from the point to the nearest corner of the grid's
    boundary (grids are a few hundred metres across: enough to choose between a worker's
    grids); infinite without a boundary."""
    corners = [corner for shape in (area.polygons if area is not None else ()) for ring in shape[:1]
               for corner in ring]
    try:
        return min(((float(c[1]) - lat) ** 2 + (float(c[0]) - lng) ** 2 for c in corners), default=float("inf"))
    except (TypeError, IndexError, ValueError):
        return float("inf")


def own_report(ticket: Ticket, worker: User, now: datetime, calendar: WorkCalendar,
               rule: str = OWN_REPORT) -> list[TicketEvent]:
    """Dispatch the worker's new report to them and accept it: they found it, they own it.

    The two steps are planned on the report before it is stored (lifecycle.plan), so that
    intake stores it accepted, with their events, in one write; their events are
    returned. A refused step raises the state machine's `ServiceError`, and nothing is
    stored.
    """
    return [plan(ticket, "dispatch", Actor.system(), now, calendar, assignee=worker, rule=rule),
            plan(ticket, "accept", Actor.staff(worker), now, calendar)]


def theirs(worker: User, now: datetime, calendar: WorkCalendar, on_the_spot: bool = False,
           result: str = "") -> Callable[[Ticket], list[TicketEvent]]:
    """The steps that make a new report the worker's (`own_report`), or with 马上就办 take
    it on the spot (`take_on_the_spot`): intake's `steps`, taken before the report is
    stored and stored with it, so that a report is never filed but nobody's."""
    if on_the_spot:
        return lambda ticket: take_on_the_spot(ticket, worker, result, now, calendar)
    return lambda ticket: own_report(ticket, worker, now, calendar)


def take_on_the_spot(ticket: Ticket, worker: User, result: str, now: datetime,
                     calendar: WorkCalendar) -> list[TicketEvent]:
    """马上就办: the report is the worker's, and with a result it is resolved at once.

    Planned as `own_report` is; a refused step raises the state machine's `ServiceError`.
    """
    steps = own_report(ticket, worker, now, calendar, rule=TAKEN_ON_THE_SPOT)
    if result:
        steps.append(plan(ticket, "resolve", Actor.staff(worker), now, calendar, note=result))
    return steps
