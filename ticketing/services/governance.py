"""治理任务 (governance tasks): opening, editing and closing them, the tickets they link,
and whether complaints fell after they opened.

A task covers a place (a building, complex, grid or community) and one category, or
every category there. Tickets filed there after it opened are linked to it by
`link_new`: one INSERT … SELECT for every open task, which the scheduler runs every ten
minutes and `open_task` runs once — never intake, whose path stays as short as it is.
Linking and the before/after counts live in services/governance_counts.py and are
re-exported here.

Who: supervisors and admins open, edit and close the tasks of their community or
street; dispatchers read them (services/scope.place_scope on the task's grid,
community and street). The caller commits.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, Integer, Select, and_, literal, or_, select, true
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.exc import StaleDataError

from ticketing.extensions import db
from ticketing.labels import localized_name
from ticketing.models import (
    Building,
    Category,
    GovernanceTask,
    GovernanceTaskTicket,
    Grid,
    Role,
    TaskLevel,
    TaskStatus,
    Ticket,
    User,
)
from ticketing.services import audit, hotspots, scope
from ticketing.services.errors import Conflict, IllegalTransition, NotAllowed, ValidationFailed
from ticketing.services.governance_choices import (
    Place,
    find_place,
    parse,
    place_names,
    responsible_options,
    values,
)
from ticketing.services.governance_counts import (
    BEFORE_WEEKS,
    Effect,
    Week,
    app_tz,
    effect,
    effects,
    link_new,
    local_midnight,
    weekly,
    window_start,
)

__all__ = ["BEFORE_WEEKS", "Effect", "TaskInput", "Week", "close_task", "edit_task", "effect", "effects",
           "link_new", "open_task", "open_tasks", "overdue_tasks", "weekly", "window_start"]

MAX_TITLE, MAX_UNIT, MAX_PLAN, MAX_NOTE, MAX_SNAPSHOT = 100, 100, 4000, 2000, 2000
LIST_LIMIT = 200  # tasks on one list; a street has a few dozen a year
MANAGER_ROLES = (Role.SUPERVISOR, Role.ADMIN)
READER_ROLES = (Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN)
RESPONSIBLE_COLUMNS = {"user": "responsible_user_id", "team": "responsible_team_id",
                       "company": "responsible_company_id"}
AUDIT_FIELDS = ("title", "responsible_user_id", "responsible_team_id", "responsible_company_id",
                "responsible_unit", "plan", "deadline", "level", "place_id", "category_id", "status",
                "closing_note", "hotspot_id")
CHANGED_ELSEWHERE = _l("Someone else changed this task just now. Reload the page and try again.")


@dataclass(frozen=True)
class TaskInput:
    """What a supervisor entered; `place` is "<level>:<id>" and `responsible` "<kind>:<id>"
    as the form posts them (empty: none chosen)."""

    title: str = ""
    deadline: date | None = None
    responsible: str = ""
    responsible_unit: str = ""
    plan: str = ""
    place: str = ""
    category_id: int | None = None
    hotspot_id: int | None = None
    hotspot_snapshot: str = ""


# --- who sees what --------------------------------------------------------------------


def task_scope(user: User | None) -> ColumnElement[bool]:
    """A WHERE clause for the tasks `user` may see (None: every task, for jobs and the CLI)."""
    if user is None:
        return true()
    return scope.place_scope(user, GovernanceTask.grid_id, GovernanceTask.community_id, GovernanceTask.street_id)


def may_read(user: User) -> bool:
    """Dispatchers, supervisors and admins read the tasks in their scope."""
    return user.role in READER_ROLES


def may_manage(user: User) -> bool:
    """Supervisors and admins open, edit and close the tasks in their scope."""
    return user.role in MANAGER_ROLES


def place_in_scope(user: User, place: Place) -> bool:
    """Whether `place` lies in `user`'s scope, by the rule of `scope.place_scope`."""
    clause = scope.place_scope(user, literal(place.grid_id, Integer), literal(place.community_id, Integer),
                               literal(place.street_id, Integer))
    return db.session.scalar(select(literal(1)).where(clause)) is not None


