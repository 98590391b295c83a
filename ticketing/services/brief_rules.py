"""红/黄/绿 of a grid in the supervisors' morning brief: the rules, kept as data.

The page prints each rule from the same `Rule` the brief judges with (`Rule.text`),
so what supervisors read is what was applied. A grid is red when any red rule
fires, yellow when any yellow rule fires, green otherwise. A rate judges a grid only
when at least `ledger_report.MIN_TICKETS` tickets stand behind it (the small-sample
rule): a grid with three ratings is not red for one 不满意, it is "样本少".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ticketing.services import ledger_report
from ticketing.services.ledger_report import Rate

RED, YELLOW, GREEN = "red", "yellow", "green"
COLOURS = (RED, YELLOW, GREEN)
COLOUR_LABELS: dict[str, Any] = {RED: _l("Red"), YELLOW: _l("Yellow"), GREEN: _l("Green")}
# The grid's rates are those of the days just before the brief's day: a week, so that a
# grid's few tickets a day add up to a sample worth judging.
RATE_DAYS = 7

COUNT_LABELS: dict[str, Any] = {
    "supervised": _l("Tickets under supervision (督办)"),
    "overdue": _l("Tickets overdue"),
    "due_today": _l("Tickets due later today"),
}
RATE_LABELS: dict[str, Any] = {"response": _l("Response rate"), "resolution": _l("Resolution rate"),
                               "satisfaction": _l("Satisfaction rate")}


@dataclass(frozen=True)
class Rule:
    """One condition that colours a grid: a count at or above `at_least`, or a rate (of
    the last RATE_DAYS days, with enough tickets behind it) below `below` percent."""

    colour: str
    measure: str  # a key of COUNT_LABELS or of RATE_LABELS
    at_least: int | None = None
    below: int | None = None

    def fires(self, grid: GridFigures) -> bool:
        """Whether the grid meets this condition."""
        if self.at_least is not None:
            return grid.counts.get(self.measure, 0) >= self.at_least
        rate = grid.rates.get(self.measure, Rate(0, 0))
        return (self.below is not None and ledger_report.enough(rate.den) and rate.value is not None
                and rate.value * 100 < self.below)

    def text(self) -> str:
        """The rule as the page prints it, in the current language."""
        if self.at_least is not None:
            return _("%(what)s: %(n)d or more", what=COUNT_LABELS[self.measure], n=self.at_least)
        return _("%(what)s of the last %(days)d days below %(percent)d%%", what=RATE_LABELS[self.measure],
                 days=RATE_DAYS, percent=self.below or 0)

    def found(self, grid: GridFigures) -> str:
        """What the grid showed against this rule: "Overdue tickets 4", "Response rate 72.0% (n=25)"."""
        if self.at_least is not None:
            return f"{COUNT_LABELS[self.measure]} {grid.counts.get(self.measure, 0)}"
        rate = grid.rates[self.measure]
        return f"{RATE_LABELS[self.measure]} {rate.percent} (n={rate.den})"


RULES: tuple[Rule, ...] = (
    Rule(RED, "supervised", at_least=1),
    Rule(RED, "overdue", at_least=3),
    Rule(RED, "response", below=80),
    Rule(RED, "resolution", below=80),
    Rule(RED, "satisfaction", below=80),
    Rule(YELLOW, "overdue", at_least=1),
    Rule(YELLOW, "due_today", at_least=3),
    Rule(YELLOW, "response", below=90),
    Rule(YELLOW, "resolution", below=90),
    Rule(YELLOW, "satisfaction", below=90),
)


@dataclass
class GridFigures:
    """What the rules read of one grid, and the colour they gave it."""

    grid_id: int
    code: str
    name: str
    community: str
    counts: dict[str, int] = field(default_factory=dict)  # supervised, overdue, due_today: now
    rates: dict[str, Rate] = field(default_factory=dict)  # the last RATE_DAYS days' ledgers
    colour: str = GREEN
    reasons: list[Rule] = field(default_factory=list)  # the rules of its colour that fired

    @property
    def severity(self) -> tuple[int, int, int, int]:
        """Sort key, worst first: colour, then 督办, overdue and rules fired."""
        return (COLOURS.index(self.colour), -self.counts.get("supervised", 0), -self.counts.get("overdue", 0),
                -len(self.reasons))


def judge(grid: GridFigures, rules: tuple[Rule, ...] = RULES) -> GridFigures:
    """Colour the grid by the first colour any of whose rules fires; keep those rules."""
    for colour in (RED, YELLOW):
        fired = [rule for rule in rules if rule.colour == colour and rule.fires(grid)]
        if fired:
            grid.colour, grid.reasons = colour, fired
            return grid
    grid.colour, grid.reasons = GREEN, []
    return grid


def rules_by_colour(rules: tuple[Rule, ...] = RULES) -> dict[str, list[Rule]]:
    """The rules grouped by colour, red first, for the page."""
    return {colour: [rule for rule in rules if rule.colour == colour] for colour in (RED, YELLOW)}
