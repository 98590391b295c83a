"""Display labels for the domain's codes, through the one translation layer."""
from __future__ import annotations

import functools
from datetime import datetime, timedelta, tzinfo
from typing import Any

from babel import Locale
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

STATUS_LABELS: dict[str, Any] = {
    "submitted": _l("Awaiting dispatch"),
    "dispatched": _l("Dispatched"),
    "accepted": _l("In progress"),
    "on_hold": _l("On hold"),
    "resolved": _l("Resolved"),
    "closed": _l("Closed"),
    "rejected": _l("Rejected"),
    "merged": _l("Merged"),
    "withdrawn": _l("Withdrawn"),
}

CHANNEL_LABELS: dict[str, Any] = {
    "web": _l("Online form"),
    "walk_in": _l("Service station"),
    "wechat_group": _l("WeChat group"),
    "service_hall": _l("Service hall"),
    "county_center": _l("County centre"),
    "wechat_oa": _l("WeChat official account"),
    "patrol": _l("Grid patrol"),
    "open311": _l("Open311 app"),
    "phone": _l("Phone"),
}

RATING_LABELS: dict[str, Any] = {
    "satisfied": _l("Satisfied"),
    "basic": _l("Basically satisfied"),
    "unsatisfied": _l("Not satisfied"),
}

ROLE_LABELS: dict[str, Any] = {
    "admin": _l("Administrator"),
    "supervisor": _l("Supervisor"),
    "dispatcher": _l("Dispatcher"),
    "grid_worker": _l("Grid worker"),
    "property_staff": _l("Property staff"),
    "volunteer": _l("Volunteer"),
}

HANDLER_KIND_LABELS: dict[str, Any] = {
    "grid_worker": _l("Grid worker"),
    "property": _l("Property company"),
    "volunteer_team": _l("Volunteer team"),
    "mediation_team": _l("Mediation team"),
}

ACTION_LABELS: dict[str, Any] = {
    "submit": _l("Request received"),
    "dispatch": _l("Dispatched"),
    "reject": _l("Rejected"),
    "merge": _l("Merged into another ticket"),
    "accept": _l("Accepted"),
    "return": _l("Returned to the dispatcher"),
    "hold": _l("Put on hold"),
    "resume": _l("Work resumed"),
    "resolve": _l("Resolved"),
    "rate": _l("Rated by the resident"),
    "reopen": _l("Reopened at the resident's request"),
    "auto_close": _l("Closed without rating"),
    "note": _l("Note"),
    "photo": _l("Photo added"),
    "expire": _l("Not accepted in time; back for routing"),
    "release": _l("Handler's account deactivated; back for routing"),
    "escalate": _l("Escalated"),
    "deescalate": _l("Sent back down"),
    "extend": _l("New deadline set"),
    "recategorize": _l("Category changed"),
    "add_info": _l("The resident added information"),
    "withdraw": _l("Withdrawn by the resident"),
    "rate_merged": _l("Rated by the resident"),
    "reopen_merged": _l("The resident asked for the work to be redone"),
    "callback": _l("Callback to the resident"),
    "callback_rate": _l("Rated by the resident on a callback"),
    "redo": _l("Sent back for redoing after a callback"),
    "reassign": _l("Reassigned"),
    "transfer": _l("Passed to another handler"),
}

# 回访 (services/callbacks.py): why a resident is called, and where the task stands.
CALLBACK_REASON_LABELS: dict[str, Any] = {
    "unsatisfied": _l("Not satisfied"),
    "not_rated": _l("Closed without rating"),
    "staff_entry": _l("Filed in person or by phone"),
    "sample": _l("Sample of the satisfied"),
}

CALLBACK_STATE_LABELS: dict[str, Any] = {
    "open": _l("To call"),
    "done": _l("Done"),
    "failed": _l("Not reached"),
}

# The rules the system itself dispatches by, stored as these codes (services/patrol.py);
# routing rules' own names are shown as they are.
RULE_LABELS: dict[str, Any] = {
    "patrol: the worker's own report": _l("the grid worker's own patrol report"),
    "patrol: taken on the spot": _l("taken on the spot (马上就办)"),
}


def label(table: dict[str, Any], code: str | None) -> str:
    """The label of a code, or the code itself when it has none."""
    if code is None:
        return ""
    return str(table.get(code, code))


@functools.lru_cache(maxsize=32)
def locale_of(identifier: str) -> Locale:
    """The parsed locale, once per process: Babel looks each identifier up in its whole
    locale list (about a millisecond), and every request and message needs one."""
    return Locale.parse(identifier)


def localized_name(obj: Any) -> str:
    """`name_en` of a data row when the page is in English, else `name_zh`."""
    locale = get_locale()
    if locale is not None and locale.language == "en" and getattr(obj, "name_en", ""):
        return obj.name_en
    return obj.name_zh


def format_deadline(value: datetime | None, tz: tzinfo, fmt: str = "%Y-%m-%d") -> str:
    """A deadline in local time; one that ends at midnight reads as 24:00 of the day before."""
    if value is None:
        return ""
    local = value.astimezone(tz)
    if (local.hour, local.minute, local.second) == (0, 0, 0):
        return (local - timedelta(days=1)).strftime(fmt) + " 24:00"
    return local.strftime(fmt + " %H:%M")
