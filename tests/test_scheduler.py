"""The scheduler: the schedule as data; each slot fires once, even with two scheduler processes."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import create_engine, select, text
from werkzeug.utils import import_string

from tests.factories import T0, TZ, World, advance, make_ticket
from ticketing.extensions import db
from ticketing.models import Notification, SchedulerRun
from ticketing.services.photos import PhotoStore
from workers import scheduler
from workers.scheduler import (
    SCHEDULE,
    Entry,
    build_scheduler,
    fire,
    first_run_time,
    sla_cli,
)

ROOT = Path(__file__).resolve().parent.parent
CALLS: list[str] = []


def record_call() -> str:
    """A job that only counts its runs (run inline: the tests have no REDIS_URL)."""
    CALLS.append("ran")
    return "ran"


def redis_is_down() -> str:
    raise RedisConnectionError("Error 111 connecting to localhost:6379. Connection refused.")


def job_that_breaks() -> str:
    raise RuntimeError("the job broke")


EVERY_MINUTE = Entry("test-entry", f"{__name__}.record_call", every=60)


@pytest.fixture(autouse=True)
def _no_calls() -> None:
    CALLS.clear()


def run_row(entry_id: str) -> SchedulerRun:
    db.session.expire_all()
    row = db.session.get(SchedulerRun, entry_id)
    assert row is not None
    return row


def test_two_firings_for_the_same_slot_enqueue_once(ctx: Flask) -> None:
    assert fire(EVERY_MINUTE, T0 + timedelta(seconds=1), TZ) == "fired"
    assert fire(EVERY_MINUTE, T0 + timedelta(seconds=2), TZ) == "taken"
    assert CALLS == ["ran"]
    row = run_row("test-entry")
    assert (row.last_fired_at, row.fire_count, row.last_error) == (T0, 1, "")


def test_a_later_slot_fires_again(ctx: Flask) -> None:
    fire(EVERY_MINUTE, T0, TZ)
    assert fire(EVERY_MINUTE, T0 + timedelta(seconds=60), TZ) == "fired"
    assert CALLS == ["ran", "ran"]
    assert run_row("test-entry").fire_count == 2


def test_a_slot_older_than_the_last_one_fired_is_not_fired(ctx: Flask) -> None:
    fire(EVERY_MINUTE, T0 + timedelta(minutes=5), TZ)
    assert fire(EVERY_MINUTE, T0, TZ) == "taken"
    assert CALLS == ["ran"]


def test_the_schedule_has_stable_unique_ids_and_importable_jobs() -> None:
    ids = [entry.id for entry in SCHEDULE]
    assert ids == ["outbox-relay", "sla-sweep", "morning-digest", "morning-briefs", "housekeeping", "retention-purge",
                   "nightly-ledgers", "nightly-hotspots", "today-ledgers", "calendar-check", "hold-reminders",
                   "governance-links"]
    for entry in SCHEDULE:
        assert callable(import_string(entry.job))
        assert (entry.every is None) != (entry.cron is None)


def test_interval_slots_are_the_same_in_every_process() -> None:
    relay = SCHEDULE[0]
    assert relay.slot_at(T0 + timedelta(seconds=29), TZ) == T0
    assert relay.slot_at(T0 + timedelta(seconds=31, microseconds=5), TZ) == T0 + timedelta(seconds=30)


def test_the_digest_slot_is_eight_in_the_morning_in_shanghai() -> None:
    digest = next(e for e in SCHEDULE if e.id == "morning-digest")
    eight = datetime(2026, 11, 19, 8, tzinfo=TZ).astimezone(UTC)
    assert digest.slot_at(eight + timedelta(minutes=30), TZ) == eight
    assert digest.slot_at(eight - timedelta(minutes=1), TZ) == eight - timedelta(days=1)


def test_a_scheduler_that_was_down_fires_once_for_the_missed_slots(ctx: Flask) -> None:
    fire(EVERY_MINUTE, T0, TZ)
    assert fire(EVERY_MINUTE, T0 + timedelta(minutes=10, seconds=5), TZ) == "fired"
    assert CALLS == ["ran", "ran"]
    assert run_row("test-entry").last_fired_at == T0 + timedelta(minutes=10)


def test_a_digest_missed_by_a_restart_within_the_hour_is_caught_up_later_not() -> None:
    digest = next(e for e in SCHEDULE if e.id == "morning-digest")
    eight = datetime(2026, 11, 19, 8, tzinfo=TZ).astimezone(UTC)
    assert first_run_time(digest, eight + timedelta(minutes=20), TZ) == eight
    assert first_run_time(digest, eight + timedelta(minutes=90), TZ) is None


def test_missed_runs_coalesce_into_one_firing(ctx: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    firings: list[str] = []
    monkeypatch.setattr(scheduler, "fire", lambda entry, now, tz: firings.append(entry.id) or "fired")
    background = build_scheduler(ctx, [EVERY_MINUTE])
    job = background.get_job("test-entry")
    assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 30)
    # Three run times are due (125, 65 and 5 seconds ago): they make one firing.
    background.modify_job("test-entry", next_run_time=datetime.now(UTC) - timedelta(seconds=125))
    background.start()
    try:
        deadline = time.monotonic() + 3
        while not firings and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        background.shutdown(wait=True)
    assert firings == ["test-entry"]


def test_redis_down_is_recorded_and_does_not_raise(ctx: Flask) -> None:
    entry = Entry("test-redis", f"{__name__}.redis_is_down", every=60)
    assert fire(entry, T0, TZ) == "failed"
    assert run_row("test-redis").last_error.startswith("Redis unavailable")
    assert fire(EVERY_MINUTE, T0, TZ) == "fired"  # other entries carry on


def test_a_failing_job_is_recorded_and_cleared_by_the_next_success(ctx: Flask) -> None:
    entry = Entry("test-entry", f"{__name__}.job_that_breaks", every=60)
    assert fire(entry, T0, TZ) == "failed"
    assert "the job broke" in run_row("test-entry").last_error
    assert fire(EVERY_MINUTE, T0 + timedelta(minutes=1), TZ) == "fired"
    assert run_row("test-entry").last_error == ""


def an_overdue_ticket(world: World, store: PhotoStore) -> None:
    """An urgent ticket dispatched an hour before the real clock: its accept-by has passed."""
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    advance(make_ticket(world, store, category="repair.gas", now=hour_ago), "dispatched", world, now=hour_ago)


def test_the_sweep_entry_runs_the_sla_sweep(world: World, store: PhotoStore) -> None:
    an_overdue_ticket(world, store)
    sweep_entry = next(e for e in SCHEDULE if e.id == "sla-sweep")
    assert fire(sweep_entry, datetime.now(UTC), TZ) == "fired"
    breaches = db.session.scalars(select(Notification.user_id).where(Notification.kind == "breach")).all()
    assert sorted(breaches) == sorted([world.gina.id, world.dora.id])


def test_flask_sla_sweep_prints_what_it_did(app: Flask, world: World, store: PhotoStore) -> None:
    an_overdue_ticket(world, store)
    result = app.test_cli_runner().invoke(sla_cli, ["sweep"])
    assert result.exit_code == 0, result.output
    assert "accept breached 1" in result.output


# --- two real scheduler processes -------------------------------------------------

FIRED = re.compile(r"(\S+) fired for (\S+)")
TAKEN = re.compile(r"(\S+) for (\S+): already fired by another scheduler")


def test_two_scheduler_processes_fire_each_slot_once(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'scheduler.db'}"
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(FLASK_APP="wsgi", MINHU_INSTANCE=str(tmp_path), DATABASE_URL=database,
               MINHU_SCHEDULE_SECONDS="1", PYTHONUNBUFFERED="1")
    flask = [sys.executable, "-m", "flask"]
    subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)
    logs = [tmp_path / "one.log", tmp_path / "two.log"]
    processes = [subprocess.Popen([*flask, "scheduler", "run"], cwd=ROOT, env=env,
                                  stdout=log.open("w"), stderr=subprocess.STDOUT) for log in logs]
    def settled() -> bool:
        """Both processes have fired or found taken at least two sweep slots."""
        outputs = [log.read_text() for log in logs]
        seen = [{slot for entry, slot in FIRED.findall(out) + TAKEN.findall(out) if entry == "sla-sweep"}
                for out in outputs]
        return all(len(slots) >= 2 for slots in seen)

    try:
        # Starting the app takes seconds on a busy machine: wait for both, not a fixed time.
        deadline = time.monotonic() + 90
        while not settled() and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(1)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    outputs = [log.read_text() for log in logs]
    fired = [set(FIRED.findall(out)) for out in outputs]
    taken = [set(TAKEN.findall(out)) for out in outputs]
    sweeps = {slot for entry, slot in fired[0] | fired[1] if entry == "sla-sweep"}
    assert len(sweeps) >= 2, outputs
    assert not fired[0] & fired[1], "a slot fired in both processes"
    # Both processes competed for the same slots: what one fired, the other found taken.
    assert (fired[0] & taken[1]) or (fired[1] & taken[0]), outputs
    engine = create_engine(database)
    with engine.connect() as conn:
        count = conn.execute(text("SELECT fire_count FROM scheduler_runs WHERE entry = 'sla-sweep'")).scalar()
    engine.dispose()
    assert count == len(sweeps)
