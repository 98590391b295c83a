"""The scheduler: the schedule as data with stable ids; each firing only claims and enqueues.

Every firing first claims its slot (the scheduled time it stands for) with a
conditional UPDATE of `SchedulerRun`; only the process whose UPDATE changed the row
enqueues. So two scheduler processes started by mistake never fire one slot twice,
with or without Redis, and the row is also what the operations page shows.

`flask scheduler run` is the production process (a BlockingScheduler in the
foreground); `flask serve` is the embedded single process: the web server plus the
same schedule in a background thread. Nothing starts a scheduler from `create_app`,
because every forked gunicorn worker would then run one.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, cast
from zoneinfo import ZoneInfo

import click
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from redis.exceptions import RedisError
from sqlalchemy import CursorResult, or_, update
from sqlalchemy.exc import IntegrityError
from werkzeug.serving import run_simple

from config import env_int
from ticketing.extensions import db
from ticketing.models import SchedulerRun, utcnow
from workers.queues import enqueue

log = logging.getLogger(__name__)

# Interval slots are counted from this moment, not from each process's start, so
# that every scheduler process computes the same slots and their claims collide.
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
# How far back to look for a cron entry's latest slot (a weekly entry fits).
CRON_LOOKBACK = timedelta(days=8)


@dataclass(frozen=True)
class Entry:
    """One line of the schedule: a stable id, the job it enqueues, and when it fires."""

    id: str
    job: str  # dotted path of a job in workers/jobs.py
    every: int | None = None  # seconds, counted from EPOCH
    cron: str | None = None  # crontab "minute hour day month weekday", in the app's time zone
    misfire_grace: int = 30  # seconds late a firing may still run; later ones are dropped

    def trigger(self, tz: tzinfo) -> BaseTrigger:
        """The APScheduler trigger of this entry."""
        if self.every is not None:
            return IntervalTrigger(seconds=self.every, start_date=EPOCH, timezone=UTC)
        assert self.cron is not None, f"schedule entry {self.id} needs `every` or `cron`"
        return CronTrigger.from_crontab(self.cron, timezone=tz)

    def slot_at(self, now: datetime, tz: tzinfo) -> datetime | None:
        """The latest scheduled time at or before `now`, to the second.

        APScheduler 3 does not hand the scheduled time to the job, so it is derived
        from the trigger; with `coalesce` it is the same time APScheduler fired for.
        """
        if self.every is not None:
            elapsed = int((now - EPOCH).total_seconds())
            return EPOCH + timedelta(seconds=elapsed - elapsed % self.every)
        trigger, slot = self.trigger(tz), None
        moment = trigger.get_next_fire_time(None, now - CRON_LOOKBACK)
        while moment is not None and moment <= now:
            slot = moment
            moment = trigger.get_next_fire_time(moment, moment + timedelta(seconds=1))
        return slot.astimezone(UTC).replace(microsecond=0) if slot else None

    def due_after(self, fired: datetime, tz: tzinfo) -> datetime | None:
        """The first scheduled time after the slot `fired` (None: the trigger has no more)."""
        if self.every is not None:
            return fired + timedelta(seconds=self.every)
        return self.trigger(tz).get_next_fire_time(None, fired + timedelta(seconds=1))

    @property
    def late_after(self) -> timedelta:
        """How long past its due time a firing may be missing before the operations page
        flags the entry: its misfire grace, one more interval, and at least a minute."""
        return timedelta(seconds=max(self.misfire_grace, self.every or 0, 60))


SCHEDULE: tuple[Entry, ...] = (
    Entry("outbox-relay", "workers.jobs.relay_outbox", every=30),
    Entry("sla-sweep", "workers.jobs.sla_sweep", every=60),
    # A digest missed by a scheduler restart at 08:20 still goes out; one at noon does not.
    Entry("morning-digest", "workers.jobs.morning_digest", cron="0 8 * * *", misfire_grace=3600),
    # The supervisors' brief, on working days (the job skips the others); late by a restart
    # before 09:00 it still goes out.
    Entry("morning-briefs", "workers.jobs.morning_briefs", cron="0 8 * * *", misfire_grace=3600),
    Entry("housekeeping", "workers.jobs.housekeeping", cron="30 3 * * *", misfire_grace=6 * 3600),
    # Requesters' data of tickets closed more than RETENTION_DAYS ago; a late run does the same work.
    Entry("retention-purge", "workers.jobs.retention_purge", cron="45 3 * * *", misfire_grace=12 * 3600),
    # Yesterday's ledgers, a few minutes after local midnight; a restart before 06:00 still compiles them.
    Entry("nightly-ledgers", "workers.jobs.compile_ledgers", cron="10 0 * * *", misfire_grace=6 * 3600),
    # Recurring problems (30 and 90 days to yesterday), after the nightly ledgers; a late run does the same.
    Entry("nightly-hotspots", "workers.jobs.find_hotspots", cron="40 0 * * *", misfire_grace=6 * 3600),
    # Today so far, for the supervisors' dashboard: a compile is seconds even on a busy day.
    Entry("today-ledgers", "workers.jobs.compile_today_ledgers", every=600),
    # Once a day, a log warning while a year within 90 days has unconfirmed make-up working days.
    Entry("calendar-check", "workers.jobs.check_calendar", cron="0 9 * * *", misfire_grace=6 * 3600),
    # Holds whose expected date has come: hourly through the working day, so a hold until
    # today still reminds today; each hold reminds once whatever fires (services/holds.py).
    Entry("hold-reminders", "workers.jobs.remind_holds", cron="5 8-20 * * *", misfire_grace=3000),
    # New tickets at the place and in the category of an open governance task join it (not at intake).
    Entry("governance-links", "workers.jobs.link_governance_tickets", every=600),
)


def with_interval(schedule: Iterable[Entry], seconds: int) -> tuple[Entry, ...]:
    """The schedule with every interval entry firing every `seconds` (for tests and demos)."""
    return tuple(replace(e, every=seconds) if e.every is not None else e for e in schedule)


# --- one firing ---------------------------------------------------------------


def claim_slot(entry_id: str, slot: datetime) -> bool:
    """Take `slot` for this entry; False when this or another process already fired it."""
    if db.session.get(SchedulerRun, entry_id) is None:
        db.session.add(SchedulerRun(entry=entry_id, fire_count=0, last_error=""))
        try:
            db.session.commit()
        except IntegrityError:  # the other scheduler created it a moment ago
            db.session.rollback()
    result = db.session.execute(
        update(SchedulerRun)
        .where(SchedulerRun.entry == entry_id,
               or_(SchedulerRun.last_fired_at.is_(None), SchedulerRun.last_fired_at < slot))
        .values(last_fired_at=slot, fire_count=SchedulerRun.fire_count + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return cast(CursorResult[Any], result).rowcount == 1


def record_error(entry_id: str, error: str) -> None:
    """Keep the last error for the operations page; an empty one clears it."""
    db.session.execute(
        update(SchedulerRun)
        .where(SchedulerRun.entry == entry_id, SchedulerRun.last_error != error)
        .values(last_error=error[:2000])
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def fire(entry: Entry, now: datetime, tz: tzinfo) -> str:
    """Claim the entry's current slot and enqueue its job; never raises.

    Returns "fired", "taken" (another scheduler fired this slot) or "failed".
    """
    slot = entry.slot_at(now, tz)
    if slot is None:
        return "taken"
    if not claim_slot(entry.id, slot):
        log.info("%s for %s: already fired by another scheduler", entry.id, slot.isoformat())
        return "taken"
    log.info("%s fired for %s", entry.id, slot.isoformat())
    try:
        enqueue(entry.job)  # without Redis this runs the job here and now
    except RedisError as exc:
        # Not fatal: the next slot enqueues again, and the outbox keeps what must not be lost.
        db.session.rollback()
        log.warning("%s: Redis unavailable, not enqueued (%s)", entry.id, type(exc).__name__)
        record_error(entry.id, f"Redis unavailable: {type(exc).__name__}: {exc}")
        return "failed"
    except Exception as exc:
        db.session.rollback()
        log.exception("%s: job %s failed", entry.id, entry.job)
        record_error(entry.id, f"{type(exc).__name__}: {exc}")
        return "failed"
    record_error(entry.id, "")
    return "fired"


def fire_in_app(app: Flask, entry: Entry) -> str:
    """What APScheduler calls: one firing inside its own app context and session."""
    with app.app_context():
        try:
            return fire(entry, utcnow(), ZoneInfo(app.config["TIMEZONE"]))
        except Exception:  # the database is unreachable: log, and try at the next slot
            log.exception("%s: could not fire", entry.id)
            return "failed"
        finally:
            db.session.remove()


# --- the scheduler ------------------------------------------------------------


def first_run_time(entry: Entry, now: datetime, tz: tzinfo) -> datetime | None:
    """A slot missed within its grace (the scheduler was down) to run at once, else None."""
    slot = entry.slot_at(now, tz)
    if slot is not None and now - slot <= timedelta(seconds=entry.misfire_grace):
        return slot
    return None


def build_scheduler(app: Flask, schedule: Iterable[Entry] = SCHEDULE,
                    blocking: bool = False) -> BaseScheduler:
    """A scheduler (not started) with one job per entry.

    coalesce: after downtime, missed runs become one; max_instances=1: a slow
    firing is not joined by the next; misfire_grace_time: a firing later than that
    is dropped instead of run late. A slot missed while no scheduler ran is fired
    once at start if still within its grace; the claim stops it if it already ran.
    """
    tz = ZoneInfo(app.config["TIMEZONE"])
    scheduler: BaseScheduler = (
        BlockingScheduler(timezone=tz) if blocking else BackgroundScheduler(timezone=tz, daemon=True)
    )
    now = utcnow()
    for entry in schedule:
        options = {}
        catch_up = first_run_time(entry, now, tz)
        if catch_up is not None:
            options["next_run_time"] = catch_up
        scheduler.add_job(
            fire_in_app, trigger=entry.trigger(tz), args=(app, entry), id=entry.id, name=entry.id,
            coalesce=True, max_instances=1, misfire_grace_time=entry.misfire_grace,
            replace_existing=True, **options,
        )
    return scheduler


def describe(schedule: Iterable[Entry]) -> str:
    """The schedule in one line, for the start-up message."""
    return ", ".join(f"{e.id} every {e.every}s" if e.every is not None else f"{e.id} at cron {e.cron!r}"
                     for e in schedule)


def configure_logging() -> None:
    """Log the firings to stderr unless logging is already set up."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # APScheduler's own "Running job …" lines would repeat ours every few seconds.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


