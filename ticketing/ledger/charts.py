"""The geometry of the dashboard's pictures, drawn as SVG by templates/ledger/_charts.html.

No JavaScript and nothing fetched: a line chart is a few polylines in a viewBox, the
map is the grids' GeoJSON boundaries projected onto a plane. Both scale with the
page, so they read the same on a phone and on a desk.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ticketing.services.geo import polygons

WIDTH, HEIGHT = 420, 240
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 58, 26, 14, 36


@dataclass(frozen=True)
class Series:
    """One line of a chart: its name, colour and a value per day (None where there is none)."""

    label: str
    colour: str
    values: Sequence[float | None]
    dashed: bool = False


@dataclass
class LineChart:
    """A chart ready to draw: the polylines (split where values are missing), the axis ticks."""

    width: int
    height: int
    lines: list[tuple[Series, list[str]]]
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str]]
    plot: tuple[float, float, float, float]  # left, top, right, bottom


def nice_step(value: float) -> float:
    """The smallest of 1, 2, 3, 5 × 10ⁿ at or above `value` (at least 1): a step that
    gives whole, readable tick labels."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 3, 5, 10) if step * power >= value)


def line_chart(days: Sequence[date], series: Iterable[Series], top: float | None = None,
               percent: bool = False) -> LineChart:
    """Lay out `series` over `days`; the y axis runs from 0 to `top` (or a round maximum)."""
    series = list(series)
    highest = max((v for s in series for v in s.values if v is not None), default=0)
    top = top if top is not None else 4 * nice_step(highest / 4)
    left, right, upper, lower = PAD_LEFT, WIDTH - PAD_RIGHT, PAD_TOP, HEIGHT - PAD_BOTTOM
    step = (right - left) / max(len(days) - 1, 1)

    def x(i: int) -> float:
        return round(left + i * step, 1)

    def y(v: float) -> float:
        return round(lower - (v / top) * (lower - upper), 1)

    lines = []
    for s in series:
        runs: list[str] = []
        current: list[str] = []
        for i, value in enumerate(s.values):
            if value is None:
                if current:
                    runs.append(" ".join(current))
                current = []
            else:
                current.append(f"{x(i)},{y(value)}")
        if current:
            runs.append(" ".join(current))
        lines.append((s, runs))
    y_ticks = [(y(top * k / 4), f"{round(top * k / 4 * (100 if percent else 1))}{'%' if percent else ''}")
               for k in range(5)]
    # A label every week, counted back from the last day so that it always has one.
    x_ticks = [(x(i), d.strftime("%m-%d")) for i, d in enumerate(days) if (len(days) - 1 - i) % 7 == 0]
    return LineChart(WIDTH, HEIGHT, lines, y_ticks, x_ticks, (left, upper, right, lower))


# --- the map ------------------------------------------------------------------

MAP_WIDTH = 640
MAP_PAD = 12
# Fill colours, from calm to alarming; the numbers are written on every grid as well,
# so the map does not rely on colour alone.
CALM, BUSY, OVERDUE, UNKNOWN = "#cfe8d5", "#ffe08a", "#f4a49e", "#e4e4e8"
BUSY_FROM = 5  # open tickets at which a grid counts as busy


@dataclass
class MapGrid:
    """A grid on the map: its outline as SVG paths, where to write its name, its colour."""

    grid: Any  # a row of ledger.pages.grids_in: id, code, name, boundary, community_name
    paths: list[str]
    label_at: tuple[float, float]
    label_size: int  # px in the map's plane, so that the name fits inside the grid
    fill: str
    open: int | None
    overdue: int | None
    count_size: int = 0  # the same for "open / overdue!" below the name; 0: too small to label
    note: str = ""  # the tooltip's words on its figures

    @property
    def count_text(self) -> str:
        """"open / overdue!", just "open" when none is overdue, "—" without a ledger."""
        return count_text(self.open, self.overdue)

    @property
    def labelled(self) -> bool:
        return self.count_size > 0


@dataclass
class GridMap:
    """The map ready to draw, and the grids that have no boundary to draw."""

    width: int
    height: int
    grids: list[MapGrid] = field(default_factory=list)
    unmapped: list[tuple[Any, int | None, int | None]] = field(default_factory=list)


def fill_for(open_n: int | None, overdue_n: int | None) -> str:
    """Red with anything overdue, amber when busy, green when calm, grey without a ledger."""
    if open_n is None:
        return UNKNOWN
    if overdue_n:
        return OVERDUE
    return BUSY if open_n >= BUSY_FROM else CALM


@dataclass(frozen=True)
class Shape:
    """A grid's outline on the map's plane: what does not change with its figures."""

    paths: tuple[str, ...]
    centre: tuple[float, float]
    across: float
    tall: float


