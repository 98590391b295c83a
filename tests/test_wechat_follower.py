"""WeChat without retyping: a follower's phone and last place are remembered, 忘记我
erases them, and the official account's menu opens the web form as the follower
(web authorisation, a fake token endpoint on this machine)."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from alembic.script import ScriptDirectory
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import downgrade, upgrade
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

import config
from tests.factories import PHONE, T0, World, advance, build_world, make_ticket
from tests.resident_helpers import form_data, post_report
from tests.wechat_helpers import OPENID, TEXT, post, reply_content, text_xml, ticket_count, tickets
from ticketing import create_app
from ticketing.channels import wechat_oauth
from ticketing.extensions import db
from ticketing.models import Notification, Ticket, utcnow
from ticketing.models.channels import WechatFollower
from ticketing.services import followers, retention
from ticketing.services.photos import PhotoStore

MASKED = "138****5678"
NEW_PHONE = "13900001111"
QUIET = "门口垃圾好几天没人清了"  # names no place and no phone


def follower(openid: str = OPENID) -> WechatFollower | None:
    db.session.expire_all()
    return db.session.get(WechatFollower, openid)


def say(client: FlaskClient, text: str, msg_id: int, openid: str = OPENID) -> str:
    return reply_content(post(client, text_xml(text, msg_id=msg_id, openid=openid)))


# --- messages: the phone and place remembered -------------------------------------


def test_the_first_request_remembers_the_phone_and_place_and_says_so(
        world: World, client: FlaskClient, account: None) -> None:
    content = say(client, TEXT, 1)
    row = follower()
    assert row is not None and row.phone == PHONE
    assert (row.last_community_id, row.last_building_id) == (world.community_a.id, world.building_managed.id)
    assert MASKED in content and PHONE not in content
    assert "忘记我" in content  # how to have it forgotten


def test_a_request_is_filed_and_answered_when_remembering_fails(
        world: World, client: FlaskClient, account: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("INSERT INTO wechat_followers", {}, Exception("connection lost"))

    monkeypatch.setattr(followers, "_upsert", broken)
    content = say(client, TEXT, 1)
    assert ticket_count() == 1 and tickets()[0].number in content
    assert follower() is None


def test_the_phone_and_place_are_remembered_committed(
        world: World, client: FlaskClient, account: None) -> None:
    say(client, TEXT, 1)
    db.session.rollback()  # nothing left for the session to commit: the row is there for everyone
    row = follower()
    assert row is not None and row.phone == PHONE


def test_a_second_message_without_a_phone_is_filed_with_the_remembered_one(
        world: World, client: FlaskClient, account: None) -> None:
    say(client, TEXT, 1)
    content = say(client, QUIET, 2)
    second = tickets()[1]
    assert second.requester_phone == PHONE and second.resident_openid == OPENID
    assert second.building_id == world.building_managed.id  # the remembered place
    assert second.number in content and MASKED in content


def test_a_place_named_in_the_text_beats_the_remembered_place(
        world: World, client: FlaskClient, account: None) -> None:
    say(client, TEXT, 1)  # 红星小区 3号楼, community A
    say(client, "西岭社区东苑2号楼水管爆了", 2)
    second = tickets()[1]
    assert (second.community_id, second.building_id) == (world.community_b.id, world.building_east.id)
    row = follower()
    assert row is not None and row.last_community_id == world.community_b.id  # now the last place


def test_a_message_with_a_new_phone_updates_it(world: World, client: FlaskClient, account: None) -> None:
    say(client, TEXT, 1)
    say(client, f"{QUIET} {NEW_PHONE}", 2)
    say(client, "楼下路灯又坏了", 3)
    assert [t.requester_phone for t in tickets()] == [PHONE, NEW_PHONE, NEW_PHONE]


def test_a_new_phone_sent_alone_is_remembered_and_files_nothing(
        world: World, client: FlaskClient, account: None) -> None:
    say(client, TEXT, 1)
    content = say(client, "139 0000 1111", 2)
    assert ticket_count() == 1
    assert "139****1111" in content
    row = follower()
    assert row is not None and row.phone == NEW_PHONE


@pytest.mark.parametrize("command", ["忘记我", "删除我的信息", " 忘记我！"])
def test_forget_me_erases_the_phone_and_place(
        world: World, client: FlaskClient, account: None, command: str) -> None:
    say(client, TEXT, 1)
    content = say(client, command, 2)
    assert follower() is None
    assert ticket_count() == 1 and "查询" in content
    refused = say(client, QUIET, 3)  # nothing remembered: the phone is asked for again
    assert ticket_count() == 1 and "13812345678" in refused
    [ticket] = tickets()
    assert ticket.requester_phone == PHONE  # a filed request keeps its data until retention


def test_thanks_are_not_filed_on_the_remembered_phone(
        world: World, client: FlaskClient, account: None) -> None:
    say(client, TEXT, 1)
    for msg_id, chat in enumerate(["谢谢！", "好的", "在吗", "[微笑]"], start=2):
        assert say(client, chat, msg_id)
    assert ticket_count() == 1


def test_a_follower_with_nothing_remembered_must_still_give_a_phone(
        world: World, client: FlaskClient, account: None) -> None:
    say(client, TEXT, 1, openid="someone-else")
    say(client, QUIET, 2)
    assert ticket_count() == 1 and follower() is None


def test_the_ticket_number_gets_its_status_only_for_its_own_follower(
        world: World, client: FlaskClient, account: None) -> None:
    say(client, TEXT, 1)
    [ticket] = tickets()
    for msg_id, asked in enumerate([ticket.number, ticket.number.replace("-", ""), f"查询 {ticket.number}"], 2):
        content = say(client, asked, msg_id)
        assert ticket.number in content and "/t/" in content
    other = say(client, ticket.number, 9, openid="someone-else")
    assert "/t/" not in other
    assert ticket_count() == 1


def test_the_menus_query_button_lists_the_followers_requests(
        world: World, client: FlaskClient, account: None) -> None:
    say(client, TEXT, 1)
    [ticket] = tickets()
    click = ("<xml><ToUserName>gh_minhu</ToUserName>"
             f"<FromUserName>{OPENID}</FromUserName><CreateTime>1</CreateTime>"
             "<MsgType>event</MsgType><Event>CLICK</Event><EventKey>MINHU_QUERY</EventKey></xml>")
    assert ticket.number in reply_content(post(client, click))


# --- what is forgotten, when ------------------------------------------------------


def test_retention_forgets_a_follower_once_all_their_tickets_are_erased(world: World, store: PhotoStore) -> None:
    old = make_ticket(world, store, openid=OPENID)
    followers.remember(old, T0)
    db.session.commit()
    advance(old, "closed", world)
    later = T0 + timedelta(days=1096)
    assert retention.purge(later, 1095, store, dry_run=True).followers == 1
    assert follower() is not None  # a dry run changes nothing
    result = retention.purge(later, 1095, store)
    assert (result.tickets, result.followers) == (1, 1)
    assert follower() is None


def test_retention_keeps_a_follower_with_a_recent_ticket(world: World, store: PhotoStore) -> None:
    old = make_ticket(world, store, openid=OPENID)
    advance(old, "closed", world)
    recent = make_ticket(world, store, now=T0 + timedelta(days=1000), openid=OPENID)
    followers.remember(recent, T0)
    db.session.commit()
    later = T0 + timedelta(days=1096)
    assert retention.purge(later, 1095, store, dry_run=True).followers == 0
    assert retention.purge(later, 1095, store).followers == 0
    row = follower()
    assert row is not None and row.phone == PHONE


def test_retention_keeps_a_number_sent_alone_until_it_is_as_old_as_a_ticket_would_be(
        world: World, store: PhotoStore) -> None:
    followers.remember_phone(OPENID, PHONE, T0)
    db.session.commit()
    assert retention.purge(T0 + timedelta(days=1000), 1095, store).followers == 0
    assert follower() is not None
    assert retention.purge(T0 + timedelta(days=1096), 1095, store).followers == 1
    assert follower() is None


def test_housekeeping_forgets_an_old_pin_but_not_the_phone(ctx: Flask) -> None:
    from workers.jobs import housekeeping

    db.session.add(WechatFollower(openid=OPENID, lat=36.0, lon=120.0, label="家",
                                  located_at=utcnow() - timedelta(days=2), phone=PHONE))
    db.session.commit()
    assert housekeeping().startswith("location pins forgotten 1,")
    row = follower()
    assert row is not None and row.phone == PHONE
    assert (row.lat, row.label, row.located_at) == (None, "", None)


# --- the menu opens the form as the follower (web authorisation) --------------------

APP_SECRET = "minhu-app-secret"
CODE = "051abcDEF_code-1"


class FakeWechat:
    """WeChat's token endpoint on this machine: it answers `reply` and keeps the queries."""

    def __init__(self) -> None:
        self.queries: list[dict[str, list[str]]] = []
        self.status = 200
        self.reply: dict[str, Any] = {"access_token": "at", "expires_in": 7200, "refresh_token": "rt",
                                      "openid": OPENID, "scope": "snsapi_base"}


