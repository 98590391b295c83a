"""Placing by building id: every open building's place from one map per process."""
from __future__ import annotations

import pytest
from factories import World
from sqlalchemy import insert, select, update

from ticketing.extensions import db
from ticketing.models import Building
from ticketing.services import placing, refcache


def test_buildings_first_met_are_placed_from_one_statement(world: World, statements: list[str]) -> None:
    refcache.clear()
    statements.clear()
    ids = db.session.scalars(select(Building.id).order_by(Building.id)).all()
    placed = [placing.building_place(building_id) for building_id in ids]
    assert [p.building_id for p in placed if p is not None] == list(ids)
    assert len(statements) == 2  # the ids above, then the map


def test_a_building_added_elsewhere_after_the_map_was_read_is_placed_at_once(world: World) -> None:
    refcache.clear()
    assert placing.building_place(world.building_courtyard.id) is not None  # the map is read
    # Another process adds one: this process's cache is not told.
    new_id = db.session.execute(insert(Building).values(name="9号楼", complex_id=world.courtyard.id, active=True)
                                .returning(Building.id)).scalar_one()
    db.session.commit()
    placed = placing.building_place(new_id)
    assert placed is not None and (placed.building_id, placed.complex_id) == (new_id, world.courtyard.id)


def test_a_building_closed_elsewhere_is_unplaced_once_the_map_is_stale(
    world: World, monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(refcache, "clock", lambda: now[0])
    refcache.clear()
    assert placing.building_place(world.building_west.id) is not None
    db.session.execute(update(Building).where(Building.id == world.building_west.id).values(active=False))
    db.session.commit()
    now[0] += refcache.TTL + 1
    assert placing.building_place(world.building_west.id) is None


def test_past_the_limit_each_building_is_looked_up_on_its_own(
    world: World, monkeypatch: pytest.MonkeyPatch, statements: list[str],
) -> None:
    monkeypatch.setattr(placing, "BUILDING_MAP_LIMIT", 1)
    refcache.clear()
    statements.clear()
    placed = placing.building_place(world.building_east.id)
    assert placed is not None and placed.building_id == world.building_east.id
    assert len(statements) == 2  # the map, given up; then the building
