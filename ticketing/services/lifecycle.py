"""The ticket state machine: the one table of transitions, and the one way to apply them.

Views, the API and jobs call `perform()`; nothing else sets `Ticket.status`. Each
transition names the states it leaves from, the state it goes to, and who may do it.
Every change writes a `TicketEvent` in the same transaction, and the ticket's
version column turns the UPDATE into a conditional one: of two people acting on one
ticket at once, exactly one wins and the other gets `Conflict`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm.exc import StaleDataError

from ticketing.extensions import db
from ticketing.labels import STATUS_LABELS
from ticketing.models import (
    HandlerKind,
    PropertyCompany,
    Rating,
    Role,
    Status,
    Team,
    TeamKind,
    Ticket,
    TicketEvent,
    User,
)
from ticketing.services import notify, outbox, scope, sla
from ticketing.services.errors import (
    Conflict,
    IllegalTransition,
    InvalidInput,
    NotAllowed,
)
from ticketing.services.workdays import WorkCalendar

REOPEN_WINDOW = timedelta(days=7)
MAX_NOTE_LENGTH = 2000


@dataclass(frozen=True)
class Actor:
    """Who is acting: a staff user, the ticket's resident, or the system."""

    kind: str
    user: User | None = None

    @classmethod
    def staff(cls, user: User) -> "Actor":
        return cls("staff", user)

    @classmethod
    def resident(cls) -> "Actor":
        """The requester, already proven by ticket number + phone or a signed link."""
        return cls("resident")

    @classmethod
    def system(cls) -> "Actor":
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
    return actor.kind == "resident"


def by_system(actor: Actor, ticket: Ticket) -> bool:
    return actor.kind == "system"


by_supervisor: Rule = _staff(scope.supervises)


def any_of(*rules: Rule) -> Rule:
    """A rule that passes when one of `rules` does."""
    return lambda actor, ticket: any(rule(actor, ticket) for rule in rules)


MAX_LEVEL = 3  # 0 grid/courtyard, 1 community, 2 street, 3 referred upstream


@dataclass
class Context:
    """What an effect needs beyond the ticket: the actor, the time, the inputs."""

    actor: Actor
    now: datetime
    calendar: WorkCalendar
    note: str
    params: dict[str, Any]
    detail: dict[str, Any] = field(default_factory=dict)


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


# --- effects -----------------------------------------------------------------


def _dispatch(ticket: Ticket, ctx: Context) -> None:
    assignee: User | None = ctx.params.get("assignee")
    team: Team | None = ctx.params.get("team")
    # The company's queue: routing's fallback when none of its staff is on duty.
    company: PropertyCompany | None = ctx.params.get("company")
    if sum(handler is not None for handler in (assignee, team, company)) != 1:
        raise InvalidInput(_l("Choose one handler: a person or a team."), field="handler")
    if assignee is not None:
        if ctx.actor.kind != "system":  # the router picks only from the ticket's own pool
            _check_handler_fits(assignee, ticket)
        ticket.assignee_id = assignee.id
        ticket.team_id = assignee.team_id if assignee.role == Role.VOLUNTEER else None
        ticket.company_id = assignee.company_id if assignee.role == Role.PROPERTY_STAFF else None
        ticket.handler_kind = _handler_kind_of(assignee)
        # Ties in routing go to whoever waited longest, whoever made the last assignment.
        assignee.last_assigned_at = ctx.now
        ctx.detail.update(assignee_id=assignee.id, assignee=assignee.display_name)
    elif team is not None:
        if team.community_id != ticket.community_id:
            raise InvalidInput(_l("That team does not serve this community."), field="handler")
        ticket.assignee_id = None
        ticket.team_id = team.id
        ticket.company_id = None
        ticket.handler_kind = (
            HandlerKind.MEDIATION_TEAM if team.kind == TeamKind.MEDIATION else HandlerKind.VOLUNTEER_TEAM
        )
        ctx.detail.update(team_id=team.id, team=team.name)
    else:
        assert company is not None
        ticket.assignee_id = None
        ticket.team_id = None
        ticket.company_id = company.id
        ticket.handler_kind = HandlerKind.PROPERTY
        ctx.detail.update(company_id=company.id, company=company.name)
    ctx.detail.update(rule=ctx.params.get("rule", "manual"))
    if ctx.params.get("reason"):
        ctx.detail.update(reason=str(ctx.params["reason"]))
    ticket.unrouted_reason = ""
    ticket.dispatched_at = ctx.now
    ticket.accept_due_at = sla.accept_deadline(ticket.tier, ctx.now, ctx.calendar)
    ticket.accepted_at = None
    ticket.resolve_due_at = None


