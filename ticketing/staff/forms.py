"""The small forms of the staff ticket page, one per transition of the state machine.

Each form turns what was posted into the arguments of `lifecycle.perform()`. Whether
a note is required, and who may act, is the state machine's call, not the form's.
Fields carry ids prefixed with their action, since all panels share one page.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    DateField,
    DateTimeLocalField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Length

from ticketing import web
from ticketing.extensions import db
from ticketing.forms import optional_id, with_blank
from ticketing.handler_choices import handler_choices, reassign_choices, transfer_choices
from ticketing.labels import format_deadline, localized_name
from ticketing.models import Category, Status, Ticket, User
from ticketing.services import handoff, holds, scope
from ticketing.services.catalog import category_groups
from ticketing.services.errors import InvalidInput
from ticketing.services.handlers import parse_handler
from ticketing.services.lifecycle import MAX_NOTE_LENGTH


@dataclass
class Inputs:
    """What a posted action form means to `perform()`."""

    note: str = ""
    public: bool | None = None
    params: dict[str, Any] = field(default_factory=dict)


def note_field(name: str, label: Any) -> TextAreaField:
    """A note or reason; the state machine decides whether it may be empty."""
    return TextAreaField(label, id=f"{name}-note", validators=[Length(max=MAX_NOTE_LENGTH)])


class ActionForm(FlaskForm):
    """Base of the action forms.

    CSRFProtect checks the token of every POST before a view runs, and the template
    adds it to each form, so the forms need no token field of their own (one per
    form would repeat the same element id on the page).
    """

    class Meta:
        csrf = False

    def prepare(self, ticket: Ticket) -> None:
        """Fill in what depends on the ticket (choices)."""

    def inputs(self, user: User) -> Inputs:
        """The note, visibility and parameters for `perform()`."""
        note = getattr(self, "note", None)
        return Inputs(note=(note.data or "") if note is not None else "")


class DispatchForm(ActionForm):
    """Send the ticket to a person or a team (also to re-send a dispatched one)."""

    handler = SelectField(_l("Handler"), id="dispatch-handler", choices=[])

    def prepare(self, ticket: Ticket) -> None:
        self.handler.choices = handler_choices(ticket)

    def inputs(self, user: User) -> Inputs:
        return Inputs(params=parse_handler(self.handler.data))


class RejectForm(ActionForm):
    """Reject an invalid request, with the reason the resident will read."""

    note = note_field("reject", _l("Reason for rejecting"))


class MergeForm(ActionForm):
    """Merge a duplicate into the ticket that carries the work."""

    target = StringField(_l("Number of the ticket to merge into"), id="merge-target",
                         validators=[Length(max=20)])
    note = note_field("merge", _l("Note (optional)"))

    def inputs(self, user: User) -> Inputs:
        return Inputs(note=self.note.data or "", params={"target": scope.merge_target(user, self.target.data)})


class AcceptForm(ActionForm):
    """Take the ticket on; its resolve-by deadline starts now."""


class ReturnForm(ActionForm):
    """Give the ticket back to the dispatcher (退单)."""

    note = note_field("return", _l("Why are you returning it?"))


class HoldForm(ActionForm):
    """Pause the work and the resolve clock (挂起): what is awaited, and until when."""

    note = note_field("hold", _l("What are you waiting for?"))
    until = DateField(_l("Expected by"), id="hold-until",
                      validators=[InputRequired(_l("Give the date you expect it by."))])

    def prepare(self, ticket: Ticket) -> None:
        today = web.now().astimezone(local_zone()).date()
        latest = holds.latest_until(web.now(), local_zone())
        self.until.render_kw = {"min": today.isoformat(), "max": latest.isoformat()}
        self.until.description = _l("At most %(n)d days ahead. You get a reminder on that day.",
                                    n=holds.MAX_HOLD_DAYS)

    def inputs(self, user: User) -> Inputs:
        return Inputs(note=self.note.data or "", params={"until": self.until.data})


class ResumeForm(ActionForm):
    """Carry on after a hold."""


class ResolveForm(ActionForm):
    """Report the result, with an optional photo of the work done."""

    note = note_field("resolve", _l("What was done"))
    photo = FileField(_l("Photo of the result (optional)"), id="resolve-photo",
                      render_kw={"accept": "image/jpeg,image/png,image/webp"})

    def photo_bytes(self, max_bytes: int) -> bytes | None:
        """The uploaded file, read up to one byte past the limit; None when none was sent."""
        upload = self.photo.data
        if upload is None or not getattr(upload, "filename", ""):
            return None
        return upload.read(max_bytes + 1)


class NoteForm(ActionForm):
    """A note on the timeline: for staff only, or for the resident to read too."""

    note = note_field("note", _l("Note"))
    visibility = RadioField(
        _l("Who may read it"),
        id="note-visibility",
        choices=[SelectChoice("internal", _l("Staff only")), SelectChoice("public", _l("Also the resident"))],
        default="internal",
    )

    def inputs(self, user: User) -> Inputs:
        return Inputs(note=self.note.data or "", public=self.visibility.data == "public")


class EscalateForm(ActionForm):
    """Pass the ticket one level up the ladder (上报) because it is beyond the handler's means."""

    note = note_field("escalate", _l("Why does it need the level above?"))


