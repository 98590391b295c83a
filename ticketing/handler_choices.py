"""Who a dispatcher may send a ticket to: the options of the dispatch form (the staff ticket
page) and of a 重办 after a 回访 (the console's callback page), shared by both blueprints.

An option's value is `user:<id>` or `team:<id>`. The lists follow how a dispatcher
thinks: the grid workers of the ticket's own grid first, the property staff of the
complex's own company first (only companies that serve the place are listed), then
the community's teams and their members. Each
label carries the tickets the person has in hand (dispatched, accepted or on hold:
the load the router balances, `routing.open_counts`) so the least busy one is easy
to spot.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from wtforms import SelectChoice

from ticketing.extensions import db
from ticketing.models import Grid, Role, Team, Ticket, User, user_grids
from ticketing.services import duty, handoff, routing, scope

Choice = tuple[str, str]


# A person offered, with where they work; or a whole team ("team:<id>", its label).
Person = tuple[User, str]
Option = Person | Choice


def _person(user: User, where: str) -> Person:
    return user, where


def grid_worker_choices(ticket: Ticket) -> list[Option]:
    """Grid workers of the ticket's community, those of its own grid first."""
    workers = db.session.scalars(
        select(User).distinct()
        .join(user_grids, user_grids.c.user_id == User.id)
        .join(Grid, Grid.id == user_grids.c.grid_id)
        .where(User.role == Role.GRID_WORKER, User.active.is_(True),
               Grid.community_id == ticket.community_id)
        .order_by(User.display_name, User.id)
    ).all()

    def own_grid_first(user: User) -> bool:
        return ticket.grid_id not in {grid.id for grid in user.grids}

    return [
        _person(user, ", ".join(g.name for g in user.grids if g.community_id == ticket.community_id))
        for user in sorted(workers, key=own_grid_first)
    ]


def property_staff_choices(ticket: Ticket) -> list[Option]:
    """Staff of the companies that serve the ticket's place (`scope.company_serves`), those
    of the company that manages its complex first."""
    managing = ticket.complex.property_company_id if ticket.complex else None
    companies = scope.serving_companies(ticket)
    if not companies:
        return []
    staff = list(db.session.scalars(
        select(User).where(User.role == Role.PROPERTY_STAFF, User.active.is_(True),
                           User.company_id.in_(companies))
        .order_by(User.display_name, User.id)
    ))
    staff.sort(key=lambda user: user.company_id != managing)
    return [_person(user, user.company.name if user.company else "") for user in staff]


def team_choices(ticket: Ticket) -> list[Option]:
    """The community's volunteer and mediation teams, each followed by its members."""
    teams = db.session.scalars(
        select(Team).where(Team.community_id == ticket.community_id).order_by(Team.kind, Team.name)
    ).all()
    choices: list[Option] = []
    for team in teams:
        choices.append((f"team:{team.id}", str(_l("%(team)s (whole team)", team=team.name))))
        choices.extend(
            _person(member, team.name)
            for member in sorted(team.members, key=lambda m: (m.display_name, m.id))
            if member.active and member.role == Role.VOLUNTEER
        )
    return choices


def handler_choices(ticket: Ticket, keep: Callable[[User], bool] | None = None) -> list[SelectChoice]:
    """The dispatch options of a ticket in <optgroup>s, after a blank "choose" option;
    with `keep`, only the people it keeps (whole teams stay)."""
    groups = tuple(
        (group, [o for o in options if keep is None or not isinstance(o[0], User) or keep(o[0])])
        for group, options in (
            (_l("Grid workers"), grid_worker_choices(ticket)),
            (_l("Property staff"), property_staff_choices(ticket)),
            (_l("Volunteer and mediation teams"), team_choices(ticket)),
        )
    )
    counts = routing.open_counts(o[0].id for _, options in groups for o in options if isinstance(o[0], User))

    def choice(option: Option) -> Choice:
        user, where = option
        if not isinstance(user, User):
            return user, where  # a whole team: its value and label as they are
        label = _l("%(name)s · %(where)s · %(n)d open", name=user.display_name, where=where,
                   n=counts.get(user.id, 0))
        return f"user:{user.id}", str(label)

    return [SelectChoice("", str(_l("Choose a handler…")))] + [
        SelectChoice(*choice(option), optgroup=str(group)) for group, options in groups for option in options
    ]


def reassign_choices(ticket: Ticket) -> list[SelectChoice]:
    """Who a ticket may be reassigned to (改派): anyone it could be dispatched to but its handler."""
    return handler_choices(ticket, keep=lambda user: user.id != ticket.assignee_id)


def transfer_choices(ticket: Ticket, now: datetime, tz: tzinfo) -> list[SelectChoice]:
    """Who a handler may pass the ticket to (转办): those it could be dispatched to who are on
    duty now, but its handler and whoever passed it on before (services/handoff.py)."""
    candidates = [o[0] for o in (*grid_worker_choices(ticket), *property_staff_choices(ticket),
                                 *team_choices(ticket)) if isinstance(o[0], User)]
    left_out = handoff.excluded_people(ticket) | {ticket.assignee_id}
    ids = [user.id for user in candidates if user.id not in left_out]
    on_duty = set(db.session.scalars(select(User.id).where(User.id.in_(ids), duty.on_duty(now, tz)))) if ids else set()
    return handler_choices(ticket, keep=lambda user: user.id in on_duty)
