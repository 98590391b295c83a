"""Signed callbacks already seen: a nonce used twice is a replay, unless it is a retry.

A signed callback (WeChat's) carries a timestamp, a nonce and a signature over them.
The signature alone proves only that the URL was once WeChat's: in WeChat's plain mode
it does not cover the body, so a signed URL read anywhere (a proxy's log) could carry
any message. The timestamp limits a URL to a short window; `remember` limits it to one
request within that window:

- the first time a key (digest of timestamp, nonce and signature) is seen, it is
  remembered with the request's `fingerprint` (a digest of method, query and body)
  until `expires_at`: `Seen.NEW`;
- the same key with the same fingerprint is the sender's own retry (WeChat sends a
  callback again, byte for byte, when we are slow): `Seen.RETRY`, to be answered
  again, which the channel does idempotently;
- the same key with another fingerprint is a replay with a new body: `Seen.REPLAY`.

Where keys live, as in services/ratelimit.py: with `REDIS_URL`, in Redis (SET NX EX,
shared by every process); without Redis, or when it fails, in the database
(`wechat_nonces`, a primary key, so two processes cannot both insert one), and after a
Redis failure this process stays with the database for `REDIS_BACKOFF` seconds. Keys
the database took while Redis was away are still looked up there when Redis is back,
so the door does not open when the fallback ends.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime
from enum import Enum

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Connection, bindparam, delete, func, insert, literal, select
from sqlalchemy.exc import IntegrityError

from ticketing.extensions import db
from ticketing.models import WechatNonce

log = logging.getLogger(__name__)

REDIS_PREFIX = "minhu:nonce:"
REDIS_BACKOFF = 30.0  # seconds this process keeps nonces in the database after a Redis failure


class Seen(Enum):
    """What a signed request's key was before this request."""

    NEW = "new"
    RETRY = "retry"
    REPLAY = "replay"


def _state() -> dict[str, float]:
    return current_app.extensions.setdefault("minhu.nonces", {})


def _redis() -> Redis | None:
    """The app's Redis, unless none is configured or it failed a moment ago."""
    from ticketing.queues import redis_connection

    if _state().get("redis_down_until", 0.0) > time.monotonic():
        return None
    return redis_connection()


def _judge(stored: str | bytes | None, fingerprint: str) -> Seen:
    if stored is None:
        return Seen.NEW
    stored = stored.decode() if isinstance(stored, bytes) else stored
    return Seen.RETRY if stored == fingerprint else Seen.REPLAY


# Built once, as it is sent with every callback even while Redis holds the keys.
HELD = select(WechatNonce.fingerprint).where(WechatNonce.key == bindparam("key"),
                                             WechatNonce.expires_at >= bindparam("now"))


def _in_database(key: str, now: datetime) -> str | None:
    """The fingerprint the database holds for `key`, if it has not expired."""
    return db.session.scalar(HELD, {"key": key, "now": now})


def _sweep_and_insert(conn: Connection, key: str, fingerprint: str, expires_at: datetime, now: datetime) -> None:
    """Delete the expired keys, then insert `key`: one statement on PostgreSQL.

    There the DELETE is a CTE the INSERT reads to its end first, so an expired row of
    the same key is gone before the new one goes in; SQLite runs the two in turn.
    """
    expired = delete(WechatNonce).where(WechatNonce.expires_at < now)
    if conn.dialect.name != "postgresql":
        conn.execute(expired)
        conn.execute(insert(WechatNonce).values(key=key, fingerprint=fingerprint, expires_at=expires_at))
        return
    swept = expired.returning(WechatNonce.key).cte("swept")
    row = select(literal(key, WechatNonce.__table__.c.key.type),
                 literal(fingerprint, WechatNonce.__table__.c.fingerprint.type),
                 literal(expires_at, WechatNonce.__table__.c.expires_at.type)
                 ).where(select(func.count()).select_from(swept).scalar_subquery() >= 0)
    conn.execute(insert(WechatNonce).from_select(["key", "fingerprint", "expires_at"], row))


def _remember_in_database(key: str, fingerprint: str, expires_at: datetime, now: datetime) -> Seen:
    # Its own transaction, committed here: the key must stay remembered whatever the
    # caller's session does next (a refused request rolls back).
    try:
        with db.engine.begin() as conn:
            _sweep_and_insert(conn, key, fingerprint, expires_at, now)
        return Seen.NEW
    except IntegrityError:  # seen before (or by a concurrent request, which committed first)
        with db.engine.connect() as conn:
            stored = conn.scalar(select(WechatNonce.fingerprint).where(WechatNonce.key == key))
        return _judge(stored, fingerprint) if stored is not None else Seen.REPLAY


def remember(key: str, fingerprint: str, expires_at: datetime, now: datetime) -> Seen:
    """Remember `key` with the request's `fingerprint` until `expires_at`; what it was before."""
    conn = _redis()
    if conn is not None:
        held = _in_database(key, now)  # taken while Redis was away
        if held is not None:
            return _judge(held, fingerprint)
        seconds = max(1, int((expires_at - now).total_seconds()))
        try:
            if conn.set(REDIS_PREFIX + key, fingerprint, nx=True, ex=seconds):
                return Seen.NEW
            stored = conn.get(REDIS_PREFIX + key)
            # Gone between SET and GET: it expired that instant, and its window with it.
            return _judge(stored, fingerprint) if stored is not None else Seen.REPLAY
        except RedisError as exc:
            _state()["redis_down_until"] = time.monotonic() + REDIS_BACKOFF
            log.warning("nonces: Redis unavailable (%s); keeping them in the database for %d s",
                        type(exc).__name__, REDIS_BACKOFF)
    return _remember_in_database(key, fingerprint, expires_at, now)


def prune(now: datetime) -> int:
    """Delete the database's expired nonces; how many went."""
    with db.engine.begin() as conn:
        result = conn.execute(delete(WechatNonce).where(WechatNonce.expires_at < now))
    return int(result.rowcount or 0)
