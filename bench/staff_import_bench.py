"""Time the staff import of 3,000 people into the big street of places_import_bench.py.

    python bench/staff_import_bench.py sqlite:////tmp/staff-bench.db
    python bench/staff_import_bench.py postgresql://postgres@localhost/bench

Builds a fresh schema (the database's tables are dropped first: never point it at
real data), imports the big street's places, writes a 人员 sheet of 3,000 people
(grid workers with shifts, volunteers, dispatchers, property staff), then times a
dry run, the import (every account gets a hashed one-time password: the bulk of the
time), a second import (a no-op), an import changing 300 people, and an export.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path
from typing import Any

from openpyxl import Workbook

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.places_import_bench import COMMUNITIES, GRIDS_EACH, street_workbook, timed
from config import testing_config
from ticketing import create_app
from ticketing.extensions import db

PEOPLE = 3000
HEADER = ["用户名", "姓名", "手机", "角色", "范围编码", "班次", "值班"]


def staff_workbook(renamed: int = 0) -> bytes:
    """3,000 people over the street; the first `renamed` have another name."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("人员")
    sheet.append(HEADER)
    for n in range(PEOPLE):
        c, g = n % COMMUNITIES, (n // COMMUNITIES) % GRIDS_EACH
        community = f"C{c:02d}"
        name = f"员工{n}" + ("改" if n < renamed else "")
        phone = f"139{n:08d}"
        if n % 10 < 6:
            row = ["网格员", f"{community}-{g:02d}", "周一至周五 08:30-17:30；周六 09:00-12:00", "是" if n % 2 else "否"]
        elif n % 10 < 8:
            row = ["志愿者", f"{community}-ZY", "周二、周四 09:00-17:00", "否"]
        elif n % 10 == 8:
            row = ["派单员", community, "", "否"]
        else:
            row = ["物业人员", f"WY{n % 10 if n % 2 else 1}", "每天 20:00-08:00", "否"]
        sheet.append([f"u{n:05d}", name, phone, *row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("database_url")
    args = parser.parse_args()
    instance = Path(os.environ.get("MINHU_INSTANCE", "/tmp/minhu-bench"))
    app = create_app(testing_config(args.database_url, instance))
    with app.app_context():
        from flask_migrate import upgrade
        from sqlalchemy import text

        from ticketing.models import utcnow
        from ticketing.services.places_import import import_places
        from ticketing.services.staff_import import import_staff
        from ticketing.services.staff_snapshot import export_staff

        if args.database_url.startswith("postgresql"):
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        else:
            db.drop_all()
            with db.engine.begin() as conn:
                conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        upgrade()
        places, grids = street_workbook()
        assert not import_places(io.BytesIO(places), grids, "grids.geojson").problems
        workbook = timed("write the 人员 sheet", staff_workbook)

        def run(data: bytes, dry_run: bool = False) -> Any:
            return import_staff(io.BytesIO(data), None, utcnow(), dry_run=dry_run)

        report = timed("dry run", lambda: run(workbook, True))
        assert not report.problems, report.problems[:5]
        report = timed(f"import {PEOPLE} people", lambda: run(workbook))
        print(f"  added {len(report.added)}, one-time passwords {len(report.one_time)}")
        report = timed("import again (no-op)", lambda: run(workbook))
        assert not report.added and not report.changed
        changed = staff_workbook(renamed=300)
        report = timed("import 300 renamed", lambda: run(changed))
        assert len(report.changed) == 300, len(report.changed)
        timed("export", export_staff)
        started = time.perf_counter()
        from werkzeug.security import generate_password_hash
        for _ in range(20):
            generate_password_hash("x" * 12)
        print(f"(one password hash: {(time.perf_counter() - started) / 20 * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
