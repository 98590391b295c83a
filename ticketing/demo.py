"""Demo data: a realistic sub-district (城关街道) with staff of every role and tickets.

`load_demo()` loads it once. The places come from the workbook and GeoJSON in
`demo_places/`, loaded through the places importer as an office's own would be, and so
do the people (its 人员 sheet, through the staff importer); the tickets are planned in `demo_tickets.py` and filed only through the intake service
and moved only through the state machine, at explicit past times, so every event,
deadline and counter is what real use would have produced. The randomness is
seeded, so two loads at the same `now` give the same data.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from ticketing.demo_callbacks import work_demo_callbacks
from ticketing.demo_data import DEMO_PASSWORD, STAFF, STREET_CODE
from ticketing.demo_governance import file_demo_governance
from ticketing.demo_hotspots import file_recurring_problem, find_demo_hotspots
from ticketing.extensions import db
from ticketing.models import (
    Community,
    Complex,
    Grid,
    Street,
    Team,
    User,
    utcnow,
)
from ticketing.reference import ensure_reference_data
from ticketing.services.ledger import compile_day
from ticketing.services.places_import import import_places
from ticketing.services.staff_import import import_staff
from ticketing.services.workdays import load_calendar

__all__ = ["DEMO_LOGINS", "DEMO_PASSWORD", "DemoConflict", "DemoLogin", "demo_state", "load_demo"]

# Demo states, as `demo_state()` reports them.
LOADED = "loaded"
OTHER_DATA = "other-data"
EMPTY = "empty"


DEMO_PLACES = Path(__file__).parent / "demo_places"
DEMO_WORKBOOK = DEMO_PLACES / "places.xlsx"
DEMO_BOUNDARIES = DEMO_PLACES / "grids.geojson"


class DemoConflict(RuntimeError):
    """Demo data cannot be added: some of its usernames are already taken."""


@dataclass(frozen=True)
class DemoLogin:
    """One row of the demo logins table."""

    username: str
    role: str
    name: str


def login_scope(user: User) -> str:
    """A short description of what an account covers, for the logins table."""
    if user.grids:
        return ", ".join(grid.name for grid in user.grids)
    for place in (user.company, user.team, user.community, user.street):
        if place is not None:
            return place.name
    return "*"


DEMO_LOGINS: list[DemoLogin] = [
    DemoLogin(s.username, s.role, f"{s.name}（{s.title}）" if s.title else s.name) for s in STAFF
]


def demo_state() -> str:
    """`loaded` when the demo street exists, `other-data` when the database holds
    other places or accounts (a real installation), else `empty`."""
    if db.session.scalar(select(Street.id).where(Street.code == STREET_CODE)) is not None:
        return LOADED
    others = db.session.scalar(select(func.count()).select_from(Street)) or db.session.scalar(
        select(func.count()).select_from(User)
    )
    return OTHER_DATA if others else EMPTY


def load_demo(now: datetime | None = None, force: bool = False) -> bool:
    """Load the demo sub-district and its tickets; return True if anything was added.

    Runs once: when the demo street exists it returns False and changes nothing,
    with or without `force`, except that reference data a newer release ships
    (keywords and trigger words where there are none yet) is added, as
    `flask reference load` does. Into a database that already holds other places or
    accounts it loads only with `force` (the demo accounts share a published
    password), and raises `DemoConflict` if a demo username is taken. Tickets are
    spread over the 30 days before `now` (an aware UTC time; default: the clock).
    """
    state = demo_state()
    if state == LOADED or (state == OTHER_DATA and not force):
        if state == LOADED:
            ensure_reference_data()
            db.session.commit()
        return False
    taken = db.session.scalars(select(User.username).where(User.username.in_([s.username for s in STAFF])))
    clashes = sorted(taken)
    if clashes:
        raise DemoConflict("usernames already taken: " + ", ".join(clashes))
    now = now or utcnow()
    if now.tzinfo is None:
        raise ValueError("load_demo needs an aware datetime")
    from ticketing.demo_tickets import (
        file_demo_tickets,  # the ticket half of the loader
    )

    session = db.session()
    # Intake commits per ticket; reloading every place and person after each commit
    # would double the load time, and nothing else writes these rows meanwhile.
    expire, session.expire_on_commit = session.expire_on_commit, False
    try:
        ensure_reference_data()
        world = build_places_and_people(now)
        db.session.commit()
        tz = ZoneInfo(current_app.config["TIMEZONE"])
        file_demo_tickets(world, now, tz, Path(current_app.config["UPLOAD_FOLDER"]),
                          current_app.config["MAX_PHOTO_BYTES"])
        db.session.commit()
        file_demo_governance(world, now, tz)  # 治理任务: one whose complaints stopped, one past its deadline
        file_recurring_problem(world, now, tz)  # 高频诉求: the stairwell light that keeps going out
        work_demo_callbacks(world, now, load_calendar(tz))  # 回访 of the older tasks
        compile_demo_ledgers(now, tz)
        find_demo_hotspots(now, tz)  # as the nightly job would have, so /ledger/hotspots has data
    finally:
        session.expire_on_commit = expire
    db.session.expire_all()
    return True


def compile_demo_ledgers(now: datetime, tz: ZoneInfo) -> None:
    """The ledgers of the demo's 30 days and of today so far, as the scheduler would
    have compiled them, so that the dashboard has its trends from the start."""
    today = now.astimezone(tz).date()
    for back in range(30, -1, -1):
        compile_day(today - timedelta(days=back), tz, now)


@dataclass
class DemoWorld:
    """The demo rows the ticket planner refers to, by code or username."""

    street: Street
    communities: dict[str, Community]
    grids: dict[str, Grid]
    complexes: list[Complex]
    teams: dict[str, Team]
    users: dict[str, User]

    def grid_workers(self, grid: Grid) -> list[User]:
        """The grid workers of a grid."""
        return [u for u in self.users.values() if grid in u.grids]

    def staff(self, role: str, community: Community | None) -> list[User]:
        """Staff of a role scoped to exactly this community (None: the whole street)."""
        cid = community.id if community else None
        return [u for u in self.users.values() if u.role == role and u.community_id == cid]


def load_demo_places() -> None:
    """The demo street's places, companies and teams, through the importer (commits)."""
    report = import_places(str(DEMO_WORKBOOK), DEMO_BOUNDARIES.read_bytes(), DEMO_BOUNDARIES.name)
    if report.problems:
        raise RuntimeError("the demo workbook does not import: " + "; ".join(map(str, report.problems)))


