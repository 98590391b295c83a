"""The Redis connection and the queue names: the app's, declared once.

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


def redis_connection(url: str | None = None) -> Redis | None:
    """The Redis connection of this app, or None in the embedded mode."""
    url = url if url is not None else current_app.config.get("REDIS_URL")
    if not url:
        return None
    cache = current_app.extensions.setdefault("minhu.redis", {})
    if url not in cache:
        cache[url] = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    return cache[url]  # type: ignore[no-any-return]


def queue(name: str, connection: Redis) -> Queue:
    """An RQ queue by name."""
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=connection)
