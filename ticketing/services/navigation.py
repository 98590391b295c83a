"""The counts on a staff page's navigation bar, read in one statement.

Every staff page shows the unread messages of the user's inbox and, to those who call
residents back (services/callbacks.py `CALLER_ROLES`), the open 回访 tasks they work
(templates/base.html). Each is counted only up to `up_to`, so that a page's cost does
not grow with a backlog nobody has read (the badge then says 99+), and both come from
one SELECT of two scalar subqueries: one round trip per page, not one per badge.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ScalarSelect, Select, func, literal, select

from ticketing.extensions import db
from ticketing.models import Notification, User
from ticketing.services import callbacks

INBOX = "inbox"  # the channel of the messages a staff member reads in the inbox


@dataclass(frozen=True)
class Badges:
    """What the navigation shows: unread messages, and residents to call back (0 for
    someone who calls nobody back)."""

    unread: int
    to_call: int


def own_messages(user_id: int) -> Any:
    """The WHERE clause of one user's inbox."""
    return (Notification.user_id == user_id) & (Notification.channel == INBOX)


def unread_messages(user_id: int) -> Select[Any]:
    """The ids of the user's unread messages (on the (user_id, read_at) index)."""
    return select(Notification.id).where(own_messages(user_id), Notification.read_at.is_(None))


def counted(ids: Select[Any], up_to: int | None = None) -> ScalarSelect[int]:
    """COUNT of a query's rows, stopping at `up_to`, as a scalar subquery."""
    return select(func.count()).select_from((ids.limit(up_to) if up_to is not None else ids).subquery()) \
        .scalar_subquery()


def badges(user: User, up_to: int) -> Badges:
    """The user's navigation counts, each up to `up_to`, in one statement."""
    to_call = (counted(callbacks.open_tasks(user), up_to) if user.role in callbacks.CALLER_ROLES
               else literal(0))
    unread, calls = db.session.execute(select(counted(unread_messages(user.id), up_to), to_call)).one()
    return Badges(int(unread or 0), int(calls or 0))
