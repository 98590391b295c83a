"""Every door into intake under load, one after the other, on PostgreSQL, as production runs it.

    python bench/doors_bench.py postgresql://postgres@localhost/bench \\
        --redis redis://localhost:6379/9 [--doors wechat,county] [--duration 30] [--connections 32]

Needs a database made by bench/generate.py (`--tickets 1000000 --open 100000`, about a
minute; 200,000 do for trying it out) and `wrk` (Debian package `wrk`). About a minute
per door with the defaults.

1. Prepares what the doors need, as an operator would: a staff key for a service-hall
   dispatcher, an Open311 key, a password for a few grid workers and community
   dispatchers (who sign in for the patrol and group-chat doors), a WeChat token and a
   county centre. The limits on the anonymous doors are raised through `RATE_LIMITS`
   (every limit of services/ratelimit.py to a billion a window, so each request is
   still counted in Redis as in production, never refused): all the load comes from
   one address, and the random phones and WeChat followers repeat within a run.
2. Starts gunicorn (`wsgi:app`, 3 workers, the README's command) and one `flask rq
   worker`, with DATABASE_URL, REDIS_URL and MINHU_ENV=production, as the README's
   production set-up runs them; the scheduler is not started (the web kicks the outbox
   relay after each request).
3. For each door (bench/doors.py says what its requests look like): builds its requests
   (signing in first where the door needs a session, reading the CSRF token from its
   form), warms up for `--warmup` seconds (the first door 15 s more: each web process
   loads the classifier's dictionaries on its first ticket) and waits for those
   tickets to be routed,
   then drives it with `wrk -t2 -c32 --latency` for `--duration` seconds, and waits
   (at most `--drain-timeout` seconds) until the worker has routed this run's tickets
   and done every outbox row they made.
4. Prints, per door: tickets filed per second, p50 and p99 latency, answers that were
   not the door's success (a 201, a 303 to the confirmation page for forms, a reply
   with the tracking link for WeChat) plus requests wrk got no answer to, CPU
   milliseconds per ticket of the gunicorn workers during the run, of the rq worker from
   the run's start until it drained, and of PostgreSQL (this database's backends and
   the server's own processes) over the same time; and the tickets found for it:
   stored (every answer that says a ticket was filed is one, found by the run marker
   in its external id or Open311 device id), placed (a community and a grid, and where
   the request said: the building named in the text, the grid holding the point, the
   worker's own grid) and routed (assigned to a person, team or company, or left for
   the dispatcher with its reason, services/routing.py `unrouted`). Exits 1 when a
   ticket was lost, misplaced or left unrouted, or a door ran out of pre-signed requests.
5. Says how much of the machine the run had, since benchmarks on a shared machine are
   noisy: the cores other processes kept busy during each run ("others"), and the
   rate the stack's CPU per ticket would allow if it had every core ("ceiling/s":
   cores / (web + worker + PostgreSQL CPU per ticket); wrk, Redis and waiting on
   each other aside).

WeChat messages and county orders are signed over a timestamp (WeChat also over a
nonce good for one request), which wrk's Lua cannot compute: they are signed before
each run, `--presigned-rate` per second of it, and each is sent once. The number of
tickets stored may exceed the answers counted by a few: requests still in flight when
wrk stops are filed but not counted.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from doors import CENTRE, DOORS, Ask, Door, Place, World
from harness import (
    PORT,
    Stack,
    children_cpu,
    cpu_seconds,
    hall_dispatcher,
    machine_busy,
    own_cpu,
    scratch_dir,
    sqlalchemy_url,
    stack_env,
    start_stack,
    tree_cpu,
    vacuum,
    wait_for_port,
)
from loadgen import WrkResult, run_wrk, write_requests, write_wrk_script
from sqlalchemy import Engine, create_engine, text

TARGET_RATE, TARGET_P99 = 350, 250  # tickets/s, ms (issue 15)
# High enough never to refuse a benchmark request, and still counted like any limit.
RATE_LIMITS = "web_ip=1000000000/3600,web_phone=1000000000/3600,open311_key=1000000000/60,wechat_sender=1000000000/600"
SIGNED_IN = 32  # grid workers and community dispatchers who sign in: a phone each, as many as wrk connections
FIRST_WARMUP = 15  # seconds more for the first door (see run_door)
CORES = os.cpu_count() or 1


def prepare(database_url: str, epoch: int) -> World:
    """Keys, passwords, the WeChat token and the county centre's secret; the places and
    categories the requests name."""
    from sqlalchemy import func, select
    from werkzeug.security import generate_password_hash

    from config import testing_config
    from ticketing import create_app
    from ticketing.extensions import db
    from ticketing.models import (
        Building,
        Community,
        Complex,
        Grid,
        KeyKind,
        User,
        user_grids,
        utcnow,
    )
    from ticketing.services import apikeys
    from ticketing.services.catalog import leaf_categories

    app = create_app(testing_config(database_url, Path(tempfile.mkdtemp())))
    with app.app_context():
        grid_of = func.coalesce(Building.grid_id, Complex.grid_id)
        places = [Place(*row) for row in db.session.execute(
            select(Building.id, Building.name, Complex.id, Complex.name, grid_of, Community.id, Community.code,
                   Community.name)
            .join(Complex, Building.complex_id == Complex.id).join(Grid, grid_of == Grid.id)
            .join(Community, Grid.community_id == Community.id)
            .where(Building.active.is_(True), Complex.active.is_(True), Grid.active.is_(True),
                   Community.active.is_(True)).order_by(Building.id))]
        if not places:
            sys.exit("no buildings in this database; run bench/generate.py first")
        check_names([p.complex for p in places], [p.community for p in places])
        boxes = {}
        for grid_id, boundary in db.session.execute(select(Grid.id, Grid.boundary).where(Grid.boundary.is_not(None))):
            ring = json.loads(boundary)["coordinates"][0]
            boxes[grid_id] = (min(p[0] for p in ring), min(p[1] for p in ring),
                              max(p[0] for p in ring), max(p[1] for p in ring))
        categories = [(c.id, c.code, list(c.extra_fields or [])) for c in leaf_categories()]
        now = utcnow()
        _, staff_key = apikeys.issue(KeyKind.STAFF, f"doors bench {epoch}", now, user=hall_dispatcher())
        _, open311_key = apikeys.issue(KeyKind.OPEN311, f"doors bench {epoch}", now)
        rng = random.Random(epoch)
        workers = db.session.execute(
            select(User, user_grids.c.grid_id).join(user_grids, user_grids.c.user_id == User.id)
            .where(User.role == "grid_worker", User.active.is_(True), user_grids.c.grid_id.in_(boxes))
            .order_by(User.id)).all()
        dispatchers = db.session.scalars(select(User).where(
            User.role == "dispatcher", User.active.is_(True), User.community_id.is_not(None)).order_by(User.id)).all()
        if not workers or not dispatchers:
            sys.exit("no grid workers or community dispatchers in this database; run bench/generate.py first")
        workers = rng.sample(list(workers), min(SIGNED_IN, len(workers)))
        dispatchers = rng.sample(list(dispatchers), min(SIGNED_IN, len(dispatchers)))
        password = secrets.token_urlsafe(16)
        hashed = generate_password_hash(password)
        for user in [u for u, _ in workers] + dispatchers:
            user.password_hash, user.must_change_password = hashed, False
        world = World(places, boxes, categories, staff_key, open311_key, password,
                      [(u.username, grid_id) for u, grid_id in workers],
                      [(u.username, u.community_id) for u in dispatchers],
                      wechat_token=secrets.token_hex(16), centre_secret=secrets.token_hex(32))
        db.session.commit()
    return world


def check_names(*groups: list[str]) -> None:
    """Exit when a place name occurs inside another (小区1 in 小区12): text names nothing
    then, as services/placing.py matches names as substrings. bench/generate.py makes
    names that do not."""
    for names in groups:
        unique = sorted(set(names))
        joined = "\n".join(unique)
        inside = [name for name in unique if joined.count(name) > 1]
        if inside:
            sys.exit(f"place names occur inside others ({inside[0]!r} …): requests cannot name a place; "
                     f"generate the database again with this bench/generate.py")


@dataclass
class Measured:
    """One door's run and what the database holds of it."""

    door: Door
    result: WrkResult
    web_cpu: float
    worker_cpu: float
    pg_cpu: float
    drained: float
    stored: int
    placed: int
    routed: int
    assigned: int
    waiting: int  # left for the dispatcher, with the reason
    others: float  # cores other processes on the machine kept busy during the run, on average

    @property
    def rate(self) -> float:
        return self.result.tickets / self.result.seconds if self.result.seconds else 0.0

    def per_ticket(self, seconds: float) -> str:
        return f"{seconds * 1000 / self.result.tickets:.1f}" if self.result.tickets else "-"

    @property
    def ceiling(self) -> float:
        """Tickets/s if the stack had every core to itself and only CPU limited it."""
        cpu = self.web_cpu + self.worker_cpu + self.pg_cpu
        return CORES * self.result.tickets / cpu if cpu else 0.0

    def problems(self) -> list[str]:
        """What went wrong with the door's tickets (or with the benchmark), in words."""
        return [word for word, bad in (
            ("nothing filed", self.result.tickets == 0),
            ("LOST", self.stored < self.result.tickets),
            ("misplaced", self.placed < self.stored),
            ("unrouted", self.routed < self.stored),
            ("out of signed requests", self.result.exhausted > 0),
        ) if bad]

    @property
    def verdict(self) -> str:
        """"yes" when the door meets the target, else "no", or its problems."""
        if self.problems():
            return ", ".join(self.problems())
        return "yes" if self.rate >= TARGET_RATE and self.result.pct[99.0] < TARGET_P99 else "no"


