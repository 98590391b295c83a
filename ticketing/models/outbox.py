"""Follow-up work written in the same transaction as the change that causes it."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ticketing.extensions import Model
from ticketing.models.types import UTCDateTime, utcnow


class OutboxMessage(Model):
    """One job to run after commit: route this ticket, deliver that notification …

    The relay hands pending rows to the queue (or runs them inline) and marks them
    enqueued; the job marks its row done. A row enqueued long ago and still not
    done is handed over again, and jobs are idempotent, so nothing is lost and
    nothing happens twice.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "done_at", "enqueued_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(100))  # dotted path of the job function
    args: Mapped[list[Any]] = mapped_column(JSON, default=list)
    queue: Mapped[str] = mapped_column(String(20), default="default")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    enqueue_count: Mapped[int] = mapped_column(Integer, default=0)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")


class SchedulerRun(Model):
    """When a schedule entry last fired, for the operations page."""

    __tablename__ = "scheduler_runs"

    entry: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fire_count: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
