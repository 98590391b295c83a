"""Governance tasks for the tests of tests/test_governance*.py: opened through the service."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from tests.factories import T0, TZ, World
from ticketing.extensions import db
from ticketing.models import GovernanceTask, User
from ticketing.services import governance
from ticketing.services.governance import TaskInput


def local(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    """A Shanghai time of 2026, as the aware UTC time it is stored as."""
    return datetime(2026, month, day, hour, minute, tzinfo=TZ).astimezone(UTC)


def task_input(world: World, **fields: Any) -> TaskInput:
    """A valid task at 槐树院 (grid A1) about stair lights, due in two weeks; fields override."""
    values: dict[str, Any] = {
        "title": "槐树院楼道灯反复不亮", "deadline": date(2026, 12, 2), "responsible": f"user:{world.gina.id}",
        "responsible_unit": "", "plan": "排查线路，更换声控开关", "place": f"complex:{world.courtyard.id}",
        "category_id": world.category("repair.stair_light").id,
    }
    values.update(fields)
    return TaskInput(**values)


def open_task(world: World, user: User | None = None, at: datetime = T0, **fields: Any) -> GovernanceTask:
    """Open a task as `user` (Sam, community A's supervisor, by default) and commit."""
    task = governance.open_task(user or world.sam, task_input(world, **fields), at, TZ)
    db.session.commit()
    return task


def days(n: float) -> timedelta:
    return timedelta(days=n)
