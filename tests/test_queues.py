"""Jobs and queues: inline without Redis, through a real RQ queue with it, and the outbox.

Jobs are called directly and, with Redis, run by `SimpleWorker(...).work(burst=True)`
inside the app, as `flask rq worker` runs them.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import Queue, SimpleWorker
from rq.job import Job, JobStatus
from sqlalchemy import select

from tests.factories import T0, World, calendar, make_ticket, put_on_call
from tests.races import at_once
from tests.redis_server import free_port
from tests.resident_helpers import form_data, post_report
from ticketing.extensions import db
from ticketing.models import Notification, OutboxMessage, Status, Ticket
from ticketing.services import outbox
from ticketing.services.photos import PhotoStore
from workers import jobs
from workers.queues import QUEUES, enqueue, redis_connection
from workers.relay import KICK_KEY, drain, relay
from workers.worker import ResilientScheduler

# --- helpers ----------------------------------------------------------------


def fresh(model: Any, row_id: int) -> Any:
    """A row as the database has it now (workers changed it in another session)."""
    db.session.expire_all()
    return db.session.get(model, row_id)


def only_resident_message() -> Notification:
    return db.session.scalars(select(Notification).where(Notification.channel == "sms")).one()


def only_outbox_row(job: str | None = None) -> OutboxMessage:
    """The one outbox row (of `job`: filing on the web also records a routing job)."""
    query = select(OutboxMessage)
    if job is not None:
        query = query.where(OutboxMessage.job == job)
    return db.session.scalars(query).one()


def work_burst(app: Flask, connection: Any) -> bool:
    """Run every queued job, as a burst worker inside the app does."""
    with app.app_context():
        worker = SimpleWorker([Queue(name, connection=connection) for name in QUEUES], connection=connection)
        return worker.work(burst=True)


def invoke(app: Flask, *args: str) -> Any:
    """Run a `flask` command of `app` (the test's own app context would win otherwise)."""
    with app.app_context():
        return app.test_cli_runner().invoke(args=list(args))


def queued(connection: Any, name: str) -> list[str]:
    return Queue(name, connection=connection).job_ids


# --- inline (the embedded default) ------------------------------------------


def test_without_redis_a_job_runs_at_once(world: World, store: PhotoStore) -> None:
    make_ticket(world, store)
    message = only_resident_message()
    assert enqueue("workers.jobs.deliver_notification", message.id) == "sent"
    assert fresh(Notification, message.id).status == "sent"


def test_without_redis_the_relay_runs_due_rows_here_and_marks_them_done(world: World, store: PhotoStore) -> None:
    make_ticket(world, store)
    row = only_outbox_row()
    result = relay(T0)
    assert result.ran_inline == [row.id] and result.handed_over == []
    assert fresh(OutboxMessage, row.id).done_at is not None
    assert only_resident_message().status == "sent"


def test_run_outbox_on_a_done_row_does_nothing(world: World, store: PhotoStore) -> None:
    make_ticket(world, store)
    row_id = only_outbox_row().id
    assert jobs.run_outbox(row_id) == "sent"
    done_at = fresh(OutboxMessage, row_id).done_at
    assert jobs.run_outbox(row_id) == "already done"
    assert fresh(OutboxMessage, row_id).done_at == done_at
    assert only_resident_message().attempts == 1


def test_an_outbox_row_that_keeps_failing_is_given_up_after_the_last_hand_over(ctx: Flask) -> None:
    outbox.emit("tests.jobs_for_tests.always_fails", "k")
    db.session.commit()
    row_id = only_outbox_row().id
    now = T0
    for _ in range(outbox.MAX_ENQUEUES):
        assert relay(now).ran_inline == [row_id]
        now += outbox.STALE_AFTER + timedelta(seconds=1)
    row = fresh(OutboxMessage, row_id)
    assert row.failed_at is not None and row.done_at is None
    assert "RuntimeError: cannot do k" in row.last_error
    assert relay(now + timedelta(days=1)).ran_inline == []


def test_a_row_handed_over_recently_is_not_handed_over_again(world: World, store: PhotoStore) -> None:
    make_ticket(world, store)
    row_id = only_outbox_row().id
    assert outbox.claim(row_id, T0)
    assert outbox.due(T0 + outbox.STALE_AFTER - timedelta(seconds=1)) == []
    assert outbox.due(T0 + outbox.STALE_AFTER + timedelta(seconds=1)) == [row_id]


def test_the_worker_command_says_jobs_run_inline_without_redis(ctx: Flask) -> None:
    result = ctx.test_cli_runner().invoke(args=["rq", "worker", "--burst"])
    assert result.exit_code == 1
    assert "REDIS_URL is not set: jobs run inline; no worker needed" in result.output


def test_the_worker_command_refuses_an_unknown_queue(ctx: Flask) -> None:
    result = ctx.test_cli_runner().invoke(args=["rq", "worker", "--queues", "high,urgent"])
    assert result.exit_code == 2 and "unknown queue urgent" in result.output


# --- through a real Redis ---------------------------------------------------


@pytest.mark.redis
def test_the_workers_scheduler_asked_to_stop_while_redis_is_down_stops_without_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing listens there; no retries by the client (redis-py's default three take 3.7 s).
    nowhere = Redis(port=free_port(), socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    scheduler = ResilientScheduler(QUEUES, connection=nowhere)
    monkeypatch.setattr(scheduler, "_install_signal_handlers", lambda: None)  # not the test runner's
    scheduler.request_stop()
    scheduler.work()  # RQ's own raises ConnectionError here
    assert scheduler.acquired_locks == set()


def test_with_redis_a_job_is_queued_and_a_worker_runs_it(
    world: World, store: PhotoStore, redis_app: Flask, redis_conn: Any
) -> None:
    make_ticket(world, store)
    message_id = only_resident_message().id
    with redis_app.app_context():
        job = enqueue("workers.jobs.deliver_notification", message_id)
    assert queued(redis_conn, "default") == [job.id]
    assert fresh(Notification, message_id).status == "pending"
    assert work_burst(redis_app, redis_conn)
    assert job.get_status() == JobStatus.FINISHED and job.return_value() == "sent"
    assert fresh(Notification, message_id).status == "sent"


@pytest.mark.redis
def test_a_jobs_declared_queue_timeout_and_retries_reach_rq(redis_app: Flask, redis_conn: Any) -> None:
    with redis_app.app_context():
        run = enqueue("workers.jobs.run_outbox", 1, job_id="outbox-1-1")
        relay_job = enqueue("workers.jobs.relay_outbox")
        elsewhere = enqueue("workers.jobs.run_outbox", 2, queue_name="high")
    declared = jobs.run_outbox.job_options  # type: ignore[attr-defined]
    assert (run.id, run.origin, run.timeout) == ("outbox-1-1", "default", declared.timeout)
    assert (run.retries_left, run.retry_intervals) == (declared.retries, list(declared.backoff))
    assert (run.result_ttl, run.failure_ttl) == (declared.result_ttl, declared.failure_ttl)
    assert (relay_job.origin, relay_job.timeout, relay_job.retries_left) == ("high", 120, None)
    assert elsewhere.origin == "high"
    assert queued(redis_conn, "high") == [relay_job.id, elsewhere.id]


@pytest.mark.redis
def test_a_job_run_twice_has_its_effect_once(
    world: World, store: PhotoStore, redis_app: Flask, redis_conn: Any
) -> None:
    make_ticket(world, store)
    message_id = only_resident_message().id
    with redis_app.app_context():
        first = enqueue("workers.jobs.deliver_notification", message_id)
        second = enqueue("workers.jobs.deliver_notification", message_id)
    work_burst(redis_app, redis_conn)
    assert (first.return_value(), second.return_value()) == ("sent", "not pending")
    message = fresh(Notification, message_id)
    assert (message.status, message.attempts) == ("sent", 1)


@pytest.mark.redis
def test_reports_filed_with_redis_configured_kick_one_drain_that_routes_and_delivers_them(
    world: World, redis_app: Flask, redis_conn: Any
) -> None:
    put_on_call(world.gina)
    client = redis_app.test_client()
    for n in range(3):
        assert post_report(client, form_data(world, description=f"楼道灯不亮，第{n + 1}处")).status_code == 303
    rows = db.session.scalars(select(OutboxMessage)).all()
    # Each request stored its ticket and the routing job, which writes the resident's message.
    assert [row.job for row in rows] == ["workers.jobs.route_ticket"] * 3
    assert all(row.enqueued_at is None for row in rows)  # the drain claims them
    [drain_job] = queued(redis_conn, "high")  # one for the three requests
    assert redis_conn.get(KICK_KEY) == b"1"
    assert queued(redis_conn, "default") == []

    work_burst(redis_app, redis_conn)
    db.session.expire_all()
    # Three routing rows, then one delivery row for the three messages the batch wrote.
    assert Job.fetch(drain_job, connection=redis_conn).return_value() == "batched 4, handed over 0"
    assert all(row.done_at is not None for row in db.session.scalars(select(OutboxMessage)))
    tickets = db.session.scalars(select(Ticket)).all()
    assert [(t.status, t.assignee_id) for t in tickets] == [(Status.DISPATCHED, world.gina.id)] * 3
    messages = db.session.scalars(select(Notification).where(Notification.channel == "sms")).all()
    assert [(m.status, m.sender, m.attempts) for m in messages] == [("sent", "record", 1)] * 3
    assert redis_conn.get(KICK_KEY) is None


@pytest.mark.redis
def test_the_drain_hands_jobs_without_a_batch_form_to_their_queue_one_each(
    ctx: Flask, redis_app: Flask, redis_conn: Any
) -> None:
    with redis_app.app_context():
        rows = [outbox.emit("workers.jobs.noop", str(i), queue="low") for i in range(3)]
        db.session.commit()
        ids = [row.id for row in rows]
        result = drain()
    assert (result.batched, result.handed_over) == (0, 3)
    assert queued(redis_conn, "low") == [f"outbox-{i}-1" for i in ids]


@pytest.mark.redis
def test_a_failing_batch_is_rolled_back_and_its_rows_go_to_the_queue_one_each(
    world: World, store: PhotoStore, redis_app: Flask, redis_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_on_call(world.gina)
    tickets = [make_ticket(world, store, route=True) for _ in range(2)]
    routing_rows = db.session.scalars(
        select(OutboxMessage.id).where(OutboxMessage.job == "workers.jobs.route_ticket").order_by(OutboxMessage.id)
    ).all()

    def broken(*args: Any) -> None:
        from ticketing.services import routing

        routing.route(db.session.get(Ticket, tickets[0].id), T0, calendar())  # half done, then fails
        raise RuntimeError("boom")

    monkeypatch.setattr("ticketing.services.routing.route_many", broken)
    with redis_app.app_context():
        result = drain()
    assert (result.batched, result.handed_over, result.failed_batches) == (0, 2, 1)
    assert queued(redis_conn, "high") == [f"outbox-{i}-1" for i in routing_rows]
    db.session.expire_all()
    assert all(t.status == Status.SUBMITTED for t in db.session.scalars(select(Ticket)))
    monkeypatch.undo()
    work_burst(redis_app, redis_conn)  # the two jobs, then the drain they kick for the messages
    db.session.expire_all()
    assert [t.status for t in db.session.scalars(select(Ticket))] == [Status.DISPATCHED] * 2
    assert [m.status for m in db.session.scalars(select(Notification).where(Notification.channel == "sms"))] == [
        "sent"] * 2


@pytest.mark.redis
def test_a_drain_out_of_time_queues_its_successor(
    world: World, store: PhotoStore, redis_app: Flask, redis_conn: Any
) -> None:
    for _ in range(3):
        make_ticket(world, store, route=True)
    with redis_app.app_context():
        result = drain(budget=0, batch=2)
    assert result.more and result.batched == 2
    assert len(queued(redis_conn, "high")) == 1 and redis_conn.get(KICK_KEY) == b"1"
    work_burst(redis_app, redis_conn)
    db.session.expire_all()
    assert all(row.done_at is not None for row in db.session.scalars(select(OutboxMessage)))


@pytest.mark.redis
def test_the_worker_command_in_burst_mode_runs_the_queued_jobs(
    world: World, store: PhotoStore, redis_app: Flask, redis_conn: Any
) -> None:
    make_ticket(world, store)
    message_id = only_resident_message().id
    with redis_app.app_context():
        enqueue("workers.jobs.deliver_notification", message_id)
    result = invoke(redis_app, "rq", "worker", "--burst", "--simple")
    assert result.exit_code == 0, result.output
    assert fresh(Notification, message_id).status == "sent"
    assert queued(redis_conn, "default") == []


@pytest.mark.redis
def test_a_worker_for_some_queues_leaves_the_others_alone(redis_app: Flask, redis_conn: Any) -> None:
    with redis_app.app_context():
        low = enqueue("workers.jobs.noop", "later")
        high = enqueue("workers.jobs.relay_outbox")
    result = invoke(redis_app, "rq", "worker", "--burst", "--simple", "--queues", "low")
    assert result.exit_code == 0, result.output
    assert low.get_status() == JobStatus.FINISHED and low.return_value() == "later"
    assert queued(redis_conn, "high") == [high.id]


@pytest.mark.redis
def test_the_relay_hands_due_rows_to_their_queue_with_a_job_id_per_hand_over(
    world: World, store: PhotoStore, redis_app: Flask, redis_conn: Any
) -> None:
    make_ticket(world, store)
    row_id = only_outbox_row().id
    with redis_app.app_context():
        assert relay(T0).handed_over == [row_id]
        assert relay(T0).handed_over == []  # handed over, not yet stale
        later = T0 + outbox.STALE_AFTER + timedelta(seconds=1)
        assert relay(later).handed_over == [row_id]
        assert redis_connection() is not None
    assert queued(redis_conn, "default") == [f"outbox-{row_id}-1", f"outbox-{row_id}-2"]
    work_burst(redis_app, redis_conn)
    row = fresh(OutboxMessage, row_id)
    assert row.done_at is not None and row.enqueue_count == 2
    assert only_resident_message().attempts == 1


def test_a_web_report_without_redis_delivers_the_message_in_the_request(world: World, client: Any) -> None:
    assert post_report(client, form_data(world)).status_code == 303
    assert only_outbox_row("workers.jobs.deliver_notification").done_at is not None
    assert only_resident_message().status == "sent"


def test_the_backlog_counts_pending_and_done_rows(world: World, store: PhotoStore) -> None:
    make_ticket(world, store)
    assert outbox.backlog() == {"pending": 1, "failed": 0, "done": 0}
    relay(T0)
    assert outbox.backlog() == {"pending": 0, "failed": 0, "done": 1}


# --- the relay after a request, and relays at once --------------------------


def test_the_relay_after_a_request_hands_over_that_requests_rows_only(world: World, client: Any) -> None:
    backlog = outbox.emit("workers.jobs.noop", "someone else's")
    db.session.commit()
    backlog_id = backlog.id
    db.session.info.pop(outbox.EMITTED)  # as if another process had written it
    assert post_report(client, form_data(world)).status_code == 303
    db.session.expire_all()
    rows = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert [r.id for r in rows if r.done_at is None] == [backlog_id]  # the scheduled relay's
    assert {r.job for r in rows if r.done_at is not None} == {
        "workers.jobs.deliver_notification", "workers.jobs.route_ticket"}


def test_rows_of_a_rolled_back_transaction_are_not_relayed(ctx: Flask) -> None:
    outbox.emit("workers.jobs.noop", "never")
    db.session.rollback()
    assert outbox.take_emitted() == []
    assert relay(T0).ran_inline == []


@pytest.mark.redis
def test_the_relay_hands_several_rows_to_their_own_queues_in_one_go(
    world: World, redis_app: Flask, redis_conn: Any
) -> None:
    with redis_app.app_context():
        rows = [outbox.emit("workers.jobs.noop", str(i), queue=q)
                for i, q in enumerate(["high", "default", "low", "default"])]
        db.session.commit()
        ids = [row.id for row in rows]
        assert relay(T0).handed_over == ids
    assert queued(redis_conn, "high") == [f"outbox-{ids[0]}-1"]
    assert queued(redis_conn, "default") == [f"outbox-{ids[1]}-1", f"outbox-{ids[3]}-1"]
    assert queued(redis_conn, "low") == [f"outbox-{ids[2]}-1"]
    work_burst(redis_app, redis_conn)
    db.session.expire_all()
    assert all(db.session.get(OutboxMessage, i).done_at is not None for i in ids)


@pytest.mark.postgres
def test_two_relays_at_once_take_each_row_exactly_once(app: Flask, ctx: Flask) -> None:
    ids = []
    for i in range(60):
        ids.append(outbox.emit("workers.jobs.noop", str(i)))
    db.session.commit()
    ids = [row.id for row in ids]
    db.session.remove()

    def claim() -> list[int]:
        return [row.id for row in outbox.claim_many(T0, limit=100)]

    taken = at_once(app, [claim, claim])
    assert sorted(taken[0] + taken[1]) == ids  # every row once, none twice