@pytest.fixture()
def fake_wechat() -> Iterator[tuple[FakeWechat, str]]:
    fake = FakeWechat()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's name for it
            fake.queries.append(parse_qs(urlsplit(self.path).query))
            body = json.dumps(fake.reply).encode()
            self.send_response(fake.status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}/sns/oauth2/access_token"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def oauth(ctx: Flask, monkeypatch: pytest.MonkeyPatch, fake_wechat: tuple[FakeWechat, str]) -> FakeWechat:
    fake, url = fake_wechat
    monkeypatch.setitem(ctx.config, "WECHAT_APP_ID", "wx0123456789abcdef")
    monkeypatch.setitem(ctx.config, "WECHAT_APP_SECRET", APP_SECRET)
    monkeypatch.setitem(ctx.config, "WECHAT_OAUTH_TOKEN_URL", url)
    monkeypatch.setitem(ctx.config, "PUBLIC_URL", "https://minhu.example.cn")
    return fake


def start(client: FlaskClient) -> str:
    """Press the menu's 报修 button; the state WeChat would send back."""
    response = client.get("/channels/wechat/oauth?next=report")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("https://open.weixin.qq.com/connect/oauth2/authorize?")
    assert location.endswith("#wechat_redirect")
    query = parse_qs(urlsplit(location).query)
    assert query["appid"] == ["wx0123456789abcdef"] and query["scope"] == ["snsapi_base"]
    assert query["response_type"] == ["code"]
    assert query["redirect_uri"] == ["https://minhu.example.cn/channels/wechat/oauth/callback"]
    return query["state"][0]


