"""The operations page, its actions, and the health checks.

The Redis tests (marked `redis`) use database 14 of the Redis on this machine,
flushed around each test, so they never disturb the queue tests' database; they
skip when it is not reachable, except under CI=true, where they fail.
"""
from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.job import Job

# Renamed: pytest would collect a module-level `testing_config` as a test.
from config import testing_config as config_for_tests
from tests.conftest import IN_CI, IsolatedClient, csrf_token, login
from tests.factories import PHONE, TZ, World, make_ticket
from ticketing import create_app
from ticketing.extensions import db
from ticketing.models import Notification, OutboxMessage, SchedulerRun, utcnow
from ticketing.services.photos import PhotoStore
from workers.queues import queue
from workers.relay import relay

REDIS_URL = "redis://localhost:6379/14"

pytestmark = pytest.mark.usefixtures("english")


def closed_port() -> int:
    """A local port nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def app_with_redis(app: Flask, tmp: Path, redis_url: str) -> Flask:
    """A second app on the same database as `app`, with REDIS_URL set."""
    return create_app(config_for_tests(app.config["SQLALCHEMY_DATABASE_URI"], tmp, redis_url=redis_url))


def dispose(other: Flask) -> None:
    """Close the second app's database pool and Redis connections."""
    with other.app_context():
        db.engine.dispose()
    for connection in other.extensions.get("minhu.redis", {}).values():
        connection.close()


