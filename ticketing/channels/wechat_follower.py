"""What a WeChat follower may say besides a problem: their new mobile number, 忘记我, a
ticket number to look up; and what filing says about the phone it used.

A follower's phone and last place are remembered after their first request
(services/followers.py), so later messages need neither. That makes every text a
possible request, so a message that is only a number, a greeting or a thank-you is
answered, never filed, when it would be filed only thanks to the remembered phone.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from ticketing.extensions import db
from ticketing.labels import STATUS_LABELS, label
from ticketing.models import Ticket
from ticketing.services import followers
from ticketing.services.intake import clean_phone
from ticketing.services.privacy import mask_phone
from ticketing.services.tracking import tracking_token

FORGET_WORDS = frozenset({"忘记我", "请忘记我", "忘记我的信息", "删除我的信息", "删除我的资料",
                          "删除我的手机号", "删除我的电话"})
# 查询 261121-0042, or the number alone (the hyphen may be left out).
NUMBER_QUERY = re.compile(r"^(?:查询|查)?\s*[:：]?\s*(\d{6})-?(\d{4,6})$")
# Digits and what people type between them, nothing else.
ONLY_NUMBER = re.compile(r"^[\d\s+\-()]+$")
# Messages that are not requests: thanks, greetings, "OK".
CHAT = frozenset({"谢谢", "谢谢你", "谢谢您", "谢谢你们", "感谢", "多谢", "好的", "好", "好滴", "行", "嗯",
                  "嗯嗯", "哦", "收到", "你好", "您好", "在吗", "在不在", "ok", "okay", "再见",
                  "不用了", "没事了", "辛苦了", "是的", "对"})
THANKS = ("谢谢", "感谢", "多谢", "辛苦")
MIN_REQUEST_CHARS = 3


def bare(text: str) -> str:
    """The text without spaces, punctuation and emoji, lower case (full-width folded)."""
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text)).lower()


def looks_like_chat(text: str) -> bool:
    """A thank-you, a greeting or a word or two: not a request to file."""
    word = bare(text)
    return (len(word) < MIN_REQUEST_CHARS or word in CHAT
            or (word.startswith(THANKS) and len(word) <= 8))


def phone_note(ticket: Ticket) -> str:
    """The line of a filed request's reply that says which phone it uses and how to change it."""
    return _("Mobile number used: %(phone)s; we remember it (and the place) for your next "
             "requests. To change it, send the new number; to have it forgotten, send 忘记我.",
             phone=mask_phone(ticket.requester_phone))


def forget(openid: str) -> str:
    """Erase what we remember of the follower; the same reply whether or not there was
    anything, so a retried callback is answered as the first time."""
    followers.forget(openid)
    db.session.commit()
    return _("Done: we no longer remember your mobile number, place or location. Requests "
             "already filed keep their details for handling; send 查询 to see them. "
             "Next time, please write your mobile number in the message.")


def new_phone(openid: str, text: str, now: Any) -> str:
    """A message that is only a number: remember it when it is a mobile number."""
    phone = followers.remember_phone(openid, text, now)
    if phone is None:
        return _("Please describe the problem in words (what and where). To change your mobile "
                 "number, send an 11-digit mobile number on its own.")
    db.session.commit()
    return _("Your mobile number is now %(phone)s. It is used for your next requests; "
             "describe a problem in a message to file one.", phone=mask_phone(phone))


def ticket_status(openid: str, number: str) -> str:
    """The state of one of the follower's own tickets, by its number."""
    ticket = db.session.scalar(select(Ticket).where(Ticket.number == number,
                                                    Ticket.resident_openid == openid))
    if ticket is None:  # someone else's number says nothing about that ticket
        return _("We found no request %(number)s among yours. Send 查询 to list your requests.",
                 number=number)
    return _("Request %(number)s: %(status)s. Details: %(link)s", number=ticket.number,
             status=label(STATUS_LABELS, ticket.status), link=tracking_link(ticket))


def tracking_link(ticket: Ticket) -> str:
    config = current_app.config
    return config["PUBLIC_URL"].rstrip("/") + "/t/" + tracking_token(ticket, config["SECRET_KEY"])


def answer(openid: str, text: str, now: Any) -> str | None:
    """The reply to a text that is not a request (忘记我, a phone number alone, a ticket
    number); None for a text to file."""
    content = unicodedata.normalize("NFKC", text).strip()
    if bare(content) in FORGET_WORDS:
        return forget(openid)
    number_only = ONLY_NUMBER.match(content) is not None
    if number_only and clean_phone(content) is not None:  # before a ticket number: 11 digits both
        return new_phone(openid, content, now)
    found = NUMBER_QUERY.match(content)
    if found is not None:
        return ticket_status(openid, f"{found.group(1)}-{found.group(2)}")
    if number_only:
        return new_phone(openid, content, now)
    return None