def _handler_kind_of(user: User) -> str:
    if user.role == Role.PROPERTY_STAFF:
        return HandlerKind.PROPERTY
    if user.role == Role.VOLUNTEER:
        if user.team is not None and user.team.kind == TeamKind.MEDIATION:
            return HandlerKind.MEDIATION_TEAM
        return HandlerKind.VOLUNTEER_TEAM
    return HandlerKind.GRID_WORKER


def _check_handler_fits(user: User, ticket: Ticket) -> None:
    """A handler must be active, of a handling role, and serve the ticket's community."""
    if not user.active or not user.is_handler:
        raise InvalidInput(_l("That person cannot handle tickets."), field="handler")
    if user.role == Role.GRID_WORKER:
        serves = any(grid.community_id == ticket.community_id for grid in user.grids)
    elif user.role == Role.VOLUNTEER:
        serves = user.team is not None and user.team.community_id == ticket.community_id
    else:
        serves = user.company_id is not None
    if not serves:
        raise InvalidInput(_l("That person does not serve this community."), field="handler")


def _accept(ticket: Ticket, ctx: Context) -> None:
    assert ctx.actor.user is not None
    ticket.assignee_id = ctx.actor.user.id
    ticket.accepted_at = ctx.now
    ticket.resolve_due_at = sla.resolve_deadline(ticket.tier, ctx.now, ctx.calendar)


def _return(ticket: Ticket, ctx: Context) -> None:
    ctx.detail.update(returned_by=ticket.assignee_id)
    ticket.assignee_id = None
    ticket.team_id = None
    ticket.company_id = None
    ticket.handler_kind = None
    ticket.accept_due_at = None
    ticket.resolve_due_at = None
    ticket.accepted_at = None
    ticket.return_count += 1
    # Back to the router (which leaves out whoever returned it); the demo's history opts out.
    if ctx.params.get("reroute", True):
        outbox.emit("workers.jobs.route_ticket", ticket.id, queue="high")


def _hold(ticket: Ticket, ctx: Context) -> None:
    ticket.held_at = ctx.now


def _resume(ticket: Ticket, ctx: Context) -> None:
    assert ticket.held_at is not None and ticket.resolve_due_at is not None
    pause = sla.counted_pause(ticket.tier, ticket.held_at, ctx.now, ctx.calendar)
    ticket.resolve_due_at = sla.extend_for_pause(ticket.tier, ticket.resolve_due_at, pause, ctx.calendar)
    ticket.paused_seconds += int((ctx.now - ticket.held_at).total_seconds())
    ticket.held_at = None
    ctx.detail.update(paused_seconds=int(pause.total_seconds()))


def _resolve(ticket: Ticket, ctx: Context) -> None:
    ticket.resolved_at = ctx.now
    ticket.result_note = ctx.note


def _reject(ticket: Ticket, ctx: Context) -> None:
    ticket.closed_at = ctx.now


