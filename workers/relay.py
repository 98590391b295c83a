"""The outbox relay: hand due outbox rows to the queue, or run them here when embedded.

Embedded (no Redis): right after a request, that request's rows run in the request.
With Redis, a request only *kicks*: it makes sure one `drain_outbox` job is queued
(a Redis SET NX, so a burst of requests queues one job, not one per ticket). The
drain, in a worker, claims due rows a batch at a time; rows of a job that has a
batch form (routing, message delivery) run together, in one transaction per batch;
the rest are handed to the queue one job each, as the scheduled relay does every
30 s. Redis down: nothing is kicked or the claim is released, and the rows wait
for the next relay; the web keeps accepting tickets and the outbox grows until
Redis is back.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from redis.exceptions import RedisError
from werkzeug.utils import import_string

from ticketing.extensions import db
from ticketing.models import utcnow
from ticketing.queues import BATCHES, DRAIN_OUTBOX, RUN_OUTBOX
from ticketing.services import outbox
from workers.queues import enqueue, enqueue_many, redis_connection

log = logging.getLogger(__name__)

DRAIN = DRAIN_OUTBOX
# Set while a drain job is queued and not yet started; expires in case that job is lost.
KICK_KEY = "minhu:outbox:drain-queued"
KICK_TTL = 15
# Rows claimed per round, and how long one drain job goes on before it queues its successor.
DRAIN_BATCH = 200
DRAIN_BUDGET = 10.0
# A round that found less than a full batch is followed by the next this long after it began.
ROUND_GAP = 0.5
# Jobs with a batch form: job name → function taking the claimed rows, returning the ids
# of those whose work is done (committed, or pending in the session for the drain's commit).


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
    if not hand_over(claimed):
        result.redis_down = True
        return result
    result.handed_over.extend(row.id for row in claimed)
    return result


def relay_after_request() -> None:
    """After a request that emitted outbox rows: have them run, without failing the request.

    Embedded: this request's rows only, run here; a backlog is the scheduled relay's,
    so a request never waits for other people's work. With Redis: a kick.
    """
    try:
        if redis_connection() is None:
            run_emitted_inline()
        elif outbox.take_emitted():
            kick()
    except Exception:  # the rows are committed; the scheduled relay will take them
        db.session.rollback()
        log.exception("outbox relay after request failed; the scheduled relay will retry")


# Rows run inline may emit rows of their own (routing writes the resident's message);
# those run too, up to this many rounds (a chain longer than that waits for the relay).
INLINE_ROUNDS = 5


def run_emitted_inline() -> None:
    """Embedded: run the rows emitted in this session, and those they emit in turn."""
    for _ in range(INLINE_ROUNDS):
        ids = outbox.take_emitted()
        if not ids:
            return
        relay(ids=ids)


def kick_if_emitted() -> None:
    """In a worker, after a job that emitted rows: have a drain take them (not the next
    scheduled relay). Never raises: without Redis the scheduled relay still will."""
    try:
        if outbox.take_emitted():
            kick()
    except Exception:
        log.warning("could not kick a drain; the scheduled relay will take the rows", exc_info=True)


def kick() -> bool:
    """Make sure a drain job is queued; True when this call queued it.

    Raises `RedisError` when Redis is down (the rows then wait for the scheduled relay).
    """
    connection = redis_connection()
    assert connection is not None, "kick() is for the Redis mode"
    if not connection.set(KICK_KEY, b"1", nx=True, ex=KICK_TTL):
        return False  # one is queued and has not started: it will see these rows too
    try:
        enqueue(DRAIN)
    except Exception:
        connection.delete(KICK_KEY)
        raise
    return True


@dataclass
class DrainResult:
    """What one drain job did."""

    batched: int = 0
    handed_over: int = 0
    failed_batches: int = 0
    more: bool = False


def drain(budget: float = DRAIN_BUDGET, batch: int = DRAIN_BATCH,
          clock: Callable[[], datetime] = utcnow) -> DrainResult:
    """Work through the due outbox rows, a batch at a time, for up to `budget` seconds.

    It goes on until a claim finds nothing, so the rows its own batches emit (the
    messages routing writes) are taken in its next round. The kick flag is cleared
    first, so a row committed while this runs kicks a new drain; with two workers two
    drains split the rows (the claim skips locked rows). When the budget runs out
    with rows left, the drain queues its successor, so that jobs on the other queues
    get their turn in between.
    """
    connection = redis_connection()
    if connection is not None:
        connection.delete(KICK_KEY)
    result = DrainResult()
    stop_at = time.monotonic() + budget
    while True:
        round_started = time.monotonic()
        claimed = outbox.claim_many(clock(), limit=batch)
        if not claimed:
            return result
        by_job: dict[str, list[outbox.Claimed]] = {}
        single: list[outbox.Claimed] = []
        for row in claimed:
            if row.job in BATCHES:
                by_job.setdefault(row.job, []).append(row)
            else:
                single.append(row)
        for job_name, rows in by_job.items():
            done = run_batch(job_name, rows, clock)
            result.batched += len(done)
            if len(done) < len(rows):
                result.failed_batches += 1
                single.extend(row for row in rows if row.id not in done)
        if single:
            hand_over(single)
            result.handed_over += len(single)
        outbox.take_emitted()  # rows the batches emitted are due now: the next round claims them
        if len(claimed) < batch:
            # Under load, let rows gather rather than claim them one or two at a time.
            time.sleep(max(0.0, ROUND_GAP - (time.monotonic() - round_started)))
        if time.monotonic() >= stop_at:
            result.more = True
            if connection is not None:
                kick()
            return result


def run_batch(job_name: str, rows: list[outbox.Claimed], clock: Callable[[], datetime]) -> set[int]:
    """Run rows of one job together and mark the done ones; the ids done.

    A batch that raises is rolled back whole; its rows go to the queue one job each,
    where each has its own retries.
    """
    handler = import_string(BATCHES[job_name])
    try:
        done = set(handler(rows))
        outbox.mark_many_done(sorted(done), clock())
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("outbox batch of %s (%d rows) failed; handing them over one by one", job_name, len(rows))
        return set()
    return done


def hand_over(rows: list[outbox.Claimed]) -> bool:
    """Queue claimed rows one job each, in one pipeline; on a dead Redis, release them for
    the next relay and return False."""
    try:
        enqueue_many([(RUN_OUTBOX, (row.id,), row.queue, f"outbox-{row.id}-{row.enqueue_count}")
                      for row in rows])
    except RedisError as exc:
        outbox.release([row.id for row in rows], f"Redis unavailable: {type(exc).__name__}")
        log.warning("outbox relay: Redis unavailable, %s rows wait", len(rows))
        return False
    return True
