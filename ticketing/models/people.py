"""People and organisations: staff accounts, property companies, volunteer teams."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import Boolean, Column, ForeignKey, Integer, String, Table, false, true
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from ticketing.extensions import Model, db
from ticketing.models.places import Community, Grid, Street, generated_code
from ticketing.models.types import UTCDateTime, utcnow


class Role(StrEnum):
    """What a staff account does; see the roles table in README.md, "Who uses it"."""

    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    DISPATCHER = "dispatcher"
    GRID_WORKER = "grid_worker"
    PROPERTY_STAFF = "property_staff"
    VOLUNTEER = "volunteer"


HANDLER_ROLES = frozenset({Role.GRID_WORKER, Role.PROPERTY_STAFF, Role.VOLUNTEER})


class TeamKind(StrEnum):
    """A volunteer team (助老, errands) or a dispute-mediation team (调解)."""

    VOLUNTEER = "volunteer"
    MEDIATION = "mediation"


class PropertyCompany(Model):
    """A property-management company (物业), e.g. a 红色物业 company."""

    __tablename__ = "property_companies"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True, default=generated_code("P"))
    name: Mapped[str] = mapped_column(String(100), unique=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class Team(Model):
    """A volunteer or mediation team of a community."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True, default=generated_code("T"))
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    community: Mapped[Community] = relationship()
    members: Mapped[list[User]] = relationship(back_populates="team")


user_grids = Table(
    "user_grids",
    db.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("grid_id", ForeignKey("grids.id", ondelete="CASCADE"), primary_key=True),
)


class User(UserMixin, Model):
    """A staff account. Residents have none; they are known by ticket and phone.

    Scope: a grid worker has grids; property staff a company; a volunteer a team;
    dispatchers and supervisors a community, or the whole street when community is
    empty; admins everything.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    display_name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(32), index=True)
    street_id: Mapped[int | None] = mapped_column(ForeignKey("streets.id"), index=True)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"), index=True)
    company_id: Mapped[int | None] = mapped_column(ForeignKey("property_companies.id"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # On call: eligible for routing at any hour, whatever the shifts say.
    on_call: Mapped[bool] = mapped_column(Boolean, default=False)
    # When routing last gave this person a ticket; ties go to whoever waited longest.
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locale: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set with a one-time password (new account, reset): nothing but choosing one's own
    # password is possible until it is cleared.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Part of every session and remember-me cookie (`get_id`): raising it signs the
    # person out everywhere at once (deactivation, a password reset or change).
    auth_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    street: Mapped[Street | None] = relationship()
    community: Mapped[Community | None] = relationship()
    company: Mapped[PropertyCompany | None] = relationship()
    team: Mapped[Team | None] = relationship(back_populates="members")
    grids: Mapped[list[Grid]] = relationship(secondary=user_grids, order_by="Grid.code")

    def set_password(self, password: str) -> None:
        """Store a salted hash of the password, never the password."""
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        """True when the password matches the stored hash."""
        return check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:  # Flask-Login reads this
        return self.active

    def get_id(self) -> str:
        """What sessions and remember-me cookies keep: the id and the session version,
        so that raising `auth_version` makes every earlier session fail to load."""
        return f"{self.id}.{self.auth_version or 0}"

    @property
    def is_handler(self) -> bool:
        """True for the roles that accept and resolve tickets."""
        return self.role in HANDLER_ROLES

    def has_role(self, *roles: str) -> bool:
        """True when the account has one of the roles."""
        return self.role in roles
