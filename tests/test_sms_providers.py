"""Real SMS: Aliyun and Tencent Cloud senders (services/sms.py) against local fakes that
check each request's signature as the provider does (tests/sms_fake.py).

A message is sent, retried later, or failed for good as the provider's answer means;
a request signed with the wrong secret is refused; each kind's template gets its
values in order; no phone number or secret reaches a log line.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from config import Config, ConfigError, parse_sms_templates
from tests.factories import PHONE, T0, World, advance, calendar, make_ticket
from tests.redis_server import free_port
from tests.sms_fake import APP_ID, KEY_ID, SECRET, FakeAliyun, FakeTencent
from ticketing.extensions import db
from ticketing.models import Notification
from ticketing.services import notify, sms
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.notify import RetryLater
from ticketing.services.photos import PhotoStore

TEMPLATES = {
    "received": {"code": "SMS_100", "params": [["number", "number"], ["category", "category"], ["link", "link"]]},
    "resolved": {"code": "SMS_200", "params": [["no", "number"], ["result", "note"], ["link", "link"]]},
}


@pytest.fixture()
def aliyun(ctx: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAliyun]:
    """The app sending SMS through Aliyun, reached at a local fake."""
    with FakeAliyun() as fake:
        for name, value in {"SMS_SENDER": "aliyun", "SMS_SIGN_NAME": "民呼", "SMS_TEMPLATES": TEMPLATES,
                            "ALIYUN_ACCESS_KEY_ID": KEY_ID, "ALIYUN_ACCESS_KEY_SECRET": SECRET,
                            "ALIYUN_SMS_ENDPOINT": fake.url}.items():
            monkeypatch.setitem(ctx.config, name, value)
        yield fake


@pytest.fixture()
def tencent(ctx: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTencent]:
    """The app sending SMS through Tencent Cloud, reached at a local fake."""
    with FakeTencent() as fake:
        for name, value in {"SMS_SENDER": "tencent", "SMS_SIGN_NAME": "民呼", "SMS_TEMPLATES": TEMPLATES,
                            "TENCENTCLOUD_SECRET_ID": KEY_ID, "TENCENTCLOUD_SECRET_KEY": SECRET,
                            "TENCENT_SMS_SDK_APP_ID": APP_ID, "TENCENT_SMS_ENDPOINT": fake.url}.items():
            monkeypatch.setitem(ctx.config, name, value)
        yield fake


def received_sms(world: World, store: PhotoStore) -> Notification:
    """File a ticket: the resident's "received" SMS it queues."""
    ticket = make_ticket(world, store)
    return db.session.scalars(select(Notification).where(
        Notification.ticket_id == ticket.id, Notification.kind == "received")).one()


def reloaded(message: Notification) -> Notification:
    db.session.expire_all()
    return db.session.get(Notification, message.id)


# --- the signatures, against the providers' own examples ------------------------------


