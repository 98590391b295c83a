"""Emergencies: guidance before and after a request (services/emergency.py), edited by
admins; the start page's numbers; WeChat and Open311 answers; urgent tickets alert
the dispatchers and the handler by SMS, once each.
"""
from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import csrf_from, csrf_token, login
from tests.factories import PHONE, T0, World, advance, calendar, make_ticket, make_user, put_on_call
from tests.wechat_helpers import post as wechat_post
from tests.wechat_helpers import reply_content, text_xml
from ticketing.extensions import db
from ticketing.models import (
    AuditEntry,
    Category,
    EmergencyGuide,
    KeyKind,
    Notification,
    Role,
    SlaTier,
    Ticket,
)
from ticketing.services import apikeys, classify_store, emergency
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore
from ticketing.services.routing import route_many

GAS_ADVICE = "请立即打开门窗通风"
LIFT_ADVICE = "被困的人请保持冷静"
FIRE_ADVICE = "如果已经起火或冒烟"


def keys(found: list[emergency.Guidance]) -> list[str]:
    return [g.key for g in found]


def report_form(world: World, **changes: Any) -> dict[str, Any]:
    """A complete report: a stairwell light in 槐树院; `changes` change it."""
    data = {"category_id": world.category("repair.stair_light").id, "community_id": world.community_a.id,
            "building_id": world.building_courtyard.id, "description": "楼道灯不亮", "phone": PHONE}
    data.update(changes)
    return data


def report(client: FlaskClient, data: dict[str, Any]) -> Any:
    page = client.get("/report").get_data(as_text=True)
    return client.post("/report", data={"csrf_token": csrf_from(page), **data})


def visible_blocks(html: str) -> list[str]:
    """The keys of the guidance blocks a page shows (not hidden)."""
    return re.findall(r'<div class="emergency-guidance" data-key="([^"]+)">', html)


# --- what applies ------------------------------------------------------------------------


def test_an_urgent_category_brings_its_own_guidance_and_numbers(world: World) -> None:
    [guidance] = emergency.for_request(world.category("repair.gas"), "", "zh")
    assert guidance.text.startswith(GAS_ADVICE)
    assert [(n.label, n.number) for n in guidance.numbers] == [("火警", "119"), ("急救", "120")]
    [lift] = emergency.for_request(world.category("repair.lift_trapped"), "", "en")
    assert "96333" in [n.number for n in lift.numbers] and lift.text.startswith("Whoever is trapped")


@pytest.mark.parametrize(("text", "guide"), [
    ("楼道里有很重的煤气味", "guide:gas"), ("电梯里困了人，按铃没人应", "guide:lift"),
    ("三楼着火了，楼道都是烟", "guide:fire"), ("有人在配电箱旁触电了", "guide:electric"),
    ("外墙瓷砖高空坠物", "guide:collapse"),
])
def test_urgent_words_bring_the_guide_of_their_group_whatever_the_category(
        world: World, text: str, guide: str) -> None:
    assert keys(emergency.for_request(world.category("repair.stair_light"), text, "zh")) == [guide]


def test_negated_urgent_words_and_ordinary_requests_bring_nothing(world: World) -> None:
    light = world.category("repair.stair_light")
    assert emergency.for_request(light, "楼道灯不亮，晚上看不见台阶", "zh") == []
    assert emergency.for_request(light, "楼道灯坏了，没有着火，只是很暗", "zh") == []


def test_the_same_guidance_is_shown_once(world: World) -> None:
    found = emergency.for_request(world.category("repair.gas"), "厨房燃气泄漏了", "zh")
    assert keys(found) == [f"category:{world.category('repair.gas').id}"]


def test_an_urgent_category_without_guidance_gets_the_general_guide(world: World) -> None:
    fire_exit = world.category("safety.fire_exit")
    fire_exit.emergency_guidance_zh, fire_exit.emergency_numbers = "", []
    db.session.commit()
    [guidance] = emergency.for_request(fire_exit, "消防通道被堵了", "zh")
    assert guidance.key == "guide:general"
    assert [n.number for n in guidance.numbers] == ["110", "119", "120", "96333"]


def test_the_short_text_has_the_first_sentence_and_every_number(world: World) -> None:
    found = emergency.for_request(world.category("repair.lift_trapped"), "", "zh")
    text = emergency.short_text(found, "zh")
    assert "被困的人请保持冷静" in text and "96333" in text and "120" in text
    assert "维保电话" not in text  # the second sentence stays on the page


