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
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text

PORT = 8391
BODIES = 2000
DESCRIPTIONS = [
    "楼道灯坏了，晚上看不见，老人上下楼很危险",
    "厨房水管漏水，楼下邻居家天花板湿了",
    "小区消防通道被电动车堵住了",
    "单元门禁坏了，关不上",
    "楼上装修噪音太大，中午也不停",
    "路灯不亮，已经一个星期了",
    "垃圾桶满了没人清理，味道很大",
    "下水道堵了，污水冒出来",
]

WRK_SCRIPT = """
local bodies = {}
local n = 0
local counter = 0
statuses = {}
local run = "%(run)s"
local raw = [[%(bodies)s]]
for line in raw:gmatch("[^\\n]+") do
  n = n + 1
  bodies[n] = line
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"

local thread_id = 0

function init(args)
  statuses = {}
  phase = args[1] or "run"
end

function request()
  counter = counter + 1
  local body = bodies[(counter %% n) + 1]
  body = body:gsub("EXTID", run .. "-" .. phase .. "-" .. tid .. "-" .. counter)
  return wrk.format(nil, "/api/v1/tickets", nil, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

local threads = {}
function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    for code, count in pairs(s) do
      total[code] = (total[code] or 0) + count
    end
  end
  for code, count in pairs(total) do
    io.write(string.format("STATUS %%d %%d\\n", code, count))
  end
  for _, p in ipairs({50, 90, 99, 99.9}) do
    io.write(string.format("PCT %%g %%.2f\\n", p, latency:percentile(p) / 1000.0))
  end
  io.write(string.format("MAX %%.2f\\n", latency.max / 1000.0))
end
"""


def sqlalchemy_url(url: str) -> str:
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg://", url)


def prepare(database_url: str, run: str) -> tuple[str, str]:
    """Issue a staff key and build the request bodies; return (key, bodies)."""
    from config import testing_config
    from ticketing import create_app
    from ticketing.extensions import db
    from ticketing.models import Building, Category, KeyKind, Street, User, utcnow
    from ticketing.services import apikeys

    app = create_app(testing_config(database_url, Path(tempfile.mkdtemp())))
    with app.app_context():
        from sqlalchemy import select

        dispatcher = db.session.scalar(
            select(User).where(User.role == "dispatcher", User.community_id.is_(None), User.active.is_(True))
        )
        if dispatcher is None:  # bench/generate.py makes community dispatchers only
            street = db.session.scalar(select(Street))
            if street is None:
                sys.exit("no street in this database; run bench/generate.py first")
            dispatcher = User(username="bench-hall", display_name="bench", role="dispatcher",
                              street=street, password_hash="!")
            db.session.add(dispatcher)
            db.session.commit()
        _, key = apikeys.issue(KeyKind.STAFF, f"intake bench {run}", utcnow(), user=dispatcher)
        buildings = db.session.scalars(select(Building.id)).all()
        codes = db.session.scalars(
            select(Category.code).where(Category.parent_id.is_not(None), Category.active.is_(True))
        ).all()
    rng = random.Random(11)
    lines = []
    for _ in range(BODIES):
        lines.append(json.dumps({
            "channel": "service_hall",
            "description": rng.choice(DESCRIPTIONS),
            "phone": f"139{rng.randrange(10**8):08d}",
            "name": "测试",
            "category": rng.choice(codes),
            "building_id": rng.choice(buildings),
            "external_id": "EXTID",
        }, ensure_ascii=False))
    return key, "\n".join(lines)


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_for_port(port: int, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    sys.exit(f"nothing listens on port {port}; see the logs")


def wrk(script: Path, connections: int, threads: int, seconds: int, url: str, phase: str) -> str:
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency",
           "-s", str(script), url, "--", phase]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"wrk failed: {done.stdout}{done.stderr}")
    return done.stdout


