"""Grid boundaries from GeoJSON: the GCJ-02 datum and its inverse, and what makes a boundary."""
from __future__ import annotations

import json

import pytest
from flask import Flask

from tests.places_books import SQUARE, feature, geojson
from ticketing.services.geo import contains
from ticketing.services.geo_import import (
    boundary_text,
    gcj02_to_wgs84,
    geometry_problem,
    read_boundaries,
    wgs84_to_gcj02,
)

TIANANMEN_WGS84 = (116.391275, 39.906217)


def test_tiananmen_is_offset_as_chinese_web_maps_show_it() -> None:
    lng, lat = wgs84_to_gcj02(*TIANANMEN_WGS84)
    assert abs(lng - 116.397516) < 2e-5 and abs(lat - 39.907618) < 3e-5


@pytest.mark.parametrize("point", [TIANANMEN_WGS84, (113.048, 33.8695), (121.4737, 31.2304), (87.6168, 43.8256)])
def test_gcj02_converts_back_to_wgs84_within_a_centimetre(point: tuple[float, float]) -> None:
    back = gcj02_to_wgs84(*wgs84_to_gcj02(*point))
    assert abs(back[0] - point[0]) < 1e-7 and abs(back[1] - point[1]) < 1e-7


def test_points_outside_china_are_not_offset() -> None:
    assert wgs84_to_gcj02(2.3522, 48.8566) == (2.3522, 48.8566)
    assert gcj02_to_wgs84(2.3522, 48.8566) == (2.3522, 48.8566)


def test_a_wgs84_file_is_kept_as_it_is(ctx: Flask) -> None:
    found, problems = read_boundaries(geojson(feature("A")), "g.geojson")
    assert problems == [] and found[0].geometry == {"type": "Polygon", "coordinates": [SQUARE]}


def test_a_file_that_names_gcj02_as_its_crs_is_converted_without_the_flag(ctx: Flask) -> None:
    shifted = [list(wgs84_to_gcj02(lng, lat)) for lng, lat in SQUARE]
    crs = {"type": "name", "properties": {"name": "GCJ-02"}}
    found, problems = read_boundaries(geojson(feature("A", shifted), crs=crs), "g.geojson")
    ring = found[0].geometry["coordinates"][0]
    assert problems == [] and all(abs(a - b) < 1e-6 for p, q in zip(ring, SQUARE, strict=True) for a, b in zip(p, q, strict=True))


def test_a_converted_boundary_holds_the_gps_point_inside_it(ctx: Flask) -> None:
    shifted = [list(wgs84_to_gcj02(lng, lat)) for lng, lat in SQUARE]
    found, _problems = read_boundaries(geojson(feature("A", shifted)), "g.geojson", gcj02=True)
    text = boundary_text(found[0].geometry)
    assert contains(text, 39.9001, 116.4001)  # the GPS corner of the square, just inside
    assert not contains(text, 39.9105, 116.4001)


@pytest.mark.parametrize("geometry", [
    None,
    {"type": "LineString", "coordinates": SQUARE},
    {"type": "Polygon", "coordinates": []},
    {"type": "Polygon", "coordinates": [SQUARE[:3]]},
    {"type": "Polygon", "coordinates": [SQUARE[:-1] + [[116.5, 39.95]]]},
    {"type": "Polygon", "coordinates": [[[116.4, 39.9], [116.5, 39.9], [116.6, 39.9], [116.4, 39.9]]]},
    {"type": "Polygon", "coordinates": [[[116.4, float("nan")], *SQUARE[1:]]]},
    {"type": "Polygon", "coordinates": [[["116.4", 39.9], *SQUARE[1:]]]},
    {"type": "MultiPolygon", "coordinates": [[SQUARE], [SQUARE[:2]]]},
], ids=["none", "line", "empty", "too few", "not closed", "no area", "nan", "text", "one bad part"])
def test_what_is_not_a_valid_boundary(ctx: Flask, geometry: object) -> None:
    assert geometry_problem(geometry) is not None


@pytest.mark.parametrize("data", [b"{not json", json.dumps({"type": "Feature"}).encode(), b"[]"],
                         ids=["not json", "not a collection", "a list"])
def test_a_file_that_is_not_a_feature_collection_is_one_problem(ctx: Flask, data: bytes) -> None:
    found, problems = read_boundaries(data, "g.geojson")
    assert found == [] and len(problems) == 1 and problems[0].sheet == "g.geojson"


def test_a_feature_without_a_code_or_with_a_repeated_one_is_a_problem(ctx: Flask) -> None:
    nameless = {"type": "Feature", "properties": {"name": "x"}, "geometry": feature("A")["geometry"]}
    found, problems = read_boundaries(geojson(feature("A"), nameless, feature("A")), "g.geojson")
    assert [f.code for f in found] == ["A"]
    assert [(p.row, p.column) for p in problems] == [(2, "properties.编码"), (3, "properties.编码")]
