"""Staff as the 人员 sheet sees them: accounts by username, place codes by kind, the export.

The importer compares the sheet with this and the exporter writes it out; both read
plain columns, so some thousands of people load in a fraction of a second. The export
writes exactly what the importer reads, so importing an export changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time

from sqlalchemy import select

from ticketing.extensions import db
from ticketing.models import (
    Community,
    Complex,
    DutyShift,
    Grid,
    PropertyCompany,
    Role,
    Street,
    Team,
    User,
    user_grids,
)
from ticketing.services.places_workbook import write_workbook
from ticketing.services.staff_workbook import (
    FULL_NAME,
    MOBILE,
    NO,
    ON_CALL,
    PEOPLE,
    ROLE,
    ROLE_OF_VALUE,
    SCOPE,
    SCOPE_JOINER,
    SHIFTS,
    USERNAME,
    YES,
    Shift,
    format_shifts,
)


@dataclass
class Place:
    """A place an account's scope may name: its id and the community and street it lies in."""

    kind: str  # "street", "community", "grid", "company" or "team"
    id: int
    community_id: int | None = None
    street_id: int | None = None


@dataclass
class Account:
    """An account as the sheet compares it."""

    id: int
    username: str
    name: str
    phone: str
    role: str
    scope: str  # the 范围编码 cell it would have
    active: bool
    on_call: bool
    street_id: int | None
    shifts: list[Shift] = field(default_factory=list)


@dataclass
class Places:
    """Every place code an account's scope may name, by kind, and the streets of each company."""

    by_kind: dict[str, dict[str, Place]] = field(default_factory=dict)
    company_streets: dict[int, set[int]] = field(default_factory=dict)
    ids: dict[tuple[str, int | None], Place] = field(default_factory=dict)

    def by_id(self, kind: str, place_id: int | None) -> Place | None:
        """A place by kind and id."""
        return self.ids.get((kind, place_id))

    def kinds_of(self, code: str) -> list[str]:
        """The kinds of place that have this code."""
        return [kind for kind, places in self.by_kind.items() if code in places]


def load_places() -> Places:
    """Streets, communities, grids, companies and teams by code (not complexes or buildings)."""
    s = db.session
    places = Places()
    places.by_kind["street"] = {code: Place("street", i, None, i)
                                for i, code in s.execute(select(Street.id, Street.code))}
    street_of: dict[int, int] = {}
    communities = {}
    for i, code, street in s.execute(select(Community.id, Community.code, Community.street_id)):
        communities[code] = Place("community", i, i, street)
        street_of[i] = street
    places.by_kind["community"] = communities
    places.by_kind["grid"] = {code: Place("grid", i, community, street_of.get(community))
                              for i, code, community in s.execute(select(Grid.id, Grid.code, Grid.community_id))}
    places.by_kind["company"] = {code: Place("company", i) for i, code in
                                 s.execute(select(PropertyCompany.id, PropertyCompany.code))}
    places.by_kind["team"] = {code: Place("team", i, community, street_of.get(community))
                              for i, code, community in s.execute(select(Team.id, Team.code, Team.community_id))}
    for company, community in s.execute(select(Complex.property_company_id, Grid.community_id)
                                        .join(Grid, Complex.grid_id == Grid.id)
                                        .where(Complex.property_company_id.is_not(None)).distinct()):
        places.company_streets.setdefault(company, set()).add(street_of[community])
    places.ids = {(p.kind, p.id): p for found in places.by_kind.values() for p in found.values()}
    return places


def load_accounts() -> dict[str, Account]:
    """Every account by its username in lower case (usernames are unique regardless of case)."""
    s = db.session
    codes = {kind: {i: code for i, code in s.execute(select(model.id, model.code))}
             for kind, model in (("street", Street), ("community", Community), ("company", PropertyCompany),
                                 ("team", Team))}
    grids: dict[int, list[str]] = {}
    for user_id, code in s.execute(select(user_grids.c.user_id, Grid.code)
                                   .join(Grid, Grid.id == user_grids.c.grid_id)):
        grids.setdefault(user_id, []).append(code)
    shifts: dict[int, list[Shift]] = {}
    for user_id, weekday, starts, ends in s.execute(select(DutyShift.user_id, DutyShift.weekday,
                                                           DutyShift.starts, DutyShift.ends)):
        shifts.setdefault(user_id, []).append((weekday, _minute(starts), _minute(ends)))
    accounts: dict[str, Account] = {}
    for row in s.execute(select(User.id, User.username, User.display_name, User.phone, User.role, User.street_id,
                                User.community_id, User.company_id, User.team_id, User.active, User.on_call)):
        if row.role in (Role.SUPERVISOR, Role.DISPATCHER):
            scope = codes["community"].get(row.community_id) or codes["street"].get(row.street_id) or ""
        elif row.role == Role.GRID_WORKER:
            scope = SCOPE_JOINER.join(sorted(grids.get(row.id, [])))
        elif row.role == Role.PROPERTY_STAFF:
            scope = codes["company"].get(row.company_id, "")
        elif row.role == Role.VOLUNTEER:
            scope = codes["team"].get(row.team_id, "")
        else:
            scope = ""
        accounts[row.username.lower()] = Account(
            row.id, row.username, row.display_name, row.phone or "", row.role, scope, bool(row.active),
            bool(row.on_call), row.street_id, sorted(shifts.get(row.id, [])))
    return accounts


def _minute(value: time) -> time:
    """A time of day to the minute, as the sheet writes it."""
    return value.replace(second=0, microsecond=0, tzinfo=None)


def people_rows() -> list[dict[str, str]]:
    """The active accounts as rows of the 人员 sheet, by username."""
    rows = []
    for account in sorted(load_accounts().values(), key=lambda a: a.username.lower()):
        if account.active:
            rows.append({USERNAME: account.username, FULL_NAME: account.name, MOBILE: account.phone,
                         ROLE: ROLE_OF_VALUE.get(account.role, account.role), SCOPE: account.scope,
                         SHIFTS: format_shifts(account.shifts), ON_CALL: YES if account.on_call else NO})
    return rows


def export_staff() -> bytes:
    """A workbook (.xlsx bytes) with the 人员 sheet of every active account."""
    return write_workbook({PEOPLE.key: people_rows()}, (PEOPLE,))
