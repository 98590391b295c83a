"""Fixtures: the app on SQLite or PostgreSQL, a clean database per test, personas, clients.

Set TEST_DATABASE_URL (e.g. postgresql://postgres@localhost/test) to run on PostgreSQL;
otherwise each run uses a fresh SQLite file. Tests marked `postgres` need the real
server: they are skipped on SQLite locally, and fail under CI=true.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from wechatpy.crypto import WeChatCrypto

from config import testing_config
from tests.factories import PASSWORD, World
from tests.snapshot_helpers import Snapshot, restore, take
from tests.wechat_helpers import AES_KEY, APP_ID, TOKEN
from ticketing import create_app
from ticketing.extensions import db
from ticketing.models import User
from ticketing.services import classify_store, refcache
from ticketing.services.photos import PhotoStore

IN_CI = os.environ.get("CI", "").lower() == "true"


def database_url(tmp: Path) -> str:
    """The database the suite runs on."""
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp / 'test.db'}"


def is_postgres(app: Flask) -> bool:
    return app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")


@event.listens_for(Engine, "connect")
def _commit_without_fsync(dbapi_connection: Any, connection_record: Any) -> None:
    """Commits of the suite's databases return without waiting for the disk.

    Only durability across a power cut is given up, which no test can observe: what a
    commit makes visible to other connections, locking and isolation are unchanged
    (the journal mode stays SQLite's default). The fsync of every commit (6 ms here,
    several per test) was a large part of both passes.
    """
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        dbapi_connection.execute("PRAGMA synchronous = OFF")
    elif type(dbapi_connection).__module__.startswith("psycopg"):
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO off")
        dbapi_connection.commit()


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """One app for the session, its schema built by the real migrations."""
    instance = tmp_path_factory.mktemp("instance")
    app = create_app(testing_config(database_url(instance), instance))
    with app.app_context():
        if is_postgres(app):
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _postgres_only(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("postgres") is None:
        return
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url.startswith("postgres"):
        if IN_CI:
            pytest.fail("this test needs PostgreSQL: set TEST_DATABASE_URL (CI=true forbids skipping)")
        pytest.skip("needs PostgreSQL (set TEST_DATABASE_URL)")


@pytest.fixture()
def ctx(app: Flask) -> Iterator[Flask]:
    """An app context with empty tables, emptied again afterwards."""
    # What this process remembers of the last test's rows goes with them: ids start again
    # with every test's rows, and the world's rows go in without the ORM events that
    # would have told the classifier to look at the catalogue again.
    refcache.clear()
    classify_store.invalidate()
    with app.app_context():
        yield app
        db.session.remove()
        wipe(app)


# Tables whose rows PostgreSQL refuses to delete; the wipe truncates them instead.
APPEND_ONLY = frozenset({"audit_entries"})


def wipe(app: Flask) -> None:
    """Delete every row of every table (keeps the schema)."""
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if is_postgres(app):
            # Only the tables holding rows are emptied and only the sequences used are
            # restarted, in two round trips: a test touches a dozen of the tables.
            holding = {name for (name,) in conn.exec_driver_sql(" UNION ALL ".join(
                f"SELECT '{name}' WHERE EXISTS (SELECT FROM {name})" for name in tables))}
            # The audit log refuses DELETE (a trigger, migration 0017); TRUNCATE fires no row trigger.
            emptying = [f"TRUNCATE {name}" if name in APPEND_ONLY else f"DELETE FROM {name}"
                        for name in tables if name in holding]
            # setval, unlike ALTER SEQUENCE … RESTART, writes no new file for the sequence.
            restart = ("SELECT setval(quote_ident(sequencename)::regclass, start_value, false) "
                       "FROM pg_sequences WHERE schemaname = current_schema() AND last_value IS NOT NULL")
            conn.exec_driver_sql("; ".join([*emptying, restart]))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))
    for path in Path(app.config["UPLOAD_FOLDER"]).rglob("*"):
        if path.is_file():
            path.unlink()


@pytest.fixture(scope="session")
def world_rows(app: Flask) -> Snapshot:
    """The rows of `build_world()`, built once for the session (tests/snapshot_helpers.py)."""
    with app.app_context():
        wipe(app)
        rows = take(is_postgres(app))
        db.session.remove()
        wipe(app)
    return rows


@pytest.fixture()
def world(ctx: Flask, world_rows: Snapshot) -> World:
    """The sub-district with every persona (see tests/factories.py), as `build_world()`
    makes it: its rows are copied in, which is quicker than building it again."""
    return restore(world_rows)


@pytest.fixture()
def store(ctx: Flask) -> PhotoStore:
    return PhotoStore(ctx.config["UPLOAD_FOLDER"])


# --- what a request asks of the database ---------------------------------------------


@pytest.fixture()
def statements(ctx: Flask) -> Iterator[list[str]]:
    """Every SQL statement sent from now on, whitespace collapsed (clear it to start counting)."""
    from sqlalchemy import event

    recorded: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        recorded.append(" ".join(statement.split()))

    event.listen(db.engine, "before_cursor_execute", record)
    yield recorded
    event.remove(db.engine, "before_cursor_execute", record)


@pytest.fixture()
def lazy_loads(ctx: Flask) -> Iterator[list[str]]:
    """Every lazy load that went to the database from now on, as "<class>.<attribute>"."""
    from sqlalchemy import event
    from sqlalchemy.orm import ORMExecuteState, Session

    recorded: list[str] = []

    def record(state: ORMExecuteState) -> None:
        if state.is_select and state.lazy_loaded_from is not None:
            path = state.loader_strategy_path
            recorded.append(f"{state.lazy_loaded_from.class_.__name__}.{path[-1].key if path else '?'}")

    event.listen(Session, "do_orm_execute", record)
    yield recorded
    event.remove(Session, "do_orm_execute", record)


class IsolatedClient(FlaskClient):
    """A test client whose every request runs in its own app context.

    Otherwise requests would share the test's context, and with it `g` (Flask-Babel's
    locale, Flask-Login's user) and the database session, as no real request does.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture()
