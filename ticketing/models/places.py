"""Places: Street 街道 → Community 社区 → Grid 网格 → Complex 小区/院落 → Building 楼栋."""
from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ticketing.extensions import db

if TYPE_CHECKING:
    from ticketing.models.people import PropertyCompany


class Street(db.Model):
    """A sub-district (街道), the top of the places tree."""

    __tablename__ = "streets"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))

    communities: Mapped[list["Community"]] = relationship(
        back_populates="street", order_by="Community.code"
    )


class Community(db.Model):
    """A community (社区) of a street."""

    __tablename__ = "communities"

    id: Mapped[int] = mapped_column(primary_key=True)
    street_id: Mapped[int] = mapped_column(ForeignKey("streets.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))

    street: Mapped[Street] = relationship(back_populates="communities")
    grids: Mapped[list["Grid"]] = relationship(back_populates="community", order_by="Grid.code")


class Grid(db.Model):
    """A grid (网格) of a community, looked after by one or more grid workers."""

    __tablename__ = "grids"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    # GeoJSON polygon, so a point can later be placed in a grid.
    boundary: Mapped[str | None] = mapped_column(Text)

    community: Mapped[Community] = relationship(back_populates="grids")
    complexes: Mapped[list["Complex"]] = relationship(back_populates="grid", order_by="Complex.name")


class Complex(db.Model):
    """A residential complex or courtyard (小区/院落); may have a property company."""

    __tablename__ = "complexes"

    id: Mapped[int] = mapped_column(primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # Other names residents use, one per line ("东怡街79号院").
    aliases: Mapped[str] = mapped_column(Text, default="")
    property_company_id: Mapped[int | None] = mapped_column(
        ForeignKey("property_companies.id"), index=True
    )

    grid: Mapped[Grid] = relationship(back_populates="complexes")
    buildings: Mapped[list["Building"]] = relationship(
        back_populates="complex", order_by="Building.name"
    )
    property_company: Mapped["PropertyCompany | None"] = relationship()

    @property
    def is_managed(self) -> bool:
        """True when a property company manages the complex."""
        return self.property_company_id is not None


class Building(db.Model):
    """A building (楼栋) of a complex."""

    __tablename__ = "buildings"

    id: Mapped[int] = mapped_column(primary_key=True)
    complex_id: Mapped[int] = mapped_column(ForeignKey("complexes.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    aliases: Mapped[str] = mapped_column(Text, default="")

    complex: Mapped[Complex] = relationship(back_populates="buildings")
