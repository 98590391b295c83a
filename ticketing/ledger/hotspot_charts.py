"""The pictures of the recurring problems' pages, drawn as SVG by templates/ledger/_hotspot_charts.html.

As for the dashboard (charts.py): no script, nothing fetched. A cluster's weeks are a
few bars; its map is the grids around it, projected as the dashboard's map projects
them, with a dot where each ticket was reported from.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ticketing.ledger.charts import MAP_PAD, MAP_WIDTH
from ticketing.services.geo import polygons

BARS_WIDTH, BARS_HEIGHT, BAR_GAP = 168, 40, 3


@dataclass
class Bars:
    """Weekly counts as bars: (x, y, width, height, count) each, in a BARS_WIDTH × BARS_HEIGHT box."""

    width: int
    height: int
    bars: list[tuple[float, float, float, float, int]]
    top: int


def weekly_bars(weekly: Sequence[int]) -> Bars:
    """One bar per week of the window, oldest first, scaled to the busiest week."""
    top = max(weekly, default=0)
    n = max(len(weekly), 1)
    width = (BARS_WIDTH - BAR_GAP * (n - 1)) / n
    bars = []
    for i, count in enumerate(weekly):
        height = round((BARS_HEIGHT - 2) * count / top, 1) if top else 0
        bars.append((round(i * (width + BAR_GAP), 1), round(BARS_HEIGHT - height, 1), round(width, 1),
                     max(height, 1 if count else 0), count))
    return Bars(BARS_WIDTH, BARS_HEIGHT, bars, top)


@dataclass
class PointMap:
    """The grids as outlines and the tickets as dots, ready to draw."""

    width: int
    height: int
    grids: list[tuple[Any, list[str], bool]] = field(default_factory=list)  # row, paths, is the cluster's
    points: list[tuple[float, float, str]] = field(default_factory=list)  # x, y, ticket number


def points_map(grids: Sequence[Any], points: Sequence[tuple[float, float, str]], own_grid: int | None) -> PointMap:
    """Project grid boundaries (rows with id, name, boundary) and points (lat, lon, number)
    onto one plane: equirectangular, longitude shrunk by cos(latitude), as on the dashboard."""
    shapes = [(grid, [p[0] for p in polygons(grid.boundary) if p and len(p[0]) >= 3] if grid.boundary else [])
              for grid in grids]
    xy = [(float(pt[0]), float(pt[1])) for _grid, rings in shapes for ring in rings for pt in ring]
    xy += [(lon, lat) for lat, lon, _number in points]
    result = PointMap(MAP_WIDTH, 0)
    if not xy:
        return result
    west, east = min(p[0] for p in xy), max(p[0] for p in xy)
    south, north = min(p[1] for p in xy), max(p[1] for p in xy)
    shrink = math.cos(math.radians((south + north) / 2))
    span_x, span_y = max((east - west) * shrink, 1e-4), max(north - south, 1e-4)
    scale = (MAP_WIDTH - 2 * MAP_PAD) / span_x
    result.height = min(round(span_y * scale + 2 * MAP_PAD), 2 * MAP_WIDTH)
    scale = min(scale, (result.height - 2 * MAP_PAD) / span_y)

    def project(lon: float, lat: float) -> tuple[float, float]:
        return round(MAP_PAD + (lon - west) * shrink * scale, 1), round(MAP_PAD + (north - lat) * scale, 1)

    for grid, rings in shapes:
        if rings:
            paths = ["M" + " L".join("{},{}".format(*project(float(pt[0]), float(pt[1]))) for pt in ring) + " Z"
                     for ring in rings]
            result.grids.append((grid, paths, grid.id == own_grid))
    result.points = [(*project(lon, lat), number) for lat, lon, number in points]
    return result