def grid_map(grids: Sequence[Any], ledgers: dict[int, Any], counts: str = "open %(open)d, overdue %(overdue)d",
             nothing: str = "no ledger yet") -> GridMap:
    """Lay out the grids' boundaries on the map, coloured and labelled by their ledgers.

    The geometry (see `layout`) depends only on the boundaries and is kept between
    requests; only colours, counts and tooltips are worked out each time. Each tooltip
    says `counts` % {open, overdue}, or `nothing` without a ledger: the caller
    translates the two once, not once for each of a thousand grids.
    """
    height, shapes = layout(tuple((grid.id, grid.boundary) for grid in grids))
    result = GridMap(MAP_WIDTH, height)
    for grid, shape in zip(grids, shapes, strict=True):
        row = ledgers.get(grid.id)
        open_n, overdue_n = (row.open_at_end, row.overdue_at_end) if row else (None, None)
        if shape is None:
            result.unmapped.append((grid, open_n, overdue_n))
            continue
        size, count = label_sizes(grid.name, count_text(open_n, overdue_n), shape.across, shape.tall)
        note = nothing if open_n is None else counts % {"open": open_n, "overdue": overdue_n or 0}
        result.grids.append(MapGrid(grid, list(shape.paths), shape.centre, size, fill_for(open_n, overdue_n),
                                    open_n, overdue_n, count, note))
    return result


@functools.lru_cache(maxsize=32)
def layout(boundaries: tuple[tuple[int, str | None], ...]) -> tuple[int, list[Shape | None]]:
    """Project the grids' boundaries (id, GeoJSON) onto the map's plane: its height, and
    each grid's shape (None without a boundary). Kept for the last few sets of grids
    asked for (a street's thousand take 40 ms to parse and project).

    Equirectangular with longitude shrunk by cos(latitude): for a street a few
    kilometres across it is as true as any projection, and needs no library.
    """
    rings_of = [[p[0] for p in polygons(boundary) if p and len(p[0]) >= 3] if boundary else []
                for _id, boundary in boundaries]
    points = [(float(pt[0]), float(pt[1])) for rings in rings_of for ring in rings for pt in ring]
    if not points:
        return 0, [None] * len(boundaries)
    west, east = min(p[0] for p in points), max(p[0] for p in points)
    south, north = min(p[1] for p in points), max(p[1] for p in points)
    shrink = math.cos(math.radians((south + north) / 2))
    span_x, span_y = max((east - west) * shrink, 1e-9), max(north - south, 1e-9)
    scale = (MAP_WIDTH - 2 * MAP_PAD) / span_x
    height = min(round(span_y * scale + 2 * MAP_PAD), 2 * MAP_WIDTH)
    scale = min(scale, (height - 2 * MAP_PAD) / span_y)

    def project(pt: Sequence[float]) -> tuple[float, float]:
        return (round(MAP_PAD + (float(pt[0]) - west) * shrink * scale, 1),
                round(MAP_PAD + (north - float(pt[1])) * scale, 1))

    shapes: list[Shape | None] = []
    for rings in rings_of:
        if not rings:
            shapes.append(None)
            continue
        projected = [[project(pt) for pt in ring] for ring in rings]
        paths = tuple("M" + " L".join(f"{px},{py}" for px, py in ring) + " Z" for ring in projected)
        outer = max(projected, key=len)
        outer = outer[:-1] if len(outer) > 1 and outer[0] == outer[-1] else outer  # a closed ring repeats its start
        centre = (round(sum(p[0] for p in outer) / len(outer), 1), round(sum(p[1] for p in outer) / len(outer), 1))
        shapes.append(Shape(paths, centre, max(p[0] for p in outer) - min(p[0] for p in outer),
                            max(p[1] for p in outer) - min(p[1] for p in outer)))
    return height, shapes


def count_text(open_n: int | None, overdue_n: int | None) -> str:
    """What a grid shows on the map: "open / overdue!", or "open", or "—" without a ledger."""
    if open_n is None:
        return "—"
    return f"{open_n} / {overdue_n}!" if overdue_n else str(open_n)


def label_sizes(name: str, count: str, across: float, tall: float) -> tuple[int, int]:
    """Font sizes (px) for a grid's name and count that fit a cell `across` × `tall`:
    a CJK character is about 1 em wide, a digit about 0.6 em, and the two lines take
    about 0.8 of the height. (0, 0) when the name would be under 10 px: the grid is
    then drawn unlabelled, its tooltip still naming it."""
    name_size = min(28.0, across * 0.9 / max(len(name), 1), tall * 0.35)
    count_size = min(34.0, across * 0.9 / (0.6 * max(len(count), 1)), tall * 0.45)
    if name_size < 10 or count_size < 10:
        return 0, 0
    return int(name_size), int(count_size)