COUNTS = """
SELECT count(*),
       count(*) FILTER (WHERE t.community_id IS NOT NULL AND t.grid_id IS NOT NULL AND ({placed})),
       count(*) FILTER (WHERE t.status <> 'submitted' OR t.unrouted_reason <> ''),
       count(*) FILTER (WHERE t.status <> 'submitted'),
       count(*) FILTER (WHERE t.status = 'submitted' AND t.unrouted_reason <> '')
FROM tickets t
LEFT JOIN complexes cx ON cx.id = t.complex_id
LEFT JOIN buildings b ON b.id = t.building_id
LEFT JOIN grids g ON g.id = t.grid_id
WHERE t.channel = :channel AND t.created_at >= :since AND {marker} LIKE :pattern
"""
PENDING = "SELECT count(*) FROM outbox WHERE created_at >= :since AND done_at IS NULL AND failed_at IS NULL"


def counts(engine: Engine, door: Door, since: datetime, pattern: str) -> tuple[int, int, int, int, int]:
    """(stored, placed, routed, assigned, waiting with a reason) of one phase's tickets."""
    with engine.connect() as conn:
        row = conn.execute(text(COUNTS.format(placed=door.placed, marker=door.marker_column)),
                           {"channel": door.channel, "since": since, "pattern": pattern}).one()
    return tuple(int(n) for n in row)  # type: ignore[return-value]


