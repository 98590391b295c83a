"""The daily ledger at Beijing-12345 scale, on PostgreSQL: compiling a day, the dashboard.

    python bench/generate.py postgresql://postgres@localhost/ledger5m --tickets 5000000 --events
    python bench/generate.py postgresql://postgres@localhost/ledger1m --tickets 1000000 --events --days 73
    python bench/ledger_bench.py postgresql://postgres@localhost/ledger5m --day-tickets 70000

Needs a database made by bench/generate.py with --events (1,000 grids; every
ticket has its events). The two commands above give the same history per day
(about 13,700 tickets filed, resolved and rated a day) over a year and over 73
days, so their days differ only in the size of the history.

The bench adds one local day D (three days ago: no open ticket of the generated
data was filed on it) of `--day-tickets` tickets with their events, set-based: a
mix of still submitted, dispatched, accepted, resolved and closed with ratings,
some reopened and some escalated; some open history is touched that day too.
Then it times `compile_day` of D for every grid, then again (a recompile replaces
the rows), and a day with history only; how much of a compile is the street's and
communities' roll-up (services/ledger_rollup.py) is timed apart. It back-fills the
days before D back to the first of the month before (or `--backfill-days`) and
compiles today, so the dashboard has what it shows (a whole week and month, the
30-day trend, today so far), then renders every view of the dashboard as a street
supervisor, through the app (the Flask test client: no HTTP server in the timing),
for the whole street (1,000 grids) and for one community (10): D, the last whole
week and month before it, each ranking whole (its first page), and one grid's
ledger page; the median of `--renders` each.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text
from werkzeug.security import generate_password_hash

from config import testing_config
from ticketing import create_app
from ticketing.extensions import db

TZ = ZoneInfo("Asia/Shanghai")

# The day's tickets: n-th ticket filed at start + n * (a day / count); its fate by n % 10.
DAY_TICKETS = """
INSERT INTO tickets (
    number, channel, status, version, category_id, tier_id, street_id, community_id, grid_id,
    complex_id, building_id, address_text, unit_room, description, requester_name,
    requester_phone, handler_kind, assignee_id, escalation_level, supervised,
    created_at, updated_at, dispatched_at, accept_due_at, accepted_at, resolve_due_at,
    paused_seconds, resolved_at, closed_at, result_note, return_count, reopen_count,
    rating, rating_comment, rated_at, unrouted_reason)
SELECT
    'L' || lpad(n::text, 9, '0'), (ARRAY['web', 'wechat_oa', 'walk_in', 'phone', 'patrol'])[n % 5 + 1],
    CASE WHEN n % 10 = 0 THEN 'submitted' WHEN n % 10 IN (1, 2) THEN 'dispatched'
         WHEN n % 10 IN (3, 4, 5) THEN 'accepted' WHEN n % 10 IN (6, 7) THEN 'resolved' ELSE 'closed' END,
    1, cat.id, cat.tier_id, 1, (b.grid - 1) / 10 + 1, b.grid, b.cx, b.building, '', '',
    '楼道灯不亮', '张三', '13800000000',
    CASE WHEN n % 10 > 0 THEN 'grid_worker' END,
    CASE WHEN n % 10 > 0 THEN (b.grid - 1) * 3 + n % 3 + 1 END, CASE WHEN n % 97 = 0 THEN 1 ELSE 0 END, false,
    at, at,
    CASE WHEN n % 10 > 0 THEN at + interval '10 minutes' END,
    CASE WHEN n % 10 > 0 THEN at + interval '2 hours' END,
    CASE WHEN n % 10 > 2 THEN at + interval '40 minutes' END,
    CASE WHEN n % 10 > 2 THEN at + interval '2 days' END,
    0,
    CASE WHEN n % 10 > 5 THEN at + (n % 5 + 1) * interval '30 minutes' END,
    CASE WHEN n % 10 > 7 THEN at + interval '4 hours' END,
    '', 0, CASE WHEN n % 31 = 0 THEN 1 ELSE 0 END,
    CASE WHEN n % 10 > 7 THEN (ARRAY['satisfied', 'basic', 'unsatisfied'])[n % 3 + 1] END,
    '', CASE WHEN n % 10 > 7 THEN at + interval '4 hours' END, ''
