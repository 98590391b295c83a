"""Who sees which tickets, and who handles them. Out of scope means "not found"."""
from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, and_, false, or_, select, true

from ticketing.extensions import db
from ticketing.models import (
    Community,
    Complex,
    Grid,
    HandlerKind,
    Role,
    RoutingRule,
    Team,
    Ticket,
    User,
    user_grids,
)
from ticketing.services.errors import InvalidInput

# Those who see tickets by place, not by hand (`coordinator_scope`).
COORDINATORS = (Role.ADMIN, Role.SUPERVISOR, Role.DISPATCHER)


def ticket_scope(user: User) -> ColumnElement[bool]:
    """A WHERE clause selecting the tickets `user` may see."""
    if user.role in COORDINATORS:
        return coordinated(*coordinator_scope(user))
    assigned = Ticket.assignee_id == user.id
    if user.role == Role.GRID_WORKER:
        # Literal ids, not a subquery: PostgreSQL then plans an index scan per grid
        # instead of walking the whole table (630 ms → 1 ms at a million tickets).
        return or_(assigned, Ticket.grid_id.in_([grid.id for grid in user.grids]))
    if user.role == Role.PROPERTY_STAFF and user.company_id is not None:
        return or_(assigned, Ticket.company_id == user.company_id)
    if user.role == Role.VOLUNTEER and user.team_id is not None:
        return or_(assigned, Ticket.team_id == user.team_id)
    return assigned


def coordinator_scope(user: User) -> tuple[str, int | None]:
    """Where the tickets of an admin, supervisor or dispatcher (`COORDINATORS`) lie, as
    (kind, place id): ("all", None), ("community", id), ("street", id), or
    ("nowhere", None) for one given no place."""
    if user.role == Role.ADMIN:
        return "all", None
    if user.community_id is not None:
        return "community", user.community_id
    if user.street_id is not None:
        return "street", user.street_id
    return "nowhere", None


def coordinated(kind: str, place: Any, community_id: Any = Ticket.community_id,
                street_id: Any = Ticket.street_id) -> ColumnElement[bool]:
    """A WHERE clause selecting the tickets of a coordinator's scope (`coordinator_scope`),
    or the rows of another table by its place columns; `place` the place's id, or a bound
    parameter standing for it in a statement built once for every coordinator of that
    kind (services/navigation.py)."""
    if kind == "all":
        return true()
    if kind == "community":
        return community_id == place
    if kind == "street":
        return street_id == place
    return false()


def place_scope(user: User, grid_id: Any, community_id: Any, street_id: Any) -> ColumnElement[bool]:
    """A WHERE clause on rows kept per grid (the daily ledgers), by the rule of
    `ticket_scope`: supervisors and dispatchers their community or street, grid
    workers their grids, admins all, anyone else nothing."""
    if user.role in COORDINATORS:
        return coordinated(*coordinator_scope(user), community_id=community_id, street_id=street_id)
    if user.role == Role.GRID_WORKER:
        return grid_id.in_([grid.id for grid in user.grids])
    return false()


def in_scope(user: User, ticket: Ticket) -> bool:
    """True when `user` may see `ticket` (the same rule as `ticket_scope`)."""
    if user.role in COORDINATORS:
        kind, place = coordinator_scope(user)
        return (kind == "all" or (kind == "community" and ticket.community_id == place)
                or (kind == "street" and ticket.street_id == place))
    if ticket.assignee_id == user.id:
        return True
    if user.role == Role.GRID_WORKER:
        return ticket.grid_id is not None and ticket.grid_id in {g.id for g in user.grids}
    if user.role == Role.PROPERTY_STAFF:
        return user.company_id is not None and ticket.company_id == user.company_id
    if user.role == Role.VOLUNTEER:
        return user.team_id is not None and ticket.team_id == user.team_id
    return False


def handles(user: User, ticket: Ticket) -> bool:
    """True when `user` is the ticket's handler, or may take it from their team's queue."""
    if not user.is_handler:
        return False
    if ticket.assignee_id is not None:
        return ticket.assignee_id == user.id
    if ticket.team_id is not None:
        return ticket.team_id == user.team_id
    if ticket.company_id is not None:
        return ticket.company_id == user.company_id
    return False


