"""The ticket state machine: the one table of transitions, and the one way to apply them.

Views, the API and jobs call `perform()`; nothing else sets `Ticket.status`. Each
transition names the states it leaves from, the state it goes to, and who may do it.
Every change writes a `TicketEvent` in the same transaction, and the ticket's
version column turns the UPDATE into a conditional one: of two people acting on one
ticket at once, exactly one wins and the other gets `Conflict`. What follows from an
event (notifications, the report-back to the county centre) is not done here: the
event is published to the listeners registered at start-up (services/events.py).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm.exc import StaleDataError

from ticketing.extensions import db
from ticketing.labels import STATUS_LABELS
from ticketing.models import (
    OPEN_STATUSES,
    Channel,
    Status,
    Ticket,
    TicketEvent,
    User,
)
from ticketing.services import effects, events, scope
from ticketing.services.effects import MAX_LEVEL, REOPEN_WINDOW, Context
from ticketing.services.errors import (
    Conflict,
    IllegalTransition,
    InvalidInput,
    NotAllowed,
)
from ticketing.services.workdays import WorkCalendar

__all__ = ["MAX_LEVEL", "MAX_NOTE_LENGTH", "REOPEN_WINDOW", "TRANSITIONS", "Actor", "Transition", "allowed", "check", "perform", "plan"]

MAX_NOTE_LENGTH = 2000


@dataclass(frozen=True)
class Actor:
    """Who is acting: a staff user, the ticket's resident, or the system."""

    kind: str
    user: User | None = None

    @classmethod
    def staff(cls, user: User) -> Actor:
        return cls("staff", user)

    @classmethod
    def resident(cls) -> Actor:
        """The requester, already proven by ticket number + phone or a signed link."""
        return cls("resident")

    @classmethod
    def system(cls) -> Actor:
        return cls("system")


Rule = Callable[[Actor, Ticket], bool]


def _staff(test: Callable[[User, Ticket], bool]) -> Rule:
    return lambda actor, ticket: actor.user is not None and test(actor.user, ticket)


by_dispatcher: Rule = _staff(scope.coordinates)
by_handler: Rule = _staff(scope.handles)
by_staff_involved: Rule = _staff(
    lambda user, ticket: scope.handles(user, ticket)
    or scope.coordinates(user, ticket)
    or scope.supervises(user, ticket)
)


def by_resident(actor: Actor, ticket: Ticket) -> bool:
    # A grid worker's own patrol report has no resident to confirm or rate it.
    return actor.kind == "resident" and ticket.channel != Channel.PATROL


def by_system(actor: Actor, ticket: Ticket) -> bool:
    return actor.kind == "system"


by_supervisor: Rule = _staff(scope.supervises)


def any_of(*rules: Rule) -> Rule:
    """A rule that passes when one of `rules` does."""
    return lambda actor, ticket: any(rule(actor, ticket) for rule in rules)




Effect = Callable[[Ticket, Context], None]


@dataclass(frozen=True)
class Transition:
    """One allowed change: from which states, to which state, by whom."""

    name: str
    sources: frozenset[str]
    target: str | None  # None keeps the state (notes)
    may: Rule
    label: Any
    note_required: bool = False
    public: bool = True
    effect: Effect | None = None


S = Status
OPEN_OR_RESOLVED = frozenset({S.SUBMITTED, S.DISPATCHED, S.ACCEPTED, S.ON_HOLD, S.RESOLVED})

