"""Holds (挂起) with an expected date, and the reminder on that date.

A handler who puts a ticket on hold says what is awaited (the note) and until when:
a local date, today at the earliest and at most `MAX_HOLD_DAYS` ahead (a month is
as far as a promise to a resident reaches; a longer wait is a case for escalating).
On that date the handler gets a reminder in the inbox — once per hold: the hold
clears the claim, and `remind_due` claims it with a conditional UPDATE, so two
scheduler runs or a retry remind once. The scheduler runs it hourly in the working
day (workers/scheduler.py), so a hold until today still reminds today.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update

from ticketing.extensions import db
from ticketing.models import Status, Ticket
from ticketing.services import notify
from ticketing.services.errors import InvalidInput

MAX_HOLD_DAYS = 30


def latest_until(now: datetime, tz: tzinfo) -> date:
    """The latest expected date a hold may give at `now`."""
    return now.astimezone(tz).date() + timedelta(days=MAX_HOLD_DAYS)


def expected_by(until: Any, now: datetime, tz: tzinfo) -> date:
    """The hold's expected date, checked: required, not before today, at most 30 days ahead."""
    if isinstance(until, datetime) or not isinstance(until, date):
        raise InvalidInput(_l("Give the date you expect it by."), field="until")
    today = now.astimezone(tz).date()
    if until < today:
        raise InvalidInput(_l("The expected date cannot be in the past."), field="until")
    if until > latest_until(now, tz):
        raise InvalidInput(_l("Hold for at most %(n)d days; escalate a longer wait.", n=MAX_HOLD_DAYS),
                           field="until")
    return until


def remind_due(now: datetime, tz: tzinfo) -> int:
    """Remind the handlers of the holds whose expected date has come; how many. The caller commits.

    The claim (status on hold, date come, not reminded during this hold) is one UPDATE
    that leaves the ticket's version alone, as the SLA sweep's claims do (services/sweep.py):
    it is bookkeeping, not a change a handler must reload for.
    """
    today = now.astimezone(tz).date()
    claimed = db.session.scalars(
        update(Ticket)
        .where(Ticket.status == Status.ON_HOLD, Ticket.hold_until.is_not(None), Ticket.hold_until <= today,
               Ticket.hold_reminded_at.is_(None))
        .values(hold_reminded_at=now)
        .returning(Ticket.id)
        .execution_options(synchronize_session=False)
    ).all()
    if not claimed:
        return 0
    tickets = db.session.scalars(select(Ticket).where(Ticket.id.in_(claimed)).order_by(Ticket.id)
                                 .execution_options(populate_existing=True)).all()
    for ticket in tickets:
        held = ticket.held_at.isoformat(timespec="seconds") if ticket.held_at else "none"
        notify.notify_staff("hold_due", ticket, notify.handlers_of(ticket), f"hold:{ticket.id}:{held}", now,
                            note=ticket.hold_reason)
    return len(tickets)
