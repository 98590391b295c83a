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
from dataclasses import dataclass
from typing import Any, Iterable

from flask_babel import gettext as _

from ticketing.services.places_workbook import CODE, Problem

# Krasovsky 1940, the ellipsoid of the GCJ-02 formula.
_A = 6378245.0
_EE = 0.00669342162296594323
# Where the offset applies (outside China GCJ-02 equals WGS-84).
_CHINA = (72.004, 137.8347, 0.8293, 55.8271)
DECIMALS = 7  # about a centimetre


def _outside_china(lng: float, lat: float) -> bool:
    return not (_CHINA[0] <= lng <= _CHINA[1] and _CHINA[2] <= lat <= _CHINA[3])


def _offset(lng: float, lat: float) -> tuple[float, float]:
    """The GCJ-02 offset (degrees of longitude, latitude) at a WGS-84 point."""
    x, y = lng - 105.0, lat - 35.0
    d_lat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
             + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
             + (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
             + (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0)
    d_lng = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
             + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
             + (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
             + (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0)
    rad = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad) ** 2
    sqrt_magic = math.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * math.pi)
    d_lng = (d_lng * 180.0) / (_A / sqrt_magic * math.cos(rad) * math.pi)
    return d_lng, d_lat


def wgs84_to_gcj02(lng: float, lat: float) -> tuple[float, float]:
    """A WGS-84 point as Chinese web maps show it."""
    if _outside_china(lng, lat):
        return lng, lat
    d_lng, d_lat = _offset(lng, lat)
    return lng + d_lng, lat + d_lat


def gcj02_to_wgs84(lng: float, lat: float) -> tuple[float, float]:
    """The WGS-84 point a GCJ-02 point shows: the offset inverted by fixed-point iteration."""
    if _outside_china(lng, lat):
        return lng, lat
    w_lng, w_lat = lng, lat
    for _step in range(30):  # converges by about a factor of 1e-5 per step
        g_lng, g_lat = wgs84_to_gcj02(w_lng, w_lat)
        e_lng, e_lat = g_lng - lng, g_lat - lat
        w_lng, w_lat = w_lng - e_lng, w_lat - e_lat
        if abs(e_lng) < 1e-10 and abs(e_lat) < 1e-10:
            break
    return w_lng, w_lat


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
    area2 = sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(ring, ring[1:]))
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
