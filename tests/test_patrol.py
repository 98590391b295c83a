"""Grid patrol (巡查): grid workers report what they find, and may handle it on the spot."""
from __future__ import annotations

import io
import json

import pytest
import sqlalchemy.event
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import csrf_token, login
from tests.factories import World, png_bytes
from ticketing import labels
from ticketing.extensions import db
from ticketing.models import Ticket, TicketEvent
from ticketing.services import geo, patrol
from ticketing.services.errors import InvalidInput

pytestmark = pytest.mark.usefixtures("english")

SQUARE = {"type": "Polygon", "coordinates": [[[116.0, 39.0], [116.1, 39.0], [116.1, 39.1], [116.0, 39.1], [116.0, 39.0]]]}


def post_report(client: FlaskClient, **fields: object) -> object:
    data = {"csrf_token": csrf_token(client, "/patrol/new"), "description": "3号楼楼道灯不亮",
            "phone": "13900001111", **fields}
    return client.post("/patrol/new", data=data, content_type="multipart/form-data")


def only_ticket() -> Ticket:
    return db.session.scalars(select(Ticket)).one()


def test_ray_casting_places_points_in_and_out_of_polygons() -> None:
    assert geo.contains(SQUARE, 39.05, 116.05)
    assert not geo.contains(SQUARE, 39.05, 116.2)
    assert not geo.contains(SQUARE, 39.2, 116.05)
    holed = {"type": "Polygon", "coordinates": [
        SQUARE["coordinates"][0], [[116.04, 39.04], [116.06, 39.04], [116.06, 39.06], [116.04, 39.06], [116.04, 39.04]]]}
    assert not geo.contains(holed, 39.05, 116.05)
    assert geo.contains(holed, 39.02, 116.02)
    multi = {"type": "MultiPolygon", "coordinates": [SQUARE["coordinates"]]}
    assert geo.contains(json.dumps({"type": "Feature", "geometry": multi}), 39.05, 116.05)
    assert not geo.contains("not json", 39.05, 116.05)


def test_the_bounding_box_only_skips_polygons_that_cannot_hold_the_point() -> None:
    shapes = tuple(geo.polygons({"type": "MultiPolygon", "coordinates": [
        SQUARE["coordinates"], [[[116.3, 39.3], [116.4, 39.3], [116.35, 39.4], [116.3, 39.3]]]]}))
    area = geo.GridArea(1, 1, 1, shapes, geo.bounding_box(shapes))
    assert area.box == (116.0, 39.0, 116.4, 39.4)
    # Inside either polygon, on a box edge, and between them (in the box, in neither polygon).
    assert geo.area_at([area], 39.05, 116.05) is area
    assert geo.area_at([area], 39.31, 116.35) is area
    assert geo.area_at([area], 39.0, 116.05) is area
    assert geo.area_at([area], 39.2, 116.2) is None
    assert geo.area_at([area], 39.5, 116.05) is None and geo.area_at([area], 39.05, 116.5) is None
    # A malformed position leaves no box: the polygons are tested as before, and place nothing.
    broken = tuple(geo.polygons({"type": "Polygon", "coordinates": [[["x", 39.0], [116.1, 39.0], [116.1, 39.1]]]}))
    assert geo.bounding_box(broken) is None
    assert geo.area_at([geo.GridArea(2, 1, 1, broken, None)], 39.05, 116.05) is None


def test_a_patrol_report_is_filed_in_the_workers_grid(client: FlaskClient, world: World) -> None:
    login(client, world.gina)
    page = client.get("/patrol/new").get_data(as_text=True)
    assert "navigator.geolocation" in page and "槐树院" in page and "西苑" not in page
    response = post_report(client, category_id=world.category("repair.stair_light").id,
                           building_id=world.building_managed.id,
                           photo=(io.BytesIO(png_bytes()), "p.png"))
    assert response.status_code == 303
    ticket = only_ticket()
    assert ticket.channel == "patrol"
    assert ticket.grid_id == world.grid_a1.id
    assert ticket.building_id == world.building_managed.id
    # The worker's own report: theirs at once, not routed (services/patrol.py).
    assert (ticket.status, ticket.assignee_id) == ("accepted", world.gina.id)
    assert ticket.created_by_id == world.gina.id
    assert len(ticket.photos) == 1
    assert response.headers["Location"].endswith(f"/tickets/{ticket.number}")


def test_handle_it_now_with_a_result_resolves_it_by_the_worker(client: FlaskClient, world: World) -> None:
    login(client, world.gina)
    response = post_report(client, category_id=world.category("repair.stair_light").id,
                           building_id=world.building_courtyard.id, handle_now="y",
                           result="换了灯泡")
    assert response.status_code == 303
    ticket = only_ticket()
    assert ticket.status == "resolved"
    assert ticket.assignee_id == world.gina.id
    actions = [(e.action, e.actor_id) for e in sorted(ticket.events, key=lambda e: e.id)]
    assert [a for a, _ in actions] == ["submit", "dispatch", "accept", "resolve"]
    assert dict(actions)["accept"] == world.gina.id and dict(actions)["resolve"] == world.gina.id
    dispatch = next(e for e in ticket.events if e.action == "dispatch")
    assert dispatch.detail["assignee_id"] == world.gina.id
    assert dispatch.detail["rule"] == "patrol: taken on the spot"


