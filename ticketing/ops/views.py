"""The operations page (运维) for admins: calendar warnings, queues, failed jobs, outbox, scheduler,
residents' messages.

Read-mostly; the only actions are retrying or discarding a failed RQ job and retrying
a failed outbox row. Everything renders even when Redis is down, so the page is
useful exactly when something is wrong.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from redis.exceptions import RedisError
from werkzeug.utils import import_string
from werkzeug.wrappers import Response

from ticketing.extensions import db
from ticketing.models import Role
from ticketing.ops import jobs, records
from ticketing.services import calendar_admin, outbox
from ticketing.web import local_tz, now, roles_required

bp = Blueprint("ops", __name__)

MAX_JOB_ID = 200

MESSAGE_STATUS: dict[str, Any] = {
    "pending": _l("Waiting"),
    "sending": _l("Sending"),
    "sent": _l("Sent"),
    "failed": _l("Failed"),
}
MESSAGE_CHANNEL: dict[str, Any] = {"sms": _l("SMS"), "wechat": _l("WeChat"), "email": _l("E-mail")}
MESSAGE_KIND: dict[str, Any] = {
    "received": _l("Request received"),
    "accepted": _l("Request accepted"),
    "resolved": _l("Request resolved"),
    "closed": _l("Request closed"),
    "rejected": _l("Request not accepted"),
}


def schedule_entries() -> dict[str, records.ScheduleEntry]:
    """The schedule by entry id; it lives with the workers and is found by name."""
    return {entry.id: entry for entry in import_string("workers.scheduler.SCHEDULE")}


@bp.route("")
@roles_required(Role.ADMIN)
def index() -> str:
    """Everything an operator checks first, on one page."""
    failed_only = request.args.get("messages") == "failed"
    return render_template(
        "ops/index.html",
        calendar_years=calendar_admin.unconfirmed_years(now(), local_tz()),
        redis=jobs.redis_report(),
        backlog=outbox.backlog(),
        failed_outbox=records.failed_outbox(),
        schedule=records.scheduler_runs(now(), schedule_entries(), local_tz()),
        stale_minutes=int(records.STALE_AFTER.total_seconds() // 60),
        message_counts=records.resident_message_counts(),
        messages=records.resident_messages(failed_only),
        failed_only=failed_only,
        status_labels=MESSAGE_STATUS,
        channel_labels=MESSAGE_CHANNEL,
        kind_labels=MESSAGE_KIND,
    )


def posted_job() -> tuple[str, str]:
    """The queue and job id a Retry or Discard button posted; 400 when malformed."""
    queue_name = request.form.get("queue", "")
    job_id = request.form.get("job_id", "").strip()
    if queue_name not in jobs.QUEUES or not job_id or len(job_id) > MAX_JOB_ID:
        abort(400)
    return queue_name, job_id


@bp.route("/jobs/retry", methods=["POST"])
@roles_required(Role.ADMIN)
def retry_job() -> Response:
    """Put a failed RQ job back on its queue."""
    queue_name, job_id = posted_job()
    try:
        done = jobs.retry_job(queue_name, job_id)
    except RedisError:
        flash(_("Redis did not answer; nothing was changed."), "error")
    else:
        if done:
            flash(_("Job %(id)s is back on the queue %(queue)s.", id=job_id, queue=queue_name), "success")
        else:
            flash(_("Job %(id)s is no longer among the failed jobs.", id=job_id), "error")
    return redirect(url_for("ops.index"))


@bp.route("/jobs/discard", methods=["POST"])
@roles_required(Role.ADMIN)
def discard_job() -> Response:
    """Remove a failed RQ job for good."""
    queue_name, job_id = posted_job()
    try:
        done = jobs.discard_job(queue_name, job_id)
    except RedisError:
        flash(_("Redis did not answer; nothing was changed."), "error")
    else:
        if done:
            flash(_("Job %(id)s was discarded.", id=job_id), "success")
        else:
            flash(_("Job %(id)s is no longer among the failed jobs.", id=job_id), "error")
    return redirect(url_for("ops.index"))


@bp.route("/outbox/<int:message_id>/retry", methods=["POST"])
@roles_required(Role.ADMIN)
def retry_outbox(message_id: int) -> Response:
    """Give a failed outbox row a fresh start; the relay after this request hands it over."""
    if records.retry_outbox(message_id):
        outbox.relay_soon(message_id)  # the after-request relay takes it at once
        db.session.commit()
        flash(_("Outbox row %(id)d will be handed over again.", id=message_id), "success")
    else:
        db.session.rollback()
        flash(_("Outbox row %(id)d is not failed (any more).", id=message_id), "error")
    return redirect(url_for("ops.index"))
