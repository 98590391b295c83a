"""Delivering the supervisors' morning brief (晨报): one inbox message each working day.

The scheduler runs `morning` at 08:00 local time (workers/scheduler.py); on a day the
working-day calendar says is not one (weekends, holidays; a 调休 Saturday is a working
day) it sends nothing. `flask brief send` runs `send` by hand, on any day.

Every active supervisor with a community or a street gets one message (kind "brief",
channel inbox) keyed per user and local day, so a second run the same day sends
nothing twice. The message holds the brief's few lines as they stood when it was
written; opening it leads to the brief page, composed afresh. A copy goes by SMS to
a supervisor whose account has a mobile number when the operator has configured a
template for it (`SMS_TEMPLATE_BRIEF`, docs/sms.md): staff accounts have no e-mail
address or WeChat openid, so SMS is the only other way to reach them today.

Each supervisor's brief is its own unit of work, committed on its own: a failure
composing one (logged) does not hold back the others, and `send` raises
`BriefsFailed` at the end so the job is retried; the retry skips those written.
"""
from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from flask import current_app
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select
from sqlalchemy.dialects import postgresql, sqlite

from ticketing.extensions import db
from ticketing.labels import locale_of
from ticketing.models import Notification, Role, User
from ticketing.queues import DEFAULT, DELIVER_NOTIFICATION
from ticketing.services import notify, outbox
from ticketing.services.brief import Brief, compose
from ticketing.services.brief_rules import GREEN, RATE_LABELS, RED, YELLOW
from ticketing.services.classify import phone_in_text
from ticketing.services.ledger_report import RATES
from ticketing.services.workdays import WorkCalendar

log = logging.getLogger(__name__)

KIND = "brief"
PAGE_PATH = "/brief/"  # the brief blueprint's page, for the SMS link

SUBJECT = _l("Morning brief %(day)s: %(red)d red, %(yellow)d yellow, %(green)d green grids")
LEDGER_LINE = _l("Yesterday (%(day)s): %(new)d new, %(resolved)d resolved; %(rates)s")
NOT_COMPILED = _l("Yesterday's ledgers (%(day)s) are not compiled yet.")
RATE_SHOWN = _l("%(rate)s %(percent)s (n=%(n)d)")
RATE_FEW = _l("%(rate)s: too few tickets (n=%(n)d)")
TODAY_LINE = _l("Today: %(due)d due later today, %(overdue)d overdue, %(supervised)d under supervision (督办), "
                "%(callbacks)d callbacks due (%(late)d late).")
RECURRING_LINE = _l("Recurring problems new or growing: %(hotspots)d; governance tasks past their deadline: "
                    "%(tasks)d.")


class BriefsFailed(RuntimeError):
    """Some supervisors' briefs could not be written (the others were)."""

    def __init__(self, written: int, failed: list[int]) -> None:
        super().__init__(f"{written} briefs written; failed for user ids {failed} (see the log)")
        self.written, self.failed = written, failed


def dedupe_key(user_id: int, day: date) -> str:
    """One brief per supervisor and local day."""
    return f"brief:{day.isoformat()}:u{user_id}"


def recipients() -> list[int]:
    """The active supervisors with a community or a street, by id."""
    return list(db.session.scalars(
        select(User.id).where(User.role == Role.SUPERVISOR, User.active.is_(True),
                              or_(User.community_id.is_not(None), User.street_id.is_not(None)))
        .order_by(User.id)))


def rate_text(brief: Brief, name: str) -> str:
    """"响应率 90.0%（n=20）", or "样本少" below the small-sample rule."""
    rate = brief.yesterday.rates[name]
    values = {"rate": RATE_LABELS[name], "percent": rate.percent, "n": rate.den}
    return str(RATE_SHOWN if brief.rate_shown(name) else RATE_FEW) % values


