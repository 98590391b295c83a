"""Tickets, their append-only events, photos, and the counter behind ticket numbers."""
from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ticketing.extensions import Model
from ticketing.models.catalog import Category, SlaTier
from ticketing.models.people import PropertyCompany, Team, User
from ticketing.models.places import Building, Community, Complex, Grid, Street
from ticketing.models.types import UTCDateTime, utcnow


class Status(StrEnum):
    """The states of a ticket; the transitions live in services/lifecycle.py."""

    SUBMITTED = "submitted"  # 待受理
    DISPATCHED = "dispatched"  # 已派单
    ACCEPTED = "accepted"  # 办理中
    ON_HOLD = "on_hold"  # 挂起
    RESOLVED = "resolved"  # 已办结
    CLOSED = "closed"
    REJECTED = "rejected"
    MERGED = "merged"
    # The resident took it back before anyone accepted it (services/lifecycle.py "withdraw").
    WITHDRAWN = "withdrawn"


OPEN_STATUSES = frozenset(
    {Status.SUBMITTED, Status.DISPATCHED, Status.ACCEPTED, Status.ON_HOLD}
)
FINAL_STATUSES = frozenset({Status.CLOSED, Status.REJECTED, Status.MERGED, Status.WITHDRAWN})
SUPERVISION_WHERE = ("status IN ('submitted', 'dispatched', 'accepted', 'on_hold') "
                     "AND (supervised IS true OR escalation_level >= 1)")


class Channel(StrEnum):
    """The door a request came through."""

    WEB = "web"
    WALK_IN = "walk_in"  # 下单
    WECHAT_GROUP = "wechat_group"  # 收单
    SERVICE_HALL = "service_hall"  # 订单
    COUNTY_CENTER = "county_center"  # 派单
    WECHAT_OA = "wechat_oa"
    PATROL = "patrol"  # 巡查
    OPEN311 = "open311"
    PHONE = "phone"


STAFF_ENTRY_CHANNELS = (Channel.WALK_IN, Channel.SERVICE_HALL, Channel.PHONE)


class HandlerKind(StrEnum):
    """Who a ticket is routed to."""

    GRID_WORKER = "grid_worker"
    PROPERTY = "property"
    VOLUNTEER_TEAM = "volunteer_team"
    MEDIATION_TEAM = "mediation_team"


class Rating(StrEnum):
    """The resident's verdict on a resolved ticket."""

    SATISFIED = "satisfied"  # 满意
    BASIC = "basic"  # 基本满意
    UNSATISFIED = "unsatisfied"  # 不满意


