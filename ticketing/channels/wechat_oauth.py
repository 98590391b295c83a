"""WeChat web authorisation (网页授权, OAuth2 scope `snsapi_base`): the official account's
menu opens the web form as the follower, without a login and without a prompt.

1. The menu's 报修 button opens `/channels/wechat/oauth?next=report`. We put a random
   `state` in the resident's session (signed cookie) and send the browser to WeChat's
   authorize URL, with our callback as `redirect_uri`.
2. WeChat sends the browser back to `/channels/wechat/oauth/callback?code=…&state=…`.
   The state must be the one in this browser's session (once, within `STATE_FOR`):
   otherwise someone could make a resident's browser finish *their* sign-in (CSRF, or
   login fixation — the resident's request would then be filed as the other
   follower's, and its replies would go to them). Nothing is stored for a bad state.
3. The code is exchanged for the follower's openid at WeChat's token endpoint
   (`WECHAT_OAUTH_TOKEN_URL` overrides it, for tests), with a time limit; the openid
   goes in the session (services/followers.py), and the form reads it from there.

The code is exchanged with `requests` rather than wechatpy's `WeChatOAuth`: that
client sets no time limit on its requests, and its errors carry the request, whose
URL holds the AppSecret. Neither the code, the secret nor the openid is ever logged
(the callback's query string is kept out of the access log too: ticketing/logscrub.py).

Configuration: `WECHAT_APP_ID` and `WECHAT_APP_SECRET` (the flow is off, 404, without
them), `PUBLIC_URL` (the callback's address; its host is the 网页授权域名 set in the
WeChat admin console); see docs/wechat.md.
"""
from __future__ import annotations

import hmac
import json
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import requests

from ticketing.services.followers import OPENID

log = logging.getLogger(__name__)

AUTHORIZE_URL = "https://open.weixin.qq.com/connect/oauth2/authorize"
TOKEN_URL = "https://api.weixin.qq.com/sns/oauth2/access_token"
SCOPE = "snsapi_base"
STATE_KEY = "minhu.wechat_oauth_state"
STATE_FOR = 600  # seconds from the menu to the callback: WeChat's code lives 5 minutes
TIMEOUT = (3, 5)  # connect, read (seconds)
# Where the menu's buttons may lead, by the name in `next`: never a URL from outside.
DESTINATIONS = {"report": "resident.report"}
DEFAULT_DESTINATION = "report"
CODE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class OAuthFailed(Exception):
    """WeChat did not give us the follower's openid; `reason` is fit for a log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class OAuthSettings:
    app_id: str
    app_secret: str = field(repr=False)
    authorize_url: str = AUTHORIZE_URL
    token_url: str = TOKEN_URL


def oauth_settings(config: Mapping[str, Any]) -> OAuthSettings | None:
    """The account's web-authorisation settings; None while they are not configured."""
    app_id = (config.get("WECHAT_APP_ID") or "").strip()
    secret = (config.get("WECHAT_APP_SECRET") or "").strip()
    if not app_id or not secret:
        return None
    return OAuthSettings(app_id, secret,
                         (config.get("WECHAT_OAUTH_AUTHORIZE_URL") or "").strip() or AUTHORIZE_URL,
                         (config.get("WECHAT_OAUTH_TOKEN_URL") or "").strip() or TOKEN_URL)


def destination(name: str | None) -> str:
    """The page a menu button asked for, by name; the form for anything unknown."""
    return name if name in DESTINATIONS else DEFAULT_DESTINATION


def new_state(next_page: str, now: datetime) -> tuple[str, dict[str, Any]]:
    """A fresh state, and what the session keeps of it."""
    state = secrets.token_urlsafe(24)
    return state, {"state": state, "next": destination(next_page), "at": int(now.timestamp())}


def check_state(kept: Any, given: str | None, now: datetime) -> str | None:
    """The destination of a callback whose state is the one this session was given, in
    time; None for a missing, stale or foreign state."""
    if not isinstance(kept, Mapping) or not given:
        return None
    state, at = kept.get("state"), kept.get("at")
    if not isinstance(state, str) or not isinstance(at, int):
        return None
    if not 0 <= now.timestamp() - at <= STATE_FOR:
        return None
    if not hmac.compare_digest(state.encode(), given.encode()):
        return None
    return destination(kept.get("next"))


def authorize_url(settings: OAuthSettings, redirect_uri: str, state: str) -> str:
    """WeChat's authorize URL: it asks nothing of the follower (snsapi_base) and sends
    the browser back to `redirect_uri` with a code and our state."""
    query = urlencode({"appid": settings.app_id, "redirect_uri": redirect_uri, "response_type": "code",
                       "scope": SCOPE, "state": state})
    return f"{settings.authorize_url}?{query}#wechat_redirect"


def exchange_code(settings: OAuthSettings, code: str | None) -> str:
    """The openid WeChat gives for this code; `OAuthFailed` otherwise."""
    if not code or not CODE.match(code):
        raise OAuthFailed("no code, or not one WeChat sends")
    params = {"appid": settings.app_id, "secret": settings.app_secret, "code": code,
              "grant_type": "authorization_code"}
    try:
        response = requests.get(settings.token_url, params=params, timeout=TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:  # its text may hold the URL, with the secret
        raise OAuthFailed(f"token endpoint unreachable: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise OAuthFailed(f"token endpoint answered HTTP {response.status_code}")
    try:
        data = json.loads(response.content.decode("utf-8", "replace"))
    except ValueError:
        raise OAuthFailed("token endpoint answered something that is not JSON") from None
    if not isinstance(data, dict):
        raise OAuthFailed("token endpoint answered something that is not a JSON object")
    if data.get("errcode"):  # 40029 invalid code, 40163 code used already …
        raise OAuthFailed(f"WeChat refused the code: errcode {data.get('errcode')!r}")
    openid = data.get("openid")
    if not isinstance(openid, str) or not OPENID.match(openid):
        raise OAuthFailed("token endpoint answered without an openid")
    return openid
