"""The dispatcher (派单): which handler a new ticket goes to, and why.

`route()` finds the first active routing rule that matches the ticket's category
(or its parent) and place, else a default (services/targets.py; README, "Routing"); among the people
that handler kind has there who are on duty now and did not return or miss the
ticket, it picks the one with the fewest open tickets, ties to whoever has waited
longest since their last assignment. A team or company with nobody on duty gets
the ticket in its queue. A likely duplicate of a ticket someone already has
(services/duplicates.py `first_handled`) goes to that hand instead, while it may
still take it. Whoever returned, transferred or missed the ticket is left out, and
after `MAX_RETURNS` of those the dispatcher decides (services/handoff.py). When
nobody fits, the ticket stays submitted with the reason and the dispatchers are told. The dispatch event carries the rule and the
reason, so "why did this come to me?" has an answer. Which kind of handler the rules
or the defaults choose is services/targets.py's.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from flask import current_app
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, Select, and_, exists, func, select
from sqlalchemy.orm import joinedload

from ticketing.extensions import db
from ticketing.labels import locale_of
from ticketing.models import (
    Category,
    HandlerKind,
    PropertyCompany,
    Role,
    RoutingRule,
    SlaTier,
    Status,
    Team,
    TeamKind,
    Ticket,
    TicketEvent,
    User,
    user_grids,
)
from ticketing.services import duplicates, duty, notify, scope
from ticketing.services.classify import tier_urgency
from ticketing.services.effects import handler_fits
from ticketing.services.handoff import MAX_RETURNS, excluded_people
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.sqlparts import among
from ticketing.services.targets import Target, active_rules, target_for, text
from ticketing.services.workdays import WorkCalendar

T = TypeVar("T")

# The tickets that count as someone's current load.
LOAD_STATUSES = (Status.DISPATCHED, Status.ACCEPTED, Status.ON_HOLD)
# Keyed by handler kind value: a rule's target kind is a plain str.
TEAM_KINDS: dict[str, TeamKind] = {HandlerKind.VOLUNTEER_TEAM: TeamKind.VOLUNTEER,
                                   HandlerKind.MEDIATION_TEAM: TeamKind.MEDIATION}

@dataclass(frozen=True)
class Decision:
    """What routing did: routed or not, the rule that decided, the handler, and why."""

    routed: bool
    rule: str = ""
    handler: str = ""
    reason: str = ""


def routing_load_options() -> list[Any]:
    """What route() reads of a ticket, loaded with it in one query instead of five."""
    return [
        joinedload(Ticket.category).joinedload(Category.parent),
        joinedload(Ticket.complex),
        joinedload(Ticket.grid),
        joinedload(Ticket.tier),
    ]


def load_to_route(ticket_ids: list[int]) -> tuple[list[Ticket], list[tuple[Ticket, TicketEvent]]]:
    """The tickets by id, with what route() reads, and their submit events whose
    "received" message intake left to the routing job (for notify.confirm_receipt):
    one statement, where reading the events and their messages apart took two more."""
    rows = db.session.execute(
        select(Ticket, TicketEvent).outerjoin(TicketEvent, notify.receipt_unwritten())
        .where(among(Ticket.id, ticket_ids)).options(*routing_load_options()).order_by(Ticket.id, TicketEvent.id)
    ).all()
    tickets = list(dict.fromkeys(ticket for ticket, _ in rows))  # a ticket per row of its events
    return tickets, [(ticket, event) for ticket, event in rows if event is not None]


@dataclass
class Batch:
    """What routing looks up once however many tickets it routes together: matching
    rules, pools, who is on duty in them, their loads (kept current as the batch
    assigns) and shift ends. Routing one ticket is a batch of one."""

    rules: list[RoutingRule] | None = None
    pools: dict[tuple[Any, ...], Pool | NobodyFits] = field(default_factory=dict)
    people: dict[tuple[Any, ...], list[User]] = field(default_factory=dict)
    counts: dict[int, int] = field(default_factory=dict)
    shift_ends: dict[int, datetime | None] = field(default_factory=dict)
    members: dict[tuple[Any, ...], bool] = field(default_factory=dict)
    # Open tickets a ticket of the batch may duplicate (duplicates.near_many), looked up once.
    near: duplicates.Near | None = None
    # Whether the handlers of those open tickets are on duty, by id (a duplicate follows
    # its first ticket's handler only while they are), looked up once with them.
    on_duty: dict[int, bool] = field(default_factory=dict)
    # Inside notify.batched(): the batch's writes are flushed together at its end.
    deferred: bool = False

    def active_rules(self) -> list[RoutingRule]:
        if self.rules is None:
            self.rules = active_rules()
        return self.rules

    def open_counts(self, people: list[User]) -> dict[int, int]:
        """Open tickets of these people: counted once, then kept up to date."""
        missing = [u.id for u in people if u.id not in self.counts]
        if missing:
            found = open_counts(missing)
            self.counts.update({i: found.get(i, 0) for i in missing})
        return self.counts


# --- which people -------------------------------------------------------------


# Who belongs to a pool, by its kind: the role, and the column or grid link that names it.
POOL_ROLES = {"grid": Role.GRID_WORKER, "company": Role.PROPERTY_STAFF, "team": Role.VOLUNTEER}


@dataclass(frozen=True)
class Pool:
    """Who may take the ticket: the people of a grid, a company or a team (`key` is
    ("grid", id), ("company", id) or ("team", id)), and the queue to fall back on."""

    key: tuple[str, int]
    name: str
    team: Team | None = None
    company: PropertyCompany | None = None

    def members(self) -> ColumnElement[bool]:
        """The pool's people, as a WHERE clause on User."""
        kind, pool_id = self.key
        if kind == "grid":
            belongs = exists().where(user_grids.c.user_id == User.id, user_grids.c.grid_id == pool_id)
        else:
            belongs = _team_or_company(kind) == pool_id
        return and_(User.role == POOL_ROLES[kind], belongs)


