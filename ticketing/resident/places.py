"""The places the report form offers to choose from: the active ones of every active street."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ticketing.extensions import db
from ticketing.models import Building, Community, Complex, Grid, Street


def communities() -> list[Community]:
    """Every active community of an active street, with its grids, complexes and buildings
    loaded, by name. A resident chooses their own, whichever street it is in."""
    return list(
        db.session.scalars(
            select(Community).join(Street, Community.street_id == Street.id)
            .where(Community.active.is_(True), Street.active.is_(True))
            .options(
                selectinload(Community.grids)
                .selectinload(Grid.complexes)
                .selectinload(Complex.buildings)
                .selectinload(Building.grid)
            )
            .order_by(Community.name, Community.id)
        ).all()
    )


def complexes_of(community: Community) -> list[Complex]:
    """The active complexes of a community's active grids, by name."""
    return sorted((cx for grid in community.grids if grid.active for cx in grid.complexes if cx.active),
                  key=lambda cx: (cx.name, cx.id))


def buildings_of(cx: Complex) -> list[Building]:
    """The active buildings of a complex (not those lying in a deactivated grid of their own)."""
    return [b for b in cx.buildings if b.active and (b.grid is None or b.grid.active)]
