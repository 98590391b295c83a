"""回访 (callbacks): which residents are called back about a result, and what the call found.

A task is opened by a listener of the state machine (`on_event`, registered by
`create_app`), in the transaction of the event that calls for it:

- a 不满意 rating, or a redo asked for after choosing 不满意 (`reopen` with
  `unsatisfied`): at once, and the community's dispatchers and supervisors are told;
- a ticket closed without rating (`auto_close`): the sweep closes a result nobody rated
  3 working days after it, so the task is opened with that closing, exactly once, with
  no scan of its own;
- the result of a request entered for a resident who came by walk-in, phone or service
  hall (`STAFF_ENTRY_CHANNELS`), when it is resolved: they often have no smartphone to
  rate with, so the call asks for their rating;
- a share of the satisfied ratings (`CALLBACK_SAMPLE_PERCENT`, 10 % by default),
  chosen by a hash of the ticket's id, so that the same tickets are chosen every time.

One task per ticket, reason and round of work (the reopen count of the result judged):
the insert skips a task that exists, so a retried event or two requests at once make
one. A not-rated, walk-in or sampled result already being called about this round
gets no second task; a 不满意 always gets its own.

Each task is due 2 working days after it was opened (services/workdays.py). Dispatchers,
supervisors and admins work the tasks of tickets in their scope (services/scope.py):
reveal the phone (logged, purpose "callback"), call, and record the outcome with
`record_outcome` — not reached (tried again, and after 3 tries the task fails as
unreachable), or reached: solved or not, and when not, 重办 (`redo`, a transition of
the state machine) to the same or another handler; the rating the resident gives on the
phone, which is recorded on the ticket as the resident's own (`callback_rate`) when the
result had none; and a note. Every try is a line on the ticket's timeline. The caller
commits.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, Select, and_, case, false, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.exc import StaleDataError

from ticketing.extensions import db
from ticketing.models import (
    STAFF_ENTRY_CHANNELS,
    CallbackReason,
    CallbackState,
    CallbackTask,
    Channel,
    Rating,
    RevealLog,
    Role,
    Status,
    Ticket,
    TicketEvent,
    User,
)
from ticketing.services import notify, privacy, scope
from ticketing.services.errors import Conflict, IllegalTransition, InvalidInput, NotAllowed
from ticketing.services.lifecycle import MAX_NOTE_LENGTH, Actor, perform
from ticketing.services.ticket_lists import page_span
from ticketing.services.workdays import WorkCalendar, load_calendar

DUE_AFTER = timedelta(days=2)  # working days (services/workdays.py)
MAX_ATTEMPTS = 3
CALLER_ROLES = (Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN)
PER_PAGE = 50
# The queue's views, in the order they are shown.
VIEWS = ("open", "overdue", "done", "failed", "all")
RATEABLE = (Status.RESOLVED, Status.CLOSED)


# --- Opening tasks ------------------------------------------------------------------


def sampled(ticket_id: int, percent: int) -> bool:
    """Whether a satisfied ticket is among the `percent` % called to check the rating: the
    same answer for the same ticket every time (a hash of its id, not a die)."""
    digest = hashlib.sha256(f"minhu-callback-sample:{ticket_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < percent


def reason_for(ticket: Ticket, event: TicketEvent, sample_percent: int) -> str | None:
    """The reason this event calls for a 回访, or None."""
    detail = event.detail or {}
    if ticket.channel == Channel.PATROL:
        return None  # a grid worker's own report: there is no resident to call
    if event.action == "rate_merged" and detail.get("rating") == Rating.UNSATISFIED:
        return CallbackReason.UNSATISFIED  # the resident of a merged ticket, on their own ticket
    if event.action == "rate":
        if detail.get("rating") == Rating.UNSATISFIED:
            return CallbackReason.UNSATISFIED
        return CallbackReason.SAMPLE if sampled(ticket.id, sample_percent) else None
    if event.action == "reopen" and detail.get("unsatisfied"):
        return CallbackReason.UNSATISFIED
    if event.action == "auto_close":
        return CallbackReason.NOT_RATED
    if event.action == "resolve" and ticket.channel in STAFF_ENTRY_CHANNELS:
        return CallbackReason.STAFF_ENTRY
    return None


def work_round(ticket: Ticket, event: TicketEvent) -> int:
    """Which result of the ticket the event judges: its reopen count, before a reopening."""
    return ticket.reopen_count - 1 if event.action == "reopen" else ticket.reopen_count


def on_event(ticket: Ticket, event: TicketEvent) -> None:
    """Open the 回访 task an event calls for (a listener of the state machine)."""
    reason = reason_for(ticket, event, int(current_app.config["CALLBACK_SAMPLE_PERCENT"]))
    if reason is None:
        return
    calendar = load_calendar(ZoneInfo(current_app.config["TIMEZONE"]))
    task = open_task(ticket, reason, work_round(ticket, event), event.at, calendar)
    if task is not None and reason == CallbackReason.UNSATISFIED:
        staff = notify.dispatchers_of(ticket) + notify.supervisors_of(ticket, 1)
        notify.notify_staff("callback", ticket, staff, f"callback:{task.id}", event.at, note=event.note)


def open_task(ticket: Ticket, reason: str, round_: int, now: datetime,
              calendar: WorkCalendar) -> CallbackTask | None:
    """Insert the task unless the ticket has one for this reason and round (or, but for
    不满意, any task this round); the new task, or None."""
    if reason != CallbackReason.UNSATISFIED and db.session.scalar(
            select(CallbackTask.id).where(CallbackTask.ticket_id == ticket.id,
                                          CallbackTask.work_round == round_).limit(1)) is not None:
        return None
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (insert(CallbackTask.__table__)
                 .values(ticket_id=ticket.id, reason=str(reason), work_round=round_, state=CallbackState.OPEN,
                         version=1, created_at=now, due_at=calendar.add(now, DUE_AFTER), attempts=0,
                         attempt_log=[], rating_recorded=False, redone=False, note="")
                 .on_conflict_do_nothing(index_elements=["ticket_id", "reason", "work_round"])
                 .returning(CallbackTask.__table__.c.id))
    task_id = db.session.execute(statement).scalar()
    return db.session.get(CallbackTask, task_id) if task_id is not None else None


def promised(ticket: Ticket) -> CallbackTask | None:
    """The open 回访 a resident who said 不满意 is waiting for (their page says when)."""
    return db.session.scalar(
        select(CallbackTask).where(CallbackTask.ticket_id == ticket.id, CallbackTask.state == CallbackState.OPEN,
                                   CallbackTask.reason == CallbackReason.UNSATISFIED)
        .order_by(CallbackTask.id.desc()).limit(1))


# --- Who works them, and the queue --------------------------------------------------


def may_call(user: User, ticket: Ticket) -> bool:
    """Dispatchers, supervisors and admins with the ticket in scope."""
    return user.role in CALLER_ROLES and scope.in_scope(user, ticket)


def task_scope(user: User) -> ColumnElement[bool]:
    """A WHERE clause (on a query joined to Ticket) for the tasks `user` works."""
    return scope.ticket_scope(user) if user.role in CALLER_ROLES else false()


def of_ticket(user: User, ticket: Ticket) -> list[CallbackTask]:
    """The ticket's tasks, oldest first, for someone who works them (else none)."""
    if not may_call(user, ticket):
        return []
    return list(db.session.scalars(
        select(CallbackTask).where(CallbackTask.ticket_id == ticket.id).order_by(CallbackTask.id)))