def _team_or_company(kind: str) -> Any:
    """The User column that names a company's or a team's people."""
    return User.company_id if kind == "company" else User.team_id


class NobodyFits(Exception):
    """No handler of that kind exists for the ticket's place; the message says why."""


def pool_for(ticket: Ticket, target: Target, batch: Batch | None = None) -> Pool:
    """The people of the target's kind for this place; raises `NobodyFits`."""
    if batch is None:
        return _pool_for(ticket, target)
    key = (target, ticket.community_id, ticket.grid_id, ticket.complex_id)
    if key not in batch.pools:
        try:
            batch.pools[key] = _pool_for(ticket, target)
        except NobodyFits as exc:
            batch.pools[key] = exc
    found = batch.pools[key]
    if isinstance(found, NobodyFits):
        raise found
    return found


def _pool_for(ticket: Ticket, target: Target) -> Pool:
    if target.kind == HandlerKind.GRID_WORKER:
        if ticket.grid_id is None or ticket.grid is None:
            raise NobodyFits(text(_l("placed only at community level: a dispatcher places it")))
        return Pool(("grid", ticket.grid_id), ticket.grid.name)
    if target.kind == HandlerKind.PROPERTY:
        company_id = target.company_id or (ticket.complex.property_company_id if ticket.complex else None)
        company = db.session.get(PropertyCompany, company_id) if company_id else None
        if company is None:
            raise NobodyFits(text(_l("no property company manages this place")))
        return Pool(("company", company.id), company.name, company=company)
    team_kind = TEAM_KINDS.get(target.kind)
    if team_kind is None:
        raise NobodyFits(text(_l("the rule names an unknown handler kind")))
    team = db.session.get(Team, target.team_id) if target.team_id else db.session.scalar(
        select(Team).where(Team.community_id == ticket.community_id, Team.kind == team_kind, Team.active)
        .order_by(Team.id).limit(1))
    if team is None or team.community_id != ticket.community_id:
        message = (_l("the community has no volunteer team") if team_kind == TeamKind.VOLUNTEER
                   else _l("the community has no mediation team"))
        raise NobodyFits(text(message))
    return Pool(("team", team.id), team.name, team=team)


