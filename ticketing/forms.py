"""What the forms of several blueprints share: posted ids, and forms that file a request."""
from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from functools import cache, cached_property
from itertools import groupby
from operator import attrgetter
from typing import Any, cast

from babel import support
from flask import current_app
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms import HiddenField, SelectChoice, SelectField, ValidationError
from wtforms.i18n import messages_path
from wtforms.widgets import CheckboxInput, HiddenInput, Select, TelInput, TextInput, html_params
from wtforms.widgets.core import clean_key

from ticketing.services.intake import IntakeRequest

PICK_PLACE = _l("Choose a place from the list.")
SUBMISSION_ID = re.compile(r"[0-9a-f]{32}")
# Larger than any id the database hands out; anything beyond is not a real row.
MAX_ID = 2**31 - 1


def show_errors(form: FlaskForm, errors: Mapping[str, Any], rename: Mapping[str, str] | None = None) -> None:
    """Show a service's messages beside their fields, the rest above the form.

    `rename` maps the service's name of a value to the form field that holds it, where
    the two differ (a scope chosen with the place field, say).
    """
    for name, message in errors.items():
        field = form._fields.get((rename or {}).get(name, name))
        if field is None:
            form.form_errors.append(message)
        else:
            field.errors = [*field.errors, message]


def optional_id(value: Any) -> int | None:
    """A posted row id: None when left empty, -1 (no such row) when not a number."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not text:
        return None
    return int(text) if text.isdigit() and int(text) <= MAX_ID else -1


# One option as `IdChoices.options` keeps it: its id, then its HTML unselected and selected.
RenderedOption = tuple[int | None, str, str]


class IdChoices(list[SelectChoice]):
    """The choices `with_blank` makes; `ids` holds their values as posted ids, and
    `options` their HTML, worked out once however many fields (the rows of a form)
    share the list. Never changed once made: a request makes its own."""

    @cached_property
    def ids(self) -> frozenset[int | None]:
        return frozenset(optional_id(choice.value) for choice in self)

    @cached_property
    def options(self) -> list[str | RenderedOption] | None:
        """The select's inside as WTForms' `Select` renders it, each option in both its
        states, with the optgroups around them; None when a choice has attributes of its
        own (`render_kw`): those are left to WTForms."""
        if any(choice.render_kw for choice in self):
            return None
        grouped = any(choice.optgroup is not None for choice in self)
        parts: list[str | RenderedOption] = []
        for optgroup, choices in groupby(self, key=attrgetter("optgroup")):
            if grouped and optgroup is not None:
                parts.append(f"<optgroup {html_params(label=optgroup)}>")
            parts.extend(_option(choice) for choice in choices)
            if grouped and optgroup is not None:
                parts.append("</optgroup>")
        return parts


def _option(choice: SelectChoice) -> RenderedOption:
    """An option's id and HTML, unselected and selected, as WTForms' `Select.render_option`
    writes them (its `html_params`: attributes in name order, the value escaped, a quote
    left in a value already marked safe written &quot;)."""
    value = str(escape(str(choice.value) if isinstance(choice.value, bool) else choice.value)).replace('"', "&quot;")
    label = escape(choice.label or choice.value)
    return (optional_id(choice.value), f'<option value="{value}">{label}</option>',
            f'<option selected value="{value}">{label}</option>')


def quick_html_params(**kwargs: Any) -> str:
    """WTForms' `html_params`, to the byte, without a `Markup.format` per attribute (most
    of the time of rendering a field): attributes in name order, `class_` and `data_`
    names cleaned, True as the bare name, False left out, values escaped and a quote
    left in a value already marked safe written &quot;."""
    params = []
    for key, value in sorted(kwargs.items()):
        name = escape(clean_key(key))
        if value is True:
            params.append(str(name))
        elif value is not False:
            params.append(f'{name}="{str(escape(value)).replace(chr(34), "&quot;")}"')
    return Markup(" ".join(params))


class QuickHiddenInput(HiddenInput):
    """WTForms' hidden input, its attributes written by `quick_html_params`."""

    html_params = staticmethod(quick_html_params)


class QuickTextInput(TextInput):
    """WTForms' text input, its attributes written by `quick_html_params`."""

    html_params = staticmethod(quick_html_params)


class QuickTelInput(TelInput):
    """WTForms' tel input, its attributes written by `quick_html_params`."""

    html_params = staticmethod(quick_html_params)


class QuickCheckboxInput(CheckboxInput):
    """WTForms' checkbox, its attributes written by `quick_html_params`."""

    html_params = staticmethod(quick_html_params)


