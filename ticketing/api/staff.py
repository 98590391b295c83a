"""The staff JSON API under /api/v1: a staff app acts as one staff account, by its key.

`Authorization: Bearer <key>` with a staff key (`flask api create-token`); the key
acts exactly as its account: the same scope (out of scope is 404) and the same
who-may rules of the state machine. Every answer is JSON, errors included. See
docs/staff-api.md; the OpenAPI document is served at /api/v1/openapi.json.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, request, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, select
from sqlalchemy.orm import joinedload, selectinload
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.wrappers import Response

from ticketing.api import openapi, operations, serialize
from ticketing.api.contract import (
    CALLBACK_LIST,
    CALLBACK_OUTCOME,
    HOTSPOT_LIST,
    HOTSPOT_WINDOWS,
    NEW_TICKET,
    PAGE_SIZE,
    TICKET_LIST,
    TRANSITION,
)
from ticketing.api.errors import ApiError, from_http, from_service, json_response
from ticketing.api.inputs import NUMBER, read_json
from ticketing.extensions import csrf, db
from ticketing.forms import MAX_ID
from ticketing.models import (
    CallbackTask,
    Channel,
    Community,
    Complex,
    Grid,
    Hotspot,
    KeyKind,
    Ticket,
    TicketEvent,
    User,
)
from ticketing.services import (
    apikeys,
    callbacks,
    hotspots,
    intake,
    lifecycle,
    patrol,
    privacy,
    scope,
)
from ticketing.services.catalog import leaf_categories
from ticketing.services.errors import ServiceError
from ticketing.services.lifecycle import TRANSITIONS, Actor, perform
from ticketing.web import calendar, local_tz, now, photo_store

bp = Blueprint("staff_api", __name__)
csrf.exempt(bp)

PREFIX = "/api/v1"  # where ticketing/__init__.py mounts the blueprint
OTHER_APIS = ("/api/v1/upstream",)  # mounted beside it, with their own error shape
WWW_AUTHENTICATE = 'Bearer realm="minhu"'

# Everything the ticket page shows, loaded in two queries instead of one per relation.
DETAIL = (
    joinedload(Ticket.category), joinedload(Ticket.tier), joinedload(Ticket.community),
    joinedload(Ticket.grid), joinedload(Ticket.complex), joinedload(Ticket.building),
    joinedload(Ticket.assignee), joinedload(Ticket.team), joinedload(Ticket.company),
    joinedload(Ticket.merged_into), selectinload(Ticket.events).joinedload(TicketEvent.actor),
)


# --- Plumbing: auth, errors, headers ---------------------------------------------------


def in_this_api(path: str) -> bool:
    """True for paths under /api/v1 that belong to this blueprint's part of it."""
    inside = path == PREFIX or path.startswith(PREFIX + "/")
    return inside and not any(path == p or path.startswith(p + "/") for p in OTHER_APIS)


@bp.before_app_request
def json_routing_errors() -> Response | None:
    """An unknown path or method under /api/v1 is answered in JSON, not the HTML error page."""
    exc = request.routing_exception
    if isinstance(exc, (NotFound, MethodNotAllowed)) and in_this_api(request.path):
        return from_http(exc).response()
    return None


@bp.before_request
def authenticate() -> None:
    """Every route but the OpenAPI document needs a valid, unrevoked staff key of an active account."""
    if request.endpoint == "staff_api.openapi_document":
        return
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, headers={"WWW-Authenticate": WWW_AUTHENTICATE})
    row = apikeys.verify(KeyKind.STAFF, key.strip(), now())
    if row is None:
        raise ApiError(401, _l("This API key is not valid, or it was revoked."),
                       headers={"WWW-Authenticate": WWW_AUTHENTICATE + ', error="invalid_token"'})
    g.api_key = row


def api_user() -> User:
    """The account the request's key acts as."""
    user: User = g.api_key.user
    return user


@bp.after_request
def no_store(response: Response) -> Response:
    """Answers carry personal data and change with every action: never cached."""
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.errorhandler(ApiError)
def api_error(exc: ApiError) -> Response:
    """The API's own refusals; nothing of the request is kept."""
    db.session.rollback()
    return exc.response()


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response:
    """Werkzeug's errors (a broken upload, a 404 raised below) in the API's shape."""
    db.session.rollback()
    return from_http(exc).response()


@bp.errorhandler(Exception)
def unexpected(exc: Exception) -> Response:
    """A bug: 500 in JSON, never a traceback or an HTML page."""
    # Logged with its traceback for operators; the client sees no internals.
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    db.session.rollback()
    return ApiError(500).response()


def find_ticket(number: str, user: User, detail: bool = True) -> Ticket:
    """The ticket with this number in `user`'s scope; 404 otherwise (malformed numbers too)."""
    if not NUMBER.fullmatch(number):
        raise ApiError(404, _l("No such ticket."))
    stmt = select(Ticket).where(Ticket.number == number, scope.ticket_scope(user))
    ticket = db.session.scalar(stmt.options(*DETAIL) if detail else stmt)
    if ticket is None:
        raise ApiError(404, _l("No such ticket."))
    return ticket


