"""The one way to put a job on a queue, and the declaration of a job.

Without `REDIS_URL` (the embedded default) `enqueue()` runs the job at once, in
this process; with it, the job goes to RQ. The queue names and the connection are
the app's (ticketing/queues.py). Jobs are named by dotted path, declared
with `@job(...)`, which carries their queue, timeout, retries and result TTL.
"""
from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from flask import Flask, current_app, has_app_context
from rq import Queue, Retry
from werkzeug.utils import import_string

from ticketing.queues import DEFAULT, HIGH, LOW, QUEUES, queue, redis_connection

log = logging.getLogger(__name__)

# The queue names and the connection belong to the app (ticketing/queues.py); re-exported.
__all__ = ["DEFAULT", "HIGH", "LOW", "QUEUES", "JobOptions", "enqueue", "enqueue_many", "job",
           "options_of", "process_app", "queue", "redis_connection"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class JobOptions:
    """How a job runs on RQ."""

    queue: str = DEFAULT
    timeout: int = 60
    retries: int = 3
    backoff: tuple[int, ...] = (10, 60, 300)
    result_ttl: int = 3600
    failure_ttl: int = 7 * 24 * 3600


_process_app: Flask | None = None
_engine_pid: dict[int, int] = {}


def process_app() -> Flask:
    """The app a job runs in when no app context is active (a plain `rq worker`)."""
    global _process_app
    if _process_app is None:
        from ticketing import create_app

        _process_app = create_app()
    return _process_app


def _fresh_connections_after_fork(app: Flask) -> None:
    """A forked work-horse must not share database connections with its parent."""
    from ticketing.extensions import db

    engine = db.engine
    pid = os.getpid()
    if _engine_pid.setdefault(id(engine), pid) != pid:
        engine.dispose(close=False)
        _engine_pid[id(engine)] = pid


def job(**options: Any) -> Callable[[F], F]:
    """Declare a job: `@job(queue=HIGH, timeout=30, retries=5)`.

    The job runs inside an app context (the current one, or the process's own) and
    removes its database session afterwards.
    """
    settings = JobOptions(**options)

    def decorator(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            if has_app_context():
                _fresh_connections_after_fork(current_app)
                return fn(*args, **kwargs)
            app = process_app()
            with app.app_context():
                _fresh_connections_after_fork(app)
                try:
                    return fn(*args, **kwargs)
                finally:
                    from ticketing.extensions import db

                    db.session.remove()

        run.job_options = settings  # type: ignore[attr-defined]  # read back by options_of
        return cast(F, run)

    return decorator


def options_of(name: str) -> JobOptions:
    """The declared options of a job, by dotted name."""
    return getattr(import_string(name), "job_options", JobOptions())


def enqueue(name: str, *args: Any, job_id: str | None = None, queue_name: str | None = None) -> Any:
    """Run job `name` now (embedded mode) or put it on its RQ queue.

    Raises `redis.exceptions.ConnectionError` when Redis is configured but down;
    callers that must not fail (the outbox relay) catch it and try again later.
    """
    opts = options_of(name)
    connection = redis_connection()
    if connection is None:
        return import_string(name)(*args)
    retry = Retry(max=opts.retries, interval=list(opts.backoff)) if opts.retries else None
    return queue(queue_name or opts.queue, connection).enqueue_call(
        name, args=args, timeout=opts.timeout, result_ttl=opts.result_ttl,
        failure_ttl=opts.failure_ttl, retry=retry, job_id=job_id,
    )


def enqueue_many(jobs: list[tuple[str, tuple[Any, ...], str | None, str | None]]) -> None:
    """Put several jobs on their RQ queues in one Redis round trip.

    Each item is (job name, args, queue name or None for the job's own, job id or None).
    Raises `redis.exceptions.RedisError` when Redis is down; nothing is half-queued
    that matters, since every job here is idempotent and its row is released.
    """
    connection = redis_connection()
    if connection is None:
        raise RuntimeError("enqueue_many needs Redis; run jobs inline with enqueue()")
    by_queue: dict[str, list[Any]] = {}
    for name, args, queue_name, job_id in jobs:
        opts = options_of(name)
        retry = Retry(max=opts.retries, interval=list(opts.backoff)) if opts.retries else None
        by_queue.setdefault(queue_name or opts.queue, []).append(Queue.prepare_data(
            name, args=args, timeout=opts.timeout, result_ttl=opts.result_ttl,
            failure_ttl=opts.failure_ttl, retry=retry, job_id=job_id,
        ))
    with connection.pipeline() as pipe:
        for queue_name, datas in by_queue.items():
            queue(queue_name, connection).enqueue_many(datas, pipeline=pipe)
        pipe.execute()
