"""Open311 POST on the fast path: catalogue, jurisdiction, place names and grid boundaries
come from the cache, and what changes in this process is seen at once. (The statements
of a POST, however many places and categories there are, are counted with the other
doors' in tests/test_doors_fastpath.py.)"""
from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.doors_helpers import square
from tests.factories import PHONE, T0, World
from tests.open311_helpers import NOW, URL
from ticketing import web
from ticketing.extensions import db
from ticketing.models import Category, Grid, KeyKind, Ticket
from ticketing.services import apikeys, placing, ratelimit


@pytest.fixture(autouse=True)
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clock stands still, no sweep of old rate-limit rows, and no inline routing after
    the request: what is counted is the filing alone."""
    monkeypatch.setattr(web, "now", lambda: NOW)
    monkeypatch.setattr(ratelimit, "PRUNE_CHANCE", 0.0)
    monkeypatch.setattr("workers.relay.relay_after_request", lambda: None)


def form(key: str, **place: str) -> dict[str, str]:
    """A post placed by its text only (unless `place` says otherwise): 东怡街79号院 is 红星小区's
    alias, 3栋 its building."""
    return {"api_key": key, "service_code": "repair.stair_light", "description": "3号楼楼道灯不亮",
            "phone": PHONE, "first_name": "三丰", "last_name": "张", **(place or {"address_string": "东怡街79号院3栋"})}


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