def drain(engine: Engine, door: Door, since: datetime, pattern: str, timeout: float) -> float:
    """Wait until every ticket of the phase is routed and every outbox row made since
    `since` is done (at most `timeout` seconds); the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        stored, _placed, routed, _assigned, _waiting = counts(engine, door, since, pattern)
        with engine.connect() as conn:
            pending = conn.execute(text(PENDING), {"since": since}).scalar_one()
        if routed == stored and not pending:
            break
        time.sleep(0.5)
    return time.monotonic() - started


@dataclass
class Run:
    """What every door's run shares."""

    args: argparse.Namespace
    world: World
    epoch: int
    workdir: Path
    stack: Stack
    engine: Engine
    database: str

    def cpu(self) -> tuple[float, float, float, float]:
        """CPU seconds so far: gunicorn's workers (not the master), the rq workers,
        PostgreSQL, Redis."""
        web = self.stack.web.pid
        roles = cpu_seconds(self.database)
        return (tree_cpu(web) - own_cpu(web), sum(tree_cpu(w.pid) for w in self.stack.workers),
                roles["postgres"], roles["redis"])

    def wrk(self, door: Door, requests: Path, script: Path, seconds: int, phase: int, prefix: str) -> WrkResult:
        return run_wrk(script, requests, f"http://127.0.0.1:{PORT}", connections=self.args.connections,
                       threads=self.args.threads, seconds=seconds, phase=phase, prefix=prefix,
                       once=door.presigned)


