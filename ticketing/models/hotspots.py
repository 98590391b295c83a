"""Recurring problems (高频诉求): the clusters the nightly job found, per local day and window.

services/hotspots.py finds them (tickets of one place and category, or of near-identical
wording at one place, over the last 30 or 90 days) and stores each run here: one
`HotspotRun` per day and window, its clusters, and a sample of each cluster's tickets.
Running the same day and window again replaces the run's clusters.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ticketing.extensions import Model
from ticketing.models.catalog import Category
from ticketing.models.types import UTCDateTime

LEVELS = ("building", "complex", "grid", "community")  # most specific first


class HotspotRun(Model):
    """One run of the clustering: the local day it was found for and its window in days.

    The row is the run's lock as well: storing a run upserts it first, so a second run
    of the same day and window waits for the first to commit, then replaces its clusters.
    """

    __tablename__ = "hotspot_runs"
    __table_args__ = (UniqueConstraint("day", "days"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    days: Mapped[int] = mapped_column(Integer)
    found_at: Mapped[datetime] = mapped_column(UTCDateTime)
    min_count: Mapped[int] = mapped_column(Integer)
    clusters: Mapped[int] = mapped_column(Integer, default=0)


class Hotspot(Model):
    """A cluster of tickets at one place and category (a recurring problem).

    `level` is the place's kind and `place_id` its id; street, community and grid are
    copied in so that scopes filter without joins (grid is empty for a community's
    cluster). Counts are of the window (`count`) and of the same length just before
    (`previous_count`); `weekly` holds the window's tickets per 7 days, oldest first
    (the last part may be shorter). `score` ranks clusters (services/hotspots.py says how).
    """

    __tablename__ = "hotspots"
    __table_args__ = (
        UniqueConstraint("day", "days", "level", "place_id", "category_id"),
        Index("ix_hotspots_day_days_score", "day", "days", "score"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("hotspot_runs.id", ondelete="CASCADE"), index=True)
    day: Mapped[date] = mapped_column(Date)
    days: Mapped[int] = mapped_column(Integer)
    level: Mapped[str] = mapped_column(String(12))
    place_id: Mapped[int] = mapped_column(Integer)
    place_name: Mapped[str] = mapped_column(String(200))
    street_id: Mapped[int] = mapped_column(ForeignKey("streets.id"))
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))

    count: Mapped[int] = mapped_column(Integer)
    previous_count: Mapped[int] = mapped_column(Integer)
    unsatisfied: Mapped[int] = mapped_column(Integer, default=0)
    reopened: Mapped[int] = mapped_column(Integer, default=0)
    # Tickets filed under another category that joined by their wording.
    merged: Mapped[int] = mapped_column(Integer, default=0)
    score: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    weekly: Mapped[list[int]] = mapped_column(JSON, default=list)
    # [{"name": …, "count": …}], most tickets first: who handled the window's tickets.
    handlers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The typical wording of the tickets, numbers and rooms masked.
    wording: Mapped[str] = mapped_column(String(200), default="")

    category: Mapped[Category] = relationship()
    tickets: Mapped[list[HotspotTicket]] = relationship(
        back_populates="hotspot", order_by="HotspotTicket.position", cascade="all, delete-orphan")

    @property
    def trend(self) -> int:
        """Tickets more (or fewer) than in the period before."""
        return self.count - self.previous_count

    @property
    def is_new(self) -> bool:
        """Nothing of the kind in the period before."""
        return self.previous_count == 0


class HotspotTicket(Model):
    """One of the latest tickets of a cluster (at most services/hotspots.SAMPLE of them)."""

    __tablename__ = "hotspot_tickets"

    hotspot_id: Mapped[int] = mapped_column(ForeignKey("hotspots.id", ondelete="CASCADE"), primary_key=True)
    # No foreign key, as for ledger lines: the key's check would lock every sampled ticket
    # on every run, and tickets are never deleted.
    ticket_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(Integer)  # 0: the latest

    hotspot: Mapped[Hotspot] = relationship(back_populates="tickets")
