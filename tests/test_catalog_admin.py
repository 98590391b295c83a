"""Administering the catalogue: categories and groups (create, rename, move, tier, public,
deactivate, reactivate) and time-limit tiers, each on the audit log."""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from tests.conftest import csrf_token, login
from tests.factories import T0, World, advance, calendar, make_ticket
from ticketing.extensions import db
from ticketing.models import ApiKey, AuditEntry, Category, KeyKind, SlaTier
from ticketing.services import apikeys
from ticketing.services.catalog import category_groups
from ticketing.services.classify import classify
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore

pytestmark = pytest.mark.usefixtures("english")


def post(client: FlaskClient, url: str, **data: Any) -> TestResponse:
    """Post an admin form with a valid CSRF token."""
    return client.post(url, data={"csrf_token": csrf_token(client, "/admin/categories"), **data})


def entries(action: str | None = None) -> list[AuditEntry]:
    """The audit entries written so far (of one action)."""
    db.session.expire_all()
    query = select(AuditEntry).order_by(AuditEntry.id)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    return list(db.session.scalars(query))


def only(action: str) -> AuditEntry:
    """The one audit entry there is, which must be of `action`."""
    [entry] = entries()
    assert entry.action == action
    return entry


def fresh(category_id: int) -> Category:
    db.session.expire_all()
    return db.session.get(Category, category_id)  # type: ignore[return-value]


def tier(code: str) -> SlaTier:
    return db.session.scalars(select(SlaTier).where(SlaTier.code == code)).one()


def category_form(category: Category, **changes: Any) -> dict[str, Any]:
    """The edit form of `category` as it stands, with `changes`."""
    data = {"name_zh": category.name_zh, "name_en": category.name_en,
            "parent_id": category.parent_id or "", "tier_id": category.tier_id or "",
            "public": "y" if category.public else None}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def tier_form(**changes: Any) -> dict[str, Any]:
    data = {"name_zh": "水电气暖", "name_en": "Utilities", "counting": "clock", "accept": "30",
            "accept_unit": "minutes", "resolve": "24", "resolve_unit": "hours", "rank": "1"}
    data.update(changes)
    return data


def category_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Category)) or 0


def deactivate(client: FlaskClient, world: World, code: str) -> Category:
    """Deactivate a category on its page, as adam; returns it."""
    category = world.category(code)
    login(client, world.adam)
    assert post(client, f"/admin/categories/{category.id}/deactivate").status_code == 303
    return category


# --- categories: each change, on record --------------------------------------------


def test_a_new_category_is_created_in_its_group_and_recorded(client: FlaskClient, world: World) -> None:
    repair = world.category("repair")
    login(client, world.adam)
    response = post(client, "/admin/categories/new", code="repair.window", name_zh="窗户损坏",
                    name_en="Broken window", parent_id=repair.id, tier_id="", public="y", keywords="窗户 玻璃 窗戶")
    assert response.status_code == 303
    window = world.category("repair.window")
    assert (window.parent_id, window.tier_id, window.public, window.active) == (repair.id, None, True, True)
    assert window.keywords == "窗户 玻璃"
    entry = only("category.create")
    assert entry.before is None and entry.target_id == str(window.id)
    assert entry.after == {"code": "repair.window", "name_zh": "窗户损坏", "name_en": "Broken window",
                           "group": "repair", "tier": None, "public": True, "active": True, "keywords": "窗户 玻璃",
                           "emergency_guidance_zh": "", "emergency_guidance_en": "", "emergency_numbers": []}
    assert window in next(g for g in category_groups() if g.group.id == repair.id).options
    assert classify("我家窗户玻璃碎了").category.code == "repair.window"  # type: ignore[union-attr]


