"""Exports of a whole street's ledgers over a week and a month: time and peak memory.

    python bench/generate.py postgresql://postgres@localhost/ledger5m --tickets 5000000 --events
    python bench/export_bench.py postgresql://postgres@localhost/ledger5m [--day 2026-11-18]

Needs a database made by bench/generate.py with --events (one street, BENCH, of 1,000
grids). The bench first compiles the ledgers of whichever of the 30 days up to D has
none yet (as bench/ledger_bench.py does; after a run of it, nothing is left to
compile); D is by default four days ago, the newest day of the generated history,
where each closed ticket is touched on three days (filed, resolved, rated).

Then it writes the street's file (services/area_files.py, as the dashboard's download
and `flask ledger export --street` do) for the week (the 7 days up to D) and the
month (the 30 days up to D), as .xlsx and as CSV, each in a fresh process to a file
on disk: the wall time, the lines, the file's size, and the process's peak resident
memory over what it held before the export began. Last, the full version's reveal
log over the month (one row per ticket, INSERT … SELECT), rolled back.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import distinct, select

from config import testing_config
from ticketing import create_app
from ticketing.extensions import db

TZ = ZoneInfo("Asia/Shanghai")
STREET = "BENCH"
SPANS = {"week": 7, "month": 30}


def rss_mib() -> float:
    """The process's resident memory now."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mib() -> float:
    """The process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one(url: str, day: date, span_name: str, fmt: str) -> None:
    """In a fresh process: write one file and print what it took as a JSON line."""
    from ticketing.services import area_export, area_files
    from ticketing.services.ledger_report import Period

    app = create_app(testing_config(url, Path(tempfile.mkdtemp())))
    with app.app_context():
        area = area_export.find_area("street", STREET)
        assert area is not None, "no street BENCH: make the database with bench/generate.py"
        span = Period("range", day - timedelta(days=SPANS[span_name] - 1), day)
        db.session.execute(select(1))  # connected before the baseline
        before = rss_mib()
        with tempfile.NamedTemporaryFile(suffix=f".{fmt}") as out:
            started = time.perf_counter()
            lines = area_files.write(area, span, fmt, out, datetime.now(UTC), TZ)
            out.flush()
            took = time.perf_counter() - started
            size = os.path.getsize(out.name)
    print(json.dumps({"lines": lines, "seconds": took, "bytes": size, "before": before, "peak": peak_mib()}))


def compile_missing(url: str, day: date) -> None:
    """Compile the days of the month up to `day` that have no ledger yet."""
    from ticketing.models import Ledger
    from ticketing.services.ledger import compile_day

    app = create_app(testing_config(url, Path(tempfile.mkdtemp())))
    with app.app_context():
        first = day - timedelta(days=SPANS["month"] - 1)
        done = set(db.session.scalars(select(distinct(Ledger.day)).where(Ledger.day >= first, Ledger.day <= day)))
        missing = [first + timedelta(days=n) for n in range(SPANS["month"]) if first + timedelta(days=n) not in done]
        started = time.perf_counter()
        for which in missing:
            compile_day(which, TZ, datetime.now(UTC))
        print(f"compiled {len(missing)} of the 30 days up to {day} in {time.perf_counter() - started:.0f} s "
              f"({SPANS['month'] - len(missing)} were compiled before)")


def reveal_log(url: str, day: date) -> None:
    """Time the full month's reveal log, then roll it back."""
    from ticketing.models import Role, User
    from ticketing.services import area_export
    from ticketing.services.ledger_report import Period

    app = create_app(testing_config(url, Path(tempfile.mkdtemp())))
    with app.app_context():
        area = area_export.find_area("street", STREET)
        user = db.session.scalar(select(User).where(User.role == Role.SUPERVISOR).limit(1))
        assert area is not None and user is not None
        span = Period("range", day - timedelta(days=SPANS["month"] - 1), day)
        started = time.perf_counter()
        logged = area_export.log_reveals(user, area, span, datetime.now(UTC), "bench")
        took = time.perf_counter() - started
        db.session.rollback()
    print(f"full version's reveal log, the month: {logged:,} rows in {took:.1f} s (rolled back)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("database_url")
    parser.add_argument("--day", type=date.fromisoformat, help="the last day D (default: four days ago)")
    parser.add_argument("--one", nargs=2, metavar=("SPAN", "FORMAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    day = args.day or datetime.now(TZ).date() - timedelta(days=4)
    if args.one:
        one(args.database_url, day, *args.one)
        return
    compile_missing(args.database_url, day)
    for span_name in SPANS:
        for fmt in ("xlsx", "csv"):
            child = subprocess.run([sys.executable, __file__, args.database_url, "--day", day.isoformat(),
                                    "--one", span_name, fmt], capture_output=True, text=True, check=True)
            r = json.loads(child.stdout.strip().splitlines()[-1])
            print(f"street {span_name} up to {day}, {fmt}: {r['lines']:,} lines, {r['bytes'] / 2**20:.1f} MiB, "
                  f"{r['seconds']:.1f} s ({r['lines'] / r['seconds']:,.0f} lines/s); peak memory "
                  f"{r['peak']:.0f} MiB, {r['peak'] - r['before']:.0f} MiB over the {r['before']:.0f} MiB before")
    reveal_log(args.database_url, day)


if __name__ == "__main__":
    main()
