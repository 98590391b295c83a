"""Administration → API keys: admins issue (shown once) and revoke Open311 and staff-app keys."""
from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import csrf_token, login
from tests.factories import T0, World
from ticketing.extensions import db
from ticketing.models import ApiKey, KeyKind, utcnow
from ticketing.services import apikeys

pytestmark = pytest.mark.usefixtures("english")
PAGE = "/admin/keys"


def keys() -> list[ApiKey]:
    db.session.expire_all()
    return list(db.session.scalars(select(ApiKey).order_by(ApiKey.id)))


def issue(client: FlaskClient, **fields: Any) -> Any:
    data = {"csrf_token": csrf_token(client, PAGE), "kind": "open311", "name": "Street app", "user_id": ""}
    data.update({k: str(v) for k, v in fields.items()})
    return client.post(PAGE, data=data)


def new_key_on(page: str) -> str:
    """The key in the page's read-only field."""
    start = page.index('id="new-key-value" value="') + len('id="new-key-value" value="')
    return page[start:page.index('"', start)]


def test_admins_see_every_key_with_its_kind_and_state(client: FlaskClient, world: World) -> None:
    apikeys.issue(KeyKind.OPEN311, "Street app", T0)
    gone, _ = apikeys.issue(KeyKind.OPEN311, "Old app", T0)
    apikeys.revoke(gone, T0)
    apikeys.issue(KeyKind.STAFF, "Gina's tablet", T0, user=world.gina)
    login(client, world.adam)
    page = client.get(PAGE).get_data(as_text=True)
    for text in ("Street app", "Old app", "Gina&#39;s tablet", "Open311 client app", "acts as Gina", "revoked"):
        assert text in page
    assert page.index("Street app") < page.index("Old app")  # active keys first


def test_an_issued_open311_key_is_shown_once(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    response = issue(client, name="Street app")
    assert response.status_code == 201 and response.headers["Cache-Control"] == "no-store"
    key = new_key_on(response.get_data(as_text=True))
    row = apikeys.verify(KeyKind.OPEN311, key, utcnow())
    assert row is not None and (row.name, row.created_by_id) == ("Street app", world.adam.id)
    assert key not in client.get(PAGE).get_data(as_text=True)


def test_a_staff_key_acts_as_the_chosen_account(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    response = issue(client, kind="staff", name="Gina's tablet", user_id=world.gina.id)
    key = new_key_on(response.get_data(as_text=True))
    row = apikeys.verify(KeyKind.STAFF, key, utcnow())
    assert row is not None and row.user_id == world.gina.id


@pytest.mark.parametrize("fields, message", [
    ({"name": " "}, "Give the key a name"),
    ({"name": "x" * 101}, "The name may be at most 100 characters."),
    ({"kind": "staff", "user_id": ""}, "Choose the staff account the key acts as."),
    ({"kind": "root"}, "Choose what the key is for."),
])
def test_a_key_form_with_a_problem_issues_nothing(client: FlaskClient, world: World, fields: dict[str, Any],
                                                  message: str) -> None:
    login(client, world.adam)
    response = issue(client, **fields)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert keys() == []


def test_a_staff_key_for_a_deactivated_account_is_refused(client: FlaskClient, world: World) -> None:
    world.greg.active = False
    db.session.commit()
    login(client, world.adam)
    assert issue(client, kind="staff", user_id=world.greg.id).status_code == 400
    assert keys() == []


def test_revoking_a_key_stops_it(client: FlaskClient, world: World) -> None:
    row, key = apikeys.issue(KeyKind.OPEN311, "Street app", T0)
    login(client, world.adam)
    response = client.post(f"{PAGE}/{row.id}/revoke", data={"csrf_token": csrf_token(client, PAGE)})
    assert response.status_code == 303
    db.session.expire_all()
    assert apikeys.verify(KeyKind.OPEN311, key, utcnow()) is None
    assert "revoked" in client.get(PAGE).get_data(as_text=True)


def test_revoking_an_unknown_key_is_404(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    assert client.post(f"{PAGE}/999/revoke", data={"csrf_token": csrf_token(client, PAGE)}).status_code == 404


def test_posts_without_a_csrf_token_are_refused(client: FlaskClient, world: World) -> None:
    row, _ = apikeys.issue(KeyKind.OPEN311, "Street app", T0)
    login(client, world.adam)
    assert client.post(PAGE, data={"kind": "open311", "name": "x"}).status_code == 400
    assert client.post(f"{PAGE}/{row.id}/revoke").status_code == 400
    assert [k.revoked_at for k in keys()] == [None]


@pytest.mark.parametrize("persona", ["sam", "dora", "gina"])
def test_only_admins_reach_the_keys_page(client: FlaskClient, world: World, persona: str) -> None:
    login(client, getattr(world, persona))
    assert client.get(PAGE).status_code == 404
    assert client.post(PAGE, data={"csrf_token": csrf_token(client, "/auth/login")}).status_code in (400, 404)
    assert keys() == []


def test_visitors_are_sent_to_sign_in(client: FlaskClient, world: World) -> None:
    assert client.get(PAGE).status_code == 302


def test_the_administration_tabs_link_to_the_keys_page(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    assert f'href="{PAGE}"' in client.get("/admin/rules").get_data(as_text=True)
