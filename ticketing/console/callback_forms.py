"""The forms of a 回访 task's page: a try that did not reach the resident, and one that did.

They only parse; whether an outcome hangs together is services/callbacks.py's call,
the same for the page and the staff API.
"""
from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, SelectChoice, SelectField, TextAreaField
from wtforms.validators import Length

from ticketing.forms import optional_id
from ticketing.handler_choices import handler_choices
from ticketing.labels import RATING_LABELS
from ticketing.models import Rating, Ticket
from ticketing.services.callbacks import RATEABLE, Outcome
from ticketing.services.handlers import parse_handler
from ticketing.services.lifecycle import MAX_NOTE_LENGTH

# The service's names of an outcome's parts → the form fields that hold them.
FIELDS = {"redo": "handler"}  # the dispatch of a redo names its own field "handler" already


class CallbackForm(FlaskForm):
    """Base of the outcome forms: the task's version as shown, and a note.

    CSRFProtect checks the token of every POST; the template adds it to each form.
    """

    class Meta:
        csrf = False

    version = HiddenField()

    def version_shown(self) -> int | None:
        """The task's version when the page was shown (a later change is a conflict)."""
        value = optional_id(self.version.data)
        return value if value is not None and value > 0 else None


class NotReachedForm(CallbackForm):
    """Nobody answered, or the number was wrong: try again later (3 tries in all)."""

    note = TextAreaField(_l("Note (optional)"), id="missed-note", validators=[Length(max=MAX_NOTE_LENGTH)],
                         render_kw={"rows": 2, "maxlength": MAX_NOTE_LENGTH})

    def outcome(self) -> Outcome:
        return Outcome(reached=False, note=self.note.data or "")


class ReachedForm(CallbackForm):
    """The resident answered: solved or not, redo or not, their rating, what they said."""

    solved = RadioField(_l("Is the problem solved?"), id="reached-solved", validate_choice=False,
                        choices=[SelectChoice("yes", _l("Yes, solved")), SelectChoice("no", _l("No, not solved"))])
    handler = SelectField(_l("Not solved: redo it, sent to"), id="reached-handler", choices=[],
                          validate_choice=False)
    rating = RadioField(_l("The resident's own rating, if they give one"), id="reached-rating",
                        validate_choice=False, default="",
                        choices=[SelectChoice("", _l("Not given")),
                                 *(SelectChoice(r.value, RATING_LABELS[r.value]) for r in Rating)])
    note = TextAreaField(_l("What the resident said"), id="reached-note", validators=[Length(max=MAX_NOTE_LENGTH)],
                         render_kw={"rows": 3, "maxlength": MAX_NOTE_LENGTH})

    def prepare(self, ticket: Ticket) -> None:
        """The handlers a redo may go to, the ticket's own preselected; none while it is in work."""
        if ticket.status not in RATEABLE:
            self.handler.choices = [SelectChoice("", str(_l("It is being worked on already")))]
            return
        options = handler_choices(ticket)[1:]
        self.handler.choices = [SelectChoice("", str(_l("Do not redo"))), *options]
        if self.handler.raw_data is None:
            own = (f"user:{ticket.assignee_id}" if ticket.assignee_id else
                   f"team:{ticket.team_id}" if ticket.team_id else "")
            self.handler.data = own if any(option.value == own for option in options) else ""

    def outcome(self) -> Outcome:
        """The outcome as posted; the handler counts only for a problem not solved."""
        solved = {"yes": True, "no": False}.get(self.solved.data or "")
        redo: dict[str, Any] | None = None
        if solved is False and self.handler.data:
            redo = parse_handler(self.handler.data)
        return Outcome(reached=True, solved=solved, rating=self.rating.data or None,
                       note=self.note.data or "", redo=redo)
