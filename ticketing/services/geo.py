"""Place a phone's location in a grid: point-in-polygon over the grids' GeoJSON boundaries.

A rule used by every door that places by location (patrol, staff API, Open311, WeChat)
and by the ledger's map, so it lives with the services.

GeoJSON writes positions as [longitude, latitude]. Polygons are small (a grid is a few
hundred metres across), so plain ray casting on the raw coordinates is exact enough.
"""
from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from ticketing.extensions import db
from ticketing.models import Community, Grid, Street
from ticketing.services import placing, refcache

Ring = Sequence[Sequence[float]]


def in_ring(lng: float, lat: float, ring: Ring) -> bool:
    """Ray casting: True when the point is inside the closed ring (edges count as either)."""
    inside = False
    n = len(ring)
    if n < 3:
        return False
    j = n - 1
    for i in range(n):
        xi, yi = float(ring[i][0]), float(ring[i][1])
        xj, yj = float(ring[j][0]), float(ring[j][1])
        if (yi > lat) != (yj > lat):
            x_cross = (xj - xi) * (lat - yi) / (yj - yi) + xi
            if lng < x_cross:
                inside = not inside
        j = i
    return inside


def in_polygon(lng: float, lat: float, rings: Sequence[Ring]) -> bool:
    """Inside the outer ring and outside every hole."""
    if not rings or not in_ring(lng, lat, rings[0]):
        return False
    return not any(in_ring(lng, lat, hole) for hole in rings[1:])


def polygons(geojson: Any) -> list[Sequence[Ring]]:
    """The polygons of a GeoJSON Polygon, MultiPolygon, Feature or FeatureCollection."""
    if isinstance(geojson, str):
        try:
            geojson = json.loads(geojson)
        except ValueError:
            return []
    if not isinstance(geojson, dict):
        return []
    kind = geojson.get("type")
    if kind == "Feature":
        return polygons(geojson.get("geometry"))
    if kind == "FeatureCollection":
        return [p for f in geojson.get("features") or [] for p in polygons(f)]
    coords = geojson.get("coordinates")
    if not isinstance(coords, list):
        return []
    if kind == "Polygon":
        return [coords]
    if kind == "MultiPolygon":
        return list(coords)
    return []


def contains(geojson: Any, lat: float, lng: float) -> bool:
    """True when the GeoJSON area contains the point."""
    try:
        return any(in_polygon(lng, lat, p) for p in polygons(geojson))
    except (TypeError, IndexError, ValueError):
        return False  # a malformed boundary places nothing


def polygons_contain(shapes: Sequence[Sequence[Ring]], lat: float, lng: float) -> bool:
    """`contains` for boundaries already parsed by `polygons` (kept parsed by a cache)."""
    try:
        return any(in_polygon(lng, lat, p) for p in shapes)
    except (TypeError, IndexError, ValueError):
        return False


def grid_at(grids: Iterable[Grid], lat: float, lng: float) -> Grid | None:
    """The first grid whose boundary contains the point, if any."""
    for grid in grids:
        if grid.boundary and contains(grid.boundary, lat, lng) and placing.grid_open(grid):
            return grid  # a deactivated grid (or one under a deactivated place) takes no new tickets
    return None


@dataclass(frozen=True)
class GridArea:
    """An open grid with a boundary, parsed once (cached by `open_grid_areas`)."""

    id: int
    community_id: int
    street_id: int
    polygons: tuple[Any, ...]
    # The outer rings' bounding box (west, south, east, north), or None when a position
    # is malformed: `area_at` then tests the polygons themselves.
    box: tuple[float, float, float, float] | None = None

    def may_hold(self, lat: float, lng: float) -> bool:
        """False when the point is outside the bounding box: no polygon can hold it."""
        box = self.box
        return box is None or (box[0] <= lng <= box[2] and box[1] <= lat <= box[3])


def bounding_box(shapes: Sequence[Sequence[Ring]]) -> tuple[float, float, float, float] | None:
    """West, south, east, north of the polygons' outer rings; None when there is no
    position or one is not a pair of numbers."""
    try:
        lngs = [float(position[0]) for shape in shapes for position in shape[0]]
        lats = [float(position[1]) for shape in shapes for position in shape[0]]
    except (TypeError, IndexError, ValueError):
        return None
    return (min(lngs), min(lats), max(lngs), max(lats)) if lngs else None


def open_grid_areas() -> tuple[GridArea, ...]:
    """Every open grid (grid, community and street active) that has a boundary, in code
    order, parsed; cached per process (services/refcache.py), as places are: placing a
    point reads no boundary and parses none."""
    def load() -> tuple[GridArea, ...]:
        rows = db.session.execute(
            select(Grid.id, Grid.community_id, Community.street_id, Grid.boundary)
            .join(Community, Grid.community_id == Community.id).join(Street, Community.street_id == Street.id)
            .where(Grid.boundary.is_not(None), Grid.active.is_(True), Community.active.is_(True),
                   Street.active.is_(True))
            .order_by(Grid.code))
        areas = []
        for grid_id, community_id, street_id, boundary in rows:
            shapes = tuple(polygons(boundary))
            areas.append(GridArea(grid_id, community_id, street_id, shapes, bounding_box(shapes)))
        return tuple(areas)

    return refcache.remember(("open grid areas",), load) or ()


def area_at(areas: Iterable[GridArea], lat: float, lng: float) -> GridArea | None:
    """The first of these grid areas whose boundary holds the WGS-84 point, if any: the
    bounding boxes first, so that a street of a thousand grids tests one or two polygons."""
    return next((area for area in areas if area.may_hold(lat, lng) and polygons_contain(area.polygons, lat, lng)),
                None)


def open_grid_at(lat: float, lng: float, street_ids: Collection[int] | None = None) -> GridArea | None:
    """The first open grid (of these streets, if given) whose boundary holds the WGS-84
    point, if any: how the web form places a resident's "use my location", and Open311
    its lat/long."""
    areas = open_grid_areas()
    return area_at(areas if street_ids is None else (a for a in areas if a.street_id in street_ids), lat, lng)
