"""Forms of the catalogue pages: a category (or group), a time-limit tier and its limits."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import Optional

from ticketing.extensions import db
from ticketing.forms import id_select, with_blank
from ticketing.labels import localized_name
from ticketing.models import Category, SlaTier
from ticketing.services.catalog_admin import CategoryData, TierData
from ticketing.services.emergency import numbers_text

# A limit is typed as a number of these; a working day counts 1,440 working minutes.
UNIT_MINUTES = {"minutes": 1, "hours": 60, "days": 24 * 60}
UNIT_LABELS: dict[str, Any] = {"minutes": _l("minutes"), "hours": _l("hours"), "days": _l("days")}
COUNTING_LABELS: dict[str, Any] = {
    "clock": _l("On the clock: every hour of every day counts"),
    "workdays": _l("Working days only: weekends and holidays do not count"),
}


class CategoryForm(FlaskForm):
    """A category: code and keywords when new; names, group, tier and public flag always."""

    code = StringField(_l("Code"), validators=[Optional()])
    name_zh = StringField(_l("Name in Chinese"), validators=[Optional()])
    name_en = StringField(_l("Name in English"), validators=[Optional()])
    parent_id = id_select(_l("Group"), _l("Choose a group from the list."))
    tier_id = id_select(_l("Time-limit tier"), _l("Choose a time-limit tier from the list."))
    public = BooleanField(_l("Public in Open311: anyone may read its requests, masked, in the Open311 list"))
    keywords = TextAreaField(_l("Keywords"), validators=[Optional()])
    emergency_guidance_zh = TextAreaField(_l("What to do at once, in Chinese"), validators=[Optional()])
    emergency_guidance_en = TextAreaField(_l("What to do at once, in English"), validators=[Optional()])
    emergency_numbers = TextAreaField(_l("Numbers to call"), validators=[Optional()])

    def load_choices(self, category: Category | None) -> None:
        """Offer the groups (a new group: none) and the tiers."""
        groups = db.session.scalars(
            select(Category).where(Category.parent_id.is_(None)).order_by(Category.sort_order, Category.id)).all()
        options = [(g.id, localized_name(g) if g.active else _("%(name)s (not in use)", name=localized_name(g)))
                   for g in groups if category is None or g.id != category.id]
        self.parent_id.choices = with_blank(options, _("None: this is a new group")) \
            if category is None else [SelectChoice(g_id, text) for g_id, text in options]
        tiers = db.session.scalars(select(SlaTier).order_by(SlaTier.rank, SlaTier.id))
        self.tier_id.choices = with_blank([(t.id, localized_name(t)) for t in tiers],
                                          _("The group's tier"))

    def fill_from(self, category: Category) -> None:
        """Show an existing category (for a GET of its page)."""
        self.name_zh.data, self.name_en.data = category.name_zh, category.name_en
        self.parent_id.data, self.tier_id.data = category.parent_id, category.tier_id
        self.public.data = category.public
        self.emergency_guidance_zh.data = category.emergency_guidance_zh
        self.emergency_guidance_en.data = category.emergency_guidance_en
        self.emergency_numbers.data = numbers_text(category.emergency_numbers)

    def category_data(self) -> CategoryData:
        """The category as entered."""
        return CategoryData(name_zh=self.name_zh.data or "", name_en=self.name_en.data or "",
                            parent_id=self.parent_id.data, tier_id=self.tier_id.data,
                            public=bool(self.public.data),
                            guidance_zh=posted(self.emergency_guidance_zh),
                            guidance_en=posted(self.emergency_guidance_en),
                            numbers=posted(self.emergency_numbers))


def posted(field: Any) -> str | None:
    """What was posted for a field; None when the form did not carry it (left as it is)."""
    return (field.data or "") if field.raw_data else None


def limit_input(minutes: int, working_days: bool) -> tuple[str, str]:
    """A stored limit as the form shows it: whole days on a working-day tier, else hours or minutes."""
    if working_days and minutes % UNIT_MINUTES["days"] == 0:
        return str(minutes // UNIT_MINUTES["days"]), "days"
    if minutes % UNIT_MINUTES["hours"] == 0:
        return str(minutes // UNIT_MINUTES["hours"]), "hours"
    return str(minutes), "minutes"


def limit_text(minutes: int, working_days: bool) -> str:
    """A limit as the pages read it: "15 minutes", "24 hours", "5 working days"."""
    value, unit = limit_input(minutes, working_days)
    n = int(value)
    if unit == "days":
        return ngettext("%(num)d working day", "%(num)d working days", n)
    if unit == "hours":
        return ngettext("%(num)d hour", "%(num)d hours", n)
    return ngettext("%(num)d minute", "%(num)d minutes", n)


def parse_limit(text: str | None, unit: str | None, errors: dict[str, Any], name: str) -> int:
    """Minutes of a typed limit; 0 with a message in `errors` when it is not a whole number of minutes."""
    raw = (text or "").strip().replace(",", ".")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        errors[name] = _l("Enter a number, e.g. 2 or 1.5.") if raw else _l("Enter the time limit.")
        return 0
    if not value.is_finite():
        errors[name] = _l("Enter a number, e.g. 2 or 1.5.")
        return 0
    minutes = value * UNIT_MINUTES.get(unit or "", 1)
    if minutes != minutes.to_integral_value():
        errors[name] = _l("The limit must come to whole minutes.")
        return 0
    return int(min(minutes, Decimal(10**9)))


class TierForm(FlaskForm):
    """A time-limit tier: code when new; names, the two limits, the kind of time, urgency order."""

    code = StringField(_l("Code"), validators=[Optional()])
    name_zh = StringField(_l("Name in Chinese"), validators=[Optional()])
    name_en = StringField(_l("Name in English"), validators=[Optional()])
    counting = SelectField(_l("Counting"), choices=[SelectChoice(k, v) for k, v in COUNTING_LABELS.items()],
                           invalid_choice_message=_l("Choose how the time counts."))
    accept = StringField(_l("Accept within"), validators=[Optional()], render_kw={"inputmode": "decimal"})
    accept_unit = SelectField(_l("Unit"), choices=[SelectChoice(k, v) for k, v in UNIT_LABELS.items()],
                              invalid_choice_message=_l("Choose a unit."))
    resolve = StringField(_l("Resolve within"), validators=[Optional()], render_kw={"inputmode": "decimal"})
    resolve_unit = SelectField(_l("Unit"), choices=[SelectChoice(k, v) for k, v in UNIT_LABELS.items()],
                               invalid_choice_message=_l("Choose a unit."))
    rank = StringField(_l("Urgency order"), validators=[Optional()], render_kw={"inputmode": "numeric"})

    def fill_from(self, tier: SlaTier) -> None:
        """Show an existing tier (for a GET of its page)."""
        self.name_zh.data, self.name_en.data = tier.name_zh, tier.name_en
        self.counting.data = "workdays" if tier.working_days else "clock"
        self.accept.data, self.accept_unit.data = limit_input(tier.accept_minutes, tier.working_days)
        self.resolve.data, self.resolve_unit.data = limit_input(tier.resolve_minutes, tier.working_days)
        self.rank.data = str(tier.rank)

    def tier_data(self, errors: dict[str, Any]) -> TierData:
        """The tier as entered; what cannot be read is noted in `errors`."""
        rank_text = (self.rank.data or "").strip()
        if not rank_text.isdigit():
            errors["rank"] = _l("The urgency order is a number from 0 to %(n)d.", n=99)
        return TierData(
            name_zh=self.name_zh.data or "", name_en=self.name_en.data or "",
            accept_minutes=parse_limit(self.accept.data, self.accept_unit.data, errors, "accept"),
            resolve_minutes=parse_limit(self.resolve.data, self.resolve_unit.data, errors, "resolve"),
            working_days=self.counting.data == "workdays",
            rank=int(rank_text) if rank_text.isdigit() and len(rank_text) < 6 else 0,
        )
