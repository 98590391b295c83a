"""Workbooks and GeoJSON for the places import tests, written the way an office's Excel would be."""
from __future__ import annotations

import io
import json
from typing import Any

from openpyxl import Workbook

# A small street with one of everything; each sheet is (headers, rows...).
STREET: dict[str, list[list[Any]]] = {
    "街道": [["编码", "名称"], ["HP", "和平街道"]],
    "社区": [["编码", "名称", "街道编码"], ["HP-DY", "东怡社区", "HP"], ["HP-XL", "西岭社区", "HP"]],
    "网格": [["编码", "名称", "社区编码"], ["DY-01", "东怡第一网格", "HP-DY"], ["DY-02", "东怡第二网格", "HP-DY"],
           ["XL-01", "西岭第一网格", "HP-XL"]],
    "物业公司": [["编码", "名称", "联系电话"], ["WY1", "红心物业", "010-66660000"]],
    "小区": [["编码", "名称", "网格编码", "物业公司编码", "别名", "地址"],
           ["HX", "红星小区", "DY-01", "WY1", "东怡街79号院、红星院；老红星\n红星家园", "东怡街79号"],
           ["HS", "槐树院", "DY-01", None, None, None]],
    "楼栋": [["编码", "名称", "小区编码", "别名", "网格编码"],
           ["HX-3", "3号楼", "HX", "3栋", None], ["HX-9", "9号楼", "HX", None, "DY-02"], ["HS-1", "1号楼", "HS", None, None]],
    "队伍": [["编码", "名称", "类型", "社区编码"], ["DY-ZY", "东怡志愿服务队", "志愿服务队", "HP-DY"],
           ["DY-TJ", "东怡调解队", "调解队", "HP-DY"]],
}

SQUARE = [[116.40, 39.90], [116.41, 39.90], [116.41, 39.91], [116.40, 39.91], [116.40, 39.90]]


def sheets(**changes: list[list[Any]]) -> dict[str, list[list[Any]]]:
    """The street's sheets with some replaced (by title)."""
    return {**{title: [list(r) for r in rows] for title, rows in STREET.items()}, **changes}


def book(data: dict[str, list[list[Any]]] | None = None) -> io.BytesIO:
    """An .xlsx of the sheets."""
    wb = Workbook()
    wb.remove(wb.active)
    for title, rows in (data if data is not None else STREET).items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    out.seek(0)
    return out


def feature(code: Any, ring: list[list[float]] | None = None, key: str = "编码", kind: str = "Polygon") -> dict[str, Any]:
    """A GeoJSON feature naming a grid."""
    coords: Any = [ring or SQUARE]
    if kind == "MultiPolygon":
        coords = [coords]
    return {"type": "Feature", "properties": {key: code}, "geometry": {"type": kind, "coordinates": coords}}


def geojson(*features: dict[str, Any], **extra: Any) -> bytes:
    """A FeatureCollection as file bytes."""
    return json.dumps({"type": "FeatureCollection", "features": list(features), **extra},
                      ensure_ascii=False).encode()
