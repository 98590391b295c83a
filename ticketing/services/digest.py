"""The handlers' morning digest: one inbox message each, listing what is due today."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ticketing.extensions import db
from ticketing.labels import format_deadline, locale_of, localized_name
from ticketing.models import Category, Notification, Ticket, User
from ticketing.services import notify
from ticketing.services.sweep import BATCH, PHASES, id_batches
from ticketing.services.workdays import DAY, WorkCalendar

DIGEST_MAX_LINES = 30

DIGEST_SUBJECT = _l("Due today: %(count)d tickets")
DIGEST_DUE = _l("%(number)s (%(category)s): due by %(time)s")
DIGEST_OVERDUE = _l("%(number)s (%(category)s): overdue since %(time)s")
DIGEST_MORE = _l("… and %(count)d more")


@dataclass(frozen=True)
class DueLine:
    """One ticket in a digest."""

    deadline: datetime
    number: str
    category_id: int


def digest(now: datetime, calendar: WorkCalendar, batch: int = BATCH) -> int:
    """Put one message per handler listing what is due by the end of today (and overdue).

    Keyed per user and local day, so a second run the same day sends nothing new.
    Returns the number of messages written.
    """
    today = now.astimezone(calendar.tz).date()
    end_of_day = datetime.combine(today + DAY, time(), calendar.tz)
    lines: dict[int, list[DueLine]] = {}
    members: dict[tuple[str, int], list[int]] = {}
    for phase in PHASES:
        query = select(Ticket.id, phase.due, Ticket.number, Ticket.category_id, Ticket.assignee_id,
                       Ticket.team_id, Ticket.company_id).where(
            Ticket.status == phase.status, phase.due < end_of_day)
        for rows in id_batches(query, batch):
            for _, deadline, number, category_id, assignee_id, team_id, company_id in rows:
                line = DueLine(deadline, number, category_id)
                for user_id in recipients(assignee_id, team_id, company_id, members):
                    lines.setdefault(user_id, []).append(line)
    categories = {c.id: c for c in db.session.scalars(select(Category))}
    written = 0
    for user_id, due in sorted(lines.items()):
        written += write_digest(user_id, sorted(due, key=lambda d: d.deadline), today, now,
                                calendar, categories)
    return written


def recipients(assignee_id: int | None, team_id: int | None, company_id: int | None,
               members: dict[tuple[str, int], list[int]]) -> list[int]:
    """Who a due ticket is listed for: its assignee, else its team's or company's members."""
    if assignee_id is not None:
        return [assignee_id]
    owner = ("team", team_id) if team_id is not None else ("company", company_id) if company_id else None
    if owner is None:
        return []
    if owner not in members:
        column = User.team_id if owner[0] == "team" else User.company_id
        members[owner] = list(db.session.scalars(
            select(User.id).where(column == owner[1], User.active.is_(True))))
    return members[owner]


def write_digest(user_id: int, due: list[DueLine], day: date, now: datetime,
                 calendar: WorkCalendar, categories: dict[int, Category]) -> int:
    """Store one user's digest unless today's exists; returns 1 when written."""
    key = f"digest:{day.isoformat()}:u{user_id}"
    if db.session.scalar(select(Notification.id).where(Notification.dedupe_key == key)) is not None:
        return 0
    user = db.session.get(User, user_id)
    if user is None or not user.active:
        return 0
    locale = user.locale or notify.RESIDENT_LOCALE
    with force_locale(locale_of(locale)):
        body = [str(DIGEST_OVERDUE if line.deadline < now else DIGEST_DUE) % {
            "number": line.number,
            "category": localized_name(categories[line.category_id]),
            "time": format_deadline(line.deadline, calendar.tz, "%m-%d"),
        } for line in due[:DIGEST_MAX_LINES]]
        if len(due) > DIGEST_MAX_LINES:
            body.append(str(DIGEST_MORE) % {"count": len(due) - DIGEST_MAX_LINES})
        subject = str(DIGEST_SUBJECT) % {"count": len(due)}
    db.session.add(Notification(
        dedupe_key=key, kind="digest", channel="inbox", ticket_id=None, user_id=user_id,
        locale=locale, subject=subject, body="\n".join(body), created_at=now,
        status="sent", sent_at=now, sender="inbox",
    ))
    try:
        db.session.commit()
    except IntegrityError:  # another run wrote today's digest a moment ago
        db.session.rollback()
        return 0
    return 1
