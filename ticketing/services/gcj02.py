"""GCJ-02, the offset datum every map of mainland China must use, and WGS-84 (GPS, GeoJSON).

The two differ by a few hundred metres in China. The forward offset is the published
formula on the Krasovsky ellipsoid; it has no closed-form inverse, so the way back is
fixed-point iteration (to about a millimetre). Points outside China are not offset.
WeChat locations (Tencent Maps) and grid boundaries drawn on 高德 or 腾讯 maps come in
GCJ-02; Minhu stores WGS-84. Arguments are (latitude, longitude).
"""
from __future__ import annotations

import math

# GCJ-02: the Krasovsky 1940 ellipsoid's semi-major axis and first eccentricity squared.
_A = 6378245.0
_EE = 0.00669342162296594323


def out_of_china(lat: float, lon: float) -> bool:
    """True outside the rough bounding box where GCJ-02 applies (it is then WGS-84)."""
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _shift(lat: float, lon: float) -> tuple[float, float]:
    """The GCJ-02 offset (degrees of latitude, longitude) at a WGS-84 point."""
    x, y = lon - 105.0, lat - 35.0
    waves = (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    d_lat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x)) + waves
             + (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
             + (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y / 30.0 * math.pi)) * 2.0 / 3.0)
    d_lon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x)) + waves
             + (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
             + (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0)
    rad = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad) ** 2
    d_lat = d_lat * 180.0 / ((_A * (1 - _EE)) / (magic * math.sqrt(magic)) * math.pi)
    d_lon = d_lon * 180.0 / (_A / math.sqrt(magic) * math.cos(rad) * math.pi)
    return d_lat, d_lon


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """A WGS-84 point as mainland Chinese maps show it (GCJ-02)."""
    if out_of_china(lat, lon):
        return lat, lon
    d_lat, d_lon = _shift(lat, lon)
    return lat + d_lat, lon + d_lon


def gcj02_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """A GCJ-02 point (WeChat's map) in WGS-84; iterated to well under a metre."""
    if out_of_china(lat, lon):
        return lat, lon
    w_lat, w_lon = lat, lon
    for _round in range(30):
        g_lat, g_lon = wgs84_to_gcj02(w_lat, w_lon)
        e_lat, e_lon = g_lat - lat, g_lon - lon
        w_lat, w_lon = w_lat - e_lat, w_lon - e_lon
        if abs(e_lat) < 1e-10 and abs(e_lon) < 1e-10:
            break
    return w_lat, w_lon