class Ticket(Model):
    """A resident's request, from intake to closing.

    `version` is the optimistic lock: every UPDATE checks it, so of two staff acting
    on one ticket at once exactly one wins (see services/lifecycle.py).
    """

    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        Index("ix_tickets_community_status", "community_id", "status"),
        Index("ix_tickets_grid_status", "grid_id", "status"),
        Index("ix_tickets_assignee_status", "assignee_id", "status"),
        Index("ix_tickets_company_status", "company_id", "status"),
        Index("ix_tickets_team_status", "team_id", "status"),
        Index("ix_tickets_status_accept_due", "status", "accept_due_at"),
        Index("ix_tickets_status_resolve_due", "status", "resolve_due_at"),
        Index("ix_tickets_building_category", "building_id", "category_id", "created_at"),
        # Routing's duplicate look-up: the open tickets of a category and complex filed in
        # a window (services/duplicates.py); also the complex's own index.
        Index("ix_tickets_complex_category", "complex_id", "category_id", "created_at"),
        # Few tickets are merged: the index holds only those, for the foreign key's checks.
        Index("ix_tickets_merged_into", "merged_into_id", postgresql_where=text("merged_into_id IS NOT NULL"),
              sqlite_where=text("merged_into_id IS NOT NULL")),
        # The 督办 list (services/supervision.py): open tickets escalated or flagged, a few
        # among millions. The condition is written as the list's query writes it.
        Index("ix_tickets_supervision", "street_id", "escalation_level",
              postgresql_where=text(SUPERVISION_WHERE), sqlite_where=text(SUPERVISION_WHERE)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    channel: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default=Status.SUBMITTED)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"), index=True)
    tier_id: Mapped[int] = mapped_column(ForeignKey("sla_tiers.id"))

    street_id: Mapped[int] = mapped_column(ForeignKey("streets.id"), index=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    complex_id: Mapped[int | None] = mapped_column(ForeignKey("complexes.id"))
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id"))
    address_text: Mapped[str] = mapped_column(String(200), default="")
    unit_room: Mapped[str] = mapped_column(String(64), default="")
    # Where the reporter's phone or map pin was (WGS-84), when a channel gave one.
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)

    description: Mapped[str] = mapped_column(Text)
    requester_name: Mapped[str] = mapped_column(String(64), default="")
    requester_phone: Mapped[str] = mapped_column(String(20))
    # The WeChat official account follower who filed it (channel wechat_oa); replies go there.
    resident_openid: Mapped[str | None] = mapped_column(String(64), index=True)
    # Answers to the category's extra fields (Open311 attributes), keyed by code.
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # What the classifier made of the text at intake: its category and confidence (0–1).
    guess_category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))
    guess_confidence: Mapped[float | None] = mapped_column(Float)

    handler_kind: Mapped[str | None] = mapped_column(String(20))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    company_id: Mapped[int | None] = mapped_column(ForeignKey("property_companies.id"))
    # 0 grid/courtyard, 1 community, 2 street, 3 referred upstream.
    escalation_level: Mapped[int] = mapped_column(Integer, default=0, index=True)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why the router could not place it (empty once someone has it).
    unrouted_reason: Mapped[str] = mapped_column(String(200), default="")
    supervised: Mapped[bool] = mapped_column(Boolean, default=False)
    # The SLA sweep's claims: the deadline a 75 % warning / a breach was handled for,
    # set by a conditional UPDATE so that two sweeps act once (services/sweep.py).
    warned_for: Mapped[datetime | None] = mapped_column(UTCDateTime)
    breached_for: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accept_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolve_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    held_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What a hold (挂起) awaits and the local date it is expected by; the reminder's claim,
    # once per hold (services/holds.py).
    hold_reason: Mapped[str] = mapped_column(String(200), default="", server_default="")
    hold_until: Mapped[date | None] = mapped_column(Date)
    hold_reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paused_seconds: Mapped[int] = mapped_column(Integer, default=0)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    result_note: Mapped[str] = mapped_column(Text, default="")
    return_count: Mapped[int] = mapped_column(Integer, default=0)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    rating: Mapped[str | None] = mapped_column(String(16))
    rating_comment: Mapped[str] = mapped_column(Text, default="")
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # When the retention job erased the requester's personal data (services/retention.py).
    personal_data_erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012  (read by SQLAlchemy, never mutated)

    category: Mapped[Category] = relationship(foreign_keys=[category_id])
    guess_category: Mapped[Category | None] = relationship(foreign_keys=[guess_category_id])
    tier: Mapped[SlaTier] = relationship()
    street: Mapped[Street] = relationship()
    community: Mapped[Community] = relationship()
    grid: Mapped[Grid | None] = relationship()
    complex: Mapped[Complex | None] = relationship()
    building: Mapped[Building | None] = relationship()
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    team: Mapped[Team | None] = relationship()
    company: Mapped[PropertyCompany | None] = relationship()
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    merged_into: Mapped[Ticket | None] = relationship(remote_side=[id])
    events: Mapped[list[TicketEvent]] = relationship(
        back_populates="ticket", order_by="TicketEvent.id"
    )
    photos: Mapped[list[Photo]] = relationship(back_populates="ticket", order_by="Photo.id")

    @property
    def is_open(self) -> bool:
        """True while the ticket still needs work."""
        return self.status in OPEN_STATUSES

    def is_overdue(self, now: datetime) -> bool:
        """True when the deadline that currently applies has passed."""
        if self.status == Status.DISPATCHED and self.accept_due_at is not None:
            return now > self.accept_due_at
        if self.status == Status.ACCEPTED and self.resolve_due_at is not None:
            return now > self.resolve_due_at
        return False

    @property
    def current_deadline(self) -> datetime | None:
        """The deadline the ticket is working against now, if any."""
        if self.status == Status.DISPATCHED:
            return self.accept_due_at
        if self.status in (Status.ACCEPTED, Status.ON_HOLD):
            return self.resolve_due_at
        return None


class TicketEvent(Model):
    """One append-only line of a ticket's history: who, when, what, why."""

    __tablename__ = "ticket_events"
    # A ticket's history in order; the daily ledger also asks for a ticket's first
    # event after a moment, which this index answers without reading its other events.
    __table_args__ = (Index("ix_ticket_events_ticket_at", "ticket_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    # Indexed for the daily ledger, which reads one day's events of all tickets.
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_kind: Mapped[str] = mapped_column(String(16))  # resident | staff | system
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text, default="")
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    ticket: Mapped[Ticket] = relationship(back_populates="events")
    actor: Mapped[User | None] = relationship()


class Photo(Model):
    """A photo of a ticket: the resident's report or the handler's result."""

    __tablename__ = "photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # report | result
    storage_key: Mapped[str] = mapped_column(String(200), unique=True)
    content_type: Mapped[str] = mapped_column(String(32))
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="photos")


class TicketCounter(Model):
    """The last number handed out per local day, where the database numbers by this
    counter (SQLite); on PostgreSQL each day has a sequence (services/numbering.py)."""

    __tablename__ = "ticket_counters"

    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class RevealLog(Model):
    """A record that a staff member saw a requester's personal data in full."""

    __tablename__ = "reveal_logs"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    purpose: Mapped[str] = mapped_column(String(32))  # view | export | callback
    remote_addr: Mapped[str] = mapped_column(String(64), default="")

    ticket: Mapped[Ticket] = relationship()
    user: Mapped[User] = relationship()


class FailedAttempt(Model):
    """A failed guess at a door that can be guessed at: a ticket lookup, a staff sign-in."""

    __tablename__ = "failed_attempts"
    __table_args__ = (Index("ix_failed_attempts_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
