"""The WeChat official account (一键报修): WeChat's signed XML callback in, passive replies out.

WeChat posts every message a follower sends to `/channels/wechat` (see docs/wechat.md).
A text message becomes a ticket through the one intake call, with channel `wechat_oa`,
external id `wx:<MsgId>` (WeChat retries a callback up to three times: one ticket) and
the follower's openid on the ticket, so later messages about it go to them on WeChat.
The passive reply carries the ticket number, the tracking link and the phone used
(masked). The follower's phone and last place are remembered (services/followers.py),
so later messages need neither; 忘记我, a new number or a ticket number alone are
answered by wechat_follower.py, not filed. A location message
is remembered to place the next request (wechat_geo.py); an image is added to the
sender's newest open ticket by a job (wechat_media.py). Filing and photos count
against the sender's rate limit (RATE_LIMITS `wechat_sender`).

Configuration: `WECHAT_TOKEN` (the channel is off, 404, while it is unset),
`WECHAT_ENCODING_AES_KEY` and `WECHAT_APP_ID` for safe (encrypted) mode, the
production setting: with the key set, plain messages are refused (403);
`WECHAT_APP_SECRET` to fetch photos through the media API.

Who may call: WeChat's signature, a timestamp within 5 minutes and each nonce once
(wechat_signing.py). XML is never expanded: a body (or a decrypted message) that
declares a DOCTYPE or an entity is refused before any parser sees it (and xmltodict
refuses entity declarations too). A message WeChat would never send (a field with
child elements, a MsgId that is not a 64-bit number) is answered "success", so
WeChat does not retry it, and does nothing.
"""
from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from ticketing.channels import wechat_follower, wechat_geo, wechat_media
from ticketing.channels.wechat_follower import tracking_link
from ticketing.extensions import db
from ticketing.labels import STATUS_LABELS, label
from ticketing.models import Channel, Ticket
from ticketing.services import emergency, followers, ratelimit
from ticketing.services.classify import phone_in_text
from ticketing.services.errors import ValidationFailed
from ticketing.services.ratelimit import RateLimited

log = logging.getLogger(__name__)

CHANNEL = Channel.WECHAT_OA.value
MAX_BODY_BYTES = 64 * 1024
QUERY_WORD = "查询"
MAX_LISTED = 10
RATE_BUCKET = "wechat_sender"
MAX_MSG_ID = 2**64 - 1  # WeChat's MsgId is a 64-bit number: at most 20 digits
# The text fields a message's handling reads (wechatpy's names); each must be plain text.
TEXT_FIELDS = ("target", "content", "media_id", "image", "label", "event", "key")
# The EventKey of the menu's 查询 button (a "click" button; docs/wechat.md).
QUERY_KEY = "MINHU_QUERY"
# A DOCTYPE or entity declaration: such a body is never handed to a parser.
FORBIDDEN_XML = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)


class Refused(Exception):
    """The callback is refused; `status` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Settings:
    token: str
    aes_key: str | None
    app_id: str | None

    def __repr__(self) -> str:  # never show the token or the key
        return f"Settings(app_id={self.app_id!r}, safe_mode={bool(self.aes_key)})"


def settings(config: Mapping[str, Any] | None = None) -> Settings | None:
    """The account's settings, or None while the channel is off."""
    config = current_app.config if config is None else config
    token = (config.get("WECHAT_TOKEN") or "").strip()
    if not token:
        return None
    return Settings(token, (config.get("WECHAT_ENCODING_AES_KEY") or "").strip() or None,
                    (config.get("WECHAT_APP_ID") or "").strip() or None)


def refuse_unsafe_xml(body: bytes) -> None:
    """`Refused(400)` for XML that declares a DOCTYPE or an entity: never expanded."""
    if FORBIDDEN_XML.search(body):
        raise Refused(400, "XML with a DOCTYPE or entity declaration is refused")


def is_safe_mode(args: Mapping[str, str]) -> bool:
    return (args.get("encrypt_type") or "").lower() == "aes"


def crypto(account: Settings) -> Any:
    from wechatpy.crypto import WeChatCrypto

    if not account.aes_key or not account.app_id:
        raise Refused(400, "safe mode is not configured")
    return WeChatCrypto(account.token, account.aes_key, account.app_id)


