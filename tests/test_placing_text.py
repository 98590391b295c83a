"""Placing by free text: the longest name the text carries wins, not the first one tried."""
from __future__ import annotations

from factories import World

from ticketing.extensions import db
from ticketing.models import Building, Complex
from ticketing.services import placing, refcache


def test_a_complex_whose_name_holds_another_is_found_by_its_own_name(world: World) -> None:
    # 红星小区 (grid A1) is tried before 红星小区二期 (grid A2): names are tried in grid order.
    phase_two = Complex(name="红星小区二期", grid=world.grid_a2)
    db.session.add(Building(name="3号楼", complex=phase_two))
    db.session.commit()
    refcache.clear()

    placed = placing.place_from_text(world.community_a, "红星小区二期3号楼楼道灯不亮")
    assert (placed.complex_id, placed.grid_id) == (phase_two.id, world.grid_a2.id)
    assert placed.building_id == phase_two.buildings[0].id
    # The shorter name still places the text that names only it.
    assert placing.place_from_text(world.community_a, "红星小区3号楼漏水").complex_id == world.managed.id


def test_a_building_whose_name_holds_another_is_found_by_its_own_name(world: World) -> None:
    eleven = Building(name="11号楼", complex=world.courtyard)
    db.session.add(eleven)
    db.session.commit()
    refcache.clear()

    assert placing.place_from_text(world.community_a, "槐树院11号楼水管爆了").building_id == eleven.id
    assert placing.place_from_text(world.community_a, "槐树院1号楼水管爆了").building_id == \
        world.building_courtyard.id


def test_across_communities_the_longest_name_wins(world: World) -> None:
    # Community A (code CA) is tried before community B; its 西苑 is inside 西苑东区.
    east_part = Complex(name="西苑东区", grid=world.grid_b1)
    db.session.add(east_part)
    db.session.commit()
    refcache.clear()

    placed = placing.place_in_streets([world.street.id], "西苑东区门口垃圾没人收")
    assert placed is not None and (placed.community_id, placed.complex_id) == (world.community_b.id, east_part.id)
    placed = placing.place_in_streets([world.street.id], "西苑5号楼门口垃圾没人收")
    assert placed is not None and placed.complex_id == world.west.id
    assert placing.place_in_streets([world.street.id], "小区门口垃圾没人收") is None


def test_the_communities_a_text_names_a_complex_of(world: World) -> None:
    east_part = Complex(name="西苑东区", grid=world.grid_b1)
    closed = Complex(name="老粮库", grid=world.grid_b1, active=False)
    db.session.add_all([east_part, closed])
    db.session.commit()
    refcache.clear()

    # Every community one of whose complexes is named, by a name or an alias, typed full width or not.
    assert placing.communities_naming_a_complex("西苑东区门口垃圾没人收") == {
        world.community_a.id, world.community_b.id}
    assert placing.communities_naming_a_complex("东怡街７９号院楼道灯不亮") == {world.community_a.id}
    # A deactivated complex names nothing; nor does a text without a complex.
    assert placing.communities_naming_a_complex("老粮库门口垃圾没人收") == set()
    assert placing.communities_naming_a_complex("小区门口垃圾没人收") == set()