@pytest.fixture(scope="module")
def ops_redis_app(app: Flask, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    other = app_with_redis(app, tmp_path_factory.mktemp("redis-app"), REDIS_URL)
    yield other
    dispose(other)


@pytest.fixture(scope="module")
def dead_redis_app(app: Flask, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    url = f"redis://127.0.0.1:{closed_port()}/0"
    other = app_with_redis(app, tmp_path_factory.mktemp("dead-redis-app"), url)
    yield other
    dispose(other)


@pytest.fixture()
def ops_redis() -> Iterator[Redis]:
    """Redis database 14, empty."""
    conn = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        conn.ping()
    except RedisError:
        if IN_CI:
            pytest.fail(f"Redis is not reachable at {REDIS_URL} (CI=true forbids skipping)")
        pytest.skip(f"needs Redis at {REDIS_URL}")
    conn.flushdb()
    yield conn
    conn.flushdb()
    conn.close()


def client_of(other: Flask) -> FlaskClient:
    """A client of another app, reading its pages in English like the rest of this file."""
    other.test_client_class = IsolatedClient
    client = other.test_client()
    client.get("/lang/en")
    return client


@pytest.fixture()
def ops_client(ctx: Flask, ops_redis_app: Flask, ops_redis: Redis) -> FlaskClient:
    """A client of the app with Redis (the tables are emptied by `ctx` afterwards)."""
    return client_of(ops_redis_app)


@pytest.fixture()
def failed_job(ops_redis_app: Flask, ops_redis: Redis) -> Job:
    """A job that raised on the `default` queue, run by a real worker."""
    q = queue("default", ops_redis)
    rq_job = q.enqueue_call("operator.truediv", args=(1, 0))
    with ops_redis_app.app_context():
        SimpleWorker([q], connection=ops_redis).work(burst=True)
    assert rq_job.id in q.failed_job_registry
    return rq_job


def ops_page(client: FlaskClient, query: str = "") -> str:
    response = client.get("/admin/ops" + query)
    assert response.status_code == 200
    return response.get_data(as_text=True)


# Who may see it

@pytest.mark.parametrize("persona", ["sam", "sue", "dora", "gina", "pete"])
def test_the_operations_page_is_not_found_for_anyone_but_admins(
        client: FlaskClient, world: World, persona: str) -> None:
    login(client, persona)
    token = csrf_token(client, "/inbox/")
    assert client.get("/admin/ops").status_code == 404
    assert client.post("/admin/ops/outbox/1/retry", data={"csrf_token": token}).status_code == 404
    assert client.post("/admin/ops/jobs/discard", data={"csrf_token": token, "queue": "default",
                                                        "job_id": "x"}).status_code == 404
    assert "/admin/ops" not in client.get("/inbox/").get_data(as_text=True)


def test_the_operations_page_sends_visitors_to_the_login(client: FlaskClient, world: World) -> None:
    response = client.get("/admin/ops")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_admins_find_the_operations_page_in_the_navigation(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    assert 'href="/admin/ops"' in client.get("/inbox/").get_data(as_text=True)


# Embedded mode

def test_the_embedded_page_says_jobs_run_inline_and_shows_the_outbox_and_recorded_messages(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    relay()  # embedded: runs the delivery inline through the "record" sender
    login(client, world.adam)
    html = ops_page(client)
    assert "jobs run inline" in html and "Failed jobs on" not in html
    assert '<dt>Done</dt><dd>1</dd>' in html and '<dt>Pending</dt><dd>0</dd>' in html
    assert '<dt>Sent</dt><dd>1</dd>' in html
    assert ticket.number in html and "sender: record" in html
    assert "138****5678" in html and PHONE not in html


def test_the_message_filter_shows_only_failed_messages(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    relay()
    db.session.add(Notification(
        dedupe_key="test:failed", kind="accepted", channel="sms", ticket_id=ticket.id,
        address="13900001111", subject="Failed one", body="…", status="failed", attempts=5,
        last_error="SMTP 554 rejected"))
    db.session.commit()
    login(client, world.adam)
    html = ops_page(client, "?messages=failed")
    assert "Failed one" in html and "SMTP 554 rejected" in html and "attempts: 5" in html
    assert "sender: record" not in html
    assert "Failed one" in ops_page(client) and "sender: record" in ops_page(client)


def test_scheduler_entries_silent_for_over_five_minutes_are_flagged(
        client: FlaskClient, world: World) -> None:
    now = utcnow()
    db.session.add_all([
        SchedulerRun(entry="outbox_relay", last_fired_at=now - timedelta(seconds=20), fire_count=90),
        SchedulerRun(entry="sla_sweep", last_fired_at=now - timedelta(hours=1), fire_count=7,
                     last_error="OperationalError: database is locked"),
    ])
    db.session.commit()
    login(client, world.adam)
    html = ops_page(client)
    flagged = {entry: bool(stale) for stale, entry in
               re.findall(r'<li class="ops-item( stale)?">\s*<p><code>(\w+)</code>', html)}
    assert flagged == {"outbox_relay": False, "sla_sweep": True}
    assert "database is locked" in html


def test_each_scheduled_job_is_judged_by_its_own_interval(client: FlaskClient, world: World) -> None:
    from workers.scheduler import SCHEDULE

    now, entries = utcnow(), {entry.id: entry for entry in SCHEDULE}

    def fired(entry: str, ago: timedelta) -> SchedulerRun:
        """The run as the scheduler records it: the slot it fired for, `ago` or earlier."""
        slot = entries[entry].slot_at(now - ago, TZ)
        return SchedulerRun(entry=entry, last_fired_at=slot, fire_count=1)

    db.session.add_all([
        fired("nightly-ledgers", timedelta(0)),  # daily at 00:10: its last night's run is on time
        fired("today-ledgers", timedelta(minutes=8)),  # every 10 minutes: fired 8 or more minutes ago
        fired("sla-sweep", timedelta(minutes=5)),  # every minute: four sweeps missed
        fired("housekeeping", timedelta(days=2)),  # daily: yesterday's run is missing
    ])
    db.session.commit()
    login(client, world.adam)
    html = ops_page(client)
    flagged = {entry: bool(stale) for stale, entry in
               re.findall(r'<li class="ops-item( stale)?">\s*<p><code>([\w-]+)</code>', html)}
    assert flagged == {"nightly-ledgers": False, "today-ledgers": False, "sla-sweep": True, "housekeeping": True}
    assert "overdue: due" in html


def test_a_failed_outbox_row_is_shown_and_can_be_retried(
        client: FlaskClient, world: World) -> None:
    row = OutboxMessage(job="workers.jobs.noop", args=["again"], failed_at=utcnow(), enqueue_count=8,
                        enqueued_at=utcnow(), last_error="RuntimeError: boom")
    db.session.add(row)
    db.session.commit()
    login(client, world.adam)
    html = ops_page(client)
    assert "workers.jobs.noop(again)" in html and "RuntimeError: boom" in html
    response = client.post(f"/admin/ops/outbox/{row.id}/retry",
                           data={"csrf_token": csrf_token(client, "/admin/ops")}, follow_redirects=True)
    assert response.status_code == 200
    db.session.expire_all()
    row = db.session.get(OutboxMessage, row.id)
    # Reset, then handed over by the relay after the request (inline here) and done.
    assert row.failed_at is None and row.done_at is not None


def test_retrying_an_outbox_row_that_is_not_failed_changes_nothing(
        client: FlaskClient, world: World) -> None:
    row = OutboxMessage(job="workers.jobs.noop", args=[], enqueued_at=utcnow(), enqueue_count=1)
    db.session.add(row)
    db.session.commit()
    login(client, world.adam)
    response = client.post(f"/admin/ops/outbox/{row.id}/retry",
                           data={"csrf_token": csrf_token(client, "/admin/ops")}, follow_redirects=True)
    assert "is not failed" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(OutboxMessage, row.id).enqueue_count == 1


def test_retrying_an_outbox_row_needs_the_csrf_token(client: FlaskClient, world: World) -> None:
    row = OutboxMessage(job="workers.jobs.noop", args=[], failed_at=utcnow(), enqueue_count=8)
    db.session.add(row)
    db.session.commit()
    login(client, world.adam)
    assert client.post(f"/admin/ops/outbox/{row.id}/retry").status_code == 400
    db.session.expire_all()
    assert db.session.get(OutboxMessage, row.id).failed_at is not None


# With Redis

@pytest.mark.redis
def test_the_page_shows_each_queue_with_its_length(
        ops_client: FlaskClient, world: World, ops_redis: Redis) -> None:
    queue("low", ops_redis).enqueue_call("workers.jobs.noop", args=("x",))
    login(ops_client, world.adam)
    html = ops_page(ops_client)
    assert "jobs run inline" not in html
    assert "<td><strong>low</strong></td><td>1</td>" in html
    assert "<td><strong>high</strong></td><td>0</td>" in html


@pytest.mark.redis
def test_a_failed_job_is_listed_with_the_last_line_of_its_error(
        ops_client: FlaskClient, world: World, failed_job: Job) -> None:
    login(ops_client, world.adam)
    html = ops_page(ops_client)
    assert "Failed jobs on default" in html
    assert failed_job.id in html and "operator.truediv(1, 0)" in html
    assert "ZeroDivisionError: division by zero" in html
    assert "Traceback" not in html


@pytest.mark.redis
def test_a_failed_job_can_be_retried(
        ops_client: FlaskClient, world: World, ops_redis: Redis, failed_job: Job) -> None:
    login(ops_client, world.adam)
    response = ops_client.post("/admin/ops/jobs/retry", data={
        "csrf_token": csrf_token(ops_client, "/admin/ops"), "queue": "default", "job_id": failed_job.id,
    }, follow_redirects=True)
    assert "is back on the queue default" in response.get_data(as_text=True)
    q = queue("default", ops_redis)
    assert q.job_ids == [failed_job.id] and failed_job.id not in q.failed_job_registry


@pytest.mark.redis
def test_a_failed_job_can_be_discarded(
        ops_client: FlaskClient, world: World, ops_redis: Redis, failed_job: Job) -> None:
    login(ops_client, world.adam)
    response = ops_client.post("/admin/ops/jobs/discard", data={
        "csrf_token": csrf_token(ops_client, "/admin/ops"), "queue": "default", "job_id": failed_job.id,
    }, follow_redirects=True)
    assert "was discarded" in response.get_data(as_text=True)
    q = queue("default", ops_redis)
    assert q.failed_job_registry.count == 0 and not Job.exists(failed_job.id, connection=ops_redis)
    assert failed_job.id not in ops_page(ops_client)


@pytest.mark.redis
def test_retrying_a_job_that_is_not_failed_says_so(
        ops_client: FlaskClient, world: World, ops_redis: Redis) -> None:
    login(ops_client, world.adam)
    response = ops_client.post("/admin/ops/jobs/retry", data={
        "csrf_token": csrf_token(ops_client, "/admin/ops"), "queue": "default", "job_id": "no-such-job",
    }, follow_redirects=True)
    assert "no longer among the failed jobs" in response.get_data(as_text=True)


@pytest.mark.redis
def test_a_job_action_on_an_unknown_queue_is_a_bad_request(
        ops_client: FlaskClient, world: World) -> None:
    login(ops_client, world.adam)
    response = ops_client.post("/admin/ops/jobs/retry", data={
        "csrf_token": csrf_token(ops_client, "/admin/ops"), "queue": "nope", "job_id": "x",
    })
    assert response.status_code == 400


def test_the_page_still_renders_when_redis_does_not_answer(
        ctx: Flask, dead_redis_app: Flask, world: World) -> None:
    client = client_of(dead_redis_app)
    login(client, world.adam)
    html = ops_page(client)
    assert "Redis did not answer" in html
    assert "<dt>Pending</dt>" in html  # the outbox part is still there


# Health

def test_healthz_answers_without_a_login(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


@pytest.fixture()
def calendar_known(monkeypatch: pytest.MonkeyPatch) -> None:
    """A clock in mid-2026: chinese-calendar knows the year, so the calendar warns of nothing."""
    from ticketing import web

    monkeypatch.setattr(web, "now", lambda: datetime(2026, 6, 1, 2, 0, tzinfo=UTC))


def test_readyz_in_the_embedded_mode_checks_only_the_database(client: FlaskClient, calendar_known: None) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"database": "ok", "redis": "not configured", "warnings": []}


@pytest.mark.redis
def test_readyz_checks_redis_when_configured(ops_client: FlaskClient, calendar_known: None) -> None:
    response = ops_client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"database": "ok", "redis": "ok", "warnings": []}


def test_readyz_is_503_and_names_redis_when_redis_does_not_answer(
        ctx: Flask, dead_redis_app: Flask, calendar_known: None) -> None:
    response = client_of(dead_redis_app).get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"database": "ok", "redis": "unavailable", "warnings": []}
