"""What the intake forms of every blueprint share: turning a form into an intake request."""
from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm

from ticketing.services.intake import IntakeRequest


class IntakeForm(FlaskForm):
    """Base of the forms that file a request (resident web form, dispatcher entry).

    Subclasses declare the fields named like `IntakeRequest`'s; the rules themselves
    live in the intake service, which reports every problem by field name.
    """

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
        )

    def add_errors(self, errors: dict[str, Any]) -> None:
        """Show the intake service's messages beside their fields, others above the form."""
        for name, message in errors.items():
            field = self._fields.get(name)
            if field is None:
                self.form_errors.append(message)
            else:
                field.errors = [*field.errors, message]