def summary(brief: Brief) -> tuple[str, list[str]]:
    """The message's subject and lines, in the current language."""
    colours = brief.colour_counts
    subject = str(SUBJECT) % {"day": brief.day.strftime("%m-%d"), "red": colours[RED],
                              "yellow": colours[YELLOW], "green": colours[GREEN]}
    day = brief.yesterday_day.strftime("%m-%d")
    counts = brief.yesterday.counts
    ledger = (str(LEDGER_LINE) % {"day": day, "new": counts["new"], "resolved": counts["resolved"],
                                  "rates": " · ".join(rate_text(brief, name) for name in RATES)}
              if brief.compiled else str(NOT_COMPILED) % {"day": day})
    today = str(TODAY_LINE) % {"due": brief.due_today.total, "overdue": brief.overdue.total,
                               "supervised": brief.supervised.total, "callbacks": brief.callbacks.total,
                               "late": brief.callbacks_late}
    recurring = str(RECURRING_LINE) % {"hotspots": brief.hotspots.total, "tasks": brief.overdue_tasks.total}
    return subject, [ledger, today, recurring]


def insert_message(values: dict[str, Any]) -> int | None:
    """Insert one notification unless its key exists (a run at the same moment); its id or None."""
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    table = Notification.__table__
    defaults = {"ticket_id": None, "address": "", "attempts": 0, "last_error": "", "params": None}
    statement = (insert(table).values({**defaults, **values})
                 .on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(table.c.id))
    return db.session.execute(statement).scalar()


def write_brief(user: User, brief: Brief, now: datetime) -> int:
    """Store the user's brief in their inbox, and its SMS copy where configured; 1 when
    written, 0 when it was there already. The caller commits."""
    key = dedupe_key(user.id, brief.day)
    locale = user.locale or notify.RESIDENT_LOCALE
    with force_locale(locale_of(locale)):
        subject, lines = summary(brief)
    written = insert_message({
        "dedupe_key": key, "kind": KIND, "channel": "inbox", "user_id": user.id, "locale": locale,
        "subject": subject, "body": "\n".join(lines), "status": "sent", "sender": "inbox",
        "created_at": now, "sent_at": now})
    if written is None:
        return 0
    mobile = phone_in_text(user.phone or "")
    if mobile and KIND in (current_app.config.get("SMS_TEMPLATES") or {}):
        colours = brief.colour_counts
        params = {"day": brief.day.strftime("%m-%d"), "red": str(colours[RED]), "yellow": str(colours[YELLOW]),
                  "overdue": str(brief.overdue.total), "supervised": str(brief.supervised.total),
                  "link": current_app.config["PUBLIC_URL"].rstrip("/") + PAGE_PATH}
        sms_id = insert_message({
            "dedupe_key": f"{key}:sms", "kind": KIND, "channel": "sms", "user_id": user.id, "address": mobile,
            "locale": locale, "subject": subject, "body": "\n".join(lines), "params": params,
            "status": "pending", "sender": "", "created_at": now})
        if sms_id is not None:
            outbox.emit(DELIVER_NOTIFICATION, sms_id, queue=DEFAULT)
    return 1


def send(day: date, now: datetime, calendar: WorkCalendar) -> int:
    """Write the brief of `day` for every supervisor who has none yet; how many were written.

    Commits after each supervisor. Raises `BriefsFailed` after the loop when some failed.
    """
    written, failed = 0, []
    for user_id in recipients():
        if db.session.scalar(select(Notification.id).where(
                Notification.dedupe_key == dedupe_key(user_id, day))) is not None:
            continue
        try:
            user = db.session.get_one(User, user_id)
            written += write_brief(user, compose(user, day, now, calendar), now)
            db.session.commit()
        except Exception:  # one supervisor's failure must not hold back the others'
            db.session.rollback()
            log.exception("the morning brief of user %s could not be written", user_id)
            failed.append(user_id)
    if failed:
        raise BriefsFailed(written, failed)
    return written


def morning(now: datetime, calendar: WorkCalendar) -> int | None:
    """The scheduled run: today's briefs on a working day; None (nothing sent) on any other."""
    today = now.astimezone(calendar.tz).date()
    if not calendar.is_workday(today):
        return None
    return send(today, now, calendar)
