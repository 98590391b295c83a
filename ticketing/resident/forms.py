"""Forms of the resident pages.

The forms parse and carry CSRF; the rules (required fields, lengths, the phone
format, whether a place exists) live in the intake and lifecycle services, so every
channel checks them the same way and the page can show all problems at once.
"""
from __future__ import annotations

import math
import unicodedata
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    Field,
    HiddenField,
    MultipleFileField,
    RadioField,
    SelectChoice,
    StringField,
    TextAreaField,
)
from wtforms.fields import TelField
from wtforms.validators import DataRequired, Regexp
from wtforms.widgets import TextInput

from ticketing.forms import IntakeForm, optional_id
from ticketing.labels import RATING_LABELS
from ticketing.models import Rating
from ticketing.services.intake import (
    MAX_ADDRESS,
    MAX_DESCRIPTION,
    MAX_NAME,
    MAX_ROOM,
    IntakeRequest,
)
from ticketing.services.lifecycle import MAX_NOTE_LENGTH
from ticketing.services.tracking import normalise_number


def normalised(value: str | None) -> str | None:
    """Full-width digits and letters typed on a phone keyboard → ASCII, trimmed."""
    return unicodedata.normalize("NFKC", value).strip() if value else value


class IdField(Field):
    """A row id chosen from a list the template renders itself (radio cards, grouped
    selects); unknown ids are left for the service to refuse.

    Its widget must not be a hidden input: `hidden_tag()` would render it a second
    time, and the browser would post the empty hidden value before the chosen one.
    """

    widget = TextInput()

    def process_formdata(self, valuelist: list[Any]) -> None:
        self.data = optional_id(valuelist[0]) if valuelist else None

    def _value(self) -> str:
        return "" if self.data is None else str(self.data)


def coordinate(value: str | None) -> float | None:
    """A posted latitude or longitude; None when empty or not a finite number (intake
    checks the range)."""
    try:
        number = float(value or "")
    except ValueError:
        return None
    return number if math.isfinite(number) else None


class ReportForm(IntakeForm):
    """A resident's request: what, where, and how to reach them.

    The category is optional ("not sure": the classifier guesses, services/intake.py);
    the complex is chosen first and the community follows from it; the phone's
    location (WGS-84, from the browser) may place the request when no complex is chosen.
    """

    category_id = IdField(_l("What kind of problem is it?"))
    community_id = IdField(_l("Community"))
    complex_id = IdField(_l("Complex or courtyard"))
    building_id = IdField(_l("Building"))
    address_text = StringField(
        _l("Or type the address"),
        render_kw={"maxlength": MAX_ADDRESS, "autocomplete": "street-address"},
    )
    unit_room = StringField(_l("Unit and room"), render_kw={"maxlength": MAX_ROOM})
    description = TextAreaField(
        _l("What is the problem?"),
        render_kw={"maxlength": MAX_DESCRIPTION, "rows": 6, "required": True},
    )
    photos = MultipleFileField(
        _l("Photos (optional)"),
        render_kw={"accept": "image/*", "multiple": True},
    )
    name = StringField(_l("Your name (optional)"), render_kw={"maxlength": MAX_NAME, "autocomplete": "name"})
    phone = TelField(
        _l("Mobile phone"),
        render_kw={"inputmode": "tel", "autocomplete": "tel", "maxlength": 20, "required": True},
    )
    # Filled by "use my location" (static/js/resident.js): WGS-84 degrees.
    lat = HiddenField()
    lon = HiddenField()

    def point(self) -> tuple[float, float] | None:
        """The phone's location, when both halves were posted as numbers."""
        lat, lon = coordinate(self.lat.data), coordinate(self.lon.data)
        return (lat, lon) if lat is not None and lon is not None else None

    def intake_request(self, channel: str, photos: list[bytes]) -> IntakeRequest:
        """As the staff forms', and: a missing category is guessed; a chosen complex or
        building decides the community (the community list is for places not listed)."""
        req = super().intake_request(channel, photos)
        req.guess_category = True
        if req.complex_id or req.building_id:
            req.community_id = None
        point = self.point()
        if point is not None:
            req.lat, req.lon = point
        return req


class TrackForm(FlaskForm):
    """Find a request again by its number and the last four digits of the phone."""

    number = StringField(
        _l("Request number"),
        # 2611210042 as well as 261121-0042 (services/tracking.py).
        filters=[normalised, normalise_number],
        validators=[DataRequired(_l("Enter the request number."))],
        render_kw={"autocapitalize": "characters", "autocomplete": "off", "maxlength": 20},
    )
    last4 = StringField(
        _l("Last 4 digits of the phone number you gave"),
        filters=[normalised],
        validators=[
            DataRequired(_l("Enter the last 4 digits of your phone.")),
            Regexp(r"^\d{4}$", message=_l("Enter the last 4 digits of your phone.")),
        ],
        render_kw={"inputmode": "numeric", "autocomplete": "off", "maxlength": 4, "pattern": "[0-9]{4}"},
    )


class RateForm(FlaskForm):
    """The resident confirms the result and says how satisfied they are."""

    rating = RadioField(
        _l("How satisfied are you with the result?"),
        choices=[SelectChoice(r.value, RATING_LABELS[r.value]) for r in Rating],
        # The lifecycle service refuses a missing or unknown rating with its own message.
        validate_choice=False,
    )
    comment = TextAreaField(_l("Comment (optional)"), render_kw={"maxlength": MAX_NOTE_LENGTH, "rows": 3})
    # "1" once the resident, offered a redo first after choosing 不满意, rates all the same.
    confirmed = HiddenField()


class ReopenForm(FlaskForm):
    """The resident asks for the work to be redone."""

    reason = TextAreaField(
        _l("What is still wrong?"), render_kw={"maxlength": MAX_NOTE_LENGTH, "rows": 3, "required": True}
    )
    # "1" when asked after choosing 不满意: a 回访 follows (services/callbacks.py).
    unsatisfied = HiddenField()


class AddInfoForm(FlaskForm):
    """More words or photos for an open request (services/additions.py)."""

    text = TextAreaField(_l("What would you like to add?"), render_kw={"maxlength": MAX_NOTE_LENGTH, "rows": 3})
    photos = MultipleFileField(_l("More photos (optional)"), render_kw={"accept": "image/*", "multiple": True})


class WithdrawForm(FlaskForm):
    """The resident takes the request back before anyone accepted it; a tick confirms it,
    so that a stray tap does not drop a request."""

    reason = TextAreaField(_l("Why? (optional)"), render_kw={"maxlength": MAX_NOTE_LENGTH, "rows": 2})
    confirm = BooleanField(_l("Yes, I no longer need it"),
                           validators=[DataRequired(_l("Tick the box to confirm."))])
