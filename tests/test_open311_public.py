"""Open311's keyless reading shows only tickets of public categories (issue 13).

Elderly help, disputes and anything about a person's circumstances are private: such
a ticket is absent from the list and is, by number, the very 404 of a number never
issued, whatever channel it came through. Admins choose which categories are public;
migration 0014 and the reference data start the shipped ones the same way.
"""
from __future__ import annotations

import importlib.util
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import text
from werkzeug.test import TestResponse

import config
from tests.conftest import csrf_token, login
from tests.factories import World, make_ticket
from tests.open311_helpers import NOW, URL, errors_of, json_of, xml_of
from ticketing import create_app, web
from ticketing.extensions import db
from ticketing.models import Category, KeyKind, Ticket
from ticketing.reference import CATEGORIES, PUBLIC_GROUPS
from ticketing.services import apikeys
from ticketing.services.lifecycle import Actor
from ticketing.services.photos import PhotoStore

MIGRATION = Path(__file__).parents[1] / "migrations" / "versions" / "0014_category_public.py"
LONELY_MOTHER = "我母亲82岁独居，腿脚不方便，需要有人帮忙代买降压药。电话13912345678"
NOISY_NEIGHBOUR = "楼上302每天晚上十一点以后还在跳绳，沟通过没用。"


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The web layer's clock stands at NOW, an hour after the tickets are filed."""
    monkeypatch.setattr(web, "now", lambda: NOW)


def walk_in(world: World, store: PhotoStore, category: str, description: str) -> Ticket:
    """A request a dispatcher took at the service station."""
    return make_ticket(world, store, category=category, description=description, channel="walk_in",
                       actor=Actor.staff(world.dora))


def listed(client: FlaskClient, fmt: str = "json", query: str = "") -> list[str]:
    """The service_request_ids of GET requests."""
    response = client.get(f"{URL}/requests.{fmt}{query}")
    assert response.status_code == 200
    if fmt == "xml":
        return [r.findtext("service_request_id") or "" for r in xml_of(response)]
    return [r["service_request_id"] for r in json_of(response)]


def by_number(client: FlaskClient, number: str, fmt: str) -> TestResponse:
    return client.get(f"{URL}/requests/{number}.{fmt}")


def never_issued(number: str) -> str:
    """A number of the same day and length that no ticket has."""
    return number[:7] + "9999"


def same_404(private: TestResponse, unknown: TestResponse, private_number: str, unknown_number: str) -> bool:
    """Whether two answers differ only by the number asked about."""
    body = private.get_data(as_text=True).replace(private_number, unknown_number)
    return (private.status_code == unknown.status_code == 404 and body == unknown.get_data(as_text=True)
            and dict(private.headers) == dict(unknown.headers))


# --- the list and single requests --------------------------------------------

@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_elderly_help_and_dispute_tickets_are_absent_from_the_list(
    client: FlaskClient, world: World, store: PhotoStore, fmt: str,
) -> None:
    light = make_ticket(world, store)
    make_ticket(world, store, category="elderly.help", description=LONELY_MOTHER)
    make_ticket(world, store, category="dispute.noise", description=NOISY_NEIGHBOUR)
    assert listed(client, fmt) == [light.number]
    body = client.get(f"{URL}/requests.{fmt}").get_data(as_text=True)
    assert "独居" not in body and "跳绳" not in body


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_elderly_help_ticket_by_number_is_the_404_of_a_number_never_issued(
    client: FlaskClient, world: World, store: PhotoStore, fmt: str,
) -> None:
    ticket = make_ticket(world, store, category="elderly.help", description=LONELY_MOTHER)
    unknown = never_issued(ticket.number)
    private, missing = by_number(client, ticket.number, fmt), by_number(client, unknown, fmt)
    assert errors_of(private, fmt) == [(404, f"service_request_id {ticket.number!r} was not found")]
    assert same_404(private, missing, ticket.number, unknown)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_dispute_ticket_by_number_is_404(client: FlaskClient, world: World, store: PhotoStore, fmt: str) -> None:
    ticket = make_ticket(world, store, category="dispute.other", description=NOISY_NEIGHBOUR)
    assert by_number(client, ticket.number, fmt).status_code == 404


def test_a_walk_in_ticket_in_a_private_category_is_404(client: FlaskClient, world: World,
                                                       store: PhotoStore) -> None:
    ticket = walk_in(world, store, "elderly.visit", "李奶奶这几天没下楼，麻烦去看看。")
    assert by_number(client, ticket.number, "json").status_code == 404
    assert listed(client) == []


def test_of_walk_in_tickets_only_those_in_a_public_category_show_with_their_text_masked(
    client: FlaskClient, world: World, store: PhotoStore,
) -> None:
    litter = walk_in(world, store, "environment.litter", "楼下垃圾三天没清运了，联系电话13912345678")
    walk_in(world, store, "elderly.help", LONELY_MOTHER)
    masked = "楼下垃圾三天没清运了，联系电话139****5678"
    assert [r["description"] for r in json_of(client.get(f"{URL}/requests.json"))] == [masked]
    assert json_of(by_number(client, litter.number, "json"))[0]["description"] == masked


def test_a_private_request_filed_through_open311_is_404_but_its_token_still_answers(
    client: FlaskClient, world: World,
) -> None:
    key = apikeys.issue(KeyKind.OPEN311, "Street app", NOW)[1]
    answer = json_of(client.post(f"{URL}/requests.json", data={
        "api_key": key, "service_code": "elderly.help", "description": LONELY_MOTHER,
        "phone": "13912345678", "address_string": "东怡街79号院3栋",
    }))[0]
    number = answer["service_request_id"]
    assert by_number(client, number, "json").status_code == 404
    assert listed(client) == []
    # The token is the filing app's secret; the number lets the resident use /track.
    assert json_of(client.get(f"{URL}/tokens/{answer['token']}.json"))[0]["service_request_id"] == number