def find(user: User, task_id: int) -> GovernanceTask | None:
    """The task if `user` may see it."""
    return db.session.scalar(select(GovernanceTask).where(GovernanceTask.id == task_id, task_scope(user)))


def _listed(query: Select[tuple[GovernanceTask]]) -> list[GovernanceTask]:
    return list(db.session.scalars(query.options(
        joinedload(GovernanceTask.category), joinedload(GovernanceTask.responsible_user),
        joinedload(GovernanceTask.responsible_team), joinedload(GovernanceTask.responsible_company),
    ).limit(LIST_LIMIT)))


def open_tasks(user: User | None) -> list[GovernanceTask]:
    """The open tasks `user` may see, the earliest deadline (so the overdue) first."""
    return _listed(select(GovernanceTask).where(GovernanceTask.status == TaskStatus.OPEN, task_scope(user))
                   .order_by(GovernanceTask.deadline, GovernanceTask.id))


def overdue_tasks(user: User | None, now: datetime, tz: tzinfo | None = None) -> list[GovernanceTask]:
    """The open tasks past their deadline (a local date) that `user` may see."""
    today = now.astimezone(tz or app_tz()).date()
    return _listed(select(GovernanceTask).where(GovernanceTask.status == TaskStatus.OPEN,
                                                GovernanceTask.deadline < today, task_scope(user))
                   .order_by(GovernanceTask.deadline, GovernanceTask.id))


def tasks(user: User, view: str) -> list[GovernanceTask]:
    """The list page: "open" (earliest deadline first), "closed" (latest closed first) or "all"."""
    query = select(GovernanceTask).where(task_scope(user))
    if view == "open":
        return _listed(query.where(GovernanceTask.status == TaskStatus.OPEN)
                       .order_by(GovernanceTask.deadline, GovernanceTask.id))
    if view == "closed":
        return _listed(query.where(GovernanceTask.status == TaskStatus.CLOSED)
                       .order_by(GovernanceTask.closed_at.desc(), GovernanceTask.id.desc()))
    return _listed(query.order_by(GovernanceTask.opened_at.desc(), GovernanceTask.id.desc()))


def month_tasks(user: User, first: date, tz: tzinfo) -> list[GovernanceTask]:
    """每月一题: the tasks in scope opened in the local month that begins on `first`."""
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return _listed(select(GovernanceTask).where(
        task_scope(user), GovernanceTask.opened_at >= local_midnight(first, tz),
        GovernanceTask.opened_at < local_midnight(following, tz)).order_by(GovernanceTask.opened_at))


def in_area(user: User, community_id: int | None, street_id: int | None) -> list[GovernanceTask]:
    """The open tasks of a dashboard's area (None: the user's whole scope), overdue first."""
    query = select(GovernanceTask).where(GovernanceTask.status == TaskStatus.OPEN, task_scope(user))
    if community_id is not None:
        query = query.where(GovernanceTask.community_id == community_id)
    if street_id is not None:
        query = query.where(GovernanceTask.street_id == street_id)
    return _listed(query.order_by(GovernanceTask.deadline, GovernanceTask.id))


def covering_grid(grid: Grid, day: date, tz: tzinfo) -> list[GovernanceTask]:
    """The tasks running on a local day that cover the grid: its own, those of a complex
    or building in it (a complex whose buildings lie in several grids covers each), and
    those of its whole community."""
    start, end = local_midnight(day, tz), local_midnight(day + timedelta(days=1), tz)
    covers = or_(
        GovernanceTask.grid_id == grid.id,
        and_(GovernanceTask.level == TaskLevel.COMMUNITY, GovernanceTask.community_id == grid.community_id),
        and_(GovernanceTask.level == TaskLevel.COMPLEX, GovernanceTask.place_id.in_(
            select(Building.complex_id).where(Building.grid_id == grid.id))),
    )
    return _listed(select(GovernanceTask).where(
        covers, GovernanceTask.opened_at < end,
        or_(GovernanceTask.closed_at.is_(None), GovernanceTask.closed_at >= start))
        .order_by(GovernanceTask.deadline, GovernanceTask.id))


