"""The brief page: a supervisor's morning brief, composed afresh on every visit.

The inbox message of 08:00 keeps the few lines it was sent with; this page is where
the supervisor acts, so it shows things as they stand now (a ticket resolved at
09:00 is no longer on the overdue list at 10:00), and reads only compiled ledgers and
counted queries, so composing it on each visit costs what sending it did.

Supervisors and admins see the brief of their own scope. A street's supervisor (or an
admin) may narrow it to one community of theirs, and then reads exactly what that
community's supervisor reads; any other community is not found (404), as is the page
for everyone else.
"""
from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from ticketing.models import Role
from ticketing.services import brief
from ticketing.services.brief_rules import (
    COLOUR_LABELS,
    RATE_DAYS,
    RATE_LABELS,
    RED,
    YELLOW,
    rules_by_colour,
)
from ticketing.services.ledger_report import MIN_TICKETS, RATES
from ticketing.services.supervision import LEVEL_LABELS
from ticketing.web import calendar, now, roles_required, staff_user

bp = Blueprint("brief", __name__)

BRIEF_ROLES = (Role.SUPERVISOR, Role.ADMIN)


@bp.route("/")
@roles_required(*BRIEF_ROLES)
def page() -> str:
    """The brief of the user's community or street (or of one community of it), now."""
    user = staff_user()
    viewer, chosen = user, None
    code = request.args.get("community")
    if code:
        chosen = brief.community_for(user, code)
        if chosen is None:
            abort(404)
        viewer = brief.as_community_supervisor(user, chosen)
    at, days = now(), calendar()
    composed = brief.compose(viewer, at.astimezone(days.tz).date(), at, days)
    return render_template(
        "brief/page.html", b=composed, chosen=chosen, communities=brief.communities_for(user),
        categories=brief.categories_of(composed), rules=rules_by_colour(), colour_labels=COLOUR_LABELS,
        flagged=(RED, YELLOW), rates=RATES, min_tickets=MIN_TICKETS, level_labels=LEVEL_LABELS,
        rule_rate_labels=RATE_LABELS, rate_days=RATE_DAYS, today_is_workday=days.is_workday(composed.day),
    )
