"""Forms of the patrol report and of the group-chat quick entry."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    StringField,
    TelField,
    TextAreaField,
)

from ticketing.forms import (
    CachedMessagesForm,
    IntakeForm,
    QuickCheckboxInput,
    QuickHiddenInput,
    QuickTelInput,
    QuickTextInput,
    id_select,
)


class PatrolForm(IntakeForm):
    """What a grid worker found on patrol, and whether they handle it on the spot."""

    category_id = id_select(_l("Kind of problem"), _l("Choose what kind of problem it is."))
    building_id = id_select(_l("Building"))
    lat = HiddenField()
    lng = HiddenField()
    description = TextAreaField(_l("What did you find?"))
    photo = FileField(_l("Photo"))
    phone = TelField(_l("Contact mobile phone"))
    handle_now = BooleanField(_l("I'll handle it now"))
    result = TextAreaField(_l("What was done (to resolve it now)"))

    def point(self) -> tuple[float, float] | None:
        """The phone's location (lat, lng), when one was posted and is a real position."""
        try:
            lat, lng = float(self.lat.data or ""), float(self.lng.data or "")
        except ValueError:
            return None
        if not (-90 <= lat <= 90 and -180 <= lng <= 180):
            return None
        return lat, lng

    def uploaded_photos(self) -> list[bytes]:
        """The posted photo, if any (an empty file input posts a part without a name)."""
        data = self.photo.data
        if data is None or not getattr(data, "filename", ""):
            return []
        return [data.read()]


class PasteForm(CachedMessagesForm):
    """Step 1: the block of messages as copied from the WeChat group."""

    text = TextAreaField(_l("Messages copied from the group"))


class DraftRow(Form):
    """One draft ticket of step 2 (a sub-form: the CSRF token is the outer form's)."""

    # The drafts page repeats these for every row: their HTML is written the quick way
    # (ticketing/forms.py `quick_html_params`), the same as WTForms writes it.
    include = BooleanField(_l("File"), default=True, widget=QuickCheckboxInput())
    key = HiddenField(widget=QuickHiddenInput())
    sender = HiddenField(widget=QuickHiddenInput())
    time = HiddenField(widget=QuickHiddenInput())
    category_id = id_select(_l("Kind of problem"), _l("Choose what kind of problem it is."))
    community_id = id_select(_l("Community"), _l("Choose a community you serve."))
    building_id = id_select(_l("Building"))
    phone = TelField(_l("Phone (if the message gives one)"), widget=QuickTelInput())
    name = StringField(_l("Name"), widget=QuickTextInput())
    description = TextAreaField(_l("Message"))


class DraftsForm(CachedMessagesForm):
    """Step 2: the drafts, fixed by hand, filed in one action."""

    rows = FieldList(FormField(DraftRow), min_entries=0, max_entries=50)
