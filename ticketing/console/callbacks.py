"""The 回访 queue of the console: the residents to call back, a task's page, its outcome.

Dispatchers, supervisors and admins work the tasks of the tickets in their scope; a
task out of scope is not found. The rules are services/callbacks.py's.
"""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from ticketing.console.callback_forms import FIELDS, CallbackForm, NotReachedForm, ReachedForm
from ticketing.console.views import bp
from ticketing.extensions import db
from ticketing.labels import CALLBACK_STATE_LABELS
from ticketing.models import CallbackTask
from ticketing.services import callbacks, privacy, timeline
from ticketing.services.errors import InvalidInput, ServiceError
from ticketing.web import calendar, now, roles_required, staff_user


def view_labels() -> dict[str, str]:
    """The queue's views and their labels, in order."""
    return {"open": str(CALLBACK_STATE_LABELS["open"]), "overdue": _("Overdue"),
            "done": str(CALLBACK_STATE_LABELS["done"]), "failed": str(CALLBACK_STATE_LABELS["failed"]),
            "all": _("All")}


def task_or_404(task_id: int) -> CallbackTask:
    """The task if the user works it; 404 otherwise."""
    task = callbacks.find(staff_user(), task_id)
    if task is None:
        abort(404)
    return task


@bp.route("/callbacks")
@roles_required(*callbacks.CALLER_ROLES)
def callback_queue() -> str:
    """The residents to call back, soonest due first; done and failed ones too."""
    at = now()
    result = callbacks.queue(staff_user(), request.args.get("view", "open"),
                             request.args.get("page", 1, type=int), at)
    return render_template("console/callbacks.html", q=result, now=at, views=view_labels())


def render_task(task: CallbackTask, status: int = 200, revealed: bool = False,
                failed: CallbackForm | None = None) -> tuple[str, int]:
    """A task's page: the ticket, its timeline, the call script, the outcome forms."""
    missed = failed if isinstance(failed, NotReachedForm) else NotReachedForm(formdata=None)
    reached = failed if isinstance(failed, ReachedForm) else ReachedForm(formdata=None)
    reached.prepare(task.ticket)
    for form in (missed, reached):
        form.version.data = str(task.version)
    html = render_template(
        "console/callback_task.html", task=task, ticket=task.ticket, now=now(), revealed=revealed,
        can_reveal=task.is_open and privacy.may_reveal(staff_user(), task.ticket),
        missed_form=missed, reached_form=reached, open_form="reached" if isinstance(failed, ReachedForm) else "",
        max_attempts=callbacks.MAX_ATTEMPTS,
        may_redo=task.ticket.status in callbacks.RATEABLE, event_summary=timeline.event_summary)
    return html, status


@bp.route("/callbacks/<int:task_id>")
@roles_required(*callbacks.CALLER_ROLES)
def callback_task(task_id: int) -> tuple[str, int]:
    """One task: who to call about what, how to ask, and the outcome to record."""
    return render_task(task_or_404(task_id))


@bp.route("/callbacks/<int:task_id>/reveal", methods=["POST"])
@roles_required(*callbacks.CALLER_ROLES)
def callback_reveal(task_id: int) -> Response:
    """The resident's phone in full for this one answer, logged as a reveal for a callback."""
    task = task_or_404(task_id)
    try:
        callbacks.reveal(staff_user(), task, now(), request.remote_addr or "")
    except ServiceError:
        abort(403)
    db.session.commit()
    response = current_app.make_response(render_task(task, revealed=True))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/callbacks/<int:task_id>/outcome", methods=["POST"])
@roles_required(*callbacks.CALLER_ROLES)
def callback_outcome(task_id: int) -> Response | tuple[str, int]:
    """Record one try: not reached, or reached with what the resident said."""
    task = task_or_404(task_id)
    form: NotReachedForm | ReachedForm = ReachedForm() if request.form.get("reached") == "yes" else NotReachedForm()
    if isinstance(form, ReachedForm):
        form.prepare(task.ticket)
    try:
        if not form.validate():
            raise InvalidInput(_("Please correct the marked field."))
        done = callbacks.record_outcome(task, staff_user(), form.outcome(), now(), calendar(),
                                        version=form.version_shown())
        db.session.commit()
    except ServiceError as err:
        db.session.rollback()
        name = FIELDS.get(err.field or "", err.field or "")
        if name in form and str(err.message) not in map(str, form[name].errors):
            form[name].errors = [*form[name].errors, err.message]
        flash(str(err.message), "error")
        return render_task(task_or_404(task_id), status=err.status, failed=form)
    flash(done_message(done.task), "success")
    return redirect(url_for("console.callback_task", task_id=task_id), 303)


def done_message(task: CallbackTask) -> str:
    """What the caller is told after recording a try."""
    if task.state == "failed":
        return _("Not reached after %(n)d tries: the callback is closed as unreachable.", n=task.attempts)
    if task.is_open:
        return _("Recorded: not reached (try %(n)d of %(max)d). Try again later.",
                 n=task.attempts, max=callbacks.MAX_ATTEMPTS)
    if task.redone:
        return _("Recorded. The ticket was sent back to be redone.")
    if task.rating and not task.rating_recorded:
        return _("Recorded. The ticket already had the resident's rating, which stands; "
                 "the rating on the call is kept with the callback.")
    return _("Recorded. Thank you.")
