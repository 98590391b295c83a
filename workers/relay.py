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
from ticketing.models import OutboxMessage, utcnow
from ticketing.services import outbox
from workers.queues import enqueue, redis_connection

log = logging.getLogger(__name__)

RUN_OUTBOX = "workers.jobs.run_outbox"


@dataclass
class RelayResult:
    """What one relay pass did."""

    handed_over: list[int] = field(default_factory=list)
    ran_inline: list[int] = field(default_factory=list)
    redis_down: bool = False


def relay(now: datetime | None = None, limit: int = 100) -> RelayResult:
    """Hand over (or run) every due outbox row, up to `limit`."""
    from workers.jobs import run_outbox

    now = now or utcnow()
    result = RelayResult()
    inline = redis_connection() is None
    for message_id in outbox.due(now, limit):
        if not outbox.claim(message_id, now):
            continue  # another relay took it
        if inline:
            run_outbox(message_id)
            result.ran_inline.append(message_id)
            continue
        row = db.session.get(OutboxMessage, message_id)
        assert row is not None
        try:
            enqueue(RUN_OUTBOX, message_id, queue_name=row.queue,
                    job_id=f"outbox-{message_id}-{row.enqueue_count}")
        except RedisError as exc:
            outbox.release(message_id, f"Redis unavailable: {type(exc).__name__}")
            log.warning("outbox relay: Redis unavailable, %s rows wait", len(outbox.due(now, limit)))
            result.redis_down = True
            break
        result.handed_over.append(message_id)
    return result


def relay_after_request() -> None:
    """After a request that emitted outbox rows: hand them over without failing the request."""
    try:
        relay()
    except Exception:  # the rows are committed; the scheduled relay will take them
        db.session.rollback()
        log.exception("outbox relay after request failed; the scheduled relay will retry")