# --- the resident's pages ------------------------------------------------------------------


def test_the_form_carries_every_guidance_hidden_with_the_rules_for_its_script(
        world: World, client: FlaskClient) -> None:
    html = client.get("/report").get_data(as_text=True)
    assert visible_blocks(html) == []
    assert f'data-key="category:{world.category("repair.gas").id}" hidden' in html
    assert 'data-key="guide:lift" hidden' in html
    assert '<section class="card emergency emergency-form" id="emergency" aria-live="polite" hidden>' in html
    rules = re.search(r'<script type="application/json" id="emergency-rules">(.*?)</script>', html, re.DOTALL)
    assert rules is not None and "电梯" in rules.group(1).encode().decode("unicode_escape")
    assert "js/emergency.js" in html


def test_a_form_shown_again_opens_the_guidance_of_the_chosen_urgent_category(
        world: World, client: FlaskClient) -> None:
    gas = world.category("repair.gas")
    response = report(client, report_form(world, category_id=gas.id, phone=""))  # no phone: shown again
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert visible_blocks(html) == [f"category:{gas.id}"]
    assert GAS_ADVICE in html and 'href="tel:119"' in html


def test_a_form_shown_again_opens_the_guide_of_urgent_words(world: World, client: FlaskClient) -> None:
    response = report(client, report_form(world, description="电梯困人了，快来", phone=""))
    assert visible_blocks(response.get_data(as_text=True)) == ["guide:lift"]


def test_the_confirmation_of_an_urgent_category_shows_the_guidance_first(world: World, client: FlaskClient) -> None:
    response = report(client, report_form(world, category_id=world.category("repair.gas").id,
                                          description="厨房里一股燃气味"))
    assert response.status_code == 303
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert html.index(GAS_ADVICE) < html.index("big-number ticket-number")
    assert 'href="tel:119"' in html and 'href="tel:120"' in html


def test_the_confirmation_of_urgent_words_shows_their_guide(world: World, client: FlaskClient) -> None:
    response = report(client, report_form(world, description="楼道里着火了，全是烟"))
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert visible_blocks(html) == ["guide:fire"] and FIRE_ADVICE in html


def test_an_ordinary_confirmation_shows_no_emergency(world: World, client: FlaskClient) -> None:
    response = report(client, report_form(world))
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "emergency-guidance" not in html


def test_the_start_page_lists_the_emergency_numbers(world: World, client: FlaskClient) -> None:
    html = client.get("/").get_data(as_text=True)
    for number in ("110", "119", "120", "96333"):
        assert f'href="tel:{number}"' in html


# --- admins edit it -------------------------------------------------------------------------


def test_an_admin_edits_a_categorys_guidance_and_numbers_on_record(world: World, client: FlaskClient) -> None:
    gas = world.category("repair.gas")
    login(client, world.adam)
    page = client.get(f"/admin/categories/{gas.id}/edit").get_data(as_text=True)
    assert GAS_ADVICE in page and "火警 119" in page
    response = client.post(f"/admin/categories/{gas.id}/edit", data={
        "csrf_token": csrf_from(page), "name_zh": gas.name_zh, "name_en": gas.name_en, "parent_id": gas.parent_id,
        "tier_id": gas.tier_id or "", "public": "y", "emergency_guidance_zh": "立即开窗，离开室内。",
        "emergency_guidance_en": "", "emergency_numbers": "燃气抢修：96777\n火警 119"})
    assert response.status_code == 303
    db.session.expire_all()
    gas = db.session.get(Category, gas.id)
    assert gas.emergency_guidance_zh == "立即开窗，离开室内。"
    assert gas.emergency_numbers == [{"label": "燃气抢修", "number": "96777"}, {"label": "火警", "number": "119"}]
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "category.update")).one()
    assert entry.after["emergency_numbers"][0]["number"] == "96777"
    html = report(client, report_form(world, category_id=gas.id, phone="")).get_data(as_text=True)
    assert "立即开窗，离开室内。" in html and 'href="tel:96777"' in html