def client(ctx: Flask) -> FlaskClient:
    ctx.test_client_class = IsolatedClient
    return ctx.test_client()


@pytest.fixture()
def english(client: FlaskClient) -> None:
    """Switch the client's pages to English (Chinese is the default)."""
    client.get("/lang/en")


CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_from(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = CSRF_FIELD.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def csrf_token(client: FlaskClient, url: str = "/auth/login") -> str:
    """Fetch a page and return its form's CSRF token (bound to the client's session)."""
    response = client.get(url, follow_redirects=True)
    return csrf_from(response.get_data(as_text=True))


def login(client: FlaskClient, user: User | str) -> None:
    """Log a persona in through the real login form."""
    username = user if isinstance(user, str) else user.username
    token = csrf_token(client, "/auth/login")
    response = client.post("/auth/login", data={
        "username": username, "password": PASSWORD, "csrf_token": token,
    })
    assert response.status_code == 302, response.get_data(as_text=True)[:500]


# --- Redis ------------------------------------------------------------------
# Tests marked `redis` use a real Redis: TEST_REDIS_URL, else database 13 of the
# local server, else a private redis-server started for the session. They are
# skipped only locally, when there is no Redis to use; under CI=true they must run.

DEFAULT_TEST_REDIS = "redis://localhost:6379/13"


def redis_missing(reason: str) -> None:
    """Skip locally; fail under CI, where every Redis test must run."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true forbids skipping Redis tests)")
    pytest.skip(reason)


def redis_answers(url: str) -> bool:
    """Whether a Redis server answers PING at `url`."""
    from redis import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except RedisError:
        return False
    finally:
        client.close()


@pytest.fixture(autouse=True)
def _redis_only(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("redis") is None:
        return
    from tests.redis_server import redis_server_binary

    if redis_server_binary() is None and not redis_answers(os.environ.get("TEST_REDIS_URL", DEFAULT_TEST_REDIS)):
        redis_missing("needs Redis: install redis-server or set TEST_REDIS_URL")


@pytest.fixture(autouse=True, scope="session")
def _drain_rounds_without_pause() -> Iterator[None]:
    """A drain's rounds follow each other at once: the pause between them
    (workers/relay.py, ROUND_GAP) lets rows gather under load, and tests have none;
    it made a pass wait 4 s, half a second per drain."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("workers.relay.ROUND_GAP", 0.0)
        yield


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of the Redis database the queue tests may empty at will."""
    url = os.environ.get("TEST_REDIS_URL", DEFAULT_TEST_REDIS)
    if redis_answers(url):
        yield url
        return
    from tests.redis_server import RedisServer, redis_server_binary

    if redis_server_binary() is None:
        redis_missing(f"no Redis at {url} and redis-server is not installed")
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture()
def redis_conn(redis_url: str) -> Iterator[Any]:
    """A connection to the test Redis database, emptied before and after the test."""
    from redis import Redis

    connection = Redis.from_url(redis_url)
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()


def app_on_test_database(app: Flask, instance: Path, **changes: Any) -> Flask:
    """Another app on the session's database (schema already built), with settings changed."""
    other = create_app(testing_config(app.config["SQLALCHEMY_DATABASE_URI"], instance, **changes))
    other.test_client_class = IsolatedClient
    return other


def dispose(other: Flask) -> None:
    """Close what another app holds: its database pool and Redis connections."""
    with other.app_context():
        db.engine.dispose()
    for connection in other.extensions.get("minhu.redis", {}).values():
        connection.close()


@pytest.fixture()
def redis_app(app: Flask, ctx: Flask, redis_conn: Any, redis_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The app with REDIS_URL set: jobs go to RQ instead of running inline."""
    other = app_on_test_database(app, tmp_path / "instance", redis_url=redis_url)
    yield other
    dispose(other)


# --- the WeChat account (tests/wechat_helpers.py talks to it) ---------------------


@pytest.fixture()
def account(ctx: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ctx.config, "WECHAT_TOKEN", TOKEN)


@pytest.fixture()
def safe_mode(ctx: Flask, monkeypatch: pytest.MonkeyPatch, account: None) -> WeChatCrypto:
    monkeypatch.setitem(ctx.config, "WECHAT_ENCODING_AES_KEY", AES_KEY)
    monkeypatch.setitem(ctx.config, "WECHAT_APP_ID", APP_ID)
    return WeChatCrypto(TOKEN, AES_KEY, APP_ID)
