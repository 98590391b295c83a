"""Intake through the staff JSON API under load, on PostgreSQL, as production runs it.

    python bench/intake_bench.py postgresql://postgres@localhost/bench \\
        --redis redis://localhost:6379/9 --web-workers 3 --rq-workers 1 --duration 60

Needs a database made by bench/generate.py and `wrk` (Debian package `wrk`).

1. Issues a staff key for a service-hall dispatcher and writes a wrk script that
   posts new tickets (random building and category, unique external ids).
2. Starts gunicorn (`wsgi:app`) and `flask rq worker` processes with REDIS_URL set,
   exactly as the README's production set-up does.
3. Warms up, then drives `POST /api/v1/tickets` with wrk for `--duration` seconds
   and prints wrk's throughput and latency percentiles.
4. Checks that every 201 is a stored ticket, then waits for the workers to route
   them all and send each resident's "received" SMS, and prints how long that took.
5. Measures the database's own limit beside it: pgbench inserting a ticket-sized
   row per transaction into a scratch table, with the same client count.

The stack and the CPU readings are bench/harness.py's, the wrk script bench/loadgen.py's,
shared with bench/doors_bench.py (every door into intake).
"""
from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    DESCRIPTIONS,
    PORT,
    ROLES,
    cpu_seconds,
    hall_dispatcher,
    scratch_dir,
    sqlalchemy_url,
    stack_env,
    start_stack,
    vacuum,
    wait_for_port,
)
from loadgen import CREATED, Request, run_wrk, write_requests, write_wrk_script
from sqlalchemy import create_engine, text

BODIES = 2000


def prepare(database_url: str, run: str) -> tuple[str, list[Request]]:
    """Issue a staff key and build the request templates; return (key, templates)."""
    from config import testing_config
    from ticketing import create_app
    from ticketing.extensions import db
    from ticketing.models import Building, Category, KeyKind, utcnow
    from ticketing.services import apikeys

    app = create_app(testing_config(database_url, Path(tempfile.mkdtemp())))
    with app.app_context():
        from sqlalchemy import select

        _, key = apikeys.issue(KeyKind.STAFF, f"intake bench {run}", utcnow(), user=hall_dispatcher())
        buildings = db.session.scalars(select(Building.id)).all()
        codes = db.session.scalars(
            select(Category.code).where(Category.parent_id.is_not(None), Category.active.is_(True))
        ).all()
    rng = random.Random(11)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    templates = []
    for _ in range(BODIES):
        templates.append(Request("POST", "/api/v1/tickets", headers, json.dumps({
            "channel": "service_hall",
            "description": rng.choice(DESCRIPTIONS),
            "phone": f"139{rng.randrange(10**8):08d}",
            "name": "测试",
            "category": rng.choice(codes),
            "building_id": rng.choice(buildings),
            "external_id": "MARK0",
        }, ensure_ascii=False)))
    return key, templates


def pg_insert_rate(database_url: str, clients: int, seconds: int) -> float:
    """Transactions per second of pgbench inserting one ticket-sized row each."""
    parts = urlsplit(database_url)
    engine = create_engine(sqlalchemy_url(database_url))
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_raw_insert"))
        conn.execute(text(
            "CREATE TABLE bench_raw_insert (id bigserial PRIMARY KEY, number varchar(20) UNIQUE,"
            " channel varchar(20), external_id varchar(100), status varchar(20), category_id int,"
            " tier_id int, street_id int, community_id int, grid_id int, complex_id int, building_id int,"
            " description text, requester_name varchar(64), requester_phone varchar(20),"
            " created_at timestamptz, updated_at timestamptz, UNIQUE (channel, external_id))"
        ))
    script = Path(tempfile.mkdtemp()) / "insert.sql"
    script.write_text(
        "INSERT INTO bench_raw_insert (number, channel, external_id, status, category_id, tier_id,"
        " street_id, community_id, grid_id, complex_id, building_id, description, requester_name,"
        " requester_phone, created_at, updated_at) VALUES (left(md5(random()::text), 20), 'service_hall',"
        " md5(random()::text), 'submitted', 3, 2, 1, 7, 70, 140, 700,"
        " '厨房水管漏水，楼下邻居家天花板湿了，麻烦尽快派人来看看', '测试', '13912345678', now(), now());\n"
    )
    cmd = ["pgbench", "-n", "-f", str(script), "-c", str(clients), "-j", "2", "-T", str(seconds),
           "-h", parts.hostname or "localhost", "-U", parts.username or "postgres", parts.path.lstrip("/")]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE bench_raw_insert"))
    return float(re.search(r"tps = ([\d.]+)", out).group(1))  # type: ignore[union-attr]


RUN_TICKETS = ("FROM tickets t WHERE t.created_at >= :since AND t.channel = 'service_hall'"
               " AND t.external_id LIKE :run")
MAIN = 1  # the phase of the measured run (0: the warm-up)


def main_tickets(run: str) -> str:
    """The LIKE pattern of the external ids of the measured run's tickets."""
    return f"{run}{MAIN}%"


