"""The form asks what residents know: the complex first, an optional category, the
phone's location; the number without its dash; a confirmation with a copy button and
a QR code of the tracking link."""
from __future__ import annotations

import json
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import csrf_token
from tests.factories import PHONE, World, make_ticket
from tests.resident_helpers import form_data, post_report, ticket_count
from ticketing.extensions import db
from ticketing.models import Ticket
from ticketing.qr import qr_svg
from ticketing.services import geo, tracking
from ticketing.services.photos import PhotoStore

# Grid A2 (西苑, community A) covers this square; the point lies inside it.
SQUARE = [[[116.40, 39.90], [116.41, 39.90], [116.41, 39.91], [116.40, 39.91], [116.40, 39.90]]]
INSIDE = {"lat": "39.905", "lon": "116.405"}
OUTSIDE = {"lat": "31.2", "lon": "121.5"}


@pytest.fixture()
def mapped(world: World) -> World:
    """The world with a boundary drawn for grid A2."""
    world.grid_a2.boundary = json.dumps({"type": "Polygon", "coordinates": SQUARE})
    db.session.commit()
    return world


def filed() -> Ticket:
    return db.session.scalars(select(Ticket)).one()


# --- the form -------------------------------------------------------------------------


def test_the_form_offers_not_sure_a_complex_search_and_the_location_button(
        client: FlaskClient, world: World) -> None:
    html = client.get("/report").get_data(as_text=True)
    assert re.search(r'<input type="radio" name="category_id" value="">\s*<span>不清楚</span>', html)
    # Without JavaScript: a plain select of the complexes, grouped by community.
    assert f'<optgroup label="{world.community_a.name}" data-parent="{world.community_a.id}">' in html
    assert html.index('id="complex_id"') < html.index('id="community_id"')  # the complex comes first
    assert 'data-search="complex_id"' in html and 'id="use-location"' in html
    assert re.search(r'<input id="lat" name="lat" type="hidden" value="">', html)
    assert re.search(r'<input id="lon" name="lon" type="hidden" value="">', html)


# --- the category is optional -----------------------------------------------------------


def test_a_request_without_a_category_gets_the_classifiers_guess(client: FlaskClient, world: World) -> None:
    response = post_report(client, form_data(world, category_id=""))
    assert response.status_code == 303
    ticket = filed()
    assert ticket.category.code == "repair.stair_light"
    assert ticket.guess_category_id == ticket.category_id


def test_a_request_the_classifier_cannot_place_goes_to_the_general_category(
        client: FlaskClient, world: World) -> None:
    response = post_report(client, form_data(world, category_id=None, description="请联系我，有事商量"))
    assert response.status_code == 303
    ticket = filed()
    assert ticket.category.code == "suggestion.general" and ticket.guess_category_id is None


def test_a_chosen_category_is_kept_whatever_the_guess(client: FlaskClient, world: World) -> None:
    chosen = world.category("environment.litter")
    assert post_report(client, form_data(world, category_id=str(chosen.id))).status_code == 303
    assert filed().category_id == chosen.id


# --- the complex first ------------------------------------------------------------------


def test_a_complex_alone_places_the_request_in_its_community(client: FlaskClient, world: World) -> None:
    response = post_report(client, form_data(world, community_id="", building_id="", complex_id=str(world.west.id)))
    assert response.status_code == 303
    ticket = filed()
    assert (ticket.complex_id, ticket.grid_id, ticket.community_id) == (
        world.west.id, world.grid_a2.id, world.community_a.id)


def test_a_chosen_complex_wins_over_another_community_left_in_the_list(client: FlaskClient, world: World) -> None:
    response = post_report(client, form_data(
        world, community_id=str(world.community_b.id), building_id="", complex_id=str(world.west.id)))
    assert response.status_code == 303
    assert filed().community_id == world.community_a.id


# --- use my location ----------------------------------------------------------------------


def test_the_location_places_a_request_without_a_complex_in_its_grid(client: FlaskClient, mapped: World) -> None:
    response = post_report(client, form_data(mapped, community_id="", complex_id="", building_id="", **INSIDE))
    assert response.status_code == 303
    ticket = filed()
    assert (ticket.grid_id, ticket.community_id, ticket.complex_id) == (
        mapped.grid_a2.id, mapped.community_a.id, None)
    assert (ticket.lat, ticket.lon) == (39.905, 116.405)


def test_a_chosen_complex_wins_over_the_location(client: FlaskClient, mapped: World) -> None:
    response = post_report(client, form_data(mapped, community_id="", building_id="",
                                             complex_id=str(mapped.courtyard.id), **INSIDE))
    assert response.status_code == 303
    ticket = filed()
    assert (ticket.complex_id, ticket.grid_id) == (mapped.courtyard.id, mapped.grid_a1.id)
    assert ticket.lat == 39.905  # kept as where the resident was


def test_a_location_outside_every_grid_asks_for_the_complex(client: FlaskClient, mapped: World) -> None:
    client.get("/lang/en")
    response = post_report(client, form_data(mapped, community_id="", complex_id="", building_id="", **OUTSIDE))
    assert response.status_code == 400
    assert "Your location is not in a community this service covers." in response.get_data(as_text=True)
    assert ticket_count() == 0


def test_a_location_in_a_deactivated_grid_places_nothing(mapped: World) -> None:
    assert geo.open_grid_at(39.905, 116.405).id == mapped.grid_a2.id
    mapped.grid_a2.active = False
    db.session.commit()
    assert geo.open_grid_at(39.905, 116.405) is None


# --- the number without its dash ----------------------------------------------------------


@pytest.mark.parametrize("typed, stored", [
    ("2611210042", "261121-0042"), ("261121 0042", "261121-0042"), ("261121—0042", "261121-0042"),
    (" 261121-0042 ", "261121-0042"), ("26112110042", "261121-10042"), ("abc", "ABC"), ("12345", "12345"),
])
def test_a_typed_number_is_read_as_the_stored_one(typed: str, stored: str) -> None:
    assert tracking.normalise_number(typed) == stored


def test_tracking_finds_a_request_by_its_number_without_the_dash(
        client: FlaskClient, world: World, store: PhotoStore, ctx: Flask) -> None:
    ticket = make_ticket(world, store)
    assert tracking.lookup(ticket.number.replace("-", ""), PHONE[-4:]).id == ticket.id
    response = client.post("/track", data={"number": ticket.number.replace("-", ""), "last4": PHONE[-4:],
                                           "csrf_token": csrf_token(client, "/track")})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/t/" + tracking.tracking_token(ticket, ctx.config["SECRET_KEY"]))


# --- the confirmation ---------------------------------------------------------------------


def test_the_confirmation_has_a_copy_button_and_a_qr_code_of_the_tracking_link(
        client: FlaskClient, world: World, ctx: Flask) -> None:
    response = post_report(client, form_data(world))
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    ticket = filed()
    link = "http://localhost/t/" + tracking.tracking_token(ticket, ctx.config["SECRET_KEY"])
    assert f'data-copy="{link}"' in html
    # The code drawn on the server is the one of this very link (segno is deterministic).
    drawn = re.search(r'd="([^"]+)"', str(qr_svg(link))).group(1)
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in html and f'd="{drawn}"' in html
    assert "<script" not in html.split("<body")[1]  # the script is the static file in <head>
