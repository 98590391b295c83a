"""The dispatcher console: the queue of tickets, and requests entered on a resident's behalf."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from ticketing import place_choices as places
from ticketing.console.forms import NewTicketForm, QueueFilterForm
from ticketing.console.queue import DEFAULT_TAB, TABS, load_queue
from ticketing.forms import with_blank
from ticketing.models import Role, Ticket
from ticketing.qr import qr_svg
from ticketing.services import duplicates, intake, phones, supervision, tracking
from ticketing.services.doors import ENTRY_ROLES
from ticketing.services.errors import InvalidInput, ValidationFailed
from ticketing.web import (
    local_tz,
    now,
    photo_store,
    roles_required,
    staff_actor,
    staff_user,
    ticket_in_scope_or_404,
)

bp = Blueprint("console", __name__)

CONSOLE_ROLES = (Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN)
# Dispatchers read the 督办 lists; supervisors act on the tickets (on the ticket page).
SUPERVISION_ROLES = CONSOLE_ROLES


def age_label(since: datetime, at: datetime) -> str:
    """How long ago `since` was, in the largest whole unit: 5 min, 3 h, 2 d."""
    minutes = max(int((at - since).total_seconds() // 60), 0)
    if minutes < 60:
        return _("%(n)d min", n=minutes)
    if minutes < 48 * 60:
        return _("%(n)d h", n=minutes // 60)
    return _("%(n)d d", n=minutes // (24 * 60))


def handler_name(ticket: Ticket) -> str:
    """Who has the ticket: the person, else the team or company, else nobody yet."""
    if ticket.assignee is not None:
        return ticket.assignee.display_name
    if ticket.team is not None:
        return ticket.team.name
    if ticket.company is not None:
        return ticket.company.name
    return ""


@bp.context_processor
def console_helpers() -> dict[str, Any]:
    """Helpers the console templates use."""
    return {"age_label": age_label, "handler_name": handler_name, "console_tabs": TABS,
            "supervision_count": lambda: supervision.count_for(staff_user()),
            "level_labels": supervision.LEVEL_LABELS}


@bp.route("/")
@roles_required(*CONSOLE_ROLES)
def queue() -> str:
    """The tickets in the user's scope, by tab, filtered and paged."""
    user = staff_user()
    form = QueueFilterForm(request.args)
    form.grid.choices = with_blank(places.grid_choices(places.grids_in_scope(user)), _("All grids"))
    form.group.choices = with_blank(places.group_choices(), _("All kinds"))
    tab = request.args.get("tab", DEFAULT_TAB)
    at = now()
    result = load_queue(user, tab, form.filters(), request.args.get("page", 1, type=int), at)
    # Filters stay set when the tab or page changes.
    kept = {k: v for k, v in request.args.items() if k in form._fields and v}
    return render_template(
        "console/queue.html", form=form, q=result, now=at, kept=kept,
        may_enter=user.has_role(*ENTRY_ROLES),
    )


@bp.route("/new", methods=["GET", "POST"])
@roles_required(*ENTRY_ROLES)
def new_ticket() -> str | Response | tuple[str, int]:
    """Enter a request on a resident's behalf (walk-in, service hall, phone)."""
    user = staff_user()
    communities = places.communities_in_scope(user)
    form = NewTicketForm()
    form.category_id.choices = with_blank(places.category_choices(), _("Choose…"))
    form.community_id.choices = with_blank([(c.id, c.name) for c in communities], _("Choose…"))
    form.complex_id.choices = with_blank(places.complex_choices(communities), _("Not in the list"))
    form.building_id.choices = with_blank(places.building_choices(communities), _("Not in the list"))
    if request.method == "GET" and len(communities) == 1:
        form.community_id.data = communities[0].id
    if not form.is_submitted():
        return render_template("console/new.html", form=form)
    status = 400
    if form.validate():
        try:
            ticket, _created = intake.submit(
                form.intake_request(form.channel.data or "", form.uploaded_photos()), staff_actor(), now(), local_tz(), photo_store(),
                current_app.config["MAX_PHOTO_BYTES"], current_app.config["MAX_PHOTOS"],
            )
        except ValidationFailed as exc:
            form.add_errors(exc.errors)
            status = exc.status
        except InvalidInput as exc:
            form.form_errors.append(exc.message)
            status = exc.status
        else:
            flash(_("Ticket %(number)s filed.", number=ticket.number), "success")
            if not phones.can_text(ticket.requester_phone):
                flash(_("No SMS can reach this resident: print the slip (under Requester) and give it to "
                        "them, and tell them to come back or call."), "info")
            similar = duplicates.candidates(ticket, user, now(), limit=1)
            if similar:
                flash(_("A similar open ticket exists: %(number)s. See the possible duplicates below.",
                        number=similar[0].number), "info")
            return redirect(url_for("staff.detail", number=ticket.number), 303)
    return render_template("console/new.html", form=form), status


@bp.route("/slip/<number>")
@roles_required(*CONSOLE_ROLES)
def slip(number: str) -> str:
    """The slip printed for a resident who came in or phoned: the number, the tracking
    link and its QR code, and how to follow the request with the phone they gave (or,
    without one, only by the link or by coming back)."""
    ticket = ticket_in_scope_or_404(number)
    config = current_app.config
    link = tracking.tracking_link(ticket, config["SECRET_KEY"], config["PUBLIC_URL"])
    return render_template("console/slip.html", ticket=ticket, link=link,
                           qr=qr_svg(link, title=_("QR code of the tracking link")),
                           phone_kind=phones.kind_of(ticket.requester_phone))


@bp.route("/supervision")
@roles_required(*SUPERVISION_ROLES)
def supervision_list() -> str:
    """The 督办 list: escalated and supervised tickets in scope, one ladder level at a time."""
    user = staff_user()
    levels = supervision.chosen_levels(user, request.args.get("level"))
    result = supervision.load_supervision(user, levels, request.args.get("page", 1, type=int))
    return render_template(
        "console/supervision.html", s=result, now=now(), levels=supervision.LEVELS,
        overdue_by=supervision.overdue_by, acts=user.has_role(Role.SUPERVISOR, Role.ADMIN),
        duplicates=duplicates.flagged(result.tickets, user),
    )
