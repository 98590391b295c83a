"""A pooled PostgreSQL connection is pinged before use only after it sat idle
(ticketing/dbpool.py): a dead one is then replaced without the request noticing, and
one used a moment ago costs no round trip."""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import exc, text
from sqlalchemy.engine import Engine

from tests.conftest import app_on_test_database, dispose
from ticketing import dbpool
from ticketing.extensions import db

pytestmark = pytest.mark.postgres
IDLE = 5


@pytest.fixture()
def pool_app(app: Flask, ctx: Flask, tmp_path: Path) -> Iterator[Flask]:
    """An app of its own, so that its pool starts empty."""
    other = app_on_test_database(app, tmp_path / "instance", db_idle_ping_seconds=IDLE)
    yield other
    dispose(other)


@pytest.fixture()
def engine(pool_app: Flask) -> Engine:
    """The engine of that app."""
    with pool_app.app_context():
        return db.engine


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pool's clock, moved by hand."""
    now = [1000.0]
    monkeypatch.setattr(dbpool, "clock", lambda: now[0])
    return now


@pytest.fixture()
def pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every ping sent on the pool's connections."""
    sent: list[object] = []
    dialect = engine.dialect
    real = dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        sent.append(dbapi_connection)
        return real(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", counted)
    return sent


def backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def terminate(pid: int) -> None:
    """End a backend from another connection (the suite's own pool) and wait until it is gone."""
    with db.engine.begin() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    for _ in range(100):
        with db.engine.connect() as conn:
            if not conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                                {"pid": pid}).scalar_one():
                return
        time.sleep(0.02)
    raise AssertionError(f"backend {pid} is still there")


def test_a_connection_killed_while_idle_is_replaced_on_the_next_checkout(
    engine: Engine, clock: list[float], pings: list[object],
) -> None:
    first = backend_pid(engine)
    terminate(first)
    clock[0] += IDLE + 1
    # No error: the ping finds it dead, and the pool connects afresh.
    second = backend_pid(engine)
    assert second != first
    assert len(pings) == 1
    assert backend_pid(engine) == second  # the new one was just checked in: not pinged
    assert len(pings) == 1


def test_a_connection_used_a_moment_ago_is_not_pinged(
    engine: Engine, clock: list[float], pings: list[object],
) -> None:
    pid = backend_pid(engine)  # a fresh connection: not pinged either
    clock[0] += IDLE
    assert backend_pid(engine) == pid
    assert pings == []


def test_a_connection_killed_within_the_idle_time_fails_its_request_as_before(
    engine: Engine, clock: list[float], pings: list[object],
) -> None:
    """What the idle time gives up: the pool's next connection is a fresh one again."""
    first = backend_pid(engine)
    terminate(first)
    with pytest.raises(exc.OperationalError) as raised:
        backend_pid(engine)
    assert raised.value.connection_invalidated
    assert backend_pid(engine) != first
    assert pings == []
