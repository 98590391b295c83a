"""Time the places import of a big street: 1,000 grids, 20,000 buildings, with boundaries.

    python bench/places_import_bench.py sqlite:////tmp/places-bench.db
    python bench/places_import_bench.py postgresql://postgres@localhost/bench

Builds a fresh schema (the database's tables are dropped first: never point it at
real data), writes the workbook and GeoJSON, then times a dry run, the import, a
second import (a no-op) and an export, and prints seconds for each.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config import testing_config
from ticketing import create_app
from ticketing.extensions import db

COMMUNITIES, GRIDS_EACH, COMPLEXES_EACH, BUILDINGS_EACH = 20, 50, 4, 5  # 1,000 grids, 20,000 buildings


def street_workbook() -> tuple[bytes, bytes]:
    """The street's workbook (write-only openpyxl: fast) and its GeoJSON."""
    book = Workbook(write_only=True)
    sheets: dict[str, Any] = {}
    headers = {"街道": ["编码", "名称"], "社区": ["编码", "名称", "街道编码"], "网格": ["编码", "名称", "社区编码"],
               "物业公司": ["编码", "名称", "联系电话"], "小区": ["编码", "名称", "网格编码", "物业公司编码", "别名", "地址"],
               "楼栋": ["编码", "名称", "小区编码", "别名"], "队伍": ["编码", "名称", "类型", "社区编码"]}
    for title, header in headers.items():
        sheets[title] = book.create_sheet(title)
        sheets[title].append(header)
    sheets["街道"].append(["BIG", "大街道"])
    for n in range(10):
        sheets["物业公司"].append([f"WY{n}", f"物业公司{n}", "0375-1234567"])
    features = []
    for c in range(COMMUNITIES):
        community = f"C{c:02d}"
        sheets["社区"].append([community, f"第{c}社区", "BIG"])
        sheets["队伍"].append([f"{community}-ZY", f"第{c}社区志愿服务队", "志愿服务队", community])
        sheets["队伍"].append([f"{community}-TJ", f"第{c}社区调解队", "调解队", community])
        for g in range(GRIDS_EACH):
            grid = f"{community}-{g:02d}"
            sheets["网格"].append([grid, f"第{c}社区第{g}网格", community])
            lng, lat = 113.0 + g * 0.004, 33.8 + c * 0.003
            ring = [[lng, lat], [lng + 0.004, lat], [lng + 0.004, lat + 0.003], [lng, lat + 0.003], [lng, lat]]
            features.append({"type": "Feature", "properties": {"编码": grid},
                             "geometry": {"type": "Polygon", "coordinates": [ring]}})
            for x in range(COMPLEXES_EACH):
                cx = f"{grid}-{x}"
                sheets["小区"].append([cx, f"小区{cx}", grid, f"WY{x}" if x % 2 else None,
                                     f"{cx}院、{cx}号院", f"某路{x}号"])
                for b in range(1, BUILDINGS_EACH + 1):
                    sheets["楼栋"].append([f"{cx}-{b}", f"{b}号楼", cx, f"{b}栋、{b}幢"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue(), json.dumps({"type": "FeatureCollection", "features": features}).encode()


def timed(label: str, action: Any) -> Any:
    started = time.perf_counter()
    result = action()
    print(f"{label:<28} {time.perf_counter() - started:7.2f} s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("database_url")
    args = parser.parse_args()
    instance = Path(os.environ.get("MINHU_INSTANCE", "/tmp/minhu-bench"))
    app = create_app(testing_config(args.database_url, instance))
    with app.app_context():
        from flask_migrate import upgrade

        from ticketing.services.places_export import export_places
        from ticketing.services.places_import import import_places

        if args.database_url.startswith("postgresql"):
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        else:
            db.drop_all()
            with db.engine.begin() as conn:
                conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        upgrade()
        workbook, grids = timed("write the workbook", street_workbook)
        print(f"workbook {len(workbook) / 1e6:.1f} MB, GeoJSON {len(grids) / 1e6:.1f} MB")

        def run(dry_run: bool = False) -> Any:
            return import_places(io.BytesIO(workbook), grids, "grids.geojson", dry_run=dry_run)

        report = timed("dry run", lambda: run(True))
        assert not report.problems, report.problems[:5]
        report = timed("import", run)
        print(f"  added {sum(report.count(report.added).values())}")
        report = timed("import again (no-op)", run)
        assert not report.added and not report.changed
        timed("export", export_places)


if __name__ == "__main__":
    main()