def counts(engine, since: datetime, run: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(stored, still waiting for routing) among this run's tickets."""
    with engine.connect() as conn:
        stored, waiting = conn.execute(text(
            "SELECT count(*), count(*) FILTER (WHERE t.status = 'submitted' AND t.unrouted_reason = '') "
            + RUN_TICKETS), {"since": since, "run": main_tickets(run)}).one()
    return int(stored), int(waiting)


def lag(engine, since: datetime, run: str) -> float:  # type: ignore[no-untyped-def]
    """Seconds from this run's last ticket filed to its last "received" message sent."""
    with engine.connect() as conn:
        seconds = conn.execute(text(
            "SELECT EXTRACT(EPOCH FROM max(n.sent_at) - max(t.created_at)) " + RUN_TICKETS.replace(
                "FROM tickets t", "FROM tickets t JOIN notifications n ON n.ticket_id = t.id AND n.kind = 'received'")
        ), {"since": since, "run": main_tickets(run)}).scalar_one()
    return float(seconds or 0)


def unsent(engine, since: datetime, run: str) -> int:  # type: ignore[no-untyped-def]
    """This run's tickets whose resident has no sent "received" message yet."""
    with engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT count(*) " + RUN_TICKETS + " AND NOT EXISTS (SELECT 1 FROM notifications n"
            " WHERE n.ticket_id = t.id AND n.kind = 'received' AND n.status = 'sent')"
        ), {"since": since, "run": main_tickets(run)}).scalar_one())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("database_url")
    parser.add_argument("--redis", default="redis://localhost:6379/9")
    # On two cores shared by everything, three web workers and one rq worker do the most:
    # more processes than that only take turns on the same cores (see the README).
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--web-threads", type=int, default=1)
    parser.add_argument("--rq-workers", type=int, default=1)
    parser.add_argument("--rq-simple", action="store_true",
                        help="run jobs in the worker process (flask rq worker --simple), no fork per job")
    parser.add_argument("--connections", type=int, default=12)
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--drain-timeout", type=int, default=600)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")

    run = f"{int(time.time()):08x}a"  # the markers' prefix (bench/harness.py `marker`)
    _key, templates = prepare(args.database_url, run)
    database = urlsplit(args.database_url).path.lstrip("/")
    workdir = scratch_dir("intake-bench-")
    script, requests = workdir / "post.lua", workdir / "requests.txt"
    write_wrk_script(script, CREATED)
    write_requests(requests, templates)
    env = stack_env(args.database_url, args.redis, run, workdir)
    from redis import Redis

    Redis.from_url(args.redis).flushdb()
    vacuum(args.database_url)
    stack = start_stack(env, workdir, args.web_workers, args.rq_workers,
                        gunicorn_args=["--threads", str(args.web_threads), "--log-level", "warning", "--preload"],
                        rq_args=["--simple"] if args.rq_simple else [])
    engine = create_engine(sqlalchemy_url(args.database_url))
    try:
        wait_for_port(PORT)
        url = f"http://127.0.0.1:{PORT}"
        if args.warmup:
            run_wrk(script, requests, url, connections=args.connections, threads=2, seconds=args.warmup,
                    phase=0, prefix=run)
        started = datetime.now(UTC)
        before = cpu_seconds(database)
        result = run_wrk(script, requests, url, connections=args.connections, threads=2, seconds=args.duration,
                         phase=MAIN, prefix=run)
        after = cpu_seconds(database)
        created = result.statuses.get(201, 0)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # Fresh statistics for the checks below (autovacuum may be off): with the ones
            # taken before the run, counting the unsent messages took 20 s.
            conn.execute(text("ANALYZE tickets, notifications"))
        stored, waiting = counts(engine, started, run)
        not_told = unsent(engine, started, run)
        drain_started = time.monotonic()
        while (waiting or not_told) and time.monotonic() - drain_started < args.drain_timeout:
            time.sleep(1)
            stored, waiting = counts(engine, started, run)
            not_told = unsent(engine, started, run)
        drained = time.monotonic() - drain_started
        last_sent = lag(engine, started, run)
    finally:
        stack.stop()
    raw = pg_insert_rate(args.database_url, args.connections, 15)
    pct = result.pct
    print(f"web workers {args.web_workers}×{args.web_threads} threads, rq workers {args.rq_workers}"
          f"{' (simple)' if args.rq_simple else ''}, "
          f"{args.connections} connections, {args.duration} s")
    print(f"responses: {result.statuses}")
    print(f"throughput: {result.rps:.0f} requests/s; latency p50 {pct[50.0]:.0f} ms, "
          f"p90 {pct[90.0]:.0f} ms, p99 {pct[99.0]:.0f} ms, max {result.max:.0f} ms")
    if created:
        split = ", ".join(f"{role} {(after[role] - before[role]) * 1000 / created:.1f}" for role in ROLES)
        print(f"CPU per ticket during the run, ms: {split}")
    print(f"stored {stored} tickets for {created} answers of 201 (the warm-up's are not counted); "
          f"{waiting} still unrouted and {not_told} without their \"received\" SMS sent "
          f"after {drained:.0f} s of draining; the last one sent {last_sent:.1f} s after the last ticket was filed")
    print(f"raw PostgreSQL: {raw:.0f} single-row inserts/s ({args.connections} clients); "
          f"API / raw = {result.rps / raw:.1%}")
    print(f"logs in {workdir}")


if __name__ == "__main__":
    main()
