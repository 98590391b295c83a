"""Recurring problems in tests: tickets filed some days before a fixed day, at a place,
under a category, in given words."""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from tests.factories import T0, TZ, World, make_ticket
from ticketing.extensions import db
from ticketing.models import Building, Ticket
from ticketing.services.photos import PhotoStore

DAY = date(2026, 11, 17)  # the day the clusters are found for: the day before T0's
NOW = T0  # 2026-11-18 10:00 local, the morning after


def at(days_ago: float, hour: int = 10) -> datetime:
    """`days_ago` days before DAY, at `hour` local time, in UTC."""
    return (datetime.combine(DAY, time(hour), tzinfo=TZ) - timedelta(days=days_ago)).astimezone(UTC)


def file(world: World, store: PhotoStore, days_ago: float, building: Building | None = None,
         category: str = "repair.stair_light", text: str = "楼道灯不亮，晚上看不见台阶", **changes: object) -> Ticket:
    """A ticket filed through intake `days_ago` days before DAY; `changes` are then set on
    it as a later life would have left them (rating, reopen_count, assignee_id, status …)."""
    ticket = make_ticket(world, store, now=at(days_ago), building=building, category=category, description=text)
    for name, value in changes.items():
        setattr(ticket, name, value)
    db.session.commit()
    return ticket


def file_many(world: World, store: PhotoStore, days_ago: list[float], **fields: object) -> list[Ticket]:
    """One ticket per entry of `days_ago`, all alike otherwise."""
    return [file(world, store, d, **fields) for d in days_ago]
