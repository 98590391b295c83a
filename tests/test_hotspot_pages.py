"""The recurring problems at the doors: `flask hotspots find`, the nightly job, the staff API
(GET /api/v1/hotspots) and the ledger's pages (/ledger/hotspots), each in scope."""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import login
from tests.factories import T0, TZ, World
from tests.hotspot_helpers import DAY, NOW, file, file_many
from ticketing.extensions import db
from ticketing.models import Hotspot, HotspotRun, KeyKind, Ticket, User
from ticketing.services import apikeys, hotspots
from ticketing.services.photos import PhotoStore

SECRET = "13912345678"


@pytest.fixture()
def found(world: World, store: PhotoStore, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Ticket]]:
    """Stair lights at 槐树院1号楼 (community A, one with a phone number and a map pin), leaks
    at 东苑2号楼 (community B); both windows run for DAY, and the pages' clock is the morning after."""
    tickets = {
        "a": [file(world, store, 1, text=f"楼道灯不亮，晚上看不见，电话{SECRET}", lat=39.905, lon=116.40),
              *file_many(world, store, [3, 6])],
        "b": file_many(world, store, [2, 4, 8], building=world.building_east, category="repair.water_leak",
                       text="卫生间漏水"),
    }
    for days in hotspots.WINDOWS:
        hotspots.run(DAY, days, NOW, tz=TZ)
    db.session.commit()
    monkeypatch.setattr("ticketing.ledger.hotspot_pages.now", lambda: NOW)
    return tickets


def spot_at(name: str, days: int = 30) -> Hotspot:
    return db.session.scalars(select(Hotspot).where(Hotspot.place_name == name, Hotspot.days == days)).one()


# --- the command and the job --------------------------------------------------------


