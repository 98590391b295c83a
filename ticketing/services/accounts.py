"""Staff accounts: create, change, deactivate, reactivate, reset a password, change one's own.

One function per action, each taking the acting account (None: the operator at the
command line, who may do anything) and `now`; the caller commits.
Who manages whom is `scope.managed_people`: admins everyone, supervisors the
dispatchers and handlers in their community or street (never admins or supervisors),
and a supervisor gives no role above a dispatcher's. An account's scope follows its
role: a street or community for supervisors and dispatchers, grids for grid workers,
a company for property staff, a team for volunteers.

Deactivating signs the person out everywhere at once (`auth_version` is part of
every session, see `user_of_session`), stops their API keys (services/apikeys.py
re-reads `active`), and sends their open tickets back to the router with the reason
on each ticket's timeline, all in the caller's one transaction.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, bindparam, func, or_, select

from ticketing.extensions import db
from ticketing.labels import locale_of
from ticketing.models import (
    Community,
    Grid,
    PropertyCompany,
    Role,
    Status,
    Street,
    Team,
    Ticket,
    User,
)
from ticketing.services import audit, passwords, scope
from ticketing.services.errors import InvalidInput, NotAllowed, ValidationFailed
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.sqlparts import by_key
from ticketing.services.workdays import WorkCalendar

ALL_ROLES = tuple(Role)
# What a supervisor may make of an account: nothing above a dispatcher.
SUPERVISOR_GIVES = (Role.DISPATCHER, Role.GRID_WORKER, Role.PROPERTY_STAFF, Role.VOLUNTEER)
HELD_STATUSES = (Status.DISPATCHED, Status.ACCEPTED, Status.ON_HOLD)
USERNAME = re.compile(r"[\w.@-]{2,64}")
PHONE = re.compile(r"\+?[\d -]{5,31}")
MAX_NAME = 64
MAX_REASON = 500


@dataclass(frozen=True)
class AccountData:
    """What an admin page or the CLI sets on an account besides its username."""

    display_name: str
    role: str
    phone: str = ""
    street_id: int | None = None
    community_id: int | None = None
    grid_ids: tuple[int, ...] = field(default_factory=tuple)
    company_id: int | None = None
    team_id: int | None = None


# Built once: read for every signed-in request, where Session.get builds its SELECT anew.
SESSION_USER = select(User).where(User.id == bindparam("user_id"))


def user_of_session(session_id: str) -> User | None:
    """The account a session or remember-me cookie names (`User.get_id`), if it still counts.

    Not when the account is inactive, nor when its session version moved on since
    (deactivated and reactivated, password reset or changed). A bare id is a session
    from before versions existed: it counts until the first such change.
    """
    user_id, _dot, version = session_id.partition(".")
    if not user_id.isdigit() or (version and not version.isdigit()):
        return None
    user = by_key(User, int(user_id), SESSION_USER, {"user_id": int(user_id)})
    if user is None or not user.active or int(version or 0) != (user.auth_version or 0):
        return None
    return user


def roles_given_by(actor: User | None) -> tuple[str, ...]:
    """The roles `actor` may give an account."""
    if actor is None or actor.role == Role.ADMIN:
        return ALL_ROLES
    if actor.role != Role.SUPERVISOR:
        return ()
    if actor.community_id is not None:  # property companies are managed street-wide
        return tuple(role for role in SUPERVISOR_GIVES if role != Role.PROPERTY_STAFF)
    return SUPERVISOR_GIVES


def manages_accounts(actor: User) -> bool:
    """True for the roles that have the accounts pages."""
    return actor.role in (Role.ADMIN, Role.SUPERVISOR)


def managed_person(actor: User, person_id: int) -> User | None:
    """The account `person_id` if `actor` manages it, else None (shown as "not found")."""
    return db.session.scalar(select(User).where(User.id == person_id, scope.managed_people(actor)))


def search(actor: User, text: str = "", status: str = "active") -> Select[tuple[User]]:
    """The accounts `actor` manages matching `text` (username, name or phone), by role and name.

    `status` is "active", "inactive" or "all".
    """
    query = select(User).where(scope.managed_people(actor))
    if status in ("active", "inactive"):
        query = query.where(User.active.is_(status == "active"))
    words = text.split()
    for word in words[:5]:
        pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(User.username.ilike(pattern, escape="\\"),
                                User.display_name.ilike(pattern, escape="\\"),
                                User.phone.ilike(pattern, escape="\\")))
    return query.order_by(User.role, User.display_name, User.id)


# --- create and change --------------------------------------------------------


def create_account(actor: User | None, username: str, data: AccountData, now: datetime,
                   password: str | None = None, password_hash: str | None = None) -> tuple[User, str | None]:
    """Create an account; returns it and its one-time password (None when `password` was given).

    Without `password` the account gets a one-time password to be changed at first
    sign-in; `password_hash` (the demo's published password, hashed once for all its
    accounts: hashing is slow by design) is kept as it is. Raises ValidationFailed (by
    field; status 403 when the account would be outside what `actor` manages). The
    caller commits.
    """
    username = (username or "").strip()
    errors: dict[str, Any] = {}
    if not USERNAME.fullmatch(username):
        errors["username"] = _l("Use 2–64 letters, digits or . _ - @ for the username.")
    elif db.session.scalar(select(User.id).where(func.lower(User.username) == username.lower())):
        errors["username"] = _l("That username is taken.")
    if password is not None:
        trouble = passwords.problem(password, username, data.phone)
        if trouble is not None:
            errors["password"] = trouble
    user = User(username=username, password_hash="", display_name="", role=Role.VOLUNTEER,
                created_at=now, auth_version=0)
    _apply(actor, user, data, errors)
    one_time = passwords.one_time_password() if password is None and password_hash is None else None
    if password_hash is not None:
        user.password_hash = password_hash
    else:
        user.set_password(password if password is not None else str(one_time))
    user.must_change_password = one_time is not None
    user.password_changed_at = now
    db.session.add(user)
    _check_managed(actor, user)
    _record(actor, "user.create", user, None, {**snapshot(user), "password": "set"}, now)
    return user, one_time


def update_account(actor: User | None, person: User, data: AccountData, now: datetime) -> User:
    """Change a person's name, phone, role and scope; raises ValidationFailed. The caller commits.

    No actor means the operator at the command line (a staff import).
    """
    errors: dict[str, Any] = {}
    if actor is not None and person.id == actor.id and data.role != person.role:
        errors["role"] = _l("You cannot change your own role.")
    before = snapshot(person)
    _apply(actor, person, data, errors)
    _check_managed(actor, person)
    _record(actor, "user.update", person, before, snapshot(person), now)
    return person


def _apply(actor: User | None, user: User, data: AccountData, errors: dict[str, Any]) -> None:
    """Check `data` and write it onto `user`; raises ValidationFailed with `errors` and its own."""
    name = " ".join((data.display_name or "").split())
    if not name or len(name) > MAX_NAME:
        errors["display_name"] = _l("Give a name of 1–%(n)d characters.", n=MAX_NAME)
    phone = (data.phone or "").strip()
    if phone and not PHONE.fullmatch(phone):
        errors["phone"] = _l("Enter a phone number of digits, e.g. 13812345678.")
    if not data.role:
        errors["role"] = _l("Choose a role from the list.")
    elif data.role not in roles_given_by(actor):
        errors["role"] = _l("You may not give that role.")
    scope_of = _scope_of(data, errors)
    if errors:
        raise ValidationFailed(errors)
    user.display_name, user.phone, user.role = name, phone or None, data.role
    user.street, user.community, user.grids, user.company, user.team = scope_of
    if user.role == Role.PROPERTY_STAFF and user.street is None:
        # A company has no street of its own; the street's supervisor manages its staff.
        user.street = db.session.get(Street, actor.street_id) if actor and actor.street_id else None


def _scope_of(data: AccountData, errors: dict[str, Any]) -> tuple[Any, Any, list[Grid], Any, Any]:
    """(street, community, grids, company, team) for the role; marks what is missing."""
    role = data.role
    if role in (Role.SUPERVISOR, Role.DISPATCHER):
        community = db.session.get(Community, data.community_id) if data.community_id else None
        street = community.street if community is not None else (
            db.session.get(Street, data.street_id) if data.street_id else None)
        if street is None:
            errors["scope"] = _l("Choose the street or community this person works for.")
        return street, community, [], None, None
    if role == Role.GRID_WORKER:
        grids = list(db.session.scalars(select(Grid).where(Grid.id.in_(data.grid_ids)).order_by(Grid.code)))
        if not grids or len(grids) != len(set(data.grid_ids)):
            errors["grids"] = _l("Choose the grid or grids this person looks after.")
            return None, None, [], None, None
        return grids[0].community.street, None, grids, None, None
    if role == Role.PROPERTY_STAFF:
        company = db.session.get(PropertyCompany, data.company_id) if data.company_id else None
        if company is None:
            errors["company_id"] = _l("Choose the property company this person works for.")
        street = db.session.get(Street, data.street_id) if data.street_id else None
        return street, None, [], company, None
    if role == Role.VOLUNTEER:
        team = db.session.get(Team, data.team_id) if data.team_id else None
        if team is None:
            errors["team_id"] = _l("Choose the team this person belongs to.")
            return None, None, [], None, None
        return team.community.street, None, [], None, team
    return None, None, [], None, None  # admins see everything


def _check_managed(actor: User | None, person: User) -> None:
    """Refuse (403, nothing kept) an account that would end up outside what `actor` manages."""
    db.session.flush()
    if actor is not None and managed_person(actor, person.id) is None:
        db.session.rollback()
        raise ValidationFailed({"scope": _l("You may manage only the accounts of people in your "
                                            "community or street.")}, status=403)


# --- deactivate, reactivate ---------------------------------------------------


def deactivate(actor: User, person: User, reason: str, now: datetime,
               calendar: WorkCalendar) -> list[Ticket]:
    """Deactivate an account: signed out everywhere, API keys refused, open tickets re-routed.

    Returns the tickets sent back to the router, each with `reason` on its timeline.
    Raises InvalidInput / NotAllowed; the caller commits.
    """
    reason = " ".join((reason or "").split())
    if person.id == actor.id:
        raise NotAllowed(_l("You cannot deactivate your own account."))
    if not person.active:
        raise InvalidInput(_l("This account is already deactivated."), field="reason")
    if not reason or len(reason) > MAX_REASON:
        raise InvalidInput(_l("Give a reason of 1–%(n)d characters.", n=MAX_REASON), field="reason")
    before = snapshot(person)
    person.active = False
    person.deactivated_at = now
    person.auth_version = (person.auth_version or 0) + 1
    held = list(db.session.scalars(
        select(Ticket).where(Ticket.assignee_id == person.id, Ticket.status.in_(HELD_STATUSES))
        .order_by(Ticket.id)
    ))
    with force_locale(locale_of(current_app.config["BABEL_DEFAULT_LOCALE"])):  # stored, not shown per user
        note = _("The account of %(name)s was deactivated: %(reason)s", name=person.display_name, reason=reason)
    for ticket in held:
        perform(ticket, "release", Actor.system(), now, calendar, note=note, by=actor.id)
    _record(actor, "user.deactivate", person, before,
            {**snapshot(person), "reason": reason, "tickets_rerouted": [t.number for t in held]}, now)
    return held


def reactivate(actor: User, person: User, now: datetime) -> User:
    """Let a deactivated account sign in again (with the password it had); the caller commits."""
    if person.active:
        raise InvalidInput(_l("This account is active."))
    before = snapshot(person)
    person.active = True
    person.deactivated_at = None
    _record(actor, "user.reactivate", person, before, snapshot(person), now)
    return person


# --- passwords ----------------------------------------------------------------


def reset_password(actor: User | None, person: User, now: datetime) -> str:
    """Give `person` a new one-time password, to be changed at their next sign-in; returns it.

    Signs them out everywhere. The caller commits and shows the password once.
    """
    if actor is not None and person.id == actor.id:
        raise NotAllowed(_l("Change your own password on the password page."))
    one_time = passwords.one_time_password()
    _set_password(person, one_time, now)
    person.must_change_password = True
    _record(actor, "user.reset_password", person, {"password": "old"}, {"password": "one-time"}, now)
    return one_time


def change_own_password(user: User, current: str, new: str, now: datetime) -> None:
    """A person chooses their own password; raises ValidationFailed. The caller commits.

    Other sessions of theirs end (the caller signs this one in again).
    """
    errors: dict[str, Any] = {}
    if not user.check_password(current or ""):
        errors["current"] = _l("That is not your current password.")
    trouble = passwords.problem(new or "", user.username, user.phone)
    if trouble is not None:
        errors["new"] = trouble
    elif new == current:
        errors["new"] = _l("Choose a password different from the current one.")
    if errors:
        raise ValidationFailed(errors)
    _set_password(user, new, now)
    user.must_change_password = False


def snapshot(user: User) -> dict[str, Any]:
    """An account as the audit log keeps it: its fields and its grids' codes."""
    return {**audit.snapshot(user, audit.USER_FIELDS), "grids": [grid.code for grid in user.grids]}


def _record(actor: User | None, action: str, person: User, before: dict[str, Any] | None,
            after: dict[str, Any] | None, now: datetime) -> None:
    """Put an account change on the audit log; no actor means the shell."""
    via, label = ("web", None) if actor is not None else ("cli", audit.shell_user())
    audit.record(actor, action, "user", person.id, f"{person.display_name} ({person.username})",
                 before, after, now, via=via, actor_label=label)


def _set_password(user: User, password: str, now: datetime) -> None:
    user.set_password(password)
    user.password_changed_at = now
    user.auth_version = (user.auth_version or 0) + 1


def open_tickets_held(person_ids: list[int]) -> dict[int, int]:
    """How many open tickets each person holds (what deactivating them would re-route)."""
    counts: dict[int, int] = dict.fromkeys(person_ids, 0)
    if person_ids:
        rows = db.session.execute(
            select(Ticket.assignee_id, func.count()).where(
                Ticket.assignee_id.in_(person_ids), Ticket.status.in_(HELD_STATUSES))
            .group_by(Ticket.assignee_id))
        counts.update({assignee: count for assignee, count in rows})
    return counts