def run_door(run: Run, number: int, door: Door, first: bool) -> Measured:
    """Warm one door up, measure it, wait for the worker, count its tickets. The first
    door warms up longer: each web process loads the classifier's dictionaries on its
    first ticket, which takes seconds."""
    args = run.args
    warmup = args.warmup + (FIRST_WARMUP if first else 0)
    prefix = door.prefix(run.epoch, number)
    ask = Ask(run.world, random.Random(number), f"http://127.0.0.1:{PORT}", prefix, 0, 0)
    script, requests = run.workdir / f"{door.name}.lua", run.workdir / f"{door.name}.txt"
    write_wrk_script(script, door.outcome)

    def build(phase: int, seconds: int) -> None:
        made = door.build(replace(ask, phase=phase, count=args.presigned_rate * seconds + args.connections))
        write_requests(requests, made)

    build(0, warmup)
    if warmup:
        since = datetime.now(UTC) - timedelta(seconds=1)
        warm = run.wrk(door, requests, script, warmup, 0, prefix)
        waited = drain(run.engine, door, since, door.pattern(prefix, 0), args.drain_timeout)
        print(f"  {door.name}: warmed up, {warm.tickets} tickets, routed within {waited:.1f} s", flush=True)
    if door.presigned:
        build(1, args.duration)
    since = datetime.now(UTC) - timedelta(seconds=1)
    web0, worker0, pg0, redis0 = run.cpu()
    busy0, wrk0, wall0 = machine_busy(), children_cpu(), time.monotonic()
    result = run.wrk(door, requests, script, args.duration, 1, prefix)
    web1, worker_run, pg_run, redis_run = run.cpu()
    busy, wrk, wall = machine_busy() - busy0, children_cpu() - wrk0, time.monotonic() - wall0
    drained = drain(run.engine, door, since, door.pattern(prefix, 1), args.drain_timeout)
    _, worker1, pg1, _ = run.cpu()
    stored, placed, routed, assigned, waiting = counts(run.engine, door, since, door.pattern(prefix, 1))
    stack = web1 - web0 + worker_run - worker0 + pg_run - pg0 + redis_run - redis0
    measured = Measured(door, result, web1 - web0, worker1 - worker0, pg1 - pg0, drained,
                        stored, placed, routed, assigned, waiting, others=max(0.0, busy - stack - wrk) / wall)
    print(f"  {door.name}: {result.requests} requests, answers {dict(sorted(result.statuses.items()))}"
          f"{', socket errors ' + str(result.socket_errors) if any(result.socket_errors.values()) else ''}"
          f"{', ran out of pre-signed requests ' + str(result.exhausted) + ' times' if result.exhausted else ''}; "
          f"{assigned} assigned, {waiting} left for the dispatcher with a reason; drained in {drained:.1f} s; "
          f"cores busy during the run: {busy / wall:.2f} of {CORES}, the stack {stack / wall:.2f}, "
          f"wrk {wrk / wall:.2f}, other processes {measured.others:.2f}", flush=True)
    return measured


