"""Test data: a small sub-district with a persona for every role, and tickets in any state.

Personas (password `PASSWORD` for all):
  adam   admin
  sam    supervisor of community A       sue   supervisor of the whole street
  dora   dispatcher of community A       dan   dispatcher of community B
  gina   grid worker of grid A1          greg  grid worker of grid A2
  gabe   grid worker of grid B1
  pete   staff of the property company that manages 红星小区 (grid A1)
  vera   volunteer of community A's volunteer team
  mia    member of community A's mediation team
"""
from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

from PIL import Image
from werkzeug.security import generate_password_hash

from ticketing.extensions import db
from ticketing.models import (
    Building,
    Category,
    Community,
    Complex,
    DutyShift,
    Grid,
    Leave,
    PropertyCompany,
    Role,
    Street,
    Team,
    TeamKind,
    Ticket,
    User,
)
from ticketing.reference import ensure_reference_data
from ticketing.services import intake
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore
from ticketing.services.workdays import WorkCalendar

PASSWORD = "correct-horse-battery"
TZ = ZoneInfo("Asia/Shanghai")
# A Wednesday morning, a working day: 2026-11-18 10:00 in Shanghai.
T0 = datetime(2026, 11, 18, 2, 0, tzinfo=UTC)
PHONE = "13812345678"


@dataclass
class World:
    """Everything a test may refer to by name."""

    street: Street
    community_a: Community
    community_b: Community
    grid_a1: Grid
    grid_a2: Grid
    grid_b1: Grid
    managed: Complex  # 红星小区, with a property company, grid A1
    courtyard: Complex  # 槐树院, self-managed, grid A1
    west: Complex  # 西苑, grid A2
    east: Complex  # 东苑, community B
    building_managed: Building
    building_courtyard: Building
    building_west: Building
    building_east: Building
    company: PropertyCompany
    volunteers: Team
    mediators: Team
    people: dict[str, User]

    def __getattr__(self, name: str) -> User:
        people = self.__dict__.get("people", {})
        if name in people:
            return people[name]
        raise AttributeError(name)

    def category(self, code: str) -> Category:
        """A category by its code, e.g. "repair.stair_light"."""
        return db.session.query(Category).filter_by(code=code).one()


def calendar() -> WorkCalendar:
    """The working-day calendar without admin overrides."""
    return WorkCalendar(tz=TZ)


# The personas' passwords are hashed with PBKDF2 at 1,000 rounds: a real salted hash that
# the real check_password_hash verifies, but in microseconds. The default (scrypt) takes
# 70 ms to check, and nearly 500 sign-ins through the login form made that a sixth of
# the suite's time. Passwords the application itself sets keep its default method.
TEST_HASH_METHOD = "pbkdf2:sha256:1000"


@lru_cache(maxsize=1)
def password_hash() -> str:
    """The hash of PASSWORD, computed once (of the cheap method above)."""
    return generate_password_hash(PASSWORD, method=TEST_HASH_METHOD)


def make_user(username: str, role: str, **fields: object) -> User:
    """A staff account with the shared test password."""
    user = User(username=username, display_name=fields.pop("display_name", username.title()),
                role=role, password_hash=password_hash(), **fields)
    db.session.add(user)
    return user


def build_world() -> World:
    """Create the sub-district and its people; commits."""
    ensure_reference_data()
    street = Street(code="ST01", name="和平街道")
    ca = Community(code="CA", name="东怡社区", street=street)
    cb = Community(code="CB", name="西岭社区", street=street)
    a1 = Grid(code="CA-01", name="第一网格", community=ca)
    a2 = Grid(code="CA-02", name="第二网格", community=ca)
    b1 = Grid(code="CB-01", name="第一网格", community=cb)
    company = PropertyCompany(name="红心物业服务公司", phone="010-66660000")
    managed = Complex(name="红星小区", grid=a1, property_company=company, aliases="东怡街79号院")
    courtyard = Complex(name="槐树院", grid=a1)
    west = Complex(name="西苑", grid=a2)
    east = Complex(name="东苑", grid=b1)
    buildings = [Building(name=f"{n}号楼", complex=c) for n, c in
                 ((3, managed), (1, courtyard), (5, west), (2, east))]
    buildings[0].aliases = "3栋"
    volunteers = Team(name="东怡志愿服务队", kind=TeamKind.VOLUNTEER, community=ca)
    mediators = Team(name="东怡调解队", kind=TeamKind.MEDIATION, community=ca)
    db.session.add_all([street, company, volunteers, mediators, *buildings])
    people = {
        "adam": make_user("adam", Role.ADMIN),
        "sam": make_user("sam", Role.SUPERVISOR, street=street, community=ca),
        "sue": make_user("sue", Role.SUPERVISOR, street=street),
        "dora": make_user("dora", Role.DISPATCHER, street=street, community=ca),
        "dan": make_user("dan", Role.DISPATCHER, street=street, community=cb),
        "gina": make_user("gina", Role.GRID_WORKER, street=street, grids=[a1]),
        "greg": make_user("greg", Role.GRID_WORKER, street=street, grids=[a2]),
        "gabe": make_user("gabe", Role.GRID_WORKER, street=street, grids=[b1]),
        "pete": make_user("pete", Role.PROPERTY_STAFF, street=street, company=company),
        "vera": make_user("vera", Role.VOLUNTEER, street=street, team=volunteers),
        "mia": make_user("mia", Role.VOLUNTEER, street=street, team=mediators),
    }
    db.session.commit()
    return World(street, ca, cb, a1, a2, b1, managed, courtyard, west, east, *buildings,
                 company, volunteers, mediators, people)