def of_ticket(ticket: Ticket) -> list[GovernanceTask]:
    """The tasks a ticket is linked to (the ticket's page names them to whoever sees it)."""
    return list(db.session.scalars(select(GovernanceTask).join(
        GovernanceTaskTicket, GovernanceTaskTicket.task_id == GovernanceTask.id)
        .where(GovernanceTaskTicket.ticket_id == ticket.id).order_by(GovernanceTask.id)))


def linked_tickets(task: GovernanceTask, limit: int = LIST_LIMIT) -> list[Ticket]:
    """The tickets linked to a task, the latest first."""
    return list(db.session.scalars(select(Ticket).join(
        GovernanceTaskTicket, GovernanceTaskTicket.ticket_id == Ticket.id)
        .where(GovernanceTaskTicket.task_id == task.id)
        .options(joinedload(Ticket.category), joinedload(Ticket.complex), joinedload(Ticket.building))
        .order_by(Ticket.created_at.desc()).limit(limit)))


def place_labels(tasks: Iterable[GovernanceTask]) -> dict[int, str]:
    """Each task's place by name, in a query per level: for the lists."""
    rows = list(tasks)
    names = place_names((task.level, task.place_id) for task in rows)
    return {task.id: names.get((task.level, task.place_id), "") for task in rows}


def place_of(task: GovernanceTask) -> Place | None:
    """The place a task covers."""
    return find_place(task.level, task.place_id)


# --- opening, editing, closing -----------------------------------------------------------


def _check_common(errors: dict[str, Any], user: User, data: TaskInput, today: date,
                  kept_deadline: date | None = None) -> dict[str, Any]:
    """Check what opening and editing share; return the responsible columns to set."""
    title = data.title.strip()
    if not title:
        errors["title"] = _l("Give the task a title.")
    elif len(title) > MAX_TITLE:
        errors["title"] = _l("The title may be at most %(n)d characters.", n=MAX_TITLE)
    if data.deadline is None:
        errors["deadline"] = _l("Give the deadline.")
    elif data.deadline < today and data.deadline != kept_deadline:
        errors["deadline"] = _l("The deadline cannot be in the past.")
    if len(data.plan.strip()) > MAX_PLAN:
        errors["plan"] = _l("The plan may be at most %(n)d characters.", n=MAX_PLAN)
    unit = data.responsible_unit.strip()
    if len(unit) > MAX_UNIT:
        errors["responsible_unit"] = _l("The unit may be at most %(n)d characters.", n=MAX_UNIT)
    columns: dict[str, Any] = dict.fromkeys(RESPONSIBLE_COLUMNS.values())
    if data.responsible:
        picked = parse(data.responsible)
        if picked is None or data.responsible not in values(responsible_options(user)):
            errors["responsible"] = _l("Choose who is responsible from the list.")
        else:
            columns[RESPONSIBLE_COLUMNS[picked[0]]] = picked[1]
    elif not unit:
        errors["responsible"] = _l("Choose who is responsible, or type the name of the unit.")
    return columns


def _set_common(task: GovernanceTask, data: TaskInput, responsible: dict[str, Any]) -> None:
    task.title = data.title.strip()
    task.deadline = data.deadline  # type: ignore[assignment]  # checked: not None
    task.plan = data.plan.strip()
    task.responsible_unit = data.responsible_unit.strip()
    for name, value in responsible.items():
        setattr(task, name, value)