def sign_in(client: FlaskClient) -> None:
    """The whole way from the menu to the form."""
    state = start(client)
    response = client.get("/channels/wechat/oauth/callback", query_string={"code": CODE, "state": state})
    assert response.status_code == 303 and response.headers["Location"].endswith("/report")


def session_openid(client: FlaskClient) -> str | None:
    with client.session_transaction() as session:
        return followers.openid_from_session(session.get(followers.SESSION_KEY), utcnow())


def test_the_menu_signs_the_follower_in_with_the_code_exchanged_at_wechat(
        world: World, client: FlaskClient, oauth: FakeWechat) -> None:
    sign_in(client)
    assert session_openid(client) == OPENID
    [query] = oauth.queries
    assert query == {"appid": ["wx0123456789abcdef"], "secret": [APP_SECRET], "code": [CODE],
                     "grant_type": ["authorization_code"]}


def test_the_form_is_prefilled_and_the_ticket_stays_on_wechat(
        world: World, client: FlaskClient, account: None, oauth: FakeWechat) -> None:
    say(client, TEXT, 1)  # remembered: the phone and 红星小区 3号楼
    sign_in(client)
    response = client.get("/report")
    page = response.get_data(as_text=True)
    assert MASKED in page and PHONE not in page  # the phone is shown masked, never whole
    assert response.headers["Cache-Control"] == "private, no-store"
    assert f'<option value="{world.building_managed.id}" selected>' in page
    assert f'<option value="{world.managed.id}" selected>' in page
    data = form_data(world, phone="", complex_id=str(world.managed.id),
                     building_id=str(world.building_managed.id))
    response = post_report(client, data)
    assert response.status_code == 303, response.get_data(as_text=True)[:400]
    ticket = tickets()[-1]
    assert (ticket.channel, ticket.resident_openid, ticket.requester_phone) == ("web", OPENID, PHONE)
    notes = db.session.scalars(select(Notification).where(Notification.ticket_id == ticket.id,
                                                          Notification.user_id.is_(None))).all()
    assert notes and all(n.channel == "wechat" and n.address == OPENID for n in notes)
    assert ticket.number in say(client, "查询", 2)  # and 查询 finds it on WeChat


