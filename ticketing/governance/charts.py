"""The weekly bars of a task's page, laid out for templates/governance/_chart.html.

No JavaScript, nothing fetched: one bar per Monday week, the tickets filed before the
task opened below those filed after it (the opening's week has both), and a dashed
line where it opened. The SVG scales with the page, so it reads on a phone.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ticketing.services.governance import Week

WIDTH, HEIGHT = 420, 220
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 40, 14, 22, 34
BEFORE_COLOUR, AFTER_COLOUR, OPENING_COLOUR = "#8a8a94", "#1d4f91", "#b3261e"
MAX_LABELS = 7  # week labels under the bars; more would overlap on a phone


@dataclass(frozen=True)
class Bar:
    """One week: where its two parts go (y and height of each), and its figures."""

    week: Week
    x: float
    width: float
    before: tuple[float, float]
    after: tuple[float, float]
    labelled: bool


@dataclass(frozen=True)
class BarChart:
    """A chart ready to draw."""

    width: int
    height: int
    bars: list[Bar]
    y_ticks: list[tuple[float, int]]
    opening_x: float
    plot: tuple[float, float, float, float]  # left, top, right, bottom


def nice_top(value: int) -> int:
    """A round top for the y axis at or above `value`: four steps of 1, 2, 3 or 5 × 10ⁿ."""
    step = max(1, math.ceil(value / 4))
    power = 10 ** math.floor(math.log10(step))
    return 4 * next(s * power for s in (1, 2, 3, 5, 10) if s * power >= step)


def bar_chart(weeks: Sequence[Week], opening: float) -> BarChart:
    """Lay out the weeks; `opening` is where the task opened, in weeks from the first one's
    start (3.3: a third into the fourth week)."""
    left, right, upper, lower = PAD_LEFT, WIDTH - PAD_RIGHT, PAD_TOP, HEIGHT - PAD_BOTTOM
    top = nice_top(max((w.total for w in weeks), default=0))
    slot = (right - left) / max(len(weeks), 1)
    gap = min(slot * 0.25, 6)
    every = max(1, math.ceil(len(weeks) / MAX_LABELS))

    def height(count: int) -> float:
        return round(count / top * (lower - upper), 1)

    bars = []
    for i, week in enumerate(weeks):
        below, above = height(week.before), height(week.after)
        bars.append(Bar(week, round(left + i * slot + gap / 2, 1), round(slot - gap, 1),
                        (round(lower - below, 1), below), (round(lower - below - above, 1), above),
                        (len(weeks) - 1 - i) % every == 0))
    y_ticks = [(round(lower - k / 4 * (lower - upper), 1), top * k // 4) for k in range(5)]
    return BarChart(WIDTH, HEIGHT, bars, y_ticks, round(left + opening * slot, 1), (left, upper, right, lower))
