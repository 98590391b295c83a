"""The work behind the staff API's ticket routes: filing, listing, and transition inputs.

The rules themselves live in the services (intake, lifecycle, scope); this turns
the API's checked input into their arguments, the way the web forms do.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, Select, and_, false, not_, or_, select, true
from sqlalchemy.orm import joinedload, selectinload

from ticketing.api.contract import (
    ACTION_PARAMS,
    CHANNEL_ROLES,
    NEW_TICKET,
    PAGE_SIZE,
    default_channel,
)
from ticketing.api.errors import VERSION_MISMATCH, ApiError, validation_failed
from ticketing.api.inputs import FieldError
from ticketing.extensions import db
from ticketing.forms import MAX_ID, PICK_PLACE
from ticketing.models import (
    CallbackState,
    CallbackTask,
    Category,
    Channel,
    Community,
    Grid,
    Role,
    Status,
    Ticket,
    User,
)
from ticketing.services import callbacks, intake, placing, refcache, scope
from ticketing.services.errors import InvalidInput
from ticketing.services.handlers import parse_handler
from ticketing.services.intake import IntakeRequest
from ticketing.services.patrol import OwnGrid, own_grids, place_report

# intake's field names → the API's.
INTAKE_FIELDS = {"category_id": "category"}
PLACE_FIELDS = ("building_id", "complex_id", "community_id", "grid_id")
MAX_IF_MATCH = 100
# If-Match: `*`, or versions as entity tags ("3", W/"3") or bare (3), separated by commas.
_TAG = r'(?:W/)?(?:"[0-9]{1,12}"|[0-9]{1,12})'
IF_MATCH_PATTERN = rf"^[ \t]*(?:\*|{_TAG}(?:[ \t]*,[ \t]*{_TAG})*)[ \t]*$"
IF_MATCH = re.compile(IF_MATCH_PATTERN)
TAG_VERSION = re.compile(r"[0-9]+")


# --- Filing -----------------------------------------------------------------------


def community_filter(user: User) -> ColumnElement[bool]:
    """The communities `user` may file in and is offered: their own community, else
    their street, plus the communities of their grids; admins anywhere."""
    if user.role == Role.ADMIN:
        return true()
    if user.role in (Role.DISPATCHER, Role.SUPERVISOR) and user.community_id is not None:
        return Community.id == user.community_id
    street = Community.street_id == user.street_id if user.street_id is not None else false()
    return or_(street, Community.id.in_([grid.community_id for grid in user.grids]))


def may_file_in(user: User, community_id: int, street_id: int, own: Callable[[], list[OwnGrid]]) -> bool:
    """`community_filter` for one community, by its id and its street's; `own` gives the
    user's grids (`Filing.own_grids`), read only when the street does not decide."""
    if user.role == Role.ADMIN:
        return True
    if user.role in (Role.DISPATCHER, Role.SUPERVISOR) and user.community_id is not None:
        return community_id == user.community_id
    return (user.street_id is not None and street_id == user.street_id) or (
        community_id in {grid.community_id for grid in own()}
    )


def check_channel(user: User, channel: str | None) -> str:
    """The channel to file on (the role's default when none is named); 403 when not this role's."""
    channel = channel or default_channel(user)
    if user.role not in CHANNEL_ROLES[channel]:
        raise ApiError(403, _l("You may not file tickets on this channel."))
    return channel


def idempotency_key(body_key: str | None, header: str | None) -> str | None:
    """The client's idempotency key: the body's external_id or the Idempotency-Key header."""
    if header is not None:
        try:
            header = NEW_TICKET.fields["external_id"].from_json(header)
        except FieldError as exc:
            raise validation_failed({"Idempotency-Key": exc.message}) from None
        if body_key is not None and body_key != header:
            raise validation_failed({"external_id": _l("Differs from the Idempotency-Key header.")})
    return body_key or header


def category_by_ref(ref: int | str | None) -> Category | None:
    """A category by id or code, with its parent and their tiers, so that intake finds
    everything it reads of the category loaded (cached: services/refcache.py)."""
    return None if ref is None else refcache.category(ref)


@dataclass
class Filing:
    """An intake request, and the rows looked up while preparing it.

    The session holds rows only weakly; keeping them here until intake has run lets
    intake find them in the session instead of asking the database again.
    """

    request: IntakeRequest
    user: User
    rows: list[object] = field(default_factory=list)
    own: list[OwnGrid] | None = None

    def own_grids(self) -> list[OwnGrid]:
        """The user's grids (services/patrol.py `own_grids`), read at most once."""
        if self.own is None:
            self.own = own_grids(self.user)
        return self.own