# --- commands -----------------------------------------------------------------

scheduler_cli = AppGroup("scheduler", help="The one scheduler process.")


@scheduler_cli.command("run")
def run_command() -> None:
    """Run the scheduler in the foreground (one per installation; a second one stays idle)."""
    # MINHU_SCHEDULE_SECONDS makes every interval entry fire that often: for tests
    # and demos only, and read only here, so the web process never sees it.
    seconds = env_int(os.environ, "MINHU_SCHEDULE_SECONDS", 0)
    schedule = with_interval(SCHEDULE, seconds) if seconds else SCHEDULE
    configure_logging()
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # Flask types the proxy as the app
    scheduler = build_scheduler(app, schedule, blocking=True)
    click.echo(f"Scheduler running: {describe(schedule)}. Ctrl-C to stop.")
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass


@click.command("serve")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@with_appcontext
def serve_command(host: str, port: int) -> None:
    """The embedded single process: web server plus the scheduler thread."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # Flask types the proxy as the app
    configure_logging()
    scheduler = build_scheduler(app, SCHEDULE, blocking=False)
    scheduler.start()
    click.echo("The scheduler runs in this process (outbox relay, SLA sweep, morning digest).")
    try:
        # Werkzeug's server directly: app.run() refuses to serve inside a `flask` command.
        # No reloader: it would start a second process, and with it a second scheduler.
        run_simple(host, port, app, use_reloader=False, use_debugger=False, threaded=True)
    finally:
        scheduler.shutdown(wait=False)


sla_cli = AppGroup("sla", help="Time limits.")


@sla_cli.command("sweep")
def sweep_command() -> None:
    """Run one SLA sweep now: warnings, breaches, auto-closing (safe beside the scheduler)."""
    from ticketing.services.sweep import app_calendar, sweep

    click.echo(str(sweep(utcnow(), app_calendar())))