def test_numbers_that_cannot_be_read_are_refused_and_nothing_changes(world: World, client: FlaskClient) -> None:
    gas = world.category("repair.gas")
    login(client, world.adam)
    response = client.post(f"/admin/categories/{gas.id}/edit", data={
        "csrf_token": csrf_token(client, f"/admin/categories/{gas.id}/edit"), "name_zh": "燃气味道",
        "name_en": gas.name_en, "parent_id": gas.parent_id, "tier_id": gas.tier_id or "",
        "emergency_guidance_zh": "开窗", "emergency_numbers": "call the gas company"})
    assert response.status_code == 400
    assert "call the gas company" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Category, gas.id).name_zh == "燃气异味"


def test_an_admin_adds_the_gas_companys_line_to_the_start_page(world: World, client: FlaskClient) -> None:
    login(client, world.adam)
    page = client.get("/admin/emergency").get_data(as_text=True)
    general = db.session.scalars(select(EmergencyGuide).where(EmergencyGuide.code == "general")).one()
    response = client.post("/admin/emergency/general", data={
        "csrf_token": csrf_from(page), "guidance_zh": general.guidance_zh, "guidance_en": general.guidance_en,
        "numbers": "报警 110\n火警 119\n急救 120\n电梯困人 96333\n燃气抢修 96777"})
    assert response.status_code == 303
    assert 'href="tel:96777"' in client.get("/").get_data(as_text=True)
    assert db.session.scalars(select(AuditEntry.action)).all() == ["emergency_guide.update"]


def test_a_guide_needs_its_word_parts(world: World, client: FlaskClient) -> None:
    login(client, world.adam)
    response = client.post("/admin/emergency/gas", data={
        "csrf_token": csrf_token(client, "/admin/emergency"), "markers": " ", "guidance_zh": "开窗",
        "numbers": "火警 119"})
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.scalars(select(EmergencyGuide.markers).where(EmergencyGuide.code == "gas")).one() \
        == "燃气 煤气 天然气 液化气"


def test_new_word_parts_bring_a_guide_to_new_urgent_words(world: World, client: FlaskClient) -> None:
    urgent = db.session.scalars(select(SlaTier).where(SlaTier.code == "urgent")).one()
    urgent.trigger_words += "\n电线 断了"
    db.session.commit()
    classify_store.invalidate()
    assert keys(emergency.for_text("楼下电线断了，垂在路边", "zh")) == ["guide:general"]
    login(client, world.adam)
    page = client.get("/admin/emergency").get_data(as_text=True)
    client.post("/admin/emergency/electric", data={
        "csrf_token": csrf_from(page), "markers": "触电 漏电 电线", "guidance_zh": "远离电线。", "numbers": "急救 120"})
    assert keys(emergency.for_text("楼下电线断了，垂在路边", "zh")) == ["guide:electric"]


# --- WeChat and Open311 ---------------------------------------------------------------------


def test_the_wechat_reply_to_an_emergency_starts_with_what_to_do(
        world: World, client: FlaskClient, account: None) -> None:
    content = reply_content(wechat_post(client, text_xml(f"红星小区3号楼电梯困人了 {PHONE}")))
    ticket = db.session.scalars(select(Ticket)).one()
    assert content.index(LIFT_ADVICE) < content.index(ticket.number)
    assert "96333" in content


def test_the_wechat_reply_to_an_ordinary_request_has_no_emergency(
        world: World, client: FlaskClient, account: None) -> None:
    content = reply_content(wechat_post(client, text_xml(f"红星小区3号楼楼道灯坏了 {PHONE}")))
    assert "96333" not in content and "119" not in content


def test_the_open311_answer_to_an_emergency_carries_the_short_guidance(world: World, client: FlaskClient) -> None:
    key = apikeys.issue(KeyKind.OPEN311, "Test app", T0)[1]
    response = client.post("/open311/v2/requests.json", data={
        "api_key": key, "service_code": "repair.gas", "description": "厨房燃气味很重", "phone": PHONE,
        "address_string": "东怡街79号院3栋"})
    assert response.status_code == 201, response.get_data(as_text=True)
    notice = response.get_json()[0]["service_notice"]
    assert notice.startswith("安全第一") and GAS_ADVICE in notice and "119" in notice
    assert "紧急" in notice  # the time-limit promise follows


# --- SMS alerts to staff --------------------------------------------------------------------


def staff_sms(ticket: Ticket) -> list[tuple[str, str]]:
    db.session.expire_all()
    rows = db.session.scalars(select(Notification).where(
        Notification.ticket_id == ticket.id, Notification.channel == "sms", Notification.user_id.is_not(None))
        .order_by(Notification.id))
    return [(n.user.username, n.address) for n in rows]


