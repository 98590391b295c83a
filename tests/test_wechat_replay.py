"""The WeChat callback against replays: a 5-minute timestamp window and each nonce once.

WeChat's own retries (the same request again) are answered again; a signed URL used
with another body is refused, whether nonces live in Redis or in the database.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import xmltodict
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import select
from wechatpy.crypto import WeChatCrypto

from tests.conftest import app_on_test_database, dispose
from tests.factories import PHONE, World
from tests.races import at_once
from tests.redis_server import free_port
from tests.wechat_helpers import (
    TEXT,
    TOKEN,
    URL,
    post,
    reply_content,
    sign,
    signed,
    text_xml,
    ticket_count,
    tickets,
)
from ticketing.extensions import db
from ticketing.models import WechatNonce
from ticketing.services import nonces
from ticketing.services.nonces import Seen

NOW = datetime(2026, 12, 4, 2, 0, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=6)


def nonce_rows() -> list[WechatNonce]:
    db.session.expire_all()
    return list(db.session.scalars(select(WechatNonce)))


# --- the timestamp window ---------------------------------------------------------


@pytest.mark.parametrize("offset", [-301, 301, -86400])
def test_a_timestamp_outside_five_minutes_is_refused_and_nothing_filed(
        world: World, client: FlaskClient, account: None, offset: int) -> None:
    response = post(client, text_xml(TEXT), args=signed(timestamp=int(time.time()) + offset))
    assert response.status_code == 403
    assert "timestamp" in response.get_data(as_text=True)
    assert ticket_count() == 0


def test_a_timestamp_within_five_minutes_is_accepted(world: World, client: FlaskClient, account: None) -> None:
    reply_content(post(client, text_xml(TEXT), args=signed(timestamp=int(time.time()) - 240)))
    assert ticket_count() == 1


@pytest.mark.parametrize("timestamp", ["abc", "1.7e9", "-1", "9" * 40])
def test_a_timestamp_that_is_not_unix_seconds_is_refused(
        world: World, client: FlaskClient, account: None, timestamp: str) -> None:
    response = post(client, text_xml(TEXT), args=sign(TOKEN, timestamp, "12345"))
    assert response.status_code == 403
    assert ticket_count() == 0


def test_server_verification_with_an_old_timestamp_is_refused(client: FlaskClient, account: None) -> None:
    args = signed(timestamp=int(time.time()) - 3600, echostr="hello")
    assert client.get(URL, query_string=args).status_code == 403


# --- nonces -----------------------------------------------------------------------


def test_a_signed_url_used_again_with_another_body_is_refused_and_files_nothing(
        world: World, client: FlaskClient, account: None) -> None:
    args = signed()
    reply_content(post(client, text_xml(TEXT), args=args))
    forged = text_xml(f"西岭社区东苑2号楼漏水 {PHONE}", msg_id=99, openid="someone-else")
    response = post(client, forged, args=args)
    assert response.status_code == 403
    assert ticket_count() == 1


def test_a_signed_url_from_a_log_cannot_list_another_followers_tickets(
        world: World, client: FlaskClient, account: None) -> None:
    args = signed()  # the victim's callback, its URL later read in some log
    reply_content(post(client, text_xml(TEXT), args=args))
    [victims] = tickets()
    response = post(client, text_xml("查询", msg_id=5), args=args)
    assert response.status_code == 403
    assert victims.number not in response.get_data(as_text=True)


def test_wechats_retry_of_a_message_is_answered_again_with_the_same_reply(
        world: World, client: FlaskClient, account: None) -> None:
    args, body = signed(), text_xml("查询")
    first = reply_content(post(client, body, args=args))
    assert reply_content(post(client, body, args=args)) == first


def test_the_same_nonce_with_another_query_is_a_replay(world: World, client: FlaskClient, account: None) -> None:
    args, body = signed(), text_xml(TEXT)
    reply_content(post(client, body, args=args))
    assert post(client, body, args={**args, "openid": "someone-else"}).status_code == 403


def test_server_verification_cannot_echo_another_string_under_a_used_nonce(
        client: FlaskClient, account: None) -> None:
    args = signed(echostr="from-wechat")
    assert client.get(URL, query_string=args).get_data(as_text=True) == "from-wechat"
    assert client.get(URL, query_string={**args, "echostr": "<script>"}).status_code == 403


def test_a_verification_url_cannot_be_used_to_post_a_message(
        world: World, client: FlaskClient, account: None) -> None:
    args = signed(echostr="from-wechat")
    assert client.get(URL, query_string=args).status_code == 200
    assert post(client, text_xml(TEXT), args=args).status_code == 403
    assert ticket_count() == 0


def post_safe(client: FlaskClient, crypto: WeChatCrypto, body: str, args: dict[str, str]) -> Any:
    encrypted = crypto.encrypt_message(body, args["nonce"], args["timestamp"])
    msg_signature = xmltodict.parse(encrypted)["xml"]["MsgSignature"]
    return client.post(URL, query_string={**args, "msg_signature": msg_signature},
                       data=encrypted.encode(), content_type="text/xml")


def test_in_safe_mode_a_used_nonce_is_refused_even_with_a_valid_msg_signature(
        world: World, client: FlaskClient, safe_mode: WeChatCrypto) -> None:
    args = signed(encrypt_type="aes")
    assert post_safe(client, safe_mode, text_xml(TEXT), args).status_code == 200
    other = text_xml(f"西岭社区东苑2号楼漏水 {PHONE}", msg_id=99)
    assert post_safe(client, safe_mode, other, args).status_code == 403
    assert ticket_count() == 1


def test_in_safe_mode_wechats_retry_is_answered(world: World, client: FlaskClient,
                                                safe_mode: WeChatCrypto) -> None:
    args = signed(encrypt_type="aes")
    encrypted = safe_mode.encrypt_message(text_xml(TEXT), args["nonce"], args["timestamp"])
    query = {**args, "msg_signature": xmltodict.parse(encrypted)["xml"]["MsgSignature"]}
    answers = [client.post(URL, query_string=query, data=encrypted.encode(), content_type="text/xml")
               for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    assert ticket_count() == 1


def test_with_safe_mode_configured_a_plain_message_is_refused(
        world: World, client: FlaskClient, safe_mode: WeChatCrypto) -> None:
    # A signed URL stripped of encrypt_type and msg_signature must not carry a plain body.
    response = post(client, text_xml(TEXT))
    assert response.status_code == 403
    assert ticket_count() == 0


def test_without_redis_nonces_are_kept_in_the_database_until_the_window_ends(
        world: World, client: FlaskClient, account: None) -> None:
    signed_at = int(time.time())
    args = signed(timestamp=signed_at)
    reply_content(post(client, text_xml(TEXT), args=args))
    [row] = nonce_rows()
    assert args["nonce"] not in row.key and args["signature"] not in row.key
    expected = datetime.fromtimestamp(signed_at, tz=UTC) + timedelta(minutes=6)
    assert abs(row.expires_at - expected) < timedelta(seconds=1)


# --- the store, directly ----------------------------------------------------------


def test_remember_tells_new_retry_and_replay_apart(ctx: Flask) -> None:
    until = NOW + timedelta(minutes=5)
    assert nonces.remember("k1", "body-a", until, NOW) is Seen.NEW
    assert nonces.remember("k1", "body-a", until, NOW) is Seen.RETRY
    assert nonces.remember("k1", "body-b", until, NOW) is Seen.REPLAY
    assert nonces.remember("k2", "body-b", until, NOW) is Seen.NEW


def test_two_requests_with_one_nonce_at_once_let_only_one_through(app: Flask, ctx: Flask) -> None:
    seen = at_once(app, [lambda body=body: nonces.remember("k1", body, NOW + timedelta(minutes=5), NOW)
                         for body in ("body-a", "body-b")])
    assert sorted(s.value for s in seen) == ["new", "replay"]


def test_expired_nonces_are_forgotten(ctx: Flask) -> None:
    nonces.remember("old", "body-a", NOW + timedelta(minutes=5), NOW)
    nonces.remember("new", "body-a", LATER + timedelta(minutes=5), LATER)
    assert {row.key for row in nonce_rows()} == {"new"}  # the insert swept the expired one
    nonces.remember("old", "body-a", NOW + timedelta(minutes=5), NOW)
    assert nonces.prune(LATER) == 1


def test_housekeeping_forgets_expired_nonces(ctx: Flask) -> None:
    from workers.jobs import housekeeping

    nonces.remember("old", "body-a", datetime.now(UTC) - timedelta(minutes=1), NOW)
    assert "WeChat nonces forgotten 1" in housekeeping()
    assert nonce_rows() == []


@pytest.mark.redis
def test_with_redis_nonces_live_in_redis_for_the_window(redis_app: Flask, redis_conn: Redis) -> None:
    with redis_app.app_context():
        until = NOW + timedelta(minutes=6)
        assert nonces.remember("k1", "body-a", until, NOW) is Seen.NEW
        assert nonces.remember("k1", "body-a", until, NOW) is Seen.RETRY
        assert nonces.remember("k1", "body-b", until, NOW) is Seen.REPLAY
    [key] = redis_conn.keys("minhu:nonce:*")
    assert 355 <= redis_conn.ttl(key) <= 360
    assert nonce_rows() == []


@pytest.fixture()
def dead_redis_app(app: Flask, ctx: Flask, tmp_path: Path) -> Iterator[Flask]:
    """The app with REDIS_URL pointing at a port where nothing listens."""
    other = app_on_test_database(app, tmp_path / "instance", redis_url=f"redis://127.0.0.1:{free_port()}/0")
    other.config["WECHAT_TOKEN"] = TOKEN
    yield other
    dispose(other)


def test_with_redis_down_a_replay_is_still_refused(dead_redis_app: Flask, world: World) -> None:
    client = dead_redis_app.test_client()
    args = signed()
    reply_content(post(client, text_xml(TEXT), args=args))
    assert dead_redis_app.extensions["minhu.nonces"]["redis_down_until"] > time.monotonic()
    assert post(client, text_xml("查询", msg_id=5), args=args).status_code == 403
    assert len(nonce_rows()) == 1


@pytest.mark.redis
def test_a_nonce_kept_in_the_database_while_redis_was_away_is_refused_when_it_is_back(
        redis_app: Flask, redis_conn: Redis) -> None:
    until = NOW + timedelta(minutes=6)
    with redis_app.app_context():
        redis_app.extensions.setdefault("minhu.nonces", {})["redis_down_until"] = time.monotonic() + 60
        assert nonces.remember("k1", "body-a", until, NOW) is Seen.NEW  # in the database
        redis_app.extensions["minhu.nonces"]["redis_down_until"] = 0.0  # Redis is back
        assert nonces.remember("k1", "body-b", until, NOW) is Seen.REPLAY
        assert nonces.remember("k1", "body-a", until, NOW) is Seen.RETRY
    assert redis_conn.keys("minhu:nonce:*") == []
