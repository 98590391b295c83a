"""The daily ledgers added up per street and per community and local day.

Written by the same compile as the grid ledgers they add up (services/ledger.py),
in the same transaction, so they always equal the sum of those ledgers by the rules
of services/ledger_report.py: flows and rate parts summed, stocks (open, overdue, on
hold) summed over the grids on that day, the 90th percentiles the largest of the
grids'. A street's dashboard then reads one row a day instead of a thousand.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ticketing.extensions import Model
from ticketing.models.ledgers import CallbackParts, RateParts
from ticketing.models.types import UTCDateTime


class AreaDay(RateParts, CallbackParts):
    """The columns of a roll-up of grid ledgers over one local day."""

    day: Mapped[date] = mapped_column(Date)
    # How many grid ledgers were added up, and the oldest of their compiles: every
    # figure of the row is at least that fresh.
    ledgers: Mapped[int] = mapped_column(Integer, default=0)
    compiled_at: Mapped[datetime] = mapped_column(UTCDateTime)

    new: Mapped[int] = mapped_column(Integer, default=0)
    by_channel: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    by_category: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    by_status: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    dispatched: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    resolved: Mapped[int] = mapped_column(Integer, default=0)
    closed: Mapped[int] = mapped_column(Integer, default=0)
    escalated: Mapped[int] = mapped_column(Integer, default=0)
    reopened: Mapped[int] = mapped_column(Integer, default=0)
    patrol_new: Mapped[int] = mapped_column(Integer, default=0)
    patrol_resolved: Mapped[int] = mapped_column(Integer, default=0)
    open_at_end: Mapped[int] = mapped_column(Integer, default=0)
    overdue_at_end: Mapped[int] = mapped_column(Integer, default=0)
    on_hold_at_end: Mapped[int] = mapped_column(Integer, default=0)
    # Sums of durations in seconds: a street's day can pass 2³¹ s.
    accept_n: Mapped[int] = mapped_column(Integer, default=0)
    accept_total_s: Mapped[int] = mapped_column(BigInteger, default=0)
    resolve_n: Mapped[int] = mapped_column(Integer, default=0)
    resolve_total_s: Mapped[int] = mapped_column(BigInteger, default=0)
    hold_n: Mapped[int] = mapped_column(Integer, default=0)
    hold_total_s: Mapped[int] = mapped_column(BigInteger, default=0)
    # The largest of the grids' 90th percentiles: a bound, as over several days.
    accept_p90_s: Mapped[int | None] = mapped_column(Integer)
    resolve_p90_s: Mapped[int | None] = mapped_column(Integer)


class StreetDay(AreaDay, Model):
    """A street's grid ledgers of a day, added up."""

    __tablename__ = "ledger_street_days"
    __table_args__ = (UniqueConstraint("street_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    street_id: Mapped[int] = mapped_column(ForeignKey("streets.id"))


class CommunityDay(AreaDay, Model):
    """A community's grid ledgers of a day, added up."""

    __tablename__ = "ledger_community_days"
    __table_args__ = (
        UniqueConstraint("community_id", "day"),
        Index("ix_ledger_community_days_day_street", "day", "street_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    street_id: Mapped[int] = mapped_column(ForeignKey("streets.id"))
