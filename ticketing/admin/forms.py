"""Administration forms: a routing rule, a person's weekly roster, a leave period."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload
from wtforms import (
    BooleanField,
    DateField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.validators import Optional

from ticketing.admin.rules import RuleData
from ticketing.extensions import db
from ticketing.forms import id_select, show_errors, with_blank
from ticketing.labels import HANDLER_KIND_LABELS, localized_name
from ticketing.models import (
    Category,
    Community,
    Complex,
    DutyShift,
    Grid,
    PropertyCompany,
    RoutingRule,
    SlaTier,
    Team,
    TeamKind,
)
from ticketing.services.rosters import ShiftInput

SCOPE_LABELS: dict[str, Any] = {
    "any": _l("Any place"),
    "community": _l("One community"),
    "grid": _l("One grid"),
    "complex": _l("One complex or courtyard"),
}
TEAM_KIND_LABELS: dict[str, Any] = {TeamKind.VOLUNTEER: _l("volunteers"), TeamKind.MEDIATION: _l("mediation")}
WEEKDAY_LABELS: tuple[Any, ...] = (
    _l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"), _l("Saturday"), _l("Sunday"),
)
WEEKDAY_SHORT: tuple[Any, ...] = (_l("Mon"), _l("Tue"), _l("Wed"), _l("Thu"), _l("Fri"), _l("Sat"), _l("Sun"))
# Two ranges a day cover a split shift; more appear only when a person already has more.
SLOTS_PER_DAY = 2
MAX_SLOTS_PER_DAY = 6
# The rule form's place list for each scope kind.
PLACE_FIELDS = {"community": "community_id", "grid": "grid_id", "complex": "complex_id"}


class RuleForm(FlaskForm):
    """A routing rule. Each scope kind has its own place list; only the chosen kind's counts."""

    name = StringField(_l("Rule name"), validators=[Optional()])
    category_id = id_select(_l("Category"), _l("Choose a category from the list."))
    scope_kind = SelectField(
        _l("Where it applies"), choices=[SelectChoice(k, v) for k, v in SCOPE_LABELS.items()],
        invalid_choice_message=_l("Choose where the rule applies."))
    community_id = id_select(_l("Community"))
    grid_id = id_select(_l("Grid"))
    complex_id = id_select(_l("Complex or courtyard"))
    handler_kind = SelectField(
        _l("Handled by"), choices=[SelectChoice(k, v) for k, v in HANDLER_KIND_LABELS.items()],
        invalid_choice_message=_l("Choose who handles the tickets."))
    team_id = id_select(_l("Team"), _l("Choose a team from the list."))
    company_id = id_select(_l("Property company"), _l("Choose a property company from the list."))
    tier_id = id_select(_l("Time-limit tier"), _l("Choose a time-limit tier from the list."))

    def load_choices(self) -> None:
        """Fill the selects from the database: every category, place, team, company, tier."""
        communities = db.session.scalars(select(Community).order_by(Community.code))
        grids = db.session.scalars(select(Grid).options(joinedload(Grid.community)).order_by(Grid.code))
        companies = db.session.scalars(select(PropertyCompany).order_by(PropertyCompany.name))
        tiers = db.session.scalars(select(SlaTier).order_by(SlaTier.rank, SlaTier.id))
        self.category_id.choices = with_blank(category_choices(), _("Any category"))
        self.community_id.choices = with_blank([(c.id, c.name) for c in communities], _("Choose…"))
        self.grid_id.choices = with_blank(
            [(g.id, f"{g.community.name} · {g.name}") for g in grids], _("Choose…"))
        self.complex_id.choices = with_blank(complex_choices(), _("Choose…"))
        self.team_id.choices = with_blank(team_choices(), _("The community's own team"))
        self.company_id.choices = with_blank(
            [(c.id, c.name) for c in companies], _("The complex's own company"))
        self.tier_id.choices = with_blank(
            [(t.id, localized_name(t)) for t in tiers], _("The category's tier"))

    def fill_from(self, rule: RoutingRule) -> None:
        """Show an existing rule (for a GET of the edit page)."""
        self.name.data = rule.name
        self.category_id.data = rule.category_id
        self.scope_kind.data = rule.scope_kind
        place_field = PLACE_FIELDS.get(rule.scope_kind)
        if place_field is not None:
            self[place_field].data = rule.scope_id
        self.handler_kind.data = rule.handler_kind
        self.team_id.data = rule.team_id
        self.company_id.data = rule.company_id
        self.tier_id.data = rule.tier_id

    def rule_data(self) -> RuleData:
        """The rule as entered; the place is read from the select of the chosen scope kind."""
        place_field = PLACE_FIELDS.get(self.scope_kind.data or "")
        return RuleData(
            name=self.name.data or "",
            category_id=self.category_id.data,
            scope_kind=self.scope_kind.data or "",
            scope_id=self[place_field].data if place_field else None,
            handler_kind=self.handler_kind.data or "",
            team_id=self.team_id.data,
            company_id=self.company_id.data,
            tier_id=self.tier_id.data,
        )

    def add_errors(self, errors: dict[str, Any]) -> None:
        """Show the service's messages beside their fields; the place's beside the chosen list."""
        show_errors(self, errors, rename={"scope_id": PLACE_FIELDS.get(self.scope_kind.data or "", "scope_kind")})


