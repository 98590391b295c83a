"""WeChat API clients that share one access token.

WeChat allows an official account about 2,000 access-token fetches a day, and each
new token retires the one before: a client per message or per photo, each fetching
its own, would run out by midday and make the other processes' tokens fail. Every
client made here keeps the token in one place: in Redis when it is configured (all
web processes and workers), else in this process. A token is dropped a few minutes
before WeChat says it expires, so a fresh one is fetched in time.
"""
from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from wechatpy.session import SessionStorage

if TYPE_CHECKING:
    from redis import Redis
    from wechatpy import WeChatClient

KEY_PREFIX = "minhu:wechat:"
EARLY = 300  # seconds before WeChat's expiry that a token is given up
# In-process tokens, when there is no Redis: key → (value, monotonic deadline).
_local: dict[str, tuple[Any, float]] = {}


class SharedTokens(SessionStorage):
    """wechatpy's session storage, in Redis or in this process, expiring early."""

    def __init__(self, redis: Redis | None) -> None:
        self.redis = redis

    def get(self, key: str, default: Any = None) -> Any:
        if self.redis is not None:
            raw = self.redis.get(KEY_PREFIX + key)
            return default if raw is None else json.loads(raw)
        value, deadline = _local.get(key, (default, 0.0))
        return value if deadline > time.monotonic() else default

    def set(self, key: str, value: Any, ttl: int | None = None) -> None:
        if value is None:
            return
        keep = max(1, (ttl or 7200) - EARLY)
        if self.redis is not None:
            self.redis.set(KEY_PREFIX + key, json.dumps(value), ex=keep)
        else:
            _local[key] = (value, time.monotonic() + keep)

    def delete(self, key: str) -> None:
        if self.redis is not None:
            self.redis.delete(KEY_PREFIX + key)
        else:
            _local.pop(key, None)


def client(app_id: str, app_secret: str, timeout: float) -> WeChatClient:
    """A client of the official account whose token is shared (see the module's docstring)."""
    from wechatpy import WeChatClient

    from ticketing.queues import redis_connection

    return WeChatClient(app_id, app_secret, session=SharedTokens(redis_connection()), timeout=timeout)