def _merge(ticket: Ticket, ctx: Context) -> None:
    target: Ticket | None = ctx.params.get("target")
    if target is None:
        raise InvalidInput(_l("Give the number of the ticket to merge into."), field="target")
    if target.id == ticket.id or target.merged_into_id == ticket.id:
        raise InvalidInput(_l("A ticket cannot be merged into itself."), field="target")
    if not target.is_open and target.status != Status.RESOLVED:
        raise InvalidInput(_l("Merge only into a ticket that is still open."), field="target")
    if ctx.actor.user is None or not scope.in_scope(ctx.actor.user, target):
        raise InvalidInput(_l("No such ticket."), field="target")
    ticket.merged_into_id = target.id
    ticket.closed_at = ctx.now
    ctx.detail.update(merged_into=target.number)


def _rate(ticket: Ticket, ctx: Context) -> None:
    rating = ctx.params.get("rating")
    if rating not in {r.value for r in Rating}:
        raise InvalidInput(_l("Choose how satisfied you are."), field="rating")
    ticket.rating = rating
    ticket.rating_comment = ctx.note
    ticket.rated_at = ctx.now
    ticket.closed_at = ctx.now
    ctx.detail.update(rating=rating)


def _reopen(ticket: Ticket, ctx: Context) -> None:
    assert ticket.resolved_at is not None
    if ctx.now - ticket.resolved_at > REOPEN_WINDOW:
        raise IllegalTransition(_l("A ticket can be reopened only within 7 days of its result."))
    ticket.reopen_count += 1
    ticket.resolved_at = None
    ticket.accepted_at = ctx.now
    ticket.resolve_due_at = sla.resolve_deadline(ticket.tier, ctx.now, ctx.calendar)


def _auto_close(ticket: Ticket, ctx: Context) -> None:
    ticket.closed_at = ctx.now


def _expire(ticket: Ticket, ctx: Context) -> None:
    """The accept-by passed: the ticket goes back for routing, without its late handler."""
    ctx.detail.update(missed_by=ticket.assignee_id, team_id=ticket.team_id, company_id=ticket.company_id)
    ticket.assignee_id = None
    ticket.team_id = None
    ticket.company_id = None
    ticket.handler_kind = None
    ticket.accept_due_at = None


def _escalate(ticket: Ticket, ctx: Context) -> None:
    if ticket.escalation_level >= MAX_LEVEL:
        raise IllegalTransition(_l("This ticket is already referred upstream."))
    ticket.escalation_level += 1
    ticket.escalated_at = ctx.now
    ticket.supervised = True
    ctx.detail.update(level=ticket.escalation_level)


def _deescalate(ticket: Ticket, ctx: Context) -> None:
    if ticket.escalation_level <= 0:
        raise IllegalTransition(_l("This ticket is already at grid level."))
    ticket.escalation_level -= 1
    ticket.supervised = ticket.escalation_level > 0
    ctx.detail.update(level=ticket.escalation_level)


def _extend(ticket: Ticket, ctx: Context) -> None:
    deadline = ctx.params.get("deadline")
    if not isinstance(deadline, datetime) or deadline.tzinfo is None or deadline <= ctx.now:
        raise InvalidInput(_l("Give a new deadline in the future."), field="deadline")
    if ticket.status == Status.DISPATCHED:
        ctx.detail.update(old=_iso(ticket.accept_due_at), new=_iso(deadline))
        ticket.accept_due_at = deadline
    else:
        ctx.detail.update(old=_iso(ticket.resolve_due_at), new=_iso(deadline))
        ticket.resolve_due_at = deadline


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


S = Status
OPEN_OR_RESOLVED = frozenset({S.SUBMITTED, S.DISPATCHED, S.ACCEPTED, S.ON_HOLD, S.RESOLVED})

