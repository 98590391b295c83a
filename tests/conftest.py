"""Fixtures: the app on SQLite or PostgreSQL, a clean database per test, personas, clients.

Set TEST_DATABASE_URL (e.g. postgresql://postgres@localhost/test) to run on PostgreSQL;
otherwise each run uses a fresh SQLite file. Tests marked `postgres` need the real
server: they are skipped on SQLite locally, and fail under CI=true.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import text

from config import testing_config
from tests.factories import PASSWORD, World, build_world
from ticketing import create_app
from ticketing.extensions import db
from ticketing.models import User
from ticketing.services.photos import PhotoStore

IN_CI = os.environ.get("CI", "").lower() == "true"


def database_url(tmp: Path) -> str:
    """The database the suite runs on."""
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp / 'test.db'}"


def is_postgres(app: Flask) -> bool:
    return app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")


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
    with app.app_context():
        yield app
        db.session.remove()
        wipe(app)


def wipe(app: Flask) -> None:
    """Delete every row of every table (keeps the schema)."""
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if is_postgres(app):
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))
    for path in Path(app.config["UPLOAD_FOLDER"]).rglob("*"):
        if path.is_file():
            path.unlink()


@pytest.fixture()
def world(ctx: Flask) -> World:
    """The sub-district with every persona (see tests/factories.py)."""
    return build_world()


@pytest.fixture()
def store(ctx: Flask) -> PhotoStore:
    return PhotoStore(ctx.config["UPLOAD_FOLDER"])


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
