"""The RQ side of the operations page: queue lengths, and failed jobs to retry or discard.

This is the one part of the web package that looks at the worker machinery itself,
so it uses the queue names and the connection `ticketing/queues.py` defines once.
Nothing here shows a job's full traceback or its keyword arguments: only the
function, short positional arguments (jobs take ids) and the error's last line.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from redis.exceptions import RedisError
from rq.exceptions import DeserializationError, InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.queue import Queue
from rq.registry import FailedJobRegistry

from ticketing.queues import QUEUES, queue, redis_connection

FAILED_SHOWN = 50  # per queue, most recent first
ARGS_SHOWN = 120  # characters
ERROR_SHOWN = 300  # characters


@dataclass
class FailedJob:
    """A job that failed for good (its retries spent), as the page shows it."""

    id: str
    queue: str
    function: str
    args: str
    failed_at: datetime | None
    error: str


@dataclass
class QueueReport:
    """One queue: waiting, running, scheduled (retries with backoff) and failed jobs."""

    name: str
    queued: int
    started: int
    scheduled: int
    failed: int
    failed_jobs: list[FailedJob] = field(default_factory=list)


@dataclass
class RedisReport:
    """The queues, or why they cannot be shown."""

    configured: bool
    error: str = ""
    queues: list[QueueReport] = field(default_factory=list)


def last_line(text: str | None, limit: int = ERROR_SHOWN) -> str:
    """The last non-empty line of a traceback (the exception and its message), shortened."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return shorten(lines[-1], limit) if lines else ""


def shorten(text: str, limit: int) -> str:
    """At most `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(job: Job | None, job_id: str, name: str) -> FailedJob:
    """What the page shows of a failed job; its data may have expired or not unpickle."""
    if job is None:
        return FailedJob(job_id, name, "", "", None, "")
    try:
        function = job.func_name or ""
        args = shorten(", ".join(repr(arg) for arg in job.args), ARGS_SHOWN)
    except DeserializationError:
        function, args = "?", "?"
    result = job.latest_result()
    error = last_line(result.exc_string if result is not None else None)
    return FailedJob(job_id, name, function, args, job.ended_at, error)


def queue_report(rq_queue: Queue) -> QueueReport:
    """Counts of one queue and its most recent failed jobs."""
    failed = rq_queue.failed_job_registry
    ids = failed.get_job_ids(0, FAILED_SHOWN - 1, desc=True)
    jobs = Job.fetch_many(ids, connection=rq_queue.connection)
    return QueueReport(
        name=rq_queue.name,
        queued=rq_queue.count,
        started=rq_queue.started_job_registry.count,
        scheduled=rq_queue.scheduled_job_registry.count,
        failed=failed.count,
        failed_jobs=[describe(job, job_id, rq_queue.name) for job, job_id in zip(jobs, ids, strict=True)],
    )


def redis_report() -> RedisReport:
    """Every queue, or "not configured" (embedded mode), or the reason Redis did not answer."""
    connection = redis_connection()
    if connection is None:
        return RedisReport(configured=False)
    try:
        return RedisReport(True, queues=[queue_report(queue(name, connection)) for name in QUEUES])
    except RedisError as exc:
        # The class and redis-py's message (host and port, never the password).
        return RedisReport(True, error=shorten(f"{type(exc).__name__}: {exc}", ERROR_SHOWN))


def failed_registry(queue_name: str) -> FailedJobRegistry:
    """The failed-job registry of a known queue; raises RedisError when Redis is not configured."""
    connection = redis_connection()
    if connection is None:
        raise RedisError("Redis is not configured")
    return queue(queue_name, connection).failed_job_registry


def retry_job(queue_name: str, job_id: str) -> bool:
    """Put a failed job back on its queue; False when it is no longer among the failed."""
    registry = failed_registry(queue_name)
    try:
        registry.requeue(job_id)
    except (NoSuchJobError, InvalidJobOperation):
        return False
    return True


def discard_job(queue_name: str, job_id: str) -> bool:
    """Remove a failed job and delete its data; False when it was not among the failed."""
    registry = failed_registry(queue_name)
    if job_id not in registry:
        return False
    try:
        registry.remove(job_id, delete_job=True)
    except NoSuchJobError:
        pass  # its data had expired already; the registry entry is gone now
    return True