def test_a_new_group_without_categories_is_offered_as_itself(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    response = post(client, "/admin/categories/new", code="pets", name_zh="宠物", name_en="Pets",
                    parent_id="", tier_id=tier("general").id)
    assert response.status_code == 303
    pets = world.category("pets")
    assert pets.parent_id is None and pets.public is False  # new categories start private
    assert [g.options for g in category_groups() if g.group.id == pets.id] == [[pets]]
    assert only("category.create").after["tier"] == "general"  # type: ignore[index]


def test_renaming_changes_both_names_and_is_recorded_as_a_rename(client: FlaskClient, world: World) -> None:
    pests = world.category("environment.pests")
    login(client, world.adam)
    response = post(client, f"/admin/categories/{pests.id}/edit",
                    **category_form(pests, name_zh="病媒生物", name_en="Vermin"))
    assert response.status_code == 303
    assert (fresh(pests.id).name_zh, fresh(pests.id).name_en) == ("病媒生物", "Vermin")
    entry = only("category.rename")
    assert (entry.before["name_zh"], entry.after["name_zh"]) == ("虫鼠害", "病媒生物")  # type: ignore[index]
    assert (entry.before["name_en"], entry.after["name_en"]) == ("Pests", "Vermin")  # type: ignore[index]


def test_moving_a_category_keeps_its_code_and_is_recorded_as_a_move(client: FlaskClient, world: World) -> None:
    charging, repair = world.category("safety.charging"), world.category("repair")
    login(client, world.adam)
    response = post(client, f"/admin/categories/{charging.id}/edit", **category_form(charging, parent_id=repair.id))
    assert response.status_code == 303
    moved = fresh(charging.id)
    assert moved.parent_id == repair.id and moved.code == "safety.charging"
    entry = only("category.move")
    assert (entry.before["group"], entry.after["group"]) == ("safety", "repair")  # type: ignore[index]
    assert moved in next(g for g in category_groups() if g.group.id == repair.id).options
    assert "Category moved to another group" in client.get("/admin/audit").get_data(as_text=True)


def test_setting_the_tier_is_recorded(client: FlaskClient, world: World) -> None:
    light = world.category("repair.stair_light")
    login(client, world.adam)
    post(client, f"/admin/categories/{light.id}/edit", **category_form(light, tier_id=tier("urgent").id))
    assert fresh(light.id).effective_tier().code == "urgent"  # type: ignore[union-attr]
    entry = only("category.update")
    assert (entry.before["tier"], entry.after["tier"]) == (None, "urgent")  # type: ignore[index]


def test_making_a_category_public_is_recorded(client: FlaskClient, world: World) -> None:
    noise = world.category("dispute.noise")
    assert noise.public is False
    login(client, world.adam)
    post(client, f"/admin/categories/{noise.id}/edit", **category_form(noise, public="y"))
    assert fresh(noise.id).public is True
    entry = only("category.update")
    assert (entry.before["public"], entry.after["public"]) == (False, True)  # type: ignore[index]


def test_saving_an_unchanged_category_records_nothing(client: FlaskClient, world: World) -> None:
    noise = world.category("dispute.noise")
    login(client, world.adam)
    assert post(client, f"/admin/categories/{noise.id}/edit", **category_form(noise)).status_code == 303
    assert entries() == []


def test_deactivating_and_reactivating_are_each_recorded(client: FlaskClient, world: World) -> None:
    pests = deactivate(client, world, "environment.pests")
    assert fresh(pests.id).active is False
    entry = only("category.deactivate")
    assert (entry.before["active"], entry.after["active"]) == (True, False)  # type: ignore[index]
    assert post(client, f"/admin/categories/{pests.id}/reactivate").status_code == 303
    assert fresh(pests.id).active is True
    assert [e.action for e in entries()] == ["category.deactivate", "category.reactivate"]
    assert classify("老鼠蟑螂特别多").category.code == "environment.pests"  # type: ignore[union-attr]


# --- a deactivated category is offered nowhere, and kept where it was used ---------


def test_a_deactivated_category_is_not_on_the_resident_form(client: FlaskClient, world: World) -> None:
    pests = deactivate(client, world, "environment.pests")
    html = client.get("/report").get_data(as_text=True)
    assert f'value="{world.category("environment.litter").id}"' in html
    assert f'value="{pests.id}"' not in html


def test_a_deactivated_category_is_not_on_the_console_form(client: FlaskClient, world: World) -> None:
    pests = deactivate(client, world, "environment.pests")
    login(client, world.dora)
    html = client.get("/console/new").get_data(as_text=True)
    assert f'value="{world.category("environment.litter").id}"' in html
    assert f'value="{pests.id}"' not in html


def test_a_deactivated_category_is_not_an_open311_service(client: FlaskClient, world: World) -> None:
    deactivate(client, world, "environment.pests")
    codes = [s["service_code"] for s in client.get("/open311/v2/services.json").get_json()]
    assert "environment.litter" in codes and "environment.pests" not in codes


def test_a_deactivated_category_is_not_in_the_staff_api(client: FlaskClient, world: World) -> None:
    deactivate(client, world, "environment.pests")
    _row, key = apikeys.issue(KeyKind.STAFF, "app", T0, user=world.dora)
    db.session.commit()
    categories = client.get("/api/v1/categories", headers={"Authorization": f"Bearer {key}"}).get_json()
    codes = [c["code"] for c in categories["categories"]]
    assert "environment.litter" in codes and "environment.pests" not in codes
    assert db.session.scalar(select(func.count()).select_from(ApiKey)) == 1


def test_a_deactivated_category_is_refused_by_the_staff_api_even_when_it_was_cached(
        client: FlaskClient, world: World) -> None:
    _row, key = apikeys.issue(KeyKind.STAFF, "app", T0, user=world.dora)
    db.session.commit()
    body = {"description": "楼下老鼠很多", "phone": "13812345678", "category": "environment.pests",
            "building_id": world.building_courtyard.id, "unit_room": "2单元301"}
    headers = {"Authorization": f"Bearer {key}"}
    assert client.post("/api/v1/tickets", json=body, headers=headers).status_code == 201
    deactivate(client, world, "environment.pests")
    response = client.post("/api/v1/tickets", json={**body, "description": "又看到老鼠了"}, headers=headers)
    assert response.status_code in (400, 422) and "category" in response.get_data(as_text=True)


def test_a_deactivated_category_is_not_guessed(client: FlaskClient, world: World) -> None:
    assert classify("老鼠蟑螂特别多").category.code == "environment.pests"  # type: ignore[union-attr]
    deactivate(client, world, "environment.pests")
    assert classify("老鼠蟑螂特别多").category is None


def test_an_old_ticket_still_shows_its_deactivated_category(client: FlaskClient, world: World,
                                                            store: PhotoStore) -> None:
    ticket = make_ticket(world, store, category="environment.pests", description="楼下老鼠很多")
    deactivate(client, world, "environment.pests")
    login(client, world.dora)
    html = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "Pests" in html


def test_a_deactivated_group_takes_its_categories_off_the_forms_but_stays_a_filter(
        client: FlaskClient, world: World) -> None:
    group = deactivate(client, world, "elderly")
    assert all(g.group.id != group.id for g in category_groups())
    assert classify("独居老人需要帮忙买药").category is None or \
        classify("独居老人需要帮忙买药").category.code.split(".")[0] != "elderly"  # type: ignore[union-attr]
    login(client, world.dora)
    html = client.get("/console/").get_data(as_text=True)
    assert re.search(rf'<option value="{group.id}"[^>]*>Help for the elderly \(not in use\)</option>', html)


def test_a_group_whose_categories_are_all_deactivated_is_not_offered(client: FlaskClient, world: World) -> None:
    deactivate(client, world, "parking.disorder")
    post(client, f"/admin/categories/{world.category('parking.space').id}/deactivate")
    parking = world.category("parking")
    assert all(g.group.id != parking.id for g in category_groups())
    assert classify("小区里乱停车占道").category is None or \
        classify("小区里乱停车占道").category.id != parking.id  # type: ignore[union-attr]


# --- categories: refused input writes nothing --------------------------------------


@pytest.mark.parametrize(("code", "parent", "message"), [
    ("repair.stair_light", "repair", "The code repair.stair_light is taken"),
    ("environment.window", "repair", "its group's code, a dot"),
    ("Repair.Window", "repair", "its group's code, a dot"),
    ("repair.窗户", "repair", "its group's code, a dot"),
    ("pets.cats", None, "A group's code is lower-case letters"),
    ("repair", None, "The code repair is taken"),
])
def test_a_bad_or_taken_code_is_refused_and_nothing_is_written(
        client: FlaskClient, world: World, code: str, parent: str | None, message: str) -> None:
    before = category_count()
    login(client, world.adam)
    response = post(client, "/admin/categories/new", code=code, name_zh="新类别", name_en="",
                    parent_id=world.category(parent).id if parent else "", tier_id=tier("general").id)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert category_count() == before and entries() == []


def test_a_category_without_a_name_is_refused(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    response = post(client, "/admin/categories/new", code="repair.window", name_zh=" ",
                    parent_id=world.category("repair").id)
    assert response.status_code == 400 and "Enter the Chinese name." in response.get_data(as_text=True)
    assert entries() == []


def test_a_group_needs_a_tier(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    response = post(client, "/admin/categories/new", code="pets", name_zh="宠物", parent_id="", tier_id="")
    assert response.status_code == 400 and "A group needs a time-limit tier" in response.get_data(as_text=True)


def test_a_second_category_of_the_same_name_in_a_group_is_refused(client: FlaskClient, world: World) -> None:
    pests = world.category("environment.pests")
    login(client, world.adam)
    response = post(client, f"/admin/categories/{pests.id}/edit", **category_form(pests, name_zh="垃圾清运"))
    assert response.status_code == 400
    assert "This group already has a category of this name." in response.get_data(as_text=True)
    assert fresh(pests.id).name_zh == "虫鼠害" and entries() == []


def test_a_category_cannot_be_moved_under_another_category(client: FlaskClient, world: World) -> None:
    pests = world.category("environment.pests")
    login(client, world.adam)
    response = post(client, f"/admin/categories/{pests.id}/edit",
                    **category_form(pests, parent_id=world.category("repair.stair_light").id))
    assert response.status_code == 400
    assert fresh(pests.id).parent_id == world.category("environment").id and entries() == []


# --- tiers -------------------------------------------------------------------------


def test_the_tiers_page_lists_the_limits_and_says_existing_deadlines_stay(client: FlaskClient,
                                                                          world: World) -> None:
    login(client, world.adam)
    html = client.get("/admin/tiers").get_data(as_text=True)
    assert "30 minutes" in html and "24 hours" in html and "5 working days" in html
    assert "tickets already dispatched or accepted keep their deadlines" in html
    client.get("/lang/zh_CN")
    html = client.get("/admin/tiers").get_data(as_text=True)
    assert "已派发或已受理的工单保留原有时限" in html


def test_a_tiers_limits_are_saved_from_hours_and_recorded(client: FlaskClient, world: World) -> None:
    utility = tier("utility")
    login(client, world.adam)
    response = post(client, f"/admin/tiers/{utility.id}/edit",
                    **tier_form(accept="1.5", accept_unit="hours", resolve="2", resolve_unit="days"))
    assert response.status_code == 303
    db.session.expire_all()
    assert (tier("utility").accept_minutes, tier("utility").resolve_minutes) == (90, 2880)
    entry = only("tier.update")
    assert audit_changes(entry) == [("accept_minutes", 30, 90), ("resolve_minutes", 1440, 2880)]


def audit_changes(entry: AuditEntry) -> list[tuple[str, Any, Any]]:
    from ticketing.services import audit

    return audit.changes(entry)


def test_a_tier_can_change_to_working_days(client: FlaskClient, world: World) -> None:
    utility = tier("utility")
    login(client, world.adam)
    post(client, f"/admin/tiers/{utility.id}/edit",
         **tier_form(counting="workdays", accept="1", accept_unit="days", resolve="3", resolve_unit="days"))
    db.session.expire_all()
    assert tier("utility").working_days is True and tier("utility").resolve_minutes == 3 * 1440


def test_a_new_tier_is_created_and_recorded(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    response = post(client, "/admin/tiers/new", code="lift", **tier_form(
        name_zh="电梯", name_en="Lifts", accept="10", resolve="4", rank="0"))
    assert response.status_code == 303
    lift = tier("lift")
    assert (lift.accept_minutes, lift.resolve_minutes, lift.working_days) == (10, 240, False)
    assert only("tier.create").after["code"] == "lift"  # type: ignore[index]


@pytest.mark.parametrize(("changes", "message"), [
    ({"accept": "2", "accept_unit": "hours", "resolve": "1", "resolve_unit": "hours"},
     "Resolve-within cannot be shorter than accept-within."),
    ({"accept": "0"}, "A time limit must be more than zero."),
    ({"resolve": "-3"}, "A time limit must be more than zero."),
    ({"accept": "soon"}, "Enter a number"),
    ({"accept": "0.5", "accept_unit": "minutes"}, "The limit must come to whole minutes."),
    ({"resolve": "400", "resolve_unit": "days"}, "A time limit may be at most a year."),
    ({"rank": "first"}, "The urgency order is a number"),
    ({"name_zh": "紧急"}, "There is already a tier of this name."),
])
def test_bad_tier_limits_are_refused_and_nothing_is_written(
        client: FlaskClient, world: World, changes: dict[str, str], message: str) -> None:
    utility = tier("utility")
    login(client, world.adam)
    response = post(client, f"/admin/tiers/{utility.id}/edit", **tier_form(**changes))
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    db.session.expire_all()
    assert (tier("utility").accept_minutes, tier("utility").resolve_minutes) == (30, 1440)
    assert tier("utility").name_zh == "水电气暖" and entries() == []


def test_a_taken_tier_code_is_refused(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    response = post(client, "/admin/tiers/new", code="urgent", **tier_form(name_zh="新时限"))
    assert response.status_code == 400 and "The code urgent is taken" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(SlaTier)) == 4


def test_a_tier_change_keeps_the_deadlines_already_set(client: FlaskClient, world: World,
                                                       store: PhotoStore) -> None:
    dispatched = advance(make_ticket(world, store, category="repair.water_leak"), "dispatched", world)
    accepted = advance(make_ticket(world, store, category="repair.water_leak"), "accepted", world)
    due = (dispatched.accept_due_at, accepted.accept_due_at, accepted.resolve_due_at)
    assert due == (T0 + timedelta(minutes=30), T0 + timedelta(minutes=30), T0 + timedelta(hours=24))
    login(client, world.adam)
    post(client, f"/admin/tiers/{tier('utility').id}/edit",
         **tier_form(accept="2", accept_unit="hours", resolve="48", resolve_unit="hours"))
    db.session.expire_all()
    assert tier("utility").accept_minutes == 120
    assert (dispatched.accept_due_at, accepted.accept_due_at, accepted.resolve_due_at) == due


def test_deadlines_set_after_a_tier_change_use_the_new_limits(client: FlaskClient, world: World,
                                                              store: PhotoStore) -> None:
    dispatched_before = advance(make_ticket(world, store, category="repair.water_leak"), "dispatched", world)
    login(client, world.adam)
    post(client, f"/admin/tiers/{tier('utility').id}/edit",
         **tier_form(accept="2", accept_unit="hours", resolve="48", resolve_unit="hours"))
    later = T0 + timedelta(hours=1)
    new = advance(make_ticket(world, store, category="repair.water_leak", now=later), "accepted", world, now=later)
    assert new.accept_due_at == later + timedelta(hours=2) and new.resolve_due_at == later + timedelta(hours=48)
    perform(dispatched_before, "accept", Actor.staff(world.gina), later, calendar())
    db.session.commit()
    assert dispatched_before.accept_due_at == T0 + timedelta(minutes=30)  # set before the change
    assert dispatched_before.resolve_due_at == later + timedelta(hours=48)  # set after it


# --- who may ------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["sam", "dora", "gina"])
def test_only_admins_reach_the_catalogue_pages(client: FlaskClient, world: World, persona: str) -> None:
    pests, utility = world.category("environment.pests"), tier("utility")
    pages = ("/admin/tiers", "/admin/tiers/new", f"/admin/tiers/{utility.id}/edit",
             "/admin/categories/new", f"/admin/categories/{pests.id}/edit")
    login(client, world.adam)
    assert [client.get(url).status_code for url in pages] == [200] * len(pages)
    client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/admin/tiers")})
    login(client, persona)
    for url in pages:
        assert client.get(url).status_code == 404, url
    token = csrf_token(client, "/inbox/")
    for url, data in ((f"/admin/categories/{pests.id}/deactivate", {}),
                      (f"/admin/categories/{pests.id}/edit", category_form(pests, name_zh="改名")),
                      ("/admin/categories/new", {"code": "repair.window", "name_zh": "窗户"}),
                      (f"/admin/tiers/{utility.id}/edit", tier_form(accept="1"))):
        assert client.post(url, data={"csrf_token": token, **data}).status_code == 404, url
    assert fresh(pests.id).active is True and fresh(pests.id).name_zh == "虫鼠害"
    assert tier("utility").accept_minutes == 30 and entries() == []
