"""The counts on a staff page's navigation bar, read in one statement.

Every staff page shows the unread messages of the user's inbox and, to those who call
residents back (services/callbacks.py `CALLER_ROLES`), the open 回访 tasks they work
(templates/base.html). Each is counted only up to `up_to`, so that a page's cost does
not grow with a backlog nobody has read (the badge then says 99+), and both come from
one SELECT of two scalar subqueries: one round trip per page, not one per badge.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Integer, ScalarSelect, Select, bindparam, func, literal, select

from ticketing.extensions import db
from ticketing.models import Notification, User
from ticketing.services import callbacks, scope

INBOX = "inbox"  # the channel of the messages a staff member reads in the inbox


@dataclass(frozen=True)
class Badges:
    """What the navigation shows: unread messages, and residents to call back (0 for
    someone who calls nobody back)."""

    unread: int
    to_call: int


def own_messages(user_id: Any) -> Any:
    """The WHERE clause of one user's inbox."""
    return (Notification.user_id == user_id) & (Notification.channel == INBOX)


def unread_messages(user_id: Any) -> Select[Any]:
    """The ids of the user's unread messages (on the (user_id, read_at) index)."""
    return select(Notification.id).where(own_messages(user_id), Notification.read_at.is_(None))


def counted(ids: Select[Any], up_to: Any = None) -> ScalarSelect[int]:
    """COUNT of a query's rows, stopping at `up_to`, as a scalar subquery."""
    return select(func.count()).select_from((ids.limit(up_to) if up_to is not None else ids).subquery()) \
        .scalar_subquery()


def badges(user: User, up_to: int) -> Badges:
    """The user's navigation counts, each up to `up_to`, in one statement."""
    kind, place = scope.coordinator_scope(user) if user.role in callbacks.CALLER_ROLES else (None, None)
    unread, calls = db.session.execute(_badges_statement(kind),
                                       {"user_id": user.id, "up_to": up_to, "place": place}).one()
    return Badges(int(unread or 0), int(calls or 0))


@cache
def _badges_statement(kind: str | None) -> Select[Any]:
    """`badges`' statement for a caller whose scope is of `kind` (scope.coordinator_scope),
    or for someone who calls nobody back (None), with the user, the place and the limit as
    parameters: built once per process, so that a page pays no building of it and no
    walk over it for SQLAlchemy's cache key."""
    up_to = bindparam("up_to", type_=Integer)
    to_call = counted(callbacks.open_tasks(kind, bindparam("place", type_=Integer)), up_to) if kind else literal(0)
    return select(counted(unread_messages(bindparam("user_id", type_=Integer)), up_to), to_call)