def test_a_phone_typed_on_the_form_replaces_the_remembered_one(
        world: World, client: FlaskClient, account: None, oauth: FakeWechat) -> None:
    say(client, TEXT, 1)
    sign_in(client)
    assert post_report(client, form_data(world, phone=NEW_PHONE)).status_code == 303
    row = follower()
    assert row is not None and row.phone == NEW_PHONE
    assert row.last_building_id == world.building_courtyard.id


def test_a_first_time_follower_files_with_a_typed_phone_and_is_remembered(
        world: World, client: FlaskClient, oauth: FakeWechat) -> None:
    sign_in(client)
    page = client.get("/report").get_data(as_text=True)
    assert "WeChat" in page or "微信" in page
    assert post_report(client, form_data(world, phone="")).status_code == 400  # no phone known yet
    assert post_report(client, form_data(world)).status_code == 303
    [ticket] = tickets()
    assert ticket.resident_openid == OPENID
    row = follower()
    assert row is not None and row.phone == PHONE


@pytest.mark.parametrize("state", [None, "", "not-the-state"])
def test_a_bad_state_is_refused_and_nothing_stored(
        world: World, client: FlaskClient, oauth: FakeWechat, state: str | None) -> None:
    start(client)
    args = {"code": CODE} if state is None else {"code": CODE, "state": state}
    response = client.get("/channels/wechat/oauth/callback", query_string=args)
    assert response.status_code == 400
    assert oauth.queries == []  # the code was never exchanged
    assert session_openid(client) is None
    assert post_report(client, form_data(world)).status_code == 303
    assert tickets()[0].resident_openid is None and follower() is None


def test_a_state_from_another_browser_is_refused(world: World, client: FlaskClient, oauth: FakeWechat,
                                                 app: Flask) -> None:
    state = start(app.test_client())  # the attacker's own sign-in, begun elsewhere
    response = client.get("/channels/wechat/oauth/callback", query_string={"code": CODE, "state": state})
    assert response.status_code == 400 and session_openid(client) is None


def test_a_state_is_good_once(world: World, client: FlaskClient, oauth: FakeWechat) -> None:
    state = start(client)
    args = {"code": CODE, "state": state}
    assert client.get("/channels/wechat/oauth/callback", query_string=args).status_code == 303
    assert client.get("/channels/wechat/oauth/callback", query_string=args).status_code == 400


@pytest.mark.parametrize("reply", [{"errcode": 40029, "errmsg": "invalid code"}, {"access_token": "at"},
                                   {"openid": "has spaces and <html>"}])
def test_a_failed_code_exchange_gets_a_clear_error_page(
        world: World, client: FlaskClient, oauth: FakeWechat, reply: dict[str, Any]) -> None:
    oauth.reply = reply
    state = start(client)
    response = client.get("/channels/wechat/oauth/callback", query_string={"code": CODE, "state": state})
    assert response.status_code == 502
    page = response.get_data(as_text=True)
    assert "/report" in page and "/channels/wechat/oauth" in page  # the form without WeChat, or again
    assert session_openid(client) is None


