"""A dispatch target as forms and the API name it: `user:<id>` or `team:<id>`."""
from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from ticketing.extensions import db
from ticketing.models import Team, User
from ticketing.services.errors import InvalidInput


def parse_handler(value: str | None) -> dict[str, Any]:
    """`user:12` → {"assignee": User}, `team:3` → {"team": Team}; unknown → InvalidInput."""
    kind, _, raw_id = (value or "").partition(":")
    model = {"user": User, "team": Team}.get(kind)
    row = db.session.get(model, int(raw_id)) if model is not None and raw_id.isdigit() else None
    if row is None:
        raise InvalidInput(_l("Choose who should handle the ticket."), field="handler")
    return {"assignee": row} if kind == "user" else {"team": row}
