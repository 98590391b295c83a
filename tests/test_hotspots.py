"""Recurring problems (services/hotspots.py): clusters, thresholds, trend, the narrowest
place, near-identical wording, the score, stored runs and scope."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from config import Config, ConfigError
from tests.callback_helpers import rated
from tests.factories import TZ, World
from tests.hotspot_helpers import DAY, NOW, at, file, file_many
from ticketing.extensions import db
from ticketing.models import Building, Hotspot, HotspotRun, HotspotTicket, Status
from ticketing.services import hotspots
from ticketing.services.photos import PhotoStore


def find(days: int = 30, min_count: int = 3) -> list[Hotspot]:
    return hotspots.find(DAY, days, NOW, min_count, tz=TZ)


def where(spots: list[Hotspot]) -> list[tuple[str, str, int]]:
    return [(s.level, s.place_name, s.count) for s in spots]


# --- finding ------------------------------------------------------------------------


def test_three_tickets_of_one_building_and_category_are_a_cluster(world: World, store: PhotoStore) -> None:
    tickets = file_many(world, store, [20, 10, 2])
    [spot] = find()
    assert (spot.level, spot.place_id, spot.place_name) == ("building", world.building_courtyard.id, "槐树院1号楼")
    assert spot.category_id == world.category("repair.stair_light").id
    assert (spot.count, spot.previous_count, spot.trend, spot.is_new) == (3, 0, 3, True)
    assert (spot.first_at, spot.last_at) == (tickets[0].created_at, tickets[2].created_at)
    assert spot.weekly == [0, 1, 1, 1, 0] and (spot.street_id, spot.grid_id) == (world.street.id, world.grid_a1.id)


def test_two_tickets_are_no_cluster_and_the_threshold_can_be_raised(world: World, store: PhotoStore) -> None:
    file_many(world, store, [5, 3])
    assert find() == []
    file(world, store, 1)
    assert where(find()) == [("building", "槐树院1号楼", 3)]
    assert find(min_count=4) == []


def test_tickets_outside_the_window_do_not_count(world: World, store: PhotoStore) -> None:
    file_many(world, store, [2, 3, 45])
    file(world, store, -1)  # after the day: tomorrow's
    assert find() == []
    assert where(find(days=90)) == [("building", "槐树院1号楼", 3)]


def test_the_trend_compares_with_the_same_days_just_before(world: World, store: PhotoStore) -> None:
    file_many(world, store, [1, 5, 9, 28, 31, 50, 70])
    [spot] = find()
    assert (spot.count, spot.previous_count, spot.trend, spot.is_new) == (4, 2, 2, False)


def test_merged_rejected_and_withdrawn_tickets_do_not_count(world: World, store: PhotoStore) -> None:
    file_many(world, store, [1, 2, 3])
    for status in (Status.REJECTED, Status.MERGED, Status.WITHDRAWN):
        file(world, store, 4, status=status)
    assert where(find(min_count=4)) == []
    assert where(find()) == [("building", "槐树院1号楼", 3)]


def test_a_cluster_one_building_explains_is_listed_at_the_building_alone(world: World, store: PhotoStore) -> None:
    file_many(world, store, [1, 2, 3, 4])
    assert where(find()) == [("building", "槐树院1号楼", 4)]


def test_a_complex_whose_tickets_spread_over_its_buildings_is_listed_as_the_complex(
        world: World, store: PhotoStore) -> None:
    second = Building(name="2号楼", complex=world.courtyard)
    db.session.add(second)
    db.session.commit()
    file_many(world, store, [1, 2])
    file_many(world, store, [3, 4], building=second)
    assert where(find()) == [("complex", "槐树院", 4)]


def test_tickets_placed_no_closer_than_a_complex_make_the_complexs_cluster(world: World, store: PhotoStore) -> None:
    tickets = [file(world, store, d, building_id=None) for d in (1, 2, 3)]
    [found] = hotspots.gather(DAY, 30, NOW, 3, TZ)
    assert (found.values["level"], found.values["place_name"], found.values["count"]) == ("complex", "槐树院", 3)
    assert found.sample == [t.id for t in tickets]


def test_a_grid_with_clusters_in_two_complexes_is_listed_above_them(world: World, store: PhotoStore) -> None:
    file_many(world, store, [1, 2, 3])
    file_many(world, store, [4, 5, 6], building=world.building_managed)
    spots = find()
    assert sorted(where(spots)) == [("building", "槐树院1号楼", 3), ("building", "红星小区3号楼", 3),
                                    ("grid", "东怡社区第一网格", 6)]
    assert next(s for s in spots if s.level == "grid").grid_id == world.grid_a1.id


def test_near_identical_wording_joins_tickets_filed_under_another_category(world: World, store: PhotoStore) -> None:
    file(world, store, 1, text="槐树院1号楼楼道灯不亮，晚上看不见台阶")
    file(world, store, 3, text="楼道灯不亮，晚上看不见台阶！")
    misfiled = file(world, store, 5, category="repair.water_leak", text="1号楼楼道灯又不亮了，晚上看不见台阶")
    other = file(world, store, 6, category="repair.water_leak", text="卫生间水管漏水，楼下天花板湿了")
    [spot] = hotspots.gather(DAY, 30, NOW, 3, TZ)
    assert spot.values["category_id"] == world.category("repair.stair_light").id
    assert (spot.values["count"], spot.values["merged"]) == (3, 1)
    assert misfiled.id in spot.sample and other.id not in spot.sample


def test_different_words_in_another_category_stay_apart(world: World, store: PhotoStore) -> None:
    file_many(world, store, [1, 2])
    file(world, store, 3, category="repair.water_leak", text="卫生间水管漏水")
    assert find() == []


def test_the_typical_wording_is_masked(world: World, store: PhotoStore) -> None:
    file(world, store, 1, text="楼道灯不亮，晚上看不见，电话13912345678")
    file(world, store, 2, text="楼道灯不亮，晚上看不见台阶")
    file(world, store, 3, text="楼道灯不亮，晚上看不见台阶了")
    [spot] = find()
    assert "楼道灯不亮" in spot.wording and "13912345678" not in spot.wording
    file(world, store, 4, text="楼道灯不亮，电话13912345678，2单元301")
    file(world, store, 4.5, text="楼道灯不亮，电话13912345678，2单元301")
    file(world, store, 5, text="楼道灯不亮，电话13912345678，2单元301")
    [spot] = find()
    assert "139****5678" in spot.wording and "301" not in spot.wording


def test_unsatisfied_reopened_and_handlers_are_counted_and_scored(world: World, store: PhotoStore) -> None:
    rated(world, store, "unsatisfied", at=at(3), building=world.building_courtyard, handler=world.gina)
    file(world, store, 2, reopen_count=1, assignee_id=world.gina.id)
    file(world, store, 1, team_id=world.volunteers.id)
    [spot] = find()
    assert (spot.count, spot.unsatisfied, spot.reopened) == (3, 1, 1)
    assert spot.score == 3 + 2 * 1 + 2 * 1 + 3 == hotspots.score(3, 0, 1, 1)
    assert spot.handlers == [{"name": "Gina", "count": 2}, {"name": "东怡志愿服务队", "count": 1}]


def test_the_most_significant_cluster_comes_first(world: World, store: PhotoStore) -> None:
    file_many(world, store, [1, 2, 3, 4, 31, 32, 33, 34], building=world.building_east)  # steady: score 4
    file_many(world, store, [1, 2, 3])  # new: score 3 + 3
    assert where(find()) == [("building", "槐树院1号楼", 3), ("building", "东苑2号楼", 4)]


def test_the_threshold_is_a_setting_of_at_least_two(tmp_path: Path) -> None:
    assert Config.from_env({"MINHU_INSTANCE": str(tmp_path)}).flask_mapping()["HOTSPOT_MIN_COUNT"] == 3
    assert Config.from_env({"MINHU_INSTANCE": str(tmp_path), "HOTSPOT_MIN_COUNT": "5"}).hotspot_min_count == 5
    with pytest.raises(ConfigError, match="HOTSPOT_MIN_COUNT"):
        Config.from_env({"MINHU_INSTANCE": str(tmp_path), "HOTSPOT_MIN_COUNT": "1"})


# --- storing and reading ------------------------------------------------------------


def links() -> int:
    return db.session.scalar(select(func.count()).select_from(HotspotTicket)) or 0


def test_a_run_stores_the_clusters_with_their_latest_tickets(world: World, store: PhotoStore) -> None:
    tickets = file_many(world, store, [9, 1, 5])
    run = hotspots.run(DAY, 30, NOW, tz=TZ)
    db.session.commit()
    assert (run.day, run.days, run.clusters, run.min_count) == (DAY, 30, 1, 3)
    [spot] = hotspots.for_scope(None, DAY)
    assert [t.ticket_id for t in spot.tickets] == [tickets[1].id, tickets[2].id, tickets[0].id]
    assert [t.id for t in hotspots.sample_tickets([spot])[spot.id]] == [tickets[1].id, tickets[2].id, tickets[0].id]


def test_running_the_same_day_and_window_again_replaces_the_run(world: World, store: PhotoStore) -> None:
    file_many(world, store, [1, 2, 3])
    hotspots.run(DAY, 30, NOW, tz=TZ)
    db.session.commit()
    file(world, store, 4)
    hotspots.run(DAY, 30, NOW, tz=TZ)
    hotspots.run(DAY, 90, NOW, tz=TZ)
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(HotspotRun)) == 2
    assert [(s.days, s.count) for s in db.session.scalars(select(Hotspot).order_by(Hotspot.days))] == [(30, 4), (90, 4)]
    assert links() == 8


def test_for_scope_reads_the_latest_run_on_or_before_the_day(world: World, store: PhotoStore) -> None:
    file_many(world, store, [3, 4, 5])
    hotspots.run(DAY - timedelta(days=2), 30, NOW, tz=TZ)
    file(world, store, 1)
    hotspots.run(DAY, 30, NOW, min_count=9, tz=TZ)  # found nothing: it hides the older run from DAY on
    db.session.commit()
    assert [s.count for s in hotspots.for_scope(None, DAY - timedelta(days=1))] == [3]
    assert hotspots.for_scope(None, DAY) == []
    assert hotspots.for_scope(None, DAY - timedelta(days=3)) == []
    assert hotspots.for_scope(None, DAY - timedelta(days=1), days=90) == []


def test_the_new_or_growing_are_listed_as_plain_summaries(world: World, store: PhotoStore) -> None:
    file_many(world, store, [1, 2, 3])  # new
    file_many(world, store, [1, 2, 3, 31, 32, 33], building=world.building_east)  # steady
    file_many(world, store, [1, 2, 3, 4, 31, 32], building=world.building_west)  # growing
    hotspots.run(DAY, 30, NOW, tz=TZ)
    db.session.commit()
    assert [(s.place_name, s.trend, s.is_new) for s in hotspots.new_or_growing(world.sue, DAY)] == [
        ("东怡社区", 5, False), ("西苑5号楼", 2, False), ("槐树院1号楼", 3, True)]  # not the steady 东苑
    assert hotspots.new_or_growing(world.dan, DAY) == []


def test_old_runs_are_dropped(world: World, store: PhotoStore) -> None:
    file_many(world, store, [1, 2, 3])
    hotspots.run(DAY - timedelta(days=hotspots.KEEP_DAYS + 1), 30, NOW, tz=TZ)
    hotspots.run(DAY, 30, NOW, tz=TZ)
    db.session.commit()
    assert [r.day for r in db.session.scalars(select(HotspotRun))] == [DAY]


def test_for_scope_keeps_to_what_each_user_may_see(world: World, store: PhotoStore) -> None:
    file_many(world, store, [1, 2, 3])  # 槐树院, grid A1, community A
    file_many(world, store, [1, 2, 3], building=world.building_east)  # 东苑, grid B1, community B
    hotspots.run(DAY, 30, NOW, tz=TZ)
    db.session.commit()

    def names(user: object) -> list[str]:
        return sorted(s.place_name for s in hotspots.for_scope(user, DAY))  # type: ignore[arg-type]

    assert names(None) == names(world.sue) == names(world.adam) == ["东苑2号楼", "槐树院1号楼"]
    assert names(world.sam) == names(world.dora) == names(world.gina) == ["槐树院1号楼"]
    assert names(world.dan) == names(world.gabe) == ["东苑2号楼"]
    assert names(world.greg) == names(world.pete) == names(world.vera) == []
    spot = hotspots.for_scope(None, DAY)[0]
    assert hotspots.visible(world.sue, spot.id) is not None
    assert hotspots.visible(world.greg, spot.id) is None


@pytest.mark.postgres
def test_two_runs_at_once_store_one_set(ctx: Flask, world: World, store: PhotoStore) -> None:
    file_many(world, store, [1, 2, 3])
    started = threading.Barrier(2)

    def run_once() -> None:
        with ctx.app_context():
            started.wait(timeout=30)
            hotspots.run(DAY, 30, NOW, tz=TZ)
            db.session.commit()
            db.session.remove()

    with ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(run_once) for _ in range(2)]:
            future.result(timeout=60)  # raises what the thread raised
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(HotspotRun)) == 1
    assert db.session.scalar(select(func.count()).select_from(Hotspot)) == 1
    assert links() == 3


# --- near-identical wording, on its own -----------------------------------------------


def test_alike_texts_group_through_one_another() -> None:
    from ticketing.services.hotspot_texts import alike_groups, normalised

    texts = [normalised(t) for t in ("楼道灯不亮了晚上看不见台阶", "楼道灯又不亮了晚上看不见台阶",
                                     "楼道灯又不亮了，晚上看不见台阶！！", "卫生间漏水")]
    groups = alike_groups(texts)
    assert groups[0] == groups[1] == groups[2] != groups[3]


def test_a_places_own_names_do_not_make_texts_alike() -> None:
    from ticketing.services.hotspot_texts import alike_groups, normalised

    texts = ("红星小区3号楼漏水", "红星小区3号楼停电")
    assert len(set(alike_groups([normalised(t, ["红星小区", "3号楼"]) for t in texts]))) == 2


def test_a_tie_goes_to_the_category_with_more_tickets_at_the_place() -> None:
    from ticketing.services.hotspot_texts import Said, regrouped

    said = [Said(1, 10, "楼道灯不亮"), Said(2, 20, "楼道灯不亮了")]
    assert regrouped(said, {10: 1, 20: 5}) == {1: 20}
    assert regrouped(said, {10: 5, 20: 1}) == {2: 10}
    assert regrouped([Said(1, 10, "楼道灯不亮"), Said(2, 20, "卫生间漏水")], {}) == {}


def test_the_typical_text_is_the_one_most_like_the_others() -> None:
    from ticketing.services.hotspot_texts import typical

    texts = ["楼道灯坏了", "楼道灯不亮了，看不见台阶", "楼道灯不亮，看不见台阶", "楼道灯不亮了，看不清台阶"]
    assert typical(texts) == 1
