"""Routing rules and duty rosters: who gets which ticket, and who is on duty when."""
from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Time
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ticketing.extensions import Model
from ticketing.models.catalog import Category, SlaTier
from ticketing.models.people import PropertyCompany, Team, User
from ticketing.models.types import UTCDateTime, utcnow


class RoutingRule(Model):
    """`(priority, category or its parent, place scope) → handler kind [, team/company] [, tier]`.

    Rules are tried by ascending priority; the first active one that matches the
    ticket's category (or the category's parent) and place decides the handler kind.
    """

    __tablename__ = "routing_rules"
    __table_args__ = (Index("ix_routing_rules_active_priority", "active", "priority"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    priority: Mapped[int] = mapped_column(Integer, default=100)
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))
    scope_kind: Mapped[str] = mapped_column(String(16), default="any")  # any|community|grid|complex
    scope_id: Mapped[int | None] = mapped_column(Integer)
    handler_kind: Mapped[str] = mapped_column(String(20))  # grid_worker|property|volunteer_team|mediation_team
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    company_id: Mapped[int | None] = mapped_column(ForeignKey("property_companies.id"))
    tier_id: Mapped[int | None] = mapped_column(ForeignKey("sla_tiers.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    category: Mapped[Category | None] = relationship()
    team: Mapped[Team | None] = relationship()
    company: Mapped[PropertyCompany | None] = relationship()
    tier: Mapped[SlaTier | None] = relationship()


class DutyShift(Model):
    """A weekly shift: on `weekday` (0 = Monday) from `starts` to `ends`, local time.

    A shift whose end is not after its start runs past midnight into the next day.
    """

    __tablename__ = "duty_shifts"
    __table_args__ = (Index("ix_duty_shifts_weekday", "weekday", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    weekday: Mapped[int] = mapped_column(Integer)
    starts: Mapped[time] = mapped_column(Time)
    ends: Mapped[time] = mapped_column(Time)

    user: Mapped[User] = relationship()


class Leave(Model):
    """Days a person is away (leave, sickness, training); inclusive dates."""

    __tablename__ = "leaves"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(String(200), default="")

    user: Mapped[User] = relationship()
