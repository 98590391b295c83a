"""The doors of bench/doors_bench.py: what each one's requests look like, and how to find
the tickets they filed again.

Every request is one a real client would send: a random building of the generated
street, named in the text (its complex, then the building, half the time after the
community) or chosen by its id where the client picks from a list; a random category
(WeChat and group-chat messages have theirs guessed from the text); a mobile number;
a description from a list (bench/clients.py). Each ticket
carries a marker unique to the run, the door, the phase and the request — in the
external id where the door has one, else in the Open311 `device_id` — so that the
benchmark counts exactly the tickets of one door's measured run.

Templates (`MARK` replaced by wrk's script, bench/loadgen.py) serve the doors whose
requests wrk may send many times; WeChat and county-centre requests are signed over
a timestamp (and, for WeChat, a nonce used once), which wrk's Lua cannot compute, so
they are signed here in advance, fresh before each run, and each is sent once.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import random
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from clients import (
    FORM,
    GREETINGS,
    PATROL_FINDINGS,
    SENDERS,
    Browser,
    attributes,
    description,
    form_fields,
    multipart,
    person,
    phone,
    point_in,
)
from loadgen import CREATED, Request


@dataclass(frozen=True)
class Place:
    """A building of the generated street and the places above it."""

    building_id: int
    building: str
    complex_id: int
    complex: str
    grid_id: int
    community_id: int
    community_code: str
    community: str


@dataclass
class World:
    """What the requests refer to: places, categories, credentials (bench/doors_bench.py `prepare`)."""

    places: list[Place]
    grid_boxes: dict[int, tuple[float, float, float, float]]  # lon, lat, lon, lat
    categories: list[tuple[int, str, list[dict[str, Any]]]]  # id, code, Open311 attributes
    staff_key: str
    open311_key: str
    password: str
    grid_workers: list[tuple[str, int]]  # username, grid id
    dispatchers: list[tuple[str, int]]  # username, community id
    wechat_token: str
    centre_secret: str
    by_grid: dict[int, list[Place]] = field(default_factory=dict)
    by_community: dict[int, list[Place]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for place in self.places:
            self.by_grid.setdefault(place.grid_id, []).append(place)
            self.by_community.setdefault(place.community_id, []).append(place)


def address(rng: random.Random, place: Place) -> str:
    """A typed address: the complex right before the building, the community sometimes."""
    community = place.community if rng.random() < 0.5 else ""
    return f"{community}{place.complex}{place.building}{rng.randint(1, 4)}单元{rng.randint(1, 18)}0{rng.randint(1, 4)}室"


# --- the doors ---------------------------------------------------------------------

CENTRE = "bench-county"
TEMPLATES = 2000  # requests of a door that wrk cycles through
ROWS = 3  # messages per group-chat paste


@dataclass
class Ask:
    """What a door's requests are made from: the world, the server (for the doors that
    sign in), the marker prefix and phase, and how many pre-signed requests to make."""

    world: World
    rng: random.Random
    base: str
    prefix: str
    phase: int
    count: int


def staff_api(ask: Ask) -> list[Request]:
    """A service-hall dispatcher's app files with a building id (as bench/intake_bench.py)."""
    world, rng = ask.world, ask.rng
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {world.staff_key}"}
    out = []
    for _ in range(TEMPLATES):
        family, given = person(rng)
        out.append(Request("POST", "/api/v1/tickets", headers, json.dumps({
            "channel": "service_hall", "description": description(rng), "phone": phone(rng),
            "name": family + given, "category": rng.choice(world.categories)[1],
            "building_id": rng.choice(world.places).building_id, "external_id": "MARK0",
        }, ensure_ascii=False)))
    return out


def open311(ask: Ask, by_point: bool) -> list[Request]:
    """A city app posts a form: service_code (with the category's attributes), description,
    phone, name, and the typed address or the phone's position; its device id carries
    the marker."""
    world, rng = ask.world, ask.rng
    headers = {"Content-Type": FORM, "User-Agent": "CityReport/3.2 (Android 14)"}
    out = []
    for _ in range(TEMPLATES):
        _id, code, definitions = rng.choice(world.categories)
        family, given = person(rng)
        form = {"api_key": world.open311_key, "service_code": code, "description": description(rng),
                "phone": phone(rng), "first_name": given, "last_name": family, "device_id": "MARK0"}
        if by_point:
            lat, lon = point_in(rng, world.grid_boxes[rng.choice(world.places).grid_id])
            form.update(lat=str(lat), long=str(lon))
        else:
            form["address_string"] = address(rng, rng.choice(world.places))
        form.update(attributes(rng, definitions))
        out.append(Request("POST", "/open311/v2/requests.json", headers, urlencode(form)))
    return out


