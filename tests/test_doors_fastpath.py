"""Every door on the fast path (issue 15): filing one ticket sends a bounded number of SQL
statements, the same however many places and categories there are, with no lazy load;
the catalogue and the places come from the per-process cache (services/refcache.py).

Each test files twice (the first fills the caches) and counts the second filing, then
grows the world (tests/doors_helpers.py) and counts again. The bounds are without Redis,
as the tests run: a rate limit is then counted in the database, two statements in a
transaction of its own (services/ratelimit.py); with Redis it costs none. Storing the
ticket, its submit event and its routing job is one statement on PostgreSQL and four on
SQLite (services/intake.py `_store`). What the routing does after the request is not
counted: it runs in batches behind the door.
"""
from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import time
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, func, select
from werkzeug.test import TestResponse

from tests import wechat_helpers as wechat
from tests.conftest import csrf_from, is_postgres, login
from tests.doors_helpers import add_places_and_categories, count_filing, reference_reads, square
from tests.factories import PHONE, T0, World
from ticketing.extensions import db
from ticketing.models import Building, KeyKind, Ticket, user_grids
from ticketing.services import apikeys, classify_store, ratelimit, refcache

MANY = 12  # grids added by add_places_and_categories, each with 9 buildings, and categories
Prepare = Callable[[], Callable[[], TestResponse]]


@pytest.fixture(autouse=True)
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    """What is counted is the filing alone: no sweep of old rate-limit rows, no inline
    routing after the request, and nothing cached goes stale between the two filings of
    a count, however slow the machine (a change made here still clears the caches)."""
    monkeypatch.setattr(ratelimit, "PRUNE_CHANCE", 0.0)
    monkeypatch.setattr("workers.relay.relay_after_request", lambda: None)
    monkeypatch.setattr(refcache, "clock", lambda: 0.0)
    monkeypatch.setattr(classify_store, "REFRESH_SECONDS", float("inf"))


@pytest.fixture()
def store_statements(ctx: Flask) -> int:
    """Storing the ticket, its submit event and its routing job."""
    return 1 if is_postgres(ctx) else 4


@pytest.fixture()
def own_store_statements(ctx: Flask) -> int:
    """Storing a patrol report and its three events (filed, dispatched, accepted), without
    a routing job: on SQLite the number, the ticket and the events one by one, in order."""
    return 1 if is_postgres(ctx) else 2 + 3


@pytest.fixture()
def key_statements(ctx: Flask) -> int:
    """Looking for a ticket filed before under the request's key (its external id):
    on PostgreSQL the statement that stores the ticket looks (services/intake.py
    `_store_at_once`), elsewhere one statement before it."""
    return 0 if is_postgres(ctx) else 1


def few_and_many(world: World, prepare: Prepare, status: int, statements: list[str],
                 lazy_loads: list[str]) -> tuple[int, int]:
    """The statements of one filing in the test's world, and in the world grown; no lazy load in either."""
    few = count_filing(prepare, status, statements, lazy_loads)
    assert lazy_loads == [], statements
    add_places_and_categories(world, MANY)
    many = count_filing(prepare, status, statements, lazy_loads)
    assert lazy_loads == [], statements
    return few, many


def open311_key() -> str:
    return apikeys.issue(KeyKind.OPEN311, "Test app", T0)[1]


def open311_post(client: FlaskClient, key: str, **place: str) -> Prepare:
    form = {"api_key": key, "service_code": "repair.stair_light", "description": "3号楼楼道灯不亮",
            "phone": PHONE, "first_name": "三丰", "last_name": "张", **place}
    return lambda: lambda: client.post("/open311/v2/requests.json", data=form)


def test_open311_by_address_text_sends_three_statements_however_many_places(
    client: FlaskClient, world: World, statements: list[str], lazy_loads: list[str], store_statements: int,
) -> None:
    # The app's rate limit (2), then the ticket (store). The key, the service code and the place
    # names come from the cache; the external id is a token just made, so it is not looked up.
    bound = 2 + store_statements
    post = open311_post(client, open311_key(), address_string="东怡街79号院3栋")
    few, many = few_and_many(world, post, 201, statements, lazy_loads)
    assert many == few <= bound, statements
    assert reference_reads(statements) == []


