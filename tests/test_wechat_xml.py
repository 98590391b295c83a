"""The WeChat callback with XML WeChat would never send: a specific answer, never a 500.

A well-formed message with a field of the wrong shape is answered "success" (WeChat
then stops retrying) and does nothing; a body that is not a follower's message is a
400; XML that declares a DOCTYPE or entities is never expanded.
"""
from __future__ import annotations

import time

import pytest
from flask.testing import FlaskClient

from tests.factories import PHONE, World
from tests.wechat_helpers import OPENID, TEXT, post, text_xml, ticket_count


def message(fields: str, kind: str = "text", openid: str = OPENID) -> str:
    return (f"<xml><ToUserName>gh_minhu</ToUserName><FromUserName>{openid}</FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType>{kind}</MsgType>{fields}</xml>")


def assert_success(response: object) -> None:
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert response.get_data(as_text=True) == "success"  # type: ignore[attr-defined]


@pytest.mark.parametrize("fields", [
    f"<Content><b>红星小区3号楼漏水</b> {PHONE}</Content><MsgId>1</MsgId>",  # a child element
    f"<Content>红星小区3号楼漏水 {PHONE}</Content><Content>查询</Content><MsgId>1</MsgId>",  # twice
    f"<Content>红星小区3号楼漏水 {PHONE}</Content><MsgId>{'9' * 200}</MsgId>",
    f"<Content>红星小区3号楼漏水 {PHONE}</Content><MsgId>abc</MsgId>",
    f"<Content>红星小区3号楼漏水 {PHONE}</Content><MsgId>-5</MsgId>",
    f"<Content>红星小区3号楼漏水 {PHONE}</Content><MsgId>18446744073709551616</MsgId>",  # 2**64
    f"<Content>红星小区3号楼漏水 {PHONE}</Content><MsgId><n>1</n></MsgId>",
])
def test_a_text_with_a_field_of_the_wrong_shape_is_answered_success_and_files_nothing(
        world: World, client: FlaskClient, account: None, fields: str) -> None:
    assert_success(post(client, message(fields)))
    assert ticket_count() == 0


def test_a_msgid_of_twenty_digits_is_a_real_one(world: World, client: FlaskClient, account: None) -> None:
    response = post(client, text_xml(TEXT, msg_id=2**64 - 1))
    assert response.status_code == 200 and response.get_data(as_text=True) != "success"
    assert ticket_count() == 1


@pytest.mark.parametrize("fields", [
    "<PicUrl>http://mmbiz.qpic.cn/x</PicUrl><MediaId>m1</MediaId><MsgId>abc</MsgId>",
    "<PicUrl><a>x</a></PicUrl><MediaId>m1</MediaId><MsgId>7</MsgId>",
])
def test_an_image_with_a_field_of_the_wrong_shape_is_answered_success(
        world: World, client: FlaskClient, account: None, fields: str) -> None:
    assert_success(post(client, message(fields, kind="image")))


def test_a_location_with_a_label_of_child_elements_is_answered_success(
        world: World, client: FlaskClient, account: None) -> None:
    fields = ("<Location_X>39.91</Location_X><Location_Y>116.38</Location_Y><Scale>16</Scale>"
              "<Label><road>东怡街</road></Label><MsgId>8</MsgId>")
    assert_success(post(client, message(fields, kind="location")))


@pytest.mark.parametrize("body", [
    message(f"<Content>{TEXT}</Content><MsgId>1</MsgId>").replace(f"<FromUserName>{OPENID}</FromUserName>", ""),
    message(f"<Content>{TEXT}</Content><MsgId>1</MsgId>", openid="<id>x</id>"),
    message(f"<Content>{TEXT}</Content><MsgId>1</MsgId>", openid=""),
    "<xml><FromUserName>x</FromUserName></xml>",  # no MsgType
    "<notxml/>",
    "",
])
def test_a_body_that_is_not_a_followers_message_is_400(
        world: World, client: FlaskClient, account: None, body: str) -> None:
    assert post(client, body).status_code == 400
    assert ticket_count() == 0


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "ha">'
    + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
    + f"]><xml><FromUserName>{OPENID}</FromUserName><MsgType>text</MsgType>"
    f"<Content>&j; {PHONE}</Content><MsgId>1</MsgId></xml>"
)


def test_entity_expansion_is_refused_quickly(world: World, client: FlaskClient, account: None) -> None:
    started = time.monotonic()
    assert post(client, BILLION_LAUGHS).status_code == 400
    assert time.monotonic() - started < 2
    assert ticket_count() == 0


@pytest.mark.parametrize("body", [
    # a DOCTYPE spelled in UTF-16 inside a body declared UTF-16 but sent as UTF-8 bytes
    (b'<?xml version="1.0" encoding="UTF-16"?>' + "<!DOCTYPE x [<!ENTITY e 'x'>]>".encode("utf-16-le")
     + f"<xml><FromUserName>{OPENID}</FromUserName><MsgType>text</MsgType><Content>&e;</Content></xml>".encode()),
    # the whole body in UTF-16
    BILLION_LAUGHS.replace("1.0", '1.0" encoding="UTF-16').encode("utf-16"),
    # a parameter entity, spaced out
    f'<!DOCTYPE xml [ <! ENTITY % p SYSTEM "file:///etc/passwd"> %p; ]>{message("<MsgId>1</MsgId>")}'.encode(),
])
def test_xml_declarations_hidden_by_encoding_are_refused(
        world: World, client: FlaskClient, account: None, body: bytes) -> None:
    assert post(client, body).status_code == 400
    assert ticket_count() == 0