TRANSITIONS: dict[str, Transition] = {
    t.name: t
    for t in (
        # The router (system), a dispatcher, or a supervisor taking a 督办 case in hand.
        Transition("dispatch", frozenset({S.SUBMITTED, S.DISPATCHED}), S.DISPATCHED,
                   any_of(by_dispatcher, by_supervisor, by_system), _l("Dispatch"), effect=effects.dispatch),
        Transition("reject", frozenset({S.SUBMITTED}), S.REJECTED,
                   by_dispatcher, _l("Reject"), note_required=True, effect=effects.reject),
        Transition("merge", frozenset({S.SUBMITTED, S.DISPATCHED}), S.MERGED,
                   by_dispatcher, _l("Merge"), effect=effects.merge),
        Transition("accept", frozenset({S.DISPATCHED}), S.ACCEPTED,
                   by_handler, _l("Accept"), effect=effects.accept),
        # A return is between handler and dispatcher; the resident sees no change of hands.
        Transition("return", frozenset({S.DISPATCHED, S.ACCEPTED}), S.SUBMITTED,
                   by_handler, _l("Return"), note_required=True, public=False, effect=effects.return_ticket),
        Transition("hold", frozenset({S.ACCEPTED}), S.ON_HOLD,
                   by_handler, _l("Put on hold"), note_required=True, effect=effects.hold),
        Transition("resume", frozenset({S.ON_HOLD}), S.ACCEPTED,
                   by_handler, _l("Resume"), effect=effects.resume),
        Transition("resolve", frozenset({S.ACCEPTED}), S.RESOLVED,
                   by_handler, _l("Resolve"), note_required=True, effect=effects.resolve),
        Transition("rate", frozenset({S.RESOLVED}), S.CLOSED,
                   by_resident, _l("Confirm and rate"), effect=effects.rate),
        Transition("reopen", frozenset({S.RESOLVED}), S.ACCEPTED,
                   by_resident, _l("Ask to redo"), note_required=True, effect=effects.reopen),
        Transition("auto_close", frozenset({S.RESOLVED}), S.CLOSED,
                   by_system, _l("Closed without rating"), effect=effects.auto_close),
        Transition("note", OPEN_OR_RESOLVED, None, by_staff_involved, _l("Add a note"),
                   note_required=True),
        Transition("expire", frozenset({S.DISPATCHED}), S.SUBMITTED,
                   by_system, _l("Not accepted in time"), public=False, effect=effects.expire),
        # The handler's account was deactivated (services/accounts.py): back to the router.
        Transition("release", frozenset({S.DISPATCHED, S.ACCEPTED, S.ON_HOLD}), S.SUBMITTED,
                   by_system, _l("Handler's account deactivated"), note_required=True, public=False,
                   effect=effects.release),
        # 上报: beyond the handler's means, or the resolve-by passed (the sweep).
        Transition("escalate", frozenset({S.DISPATCHED, S.ACCEPTED, S.ON_HOLD}), None,
                   any_of(by_handler, by_system), _l("Escalate"), note_required=True,
                   public=False, effect=effects.escalate),
        Transition("deescalate", frozenset({S.DISPATCHED, S.ACCEPTED, S.ON_HOLD}), None,
                   by_supervisor, _l("Send back down"), note_required=True, public=False,
                   effect=effects.deescalate),
        Transition("extend", frozenset({S.DISPATCHED, S.ACCEPTED, S.ON_HOLD}), None,
                   by_supervisor, _l("Set a new deadline"), note_required=True, public=False,
                   effect=effects.extend),
        # The dispatcher corrects the category intake guessed or the resident chose;
        # the classifier learns from it (services/classify.py).
        Transition("recategorize", frozenset(OPEN_STATUSES), None,
                   any_of(by_dispatcher, by_supervisor), _l("Change the category"), public=False,
                   effect=effects.recategorize),
        # After filing, from the tracking page: more words and photos (services/additions.py),
        # or taking the request back before anyone accepted it.
        Transition("add_info", frozenset(OPEN_STATUSES), None,
                   by_resident, _l("Add information"), effect=effects.add_info),
        Transition("withdraw", frozenset({S.SUBMITTED, S.DISPATCHED}), S.WITHDRAWN,
                   by_resident, _l("Withdraw"), effect=effects.withdraw),
        # The resident of a ticket merged into another (services/merged.py): their verdict
        # on the main ticket's result, kept on their own ticket; a redo request, which
        # merged.ask_redo pairs with the main ticket's "reopen".
        Transition("rate_merged", frozenset({S.MERGED}), None,
                   by_resident, _l("Confirm and rate"), effect=effects.rate_merged),
        Transition("reopen_merged", frozenset({S.MERGED}), None,
                   by_resident, _l("Ask to redo"), note_required=True, effect=effects.reopen_merged),
        # 回访 (services/callbacks.py): the rating a resident gives on the call, and 重办 when
        # the call finds the problem not solved — a new dispatch, fresh clocks.
        Transition("callback_rate", frozenset({S.RESOLVED, S.CLOSED}), S.CLOSED,
                   any_of(by_dispatcher, by_supervisor), _l("Rating given on a callback"),
                   effect=effects.callback_rate),
        Transition("redo", frozenset({S.RESOLVED, S.CLOSED}), S.DISPATCHED,
                   any_of(by_dispatcher, by_supervisor), _l("Redo"), note_required=True,
                   effect=effects.redo),
        # 改派: after acceptance too, a dispatcher or supervisor gives it to another handler.
        Transition("reassign", frozenset({S.DISPATCHED, S.ACCEPTED, S.ON_HOLD}), S.DISPATCHED,
                   any_of(by_dispatcher, by_supervisor), _l("Reassign"), note_required=True, public=False,
                   effect=effects.reassign),
        # 转办: the handler passes it to another handler on duty; counted like a return.
        Transition("transfer", frozenset({S.DISPATCHED, S.ACCEPTED, S.ON_HOLD}), S.DISPATCHED,
                   by_handler, _l("Pass to another handler"), note_required=True, public=False,
                   effect=effects.transfer),
    )
}