def open_counts(user_ids: Iterable[int]) -> dict[int, int]:
    """Open tickets per person, in one grouped count over the (assignee, status) index."""
    ids = list(user_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        select(Ticket.assignee_id, func.count())
        .where(among(Ticket.assignee_id, ids), Ticket.status.in_(LOAD_STATUSES))
        .group_by(Ticket.assignee_id)
    )
    return {assignee_id: count for assignee_id, count in rows}


def fairest(people: list[User], counts: dict[int, int]) -> User:
    """Fewest open tickets; ties to the longest wait since the last assignment, then lowest id."""
    def key(user: User) -> tuple[int, float, int]:
        # Never assigned counts as having waited longest.
        waited = user.last_assigned_at.timestamp() if user.last_assigned_at else float("-inf")
        return counts.get(user.id, 0), waited, user.id

    return min(people, key=key)


# --- deciding -----------------------------------------------------------------


def route(ticket: Ticket, now: datetime, calendar: WorkCalendar) -> Decision:
    """Decide the ticket's handler and dispatch it, or leave it submitted with the reason.

    Only a submitted ticket is routed; the caller commits. Reasons and labels are
    stored in the site's default language, whoever caused the routing.
    """
    with force_locale(locale_of(current_app.config.get("BABEL_DEFAULT_LOCALE", "zh_CN"))):
        return _route(ticket, now, calendar, Batch())


def route_many(ticket_ids: list[int], now: datetime, calendar: WorkCalendar) -> dict[int, Decision]:
    """Write the tickets' "received" messages if intake left them, then route them,
    each exactly as `route()` would, in id order; the caller commits. The look-ups they
    share are made once (`Batch`), and each assignment counts in the load of the next
    ticket's pick. The writes go out together at the end (`notify.batched()`); a ticket
    someone changed meanwhile fails the whole batch with `StaleDataError`, and the
    drain then routes the batch's tickets one by one (workers/relay.py)."""
    tickets, unwritten = load_to_route(ticket_ids)
    batch = Batch(deferred=True)
    with notify.batched(), force_locale(locale_of(current_app.config.get("BABEL_DEFAULT_LOCALE", "zh_CN"))):
        # The first ticket left unrouted (or urgent) looks up the dispatchers of them all.
        notify.expect_places(tickets)
        notify.confirm_receipt(unwritten)
        look_up_pools(tickets, now, calendar, batch)
        return {ticket.id: _route(ticket, now, calendar, batch) for ticket in tickets}


def look_up_pools(tickets: Iterable[Ticket], now: datetime, calendar: WorkCalendar, batch: Batch) -> None:
    """Fill the batch with who is on duty in every pool its tickets go to (grids,
    companies, teams), their loads and their shift ends, and the open tickets its
    tickets may duplicate: a query per kind of pool and three more, however many pools
    (a city has thousands of grids)."""
    tickets = list(tickets)
    wanted: dict[str, set[int]] = {}
    for ticket in tickets:
        # Only first routings: a ticket routed before excludes those who returned it.
        if ticket.status != Status.SUBMITTED or ticket.dispatched_at is not None:
            continue
        try:
            kind, pool_id = pool_for(ticket, target_for(ticket, batch.active_rules()), batch).key
        except NobodyFits:
            continue
        wanted.setdefault(kind, set()).add(pool_id)
    everyone: dict[int, User] = {}
    for kind, ids in wanted.items():
        people: dict[int, list[User]] = {pool_id: [] for pool_id in ids}
        for user, pool_id in db.session.execute(_pool_people(kind, ids).where(duty.on_duty(now, calendar.tz))):
            people[pool_id].append(user)
            everyone[user.id] = user
        for pool_id, found in people.items():
            batch.people[((kind, pool_id), frozenset())] = found
    batch.near = duplicates.near_many([t for t in tickets if t.status == Status.SUBMITTED])
    batch.on_duty.update(duty.on_duty_among(
        {other.assignee_id for group in batch.near.values() for other in group if other.assignee_id is not None},
        now, calendar.tz))
    batch.open_counts(list(everyone.values()))
    batch.shift_ends.update(duty.on_duty_until_many(
        [user_id for user_id in everyone if user_id not in batch.shift_ends], now, calendar.tz))


