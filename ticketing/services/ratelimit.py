"""Rate limits on the anonymous doors: the web form, Open311 posts, WeChat senders.

`hit(bucket, key, limit, per, now)` counts one attempt and says whether it is within
`limit` per fixed window of `per` seconds; `check(bucket, key, now)` does the same
with the limit configured for `bucket` (config `RATE_LIMITS`) and raises
`RateLimited` when over it. Limits are checked before anything is stored, so a
refused request changes nothing, and one already accepted is never undone.

Where the count lives:

- With `REDIS_URL` set, in Redis: one INCR (and an EXPIRE with the window's first)
  per key and window, in one script call, shared by every process. Refused attempts count too (the window still ends when it ends).
- Without Redis, or when Redis fails, in the database (`failed_attempts` rows),
  so the embedded set-up is limited too and a dead Redis does not shut the doors.
  After a Redis failure this process counts in the database for `REDIS_BACKOFF`
  seconds before trying Redis again, so an unreachable server does not cost every
  request a connect timeout. Only accepted attempts are stored there, each in its
  own short transaction, serialised per key (PostgreSQL: an advisory lock; SQLite:
  the write lock taken by the first statement), so two processes racing for the
  last slot cannot both have it. Old rows of a key go when the key is counted
  again; now and then a sweep removes every expired row (`prune`).

Keys are never stored as given: a phone number or an address is personal data, so
the stored key is an HMAC of bucket and key under the app's SECRET_KEY.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import random
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from redis import Redis
from redis.commands.core import Script
from redis.exceptions import RedisError
from sqlalchemy import Connection, delete, func, insert, literal, select

from ticketing.extensions import db
from ticketing.models import FailedAttempt

log = logging.getLogger(__name__)

PREFIX = "rl:"  # beside the lookup and sign-in lockouts (services/throttle.py) in one table
REDIS_BACKOFF = 30.0  # seconds this process counts in the database after a Redis failure
PRUNE_CHANCE = 0.01  # share of database hits that also sweep every key's expired rows


@dataclass(frozen=True)
class Decision:
    """The answer to one attempt."""

    allowed: bool
    retry_after: int  # seconds until the window ends (0 when allowed)


class RateLimited(Exception):
    """Too many attempts; answer 429 with Retry-After."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limited, retry after {retry_after} s")
        self.retry_after = max(1, retry_after)


