"""Lockouts: staff sign-in (per address, per address and username, a growing delay per
account) and the resident's lookup (per number, per address)."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from tests.conftest import csrf_token
from tests.factories import PASSWORD, PHONE, World, make_ticket
from ticketing.extensions import db
from ticketing.models import FailedAttempt
from ticketing.services import throttle
from ticketing.services.photos import PhotoStore
from ticketing.services.throttle import Limits, login_wait, record_login_failure

NOW = datetime(2026, 11, 18, 2, 0, 0, tzinfo=UTC)
HOME, OFFICE = "10.0.0.1", "10.0.0.2"


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


def sign_in(client: FlaskClient, username: str, password: str, address: str = HOME) -> TestResponse:
    token = csrf_token(client)
    return client.post("/auth/login", data={"username": username, "password": password, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": address})


def look_up(client: FlaskClient, number: str, last4: str, address: str = HOME) -> TestResponse:
    token = csrf_token(client, "/track")
    return client.post("/track", data={"number": number, "last4": last4, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": address})


def limits(ctx: Flask, **changes: int) -> Limits:
    return replace(Limits.configured(), **changes)


# --- sign-in over HTTP ------------------------------------------------------------------


def test_wrong_passwords_from_one_address_never_lock_the_owner_out_from_another(
    client: FlaskClient, world: World,
) -> None:
    for _ in range(10):
        sign_in(client, "gina", "nope", address=HOME)
    assert sign_in(client, "gina", PASSWORD, address=OFFICE).status_code == 302


def test_failures_across_many_usernames_from_one_address_are_refused(client: FlaskClient, world: World) -> None:
    for n in range(30):
        assert sign_in(client, f"nobody{n}", "nope").status_code == 401
    refused = sign_in(client, "gina", PASSWORD)
    assert refused.status_code == 429 and 800 <= int(refused.headers["Retry-After"]) <= 900
    with client.session_transaction() as session:
        assert "_user_id" not in session


def test_failures_from_one_address_do_not_hold_up_another(client: FlaskClient, world: World) -> None:
    for n in range(30):
        sign_in(client, f"nobody{n}", "nope", address=HOME)
    assert sign_in(client, "gina", PASSWORD, address=OFFICE).status_code == 302


@pytest.mark.usefixtures("english")
def test_a_refused_sign_in_says_how_long_to_wait(client: FlaskClient, world: World) -> None:
    for n in range(30):
        sign_in(client, f"nobody{n}", "nope")
    html = sign_in(client, "gina", PASSWORD).get_data(as_text=True)
    assert "Too many failed sign-ins. Please try again in 15 minutes." in html


def test_a_successful_sign_in_forgets_its_addresss_failures_on_the_account(client: FlaskClient, world: World) -> None:
    for _ in range(4):
        sign_in(client, "gina", "nope")
    assert sign_in(client, "gina", PASSWORD).status_code == 302
    keys = set(db.session.scalars(select(FailedAttempt.key)))
    assert keys == {"login:gina", throttle.address_key("login-addr", HOME)}


def test_no_client_address_is_stored_in_the_clear(client: FlaskClient, world: World) -> None:
    sign_in(client, "gina", "nope", address="192.0.2.77")
    assert not any("192.0.2.77" in key for key in db.session.scalars(select(FailedAttempt.key)))


# --- sign-in rules, with the time passed in ---------------------------------------------


def test_ten_failures_as_one_username_from_one_address_lock_that_pair_for_the_window(ctx: Flask) -> None:
    for n in range(10):  # an hour apart from the account's delay: one a minute
        record_login_failure("gina", HOME, NOW + timedelta(minutes=n))
    later = NOW + timedelta(minutes=10)
    no_delay = limits(ctx, login_delay_after=100)
    assert login_wait("gina", HOME, later, no_delay) == 5 * 60
    assert login_wait("Gina ", HOME, later, no_delay) == 5 * 60
    assert login_wait("greg", HOME, later, no_delay) == 0


def test_the_account_delay_grows_for_addresses_that_failed_on_it(ctx: Flask) -> None:
    for n in range(5):
        record_login_failure("gina", f"10.1.0.{n}", NOW)
    assert login_wait("gina", "10.1.0.0", NOW) == 1
    record_login_failure("gina", "10.1.0.9", NOW)
    assert login_wait("gina", "10.1.0.0", NOW) == 2
    record_login_failure("gina", "10.1.0.8", NOW)
    assert login_wait("gina", "10.1.0.0", NOW) == 4
    assert login_wait("gina", "10.1.0.0", NOW + seconds(4)) == 0


def test_the_account_delay_spares_an_address_without_failures_on_it(ctx: Flask) -> None:
    for n in range(40):
        record_login_failure("gina", f"10.1.0.{n}", NOW)
    assert login_wait("gina", "10.1.0.0", NOW) > 0
    assert login_wait("gina", OFFICE, NOW) == 0


def test_the_account_delay_ends_when_the_addresss_own_failures_leave_the_window(ctx: Flask) -> None:
    record_login_failure("gina", HOME, NOW)
    for n in range(40):  # the account is still being guessed at from elsewhere
        record_login_failure("gina", f"10.1.0.{n}", NOW + timedelta(minutes=10))
    assert login_wait("gina", HOME, NOW + timedelta(minutes=10)) == 5 * 60
    assert login_wait("gina", HOME, NOW + timedelta(minutes=15)) == 0


def test_the_account_delay_is_at_most_the_window(ctx: Flask) -> None:
    assert throttle.growing_delay(4, 5) == timedelta(0)
    assert throttle.growing_delay(5, 5) == seconds(1)
    assert throttle.growing_delay(8, 5) == seconds(8)
    assert throttle.growing_delay(10_000, 5) == throttle.WINDOW


def test_the_address_limit_counts_every_username(ctx: Flask) -> None:
    for n in range(30):
        record_login_failure(f"user{n}", HOME, NOW)
    assert login_wait("gina", HOME, NOW) == 15 * 60
    assert login_wait("gina", OFFICE, NOW) == 0


def test_an_ipv6_client_counts_by_its_64_network(ctx: Flask) -> None:
    for n in range(30):
        record_login_failure(f"user{n}", f"2001:db8:1:2::{n + 1:x}", NOW)
    assert login_wait("gina", "2001:db8:1:2:ffff::1", NOW) > 0
    assert login_wait("gina", "2001:db8:1:3::1", NOW) == 0


def test_the_limits_come_from_the_configuration(ctx: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ctx.config, "LOGIN_FAILURES_PER_ADDRESS", 2)
    record_login_failure("a", HOME, NOW)
    record_login_failure("b", HOME, NOW)
    assert login_wait("c", HOME, NOW) > 0


def test_prune_drops_lockout_rows_past_the_window_and_leaves_rate_limit_rows(ctx: Flask) -> None:
    record_login_failure("gina", HOME, NOW)
    db.session.add(FailedAttempt(key="rl:web_ip:x", at=NOW))
    db.session.commit()
    assert throttle.prune(NOW + throttle.WINDOW) == 3
    assert list(db.session.scalars(select(FailedAttempt.key))) == ["rl:web_ip:x"]


# --- the resident's lookup --------------------------------------------------------------


def test_failed_lookups_of_many_numbers_from_one_address_are_refused(
    client: FlaskClient, world: World, store: PhotoStore,
) -> None:
    ticket = make_ticket(world, store)
    for n in range(30):
        assert look_up(client, f"991231-{n:04d}", "0000").status_code == 404
    refused = look_up(client, ticket.number, PHONE[-4:])
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert look_up(client, ticket.number, PHONE[-4:], address=OFFICE).status_code == 303


def test_the_lock_on_a_number_holds_from_every_address(
    client: FlaskClient, world: World, store: PhotoStore,
) -> None:
    ticket = make_ticket(world, store)
    for guess in range(10):
        look_up(client, ticket.number, f"{guess:04d}", address=f"10.2.0.{guess}")
    assert look_up(client, ticket.number, PHONE[-4:], address=OFFICE).status_code == 429


@pytest.mark.usefixtures("english")
def test_a_refused_lookup_says_how_long_to_wait(client: FlaskClient, world: World) -> None:
    for guess in range(10):
        look_up(client, "991231-9999", f"{guess:04d}")
    refused = look_up(client, "991231-9999", "1234")
    assert "Too many tries. Please wait 15 minutes, or open your tracking link." in refused.get_data(as_text=True)
    assert 890 <= int(refused.headers["Retry-After"]) <= 900