def rule_companies(ticket: Ticket) -> set[int]:
    """The property companies an active routing rule names for the ticket's place.

    The place is what counts, not the rule's category: the rule configures where the
    company works, and a dispatcher may correct the category before sending it.
    """
    places = [RoutingRule.scope_kind == "any"] + [
        and_(RoutingRule.scope_kind == kind, RoutingRule.scope_id == place_id)
        for kind, place_id in (("community", ticket.community_id), ("grid", ticket.grid_id),
                               ("complex", ticket.complex_id))
        if place_id is not None
    ]
    return set(db.session.scalars(select(RoutingRule.company_id).where(
        RoutingRule.active.is_(True), RoutingRule.handler_kind == HandlerKind.PROPERTY,
        RoutingRule.company_id.is_not(None), or_(*places),
    )))


def company_serves(company_id: int | None, ticket: Ticket) -> bool:
    """True when the company manages the ticket's complex, or a routing rule names it for
    the ticket's place (the service area an admin configured, e.g. a street's roads)."""
    if company_id is None:
        return False
    if ticket.complex is not None and ticket.complex.property_company_id == company_id:
        return True
    return company_id in rule_companies(ticket)


def serving_companies(ticket: Ticket) -> set[int]:
    """Every property company that `company_serves` the ticket."""
    managing = ticket.complex.property_company_id if ticket.complex is not None else None
    return rule_companies(ticket) | ({managing} if managing is not None else set())


def handler_queue(user: User) -> ColumnElement[bool]:
    """A WHERE clause for the tickets on `user`'s workbench: theirs, or their team's unclaimed."""
    mine = Ticket.assignee_id == user.id
    unclaimed = Ticket.assignee_id.is_(None)
    if user.role == Role.VOLUNTEER and user.team_id is not None:
        return or_(mine, and_(unclaimed, Ticket.team_id == user.team_id))
    if user.role == Role.PROPERTY_STAFF and user.company_id is not None:
        return or_(mine, and_(unclaimed, Ticket.company_id == user.company_id))
    return mine


def coordinates(user: User, ticket: Ticket) -> bool:
    """True for dispatchers and admins who route this ticket."""
    return user.role in (Role.DISPATCHER, Role.ADMIN) and in_scope(user, ticket)


def supervises(user: User, ticket: Ticket) -> bool:
    """True for supervisors in the ticket's community or street."""
    return user.role == Role.SUPERVISOR and in_scope(user, ticket)


def merge_target(user: User, number: str | None) -> Ticket:
    """The ticket to merge into, by number, among those `user` may see; raises
    `InvalidInput` on the form's field "target" (the web form and the API alike)."""
    number = (number or "").strip()
    if not number:
        raise InvalidInput(_l("Give the number of the ticket to merge into."), field="target")
    target = db.session.scalar(select(Ticket).where(Ticket.number == number, ticket_scope(user)))
    if target is None:
        raise InvalidInput(_l("There is no ticket with that number."), field="target")
    return target


def managed_people(editor: User) -> ColumnElement[bool]:
    """A WHERE clause for the accounts `editor` manages (edit, deactivate, reset, rosters).

    Admins: everyone. A community's supervisor: its dispatchers, the grid workers of
    its grids and the members of its teams. A street's supervisor: the same for every
    community of the street, the street's own dispatchers, and the staff of property
    companies working there. Never admins or other supervisors; nobody else manages
    anyone.
    """
    if editor.role == Role.ADMIN:
        return true()
    if editor.role != Role.SUPERVISOR:
        return false()
    if editor.community_id is not None:
        communities: Any = select(Community.id).where(Community.id == editor.community_id)
        dispatchers = User.community_id == editor.community_id
    elif editor.street_id is not None:
        communities = select(Community.id).where(Community.street_id == editor.street_id)
        dispatchers = User.street_id == editor.street_id
    else:
        return false()
    grids = select(Grid.id).where(Grid.community_id.in_(communities))
    clauses = [
        and_(User.role == Role.DISPATCHER, dispatchers),
        and_(User.role == Role.GRID_WORKER, User.id.in_(
            select(user_grids.c.user_id).where(user_grids.c.grid_id.in_(grids)))),
        and_(User.role == Role.VOLUNTEER, User.team_id.in_(
            select(Team.id).where(Team.community_id.in_(communities)))),
    ]
    if editor.community_id is None:
        companies = select(Complex.property_company_id).where(Complex.grid_id.in_(grids))
        clauses.append(and_(User.role == Role.PROPERTY_STAFF, or_(
            User.company_id.in_(companies), User.street_id == editor.street_id)))
    return or_(*clauses)
