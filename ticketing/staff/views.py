"""The staff ticket page: everything about one ticket, and every action the viewer may take.

All actions post to one route that reads the action's form and calls the state
machine; the ticket's state is never set here.
"""
from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from ticketing.extensions import db
from ticketing.governance_blocks import for_ticket as governance_tasks_of
from ticketing.models import Photo, Role, Ticket
from ticketing.services import classify, duplicates, lifecycle, privacy, reveal_log, scope, timeline
from ticketing.services.callbacks import of_ticket as callback_tasks_of
from ticketing.services.errors import InvalidInput, ServiceError
from ticketing.services.lifecycle import TRANSITIONS, perform
from ticketing.services.photos import CleanPhoto, clean_photo
from ticketing.staff import page
from ticketing.staff.forms import FORMS, ActionForm, ResolveForm
from ticketing.web import (
    calendar,
    now,
    photo_store,
    roles_required,
    staff_actor,
    staff_user,
    ticket_in_scope_or_404,
)

bp = Blueprint("staff", __name__)

STAFF_ROLES = tuple(role.value for role in Role)

DONE: dict[str, Any] = {
    "dispatch": _l("The ticket was dispatched."),
    "reject": _l("The ticket was rejected."),
    "merge": _l("The ticket was merged."),
    "accept": _l("You accepted the ticket. The resolve-by time is shown below."),
    "return": _l("The ticket went back to the dispatcher."),
    "hold": _l("The ticket is on hold; its clock is paused."),
    "resume": _l("Work on the ticket has resumed."),
    "resolve": _l("The ticket is resolved. The resident will be asked to confirm."),
    "note": _l("Your note was added."),
    "escalate": _l("The ticket went up one level; its supervisors were told."),
    "deescalate": _l("The ticket went back down one level."),
    "extend": _l("The new deadline is set."),
    "recategorize": _l("The category was changed."),
    "reassign": _l("The ticket was given to the new handler; both handlers were told."),
    "transfer": _l("The ticket was passed on; the new handler was told."),
}

REVEAL_PURPOSES: dict[str, Any] = {"view": _l("ticket page"), "export": _l("ledger export"),
                                   "callback": _l("callback call")}


def render_ticket(
    ticket: Ticket,
    status: int = 200,
    revealed: bool = False,
    failed: tuple[str, ActionForm] | None = None,
) -> tuple[str, int]:
    """The ticket page; personal data whole only when `revealed` (already logged)."""
    user = staff_user()
    html = render_template(
        "staff/detail.html",
        ticket=ticket,
        now=now(),
        revealed=revealed,
        can_reveal=privacy.may_reveal(user, ticket),
        panels=page.panels(ticket, staff_actor(), failed),
        open_action=failed[0] if failed else None,
        routing=timeline.routing_event(ticket),
        merged_here=page.merged_here(ticket, user),
        duplicates=duplicates.hints(ticket, staff_actor(), now()),
        photos=page.photos_by_kind(ticket),
        event_summary=timeline.event_summary,
        classification=page.classification(ticket),
        reveals=reveal_log.of_ticket(ticket) if reveal_log.may_read_for(user, ticket) else None,
        reveal_purposes=REVEAL_PURPOSES,
        callback_tasks=callback_tasks_of(user, ticket),
        governance_tasks=governance_tasks_of(ticket),
    )
    return html, status


@bp.app_template_global("category_guess")
def category_guess(text: str) -> classify.Guess:
    """The classifier's guess for a text (the group-chat drafts show it)."""
    return classify.classify(text or "")


@bp.app_template_test("doubtful_category")
def doubtful_category(ticket: Ticket) -> bool:
    """`{% if t is doubtful_category %}`: the guess differs from the category or was unsure."""
    return page.category_doubtful(ticket)


@bp.route("/<number>")
@roles_required(*STAFF_ROLES)
def detail(number: str) -> tuple[str, int]:
    """Show a ticket in the viewer's scope."""
    return render_ticket(ticket_in_scope_or_404(number))


@bp.route("/<number>/act/<name>", methods=["POST"])
@roles_required(*STAFF_ROLES)
def act(number: str, name: str) -> Response | tuple[str, int]:
    """Apply one transition from its form; on refusal show the page again with the reason."""
    if name not in FORMS:
        abort(404)
    ticket = ticket_in_scope_or_404(number)
    user, actor = staff_user(), staff_actor()
    form = FORMS[name]()
    form.prepare(ticket)
    try:
        # Asked before the form is read, so "not now" and "not you" win over "fix this field".
        lifecycle.check(TRANSITIONS[name], actor, ticket)
        if not form.validate():
            raise InvalidInput(_l("Please correct the marked field."))
        inputs = form.inputs(user)
        photo = result_photo(form) if isinstance(form, ResolveForm) else None
        store, when = photo_store(), now()
        # Files written here are removed again if anything below fails.
        with store.staged() as written:
            perform(ticket, name, actor, when, calendar(), note=inputs.note,
                    public=inputs.public, **inputs.params)
            if photo is not None:
                key = store.write(photo, when)
                written.append(key)
                db.session.add(Photo(ticket=ticket, kind="result", storage_key=key, created_at=when,
                                     content_type=photo.content_type, size_bytes=len(photo.data)))
            db.session.commit()
    except ServiceError as err:
        db.session.rollback()
        mark_field(form, err)
        flash(str(err.message), "error")
        return render_ticket(ticket, status=err.status, failed=(name, form))
    flash(str(DONE[name]), "success")
    if scope.in_scope(user, ticket):
        return redirect(url_for("staff.detail", number=ticket.number), code=303)
    # Returned team or company tickets leave the handler's scope.
    home = "workbench.index" if user.is_handler else "console.queue"
    return redirect(url_for(home), code=303)


def result_photo(form: ResolveForm) -> CleanPhoto | None:
    """The checked after-photo of a resolve form, if one was sent."""
    limit = current_app.config["MAX_PHOTO_BYTES"]
    data = form.photo_bytes(limit)
    return clean_photo(data, limit) if data is not None else None


def mark_field(form: ActionForm, err: ServiceError) -> None:
    """Show a service error next to the field it is about, when the form has that field."""
    if not err.field or err.field not in form:
        return
    field = form[err.field]
    if str(err.message) not in map(str, field.errors):
        field.errors = [*field.errors, err.message]


@bp.route("/<number>/reveal", methods=["POST"])
@roles_required(*STAFF_ROLES)
def reveal(number: str) -> Response:
    """Show the requester's details in full for this one response, and log that it happened."""
    ticket = ticket_in_scope_or_404(number)
    user = staff_user()
    if not privacy.may_reveal(user, ticket):
        abort(403)
    privacy.record_reveal(user, ticket, now(), "view", request.remote_addr or "")
    db.session.commit()
    html, status = render_ticket(ticket, revealed=True)
    response = current_app.make_response((html, status))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/<number>/photos/<int:photo_id>")
@roles_required(*STAFF_ROLES)
def photo(number: str, photo_id: int) -> Response:
    """A photo of a ticket in the viewer's scope."""
    ticket = ticket_in_scope_or_404(number)
    row = db.session.get(Photo, photo_id)
    if row is None or row.ticket_id != ticket.id:
        abort(404)
    path = photo_store().path(row.storage_key)
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype=row.content_type, conditional=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