def test_enumerating_every_number_finds_only_public_tickets(
    client: FlaskClient, world: World, store: PhotoStore,
) -> None:
    public = {make_ticket(world, store).number,
              walk_in(world, store, "safety.fire_exit", "消防通道被杂物堵了").number}
    private = {make_ticket(world, store, category="elderly.help", description=LONELY_MOTHER).number,
               make_ticket(world, store, category="dispute.noise", description=NOISY_NEIGHBOUR).number,
               walk_in(world, store, "elderly.visit", "李奶奶这几天没下楼").number}
    day = next(iter(public))[:7]
    candidates = [f"{day}{n:04d}" for n in range(1, len(public | private) + 3)]
    assert public | private <= set(candidates)
    found = {n for n in candidates if by_number(client, n, "json").status_code == 200}
    assert found == public
    assert set(listed(client, query="?service_request_id=" + ",".join(candidates))) == public


def test_the_list_fills_its_limit_with_public_tickets(
    client: FlaskClient, world: World, store: PhotoStore, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ticketing.channels import open311

    monkeypatch.setattr(open311, "MAX_REQUESTS", 2)
    older = [make_ticket(world, store, now=NOW - timedelta(minutes=30 + m)) for m in range(2)]
    for m in range(3):  # newer than both, and would take the two places if counted
        make_ticket(world, store, now=NOW - timedelta(minutes=5 + m), category="elderly.help",
                    description=LONELY_MOTHER)
    assert listed(client) == [t.number for t in older]


# --- the flag ----------------------------------------------------------------

def save_category(client: FlaskClient, category: Category, public: bool) -> TestResponse:
    """Post the category's form on the admin page, with "Public in Open311" ticked or not."""
    data: dict[str, Any] = {"csrf_token": csrf_token(client, "/admin/categories"),
                            "keywords": category.keywords, "active": "y"}
    if public:
        data["public"] = "y"
    return client.post(f"/admin/categories/{category.id}", data=data)


def test_an_admin_can_make_a_category_public_and_private_again(
    client: FlaskClient, world: World, store: PhotoStore,
) -> None:
    ticket = make_ticket(world, store, category="dispute.noise", description=NOISY_NEIGHBOUR)
    noise = world.category("dispute.noise")
    login(client, world.adam)
    assert save_category(client, noise, public=True).status_code == 303
    assert listed(client) == [ticket.number]
    assert by_number(client, ticket.number, "json").status_code == 200
    assert save_category(client, noise, public=False).status_code == 303
    assert listed(client) == []
    assert by_number(client, ticket.number, "json").status_code == 404


def test_the_admin_page_shows_the_public_flag_ticked_where_it_is_set(client: FlaskClient, world: World) -> None:
    client.get("/lang/en")
    login(client, world.adam)
    html = client.get("/admin/categories").get_data(as_text=True)
    light, lonely = world.category("repair.stair_light"), world.category("elderly.help")

    def box(category: Category) -> str:
        form = html.split(f'id="category-{category.id}"', 1)[1].split("</form>", 1)[0]
        return form.split('name="public"', 1)[1].split(">", 1)[0]

    assert "checked" in box(light) and "checked" not in box(lonely)
    assert "Public in Open311" in html


def test_a_new_category_is_private(ctx: Flask, world: World) -> None:
    category = Category(code="housing.subsidy", name_zh="住房补贴", name_en="Housing subsidy")
    db.session.add(category)
    db.session.flush()
    assert category.public is False


def test_the_reference_data_makes_shared_things_public_and_personal_ones_private(ctx: Flask, world: World) -> None:
    public = {c.code for c in db.session.query(Category).filter_by(public=True)}
    assert {"repair.stair_light", "environment.litter", "safety.fire_exit", "parking.disorder"} <= public
    assert not any(code.split(".")[0] in ("elderly", "dispute") for code in public)


# --- migration 0014 ----------------------------------------------------------

def test_the_migration_and_the_reference_data_make_the_same_categories_public() -> None:
    spec = importlib.util.spec_from_file_location("migration_0014", MIGRATION)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    reference = {code for group, *_, children in CATEGORIES if group in PUBLIC_GROUPS
                 for code in (group, *(child[0] for child in children))}
    assert set(migration.PUBLIC_CODES) == reference


def test_migration_0014_makes_the_shipped_shared_categories_public_and_the_rest_private(tmp_path: Path) -> None:
    app = create_app(config.testing_config(f"sqlite:///{tmp_path / 'migrated.db'}", tmp_path))
    with app.app_context():
        scripts = ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config())
        before = scripts.get_revision("0014").down_revision
        upgrade(revision=before)
        insert = text("INSERT INTO categories (code, name_zh, name_en, hint_zh, hint_en, keywords, extra_fields,"
                      " sort_order, active) VALUES (:code, :code, :code, '', '', '', '[]', 0, true)")
        with db.engine.begin() as conn:
            for code in ("repair.stair_light", "elderly.help", "dispute.noise", "local.custom"):
                conn.execute(insert, {"code": code})
        upgrade(revision="0014")
        with db.engine.begin() as conn:
            conn.execute(insert, {"code": "later.added"})
            flags = dict(conn.execute(text("SELECT code, public FROM categories")).all())
        db.engine.dispose()
    assert {code: bool(flag) for code, flag in flags.items()} == {
        "repair.stair_light": True, "elderly.help": False, "dispute.noise": False,
        "local.custom": False, "later.added": False,
    }
