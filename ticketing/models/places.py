"""Places: Street 街道 → Community 社区 → Grid 网格 → Complex 小区/院落 → Building 楼栋."""
from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, ForeignKey, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ticketing.extensions import Model

if TYPE_CHECKING:
    from ticketing.models.people import PropertyCompany


def generated_code(prefix: str) -> Callable[[], str]:
    """A default for the code of a row made without one (a test, a later admin page):
    unique in practice, and the workbook's export shows it so it can be kept or renamed."""
    return lambda: prefix + secrets.token_hex(5).upper()


class Street(Model):
    """A sub-district (街道), the top of the places tree."""

    __tablename__ = "streets"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    communities: Mapped[list[Community]] = relationship(
        back_populates="street", order_by="Community.code"
    )


class Community(Model):
    """A community (社区) of a street."""

    __tablename__ = "communities"

    id: Mapped[int] = mapped_column(primary_key=True)
    street_id: Mapped[int] = mapped_column(ForeignKey("streets.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    street: Mapped[Street] = relationship(back_populates="communities")
    grids: Mapped[list[Grid]] = relationship(back_populates="community", order_by="Grid.code")


class Grid(Model):
    """A grid (网格) of a community, looked after by one or more grid workers."""

    __tablename__ = "grids"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # GeoJSON polygon, so a point can later be placed in a grid.
    boundary: Mapped[str | None] = mapped_column(Text)

    community: Mapped[Community] = relationship(back_populates="grids")
    complexes: Mapped[list[Complex]] = relationship(back_populates="grid", order_by="Complex.name")


class Complex(Model):
    """A residential complex or courtyard (小区/院落); may have a property company."""

    __tablename__ = "complexes"

    id: Mapped[int] = mapped_column(primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True, default=generated_code("C"))
    name: Mapped[str] = mapped_column(String(100))
    # Other names residents use, one per line ("东怡街79号院").
    aliases: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str] = mapped_column(String(200), default="", server_default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    property_company_id: Mapped[int | None] = mapped_column(
        ForeignKey("property_companies.id"), index=True
    )

    grid: Mapped[Grid] = relationship(back_populates="complexes")
    buildings: Mapped[list[Building]] = relationship(
        back_populates="complex", order_by="Building.name"
    )
    property_company: Mapped[PropertyCompany | None] = relationship()

    @property
    def is_managed(self) -> bool:
        """True when a property company manages the complex."""
        return self.property_company_id is not None


class Building(Model):
    """A building (楼栋) of a complex."""

    __tablename__ = "buildings"

    id: Mapped[int] = mapped_column(primary_key=True)
    complex_id: Mapped[int] = mapped_column(ForeignKey("complexes.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True, default=generated_code("B"))
    name: Mapped[str] = mapped_column(String(100))
    aliases: Mapped[str] = mapped_column(Text, default="")
    # Set only when the building lies in another grid than its complex; tickets
    # about the building then go to that grid.
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    complex: Mapped[Complex] = relationship(back_populates="buildings")
    grid: Mapped[Grid | None] = relationship()
