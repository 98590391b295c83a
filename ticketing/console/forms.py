"""Console forms: the queue's filters and a request entered on a resident's behalf."""
from __future__ import annotations

import unicodedata
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import BooleanField, SelectChoice, SelectField, StringField, TelField, TextAreaField
from wtforms.validators import Optional, Regexp

from ticketing.console.queue import QueueFilters
from ticketing.forms import IntakeForm, id_select
from ticketing.labels import CHANNEL_LABELS, RATING_LABELS
from ticketing.models import STAFF_ENTRY_CHANNELS, Rating
from ticketing.services.intake import IntakeRequest


class QueueFilterForm(FlaskForm):
    """Search and filters of the queue, read from the query string (no CSRF: it changes nothing)."""

    class Meta:
        csrf = False

    number = StringField(_l("Ticket number"), validators=[Optional()])
    phone = StringField(
        _l("Phone, last 4 digits"),
        validators=[Optional(), Regexp(r"^\d{4}$", message=_l("Enter the last 4 digits of the phone."))],
    )
    grid = id_select(_l("Grid"), _l("Choose a grid from the list."))
    group = id_select(_l("Kind of problem"), _l("Choose a kind from the list."))
    rating = SelectField(_l("Rating"), validators=[Optional()], choices=[
        SelectChoice("", _l("Any rating")),
        *(SelectChoice(r.value, RATING_LABELS[r.value]) for r in Rating),
        SelectChoice("none", _l("Closed without rating")),
    ], invalid_choice_message=_l("Choose a rating from the list."))

    def filters(self) -> QueueFilters:
        """The filters that are valid; an invalid one filters nothing."""
        self.validate()

        def ok(f: Any) -> bool:
            return not f.errors

        number = unicodedata.normalize("NFKC", self.number.data or "").strip().upper()
        phone = unicodedata.normalize("NFKC", self.phone.data or "").strip()
        return QueueFilters(
            number=number[:20] if ok(self.number) else "",
            phone_digits=phone if ok(self.phone) else "",
            grid_id=self.grid.data if ok(self.grid) else None,
            group_id=self.group.data if ok(self.group) else None,
            rating=(self.rating.data or "") if ok(self.rating) else "",
        )


class NewTicketForm(IntakeForm):
    """A request taken at the service station, the hall or on the phone."""

    channel = SelectField(
        _l("How the request came in"),
        choices=[SelectChoice(c.value, CHANNEL_LABELS[c.value]) for c in STAFF_ENTRY_CHANNELS],
        invalid_choice_message=_l("Choose how the request came in."),
    )
    category_id = id_select(_l("Kind of problem"), _l("Choose what kind of problem it is."))
    community_id = id_select(_l("Community"), _l("Choose a community you serve."))
    complex_id = id_select(_l("Complex or courtyard"))
    building_id = id_select(_l("Building"))
    address_text = StringField(_l("Address, if not in the lists"))
    unit_room = StringField(_l("Unit and room"))
    description = TextAreaField(_l("What is the problem?"))
    name = StringField(_l("Resident's name (optional)"))
    phone = TelField(_l("Resident's phone: mobile, or landline with area code"))
    # Residents without any phone (services/phones.py): they come back or call.
    no_phone = BooleanField(_l("No phone"))
    photos = MultipleFileField(_l("Photos (up to 3)"))

    def intake_request(self, channel: str, photos: list[bytes]) -> IntakeRequest:
        """As every intake form's, with "no phone" as ticked."""
        req = super().intake_request(channel, photos)
        req.no_phone = bool(self.no_phone.data)
        return req

    def uploaded_photos(self) -> list[bytes]:
        """The posted photo files (an empty file input posts a part without a name)."""
        return [f.read() for f in (self.photos.data or []) if getattr(f, "filename", "")]
