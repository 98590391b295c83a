"""Time one SLA sweep over all open tickets, on a database made by bench/generate.py.

    python bench/sweep_bench.py postgresql://postgres@localhost/bench

Runs two sweeps back to back: the first does the warnings that are due (the
generated deadlines are spread over ten days ahead), the second is the steady
state of a sweep every minute with nothing new. Prints the time and counts of each.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config import testing_config
from ticketing import create_app
from ticketing.extensions import db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("database_url")
    args = parser.parse_args()
    instance = Path(os.environ.get("MINHU_INSTANCE", "/tmp/minhu-bench"))
    app = create_app(testing_config(args.database_url, instance))
    with app.app_context():
        from ticketing.models import OPEN_STATUSES, Ticket, utcnow
        from ticketing.services.sweep import sweep
        from ticketing.services.workdays import load_calendar

        open_count = db.session.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.status.in_(list(OPEN_STATUSES))))
        calendar = load_calendar(ZoneInfo("Asia/Shanghai"))
        for label in ("first sweep", "second sweep"):
            started = time.perf_counter()
            result = sweep(utcnow(), calendar)
            elapsed = time.perf_counter() - started
            print(f"{label} over {open_count:,} open tickets: {elapsed:.2f} s — {result}")
            db.session.remove()


if __name__ == "__main__":
    main()