FROM generate_series(1, :count) AS n
CROSS JOIN LATERAL (
    SELECT (n::bigint * 7919) % 10000 + 1 AS building,
           ((n::bigint * 7919) % 10000) / 5 + 1 AS cx,
           ((n::bigint * 7919) % 10000) / 10 + 1 AS grid,
           CAST(:start AS timestamptz) + n * (interval '20 hours' / :count) AS at
) AS b
CROSS JOIN LATERAL (
    SELECT c.id, COALESCE(c.tier_id, p.tier_id) AS tier_id
    FROM categories c JOIN categories p ON p.id = c.parent_id
    WHERE c.code = 'repair.stair_light'
) AS cat;

INSERT INTO ticket_events (ticket_id, at, actor_kind, actor_id, action, from_status, to_status, note, public, detail)
SELECT id, created_at, 'resident', NULL::integer, 'submit', NULL, 'submitted', '', true, '{}'::json FROM tickets WHERE number LIKE 'L%'
UNION ALL
SELECT id, dispatched_at, 'system', NULL, 'dispatch', 'submitted', 'dispatched', '', true, '{}'
FROM tickets WHERE number LIKE 'L%' AND dispatched_at IS NOT NULL
UNION ALL
SELECT id, accepted_at, 'staff', assignee_id, 'accept', 'dispatched', 'accepted', '', true, '{}'
FROM tickets WHERE number LIKE 'L%' AND accepted_at IS NOT NULL
UNION ALL
SELECT id, resolved_at, 'staff', assignee_id, 'resolve', 'accepted', 'resolved', '', true, '{}'
FROM tickets WHERE number LIKE 'L%' AND resolved_at IS NOT NULL
UNION ALL
SELECT id, closed_at, 'resident', NULL, 'rate', 'resolved', 'closed', '', true, '{}'
FROM tickets WHERE number LIKE 'L%' AND closed_at IS NOT NULL
UNION ALL
SELECT id, created_at + interval '3 hours', 'staff', NULL, 'escalate', status, status, '上报', false, '{}'
FROM tickets WHERE number LIKE 'L%' AND escalation_level > 0;