def find(user: User, task_id: int) -> CallbackTask | None:
    """The task if `user` works it; out of scope is not found."""
    return db.session.scalar(
        select(CallbackTask).join(Ticket, CallbackTask.ticket_id == Ticket.id)
        .where(CallbackTask.id == task_id, task_scope(user)))


def view_condition(view: str, now: datetime) -> ColumnElement[bool]:
    """The WHERE clause of a view of the queue."""
    if view in ("open", "overdue"):
        opened = CallbackTask.state == CallbackState.OPEN
        return and_(opened, CallbackTask.due_at < now) if view == "overdue" else opened
    if view in ("done", "failed"):
        return CallbackTask.state == view
    return CallbackTask.id.is_not(None)


def counts(user: User, now: datetime) -> dict[str, int]:
    """How many tasks each view holds, in one query."""
    columns = [func.coalesce(func.sum(case((view_condition(view, now), 1), else_=0)), 0).label(view)
               for view in VIEWS]
    row = db.session.execute(select(*columns).select_from(CallbackTask)
                             .join(Ticket, CallbackTask.ticket_id == Ticket.id).where(task_scope(user))).one()
    return {view: int(row._mapping[view]) for view in VIEWS}


def open_tasks(kind: str, place: Any) -> Select[Any]:
    """The ids of the open tasks of a caller's scope (scope.coordinator_scope: every
    caller is a coordinator); `place` an id or a bound parameter. The navigation counts
    them (services/navigation.py)."""
    return (select(CallbackTask.id).join(Ticket, CallbackTask.ticket_id == Ticket.id)
            .where(CallbackTask.state == CallbackState.OPEN, scope.coordinated(kind, place)))


