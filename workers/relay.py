"""The outbox relay: hand due outbox rows to the queue, or run them here when embedded.

Called right after a request that emitted rows, and by the scheduler every 30 s.
Redis down: the claim is released and the row waits for the next relay; the web
keeps accepting tickets and the outbox grows until Redis is back.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from redis.exceptions import RedisError

from ticketing.extensions import db
from ticketing.models import utcnow
from ticketing.services import outbox
from workers.queues import enqueue_many, redis_connection

log = logging.getLogger(__name__)

RUN_OUTBOX = "workers.jobs.run_outbox"


@dataclass
class RelayResult:
    """What one relay pass did."""

    handed_over: list[int] = field(default_factory=list)
    ran_inline: list[int] = field(default_factory=list)
    redis_down: bool = False


def relay(now: datetime | None = None, limit: int = 100, ids: list[int] | None = None) -> RelayResult:
    """Hand over (or run) the given outbox rows, else every due row up to `limit`.

    The rows are claimed in one statement and handed to Redis in one pipeline.
    """
    from workers.jobs import run_outbox

    now = now or utcnow()
    result = RelayResult()
    claimed = outbox.claim_many(now, ids=ids, limit=limit)
    if not claimed:
        return result
    if redis_connection() is None:
        for row in claimed:
            run_outbox(row.id)
            result.ran_inline.append(row.id)
        return result
    try:
        enqueue_many([(RUN_OUTBOX, (row.id,), row.queue, f"outbox-{row.id}-{row.enqueue_count}")
                      for row in claimed])
    except RedisError as exc:
        outbox.release([row.id for row in claimed], f"Redis unavailable: {type(exc).__name__}")
        log.warning("outbox relay: Redis unavailable, %s rows wait", len(claimed))
        result.redis_down = True
        return result
    result.handed_over.extend(row.id for row in claimed)
    return result


def relay_after_request() -> None:
    """After a request that emitted outbox rows: hand over those rows without failing the request.

    Only this request's rows: a backlog is the scheduled relay's, so a request never
    waits for other people's work.
    """
    try:
        ids = outbox.take_emitted()
        if ids:
            relay(ids=ids)
    except Exception:  # the rows are committed; the scheduled relay will take them
        db.session.rollback()
        log.exception("outbox relay after request failed; the scheduled relay will retry")
