"""Counting what filing through a door asks of the database (tests/test_doors_fastpath.py,
tests/test_open311_fastpath.py), with a world grown by many places and categories."""
from __future__ import annotations

import json
import re
from collections.abc import Callable

from werkzeug.test import TestResponse

from tests.factories import World
from ticketing.extensions import db
from ticketing.models import Building, Category, Community, Complex, Grid

# Tables of the catalogue and the places, which every door reads from the cache.
REFERENCE_READ = re.compile(r"^SELECT .* FROM (categories|sla_tiers|streets|communities|grids|complexes|buildings)\b")


def square(lon: float, lat: float, side: float = 0.01) -> str:
    """A GeoJSON square with its south-west corner at (lon, lat)."""
    return json.dumps({"type": "Polygon", "coordinates": [[[lon, lat], [lon + side, lat], [lon + side, lat + side],
                                                           [lon, lat + side], [lon, lat]]]})


def add_places_and_categories(world: World, count: int) -> None:
    """Grow the world; commits.

    - a community 前面社区, tried before 东怡社区 (its code sorts first), with `count` grids;
    - `count` more grids in 东怡社区, all given to Gina (the grid worker of CA-01);
    - three complexes of three buildings in each of these grids, each grid with a boundary;
    - `count` categories in a group of their own.
    """
    first = Community(code="AA", name="前面社区", street=world.street)
    grids = [Grid(code=f"AA-{g:02d}", name=f"网格{g}", community=first, boundary=square(117 + g / 10, 40))
             for g in range(count)]
    own = [Grid(code=f"CA-{g + 10:02d}", name=f"新网格{g}", community=world.community_a,
                boundary=square(118 + g / 10, 40)) for g in range(count)]
    for grid in grids + own:
        for c in range(3):
            cx = Complex(name=f"小区{grid.code}-{c}", grid=grid, aliases=f"别名{grid.code}-{c}")
            db.session.add_all([Building(name=f"{b}号楼", complex=cx) for b in range(3)])
    world.gina.grids.extend(own)
    group = Category(code="many", name_zh="很多", name_en="Many")
    db.session.add_all([group, *(Category(code=f"many.{i}", name_zh=f"类{i}", name_en=f"Kind {i}", parent=group)
                                 for i in range(count))])
    db.session.commit()


def count_filing(prepare: Callable[[], Callable[[], TestResponse]], status: int,
                 statements: list[str], lazy_loads: list[str]) -> int:
    """The statements of filing once, after a first filing has filled the caches.

    `prepare` does what comes before the filing (reading a form page, signing a body)
    and returns the request that files; only that request is counted, its lazy loads
    left in `lazy_loads`.
    """
    for _ in range(2):
        post = prepare()
        statements.clear()
        lazy_loads.clear()
        response = post()
        assert response.status_code == status, response.get_data(as_text=True)[:500]
    return len(statements)


def reference_reads(statements: list[str]) -> list[str]:
    """The statements that read the catalogue or the places."""
    return [s for s in statements if REFERENCE_READ.match(s)]
