"""Open311 POST on the fast path: catalogue, jurisdiction and place names come from the
cache, so filing issues a bounded number of SQL statements, however many places and
categories there are."""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event

from tests.factories import PHONE, T0, World
from tests.open311_helpers import NOW, URL, json_of
from ticketing import web
from ticketing.extensions import db
from ticketing.models import Building, Category, Community, Complex, Grid, KeyKind, Ticket
from ticketing.services import apikeys, placing, ratelimit

# Without Redis: the rate limit's own transaction (2 statements), the idempotency check,
# and storing the ticket, its event and its routing job (1 on PostgreSQL, 4 on SQLite).
MAX_STATEMENTS = 7


@pytest.fixture(autouse=True)
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clock stands still, no sweep of old rate-limit rows, and no inline routing after
    the request: what is counted is the filing alone."""
    monkeypatch.setattr(web, "now", lambda: NOW)
    monkeypatch.setattr(ratelimit, "PRUNE_CHANCE", 0.0)
    monkeypatch.setattr("workers.relay.relay_after_request", lambda: None)


@pytest.fixture()
def statements(world: World) -> Iterator[list[str]]:
    recorded: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        recorded.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    yield recorded
    event.remove(db.engine, "before_cursor_execute", record)


def form(key: str, **place: str) -> dict[str, str]:
    """A post placed by its text only (unless `place` says otherwise): 东怡街79号院 is 红星小区's
    alias, 3栋 its building."""
    return {"api_key": key, "service_code": "repair.stair_light", "description": "3号楼楼道灯不亮",
            "phone": PHONE, "first_name": "三丰", "last_name": "张", **(place or {"address_string": "东怡街79号院3栋"})}


def square(lon: float, lat: float, side: float = 0.01) -> str:
    return json.dumps({"type": "Polygon", "coordinates": [[[lon, lat], [lon + side, lat], [lon + side, lat + side],
                                                           [lon, lat + side], [lon, lat]]]})


def statements_of_a_post(client: FlaskClient, key: str, statements: list[str], **place: str) -> int:
    """The statements of one POST after a first one has filled the caches."""
    assert client.post(f"{URL}/requests.json", data=form(key, **place)).status_code == 201
    statements.clear()
    response = client.post(f"{URL}/requests.json", data=form(key, **place))
    assert response.status_code == 201 and json_of(response)[0]["service_notice"]
    return len(statements)


def add_places_and_categories(world: World, count: int) -> None:
    """A community tried before 东怡社区 with `count` grids of complexes, and `count` categories."""
    first = Community(code="AA", name="前面社区", street=world.street)
    for g in range(count):
        grid = Grid(code=f"AA-{g:02d}", name=f"网格{g}", community=first, boundary=square(117 + g / 10, 40))
        for c in range(3):
            cx = Complex(name=f"小区{g}-{c}", grid=grid, aliases=f"别名{g}-{c}")
            db.session.add_all([Building(name=f"{b}号楼", complex=cx) for b in range(3)])
    group = Category(code="many", name_zh="很多", name_en="Many")
    db.session.add_all([group, *(Category(code=f"many.{i}", name_zh=f"类{i}", name_en=f"Kind {i}", parent=group)
                                 for i in range(count))])
    db.session.commit()


def test_filing_by_address_text_issues_few_statements_however_many_places_and_categories(
    client: FlaskClient, world: World, statements: list[str],
) -> None:
    key = apikeys.issue(KeyKind.OPEN311, "Test app", T0)[1]
    few = statements_of_a_post(client, key, statements)
    add_places_and_categories(world, 12)
    many = statements_of_a_post(client, key, statements)
    assert many == few <= MAX_STATEMENTS, statements


def test_filing_by_a_point_issues_few_statements_however_many_grids(
    client: FlaskClient, world: World, statements: list[str],
) -> None:
    world.grid_a2.boundary = square(116.40, 39.90)
    db.session.commit()
    key = apikeys.issue(KeyKind.OPEN311, "Test app", T0)[1]
    few = statements_of_a_post(client, key, statements, lat="39.905", long="116.405")
    add_places_and_categories(world, 12)
    many = statements_of_a_post(client, key, statements, lat="39.905", long="116.405")
    assert many == few <= MAX_STATEMENTS, statements


def test_a_point_in_a_deactivated_grid_is_not_placed_there(client: FlaskClient, world: World) -> None:
    world.grid_a1.boundary = world.grid_a2.boundary = square(116.40, 39.90)
    world.grid_a1.active = False
    db.session.commit()
    key = apikeys.issue(KeyKind.OPEN311, "Test app", T0)[1]
    response = client.post(f"{URL}/requests.json", data=form(key, lat="39.905", long="116.405"))
    assert response.status_code == 201
    db.session.expire_all()
    assert db.session.scalar(db.select(Ticket.grid_id)) == world.grid_a2.id


def test_a_complex_renamed_in_this_process_is_found_by_its_new_name_at_once(world: World) -> None:
    assert placing.place_from_text(world.community_a, "新红星3栋").complex_id is None
    world.managed.name = "新红星"
    db.session.commit()
    found = placing.place_from_text(world.community_a, "新红星3栋")
    assert (found.complex_id, found.building_id) == (world.managed.id, world.building_managed.id)


def test_a_building_moved_to_a_deactivated_grid_is_not_found_by_name(world: World) -> None:
    world.building_managed.grid = Grid(code="CA-09", name="停用网格", community=world.community_a, active=False)
    db.session.commit()
    found = placing.place_from_text(world.community_a, "东怡街79号院3栋")
    assert (found.complex_id, found.building_id) == (world.managed.id, None)


def test_a_renamed_service_code_is_found_at_once(client: FlaskClient, world: World) -> None:
    key = apikeys.issue(KeyKind.OPEN311, "Test app", T0)[1]
    assert client.post(f"{URL}/requests.json", data=form(key)).status_code == 201
    category = db.session.scalar(db.select(Category).where(Category.code == "repair.stair_light"))
    category.code = "repair.stair_lamp"
    db.session.commit()
    assert client.post(f"{URL}/requests.json", data=form(key)).status_code == 404
    renamed = dict(form(key), service_code="repair.stair_lamp")
    assert client.post(f"{URL}/requests.json", data=renamed).status_code == 201


def test_a_rate_limit_counted_in_the_database_takes_two_statements_allowed_or_refused(
    world: World, statements: list[str],
) -> None:
    per_hit = []
    for _ in range(3):
        statements.clear()
        per_hit.append((ratelimit.hit("open311_key", "7", 2, 60, NOW).allowed, len(statements)))
    assert per_hit == [(True, 2), (True, 2), (False, 2)]
