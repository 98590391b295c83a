"""The daily ledger (台账): one row per grid and local day, and one line per ticket touched.

Compiled by services/ledger.py from tickets and their events with SQL aggregates;
recompiling a day replaces its rows with the same content.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ticketing.extensions import Model
from ticketing.models.places import Grid
from ticketing.models.tickets import Ticket
from ticketing.models.types import UTCDateTime


class GridDay:
    """The columns of a row kept per grid and local day; the grid's community and
    street are copied in so that scopes filter without a join."""

    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id"))
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    street_id: Mapped[int] = mapped_column(ForeignKey("streets.id"))
    day: Mapped[date] = mapped_column(Date)


class RateParts:
    """The 三率 kept as numerator and denominator, so that roll-ups add them exactly."""

    # 响应率: acceptances in time / acceptances due that day (accepted, or expired unaccepted).
    response_num: Mapped[int] = mapped_column(Integer, default=0)
    response_den: Mapped[int] = mapped_column(Integer, default=0)
    # 解决率: closed that day and never reopened / closed that day.
    resolution_num: Mapped[int] = mapped_column(Integer, default=0)
    resolution_den: Mapped[int] = mapped_column(Integer, default=0)
    # 满意率: rated satisfied or basically satisfied / rated that day.
    satisfaction_num: Mapped[int] = mapped_column(Integer, default=0)
    satisfaction_den: Mapped[int] = mapped_column(Integer, default=0)

    def rate(self, name: str) -> float | None:
        """A rate as a fraction, or None when nothing was due."""
        den: int = getattr(self, f"{name}_den")
        return getattr(self, f"{name}_num") / den if den else None


class CallbackParts:
    """The 回访 of a day (services/callbacks.py): tasks due that day, those finished by their
    deadline, and those whose resident was reached. 有效回访率 = reached / due."""

    callback_due: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    callback_in_time: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    callback_reached: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Ledger(GridDay, RateParts, CallbackParts, Model):
    """A grid's day: counts, the 三率 with their parts, and times to accept and resolve.

    Rates are kept as numerator and denominator, so that a week, a month or a
    community adds them up exactly; times are in seconds.
    """

    __tablename__ = "ledgers"
    __table_args__ = (
        UniqueConstraint("grid_id", "day"),
        Index("ix_ledgers_day_community", "day", "community_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    compiled_at: Mapped[datetime] = mapped_column(UTCDateTime)

    # Tickets filed that day, and by channel and category code.
    new: Mapped[int] = mapped_column(Integer, default=0)
    by_channel: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    by_category: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    # Tickets touched that day (filed, or any event), by their state at the end of it.
    by_status: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    # Tickets that were dispatched, accepted, resolved, closed, escalated, reopened that day.
    dispatched: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    resolved: Mapped[int] = mapped_column(Integer, default=0)
    closed: Mapped[int] = mapped_column(Integer, default=0)
    escalated: Mapped[int] = mapped_column(Integer, default=0)
    reopened: Mapped[int] = mapped_column(Integer, default=0)
    # All the grid's tickets still open when the day ended, and those of them past their deadline.
    open_at_end: Mapped[int] = mapped_column(Integer, default=0)
    overdue_at_end: Mapped[int] = mapped_column(Integer, default=0)
    # The grid workers' own patrol reports (巡查), apart from the residents': filed, resolved.
    patrol_new: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    patrol_resolved: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Tickets on hold (挂起) when the day ended; the time on hold of the tickets resolved
    # that day that were ever held (how many, and the sum: a roll-up's mean is exact).
    on_hold_at_end: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    hold_n: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    hold_total_s: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


    # Dispatch → accept and filing → resolve, for the acceptances and resolutions of the day.
    accept_mean_s: Mapped[int | None] = mapped_column(Integer)
    accept_p90_s: Mapped[int | None] = mapped_column(Integer)
    resolve_mean_s: Mapped[int | None] = mapped_column(Integer)
    resolve_p90_s: Mapped[int | None] = mapped_column(Integer)
    # How many durations the means are of, and their sum: a roll-up's mean is
    # Σ total / Σ n, exact, where averaging the daily means would not be.
    accept_n: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    accept_total_s: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    resolve_n: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    resolve_total_s: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    grid: Mapped[Grid] = relationship()
    lines: Mapped[list[LedgerLine]] = relationship(
        back_populates="ledger", order_by="LedgerLine.ticket_id", cascade="all, delete-orphan")


class HandlerDay(GridDay, RateParts, CallbackParts, Model):
    """One handler's part of a grid's day: the 三率 events that were theirs.

    Filled by the same compile as the grid's ledger, so that ranking handlers over
    30 days reads these rows, never the tickets. A handler is a person, or a team
    or company when a ticket waited in its queue unaccepted; `handler_key` names it
    (u12, t3, c2, or "none") so that the row is unique per grid and day. Summed over
    a grid's handlers, every numerator and denominator equals the grid's ledger.
    """

    __tablename__ = "ledger_handlers"
    __table_args__ = (
        UniqueConstraint("grid_id", "day", "handler_key"),
        Index("ix_ledger_handlers_day_community", "day", "community_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    handler_key: Mapped[str] = mapped_column(String(24))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    company_id: Mapped[int | None] = mapped_column(ForeignKey("property_companies.id"))
    name: Mapped[str] = mapped_column(String(100), default="")

    accepted: Mapped[int] = mapped_column(Integer, default=0)
    resolved: Mapped[int] = mapped_column(Integer, default=0)


class LedgerLine(Model):
    """A ticket touched that day, as the ledger shows it: its state, handler, deadline,
    what was done and the rating at the end of the day. Who and where come from the
    ticket, masked when shown."""

    __tablename__ = "ledger_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    ledger_id: Mapped[int] = mapped_column(ForeignKey("ledgers.id", ondelete="CASCADE"), index=True)
    # No foreign key: a line is written only by the compile's INSERT … SELECT from the
    # tickets themselves, and tickets are never deleted; the key's check would lock
    # each of the day's hundred thousand tickets on every compile (1.2 s of 6).
    ticket_id: Mapped[int] = mapped_column(Integer, index=True)
    status: Mapped[str] = mapped_column(String(20))
    handler: Mapped[str] = mapped_column(String(100), default="")
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    result: Mapped[str] = mapped_column(Text, default="")
    rating: Mapped[str | None] = mapped_column(String(16))

    ledger: Mapped[Ledger] = relationship(back_populates="lines")
    ticket: Mapped[Ticket] = relationship(primaryjoin="foreign(LedgerLine.ticket_id) == Ticket.id")

    def detail(self) -> dict[str, Any]:
        """What the line holds, for comparisons in tests and exports."""
        return {"ticket_id": self.ticket_id, "status": self.status, "handler": self.handler,
                "deadline": self.deadline, "overdue": self.overdue, "result": self.result, "rating": self.rating}
