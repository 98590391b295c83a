"""Generate a street-office-sized PostgreSQL database for the benchmarks.

    python bench/generate.py postgresql://postgres@localhost/bench --tickets 1000000 --open 100000

Drops and recreates the schema through the real migrations, loads the reference
data, then builds everything else with set-based SQL (generate_series), so a
million tickets take about a minute here. Deterministic: the same arguments give
the same rows. Shape:

- 1 street, 100 communities, 1,000 grids (10 each), 2,000 complexes (half managed
  by 50 property companies), 10,000 buildings;
- 5,000 staff: 3,000 grid workers (3 per grid), 1,000 property staff (20 per
  company), 600 volunteers (3 per volunteer/mediation team, 2 teams per community),
  200 dispatchers, 200 supervisors; every handler on a 08:00–20:00 shift every day,
  one in ten on call;
- tickets: `--open` open ones (dispatched, accepted, on hold) spread over the
  handlers, the rest closed history filed over `--days` days (a year) up to four days ago;
- grids tile a rectangle, each with a GeoJSON boundary (for the dashboard's map);
- community and complex names (第12社区, 第234小区) never occur inside one another, so
  text that names one is placed there: services/placing.py matches names as substrings,
  and 小区1 would be found inside 小区12;
- with `--events`, every ticket's events as its timestamps say, acceptances and
  resolutions by its assignee (for the ledger bench).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config import testing_config
from ticketing import create_app
from ticketing.extensions import db

SQL = """
INSERT INTO streets (id, code, name) VALUES (1, 'BENCH', '基准街道');

INSERT INTO communities (id, street_id, code, name)
SELECT c, 1, 'C' || c, '第' || c || '社区' FROM generate_series(1, 100) AS c;

-- Grids tile a 40 × 25 rectangle of 500 m × 450 m cells, as GeoJSON polygons.
INSERT INTO grids (id, community_id, code, name, boundary)
SELECT g, (g - 1) / 10 + 1, 'G' || g, '网格' || g,
       format('{"type": "Polygon", "coordinates": [[[%1$s, %2$s], [%3$s, %2$s], [%3$s, %4$s], [%1$s, %4$s], [%1$s, %2$s]]]}',
              116.3 + x * 0.006, 39.8 + y * 0.004, 116.3 + (x + 1) * 0.006, 39.8 + (y + 1) * 0.004)
FROM generate_series(1, 1000) AS g
CROSS JOIN LATERAL (SELECT (g - 1) % 40 AS x, (g - 1) / 40 AS y) AS cell;

INSERT INTO property_companies (id, code, name, phone)
SELECT p, 'P' || p, '物业公司' || p, '010-' || (60000000 + p) FROM generate_series(1, 50) AS p;

INSERT INTO complexes (id, code, grid_id, name, aliases, property_company_id)
SELECT x, 'C' || x, (x - 1) / 2 + 1, '第' || x || '小区', '',
       CASE WHEN x % 2 = 0 THEN (x / 2 - 1) % 50 + 1 END
FROM generate_series(1, 2000) AS x;

INSERT INTO buildings (id, code, complex_id, name, aliases)
SELECT b, 'B' || b, (b - 1) / 5 + 1, ((b - 1) % 5 + 1) || '号楼', '' FROM generate_series(1, 10000) AS b;

INSERT INTO teams (id, code, community_id, kind, name)
SELECT t, 'T' || t, (t - 1) / 2 + 1, CASE WHEN t % 2 = 1 THEN 'volunteer' ELSE 'mediation' END, '队' || t
FROM generate_series(1, 200) AS t;

-- 5,000 staff. ids: 1-3000 grid workers, 3001-4000 property, 4001-4600 volunteers,
-- 4601-4800 dispatchers, 4801-5000 supervisors.
INSERT INTO users (id, username, password_hash, display_name, role, street_id, community_id,
                   company_id, team_id, active, on_call, created_at)
SELECT u, 'u' || u, 'x', '员工' || u,
       CASE WHEN u <= 3000 THEN 'grid_worker' WHEN u <= 4000 THEN 'property_staff'
            WHEN u <= 4600 THEN 'volunteer' WHEN u <= 4800 THEN 'dispatcher' ELSE 'supervisor' END,
       1,
       CASE WHEN u > 4600 THEN (u - 4601) % 100 + 1 END,
       CASE WHEN u BETWEEN 3001 AND 4000 THEN (u - 3001) / 20 + 1 END,
       CASE WHEN u BETWEEN 4001 AND 4600 THEN (u - 4001) / 3 + 1 END,
       true, u % 10 = 0, now()
FROM generate_series(1, 5000) AS u;

INSERT INTO user_grids (user_id, grid_id)
SELECT u, (u - 1) / 3 + 1 FROM generate_series(1, 3000) AS u;

INSERT INTO duty_shifts (user_id, weekday, starts, ends)
SELECT u, d, '08:00', '20:00' FROM generate_series(1, 4600) AS u, generate_series(0, 6) AS d;

"""

TICKETS = """
INSERT INTO ticket_counters (day, last) VALUES ('bench', 0);
INSERT INTO tickets (
    number, channel, status, version, category_id, tier_id, street_id, community_id, grid_id,
    complex_id, building_id, address_text, unit_room, description, requester_name,
    requester_phone, handler_kind, assignee_id, escalation_level, supervised,
    created_at, updated_at, dispatched_at, accept_due_at, accepted_at, resolve_due_at,
    paused_seconds, resolved_at, closed_at, result_note, return_count, reopen_count,
    rating, rating_comment, rated_at, unrouted_reason)
