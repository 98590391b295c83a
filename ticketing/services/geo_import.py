"""Grid boundaries as GeoJSON: read and check a FeatureCollection, convert GCJ-02 to WGS-84.

Minhu stores every boundary in WGS-84 (GPS, what phones and Open311 clients send), as
the GeoJSON geometry text `Grid.boundary` holds. Chinese web maps (高德, 腾讯) draw and
export in GCJ-02, the officially offset datum, a few hundred metres off; such a file
is converted on import. The offset formula is public; its inverse has no closed form,
so it is solved by iteration (to well under a centimetre).
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from flask_babel import gettext as _

from ticketing.services import gcj02
from ticketing.services.places_workbook import CODE, Problem

DECIMALS = 7  # about a centimetre


def wgs84_to_gcj02(lng: float, lat: float) -> tuple[float, float]:
    """A WGS-84 point as Chinese web maps show it, in GeoJSON's (longitude, latitude) order."""
    lat, lng = gcj02.wgs84_to_gcj02(lat, lng)
    return lng, lat


def gcj02_to_wgs84(lng: float, lat: float) -> tuple[float, float]:
    """The WGS-84 point a GCJ-02 point shows, in GeoJSON's (longitude, latitude) order."""
    lat, lng = gcj02.gcj02_to_wgs84(lat, lng)
    return lng, lat


@dataclass(frozen=True)
class Boundary:
    """A grid's boundary read from the file: where it was, and its geometry (WGS-84)."""

    code: str
    feature: int  # 1-based number of the feature in the file
    geometry: dict[str, Any]


def _ring_problem(ring: Any) -> str | None:
    """What is wrong with a linear ring, or None."""
    if not isinstance(ring, list) or len(ring) < 4:
        return _("a ring needs at least 4 positions")
    for pos in ring:
        if (not isinstance(pos, list) or len(pos) < 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pos[:2])):
            return _("a position must be [longitude, latitude]")
        lng, lat = pos[0], pos[1]
        if not (math.isfinite(lng) and math.isfinite(lat) and -180 <= lng <= 180 and -90 <= lat <= 90):
            return _("a position is out of range: %(lng)s, %(lat)s", lng=lng, lat=lat)
    if ring[0][:2] != ring[-1][:2]:
        return _("a ring must end where it starts")
    area2 = sum(a[0] * b[1] - b[0] * a[1] for a, b in pairwise(ring))
    if area2 == 0:
        return _("a ring encloses no area")
    return None


def geometry_problem(geometry: Any) -> str | None:
    """What keeps `geometry` from being a grid boundary (a valid Polygon or MultiPolygon)."""
    if not isinstance(geometry, dict):
        return _("the feature has no geometry")
    kind, coords = geometry.get("type"), geometry.get("coordinates")
    if kind not in ("Polygon", "MultiPolygon"):
        return _("a boundary must be a Polygon or MultiPolygon, not %(kind)s", kind=kind)
    polygons = [coords] if kind == "Polygon" else coords
    if not isinstance(polygons, list) or not polygons:
        return _("the geometry has no coordinates")
    for polygon in polygons:
        if not isinstance(polygon, list) or not polygon:
            return _("a polygon needs an outer ring")
        for ring in polygon:
            problem = _ring_problem(ring)
            if problem:
                return problem
    return None


def _converted(geometry: dict[str, Any], gcj02: bool) -> dict[str, Any]:
    """The geometry with plain [lng, lat] positions, converted to WGS-84 when `gcj02`."""

    def point(pos: list[float]) -> list[float]:
        lng, lat = gcj02_to_wgs84(pos[0], pos[1]) if gcj02 else (pos[0], pos[1])
        return [round(lng, DECIMALS), round(lat, DECIMALS)] if gcj02 else [lng, lat]

    def polygon(rings: list[Any]) -> list[Any]:
        return [[point(pos) for pos in ring] for ring in rings]

    coords = geometry["coordinates"]
    if geometry["type"] == "Polygon":
        return {"type": "Polygon", "coordinates": polygon(coords)}
    return {"type": "MultiPolygon", "coordinates": [polygon(p) for p in coords]}


