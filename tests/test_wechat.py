"""The WeChat official account: signed XML callback, plain and safe mode, one ticket per MsgId.

Locations, the place of a request and the rate limit: test_wechat_place.py; photos:
test_wechat_media.py.
"""
from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from wechatpy.crypto import WeChatCrypto

from tests.factories import PHONE, World, make_ticket
from tests.wechat_helpers import (
    OPENID,
    TEXT,
    URL,
    post,
    post_encrypted,
    reply_content,
    signed,
    text_xml,
    ticket_count,
    tickets,
)
from ticketing.extensions import db
from ticketing.models import Notification
from ticketing.services.photos import PhotoStore


def test_server_verification_echoes_echostr(client: FlaskClient, account: None) -> None:
    response = client.get(URL, query_string=signed(echostr="hello-wechat"))
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "hello-wechat"


def test_server_verification_with_a_bad_signature_is_403(client: FlaskClient, account: None) -> None:
    assert client.get(URL, query_string=signed("other-token", echostr="x")).status_code == 403
    assert client.get(URL, query_string={"echostr": "x"}).status_code == 403


def test_the_channel_is_off_without_a_token(world: World, client: FlaskClient) -> None:
    assert client.get(URL, query_string=signed(echostr="x")).status_code == 404
    assert post(client, text_xml(TEXT)).status_code == 404
    assert ticket_count() == 0


def test_a_text_message_files_a_ticket_and_the_reply_has_its_number(
        world: World, client: FlaskClient, account: None) -> None:
    content = reply_content(post(client, text_xml(TEXT)))
    [ticket] = tickets()
    assert ticket.channel == "wechat_oa"
    assert ticket.external_id == "wx:1234567890123456"
    assert ticket.resident_openid == OPENID
    assert ticket.requester_phone == PHONE
    assert ticket.building_id == world.building_managed.id
    assert ticket.category.code == "repair.stair_light"
    assert ticket.number in content
    assert re.search(r"http://\S+/t/\S+", content)


def test_retries_of_one_message_file_one_ticket(world: World, client: FlaskClient, account: None) -> None:
    args, body = signed(), text_xml(TEXT)  # WeChat resends the very same request
    replies = [reply_content(post(client, body, args=args)) for _ in range(3)]
    assert ticket_count() == 1
    assert len(set(replies)) == 1


def test_a_message_without_a_phone_files_nothing_and_asks_for_one(
        world: World, client: FlaskClient, account: None) -> None:
    content = reply_content(post(client, text_xml("红星小区3号楼楼道灯坏了")))
    assert ticket_count() == 0
    assert "13812345678" in content  # the example number in the request for one


def test_an_unrelated_text_falls_back_to_the_general_suggestion(
        world: World, client: FlaskClient, account: None) -> None:
    reply_content(post(client, text_xml(f"东怡社区能不能多办些活动 {PHONE}")))
    [ticket] = tickets()
    assert ticket.category.code == "suggestion.general"
    assert ticket.community_id == world.community_a.id


def test_a_text_is_classified_and_urgent_words_raise_its_tier(
        world: World, client: FlaskClient, account: None) -> None:
    reply_content(post(client, text_xml(f"红星小区3号楼楼道灯坏了，开关冒烟起火了 {PHONE}")))
    [ticket] = tickets()
    assert ticket.category.code == "repair.stair_light"  # guessed from the words
    assert ticket.guess_category_id == ticket.category_id and ticket.guess_confidence > 0
    assert ticket.tier.code == "urgent"  # not the light's own tier: 起火
    assert "起火" in ticket.events[0].detail["urgent"]


def test_a_bad_signature_is_403_and_nothing_filed(world: World, client: FlaskClient, account: None) -> None:
    assert post(client, text_xml(TEXT), token="not-the-token").status_code == 403
    assert ticket_count() == 0


@pytest.mark.parametrize("body", [
    ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x "boom">]>'
     f"<xml><FromUserName>{OPENID}</FromUserName><MsgType>text</MsgType>"
     f"<Content>&x; {PHONE}</Content><MsgId>1</MsgId></xml>"),
    '<!doctype xml SYSTEM "file:///etc/passwd"><xml><MsgType>text</MsgType></xml>',
    "<xml><MsgType>text</MsgType><Content>unclosed",
])
def test_xml_with_entities_or_malformed_is_400_and_nothing_filed(
        world: World, client: FlaskClient, account: None, body: str) -> None:
    assert post(client, body).status_code == 400
    assert ticket_count() == 0


def test_an_oversized_body_is_413(world: World, client: FlaskClient, account: None) -> None:
    assert post(client, text_xml("漏" * 30000 + PHONE)).status_code == 413
    assert ticket_count() == 0


def test_query_lists_the_senders_tickets(world: World, client: FlaskClient, account: None,
                                         store: PhotoStore) -> None:
    reply_content(post(client, text_xml(TEXT)))
    other = make_ticket(world, store)  # someone else's, from the web form: not listed
    content = reply_content(post(client, text_xml("查询", msg_id=2)))
    [mine] = [t for t in tickets() if t.resident_openid == OPENID]
    assert mine.number in content
    assert other.number not in content
    assert ticket_count() == 2
    empty = reply_content(post(client, text_xml("查询", msg_id=3, openid="someone-else")))
    assert mine.number not in empty


def test_a_second_message_is_placed_like_the_senders_last_ticket(
        world: World, client: FlaskClient, account: None) -> None:
    reply_content(post(client, text_xml(TEXT)))
    reply_content(post(client, text_xml(f"门口垃圾没人清 {PHONE}", msg_id=2)))
    first, second = tickets()
    assert second.building_id == first.building_id == world.building_managed.id




def test_safe_mode_round_trip(world: World, client: FlaskClient, safe_mode: WeChatCrypto) -> None:
    reply = post_encrypted(client, safe_mode, text_xml(TEXT))
    [ticket] = tickets()
    assert ticket.resident_openid == OPENID
    assert ticket.number in reply["Content"]
    assert reply["ToUserName"] == OPENID
    # a wrong msg_signature is refused
    args = signed(encrypt_type="aes")
    encrypted = safe_mode.encrypt_message(text_xml(TEXT), args["nonce"], args["timestamp"])
    response = client.post(URL, query_string={**args, "msg_signature": "0" * 40},
                           data=encrypted.encode(), content_type="text/xml")
    assert response.status_code == 403


def test_a_wechat_tickets_resident_messages_go_to_the_openid(
        world: World, client: FlaskClient, account: None, store: PhotoStore) -> None:
    reply_content(post(client, text_xml(TEXT)))
    [ticket] = tickets()
    notes = list(db.session.scalars(select(Notification).where(Notification.ticket_id == ticket.id,
                                                               Notification.user_id.is_(None))))
    assert notes, "the resident is told the ticket was received"
    assert all(n.channel == "wechat" and n.address == OPENID for n in notes)
    web = make_ticket(world, store)  # a web ticket's still go by SMS
    notes = list(db.session.scalars(select(Notification).where(Notification.ticket_id == web.id,
                                                               Notification.user_id.is_(None))))
    assert notes and all(n.channel == "sms" and n.address == PHONE for n in notes)


