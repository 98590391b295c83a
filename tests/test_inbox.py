"""The staff inbox: one's own messages, the unread count in the navigation, marking read."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import csrf_token, login
from tests.factories import T0, World, advance, make_ticket
from ticketing.extensions import db
from ticketing.models import Notification, Ticket, User
from ticketing.services.photos import PhotoStore

pytestmark = pytest.mark.usefixtures("english")

ITEM = re.compile(r'<li class="inbox-item( unread)?">\s*<a href="/inbox/(\d+)/open">')


def nav_count(html: str) -> int:
    """The unread count the navigation shows (0 when it shows none)."""
    match = re.search(r'class="badge nav-count"[^>]*>(\d+)<', html)
    return int(match.group(1)) if match else 0


def inbox_items(client: FlaskClient, page: int = 1) -> list[tuple[int, bool]]:
    """(message id, unread?) of each message listed on an inbox page, in order."""
    response = client.get(f"/inbox/?page={page}")
    assert response.status_code == 200
    return [(int(id_), bool(unread)) for unread, id_ in ITEM.findall(response.get_data(as_text=True))]


def messages_of(user: User) -> list[Notification]:
    return list(db.session.scalars(select(Notification).where(Notification.user_id == user.id)))


@pytest.fixture()
def dispatched(world: World, store: PhotoStore) -> Ticket:
    """A ticket dispatched to gina, which tells her so."""
    return advance(make_ticket(world, store), "dispatched", world)


def test_a_ticket_dispatched_to_gina_puts_one_unread_message_in_her_inbox(
        client: FlaskClient, world: World, dispatched: Ticket) -> None:
    login(client, world.gina)
    html = client.get("/inbox/").get_data(as_text=True)
    items = ITEM.findall(html)
    assert len(items) == 1 and items[0][0] == " unread"
    assert dispatched.number in html  # the message is stored in gina's language (Chinese)
    assert nav_count(html) == 1


def test_the_unread_count_shows_in_the_navigation_of_other_pages(
        client: FlaskClient, world: World, dispatched: Ticket) -> None:
    login(client, world.gina)
    assert nav_count(client.get("/workbench/").get_data(as_text=True)) == 1


def test_the_navigation_counts_unread_messages_up_to_a_hundred_and_the_inbox_all_of_them(
        client: FlaskClient, world: World) -> None:
    db.session.add_all(Notification(dedupe_key=f"many:{i}", kind="dispatched", channel="inbox", user_id=world.gina.id,
                                    subject=f"message {i}", created_at=T0) for i in range(150))
    db.session.commit()
    login(client, world.gina)
    html = client.get("/workbench/").get_data(as_text=True)
    assert re.search(r'class="badge nav-count" title="More than 99 unread">99\+<', html)
    assert "150 unread of 150 messages" in client.get("/inbox/").get_data(as_text=True)


def test_a_dispatchers_two_navigation_counts_are_read_in_one_statement(
        client: FlaskClient, world: World, dispatched: Ticket, statements: list[str]) -> None:
    db.session.add(Notification(dedupe_key="one", kind="dispatched", channel="inbox", user_id=world.dora.id,
                                subject="message", created_at=T0))
    db.session.commit()
    login(client, world.dora)
    statements.clear()
    html = client.get("/patrol/groupchat").get_data(as_text=True)
    assert nav_count(html) == 1
    assert 'class="nav-callbacks"' in html
    counting = [s for s in statements if "notifications" in s or "callback_tasks" in s]
    assert len(counting) == 1 and "callback_tasks" in counting[0] and "notifications" in counting[0], counting


def test_staff_without_messages_see_the_inbox_link_but_no_count(
        client: FlaskClient, world: World, dispatched: Ticket) -> None:
    login(client, world.greg)
    html = client.get("/workbench/").get_data(as_text=True)
    assert 'href="/inbox/"' in html and nav_count(html) == 0


def test_opening_a_message_marks_it_read_and_goes_to_its_ticket(
        client: FlaskClient, world: World, dispatched: Ticket) -> None:
    login(client, world.gina)
    (message,) = messages_of(world.gina)
    response = client.get(f"/inbox/{message.id}/open")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/tickets/{dispatched.number}")
    db.session.expire_all()
    assert db.session.get(Notification, message.id).read_at is not None
    html = client.get("/inbox/").get_data(as_text=True)
    assert ITEM.findall(html) == [("", str(message.id))] and nav_count(html) == 0


def test_opening_a_message_again_keeps_the_first_reading_time(
        client: FlaskClient, world: World, dispatched: Ticket) -> None:
    login(client, world.gina)
    (message,) = messages_of(world.gina)
    client.get(f"/inbox/{message.id}/open")
    db.session.expire_all()
    first = db.session.get(Notification, message.id).read_at
    client.get(f"/inbox/{message.id}/open")
    db.session.expire_all()
    assert db.session.get(Notification, message.id).read_at == first


def test_mark_all_read_clears_the_unread_count(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    for _ in range(3):
        advance(make_ticket(world, store), "dispatched", world)
    login(client, world.gina)
    assert [unread for _, unread in inbox_items(client)] == [True, True, True]
    response = client.post("/inbox/read-all", data={"csrf_token": csrf_token(client, "/inbox/")},
                           follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "3 messages marked as read." in html and nav_count(html) == 0
    assert all(m.read_at is not None for m in messages_of(world.gina))


def test_mark_all_read_needs_the_csrf_token(
        client: FlaskClient, world: World, dispatched: Ticket) -> None:
    login(client, world.gina)
    assert client.post("/inbox/read-all").status_code == 400
    assert all(m.read_at is None for m in messages_of(world.gina))


def test_greg_cannot_open_ginas_message(
        client: FlaskClient, world: World, dispatched: Ticket) -> None:
    (message,) = messages_of(world.gina)
    login(client, world.greg)
    assert client.get(f"/inbox/{message.id}/open").status_code == 404
    db.session.expire_all()
    assert db.session.get(Notification, message.id).read_at is None


def test_mark_all_read_leaves_other_peoples_messages_alone(
        client: FlaskClient, world: World, dispatched: Ticket) -> None:
    login(client, world.greg)
    client.post("/inbox/read-all", data={"csrf_token": csrf_token(client, "/inbox/")})
    assert all(m.read_at is None for m in messages_of(world.gina))


def test_the_inbox_needs_a_login(client: FlaskClient, world: World) -> None:
    response = client.get("/inbox/")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_the_inbox_shows_30_messages_a_page_newest_first(
        client: FlaskClient, world: World, dispatched: Ticket) -> None:
    db.session.add_all(
        Notification(dedupe_key=f"test:{i}", kind="warning", channel="inbox", ticket_id=dispatched.id,
                     user_id=world.gina.id, subject=f"Message {i}", body="", status="sent",
                     sender="inbox", created_at=T0 + timedelta(minutes=i))
        for i in range(1, 35)
    )
    db.session.commit()
    newest_first = [m.id for m in sorted(messages_of(world.gina), key=lambda m: m.created_at, reverse=True)]
    login(client, world.gina)
    first, second = inbox_items(client, 1), inbox_items(client, 2)
    assert len(first) == 30 and len(second) == 5
    assert [id_ for id_, _ in first + second] == newest_first
    html = client.get("/inbox/?page=2").get_data(as_text=True)
    assert "Page 2 of 2" in html and 'href="/inbox/?page=1"' in html
    assert nav_count(html) == 35
