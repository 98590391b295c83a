"""What each operation of the staff API takes: channels, actions, bodies, query parameters.

The views read requests with these, and the OpenAPI document is built from them;
the enums come from the models and the state machine, so neither can drift.
"""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from ticketing.api.inputs import (
    NUMBER_PATTERN,
    VISIBLE_PATTERN,
    Body,
    Boolean,
    CategoryRef,
    Choice,
    Choices,
    Day,
    Integer,
    Moment,
    Number,
    Query,
    Text,
)
from ticketing.models import (
    STAFF_ENTRY_CHANNELS,
    CallbackReason,
    CallbackState,
    Channel,
    Rating,
    Role,
    Status,
    User,
)
from ticketing.services.callbacks import MAX_ATTEMPTS as MAX_CALLBACK_TRIES
from ticketing.services.doors import BY_HAND_ACTIONS, ENTRY_ROLES, GROUPCHAT_ROLES, PATROL_ROLES
from ticketing.services.holds import MAX_HOLD_DAYS
from ticketing.services.intake import MAX_ADDRESS, MAX_DESCRIPTION, MAX_NAME, MAX_ROOM
from ticketing.services.lifecycle import MAX_NOTE_LENGTH, TRANSITIONS

# Who may file on which channel: the same roles as the web pages of each door.
CHANNEL_ROLES: dict[str, tuple[str, ...]] = {
    **{channel.value: tuple(ENTRY_ROLES) for channel in STAFF_ENTRY_CHANNELS},
    Channel.WECHAT_GROUP.value: tuple(GROUPCHAT_ROLES),
    Channel.PATROL.value: tuple(PATROL_ROLES),
}
DEFAULT_CHANNEL = Channel.SERVICE_HALL.value
DEFAULT_CHANNEL_OF_ROLE = {Role.GRID_WORKER.value: Channel.PATROL.value}

# The actions staff take on the ticket page, in the state machine's order.
STAFF_ACTIONS: tuple[str, ...] = tuple(name for name in TRANSITIONS if name in BY_HAND_ACTIONS)
# The one input beyond the note that an action takes.
ACTION_PARAMS: dict[str, str] = {
    "dispatch": "handler", "merge": "target", "extend": "deadline", "note": "public", "recategorize": "category",
    "hold": "until", "reassign": "handler", "transfer": "handler",
}

KEY_PATTERN = r"^[!-~]{1,64}$"
HANDLER_PATTERN = r"^(user|team):[1-9][0-9]{0,9}$"
# A mainland mobile number as intake reads it (services/intake.py clean_phone), in the one
# spelling the API takes: +86 or 0086 first if at all, spaces and dashes between the digits;
# or a landline with its area code as services/phones.py reads it (0371-12345678,
# (010) 1234 5678), which intake takes on the walk-in, hall, phone and group-chat channels.
PHONE_PATTERN = (r"^(?:(?:\+86|0086)?[ -]*1[3-9](?:[ -]*[0-9]){9}"
                 r"|\(?0(?:(?:10|2[0-9])\)?[ -]*[1-9](?:[ -]*[0-9]){7}|[3-9][0-9]{2}\)?[ -]*[1-9](?:[ -]*[0-9]){6,7}))$")
PAGE_SIZE = 50
MAX_PAGE_SIZE = 100


def channels_for(user: User) -> list[str]:
    """The channels `user` may file tickets on."""
    return [channel for channel, roles in CHANNEL_ROLES.items() if user.role in roles]


def default_channel(user: User) -> str:
    """The channel of a new ticket that names none: patrol for grid workers, else service hall."""
    return DEFAULT_CHANNEL_OF_ROLE.get(user.role, DEFAULT_CHANNEL)


PLACE_ID = "Give the most specific place known; the others follow from it."

