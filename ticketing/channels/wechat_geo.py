"""Where a WeChat follower is: location messages (发送位置) and the place of their next request.

A follower who sends their location is remembered in `wechat_followers` (one row per
openid, the last location wins), placed in a grid by the grids' GeoJSON boundaries
(`ticketing/services/geo.py`). A text message that follows within `LOCATION_FRESH_FOR`
is filed at that grid with that point; else at the place of the follower's last
request (remembered by services/followers.py); else where the text says, or by the
dispatcher. A community or complex the
text names always wins over what is remembered (`guess_place`).

The datum: WeChat's map (Tencent Maps) gives GCJ-02 coordinates, the obfuscated
datum every map of mainland China must use; our grid boundaries, the patrol page
(the browser's geolocation) and `tickets.lat/lon` are WGS-84, as GeoJSON prescribes.
The two differ by a few hundred metres in China — more than a grid is wide — so a
location is converted to WGS-84 before it is placed or stored. The conversion is
the published GCJ-02 formula (Krasovsky ellipsoid), inverted by fixed-point iteration;
points outside China are left as they are, as GCJ-02 does.
"""
from __future__ import annotations

import math
import unicodedata
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from ticketing.extensions import db
from ticketing.models import Grid
from ticketing.models.channels import WechatFollower
from ticketing.services import followers, geo, placing
from ticketing.services.followers import Remembered
from ticketing.services.gcj02 import gcj02_to_wgs84, out_of_china, wgs84_to_gcj02  # noqa: F401 (the channel's datum)
from ticketing.services.placing import CommunityEntry, Placement
from ticketing.services.sqlparts import by_key

# A location older than this is not used to place a request: people move about, and
# a pin sent yesterday morning says little about a problem reported tonight.
LOCATION_FRESH_FOR = timedelta(hours=24)
MAX_LABEL = 200
MAX_ADDRESS = 200

# --- location messages ------------------------------------------------------------


def parse_location(message: Any) -> tuple[float, float] | None:
    """(lat, lon) as WeChat sent them (GCJ-02), or None when they are not a point."""
    try:
        lat, lon = float(message.location_x), float(message.location_y)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return lat, lon


def grid_at(lat: float, lon: float) -> Grid | None:
    """The grid whose boundary holds the WGS-84 point, if any (in grid-code order)."""
    grids = db.session.scalars(select(Grid).where(Grid.boundary.is_not(None)).order_by(Grid.code))
    return geo.grid_at(grids, lat, lon)


def remember_location(openid: str, gcj_lat: float, gcj_lon: float, label: str,
                      now: datetime) -> WechatFollower:
    """Store the follower's location (converted to WGS-84) and its grid; commits."""
    lat, lon = gcj02_to_wgs84(gcj_lat, gcj_lon)
    grid = grid_at(lat, lon)
    for _attempt in range(2):
        follower = db.session.get(WechatFollower, openid) or WechatFollower(openid=openid)
        follower.lat, follower.lon = round(lat, 7), round(lon, 7)
        follower.label = " ".join((label or "").split())[:MAX_LABEL]
        follower.grid_id = grid.id if grid is not None else None
        follower.located_at = now
        db.session.add(follower)
        try:
            db.session.commit()
            return follower
        except IntegrityError:  # a second message of the same new follower stored it first
            db.session.rollback()
    raise RuntimeError("could not store the follower's location")


def place_name(grid: Grid) -> str:
    """The grid as residents know it: '东怡社区第一网格' (no community twice)."""
    community = grid.community.name
    return grid.name if grid.name.startswith(community) else community + grid.name


# Built once: Session.get builds its SELECT anew every time.
FOLLOWER = select(WechatFollower).where(WechatFollower.openid == bindparam("openid"))


def follower_of(openid: str) -> WechatFollower | None:
    """The follower's row: their location pin, phone and last place, read once per message
    (from the session when it holds the row already, as `Session.get`)."""
    return by_key(WechatFollower, openid, FOLLOWER, {"openid": openid})


