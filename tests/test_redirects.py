"""Return addresses (`next=`) on sign-in and the language switch never leave the site."""
from __future__ import annotations

from urllib.parse import quote, urlsplit

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.conftest import csrf_token
from tests.factories import PASSWORD, World
from ticketing.redirects import MalformedNext, safe_next

# As they arrive in the query string (already percent-encoded where a browser would).
HOSTILE = [
    "//evil.com",
    "/%09/evil.com",
    "/%5Cevil.com",
    "/%5C%5Cevil.com",
    "%5C%5Cevil.com",
    "https://evil.com",
    "https:evil.com",
    "javascript:alert(1)",
    "%2F%2Fevil.com",
    "%20//evil.com",
    "%20%20/%5Cevil.com",
    "///evil.com",
    "/%0a/evil.com",
    "/%0d%0aSet-Cookie:%20x=1",
    "/%0b/evil.com",
    "/%00/evil.com",
    "%09//evil.com",
    "evil.com",
]
MALFORMED = ["/%0a/x", "/%0d/x", "/%09/evil.com", "/%00", "/x%7f"]


def leaves_the_site(response: TestResponse) -> bool:
    """Whether the answer sends the browser anywhere but a path of this site."""
    location = response.headers.get("Location")
    if location is None:
        return False
    local = location.startswith("/") and not location.startswith(("//", "/\\")) and location.isprintable()
    return not local or bool(urlsplit(location).netloc)


def sign_in(client: FlaskClient, query: str) -> TestResponse:
    token = csrf_token(client)
    return client.post(f"/auth/login?next={query}", data={
        "username": "dora", "password": PASSWORD, "csrf_token": token})


@pytest.mark.parametrize("query", HOSTILE)
def test_the_language_switch_never_redirects_off_the_site_nor_fails(client: FlaskClient, query: str) -> None:
    response = client.get(f"/lang/en?next={query}")
    assert response.status_code in (302, 400)
    assert not leaves_the_site(response)


@pytest.mark.parametrize("query", HOSTILE)
def test_sign_in_never_redirects_off_the_site_nor_fails(client: FlaskClient, world: World, query: str) -> None:
    response = sign_in(client, query)
    assert response.status_code in (302, 400)
    assert not leaves_the_site(response)


def test_a_hostile_return_address_on_sign_in_lands_on_the_users_home(client: FlaskClient, world: World) -> None:
    response = sign_in(client, "/%5C%5Cevil.com")
    assert response.status_code == 302 and response.headers["Location"] == "/console/"


def test_a_hostile_return_address_on_the_language_switch_lands_on_the_start_page(client: FlaskClient) -> None:
    response = client.get("/lang/en?next=%20//evil.com")
    assert response.status_code == 302 and response.headers["Location"] == "/"


@pytest.mark.usefixtures("english")
@pytest.mark.parametrize("query", MALFORMED)
def test_a_control_character_in_the_return_address_of_the_language_switch_is_a_400(
    client: FlaskClient, query: str,
) -> None:
    response = client.get(f"/lang/en?next={query}")
    assert response.status_code == 400
    assert "return address is malformed" in response.get_data(as_text=True)


def test_a_malformed_return_address_does_not_switch_the_language(client: FlaskClient) -> None:
    client.get("/lang/en?next=/%0a/x")
    assert "链接中的返回地址格式有误" in client.get("/lang/en?next=/%0a/x").get_data(as_text=True)


@pytest.mark.parametrize("query", MALFORMED)
def test_a_control_character_in_the_return_address_of_sign_in_is_a_400_and_signs_nobody_in(
    client: FlaskClient, world: World, query: str,
) -> None:
    response = sign_in(client, query)
    assert response.status_code == 400
    with client.session_transaction() as session:
        assert "_user_id" not in session


def test_sign_in_returns_to_a_page_of_the_site_with_its_query(client: FlaskClient, world: World) -> None:
    target = "/console/?status=submitted&q=%E5%BC%A0"
    response = sign_in(client, quote(target, safe=""))
    assert response.status_code == 302 and response.headers["Location"] == target


def test_the_language_switch_returns_to_the_page_it_was_clicked_on(client: FlaskClient) -> None:
    response = client.get("/lang/en?next=" + quote("/ledger/?day=2026-11-18", safe=""))
    assert response.status_code == 302 and response.headers["Location"] == "/ledger/?day=2026-11-18"


@pytest.mark.parametrize("target", ["/", "/console/?a=1", "/t/abc.def", " /track ", "/a//b", "/%2F%2Fevil.com"])
def test_local_paths_are_kept(target: str) -> None:
    assert safe_next(target) == target.strip()


@pytest.mark.parametrize("target", ["//x", "/\\x", "\\\\x", "http://x", "x", "javascript:1", " //x", "", None])
def test_anything_but_a_local_path_is_dropped(target: str | None) -> None:
    assert safe_next(target) is None


@pytest.mark.parametrize("target", ["/\t/x", "/\n", "/\r", "\x0b/x", "/\x00", "/\x7f"])
def test_control_characters_make_a_return_address_malformed(target: str) -> None:
    with pytest.raises(MalformedNext):
        safe_next(target)
