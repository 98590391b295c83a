"""Checking a pooled database connection before a request uses it, only when it has
been idle long enough to have died.

`pool_pre_ping` sent a `SELECT 1` on every checkout: one more round trip for every
request, a tenth of a filing's time on the wire. A connection handed back a moment ago
is almost never dead; one that sat idle may have been closed by the server, a restart
or a firewall. So the time a connection is checked in is kept with it, and on checkout
only one idle for more than `DB_IDLE_PING_SECONDS` is pinged; a dead one raises
`DisconnectionError`, on which the pool throws it away and connects afresh (SQLAlchemy's
"pessimistic disconnect handling" with pool events). A connection that dies within the
idle time fails its request, as any connection dying mid-request does.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine

CHECKED_IN = "minhu.checked_in"
clock: Callable[[], float] = time.monotonic


def ping_when_idle(engine: Engine, seconds: float) -> None:
    """Ping the engine's connections on checkout after more than `seconds` idle."""

    @event.listens_for(engine, "checkin")
    def checked_in(dbapi_connection: Any, record: Any) -> None:
        # The entry's info lives as long as its DBAPI connection: a new one has no time,
        # and is not pinged, having just connected.
        record.info[CHECKED_IN] = clock()

    @event.listens_for(engine, "checkout")
    def checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get(CHECKED_IN)
        if since is not None and clock() - since > seconds:
            check_alive(engine, dbapi_connection)


def check_alive(engine: Engine, dbapi_connection: Any) -> None:
    """Ping; a lost connection raises `DisconnectionError` (the pool then reconnects),
    any other error is raised as it is."""
    dialect = engine.dialect
    try:
        dialect.do_ping(dbapi_connection)
    except dialect.loaded_dbapi.Error as err:
        if dialect.is_disconnect(err, dbapi_connection, None):
            raise exc.DisconnectionError(str(err)) from err
        raise
