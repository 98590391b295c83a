"""The SLA sweep: 75 % warnings, breaches, auto-closing; and the handlers' morning digest.

`sweep(now, calendar)` runs every minute (workers/scheduler.py) and by hand
(`flask sla sweep`). It selects ticket ids with SQL conditions in batches, never all
open tickets at once, and acts on each ticket in its own transaction.

Exactly once: a warning or a breach is claimed with a conditional UPDATE of
`Ticket.warned_for` / `Ticket.breached_for` (the deadline it was handled for) and
only the sweep whose UPDATE changed the row writes the notifications, in the same
transaction as the claim. Auto-closing goes through the state machine, whose
version check makes a racing resident's rating (or a second sweep) win cleanly. A
grid worker's own patrol report is closed by the first sweep after it is resolved:
there is no resident to confirm or rate it (services/patrol.py).

What a breach leads to: a missed accept-by takes the ticket from its late handler
(`expire`, which alerts the dispatchers) and asks the router for another; a missed
resolve-by climbs one rung of the ladder (`escalate`: 督办, the supervisors of the
new level are told). Both go through the state machine in the claim's transaction.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, CursorResult, Select, insert, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, joinedload

from ticketing.extensions import db
from ticketing.labels import format_deadline, locale_of
from ticketing.models import Channel, Notification, SlaTier, Status, Ticket
from ticketing.queues import HIGH, ROUTE_TICKET
from ticketing.services import notify, outbox, sla
from ticketing.services.errors import Conflict, IllegalTransition
from ticketing.services.lifecycle import MAX_LEVEL, Actor, perform
from ticketing.services.workdays import DAY, WorkCalendar, load_calendar

log = logging.getLogger(__name__)

BATCH = 500
# Resolved tickets with no answer from the resident are closed after 3 working days.
AUTO_CLOSE_AFTER = timedelta(days=3)

# The notes the sweep writes on a ticket's timeline, in the app's default language.
EXPIRED_NOTE = _l("Not accepted by %(deadline)s; sent back for routing to someone else.")
ESCALATED_NOTE = _l("Resolve-by %(deadline)s passed.")
PATROL_CLOSED_NOTE = _l("A grid worker's own patrol report: closed when resolved, nobody is asked to rate it.")


@dataclass
class SweepResult:
    """What one sweep did."""

    warned: int = 0
    accept_breached: int = 0
    resolve_breached: int = 0
    expired: int = 0
    escalated: int = 0
    auto_closed: int = 0
    conflicts: int = 0
    errors: int = 0

    def __str__(self) -> str:
        return ", ".join(f"{f.name.replace('_', ' ')} {getattr(self, f.name)}" for f in fields(self))


@dataclass(frozen=True)
class Phase:
    """A clock a ticket runs against: accept-by while dispatched, resolve-by while accepted."""

    name: str
    status: Status
    due: InstrumentedAttribute[datetime | None]
    limit: str  # the SlaTier attribute holding its length in minutes


# On hold is absent on purpose: the resolve clock is paused, so no warning and no breach.
PHASES = (
    Phase("accept", Status.DISPATCHED, Ticket.accept_due_at, "accept_minutes"),
    Phase("resolve", Status.ACCEPTED, Ticket.resolve_due_at, "resolve_minutes"),
)


def app_calendar() -> WorkCalendar:
    """The working-day calendar in this app's time zone, with the admins' overrides."""
    return load_calendar(ZoneInfo(current_app.config["TIMEZONE"]))


def sweep(now: datetime, calendar: WorkCalendar, batch: int = BATCH) -> SweepResult:
    """One pass: breaches, then 75 % warnings, then auto-closing of resolved tickets."""
    result = SweepResult()
    for phase in PHASES:
        breach_phase(phase, now, calendar, result, batch)
        warn_phase(phase, now, calendar, result, batch)
    auto_close(now, calendar, result, batch)
    return result


# --- selection ----------------------------------------------------------------


def id_batches(query: Select[Any], batch: int) -> Iterator[Sequence[Any]]:
    """Rows of `query` (whose first column is Ticket.id) in id order, `batch` at a time."""
    last = 0
    while True:
        rows = db.session.execute(query.where(Ticket.id > last).order_by(Ticket.id).limit(batch)).all()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def unclaimed(column: InstrumentedAttribute[datetime | None], due: Any) -> ColumnElement[bool]:
    """Not yet handled for this deadline (a new deadline is a new claim)."""
    return or_(column.is_(None), column != due)


def claim(ticket_id: int, phase: Phase, deadline: datetime,
          column: InstrumentedAttribute[datetime | None], **also: Any) -> bool:
    """Mark the ticket handled for `deadline`; True only for the one sweep that did.

    The WHERE re-checks state and deadline, so a handler who acted in between wins.
    This is a plain UPDATE that leaves `Ticket.version` alone on purpose: the claim
    is the sweep's bookkeeping, not a change a handler must reload for, so a handler
    acting at the same moment does not get a spurious Conflict; and the ticket the
    sweep loaded stays current for the escalation hooks that call perform().
    """
    result = db.session.execute(
        update(Ticket)
        .where(Ticket.id == ticket_id, Ticket.status == phase.status, phase.due == deadline,
               unclaimed(column, deadline))
        .values({column.key: deadline, **also})
        .execution_options(synchronize_session=False)
    )
    return cast(CursorResult[Any], result).rowcount == 1


def deadline_key(deadline: datetime) -> str:
    """A deadline as it appears in dedupe keys."""
    return deadline.astimezone(UTC).isoformat(timespec="seconds")


def act_once(result: SweepResult, work: Callable[..., Any], ticket_id: int, *args: Any) -> Any:
    """Run `work(ticket_id, *args)` in its own transaction; a failure skips only that ticket.

    A `Conflict` or `IllegalTransition` means someone changed the ticket first: theirs
    stands, the claim is rolled back with the rest, the next sweep looks afresh.
    """
    try:
        done = work(ticket_id, *args)
        db.session.commit()
        return done
    except (Conflict, IllegalTransition):
        db.session.rollback()
        result.conflicts += 1
        return None
    except Exception:
        db.session.rollback()
        result.errors += 1
        log.exception("SLA sweep: ticket %s failed; the next sweep tries again", ticket_id)
        return None


# --- breaches -----------------------------------------------------------------


def breach_phase(phase: Phase, now: datetime, calendar: WorkCalendar,
                 result: SweepResult, batch: int) -> None:
    """Act once per missed deadline: re-route missed accept-bys, escalate missed resolve-bys."""
    query = select(Ticket.id, phase.due).where(
        Ticket.status == phase.status, phase.due < now, unclaimed(Ticket.breached_for, phase.due))
    for rows in id_batches(query, batch):
        for ticket_id, deadline in rows:
            outcome = act_once(result, breach_one, ticket_id, phase, deadline, now, calendar)
            if not outcome:
                continue
            if phase.name == "accept":
                result.accept_breached += 1
            else:
                result.resolve_breached += 1
            result.expired += outcome == "expired"
            result.escalated += outcome == "escalated"


def breach_one(ticket_id: int, phase: Phase, deadline: datetime, now: datetime,
               calendar: WorkCalendar) -> str:
    """Claim one breach and act on it; returns what was done, "" when already handled."""
    also = {"supervised": True} if phase.name == "resolve" else {}
    if not claim(ticket_id, phase, deadline, Ticket.breached_for, **also):
        return ""
    ticket = db.session.get(Ticket, ticket_id, populate_existing=True)
    assert ticket is not None
    recipients = {u.id: u for u in notify.handlers_of(ticket) + notify.dispatchers_of(ticket)}
    notify.notify_staff("breach", ticket, recipients.values(),
                        key=f"breach:{ticket.id}:{deadline_key(deadline)}", now=now)
    if phase.name == "accept":
        return after_missed_accept(ticket, deadline, now, calendar)
    return after_missed_resolve(ticket, deadline, now, calendar)


def system_note(message: Any, deadline: datetime, calendar: WorkCalendar) -> str:
    """A note of the sweep's, in the app's default language (it is stored, not shown per user)."""
    with force_locale(locale_of(current_app.config["BABEL_DEFAULT_LOCALE"])):
        return str(message) % {"deadline": format_deadline(deadline, calendar.tz, "%m-%d")}


def after_missed_accept(ticket: Ticket, deadline: datetime, now: datetime,
                        calendar: WorkCalendar) -> str:
    """Take the ticket from whoever let it lapse and ask the router for someone else.

    Runs in the claim's transaction; the ticket is current (the claim leaves its version
    alone). `expire` records the late handler, whom the router excludes, and alerts
    the dispatchers.
    """
    perform(ticket, "expire", Actor.system(), now, calendar,
            note=system_note(EXPIRED_NOTE, deadline, calendar))
    outbox.emit(ROUTE_TICKET, ticket.id, queue=HIGH)
    return "expired"


def after_missed_resolve(ticket: Ticket, deadline: datetime, now: datetime,
                         calendar: WorkCalendar) -> str:
    """Raise the escalation level by one (督办), which alerts the supervisors of the new level.

    Runs in the claim's transaction. Not when someone escalated it after this deadline
    passed (one lateness, one rung), nor past the top, where the street hears of it.
    """
    if ticket.escalated_at is not None and ticket.escalated_at >= deadline:
        return "breached"
    if ticket.escalation_level >= MAX_LEVEL:
        notify.notify_staff("breach", ticket, notify.supervisors_of(ticket, ticket.escalation_level),
                            key=f"breach:{ticket.id}:{deadline_key(deadline)}", now=now)
        return "breached"
    perform(ticket, "escalate", Actor.system(), now, calendar,
            note=system_note(ESCALATED_NOTE, deadline, calendar))
    return "escalated"


# --- 75 % warnings ------------------------------------------------------------


def warning_horizon(tier: SlaTier, minutes: int, now: datetime, calendar: WorkCalendar) -> datetime:
    """A generous latest deadline that can be within its last quarter at `now`.

    On a clock tier it is exact. On a working-day tier the quarter is working time,
    which may stretch over a weekend or a holiday: any deadline after the start of
    the first working day that follows `now + quarter` has more than a quarter left.
    """
    quarter = timedelta(minutes=minutes) * sla.WARN_WHEN_LEFT
    if not tier.working_days:
        return now + quarter
    end = calendar.add(now, quarter).astimezone(calendar.tz)
    following = calendar.next_workday(end.date() + DAY)
    return datetime.combine(following, time(), calendar.tz).astimezone(UTC)


def warn_phase(phase: Phase, now: datetime, calendar: WorkCalendar,
               result: SweepResult, batch: int) -> None:
    """Warn the handlers of tickets in the last quarter of this clock, once per deadline."""
    for tier in db.session.scalars(select(SlaTier).order_by(SlaTier.id)).all():
        horizon = warning_horizon(tier, getattr(tier, phase.limit), now, calendar)
        query = select(Ticket.id).where(
            Ticket.status == phase.status, Ticket.tier_id == tier.id,
            phase.due >= now, phase.due <= horizon, unclaimed(Ticket.warned_for, phase.due))
        for rows in id_batches(query, batch):
            warn_batch(confirmed_due_soon([row[0] for row in rows], now, calendar), phase, now, result)


def warn_batch(due: list[tuple[int, datetime]], phase: Phase, now: datetime, result: SweepResult) -> None:
    """Claim a batch of warnings with one UPDATE and write their messages with one INSERT.

    A warning changes nothing a handler works on, so a batch shares one transaction
    (one statement and one commit per ticket made a backlog of 10,000 warnings take a
    minute). The UPDATE re-checks each ticket's state and deadline and RETURNs the ones
    it claimed, so two sweeps at once, or a handler acting meanwhile, still warn once.
    """
    ids = [ticket_id for ticket_id, _deadline in due]
    if not ids:
        return
    claimed = db.session.scalars(
        update(Ticket)
        .where(Ticket.id.in_(ids), Ticket.status == phase.status, phase.due.is_not(None),
               unclaimed(Ticket.warned_for, phase.due))
        .values({Ticket.warned_for.key: phase.due})
        .returning(Ticket.id)
        .execution_options(synchronize_session=False)
    ).all()
    if not claimed:
        db.session.commit()
        return
    tickets = db.session.scalars(
        select(Ticket).where(Ticket.id.in_(claimed))
        .options(joinedload(Ticket.assignee), joinedload(Ticket.category))
        .execution_options(populate_existing=True)
    ).unique().all()
    rows = []
    for ticket in tickets:
        deadline = getattr(ticket, phase.due.key)
        rows += notify.inbox_rows("warning", ticket, notify.handlers_of(ticket),
                                  f"warn:{ticket.id}:{deadline_key(deadline)}", now)
    if rows:
        db.session.execute(insert(Notification), rows)
    db.session.commit()
    result.warned += len(tickets)


def confirmed_due_soon(ids: list[int], now: datetime, calendar: WorkCalendar) -> list[tuple[int, datetime]]:
    """The SQL pre-filter is generous; `sla.due_soon` decides, in the tier's kind of time."""
    tickets = db.session.scalars(select(Ticket).where(Ticket.id.in_(ids)).order_by(Ticket.id)).all()
    return [(t.id, t.current_deadline) for t in tickets
            if sla.due_soon(t, now, calendar) and t.current_deadline is not None]