def open_task(user: User, data: TaskInput, now: datetime, tz: tzinfo) -> GovernanceTask:
    """Open a task at a place in `user`'s scope, and link the tickets already filed since
    `now`; raises `ValidationFailed` with a message per field, `NotAllowed` for other roles."""
    if not may_manage(user):
        raise NotAllowed(_l("Only supervisors and admins open governance tasks."))
    errors: dict[str, Any] = {}
    responsible = _check_common(errors, user, data, now.astimezone(tz).date())
    parsed = parse(data.place)
    place = find_place(*parsed) if parsed else None
    if place is None:
        errors["place"] = _l("Choose the place the task covers from the list.")
    elif not place_in_scope(user, place):
        errors["place"] = _l("That place is not in your area.")
    if data.category_id is not None and db.session.get(Category, data.category_id) is None:
        errors["category_id"] = _l("Choose a category from the list.")
    if errors or place is None:
        raise ValidationFailed(errors)
    task = GovernanceTask(
        level=place.level, place_id=place.id, grid_id=place.grid_id, community_id=place.community_id,
        street_id=place.street_id, category_id=data.category_id, status=TaskStatus.OPEN, opened_at=now,
        opened_by_id=user.id, closing_note="", hotspot_id=data.hotspot_id,
        hotspot_snapshot=data.hotspot_snapshot.strip()[:MAX_SNAPSHOT])
    _set_common(task, data, responsible)
    db.session.add(task)
    db.session.flush()
    link_new(now, [task.id])
    audit.record(user, "governance_task.create", "governance_task", task.id, task.title, None,
                 audit.snapshot(task, AUDIT_FIELDS), now)
    return task


def _check_may_change(user: User, task: GovernanceTask) -> None:
    if not may_manage(user):
        raise NotAllowed(_l("Only supervisors and admins change governance tasks."))
    if not task.is_open:
        raise IllegalTransition(_l("This task is closed; it can no longer be changed."))


def _flush_or_conflict() -> None:
    try:
        db.session.flush()
    except StaleDataError:
        db.session.rollback()
        raise Conflict(CHANGED_ELSEWHERE) from None


def edit_task(user: User, task: GovernanceTask, data: TaskInput, now: datetime, tz: tzinfo) -> None:
    """Change an open task's title, who is responsible, plan and deadline (its place and
    category stay: the tickets linked and counted depend on them). A deadline already
    past may stay as it is, but not be moved to another past day."""
    _check_may_change(user, task)
    errors: dict[str, Any] = {}
    responsible = _check_common(errors, user, data, now.astimezone(tz).date(), kept_deadline=task.deadline)
    if errors:
        raise ValidationFailed(errors)
    before = audit.snapshot(task, AUDIT_FIELDS)
    _set_common(task, data, responsible)
    _flush_or_conflict()
    audit.record(user, "governance_task.update", "governance_task", task.id, task.title, before,
                 audit.snapshot(task, AUDIT_FIELDS), now)


def close_task(user: User, task: GovernanceTask, note: str, now: datetime) -> None:
    """Close an open task with a note on what was done and what came of it."""
    _check_may_change(user, task)
    note = note.strip()
    if not note:
        raise ValidationFailed({"note": _l("Say what was done and what came of it.")})
    if len(note) > MAX_NOTE:
        raise ValidationFailed({"note": _l("The note may be at most %(n)d characters.", n=MAX_NOTE)})
    before = audit.snapshot(task, AUDIT_FIELDS)
    task.status, task.closed_at, task.closed_by_id, task.closing_note = TaskStatus.CLOSED, now, user.id, note
    _flush_or_conflict()
    audit.record(user, "governance_task.close", "governance_task", task.id, task.title, before,
                 audit.snapshot(task, AUDIT_FIELDS), now)


def hotspot_snapshot(user: User, hotspot_id: int | None, day: date) -> str:
    """What the recurring-problem cluster a task comes from says today, as one line to keep
    with the task ("" when it is gone: the clusters are recomputed nightly)."""
    if hotspot_id is None:
        return ""
    spot = hotspots.visible(user, hotspot_id)  # by its id, not by listing every cluster in scope
    if spot is None:
        return ""
    category = db.session.get(Category, spot.category_id) if spot.category_id else None
    return _("%(place)s · %(category)s: %(count)d tickets in %(days)d days, %(previous)d in the "
             "%(days)d days before; first %(first)s, last %(last)s",
             place=spot.place_name, category=localized_name(category) if category else _("all"),
             count=spot.count, previous=spot.previous_count, days=spot.days,
             first=spot.first_at.strftime("%Y-%m-%d"), last=spot.last_at.strftime("%Y-%m-%d"))