def merged_numbers(ticket: Ticket, user: User) -> list[str]:
    """The numbers of the tickets merged into this one that `user` may see."""
    return list(db.session.scalars(
        select(Ticket.number).where(Ticket.merged_into_id == ticket.id, scope.ticket_scope(user))
        .order_by(Ticket.id)
    ))


def ticket_response(ticket: Ticket, user: User, revealed: bool = False) -> Response:
    """The ticket as JSON, with its version as the ETag."""
    duplicates = merged_numbers(ticket, user)
    response = json_response(serialize.ticket_detail(ticket, user, now(), duplicates, revealed))
    response.set_etag(str(ticket.version))
    return response


# --- Routes -----------------------------------------------------------------------------


@bp.get("/openapi.json", provide_automatic_options=False)
def openapi_document() -> Response:
    """The OpenAPI 3.1 description of this API (public)."""
    response = json_response(openapi.document())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/me", provide_automatic_options=False)
def me() -> Response:
    """Who the key acts as."""
    return json_response(serialize.me(api_user(), g.api_key))


@bp.get("/categories", provide_automatic_options=False)
def categories() -> Response:
    """The categories tickets are filed under, with their groups."""
    return json_response({"categories": [serialize.category(c) for c in leaf_categories()]})


@bp.get("/places", provide_automatic_options=False)
def places() -> Response:
    """The communities the account files in, with their grids, complexes and buildings."""
    communities = db.session.scalars(
        select(Community).where(operations.community_filter(api_user())).order_by(Community.code)
        .options(selectinload(Community.grids).selectinload(Grid.complexes).selectinload(Complex.buildings))
    ).all()
    return json_response(serialize.places(list(communities)))


@bp.post("/tickets", provide_automatic_options=False)
def create_ticket() -> Response:
    """File a request: 201, or 200 with the first ticket when the idempotency key was seen."""
    user = api_user()
    values = NEW_TICKET.read(read_json())
    channel = operations.check_channel(user, values.get("channel"))
    key = operations.idempotency_key(values.get("external_id"), request.headers.get("Idempotency-Key"))
    filing = operations.prepare_filing(values, user, channel, key)
    operations.check_place(filing)
    own = channel == Channel.PATROL.value  # the worker's own report: theirs, not routed
    at = now()
    try:
        ticket, created = intake.submit(
            filing.request, Actor.staff(user), at, local_tz(), photo_store(), current_app.config["MAX_PHOTO_BYTES"],
            route=not own, steps=patrol.theirs(user, at, calendar()) if own else None)  # as on the patrol page
    except ServiceError as exc:
        raise from_service(exc, operations.INTAKE_FIELDS) from None
    url = url_for("staff_api.get_ticket", number=ticket.number)
    response = json_response({"number": ticket.number, "status": ticket.status, "created": created,
                              "url": url}, 201 if created else 200)
    response.headers["Location"] = url
    return response


def cursor_page(query: Select[Any], limit: int) -> tuple[list[Any], str | None]:
    """One page of a query that asks for `limit` + 1 rows by id, newest first; the cursor
    of the next page (the last id shown), or None when this page is the last."""
    rows = list(db.session.scalars(query).unique())
    page = rows[:limit]
    return page, (str(page[-1].id) if len(rows) > limit else None)


@bp.get("/tickets", provide_automatic_options=False)
def list_tickets() -> Response:
    """Tickets in the account's scope, filtered, newest first, a page at a time."""
    user, at = api_user(), now()
    params = TICKET_LIST.read(request.args)
    page, next_cursor = cursor_page(operations.list_query(user, params, at), params.get("limit", PAGE_SIZE))
    return json_response({"tickets": [serialize.ticket_summary(t, at) for t in page],
                          "next_cursor": next_cursor})


@bp.get("/tickets/<number>", provide_automatic_options=False)
def get_ticket(number: str) -> Response:
    """One ticket, personal data masked."""
    user = api_user()
    return ticket_response(find_ticket(number, user), user)


@bp.post("/tickets/<number>/reveal", provide_automatic_options=False)
def reveal(number: str) -> Response:
    """The ticket with the requester's details whole, for this answer only; the reveal is logged."""
    user = api_user()
    ticket = find_ticket(number, user)
    if not privacy.may_reveal(user, ticket):
        raise ApiError(403, _l("You may not see this requester's details."))
    privacy.record_reveal(user, ticket, now(), "view", request.remote_addr or "")
    db.session.commit()
    return ticket_response(find_ticket(number, user), user, revealed=True)


