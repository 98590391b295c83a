"""Open311 GeoReport v2: services, service definitions, jurisdictions, tokens, discovery.

Shapes are checked against the spec (http://wiki.open311.org/GeoReport_v2) field by
field, in XML (element names and order) and JSON (keys). Reading requests is in
test_open311_requests.py, posting in test_open311_post.py; both use the helpers here.
"""
from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.factories import World
from tests.open311_helpers import (
    NOW,
    URL,
    errors_of,
    json_of,
    tags,
    ticket_of,
    with_attributes,
    xml_of,
)
from ticketing import web
from ticketing.extensions import db
from ticketing.models import Street
from ticketing.services.photos import PhotoStore

# The spec's elements, in its order.
SERVICE_FIELDS = ["service_code", "service_name", "description", "metadata", "type", "keywords", "group"]
ATTRIBUTE_FIELDS = ["variable", "code", "datatype", "required", "datatype_description", "order",
                    "description", "values"]


# --- helpers (also used by test_open311_requests.py and test_open311_post.py) ----

@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The web layer's clock stands at NOW."""
    monkeypatch.setattr(web, "now", lambda: NOW)














# --- services ----------------------------------------------------------------

def test_the_service_list_gives_each_leaf_category_in_the_spec_shape(client: FlaskClient, world: World) -> None:
    with_attributes()
    with_attributes("repair.no_water", [])
    root = xml_of(client.get(f"{URL}/services.xml"))
    assert root.tag == "services" and {e.tag for e in root} == {"service"}
    services = {s.findtext("service_code"): s for s in root}
    assert "repair" not in services and "repair.stair_light" in services
    light = services["repair.stair_light"]
    assert tags(light) == SERVICE_FIELDS
    assert light.findtext("service_name") == "楼道灯不亮"
    assert light.findtext("group") == "维修"
    assert light.findtext("type") == "realtime"
    assert light.findtext("metadata") == "true"
    assert services["repair.no_water"].findtext("metadata") == "false"
    assert ", " in light.findtext("keywords") and light.findtext("description")


def test_the_json_service_list_has_the_same_services_and_keys(client: FlaskClient, world: World) -> None:
    xml_codes = [s.findtext("service_code") for s in xml_of(client.get(f"{URL}/services.xml"))]
    data = json_of(client.get(f"{URL}/services.json"))
    assert [s["service_code"] for s in data] == xml_codes
    assert all(list(s) == SERVICE_FIELDS for s in data)
    assert all(isinstance(s["metadata"], bool) for s in data)


def test_service_names_are_english_when_the_app_asks_for_english(client: FlaskClient, world: World) -> None:
    by_locale = json_of(client.get(f"{URL}/services.json?locale=en"))
    by_header = json_of(client.get(f"{URL}/services.json", headers={"Accept-Language": "en-US,en;q=0.8"}))
    light = next(s for s in by_locale if s["service_code"] == "repair.stair_light")
    assert (light["service_name"], light["group"]) == ("Stairwell light out", "Repairs")
    assert by_header == by_locale


def test_a_service_definition_lists_its_attributes_in_order(client: FlaskClient, world: World) -> None:
    with_attributes()
    root = xml_of(client.get(f"{URL}/services/repair.stair_light.xml"))
    assert root.tag == "service_definition" and tags(root) == ["service_code", "attributes"]
    attributes = root.find("attributes")
    assert [a.findtext("code") for a in attributes] == ["floor", "side", "parts", "seen"]
    assert all(tags(a) == ATTRIBUTE_FIELDS for a in attributes)
    side = attributes[1]
    assert [side.findtext(t) for t in ("variable", "datatype", "required", "order")] == [
        "true", "singlevaluelist", "true", "2"]
    values = [(v.findtext("key"), v.findtext("name")) for v in side.find("values")]
    assert values == [("n", "North"), ("s", "South")]


def test_a_json_service_definition_is_an_object(client: FlaskClient, world: World) -> None:
    with_attributes()
    data = json_of(client.get(f"{URL}/services/repair.stair_light.json"))
    assert list(data) == ["service_code", "attributes"] and data["service_code"] == "repair.stair_light"
    floor = data["attributes"][0]
    assert list(floor) == ATTRIBUTE_FIELDS
    assert floor == {"variable": True, "code": "floor", "datatype": "number", "required": False,
                     "datatype_description": "a whole number", "order": 1, "description": "Floor", "values": []}


def test_a_service_without_attributes_has_an_empty_definition(client: FlaskClient, world: World) -> None:
    with_attributes("repair.no_water", [])
    assert json_of(client.get(f"{URL}/services/repair.no_water.json"))["attributes"] == []


