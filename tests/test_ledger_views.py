"""The ledger pages: the dashboard, a grid's day and its print view, as each persona sees them."""
from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import login
from tests.factories import TZ, World
from tests.ledger_day import DAY, hand_worked_day, local
from ticketing.models import Ticket
from ticketing.services import ledger
from ticketing.services.photos import PhotoStore

NOW = local(19, 10)  # the morning after the hand-worked day


@pytest.fixture()
def days(world: World, store: PhotoStore, monkeypatch: pytest.MonkeyPatch) -> dict[str, Ticket]:
    tickets = hand_worked_day(world, store)
    for day in (DAY - timedelta(days=1), DAY):
        ledger.compile_day(day, TZ, NOW)
    ledger.compile_day(DAY + timedelta(days=1), TZ, NOW)  # today, as of 10:00
    monkeypatch.setattr("ticketing.ledger.views.now", lambda: NOW)
    return tickets


def page(client: FlaskClient, url: str) -> tuple[int, str]:
    response = client.get(url)
    return response.status_code, response.get_data(as_text=True)


def test_a_supervisor_sees_yesterday_today_the_rankings_and_the_map(
        client: FlaskClient, world: World, days: dict[str, Any], english: None) -> None:
    login(client, world.sam)
    status, html = page(client, "/ledger/")
    assert status == 200
    assert "Yesterday" in html and "2026-11-18" in html
    assert "As of 10:00" in html  # today's ledgers, compiled at 10:00
    # The community's response rate yesterday is over 5 acceptances due: too few to show.
    assert "60.0%" not in html and "Small sample" in html and "n=5, under 10" in html
    assert "A rate over fewer than 10 tickets is not shown" in html
    assert world.gina.display_name in html and world.greg.display_name in html
    assert html.count('class="grid-shape"') == 0  # the test grids have no boundaries…
    assert "Grids without a boundary" in html and "/ledger/grid/CA-01/2026-11-19" in html
    assert "CB-01" not in html  # the other community's grid
    assert "<svg" in html and "<polyline" in html
    assert "Supervision list" in html


def map_of_two(client: FlaskClient, world: World, width: float) -> str:
    """The dashboard of Sam's community with A1 and A2 drawn as `width`° × 0.01° boxes."""
    from ticketing.extensions import db

    def box(west: float) -> str:
        ring = [[west, 39.0], [west + width, 39.0], [west + width, 39.01], [west, 39.01], [west, 39.0]]
        return json.dumps({"type": "Polygon", "coordinates": [ring]})

    world.grid_a1.boundary, world.grid_a2.boundary = box(116.0), box(116.02)
    db.session.commit()
    login(client, world.sam)
    status, html = page(client, "/ledger/")
    assert status == 200 and html.count('class="grid-shape"') == 2
    return html


def test_the_map_draws_each_grid_from_its_boundary_coloured_and_linked(
        client: FlaskClient, world: World, days: dict[str, Any], english: None) -> None:
    html = map_of_two(client, world, 0.01)
    # Today at 10:00 A1 had t7 long overdue (red); A2 three open, none overdue (calm).
    assert 'fill="#f4a49e"' in html and 'fill="#cfe8d5"' in html
    assert 'href="/ledger/grid/CA-01/2026-11-19"' in html
    assert 'class="map-name"' in html and "On each grid: open / overdue!" in html
    assert re.search(f"<title>{world.grid_a1.community.name} {world.grid_a1.name} \\(CA-01\\) — "
                     r"open \d+, overdue [1-9]\d*</title>", html)


def test_the_week_and_the_other_rankings_are_a_link_away(
        client: FlaskClient, world: World, days: dict[str, Any], english: None) -> None:
    login(client, world.sue)
    status, html = page(client, "/ledger/?period=week&day=2026-11-18&by=resolution&area=community:CA")
    assert status == 200
    assert "2026-11-16 – 2026-11-22" in html
    # Community A's two grids on the 17th, the 18th and the 19th so far (today, compiled at 10:00).
    assert "6 grid ledgers added up" in html
    assert "n=6, under 10" in html  # the week's response rate: 3 / 6, too few to show
    status, html = page(client, "/ledger/?period=fortnight&by=nonsense&area=nowhere")
    assert status == 200  # unknown choices fall back to the defaults


def test_a_grid_worker_sees_his_own_grid_and_not_the_supervision_list(
        client: FlaskClient, world: World, days: dict[str, Any], english: None) -> None:
    login(client, world.gina)
    status, html = page(client, "/ledger/")
    assert status == 200 and "CA-01" in html and "CA-02" not in html
    assert world.greg.display_name not in html
    assert "Open the supervision list" not in html