def allowed(actor: Actor, ticket: Ticket) -> list[Transition]:
    """The transitions `actor` may perform on `ticket` now, in table order."""
    return [t for t in TRANSITIONS.values() if ticket.status in t.sources and t.may(actor, ticket)]


def check(transition: Transition, actor: Actor, ticket: Ticket) -> None:
    """Raise `IllegalTransition` (not now) or `NotAllowed` (not you); else return."""
    if ticket.status not in transition.sources:
        raise IllegalTransition(
            _l(
                "This ticket is now “%(status)s”; that action is not possible.",
                status=STATUS_LABELS.get(ticket.status, ticket.status),
            )
        )
    if not transition.may(actor, ticket):
        raise NotAllowed(_l("You may not do that to this ticket."))


def perform(
    ticket: Ticket,
    name: str,
    actor: Actor,
    now: datetime,
    calendar: WorkCalendar,
    note: str = "",
    public: bool | None = None,
    flush: bool = True,
    **params: Any,
) -> TicketEvent:
    """Apply transition `name` and record it; the caller commits.

    With `flush` False (a batch inside `notify.batched()`), the write waits for the
    batch's flush, and a lost race shows there as `StaleDataError`, not `Conflict`.

    Raises `IllegalTransition` for a state that does not allow it, `NotAllowed` for
    an actor who may not, `InvalidInput` for missing inputs, and `Conflict` when
    another transaction changed the ticket first. On any error the session is
    rolled back, so nothing is half-written.
    """
    try:
        event = plan(ticket, name, actor, now, calendar, note, public, **params)
        db.session.add(event)
        events.publish(ticket, event)  # notifications, report-back: listeners of create_app
        if flush:
            db.session.flush()
    except StaleDataError:
        db.session.rollback()
        raise Conflict(_l("Someone else changed this ticket just now. Reload and try again.")) from None
    except Exception:
        db.session.rollback()
        raise
    return event


def plan(
    ticket: Ticket,
    name: str,
    actor: Actor,
    now: datetime,
    calendar: WorkCalendar,
    note: str = "",
    public: bool | None = None,
    **params: Any,
) -> TicketEvent:
    """Apply transition `name` to the ticket and return its event, neither recorded nor
    told to the listeners: `perform` records and tells.

    Used alone for a ticket not stored yet, whose first steps are taken before it is
    (a patrol report made the worker's own, services/patrol.py): intake stores the
    ticket as they leave it, with their events, in one write, and then tells the
    listeners (services/intake.py `submit`). Raises as `perform` does, rolling nothing
    back: the caller does.
    """
    transition = TRANSITIONS.get(name)
    if transition is None:
        raise IllegalTransition(_l("Unknown action."))
    check(transition, actor, ticket)
    note = (note or "").strip()
    if transition.note_required and not note:
        raise InvalidInput(_l("Please give a reason or a note."), field="note")
    if len(note) > MAX_NOTE_LENGTH:
        raise InvalidInput(
            _l("Keep it under %(n)d characters.", n=MAX_NOTE_LENGTH), field="note"
        )
    ctx = Context(actor=actor, now=now, calendar=calendar, note=note, params=params)
    from_status = ticket.status
    if transition.effect is not None:
        transition.effect(ticket, ctx)
    if transition.target is not None:
        ticket.status = transition.target
    ticket.updated_at = now
    return TicketEvent(
        ticket=ticket,
        at=now,
        actor_kind=actor.kind,
        actor_id=actor.user.id if actor.user else None,
        action=transition.name,
        from_status=from_status,
        to_status=ticket.status,
        note=note,
        public=transition.public if public is None else public,
        detail=ctx.detail,
    )
