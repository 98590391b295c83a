"""The handler workbench: a phone-sized list of "my tickets", soonest deadline first."""
from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_babel import lazy_gettext as _l

from ticketing.models import HANDLER_ROLES
from ticketing.services.handoff import MAX_RETURNS
from ticketing.web import calendar, now, roles_required, staff_user
from ticketing.workbench import queue

bp = Blueprint("workbench", __name__)

TAB_LABELS = {
    "open": _l("All open"),
    "accept": _l("To accept"),
    "progress": _l("In progress"),
    "hold": _l("On hold"),
    "resolved": _l("Recently resolved"),
}


@bp.route("/")
@roles_required(*HANDLER_ROLES)
def index() -> str:
    """The handler's tickets of one tab (all open ones unless another tab is chosen)."""
    tab = request.args.get("tab", "open")
    if tab not in queue.TABS:
        tab = "open"
    user, when = staff_user(), now()
    return render_template(
        "workbench/index.html",
        tab=tab,
        tabs=TAB_LABELS,
        counts=queue.counts(user, when),
        items=queue.items(user, tab, when, calendar()),
        max_returns=MAX_RETURNS,  # passed on this often, a ticket goes back to the dispatcher
    )
