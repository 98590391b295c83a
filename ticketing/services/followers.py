"""What we remember of a WeChat follower so they need not retype it: their mobile
number and the place of their last request (`wechat_followers`, one row per openid).

Both doors of the official account use it: a text message (channels/wechat.py) and
the web form the account's menu opens as the follower (channels/wechat_oauth.py,
resident/follower.py). A request filed by either remembers its phone and place;
the next one may leave out the phone, and the place is a fallback only — a place the
text names, or the form's choice, always wins (channels/wechat_geo.py `guess_place`).

The phone is personal data. It is shown masked (138****5678) wherever it is shown,
never logged, erased when the follower asks (忘记我, `forget`), and erased by the
retention job once none of the follower's tickets holds personal data any more and
they told us nothing for as long (`forget_unlinked`, called by services/retention.py). A location pin is forgotten by
the nightly housekeeping a day after it was sent (`forget_old_pins`).

Which follower opened the web form is kept in the resident's (signed) session, under
`SESSION_KEY`, for `SESSION_FOR` (`session_value`, `openid_from_session`).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    Connection,
    CursorResult,
    TextClause,
    and_,
    bindparam,
    delete,
    exists,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm.util import identity_key

from ticketing.extensions import db
from ticketing.models import Ticket
from ticketing.models.channels import WechatFollower
from ticketing.services.intake import clean_phone
from ticketing.services.privacy import mask_phone

SESSION_KEY = "minhu.wechat_follower"
# The menu opens the form through WeChat's authorisation every time; an older sign-in
# in a browser left open is not trusted to speak for the follower.
SESSION_FOR = timedelta(hours=2)
OPENID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PLACE_COLUMNS = ("last_community_id", "last_complex_id", "last_building_id", "last_grid_id")


@dataclass(frozen=True)
class Remembered:
    """A follower's remembered phone ("" for none) and last place (ids, or None)."""

    openid: str
    phone: str
    community_id: int | None
    complex_id: int | None
    building_id: int | None
    grid_id: int | None

    @property
    def masked_phone(self) -> str:
        """138****5678: the only way the phone is shown."""
        return mask_phone(self.phone) if self.phone else ""

    def __repr__(self) -> str:  # never the phone or the openid in a log or traceback
        return f"Remembered(phone={self.masked_phone!r}, community_id={self.community_id!r})"


def remembered(openid: str | None) -> Remembered | None:
    """What we remember of the follower: None when nothing (no row, or only a pin)."""
    return of_row(db.session.get(WechatFollower, openid)) if openid else None


def of_row(row: WechatFollower | None) -> Remembered | None:
    """What a follower's row (already read) remembers: None when nothing (no row, or only a pin)."""
    if row is None or not (row.phone or row.last_community_id):
        return None
    return Remembered(row.openid, row.phone, row.last_community_id, row.last_complex_id,
                      row.last_building_id, row.last_grid_id)


def _upsert(openid: str, values: dict[str, Any], on: Connection | None = None) -> None:
    """Insert the follower's row or update these columns of it, in one statement: two
    messages of a new follower at once cannot both insert. In the session's transaction,
    or `on` that connection."""
    (on or db.session).execute(_upsert_statement(tuple(values)), {"openid": openid, **values})
    loaded = db.session.identity_map.get(identity_key(WechatFollower, openid))
    if loaded is not None:  # else it would go on showing its old values
        db.session.expire(loaded)


@cache
def _upsert_statement(names: tuple[str, ...]) -> TextClause:
    """The upsert of `_upsert` for these columns, with bound values (the same SQL on
    PostgreSQL and SQLite). Built once per set of columns, and as text: SQLAlchemy's
    PostgreSQL INSERT … ON CONFLICT is compiled anew for every execution (it has no
    cache key), which with building it cost more than sending it."""
    table = WechatFollower.__table__
    return text(
        f"INSERT INTO {table.name} (openid, label, {', '.join(names)}) "
        f"VALUES (:openid, '', {', '.join(f':{name}' for name in names)}) "
        f"ON CONFLICT (openid) DO UPDATE SET {', '.join(f'{name} = excluded.{name}' for name in names)}"
    ).bindparams(*(bindparam(name, type_=table.c[name].type) for name in ("openid", *names)))


def remember(ticket: Ticket, now: datetime, on: Connection | None = None) -> None:
    """Remember the phone and place of a request the follower filed (`resident_openid`):
    a new phone replaces the old one. The caller commits (or, `on` a connection of its
    own, `remember_apart`)."""
    openid = ticket.resident_openid
    if not openid:
        return
    values: dict[str, Any] = {
        "last_community_id": ticket.community_id, "last_complex_id": ticket.complex_id,
        "last_building_id": ticket.building_id, "last_grid_id": ticket.grid_id, "updated_at": now,
    }
    phone = clean_phone(ticket.requester_phone)
    if phone is not None:
        values["phone"] = phone
    _upsert(openid, values, on)