def test_wechat_answering_an_http_error_or_not_at_all_is_a_clear_error(
        world: World, client: FlaskClient, oauth: FakeWechat, ctx: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    oauth.status = 503
    state = start(client)
    assert client.get("/channels/wechat/oauth/callback",
                      query_string={"code": CODE, "state": state}).status_code == 502
    monkeypatch.setitem(ctx.config, "WECHAT_OAUTH_TOKEN_URL", "http://127.0.0.1:9/closed")
    state = start(client)
    assert client.get("/channels/wechat/oauth/callback",
                      query_string={"code": CODE, "state": state}).status_code == 502
    assert session_openid(client) is None


def test_the_code_is_exchanged_with_a_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def get(url: str, **kwargs: Any) -> Any:
        seen.update(kwargs)
        raise wechat_oauth.requests.Timeout("slow")

    monkeypatch.setattr(wechat_oauth.requests, "get", get)
    settings = wechat_oauth.OAuthSettings("wx1", APP_SECRET)
    with pytest.raises(wechat_oauth.OAuthFailed) as failed:
        wechat_oauth.exchange_code(settings, CODE)
    assert seen["timeout"] == wechat_oauth.TIMEOUT
    assert APP_SECRET not in failed.value.reason and APP_SECRET not in repr(settings)


def test_web_authorisation_is_off_without_the_app_secret(world: World, client: FlaskClient) -> None:
    assert client.get("/channels/wechat/oauth").status_code == 404
    assert client.get("/channels/wechat/oauth/callback?code=x&state=y").status_code == 404


def test_the_session_speaks_for_the_follower_only_for_a_while() -> None:
    now = utcnow()
    kept = followers.session_value(OPENID, now)
    assert followers.openid_from_session(kept, now + timedelta(minutes=30)) == OPENID
    assert followers.openid_from_session(kept, now + followers.SESSION_FOR + timedelta(minutes=1)) is None
    assert followers.openid_from_session({"openid": "bad openid", "at": kept["at"]}, now) is None
    assert followers.openid_from_session("not a dict", now) is None


def test_without_the_menu_the_form_files_no_openid(world: World, client: FlaskClient, account: None) -> None:
    say(client, TEXT, 1)  # remembered, but this browser did not come through the menu
    page = client.get("/report").get_data(as_text=True)
    assert MASKED not in page
    assert post_report(client, form_data(world)).status_code == 303
    assert db.session.scalars(select(Ticket.resident_openid).order_by(Ticket.id)).all() == [OPENID, None]


def test_the_code_stays_out_of_the_logs() -> None:
    from ticketing.logscrub import scrub_message, scrub_target

    assert CODE not in scrub_target(f"/channels/wechat/oauth/callback?code={CODE}&state=s")
    line = f'"GET /sns/oauth2/access_token?appid=wx1&secret={APP_SECRET}&code={CODE}&grant_type=x HTTP/1.1"'
    assert CODE not in scrub_message(line) and APP_SECRET not in scrub_message(line)


def test_the_upgrade_copies_each_followers_last_place_but_no_phone(tmp_path: Path) -> None:
    from ticketing.services import refcache

    app = create_app(config.testing_config(f"sqlite:///{tmp_path / 'migrated.db'}", tmp_path))
    refcache.clear()
    try:
        with app.app_context():
            # The tickets are made by today's models, on today's schema; then the schema goes
            # back to before this migration (keeping the rows) and forward through it again.
            scripts = ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config())
            upgrade()
            world = build_world()
            store = PhotoStore(app.config["UPLOAD_FOLDER"])
            make_ticket(world, store, openid=OPENID)
            newest = make_ticket(world, store, openid=OPENID, building=world.building_east)
            make_ticket(world, store, openid="erased-one").personal_data_erased_at = T0
            db.session.commit()
            db.session.execute(text("DELETE FROM wechat_followers"))
            db.session.commit()
            expected = (OPENID, "", newest.building_id, world.community_b.id)
            db.session.remove()
            downgrade(revision=scripts.get_revision("0021_wechat_followers").down_revision)
            upgrade(revision="0021_wechat_followers")
            with db.engine.begin() as conn:
                rows = conn.execute(text("SELECT openid, phone, last_building_id, last_community_id "
                                         "FROM wechat_followers")).all()
            db.engine.dispose()
    finally:
        refcache.clear()
    assert [tuple(row) for row in rows] == [expected]
