"""The supervisors' morning brief at street scale, on PostgreSQL: compose() and the page.

    python bench/generate.py postgresql://postgres@localhost/ledger5m --tickets 5000000 --events
    python bench/brief_bench.py postgresql://postgres@localhost/ledger5m

Needs a database made by bench/generate.py (1,000 grids in 100 communities, 200
supervisors); with --events the ledgers it compiles have figures in them. The brief
reads the compiled ledgers of yesterday and of the RATE_DAYS days before it: the bench
compiles those that are missing (bench/ledger_bench.py compiles others; a day of 5 M
tickets takes a few seconds).

The generated open tickets all have their deadlines ahead, none is on the 督办 lists
and nobody is to be called back, which would make the brief's lists trivially
empty. So the bench first stirs the data, deterministically (running it again
changes nothing more): 1 in 20 accepted tickets past its resolve-by (yesterday), 1
in 200 open tickets flagged 督办, and an open 回访 for 1 in 500 closed tickets, due
between yesterday and tomorrow. On 5 M tickets with 100,000 open that is about
1,700 overdue, 500 督办 and 8,000 回访 tasks of which a third fall due today.

Then it times, after one warm-up, the median and the largest of --runs compositions
of the brief of a street supervisor (user 4801, made street-level as in
ledger_bench.py) and of a community supervisor (user 4802), with the statements
each sends; and the brief page of the street supervisor through the app (the Flask
test client: no HTTP server in the timing).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import event, text
from werkzeug.security import generate_password_hash

from config import testing_config
from ticketing import create_app
from ticketing.extensions import db

TZ = ZoneInfo("Asia/Shanghai")
STREET_SUPERVISOR, COMMUNITY_SUPERVISOR = 4801, 4802
PASSWORD = "bench-brief"

STIR = """
UPDATE tickets SET resolve_due_at = date_trunc('day', now()) - interval '6 hours'
WHERE status = 'accepted' AND id % 20 = 0 AND resolve_due_at > date_trunc('day', now()) - interval '6 hours';

UPDATE tickets SET supervised = true
WHERE status IN ('dispatched', 'accepted', 'on_hold') AND id % 200 = 0 AND NOT supervised;

INSERT INTO callback_tasks (ticket_id, reason, work_round, state, version, created_at, due_at, attempts,
                            attempt_log, rating_recorded, redone, note)
SELECT id, 'sample', 0, 'open', 1, now() - interval '2 days',
       date_trunc('day', now()) - interval '1 day' + (id % 72) * interval '1 hour', 0, '[]', false, false, ''
FROM tickets WHERE status = 'closed' AND id % 500 = 0
ON CONFLICT DO NOTHING;
"""


def median_ms(action: Any, runs: int) -> tuple[float, float]:
    """The median and the largest time of `runs` calls, in ms, after one warm-up call."""
    action()
    took = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        took.append((time.perf_counter() - started) * 1000)
    return statistics.median(took), max(took)


def counted_statements(action: Any) -> list[str]:
    """The SQL statements `action()` sends."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return statements


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("database_url")
    parser.add_argument("--runs", type=int, default=10, help="compositions to time for each supervisor")
    args = parser.parse_args()
    app = create_app(testing_config(args.database_url, Path(tempfile.mkdtemp())))
    app.config["WTF_CSRF_ENABLED"] = False
    from ticketing.models import User
    from ticketing.services import brief
    from ticketing.services.brief_rules import RATE_DAYS
    from ticketing.services.ledger import compile_day
    from ticketing.services.workdays import load_calendar

    now = datetime.now(UTC)
    today = now.astimezone(TZ).date()
    with app.app_context():
        tickets = db.session.scalar(text("SELECT count(*) FROM tickets"))
        with db.engine.begin() as conn:
            started = time.perf_counter()
            for statement in STIR.split(";\n"):
                if statement.strip():
                    conn.execute(text(statement))
            conn.execute(text("UPDATE users SET password_hash = :h, community_id = NULL WHERE id = :id"),
                         {"h": generate_password_hash(PASSWORD), "id": STREET_SUPERVISOR})
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE tickets"))
            conn.execute(text("VACUUM ANALYZE callback_tasks"))
        print(f"{tickets:,} tickets; stirred in {time.perf_counter() - started:.1f} s")
        compiled = set(db.session.scalars(text("SELECT DISTINCT day FROM ledgers")))
        for back in range(1, RATE_DAYS + 2):
            day = today - timedelta(days=back)
            if day not in compiled:
                started = time.perf_counter()
                grids = compile_day(day, TZ, now)
                print(f"compiled {day}: {grids} grids in {time.perf_counter() - started:.1f} s")
        calendar = load_calendar(TZ)
        for label, user_id in (("street supervisor", STREET_SUPERVISOR),
                               ("community supervisor", COMMUNITY_SUPERVISOR)):
            user = db.session.get(User, user_id)
            assert user is not None
            statements = counted_statements(lambda u=user: brief.compose(u, today, now, calendar))
            composed = brief.compose(user, today, now, calendar)
            middle, worst = median_ms(lambda u=user: brief.compose(u, today, now, calendar), args.runs)
            colours = composed.colour_counts
            print(f"brief of a {label} ({composed.scope_name}, {len(composed.grids)} grids): "
                  f"median {middle:.0f} ms, max {worst:.0f} ms over {args.runs}; {len(statements)} statements; "
                  f"yesterday {composed.yesterday.counts['new']:,} new; due later today {composed.due_today.total:,}, "
                  f"overdue {composed.overdue.total:,}, 督办 {composed.supervised.total:,}, "
                  f"回访 due {composed.callbacks.total:,}; grids red {colours['red']}, yellow {colours['yellow']}, "
                  f"green {colours['green']}")

    client = app.test_client()
    response = client.post("/auth/login", data={"username": f"u{STREET_SUPERVISOR}", "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    middle, worst = median_ms(lambda: client.get("/brief/"), args.runs)
    size = len(client.get("/brief/").get_data())
    print(f"brief page of the street supervisor ({size / 1024:.0f} KiB): median {middle:.0f} ms, "
          f"max {worst:.0f} ms over {args.runs}")


if __name__ == "__main__":
    main()
