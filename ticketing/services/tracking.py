"""How residents find their ticket again: a signed link, or number + phone digits."""
from __future__ import annotations

import hmac

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select

from ticketing.extensions import db
from ticketing.models import Ticket

SALT = "minhu.track"


def tracking_token(ticket: Ticket, secret: str) -> str:
    """A link token that lets its holder follow and rate this ticket."""
    return URLSafeSerializer(secret, salt=SALT).dumps({"t": ticket.id, "n": ticket.number})


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
    number = (number or "").strip().upper()
    digits = (phone_last4 or "").strip()
    if len(digits) != 4 or not digits.isdigit() or len(number) > 20:
        return None
    ticket = db.session.scalar(select(Ticket).where(Ticket.number == number))
    expected = ticket.requester_phone[-4:] if ticket is not None else "----"
    if not hmac.compare_digest(expected.encode(), digits.encode()) or ticket is None:
        return None
    return ticket
