"""治理任务 (governance tasks): opening, editing and closing them, the tickets they link,
and whether complaints fell after they opened.

A task covers a place (a building, complex, grid or community) and one category, or
every category there. Tickets filed there after it opened are linked to it by
`link_new`: one INSERT … SELECT for every open task, which the scheduler runs every ten
minutes and `open_task` runs once — never intake, whose path stays as short as it is.
The before/after figures count every matching ticket, linked or not, so that the weeks
before the opening have their counts too. Duplicates merged into another ticket and
rejected tickets are not complaints of their own and count nowhere.

Who: supervisors and admins open, edit and close the tasks of their community or
street; dispatchers read them (services/scope.place_scope on the task's grid,
community and street). The caller commits.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
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
    Status,
    TaskLevel,
    TaskStatus,
    Ticket,
    User,
)
from ticketing.services import audit, hotspots, ledger_report, scope
from ticketing.services.errors import Conflict, IllegalTransition, NotAllowed, ValidationFailed
from ticketing.services.governance_choices import (
    Place,
    find_place,
    parse,
    place_names,
    responsible_options,
    values,
)

MAX_TITLE, MAX_UNIT, MAX_PLAN, MAX_NOTE, MAX_SNAPSHOT = 100, 100, 4000, 2000, 2000
BEFORE_WEEKS = 4  # the weeks before the opening's week that "before" counts: about the hotspots' 30 days
LIST_LIMIT = 200  # tasks on one list; a street has a few dozen a year
MANAGER_ROLES = (Role.SUPERVISOR, Role.ADMIN)
READER_ROLES = (Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN)
NOT_COUNTED = (Status.MERGED, Status.REJECTED)
WEEK = timedelta(days=7)
LEVEL_COLUMNS: dict[str, Any] = {TaskLevel.BUILDING: Ticket.building_id, TaskLevel.COMPLEX: Ticket.complex_id,
                                 TaskLevel.GRID: Ticket.grid_id, TaskLevel.COMMUNITY: Ticket.community_id}
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


def app_tz() -> tzinfo:
    """The app's time zone: deadlines are local dates and weeks start on a local Monday."""
    return ZoneInfo(current_app.config["TIMEZONE"])


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


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """The start of a local day, in UTC."""
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)


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
    """Open a task at a place in `user`'s scope and link what is already there to link;
    raises `ValidationFailed` with a message per field, `NotAllowed` for other roles."""
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
    for days in (30, 90):
        for spot in hotspots.for_scope(user, day, days):
            if getattr(spot, "id", None) == hotspot_id:
                category = db.session.get(Category, spot.category_id) if spot.category_id else None
                return _("%(place)s · %(category)s: %(count)d tickets in %(days)d days, %(previous)d in the "
                         "%(days)d days before; first %(first)s, last %(last)s",
                         place=spot.place_name, category=localized_name(category) if category else _("all"),
                         count=spot.count, previous=spot.previous_count, days=days,
                         first=spot.first_at.strftime("%Y-%m-%d"), last=spot.last_at.strftime("%Y-%m-%d"))
    return ""


# --- linking and counting -------------------------------------------------------------------


def _matching(tasks_where: ColumnElement[bool], since: Any, until: datetime | None = None) -> Any:
    """(task_id, opened_at, ticket_id, created_at) of every counted ticket at a task's place
    and in its category, filed from `since` (an expression per task) to `until`: one SELECT
    per level, joined by UNION ALL, so that each can use the ticket index of its column."""
    bounds = [Ticket.created_at >= since] + ([Ticket.created_at <= until] if until is not None else [])
    return union_all(*(
        select(GovernanceTask.id.label("task_id"), GovernanceTask.opened_at.label("opened_at"),
               Ticket.id.label("ticket_id"), Ticket.created_at.label("created_at"))
        .select_from(GovernanceTask).join(Ticket, column == GovernanceTask.place_id)
        .where(GovernanceTask.level == level, tasks_where, *bounds,
               or_(GovernanceTask.category_id.is_(None), Ticket.category_id == GovernanceTask.category_id),
               Ticket.status.not_in(NOT_COUNTED))
        for level, column in LEVEL_COLUMNS.items()))


def link_new(now: datetime, task_ids: Iterable[int] | None = None) -> int:
    """Link every open task (or those of `task_ids`) to the matching tickets filed since it
    opened that are not linked yet; return how many links were added.

    One INSERT … SELECT; ON CONFLICT DO NOTHING on the (task, ticket) key makes a second
    run, or two at once, add nothing twice and fail on nothing.
    """
    where = GovernanceTask.status == TaskStatus.OPEN
    if task_ids is not None:
        where = and_(where, GovernanceTask.id.in_(list(task_ids)))
    found = _matching(where, GovernanceTask.opened_at).subquery()
    link = GovernanceTaskTicket
    missing = select(found.c.task_id, found.c.ticket_id, literal(now, link.linked_at.type)).where(
        ~exists().where(link.task_id == found.c.task_id, link.ticket_id == found.c.ticket_id))
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    # RETURNING counts the rows added: an INSERT's rowcount is not kept by every driver.
    statement = (dialect.insert(link).from_select(["task_id", "ticket_id", "linked_at"], missing)
                 .on_conflict_do_nothing().returning(link.ticket_id))
    return len(db.session.execute(statement).all())