-- Some of the history is touched that day too: a note on every 500th open ticket.
INSERT INTO ticket_events (ticket_id, at, actor_kind, actor_id, action, from_status, to_status, note, public, detail)
SELECT id, CAST(:start AS timestamptz) + interval '12 hours', 'staff', assignee_id, 'note', status, status, '跟进', false, '{}'
FROM tickets WHERE number LIKE 'B%' AND status IN ('dispatched', 'accepted', 'on_hold') AND id % 500 = 0;
"""


SUPERVISOR = 4801  # a supervisor of bench/generate.py, made street-level here: the whole street's dashboard
PASSWORD = "bench-ledger"


def timed(label: str, action) -> float:
    started = time.perf_counter()
    result = action()
    took = time.perf_counter() - started
    print(f"{label}: {took:.2f} s" + (f" ({result})" if result is not None else ""))
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("database_url")
    parser.add_argument("--day-tickets", type=int, default=70_000)
    parser.add_argument("--renders", type=int, default=10, help="dashboard renders to time")
    parser.add_argument("--no-backfill", action="store_true", help="skip the days before D (done by a run before)")
    parser.add_argument("--backfill-days", type=int, default=0,
                        help="days before D to compile (default: back to the first of the month before)")
    args = parser.parse_args()
    app = create_app(testing_config(args.database_url, Path(tempfile.mkdtemp())))
    app.config["WTF_CSRF_ENABLED"] = False
    from ticketing.services import ledger_rollup
    from ticketing.services.ledger import compile_day, window

    today = datetime.now(TZ).date()
    day = today - timedelta(days=3)
    w = window(day, TZ)
    month_before = (day.replace(day=1) - timedelta(days=1)).replace(day=1)
    backfill = args.backfill_days or (day - month_before).days
    last_sunday = day - timedelta(days=day.weekday() + 1)  # the last whole week: Monday to this Sunday
    with app.app_context():
        history = db.session.scalar(text("SELECT count(*) FROM tickets WHERE number NOT LIKE 'L%'"))
        events = db.session.scalar(text("SELECT count(*) FROM ticket_events"))
        with db.engine.begin() as conn:
            conn.execute(text("DELETE FROM ledger_lines WHERE ticket_id IN (SELECT id FROM tickets WHERE number LIKE 'L%')"))
            conn.execute(text("DELETE FROM ticket_events WHERE ticket_id IN (SELECT id FROM tickets WHERE number LIKE 'L%')"))
            conn.execute(text("DELETE FROM ticket_events WHERE at >= :s AND at < :e AND action = 'note'"),
                         {"s": w.start, "e": w.end})
            conn.execute(text("DELETE FROM tickets WHERE number LIKE 'L%'"))
            started = time.perf_counter()
            for statement in DAY_TICKETS.split(";\n"):
                if statement.strip():
                    conn.execute(text(statement), {"count": args.day_tickets, "start": w.start})
            conn.execute(text("UPDATE users SET password_hash = :h, community_id = NULL WHERE id = :id"),
                         {"h": generate_password_hash(PASSWORD), "id": SUPERVISOR})
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE tickets"))
            conn.execute(text("VACUUM ANALYZE ticket_events"))
        print(f"history: {history:,} tickets, {events:,} events; added {args.day_tickets:,} tickets on {day} "
              f"with their events in {time.perf_counter() - started:.1f} s")
        touched = db.session.scalar(text(
            "SELECT count(*) FROM tickets WHERE (created_at >= :s AND created_at < :e) OR id IN "
            "(SELECT ticket_id FROM ticket_events WHERE at >= :s AND at < :e)"), {"s": w.start, "e": w.end})
        day_events = db.session.scalar(text("SELECT count(*) FROM ticket_events WHERE at >= :s AND at < :e"),
                                       {"s": w.start, "e": w.end})
        print(f"{day}: {touched:,} tickets touched, {day_events:,} events")

        def compile_(d):
            grids = compile_day(d, TZ, datetime.now(UTC))
            lines = db.session.scalar(text("SELECT count(*) FROM ledger_lines JOIN ledgers ON ledgers.id = ledger_id "
                                           "WHERE ledgers.day = :d"), {"d": d})
            return f"{grids} grids, {lines:,} lines"

        timed(f"compile {day}", lambda: compile_(day))
        timed(f"recompile {day}", lambda: compile_(day))
        quiet = day - timedelta(days=1)
        timed(f"compile {quiet} (history only)", lambda: compile_(quiet))
        streets = db.session.scalars(text("SELECT DISTINCT street_id FROM ledgers WHERE day = :d"), {"d": day}).all()
        communities = db.session.scalars(text("SELECT DISTINCT community_id FROM ledgers WHERE day = :d"),
                                          {"d": day}).all()
        timed(f"of which the roll-up of {len(streets)} street and {len(communities)} communities",
              lambda: ledger_rollup.write(day, streets, communities) or db.session.rollback())
        if not args.no_backfill:
            timed(f"back-fill the {backfill - 1} days before that, for the week, month and trend",
                  lambda: [compile_day(quiet - timedelta(days=n), TZ, datetime.now(UTC))
                           for n in range(1, backfill)] and None)
        timed(f"compile today so far ({today})", lambda: compile_(today))
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("ledgers", "ledger_handlers", "ledger_street_days", "ledger_community_days"):
                conn.execute(text(f"ANALYZE {table}"))  # as autovacuum would have by the morning

    client = app.test_client()
    response = client.post("/auth/login", data={"username": f"u{SUPERVISOR}", "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    views = []
    for area, where in (("street", ""), ("community", "&area=community:C1")):
        views += [(f"{area}: day", f"/ledger/?day={day}{where}"),
                  (f"{area}: week", f"/ledger/?day={last_sunday}&period=week{where}"),
                  (f"{area}: month", f"/ledger/?day={month_before}&period=month{where}"),
                  (f"{area}: month, all grids ranked", f"/ledger/?day={month_before}&period=month&all=grid{where}"),
                  (f"{area}: month, all handlers ranked",
                   f"/ledger/?day={month_before}&period=month&all=handler{where}")]
    for label, url in (*views, ("grid ledger page", f"/ledger/grid/G1/{day}")):
        client.get(url)  # warm: templates compiled, caches filled
        took = []
        for _ in range(args.renders):
            started = time.perf_counter()
            response = client.get(url)
            took.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.status_code
        size = len(response.get_data())
        print(f"{label} ({url}, {size / 1024:.0f} KiB): median {statistics.median(took):.0f} ms, "
              f"max {max(took):.0f} ms over {args.renders}")


if __name__ == "__main__":
    main()