def _pool_people(kind: str, ids: set[int]) -> Select[tuple[User, int]]:
    """The people of the pools of one kind, each with the pool's id, by id."""
    if kind == "grid":
        return (select(User, user_grids.c.grid_id).join(user_grids, user_grids.c.user_id == User.id)
                .where(User.role == POOL_ROLES[kind], among(user_grids.c.grid_id, ids)).order_by(User.id))
    column = _team_or_company(kind)
    return select(User, column).where(User.role == POOL_ROLES[kind], among(column, ids)).order_by(User.id)


def _route(ticket: Ticket, now: datetime, calendar: WorkCalendar, batch: Batch) -> Decision:
    if ticket.status != Status.SUBMITTED:
        return Decision(False, reason=f"not routed: the ticket is {ticket.status}")
    if ticket.return_count >= MAX_RETURNS:
        return unrouted(ticket, now, "", text(_l("returned %(n)d times: the dispatcher decides",
                                                   n=ticket.return_count)), batch)
    target = target_for(ticket, batch.active_rules())
    if target.tier_id is not None and target.tier_id != ticket.tier_id:
        # Before dispatching, so that the accept-by follows the rule's tier; but a rule
        # never makes a ticket less urgent than intake's urgent words made it.
        rule_tier = db.session.get(SlaTier, target.tier_id)
        usual = ticket.category.effective_tier()
        raised = usual is not None and tier_urgency(ticket.tier) < tier_urgency(usual)
        if rule_tier is not None and (not raised or tier_urgency(rule_tier) < tier_urgency(ticket.tier)):
            ticket.tier = rule_tier
    excluded = excluded_people(ticket)
    first = duplicates.first_handled(
        ticket, None if batch.near is None else duplicates.near_of(batch.near, ticket))
    if first is not None:
        followed = follow_duplicate(ticket, first, excluded, now, calendar, batch)
        if followed is not None:
            return followed
    try:
        pool = pool_for(ticket, target, batch)
    except NobodyFits as exc:
        return unrouted(ticket, now, target.label, str(exc), batch)
    people = on_duty_people(pool, excluded, now, calendar, batch)
    if people:
        counts = batch.open_counts(people)
        person = fairest(people, counts)
        reason = explain(person, people, counts, now, calendar, batch)
        perform(ticket, "dispatch", Actor.system(), now, calendar, flush=not batch.deferred,
                assignee=person, rule=target.label, reason=reason)
        counts[person.id] = counts.get(person.id, 0) + 1
        return Decision(True, target.label, person.display_name, reason)
    if pool.team is not None or pool.company is not None:
        if not has_members(pool, batch):
            return unrouted(ticket, now, target.label,
                            text(_l("%(name)s has no active members", name=pool.name)), batch)
        reason = text(_l("no member of %(name)s is on duty: waiting in its queue", name=pool.name))
        handler = {"team": pool.team} if pool.team is not None else {"company": pool.company}
        perform(ticket, "dispatch", Actor.system(), now, calendar, flush=not batch.deferred,
                rule=target.label, reason=reason, **handler)
        return Decision(True, target.label, pool.name, reason)
    message = (_l("no grid worker of %(name)s who has not had it yet is on duty", name=pool.name) if excluded
               else _l("no grid worker of %(name)s is on duty", name=pool.name))
    return unrouted(ticket, now, target.label, text(message), batch)


def follow_duplicate(ticket: Ticket, first: duplicates.Handled, excluded: set[int], now: datetime,
                     calendar: WorkCalendar, batch: Batch) -> Decision | None:
    """Send a likely duplicate to the hand that has the first ticket: the same problem, one handler.

    Only while that hand may still take it: a person active, serving the place, on duty
    and not one who passed this ticket on; a team's or company's queue that serves the
    place. Else None, and routing goes on as for any ticket.
    """
    rule = text(_l("duplicate of %(number)s", number=first.number))
    reason = text(_l("likely the same problem as %(number)s (same place and category, open, "
                     "filed within 72 hours): sent to its handler", number=first.number))
    handler: dict[str, Any]
    # Each hand read only when the one before it is not there (the session's identity map first).
    if (person := _by_id(User, first.assignee_id)) is not None:
        if person.id in excluded or not handler_fits(person, ticket) or not handler_on_duty(person, now, calendar, batch):
            return None
        handler, name = {"assignee": person}, person.display_name
    elif (team := _by_id(Team, first.team_id)) is not None and team.active \
            and team.community_id == ticket.community_id:
        handler, name = {"team": team}, team.name
    elif (company := _by_id(PropertyCompany, first.company_id)) is not None \
            and scope.company_serves(company.id, ticket):
        handler, name = {"company": company}, company.name
    else:
        return None
    perform(ticket, "dispatch", Actor.system(), now, calendar, flush=not batch.deferred,
            rule=rule, reason=reason, **handler)
    if person is not None and person.id in batch.counts:
        batch.counts[person.id] += 1  # the next ticket of the batch sees the load
    return Decision(True, rule, name, reason)