SELECT
    'B' || lpad(n::text, 9, '0'), 'web',
    CASE WHEN n <= :open THEN (ARRAY['dispatched', 'accepted', 'on_hold'])[n % 3 + 1] ELSE 'closed' END,
    1, cat.id, cat.tier_id, 1, (b.grid - 1) / 10 + 1, b.grid, b.cx, b.building, '', '',
    '楼道灯不亮', '张三', '13800000000', 'grid_worker',
    (b.grid - 1) * 3 + n % 3 + 1, 0, false,
    at, at, at,
    -- open tickets' deadlines lie ahead, spread over ten days, as in a steady state
    CASE WHEN n <= :open THEN now() + ((n % 240) + 1) * interval '1 hour' ELSE at + interval '1 day' END,
    CASE WHEN n <= :open AND n % 3 = 0 THEN NULL ELSE at + interval '1 hour' END,
    CASE WHEN n <= :open AND n % 3 = 0 THEN NULL
         WHEN n <= :open THEN now() + ((n % 240) + 1) * interval '1 hour'
         ELSE at + interval '5 days' END,
    0,
    CASE WHEN n > :open THEN at + interval '2 days' END,
    CASE WHEN n > :open THEN at + interval '3 days' END,
    '', 0, 0,
    CASE WHEN n > :open THEN (ARRAY['satisfied', 'basic', 'unsatisfied'])[n % 3 + 1] END,
    '', CASE WHEN n > :open THEN at + interval '3 days' END, ''
FROM generate_series(1, :total) AS n
CROSS JOIN LATERAL (
    SELECT (n::bigint * 7919) % 10000 + 1 AS building,
           ((n::bigint * 7919) % 10000) / 5 + 1 AS cx,
           ((n::bigint * 7919) % 10000) / 10 + 1 AS grid,
           -- open tickets are recent; the closed history is filed over --days days
           -- and resolved two days and rated three days after filing, the newest a day ago
           now() - CASE WHEN n <= :open THEN (n % 48) * interval '1 hour'
                        ELSE (n % :days + 4) * interval '1 day' + (n % 1440) * interval '1 minute' END AS at
) AS b
CROSS JOIN LATERAL (
    SELECT c.id, COALESCE(c.tier_id, p.tier_id) AS tier_id
    FROM categories c JOIN categories p ON p.id = c.parent_id
    WHERE c.code = 'repair.stair_light'
) AS cat;
"""

# With --events: every history ticket's events, as its timestamps say (for the ledger bench).
EVENTS = """
INSERT INTO ticket_events (ticket_id, at, actor_kind, actor_id, action, from_status, to_status, note, public, detail)
SELECT id, created_at, 'resident', NULL::integer, 'submit', NULL, 'submitted', '', true, '{}'::json FROM tickets
UNION ALL
SELECT id, dispatched_at, 'system', NULL, 'dispatch', 'submitted', 'dispatched', '', true, '{}'
FROM tickets WHERE dispatched_at IS NOT NULL
UNION ALL
SELECT id, accepted_at, 'staff', assignee_id, 'accept', 'dispatched', 'accepted', '', true, '{}'
FROM tickets WHERE accepted_at IS NOT NULL
UNION ALL
SELECT id, resolved_at, 'staff', assignee_id, 'resolve', 'accepted', 'resolved', '', true, '{}'
FROM tickets WHERE resolved_at IS NOT NULL
UNION ALL
SELECT id, closed_at, 'resident', NULL, 'rate', 'resolved', 'closed', '', true, '{}'
FROM tickets WHERE closed_at IS NOT NULL;
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("database_url")
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--open", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365, help="days the closed history spreads over")
    parser.add_argument("--events", action="store_true", help="also every ticket's events (about 4 per ticket)")
    args = parser.parse_args()
    instance = Path(os.environ.get("MINHU_INSTANCE", "/tmp/minhu-bench"))
    app = create_app(testing_config(args.database_url, instance))
    with app.app_context():
        from flask_migrate import upgrade

        from ticketing.reference import ensure_reference_data

        started = time.perf_counter()
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        upgrade()
        ensure_reference_data()
        db.session.commit()
        with db.engine.begin() as conn:
            for statement in SQL.split(";\n"):
                if statement.strip():
                    conn.execute(text(statement))
            for table in ("streets", "communities", "grids", "property_companies", "complexes",
                          "buildings", "teams", "users"):
                conn.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
        print(f"places and staff: {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        with db.engine.begin() as conn:
            for statement in TICKETS.split(";\n"):
                if statement.strip():
                    conn.execute(text(statement), {"open": args.open, "total": args.tickets, "days": args.days})
            conn.execute(text("ANALYZE"))
        print(f"{args.tickets:,} tickets ({args.open:,} open): {time.perf_counter() - started:.1f} s")
        if args.events:
            started = time.perf_counter()
            with db.engine.begin() as conn:
                # Tens of millions of rows load faster into a table without indexes.
                indexes = conn.execute(text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'ticket_events' "
                    "AND indexname LIKE 'ix_%'")).all()
                for name, _ in indexes:
                    conn.execute(text(f"DROP INDEX {name}"))
                conn.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
                conn.execute(text(EVENTS))
                for _, definition in indexes:
                    conn.execute(text(definition))
                conn.execute(text("ANALYZE ticket_events"))
            print(f"their events: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
