"""治理任务 (governance tasks): a problem that keeps coming back at one place, turned into
a task with someone responsible, a plan and a deadline, and the tickets about it that
came in after it was opened.

The rules (what a task may say, which tickets it links, the before/after counts) live in
services/governance.py; this is the record they keep.
"""
from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ticketing.extensions import Model
from ticketing.models.catalog import Category
from ticketing.models.people import PropertyCompany, Team, User
from ticketing.models.types import UTCDateTime


class TaskLevel(StrEnum):
    """The kind of place a task covers, the smallest first."""

    BUILDING = "building"
    COMPLEX = "complex"
    GRID = "grid"
    COMMUNITY = "community"


class TaskStatus(StrEnum):
    """Open until the supervisor closes it with a note."""

    OPEN = "open"
    CLOSED = "closed"


def _one_of(*columns: str) -> str:
    """SQL true when at most one of the columns is set (portable: no boolean arithmetic)."""
    return " + ".join(f"(CASE WHEN {c} IS NULL THEN 0 ELSE 1 END)" for c in columns) + " <= 1"


class GovernanceTask(Model):
    """One governance task at one place, for one category or every category there.

    The place is `level` + `place_id` (a building, complex, grid or community id); the
    grid, community and street it lies in are kept beside it (`grid_id` is the
    complex's or building's grid, None for a community) so that scope and the ledgers
    find tasks with plain column tests. Who is responsible is a person, a team or a
    property company from the lists, and/or a unit typed in (`responsible_unit`, e.g.
    区住建委), for bodies that have no account here. `hotspot_id` names the recurring-
    problem cluster it came from without a foreign key: the clusters are recomputed
    nightly and their rows replaced, so `hotspot_snapshot` keeps what the cluster said.
    `version` is the optimistic lock, as on tickets: of two supervisors closing or
    editing at once, one wins and the other is told to reload.
    """

    __tablename__ = "governance_tasks"
    __table_args__ = (
        CheckConstraint("level IN ('building', 'complex', 'grid', 'community')", name="level"),
        CheckConstraint("status IN ('open', 'closed')", name="status"),
        CheckConstraint(_one_of("responsible_user_id", "responsible_team_id", "responsible_company_id"),
                        name="one_responsible"),
        # Open tasks by deadline (overdue first); a street's tasks by the month they opened.
        Index("ix_governance_tasks_status_deadline", "status", "deadline"),
        Index("ix_governance_tasks_street_opened", "street_id", "opened_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    responsible_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    responsible_team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    responsible_company_id: Mapped[int | None] = mapped_column(ForeignKey("property_companies.id"))
    responsible_unit: Mapped[str] = mapped_column(String(100), default="")
    plan: Mapped[str] = mapped_column(Text, default="")
    deadline: Mapped[date] = mapped_column(Date)  # a local date: due by the end of that day

    level: Mapped[str] = mapped_column(String(16))
    place_id: Mapped[int] = mapped_column(Integer)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"), index=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    street_id: Mapped[int] = mapped_column(ForeignKey("streets.id"))
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))

    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.OPEN)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closing_note: Mapped[str] = mapped_column(Text, default="")
    hotspot_id: Mapped[int | None] = mapped_column(Integer)
    hotspot_snapshot: Mapped[str] = mapped_column(Text, default="")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012  (read by SQLAlchemy, never mutated)

    category: Mapped[Category | None] = relationship()
    responsible_user: Mapped[User | None] = relationship(foreign_keys=[responsible_user_id])
    responsible_team: Mapped[Team | None] = relationship()
    responsible_company: Mapped[PropertyCompany | None] = relationship()
    opened_by: Mapped[User] = relationship(foreign_keys=[opened_by_id])
    closed_by: Mapped[User | None] = relationship(foreign_keys=[closed_by_id])

    @property
    def is_open(self) -> bool:
        """True until closed."""
        return self.status == TaskStatus.OPEN

    def is_overdue(self, today: date) -> bool:
        """Open after its deadline day (`today` is the local date)."""
        return self.is_open and today > self.deadline

    @property
    def responsible_name(self) -> str:
        """Who is responsible, as one line: the person, team or company, then the unit typed in."""
        picked = (self.responsible_user.display_name if self.responsible_user else
                  self.responsible_team.name if self.responsible_team else
                  self.responsible_company.name if self.responsible_company else "")
        return " · ".join(part for part in (picked, self.responsible_unit) if part)


class GovernanceTaskTicket(Model):
    """A ticket filed after a task opened, at its place and in its category.

    The key (task, ticket) makes linking idempotent: the link job inserts what is
    missing and skips what is there, however often or concurrently it runs.
    """

    __tablename__ = "governance_task_tickets"

    task_id: Mapped[int] = mapped_column(ForeignKey("governance_tasks.id", ondelete="CASCADE"), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True, index=True)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime)
