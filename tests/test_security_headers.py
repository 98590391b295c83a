"""Headers and cookies: no framing, no sniffing, no tokens in Referer, nothing stored of
what staff see, and a remember-me cookie that stays on this site for 30 days."""
from __future__ import annotations

import re
from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config import Config
from tests.conftest import csrf_from, csrf_token, login
from tests.factories import PASSWORD, World, advance, make_ticket
from ticketing.models import utcnow
from ticketing.services import tracking
from ticketing.services.photos import PhotoStore

HTTPS = "https://localhost"


def link(ticket: object, app: Flask) -> str:
    return "/t/" + tracking.tracking_token(ticket, app.config["SECRET_KEY"])  # type: ignore[arg-type]


# --- every answer -------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/", "/auth/login", "/no-such-page", "/open311/v2/services.json"])
def test_no_answer_may_be_framed_by_another_site(client: FlaskClient, url: str) -> None:
    response = client.get(url)
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("url", ["/", "/no-such-page", "/open311/v2/services.json", "/static/css/minhu.css"])
def test_no_answer_may_be_sniffed_for_another_type(client: FlaskClient, url: str) -> None:
    assert client.get(url).headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("url", ["/", "/auth/login", "/track"])
def test_pages_tell_the_browser_to_keep_their_address_on_this_site(client: FlaskClient, url: str) -> None:
    assert client.get(url).headers["Referrer-Policy"] == "same-origin"


def test_the_tracking_page_keeps_its_token_off_other_sites_and_out_of_caches(
    client: FlaskClient, world: World, store: PhotoStore, ctx: Flask,
) -> None:
    response = client.get(link(make_ticket(world, store), ctx))
    assert response.headers["Referrer-Policy"] in ("same-origin", "no-referrer")
    assert "no-store" in response.headers["Cache-Control"]


def referer_under(policy: str, page_url: str) -> dict[str, str]:
    """The Referer a browser sends with a form it posts from `page_url` to the same site."""
    sent = {"no-referrer": None, "same-origin": page_url, "strict-origin-when-cross-origin": page_url}[policy]
    return {} if sent is None else {"Referer": sent}


def test_a_resident_can_rate_from_the_tracking_page_over_https(
    client: FlaskClient, world: World, store: PhotoStore, ctx: Flask,
) -> None:
    # Over HTTPS Flask-WTF refuses a form posted without a same-site Referer.
    ticket = advance(make_ticket(world, store), "resolved", world)
    page = client.get(link(ticket, ctx), base_url=HTTPS)
    headers = referer_under(page.headers["Referrer-Policy"], HTTPS + link(ticket, ctx))
    response = client.post(f"{link(ticket, ctx)}/rate", base_url=HTTPS, headers=headers, data={
        "csrf_token": csrf_from(page.get_data(as_text=True)), "rating": "satisfied"})
    assert response.status_code == 303


# --- what staff see -----------------------------------------------------------------------


@pytest.mark.parametrize("who,url", [
    ("dora", "/console/"), ("gina", "/workbench/"), ("sam", "/ledger/"), ("adam", "/admin/people"),
    ("dora", "/no-such-page"),
])
def test_no_page_shown_to_staff_is_stored(client: FlaskClient, world: World, who: str, url: str) -> None:
    login(client, who)
    response = client.get(url)
    assert response.headers["Cache-Control"] == "no-store", (url, response.status_code)


def test_a_staff_ticket_page_is_not_stored(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    login(client, world.gina)
    response = client.get(f"/tickets/{ticket.number}")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"


def test_the_redirect_after_sign_in_is_not_stored(client: FlaskClient, world: World) -> None:
    token = csrf_token(client)
    response = client.post("/auth/login", data={"username": "dora", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302 and response.headers["Cache-Control"] == "no-store"


def test_static_files_keep_their_caching_for_staff(client: FlaskClient, world: World) -> None:
    login(client, world.dora)
    assert "no-store" not in client.get("/static/css/minhu.css").headers.get("Cache-Control", "")


def test_public_pages_are_not_marked_no_store(client: FlaskClient) -> None:
    assert "Cache-Control" not in client.get("/").headers


# --- the remember-me cookie ---------------------------------------------------------------


def remember_cookie(client: FlaskClient) -> str:
    token = csrf_token(client)
    response = client.post("/auth/login", data={
        "username": "dora", "password": PASSWORD, "remember": "y", "csrf_token": token})
    assert response.status_code == 302
    return next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("remember_token="))


def test_the_remember_me_cookie_lasts_30_days(client: FlaskClient, world: World) -> None:
    found = re.search(r"Expires=([^;]+)", remember_cookie(client))
    assert found is not None
    assert abs(parsedate_to_datetime(found.group(1)) - (utcnow() + timedelta(days=30))) < timedelta(minutes=5)


def test_the_remember_me_cookie_is_not_sent_with_requests_from_other_sites(client: FlaskClient, world: World) -> None:
    cookie = remember_cookie(client)
    assert "SameSite=Lax" in cookie and "HttpOnly" in cookie


def test_production_cookies_are_https_only_and_same_site(tmp_path: Path) -> None:
    config = Config.from_env({"MINHU_ENV": "production", "SECRET_KEY": "x" * 32, "MINHU_INSTANCE": str(tmp_path)})
    mapping = config.flask_mapping()
    assert mapping["SESSION_COOKIE_SECURE"] is True and mapping["REMEMBER_COOKIE_SECURE"] is True
    assert mapping["SESSION_COOKIE_SAMESITE"] == mapping["REMEMBER_COOKIE_SAMESITE"] == "Lax"


def test_how_long_remember_me_lasts_is_configurable(tmp_path: Path) -> None:
    config = Config.from_env({"MINHU_INSTANCE": str(tmp_path), "REMEMBER_DAYS": "7"})
    assert config.flask_mapping()["REMEMBER_COOKIE_DURATION"] == timedelta(days=7)