def test_handle_it_now_without_a_result_leaves_it_accepted(client: FlaskClient, world: World) -> None:
    login(client, world.gina)
    post_report(client, category_id=world.category("repair.stair_light").id,
                building_id=world.building_courtyard.id, handle_now="y")
    ticket = only_ticket()
    assert ticket.status == "accepted" and ticket.assignee_id == world.gina.id


def test_a_report_and_its_owning_are_one_commit(client: FlaskClient, world: World) -> None:
    """Filed and made the worker's together: no moment, and no crash between two commits,
    leaves a report filed but nobody's (services/patrol.py)."""
    login(client, world.gina)
    commits: list[object] = []

    def count(connection: object) -> None:
        commits.append(connection)

    sqlalchemy.event.listen(db.engine, "commit", count)
    try:
        response = post_report(client, category_id=world.category("repair.stair_light").id,
                               building_id=world.building_courtyard.id)
    finally:
        sqlalchemy.event.remove(db.engine, "commit", count)
    assert response.status_code == 303
    assert only_ticket().status == "accepted" and len(commits) == 1


def test_a_report_the_worker_cannot_take_is_not_stored_at_all(
    client: FlaskClient, world: World, monkeypatch: pytest.MonkeyPatch,
) -> None:
    login(client, world.gina)

    def half_then_refused(ticket: Ticket, *args: object, **kwargs: object) -> list[TicketEvent]:
        ticket.status = "dispatched"  # a step taken, then the next refused
        raise InvalidInput("That person cannot handle tickets.")

    monkeypatch.setattr(patrol, "own_report", half_then_refused)
    response = post_report(client, category_id=world.category("repair.stair_light").id,
                           building_id=world.building_courtyard.id,
                           photo=(io.BytesIO(png_bytes()), "p.png"))
    assert response.status_code == 400
    assert "That person cannot handle tickets." in response.get_data(as_text=True)
    assert db.session.scalars(select(Ticket)).all() == []
    assert db.session.scalars(select(TicketEvent)).all() == []


def test_a_location_inside_a_grid_polygon_places_it_in_that_grid(client: FlaskClient, world: World) -> None:
    world.grid_a2.boundary = json.dumps(SQUARE)
    db.session.commit()
    login(client, world.gina)
    post_report(client, category_id=world.category("environment.litter").id, lat="39.05", lng="116.05")
    ticket = only_ticket()
    assert ticket.grid_id == world.grid_a2.id
    assert ticket.community_id == world.community_a.id
    assert "39.05" in ticket.address_text


def test_a_location_outside_every_polygon_goes_to_the_workers_own_grid(
    client: FlaskClient, world: World,
) -> None:
    world.grid_a2.boundary = json.dumps(SQUARE)
    db.session.commit()
    login(client, world.gina)
    post_report(client, category_id=world.category("environment.litter").id, lat="30.0", lng="120.0")
    ticket = only_ticket()
    assert ticket.community_id == world.community_a.id and ticket.grid_id == world.grid_a1.id
    assert "30.0" in ticket.address_text  # where the worker stood is kept


def test_a_report_without_a_valid_phone_is_shown_again(client: FlaskClient, world: World) -> None:
    login(client, world.gina)
    response = post_report(client, category_id=world.category("environment.litter").id,
                           building_id=world.building_courtyard.id, phone="123")
    assert response.status_code == 400
    assert "11-digit mobile" in response.get_data(as_text=True)
    assert db.session.scalars(select(Ticket)).first() is None


@pytest.mark.parametrize("persona", ["dora", "pete", "adam"])
def test_only_grid_workers_patrol(client: FlaskClient, world: World, persona: str) -> None:
    login(client, persona)
    assert client.get("/patrol/new").status_code == 404


def test_the_nav_links_to_patrol_for_grid_workers(client: FlaskClient, world: World) -> None:
    login(client, world.gina)
    html = client.get("/patrol/new").get_data(as_text=True)
    assert 'href="/patrol/new"' in html and 'href="/patrol/groupchat"' in html


def test_the_ticket_page_names_the_patrol_rule_in_words(client: FlaskClient, world: World) -> None:
    login(client, world.gina)
    post_report(client, category_id=world.category("repair.stair_light").id,
                building_id=world.building_courtyard.id)
    page = client.get(f"/tickets/{only_ticket().number}").get_data(as_text=True)
    assert "the grid worker&#39;s own patrol report" in page and "patrol: the worker" not in page
    assert set(labels.RULE_LABELS) == {patrol.OWN_REPORT, patrol.TAKEN_ON_THE_SPOT}
