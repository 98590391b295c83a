"""Faults: Redis stopped during intake, and a worker killed in the middle of a job.

These tests run their own `redis-server` on a spare port (tests/redis_server.py),
so stopping it harms nothing else, and real `flask rq worker` processes. Every wait
is bounded; the file takes some seconds, not minutes.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import JobStatus
from rq.registry import StartedJobRegistry
from sqlalchemy import func, select

from config import BASE_DIR
from tests import jobs_for_tests as test_jobs
from tests.conftest import app_on_test_database, dispose, redis_missing
from tests.factories import World
from tests.redis_server import RedisServer, redis_server_binary
from tests.resident_helpers import form_data, post_report
from ticketing.extensions import db
from ticketing.models import Notification, OutboxMessage, Ticket, utcnow
from ticketing.services import outbox
from workers.queues import QUEUES, enqueue
from workers.relay import relay

pytestmark = pytest.mark.redis

WAIT = 20.0  # seconds: the longest any step may take


# --- fixtures ---------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of our own, for the whole file."""
    if redis_server_binary() is None:
        redis_missing("the fault tests need redis-server")
    with RedisServer(tmp_path_factory.mktemp("redis-faults")) as running:
        yield running


@pytest.fixture()
def redis(server: RedisServer) -> Iterator[Redis]:
    """The private server, running and empty."""
    server.start()
    connection = Redis.from_url(server.url)
    connection.flushall()
    yield connection
    connection.close()
    server.start()  # a test that stopped it and failed leaves it running for the next


@pytest.fixture()
def fault_app(app: Flask, ctx: Flask, redis: Redis, server: RedisServer, tmp_path: Path) -> Iterator[Flask]:
    """The app on the test database with REDIS_URL pointing at the private server."""
    other = app_on_test_database(app, tmp_path / "instance", redis_url=server.url)
    yield other
    dispose(other)


@pytest.fixture()
def effect_tables(fault_app: Flask) -> Iterator[None]:
    """The tables the test jobs write their runs and effects to."""
    with fault_app.app_context():
        test_jobs.drop_tables()
        test_jobs.create_tables()
    yield
    with fault_app.app_context():
        test_jobs.drop_tables()
        db.engine.dispose()