def test_malformed_extra_fields_do_not_break_the_definition(client: FlaskClient, world: World) -> None:
    with_attributes(fields=[{"code": "note", "order": "first"}, {"description": "no code"}, "junk",
                            {"code": "info", "variable": False, "description": "Shown only", "order": 1}])
    attributes = json_of(client.get(f"{URL}/services/repair.stair_light.json"))["attributes"]
    assert [(a["code"], a["variable"], a["datatype"], a["order"]) for a in attributes] == [
        ("note", True, "string", 1), ("info", False, "string", 1)]


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_an_unknown_or_group_service_code_is_404(client: FlaskClient, world: World, fmt: str) -> None:
    for code in ("no.such", "repair"):
        response = client.get(f"{URL}/services/{code}.{fmt}")
        assert response.status_code == 404
        assert errors_of(response, fmt) == [(404, f"service_code '{code}' was not found")]


# --- jurisdiction ------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_an_unknown_jurisdiction_is_404(client: FlaskClient, world: World, fmt: str) -> None:
    response = client.get(f"{URL}/services.{fmt}?jurisdiction_id=nowhere.gov")
    assert response.status_code == 404
    assert errors_of(response, fmt) == [(404, "jurisdiction_id 'nowhere.gov' was not found")]


def test_jurisdiction_id_may_be_given_or_left_out_with_one_street(client: FlaskClient, world: World) -> None:
    named = client.get(f"{URL}/services.json?jurisdiction_id=ST01")
    assert named.status_code == 200
    assert client.get(f"{URL}/services.json?jurisdiction_id=").data == named.data


def test_with_two_streets_jurisdiction_id_is_required_and_chooses_the_tickets(
    client: FlaskClient, world: World, store: PhotoStore, clock: None,
) -> None:
    ticket = ticket_of(world, store)
    db.session.add(Street(code="ST02", name="解放街道"))
    db.session.commit()
    response = client.get(f"{URL}/requests.xml")
    assert response.status_code == 400
    assert "jurisdiction_id was not provided" in errors_of(response, "xml")[0][1]
    assert [r["service_request_id"] for r in json_of(client.get(f"{URL}/requests.json?jurisdiction_id=ST01"))] == [
        ticket.number]
    assert json_of(client.get(f"{URL}/requests.json?jurisdiction_id=ST02")) == []
    assert client.get(f"{URL}/requests/{ticket.number}.json?jurisdiction_id=ST02").status_code == 404


# --- tokens, discovery, the rest ---------------------------------------------

def test_an_unknown_or_malformed_token_is_404(client: FlaskClient, world: World) -> None:
    for token in ("abcdef", "a.b", "x" * 80):
        response = client.get(f"{URL}/tokens/{token}.xml")
        assert response.status_code == 404 and errors_of(response, "xml") == [(404, "token was not found")]


def test_a_token_is_looked_up_among_open311_tickets_only(client: FlaskClient, world: World,
                                                         store: PhotoStore) -> None:
    ticket_of(world, store, external_id="sametoken")
    assert client.get(f"{URL}/tokens/sametoken.json").status_code == 404


@pytest.mark.parametrize("path", ["/open311/discovery", "/open311/v2/discovery"])
def test_discovery_lists_the_v2_endpoint_in_both_formats(client: FlaskClient, world: World, path: str) -> None:
    root = xml_of(client.get(f"{path}.xml"))
    assert root.tag == "discovery"
    assert tags(root) == ["changeset", "contact", "key_service", "endpoints"]
    endpoint = root.find("endpoints/endpoint")
    assert tags(endpoint) == ["specification", "url", "changeset", "type", "formats"]
    assert endpoint.findtext("url") == "http://localhost/open311/v2"
    assert [f.text for f in endpoint.find("formats")] == ["text/xml", "application/json"]
    data = json_of(client.get(f"{path}.json"))
    assert data["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert data["endpoints"][0]["formats"] == ["text/xml", "application/json"]


@pytest.mark.parametrize("path, fmt", [("/open311/v2/nothing.json", "json"), ("/open311/v2/services.html", "xml"),
                                       ("/open311/v3/services.xml", "xml")])
def test_an_unknown_resource_is_404_with_the_error_document(client: FlaskClient, world: World, path: str,
                                                            fmt: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert errors_of(response, fmt)[0][0] == 404


def test_answers_set_no_cookie(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = ticket_of(world, store)
    for path in ("services.xml", f"requests/{ticket.number}.json", "requests.json", "nothing.xml"):
        assert "Set-Cookie" not in client.get(f"{URL}/{path}").headers