def test_open311_by_lat_long_sends_three_statements_however_many_grids(
    client: FlaskClient, world: World, statements: list[str], lazy_loads: list[str], store_statements: int,
) -> None:
    world.grid_a2.boundary = square(116.40, 39.90)
    db.session.commit()
    # As by address: the grids' boundaries are cached already parsed (services/geo.py).
    bound = 2 + store_statements
    post = open311_post(client, open311_key(), lat="39.905", long="116.405")
    few, many = few_and_many(world, post, 201, statements, lazy_loads)
    assert many == few <= bound, statements
    assert reference_reads(statements) == []


def test_the_web_form_sends_six_statements_however_many_places(
    client: FlaskClient, world: World, statements: list[str], lazy_loads: list[str], store_statements: int,
) -> None:
    category_id, building_id = world.category("repair.stair_light").id, world.building_courtyard.id

    def prepare() -> Callable[[], TestResponse]:
        html = client.get("/report").get_data(as_text=True)  # not counted: the page before the post
        submission = re.search(r'name="submission_id" type="hidden" value="([0-9a-f]{32})"', html)
        assert submission is not None
        data = {"csrf_token": csrf_from(html), "submission_id": submission.group(1),
                "category_id": str(category_id), "community_id": str(world.community_a.id),
                "complex_id": str(world.courtyard.id), "building_id": str(building_id),
                "description": "楼道灯不亮，晚上看不见台阶", "name": "张三丰", "phone": PHONE}
        return lambda: client.post("/report", content_type="multipart/form-data", data=data)

    # The submission id looked up (1: a double tap files once), the limits per address and
    # per phone (2 each), then the ticket (store).
    bound = 1 + 2 + 2 + store_statements
    few, many = few_and_many(world, prepare, 303, statements, lazy_loads)
    assert many == few <= bound, statements
    assert reference_reads(statements) == []


def test_a_wechat_text_message_sends_seven_statements_however_many_places(
    client: FlaskClient, world: World, statements: list[str], lazy_loads: list[str], store_statements: int,
    account: None,
) -> None:
    msg_ids = itertools.count(1000)

    def prepare() -> Callable[[], TestResponse]:
        body = wechat.text_xml(f"红星小区3号楼楼道灯坏了 {PHONE}", msg_id=next(msg_ids))
        return lambda: wechat.post(client, body)

    # The nonce remembered (1 on PostgreSQL, 2 on SQLite: services/nonces.py), the MsgId
    # looked up (1: WeChat's retries file once), the follower's row (1: their location pin,
    # and the phone and place of their last request), the follower's rate limit (2), the
    # ticket (store), then its phone and place remembered for next time (1, committed on
    # its own, without a transaction around it: services/followers.py `remember_apart`). The communities and places
    # the text may name, and the category's emergency guidance, come from the cache.
    nonce = 1 if is_postgres(client.application) else 2
    bound = nonce + 1 + 1 + 2 + store_statements + 1
    few, many = few_and_many(world, prepare, 200, statements, lazy_loads)
    assert wechat.ticket_count() == 4
    assert many == few <= bound, statements
    assert reference_reads(statements) == []


def test_a_wechat_text_message_on_the_remembered_phone_sends_as_many_statements(
    client: FlaskClient, world: World, statements: list[str], lazy_loads: list[str], store_statements: int,
    account: None,
) -> None:
    assert wechat.post(client, wechat.text_xml(f"红星小区3号楼楼道灯坏了 {PHONE}", msg_id=999)).status_code == 200
    msg_ids = itertools.count(1000)

    def prepare() -> Callable[[], TestResponse]:
        body = wechat.text_xml("红星小区3号楼楼道灯又坏了", msg_id=next(msg_ids))  # no phone: the remembered one
        return lambda: wechat.post(client, body)

    # As with a phone in the text: the follower's row, read once, gives the phone too.
    nonce = 1 if is_postgres(client.application) else 2
    bound = nonce + 1 + 1 + 2 + store_statements + 1
    few, many = few_and_many(world, prepare, 200, statements, lazy_loads)
    assert wechat.ticket_count() == 5
    assert many == few <= bound, statements


