"""`flask rq worker`: an RQ worker for all queues, each job in its own app context.

Configured by the same environment variables as `make run` (REDIS_URL, DATABASE_URL …).
Nothing here is machine-local: workers get unique names from RQ, so any number of
them on any number of machines can share one Redis. Retries with backoff wait in
RQ's scheduled registry; `with_scheduler=True` lets one of the workers (RQ elects it
with a Redis lock) move them back to their queues when they are due. That scheduler
is `ResilientScheduler`, which outlives a Redis outage.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.job import Job
from rq.scheduler import RQScheduler
from rq.worker import BaseWorker, SimpleWorker, Worker

from workers.queues import QUEUES, queue

log = logging.getLogger(__name__)

rq_cli = AppGroup("rq", help="RQ workers.")

# Seconds between the scheduler's attempts to reach Redis again; in service it asks
# Redis every second anyway, so trying every 2 s while it is down costs nothing more.
RECONNECT_WAIT = 2.0


class ResilientScheduler(RQScheduler):
    """RQ's scheduler, which waits out a Redis outage instead of dying of it.

    RQ's own (2.12) lets a ConnectionError end the scheduler's process, and the worker
    starts another only at its maintenance, every 10 minutes: retries that fell due
    meanwhile (report-backs, message deliveries) then waited up to 10 minutes after
    Redis was back. This one keeps its process and carries on once Redis answers. Its
    locks are refreshed again, or dropped if another worker's scheduler took them.
    """

    def work(self) -> None:
        """RQ's scheduling loop, entered again after each outage."""
        last_failure = float("-inf")
        while True:
            try:
                super().work()
                return
            except (RedisConnectionError, RedisTimeoutError) as exc:
                if self._stop_requested:
                    return  # stopping needs no Redis: the locks expire by themselves
                # Said once per outage, not every 2 s while it lasts.
                again = time.monotonic() - last_failure < RECONNECT_WAIT * 2 + 1
                self.log.log(logging.DEBUG if again else logging.WARNING,
                             "Scheduler: Redis unavailable (%s); trying again every %.0f s",
                             type(exc).__name__, RECONNECT_WAIT)
                time.sleep(RECONNECT_WAIT)
                last_failure = time.monotonic()


class ResilientSchedulerMixin:
    """Run `ResilientScheduler` instead of RQ's, and look for Redis again sooner."""

    # RQ waits up to 60 s between a worker's attempts to reconnect; a retry moved back
    # to its queue the moment Redis returns should not wait that long for a worker.
    max_connection_wait_time = 10.0

    connection: Redis
    queues: list[Queue]
    serializer: Any
    log: logging.Logger
    scheduler: RQScheduler | None

    def _start_scheduler(self, burst: bool = False, logging_level: str | None = "INFO",
                         date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
                         log_format: str = DEFAULT_LOGGING_FORMAT) -> None:
        """rq 2.12's `BaseWorker._start_scheduler`, with `ResilientScheduler` for `RQScheduler`.

        RQ offers no setting for the class; the worker's maintenance restarts the same
        object (`acquire_locks(auto_start=True)`) should its process end all the same.
        """
        self.scheduler = scheduler = ResilientScheduler(
            self.queues, connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format, log_format=log_format, serializer=self.serializer,
        )
        scheduler.acquire_locks()
        if not scheduler.acquired_locks:
            return
        if not burst:
            scheduler.start()
            return
        try:
            scheduler.register_birth()
            scheduler.enqueue_scheduled_jobs()
        finally:
            scheduler.release_locks()
            scheduler.register_death()


class AppContextMixin:
    """Run each job inside a fresh app context, as Flask runs each request.

    The context's teardown removes the database session, so no job sees another's
    identity map or half-finished transaction, in a forked work-horse or not.
    """

    app: Flask

    def perform_job(self, job: Job, queue: Queue) -> bool:
        with self.app.app_context():
            return super().perform_job(job, queue)  # type: ignore[misc]  # a mixin: the Worker class after it has it


class AppWorker(AppContextMixin, ResilientSchedulerMixin, Worker):
    """Forks a work-horse per job (`--fork`): isolation, at about 200 ms a job."""


class AppSimpleWorker(AppContextMixin, ResilientSchedulerMixin, SimpleWorker):
    """Runs jobs in its own process (the default): our jobs are short, idempotent and
    reset the database session, and a fork plus a new database connection per job
    limited a worker to about 5 jobs a second (bench/intake_bench.py)."""


def parse_queues(value: str | None) -> list[str]:
    """Queue names from "high,default"; all queues, in priority order, when empty."""
    if not value:
        return list(QUEUES)
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in QUEUES]
    if unknown or not names:
        problem = f"unknown queue {', '.join(unknown)}" if unknown else "no queue named"
        raise click.BadParameter(f"{problem}; choose from {', '.join(QUEUES)}", param_hint="--queues")
    return names


def masked_url(url: str) -> str:
    """A Redis URL without its password, for messages and logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def build_worker(app: Flask, connection: Redis, queue_names: list[str], simple: bool = False) -> BaseWorker:
    """A worker for `queue_names` (taken in that order) that runs jobs in `app`."""
    worker_class: Any = AppSimpleWorker if simple else AppWorker
    worker = worker_class([queue(name, connection) for name in queue_names], connection=connection)
    worker.app = app
    return worker


@rq_cli.command("worker")
@click.option("--queues", "-q", "queue_list", default="", metavar="NAMES",
              help="Comma-separated queues to take jobs from, in priority order "
                   f"(default: {','.join(QUEUES)}).")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--fork/--simple", default=False,
              help="Run each job in a forked work-horse (isolation, about 200 ms a job) or, the "
                   "default, in this process (our jobs are short and reset their session).")
def worker_command(queue_list: str, burst: bool, fork: bool) -> None:
    """Run a worker for the high, default and low queues (or those given)."""
    names = parse_queues(queue_list)
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]  # Flask types the proxy as the app
    url = app.config.get("REDIS_URL")
    if not url:
        raise click.ClickException("REDIS_URL is not set: jobs run inline; no worker needed.")
    # The worker's own connection: RQ raises its socket timeout above the blocking
    # dequeue's, which the web's short-timeout connection must keep.
    connection = Redis.from_url(url)
    try:
        connection.ping()
    except RedisError as exc:
        raise click.ClickException(f"cannot reach Redis at {masked_url(url)}: {exc}") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    worker = build_worker(app, connection, names, simple=not fork)
    # The classifier's dictionaries take about 2 s to load: now, not in the first job.
    from ticketing.services.classify_store import warm_up

    warm_up()
    log.info("worker %s on %s, queues %s%s", worker.name, masked_url(url), ", ".join(names),
             " (burst)" if burst else "")
    try:
        worker.work(burst=burst, logging_level="INFO", with_scheduler=True)
    finally:
        connection.close()
