"""Rate limits on the anonymous doors: the web form, Open311 posts, WeChat senders.

`hit(bucket, key, limit, per, now)` counts one attempt and says whether it is within
`limit` per `per` seconds. With `REDIS_URL` set the count lives in Redis (one INCR +
EXPIRE per fixed window, shared by every process); without it, in the database
(`failed_attempts` rows, pruned as they age), so the embedded set-up is limited too.

A dead Redis must not shut the doors: the count then falls back to the database,
and the failure is logged. Limits are checked before anything is stored, so a
refused request changes nothing, and one already accepted is never undone.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis.exceptions import RedisError
from sqlalchemy import delete, func, select

from ticketing.extensions import db
from ticketing.models import FailedAttempt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int  # seconds until the window ends (0 when allowed)


class RateLimited(Exception):
    """Too many attempts; answer 429 with Retry-After."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limited, retry after {retry_after} s")
        self.retry_after = max(1, retry_after)


def _redis():  # type: ignore[no-untyped-def]
    from workers.queues import redis_connection

    return redis_connection()


def _window_start(now: datetime, per: int) -> int:
    return int(now.timestamp()) // per * per


def hit(bucket: str, key: str, limit: int, per: int, now: datetime) -> Decision:
    """Count one attempt of `key` in `bucket`; allowed while at most `limit` per `per` seconds."""
    if limit <= 0:
        return Decision(True, 0)
    start = _window_start(now, per)
    retry_after = start + per - int(now.timestamp())
    name = f"rl:{bucket}:{key}"[:100]
    conn = _redis()
    if conn is not None:
        try:
            redis_key = f"minhu:{name}:{start}"
            pipe = conn.pipeline()
            pipe.incr(redis_key)
            pipe.expire(redis_key, per + 5)
            count = int(pipe.execute()[0])
            return Decision(count <= limit, 0 if count <= limit else retry_after)
        except RedisError as exc:
            log.warning("rate limit: Redis unavailable (%s); counting in the database", type(exc).__name__)
    window_start = datetime.fromtimestamp(start, tz=now.tzinfo)
    count = db.session.scalar(
        select(func.count()).select_from(FailedAttempt)
        .where(FailedAttempt.key == name, FailedAttempt.at >= window_start)
    ) or 0
    if count >= limit:
        return Decision(False, retry_after)
    db.session.execute(delete(FailedAttempt).where(
        FailedAttempt.key == name, FailedAttempt.at < window_start - timedelta(seconds=per)))
    db.session.add(FailedAttempt(key=name, at=now))
    db.session.commit()
    return Decision(True, 0)


def check(bucket: str, key: str, now: datetime) -> None:
    """Count one attempt against the configured limit `bucket` (config RATE_LIMITS);
    raise `RateLimited` when over it."""
    from flask import current_app

    limit, per = current_app.config["RATE_LIMITS"][bucket]
    decision = hit(bucket, key, limit, per, now)
    if not decision.allowed:
        raise RateLimited(decision.retry_after)
