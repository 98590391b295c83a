"""Rate limits: fixed windows in Redis or the database, and the resident web form's 429."""
from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from tests.conftest import app_on_test_database, csrf_from, dispose
from tests.factories import PHONE, World
from tests.races import at_once
from tests.redis_server import free_port
from tests.resident_helpers import form_data, post_report, ticket_count
from ticketing.extensions import db
from ticketing.models import FailedAttempt, Ticket
from ticketing.resident.views import client_key
from ticketing.services import ratelimit
from ticketing.services.ratelimit import RateLimited, check, hit

# 10 s into a one-minute (and one-hour) window: 50 s of a minute are left.
NOW = datetime(2026, 11, 18, 2, 0, 10, tzinfo=UTC)
OTHER_PHONE = "13900001111"


def rows() -> list[FailedAttempt]:
    db.session.expire_all()
    return list(db.session.scalars(select(FailedAttempt).order_by(FailedAttempt.id)))


@pytest.fixture(autouse=True)
def no_chance_sweeps(monkeypatch: pytest.MonkeyPatch) -> None:
    """No sweep of expired rows on a random hit: the tests count rows (one in a hundred
    hits would otherwise sweep, and a test would fail once in a while)."""
    monkeypatch.setattr(ratelimit, "PRUNE_CHANCE", 0.0)