# --- auto-close ---------------------------------------------------------------


def auto_close(now: datetime, calendar: WorkCalendar, result: SweepResult, batch: int) -> None:
    """Close resolved tickets the resident left unanswered for 3 working days ("not rated"),
    and a grid worker's own patrol reports at once: nobody is there to rate them."""
    # Working time never runs faster than the clock, so 3 calendar days is a safe pre-filter.
    query = select(Ticket.id).where(Ticket.status == Status.RESOLVED,
                                    or_(Ticket.resolved_at <= now - AUTO_CLOSE_AFTER,
                                        Ticket.channel == Channel.PATROL))
    for rows in id_batches(query, batch):
        for (ticket_id,) in rows:
            ticket = db.session.get(Ticket, ticket_id, populate_existing=True)
            if ticket is None or ticket.status != Status.RESOLVED or ticket.resolved_at is None:
                continue
            patrol = ticket.channel == Channel.PATROL
            if not patrol and calendar.add(ticket.resolved_at, AUTO_CLOSE_AFTER) > now:
                continue
            note = system_note(PATROL_CLOSED_NOTE, ticket.resolved_at, calendar) if patrol else ""
            try:
                perform(ticket, "auto_close", Actor.system(), now, calendar, note=note)
                db.session.commit()
                result.auto_closed += 1
            except (Conflict, IllegalTransition):
                # The resident rated or reopened it at this moment, or another sweep
                # closed it: theirs stands (perform() already rolled back).
                result.conflicts += 1
            except Exception:
                db.session.rollback()
                result.errors += 1
                log.exception("SLA sweep: auto-closing ticket %s failed", ticket_id)