def parse_wrk(output: str) -> dict[str, object]:
    statuses = {int(a): int(b) for a, b in re.findall(r"^STATUS (\d+) (\d+)$", output, re.MULTILINE)}
    pct = {float(a): float(b) for a, b in re.findall(r"^PCT ([\d.]+) ([\d.]+)$", output, re.MULTILINE)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    mx = float(re.search(r"^MAX ([\d.]+)$", output, re.MULTILINE).group(1))  # type: ignore[union-attr]
    return {"statuses": statuses, "pct": pct, "rps": rps, "max": mx}


ROLES = ("gunicorn", "rq workers", "postgres", "redis", "wrk")


def role_of(args: str, database: str) -> str | None:
    """Which part of the set-up a process is, from its command line; None for anything
    else on the machine (another checkout's workers, other databases' backends)."""
    if "gunicorn" in args and str(ROOT) in args:
        return "gunicorn"
    if "rq worker" in args and str(ROOT) in args:
        return "rq workers"
    if args.startswith("postgres") or "/bin/postgres " in args:
        # This database's backends and the server's own processes (WAL writer,
        # checkpointer …), not the backends of other databases.
        client = re.search(r"postgres: \S+: \S+ (\S+) \S+\(", args)
        return "postgres" if client is None or client.group(1) == database else None
    if args.startswith("redis-server"):
        return "redis"
    if args.startswith("wrk "):
        return "wrk"
    return None


def cpu_seconds(database: str = "") -> dict[str, float]:
    """CPU seconds used so far by the processes of each role (from /proc, in clock ticks)."""
    used = dict.fromkeys(ROLES, 0.0)
    tick = os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            if not args:  # a server process that rewrote its title: read it from ps's view
                args = Path(f"/proc/{pid}/comm").read_text().strip()
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        role = role_of(args, database)
        if role is not None:
            used[role] += (int(stat[11]) + int(stat[12])) / tick
    return used


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


def vacuum(database_url: str) -> None:
    """VACUUM ANALYZE the tables intake and routing write."""
    engine = create_engine(sqlalchemy_url(database_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for table in ("tickets", "ticket_events", "outbox", "notifications", "ticket_counters", "users"):
            conn.execute(text(f"VACUUM ANALYZE {table}"))
    engine.dispose()


RUN_TICKETS = ("FROM tickets t WHERE t.created_at >= :since AND t.channel = 'service_hall'"
               " AND t.external_id LIKE :run")


def counts(engine, since: datetime, run: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(stored, still waiting for routing) among this run's tickets."""
    with engine.connect() as conn:
        stored, waiting = conn.execute(text(
            "SELECT count(*), count(*) FILTER (WHERE t.status = 'submitted' AND t.unrouted_reason = '') "
            + RUN_TICKETS), {"since": since, "run": f"{run}-main-%"}).one()
    return int(stored), int(waiting)


def lag(engine, since: datetime, run: str) -> float:  # type: ignore[no-untyped-def]
    """Seconds from this run's last ticket filed to its last "received" message sent."""
    with engine.connect() as conn:
        seconds = conn.execute(text(
            "SELECT EXTRACT(EPOCH FROM max(n.sent_at) - max(t.created_at)) " + RUN_TICKETS.replace(
                "FROM tickets t", "FROM tickets t JOIN notifications n ON n.ticket_id = t.id AND n.kind = 'received'")
        ), {"since": since, "run": f"{run}-main-%"}).scalar_one()
    return float(seconds or 0)


def unsent(engine, since: datetime, run: str) -> int:  # type: ignore[no-untyped-def]
    """This run's tickets whose resident has no sent "received" message yet."""
    with engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT count(*) " + RUN_TICKETS + " AND NOT EXISTS (SELECT 1 FROM notifications n"
            " WHERE n.ticket_id = t.id AND n.kind = 'received' AND n.status = 'sent')"
        ), {"since": since, "run": f"{run}-main-%"}).scalar_one())


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

    run = f"b{int(time.time())}"
    key, bodies = prepare(args.database_url, run)
    database = urlsplit(args.database_url).path.lstrip("/")
    workdir = Path(tempfile.mkdtemp(prefix="intake-bench-"))
    script = workdir / "post.lua"
    script.write_text(WRK_SCRIPT % {"run": run, "bodies": bodies, "key": key})
    env = dict(os.environ, DATABASE_URL=args.database_url, REDIS_URL=args.redis, MINHU_ENV="production",
               SECRET_KEY="bench-only-" + run, MINHU_INSTANCE=str(workdir), FLASK_APP="wsgi",
               PUBLIC_URL=f"http://127.0.0.1:{PORT}", PYTHONUNBUFFERED="1")
    from redis import Redis

    Redis.from_url(args.redis).flushdb()
    # A database that autovacuum looks after, as in production: this machine's PostgreSQL
    # runs with autovacuum off, and the dead rows of earlier runs skew the plans (the
    # routing load count then reads every open ticket instead of an index range).
    vacuum(args.database_url)
    procs = [start([str(ROOT / ".venv/bin/gunicorn"), "-w", str(args.web_workers), "--threads",
                    str(args.web_threads), "-b", f"127.0.0.1:{PORT}", "--log-level", "warning", "--preload",
                    "wsgi:app"], env, workdir / "gunicorn.log")]
    worker = [str(ROOT / ".venv/bin/flask"), "rq", "worker"] + (["--simple"] if args.rq_simple else [])
    procs += [start(worker, env, workdir / f"rq{i}.log")
              for i in range(args.rq_workers)]
    engine = create_engine(sqlalchemy_url(args.database_url))
    try:
        wait_for_port(PORT)
        url = f"http://127.0.0.1:{PORT}"
        if args.warmup:
            wrk(script, args.connections, 2, args.warmup, url, "warm")
        started = datetime.now(UTC)
        before = cpu_seconds(database)
        result = parse_wrk(wrk(script, args.connections, 2, args.duration, url, "main"))
        after = cpu_seconds(database)
        created = result["statuses"].get(201, 0)  # type: ignore[union-attr]
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
        for proc in procs:
            stop(proc)
    raw = pg_insert_rate(args.database_url, args.connections, 15)
    pct = result["pct"]
    print(f"web workers {args.web_workers}×{args.web_threads} threads, rq workers {args.rq_workers}"
          f"{' (simple)' if args.rq_simple else ''}, "
          f"{args.connections} connections, {args.duration} s")
    print(f"responses: {result['statuses']}")
    print(f"throughput: {result['rps']:.0f} requests/s; latency p50 {pct[50.0]:.0f} ms, "
          f"p90 {pct[90.0]:.0f} ms, p99 {pct[99.0]:.0f} ms, max {result['max']:.0f} ms")
    if created:
        split = ", ".join(f"{role} {(after[role] - before[role]) * 1000 / created:.1f}" for role in ROLES)
        print(f"CPU per ticket during the run, ms: {split}")
    print(f"stored {stored} tickets for {created} answers of 201 (the warm-up's are not counted); "
          f"{waiting} still unrouted and {not_told} without their \"received\" SMS sent "
          f"after {drained:.0f} s of draining; the last one sent {last_sent:.1f} s after the last ticket was filed")
    print(f"raw PostgreSQL: {raw:.0f} single-row inserts/s ({args.connections} clients); "
          f"API / raw = {result['rps'] / raw:.1%}")
    print(f"logs in {workdir}")


if __name__ == "__main__":
    main()
