"""Doors on the fast path (web form, county orders, WeChat text): a submission is looked
up once, and the catalogue and places come from the cache (services/refcache.py)."""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event

from tests import wechat_helpers as wechat
from tests.conftest import csrf_from
from tests.factories import PHONE, World
from ticketing.extensions import db


@pytest.fixture(autouse=True)
def no_inline_routing(monkeypatch: pytest.MonkeyPatch) -> None:
    """What is counted is the filing alone, not the routing run after the request."""
    monkeypatch.setattr("workers.relay.relay_after_request", lambda: None)


@pytest.fixture()
def statements(world: World) -> Iterator[list[str]]:
    recorded: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        recorded.append(" ".join(statement.split()))

    event.listen(db.engine, "before_cursor_execute", record)
    yield recorded
    event.remove(db.engine, "before_cursor_execute", record)


def report(client: FlaskClient, world: World, statements: list[str]) -> int:
    """Post a fresh form (its page read first, not counted); the response status."""
    html = client.get("/report").get_data(as_text=True)
    submission = re.search(r'name="submission_id" type="hidden" value="([0-9a-f]{32})"', html)
    assert submission is not None
    data = {"csrf_token": csrf_from(html), "submission_id": submission.group(1),
            "category_id": str(world.category("repair.stair_light").id), "community_id": str(world.community_a.id),
            "complex_id": str(world.courtyard.id), "building_id": str(world.building_courtyard.id),
            "description": "楼道灯不亮，晚上看不见台阶", "name": "张三丰", "phone": PHONE}
    statements.clear()
    return client.post("/report", content_type="multipart/form-data", data=data).status_code


def test_a_web_form_is_looked_up_once_and_reads_no_catalogue_or_place(
    client: FlaskClient, world: World, statements: list[str],
) -> None:
    assert report(client, world, statements) == 303  # fills the caches
    assert report(client, world, statements) == 303
    reads = [s for s in statements if s.startswith("SELECT")]
    assert len([s for s in reads if "FROM tickets" in s]) == 1, reads  # the submission id, once
    assert not [s for s in reads if re.search(r"FROM (categories|sla_tiers|communities|grids|complexes|buildings)", s)]


def test_a_county_order_is_looked_up_once_and_reads_no_catalogue_or_place(
    client: FlaskClient, world: World, statements: list[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "county-centre-shared-secret-0001"
    monkeypatch.setitem(client.application.config, "UPSTREAM_CENTERS",
                        {"county01": {"secret": secret, "callback_url": "https://centre.example/callback"}})
    building_id = world.building_managed.id
    for order_no in ("12345-2026-000001", "12345-2026-000002"):  # the first fills the caches
        body = json.dumps({"order_no": order_no, "description": "红星小区3号楼楼道漏水", "phone": PHONE,
                           "name": "李四", "category": "repair.stair_light", "building_id": building_id}).encode()
        stamp = str(int(time.time()))
        signed = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        statements.clear()
        response = client.post("/api/v1/upstream/orders", data=body, content_type="application/json", headers={
            "X-Minhu-Centre": "county01", "X-Minhu-Timestamp": stamp, "X-Minhu-Signature": signed})
        assert response.status_code == 201, response.get_json()
    reads = [s for s in statements if s.startswith("SELECT")]
    assert len([s for s in reads if "FROM tickets" in s]) == 1, reads  # the order number, once
    assert not [s for s in reads if re.search(r"FROM (categories|sla_tiers|communities|grids|complexes|buildings)", s)]


def test_a_wechat_text_message_is_looked_up_once(
    client: FlaskClient, world: World, statements: list[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(client.application.config, "WECHAT_TOKEN", wechat.TOKEN)
    for msg_id in (1000, 1001):
        statements.clear()
        response = wechat.post(client, wechat.text_xml(f"红星小区3号楼楼道灯坏了 {PHONE} 第{msg_id}次", msg_id=msg_id))
        assert response.status_code == 200
    lookups = [s for s in statements if s.startswith("SELECT tickets.id FROM tickets")]
    assert len(lookups) == 1, statements  # the message id, once