def category_choices() -> dict[str, list[tuple[Any, str]]]:
    """Every category under its group; the group itself is offered first, as "all of it"."""
    groups = db.session.scalars(
        select(Category).where(Category.parent_id.is_(None))
        .options(selectinload(Category.children)).order_by(Category.sort_order, Category.id)
    ).all()

    def label(category: Category, text: str) -> str:
        return text if category.active else _("%(name)s (not in use)", name=text)

    return {
        localized_name(group): [
            (group.id, label(group, _("All of %(group)s", group=localized_name(group)))),
            *[(child.id, label(child, localized_name(child))) for child in group.children],
        ]
        for group in groups
    }


def complex_choices() -> dict[str, list[tuple[Any, str]]]:
    """Every complex, grouped by community and grid."""
    grouped: dict[str, list[tuple[Any, str]]] = defaultdict(list)
    for cx in db.session.scalars(
        select(Complex).join(Complex.grid)
        .options(joinedload(Complex.grid).joinedload(Grid.community))
        .order_by(Grid.code, Complex.name)
    ):
        grouped[f"{cx.grid.community.name} · {cx.grid.name}"].append((cx.id, cx.name))
    return dict(grouped)


def team_choices() -> dict[str, list[tuple[Any, str]]]:
    """Every team, grouped by community, its kind beside its name."""
    grouped: dict[str, list[tuple[Any, str]]] = defaultdict(list)
    for team in db.session.scalars(
        select(Team).join(Team.community).options(joinedload(Team.community))
        .order_by(Community.code, Team.name)
    ):
        kind = TEAM_KIND_LABELS.get(team.kind, team.kind)
        grouped[team.community.name].append((team.id, f"{team.name} ({kind})"))
    return dict(grouped)


class ShiftRow(Form):
    """One time range of one weekday (a sub-form: the roster form carries the CSRF token)."""

    weekday = HiddenField()
    starts = StringField(_l("From"), render_kw={"type": "time", "step": 60})
    ends = StringField(_l("To"), render_kw={"type": "time", "step": 60})


class RosterForm(FlaskForm):
    """A person's weekly pattern, as rows of (weekday, from, to), and their on-call flag."""

    shifts = FieldList(FormField(ShiftRow), max_entries=7 * MAX_SLOTS_PER_DAY)
    on_call = BooleanField(_l("On call: may receive tickets at any hour, whatever the shifts say"))

    def fill_from(self, shifts: list[DutyShift], on_call: bool) -> None:
        """Lay the shifts out day by day, with at least two rows a day to fill in."""
        by_day: dict[int, list[DutyShift]] = defaultdict(list)
        for shift in shifts:
            by_day[shift.weekday].append(shift)
        slots = min(max([SLOTS_PER_DAY, *(len(v) for v in by_day.values())]), MAX_SLOTS_PER_DAY)
        while self.shifts.entries:
            self.shifts.pop_entry()
        for weekday in range(7):
            day = sorted(by_day[weekday], key=lambda s: s.starts)
            for slot in range(slots):
                existing = day[slot] if slot < len(day) else None
                self.shifts.append_entry({
                    "weekday": weekday,
                    "starts": existing.starts.strftime("%H:%M") if existing else "",
                    "ends": existing.ends.strftime("%H:%M") if existing else "",
                })
        self.on_call.data = on_call

    def rows(self) -> list[ShiftInput]:
        """The rows as entered; a weekday that is not a number becomes -1 (refused)."""
        result = []
        for entry in self.shifts.entries:
            text = str(entry.weekday.data or "").strip()
            result.append(ShiftInput(
                weekday=int(text) if text.isdigit() else -1,
                starts=entry.starts.data or "",
                ends=entry.ends.data or "",
            ))
        return result

    def add_errors(self, errors: dict[str, Any]) -> None:
        """Show the service's messages beside their rows (keyed by row index)."""
        for key, message in errors.items():
            if key.isdigit() and int(key) < len(self.shifts.entries):
                self.shifts.entries[int(key)].form.form_errors.append(message)
            else:
                self.form_errors.append(message)

    def days(self) -> list[tuple[Any, list[Any]]]:
        """The rows grouped under their weekday's name, for the page."""
        grouped: dict[int, list[Any]] = defaultdict(list)
        for entry in self.shifts.entries:
            text = str(entry.weekday.data or "")
            grouped[int(text) if text.isdigit() and int(text) < 7 else 0].append(entry)
        return [(WEEKDAY_LABELS[d], grouped[d]) for d in range(7) if grouped[d]]


class LeaveForm(FlaskForm):
    """A leave period, first and last day inclusive."""

    first_day = DateField(_l("First day"), validators=[Optional()])
    last_day = DateField(_l("Last day"), validators=[Optional()])
    note = StringField(_l("Note"), validators=[Optional()])

    def add_errors(self, errors: dict[str, Any]) -> None:
        """Show the service's messages beside their fields."""
        show_errors(self, errors)