def prepare_filing(values: dict[str, Any], user: User, channel: str, key: str | None) -> Filing:
    """The intake request a checked body describes, with the defaults of its channel."""
    category = category_by_ref(values.get("category"))
    req = IntakeRequest(
        channel=channel,
        description=values.get("description", ""),
        phone=values.get("phone", ""),
        no_phone=bool(values.get("no_phone")),
        name=values.get("name", ""),
        category_id=category.id if category is not None else None,
        address_text=values.get("address_text", ""),
        unit_room=values.get("unit_room", ""),
        lat=values.get("lat"),
        lon=values.get("lon"),
        # Namespaced by account (after the last @), so another account's key can neither
        # collide with nor reveal this one; web forms' submission ids hold no @.
        external_id=f"{key}@{user.id}" if key else None,
        building_id=values.get("building_id"),
        complex_id=values.get("complex_id"),
        community_id=values.get("community_id"),
        grid_id=values.get("grid_id"),
    )
    filing = Filing(req, user, [category])
    if channel == Channel.PATROL.value:
        patrol_defaults(filing)
    if req.grid_id and not (req.community_id or req.complex_id or req.building_id):
        above = placing.grid_place(req.grid_id)  # open grids, cached
        if above is None:  # a deactivated grid is still named by its community: intake says it cannot be chosen
            grid = db.session.get(Grid, req.grid_id)
            req.community_id = grid.community_id if grid is not None else None
        else:
            req.community_id = above.community_id
    return filing


def patrol_defaults(filing: Filing) -> None:
    """As on the patrol page: the worker's own phone and name; placed by location, else in
    the worker's own grid (services/patrol.py `place_report`)."""
    req, worker = filing.request, filing.user
    if not req.phone:
        req.phone = intake.clean_phone(worker.phone) or ""
    req.name = req.name or worker.display_name
    if any(getattr(req, name) for name in PLACE_FIELDS):
        return
    # Outside every grid's boundary, or without a location: the worker's own grid.
    own = filing.own_grids()
    grid = place_report(own, worker.street_id, req.lat, req.lon)
    if grid is not None:
        req.grid_id, req.community_id = grid.id, grid.community_id
    elif own:
        req.community_id = own[0].community_id


def check_place(filing: Filing) -> None:
    """422 when the place given lies outside the communities the filer may file in.

    Unknown ids are left to intake, which reports them.
    """
    req = filing.request
    place: placing.Placement | None = None
    name = ""
    if req.building_id:
        place, name = placing.building_place(req.building_id), "building_id"
    elif req.complex_id:
        place, name = placing.complex_place(req.complex_id), "complex_id"
    elif req.community_id:
        community = next((c for c in placing.communities() if c.id == req.community_id), None)
        place = placing.Placement(community.street_id, community.id) if community is not None else None
        name = "community_id"
    if place is not None and not may_file_in(filing.user, place.community_id, place.street_id, filing.own_grids):
        raise validation_failed({name: PICK_PLACE})


# --- Listing ----------------------------------------------------------------------


def overdue_clause(now: datetime) -> ColumnElement[bool]:
    """Past the deadline that applies now (`Ticket.is_overdue`); never NULL, so it can be negated."""
    return or_(
        and_(Ticket.status == Status.DISPATCHED, Ticket.accept_due_at.is_not(None), Ticket.accept_due_at < now),
        and_(Ticket.status == Status.ACCEPTED, Ticket.resolve_due_at.is_not(None), Ticket.resolve_due_at < now),
    )


def category_ids(ref: int | str) -> list[int]:
    """The category and, for a group, its categories; 422 when there is none."""
    category = category_by_ref(ref)
    if category is None:
        raise validation_failed({"category": _l("No such category.")})
    return [category.id, *(child.id for child in category.children)]


def number_prefix(q: str) -> ColumnElement[bool]:
    """Numbers that start with `q`: LIKE says exactly which, and the range beside it lets the
    unique index on number find them (PostgreSQL uses no index for LIKE outside the C locale).

    `q` is letters, digits and dashes; a trailing dash is left out of the range, since every
    number has its dash in the same place.
    """
    stem = q.rstrip("-") or q
    upper = stem[:-1] + chr(ord(stem[-1]) + 1)
    return and_(Ticket.number.startswith(q, autoescape=True), Ticket.number >= stem, Ticket.number < upper)


def list_query(user: User, params: dict[str, Any], now: datetime) -> Select[tuple[Ticket]]:
    """Tickets in `user`'s scope matching the filters, newest first, one past the page."""
    stmt = select(Ticket).where(scope.ticket_scope(user))
    if params.get("status"):
        stmt = stmt.where(Ticket.status.in_(params["status"]))
    if "category" in params:
        stmt = stmt.where(Ticket.category_id.in_(category_ids(params["category"])))
    for name, column in (("community_id", Ticket.community_id), ("grid_id", Ticket.grid_id)):
        if name in params:
            stmt = stmt.where(column == params[name])
    if params.get("assignee") == "me":
        stmt = stmt.where(Ticket.assignee_id == user.id)
    if "overdue" in params:
        clause = overdue_clause(now)
        stmt = stmt.where(clause if params["overdue"] else not_(clause))
    if "created_after" in params:
        stmt = stmt.where(Ticket.created_at >= params["created_after"])
    if "created_before" in params:
        stmt = stmt.where(Ticket.created_at < params["created_before"])
    if "q" in params:
        stmt = stmt.where(number_prefix(params["q"]))
    # Every id is at most MAX_ID; binding a larger number would fail on PostgreSQL's integer.
    if "cursor" in params and int(params["cursor"]) <= MAX_ID:
        stmt = stmt.where(Ticket.id < int(params["cursor"]))
    limit = params.get("limit", PAGE_SIZE)
    return (
        stmt.order_by(Ticket.id.desc())
        .limit(limit + 1)
        .options(joinedload(Ticket.category), selectinload(Ticket.assignee),
                 selectinload(Ticket.team), selectinload(Ticket.company))
    )


