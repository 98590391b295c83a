"""The transactional outbox: follow-up work recorded with the change that causes it.

`emit()` adds a row to the current transaction, so the work exists exactly when the
change does. The relay (workers/relay.py) hands rows to the queue after commit and
on a schedule; a job marks its row done. Here are the row operations, each a
conditional UPDATE so that two relays or two workers never take the same row twice.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update

from ticketing.extensions import db
from ticketing.models import OutboxMessage

# A row handed over this long ago and still not done is handed over again.
STALE_AFTER = timedelta(minutes=10)
# After this many hand-overs a row is given up and shown to admins as failed.
MAX_ENQUEUES = 8
EMITTED = "minhu.outbox_emitted"


def emit(job: str, *args: Any, queue: str = "default") -> OutboxMessage:
    """Record that job `job(*args)` must run once this transaction commits."""
    message = OutboxMessage(job=job, args=list(args), queue=queue)
    db.session.add(message)
    db.session.info[EMITTED] = True
    return message


def due(now: datetime, limit: int = 100) -> list[int]:
    """Ids of rows to hand over: never handed over, or handed over and gone stale."""
    rows = db.session.scalars(
        select(OutboxMessage.id)
        .where(OutboxMessage.done_at.is_(None), OutboxMessage.failed_at.is_(None),
               or_(OutboxMessage.enqueued_at.is_(None), OutboxMessage.enqueued_at < now - STALE_AFTER))
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    return list(rows)


def claim(message_id: int, now: datetime) -> bool:
    """Take a due row for handing over; False when someone else took it first."""
    result = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.done_at.is_(None),
               OutboxMessage.failed_at.is_(None),
               or_(OutboxMessage.enqueued_at.is_(None),
                   OutboxMessage.enqueued_at < now - STALE_AFTER))
        .values(enqueued_at=now, enqueue_count=OutboxMessage.enqueue_count + 1)
    )
    db.session.commit()
    return result.rowcount == 1


def release(message_id: int, error: str) -> None:
    """Undo a claim whose hand-over failed (Redis down), so the next relay retries at once."""
    db.session.execute(
        update(OutboxMessage).where(OutboxMessage.id == message_id)
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
    return result.rowcount == 1


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