@pytest.fixture()
def limits(ctx: Flask, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Set limits of the session's app for one test: `limits(web_ip=(2, 3600))`."""

    def set_limits(**values: tuple[int, int]) -> None:
        for bucket, value in values.items():
            monkeypatch.setitem(ctx.config["RATE_LIMITS"], bucket, value)

    return set_limits


# --- counting ---------------------------------------------------------------


def test_a_key_is_allowed_up_to_the_limit_then_refused_until_the_window_ends(ctx: Flask) -> None:
    decisions = [hit("web_ip", "10.0.0.1", 3, 60, NOW) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[-1].retry_after == 50
    assert hit("web_ip", "10.0.0.1", 3, 60, NOW + timedelta(seconds=49)).allowed is False
    assert hit("web_ip", "10.0.0.1", 3, 60, NOW + timedelta(seconds=50)).allowed is True


def test_keys_and_buckets_are_counted_apart(ctx: Flask) -> None:
    assert hit("web_ip", "10.0.0.1", 1, 60, NOW).allowed
    assert hit("web_ip", "10.0.0.2", 1, 60, NOW).allowed
    assert hit("web_phone", "10.0.0.1", 1, 60, NOW).allowed
    assert not hit("web_ip", "10.0.0.1", 1, 60, NOW).allowed


def test_a_limit_of_zero_is_no_limit(ctx: Flask) -> None:
    assert all(hit("web_ip", "10.0.0.1", 0, 60, NOW).allowed for _ in range(5))
    assert rows() == []


def test_a_refused_attempt_stores_nothing_more(ctx: Flask) -> None:
    hit("web_phone", PHONE, 1, 60, NOW)
    hit("web_phone", PHONE, 1, 60, NOW)
    assert len(rows()) == 1


def test_phone_numbers_are_not_stored_as_keys(ctx: Flask) -> None:
    hit("web_phone", PHONE, 5, 3600, NOW)
    (row,) = rows()
    assert row.key.startswith("rl:web_phone:") and PHONE not in row.key and PHONE[-4:] not in row.key
    assert row.key == ratelimit.counter_name("web_phone", PHONE)


def test_the_stored_key_depends_on_the_secret_key(app: Flask, ctx: Flask, tmp_path: Path) -> None:
    other = app_on_test_database(app, tmp_path / "instance", secret_key="another-secret-key-for-this-test")
    try:
        with other.app_context():
            theirs = ratelimit.counter_name("web_phone", PHONE)
    finally:
        dispose(other)
    assert theirs != ratelimit.counter_name("web_phone", PHONE)


def test_a_keys_rows_of_past_windows_go_when_it_is_counted_again(ctx: Flask) -> None:
    hit("web_ip", "10.0.0.1", 5, 60, NOW)
    hit("web_ip", "10.0.0.1", 5, 60, NOW + timedelta(minutes=5))
    assert [row.at for row in rows()] == [NOW + timedelta(minutes=5)]


def test_prune_removes_expired_rate_limit_rows_and_leaves_lockouts(ctx: Flask) -> None:
    from ticketing.services import throttle

    hit("web_ip", "10.0.0.1", 5, 60, NOW)
    hit("web_ip", "10.0.0.2", 5, 60, NOW + timedelta(hours=2))
    throttle.record_failure("track:261118-0001", NOW)
    assert ratelimit.prune(NOW + timedelta(hours=2), timedelta(hours=1)) == 1
    assert sorted(row.key[:3] for row in rows()) == ["rl:", "tra"]


def test_now_and_then_a_hit_sweeps_every_keys_expired_rows(ctx: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    hit("web_ip", "10.0.0.1", 5, 60, NOW)
    monkeypatch.setattr(ratelimit, "PRUNE_CHANCE", 1.0)
    hit("web_ip", "10.0.0.2", 5, 60, NOW + timedelta(days=2))
    assert [row.at for row in rows()] == [NOW + timedelta(days=2)]


def test_check_reads_the_configured_limit_and_raises_with_the_time_left(ctx: Flask, limits: Any) -> None:
    limits(open311_key=(2, 60))
    check("open311_key", "app-1", NOW)
    check("open311_key", "app-1", NOW)
    with pytest.raises(RateLimited) as refused:
        check("open311_key", "app-1", NOW)
    assert refused.value.retry_after == 50


def test_check_refuses_an_unknown_bucket(ctx: Flask) -> None:
    with pytest.raises(KeyError):
        check("no_such_door", "x", NOW)


def test_ipv6_clients_are_counted_by_their_64_network() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert client_key("::ffff:10.1.2.3") == "10.1.2.3"
    assert client_key("10.1.2.3") == "10.1.2.3"
    assert client_key(None) == "unknown"


# --- concurrency ------------------------------------------------------------


def race(app: Flask, threads: int, key: str, limit: int) -> list[bool]:
    """`threads` attempts on one key at the same moment, each in its own app context."""
    return at_once(app, [lambda: hit("web_phone", key, limit, 3600, NOW).allowed] * threads)


def test_attempts_racing_for_the_last_slot_get_it_once(app: Flask, ctx: Flask) -> None:
    for round_ in range(8):  # without the per-key lock, some rounds let two through
        key = f"1380000{round_:04d}"
        hit("web_phone", key, 3, 3600, NOW)
        hit("web_phone", key, 3, 3600, NOW)
        assert sorted(race(app, 4, key, 3)) == [False, False, False, True]


@pytest.mark.postgres
def test_on_postgresql_an_attempt_waits_for_one_on_the_same_key_to_finish(app: Flask, ctx: Flask) -> None:
    name = ratelimit.counter_name("web_phone", PHONE)
    window = datetime(2026, 11, 18, 2, 0, tzinfo=UTC)
    finished: list[bool] = []

    def second() -> None:
        with app.app_context():
            finished.append(hit("web_phone", PHONE, 1, 3600, NOW).allowed)

    with db.engine.connect() as first:
        with first.begin():
            ratelimit._lock_key(first, name, window)
            first.execute(FailedAttempt.__table__.insert().values(key=name, at=NOW))
            thread = threading.Thread(target=second)
            thread.start()
            time.sleep(0.5)
            assert finished == []  # held up by the first attempt's lock
        thread.join(timeout=10)
    assert finished == [False]


# --- the resident web form --------------------------------------------------


def fresh_form(client: FlaskClient, world: World, **changes: Any) -> dict[str, Any]:
    """A valid report with the CSRF token and submission id of a freshly rendered form."""
    html = client.get("/report").get_data(as_text=True)
    submission = re.search(r'name="submission_id" type="hidden" value="([0-9a-f]{32})"', html)
    assert submission is not None
    return form_data(world, csrf_token=csrf_from(html), submission_id=submission.group(1), **changes)


def assert_refused(response: TestResponse) -> str:
    assert response.status_code == 429, response.get_data(as_text=True)[:300]
    assert 1 <= int(response.headers["Retry-After"]) <= 3600
    return response.get_data(as_text=True)


@pytest.mark.usefixtures("english")
def test_the_form_is_refused_with_429_after_the_limit_per_address(
    client: FlaskClient, world: World, limits: Any,
) -> None:
    limits(web_ip=(2, 3600), web_phone=(100, 3600))
    for phone in ("13700000001", "13700000002"):
        assert post_report(client, fresh_form(client, world, phone=phone)).status_code == 303
    html = assert_refused(post_report(client, fresh_form(client, world, phone="13700000003", description="第三次报修")))
    assert "was not sent yet" in html and "Please wait about" in html and "service station" in html
    assert ticket_count() == 2


def test_the_limit_per_phone_holds_across_addresses(client: FlaskClient, world: World, limits: Any) -> None:
    limits(web_ip=(100, 3600), web_phone=(1, 3600))
    assert post_report(client, fresh_form(client, world)).status_code == 303
    client.environ_base["REMOTE_ADDR"] = "10.9.8.7"
    assert_refused(post_report(client, fresh_form(client, world, phone=" 138-1234-5678 ")))
    assert post_report(client, fresh_form(client, world, phone=OTHER_PHONE)).status_code == 303
    assert ticket_count() == 2


@pytest.mark.usefixtures("english")
def test_the_refusal_keeps_the_answers_and_files_nothing(
    client: FlaskClient, world: World, limits: Any, ctx: Flask,
) -> None:
    limits(web_ip=(100, 3600), web_phone=(1, 3600))
    post_report(client, fresh_form(client, world))
    html = assert_refused(post_report(client, fresh_form(client, world, description="电梯困人，请尽快", unit_room="5单元502")))
    assert "电梯困人，请尽快" in html and f'value="{PHONE}"' in html and 'value="5单元502"' in html
    assert "If you had chosen photos, please choose them again." in html
    assert ticket_count() == 1


def test_resending_a_form_already_filed_reaches_its_confirmation_over_the_limit(
    client: FlaskClient, world: World, limits: Any,
) -> None:
    limits(web_ip=(1, 3600), web_phone=(1, 3600))
    data = fresh_form(client, world)
    first = post_report(client, data)
    again = post_report(client, data)
    assert first.status_code == again.status_code == 303
    assert again.headers["Location"] == first.headers["Location"]
    assert client.get(again.headers["Location"]).status_code == 200
    assert_refused(post_report(client, fresh_form(client, world)))
    assert ticket_count() == 1


def test_posts_without_a_valid_csrf_token_are_not_counted(
    client: FlaskClient, world: World, limits: Any,
) -> None:
    limits(web_ip=(1, 3600), web_phone=(1, 3600))
    for _ in range(3):
        assert client.post("/report", data=form_data(world, csrf_token="forged")).status_code == 400
    assert post_report(client, fresh_form(client, world)).status_code == 303


def test_a_phone_number_intake_refuses_is_not_counted_against_anyone(
    client: FlaskClient, world: World, limits: Any,
) -> None:
    limits(web_ip=(100, 3600), web_phone=(1, 3600))
    assert post_report(client, fresh_form(client, world, phone="12345")).status_code == 400
    assert [row.key.split(":")[1] for row in rows()] == ["web_ip"]


# --- Redis ------------------------------------------------------------------


@pytest.mark.redis
def test_with_redis_the_count_lives_in_redis(redis_app: Flask, redis_conn: Redis) -> None:
    with redis_app.app_context():
        decisions = [hit("web_ip", "10.0.0.1", 2, 60, NOW) for _ in range(3)]
        name = ratelimit.counter_name("web_ip", "10.0.0.1")
    assert [d.allowed for d in decisions] == [True, True, False]
    assert decisions[-1].retry_after == 50
    keys = [key.decode() for key in redis_conn.keys("minhu:rl:*")]
    assert keys == [f"minhu:{name}:{int(NOW.timestamp()) // 60 * 60}"]
    assert 0 < redis_conn.ttl(keys[0]) <= 65
    assert "10.0.0.1" not in keys[0]
    assert rows() == []


@pytest.mark.redis
def test_with_redis_the_web_form_is_limited_too(redis_app: Flask, world: World, redis_conn: Redis) -> None:
    redis_app.config["RATE_LIMITS"] = dict(redis_app.config["RATE_LIMITS"], web_phone=(1, 3600))
    client = redis_app.test_client()
    assert post_report(client, fresh_form(client, world)).status_code == 303
    assert_refused(post_report(client, fresh_form(client, world)))
    assert redis_conn.keys("minhu:rl:web_phone:*")
    assert rows() == []


@pytest.fixture()
def dead_redis_app(app: Flask, ctx: Flask, tmp_path: Path) -> Iterator[Flask]:
    """The app with REDIS_URL pointing at a port where nothing listens."""
    other = app_on_test_database(app, tmp_path / "instance", redis_url=f"redis://127.0.0.1:{free_port()}/0")
    other.config["RATE_LIMITS"] = dict(other.config["RATE_LIMITS"], web_phone=(1, 3600))
    yield other
    dispose(other)


def test_with_redis_down_the_count_falls_back_to_the_database(dead_redis_app: Flask) -> None:
    with dead_redis_app.app_context():
        assert hit("web_ip", "10.0.0.1", 1, 60, NOW).allowed
        # The failure is remembered: the next attempt goes straight to the database.
        assert dead_redis_app.extensions["minhu.ratelimit"]["redis_down_until"] > time.monotonic()
        assert not hit("web_ip", "10.0.0.1", 1, 60, NOW).allowed
    assert len(rows()) == 1


def test_with_redis_down_the_web_form_still_answers_and_limits(dead_redis_app: Flask, world: World) -> None:
    client = dead_redis_app.test_client()
    assert post_report(client, fresh_form(client, world)).status_code == 303
    assert_refused(post_report(client, fresh_form(client, world)))
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 1