def read_message(account: Settings, args: Mapping[str, str], body: bytes) -> Any:
    """The parsed message of an authenticated callback (decrypted in safe mode)."""
    from wechatpy import parse_message
    from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException

    refuse_unsafe_xml(body)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "body is not UTF-8") from None
    if account.aes_key and not is_safe_mode(args):
        # With a key configured, only safe mode: else a signed URL stripped of
        # encrypt_type and msg_signature would carry any plain body (docs/wechat.md).
        raise Refused(403, "safe mode is configured: plain messages are refused")
    if is_safe_mode(args):
        msg_signature = args.get("msg_signature", "")
        if not msg_signature:
            raise Refused(403, "missing msg_signature")
        try:
            text = crypto(account).decrypt_message(text, msg_signature, args.get("timestamp", ""),
                                                   args.get("nonce", ""))
        except InvalidSignatureException:
            raise Refused(403, "bad msg_signature") from None
        except InvalidAppIdException:
            raise Refused(403, "message for another app id") from None
        except Refused:
            raise
        except Exception:  # noqa: BLE001 - malformed XML, base64 or padding: wechatpy raises many kinds
            raise Refused(400, "malformed encrypted message") from None
        plain = text.encode("utf-8") if isinstance(text, str) else text
        refuse_unsafe_xml(plain)
        text = plain.decode("utf-8", "replace")
    try:
        message = parse_message(text)
    except Exception:  # noqa: BLE001 - expat, KeyError, ValueError … from xmltodict and wechatpy
        raise Refused(400, "malformed XML") from None
    source = getattr(message, "source", None) if message is not None else None
    if not source or not isinstance(source, str):  # no follower to answer (or one with child elements)
        raise Refused(400, "malformed XML: no FromUserName")
    return message


def unreadable_field(message: Any) -> str | None:
    """The first field WeChat would never send as it is here: a MsgId that is not a
    64-bit number, a text field with child elements or repeated; None when all read."""
    try:
        msg_id = message.id  # wechatpy converts on access: int("abc") raises
    except (TypeError, ValueError):
        return "MsgId"
    if not isinstance(msg_id, int) or not 0 <= msg_id <= MAX_MSG_ID:
        return "MsgId"
    for name in TEXT_FIELDS:
        value = getattr(message, name, None)
        if value is not None and not isinstance(value, str):
            return name
    return None


def render_reply(account: Settings, args: Mapping[str, str], message: Any, content: str | None,
                 ) -> tuple[str, str]:
    """(body, mimetype) of the passive reply; "success" when there is nothing to say."""
    from wechatpy.replies import TextReply

    if content is None:
        return "success", "text/plain"
    xml = TextReply(message=message, content=content).render()
    if is_safe_mode(args):
        xml = crypto(account).encrypt_message(xml, args.get("nonce", ""), args.get("timestamp"))
    return xml, "application/xml"


# --- what a message does ------------------------------------------------------


def sender(message: Any) -> str:
    """The follower's openid."""
    return str(message.source)[:64]


def community_names() -> str:
    """The communities we serve, for replies that ask the resident to name theirs."""
    return "、".join(c.name for c in wechat_geo.open_communities())


def over_limit(openid: str, now: datetime) -> str | None:
    """The polite refusal when the follower is over their limit (RATE_LIMITS wechat_sender);
    None while within it. Counts one attempt.

    WeChat shows a follower only a 200 with a reply, so the limit is said in the reply,
    not with a bare 429 (docs/wechat.md)."""
    try:
        ratelimit.check(RATE_BUCKET, openid, now)
    except RateLimited as exc:
        log.info("wechat sender over the limit; retry after %s s", exc.retry_after)
        return _("You are sending requests too often. Please try again in %(minutes)d min; "
                 "requests already filed are kept.", minutes=max(1, math.ceil(exc.retry_after / 60)))
    return None


def file_text(message: Any, now: datetime, tz: Any, store: Any, max_photo_bytes: int) -> str:
    """File a text message as a ticket; the reply to send."""
    from ticketing.services import intake
    from ticketing.services.lifecycle import Actor

    openid = sender(message)
    text = intake.clean_text(message.content or "", multiline=True)
    external_id = f"wx:{message.id}"
    # A retry of a message that filed a ticket gets its reply, whatever the limit says.
    existing = intake.find_existing(CHANNEL, external_id)
    if existing is not None:
        return filed_reply(existing)
    if not text:
        return _("Please describe the problem in a text message.")
    follower = wechat_geo.follower_of(openid)  # held: its pin, phone and last place, read once
    phone = phone_in_text(text)
    if phone is None:
        known = followers.of_row(follower)
        if known is None or not known.phone:
            return _("Please send the problem again with your mobile number in the message, "
                     "e.g. \"3号楼楼道灯坏了 13812345678\".")
        if wechat_follower.looks_like_chat(text):  # filed only thanks to the remembered phone
            return _("Please describe the problem in a few words: what is wrong, and where.")
        phone = known.phone
    place = wechat_geo.guess_place(follower, text, now)
    if place is None:
        return _("Please send the problem again with the name of your community (%(names)s) "
                 "and your address.", names=community_names())
    limited = over_limit(openid, now)
    if limited is not None:
        return limited
    req = intake.IntakeRequest(
        channel=CHANNEL, external_id=external_id, description=text, phone=phone,
        category_id=None, guess_category=True, openid=openid, **place,
    )
    try:
        ticket, created = intake.submit(req, Actor.system(), now, tz, store, max_photo_bytes, max_photos=0,
                                        looked_up=True)  # just above
    except ValidationFailed as exc:
        log.info("wechat message %s not filed: %s", message.id, sorted(exc.errors))
        if "category_id" in exc.errors:  # no category active to put it in
            return _("Sorry, we cannot take requests here right now. Please use the web form.")
        return _("Sorry, we could not file this request. Please check it and send it again, "
                 "or use the web form.")
    log.info("wechat message %s filed as ticket %s (new=%s)", message.id, ticket.number, created)
    if created:
        remember(ticket, now)
    return filed_reply(ticket)


