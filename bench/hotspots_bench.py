"""Recurring problems (高频诉求) at street scale, on PostgreSQL: the nightly find, the page, the API.

    python bench/generate.py postgresql://postgres@localhost/bench5m --tickets 5000000 --open 100000
    python bench/hotspots_bench.py postgresql://postgres@localhost/bench5m

Needs a database made by bench/generate.py (1,000 grids, 10,000 buildings, a year of
tickets; `--events` is not needed). It times what the nightly job does — find and
store the clusters of the 30 and the 90 days ending yesterday (services/hotspots.py
`run`, committed) — then the same again (a rerun replaces the run), and renders, as a
street supervisor through the app (the Flask test client: no HTTP server in the
timing), the hotspot page for 30 and 90 days, its second page, one community, one
cluster's own page, and GET /api/v1/hotspots?days=90 with a staff key: the median and
the maximum of `--renders` renders each.

The generated tickets are all one category with one text, spread evenly over the
buildings, so at 5 M every building, complex, grid and community is a cluster: the
most clusters and samples a street can have. With `--mix` one ticket in ten is first
moved to another category with a near-identical text (deterministic, by id), so the
near-identical merge has texts to read; this changes the database (run generate.py
again before benches that expect the plain one). The bench also makes supervisor
u4802 street-level with a known password, as ledger_bench.py does with u4801.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text
from werkzeug.security import generate_password_hash

from config import testing_config
from ticketing import create_app
from ticketing.extensions import db

TZ = ZoneInfo("Asia/Shanghai")
SUPERVISOR = 4802  # a supervisor of bench/generate.py, made street-level here
PASSWORD = "bench-hotspots"

# --mix: one ticket in ten under another category, its text near-identical to the rest.
MIX = """
UPDATE tickets SET category_id = (SELECT id FROM categories WHERE code = 'repair.power'),
                   description = '楼道灯又不亮了'
WHERE id % 10 = 3 AND category_id <> (SELECT id FROM categories WHERE code = 'repair.power')
"""


def timed(label: str, action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    result = action()
    took = time.perf_counter() - started
    print(f"{label}: {took:.2f} s" + (f" ({result})" if result is not None else ""))
    return took


def renders(client: Any, label: str, url: str, count: int, headers: dict[str, str] | None = None) -> None:
    client.get(url, headers=headers)  # warm: templates compiled, caches filled
    took = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(url, headers=headers)
        took.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    size = len(response.get_data())
    print(f"{label} ({url}, {size / 1024:.0f} KiB): median {statistics.median(took):.0f} ms, "
          f"max {max(took):.0f} ms over {count}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("database_url")
    parser.add_argument("--renders", type=int, default=10, help="renders of each page to time")
    parser.add_argument("--mix", action="store_true", help="first move one ticket in ten to another category")
    parser.add_argument("--no-find", action="store_true", help="only the pages (the runs of a bench before)")
    args = parser.parse_args()
    app = create_app(testing_config(args.database_url, Path(tempfile.mkdtemp())))
    app.config["WTF_CSRF_ENABLED"] = False
    from ticketing.models import KeyKind, User
    from ticketing.services import apikeys, hotspots

    now = datetime.now(UTC)
    day = now.astimezone(TZ).date() - timedelta(days=1)
    with app.app_context():
        with db.engine.begin() as conn:
            if args.mix:
                moved = conn.execute(text(MIX)).rowcount
                print(f"--mix: {moved:,} tickets moved to repair.power")
            conn.execute(text("UPDATE users SET password_hash = :h, community_id = NULL, street_id = 1 WHERE id = :id"),
                         {"h": generate_password_hash(PASSWORD), "id": SUPERVISOR})
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE tickets"))
        total = db.session.scalar(text("SELECT count(*) FROM tickets"))
        print(f"{total:,} tickets; windows end {day}")
        for days in hotspots.WINDOWS:
            start = day - timedelta(days=2 * days - 1)
            n = db.session.scalar(text("SELECT count(*) FROM tickets WHERE created_at >= :s"), {"s": start})
            print(f"  {days} days and the {days} before: {n:,} tickets")

        def find(days: int) -> str:
            run = hotspots.run(day, days, datetime.now(UTC))
            db.session.commit()
            levels = db.session.execute(text("SELECT level, count(*) FROM hotspots WHERE run_id = :r GROUP BY level "
                                             "ORDER BY level"), {"r": run.id}).all()
            links = db.session.scalar(text("SELECT count(*) FROM hotspot_tickets JOIN hotspots ON hotspots.id = "
                                           "hotspot_id WHERE run_id = :r"), {"r": run.id})
            return f"{run.clusters:,} clusters ({', '.join(f'{lv} {n:,}' for lv, n in levels)}), {links:,} tickets kept"

        if not args.no_find:
            night = sum(timed(f"find and store {days} days", lambda d=days: find(d)) for days in hotspots.WINDOWS)
            print(f"the nightly job (30 + 90 days): {night:.1f} s")
            again = sum(timed(f"again, {days} days (replaces the run)", lambda d=days: find(d))
                        for days in hotspots.WINDOWS)
            print(f"the nightly job again: {again:.1f} s")
        supervisor = db.session.get(User, SUPERVISOR)
        assert supervisor is not None
        _row, key = apikeys.issue(KeyKind.STAFF, "hotspots bench", now, user=supervisor)
        db.session.commit()
        first = db.session.scalar(text("SELECT id FROM hotspots WHERE day = :d AND days = 30 ORDER BY score DESC, "
                                       "count DESC, last_at DESC, id LIMIT 1"), {"d": day})

    client = app.test_client()
    response = client.post("/auth/login", data={"username": f"u{SUPERVISOR}", "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    for label, url in (("hotspot page, 30 days", "/ledger/hotspots"),
                       ("hotspot page, 90 days", "/ledger/hotspots?days=90"),
                       ("hotspot page, 90 days, page 2", "/ledger/hotspots?days=90&page=2"),
                       ("hotspot page, one community", "/ledger/hotspots?area=community:C7"),
                       ("a cluster's page with its map", f"/ledger/hotspots/{first}")):
        renders(client, label, url, args.renders)
    renders(client, "staff API", "/api/v1/hotspots?days=90", args.renders, {"Authorization": f"Bearer {key}"})


if __name__ == "__main__":
    main()
