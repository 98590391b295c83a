"""WeChat API clients share one access token: in Redis when configured, else per process."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask

from ticketing.services import wechat_api


class TokenEndpoint:
    """Stands in for WeChat's token endpoint: counts the fetches, hands out T1, T2 …"""

    def __init__(self) -> None:
        self.fetches = 0

    def get(self, url: str = "", **kwargs: Any) -> Any:  # bound to this, not to the Session
        assert "cgi-bin/token" in url
        self.fetches += 1
        answer = {"access_token": f"T{self.fetches}", "expires_in": 7200}

        class Response:
            def raise_for_status(self) -> None:
                return None

            def json(self) -> dict[str, Any]:
                return answer

        return Response()


@pytest.fixture()
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[TokenEndpoint]:
    fake = TokenEndpoint()
    monkeypatch.setattr(requests.Session, "get", fake.get)
    wechat_api._local.clear()
    yield fake
    wechat_api._local.clear()


def test_clients_in_one_process_fetch_the_token_once(ctx: Flask, endpoint: TokenEndpoint) -> None:
    tokens = [wechat_api.client("wx-app", "secret", timeout=5).access_token for _ in range(3)]
    assert tokens == ["T1"] * 3
    assert endpoint.fetches == 1


def test_a_token_near_its_expiry_is_fetched_again(
        ctx: Flask, endpoint: TokenEndpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(wechat_api.time, "monotonic", lambda: clock[0])
    assert wechat_api.client("wx-app", "secret", timeout=5).access_token == "T1"
    clock[0] += 7200 - wechat_api.EARLY - 1
    assert wechat_api.client("wx-app", "secret", timeout=5).access_token == "T1"
    clock[0] += 2  # within the last minutes WeChat gives it
    assert wechat_api.client("wx-app", "secret", timeout=5).access_token == "T2"


def test_two_accounts_keep_their_own_tokens(ctx: Flask, endpoint: TokenEndpoint) -> None:
    first = wechat_api.client("wx-one", "secret", timeout=5).access_token
    second = wechat_api.client("wx-two", "secret", timeout=5).access_token
    assert (first, second, endpoint.fetches) == ("T1", "T2", 2)


@pytest.mark.redis
def test_with_redis_every_process_shares_the_token(
        redis_app: Flask, redis_conn: Any, endpoint: TokenEndpoint) -> None:
    with redis_app.app_context():
        assert wechat_api.client("wx-app", "secret", timeout=5).access_token == "T1"
    wechat_api._local.clear()  # another process: nothing in its memory
    with redis_app.app_context():
        assert wechat_api.client("wx-app", "secret", timeout=5).access_token == "T1"
    assert endpoint.fetches == 1
    key = wechat_api.KEY_PREFIX + "wx-app_access_token"
    assert 0 < redis_conn.ttl(key) <= 7200 - wechat_api.EARLY
