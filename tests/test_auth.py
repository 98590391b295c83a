"""Staff sign-in and sign-out."""
from __future__ import annotations

from flask.testing import FlaskClient

from tests.conftest import csrf_token, login
from tests.factories import World


def test_a_grid_worker_signs_in_and_lands_on_the_workbench(client: FlaskClient, world: World) -> None:
    token = csrf_token(client)
    response = client.post("/auth/login", data={
        "username": "gina", "password": "correct-horse-battery", "csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/workbench/")


def test_a_wrong_password_is_refused(client: FlaskClient, world: World) -> None:
    token = csrf_token(client)
    response = client.post("/auth/login", data={
        "username": "gina", "password": "nope", "csrf_token": token})
    assert response.status_code == 401
    with client.session_transaction() as session:
        assert "_user_id" not in session


def test_sign_in_without_csrf_token_is_refused(client: FlaskClient, world: World) -> None:
    response = client.post("/auth/login", data={"username": "gina", "password": "correct-horse-battery"})
    assert response.status_code == 400
    with client.session_transaction() as session:
        assert "_user_id" not in session


def test_an_inactive_account_cannot_sign_in(client: FlaskClient, world: World) -> None:
    world.gina.active = False
    from ticketing.extensions import db
    db.session.commit()
    token = csrf_token(client)
    response = client.post("/auth/login", data={
        "username": "gina", "password": "correct-horse-battery", "csrf_token": token})
    assert response.status_code == 401


def test_sign_in_never_redirects_to_another_site(client: FlaskClient, world: World) -> None:
    token = csrf_token(client)
    response = client.post("/auth/login?next=//evil.example/", data={
        "username": "dora", "password": "correct-horse-battery", "csrf_token": token})
    assert response.headers["Location"].endswith("/console/")


def test_sign_out_ends_the_session(client: FlaskClient, world: World) -> None:
    login(client, world.gina)
    token = csrf_token(client, "/auth/login")  # any page with a form
    client.post("/auth/logout", data={"csrf_token": token})
    with client.session_transaction() as session:
        assert "_user_id" not in session


def test_failed_sign_ins_from_one_address_lock_the_username_there_for_a_while(client: FlaskClient, world: World) -> None:
    token = csrf_token(client)
    for _ in range(10):
        client.post("/auth/login", data={"username": "gina", "password": "nope", "csrf_token": token})
    response = client.post("/auth/login", data={
        "username": "gina", "password": "correct-horse-battery", "csrf_token": token})
    assert response.status_code == 429
    with client.session_transaction() as session:
        assert "_user_id" not in session


def test_a_locked_username_does_not_lock_others(client: FlaskClient, world: World) -> None:
    token = csrf_token(client)
    for _ in range(10):
        client.post("/auth/login", data={"username": "gina", "password": "nope", "csrf_token": token})
    response = client.post("/auth/login", data={
        "username": "greg", "password": "correct-horse-battery", "csrf_token": token})
    assert response.status_code == 302
