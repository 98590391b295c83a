"""The transactional outbox: follow-up work recorded with the change that causes it.

`emit()` adds a row to the current transaction, so the work exists exactly when the
change does. The relay (workers/relay.py) hands rows to the queue after commit and
on a schedule; a job marks its row done. Here are the row operations, each a
conditional UPDATE so that two relays or two workers never take the same row twice.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, and_, insert, inspect, or_, select, update

from ticketing.extensions import db
from ticketing.models import OutboxMessage
from ticketing.queues import DEFAULT
from ticketing.services.sqlparts import among

# A row handed over this long ago and still not done is handed over again.
STALE_AFTER = timedelta(minutes=10)
# After this many hand-overs a row is given up and shown to admins as failed.
MAX_ENQUEUES = 8
# The session keeps the rows emitted since the last relay, so that the relay after a
# request hands over that request's own rows at once (the scheduled relay takes the rest).
EMITTED = "minhu.outbox_emitted"


def emit(job: str, *args: Any, queue: str = DEFAULT) -> OutboxMessage:
    """Record that job `job(*args)` must run once this transaction commits."""
    message = OutboxMessage(job=job, args=list(args), queue=queue)
    db.session.add(message)
    db.session.info.setdefault(EMITTED, []).append(message)
    return message


def emit_now(job: str, *args: Any, queue: str = DEFAULT) -> int:
    """As `emit()`, with one INSERT now instead of an object for the next flush; the row's id."""
    table = OutboxMessage.__table__  # a plain Core statement, without the ORM's DML path
    message_id: int = db.session.execute(
        insert(table).values(job=job, args=list(args), queue=queue).returning(table.c.id)
    ).scalar_one()
    db.session.info.setdefault(EMITTED, []).append(message_id)
    return message_id


def relay_soon(message_id: int) -> None:
    """Have the relay after this request hand over an existing row (e.g. one retried by hand)."""
    db.session.info.setdefault(EMITTED, []).append(message_id)


def take_emitted() -> list[int]:
    """Ids of the rows emitted (or marked) in this session since the last call.

    A row whose transaction rolled back has no id, or one that no longer exists; the
    relay's claim simply finds nothing for it.
    """
    ids = []
    for message in db.session.info.pop(EMITTED, []):
        if isinstance(message, int):
            ids.append(message)
            continue
        identity = inspect(message).identity  # known after the flush; no query
        if identity is not None and not inspect(message).deleted:
            ids.append(identity[0])
    return ids


def due(now: datetime, limit: int = 100) -> list[int]:
    """Ids of rows to hand over: never handed over, or handed over and gone stale."""
    rows = db.session.scalars(
        select(OutboxMessage.id).where(_is_due(now)).order_by(OutboxMessage.id).limit(limit)
    )
    return list(rows)


def _is_due(now: datetime) -> Any:
    return and_(OutboxMessage.done_at.is_(None), OutboxMessage.failed_at.is_(None),
                or_(OutboxMessage.enqueued_at.is_(None), OutboxMessage.enqueued_at < now - STALE_AFTER))


@dataclass(frozen=True, order=True)
class Claimed:
    """A row taken for handing over."""

    id: int
    queue: str
    enqueue_count: int
    job: str = field(default="", compare=False)
    args: list[Any] = field(default_factory=list, compare=False)


def claim_many(now: datetime, ids: list[int] | None = None, limit: int = 100) -> list[Claimed]:
    """Take due rows for handing over in one statement: the given ones, else the oldest due.

    On PostgreSQL the oldest-due pick skips rows another relay has locked, so relays
    running at once take different rows; each row is taken by exactly one of them.
    """
    if ids is not None:
        if not ids:
            return []
        which = among(OutboxMessage.id, ids)
    else:
        # A materialised CTE: as a plain IN (subquery) PostgreSQL may run the locking
        # subquery more than once and so take more than `limit` rows.
        oldest = (select(OutboxMessage.id).where(_is_due(now)).order_by(OutboxMessage.id)
                  .limit(limit).with_for_update(skip_locked=True)).cte("oldest").prefix_with("MATERIALIZED")
        which = OutboxMessage.id.in_(select(oldest.c.id))
    rows = db.session.execute(
        update(OutboxMessage).where(which, _is_due(now))
        .values(enqueued_at=now, enqueue_count=OutboxMessage.enqueue_count + 1)
        .returning(OutboxMessage.id, OutboxMessage.queue, OutboxMessage.enqueue_count,
                   OutboxMessage.job, OutboxMessage.args)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return sorted(Claimed(*row) for row in rows)


def claim(message_id: int, now: datetime) -> bool:
    """Take a due row for handing over; False when someone else took it first."""
    result = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, _is_due(now))
        .values(enqueued_at=now, enqueue_count=OutboxMessage.enqueue_count + 1)
    )
    db.session.commit()
    return cast(CursorResult[Any], result).rowcount == 1


def release(message_ids: int | list[int], error: str) -> None:
    """Undo claims whose hand-over failed (Redis down), so the next relay retries at once."""
    ids = [message_ids] if isinstance(message_ids, int) else message_ids
    db.session.execute(
        update(OutboxMessage).where(among(OutboxMessage.id, ids))
        .values(enqueued_at=None, last_error=error[:2000])
    )
    db.session.commit()


def mark_done(message_id: int, now: datetime) -> bool:
    """Mark a row done; False when it already was (a duplicate run)."""
    result = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.done_at.is_(None))
        .values(done_at=now, last_error="")
    )
    return cast(CursorResult[Any], result).rowcount == 1


def mark_many_done(message_ids: list[int], now: datetime) -> int:
    """Mark rows done in one statement (a batch that ran them); returns how many were not yet."""
    if not message_ids:
        return 0
    result = db.session.execute(
        update(OutboxMessage)
        .where(among(OutboxMessage.id, message_ids), OutboxMessage.done_at.is_(None))
        .values(done_at=now, last_error="")
    )
    return cast(CursorResult[Any], result).rowcount


def record_error(message_id: int, error: str, now: datetime) -> None:
    """Note a failed run; after MAX_ENQUEUES hand-overs the row is given up."""
    db.session.execute(
        update(OutboxMessage).where(OutboxMessage.id == message_id)
        .values(last_error=error[:2000])
    )
    db.session.execute(
        update(OutboxMessage)
        .where(and_(OutboxMessage.id == message_id, OutboxMessage.done_at.is_(None),
                    OutboxMessage.enqueue_count >= MAX_ENQUEUES))
        .values(failed_at=now)
    )
    db.session.commit()


def backlog() -> dict[str, int]:
    """Counts for the operations page."""
    from sqlalchemy import func

    def count(*where: Any) -> int:
        return db.session.scalar(select(func.count()).select_from(OutboxMessage).where(*where)) or 0

    return {
        "pending": count(OutboxMessage.done_at.is_(None), OutboxMessage.failed_at.is_(None)),
        "failed": count(OutboxMessage.failed_at.is_not(None)),
        "done": count(OutboxMessage.done_at.is_not(None)),
    }
