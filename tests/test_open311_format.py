"""Open311 documents as XML and JSON, W3C datetimes, and the masking of public text (no database)."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from ticketing.channels import open311
from ticketing.channels.open311_format import parse_w3c, render, to_json, to_xml, w3c
from ticketing.models import Ticket

TZ = ZoneInfo("Asia/Shanghai")


def test_xml_starts_with_the_utf8_declaration_and_escapes_markup() -> None:
    text = to_xml("errors", [{"code": 400, "description": "<b>x</b> & ]]> \"'"}])
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>\n<errors>')
    root = ET.fromstring(text.encode("utf-8"))
    assert root.find("error/description").text == "<b>x</b> & ]]> \"'"
    assert "<b>" not in text


def test_xml_drops_characters_xml_cannot_carry() -> None:
    text = to_xml("service_requests", [{"description": "a\x00b\x08c\x1fd\ufffee\n\tf"}])
    assert ET.fromstring(text.encode()).find("request/description").text == "abcde\n\tf"


def test_lists_take_the_item_element_names_of_the_spec() -> None:
    document = {"service_code": "x", "attributes": [{"code": "a", "values": [{"key": "1", "name": "one"}]}]}
    root = ET.fromstring(to_xml("service_definition", document).encode())
    assert root.tag == "service_definition"
    assert root.find("attributes/attribute/values/value/name").text == "one"


def test_booleans_are_true_and_false_and_empty_values_empty_elements() -> None:
    root = ET.fromstring(to_xml("services", [{"metadata": True, "group": None, "keywords": ""}]).encode())
    service = root.find("service")
    assert [service.find(t).text for t in ("metadata", "group", "keywords")] == ["true", None, None]


def test_json_drops_the_root_and_writes_empty_values_as_null() -> None:
    data = json.loads(to_json([{"metadata": False, "group": "", "lat": 33.1, "account_id": None}]))
    assert data == [{"metadata": False, "group": None, "lat": 33.1, "account_id": None}]


def test_json_keeps_chinese_as_it_is() -> None:
    assert "水管漏水" in to_json([{"service_name": "水管漏水"}])


def test_render_gives_the_mimetype_of_each_format() -> None:
    assert render("services", [], "xml")[1] == "text/xml"
    assert render("services", [], "json") == ("[]", "application/json")


def test_datetimes_are_w3c_in_local_time_with_the_offset() -> None:
    assert w3c(datetime(2026, 11, 18, 2, 0, 5, 123, tzinfo=UTC), TZ) == "2026-11-18T10:00:05+08:00"
    assert w3c(None, TZ) is None


@pytest.mark.parametrize("text, expected", [
    ("2010-01-01T00:00:00Z", datetime(2010, 1, 1, tzinfo=UTC)),
    ("2010-01-01T08:00:00+08:00", datetime(2010, 1, 1, tzinfo=UTC)),
    ("2010-01-01T08:00:00.5-05:00", datetime(2010, 1, 1, 13, 0, 0, 500000, tzinfo=UTC)),
    ("2010-01-01T08:00", datetime(2010, 1, 1, 0, 0, tzinfo=UTC)),
    ("2010-01-02", datetime(2010, 1, 1, 16, 0, tzinfo=UTC)),
    ("2010-02", datetime(2010, 1, 31, 16, 0, tzinfo=UTC)),
])
def test_w3c_datetimes_are_read_with_their_zone_or_in_local_time(text: str, expected: datetime) -> None:
    assert parse_w3c(text, TZ) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "2010-13-01", "2010-01-01T25:00:00Z", "2010-01-01 00:00",
                                  "2010-01-01T00:00:00+99:00", "1e5"])
def test_what_is_not_a_w3c_datetime_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_w3c(text, TZ)


@pytest.mark.parametrize("locale, accepted, expected", [
    (None, None, "zh"), ("en", None, "en"), ("en_US", "zh", "en"), ("zh_CN", "en", "zh"),
    (None, "en", "en"), ("fr", None, "zh"),
])
def test_english_is_chosen_by_locale_then_accept_language(locale: str | None, accepted: str | None,
                                                          expected: str) -> None:
    assert open311.language(locale, accepted) == expected


def test_public_text_masks_mobile_numbers_the_requesters_name_and_rooms() -> None:
    ticket = Ticket(requester_name="张三丰", unit_room="5单元1202", requester_phone="13812345678")
    text = "张三丰家漏水，电话138-1234-5678或+86 139 0000 1111，3栋2单元301和1202室，5单元1202，3-2-301"
    masked = open311.public_text(text, ticket)
    assert masked == "张**家漏水，电话138****5678或139****1111，3栋***和***，***，***"


def test_public_text_keeps_floors_and_numbers_that_are_not_rooms() -> None:
    text = "2号楼1单元3楼到5楼的灯不亮，已经2000多天，共120户"
    assert open311.public_text(text, Ticket(requester_name="", unit_room="")) == text
