"""The grid patrol's rules: placing a worker's location, and 马上就办 (taking it on the spot).

The patrol page and the staff API's patrol channel both use them.
"""
from __future__ import annotations

from datetime import datetime

from ticketing.extensions import db
from ticketing.models import Community, Grid, Ticket, User
from ticketing.services import geo
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.workdays import WorkCalendar

TAKEN_ON_THE_SPOT = "patrol: taken on the spot"


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


def take_on_the_spot(ticket: Ticket, worker: User, result: str, now: datetime, calendar: WorkCalendar) -> None:
    """Dispatch the new ticket to the worker, who accepts it and, with a result, resolves it.

    The caller commits; a refused step raises the state machine's `ServiceError`.
    """
    perform(ticket, "dispatch", Actor.system(), now, calendar, assignee=worker, rule=TAKEN_ON_THE_SPOT)
    perform(ticket, "accept", Actor.staff(worker), now, calendar)
    if result:
        perform(ticket, "resolve", Actor.staff(worker), now, calendar, note=result)
