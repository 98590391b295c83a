"""Compiling a day's ledgers for every grid, on PostgreSQL, at Beijing-12345 scale.

    python bench/generate.py postgresql://postgres@localhost/bench --tickets 5000000 --events
    python bench/ledger_bench.py postgresql://postgres@localhost/bench --day-tickets 70000

Needs a database made by bench/generate.py (1,000 grids; with --events, every
history ticket has its events). Adds one local day (the day before yesterday) of
`--day-tickets` tickets with their events, set-based: a mix of still submitted,
dispatched, accepted, resolved and closed with ratings, some reopened and some
escalated; some of the history is also touched on that day. Then times
`compile_day` for every grid, and again (a recompile replaces the rows). Run it on
two history sizes to see that the time follows the day, not the history.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from config import testing_config  # noqa: E402
from ticketing import create_app  # noqa: E402
from ticketing.extensions import db  # noqa: E402

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

INSERT INTO ticket_events (ticket_id, at, actor_kind, action, from_status, to_status, note, public, detail)
SELECT id, created_at, 'resident', 'submit', NULL, 'submitted', '', true, '{}' FROM tickets WHERE number LIKE 'L%'
UNION ALL
SELECT id, dispatched_at, 'system', 'dispatch', 'submitted', 'dispatched', '', true, '{}'
FROM tickets WHERE number LIKE 'L%' AND dispatched_at IS NOT NULL
UNION ALL
SELECT id, accepted_at, 'staff', 'accept', 'dispatched', 'accepted', '', true, '{}'
FROM tickets WHERE number LIKE 'L%' AND accepted_at IS NOT NULL
UNION ALL
SELECT id, resolved_at, 'staff', 'resolve', 'accepted', 'resolved', '', true, '{}'
FROM tickets WHERE number LIKE 'L%' AND resolved_at IS NOT NULL
UNION ALL
SELECT id, closed_at, 'resident', 'rate', 'resolved', 'closed', '', true, '{}'
FROM tickets WHERE number LIKE 'L%' AND closed_at IS NOT NULL
UNION ALL
SELECT id, created_at + interval '3 hours', 'staff', 'escalate', status, status, '上报', false, '{}'
FROM tickets WHERE number LIKE 'L%' AND escalation_level > 0;

-- Some of the history is touched that day too: a note on every 500th open ticket.
INSERT INTO ticket_events (ticket_id, at, actor_kind, action, from_status, to_status, note, public, detail)
SELECT id, CAST(:start AS timestamptz) + interval '12 hours', 'staff', 'note', status, status, '跟进', false, '{}'
FROM tickets WHERE number LIKE 'B%' AND status IN ('dispatched', 'accepted', 'on_hold') AND id % 500 = 0;
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("database_url")
    parser.add_argument("--day-tickets", type=int, default=70_000)
    args = parser.parse_args()
    app = create_app(testing_config(args.database_url, Path(tempfile.mkdtemp())))
    from ticketing.services.ledger import compile_day, window

    day = datetime.now(TZ).date() - timedelta(days=2)
    w = window(day, TZ)
    with app.app_context():
        history = db.session.scalar(text("SELECT count(*) FROM tickets WHERE number NOT LIKE 'L%'"))
        events = db.session.scalar(text("SELECT count(*) FROM ticket_events"))
        with db.engine.begin() as conn:
            conn.execute(text("DELETE FROM ledger_lines"))
            conn.execute(text("DELETE FROM ledgers"))
            conn.execute(text("DELETE FROM ticket_events WHERE ticket_id IN (SELECT id FROM tickets WHERE number LIKE 'L%')"))
            conn.execute(text("DELETE FROM ticket_events WHERE at >= :s AND at < :e AND action = 'note'"),
                         {"s": w.start, "e": w.end})
            conn.execute(text("DELETE FROM tickets WHERE number LIKE 'L%'"))
            started = time.perf_counter()
            for statement in DAY_TICKETS.split(";\n"):
                if statement.strip():
                    conn.execute(text(statement), {"count": args.day_tickets, "start": w.start})
            conn.execute(text("ANALYZE tickets"))
            conn.execute(text("ANALYZE ticket_events"))
        print(f"history: {history:,} tickets, {events:,} events; added {args.day_tickets:,} tickets on {day} "
              f"with their events in {time.perf_counter() - started:.1f} s")
        for attempt in ("compile", "recompile"):
            started = time.perf_counter()
            grids = compile_day(day, TZ, datetime.now(timezone.utc))
            took = time.perf_counter() - started
            lines = db.session.scalar(text("SELECT count(*) FROM ledger_lines"))
            print(f"{attempt}: {grids} grids, {lines:,} lines in {took:.2f} s")


if __name__ == "__main__":
    main()