def test_the_aliyun_signature_matches_the_example_of_its_documentation() -> None:
    # The RPC signature page's example (签名机制): DescribeRegions signed with "testsecret".
    params = {"AccessKeyId": "testid", "Action": "DescribeRegions", "Format": "XML", "SignatureMethod": "HMAC-SHA1",
              "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "SignatureVersion": "1.0",
              "Timestamp": "2016-02-23T12:46:24Z", "Version": "2014-05-26"}
    assert sms.aliyun_string_to_sign("GET", params) == (
        "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1"
        "%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0"
        "%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26")
    assert sms.aliyun_signature("GET", params, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_the_tencent_canonical_request_matches_the_example_of_its_documentation() -> None:
    # 签名方法 v3's example: CVM DescribeInstances, headers content-type, host and x-tc-action.
    payload = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    headers = {"Content-Type": "application/json; charset=utf-8", "Host": "cvm.tencentcloudapi.com",
               "X-TC-Action": "DescribeInstances"}
    canonical = sms.tc3_canonical_request("POST", headers, ("content-type", "host", "x-tc-action"), payload)
    assert canonical.endswith("35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064")
    assert hashlib.sha256(canonical.encode()).hexdigest() == \
        "7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84"


# --- Aliyun ---------------------------------------------------------------------------


def test_aliyun_sends_the_received_sms_with_its_template_and_values(
    world: World, store: PhotoStore, aliyun: FakeAliyun
) -> None:
    message = received_sms(world, store)
    assert notify.deliver(message.id, T0) == "sent"
    message = reloaded(message)
    assert (message.status, message.sender, message.attempts) == ("sent", "aliyun", 1)
    (request,) = aliyun.received
    assert (request["PhoneNumbers"], request["SignName"], request["TemplateCode"]) == (PHONE, "民呼", "SMS_100")
    values = json.loads(request["TemplateParam"])
    assert values["number"] == message.ticket.number and values["category"] == "楼道灯不亮"
    assert values["link"].startswith("http://127.0.0.1:5000/t/")


def test_aliyun_throttling_is_retried_later(world: World, store: PhotoStore, aliyun: FakeAliyun) -> None:
    message = received_sms(world, store)
    aliyun.fail_with = "isv.BUSINESS_LIMIT_CONTROL"
    with pytest.raises(RetryLater):
        notify.deliver(message.id, T0)
    message = reloaded(message)
    assert message.status == "pending" and "isv.BUSINESS_LIMIT_CONTROL" in message.last_error
    aliyun.fail_with = None
    assert notify.deliver(message.id, T0) == "sent"
    assert len(aliyun.received) == 2


def test_aliyun_refusing_the_number_fails_the_message_at_once(
    world: World, store: PhotoStore, aliyun: FakeAliyun
) -> None:
    message = received_sms(world, store)
    aliyun.fail_with = "isv.MOBILE_NUMBER_ILLEGAL"
    assert notify.deliver(message.id, T0) == "failed"
    message = reloaded(message)
    assert (message.status, message.attempts) == ("failed", 1)
    assert message.last_error.startswith("aliyun isv.MOBILE_NUMBER_ILLEGAL") and PHONE not in message.last_error
    assert notify.deliver(message.id, T0) == "not pending"
    assert len(aliyun.received) == 1


def test_aliyun_out_of_balance_fails_the_message_at_once(world: World, store: PhotoStore, aliyun: FakeAliyun) -> None:
    message = received_sms(world, store)
    aliyun.fail_with = "isv.AMOUNT_NOT_ENOUGH"
    assert notify.deliver(message.id, T0) == "failed"


def test_aliyun_refuses_a_request_signed_with_another_secret(
    world: World, store: PhotoStore, aliyun: FakeAliyun, monkeypatch: pytest.MonkeyPatch, ctx: Flask
) -> None:
    monkeypatch.setitem(ctx.config, "ALIYUN_ACCESS_KEY_SECRET", "not-the-secret")
    message = received_sms(world, store)
    with pytest.raises(RetryLater):
        notify.deliver(message.id, T0)
    message = reloaded(message)
    assert message.status == "pending" and message.last_error.startswith("aliyun SignatureDoesNotMatch")
    # The provider echoes what it signed, the phone number with it: never stored whole.
    assert PHONE not in message.last_error and "138****5678" in message.last_error


def test_aliyun_template_values_follow_each_kind_and_long_notes_are_cut(
    world: World, store: PhotoStore, aliyun: FakeAliyun
) -> None:
    ticket = make_ticket(world, store)
    advance(ticket, "accepted", world)
    perform(ticket, "resolve", Actor.staff(world.gina), T0, calendar(), note="更换了三楼和四楼楼道的声控灯" * 4)
    db.session.commit()
    message = db.session.scalars(select(Notification).where(Notification.kind == "resolved")).one()
    assert notify.deliver(message.id, T0) == "sent"
    request = aliyun.received[-1]
    assert request["TemplateCode"] == "SMS_200"
    values = json.loads(request["TemplateParam"])
    assert list(values) == ["no", "result", "link"]
    assert values["no"] == ticket.number
    assert len(values["result"]) == 35 and values["result"].endswith("…")
    assert values["link"] == message.params["link"]  # links are never cut


def test_a_kind_without_a_template_fails_without_asking_the_provider(
    world: World, store: PhotoStore, aliyun: FakeAliyun, monkeypatch: pytest.MonkeyPatch, ctx: Flask
) -> None:
    monkeypatch.setitem(ctx.config, "SMS_TEMPLATES", {"resolved": TEMPLATES["resolved"]})
    message = received_sms(world, store)
    assert notify.deliver(message.id, T0) == "failed"
    assert "SMS_TEMPLATE_RECEIVED" in reloaded(message).last_error
    assert aliyun.received == []


# --- Tencent Cloud ----------------------------------------------------------------------


def test_tencent_sends_the_received_sms_with_its_template_and_values(
    world: World, store: PhotoStore, tencent: FakeTencent
) -> None:
    message = received_sms(world, store)
    assert notify.deliver(message.id, T0) == "sent"
    assert (reloaded(message).status, reloaded(message).sender) == ("sent", "tencent")
    payload = tencent.received[0]["payload"]
    assert payload["PhoneNumberSet"] == [f"+86{PHONE}"]
    assert (payload["SignName"], payload["TemplateId"], payload["SmsSdkAppId"]) == ("民呼", "SMS_100", APP_ID)
    number, category, link = payload["TemplateParamSet"]
    assert (number, category) == (message.ticket.number, "楼道灯不亮") and link.startswith("http://")
    assert tencent.received[0]["headers"]["x-tc-region"] == "ap-guangzhou"


def test_tencent_frequency_limits_on_a_number_are_retried_later(
    world: World, store: PhotoStore, tencent: FakeTencent
) -> None:
    message = received_sms(world, store)
    tencent.fail_with, tencent.fail_per_number = "LimitExceeded.PhoneNumberThirtySecondLimit", True
    with pytest.raises(RetryLater):
        notify.deliver(message.id, T0)
    message = reloaded(message)
    assert message.status == "pending" and "PhoneNumberThirtySecondLimit" in message.last_error
    assert PHONE not in message.last_error


def test_tencent_an_empty_sms_package_fails_the_message_at_once(
    world: World, store: PhotoStore, tencent: FakeTencent
) -> None:
    message = received_sms(world, store)
    tencent.fail_with = "FailedOperation.InsufficientBalanceInSmsPackage"
    assert notify.deliver(message.id, T0) == "failed"
    assert reloaded(message).attempts == 1


def test_tencent_an_unapproved_template_fails_the_message_at_once(
    world: World, store: PhotoStore, tencent: FakeTencent
) -> None:
    message = received_sms(world, store)
    tencent.fail_with, tencent.fail_per_number = "FailedOperation.TemplateIncorrectOrUnapproved", True
    assert notify.deliver(message.id, T0) == "failed"


def test_tencent_refuses_a_request_signed_with_another_secret(
    world: World, store: PhotoStore, tencent: FakeTencent, monkeypatch: pytest.MonkeyPatch, ctx: Flask
) -> None:
    monkeypatch.setitem(ctx.config, "TENCENTCLOUD_SECRET_KEY", "not-the-secret")
    message = received_sms(world, store)
    with pytest.raises(RetryLater):
        notify.deliver(message.id, T0)
    assert reloaded(message).last_error.startswith("tencent AuthFailure.SignatureFailure")


def test_an_unreachable_provider_is_retried_and_named_without_the_request(
    world: World, store: PhotoStore, tencent: FakeTencent, monkeypatch: pytest.MonkeyPatch, ctx: Flask
) -> None:
    monkeypatch.setitem(ctx.config, "TENCENT_SMS_ENDPOINT", f"http://127.0.0.1:{free_port()}/")
    message = received_sms(world, store)
    with pytest.raises(RetryLater):
        notify.deliver(message.id, T0)
    assert reloaded(message).last_error == "tencent: ConnectionError"


def test_a_landline_is_never_sent_to_a_provider(world: World, store: PhotoStore, tencent: FakeTencent) -> None:
    message = received_sms(world, store)
    message.address = "010-66660000"
    db.session.commit()
    assert notify.deliver(message.id, T0) == "failed"
    assert tencent.received == []


# --- logs and configuration ---------------------------------------------------------------


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
def test_no_phone_number_or_secret_reaches_the_logs(
    provider: str, world: World, store: PhotoStore, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    fake: Any = request.getfixturevalue(provider)
    sent, refused = received_sms(world, store), received_sms(world, store)
    with caplog.at_level(logging.DEBUG):
        assert notify.deliver(sent.id, T0) == "sent"
        fake.fail_with = "isv.MOBILE_NUMBER_ILLEGAL" if provider == "aliyun" else "InvalidParameterValue.IncorrectPhoneNumber"
        fake.fail_per_number = True
        assert notify.deliver(refused.id, T0) == "failed"
    assert f"notification {sent.id} sent by {provider}" in caplog.text
    assert "138****5678" in caplog.text  # the failure is logged, masked
    assert PHONE not in caplog.text and SECRET not in caplog.text


def test_templates_are_read_one_environment_variable_per_kind() -> None:
    env = {"SMS_TEMPLATE_RECEIVED": "SMS_154950909:number,category,link",
           "SMS_TEMPLATE_URGENT": " 1234567 : no=number , link ", "SMS_TEMPLATE_CLOSED": ""}
    assert parse_sms_templates(env) == {
        "received": {"code": "SMS_154950909", "params": [["number", "number"], ["category", "category"],
                                                         ["link", "link"]]},
        "urgent": {"code": "1234567", "params": [["no", "number"], ["link", "link"]]},
    }
    with pytest.raises(ConfigError, match="SMS_TEMPLATE_RESOLVED"):
        parse_sms_templates({"SMS_TEMPLATE_RESOLVED": "SMS_1:note;link"})


def test_a_provider_sender_needs_its_credentials_and_keeps_them_out_of_repr(tmp_path: Any) -> None:
    base = {"MINHU_INSTANCE": str(tmp_path), "SECRET_KEY": "x" * 32}
    with pytest.raises(ConfigError, match="ALIYUN_ACCESS_KEY_SECRET"):
        Config.from_env({**base, "SMS_SENDER": "aliyun", "SMS_SIGN_NAME": "民呼", "ALIYUN_ACCESS_KEY_ID": KEY_ID})
    with pytest.raises(ConfigError, match="SMS_SIGN_NAME"):
        Config.from_env({**base, "SMS_SENDER": "tencent", "TENCENTCLOUD_SECRET_ID": KEY_ID,
                         "TENCENTCLOUD_SECRET_KEY": SECRET, "TENCENT_SMS_SDK_APP_ID": APP_ID})
    config = Config.from_env({**base, "SMS_SENDER": "tencent", "SMS_SIGN_NAME": "民呼", "TENCENTCLOUD_SECRET_ID": KEY_ID,
                              "TENCENTCLOUD_SECRET_KEY": SECRET, "TENCENT_SMS_SDK_APP_ID": APP_ID})
    assert config.sms_sender == "tencent" and config.flask_mapping()["TENCENTCLOUD_SECRET_KEY"] == SECRET
    assert SECRET not in repr(config)