def remember(ticket: Ticket, now: datetime) -> None:
    """Remember the request's phone and place for the follower's next ones, in a
    statement of its own (followers.remember_apart): the request is filed whatever
    happens here, and the ticket stays loaded for the reply."""
    try:
        followers.remember_apart(ticket, now)
    except SQLAlchemyError:
        log.exception("wechat follower's phone and place not remembered (ticket %s)", ticket.number)


def filed_reply(ticket: Ticket) -> str:
    """The reply to a filed request: what to do at once comes first when it describes an
    emergency; the phone used (masked) and how to change it last."""
    filed = _("Your request is filed as %(number)s. Follow it here: %(link)s",
              number=ticket.number, link=tracking_link(ticket))
    guidance = emergency.short_text(emergency.for_ticket(ticket))
    filed = f"{guidance}\n{filed}" if guidance else filed
    return filed + "\n" + wechat_follower.phone_note(ticket)


def list_tickets(openid: str) -> str:
    """The sender's tickets, newest first, with their states."""
    tickets = list(db.session.scalars(
        select(Ticket).where(Ticket.resident_openid == openid)
        .order_by(Ticket.id.desc()).limit(MAX_LISTED)
    ))
    if not tickets:
        return _("You have no requests yet. Describe a problem in a message to file one.")
    lines = [_("Your requests:")]
    lines += [f"{t.number} {label(STATUS_LABELS, t.status)}" for t in tickets]
    return "\n".join(lines)


def receive_location(message: Any, now: datetime) -> str:
    """Remember where the follower is (wechat_geo.py); say which grid that is."""
    point = wechat_geo.parse_location(message)
    if point is None:
        return _("Sorry, we could not read this location. Please describe the problem in a "
                 "text message, with your community, building and mobile number.")
    follower = wechat_geo.remember_location(sender(message), *point, message.label or "", now)
    if follower.grid is None:
        return _("This location is outside the area we serve (%(names)s). Please describe the "
                 "problem with the name of your community and your address.", names=community_names())
    return _("Your location is noted: %(place)s. Please describe the problem in a text message, "
             "with your mobile number.", place=wechat_geo.place_name(follower.grid))


def receive_image(message: Any, now: datetime) -> str | None:
    """Accept a photo for the sender's newest open ticket; it is downloaded by a job."""
    openid, msg_id = sender(message), wechat_media.msg_id_of(message)
    if msg_id is None:
        return None
    accepted = wechat_media.accepted_ticket(openid, msg_id)
    if accepted is not None:  # a retried callback: the same answer, nothing new
        return photo_reply(accepted)
    ticket = wechat_media.newest_open_ticket(openid)
    if ticket is None:
        return _("Please describe the problem in a text message first, with your mobile number; "
                 "photos you send after that are added to your request.")
    most = current_app.config["MAX_PHOTOS"]
    if wechat_media.photos_taken(ticket) >= most:
        return _("Your request %(number)s already has %(n)d photos, as many as it can take.",
                 number=ticket.number, n=most)
    limited = over_limit(openid, now)
    if limited is not None:
        return limited
    wechat_media.accept(ticket, msg_id, message.media_id or "", message.image or "")
    return photo_reply(ticket)


def photo_reply(ticket: Ticket) -> str:
    return _("Thank you. The photo will be added to your request %(number)s.", number=ticket.number)


def handle(message: Any, now: datetime, tz: Any, store: Any, max_photo_bytes: int) -> str | None:
    """What to reply to a message; None for nothing."""
    unreadable = unreadable_field(message)
    if unreadable is not None:
        # Only a forged or broken callback looks like this; "success" ends WeChat's retries.
        log.warning("wechat message with an unreadable %s: ignored", unreadable)
        return None
    kind = getattr(message, "type", "")
    if kind == "text":
        if (message.content or "").strip() == QUERY_WORD:
            return list_tickets(sender(message))
        other = wechat_follower.answer(sender(message), message.content or "", now)
        if other is not None:
            return other
        return file_text(message, now, tz, store, max_photo_bytes)
    if kind == "image":
        return receive_image(message, now)
    if kind == "location":
        return receive_location(message, now)
    if kind == "event" and getattr(message, "event", "") == "click" and message.key == QUERY_KEY:
        return list_tickets(sender(message))
    if kind == "event" and getattr(message, "event", "") == "subscribe":
        return _("Welcome. Describe a problem in a message, with your address and mobile number, "
                 "to file a request; send 查询 to see your requests.")
    return None