def png_bytes(size: tuple[int, int] = (8, 8), fmt: str = "PNG") -> bytes:
    """A tiny real image."""
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, fmt)
    return out.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, body, CRC."""
    return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")


def png_declaring(width: int, height: int, idat: bytes = b"") -> bytes:
    """A PNG header declaring `width` x `height` RGBA, with `idat` as its compressed pixels."""
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 6, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


@cache
def png_bomb(side: int = 6300, rows_per_block: int = 300) -> bytes:
    """A valid 151 KB PNG of `side` x `side` transparent pixels: 159 MB once decoded.

    Built in a fraction of a second: after a full flush zlib compresses each block of
    rows on its own, so one block's compressed bytes are repeated instead of
    compressing 159 MB of zeros.
    """
    assert side % rows_per_block == 0
    block = bytes(1 + side * 4) * rows_per_block  # filter byte 0, then zero pixels, per row
    compressor = zlib.compressobj(9)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    checksum = 1
    for _ in range(side // rows_per_block):
        checksum = zlib.adler32(block, checksum)
    final_empty_block = b"\x03\x00"
    idat = first + again * (side // rows_per_block - 1) + final_empty_block + checksum.to_bytes(4, "big")
    return png_declaring(side, side, idat)


@cache
def big_jpeg(size: tuple[int, int] = (8000, 6000)) -> bytes:
    """A baseline JPEG of a 48 MP phone camera's size (one colour, so it is quick to make)."""
    out = io.BytesIO()
    Image.new("RGB", size, (90, 120, 30)).save(out, "JPEG", quality=30)
    return out.getvalue()


def make_ticket(
    world: World,
    store: PhotoStore,
    now: datetime = T0,
    building: Building | None = None,
    category: str = "repair.stair_light",
    actor: Actor | None = None,
    route: bool = False,
    steps: intake.Steps | None = None,
    **fields: object,
) -> Ticket:
    """File a ticket through the intake service, as a resident on the web form; `steps`
    are its first (intake.submit)."""
    building = building or world.building_courtyard
    request = intake.IntakeRequest(
        channel=str(fields.pop("channel", "web")),
        description=str(fields.pop("description", "3号楼2单元楼道灯不亮，晚上看不见台阶")),
        phone=str(fields.pop("phone", PHONE)),
        name=str(fields.pop("name", "张三丰")),
        category_id=world.category(category).id,
        building_id=building.id,
        unit_room=str(fields.pop("unit_room", "2单元301")),
        **fields,  # type: ignore[arg-type]
    )
    ticket, _ = intake.submit(request, actor or Actor.resident(), now, TZ, store, 5 * 1024 * 1024,
                              route=route, steps=steps)
    return ticket


def advance(ticket: Ticket, status: str, world: World, now: datetime = T0,
            handler: User | None = None) -> Ticket:
    """Move a submitted ticket along the happy path until it reaches `status`."""
    handler = handler or world.gina
    dispatcher = world.dan if ticket.community_id == world.community_b.id else world.dora
    cal = calendar()
    steps = {
        "dispatched": [("dispatch", Actor.staff(dispatcher), {"assignee": handler})],
        "accepted": [("accept", Actor.staff(handler), {})],
        "on_hold": [("hold", Actor.staff(handler), {"note": "等待配件", "until": now.astimezone(TZ).date() + timedelta(days=3)})],
        "resolved": [("resolve", Actor.staff(handler), {"note": "已更换灯泡"})],
        "closed": [("rate", Actor.resident(), {"rating": "satisfied"})],
    }
    order = ["dispatched", "accepted", "resolved", "closed"]
    path = order[: order.index(status) + 1] if status in order else ["dispatched", "accepted", "on_hold"]
    for step in path:
        for name, actor, params in steps[step]:
            perform(ticket, name, actor, now, cal, **params)
    db.session.commit()
    return ticket


def give_shift(user: User, weekday: int, starts: str, ends: str) -> DutyShift:
    """A weekly shift for `user`: weekday 0 = Monday, times "HH:MM" local; does not commit."""
    shift = DutyShift(user=user, weekday=weekday, starts=time.fromisoformat(starts), ends=time.fromisoformat(ends))
    db.session.add(shift)
    return shift


def give_leave(user: User, first_day: date, last_day: date | None = None) -> Leave:
    """Leave for `user` from `first_day` to `last_day` inclusive; does not commit."""
    leave = Leave(user=user, first_day=first_day, last_day=last_day or first_day)
    db.session.add(leave)
    return leave


def put_on_call(*users: User) -> None:
    """Make the people eligible for routing at any hour; commits."""
    for user in users:
        user.on_call = True
    db.session.commit()