def with_ticket() -> list[Any]:
    """What a line of the queue shows of the ticket, loaded with it."""
    return [joinedload(CallbackTask.ticket).options(
        joinedload(Ticket.category), joinedload(Ticket.community), joinedload(Ticket.complex),
        joinedload(Ticket.building), joinedload(Ticket.assignee), joinedload(Ticket.team),
        joinedload(Ticket.company))]


@dataclass
class CallbackPage:
    """One page of one view of the queue, with every view's count."""

    view: str
    tasks: list[CallbackTask]
    counts: dict[str, int]
    page: int
    pages: int


def queue(user: User, view: str, page: int, now: datetime, per_page: int = PER_PAGE) -> CallbackPage:
    """One page of `view` among the tasks `user` works: open ones soonest due first, the
    others latest first."""
    view = view if view in VIEWS else "open"
    totals = counts(user, now)
    page, pages, offset = page_span(totals[view], page, per_page)
    order = ([CallbackTask.due_at, CallbackTask.id] if view in ("open", "overdue")
             else [CallbackTask.id.desc()])
    tasks = list(db.session.scalars(
        select(CallbackTask).join(Ticket, CallbackTask.ticket_id == Ticket.id)
        .where(task_scope(user), view_condition(view, now)).options(*with_ticket())
        .order_by(*order).limit(per_page).offset(offset)).unique()) if totals[view] else []
    return CallbackPage(view, tasks, totals, page, pages)


def reveal(user: User, task: CallbackTask, now: datetime, remote_addr: str = "") -> RevealLog:
    """Log that the caller saw the resident's phone to call them (purpose "callback")."""
    if not may_call(user, task.ticket) or not privacy.may_reveal(user, task.ticket):
        raise NotAllowed(_l("You may not see this resident's details."))
    return privacy.record_reveal(user, task.ticket, now, "callback", remote_addr)


