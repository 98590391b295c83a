"""The WeChat channel: location messages, the place of the next request, the datum, the rate limit."""
from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from wechatpy.crypto import WeChatCrypto

from tests.factories import PHONE, World, put_on_call
from tests.wechat_helpers import (
    OPENID,
    TEXT,
    post,
    post_encrypted,
    reply_content,
    text_xml,
    ticket_count,
    tickets,
)
from ticketing import web
from ticketing.channels.wechat_geo import (
    LOCATION_FRESH_FOR,
    gcj02_to_wgs84,
    out_of_china,
    wgs84_to_gcj02,
)
from ticketing.extensions import db
from ticketing.models import Grid, utcnow
from ticketing.models.channels import WechatFollower
from ticketing.services import geo

# Published pairs (WGS-84 → GCJ-02) from the tests of two independent libraries:
# googollee/eviltransform (Shanghai, Shenzhen, Beijing) and wandergis/coordtransform.
PUBLISHED = [
    ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),
    ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),
    ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),
    ((39.915, 116.404), (39.91640428150164, 116.41024449916938)),
]
# Three grids side by side in Beijing, WGS-84, each 0.004° of longitude wide.
WEST, SOUTH, WIDTH, HEIGHT = 116.380, 39.910, 0.004, 0.003
QUIET = f"楼道灯坏了，晚上很黑 {PHONE}"  # names no community and no complex


def rectangle(west: float) -> str:
    ring = [[west, SOUTH], [west + WIDTH, SOUTH], [west + WIDTH, SOUTH + HEIGHT],
            [west, SOUTH + HEIGHT], [west, SOUTH]]
    return json.dumps({"type": "Polygon", "coordinates": [ring]})


@pytest.fixture()
def bounded(world: World) -> World:
    """Grids A1, A2 (community A) and B1 (community B) with WGS-84 boundaries, west to east."""
    for index, grid in enumerate((world.grid_a1, world.grid_a2, world.grid_b1)):
        grid.boundary = rectangle(WEST + index * WIDTH)
    db.session.commit()
    return world


def inside(index: int) -> tuple[float, float]:
    """A WGS-84 point in the middle of the grid `index` (0 = A1, 1 = A2, 2 = B1)."""
    return SOUTH + HEIGHT / 2, WEST + index * WIDTH + WIDTH / 2


def location_xml(lat: float, lon: float, label: str = "北京市东城区东怡街79号", msg_id: int = 777,
                 openid: str = OPENID, raw: tuple[str, str] | None = None) -> str:
    """A location message; `lat`/`lon` are what WeChat sends (GCJ-02)."""
    x, y = raw or (f"{lat:.6f}", f"{lon:.6f}")
    return (
        "<xml><ToUserName><![CDATA[gh_minhu]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[location]]></MsgType>"
        f"<Location_X>{x}</Location_X><Location_Y>{y}</Location_Y><Scale>16</Scale>"
        f"<Label><![CDATA[{label}]]></Label><MsgId>{msg_id}</MsgId></xml>"
    )


def send_location(client: FlaskClient, wgs: tuple[float, float], **kwargs: Any) -> str:
    """Send the point as WeChat would: in GCJ-02."""
    return reply_content(post(client, location_xml(*wgs84_to_gcj02(*wgs), **kwargs)))


def follower(openid: str = OPENID) -> WechatFollower | None:
    db.session.expire_all()
    return db.session.get(WechatFollower, openid)


# --- the datum ----------------------------------------------------------------


