"""Talking to the WeChat callback as WeChat does: signing, messages, safe mode."""
from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any

import xmltodict
from flask.testing import FlaskClient
from sqlalchemy import func, select
from wechatpy.crypto import WeChatCrypto

from tests.factories import PHONE
from ticketing.extensions import db
from ticketing.models import Ticket

URL = "/channels/wechat"
TOKEN = "minhu-wechat-token"
APP_ID = "wx0123456789abcdef"
AES_KEY = base64.b64encode(b"minhu-test-encoding-aes-key-0001").decode().rstrip("=")
OPENID = "oABCD1234567890openid"
TEXT = f"红星小区3号楼楼道灯坏了，晚上很黑 {PHONE}"


def signed(token: str = TOKEN, timestamp: int | None = None, **extra: str) -> dict[str, str]:
    """A callback's query string as WeChat signs it, with a nonce of its own."""
    timestamp_text = str(int(time.time()) if timestamp is None else timestamp)
    return sign(token, timestamp_text, str(secrets.randbelow(10**10)), **extra)


def sign(token: str, timestamp: str, nonce: str, **extra: str) -> dict[str, str]:
    """The query string of a callback signed over this timestamp and nonce."""
    signature = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
    return {"signature": signature, "timestamp": timestamp, "nonce": nonce, **extra}


def text_xml(content: str, msg_id: int = 1234567890123456, openid: str = OPENID) -> str:
    return (
        "<xml><ToUserName><![CDATA[gh_minhu]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )


def post(client: FlaskClient, body: str | bytes, token: str = TOKEN, args: dict[str, str] | None = None,
         **extra: str) -> Any:
    """Post a callback; `args` to send a query string already signed (a retry, a replay)."""
    data = body.encode() if isinstance(body, str) else body
    return client.post(URL, query_string=args or signed(token, **extra), data=data, content_type="text/xml")


def reply_content(response: Any) -> str:
    assert response.status_code == 200, response.get_data(as_text=True)
    return xmltodict.parse(response.get_data(as_text=True))["xml"]["Content"]


def tickets() -> list[Ticket]:
    db.session.expire_all()
    return list(db.session.scalars(select(Ticket).order_by(Ticket.id)))


def ticket_count() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Ticket)) or 0


def post_encrypted(client: FlaskClient, crypto: WeChatCrypto, body: str) -> dict[str, Any]:
    """Send a message in safe mode as WeChat does; the decrypted reply's fields."""
    args = signed(encrypt_type="aes")
    encrypted = crypto.encrypt_message(body, args["nonce"], args["timestamp"])
    msg_signature = xmltodict.parse(encrypted)["xml"]["MsgSignature"]
    response = client.post(URL, query_string={**args, "msg_signature": msg_signature},
                           data=encrypted.encode(), content_type="text/xml")
    assert response.status_code == 200, response.get_data(as_text=True)
    outer = xmltodict.parse(response.get_data(as_text=True))["xml"]
    plain = crypto.decrypt_message(response.get_data(as_text=True), outer["MsgSignature"],
                                   outer["TimeStamp"], outer["Nonce"])
    return dict(xmltodict.parse(plain)["xml"])