def fresh_location(follower: WechatFollower | None, now: datetime) -> Placement | None:
    """The place of the follower's location pin (its grid, from the cache: services/placing.py)
    when the pin is recent and inside one of our open grids."""
    if (follower is None or follower.grid_id is None or follower.located_at is None
            or follower.lat is None or follower.lon is None):
        return None
    if not (now - LOCATION_FRESH_FOR <= follower.located_at <= now + timedelta(minutes=5)):
        return None
    return placing.grid_place(follower.grid_id)  # None when it (or a place above it) is closed


# --- the place of a text message -----------------------------------------------


def names_complex(community_id: int, text: str) -> bool:
    """True when the text names an open complex of the community (from the cached names)."""
    found = placing.place_in(community_id, text)
    return found is not None and found.complex_id is not None


def place_of_location(follower: WechatFollower, grid: Placement, text: str) -> dict[str, Any]:
    """The intake place fields of a fresh location: its grid and point; the address is
    the text when it names a complex of that community (more precise), else the map's label."""
    named = names_complex(grid.community_id, text)
    return {"community_id": grid.community_id, "grid_id": grid.grid_id,
            "lat": follower.lat, "lon": follower.lon,
            "address_text": (text if named or not follower.label else follower.label)[:MAX_ADDRESS]}


def communities_named(communities: list[CommunityEntry], text: str) -> list[CommunityEntry]:
    """The communities a text points to: those it names, else those whose complex it names."""
    text = unicodedata.normalize("NFKC", text)
    named = [c for c in communities if c.name and c.name in text]
    if named:
        return named
    naming = placing.communities_naming_a_complex(text)
    return [c for c in communities if c.id in naming]


def place_of_memory(known: Remembered, community_id: int, text: str) -> dict[str, Any]:
    """The intake place fields from the place of the follower's last request
    (services/followers.py), in community `community_id`: its complex and building, unless
    the text names a complex of that community (then where the text says)."""
    if names_complex(community_id, text):
        return {"community_id": community_id, "address_text": text[:MAX_ADDRESS]}
    gone = (placing.building_place(known.building_id) is None if known.building_id
            else placing.complex_place(known.complex_id) is None if known.complex_id
            else known.grid_id is not None and placing.grid_place(known.grid_id) is None)
    if gone:  # deactivated since: the community only
        return {"community_id": community_id, "address_text": ""}
    return {"community_id": community_id, "complex_id": known.complex_id,
            "building_id": known.building_id, "grid_id": known.grid_id, "address_text": ""}


def open_communities() -> list[CommunityEntry]:
    """The communities that take new tickets, in the order they were made (from the cache)."""
    return sorted((c for c in placing.communities() if c.open), key=lambda c: c.id)


def guess_place(follower: WechatFollower | None, text: str, now: datetime) -> dict[str, Any] | None:
    """The intake place fields of a text message from `follower` (`follower_of`); None
    when it cannot be told.

    A community, complex or building the text names wins: what we remember of the
    follower (their fresh location, else the place of their last request) is only a fallback,
    used when the text names no place or names the remembered place's community. A
    follower who filed in one community may well write about another (where a parent
    lives, where they work), and a ticket filed at the remembered place would go to
    that community's grid worker, who could then reveal the other community's resident.
    The communities and places come from the cache: nothing is read here.
    """
    communities = open_communities()
    pointed = {c.id for c in communities_named(communities, text)}
    located = fresh_location(follower, now)
    if follower is not None and located is not None and (not pointed or located.community_id in pointed):
        return place_of_location(follower, located, text)
    known = followers.of_row(follower)
    last = known.community_id if known is not None else None
    if known is not None and last is not None and any(c.id == last for c in communities) \
            and (not pointed or last in pointed):
        return place_of_memory(known, last, text)
    if len(pointed) == 1:
        return {"community_id": pointed.pop(), "address_text": text[:MAX_ADDRESS]}
    if not pointed and len(communities) == 1:
        return {"community_id": communities[0].id, "address_text": text[:MAX_ADDRESS]}
    return None