NEW_TICKET = Body(
    fields={
        "channel": Choice(values=tuple(CHANNEL_ROLES), description=(
            "The door the request came through. walk_in, service_hall and phone: dispatchers and "
            "admins; wechat_group: dispatchers and grid workers; patrol: grid workers. Default: "
            "patrol for grid workers, service_hall for everyone else.")),
        "description": Text(max_length=MAX_DESCRIPTION, min_length=1, pattern=VISIBLE_PATTERN,
                            problem=_l("Please describe the problem."), description=(
            "What the problem is, in the resident's words. Control characters are removed and "
            "spaces collapsed; it may not end up empty.")),
        "phone": Text(max_length=32, pattern=PHONE_PATTERN,
                      problem=_l("Enter an 11-digit mobile number or a landline with its area code "
                                 "(e.g. 0371-12345678)."), description=(
            "The resident's 11-digit mainland mobile number (+86 or 0086 first, spaces and dashes "
            "between the digits are allowed); on walk_in, service_hall, phone and wechat_group also "
            "a landline with its area code (0371-12345678), which gets no SMS. Required, except on "
            "patrol when the grid worker's account has a mobile number (leave it out for that one), "
            "on wechat_group (the requester is the group nickname) and with no_phone.")),
        "no_phone": Boolean(description=(
            "walk_in, service_hall and phone: true when the resident has no phone at all; leave phone "
            "out. No SMS is sent: the resident follows the request by its tracking link or by coming back.")),
        "name": Text(max_length=MAX_NAME, description="The resident's name (optional; on patrol, the grid worker's)."),
        "category": CategoryRef(description="The category's code (see GET /categories) or its id."),
        "community_id": Integer(description=f"Community. {PLACE_ID}"),
        "complex_id": Integer(description=f"Complex or courtyard. {PLACE_ID}"),
        "building_id": Integer(description=f"Building. {PLACE_ID}"),
        "grid_id": Integer(description=f"Grid, when no complex or building is known. {PLACE_ID}"),
        "address_text": Text(max_length=MAX_ADDRESS, description=(
            "The address as given; within the community it may name a complex and building.")),
        "unit_room": Text(max_length=MAX_ROOM, description="Unit and room as given."),
        "lat": Number(minimum=-90, maximum=90, description="WGS-84 latitude; with lon, or not at all."),
        "lon": Number(minimum=-180, maximum=180, description="WGS-84 longitude; with lat, or not at all."),
        "external_id": Text(max_length=64, min_length=1, pattern=KEY_PATTERN, description=(
            "Idempotency key (or send the Idempotency-Key header): the same key on the same channel "
            "from the same account returns the first ticket with 200 instead of filing another.")),
    },
    required=frozenset({"description", "category"}),
)

TRANSITION = Body(
    fields={
        "action": Choice(values=STAFF_ACTIONS, description=(
            "What to do; the ticket's `actions` lists those this account may do now.")),
        "note": Text(max_length=MAX_NOTE_LENGTH, description=(
            "Note or reason; required for reject, return, hold (what is awaited), resolve, note, "
            "escalate, deescalate, extend, reassign and transfer.")),
        "public": Boolean(description="note only: may the resident read it too? Default false."),
        "handler": Text(max_length=20, pattern=HANDLER_PATTERN, description=(
            "dispatch, reassign and transfer, required: user:<id> for a person, team:<id> for a "
            "whole team. transfer: only someone on duty now who has not passed the ticket on before.")),
        "target": Text(max_length=20, pattern=NUMBER_PATTERN, description=(
            "merge only, required: the number of the ticket to merge into.")),
        "deadline": Moment(description="extend only, required: the new deadline, with its time zone."),
        "until": Day(description=(
            "hold only, required: the local date (YYYY-MM-DD) what is awaited is expected by, from "
            f"today to {MAX_HOLD_DAYS} days ahead; the handler is reminded that day.")),
        "category": CategoryRef(description="recategorize only, required: the new category (code or id)."),
        "version": Integer(description=(
            "The ticket's version as last read; if it changed since, nothing is done (409 "
            "version_mismatch). The If-Match header does the same.")),
    },
    required=frozenset({"action"}),
)

