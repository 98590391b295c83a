"""The reveal log made readable: a page and a download for admins and supervisors in
scope, and "contact details seen by" on the ticket page for those who may read it."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.conftest import login
from tests.factories import PHONE, T0, World, make_ticket
from ticketing.extensions import db
from ticketing.models import RevealLog, Ticket, User
from ticketing.services import privacy
from ticketing.services.photos import PhotoStore

pytestmark = pytest.mark.usefixtures("english")


def reveal(user: User, ticket: Ticket, days: int = 0, purpose: str = "view", addr: str = "10.0.0.7") -> None:
    privacy.record_reveal(user, ticket, T0 + timedelta(days=days), purpose, addr)
    db.session.commit()


def reveal_count() -> int:
    return db.session.scalar(select(func.count()).select_from(RevealLog)) or 0


@pytest.fixture()
def two_tickets(world: World, store: PhotoStore) -> tuple[Ticket, Ticket]:
    """A ticket in community A seen by dora, one in community B seen by dan the next day."""
    in_a = make_ticket(world, store)
    in_b = make_ticket(world, store, building=world.building_east)
    reveal(world.dora, in_a)
    reveal(world.dan, in_b, days=1, purpose="export")
    return in_a, in_b


def test_an_admin_sees_who_saw_which_ticket_and_why(client: FlaskClient, world: World,
                                                     two_tickets: tuple[Ticket, Ticket]) -> None:
    in_a, in_b = two_tickets
    login(client, world.adam)
    page = client.get("/admin/reveals").get_data(as_text=True)
    assert in_a.number in page and in_b.number in page
    assert "Dora" in page and "Dan" in page and "ticket page" in page and "ledger export" in page
    assert "10.0.0.7" in page and "2026-11-18 10:00:00" in page  # Asia/Shanghai


def test_the_page_never_shows_the_revealed_details(client: FlaskClient, world: World,
                                                   two_tickets: tuple[Ticket, Ticket]) -> None:
    login(client, world.adam)
    page = client.get("/admin/reveals").get_data(as_text=True)
    assert PHONE not in page and "张三丰" not in page and "2单元301" not in page


def test_a_community_supervisor_sees_only_reveals_of_their_tickets(client: FlaskClient, world: World,
                                                                   two_tickets: tuple[Ticket, Ticket]) -> None:
    in_a, in_b = two_tickets
    login(client, world.sam)
    page = client.get("/admin/reveals").get_data(as_text=True)
    assert in_a.number in page and in_b.number not in page


def test_a_street_supervisor_sees_the_whole_street(client: FlaskClient, world: World,
                                                   two_tickets: tuple[Ticket, Ticket]) -> None:
    in_a, in_b = two_tickets
    login(client, world.sue)
    page = client.get("/admin/reveals").get_data(as_text=True)
    assert in_a.number in page and in_b.number in page


def test_dispatchers_get_not_found(client: FlaskClient, world: World, two_tickets: tuple[Ticket, Ticket]) -> None:
    login(client, world.dora)
    assert client.get("/admin/reveals").status_code == 404
    assert client.get("/admin/reveals?format=csv").status_code == 404


def test_filters_by_ticket_person_and_date(client: FlaskClient, world: World,
                                           two_tickets: tuple[Ticket, Ticket]) -> None:
    in_a, in_b = two_tickets
    login(client, world.adam)
    by_number = client.get(f"/admin/reveals?number={in_b.number}").get_data(as_text=True)
    assert "Dan" in by_number and "Dora" not in by_number
    by_person = client.get("/admin/reveals?person=dora").get_data(as_text=True)
    assert in_a.number in by_person and in_b.number not in by_person
    by_day = client.get("/admin/reveals?from=2026-11-19&to=2026-11-19").get_data(as_text=True)
    assert in_b.number in by_day and in_a.number not in by_day


def test_reading_the_log_is_not_a_reveal(client: FlaskClient, world: World,
                                         two_tickets: tuple[Ticket, Ticket]) -> None:
    login(client, world.adam)
    client.get("/admin/reveals")
    client.get("/admin/reveals?format=csv")
    assert reveal_count() == 2


def test_the_download_is_a_spreadsheet_safe_utf8_csv_of_the_filtered_rows(
        client: FlaskClient, world: World, two_tickets: tuple[Ticket, Ticket]) -> None:
    in_a, _ = two_tickets
    world.dora.display_name = "=HYPERLINK(\"http://x\")"
    db.session.commit()
    login(client, world.sam)
    response = client.get("/admin/reveals?format=csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    body = response.data
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == ["查看时间", "查看人", "用户名", "角色", "工单编号", "用途", "来源地址"]
    assert rows[1:] == [["2026-11-18 10:00:00", "'=HYPERLINK(\"http://x\")", "dora", "派单员", in_a.number,
                         "工单页面", "10.0.0.7"]]


def test_the_ticket_page_shows_who_saw_the_details_to_an_admin(client: FlaskClient, world: World,
                                                              two_tickets: tuple[Ticket, Ticket]) -> None:
    in_a, _in_b = two_tickets
    login(client, world.adam)
    page = client.get(f"/tickets/{in_a.number}").get_data(as_text=True)
    assert 'id="reveals"' in page and "Contact details seen by" in page and "Dora" in page


def test_the_ticket_page_section_shows_to_a_supervisor_in_scope(client: FlaskClient, world: World,
                                                               two_tickets: tuple[Ticket, Ticket]) -> None:
    in_a, _in_b = two_tickets
    login(client, world.sam)
    assert 'id="reveals"' in client.get(f"/tickets/{in_a.number}").get_data(as_text=True)


@pytest.mark.parametrize("who", ["dora", "gina"])
def test_the_ticket_page_section_is_hidden_from_others(client: FlaskClient, world: World,
                                                       two_tickets: tuple[Ticket, Ticket], who: str) -> None:
    in_a, _in_b = two_tickets
    in_a.grid_id = world.grid_a1.id
    db.session.commit()
    login(client, getattr(world, who))
    response = client.get(f"/tickets/{in_a.number}")
    assert response.status_code == 200
    assert 'id="reveals"' not in response.get_data(as_text=True)
