"""Helpers shared by the blueprints: the clock, the calendar, scoped lookups, roles."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

from flask import abort, current_app, g
from flask_login import current_user, login_required
from sqlalchemy import select

from ticketing.extensions import db
from ticketing.models import Ticket, User, utcnow
from ticketing.services import navigation, scope
from ticketing.services.lifecycle import Actor
from ticketing.services.photos import PhotoStore
from ticketing.services.workdays import WorkCalendar, cached_calendar

F = TypeVar("F", bound=Callable[..., Any])


def now() -> datetime:
    """The current time in UTC; the single clock of the web layer."""
    return utcnow()


def local_tz() -> ZoneInfo:
    """The time zone pages are shown in."""
    return ZoneInfo(current_app.config["TIMEZONE"])


# The navigation's badges (unread messages, residents to call back) count up to here and
# show "99+": a page's cost must not grow with a backlog nobody has read.
NAV_COUNT_UP_TO = 100


def beyond_nav_count(count: int) -> bool:
    """`{% if n is beyond_nav_count %}`: a badge count the navigation stopped at."""
    return count >= NAV_COUNT_UP_TO


def nav_count(count: int) -> str:
    """`{{ n|nav_count }}`: a badge's count as shown, "99+" where counting stopped."""
    return f"{NAV_COUNT_UP_TO - 1}+" if beyond_nav_count(count) else str(count)


def nav_badges() -> navigation.Badges:
    """The signed-in user's navigation counts, read once per request and only when a
    page shows them: unread messages and residents to call back, in one statement."""
    if "nav_badges" not in g:
        g.nav_badges = (navigation.badges(current_user, NAV_COUNT_UP_TO) if current_user.is_authenticated
                        else navigation.Badges(0, 0))
    return cast(navigation.Badges, g.nav_badges)


def inbox_unread() -> int:
    """`{{ inbox_unread() }}`: the navigation's count of unread messages."""
    return nav_badges().unread


def callbacks_open() -> int:
    """`{{ callbacks_open() }}`: the navigation's count of residents to call back."""
    return nav_badges().to_call


def calendar() -> WorkCalendar:
    """The working-day calendar, with the admin's overrides (kept per process)."""
    return cached_calendar(local_tz())


def photo_store() -> PhotoStore:
    """Where photo files live."""
    return PhotoStore(current_app.config["UPLOAD_FOLDER"])


def staff_user() -> User:
    """The logged-in staff user (views using it are behind login)."""
    return current_user._get_current_object()


def staff_actor() -> Actor:
    """The logged-in user as an actor of the state machine."""
    return Actor.staff(staff_user())


def roles_required(*roles: str) -> Callable[[F], F]:
    """Allow a view only to logged-in users with one of the roles; others get 404."""

    def decorator(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.has_role(*roles):
                abort(404)
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorator


def ticket_in_scope_or_404(number: str, user: User | None = None) -> Ticket:
    """The ticket with this number if the user may see it; 404 otherwise."""
    user = user or staff_user()
    ticket = db.session.scalar(
        select(Ticket).where(Ticket.number == number, scope.ticket_scope(user))
    )
    if ticket is None:
        abort(404)
    return ticket