def table(rows: list[Measured]) -> str:
    """The results, one line per door."""
    head = (f"{'door':<17} {'tickets/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'not OK':>6} {'app ms/t':>8} "
            f"{'worker ms/t':>11} {'PG ms/t':>7} {'ceiling/s':>9} {'others':>6}  {'answered':>8} "
            f"{'stored/placed/routed':>22}  target")
    lines = [head, "-" * len(head)]
    for m in rows:
        r = m.result
        lines.append(
            f"{m.door.name:<17} {m.rate:>9.0f} {r.pct[50.0]:>7.1f} {r.pct[99.0]:>7.1f} {r.errors:>6} "
            f"{m.per_ticket(m.web_cpu):>8} {m.per_ticket(m.worker_cpu):>11} {m.per_ticket(m.pg_cpu):>7} "
            f"{m.ceiling:>9.0f} {m.others:>6.2f}  "
            f"{r.tickets:>8} {f'{m.stored}/{m.placed}/{m.routed}':>22}  "
            f"{m.verdict}")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    names = [door.name for door in DOORS]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("database_url")
    parser.add_argument("--redis", default="redis://localhost:6379/9", help="its database is emptied first")
    parser.add_argument("--doors", default=",".join(names), help=f"comma-separated, of: {', '.join(names)}")
    parser.add_argument("--duration", type=int, default=30, help="seconds each door is measured")
    parser.add_argument("--warmup", type=int, default=5, help="seconds each door is warmed up")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk's threads")
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--rq-workers", type=int, default=1)
    parser.add_argument("--drain-timeout", type=int, default=120, help="seconds to wait for the worker, per run")
    parser.add_argument("--presigned-rate", type=int, default=1500,
                        help="WeChat messages and county orders signed per second of a run")
    args = parser.parse_args()
    unknown = set(args.doors.split(",")) - set(names)
    if unknown:
        parser.error(f"unknown doors: {', '.join(sorted(unknown))}")
    if max(args.duration, args.warmup + FIRST_WARMUP) > 240:
        parser.error("runs of over 240 s: WeChat and county requests are signed for 5 minutes")
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    return args


def main() -> None:
    args = parse_args()
    chosen = [(n, d) for n, d in enumerate(DOORS) if d.name in args.doors.split(",")]
    epoch = int(time.time())
    world = prepare(args.database_url, epoch)
    workdir = scratch_dir("doors-bench-")
    env = stack_env(args.database_url, args.redis, str(epoch), workdir, RATE_LIMITS=RATE_LIMITS,
                    WECHAT_TOKEN=world.wechat_token, UPSTREAM_CENTERS=json.dumps({CENTRE: {
                        # Nothing listens there: orders are only filed and routed here, and
                        # only an acceptance or a result is reported back.
                        "secret": world.centre_secret, "callback_url": "http://127.0.0.1:9/minhu"}}))
    print(f"rate limits raised for the benchmark: RATE_LIMITS={RATE_LIMITS}")
    from redis import Redis

    Redis.from_url(args.redis).flushdb()
    vacuum(args.database_url)
    stack = start_stack(env, workdir, args.web_workers, args.rq_workers,
                        gunicorn_args=["--logger-class", "ticketing.gunicorn_logger.ScrubbingLogger"])
    engine = create_engine(sqlalchemy_url(args.database_url))
    run = Run(args, world, epoch, workdir, stack, engine, urlsplit(args.database_url).path.lstrip("/"))
    rows = []
    try:
        wait_for_port(PORT)
        print(f"gunicorn {args.web_workers} workers, {args.rq_workers} rq worker; wrk -t{args.threads} "
              f"-c{args.connections}, {args.warmup} s warm-up and {args.duration} s per door", flush=True)
        for number, door in chosen:
            rows.append(run_door(run, number, door, first=not rows))
    finally:
        stack.stop()
    print()
    print(table(rows))
    print(f"target: each door at least {TARGET_RATE} tickets/s with p99 under {TARGET_P99} ms, nothing lost.\n"
          f"not OK: answers other than the door's success, and requests without an answer; ceiling/s: {CORES} "
          f"cores / (app + worker + PG CPU per ticket), the rate if only CPU limited the stack; others: cores "
          f"that other processes on the machine kept busy during the run")
    print(f"logs in {workdir}")
    failed = [f"{m.door.name} ({', '.join(m.problems())})" for m in rows if m.problems()]
    if failed:
        print(f"FAILED: {'; '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