def counter_name(bucket: str, key: str) -> str:
    """The stored name of `key`'s counter in `bucket`: `rl:<bucket>:<HMAC>`, never the raw key."""
    secret = str(current_app.config["SECRET_KEY"]).encode()
    digest = hmac.new(secret, f"{bucket}\n{key}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"{PREFIX}{bucket[:60]}:{digest}"


def client_key(address: str | None) -> str:
    """The client's address as a rate-limit key: IPv4 as it is, IPv6 by its /64 network.

    One IPv6 host usually holds a whole /64, so counting single addresses would let
    it step around the limit.
    """
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return address or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _window_start(now: datetime, per: int) -> int:
    """The start of the fixed window `now` falls in, in Unix seconds."""
    return int(now.timestamp()) // per * per


def _state() -> dict[str, float]:
    return current_app.extensions.setdefault("minhu.ratelimit", {})


def _redis() -> Redis | None:
    """The app's Redis, unless none is configured or it failed a moment ago."""
    from ticketing.queues import redis_connection

    if _state().get("redis_down_until", 0.0) > time.monotonic():
        return None
    return redis_connection()


# INCR, and EXPIRE on the window's first attempt: one command (EVALSHA) where a MULTI
# pipeline of INCR and EXPIRE sent four. The key names its window, so it outlives the
# window (`per` + 5 seconds from the first attempt, which is inside it) and is not reused.
COUNT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n"""


_scripts: weakref.WeakKeyDictionary[Redis, Script] = weakref.WeakKeyDictionary()


def _count_in_redis(conn: Redis, name: str, start: int, per: int) -> int:
    """Count one attempt in Redis; the number of attempts in this window so far."""
    script = _scripts.get(conn)
    if script is None:
        script = _scripts[conn] = conn.register_script(COUNT)
    return int(script(keys=[f"minhu:{name}:{start}"], args=[per + 5]))


def _lock_key(conn: Connection, name: str, older_than: datetime) -> None:
    """Serialise attempts on one key until the transaction ends; drop the key's old rows.
    One statement.

    PostgreSQL: an advisory lock on the key's hash (other keys are not held up), with
    the DELETE beside it in a CTE (the rows it removes lie before the window counted).
    SQLite: the DELETE, a write, takes the database's write lock at once, so the
    count that follows already sees whatever a concurrent attempt committed.
    """
    old_rows = delete(FailedAttempt).where(FailedAttempt.key == name, FailedAttempt.at < older_than)
    if conn.dialect.name == "postgresql":
        lock_id = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        conn.execute(select(func.pg_advisory_xact_lock(lock_id)).add_cte(old_rows.cte("old_rows")))
    else:
        conn.execute(old_rows)


def _count_in_database(name: str, limit: int, start: datetime, now: datetime) -> bool:
    """Count one attempt in the database if a slot is free; whether it was.

    Two statements: the lock (`_lock_key`), then one INSERT … SELECT that stores the
    attempt only while the window holds fewer than `limit` (on SQLite a write
    statement holds the write lock from its start, so its count cannot be overtaken).
    """
    # Its own transaction, committed here: the count must hold whatever the
    # caller's session does next, and must not commit the caller's work.
    with db.engine.begin() as conn:
        _lock_key(conn, name, start)
        count = select(func.count()).select_from(FailedAttempt).where(
            FailedAttempt.key == name, FailedAttempt.at >= start).scalar_subquery()
        at = FailedAttempt.__table__.c.at
        # RETURNING says whether a row went in (an INSERT's rowcount is not kept by every driver).
        stored = conn.execute(insert(FailedAttempt).from_select(
            ["key", "at"], select(literal(name, FailedAttempt.__table__.c.key.type), literal(now, at.type))
            .where(count < limit)).returning(FailedAttempt.id)).first()
    return stored is not None


def longest_window(per: int = 0) -> int:
    """The longest configured window in seconds (at least `per`): rows older are of no use."""
    limits = current_app.config.get("RATE_LIMITS") or {}
    return max([per, *(window for _count, window in limits.values())])


def prune(now: datetime, older_than: timedelta | None = None) -> int:
    """Delete every rate-limit row older than the longest window; how many went."""
    cutoff = now - (older_than if older_than is not None else timedelta(seconds=longest_window()))
    with db.engine.begin() as conn:
        result = conn.execute(delete(FailedAttempt).where(
            FailedAttempt.key.startswith(PREFIX), FailedAttempt.at < cutoff,
        ))
    return int(result.rowcount or 0)


def hit(bucket: str, key: str, limit: int, per: int, now: datetime) -> Decision:
    """Count one attempt of `key` in `bucket`; allowed while at most `limit` per `per` seconds.

    A limit of 0 or less is no limit. Call it before the request writes anything:
    on SQLite a write the caller's session still holds would make the count wait.
    """
    if limit <= 0:
        return Decision(True, 0)
    if per <= 0:
        raise ValueError("a rate-limit window must be at least one second")
    start = _window_start(now, per)
    retry_after = max(1, start + per - int(now.timestamp()))
    name = counter_name(bucket, key)
    conn = _redis()
    if conn is not None:
        try:
            count = _count_in_redis(conn, name, start, per)
            return Decision(True, 0) if count <= limit else Decision(False, retry_after)
        except RedisError as exc:
            _state()["redis_down_until"] = time.monotonic() + REDIS_BACKOFF
            log.warning("rate limit: Redis unavailable (%s); counting in the database for %d s",
                        type(exc).__name__, REDIS_BACKOFF)
    window_start = datetime.fromtimestamp(start, tz=UTC)
    allowed = _count_in_database(name, limit, window_start, now)
    if random.random() < PRUNE_CHANCE:
        prune(now, timedelta(seconds=longest_window(per)))
    return Decision(True, 0) if allowed else Decision(False, retry_after)


def check(bucket: str, key: str, now: datetime) -> None:
    """Count one attempt against the configured limit `bucket` (config RATE_LIMITS);
    raise `RateLimited` when over it."""
    limits = current_app.config["RATE_LIMITS"]
    if bucket not in limits:
        raise KeyError(f"no rate limit named {bucket!r} in RATE_LIMITS")
    limit, per = limits[bucket]
    decision = hit(bucket, key, limit, per, now)
    if not decision.allowed:
        raise RateLimited(decision.retry_after)