def test_a_county_order_sends_one_statement_or_five_on_sqlite_however_many_places(
    client: FlaskClient, world: World, statements: list[str], lazy_loads: list[str], store_statements: int,
    key_statements: int, monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "county-centre-shared-secret-0001"
    monkeypatch.setitem(client.application.config, "UPSTREAM_CENTERS",
                        {"county01": {"secret": secret, "callback_url": "https://centre.example/callback"}})
    numbers, building_id = itertools.count(1), world.building_managed.id

    def prepare() -> Callable[[], TestResponse]:
        body = json.dumps({"order_no": f"12345-2026-{next(numbers):06d}", "description": "红星小区3号楼楼道漏水",
                           "phone": PHONE, "name": "李四", "category": "repair.stair_light",
                           "building_id": building_id}).encode()
        stamp = str(int(time.time()))
        signed = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        headers = {"X-Minhu-Centre": "county01", "X-Minhu-Timestamp": stamp, "X-Minhu-Signature": signed}
        return lambda: client.post("/api/v1/upstream/orders", data=body, content_type="application/json",
                                   headers=headers)

    # The order number looked up (key: a resent order files once), then the ticket (store).
    bound = key_statements + store_statements
    few, many = few_and_many(world, prepare, 201, statements, lazy_loads)
    assert many == few <= bound, statements
    assert reference_reads(statements) == []


def patrol_report(client: FlaskClient, **fields: object) -> Prepare:
    def prepare() -> Callable[[], TestResponse]:
        html = client.get("/patrol/new").get_data(as_text=True)
        submission = re.search(r'name="submission_id" type="hidden" value="([0-9a-f]{32})"', html)
        assert submission is not None
        data = {"csrf_token": csrf_from(html), "submission_id": submission.group(1),
                "description": "3号楼楼道灯不亮", "phone": "13900001111", **fields}
        return lambda: client.post("/patrol/new", data=data, content_type="multipart/form-data")

    return prepare


# A patrol report is the worker's own (services/patrol.py): filed unrouted and already
# dispatched to them and accepted (the ticket's number, the ticket, its submit event and
# the two steps' events: `own_store_statements`; lifecycle.plan), then the steps' other
# write: the worker's last assignment. Nobody is sent a message: the worker took it.
# The working-day calendar the deadlines are counted by is kept per process
# (services/workdays.py `cached_calendar`).
OWN_REPORT = 1


def test_a_patrol_report_sends_at_most_four_statements_or_nine_on_sqlite_however_many_places(
    client: FlaskClient, world: World, statements: list[str], lazy_loads: list[str], own_store_statements: int,
    key_statements: int,
) -> None:
    login(client, world.gina)
    post = patrol_report(client, category_id=world.category("repair.stair_light").id,
                         building_id=world.building_managed.id)
    # The signed-in account (1), Gina's grids (1: the buildings she may choose are theirs),
    # the submission id looked up (key), then her own report. Her grids' buildings and the
    # categories offered come from the cache.
    bound = 1 + 1 + key_statements + own_store_statements + OWN_REPORT
    few, many = few_and_many(world, post, 303, statements, lazy_loads)
    assert many == few <= bound, statements
    assert [s for s in reference_reads(statements) if "user_grids" not in s] == []


def test_a_patrol_report_placed_by_location_sends_as_many_statements(
    client: FlaskClient, world: World, statements: list[str], lazy_loads: list[str], own_store_statements: int,
    key_statements: int,
) -> None:
    world.grid_a1.boundary = square(116.40, 39.90)
    db.session.commit()
    login(client, world.gina)
    post = patrol_report(client, category_id=world.category("repair.stair_light").id, lat="39.905", lng="116.405")
    # As by building: the boundaries are cached already parsed (services/geo.py).
    bound = 1 + 1 + key_statements + own_store_statements + OWN_REPORT
    few, many = few_and_many(world, post, 303, statements, lazy_loads)
    assert many == few <= bound, statements


def test_a_group_chat_entry_sends_two_statements_however_many_places(
    client: FlaskClient, world: World, statements: list[str], lazy_loads: list[str], store_statements: int,
    key_statements: int,
) -> None:
    login(client, world.dora)
    keys = itertools.count()
    category_id = world.category("repair.stair_light").id

    def prepare() -> Callable[[], TestResponse]:
        html = client.get("/patrol/groupchat").get_data(as_text=True)
        data = {"csrf_token": csrf_from(html), "rows-0-include": "y", "rows-0-key": f"{next(keys):032x}",
                "rows-0-sender": "张阿姨", "rows-0-time": "10:32", "rows-0-category_id": str(category_id),
                "rows-0-community_id": str(world.community_a.id),
                "rows-0-building_id": str(world.building_managed.id), "rows-0-phone": PHONE,
                "rows-0-name": "张阿姨", "rows-0-description": "红星小区3栋楼道灯不亮了"}
        return lambda: client.post("/patrol/groupchat/file", data=data)

    # The signed-in account (1), the draft's key looked up (key: a draft posted twice files
    # once), then the ticket (store). The communities, buildings and categories Dora may
    # choose come from the cache.
    bound = 1 + key_statements + store_statements
    few, many = few_and_many(world, prepare, 303, statements, lazy_loads)
    assert many == few <= bound, statements
    assert reference_reads(statements) == []


def test_the_staff_api_sends_two_statements_however_many_places(
    client: FlaskClient, world: World, statements: list[str], lazy_loads: list[str], store_statements: int,
    key_statements: int,
) -> None:
    headers = {"Authorization": f"Bearer {apikeys.issue(KeyKind.STAFF, 'app', T0, user=world.dora)[1]}"}
    keys = itertools.count()

    def prepare() -> Callable[[], TestResponse]:
        body = {"description": "3号楼楼道灯不亮", "phone": PHONE, "name": "李四", "category": "repair.stair_light",
                "building_id": world.building_courtyard.id, "external_id": f"k{next(keys)}"}
        return lambda: client.post("/api/v1/tickets", json=body, headers=headers)

    # The key's account, read afresh with whether the key was revoked (1: the key itself is
    # cached), the idempotency key looked up (key), then the ticket (store).
    bound = 1 + key_statements + store_statements
    few, many = few_and_many(world, prepare, 201, statements, lazy_loads)
    assert many == few <= bound, statements
    assert reference_reads(statements) == []


# --- what the fast path keeps is fresh where it must be ---------------------------------


def test_a_building_added_in_this_process_is_offered_on_the_patrol_form_at_once(
    client: FlaskClient, world: World,
) -> None:
    login(client, world.gina)
    assert "新楼" not in client.get("/patrol/new").get_data(as_text=True)  # the choices are cached now
    db.session.add(Building(name="新楼", complex=world.courtyard))
    db.session.commit()
    assert "新楼" in client.get("/patrol/new").get_data(as_text=True)


def test_a_grid_taken_from_a_worker_elsewhere_leaves_her_form_at_once(client: FlaskClient, world: World) -> None:
    login(client, world.gina)
    post = patrol_report(client, category_id=world.category("repair.stair_light").id,
                         building_id=world.building_managed.id)
    assert post()().status_code == 303
    # Another process (SQL of its own: this process's cache never hears of it) takes CA-01 from Gina.
    with db.engine.begin() as conn:
        conn.execute(delete(user_grids).where(user_grids.c.user_id == world.gina.id))
    assert post()().status_code == 400  # the building is no longer hers to choose
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 1
