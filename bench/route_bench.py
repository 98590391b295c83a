"""Time routing new tickets, on a database made by bench/generate.py.

    python bench/route_bench.py postgresql://postgres@localhost/bench --tickets 300
    python bench/route_bench.py postgresql://postgres@localhost/bench --tickets 3000 --batch 200

Files `--tickets` new requests (without routing them), then routes each one the way
the route job does: re-read, decide, dispatch, commit. Prints the median, p95 and
max in milliseconds, and the number of SQL statements per routing.

With `--batch N` the requests are filed as the doors file them (the resident's
"received" message left to the routing) and routed N at a time the way the worker's
drain does (services/routing.py `route_many`, one transaction a batch). Prints this
process's CPU per ticket (the worker's share; PostgreSQL's is not in it) and the wall
time per batch, median and last: each batch leaves its tickets open in the 72-hour
duplicate window, as a storm does, so the last batches look at the most.
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

from sqlalchemy import delete, event, func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config import testing_config
from ticketing import create_app
from ticketing.extensions import db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("database_url")
    parser.add_argument("--tickets", type=int, default=300)
    parser.add_argument("--batch", type=int, default=0, help="route this many at a time, as the drain does")
    args = parser.parse_args()
    instance = Path(os.environ.get("MINHU_INSTANCE", "/tmp/minhu-bench"))
    app = create_app(testing_config(args.database_url, instance))
    with app.app_context():
        from ticketing.models import Building, Category, OutboxMessage, Ticket, utcnow
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
        outbox_before = db.session.scalar(select(func.max(OutboxMessage.id))) or 0
        for _ in range(args.tickets):
            request = intake.IntakeRequest(
                channel="web", description="基准测试：楼道灯不亮", phone="13800000000",
                category_id=rng.choice(categories), building_id=rng.choice(buildings))
            ticket, _ = intake.submit(request, Actor.resident(), utcnow(), tz, store, 5 << 20,
                                      route=args.batch > 0)
            ids.append(ticket.id)
        db.session.remove()
        if args.batch:
            route_batches(ids, args.batch, tz, history, outbox_before)
            return

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


def route_batches(ids: list[int], size: int, tz: ZoneInfo, history: int | None, outbox_before: int) -> None:
    """Route `ids` `size` at a time as the drain does; print CPU per ticket and time per batch."""
    from ticketing.models import OutboxMessage, Ticket, utcnow
    from ticketing.services.routing import route_many
    from ticketing.services.workdays import load_calendar

    cpu, wall = [], []
    for start in range(0, len(ids), size):
        chunk = ids[start:start + size]
        began, began_cpu = time.perf_counter(), time.process_time()
        route_many(chunk, utcnow(), load_calendar(tz))
        db.session.commit()
        cpu.append((time.process_time() - began_cpu) * 1000 / len(chunk))
        wall.append((time.perf_counter() - began) * 1000)
        db.session.remove()
    # The jobs this run recorded (routing, the residents' messages) are not for a worker to take later.
    db.session.execute(delete(OutboxMessage).where(OutboxMessage.id > outbox_before))
    db.session.commit()
    handled = db.session.scalar(select(func.count()).select_from(Ticket).where(
        Ticket.id.in_(ids), Ticket.status == "dispatched"))
    print(f"history {history:,} tickets; {handled}/{len(ids)} dispatched, the rest left to the dispatchers")
    print(f"route {size} at a time: CPU per ticket median {statistics.median(cpu):.2f} ms, last {cpu[-1]:.2f} ms; "
          f"per batch median {statistics.median(wall):.0f} ms, last {wall[-1]:.0f} ms")


if __name__ == "__main__":
    main()
