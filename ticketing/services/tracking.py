"""How residents find their ticket again: a signed link, or number + phone digits."""
from __future__ import annotations

import hmac
import re

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select

from ticketing.extensions import db
from ticketing.models import Ticket

SALT = "minhu.track"
# A number as services/numbering.py makes it (261121-0042), typed with any separator or none.
TYPED_NUMBER = re.compile(r"^(\d{6})[\s\-_./—–]*(\d{4,})$")


def normalise_number(number: str | None) -> str:
    """The ticket number as stored from what a resident typed: 2611210042, 261121 0042 and
    261121—0042 all become 261121-0042; anything else is only trimmed and upper-cased."""
    text = (number or "").strip().upper()
    found = TYPED_NUMBER.match(text)
    return f"{found[1]}-{found[2]}" if found else text


def tracking_token(ticket: Ticket, secret: str) -> str:
    """A link token that lets its holder follow and rate this ticket."""
    return URLSafeSerializer(secret, salt=SALT).dumps({"t": ticket.id, "n": ticket.number})


def tracking_link(ticket: Ticket, secret: str, public_url: str) -> str:
    """The whole tracking link, from the address residents use (PUBLIC_URL)."""
    return public_url.rstrip("/") + "/t/" + tracking_token(ticket, secret)


def ticket_from_token(token: str, secret: str) -> Ticket | None:
    """The ticket of a valid token, or None for a forged or stale one."""
    try:
        data = URLSafeSerializer(secret, salt=SALT).loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    ticket = db.session.get(Ticket, data.get("t"))
    if ticket is None or ticket.number != data.get("n"):
        return None
    return ticket


def lookup(number: str, phone_last4: str) -> Ticket | None:
    """The ticket with this number whose phone ends in these digits, else None.

    A wrong pair and an unknown number give the same None, so the form cannot be
    used to find out which numbers exist.
    """
    number = normalise_number(number)
    digits = (phone_last4 or "").strip()
    if len(digits) != 4 or not digits.isdigit() or len(number) > 20:
        return None
    ticket = db.session.scalar(select(Ticket).where(Ticket.number == number))
    expected = ticket.requester_phone[-4:] if ticket is not None else "----"
    if not hmac.compare_digest(expected.encode(), digits.encode()) or ticket is None:
        return None
    return ticket
