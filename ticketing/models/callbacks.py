"""回访 (callbacks): a call to a resident about a ticket's result, and what came of it.

The rules (which tickets get a task, how an outcome is recorded) live in
services/callbacks.py; this is the record they keep.
"""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ticketing.extensions import Model
from ticketing.models.people import User
from ticketing.models.tickets import Ticket
from ticketing.models.types import UTCDateTime


class CallbackReason(StrEnum):
    """Why a resident is to be called."""

    UNSATISFIED = "unsatisfied"  # rated 不满意, with or without asking for a redo
    NOT_RATED = "not_rated"  # closed without rating after 3 working days
    STAFF_ENTRY = "staff_entry"  # came by walk-in, service hall or phone: often no smartphone
    SAMPLE = "sample"  # a share of the satisfied, to check the ratings are real


class CallbackState(StrEnum):
    """Where a task stands."""

    OPEN = "open"
    DONE = "done"  # the resident was reached and the outcome recorded
    FAILED = "failed"  # not reached after the last try


class CallbackTask(Model):
    """One resident to call about one ticket, for one reason, about one round of work.

    `work_round` is the ticket's reopen count for the result being judged (0 the first
    result, 1 after one reopening or redo …): one task per ticket, reason and round, so
    a retried event or two requests at once make one task, and a second 不满意 after a
    redo makes a second. `version` is the optimistic lock, as on tickets: of two
    callers recording an outcome at once, one wins and the other is told to reload.
    `attempt_log` keeps every try: when, by whom, reached or not, the note, and the
    client's idempotency key when the staff API sent one.
    """

    __tablename__ = "callback_tasks"
    __table_args__ = (
        UniqueConstraint("ticket_id", "reason", "work_round"),
        # The queue: open tasks, soonest due first.
        Index("ix_callback_tasks_state_due", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    reason: Mapped[str] = mapped_column(String(16))
    work_round: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default=CallbackState.OPEN)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # 2 working days after creation; the daily ledger counts the tasks due each day.
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempt_log: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The outcome: reached or not, solved or not, the rating the resident gave on the call
    # (kept on the ticket too when it had none: `rating_recorded`), the caller's note.
    reached: Mapped[bool | None] = mapped_column(Boolean)
    solved: Mapped[bool | None] = mapped_column(Boolean)
    rating: Mapped[str | None] = mapped_column(String(16))
    rating_recorded: Mapped[bool] = mapped_column(Boolean, default=False)
    redone: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(Text, default="")
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012  (read by SQLAlchemy, never mutated)

    ticket: Mapped[Ticket] = relationship()
    finished_by: Mapped[User | None] = relationship()

    @property
    def is_open(self) -> bool:
        """True while someone still has to call."""
        return self.state == CallbackState.OPEN

    def is_overdue(self, now: datetime) -> bool:
        """Open past its deadline."""
        return self.is_open and now > self.due_at
