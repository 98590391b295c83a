"""The staff inbox: one's own messages, newest first; opening one marks it read.

Messages are written by `services/notify.py` on ticket events (assigned, returned,
rated, reopened, warnings, breaches); here they are only listed and marked read.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import ngettext
from flask_login import login_required
from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import joinedload
from werkzeug.wrappers import Response

from ticketing.extensions import db
from ticketing.models import Notification
from ticketing.services.area_export_jobs import DOWNLOAD_PATH as EXPORT_PATH
from ticketing.services.area_export_jobs import KIND as EXPORT_KIND
from ticketing.services.brief_send import KIND as BRIEF_KIND
from ticketing.services.navigation import counted, own_messages, unread_messages
from ticketing.services.ticket_lists import page_span
from ticketing.web import now, staff_user

bp = Blueprint("inbox", __name__)

PER_PAGE = 30


def unread_count(user_id: int) -> int:
    """How many of the user's messages are unread: one COUNT on (user_id, read_at).
    (The navigation's badge counts only up to 100: services/navigation.py.)"""
    return db.session.scalar(select(counted(unread_messages(user_id)))) or 0


@dataclass
class InboxPage:
    """One page of a user's inbox."""

    messages: list[Notification]
    page: int
    pages: int
    total: int
    unread: int


def load_page(user_id: int, page: int) -> InboxPage:
    """Page `page` (from 1) of the user's messages, newest first."""
    total = db.session.scalar(
        select(func.count()).select_from(Notification).where(own_messages(user_id))
    ) or 0
    page, pages, offset = page_span(total, page, PER_PAGE)
    messages = list(db.session.scalars(
        select(Notification).options(joinedload(Notification.ticket))
        .where(own_messages(user_id))
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(PER_PAGE).offset(offset)
    ))
    return InboxPage(messages, page, pages, total, unread_count(user_id))


def mark_read(user_id: int, message_id: int) -> Notification | None:
    """Mark one of the user's messages read (once); None when it is not theirs."""
    message = db.session.scalar(
        select(Notification).where(Notification.id == message_id, own_messages(user_id))
    )
    if message is None:
        return None
    # Conditional, so the first reading time stays when a message is opened again.
    db.session.execute(
        update(Notification)
        .where(Notification.id == message_id, Notification.read_at.is_(None))
        .values(read_at=now())
    )
    return message


def mark_all_read(user_id: int) -> int:
    """Mark every unread message of the user read; returns how many were."""
    result = db.session.execute(
        update(Notification)
        .where(own_messages(user_id), Notification.read_at.is_(None))
        .values(read_at=now())
    )
    return cast(CursorResult[Any], result).rowcount or 0


@bp.route("/")
@login_required
def index() -> str:
    """The user's messages, 30 to a page."""
    result = load_page(staff_user().id, request.args.get("page", 1, type=int))
    return render_template("inbox/index.html", inbox=result)


@bp.route("/<int:message_id>/open")
@login_required
def open_message(message_id: int) -> Response:
    """Mark a message read and go to its ticket (a morning brief: to the brief page; a
    big export: to its download).

    A GET, so that the message is a plain link: marking one's own message read
    is harmless and idempotent, and only the owner can do it.
    """
    message = mark_read(staff_user().id, message_id)
    if message is None:
        abort(404)
    db.session.commit()
    if message.kind == BRIEF_KIND:
        return redirect(url_for("brief.page"))  # the brief as it stands now, not as sent
    if message.kind == EXPORT_KIND:  # a big export: its download (the route checks who and when)
        link = (message.params or {}).get("link", "")
        return redirect(link if link.startswith(EXPORT_PATH) else url_for("inbox.index"))
    if message.ticket is None:
        return redirect(url_for("inbox.index"))
    return redirect(url_for("staff.detail", number=message.ticket.number))


@bp.route("/read-all", methods=["POST"])
@login_required
def read_all() -> Response:
    """Mark all of the user's messages read (CSRF-checked like every POST)."""
    count = mark_all_read(staff_user().id)
    db.session.commit()
    if count:
        flash(ngettext("%(num)d message marked as read.", "%(num)d messages marked as read.", count),
              "success")
    return redirect(url_for("inbox.index", page=request.form.get("page", 1, type=int)))
