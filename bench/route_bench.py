"""Time routing one new ticket, on a database made by bench/generate.py.

    python bench/route_bench.py postgresql://postgres@localhost/bench --tickets 300

Files `--tickets` new requests (without routing them), then routes each one the way
the route job does: re-read, decide, dispatch, commit. Prints the median, p95 and
max in milliseconds, and the number of SQL statements per routing.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import event, func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config import testing_config
from ticketing import create_app
from ticketing.extensions import db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("database_url")
    parser.add_argument("--tickets", type=int, default=300)
    args = parser.parse_args()
    instance = Path(os.environ.get("MINHU_INSTANCE", "/tmp/minhu-bench"))
    app = create_app(testing_config(args.database_url, instance))
    with app.app_context():
        from ticketing.models import Building, Category, Ticket, utcnow
        from ticketing.services import intake
        from ticketing.services.lifecycle import Actor
        from ticketing.services.photos import PhotoStore
        from workers.jobs import route_ticket

        tz = ZoneInfo("Asia/Shanghai")
        history = db.session.scalar(select(func.count()).select_from(Ticket))
        rng = random.Random(7)
        buildings = db.session.scalars(select(Building.id)).all()
        categories = db.session.scalars(select(Category.id).where(Category.parent_id.is_not(None))).all()
        store = PhotoStore(instance / "uploads")
        ids = []
        for _ in range(args.tickets):
            request = intake.IntakeRequest(
                channel="web", description="基准测试：楼道灯不亮", phone="13800000000",
                category_id=rng.choice(categories), building_id=rng.choice(buildings))
            ticket, _ = intake.submit(request, Actor.resident(), utcnow(), tz, store, 5 << 20, route=False)
            ids.append(ticket.id)
        db.session.remove()

        statements = 0

        def count(*_args: object) -> None:
            nonlocal statements
            statements += 1

        event.listen(db.engine, "before_cursor_execute", count)
        timings, per_route = [], []
        for ticket_id in ids:
            before = statements
            started = time.perf_counter()
            route_ticket(ticket_id)
            timings.append((time.perf_counter() - started) * 1000)
            per_route.append(statements - before)
            db.session.remove()
        event.remove(db.engine, "before_cursor_execute", count)
        routed = db.session.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.id.in_(ids), Ticket.status == "dispatched"))
        timings.sort()
        print(f"history {history:,} tickets; routed {routed}/{len(ids)}")
        print(f"route one ticket: median {statistics.median(timings):.1f} ms, "
              f"p95 {timings[int(len(timings) * 0.95) - 1]:.1f} ms, max {timings[-1]:.1f} ms; "
              f"SQL statements per routing: median {statistics.median(per_route):.0f}")


if __name__ == "__main__":
    main()