# --- Transitions ------------------------------------------------------------------


def check_version(ticket: Ticket, version: int | None, if_match: str | None) -> None:
    """409 when the client read an older version (body `version` or the If-Match header)."""
    expected: list[set[int]] = []
    if version is not None:
        expected.append({version})
    if if_match is not None and len(if_match) > MAX_IF_MATCH:
        raise validation_failed({"If-Match": _l("At most %(n)d characters.", n=MAX_IF_MATCH)})
    if if_match is not None and not IF_MATCH.fullmatch(if_match):
        raise validation_failed({"If-Match": _l("Not in the expected format.")})
    if if_match is not None and if_match.strip(" \t") != "*":
        # A well-formed tag that is no version of the ticket (0, 10¹¹) simply does not match.
        expected.append({int(tag) for tag in TAG_VERSION.findall(if_match)})
    if any(ticket.version not in tags for tags in expected):
        raise ApiError(409, _l("The ticket changed since you read it; it is now at version %(version)d. "
                               "Reload and try again.", version=ticket.version), code=VERSION_MISMATCH)


def handler_params(value: str | None) -> dict[str, Any]:
    """`user:12` / `team:3` as dispatch parameters (the dispatch form's format)."""
    _kind, _, raw_id = (value or "").partition(":")
    if raw_id.isdigit() and int(raw_id) > MAX_ID:
        value = None  # no such row; parse_handler says so
    return parse_handler(value)


def transition_inputs(name: str, values: dict[str, Any], user: User) -> tuple[bool | None, dict[str, Any]]:
    """The visibility and parameters of `perform()` for action `name`; 422 for inputs it does not use."""
    unused = {f for f in set(ACTION_PARAMS.values()) if f in values and ACTION_PARAMS.get(name) != f}
    if unused:
        raise validation_failed({f: _l("Not used by this action.") for f in sorted(unused)})
    if name in ("dispatch", "reassign", "transfer"):
        return None, handler_params(values.get("handler"))
    if name == "hold":
        return None, {"until": values.get("until")}
    if name == "merge":
        return None, {"target": scope.merge_target(user, values.get("target"))}
    if name == "extend":
        return None, {"deadline": values.get("deadline")}
    if name == "note":
        return bool(values.get("public", False)), {}
    if name == "recategorize":
        category = category_by_ref(values.get("category"))
        if category is None:
            raise InvalidInput(_l("Choose a category from the list."), field="category")
        return None, {"category": category}
    return None, {}


# --- 回访 (callbacks) -----------------------------------------------------------------

# The service's names of an outcome's parts → the API's.
OUTCOME_FIELDS = {"redo": "redo_to", "handler": "redo_to"}


def callback_query(user: User, params: dict[str, Any], now: datetime) -> Select[tuple[CallbackTask]]:
    """The tasks `user` works matching the filters, newest first, one past the page."""
    stmt = (select(CallbackTask).join(Ticket, CallbackTask.ticket_id == Ticket.id)
            .where(callbacks.task_scope(user)))
    if params.get("state"):
        stmt = stmt.where(CallbackTask.state.in_(params["state"]))
    if "reason" in params:
        stmt = stmt.where(CallbackTask.reason == params["reason"])
    if "overdue" in params:
        late = and_(CallbackTask.state == CallbackState.OPEN, CallbackTask.due_at < now)
        stmt = stmt.where(late if params["overdue"] else not_(late))
    if "cursor" in params and int(params["cursor"]) <= MAX_ID:
        stmt = stmt.where(CallbackTask.id < int(params["cursor"]))
    limit = params.get("limit", PAGE_SIZE)
    return stmt.order_by(CallbackTask.id.desc()).limit(limit + 1).options(*callbacks.with_ticket())


def outcome_from(values: dict[str, Any]) -> callbacks.Outcome:
    """The outcome a checked body describes; a handler that does not exist is 422 on redo_to."""
    redo = None
    if values.get("redo_to") is not None:
        try:
            redo = handler_params(values["redo_to"])
        except InvalidInput as exc:
            raise validation_failed({"redo_to": exc.message}) from None
    return callbacks.Outcome(reached=values["reached"], solved=values.get("solved"), rating=values.get("rating"),
                             note=values.get("note", ""), redo=redo)