TICKET_LIST = Query(
    params={
        "status": Choices(values=tuple(s.value for s in Status), description=(
            "Only these states; repeat the parameter or separate with commas.")),
        "category": CategoryRef(description="Only this category (code or id); a group includes its categories."),
        "community_id": Integer(description="Only this community."),
        "grid_id": Integer(description="Only this grid."),
        "assignee": Choice(values=("me",), description="me: only tickets assigned to this account."),
        "overdue": Boolean(description="true: only tickets past their accept-by or resolve-by; false: only others."),
        "created_after": Moment(description="Only tickets received at or after this time."),
        "created_before": Moment(description="Only tickets received before this time."),
        "q": Text(max_length=20, min_length=1, pattern=r"^[0-9A-Za-z-]+$",
                  description="A ticket number, or the start of one."),
        "limit": Integer(minimum=1, maximum=MAX_PAGE_SIZE,
                         description=f"Tickets per page, default {PAGE_SIZE}."),
        "cursor": Text(max_length=10, pattern=r"^[1-9][0-9]{0,9}$",
                       description="next_cursor of the previous page."),
    },
    repeatable=frozenset({"status"}),
)

# --- 回访 (callbacks) ---------------------------------------------------------------

CALLBACK_STATES = tuple(s.value for s in CallbackState)
CALLBACK_REASONS = tuple(r.value for r in CallbackReason)

CALLBACK_LIST = Query(
    params={
        "state": Choices(values=CALLBACK_STATES, description=(
            "Only these states (open: still to call; done: reached and recorded; failed: not reached "
            "after the last try); repeat the parameter or separate with commas.")),
        "reason": Choice(values=CALLBACK_REASONS, description="Only tasks opened for this reason."),
        "overdue": Boolean(description="true: only open tasks past their deadline; false: only others."),
        "limit": Integer(minimum=1, maximum=MAX_PAGE_SIZE,
                         description=f"Tasks per page, default {PAGE_SIZE}."),
        "cursor": Text(max_length=10, pattern=r"^[1-9][0-9]{0,9}$",
                       description="next_cursor of the previous page."),
    },
    repeatable=frozenset({"state"}),
)

CALLBACK_OUTCOME = Body(
    fields={
        "reached": Boolean(description="Was the resident reached? false: a try without reaching them "
                                       f"(after {MAX_CALLBACK_TRIES} the task fails as unreachable)."),
        "solved": Boolean(description="Reached only, required: is the problem solved?"),
        "rating": Choice(values=tuple(r.value for r in Rating), description=(
            "Reached only: the resident's own rating, if they gave one. Recorded on the ticket as the "
            "resident's (counted in the satisfaction rate) when the result had none; else kept with the task.")),
        "redo_to": Text(max_length=20, pattern=HANDLER_PATTERN, description=(
            "Not solved only: redo the ticket (重办), sent to user:<id> or team:<id> with fresh time limits. "
            "The ticket must be resolved or closed (else 409), and the handler must fit it (else 422).")),
        "note": Text(max_length=MAX_NOTE_LENGTH, description=(
            "What the resident said; required when not solved (the redo's reason).")),
        "version": Integer(description=(
            "The task's version as last read; if it changed since, nothing is done (409 conflict).")),
    },
    required=frozenset({"reached"}),
)

# --- 高频诉求 (recurring problems) ---------------------------------------------------

HOTSPOT_WINDOWS = (30, 90)  # the windows the nightly job stores (services/hotspots.py WINDOWS)
HOTSPOT_LIST = Query(
    params={
        "days": Integer(minimum=1, maximum=366, description=(
            "The window in days: 30 (default) or 90 as the nightly job stores them; another length "
            "only when someone ran `flask hotspots find --days N`.")),
        "date": Day(description=(
            "The local day the clusters were found for; the latest run on or before it is answered "
            "(default: today, so the run of last night).")),
        "community_id": Integer(description="Only this community."),
        "limit": Integer(minimum=1, maximum=MAX_PAGE_SIZE, description=f"Clusters at most, default {PAGE_SIZE}."),
    },
)
