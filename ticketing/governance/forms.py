"""The forms of the governance pages. They only parse: what a task may say is
services/governance.py's call, which reports every problem by field name.

CSRFProtect checks the token of every POST; the templates add it with `hidden_tag`.
"""
from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from wtforms import DateField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import Optional

from ticketing.forms import CachedMessagesForm, id_select, optional_id, with_blank
from ticketing.place_choices import category_choices
from ticketing.services.governance import MAX_NOTE, MAX_PLAN, MAX_TITLE, MAX_UNIT, TaskInput
from ticketing.services.governance_choices import Group


def grouped(groups: list[Group]) -> dict[str, list[tuple[str, str]]]:
    """Grouped options as WTForms draws them in <optgroup>s."""
    return dict(groups)


class EditForm(CachedMessagesForm):
    """What may change while a task is open: its title, who is responsible, plan, deadline."""

    title = StringField(_l("Title"), render_kw={"maxlength": MAX_TITLE, "autocomplete": "off"})
    responsible = SelectField(_l("Who is responsible"), choices=[], validate_choice=False)
    responsible_unit = StringField(_l("Or a unit that is not in the list"),
                                   render_kw={"maxlength": MAX_UNIT, "placeholder": _l("e.g. 区住建委")})
    plan = TextAreaField(_l("Plan"), render_kw={"rows": 5, "maxlength": MAX_PLAN})
    deadline = DateField(_l("Due by"), validators=[Optional()])

    def prepare(self, responsible: list[Group]) -> None:
        """The people and units the user may name."""
        self.responsible.choices = with_blank(grouped(responsible), _l("None: only the unit typed below"))

    def task_input(self, **more: Any) -> TaskInput:
        """What was entered, for the service."""
        return TaskInput(title=self.title.data or "", deadline=self.deadline.data,
                         responsible=self.responsible.data or "", responsible_unit=self.responsible_unit.data or "",
                         plan=self.plan.data or "", **more)


class TaskForm(EditForm):
    """A new task: also the place and category it covers, and the cluster it came from."""

    place = SelectField(_l("Place"), choices=[], validate_choice=False)
    category_id = id_select(_l("Category"), _l("Choose a category from the list."))
    hotspot = HiddenField()

    def prepare_new(self, responsible: list[Group], places: list[Group]) -> None:
        """Every choice the user has."""
        self.prepare(responsible)
        self.place.choices = with_blank(grouped(places), _l("Choose the place…"))
        self.category_id.choices = with_blank(category_choices(), _l("Every category at the place"))

    def hotspot_id(self) -> int | None:
        """The cluster the task came from, when the hotspot page linked here."""
        value = optional_id(self.hotspot.data)
        return value if value is not None and value > 0 else None


class CloseForm(CachedMessagesForm):
    """Closing a task: what was done and what came of it."""

    note = TextAreaField(_l("What was done, and what came of it"), render_kw={"rows": 3, "maxlength": MAX_NOTE})
