"""The database side of the operations page: outbox, scheduler runs, residents' messages.

All of it works the same in the embedded mode and with Redis, since the outbox and
the messages are rows in our own database.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import joinedload

from ticketing.extensions import db
from ticketing.models import Notification, OutboxMessage, SchedulerRun

FAILED_OUTBOX_SHOWN = 20
MESSAGES_SHOWN = 50
# Every frequent entry fires at least every minute; one silent for this long is
# flagged (the nightly ones will be too, which an operator reads at a glance).
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
    return result.rowcount == 1


@dataclass
class ScheduleRow:
    """One schedule entry as the page shows it."""

    run: SchedulerRun
    stale: bool


def scheduler_runs(now: datetime) -> list[ScheduleRow]:
    """Every schedule entry that has fired, flagged when it has been silent too long."""
    runs = db.session.scalars(select(SchedulerRun).order_by(SchedulerRun.entry))
    return [ScheduleRow(run, run.last_fired_at is None or run.last_fired_at < now - STALE_AFTER)
            for run in runs]


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
