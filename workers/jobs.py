"""Job functions: importable, ids in, rows re-read, idempotent.

Each is declared with its queue, timeout, retries and result TTL (workers/queues.py).
"""
from __future__ import annotations

import logging
from typing import Any

from werkzeug.utils import import_string

from ticketing.extensions import db
from ticketing.models import OutboxMessage, utcnow
from ticketing.services import notify, outbox
from workers.queues import DEFAULT, HIGH, LOW, job, redis_connection

log = logging.getLogger(__name__)


@job(queue=DEFAULT, timeout=300, retries=3, backoff=(10, 60, 300))
def run_outbox(message_id: int) -> str:
    """Run the job an outbox row names, then mark the row done."""
    row = db.session.get(OutboxMessage, message_id)
    if row is None or row.done_at is not None:
        return "already done"
    target, args = row.job, list(row.args)
    try:
        outcome = import_string(target)(*args)
    except Exception as exc:
        db.session.rollback()
        outbox.record_error(message_id, f"{type(exc).__name__}: {exc}", utcnow())
        if redis_connection() is None:
            # Embedded: never fail the request that relayed it; the scheduled relay retries.
            log.warning("outbox %s (%s) failed inline: %s", message_id, target, exc)
            return "failed, will retry"
        raise
    outbox.mark_done(message_id, utcnow())
    db.session.commit()
    if redis_connection() is not None:
        from workers.relay import kick_if_emitted

        kick_if_emitted()  # embedded, the relay that ran this row runs those too
    return str(outcome)


@job(queue=DEFAULT, timeout=60, retries=0)
def deliver_notification(*notification_ids: int) -> str:
    """Send resident messages: one, or a routing batch's (raises RetryLater to be retried
    by the outbox; those already sent are not sent again)."""
    if len(notification_ids) == 1:
        return notify.deliver(notification_ids[0], utcnow())
    retry = notify.deliver_many(list(notification_ids), utcnow())
    if retry:
        raise notify.RetryLater(f"{len(retry)} of {len(notification_ids)} messages to retry")
    return f"{len(notification_ids)} messages"


@job(queue=HIGH, timeout=120, retries=0)
def relay_outbox() -> str:
    """Scheduled: free messages a dead worker left sending, then work through what is
    due: drained in batches with Redis, run here when embedded."""
    from workers.relay import drain, relay, run_emitted_inline

    freed = notify.release_stuck(utcnow())
    if redis_connection() is not None:
        drained = drain()
        return f"batched {drained.batched}, handed over {drained.handed_over}, freed {freed}"
    result = relay()
    run_emitted_inline()
    return f"handed over {len(result.handed_over)}, ran {len(result.ran_inline)}, freed {freed}"


@job(queue=HIGH, timeout=120, retries=0)
def drain_outbox() -> str:
    """Kicked after requests that wrote outbox rows: work through them in batches."""
    from workers.relay import drain

    result = drain()
    return (f"batched {result.batched}, handed over {result.handed_over}"
            f"{', failed batches ' + str(result.failed_batches) if result.failed_batches else ''}"
            f"{', more to come' if result.more else ''}")


def route_tickets(rows: list[outbox.Claimed]) -> list[int]:
    """Batch form of `route_ticket`: the claimed rows' tickets routed in one transaction."""
    from zoneinfo import ZoneInfo

    from flask import current_app

    from ticketing.services.routing import route_many
    from ticketing.services.workdays import load_calendar

    ticket_ids = [int(row.args[0]) for row in rows]
    route_many(ticket_ids, utcnow(), load_calendar(ZoneInfo(current_app.config["TIMEZONE"])))
    return [row.id for row in rows]


def deliver_notifications(rows: list[outbox.Claimed]) -> list[int]:
    """Batch form of `deliver_notification`; a row with a message to be retried stays."""
    retry = notify.deliver_many([int(i) for row in rows for i in row.args], utcnow())
    return [row.id for row in rows if not retry.intersection(int(i) for i in row.args)]


@job(queue=LOW, timeout=60, retries=2, backoff=(10, 60))
def area_export(request: dict[str, Any]) -> str:
    """A big area export the page recorded (services/area_export_jobs.py): hand its build
    to the low queue with the build's own time limit; embedded, build it here and now."""
    from ticketing.queues import BUILD_AREA_EXPORT
    from workers.queues import enqueue

    outcome = enqueue(BUILD_AREA_EXPORT, request, job_id=f"area-export-{request['token']}")
    return str(outcome) if redis_connection() is None else "build queued"


