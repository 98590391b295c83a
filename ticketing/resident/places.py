"""The places the report form offers to choose from."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ticketing.extensions import db
from ticketing.models import Community, Complex, Grid


def communities() -> list[Community]:
    """Every community with its grids, complexes and buildings loaded, by name."""
    return list(
        db.session.scalars(
            select(Community)
            .options(
                selectinload(Community.grids)
                .selectinload(Grid.complexes)
                .selectinload(Complex.buildings)
            )
            .order_by(Community.name, Community.id)
        ).all()
    )


def complexes_of(community: Community) -> list[Complex]:
    """The complexes of a community across its grids, by name."""
    return sorted((cx for grid in community.grids for cx in grid.complexes), key=lambda cx: (cx.name, cx.id))