def test_the_ledger_page_shows_counts_rates_and_a_masked_line_per_ticket(
        client: FlaskClient, world: World, days: dict[str, Any], english: None) -> None:
    login(client, world.gina)
    status, html = page(client, "/ledger/grid/CA-01/2026-11-18")
    assert status == 200
    assert "1 / 2" in html and "50.0%" in html  # the resolution rate
    for name in ("t1", "t2", "t3", "t5", "t8"):
        assert f'href="/tickets/{days[name].number}"' in html
    assert days["t4"].number not in html and days["t6"].number not in html
    assert "张**" in html and "138****5678" in html and "张三丰" not in html and "13812345678" not in html
    assert "更换了管道" in html
    assert "Full version" not in html  # grid workers get the masked files only
    assert "/ledger/grid/CA-01/2026-11-18/export.xlsx" in html


def test_a_day_not_compiled_says_so(client: FlaskClient, world: World, days: dict[str, Any], english: None) -> None:
    login(client, world.gina)
    status, html = page(client, "/ledger/grid/CA-01/2026-10-01")
    assert status == 200 and "has not been compiled yet" in html


def test_a_grid_worker_cannot_see_another_grids_ledger(
        client: FlaskClient, world: World, days: dict[str, Any]) -> None:
    login(client, world.gina)
    for url in ("/ledger/grid/CA-02/2026-11-18", "/ledger/grid/CA-02/2026-11-18/print",
                "/ledger/grid/CA-02/2026-11-18/export.csv", "/ledger/grid/NOPE/2026-11-18"):
        assert client.get(url).status_code == 404, url


def test_a_community_supervisor_sees_his_community_and_not_the_next(
        client: FlaskClient, world: World, days: dict[str, Any]) -> None:
    login(client, world.sam)
    assert client.get("/ledger/grid/CA-02/2026-11-18").status_code == 200
    assert client.get("/ledger/grid/CB-01/2026-11-18").status_code == 404
    street = client.application.test_client()
    login(street, world.sue)  # the street's supervisor
    assert street.get("/ledger/grid/CB-01/2026-11-18").status_code == 200


def test_people_without_grids_have_no_ledgers(client: FlaskClient, world: World, days: dict[str, Any]) -> None:
    login(client, world.pete)
    assert client.get("/ledger/").status_code == 404
    assert client.get("/ledger/grid/CA-01/2026-11-18").status_code == 404
    anonymous = client.application.test_client()
    assert anonymous.get("/ledger/").status_code == 302


def test_a_malformed_day_is_not_a_page(client: FlaskClient, world: World, days: dict[str, Any]) -> None:
    login(client, world.sam)
    assert client.get("/ledger/grid/CA-01/18-11-2026").status_code == 404


def test_the_print_view_is_an_a4_landscape_sheet(
        client: FlaskClient, world: World, days: dict[str, Any], english: None) -> None:
    login(client, world.sam)
    status, html = page(client, "/ledger/grid/CA-02/2026-11-18/print")
    assert status == 200 and "ledger-print.css" in html and 'class="topbar"' not in html
    assert days["u1"].number in html and "33.3% (1/3)" in html
    css = client.get("/static/css/ledger-print.css").get_data(as_text=True)
    assert "size: A4 landscape" in css


def test_the_pages_are_in_chinese_by_default(client: FlaskClient, world: World, days: dict[str, Any]) -> None:
    login(client, world.sam)
    status, html = page(client, "/ledger/")
    assert status == 200 and "响应率" in html and "今日" in html
    assert "台账" in client.get("/").get_data(as_text=True)  # the menu links the dashboard


def test_the_dashboard_reads_the_ledgers_and_never_scans_tickets(
        client: FlaskClient, world: World, days: dict[str, Any]) -> None:
    """What keeps it fast at millions of tickets: a grid worker's dashboard (no 督办 list)
    is a handful of queries over ledger rows, none of them over the tickets."""
    from sqlalchemy import event

    from ticketing.extensions import db

    login(client, world.gina)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    with client.application.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get("/ledger/?period=month&day=2026-11-18").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert statements and not [s for s in statements if "FROM tickets" in s or "JOIN tickets" in s]
    # 20 for the ledgers, the map and the menu; the governance tasks' block and the
    # export form's area add one each.
    assert len(statements) <= 22


def test_a_map_too_crowded_for_labels_does_not_explain_them(
        client: FlaskClient, world: World, days: dict[str, Any], english: None) -> None:
    # Two slivers (1 m wide, 1 km tall) far apart: no room for a name or a count.
    html = map_of_two(client, world, 0.00001)
    assert 'class="map-name"' not in html and "On each grid" not in html
