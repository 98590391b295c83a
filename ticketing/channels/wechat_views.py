"""`/channels/wechat`: the WeChat official account's callback; see docs/wechat.md."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, current_app, request

from ticketing import web
from ticketing.channels import wechat, wechat_signing
from ticketing.extensions import csrf

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
