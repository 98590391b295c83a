"""Governance tasks' tickets: linking new ones to the open tasks, and counting complaints
per week before and after a task opened (services/governance.py re-exports these).

A ticket counts for a task when it lies at the task's place (its building, complex,
grid or community column equals the task's place) and, unless the task covers every
category, is in its category; duplicates merged into another and rejected tickets are
not complaints of their own and count nowhere. Counting reads every such ticket, linked
or not, so the weeks before the opening have their counts too. The caller commits.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import ColumnElement, and_, case, exists, func, literal, or_, select, union_all
from sqlalchemy.dialects import postgresql, sqlite

from ticketing.extensions import db
from ticketing.models import (
    GovernanceTask,
    GovernanceTaskTicket,
    Status,
    TaskLevel,
    TaskStatus,
    Ticket,
)
from ticketing.services import ledger_report

BEFORE_WEEKS = 4  # the weeks before the opening's week that "before" counts: about the hotspots' 30 days
NOT_COUNTED = (Status.MERGED, Status.REJECTED)
WEEK = timedelta(days=7)
LEVEL_COLUMNS: dict[str, Any] = {TaskLevel.BUILDING: Ticket.building_id, TaskLevel.COMPLEX: Ticket.complex_id,
                                 TaskLevel.GRID: Ticket.grid_id, TaskLevel.COMMUNITY: Ticket.community_id}


def app_tz() -> tzinfo:
    """The app's time zone: deadlines are local dates and weeks start on a local Monday."""
    return ZoneInfo(current_app.config["TIMEZONE"])


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """The start of a local day, in UTC."""
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)


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
