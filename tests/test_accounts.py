"""Staff accounts: the admin pages, deactivation, one-time passwords, supervisors' scope.

Personas (tests/factories.py): adam the admin, sam supervisor of community A, sue of
the whole street, dora dispatcher of A, gina and greg grid workers in A, gabe in B,
pete property staff, vera a volunteer of A.
"""
from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, T0, World, advance, calendar, make_ticket
from ticketing.extensions import db
from ticketing.models import KeyKind, OutboxMessage, Role, Status, Ticket, TicketEvent, User
from ticketing.services import accounts, apikeys
from ticketing.services.errors import ValidationFailed
from ticketing.services.photos import PhotoStore

pytestmark = pytest.mark.usefixtures("english")

ONE_TIME = re.compile(r'id="one-time-value" value="([a-z0-9]{12})"')
NEW_PASSWORD = "sturdy lamp on a blue bicycle"


def second_client(app: Flask) -> FlaskClient:
    """Another browser (the admin's, while the persona uses the first)."""
    other = app.test_client()
    other.get("/lang/en")
    return other


def post_form(client: FlaskClient, url: str, data: dict[str, object], form_page: str | None = None) -> object:
    """POST `data` with a CSRF token taken from `form_page` (default: the same URL)."""
    token = csrf_token(client, form_page or url)
    return client.post(url, data={**data, "csrf_token": token})


def deactivate_page(client: FlaskClient, person: User, reason: str = "调离本社区") -> object:
    return post_form(client, f"/admin/accounts/{person.id}/deactivate", {"reason": reason},
                     f"/admin/accounts/{person.id}")


def reload(user: User) -> User:
    db.session.expire_all()
    found = db.session.get(User, user.id)
    assert found is not None
    return found


# --- create, edit, list -----------------------------------------------------------


