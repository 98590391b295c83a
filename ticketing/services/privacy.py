"""Personal data of requesters: masking, who may see it whole, and the reveal log."""
from __future__ import annotations

import re
from datetime import datetime

from ticketing.extensions import db
from ticketing.models import RevealLog, Role, Ticket, User
from ticketing.services import scope


def mask_name(name: str) -> str:
    """张三丰 → 张**; an empty name stays empty."""
    name = name.strip()
    if not name:
        return ""
    return name[0] + "*" * max(len(name) - 1, 1)


def mask_phone(phone: str) -> str:
    """13812341234 → 138****1234; short numbers keep only their last two digits."""
    digits = phone.strip()
    if len(digits) >= 11:
        return digits[:3] + "****" + digits[-4:]
    if len(digits) > 2:
        return "*" * (len(digits) - 2) + digits[-2:]
    return "*" * len(digits)


def mask_room(room: str) -> str:
    """Hide the unit and room: they point at one household."""
    return "***" if room.strip() else ""


# What ends the building part of a typed address; the unit and room come after it.
BUILDING_MARKERS = ("号楼", "栋", "幢", "号院", "院")


def mask_address(text: str) -> str:
    """东怡街79号院3栋2单元301 → 东怡街79号院3栋***: the place stays, the household goes."""
    text = text.strip()
    if not text:
        return ""
    cut = max((text.rfind(m) + len(m) for m in BUILDING_MARKERS if m in text), default=-1)
    if cut <= 0:
        cut = min(len(text), 6)
    return text[:cut] + ("***" if cut < len(text) else "")


# Free text (descriptions, notes, results, comments) is matched on a copy with full-width
# digits and signs made ASCII, one character for one, so the spans found fit the original.
FULL_WIDTH = str.maketrans("０１２３４５６７８９＋－（）Ｘｘ", "0123456789+-()Xx")
ANY_FULL_WIDTH = re.compile("[０-９＋－（）Ｘｘ]")  # translate() is slow: only when needed
AREA = r"0(?:10|2\d|[3-9]\d{2})"  # 010, 02x, then four-digit codes 0371, 0755 …
# One pass finds all three; a number inside a longer run of digits (an order or ticket
# number, a date like 20261206) is none of them, hence the digit look-arounds. The first
# look-ahead skips the other characters fast: a ledger masks thousands of texts a page.
NUMBER_IN_TEXT = re.compile(
    r"(?=[\d+(])(?:"
    # An 18-character ID: region, birth date (19xx/20xx), sequence, check digit or X.
    r"(?<!\d)(?P<id>[1-9]\d{5}[\s-]?(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
    r"[\s-]?\d{3}[\dXx])(?![\dXx])"
    # A mobile: 1[3-9] and nine digits, spaces or dashes between, maybe +86/0086/86 or a 0 before.
    r"|(?<!\d)(?:(?:\+|00)?86[\s-]?|0)?(?P<mobile>1[3-9]\d(?:[\s-]?\d){8})(?!\d)"
    # A landline with its area code: 010-62345678, 0371 6123456, (0371)6123456, 037161234567.
    rf"|(?<!\d)(?:\(\s*(?P<area_p>{AREA})\s*\)\s*-?|(?P<area>{AREA})[\s-]?)(?P<local>[2-9]\d{{2,3}}[\s-]?\d{{4}})(?!\d)"
    r")"
)
# A unit and room: 2单元301, 2单元301室, 1202室, 3-2-301 (not 1单元3楼, not 120户).
ROOM_IN_TEXT = re.compile(
    r"(?=\d)(?:\d+\s*单元\s*\d{3,4}(?![\d楼层])\s*[室号]?|(?<!\d)\d{3,5}\s*室|(?<![\d-])\d{1,3}-\d{1,2}-\d{3,4}(?![\d-]))"
)
NOT_DIGIT = re.compile(r"\D")


def mask_id_number(number: str) -> str:
    """110101199003071234 → 110***********1234: the birth date goes."""
    chars = NOT_DIGIT.sub("", number[:-1]) + number[-1].upper()
    return chars[:3] + "*" * (len(chars) - 7) + chars[-4:]


def _masked_number(found: re.Match[str]) -> str:
    if found["id"]:
        return mask_id_number(found["id"])
    if found["mobile"]:
        return mask_phone(NOT_DIGIT.sub("", found["mobile"]))
    # A landline as the contact field shows one (037****3456), so the two can be compared.
    return mask_phone((found["area_p"] or found["area"]) + NOT_DIGIT.sub("", found["local"]))


def mask_text(text: str | None, ticket: Ticket | None = None) -> str:
    """Free text with mobile and landline numbers, ID numbers and rooms masked, and, given
    the ticket, its requester's name, room and phone as typed (the Open311 rule too).

    The one rule for every place staff (or the public) read a resident's words without
    a logged reveal.
    """
    text = text or ""
    ascii_text = text.translate(FULL_WIDTH) if ANY_FULL_WIDTH.search(text) else text
    pieces: list[str] = []
    start = 0
    for found in NUMBER_IN_TEXT.finditer(ascii_text):
        pieces += [text[start:found.start()], _masked_number(found)]
        start = found.end()
    text = "".join(pieces) + text[start:] if pieces else text
    text = ROOM_IN_TEXT.sub("***", text)
    if ticket is None:
        return text
    name = (ticket.requester_name or "").strip()
    if len(name) >= 2:
        text = text.replace(name, mask_name(name))
    room = (ticket.unit_room or "").strip()
    if room:
        text = text.replace(room, "***")
    phone = (ticket.requester_phone or "").strip()
    if len(phone) >= 7:
        text = _replace_number(text, phone, mask_phone(phone))
    return text


def _replace_number(text: str, number: str, masked: str) -> str:
    """`number` replaced where it stands alone, not inside a longer run of digits."""
    at = text.find(number)
    while at >= 0:
        end = at + len(number)
        alone = (at == 0 or not text[at - 1].isdigit()) and (end == len(text) or not text[end].isdigit())
        if alone:
            text = text[:at] + masked + text[end:]
        at = text.find(number, at + (len(masked) if alone else 1))
    return text


def may_reveal(user: User, ticket: Ticket) -> bool:
    """The ticket's handler, and dispatchers, supervisors and admins in scope.

    Property staff only while their company serves the ticket's place: dispatch did not
    always check that, and a company's staff must not read the residents of a complex
    their company does not manage.
    """
    if scope.handles(user, ticket) and ticket.assignee_id == user.id:
        return user.role != Role.PROPERTY_STAFF or scope.company_serves(user.company_id, ticket)
    return user.role in (Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN) and scope.in_scope(user, ticket)


def record_reveal(user: User, ticket: Ticket, now: datetime, purpose: str, remote_addr: str = "") -> RevealLog:
    """Log that `user` saw the requester's details in full; the caller commits."""
    entry = RevealLog(
        ticket_id=ticket.id, user_id=user.id, at=now, purpose=purpose, remote_addr=remote_addr[:64]
    )
    db.session.add(entry)
    return entry
