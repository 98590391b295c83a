"""Reference rows read for every filed ticket, cached per process.

An API key, a category with its tiers, the places above a building
or complex: intake reads them on every ticket and they change rarely. Rows are kept
as a detached, fully loaded copy, loaded on the request's connection by a session of
its own; a request takes it into its own session with `merge(load=False)`, which
copies the loaded state without a query (SQLAlchemy's way of caching rows). The
cached copy itself is never changed by a request. Places are kept as plain ids
(`remember`: services/placing.py, with the place names free text is matched against and
the communities; the grid boundaries in services/geo.py; the category menu of the staff
forms in services/catalog.py and their place choices in ticketing/place_choices.py;
Open311's service codes in channels/open311.py; the working-day calendar of the
staff pages, services/workdays.py), which need no merging.

A change to any of these kinds of row made through this process's ORM clears the
cache at once (and again if it is rolled back); a change made by another process is
seen within `KEY_TTL` seconds for keys (a revoked Open311 key works that long elsewhere;
a staff key's revocation and its account are read afresh by apikeys.verify) and `TTL`
seconds for categories and places.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import event, select
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import instance_state, set_committed_value

from ticketing.extensions import db
from ticketing.models import (
    ApiKey,
    Building,
    CalendarDay,
    Category,
    Community,
    Complex,
    EmergencyGuide,
    Grid,
    SlaTier,
    Street,
)

KEY_TTL = 5.0
TTL = 60.0
DIRTY = "minhu.refcache_dirty"
# Changing a row of these kinds clears the cache (see `_changed`). Not User: no account is
# cached (a staff key's is read afresh), and routing writes users' last_assigned_at with
# every dispatch, which would empty the cache each time.
CACHED_KINDS = (ApiKey, Category, SlaTier, Street, Community, Grid, Complex, Building, EmergencyGuide, CalendarDay)

T = TypeVar("T")
_rows: dict[tuple[Any, ...], tuple[float, Any]] = {}
clock: Callable[[], float] = time.monotonic


def clear() -> None:
    """Forget every cached row (tests; an edit in this process)."""
    _rows.clear()


def remember(key: tuple[Any, ...], load: Callable[[], T | None], ttl: float = TTL) -> T | None:
    """What `load` finds, from the cache when fresh. For plain values (ids in a frozen
    dataclass): they are handed out as kept, so they must never be changed."""
    now = clock()
    key = (db.engine.url, *key)  # two apps in one process (tests) keep apart
    found = _rows.get(key)
    if found is None or now - found[0] > ttl:
        value = load()
        if value is None:
            _rows.pop(key, None)
            return None  # unknown ids are not remembered: they must be reported every time
        found = _rows[key] = (now, value)
    return found[1]


def _cached(key: tuple[Any, ...], load: Callable[[Session], T | None], ttl: float = TTL) -> T | None:
    """The row `load` finds, from the cache when fresh, merged into the current session."""

    def load_detached() -> T | None:
        # The request's connection and transaction: no second connection, and the same view.
        with Session(bind=db.session.connection(), expire_on_commit=False) as own:
            return load(own)

    row = remember(key, load_detached, ttl)
    return None if row is None else _in_session(row)


def _in_session(row: T) -> T:
    """The cached row as the current session's instance: the one the session holds
    already when it is loaded as fully and unchanged (a request reads a category by
    its code, then by its id), else a copy merged in. A merge copies every attribute
    of the row and of the rows loaded with it: the dearest step of a cache hit."""
    session = db.session()
    cached = instance_state(row)
    present = None if cached.key is None else session.identity_map.get(cached.key)
    if present is not None:
        state = instance_state(present)
        if not state.expired_attributes and not state.modified and state.unloaded <= cached.unloaded:
            return present
    return session.merge(row, load=False)


def api_key(key_hash: str) -> ApiKey | None:
    """The API key with this hash (a staff key's account is read afresh: services/apikeys.py)."""
    return _cached(("key", key_hash), lambda s: s.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash)), KEY_TTL)


def touched_key(key_hash: str, when: Any) -> None:
    """Record in the cached copy when the key was last used, as the database now has it."""
    found = _rows.get((db.engine.url, "key", key_hash))
    if found is not None:  # as loaded, not as a change: a changed row could not be merged
        set_committed_value(found[1], "last_used_at", when)


def category(ref: int | str) -> Category | None:
    """A category by id or code, with its parent and both their tiers."""
    return _cached(("category", ref), lambda s: s.scalar(select(Category).where(
        Category.id == ref if isinstance(ref, int) else Category.code == ref).options(
        joinedload(Category.tier), joinedload(Category.parent).joinedload(Category.tier))))


@event.listens_for(Session, "after_flush")
def _changed(session: Session, context: Any) -> None:
    """A row of a cached kind was written through the ORM: the cache may be stale."""
    if any(isinstance(row, CACHED_KINDS) for rows in (session.new, session.dirty, session.deleted) for row in rows):
        session.info[DIRTY] = True
        clear()


@event.listens_for(Session, "after_rollback")
def _undone(session: Session) -> None:
    """What was cached after such a write may be gone with the rollback."""
    if session.info.pop(DIRTY, False):
        clear()


@event.listens_for(Session, "after_commit")
def _kept(session: Session) -> None:
    session.info.pop(DIRTY, None)
