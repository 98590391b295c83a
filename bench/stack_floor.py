"""The floor of the web stack on this machine: what gunicorn + Flask + psycopg do when a
request does nothing but parse a ticket-sized JSON body and INSERT one row.

    python bench/stack_floor.py postgresql://postgres@localhost/bench --duration 30

Run beside bench/intake_bench.py, with the same workers and connections: the gap
between the two is what Minhu itself costs per ticket (checks, classification,
numbering, routing, messages), and this figure is the most any Python web tier on
these cores could reach with one INSERT per request. Needs `wrk`.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import (
    cpu_seconds,
    sqlalchemy_url,
    start,
    stop,
    wait_for_port,
)

PORT = 8392
APP = '''
import json, os
import psycopg
from flask import Flask, request

app = Flask(__name__)
conn = None

@app.post("/t")
def create():
    global conn
    if conn is None:
        conn = psycopg.connect(os.environ["FLOOR_DSN"])
    body = request.get_json()
    row = conn.execute(
        "INSERT INTO bench_floor (channel, external_id, description, requester_phone, building_id, created_at)"
        " VALUES (%s, %s, %s, %s, %s, now()) RETURNING id",
        (body["channel"], body["external_id"], body["description"], body["phone"], body["building_id"]),
    ).fetchone()
    conn.commit()
    return {"id": row[0]}, 201
'''

WRK = '''
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
function request()
  counter = counter + 1
  local body = '%s'
  body = body:gsub("EXTID", tostring(tid) .. "-" .. counter .. "-" .. tostring(math.random(1, 1000000000)))
  return wrk.format(nil, "/t", nil, body)
end
local threads = {}
local n = 0
function setup(thread)
  n = n + 1
  thread:set("tid", n)
end
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("database_url")
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=int, default=30)
    args = parser.parse_args()

    from sqlalchemy import create_engine, text

    engine = create_engine(sqlalchemy_url(args.database_url))
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_floor"))
        conn.execute(text(
            "CREATE TABLE bench_floor (id bigserial PRIMARY KEY, channel varchar(20), external_id varchar(100),"
            " description text, requester_phone varchar(20), building_id int, created_at timestamptz,"
            " UNIQUE (channel, external_id))"))
    workdir = Path(tempfile.mkdtemp(prefix="stack-floor-"))
    (workdir / "floor_app.py").write_text(APP)
    body = json.dumps({"channel": "service_hall", "description": "厨房水管漏水，楼下邻居家天花板湿了",
                       "phone": "13912345678", "building_id": 7, "external_id": "EXTID"}, ensure_ascii=False)
    (workdir / "post.lua").write_text(WRK % body)
    database = urlsplit(args.database_url).path.lstrip("/")
    dsn = re.sub(r"^postgresql\+\w+://", "postgresql://", args.database_url)
    env = dict(os.environ, FLOOR_DSN=dsn, PYTHONPATH=str(workdir))
    proc = start([str(ROOT / ".venv/bin/gunicorn"), "-w", str(args.web_workers), "-b", f"127.0.0.1:{PORT}",
                  "--log-level", "warning", "--chdir", str(workdir), "floor_app:app"], env, workdir / "gunicorn.log")
    try:
        wait_for_port(PORT)
        url = f"http://127.0.0.1:{PORT}"
        subprocess.run(["wrk", "-t", "2", "-c", str(args.connections), "-d", "5s", "-s",
                        str(workdir / "post.lua"), url], capture_output=True, check=True)
        before = cpu_seconds(database)
        started = time.monotonic()
        out = subprocess.run(["wrk", "-t", "2", "-c", str(args.connections), "-d", f"{args.duration}s",
                              "--latency", "-s", str(workdir / "post.lua"), url],
                             capture_output=True, text=True, check=True).stdout
        elapsed = time.monotonic() - started
        after = cpu_seconds(database)
    finally:
        stop(proc)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE bench_floor"))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+(\S+)", out)
    done = rps * elapsed
    split = ", ".join(f"{role} {(after[role] - before[role]) * 1000 / done:.1f}"
                      for role in ("gunicorn", "postgres"))
    print(f"floor: {rps:.0f} requests/s (one INSERT each), p99 {p99.group(1) if p99 else '?'}; "
          f"CPU per request, ms: {split}")


if __name__ == "__main__":
    main()