@job(queue=LOW, timeout=3600, retries=0)
def build_area_export(request: dict[str, Any]) -> str:
    """Make a big area export's file and tell the requester; a failure leaves no file
    and tells them too (no retry: they may ask again)."""
    from zoneinfo import ZoneInfo

    from flask import current_app

    from ticketing.services import area_export_jobs

    asked = area_export_jobs.ExportRequest.from_json(request)
    try:
        outcome = area_export_jobs.build(asked, utcnow(), ZoneInfo(current_app.config["TIMEZONE"]))
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        log.exception("area export %s failed", asked.token)
        area_export_jobs.fail(asked, f"{type(exc).__name__}: {exc}", utcnow())
        db.session.commit()
        return f"failed: {type(exc).__name__}"
    return outcome


@job(queue=LOW, timeout=600, retries=1)
def noop(value: str = "") -> str:
    """Does nothing; for checking that workers run jobs."""
    return value



@job(queue=HIGH, timeout=300, retries=0)
def sla_sweep() -> str:
    """Scheduled every minute: 75 % warnings, breaches, auto-closing (services/sweep.py).

    No retries: the next minute's sweep picks up whatever this one did not finish.
    """
    from ticketing.services.sweep import app_calendar, sweep

    return str(sweep(utcnow(), app_calendar()))


@job(queue=LOW, timeout=600, retries=2, backoff=(60, 300))
def morning_digest() -> str:
    """Scheduled at 08:00: each handler's list of what is due today (once per user and day)."""
    from ticketing.services.digest import digest
    from ticketing.services.sweep import app_calendar

    return f"digests written {digest(utcnow(), app_calendar())}"


@job(queue=LOW, timeout=1800, retries=2, backoff=(300, 900))
def morning_briefs() -> str:
    """Scheduled at 08:00: each supervisor's brief of their scope, on working days only
    (once per user and day; a retry writes only those still missing)."""
    from ticketing.services.brief_send import morning
    from ticketing.services.sweep import app_calendar

    written = morning(utcnow(), app_calendar())
    return "not a working day: no briefs" if written is None else f"briefs written {written}"


@job(queue=LOW, timeout=1800, retries=2, backoff=(300, 900))
def compile_ledgers(day: str | None = None) -> str:
    """Scheduled at 00:10: every grid's ledger of the day before (local), or of `day`
    (YYYY-MM-DD). Compiling again gives the same rows, so a retry does no harm."""
    from datetime import date, timedelta
    from zoneinfo import ZoneInfo

    from flask import current_app

    from ticketing.services.ledger import compile_day

    tz = ZoneInfo(current_app.config["TIMEZONE"])
    which = date.fromisoformat(day) if day else utcnow().astimezone(tz).date() - timedelta(days=1)
    return f"ledgers of {which}: {compile_day(which, tz, utcnow())} grids"


@job(queue=LOW, timeout=600, retries=0)
def compile_today_ledgers() -> str:
    """Every 10 minutes: today's ledgers so far, which the dashboard shows "as of" their
    compiling. No retry: the next run comes ten minutes later anyway."""
    from zoneinfo import ZoneInfo

    from flask import current_app

    from ticketing.services.ledger import compile_day

    tz = ZoneInfo(current_app.config["TIMEZONE"])
    now = utcnow()
    return f"ledgers of today so far: {compile_day(now.astimezone(tz).date(), tz, now)} grids"


@job(queue=LOW, timeout=1800, retries=2, backoff=(300, 900))
def find_hotspots(day: str | None = None) -> str:
    """Scheduled at 00:40: the recurring problems (高频诉求) of the 30 and 90 days ending
    yesterday (local), or `day` (YYYY-MM-DD), stored per window (services/hotspots.py).
    A retry replaces the run of the same day and window, so it does no harm."""
    from datetime import date, timedelta

    from flask import current_app

    from ticketing.services import hotspots

    now = utcnow()
    which = date.fromisoformat(day) if day else now.astimezone(hotspots.app_tz()).date() - timedelta(days=1)
    found = []
    for days in hotspots.WINDOWS:
        run = hotspots.run(which, days, now, current_app.config["HOTSPOT_MIN_COUNT"])
        db.session.commit()
        found.append(f"{days} days: {run.clusters}")
    return f"recurring problems to {which}: " + ", ".join(found)


@job(queue=LOW, timeout=300, retries=0)
def link_governance_tickets() -> str:
    """Every 10 minutes: link the tickets filed since a governance task opened, at its place
    and in its category, to each open task (services/governance.py). Idempotent; no retry:
    the next run links whatever this one did not."""
    from ticketing.services.governance import link_new

    linked = link_new(utcnow())
    db.session.commit()
    return f"governance task links added {linked}"


@job(queue=LOW, timeout=300, retries=1)
def remind_holds() -> str:
    """Scheduled hourly from 08:05 to 20:05: remind the handlers of the holds whose expected
    date has come, once per hold (services/holds.py); a retry reminds nobody twice."""
    from zoneinfo import ZoneInfo

    from flask import current_app

    from ticketing.services.holds import remind_due

    reminded = remind_due(utcnow(), ZoneInfo(current_app.config["TIMEZONE"]))
    db.session.commit()
    return f"hold reminders {reminded}"