@pytest.mark.parametrize(("wgs", "gcj"), PUBLISHED)
def test_wgs84_to_gcj02_matches_published_pairs(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    assert wgs84_to_gcj02(*wgs) == pytest.approx(gcj, abs=1e-9)


@pytest.mark.parametrize(("wgs", "gcj"), PUBLISHED)
def test_gcj02_to_wgs84_recovers_the_published_point(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    assert gcj02_to_wgs84(*gcj) == pytest.approx(wgs, abs=1e-8)  # about a millimetre


def test_points_outside_china_are_not_shifted() -> None:
    for point in ((51.5007, -0.1246), (35.6586, 139.7454), (-33.8568, 151.2153)):
        assert out_of_china(*point)
        assert gcj02_to_wgs84(*point) == point == wgs84_to_gcj02(*point)


def test_the_shift_is_larger_than_a_grid_so_the_conversion_matters() -> None:
    wgs = inside(0)
    gcj = wgs84_to_gcj02(*wgs)
    assert abs(gcj[1] - wgs[1]) > WIDTH  # several hundred metres east


# --- location messages ----------------------------------------------------------


def test_a_location_is_stored_in_wgs84_and_placed_in_its_grid(
        bounded: World, client: FlaskClient, account: None) -> None:
    content = send_location(client, inside(0))
    row = follower()
    assert row is not None and row.grid_id == bounded.grid_a1.id
    assert (row.lat, row.lon) == pytest.approx(inside(0), abs=1e-6)
    assert row.label == "北京市东城区东怡街79号"
    assert row.located_at is not None and utcnow() - row.located_at < timedelta(minutes=1)
    assert "东怡社区第一网格" in content  # the community is named once with the grid
    assert ticket_count() == 0


def test_the_point_is_placed_after_conversion_not_as_sent(
        bounded: World, client: FlaskClient, account: None) -> None:
    gcj = wgs84_to_gcj02(*inside(0))
    as_sent = geo.grid_at(db.session.scalars(select(Grid)), *gcj)
    assert as_sent is None or as_sent.id != bounded.grid_a1.id  # unconverted, it would miss A1
    reply_content(post(client, location_xml(*gcj)))
    row = follower()
    assert row is not None and row.grid_id == bounded.grid_a1.id


def test_a_location_outside_our_grids_is_kept_and_the_reply_says_so(
        bounded: World, client: FlaskClient, account: None) -> None:
    content = send_location(client, (39.95, 116.50))
    row = follower()
    assert row is not None and row.grid_id is None and row.lat == pytest.approx(39.95)
    assert "东怡社区" in content and "西岭社区" in content  # the communities we do serve
    assert "网格" not in content


def test_a_new_location_replaces_the_last_one(bounded: World, client: FlaskClient, account: None) -> None:
    send_location(client, inside(0))
    content = send_location(client, inside(2), msg_id=778)
    row = follower()
    assert row is not None and row.grid_id == bounded.grid_b1.id
    assert "西岭社区第一网格" in content
    assert db.session.scalar(select(func.count()).select_from(WechatFollower)) == 1


@pytest.mark.parametrize("raw", [("abc", "116.4"), ("91", "116.4"), ("nan", "116.4"), ("", "")])
def test_a_location_that_is_not_a_point_is_answered_and_not_stored(
        bounded: World, client: FlaskClient, account: None, raw: tuple[str, str]) -> None:
    assert reply_content(post(client, location_xml(0, 0, raw=raw)))
    assert follower() is None


def test_an_encrypted_location_is_stored_and_the_reply_encrypted(
        bounded: World, client: FlaskClient, safe_mode: WeChatCrypto) -> None:
    reply = post_encrypted(client, safe_mode, location_xml(*wgs84_to_gcj02(*inside(1))))
    assert "东怡社区第二网格" in reply["Content"]
    row = follower()
    assert row is not None and row.grid_id == bounded.grid_a2.id


# --- the place of the next text -------------------------------------------------


def test_the_next_text_is_filed_at_the_locations_grid_with_its_point(
        bounded: World, client: FlaskClient, account: None) -> None:
    send_location(client, inside(1))
    reply_content(post(client, text_xml(QUIET, msg_id=2)))
    [ticket] = tickets()
    assert (ticket.community_id, ticket.grid_id) == (bounded.community_a.id, bounded.grid_a2.id)
    assert ticket.complex_id is None
    assert (ticket.lat, ticket.lon) == pytest.approx(inside(1), abs=1e-6)
    assert ticket.address_text == "北京市东城区东怡街79号"  # the map's label


def test_a_text_that_names_a_complex_keeps_it_with_the_point(
        bounded: World, client: FlaskClient, account: None) -> None:
    send_location(client, inside(0))
    reply_content(post(client, text_xml(TEXT, msg_id=2)))
    [ticket] = tickets()
    assert ticket.building_id == bounded.building_managed.id
    assert ticket.grid_id == bounded.grid_a1.id
    assert ticket.lat == pytest.approx(inside(0)[0], abs=1e-6)


def test_the_location_wins_over_the_last_ticket(bounded: World, client: FlaskClient, account: None) -> None:
    reply_content(post(client, text_xml(TEXT, msg_id=1)))  # 红星小区, community A
    send_location(client, inside(2))  # now in community B
    reply_content(post(client, text_xml(QUIET, msg_id=3)))
    first, second = tickets()
    assert first.community_id == bounded.community_a.id
    assert (second.community_id, second.grid_id) == (bounded.community_b.id, bounded.grid_b1.id)


def test_a_stale_location_is_ignored(bounded: World, client: FlaskClient, account: None) -> None:
    send_location(client, inside(2))  # community B
    row = follower()
    assert row is not None
    row.located_at = utcnow() - LOCATION_FRESH_FOR - timedelta(minutes=1)
    db.session.commit()
    reply_content(post(client, text_xml(f"东怡社区{QUIET}", msg_id=2)))
    [ticket] = tickets()
    assert ticket.community_id == bounded.community_a.id  # from the text, not the old pin
    assert (ticket.grid_id, ticket.lat, ticket.lon) == (None, None, None)


def test_a_location_outside_the_grids_does_not_place_the_text(
        bounded: World, client: FlaskClient, account: None) -> None:
    send_location(client, (39.95, 116.50))
    content = reply_content(post(client, text_xml(QUIET, msg_id=2)))
    assert ticket_count() == 0  # two communities, none named: the resident is asked which
    assert "东怡社区" in content


def test_without_a_fresh_location_the_last_tickets_place_is_used(
        bounded: World, client: FlaskClient, account: None) -> None:
    send_location(client, inside(1))
    reply_content(post(client, text_xml(QUIET, msg_id=2)))  # placed at grid A2 by the pin
    row = follower()
    assert row is not None
    row.located_at = utcnow() - timedelta(days=3)
    db.session.commit()
    reply_content(post(client, text_xml(f"门口垃圾没人清 {PHONE}", msg_id=3)))
    _, second = tickets()
    assert (second.community_id, second.grid_id) == (bounded.community_a.id, bounded.grid_a2.id)
    assert second.lat is None  # an old point is not copied


def test_a_community_named_in_the_text_wins_over_the_last_tickets_place(
        world: World, client: FlaskClient, account: None) -> None:
    put_on_call(world.gina, world.gabe)
    reply_content(post(client, text_xml(TEXT, msg_id=1)))  # 红星小区 3号楼, community A
    reply_content(post(client, text_xml(f"西岭社区东苑2号楼水管爆了 {PHONE}", msg_id=2)))
    first, second = tickets()
    assert first.building_id == world.building_managed.id
    assert (second.community_id, second.grid_id) == (world.community_b.id, world.grid_b1.id)
    assert (second.complex_id, second.building_id) == (world.east.id, world.building_east.id)
    assert second.assignee_id == world.gabe.id  # B's grid worker, not A's


def test_a_complex_named_without_its_community_wins_over_the_last_tickets_place(
        world: World, client: FlaskClient, account: None) -> None:
    reply_content(post(client, text_xml(TEXT, msg_id=1)))
    reply_content(post(client, text_xml(f"东苑2号楼水管爆了 {PHONE}", msg_id=2)))
    second = tickets()[1]
    assert (second.community_id, second.building_id) == (world.community_b.id, world.building_east.id)


def test_another_complex_of_the_last_tickets_community_wins_over_its_building(
        world: World, client: FlaskClient, account: None) -> None:
    reply_content(post(client, text_xml(TEXT, msg_id=1)))  # 红星小区 3号楼
    reply_content(post(client, text_xml(f"槐树院1号楼门口垃圾没人清 {PHONE}", msg_id=2)))
    second = tickets()[1]
    assert (second.complex_id, second.building_id) == (world.courtyard.id, world.building_courtyard.id)


def test_a_community_named_alone_is_placed_there_not_at_the_last_tickets_building(
        world: World, client: FlaskClient, account: None) -> None:
    reply_content(post(client, text_xml(TEXT, msg_id=1)))
    reply_content(post(client, text_xml(f"西岭社区路灯不亮 {PHONE}", msg_id=2)))
    second = tickets()[1]
    assert (second.community_id, second.complex_id, second.building_id) == (world.community_b.id, None, None)


def test_a_place_named_in_the_text_wins_over_a_fresh_location(
        bounded: World, client: FlaskClient, account: None) -> None:
    send_location(client, inside(2))  # community B
    reply_content(post(client, text_xml(TEXT, msg_id=2)))  # 红星小区 3号楼, community A
    [ticket] = tickets()
    assert (ticket.community_id, ticket.building_id) == (bounded.community_a.id, bounded.building_managed.id)
    assert (ticket.lat, ticket.lon) == (None, None)  # the pin is elsewhere: not copied


def test_a_text_naming_two_communities_keeps_the_remembered_one_among_them(
        world: World, client: FlaskClient, account: None) -> None:
    reply_content(post(client, text_xml(TEXT, msg_id=1)))  # community A
    reply_content(post(client, text_xml(f"东怡社区和西岭社区交界的路灯不亮 {PHONE}", msg_id=2)))
    second = tickets()[1]
    assert (second.community_id, second.building_id) == (world.community_a.id, world.building_managed.id)


# --- the rate limit per sender ------------------------------------------------


@pytest.fixture()
def limit_two(ctx: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two messages per sender per window, and the web layer's clock standing still: the
    limit counts in fixed windows, and a test must not straddle the edge of one."""
    monkeypatch.setitem(ctx.config["RATE_LIMITS"], "wechat_sender", (2, 600))
    frozen = web.now()
    monkeypatch.setattr(web, "now", lambda: frozen)


def minutes_in(content: str) -> int:
    found = re.search(r"(\d+)", content)
    assert found, content
    return int(found.group(1))


def test_a_sender_over_the_limit_gets_a_polite_reply_and_nothing_is_filed(
        world: World, client: FlaskClient, account: None, limit_two: None) -> None:
    for msg_id in (1, 2):
        reply_content(post(client, text_xml(TEXT, msg_id=msg_id)))
    response = post(client, text_xml(TEXT, msg_id=3))
    assert response.status_code == 200  # WeChat shows the follower a reply, never a bare 429
    content = reply_content(response)
    assert ticket_count() == 2
    assert all(t.number not in content for t in tickets())
    assert 1 <= minutes_in(content) <= 10


def test_a_retry_after_the_limit_still_answers_with_its_ticket(
        world: World, client: FlaskClient, account: None, limit_two: None) -> None:
    first = reply_content(post(client, text_xml(TEXT, msg_id=1)))
    reply_content(post(client, text_xml(TEXT, msg_id=2)))
    reply_content(post(client, text_xml(TEXT, msg_id=3)))  # over the limit
    assert reply_content(post(client, text_xml(TEXT, msg_id=1))) == first
    assert ticket_count() == 2


def test_the_limit_is_per_sender(world: World, client: FlaskClient, account: None, limit_two: None) -> None:
    for msg_id in (1, 2, 3):
        reply_content(post(client, text_xml(TEXT, msg_id=msg_id)))
    reply_content(post(client, text_xml(TEXT, msg_id=4, openid="another-follower")))
    assert ticket_count() == 3


def test_query_is_not_limited(world: World, client: FlaskClient, account: None, limit_two: None) -> None:
    reply_content(post(client, text_xml(TEXT, msg_id=1)))
    [ticket] = tickets()
    for msg_id in range(10, 15):
        assert ticket.number in reply_content(post(client, text_xml("查询", msg_id=msg_id)))


def test_housekeeping_forgets_location_pins_too_old_to_place_a_ticket(ctx: Flask) -> None:
    from workers.jobs import housekeeping

    now = utcnow()
    db.session.add_all([
        WechatFollower(openid="old", lat=36.0, lon=120.0, located_at=now - LOCATION_FRESH_FOR - timedelta(minutes=1)),
        WechatFollower(openid="fresh", lat=36.0, lon=120.0, located_at=now - timedelta(hours=1)),
    ])
    db.session.commit()
    assert housekeeping().startswith("location pins forgotten 1,")
    assert db.session.scalars(select(WechatFollower.openid)).all() == ["fresh"]
