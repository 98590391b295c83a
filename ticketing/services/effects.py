"""What each transition of the state machine does to a ticket (lifecycle.py holds the table).

Each effect gets the ticket and a `Context` (actor, time, calendar, note, inputs) and
may raise a service error, which `lifecycle.perform` turns into "nothing changed".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select

from ticketing.extensions import db
from ticketing.models import (
    Category,
    Channel,
    ClassificationCorrection,
    HandlerKind,
    PropertyCompany,
    Rating,
    Role,
    SlaTier,
    Status,
    Team,
    TeamKind,
    Ticket,
    User,
)
from ticketing.queues import HIGH, ROUTE_TICKET
from ticketing.services import handoff, holds, outbox, scope, sla
from ticketing.services.classify import tier_urgency
from ticketing.services.errors import IllegalTransition, InvalidInput
from ticketing.services.workdays import WorkCalendar

if TYPE_CHECKING:
    from ticketing.services.lifecycle import Actor

REOPEN_WINDOW = timedelta(days=7)
MAX_LEVEL = 3  # 0 grid/courtyard, 1 community, 2 street, 3 referred upstream
# Merges chain at most this deep (a main ticket merged in turn into another one).
MAX_MERGE_DEPTH = 5
# How often a resident may add to one ticket (services/additions.py): enough for a real
# follow-up, not a channel to flood a handler through.
MAX_ADDITIONS = 10


@dataclass
class Context:
    """What an effect needs beyond the ticket: the actor, the time, the inputs."""

    actor: Actor
    now: datetime
    calendar: WorkCalendar
    note: str
    params: dict[str, Any]
    detail: dict[str, Any] = field(default_factory=dict)


def dispatch(ticket: Ticket, ctx: Context) -> None:
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
    _forget_old_hand(ticket)


def _forget_old_hand(ticket: Ticket) -> None:
    """The handler's relationships may have been loaded before their keys changed (a
    re-dispatch, a reassignment): loaded again from the new keys when next read, so that
    the new hand is the one told (notify.py). A ticket not stored yet (lifecycle.plan)
    has loaded none."""
    if sa_inspect(ticket).persistent:
        db.session.expire(ticket, ["assignee", "team", "company"])


def _handler_kind_of(user: User) -> str:
    if user.role == Role.PROPERTY_STAFF:
        return HandlerKind.PROPERTY
    if user.role == Role.VOLUNTEER:
        if user.team is not None and user.team.kind == TeamKind.MEDIATION:
            return HandlerKind.MEDIATION_TEAM
        return HandlerKind.VOLUNTEER_TEAM
    return HandlerKind.GRID_WORKER


def handler_fits(user: User, ticket: Ticket) -> bool:
    """Whether `user` could be sent the ticket by hand (`_check_handler_fits` as a question)."""
    try:
        _check_handler_fits(user, ticket)
    except InvalidInput:
        return False
    return True


def _check_handler_fits(user: User, ticket: Ticket) -> None:
    """A handler must be active, of a handling role, and serve the ticket: a grid worker or
    a volunteer its community, property staff its place (`scope.company_serves`)."""
    if not user.active or not user.is_handler:
        raise InvalidInput(_l("That person cannot handle tickets."), field="handler")
    if user.role == Role.PROPERTY_STAFF:
        if not scope.company_serves(user.company_id, ticket):
            raise InvalidInput(_l("That person's company does not manage this place."), field="handler")
        return
    if user.role == Role.GRID_WORKER:
        serves = any(grid.community_id == ticket.community_id for grid in user.grids)
    else:
        serves = user.team is not None and user.team.community_id == ticket.community_id
    if not serves:
        raise InvalidInput(_l("That person does not serve this community."), field="handler")


def accept(ticket: Ticket, ctx: Context) -> None:
    assert ctx.actor.user is not None
    ticket.assignee_id = ctx.actor.user.id
    ticket.accepted_at = ctx.now
    ticket.resolve_due_at = sla.resolve_deadline(ticket.tier, ctx.now, ctx.calendar)


def clear_hand(ticket: Ticket, work_begun: bool) -> None:
    """Nobody holds the ticket any more: no handler and no accept-by; with `work_begun`,
    the acceptance and its resolve-by go too (they belong to the hand that took it)."""
    ticket.assignee_id = None
    ticket.team_id = None
    ticket.company_id = None
    ticket.handler_kind = None
    ticket.accept_due_at = None
    if work_begun:
        ticket.resolve_due_at = None
        ticket.accepted_at = None


def return_ticket(ticket: Ticket, ctx: Context) -> None:
    ctx.detail.update(returned_by=ticket.assignee_id)
    clear_hand(ticket, work_begun=True)
    ticket.return_count += 1
    # Back to the router (which leaves out whoever returned it); the demo's history opts out.
    if ctx.params.get("reroute", True):
        outbox.emit(ROUTE_TICKET, ticket.id, queue=HIGH)


def hold(ticket: Ticket, ctx: Context) -> None:
    """Pause the resolve clock, with what is awaited and the date it is expected by."""
    until = holds.expected_by(ctx.params.get("until"), ctx.now, ctx.calendar.tz)
    ticket.held_at = ctx.now
    ticket.hold_reason = ctx.note[:200]
    ticket.hold_until = until
    ticket.hold_reminded_at = None  # a new hold, a new reminder
    ctx.detail.update(until=until.isoformat())


def resume(ticket: Ticket, ctx: Context) -> None:
    assert ticket.held_at is not None and ticket.resolve_due_at is not None
    pause = sla.counted_pause(ticket.tier, ticket.held_at, ctx.now, ctx.calendar)
    ticket.resolve_due_at = sla.extend_for_pause(ticket.tier, ticket.resolve_due_at, pause, ctx.calendar)
    ticket.paused_seconds += int((ctx.now - ticket.held_at).total_seconds())
    ticket.held_at = None
    ticket.hold_until, ticket.hold_reason = None, ""
    ctx.detail.update(paused_seconds=int(pause.total_seconds()))


def resolve(ticket: Ticket, ctx: Context) -> None:
    ticket.resolved_at = ctx.now
    ticket.result_note = ctx.note


def reject(ticket: Ticket, ctx: Context) -> None:
    ticket.closed_at = ctx.now


def merge(ticket: Ticket, ctx: Context) -> None:
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


def rate(ticket: Ticket, ctx: Context) -> None:
    rating = ctx.params.get("rating")
    if rating not in {r.value for r in Rating}:
        raise InvalidInput(_l("Choose how satisfied you are."), field="rating")
    ticket.rating = rating
    ticket.rating_comment = ctx.note
    ticket.rated_at = ctx.now
    ticket.closed_at = ctx.now
    ctx.detail.update(rating=rating)


def reopen(ticket: Ticket, ctx: Context) -> None:
    assert ticket.resolved_at is not None
    if ctx.now - ticket.resolved_at > REOPEN_WINDOW:
        raise IllegalTransition(_l("A ticket can be reopened only within 7 days of its result."))
    ticket.reopen_count += 1
    ticket.resolved_at = None
    ticket.accepted_at = ctx.now
    ticket.resolve_due_at = sla.resolve_deadline(ticket.tier, ctx.now, ctx.calendar)
    # Asked after choosing 不满意: a 回访 task follows (services/callbacks.py).
    if ctx.params.get("unsatisfied"):
        ctx.detail.update(unsatisfied=True)


def auto_close(ticket: Ticket, ctx: Context) -> None:
    ticket.closed_at = ctx.now


def callback_rate(ticket: Ticket, ctx: Context) -> None:
    """The resident's own rating, given on a 回访 call and recorded by the caller.

    Only for a result the resident has not rated: a rating given online stands (the call
    keeps what was said on the task, services/callbacks.py). It counts in the 满意率 as
    the resident's own (services/ledger.py).
    """
    rating = ctx.params.get("rating")
    if rating not in {r.value for r in Rating}:
        raise InvalidInput(_l("Choose how satisfied the resident is."), field="rating")
    if ticket.rating is not None:
        raise IllegalTransition(_l("The resident already rated this result; that rating stands."))
    ticket.rating = rating
    ticket.rated_at = ctx.now
    if ticket.closed_at is None:
        ticket.closed_at = ctx.now
    ctx.detail.update(rating=rating, given_by="callback", callback_id=ctx.params.get("callback_id"))


def redo(ticket: Ticket, ctx: Context) -> None:
    """重办 after a 回访 found the problem not solved: to the same or another handler, with
    fresh clocks as a new dispatch; the result, its closing and its rating belong to the
    round that failed, and the ticket counts as reopened."""
    previous = ticket.rating
    dispatch(ticket, ctx)
    ticket.reopen_count += 1
    ticket.resolved_at = None
    ticket.closed_at = None
    ticket.rating = None
    ticket.rated_at = None
    ticket.rating_comment = ""
    ctx.detail.update(callback_id=ctx.params.get("callback_id"), previous_rating=previous)


def expire(ticket: Ticket, ctx: Context) -> None:
    """The accept-by passed: the ticket goes back for routing, without its late handler."""
    ctx.detail.update(missed_by=ticket.assignee_id, team_id=ticket.team_id, company_id=ticket.company_id)
    clear_hand(ticket, work_begun=False)


def release(ticket: Ticket, ctx: Context) -> None:
    """The handler can no longer work (account deactivated): clear the hand and route again.

    Deadlines go with the hand, as on a return; the escalation level stays.
    """
    ctx.detail.update(released_from=ticket.assignee_id, by=ctx.params.get("by"))
    clear_hand(ticket, work_begun=True)
    if ticket.held_at is not None:  # the pause ends here; the time on hold stays counted
        ticket.paused_seconds += int((ctx.now - ticket.held_at).total_seconds())
        ticket.held_at = None
    outbox.emit(ROUTE_TICKET, ticket.id, queue=HIGH)


def _end_hold(ticket: Ticket, now: datetime) -> None:
    """The pause ends here; the time on hold stays counted (as on a release)."""
    if ticket.held_at is not None:
        ticket.paused_seconds += int((now - ticket.held_at).total_seconds())
    ticket.held_at, ticket.hold_until, ticket.hold_reason = None, None, ""


def reassign(ticket: Ticket, ctx: Context) -> None:
    """改派: a dispatcher or supervisor gives the ticket to another handler, with a reason.

    The clocks follow a new dispatch: accept-by from now, the acceptance and its
    resolve-by gone, a hold ended with its time kept counted. The escalation level stays.
    """
    handoff.check_new_hand(ticket, ctx.params.get("assignee"), ctx.params.get("team"))
    ctx.detail.update(handoff.hand_of(ticket))
    _end_hold(ticket, ctx.now)
    dispatch(ticket, ctx)


def transfer(ticket: Ticket, ctx: Context) -> None:
    """转办: the handler passes the ticket to another handler or team on duty, with a reason.

    Counted like a return (services/handoff.py); otherwise a new dispatch, as a reassignment.
    """
    assert ctx.actor.user is not None
    handoff.check_transfer(ticket, ctx.params.get("assignee"), ctx.params.get("team"), ctx.now, ctx.calendar.tz)
    ctx.detail.update(handoff.hand_of(ticket), transferred_by=ctx.actor.user.id)
    _end_hold(ticket, ctx.now)
    ticket.return_count += 1
    dispatch(ticket, ctx)


def escalate(ticket: Ticket, ctx: Context) -> None:
    if ticket.escalation_level >= MAX_LEVEL:
        raise IllegalTransition(_l("This ticket is already referred upstream."))
    ticket.escalation_level += 1
    ticket.escalated_at = ctx.now
    ticket.supervised = True
    ctx.detail.update(level=ticket.escalation_level)


def deescalate(ticket: Ticket, ctx: Context) -> None:
    if ticket.escalation_level <= 0:
        raise IllegalTransition(_l("This ticket is already at grid level."))
    ticket.escalation_level -= 1
    ticket.supervised = ticket.escalation_level > 0
    ctx.detail.update(level=ticket.escalation_level)


def extend(ticket: Ticket, ctx: Context) -> None:
    deadline = ctx.params.get("deadline")
    if not isinstance(deadline, datetime) or deadline.tzinfo is None or deadline <= ctx.now:
        raise InvalidInput(_l("Give a new deadline in the future."), field="deadline")
    if ticket.status == Status.DISPATCHED:
        ctx.detail.update(old=_iso(ticket.accept_due_at), new=_iso(deadline))
        ticket.accept_due_at = deadline
    else:
        ctx.detail.update(old=_iso(ticket.resolve_due_at), new=_iso(deadline))
        ticket.resolve_due_at = deadline


def recategorize(ticket: Ticket, ctx: Context) -> None:
    """A dispatcher corrects the category; the correction is kept for the classifier to learn.

    Only a ticket still waiting for dispatch takes the new category's tier (kept at
    least as urgent as intake's urgent words made it). Once dispatched, its deadlines
    are running and were promised to a handler: they stay, and so does the tier; a
    supervisor sets a new deadline if the new category calls for one.
    """
    category: Category | None = ctx.params.get("category")
    if category is None or not category.active or any(child.active for child in category.children):
        raise InvalidInput(_l("Choose a category from the list."), field="category")
    if category.id == ticket.category_id:
        raise InvalidInput(_l("That is already the ticket's category."), field="category")
    db.session.add(ClassificationCorrection(
        ticket_id=ticket.id, text=ticket.description, guessed_category_id=ticket.guess_category_id,
        chosen_category_id=category.id, user_id=ctx.actor.user.id if ctx.actor.user else None, at=ctx.now,
    ))
    ctx.detail.update({"from": ticket.category.code, "to": category.code})
    ticket.category = category
    if ticket.status != Status.SUBMITTED:
        ctx.detail.update(tier_kept=ticket.tier.code)
        return
    tier = category.effective_tier() or ticket.tier
    urgent = _urgent_tier_at_intake(ticket)
    if urgent is not None and tier_urgency(urgent) < tier_urgency(tier):
        tier = urgent
    if tier.id != ticket.tier_id:
        ctx.detail.update(tier={"from": ticket.tier.code, "to": tier.code})
        ticket.tier = tier


def _urgent_tier_at_intake(ticket: Ticket) -> SlaTier | None:
    """The tier intake raised the ticket to for its urgent words, if it did."""
    submitted = next((e for e in ticket.events if e.action == "submit"), None)
    code = (submitted.detail or {}).get("urgent_tier") if submitted is not None else None
    return db.session.scalar(select(SlaTier).where(SlaTier.code == code)) if code else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


# --- the resident after filing (services/additions.py, services/merged.py) ---------------


def add_info(ticket: Ticket, ctx: Context) -> None:
    """More words or photos from the resident; the photos are stored by the caller."""
    photos = int(ctx.params.get("photos") or 0)
    if not ctx.note and not photos:
        raise InvalidInput(_l("Write what you want to add, or choose a photo."), field="note")
    added = sum(1 for event in ticket.events if event.action == "add_info")
    if added >= MAX_ADDITIONS:
        raise IllegalTransition(_l("You have added to this request %(n)d times. Please call your "
                                   "community service station instead.", n=MAX_ADDITIONS))
    if photos:
        ctx.detail.update(photos=photos)


def withdraw(ticket: Ticket, ctx: Context) -> None:
    """The resident takes the request back before anyone accepted it.

    Not a county-centre order (it is withdrawn where it was filed), nor a ticket others'
    requests were merged into: it carries their problem too. The handler it waited with
    stays on the ticket, so that they are told (services/notify.py).
    """
    if ticket.channel == Channel.COUNTY_CENTER:
        raise IllegalTransition(_l("This request came from the county centre: withdraw it where you filed it."))
    if db.session.scalar(select(Ticket.id).where(Ticket.merged_into_id == ticket.id).limit(1)) is not None:
        raise IllegalTransition(_l("Other residents reported the same problem and it is handled for them "
                                   "too, so it can no longer be withdrawn."))
    ctx.detail.update(was_dispatched=ticket.status == Status.DISPATCHED)
    ticket.accept_due_at = None
    ticket.closed_at = ctx.now


def main_of(ticket: Ticket) -> Ticket:
    """The ticket the work on `ticket` happens on: itself unless merged, else the end of
    its chain of merges."""
    main = ticket
    for _hop in range(MAX_MERGE_DEPTH):
        if main.status != Status.MERGED or main.merged_into is None:
            break
        main = main.merged_into
    return main


def rate_merged(ticket: Ticket, ctx: Context) -> None:
    """A merged ticket's resident rates the main ticket's result: their verdict, kept on
    their own ticket (services/merged.py says why); the main ticket is left as it is."""
    main = main_of(ticket)
    if main is ticket or main.status not in (Status.RESOLVED, Status.CLOSED):
        raise IllegalTransition(_l("There is no result to rate yet."))
    if ticket.rated_at is not None:
        raise IllegalTransition(_l("You have already rated this request."))
    rating = ctx.params.get("rating")
    if rating not in {r.value for r in Rating}:
        raise InvalidInput(_l("Choose how satisfied you are."), field="rating")
    ticket.rating = rating
    ticket.rating_comment = ctx.note
    ticket.rated_at = ctx.now
    ctx.detail.update(rating=rating, main=main.number)


def reopen_merged(ticket: Ticket, ctx: Context) -> None:
    """A merged ticket's resident asks for the main ticket's work to be redone; the main
    ticket's own "reopen" goes with it (services/merged.py `ask_redo`)."""
    main = main_of(ticket)
    if main is ticket or main.status != Status.RESOLVED or main.resolved_at is None:
        raise IllegalTransition(_l("Only a resolved request can be redone."))
    if ctx.now - main.resolved_at > REOPEN_WINDOW:
        raise IllegalTransition(_l("A ticket can be reopened only within 7 days of its result."))
    ctx.detail.update(main=main.number)