# --- Recording the outcome ----------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What the caller records of one try. `redo` holds the dispatch parameters of the
    handler to redo it (services/handlers.py `parse_handler`), or None."""

    reached: bool
    solved: bool | None = None
    rating: str | None = None
    note: str = ""
    redo: dict[str, Any] | None = None


@dataclass
class Recorded:
    """What `record_outcome` did."""

    task: CallbackTask
    replayed: bool = False  # the same idempotency key was recorded before: nothing done now
    events: list[TicketEvent] = field(default_factory=list)


def check_outcome(outcome: Outcome) -> None:
    """Raise `InvalidInput` for an outcome that does not hang together."""
    if len(outcome.note) > MAX_NOTE_LENGTH:
        raise InvalidInput(_l("Keep it under %(n)d characters.", n=MAX_NOTE_LENGTH), field="note")
    if outcome.rating is not None and outcome.rating not in {r.value for r in Rating}:
        raise InvalidInput(_l("Choose how satisfied the resident is."), field="rating")
    if not outcome.reached:
        for name in ("solved", "rating", "redo"):
            if getattr(outcome, name) is not None:
                raise InvalidInput(_l("Only for a resident who was reached."), field=name)
        return
    if outcome.solved is None:
        raise InvalidInput(_l("Say whether the problem is solved."), field="solved")
    if outcome.solved and outcome.redo is not None:
        raise InvalidInput(_l("A solved problem is not redone."), field="redo")
    if not outcome.solved and not outcome.note.strip():
        raise InvalidInput(_l("Say what is still wrong."), field="note")


def record_outcome(task: CallbackTask, user: User, outcome: Outcome, now: datetime, calendar: WorkCalendar,
                   version: int | None = None, key: str | None = None) -> Recorded:
    """Record one try at calling the resident; the caller commits.

    `version` is the task's version as the caller read it (a changed task is a
    `Conflict`); `key`, a client's idempotency key: a try recorded with it before is
    not recorded again (`Recorded.replayed`). Raises `NotAllowed` for a user who does
    not work the task, `IllegalTransition` for a finished task or a redo the ticket's
    state does not allow, `InvalidInput` for an outcome that does not hang together.
    On any error the session is rolled back.
    """
    if not may_call(user, task.ticket):
        raise NotAllowed(_l("You may not work this callback."))
    if key is not None and any(entry.get("key") == key and entry.get("by") == user.id
                               for entry in task.attempt_log or []):
        return Recorded(task, replayed=True)
    if version is not None and version != task.version:
        raise Conflict(_l("Someone else recorded this callback just now. Reload and try again."))
    if not task.is_open:
        raise IllegalTransition(_l("This callback is already finished."))
    check_outcome(outcome)
    note = outcome.note.strip()
    state = state_after(task, outcome)
    try:
        events = [_timeline_line(task, user, outcome, note, now, state)]
        events += _act_on_ticket(task, user, outcome, note, now, calendar)
        _log_try(task, user, outcome, note, now, key, state)
        db.session.flush()
    except StaleDataError:
        db.session.rollback()
        raise Conflict(_l("Someone else recorded this callback just now. Reload and try again.")) from None
    except Exception:
        db.session.rollback()
        raise
    return Recorded(task, events=events)


def _act_on_ticket(task: CallbackTask, user: User, outcome: Outcome, note: str, now: datetime,
                   calendar: WorkCalendar) -> list[TicketEvent]:
    """The transitions the outcome calls for: 重办, or the resident's rating."""
    ticket, actor = task.ticket, Actor.staff(user)
    if outcome.redo is not None:
        task.redone = True
        return [perform(ticket, "redo", actor, now, calendar, note=note, callback_id=task.id, **outcome.redo)]
    if outcome.rating is not None and ticket.rating is None and ticket.status in RATEABLE:
        task.rating_recorded = True
        return [perform(ticket, "callback_rate", actor, now, calendar, rating=outcome.rating, callback_id=task.id)]
    return []


def state_after(task: CallbackTask, outcome: Outcome) -> str:
    """Done when the resident was reached; failed after the last try that did not reach them."""
    if outcome.reached:
        return CallbackState.DONE
    return CallbackState.FAILED if task.attempts + 1 >= MAX_ATTEMPTS else CallbackState.OPEN


def _log_try(task: CallbackTask, user: User, outcome: Outcome, note: str, now: datetime, key: str | None,
             state: str) -> None:
    """Count the try and, when it ends the task, the outcome."""
    task.attempts += 1
    task.last_attempt_at = now
    entry: dict[str, Any] = {"at": now.isoformat(), "by": user.id, "reached": outcome.reached, "note": note}
    if key is not None:
        entry["key"] = key
    task.attempt_log = [*(task.attempt_log or []), entry]
    task.state = state
    if state == CallbackState.OPEN:
        return
    task.reached = outcome.reached
    task.solved, task.rating = outcome.solved, outcome.rating
    task.note, task.finished_at, task.finished_by_id = note, now, user.id


def _timeline_line(task: CallbackTask, user: User, outcome: Outcome, note: str, now: datetime,
                   state: str) -> TicketEvent:
    """The try on the ticket's timeline, for staff; it changes nothing of the ticket (a
    redo or a rating that follows is a transition of its own, after it)."""
    ticket = task.ticket
    event = TicketEvent(
        ticket=ticket, at=now, actor_kind="staff", actor_id=user.id, action="callback",
        from_status=ticket.status, to_status=ticket.status, note=note, public=False,
        detail={"callback_id": task.id, "reason": task.reason, "attempt": task.attempts + 1,
                "reached": outcome.reached, "solved": outcome.solved, "rating": outcome.rating,
                "state": state},
    )
    db.session.add(event)
    return event