@bp.post("/tickets/<number>/transitions", provide_automatic_options=False)
def transition(number: str) -> Response:
    """Apply one action of the state machine; the ticket as it is afterwards."""
    user = api_user()
    values = TRANSITION.read(read_json())
    ticket = find_ticket(number, user, detail=False)
    name, actor = values["action"], Actor.staff(user)
    operations.check_version(ticket, values.get("version"), request.headers.get("If-Match"))
    try:
        # Asked before the inputs are read, so "not now" and "not you" win over "fix this field".
        lifecycle.check(TRANSITIONS[name], actor, ticket)
        public, params = operations.transition_inputs(name, values, user)
        perform(ticket, name, actor, now(), calendar(), note=values.get("note", ""), public=public, **params)
        db.session.commit()
    except ServiceError as exc:
        db.session.rollback()
        raise from_service(exc) from None
    # Reloaded whole; a ticket just returned may have left the account's scope, but it is shown once more.
    fresh = db.session.scalar(select(Ticket).where(Ticket.id == ticket.id).options(*DETAIL))
    if fresh is None:  # tickets are never deleted; this keeps the type checker honest
        raise ApiError(404, _l("No such ticket."))
    return ticket_response(fresh, user)



# --- 回访 (callbacks) -----------------------------------------------------------------


def find_callback(task_id: int, user: User) -> CallbackTask:
    """The task if `user` works it (dispatchers, supervisors, admins in scope); 404 otherwise."""
    task = callbacks.find(user, task_id) if task_id <= MAX_ID else None
    if task is None:
        raise ApiError(404, _l("No such callback."))
    return task


def callback_response(task: CallbackTask, user: User, revealed: bool = False) -> Response:
    """The task with its ticket whole and every try, its version as the ETag."""
    at = now()
    ticket = db.session.scalar(select(Ticket).where(Ticket.id == task.ticket_id).options(*DETAIL))
    assert ticket is not None  # tickets are never deleted
    ticket_json = serialize.ticket_detail(ticket, user, at, merged_numbers(ticket, user), revealed)
    ids = {entry.get("by") for entry in task.attempt_log or []}
    people = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    response = json_response(serialize.callback_detail(task, ticket_json, people, at, revealed))
    response.set_etag(str(task.version))
    return response


@bp.get("/callbacks", provide_automatic_options=False)
def list_callbacks() -> Response:
    """The 回访 tasks the account works, filtered, newest first, a page at a time."""
    user, at = api_user(), now()
    params = CALLBACK_LIST.read(request.args)
    page, next_cursor = cursor_page(operations.callback_query(user, params, at), params.get("limit", PAGE_SIZE))
    return json_response({"callbacks": [serialize.callback_summary(t, at) for t in page],
                          "next_cursor": next_cursor})


@bp.get("/callbacks/<int:task_id>", provide_automatic_options=False)
def get_callback(task_id: int) -> Response:
    """One task: the ticket (personal data masked), its timeline, every try."""
    user = api_user()
    return callback_response(find_callback(task_id, user), user)


@bp.post("/callbacks/<int:task_id>/reveal", provide_automatic_options=False)
def reveal_callback(task_id: int) -> Response:
    """The task with the resident's phone whole, to call them; logged as a reveal for a callback."""
    user = api_user()
    task = find_callback(task_id, user)
    try:
        callbacks.reveal(user, task, now(), request.remote_addr or "")
    except ServiceError as exc:
        raise from_service(exc) from None
    db.session.commit()
    return callback_response(task, user, revealed=True)


@bp.post("/callbacks/<int:task_id>/outcome", provide_automatic_options=False)
def record_callback(task_id: int) -> Response:
    """Record one try at the call, as on the task's page; the task afterwards.

    With an Idempotency-Key, a retry of a try already recorded answers the task as it is
    and records nothing.
    """
    user = api_user()
    values = CALLBACK_OUTCOME.read(read_json())
    key = operations.idempotency_key(None, request.headers.get("Idempotency-Key"))
    task = find_callback(task_id, user)
    outcome = operations.outcome_from(values)
    try:
        callbacks.record_outcome(task, user, outcome, now(), calendar(), version=values.get("version"), key=key)
        db.session.commit()
    except ServiceError as exc:
        db.session.rollback()
        raise from_service(exc, operations.OUTCOME_FIELDS) from None
    return callback_response(find_callback(task_id, user), user)


# --- 高频诉求 (recurring problems) ------------------------------------------------------


@bp.get("/hotspots", provide_automatic_options=False)
def list_hotspots() -> Response:
    """The recurring problems of the latest nightly run, in the account's scope, most significant first."""
    user = api_user()
    params = HOTSPOT_LIST.read(request.args)
    day = params.get("date") or now().astimezone(local_tz()).date()
    days = params.get("days", HOTSPOT_WINDOWS[0])
    where = Hotspot.community_id == params["community_id"] if "community_id" in params else None
    found = hotspots.listing(user, day, days, where=where, limit=params.get("limit", PAGE_SIZE))
    samples = hotspots.sample_tickets(found.hotspots)
    run = found.run
    return json_response({
        "date": run.day.isoformat() if run else None, "days": days,
        "found_at": serialize.iso(run.found_at) if run else None,
        "min_count": run.min_count if run else None, "total": found.total,
        "hotspots": [serialize.hotspot(spot, [t.number for t in samples[spot.id]]) for spot in found.hotspots],
    })