class DeescalateForm(ActionForm):
    """Send a supervised ticket one level back down."""

    note = note_field("deescalate", _l("Why can the level below handle it?"))


def local_zone() -> ZoneInfo:
    """The zone a datetime-local input is read in (the one pages show times in)."""
    return ZoneInfo(current_app.config["TIMEZONE"])


class ExtendForm(ActionForm):
    """Give the handler a new deadline: accept-by while dispatched, else resolve-by."""

    deadline = DateTimeLocalField(
        _l("New deadline"), id="extend-deadline", tz=local_zone,
        format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        validators=[InputRequired(_l("Give the new deadline."))],
    )
    note = note_field("extend", _l("Reason for the new deadline"))

    def prepare(self, ticket: Ticket) -> None:
        current = ticket.current_deadline
        if current is not None:
            self.deadline.description = _l("Now due by %(time)s.",
                                           time=format_deadline(current, local_zone(), "%Y-%m-%d"))

    def inputs(self, user: User) -> Inputs:
        deadline = self.deadline.data
        return Inputs(note=self.note.data or "",
                      params={"deadline": deadline.astimezone(UTC) if deadline else None})


class RecategorizeForm(ActionForm):
    """Correct the ticket's category; the classifier learns from the correction."""

    category = SelectField(_l("New category"), id="recategorize-category", coerce=optional_id,
                           invalid_choice_message=_l("Choose a category from the list."))
    note = note_field("recategorize", _l("Note (optional)"))

    def prepare(self, ticket: Ticket) -> None:
        groups = {
            localized_name(g.group): [(c.id, localized_name(c)) for c in g.options if c.id != ticket.category_id]
            for g in category_groups()
        }
        self.category.choices = with_blank({k: v for k, v in groups.items() if v}, _l("Choose…"))
        # Offer the classifier's guess first when it differs from the category.
        if not self.category.raw_data and ticket.guess_category_id not in (None, ticket.category_id):
            self.category.data = ticket.guess_category_id
        if ticket.status != Status.SUBMITTED:
            self.category.description = _l("The time limits already running stay as they are.")

    def inputs(self, user: User) -> Inputs:
        category = db.session.get(Category, self.category.data) if self.category.data else None
        if category is None:
            raise InvalidInput(_l("Choose a category from the list."), field="category")
        return Inputs(note=self.note.data or "", params={"category": category})


class ReassignForm(ActionForm):
    """改派: give the ticket to another handler; the old and the new one are told."""

    handler = SelectField(_l("New handler"), id="reassign-handler", choices=[])
    note = note_field("reassign", _l("Why does it go to someone else?"))

    def prepare(self, ticket: Ticket) -> None:
        self.handler.choices = reassign_choices(ticket)
        self.handler.description = _l("The new handler accepts it again; its time limits start afresh.")

    def inputs(self, user: User) -> Inputs:
        return Inputs(note=self.note.data or "", params=parse_handler(self.handler.data))


class TransferForm(ActionForm):
    """转办: pass the ticket to another handler or team on duty now, with the reason."""

    handler = SelectField(_l("Pass it to"), id="transfer-handler", choices=[])
    note = note_field("transfer", _l("Why should they take it?"))

    def prepare(self, ticket: Ticket) -> None:
        self.handler.choices = transfer_choices(ticket, web.now(), local_zone())
        self.handler.description = _l("Only people on duty now. Passing on counts like a return: after %(n)d, "
                                      "the dispatcher decides.", n=handoff.MAX_RETURNS)

    def inputs(self, user: User) -> Inputs:
        return Inputs(note=self.note.data or "", params=parse_handler(self.handler.data))


FORMS: dict[str, type[ActionForm]] = {
    "dispatch": DispatchForm,
    "reject": RejectForm,
    "merge": MergeForm,
    "accept": AcceptForm,
    "return": ReturnForm,
    "hold": HoldForm,
    "resume": ResumeForm,
    "resolve": ResolveForm,
    "note": NoteForm,
    "escalate": EscalateForm,
    "deescalate": DeescalateForm,
    "extend": ExtendForm,
    "recategorize": RecategorizeForm,
    "reassign": ReassignForm,
    "transfer": TransferForm,
}
