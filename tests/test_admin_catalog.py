"""The admin page of the catalogue's words: keywords, active flags, trigger words, suggestions."""
from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.conftest import csrf_token, login
from tests.factories import T0, World, make_ticket
from ticketing.extensions import db
from ticketing.models import Category, ClassificationCorrection, SlaTier
from ticketing.services.classify import classify
from ticketing.services.photos import PhotoStore

pytestmark = pytest.mark.usefixtures("english")


def post(client: FlaskClient, url: str, **data: object) -> TestResponse:
    """Post a form of the categories page with a valid CSRF token."""
    return client.post(url, data={"csrf_token": csrf_token(client, "/admin/categories"), **data})


def fresh(category: Category) -> Category:
    db.session.expire_all()
    return db.session.get(Category, category.id)  # type: ignore[return-value]


def test_the_page_lists_categories_keywords_and_tiers(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    html = client.get("/admin/categories").get_data(as_text=True)
    assert "Categories and keywords" in html and "Stairwell light out" in html
    assert "楼道灯" in html and "燃气泄漏" in html
    assert 'href="/admin/categories"' in html  # the tab


def test_saved_keywords_are_normalised_and_used_at_once(client: FlaskClient, world: World) -> None:
    pests = world.category("environment.pests")
    login(client, world.adam)
    assert classify("院子里有只野猫").category is None
    response = post(client, f"/admin/categories/{pests.id}", keywords="老鼠 野貓，老鼠 ＲＡＴ", active="y")
    assert response.status_code == 303
    assert fresh(pests).keywords == "老鼠 野猫 rat"
    assert classify("院子里有只野猫").category.code == "environment.pests"  # type: ignore[union-attr]


def test_a_category_switched_off_is_no_longer_guessed(client: FlaskClient, world: World) -> None:
    pests = world.category("environment.pests")
    login(client, world.adam)
    post(client, f"/admin/categories/{pests.id}", keywords=pests.keywords)  # "active" unticked
    assert fresh(pests).active is False
    assert classify("老鼠蟑螂特别多").category is None


def test_an_overlong_keyword_is_refused_next_to_its_category(client: FlaskClient, world: World) -> None:
    pests = world.category("environment.pests")
    login(client, world.adam)
    response = post(client, f"/admin/categories/{pests.id}", keywords="老鼠 " + "很" * 21, active="y")
    assert response.status_code == 400
    assert "at most 20 characters" in response.get_data(as_text=True)
    assert fresh(pests).keywords.startswith("老鼠 蟑螂")


def test_trigger_words_are_saved_one_per_line(client: FlaskClient, world: World) -> None:
    urgent = db.session.query(SlaTier).filter_by(code="urgent").one()
    login(client, world.adam)
    response = post(client, f"/admin/tiers/{urgent.id}/triggers", trigger_words="起火\n 水管  爆裂 \n起火\n")
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(SlaTier, urgent.id).trigger_words == "起火\n水管 爆裂"  # type: ignore[union-attr]
    assert classify("楼下水管突然爆裂了").urgent_tier.code == "urgent"  # type: ignore[union-attr]


def correct(world: World, store: PhotoStore, text: str, code: str, times: int) -> None:
    """Corrections as dispatchers would have left them (the tickets themselves do not matter here)."""
    for _ in range(times):
        ticket = make_ticket(world, store, description=text)
        db.session.add(ClassificationCorrection(ticket_id=ticket.id, text=text, guessed_category_id=None,
                                                chosen_category_id=world.category(code).id,
                                                user_id=world.dora.id, at=T0))
    db.session.commit()


def test_a_suggested_keyword_is_adopted_in_one_click(client: FlaskClient, world: World, store: PhotoStore) -> None:
    correct(world, store, "院子里有流浪狗，晚上乱叫", "environment.pests", 2)
    pests = world.category("environment.pests")
    login(client, world.adam)
    html = client.get("/admin/categories").get_data(as_text=True)
    assert "2 corrections chose this category." in html
    assert "+ 流浪狗 (2)" in html
    response = post(client, f"/admin/categories/{pests.id}/adopt", word="流浪狗")
    assert response.status_code == 303
    assert fresh(pests).keywords.endswith(" 流浪狗")
    html = client.get("/admin/categories").get_data(as_text=True)
    assert "+ 流浪狗" not in html


def test_adopting_a_keyword_twice_changes_nothing(client: FlaskClient, world: World) -> None:
    pests = world.category("environment.pests")
    before = pests.keywords
    login(client, world.adam)
    response = post(client, f"/admin/categories/{pests.id}/adopt", word="老鼠")
    assert response.status_code == 303
    assert fresh(pests).keywords == before


def test_a_form_without_its_token_is_refused(client: FlaskClient, world: World) -> None:
    pests = world.category("environment.pests")
    login(client, world.adam)
    response = client.post(f"/admin/categories/{pests.id}", data={"keywords": "野猫", "active": "y"})
    assert response.status_code == 400
    assert fresh(pests).keywords != "野猫"


@pytest.mark.parametrize("persona", ["dora", "sam", "gina"])
def test_only_admins_see_the_page(client: FlaskClient, world: World, persona: str) -> None:
    pests = world.category("environment.pests")
    login(client, persona)
    assert client.get("/admin/categories").status_code == 404
    token = csrf_token(client, "/inbox/")
    response = client.post(f"/admin/categories/{pests.id}", data={"csrf_token": token, "keywords": "野猫"})
    assert response.status_code == 404
    assert fresh(pests).keywords != "野猫"


def test_nobody_signed_in_is_sent_to_the_login(client: FlaskClient, world: World) -> None:
    assert client.get("/admin/categories").status_code == 302