def web_form(ask: Ask) -> list[Request]:
    """Residents post the report form (multipart, as browsers do): three in four pick their
    building from the lists, the others pick the community and type the address. Four
    sessions, each with the CSRF token of its own GET /report; the form's submission id
    carries the marker."""
    world, rng = ask.world, ask.rng
    out = []
    for _ in range(4):
        browser = Browser(ask.base)
        token = browser.csrf("/report")
        for _ in range(TEMPLATES // 4):
            place = rng.choice(world.places)
            family, given = person(rng)
            form: dict[str, Any] = {
                "csrf_token": token, "submission_id": "MARK0", "category_id": rng.choice(world.categories)[0],
                "community_id": place.community_id, "complex_id": "", "building_id": "", "address_text": "",
                "unit_room": "", "description": description(rng), "name": family + given if rng.random() < 0.7 else "",
                "phone": phone(rng)}
            if rng.random() < 0.75:
                form.update(complex_id=place.complex_id, building_id=place.building_id,
                            unit_room=f"{rng.randint(1, 4)}单元{rng.randint(1, 18)}0{rng.randint(1, 4)}")
            else:
                form["address_text"] = address(rng, place)
            content_type, body = multipart(form, ("photos",), rng)
            out.append(Request("POST", "/report", browser.headers(**{"Content-Type": content_type}), body))
    return out


def wechat(ask: Ask) -> list[Request]:
    """Followers' text messages, signed as WeChat signs them (plain mode), each with its own
    nonce and MsgId, all at the current time; the text names the complex and building,
    half the time the community too, and a mobile number."""
    world, rng = ask.world, ask.rng
    timestamp = str(int(time.time()))
    followers = ["o" + "".join(rng.choices(string.ascii_letters + string.digits + "-_", k=27)) for _ in range(5000)]
    out = []
    for i in range(ask.count):
        place = rng.choice(world.places)
        community = place.community if rng.random() < 0.5 else ""
        text = (f"{rng.choice(GREETINGS)}{community}{place.complex}{place.building}{rng.randint(1, 4)}单元"
                f"{description(rng)}，电话{phone(rng)}")
        nonce = f"{ask.phase}{i:08d}{rng.randrange(10**4):04d}"
        signature = hashlib.sha1("".join(sorted([world.wechat_token, timestamp, nonce])).encode()).hexdigest()
        body = (f"<xml><ToUserName><![CDATA[gh_minhu]]></ToUserName>"
                f"<FromUserName><![CDATA[{rng.choice(followers)}]]></FromUserName>"
                f"<CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
                f"<Content><![CDATA[{text}]]></Content><MsgId>{ask.prefix}{ask.phase}{i:07d}</MsgId></xml>")
        out.append(Request("POST", f"/channels/wechat?signature={signature}&timestamp={timestamp}&nonce={nonce}",
                           {"Content-Type": "text/xml"}, body))
    return out


def county(ask: Ask) -> list[Request]:
    """The county centre's orders: community code and typed address, signed over the body
    at the current time; the order number carries the marker."""
    world, rng = ask.world, ask.rng
    timestamp = str(int(time.time()))
    out = []
    for i in range(ask.count):
        place = rng.choice(world.places)
        family, given = person(rng)
        body = json.dumps({
            "order_no": f"12345-{ask.prefix}{ask.phase}00{i:019x}0", "description": description(rng),
            "phone": phone(rng), "name": family + given, "category": rng.choice(world.categories)[1],
            "community_code": place.community_code, "address": address(rng, place),
        }, ensure_ascii=False)
        signature = hmac.new(world.centre_secret.encode(), timestamp.encode() + b"." + body.encode(),
                             hashlib.sha256).hexdigest()
        out.append(Request("POST", "/api/v1/upstream/orders", {
            "Content-Type": "application/json; charset=utf-8", "X-Minhu-Centre": CENTRE,
            "X-Minhu-Timestamp": timestamp, "X-Minhu-Signature": signature}, body))
    return out


def patrol(ask: Ask) -> list[Request]:
    """Signed-in grid workers report what they found (multipart, with the empty photo
    input): two in three pick a building of their grid, the others send the phone's
    position inside it. Not 马上就办: each report is the worker's own, filed dispatched
    to them and accepted (services/patrol.py), not routed."""
    world, rng = ask.world, ask.rng
    out = []
    for username, grid_id in world.grid_workers:
        browser = Browser(ask.base)
        browser.sign_in(username, world.password)
        token = browser.csrf("/patrol/new")
        for _ in range(TEMPLATES // len(world.grid_workers)):
            form: dict[str, Any] = {
                "csrf_token": token, "submission_id": "MARK0", "category_id": rng.choice(world.categories)[0],
                "building_id": "", "lat": "", "lng": "", "description": rng.choice(PATROL_FINDINGS),
                "phone": phone(rng), "result": ""}
            if rng.random() < 2 / 3:
                form["building_id"] = rng.choice(world.by_grid[grid_id]).building_id
            else:
                form["lat"], form["lng"] = map(str, point_in(rng, world.grid_boxes[grid_id]))
            content_type, body = multipart(form, ("photo",), rng)
            out.append(Request("POST", "/patrol/new", browser.headers(**{"Content-Type": content_type}), body))
    return out


def groupchat(ask: Ask) -> list[Request]:
    """Signed-in community dispatchers paste three messages copied from their community's
    WeChat group, then file the drafts as the page shows them (its guesses of category
    and building; a category it could not guess chosen by hand). Both requests are in
    the run, one after the other; the drafts' keys carry the marker."""
    world, rng = ask.world, ask.rng
    out = []
    for username, community_id in world.dispatchers:
        browser = Browser(ask.base)
        browser.sign_in(username, world.password)
        token = browser.csrf("/patrol/groupchat")
        headers = browser.headers(**{"Content-Type": FORM})
        for _ in range(max(1, 100 // len(world.dispatchers))):
            lines = []
            for row in range(ROWS):
                place = rng.choice(world.by_community[community_id])
                lines += [f"{rng.choice(SENDERS)} 10:{10 + 7 * row:02d}",
                          f"{place.complex}{place.building}{description(rng)} {phone(rng)}"]
            paste = {"csrf_token": token, "text": "\r\n".join(lines)}
            page = browser.request("POST", "/patrol/groupchat", paste)
            if page.status_code != 200:
                raise SystemExit(f"pasting group-chat messages: {page.status_code}")
            fields = []
            for name, value in form_fields(page.text, "/patrol/groupchat/file"):
                if name.endswith("-key"):
                    value = f"MARK{name.split('-')[1]}"
                elif name.endswith("-category_id") and not value:
                    value = str(rng.choice(world.categories)[0])
                fields.append((name, value))
            out.append(Request("POST", "/patrol/groupchat", headers, urlencode(paste)))
            out.append(Request("POST", "/patrol/groupchat/file", headers, urlencode(fields)))
    return out


# SQL over tickets t, complexes cx, buildings b, grids g: placed where the request said.
NAMED = "strpos(t.address_text || ' ' || t.description, cx.name || b.name) > 0"
IN_BOX = " AND ".join(
    f"t.{column} BETWEEN (SELECT min((p->>{i})::float8) FROM json_array_elements((g.boundary::json)->'coordinates'->0) p)"
    f" AND (SELECT max((p->>{i})::float8) FROM json_array_elements((g.boundary::json)->'coordinates'->0) p)"
    for column, i in (("lon", 0), ("lat", 1)))
OPEN311_DEVICE = "t.extra->'_open311'->>'device_id'"


def redirect_to(path: str, tickets: int = 1) -> str:
    """Lua: a form filed from a page is a 303 to the page that says so."""
    return f"""
function outcome(status, headers, body)
  local location = headers["Location"] or headers["location"] or ""
  if status == 303 and string.find(location, "{path}", 1, true) then return {tickets} end
  return nil
end"""


@dataclass
class Door:
    """One door: how its requests are made, and how its answers and tickets are recognised."""

    name: str
    title: str
    channel: str
    build: Callable[[Ask], list[Request]]
    outcome: str  # Lua: how many tickets an answer stands for, nil for an error
    placed: str  # SQL: where the request said (besides a community and a grid set)
    marker_column: str = "t.external_id"
    presigned: bool = False  # signed in advance, each sent once
    # The marker's prefix, from the run's Unix time and the door's number; and the LIKE
    # pattern of one phase's tickets.
    prefix: Callable[[int, int], str] = lambda epoch, number: f"{epoch:08x}{number:x}"
    pattern: Callable[[str, int], str] = lambda prefix, phase: f"{prefix}{phase}%"


DOORS = [
    Door("staff-api", "staff API, building id", "service_hall", staff_api, CREATED, "t.building_id IS NOT NULL"),
    Door("open311-address", "Open311, address_string", "open311", lambda ask: open311(ask, by_point=False),
         CREATED, NAMED, marker_column=OPEN311_DEVICE),
    Door("open311-latlong", "Open311, lat/long", "open311", lambda ask: open311(ask, by_point=True),
         CREATED, IN_BOX, marker_column=OPEN311_DEVICE),
    Door("web-form", "resident web form", "web", web_form, redirect_to("/report/sent/"),
         f"(t.address_text = '' AND t.building_id IS NOT NULL) OR {NAMED}"),
    Door("wechat", "WeChat text message", "wechat_oa", wechat, """
function outcome(status, headers, body)
  if status == 200 and string.find(body, "/t/", 1, true) then return 1 end
  return nil
end""", NAMED, presigned=True, prefix=lambda epoch, number: f"{epoch}{number}",
         pattern=lambda prefix, phase: f"wx:{prefix}{phase}%"),
    Door("county", "county centre order", "county_center", county, CREATED, NAMED, presigned=True,
         pattern=lambda prefix, phase: f"{CENTRE}:12345-{prefix}{phase}%"),
    Door("patrol", "grid patrol report", "patrol", patrol, redirect_to("/tickets/"),
         "t.grid_id IN (SELECT grid_id FROM user_grids WHERE user_id = t.created_by_id)"),
    Door("groupchat", f"group-chat entry, {ROWS} a paste", "wechat_group", groupchat, f"""
function outcome(status, headers, body)
  local location = headers["Location"] or headers["location"] or ""
  if status == 200 and string.find(body, "-key", 1, true) then return 0 end
  if status == 303 and string.find(location, "/patrol/groupchat", 1, true) then return {ROWS} end
  return nil
end""", NAMED),
]