def build_places_and_people(now: datetime) -> DemoWorld:
    """Add the street, communities, grids, complexes, buildings, teams and staff."""
    load_demo_places()
    street = db.session.scalars(select(Street).where(Street.code == STREET_CODE)).one()
    communities = {c.code: c for c in street.communities}
    grids = {g.code: g for c in communities.values() for g in c.grids}
    complexes = list(db.session.scalars(
        select(Complex).where(Complex.grid_id.in_([g.id for g in grids.values()])).order_by(Complex.code)))
    team_rows = db.session.scalars(select(Team).where(Team.community_id.in_([c.id for c in communities.values()])))
    teams = {team.code: team for team in team_rows}
    users = load_demo_people(now - timedelta(days=60))
    by_kind = {f"{team.community.code}:{team.kind}": team for team in teams.values()}
    return DemoWorld(street, communities, grids, complexes, by_kind, users)


def load_demo_people(created: datetime) -> dict[str, User]:
    """The demo staff from the workbook's 人员 sheet, through the staff importer as an
    office's own would be, but with the shared, published demo password (commits)."""
    # One hash for all: the demo accounts share a published password anyway, and
    # hashing is slow by design.
    report = import_staff(str(DEMO_WORKBOOK), None, created, password_hash=generate_password_hash(DEMO_PASSWORD))
    if report.problems:
        raise RuntimeError("the demo staff do not import: " + "; ".join(map(str, report.problems)))
    return {u.username: u for u in db.session.scalars(select(User).where(
        User.username.in_([s.username for s in STAFF])))}