class IdSelect(Select):
    """WTForms' select widget, with the options of `IdChoices` rendered once for every
    field sharing them: the group-chat drafts repeat the catalogue and the buildings
    for every row, and rendering each option anew was most of their page's time.
    The HTML is WTForms' own, to the byte."""

    def __call__(self, field: Any, **kwargs: Any) -> Markup:
        options = field.choices.options if isinstance(field.choices, IdChoices) else None
        if options is None or self.multiple:
            return cast(Markup, super().__call__(field, **kwargs))
        kwargs.setdefault("id", field.id)
        flags = getattr(field, "flags", {})
        for k in dir(flags):
            if k in self.validation_attrs and k not in kwargs:
                kwargs[k] = getattr(flags, k)
        html = [f"<select {quick_html_params(name=field.name, **kwargs)}>"]
        data = field.data
        html.extend(part if isinstance(part, str) else part[2] if part[0] == data else part[1]
                    for part in options)
        html.append("</select>")
        return Markup("".join(html))


class IdSelectField(SelectField):
    """A select of database ids (`id_select`).

    With `IdChoices` a posted id is checked by one set lookup: WTForms would build an
    option for every choice to check one, which grows with the places on offer and is
    paid again for every row of a form. Its options are rendered once too (`IdSelect`).
    """

    widget = IdSelect()

    def pre_validate(self, form: Any) -> None:
        choices = self.choices
        if not (isinstance(choices, IdChoices) and self.invalid_choice_message and self.validate_choice
                and not self.process_errors):
            super().pre_validate(form)
        elif self.data not in choices.ids:
            raise ValidationError(self.invalid_choice_message)


def id_select(label: Any, message: Any = PICK_PLACE) -> SelectField:
    """A select of database ids whose empty choice means "none"."""
    return IdSelectField(label, coerce=optional_id, invalid_choice_message=message)


def with_blank(choices: Any, blank: Any) -> IdChoices:
    """Put an empty "none chosen" choice in front of the choices (outside any optgroup)."""
    if isinstance(choices, dict):
        grouped = [SelectChoice(value, label, optgroup=group)
                   for group, items in choices.items() for value, label in items]
    else:
        grouped = [SelectChoice(value, label) for value, label in choices]
    return IdChoices([SelectChoice("", blank), *grouped])


@cache
def wtforms_messages(locale: str) -> support.NullTranslations:
    """WTForms' own messages (a field's default label, its built-in errors) in `locale`,
    read once per process."""
    return support.Translations.load(messages_path(), [locale], domain="wtforms")


class CachedMessagesForm(FlaskForm):
    """A FlaskForm whose WTForms messages are read once per process and locale.

    Flask-WTF reads WTForms' catalogue from disk again in every request that builds a
    form with an unlabelled field (a hidden one; flask_wtf/i18n.py): the doors that file
    tickets build one on every post.
    """

    class Meta(FlaskForm.Meta):
        def get_translations(self, form: Any) -> Any:
            if not current_app.config.get("WTF_I18N_ENABLED", True):
                return super().get_translations(form)
            return wtforms_messages(str(get_locale()))


class IntakeForm(CachedMessagesForm):
    """Base of the forms that file a request (resident web form, dispatcher entry).

    Subclasses declare the fields named like `IntakeRequest`'s; the rules themselves
    live in the intake service, which reports every problem by field name.

    Each rendered form carries a random submission id, filed as the ticket's external
    id: a double tap or a browser's retry of the same form files one ticket, not two.
    """

    submission_id = HiddenField(default=lambda: uuid.uuid4().hex)

    def intake_request(self, channel: str, photos: list[bytes]) -> IntakeRequest:
        """The intake request this form describes."""
        return IntakeRequest(
            channel=channel,
            description=self.description.data or "",
            phone=self.phone.data or "",
            name=self.name.data or "",
            category_id=self.category_id.data,
            community_id=self.community_id.data,
            complex_id=self.complex_id.data,
            building_id=self.building_id.data,
            address_text=self.address_text.data or "",
            unit_room=self.unit_room.data or "",
            photos=photos,
            external_id=self.submission_key(),
        )

    def submission_key(self) -> str | None:
        """The form's submission id, if it is one we could have issued."""
        value = self.submission_id.data or ""
        return value if SUBMISSION_ID.fullmatch(value) else None

    def add_errors(self, errors: dict[str, Any]) -> None:
        """Show the intake service's messages beside their fields, others above the form."""
        show_errors(self, errors)