@dataclass(frozen=True)
class Week:
    """A Monday week (local) of a task's chart: tickets filed before and after it opened."""

    start: date
    before: int
    after: int

    @property
    def total(self) -> int:
        return self.before + self.after


@dataclass(frozen=True)
class Effect:
    """Complaints per week before a task opened and since (to `now`), and the change.

    "Before" is the `BEFORE_WEEKS` Monday weeks before the opening's week and that week
    up to the opening; "after" is from the opening to now. Means are per 7 days of each
    span, so a part week counts as the part it is. Fewer than `ledger_report.MIN_TICKETS`
    tickets in both spans, or less than a week since the opening, are not judged.
    """

    before: int
    after: int
    before_weeks: float
    after_weeks: float

    @property
    def before_mean(self) -> float:
        return self.before / self.before_weeks if self.before_weeks else 0.0

    @property
    def after_mean(self) -> float:
        return self.after / self.after_weeks if self.after_weeks else 0.0

    @property
    def min_tickets(self) -> int:
        """The fewest tickets, before and after together, that a change may be judged on."""
        return ledger_report.MIN_TICKETS

    @property
    def too_few(self) -> bool:
        """Too few tickets to judge (the dashboards' small-sample rule)."""
        return not ledger_report.enough(self.before + self.after)

    @property
    def too_early(self) -> bool:
        """Less than a week since the opening."""
        return self.after_weeks < 1

    @property
    def judged(self) -> bool:
        return not (self.too_few or self.too_early)

    @property
    def change(self) -> float:
        """After minus before, tickets per week."""
        return self.after_mean - self.before_mean

    @property
    def change_percent(self) -> float | None:
        """The change as a share of before (None when there was nothing before)."""
        return 100 * self.change / self.before_mean if self.before_mean else None

    @property
    def reduced(self) -> bool:
        """Judged, and fewer complaints per week since the opening."""
        return self.judged and self.change < 0


def window_start(task: GovernanceTask, tz: tzinfo) -> datetime:
    """The first moment "before" counts: local midnight of the Monday `BEFORE_WEEKS` weeks
    before the Monday of the opening's week."""
    opened = task.opened_at.astimezone(tz).date()
    return local_midnight(opened - timedelta(days=opened.weekday()) - BEFORE_WEEKS * WEEK, tz)


def _counted(tasks: list[GovernanceTask], now: datetime, tz: tzinfo) -> Any:
    """The matching tickets of `tasks`, each from its own window's start to `now`."""
    starts = {task.id: literal(window_start(task, tz), Ticket.created_at.type) for task in tasks}
    return _matching(GovernanceTask.id.in_(list(starts)), case(starts, value=GovernanceTask.id), now).subquery()


def effects(tasks: list[GovernanceTask], now: datetime, tz: tzinfo | None = None) -> dict[int, Effect]:
    """The effect of each task: one query counting before and after per task, for the lists."""
    tz = tz or app_tz()
    counts: dict[int, tuple[int, int]] = {}
    if tasks:
        found = _counted(tasks, now, tz)
        counts = {task_id: (int(before), int(total)) for task_id, before, total in db.session.execute(
            select(found.c.task_id, func.sum(case((found.c.created_at < found.c.opened_at, 1), else_=0)),
                   func.count()).group_by(found.c.task_id))}
    result = {}
    for task in tasks:
        before, total = counts.get(task.id, (0, 0))
        result[task.id] = Effect(before, total - before, (task.opened_at - window_start(task, tz)) / WEEK,
                                 max(now - task.opened_at, timedelta()) / WEEK)
    return result


def effect(task: GovernanceTask, now: datetime, tz: tzinfo | None = None) -> Effect:
    """Complaints per week before and after the task opened, and the change."""
    return effects([task], now, tz)[task.id]


def weekly(task: GovernanceTask, now: datetime, tz: tzinfo | None = None) -> list[Week]:
    """Complaints per Monday week (local): the `BEFORE_WEEKS` weeks before the opening's
    week, that week (split at the opening), and every week since, to `now`'s."""
    tz = tz or app_tz()
    first = window_start(task, tz).astimezone(tz).date()
    today = now.astimezone(tz).date()
    count = (today - timedelta(days=today.weekday()) - first).days // 7 + 1
    before, after = [0] * count, [0] * count
    found = _counted([task], now, tz)
    for (at,) in db.session.execute(select(found.c.created_at)):
        index = (at.astimezone(tz).date() - first).days // 7
        (before if at < task.opened_at else after)[index] += 1
    return [Week(first + i * WEEK, before[i], after[i]) for i in range(count)]