TRANSITIONS: dict[str, Transition] = {
    t.name: t
    for t in (
        # The router (system), a dispatcher, or a supervisor taking a 督办 case in hand.
        Transition("dispatch", frozenset({S.SUBMITTED, S.DISPATCHED}), S.DISPATCHED,
                   any_of(by_dispatcher, by_supervisor, by_system), _l("Dispatch"), effect=_dispatch),
        Transition("reject", frozenset({S.SUBMITTED}), S.REJECTED,
                   by_dispatcher, _l("Reject"), note_required=True, effect=_reject),
        Transition("merge", frozenset({S.SUBMITTED, S.DISPATCHED}), S.MERGED,
                   by_dispatcher, _l("Merge"), effect=_merge),
        Transition("accept", frozenset({S.DISPATCHED}), S.ACCEPTED,
                   by_handler, _l("Accept"), effect=_accept),
        # A return is between handler and dispatcher; the resident sees no change of hands.
        Transition("return", frozenset({S.DISPATCHED, S.ACCEPTED}), S.SUBMITTED,
                   by_handler, _l("Return"), note_required=True, public=False, effect=_return),
        Transition("hold", frozenset({S.ACCEPTED}), S.ON_HOLD,
                   by_handler, _l("Put on hold"), note_required=True, effect=_hold),
        Transition("resume", frozenset({S.ON_HOLD}), S.ACCEPTED,
                   by_handler, _l("Resume"), effect=_resume),
        Transition("resolve", frozenset({S.ACCEPTED}), S.RESOLVED,
                   by_handler, _l("Resolve"), note_required=True, effect=_resolve),
        Transition("rate", frozenset({S.RESOLVED}), S.CLOSED,
                   by_resident, _l("Confirm and rate"), effect=_rate),
        Transition("reopen", frozenset({S.RESOLVED}), S.ACCEPTED,
                   by_resident, _l("Ask to redo"), note_required=True, effect=_reopen),
        Transition("auto_close", frozenset({S.RESOLVED}), S.CLOSED,
                   by_system, _l("Closed without rating"), effect=_auto_close),
        Transition("note", OPEN_OR_RESOLVED, None, by_staff_involved, _l("Add a note"),
                   note_required=True),
        Transition("expire", frozenset({S.DISPATCHED}), S.SUBMITTED,
                   by_system, _l("Not accepted in time"), public=False, effect=_expire),
        # 上报: beyond the handler's means, or the resolve-by passed (the sweep).
        Transition("escalate", frozenset({S.DISPATCHED, S.ACCEPTED, S.ON_HOLD}), None,
                   any_of(by_handler, by_system), _l("Escalate"), note_required=True,
                   public=False, effect=_escalate),
        Transition("deescalate", frozenset({S.DISPATCHED, S.ACCEPTED, S.ON_HOLD}), None,
                   by_supervisor, _l("Send back down"), note_required=True, public=False,
                   effect=_deescalate),
        Transition("extend", frozenset({S.DISPATCHED, S.ACCEPTED, S.ON_HOLD}), None,
                   by_supervisor, _l("Set a new deadline"), note_required=True, public=False,
                   effect=_extend),
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
    **params: Any,
) -> TicketEvent:
    """Apply transition `name` and record it; the caller commits.

    Raises `IllegalTransition` for a state that does not allow it, `NotAllowed` for
    an actor who may not, `InvalidInput` for missing inputs, and `Conflict` when
    another transaction changed the ticket first. On any error the session is
    rolled back, so nothing is half-written.
    """
    transition = TRANSITIONS.get(name)
    if transition is None:
        raise IllegalTransition(_l("Unknown action."))
    try:
        event = _apply(ticket, transition, actor, now, calendar, note, public, params)
        db.session.flush()
    except StaleDataError:
        db.session.rollback()
        raise Conflict(_l("Someone else changed this ticket just now. Reload and try again.")) from None
    except Exception:
        db.session.rollback()
        raise
    return event


def _apply(
    ticket: Ticket,
    transition: Transition,
    actor: Actor,
    now: datetime,
    calendar: WorkCalendar,
    note: str,
    public: bool | None,
    params: dict[str, Any],
) -> TicketEvent:
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
    event = TicketEvent(
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
    db.session.add(event)
    notify.on_event(ticket, event)
    return event
