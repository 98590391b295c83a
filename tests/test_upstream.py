"""County centre orders (派单): signed JSON in, idempotent by order number, signed reports back."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from config import Config, ConfigError, parse_upstream_centers
from tests.factories import PHONE, World, advance
from ticketing.channels import upstream
from ticketing.extensions import db
from ticketing.models import OutboxMessage, Ticket, TicketEvent
from workers import jobs

URL = "/api/v1/upstream/orders"
SECRET = "county-centre-shared-secret-0001"
CENTRES = {"county01": {"secret": SECRET, "callback_url": "https://centre.example/callback"}}


@pytest.fixture()
def centres(ctx: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ctx.config, "UPSTREAM_CENTERS", CENTRES)


def order(world: World, **changes: Any) -> dict[str, Any]:
    body = {
        "order_no": "12345-2026-000123",
        "description": "红星小区3号楼楼道漏水，已经三天了",
        "phone": PHONE,
        "name": "李四",
        "category": "repair.stair_light",
        "building_id": world.building_managed.id,
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def post(client: FlaskClient, payload: Any, centre: str = "county01", secret: str = SECRET,
         timestamp: int | None = None, raw: bytes | None = None,
         content_type: str = "application/json") -> Any:
    body = raw if raw is not None else json.dumps(payload, ensure_ascii=False).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return client.post(URL, data=body, content_type=content_type, headers={
        "X-Minhu-Centre": centre, "X-Minhu-Timestamp": ts,
        "X-Minhu-Signature": signature(secret, ts, body),
    })


def ticket_count() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Ticket)) or 0


def test_an_order_files_a_ticket_with_the_channel_and_external_id(world: World, client: FlaskClient,
                                                                  centres: None) -> None:
    response = post(client, order(world))
    assert response.status_code == 201, response.get_json()
    answer = response.get_json()
    assert answer["order_no"] == "12345-2026-000123"
    ticket = db.session.scalar(select(Ticket).where(Ticket.number == answer["ticket"]))
    assert ticket is not None
    assert ticket.channel == "county_center"
    assert ticket.external_id == "county01:12345-2026-000123"
    assert ticket.building_id == world.building_managed.id
    assert answer["status"] == "submitted"  # as filed; routing runs after


def test_a_place_by_community_code_and_address_alias(world: World, client: FlaskClient, centres: None) -> None:
    response = post(client, order(world, building_id=None, community_code="CA", address="东怡街79号院3栋"))
    assert response.status_code == 201, response.get_json()
    ticket = db.session.scalar(select(Ticket).where(Ticket.number == response.get_json()["ticket"]))
    assert ticket.building_id == world.building_managed.id


def test_a_resend_returns_the_same_ticket(world: World, client: FlaskClient, centres: None) -> None:
    first = post(client, order(world))
    again = post(client, order(world))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["ticket"] == first.get_json()["ticket"]
    assert ticket_count() == 1


def test_a_resend_after_its_category_closed_returns_the_same_ticket(
    world: World, client: FlaskClient, centres: None,
) -> None:
    first = post(client, order(world))
    world.category("repair.stair_light").active = False
    db.session.commit()
    again = post(client, order(world))
    assert (first.status_code, again.status_code) == (201, 200), again.get_json()
    assert again.get_json()["ticket"] == first.get_json()["ticket"]
    refused = post(client, order(world, order_no="12345-2026-999999"))
    assert refused.status_code == 400
    assert ticket_count() == 1


def test_a_bad_signature_is_refused_and_nothing_stored(world: World, client: FlaskClient, centres: None) -> None:
    response = post(client, order(world), secret="not-the-shared-secret-at-all")
    assert response.status_code == 401
    assert response.get_json()["error"]
    assert ticket_count() == 0


def test_a_tampered_body_is_refused(world: World, client: FlaskClient, centres: None) -> None:
    ts = str(int(time.time()))
    body = json.dumps(order(world)).encode()
    response = client.post(URL, data=body.replace(b"12345", b"99999"), content_type="application/json", headers={
        "X-Minhu-Centre": "county01", "X-Minhu-Timestamp": ts, "X-Minhu-Signature": signature(SECRET, ts, body),
    })
    assert response.status_code == 401
    assert ticket_count() == 0


@pytest.mark.parametrize("offset", [-360, 360])
def test_a_timestamp_outside_five_minutes_is_refused(world: World, client: FlaskClient, centres: None,
                                                     offset: int) -> None:
    response = post(client, order(world), timestamp=int(time.time()) + offset)
    assert response.status_code == 401
    assert "window" in response.get_json()["error"]
    assert ticket_count() == 0


def test_an_unknown_centre_is_refused(world: World, client: FlaskClient, centres: None) -> None:
    assert post(client, order(world), centre="elsewhere").status_code == 401
    assert ticket_count() == 0


def test_no_centres_configured_refuses_everything(world: World, client: FlaskClient) -> None:
    assert post(client, order(world)).status_code == 401


def test_an_oversized_body_is_413(world: World, client: FlaskClient, centres: None) -> None:
    response = post(client, order(world, description="漏" * 30000))  # 90 KB of UTF-8
    assert response.status_code == 413
    assert ticket_count() == 0


def test_malformed_json_is_400(world: World, client: FlaskClient, centres: None) -> None:
    response = post(client, None, raw=b'{"order_no": "1", ')
    assert response.status_code == 400
    assert post(client, None, raw=b'["a list"]').status_code == 400


def test_a_wrong_content_type_is_415(world: World, client: FlaskClient, centres: None) -> None:
    response = post(client, None, raw=b"order_no=1", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415


def test_missing_fields_are_400_with_field_errors(world: World, client: FlaskClient, centres: None) -> None:
    response = post(client, order(world, description=None))
    assert response.status_code == 400
    assert "description" in response.get_json()["fields"]
    response = post(client, order(world, order_no=None, category="no.such", phone="12"))
    assert response.status_code == 400
    assert "order_no" in response.get_json()["fields"]
    response = post(client, order(world, category="no.such", building_id=None))
    assert set(response.get_json()["fields"]) >= {"category", "place"}
    response = post(client, order(world, phone="12"))
    assert set(response.get_json()["fields"]) == {"phone"}
    assert post(client, order(world, order_no="x" * 101)).status_code == 400
    assert ticket_count() == 0


def test_a_deeply_nested_body_is_400(world: World, client: FlaskClient, centres: None) -> None:
    response = post(client, None, raw=b"[" * 30000)
    assert response.status_code == 400
    assert response.get_json() == {"error": "body is nested too deeply"}


@pytest.mark.parametrize("building_id", [10**20, 2**31, 0, -1])
def test_a_building_id_no_building_can_have_is_400_naming_it(world: World, client: FlaskClient, centres: None,
                                                              building_id: int) -> None:
    response = post(client, order(world, building_id=building_id))
    assert response.status_code == 400
    assert set(response.get_json()["fields"]) == {"building_id"}
    assert ticket_count() == 0


@pytest.mark.parametrize("field", ["description", "order_no", "name", "category", "address"])
def test_a_lone_surrogate_is_400_naming_the_field(world: World, client: FlaskClient, centres: None,
                                                  field: str) -> None:
    raw = json.dumps(order(world, **{field: "楼道\ud800漏水"})).encode()  # ASCII: the escape stays "\ud800"
    response = post(client, None, raw=raw)
    assert response.status_code == 400
    assert response.get_json()["fields"] == {field: "contains a lone surrogate (not valid Unicode)"}
    assert ticket_count() == 0


@pytest.mark.parametrize("field", ["description", "order_no", "category", "community_code"])
def test_a_nul_byte_is_400_naming_the_field(world: World, client: FlaskClient, centres: None, field: str) -> None:
    response = post(client, order(world, **{field: "楼道\x00漏水"}))
    assert response.status_code == 400
    assert response.get_json()["fields"] == {field: "contains a NUL byte"}
    assert ticket_count() == 0


def test_unknown_fields_are_refused_by_name(world: World, client: FlaskClient, centres: None) -> None:
    response = post(client, order(world, adress="红星小区3号楼", priority="urgent"))
    assert response.status_code == 400
    assert response.get_json()["fields"] == {"adress": "unknown field", "priority": "unknown field"}
    assert ticket_count() == 0


def test_an_unexpected_error_is_a_json_500(world: World, client: FlaskClient, centres: None,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(upstream, "receive", broken)
    response = post(client, order(world))
    assert response.status_code == 500
    assert response.get_json() == {"error": "internal error; nothing was saved"}


# --- report back -------------------------------------------------------------


class Captured:
    def __init__(self, status: int = 200, error: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.status, self.error = status, error

    def __call__(self, url: str, data: bytes, headers: dict[str, str], timeout: float) -> Any:
        self.calls.append({"url": url, "data": data, "headers": headers, "timeout": timeout})
        if self.error is not None:
            raise self.error
        response = requests.Response()
        response.status_code = self.status
        return response


def filed_ticket(world: World, client: FlaskClient) -> Ticket:
    response = post(client, order(world))
    assert response.status_code == 201
    db.session.expire_all()
    return db.session.scalar(select(Ticket).where(Ticket.number == response.get_json()["ticket"]))


def report_rows() -> list[OutboxMessage]:
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.job == "workers.jobs.report_upstream")))


def test_accept_resolve_and_close_are_reported_signed(world: World, client: FlaskClient, centres: None,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    ticket = filed_ticket(world, client)
    advance(ticket, "closed", world)
    rows = report_rows()
    assert len(rows) == 3  # accepted, resolved, closed (not dispatched)
    captured = Captured()
    monkeypatch.setattr(requests, "post", captured)
    for row in rows:
        assert jobs.report_upstream(*row.args).startswith("reported")
    statuses = []
    for call in captured.calls:
        assert call["url"] == CENTRES["county01"]["callback_url"]
        assert call["timeout"] == 10
        headers = call["headers"]
        assert headers["X-Minhu-Centre"] == "county01"
        assert abs(int(headers["X-Minhu-Timestamp"]) - time.time()) < 60
        assert hmac.compare_digest(headers["X-Minhu-Signature"],
                                   signature(SECRET, headers["X-Minhu-Timestamp"], call["data"]))
        payload = json.loads(call["data"])
        assert set(payload) == {"order_no", "ticket", "status", "at", "note"}
        assert (payload["order_no"], payload["ticket"]) == ("12345-2026-000123", ticket.number)
        statuses.append(payload["status"])
    assert statuses == ["accepted", "resolved", "closed"]
    assert json.loads(captured.calls[1]["data"])["note"] == "已更换灯泡"
    # Each success is written on the ticket, and a rerun posts nothing again.
    recorded = db.session.scalars(select(TicketEvent).where(TicketEvent.action == "upstream_report")).all()
    assert [(e.detail["status_code"], e.public) for e in recorded] == [(200, False)] * 3
    assert jobs.report_upstream(*rows[0].args) == "already reported"
    assert len(captured.calls) == 3


def test_a_ticket_from_another_channel_is_not_reported(world: World, store: Any, centres: None) -> None:
    from tests.factories import make_ticket

    advance(make_ticket(world, store), "closed", world)
    assert report_rows() == []


@pytest.mark.parametrize("failure", [Captured(status=503), Captured(error=requests.ConnectionError("down"))])
def test_a_failing_callback_raises_so_the_outbox_retries(world: World, client: FlaskClient, centres: None,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         failure: Captured) -> None:
    ticket = filed_ticket(world, client)
    advance(ticket, "accepted", world)
    (row,) = report_rows()
    monkeypatch.setattr(requests, "post", failure)
    with pytest.raises(upstream.ReportFailed):
        jobs.report_upstream(*row.args)
    # Through the outbox: the row stays pending with the error, to be handed over again.
    assert jobs.run_outbox(row.id) == "failed, will retry"
    db.session.expire_all()
    row = db.session.get(OutboxMessage, row.id)
    assert row.done_at is None and "ReportFailed" in row.last_error
    assert SECRET not in row.last_error
    assert db.session.scalar(select(func.count()).select_from(TicketEvent)
                             .where(TicketEvent.action == "upstream_report")) == 0
    # Once the centre answers, the retry succeeds and the row is done.
    monkeypatch.setattr(requests, "post", Captured())
    db.session.commit()
    assert jobs.run_outbox(row.id).startswith("reported")
    db.session.expire_all()
    assert db.session.get(OutboxMessage, row.id).done_at is not None


# --- configuration -----------------------------------------------------------


def test_upstream_centres_are_parsed_strictly_and_never_shown() -> None:
    raw = json.dumps(CENTRES)
    assert parse_upstream_centers(raw) == CENTRES
    assert parse_upstream_centers("") == {}
    assert Config.from_env({"UPSTREAM_CENTERS": raw, "SECRET_KEY": "x"}).upstream_centers == CENTRES
    for bad in ("[]", "{", json.dumps({"a b": {"secret": SECRET, "callback_url": "https://x"}}),
                json.dumps({"c": {"secret": "short", "callback_url": "https://x"}}),
                json.dumps({"c": {"secret": SECRET, "callback_url": "ftp://x"}}),
                json.dumps({"c": {"secret": SECRET}})):
        with pytest.raises(ConfigError) as info:
            parse_upstream_centers(bad)
        assert SECRET not in str(info.value)
    config = Config(upstream_centers=CENTRES)
    assert SECRET not in repr(config)
    assert SECRET not in repr(upstream.Centre("c", SECRET, "https://x"))