def test_flask_hotspots_find_prints_one_cluster_per_line(app: Flask, world: World, store: PhotoStore) -> None:
    file_many(world, store, [1, 2, 3])
    file_many(world, store, [40, 45])
    result = app.test_cli_runner().invoke(args=["hotspots", "find", "--date", DAY.isoformat(), "--days", "30"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("# 1 clusters") and "30 days ending 2026-11-17" in lines[0]
    assert lines[1:] == ["槐树院1号楼\t楼道灯不亮 (repair.stair_light)\t3\t+1"]
    assert db.session.scalar(select(HotspotRun.days)) == 30


def test_flask_hotspots_find_does_both_windows_and_refuses_a_bad_date(app: Flask, world: World,
                                                                       store: PhotoStore) -> None:
    file_many(world, store, [1, 2, 3])
    runner = app.test_cli_runner()
    result = runner.invoke(args=["hotspots", "find", "--date", DAY.isoformat()])
    assert result.exit_code == 0, result.output
    assert [line.split(" in the ")[1][:7] for line in result.output.splitlines() if line.startswith("#")] == [
        "30 days", "90 days"]
    assert result.output.count("槐树院1号楼\t") == 2 and "\tnew" in result.output
    assert runner.invoke(args=["hotspots", "find", "--date", "2026-13-01"]).exit_code == 2


def test_the_nightly_job_finds_both_windows_of_yesterday(app: Flask, world: World, store: PhotoStore,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from workers import jobs
    from workers.scheduler import SCHEDULE

    entry = next(e for e in SCHEDULE if e.id == "nightly-hotspots")
    assert entry.job == "workers.jobs.find_hotspots" and entry.cron == "40 0 * * *"
    assert jobs.find_hotspots.job_options.queue == "low"
    file_many(world, store, [1, 2, 3])
    monkeypatch.setattr(jobs, "utcnow", lambda: T0)
    assert jobs.find_hotspots() == "recurring problems to 2026-11-17: 30 days: 1, 90 days: 1"
    assert jobs.find_hotspots(DAY.isoformat()).endswith("30 days: 1, 90 days: 1")  # again: replaced
    assert sorted(db.session.scalars(select(HotspotRun.days))) == [30, 90]


# --- the staff API ------------------------------------------------------------------


def api_get(client: FlaskClient, user: User, query: str) -> Any:
    _row, key = apikeys.issue(KeyKind.STAFF, "test", T0, user=user)
    return client.get(f"/api/v1/hotspots?{query}", headers={"Authorization": f"Bearer {key}"})


def test_the_api_lists_the_clusters_in_the_keys_scope(client: FlaskClient, world: World,
                                                       found: dict[str, list[Ticket]]) -> None:
    response = api_get(client, world.sue, "days=90&date=2026-11-18")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["date"], body["days"], body["total"], body["min_count"]) == ("2026-11-17", 90, 2, 3)
    first = body["hotspots"][0]
    assert first["place_name"] == "槐树院1号楼" and first["level"] == "building"
    assert first["category"]["code"] == "repair.stair_light" and first["count"] == 3 and first["is_new"]
    assert first["tickets"] == [t.number for t in found["a"]]
    assert SECRET not in response.get_data(as_text=True) and first["wording"] == "楼道灯不亮，晚上看不见台阶"
    names = [h["place_name"] for h in api_get(client, world.dan, "date=2026-11-18").get_json()["hotspots"]]
    assert names == ["东苑2号楼"]
    assert api_get(client, world.pete, "").get_json()["hotspots"] == []


def test_the_api_answers_no_run_and_refuses_bad_parameters(client: FlaskClient, world: World,
                                                           found: dict[str, list[Ticket]]) -> None:
    body = api_get(client, world.sue, "days=7&date=2026-11-18").get_json()
    assert (body["date"], body["total"], body["hotspots"]) == (None, 0, [])
    assert api_get(client, world.sue, "date=2026-11-16").get_json()["hotspots"] == []
    assert api_get(client, world.sue, "days=0").status_code == 422
    assert api_get(client, world.sue, "date=tomorrow").status_code == 422
    assert client.get("/api/v1/hotspots").status_code == 401


# --- the pages ----------------------------------------------------------------------


def page(client: FlaskClient, url: str) -> tuple[int, str]:
    response = client.get(url)
    return response.status_code, response.get_data(as_text=True)


def test_a_street_supervisor_sees_the_ranked_clusters_with_their_tickets_masked(
        client: FlaskClient, world: World, found: dict[str, list[Ticket]], english: None) -> None:
    login(client, world.sue)
    status, html = page(client, "/ledger/hotspots?days=90")
    assert status == 200
    assert "Recurring problems" in html and "2026-11-17" in html
    assert html.index("槐树院1号楼") < html.index("东苑2号楼")
    for ticket in found["a"] + found["b"]:
        assert f'href="/tickets/{ticket.number}"' in html
    assert SECRET not in html and "139****5678" in html
    assert "<svg" in html and 'class="weekly"' in html and "↑" not in html and "new" in html
    assert "Make it a governance task" in html


def test_the_task_button_carries_the_cluster(client: FlaskClient, world: World,
                                             found: dict[str, list[Ticket]]) -> None:
    login(client, world.sue)
    _status, html = page(client, "/ledger/hotspots")
    link = re.search(r'href="(/governance/new\?[^"]+)"', html)
    assert link is not None
    query = parse_qs(urlsplit(link.group(1).replace("&amp;", "&")).query)
    spot = spot_at("槐树院1号楼")
    assert {k: v[0] for k, v in query.items() if k != "title"} == {
        "level": "building", "place_id": str(world.building_courtyard.id), "category": "repair.stair_light",
        "hotspot": str(spot.id)}
    assert "槐树院1号楼" in query["title"][0]


def test_a_community_supervisor_sees_only_the_community(client: FlaskClient, world: World,
                                                        found: dict[str, list[Ticket]]) -> None:
    login(client, world.sam)
    status, html = page(client, "/ledger/hotspots")
    assert status == 200 and "槐树院1号楼" in html and "东苑2号楼" not in html
    assert page(client, f"/ledger/hotspots/{spot_at('东苑2号楼').id}")[0] == 404
    assert page(client, f"/ledger/hotspots/{spot_at('槐树院1号楼').id}")[0] == 200


def test_the_street_supervisor_narrows_to_a_community(client: FlaskClient, world: World,
                                                       found: dict[str, list[Ticket]]) -> None:
    login(client, world.sue)
    _status, html = page(client, "/ledger/hotspots?area=community:CB")
    assert "东苑2号楼" in html and "槐树院1号楼" not in html


def test_handlers_and_dispatchers_have_no_hotspot_page(client: FlaskClient, world: World,
                                                       found: dict[str, list[Ticket]]) -> None:
    for user in (world.gina, world.dora):
        login(client, user)
        assert page(client, "/ledger/hotspots")[0] == 404


def test_a_clusters_page_maps_its_tickets_and_counts_those_without_a_point(
        client: FlaskClient, world: World, found: dict[str, list[Ticket]], english: None) -> None:
    world.grid_a1.boundary = ('{"type": "Polygon", "coordinates": [[[116.39, 39.90], [116.41, 39.90], '
                              '[116.41, 39.91], [116.39, 39.91], [116.39, 39.90]]]}')
    db.session.commit()
    login(client, world.sue)
    status, html = page(client, f"/ledger/hotspots/{spot_at('槐树院1号楼').id}")
    assert status == 200
    assert html.count('class="ticket-point"') == 1 and 'class="grid-shape own"' in html
    assert "1 tickets on the map; 2 have no point" in html
    assert SECRET not in html


def test_the_page_says_when_nothing_was_found_yet(client: FlaskClient, world: World, english: None,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ticketing.ledger.hotspot_pages.now", lambda: NOW)
    login(client, world.sue)
    status, html = page(client, "/ledger/hotspots")
    assert status == 200 and "have not been looked for yet" in html


@pytest.mark.parametrize(("who", "linked"), [("sue", True), ("gina", False)])
def test_the_dashboard_links_supervisors_to_the_page(client: FlaskClient, world: World, who: str,
                                                     linked: bool) -> None:
    login(client, getattr(world, who))
    assert ('href="/ledger/hotspots"' in page(client, "/ledger/")[1]) is linked


def test_the_morning_brief_lists_the_new_or_growing_clusters(world: World, found: dict[str, list[Ticket]]) -> None:
    from tests.factories import calendar
    from ticketing.services import brief

    composed = brief.compose(world.sue, DAY + timedelta(days=1), NOW, calendar())
    assert [(h.place_name, h.count, h.is_new) for h in composed.hotspots.lines] == [
        ("槐树院1号楼", 3, True), ("东苑2号楼", 3, True)]
    assert [h.place_name for h in brief.compose(world.dan, DAY + timedelta(days=1), NOW, calendar()).hotspots.lines] \
        == ["东苑2号楼"]