@pytest.fixture()
def worker_process(app: Flask, server: RedisServer, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start `flask rq worker` processes configured as `make worker` would be, by env vars."""
    started: list[subprocess.Popen[bytes]] = []
    env = {
        **os.environ,
        "FLASK_APP": "wsgi",
        "PYTHONPATH": str(BASE_DIR),
        "MINHU_ENV": "development",
        "MINHU_INSTANCE": str(tmp_path / "worker-instance"),
        "SECRET_KEY": app.config["SECRET_KEY"],
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": server.url,
    }

    def start(*options: str) -> subprocess.Popen[bytes]:
        with open(tmp_path / f"worker-{len(started)}.log", "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "flask", "rq", "worker", *options],
                cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        started.append(process)
        return process

    yield start
    for process in started:
        kill_worker(process)


# --- helpers ----------------------------------------------------------------


def wait_until(condition: Callable[[], bool], what: str, seconds: float = WAIT) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"gave up after {seconds} s waiting for {what}")


def count(model: Any, *where: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def read(app: Flask, fn: Callable[[], Any]) -> Any:
    """`fn()` in a fresh session of `app`: sees what the worker processes committed."""
    with app.app_context():
        return fn()


def work_burst(app: Flask, connection: Redis) -> None:
    with app.app_context():
        SimpleWorker([Queue(name, connection=connection) for name in QUEUES], connection=connection).work(burst=True)


def invoke(app: Flask, *args: str) -> Any:
    """Run a `flask` command of `app` in this process."""
    with app.app_context():
        return app.test_cli_runner().invoke(args=list(args))


def kill(pid: int) -> None:
    """SIGKILL one process we started (a work-horse); gone already is fine."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def kill_worker(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a worker we started and its process group (its RQ scheduler child).

    The worker runs in a session of its own, so its group id is its pid. A forked
    work-horse moves to a group of its own and must be killed by its pid as well.
    """
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=WAIT)


def file_reports_while_redis_is_down(app: Flask, server: RedisServer, world: World, how_many: int = 2) -> None:
    server.stop()
    client = app.test_client()
    for n in range(how_many):
        response = post_report(client, form_data(world, description=f"楼道灯不亮，第{n + 1}处"))
        assert response.status_code == 303, response.get_data(as_text=True)[:300]


def started_effect(key: str) -> Callable[[], bool]:
    def check() -> bool:
        return test_jobs.effect_count(key) == 1

    return check


# --- Redis down during intake -----------------------------------------------


def test_with_redis_stopped_a_report_is_still_accepted_and_its_outbox_row_waits(
    world: World, fault_app: Flask, server: RedisServer
) -> None:
    file_reports_while_redis_is_down(fault_app, server, world)
    with fault_app.app_context():
        assert count(Ticket) == 2
        rows = db.session.scalars(select(OutboxMessage)).all()
        # Each report: its routing job, which will also write the resident's SMS.
        assert [row.job for row in rows] == ["workers.jobs.route_ticket"] * 2
        assert all(row.done_at is None and row.failed_at is None and row.enqueued_at is None for row in rows)
        assert outbox.backlog()["pending"] == 2


def test_when_redis_is_back_one_relay_and_a_worker_deliver_everything_once(
    world: World, fault_app: Flask, server: RedisServer, redis: Redis
) -> None:
    file_reports_while_redis_is_down(fault_app, server, world)
    server.start()
    with fault_app.app_context():
        assert len(relay().handed_over) == 2  # each report's routing
    work_burst(fault_app, redis)  # routing writes the SMS and kicks a drain, which sends them
    with fault_app.app_context():
        assert count(OutboxMessage, OutboxMessage.done_at.is_(None)) == 0
        messages = db.session.scalars(select(Notification).where(Notification.channel == "sms")).all()
        assert [(m.status, m.attempts) for m in messages] == [("sent", 1), ("sent", 1)]
        assert relay().handed_over == []


def test_a_relay_while_redis_is_down_releases_its_claim_and_stops(
    world: World, fault_app: Flask, server: RedisServer
) -> None:
    file_reports_while_redis_is_down(fault_app, server, world)
    with fault_app.app_context():
        result = relay()
        assert result.redis_down and result.handed_over == []
        assert count(OutboxMessage, OutboxMessage.enqueued_at.is_not(None)) == 0
        first = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).first()
        assert first.last_error == "Redis unavailable: ConnectionError"


# --- a worker killed mid-job ------------------------------------------------


def test_a_killed_worker_leaves_its_outbox_row_to_be_handed_over_again_and_the_effect_happens_once(
    world: World, fault_app: Flask, redis: Redis, effect_tables: None,
    worker_process: Callable[..., subprocess.Popen[bytes]],
) -> None:
    with fault_app.app_context():
        row = outbox.emit("tests.jobs_for_tests.effect_then_sleep", "outbox-kill", 60, queue="low")
        db.session.commit()
        row_id = row.id
        assert relay().handed_over == [row_id]

    worker = worker_process("--fork")  # a work-horse per job: the worker and the horse die
    wait_until(lambda: read(fault_app, started_effect("outbox-kill")), "the job's effect")
    horse = read(fault_app, lambda: test_jobs.pids_of("outbox-kill"))[0]
    assert horse != worker.pid
    # The machine dies: the worker and its work-horse, mid-job.
    kill_worker(worker)
    kill(horse)

    with fault_app.app_context():
        assert db.session.get(OutboxMessage, row_id).done_at is None
        assert relay().handed_over == []  # not yet stale: it may still be running somewhere
        later = utcnow() + outbox.STALE_AFTER + timedelta(seconds=1)
        assert relay(later).handed_over == [row_id]
    work_burst(fault_app, redis)

    with fault_app.app_context():
        row = db.session.get(OutboxMessage, row_id)
        assert row.done_at is not None and row.enqueue_count == 2
        assert test_jobs.run_count("outbox-kill") == 2
        assert test_jobs.effect_count("outbox-kill") == 1


def test_a_job_abandoned_by_a_killed_worker_is_retried_by_rq_and_the_effect_happens_once(
    fault_app: Flask, redis: Redis, effect_tables: None,
    worker_process: Callable[..., subprocess.Popen[bytes]],
) -> None:
    with fault_app.app_context():
        job = enqueue("tests.jobs_for_tests.effect_then_sleep", "rq-kill", 60)

    worker = worker_process("--simple", "--queues", "low")  # the job runs in the worker itself
    wait_until(lambda: read(fault_app, started_effect("rq-kill")), "the job's effect")
    assert read(fault_app, lambda: test_jobs.pids_of("rq-kill")) == [worker.pid]
    kill_worker(worker)

    started = StartedJobRegistry("low", connection=redis)
    assert job.id in started.get_job_ids(cleanup=False)
    # Once the dead worker's heartbeat has expired, the next worker's maintenance finds
    # the job abandoned; run that clean-up as if that time had come.
    started.cleanup(timestamp=time.time() + 3600)
    assert job.get_status() == JobStatus.QUEUED
    work_burst(fault_app, redis)

    assert job.get_status() == JobStatus.FINISHED
    assert job.return_value() == "effect already done"
    with fault_app.app_context():
        assert test_jobs.run_count("rq-kill") == 2
        assert test_jobs.effect_count("rq-kill") == 1


def test_a_worker_started_by_the_command_runs_queued_jobs(
    fault_app: Flask, redis: Redis, effect_tables: None,
    worker_process: Callable[..., subprocess.Popen[bytes]],
) -> None:
    with fault_app.app_context():
        job = enqueue("tests.jobs_for_tests.effect", "command")
    worker = worker_process("--burst")
    assert worker.wait(timeout=WAIT) == 0
    assert job.get_status() == JobStatus.FINISHED
    with fault_app.app_context():
        assert test_jobs.effect_count("command") == 1


def test_a_failed_job_is_retried_after_its_backoff_by_a_workers_scheduler(
    fault_app: Flask, redis: Redis, effect_tables: None,
) -> None:
    with fault_app.app_context():
        job = enqueue("tests.jobs_for_tests.fails_first_time", "flaky")
        assert invoke(fault_app, "rq", "worker", "--burst", "--simple").exit_code == 0
        assert job.get_status() == JobStatus.SCHEDULED
        time.sleep(1.2)  # the declared backoff is 1 s
        assert invoke(fault_app, "rq", "worker", "--burst", "--simple").exit_code == 0
        assert job.get_status() == JobStatus.FINISHED
        assert (test_jobs.run_count("flaky"), test_jobs.effect_count("flaky")) == (2, 1)


def test_a_retry_falling_due_while_redis_is_down_runs_within_seconds_of_its_return(
    fault_app: Flask, redis: Redis, server: RedisServer, effect_tables: None,
    worker_process: Callable[..., subprocess.Popen[bytes]],
) -> None:
    with fault_app.app_context():
        job = enqueue("tests.jobs_for_tests.fails_first_time_retried_later", "outage")
    worker_process()
    wait_until(lambda: job.get_status() == JobStatus.SCHEDULED, "the first run to fail")
    due = time.monotonic() + 3  # the job's declared backoff
    server.stop(keep_data=True)
    # Down until the retry is due and the worker's scheduler has met the outage.
    wait_until(lambda: time.monotonic() > due + 1.5, "the outage")
    server.start()
    # RQ's own scheduler died at the outage and came back only with the worker's
    # maintenance, ten minutes later.
    wait_until(lambda: job.get_status() == JobStatus.FINISHED, "the retry", seconds=10)
    with fault_app.app_context():
        assert (test_jobs.run_count("outage"), test_jobs.effect_count("outage")) == (2, 1)


def test_two_workers_on_one_redis_run_each_job_once(
    fault_app: Flask, redis: Redis, effect_tables: None,
    worker_process: Callable[..., subprocess.Popen[bytes]],
) -> None:
    keys = [f"shared-{n}" for n in range(8)]
    with fault_app.app_context():
        for key in keys:
            enqueue("tests.jobs_for_tests.effect", key)
    workers = [worker_process("--burst"), worker_process("--burst")]
    assert [worker.wait(timeout=WAIT) for worker in workers] == [0, 0]
    with fault_app.app_context():
        assert [(test_jobs.run_count(k), test_jobs.effect_count(k)) for k in keys] == [(1, 1)] * len(keys)