def _by_id(model: type[T], row_id: int | None) -> T | None:
    """The row with this id, None for no id (`Session.get`)."""
    return db.session.get(model, row_id) if row_id is not None else None


def handler_on_duty(person: User, now: datetime, calendar: WorkCalendar, batch: Batch) -> bool:
    """Whether `person` may be given a ticket now: as the batch looked it up, else asked."""
    known = batch.on_duty.get(person.id)
    return duty.is_on_duty(person, now, calendar.tz) if known is None else known


def on_duty_people(pool: Pool, excluded: set[int], now: datetime, calendar: WorkCalendar,
                   batch: Batch) -> list[User]:
    """The pool's people on duty now, but those excluded, by id."""
    key = (pool.key, frozenset(excluded))
    if key not in batch.people:
        query = select(User).where(pool.members(), duty.on_duty(now, calendar.tz))
        if excluded:
            query = query.where(User.id.not_in(excluded))
        batch.people[key] = list(db.session.scalars(query.order_by(User.id)))
    return batch.people[key]


def has_members(pool: Pool, batch: Batch | None = None) -> bool:
    """True when the team or company has at least one active member, on duty or not."""
    if batch is not None and pool.key in batch.members:
        return batch.members[pool.key]
    found = db.session.scalar(select(User.id).where(pool.members(), User.active.is_(True)).limit(1)) is not None
    if batch is not None:
        batch.members[pool.key] = found
    return found


def explain(person: User, people: list[User], counts: dict[int, int], now: datetime,
            calendar: WorkCalendar, batch: Batch | None = None) -> str:
    """Why this person: their open tickets, until when they are on duty, the tie-break."""
    mine = counts.get(person.id, 0)
    if batch is not None and person.id in batch.shift_ends:
        until = batch.shift_ends[person.id]
    else:
        until = duty.on_duty_until(person.id, now, calendar.tz)
        if batch is not None:
            batch.shift_ends[person.id] = until
    if until is None:  # not in a shift now, so on call
        reason = text(_l("fewest open: %(n)d; on call", n=mine))
    else:
        local_now, local_end = now.astimezone(calendar.tz), until.astimezone(calendar.tz)
        shown = local_end.strftime("%H:%M" if local_end.date() == local_now.date() else "%m-%d %H:%M")
        reason = text(_l("fewest open: %(n)d; on duty until %(until)s", n=mine, until=shown))
    if sum(1 for u in people if counts.get(u.id, 0) == mine) > 1:
        reason += text(_l("; waited longest since a last assignment"))
    return reason


def unrouted(ticket: Ticket, now: datetime, label: str, reason: str, batch: Batch | None = None) -> Decision:
    """Leave the ticket submitted with the reason; alert the dispatchers when the reason is new."""
    reason = reason[:200]
    if ticket.unrouted_reason != reason:
        ticket.unrouted_reason = reason
        if batch is None or not batch.deferred:
            db.session.flush()
        dispatchers = notify.dispatchers_of(ticket)  # in a batch, looked up once for all its places
        # The key names the ticket and this moment, so it cannot exist yet.
        notify.notify_staff("unrouted", ticket, dispatchers,
                            f"unrouted:t{ticket.id}:{now.strftime('%Y%m%d%H%M%S%f')}", now, note=reason, fresh=True)
    return Decision(False, label, "", reason)
