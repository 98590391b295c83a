"""`/channels/wechat`: the WeChat official account's callback, and the web authorisation
its menu opens the form through (`/channels/wechat/oauth`); see docs/wechat.md."""
from __future__ import annotations

import logging
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from ticketing import web
from ticketing.channels import wechat, wechat_oauth, wechat_signing
from ticketing.extensions import csrf
from ticketing.services import followers

log = logging.getLogger(__name__)

bp = Blueprint("wechat_channel", __name__)
csrf.exempt(bp)


def account() -> wechat.Settings:
    """The account's settings; 404 while the channel is off."""
    found = wechat.settings()
    if found is None:
        abort(404)
    return found


def refused(exc: wechat.Refused) -> Any:
    return Response(exc.message, status=exc.status, mimetype="text/plain")


def read_body() -> bytes:
    """The raw body, at most 64 KB; `Refused(413)` beyond that."""
    length = request.content_length
    if length is not None and length > wechat.MAX_BODY_BYTES:
        raise wechat.Refused(413, "body too large")
    body = request.stream.read(wechat.MAX_BODY_BYTES + 1)
    if len(body) > wechat.MAX_BODY_BYTES:
        raise wechat.Refused(413, "body too large")
    return body


@bp.get("")
@bp.get("/")
def verify() -> Any:
    """WeChat's server verification: echo `echostr` when the signature is WeChat's."""
    settings = account()
    now = web.now()
    try:
        wechat_signing.check_signature(settings, request.args, now)
        wechat_signing.check_replay(request.args, request.method, b"", now)
    except wechat.Refused as exc:
        return refused(exc)
    return Response(request.args.get("echostr", ""), mimetype="text/plain")


@bp.post("")
@bp.post("/")
def callback() -> Any:
    """A follower's message; the passive reply (or "success") within WeChat's 5 s."""
    settings = account()
    now = web.now()
    try:
        wechat_signing.check_signature(settings, request.args, now)
        body = read_body()
        message = wechat.read_message(settings, request.args, body)
        # After the message is authenticated (safe mode: its msg_signature), before it acts.
        wechat_signing.check_replay(request.args, request.method, body, now)
        content = wechat.handle(message, now, web.local_tz(), web.photo_store(),
                                current_app.config["MAX_PHOTO_BYTES"])
        reply, mimetype = wechat.render_reply(settings, request.args, message, content)
    except wechat.Refused as exc:
        return refused(exc)
    return Response(reply, mimetype=mimetype)


# --- web authorisation: the menu opens the form as the follower --------------------


def oauth_account() -> wechat_oauth.OAuthSettings:
    """The web-authorisation settings; 404 while WECHAT_APP_ID and _SECRET are unset."""
    found = wechat_oauth.oauth_settings(current_app.config)
    if found is None:
        abort(404)
    return found


def not_stored(response: BaseResponse) -> BaseResponse:
    response.headers["Cache-Control"] = "no-store"
    return response


def oauth_error(status: int, title: str, message: str) -> BaseResponse:
    """A page that says what went wrong and offers the way on: the menu again, or the
    form without WeChat."""
    page = render_template("wechat/oauth_error.html", title=title, message=message)
    return not_stored(make_response(page, status))


@bp.get("/oauth")
def oauth_start() -> BaseResponse:
    """A menu button: send the browser to WeChat's authorisation, with a state kept in
    this session (channels/wechat_oauth.py)."""
    settings = oauth_account()
    state, kept = wechat_oauth.new_state(request.args.get("next", ""), web.now())
    session[wechat_oauth.STATE_KEY] = kept
    callback = current_app.config["PUBLIC_URL"].rstrip("/") + url_for(".oauth_callback")
    return not_stored(redirect(wechat_oauth.authorize_url(settings, callback, state), 302))


@bp.get("/oauth/callback")
def oauth_callback() -> BaseResponse:
    """WeChat sends the browser back: check the state, exchange the code for the
    follower's openid, keep it in the session and open the page the button asked for."""
    settings = oauth_account()
    now = web.now()
    page = wechat_oauth.check_state(session.pop(wechat_oauth.STATE_KEY, None), request.args.get("state"), now)
    if page is None:
        return oauth_error(400, _("This link has expired"),
                           _("Please open the menu of our WeChat official account again."))
    try:
        openid = wechat_oauth.exchange_code(settings, request.args.get("code"))
    except wechat_oauth.OAuthFailed as exc:
        log.warning("wechat web authorisation failed: %s", exc.reason)
        return oauth_error(502, _("WeChat could not confirm your account"),
                           _("Please try again from the menu in a moment. You can also fill in "
                             "the form without WeChat: replies then come by SMS."))
    session[followers.SESSION_KEY] = followers.session_value(openid, now)
    return not_stored(redirect(url_for(wechat_oauth.DESTINATIONS[page]), 303))
