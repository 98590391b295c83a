"""The Redis connection, the queue names and the job names: the app's, declared once.

The web package and the workers both use them; they live here, in `ticketing`, so
that nothing in `ticketing` imports `workers` (docs/architecture.md). Without
`REDIS_URL` (the embedded default) there is no connection and jobs run inline.
"""
from __future__ import annotations

from flask import current_app
from redis import Redis
from rq import Queue

HIGH, DEFAULT, LOW = "high", "default", "low"
QUEUES = (HIGH, DEFAULT, LOW)  # a worker takes from them in this order

# The jobs the app asks for, by dotted name (services record them in the outbox; the
# workers import them by this name, so the web package never imports the workers).
# Scheduled jobs are named once, in workers/scheduler.py `SCHEDULE`.
ROUTE_TICKET = "workers.jobs.route_ticket"
DELIVER_NOTIFICATION = "workers.jobs.deliver_notification"
REPORT_UPSTREAM = "workers.jobs.report_upstream"
ATTACH_WECHAT_PHOTO = "workers.jobs.attach_wechat_photo"
RUN_OUTBOX = "workers.jobs.run_outbox"
DRAIN_OUTBOX = "workers.jobs.drain_outbox"
# A big area export (services/area_export_jobs.py): the outbox row's job hands the build
# to the low queue with the build's own time limit (an hour, not the outbox's minutes).
AREA_EXPORT = "workers.jobs.area_export"
BUILD_AREA_EXPORT = "workers.jobs.build_area_export"
JOBS = (ROUTE_TICKET, DELIVER_NOTIFICATION, REPORT_UPSTREAM, ATTACH_WECHAT_PHOTO, RUN_OUTBOX, DRAIN_OUTBOX,
        AREA_EXPORT, BUILD_AREA_EXPORT)
# Jobs with a batch form, which the relay runs for many outbox rows at once.
BATCHES = {
    ROUTE_TICKET: "workers.jobs.route_tickets",
    DELIVER_NOTIFICATION: "workers.jobs.deliver_notifications",
}


def redis_connection(url: str | None = None) -> Redis | None:
    """The Redis connection of this app, or None in the embedded mode."""
    url = url if url is not None else current_app.config.get("REDIS_URL")
    if not url:
        return None
    cache = current_app.extensions.setdefault("minhu.redis", {})
    if url not in cache:
        cache[url] = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    return cache[url]


def queue(name: str, connection: Redis) -> Queue:
    """An RQ queue by name."""
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=connection)