@pytest.fixture()
def phones(world: World) -> World:
    world.dora.phone, world.gina.phone, world.dan.phone = "139 0000 0001", "+86 13900000002", "13900000003"
    world.sam.phone = "13900000004"
    db.session.commit()
    return world


def test_an_urgent_ticket_alerts_the_communitys_dispatchers_by_sms_and_in_the_inbox(
        phones: World, store: PhotoStore) -> None:
    ticket = make_ticket(phones, store, category="repair.gas", description="厨房燃气味很重")
    assert staff_sms(ticket) == [("dora", "13900000001")]
    sms = db.session.scalars(select(Notification).where(Notification.channel == "sms",
                                                        Notification.user_id.is_not(None))).one()
    assert sms.kind == "urgent" and sms.params["link"].endswith(f"/tickets/{ticket.number}")
    assert ticket.number in sms.body and PHONE not in sms.body
    inbox = db.session.scalars(select(Notification).where(Notification.kind == "urgent",
                                                          Notification.channel == "inbox")).all()
    assert [n.user.username for n in inbox] == ["dora"]


def test_the_handler_of_an_urgent_ticket_is_alerted_once_however_often_it_is_dispatched(
        phones: World, store: PhotoStore) -> None:
    ticket = make_ticket(phones, store, category="repair.stair_light", description="楼道里着火了")
    advance(ticket, "dispatched", phones)
    perform(ticket, "dispatch", Actor.staff(phones.dora), T0, calendar(), assignee=phones.gina, note="再派一次")
    db.session.commit()
    assert staff_sms(ticket) == [("dora", "13900000001"), ("gina", "13900000002")]


def test_routing_an_urgent_ticket_alerts_the_handler_it_chose(phones: World, store: PhotoStore) -> None:
    put_on_call(phones.gina)
    ticket = make_ticket(phones, store, category="repair.lift_trapped", description="3号楼电梯困人", route=True)
    route_many([ticket.id], T0, calendar())
    db.session.commit()
    assert db.session.get(Ticket, ticket.id).assignee_id == phones.gina.id
    assert staff_sms(ticket) == [("dora", "13900000001"), ("gina", "13900000002")]


def test_a_batch_of_urgent_tickets_looks_up_the_dispatchers_of_their_places_once(
        phones: World, store: PhotoStore, statements: list[str]) -> None:
    tickets = [make_ticket(phones, store, building=building, category="repair.gas", description="燃气味", route=True)
               for building in (phones.building_courtyard, phones.building_east, phones.building_managed)]
    db.session.commit()
    statements.clear()
    route_many([t.id for t in tickets], T0, calendar())
    db.session.commit()
    # notify.dispatchers_at: the community's dispatchers, or the street's.
    looked_up = [s for s in statements if "users.community_id IS NULL AND users.street_id" in s]
    assert len(looked_up) == 1, looked_up
    assert [staff_sms(t)[:1] for t in tickets] == [[("dora", "13900000001")], [("dan", "13900000003")],
                                                   [("dora", "13900000001")]]


def test_an_ordinary_ticket_sends_staff_no_sms(phones: World, store: PhotoStore) -> None:
    ticket = make_ticket(phones, store)
    advance(ticket, "dispatched", phones)
    assert staff_sms(ticket) == []


def test_staff_without_a_mobile_number_get_the_alert_in_the_inbox_only(world: World, store: PhotoStore) -> None:
    world.dora.phone = "010-66661234"
    db.session.commit()
    ticket = make_ticket(world, store, category="repair.gas", description="燃气味")
    assert staff_sms(ticket) == []
    assert db.session.scalars(select(Notification.user_id).where(Notification.kind == "urgent")).all() \
        == [world.dora.id]


def test_an_urgent_ticket_waiting_with_a_team_alerts_its_members_on_duty(phones: World, store: PhotoStore) -> None:
    phones.vera.phone = "13900000005"
    make_user("vic", Role.VOLUNTEER, street=phones.street, team=phones.volunteers, phone="13900000006")
    put_on_call(phones.vera)  # on duty; vic, of the same team, has no shift now
    ticket = make_ticket(phones, store, category="repair.gas", description="燃气味")
    perform(ticket, "dispatch", Actor.staff(phones.dora), T0, calendar(), team=phones.volunteers)
    db.session.commit()
    assert staff_sms(ticket) == [("dora", "13900000001"), ("vera", "13900000005")]