@job(queue=LOW, timeout=60, retries=1)
def check_calendar() -> str:
    """Scheduled daily: warn in the log while a year that has begun or begins within 90 days
    has no confirmed make-up working days (调休); the years are also on /readyz and the pages."""
    from zoneinfo import ZoneInfo

    from flask import current_app

    from ticketing.services.calendar_admin import warn_unconfirmed

    years = warn_unconfirmed(utcnow(), ZoneInfo(current_app.config["TIMEZONE"]))
    return f"calendar years not confirmed: {', '.join(map(str, years)) or 'none'}"


@job(queue=LOW, timeout=600, retries=1)
def housekeeping() -> str:
    """Scheduled nightly: forget WeChat location pins too old to place a ticket (they
    are often a home), rate-limit and lockout counts whose windows are over and WeChat
    nonces past their window; drop the number sequences of days long past; delete the
    big area exports' files older than a day (services/area_export_jobs.py)."""
    from zoneinfo import ZoneInfo

    from flask import current_app

    from ticketing.channels.wechat_geo import LOCATION_FRESH_FOR
    from ticketing.services import (
        area_export_jobs,
        followers,
        nonces,
        numbering,
        ratelimit,
        throttle,
    )

    now = utcnow()
    pins = followers.forget_old_pins(now - LOCATION_FRESH_FOR)
    db.session.commit()
    counts = ratelimit.prune(now) + throttle.prune(now)
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    sequences = numbering.drop_days_before(now.astimezone(tz).date() - numbering.KEEP_DAYS)
    used = nonces.prune(now)
    exports = area_export_jobs.prune(now - area_export_jobs.KEEP)
    return (f"location pins forgotten {pins}, rate-limit rows pruned {counts}, "
            f"number sequences of past days dropped {sequences}, WeChat nonces forgotten {used}, "
            f"area export files deleted {exports}")


@job(queue=LOW, timeout=3600, retries=1)
def retention_purge() -> str:
    """Scheduled nightly: erase the requesters' personal data of tickets closed more than
    RETENTION_DAYS ago (services/retention.py); idempotent, in batches."""
    from flask import current_app

    from ticketing.services import retention
    from ticketing.services.photos import PhotoStore

    result = retention.purge(utcnow(), current_app.config["RETENTION_DAYS"],
                             PhotoStore(current_app.config["UPLOAD_FOLDER"]))
    return (f"personal data erased of {result.tickets} tickets, {result.photos} photos deleted, "
            f"{result.followers} WeChat followers forgotten")


@job(queue=HIGH, timeout=60, retries=2, backoff=(5, 30))
def route_ticket(ticket_id: int) -> str:
    """Write the resident's "received" message if not yet written, and route a submitted
    ticket (services/routing.py); the routing is a no-op once someone has it.

    A dispatcher who acted first wins: the optimistic lock turns our write into a
    `Conflict`, and the job does nothing.
    """
    from zoneinfo import ZoneInfo

    from flask import current_app
    from sqlalchemy.orm.exc import StaleDataError

    from ticketing.services.errors import Conflict
    from ticketing.services.routing import load_to_route, route
    from ticketing.services.workdays import load_calendar

    tickets, unwritten = load_to_route([ticket_id])
    if not tickets:
        return "no such ticket"
    ticket = tickets[0]
    if notify.confirm_receipt(unwritten):  # intake leaves the resident's message to us
        db.session.commit()
    try:
        decision = route(ticket, utcnow(), load_calendar(ZoneInfo(current_app.config["TIMEZONE"])))
        db.session.commit()
    except (Conflict, StaleDataError):
        db.session.rollback()
        return "someone else acted first"
    if decision.routed:
        return f"routed to {decision.handler} ({decision.rule})"
    return f"not routed: {decision.reason}"


@job(queue=DEFAULT, timeout=60, retries=0)
def report_upstream(ticket_id: int, event_id: int) -> str:
    """Report a ticket's new status to the county centre it came from (channels/upstream.py).

    Raises when the centre does not take it, so the outbox row is retried with backoff.
    """
    from ticketing.channels.upstream import report

    return report(ticket_id, event_id)


@job(queue=DEFAULT, timeout=60, retries=0)
def attach_wechat_photo(ticket_id: int, msg_id: str, media_id: str, pic_url: str) -> str:
    """Download a photo a resident sent on WeChat and add it to their ticket, once per MsgId
    (channels/wechat_media.py).

    A network failure raises, so the outbox row is retried; a file too large or not an
    image is refused for good and noted on the ticket. The photo is written to
    UPLOAD_FOLDER, which the workers must share with the web processes.
    """
    from flask import current_app

    from ticketing.channels.wechat_media import attach
    from ticketing.services.photos import PhotoStore

    config = current_app.config
    return attach(ticket_id, msg_id, media_id, pic_url, utcnow(), PhotoStore(config["UPLOAD_FOLDER"]), config)
