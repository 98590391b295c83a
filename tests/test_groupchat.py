"""WeChat-group quick entry (收单): a pasted block becomes drafts, filed in one action."""
from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import csrf_from, csrf_token, login
from tests.factories import World
from ticketing.extensions import db
from ticketing.models import Ticket
from ticketing.patrol import groupchat
from ticketing.services.catalog import leaf_categories
from ticketing.services.classify import classify

pytestmark = pytest.mark.usefixtures("english")

PASTE = """张阿姨 10:32
红星小区3栋楼道灯不亮了
电话13812345678
[11-20 10:35] 李师傅: 槐树院门口垃圾没人清运
王大爷：
西苑5号楼下水道堵塞
反味很大
"""


def test_the_parser_splits_the_three_formats() -> None:
    drafts = groupchat.parse(PASTE)
    assert [(d.sender, d.time) for d in drafts] == [("张阿姨", "10:32"), ("李师傅", "11-20 10:35"), ("王大爷", "")]
    assert drafts[0].text == "红星小区3栋楼道灯不亮了\n电话13812345678"
    assert drafts[1].text == "槐树院门口垃圾没人清运"
    assert drafts[2].text == "西苑5号楼下水道堵塞\n反味很大"


def test_the_parser_keeps_leading_lines_and_drops_empty_messages() -> None:
    drafts = groupchat.parse("没有发送人的一行\n\n赵姐 2026-11-20 09:01\n\n钱哥 09:02\n有事\r\n")
    assert [(d.sender, d.text) for d in drafts] == [("", "没有发送人的一行"), ("钱哥", "有事")]


def test_categories_and_places_are_detected(world: World) -> None:
    drafts = groupchat.detect(groupchat.parse(PASTE), [world.community_a], [c.id for c in leaf_categories()])
    assert drafts[0].category_id == world.category("repair.stair_light").id
    assert drafts[0].building_id == world.building_managed.id
    assert drafts[0].phone == "13812345678"
    assert drafts[1].category_id == world.category("environment.litter").id
    assert drafts[1].complex_id == world.courtyard.id and drafts[1].building_id is None
    assert drafts[2].category_id == world.category("environment.sewage").id
    assert drafts[2].building_id == world.building_west.id
    assert classify("你好").category is None


def drafts_page(client: FlaskClient) -> str:
    response = client.post("/patrol/groupchat", data={
        "csrf_token": csrf_token(client, "/patrol/groupchat"), "text": PASTE})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def posted_rows(html: str) -> dict[str, str]:
    """The step-2 form's values as the browser would post them."""
    data: dict[str, str] = {"csrf_token": csrf_from(html)}
    for name, value in re.findall(r'<input[^>]*name="(rows-\d+-(?:key|sender|time|phone|name))"[^>]*value="([^"]*)"', html):
        data[name] = value
    for name, body in re.findall(r'<textarea[^>]*name="(rows-\d+-description)"[^>]*>\s*(.*?)</textarea>', html, re.DOTALL):
        data[name] = body
    for name, body in re.findall(r'<select[^>]*name="(rows-\d+-\w+)"[^>]*>(.*?)</select>', html, re.DOTALL):
        chosen = re.search(r'<option selected value="([^"]*)"|<option value="([^"]*)" selected', body)
        data[name] = (chosen.group(1) or chosen.group(2)) if chosen else ""
    for tag in re.findall(r'<input[^>]*name="rows-\d+-include"[^>]*>', html):
        if "checked" in tag:
            data[re.search(r'name="([^"]+)"', tag).group(1)] = "y"
    return data


def test_filing_two_good_drafts_and_one_bad(client: FlaskClient, world: World) -> None:
    login(client, world.dora)
    html = drafts_page(client)
    data = posted_rows(html)
    assert data["rows-0-phone"] == "13812345678" and data["rows-0-include"] == "y"
    data["rows-1-phone"] = "13900001111"
    data["rows-2-phone"] = "12345"  # a malformed number: this one cannot be filed
    response = client.post("/patrol/groupchat/file", data=data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "2 filed." in page
    assert "11-digit mobile" in page
    assert "西苑5号楼下水道堵塞" in page and "槐树院门口垃圾" not in page
    tickets = db.session.scalars(select(Ticket).order_by(Ticket.id)).all()
    assert len(tickets) == 2
    assert {t.channel for t in tickets} == {"wechat_group"}
    assert tickets[0].building_id == world.building_managed.id
    assert tickets[0].requester_name == "张阿姨"
    assert tickets[1].community_id == world.community_a.id
    # The same drafts posted again file nothing twice.
    client.post("/patrol/groupchat/file", data={**data, "rows-2-phone": "13700002222"})
    assert len(db.session.scalars(select(Ticket)).all()) == 3


def test_the_drafts_page_shows_each_guess_classified_once(
    client: FlaskClient, world: World, monkeypatch: pytest.MonkeyPatch,
) -> None:
    login(client, world.dora)
    texts: list[str] = []

    def counted(text: str, candidates: set[int] | None = None) -> object:
        texts.append(text)
        return classify(text, candidates)

    monkeypatch.setattr(groupchat, "classify", counted)
    monkeypatch.setattr("ticketing.services.classify.classify", counted)
    html = drafts_page(client)
    assert sorted(texts) == sorted(d.text for d in groupchat.parse(PASTE))  # by detect, not again by the page
    assert html.count("Guessed:") == 3
    assert "Guessed: Repairs › Stairwell light" in " ".join(html.split())
    # Drafts shown again after a failed filing are classified by the page.
    data = posted_rows(html)
    data["rows-0-phone"] = "12345"
    texts.clear()
    again = client.post("/patrol/groupchat/file", data={k: v for k, v in data.items() if not k.startswith(("rows-1", "rows-2"))})
    assert again.status_code == 400
    assert again.get_data(as_text=True).count("Guessed:") == 1


def test_unticked_drafts_are_not_filed(client: FlaskClient, world: World) -> None:
    login(client, world.gina)
    data = posted_rows(drafts_page(client))
    for i in range(3):
        data.pop(f"rows-{i}-include", None)
    response = client.post("/patrol/groupchat/file", data=data)
    assert response.status_code == 303
    assert db.session.scalars(select(Ticket)).first() is None


@pytest.mark.parametrize("persona", ["pete", "sam", "vera"])
def test_others_do_not_see_group_chat_entry(client: FlaskClient, world: World, persona: str) -> None:
    login(client, persona)
    assert client.get("/patrol/groupchat").status_code == 404