def remember_apart(ticket: Ticket, now: datetime) -> None:
    """`remember`, after the request is filed and committed, apart from it: one statement
    committed on its own (autocommit), without a transaction around it, so the
    request stays filed whatever happens here. Raises SQLAlchemyError."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        remember(ticket, now, on=conn)


def remember_phone(openid: str, phone: str, now: datetime) -> str | None:
    """Remember a mobile number the follower sent on its own; the number as stored, or
    None when it is not a mainland mobile number. The caller commits."""
    cleaned = clean_phone(phone)
    if cleaned is None:
        return None
    _upsert(openid, {"phone": cleaned, "updated_at": now})
    return cleaned


def forget(openid: str) -> bool:
    """Erase all we remember of the follower (phone, place, location pin); True when
    there was something. Their tickets keep their own data until retention. The caller commits."""
    gone = db.session.execute(delete(WechatFollower).where(WechatFollower.openid == openid))
    return bool(cast(CursorResult[Any], gone).rowcount)


def holds_memory() -> Any:
    """Rows that remember a phone or a place."""
    return or_(WechatFollower.phone != "", WechatFollower.last_community_id.is_not(None))


def holds_nothing() -> Any:
    """Rows that remember neither a phone, a place nor a location pin."""
    return and_(WechatFollower.phone == "", WechatFollower.last_community_id.is_(None),
                WechatFollower.located_at.is_(None))


def linked(where: Any = None) -> Any:
    """EXISTS a ticket of the follower (with `where`, one matching it)."""
    query = select(Ticket.id).where(Ticket.resident_openid == WechatFollower.openid)
    return exists(query if where is None else query.where(where))


def unlinked(before: datetime, where: Any = None) -> Any:
    """Followers who told us nothing since `before` and none of whose tickets (matching
    `where`) is linked to them."""
    told = or_(WechatFollower.updated_at.is_(None), WechatFollower.updated_at < before)
    return and_(holds_memory(), told, ~linked(where))


def forget_unlinked(before: datetime) -> int:
    """Erase the phone and place of followers none of whose tickets is linked to them any
    more (retention blanks a ticket's openid with its other personal data) and who told
    us nothing since `before` (retention's cutoff: a number sent on its own, with no
    ticket yet, is kept as long as a ticket would be); delete the rows left with
    nothing. How many followers were forgotten. The caller commits."""
    cleared = db.session.execute(
        update(WechatFollower).where(unlinked(before))
        .values(phone="", **dict.fromkeys(PLACE_COLUMNS), updated_at=None)
        .execution_options(synchronize_session=False))
    db.session.execute(delete(WechatFollower).where(holds_nothing()))
    return cast(CursorResult[Any], cleared).rowcount


def count_unlinked_after(before: datetime, kept: Any) -> int:
    """How many followers `forget_unlinked` would forget once every ticket not matching
    `kept` has lost its openid (a retention dry run)."""
    return len(db.session.scalars(select(WechatFollower.openid).where(unlinked(before, kept))).all())


def forget_old_pins(before: datetime) -> int:
    """Forget location pins sent before `before`; delete the rows left with nothing. How
    many pins were forgotten. The caller commits."""
    old = WechatFollower.located_at < before
    forgotten = db.session.execute(
        update(WechatFollower).where(old, holds_memory())
        .values(lat=None, lon=None, label="", grid_id=None, located_at=None)
        .execution_options(synchronize_session=False))
    dropped = db.session.execute(delete(WechatFollower).where(old, ~holds_memory()))
    return cast(CursorResult[Any], forgotten).rowcount + cast(CursorResult[Any], dropped).rowcount


# --- the follower who opened the web form ----------------------------------------


def session_value(openid: str, now: datetime) -> dict[str, Any]:
    """What the session keeps of a follower WeChat has just vouched for."""
    return {"openid": openid, "at": int(now.timestamp())}


def openid_from_session(value: Any, now: datetime) -> str | None:
    """The follower's openid kept in the session, while it is recent; else None."""
    if not isinstance(value, Mapping):
        return None
    openid, at = value.get("openid"), value.get("at")
    if not isinstance(openid, str) or not OPENID.match(openid) or not isinstance(at, int):
        return None
    age = now.timestamp() - at
    return openid if -300 <= age <= SESSION_FOR.total_seconds() else None
