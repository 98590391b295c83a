"""The database side of the operations page: outbox, scheduler runs, residents' messages.

All of it works the same in the embedded mode and with Redis, since the outbox and
the messages are rows in our own database.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, Protocol, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import joinedload

from ticketing.extensions import db
from ticketing.models import Notification, OutboxMessage, SchedulerRun

FAILED_OUTBOX_SHOWN = 20
MESSAGES_SHOWN = 50
# An entry the schedule no longer knows (renamed, removed) is flagged after this long.
STALE_AFTER = timedelta(minutes=5)
RESIDENT_STATUSES = ("pending", "sending", "sent", "failed")


def failed_outbox(limit: int = FAILED_OUTBOX_SHOWN) -> list[OutboxMessage]:
    """The most recently given-up outbox rows."""
    return list(db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.failed_at.is_not(None))
        .order_by(OutboxMessage.failed_at.desc(), OutboxMessage.id.desc()).limit(limit)
    ))


def retry_outbox(message_id: int) -> bool:
    """Give a failed outbox row a fresh start; False when it is not (or no longer) failed.

    A conditional UPDATE, so two admins pressing Retry reset it once; the relay then
    hands it over like a new row.
    """
    result = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.failed_at.is_not(None),
               OutboxMessage.done_at.is_(None))
        .values(failed_at=None, enqueue_count=0, enqueued_at=None)
    )
    return cast(CursorResult[Any], result).rowcount == 1


class ScheduleEntry(Protocol):
    """What the page needs of a schedule entry (workers/scheduler.py `Entry`)."""

    late_after: timedelta

    def due_after(self, fired: datetime, tz: tzinfo) -> datetime | None: ...


@dataclass
class ScheduleRow:
    """One schedule entry as the page shows it; `due_at` is the firing that is missing."""

    run: SchedulerRun
    stale: bool
    due_at: datetime | None = None


def scheduler_runs(now: datetime, schedule: Mapping[str, ScheduleEntry], tz: tzinfo) -> list[ScheduleRow]:
    """Every schedule entry that has fired, flagged when a firing is overdue by its own
    interval: the 30-second relay within minutes, the nightly ledgers not before morning."""
    rows = []
    for run in db.session.scalars(select(SchedulerRun).order_by(SchedulerRun.entry)):
        entry = schedule.get(run.entry)
        if run.last_fired_at is None:
            rows.append(ScheduleRow(run, True))
        elif entry is None:
            rows.append(ScheduleRow(run, run.last_fired_at < now - STALE_AFTER))
        else:
            due = entry.due_after(run.last_fired_at, tz)
            late = due is not None and now > due + entry.late_after
            rows.append(ScheduleRow(run, late, due if late else None))
    return rows


def resident_message_counts() -> dict[str, int]:
    """Residents' messages by status (every known status listed, zero or not)."""
    rows = db.session.execute(
        select(Notification.status, func.count())
        .where(Notification.channel != "inbox").group_by(Notification.status)
    )
    counts = dict.fromkeys(RESIDENT_STATUSES, 0)
    counts.update({status: count for status, count in rows})
    return counts


def resident_messages(failed_only: bool = False, limit: int = MESSAGES_SHOWN) -> list[Notification]:
    """The latest messages to residents, or only the failed ones."""
    query = select(Notification).options(joinedload(Notification.ticket)).where(Notification.channel != "inbox")
    if failed_only:
        query = query.where(Notification.status == "failed")
    return list(db.session.scalars(
        query.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)
    ))
