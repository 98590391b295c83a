"""The dashboard's pictures: chart axes with whole ticks, a map projected from GeoJSON."""
from __future__ import annotations

import json
from datetime import date, timedelta
from types import SimpleNamespace
from typing import Any

from ticketing.ledger import charts


def square(west: float, south: float, size: float = 0.01) -> str:
    ring = [[west, south], [west + size, south], [west + size, south + size], [west, south + size], [west, south]]
    return json.dumps({"type": "Polygon", "coordinates": [ring]})


def grid(id_: int, name: str, boundary: str | None) -> Any:
    return SimpleNamespace(id=id_, name=name, code=f"G{id_}", boundary=boundary)


def test_the_count_axis_runs_to_four_whole_steps() -> None:
    days = [date(2026, 11, 1) + timedelta(days=i) for i in range(30)]
    chart = charts.line_chart(days, [charts.Series("filed", "#000", [9] + [0] * 29)])
    assert [label for _y, label in chart.y_ticks] == ["0", "3", "6", "9", "12"]
    assert [label for _x, label in chart.x_ticks][-1] == "11-30"  # the last day always has its label


def test_a_missing_value_breaks_the_line_instead_of_drawing_zero() -> None:
    days = [date(2026, 11, d) for d in (1, 2, 3, 4, 5)]
    chart = charts.line_chart(days, [charts.Series("rate", "#000", [1.0, 0.5, None, 1.0, 1.0])], top=1, percent=True)
    (_series, runs), = chart.lines
    assert len(runs) == 2 and len(runs[0].split()) == 2 and len(runs[1].split()) == 2
    assert chart.y_ticks[-1][1] == "100%"


def test_grids_are_projected_side_by_side_and_coloured_by_their_ledger() -> None:
    west, east, loose = grid(1, "西", square(116.0, 39.9)), grid(2, "东", square(116.01, 39.9)), grid(3, "无", None)
    ledgers: Any = {1: SimpleNamespace(open_at_end=2, overdue_at_end=1), 2: SimpleNamespace(open_at_end=0, overdue_at_end=0)}
    drawn = charts.grid_map([west, east, loose], ledgers)
    left, right = drawn.grids
    assert left.label_at[0] < right.label_at[0] and abs(left.label_at[1] - right.label_at[1]) < 0.5
    assert (left.fill, right.fill) == (charts.OVERDUE, charts.CALM)
    assert all(0 <= float(v) <= drawn.width for path in left.paths for v in path.replace("M", "").replace("L", "")
               .replace("Z", "").replace(",", " ").split())
    assert [g.name for g, _open, _overdue in drawn.unmapped] == ["无"]
    assert charts.fill_for(None, None) == charts.UNKNOWN and charts.fill_for(7, 0) == charts.BUSY


def test_labels_are_sized_to_fit_their_grid_or_left_out() -> None:
    # Two grids side by side: each is half the map wide, so both lines fit at full size.
    wide = charts.grid_map([grid(1, "第一网格", square(116.0, 39.9)), grid(2, "第二网格", square(116.01, 39.9))],
                           {1: SimpleNamespace(open_at_end=12, overdue_at_end=3)})
    first, second = wide.grids
    assert (first.count_text, second.count_text) == ("12 / 3!", "—")
    across = charts.MAP_WIDTH / 2 - charts.MAP_PAD
    assert first.labelled and first.label_size * len("第一网格") <= across
    assert first.count_size * 0.6 * len("12 / 3!") <= across
    # Forty grids in a row: each is a sliver, too small for a readable label.
    row = charts.grid_map([grid(i, f"网格{i}", square(116.0 + i * 0.01, 39.9)) for i in range(40)], {})
    assert not any(g.labelled for g in row.grids)
    assert charts.label_sizes("网格", "3", across=60, tall=60) == (21, 27)