def test_an_admin_creates_an_account_and_sees_its_one_time_password_once(
        client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    response = post_form(client, "/admin/accounts/new", {
        "username": "wang.li", "display_name": "王丽", "phone": "13900001111",
        "role": "grid_worker", "grid_ids": [str(world.grid_a2.id)]})
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    one_time = ONE_TIME.search(response.get_data(as_text=True)).group(1)
    user = db.session.scalar(select(User).where(User.username == "wang.li"))
    assert user.must_change_password and user.check_password(one_time)
    assert one_time not in user.password_hash
    assert [grid.code for grid in user.grids] == ["CA-02"] and user.street_id == world.street.id
    assert one_time not in client.get(f"/admin/accounts/{user.id}").get_data(as_text=True)


def test_a_new_account_must_choose_its_own_password_before_anything_else(
        client: FlaskClient, world: World) -> None:
    user, one_time = accounts.create_account(world.adam, "wang.li", accounts.AccountData(
        display_name="王丽", role=Role.GRID_WORKER, grid_ids=(world.grid_a1.id,)), T0)
    db.session.commit()
    token = csrf_token(client)
    response = client.post("/auth/login", data={"username": "wang.li", "password": one_time, "csrf_token": token})
    assert response.headers["Location"].startswith("/auth/password")
    assert client.get("/workbench/").headers["Location"].startswith("/auth/password")
    response = post_form(client, "/auth/password", {
        "current": one_time, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 303
    assert client.get("/workbench/").status_code == 200
    assert not reload(user).must_change_password


def test_the_account_list_finds_people_by_name_username_or_phone(client: FlaskClient, world: World) -> None:
    world.greg.phone = "13911112222"
    db.session.commit()
    login(client, world.adam)
    html = client.get("/admin/accounts?q=1391111").get_data(as_text=True)
    assert f'id="account-{world.greg.id}"' in html and f'id="account-{world.gina.id}"' not in html
    html = client.get("/admin/accounts?q=gin").get_data(as_text=True)
    assert f'id="account-{world.gina.id}"' in html and f'id="account-{world.greg.id}"' not in html


def test_an_admin_changes_name_phone_role_and_scope(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    response = post_form(client, f"/admin/accounts/{world.gina.id}", {
        "display_name": "刘吉娜", "phone": "13900002222", "role": "volunteer", "team_id": str(world.volunteers.id)})
    assert response.status_code == 303
    gina = reload(world.gina)
    assert (gina.display_name, gina.phone, gina.role, gina.team_id, gina.grids) == (
        "刘吉娜", "13900002222", "volunteer", world.volunteers.id, [])


def test_a_grid_worker_without_grids_is_refused_and_nothing_changes(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    response = post_form(client, f"/admin/accounts/{world.vera.id}", {
        "display_name": "Vera", "role": "grid_worker"})
    assert response.status_code == 400
    assert "Choose the grid or grids" in response.get_data(as_text=True)
    assert reload(world.vera).role == "volunteer"


# --- deactivate, reactivate -----------------------------------------------------------


def test_deactivating_ends_the_persons_open_session_at_once(client: FlaskClient, world: World, ctx: Flask) -> None:
    login(client, world.gina)
    assert client.get("/workbench/").status_code == 200
    admin = second_client(ctx)
    login(admin, world.adam)
    assert deactivate_page(admin, world.gina).status_code == 303
    assert client.get("/workbench/").headers["Location"].startswith("/auth/login")


def test_a_deactivated_person_cannot_sign_in(client: FlaskClient, world: World) -> None:
    accounts.deactivate(world.adam, world.gina, "离职", T0, calendar())
    db.session.commit()
    token = csrf_token(client)
    response = client.post("/auth/login", data={"username": "gina", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 401


def test_deactivating_stops_the_persons_api_key_at_once_even_when_another_process_did_it(
        client: FlaskClient, world: World) -> None:
    _row, key = apikeys.issue(KeyKind.STAFF, "巡查App", T0, user=world.gina)
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200  # the key is now cached
    # Another web process deactivates: this process's cache of keys hears nothing of it.
    db.session.execute(update(User).where(User.id == world.gina.id).values(active=False))
    db.session.commit()
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_deactivating_sends_the_persons_open_tickets_back_to_routing_with_the_reason(
        world: World, store: PhotoStore) -> None:
    held = [advance(make_ticket(world, store), status, world) for status in ("dispatched", "accepted", "on_hold")]
    resolved = advance(make_ticket(world, store), "resolved", world)
    released = accounts.deactivate(world.adam, world.gina, "调离本社区", T0, calendar())
    db.session.commit()
    assert sorted(t.id for t in released) == sorted(t.id for t in held)
    for ticket in held:
        db.session.refresh(ticket)
        assert (ticket.status, ticket.assignee_id, ticket.held_at) == (Status.SUBMITTED, None, None)
        event = db.session.scalar(select(TicketEvent).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.action == "release"))
        assert "调离本社区" in event.note and not event.public
        assert event.detail["released_from"] == world.gina.id
    routing = db.session.scalars(select(OutboxMessage.args).where(
        OutboxMessage.job == "workers.jobs.route_ticket")).all()
    assert all([ticket.id] in routing for ticket in held)
    assert db.session.get(Ticket, resolved.id).assignee_id == world.gina.id


def test_the_reason_shows_on_the_tickets_timeline(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    accounts.deactivate(world.adam, world.gina, "长期病假", T0, calendar())
    db.session.commit()
    login(client, world.dora)
    html = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "长期病假" in html and "account deactivated" in html


def test_a_deactivation_needs_a_reason(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    assert deactivate_page(client, world.gina, reason="  ").status_code == 400
    assert reload(world.gina).active


def test_an_admin_cannot_deactivate_their_own_account(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    assert deactivate_page(client, world.adam).status_code == 403
    assert reload(world.adam).active


def test_a_reactivated_person_signs_in_again(client: FlaskClient, world: World) -> None:
    accounts.deactivate(world.adam, world.gina, "离职", T0, calendar())
    db.session.commit()
    admin = second_client(client.application)
    login(admin, world.adam)
    response = post_form(admin, f"/admin/accounts/{world.gina.id}/reactivate", {}, f"/admin/accounts/{world.gina.id}")
    assert response.status_code == 303
    login(client, world.gina)
    assert client.get("/workbench/").status_code == 200


# --- passwords ---------------------------------------------------------------------------


def test_a_password_reset_ends_every_session_and_forces_a_change(client: FlaskClient, world: World) -> None:
    token = csrf_token(client)
    client.post("/auth/login", data={"username": "gina", "password": PASSWORD, "remember": "y", "csrf_token": token})
    with client.session_transaction() as session:
        del session["_user_id"]  # a browser restarted: only the remember-me cookie is left
    assert client.get("/workbench/").status_code == 200
    admin = second_client(client.application)
    login(admin, world.adam)
    response = post_form(admin, f"/admin/accounts/{world.gina.id}/reset-password", {},
                         f"/admin/accounts/{world.gina.id}")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    one_time = ONE_TIME.search(response.get_data(as_text=True)).group(1)
    with client.session_transaction() as session:
        session.pop("_user_id", None)
    assert client.get("/workbench/").headers["Location"].startswith("/auth/login")
    assert reload(world.gina).must_change_password and reload(world.gina).check_password(one_time)


def test_everyone_can_change_their_own_password(client: FlaskClient, world: World) -> None:
    login(client, world.dora)
    response = post_form(client, "/auth/password", {"current": PASSWORD, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 303
    assert client.get("/console/").status_code == 200  # still signed in here
    assert reload(world.dora).check_password(NEW_PASSWORD)


def test_changing_ones_password_ends_ones_other_sessions(client: FlaskClient, world: World) -> None:
    phone = second_client(client.application)
    login(phone, world.dora)
    login(client, world.dora)
    post_form(client, "/auth/password", {"current": PASSWORD, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert client.get("/console/").status_code == 200
    assert phone.get("/console/").headers["Location"].startswith("/auth/login")


@pytest.mark.parametrize("new", ["short-pw", "woaini1314", "1qaz2wsx3edc", "Password2026", "aaaaaaaaaaaa",
                                 "dora-has-keys"])
def test_a_short_or_common_password_is_refused(client: FlaskClient, world: World, new: str) -> None:
    login(client, world.dora)
    response = post_form(client, "/auth/password", {"current": PASSWORD, "new": new, "confirm": new})
    assert response.status_code == 400
    assert reload(world.dora).check_password(PASSWORD)


def test_the_current_password_is_needed_to_change_it(client: FlaskClient, world: World) -> None:
    login(client, world.dora)
    response = post_form(client, "/auth/password", {"current": "not-my-password", "new": NEW_PASSWORD,
                                                     "confirm": NEW_PASSWORD})
    assert response.status_code == 400 and "not your current password" in response.get_data(as_text=True)


# --- supervisors ---------------------------------------------------------------------------


def test_a_supervisor_lists_only_the_people_of_their_community(client: FlaskClient, world: World) -> None:
    login(client, world.sam)
    html = client.get("/admin/accounts").get_data(as_text=True)
    shown = {int(n) for n in re.findall(r'id="account-(\d+)"', html)}
    assert shown == {world.dora.id, world.gina.id, world.greg.id, world.vera.id, world.mia.id}


@pytest.mark.parametrize("persona", ["adam", "sue", "gabe"])
def test_a_supervisor_cannot_open_accounts_outside_their_scope(client: FlaskClient, world: World, persona: str) -> None:
    login(client, world.sam)
    person = getattr(world, persona)
    assert client.get(f"/admin/accounts/{person.id}").status_code == 404
    assert deactivate_page_status(client, person) == 404
    assert reload(person).active


def deactivate_page_status(client: FlaskClient, person: User) -> int:
    token = csrf_token(client, "/admin/accounts")
    return client.post(f"/admin/accounts/{person.id}/deactivate",
                       data={"reason": "x", "csrf_token": token}).status_code


def test_a_supervisor_cannot_make_anyone_a_supervisor(client: FlaskClient, world: World) -> None:
    login(client, world.sam)
    response = post_form(client, f"/admin/accounts/{world.dora.id}", {
        "display_name": "Dora", "role": "supervisor", "place": f"community-{world.community_a.id}"})
    assert response.status_code == 400
    assert reload(world.dora).role == "dispatcher"


def test_a_supervisor_cannot_move_a_person_out_of_their_scope(world: World) -> None:
    with pytest.raises(ValidationFailed) as caught:
        accounts.update_account(world.sam, world.gina, accounts.AccountData(
            display_name="Gina", role=Role.GRID_WORKER, grid_ids=(world.grid_b1.id,)), T0)
    assert caught.value.status == 403
    assert [grid.code for grid in reload(world.gina).grids] == ["CA-01"]


def test_a_supervisor_deactivates_a_grid_worker_of_their_community(client: FlaskClient, world: World) -> None:
    login(client, world.sam)
    assert deactivate_page(client, world.gina).status_code == 303
    assert not reload(world.gina).active


def test_a_dispatcher_has_no_accounts_pages(client: FlaskClient, world: World) -> None:
    login(client, world.dora)
    assert client.get("/admin/accounts").status_code == 404
    assert client.get(f"/admin/accounts/{world.gina.id}").status_code == 404
