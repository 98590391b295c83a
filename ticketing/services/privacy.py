"""Personal data of requesters: masking, who may see it whole, and the reveal log."""
from __future__ import annotations

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