def says_gcj02(collection: dict[str, Any]) -> bool:
    """True when the file names GCJ-02 as its datum (a `crs` member some tools write)."""
    crs = collection.get("crs")
    name = json.dumps(crs, ensure_ascii=False) if crs is not None else ""
    return "gcj" in name.lower()


def read_boundaries(data: bytes | str, source: str, gcj02: bool = False) -> tuple[list[Boundary], list[Problem]]:
    """The boundaries of a GeoJSON FeatureCollection, in WGS-84, and every problem found.

    Each feature names its grid in `properties.编码` (or `properties.code`). Problems
    are reported with `source` as the sheet and the feature's number as the row.
    """
    problems: list[Problem] = []
    try:
        collection = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        return [], [Problem(source, 0, "", _("not a GeoJSON file: %(error)s", error=str(exc)[:200]))]
    if not isinstance(collection, dict) or collection.get("type") != "FeatureCollection" \
            or not isinstance(collection.get("features"), list):
        return [], [Problem(source, 0, "", _("a GeoJSON FeatureCollection is expected"))]
    gcj02 = gcj02 or says_gcj02(collection)
    found: list[Boundary] = []
    first: dict[str, int] = {}
    for number, feature in enumerate(collection["features"], start=1):
        props = feature.get("properties") if isinstance(feature, dict) else None
        props = props if isinstance(props, dict) else {}
        raw = props.get(CODE, props.get("code"))
        code = str(raw).strip() if raw is not None else ""
        if not code:
            problems.append(Problem(source, number, "properties." + CODE, _("the feature names no grid code")))
            continue
        if code in first:
            problems.append(Problem(source, number, "properties." + CODE,
                                    _("grid %(code)s has a boundary already (feature %(first)s)",
                                      code=code, first=first[code])))
            continue
        first[code] = number
        geometry = feature.get("geometry")
        problem = geometry_problem(geometry)
        if problem:
            problems.append(Problem(source, number, "geometry", _("grid %(code)s: %(problem)s",
                                                                  code=code, problem=problem)))
            continue
        found.append(Boundary(code, number, _converted(geometry, gcj02)))
    return found, problems


def boundary_text(geometry: dict[str, Any]) -> str:
    """The geometry as `Grid.boundary` keeps it."""
    return json.dumps(geometry, ensure_ascii=False)


def feature_collection(grids: Iterable[tuple[str, str, str | None]]) -> dict[str, Any]:
    """A FeatureCollection of the (code, name, boundary) of grids that have a boundary."""
    features = []
    for code, name, boundary in grids:
        if not boundary:
            continue
        try:
            geometry = json.loads(boundary)
        except ValueError:
            continue  # an unreadable stored boundary is not exported
        features.append({"type": "Feature", "properties": {CODE: code, "name": name}, "geometry": geometry})
    return {"type": "FeatureCollection", "features": features}


def read_one_boundary(data: bytes | str, gcj02: bool = False) -> tuple[dict[str, Any] | None, str | None]:
    """The one boundary of a file for a single grid, in WGS-84, or what is wrong with it.

    The file may hold a bare Polygon or MultiPolygon, a Feature, or a FeatureCollection
    with exactly one feature (what map tools export for one drawn area); its code, if
    any, is not looked at: the page says which grid it is for.
    """
    try:
        found = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, _("not a GeoJSON file: %(error)s", error=str(exc)[:200])
    if not isinstance(found, dict):
        return None, _("a GeoJSON Polygon, Feature or FeatureCollection is expected")
    gcj02 = gcj02 or says_gcj02(found)
    if found.get("type") == "FeatureCollection":
        features = found.get("features")
        if not isinstance(features, list) or len(features) != 1:
            return None, _("the file must hold exactly one feature, the grid's boundary")
        found = features[0] if isinstance(features[0], dict) else {}
    geometry = found.get("geometry") if found.get("type") == "Feature" else found
    problem = geometry_problem(geometry)
    if problem:
        return None, problem
    assert isinstance(geometry, dict)
    return _converted(geometry, gcj02), None
