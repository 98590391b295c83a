"""SQL statements, lazy loads and time per filed ticket, door by door, in one process.

    python bench/open311_profile.py                      # a scratch SQLite file
    python bench/open311_profile.py postgresql://postgres@localhost/scratch -n 300
    python bench/open311_profile.py ... --redis redis://localhost:6379/9

Not a load test (bench/intake_bench.py is): it loads the demo street into an empty
database (its schema wiped and rebuilt by the migrations), then posts `-n` requests
through Flask's test client, alternating the doors so all see the same database:

- the staff API, `POST /api/v1/tickets` with a building id (the fast-path baseline);
- Open311, `POST /open311/v2/requests.json` with `service_code` and `address_string`
  naming a complex and building, the way third-party apps send it;
- the resident web form, `POST /report` with category, community, complex and building
  (its CSRF token read once, before the timed posts);
- a grid worker's patrol report, `POST /patrol/new` (multipart, with the empty photo
  input) on a building of her grid, signed in as the demo's grid1;
- group-chat entry, signed in as the demo's dispatcher1: pasting three messages that
  name her community's buildings (`POST /patrol/groupchat`, the drafts page), then
  filing the drafts as the page shows them (`POST /patrol/groupchat/file`, three
  tickets).

For each door it prints the median and mean SQL statements (SQLAlchemy's
`before_cursor_execute`), lazy loads (ORM loads with `lazy_loaded_from`) and
milliseconds per request (wall clock, and this process's CPU: the app's and the
test client's, not the database server's), after `--warmup` requests of each door. Without `--redis`
the Open311 rate limit is counted in the database, as in the embedded set-up.
"""
from __future__ import annotations

import argparse
import io
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import event, select, text
from sqlalchemy.orm import ORMExecuteState, Session
from werkzeug.datastructures import MultiDict

from config import testing_config
from ticketing import create_app
from ticketing.demo import load_demo
from ticketing.demo_data import DEMO_PASSWORD
from ticketing.extensions import db
from ticketing.models import Building, Category, Complex, Grid, KeyKind, User, user_grids, utcnow
from ticketing.services import apikeys

sys.path.insert(0, str(ROOT / "bench"))
from clients import form_fields  # bench/clients.py, beside this script

DESCRIPTIONS = ["楼道灯坏了，晚上看不见", "厨房水管漏水，楼下天花板湿了", "单元门禁坏了，关不上",
                "垃圾桶满了没人清理，味道很大", "下水道堵了，污水冒出来"]


class Counter:
    """Statements and lazy loads since the last `reset`."""

    def __init__(self) -> None:
        self.statements = 0
        self.lazy = 0
        self.last: list[str] = []

    def reset(self) -> None:
        self.statements = self.lazy = 0
        self.last = []

    def statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements += 1
        self.last.append(" ".join(statement.split())[:160])

    def orm(self, state: ORMExecuteState) -> None:
        if state.is_select and state.lazy_loaded_from is not None:
            self.lazy += 1


def build_app(url: str | None, redis: str | None) -> Flask:
    """The app on `url` (else a scratch SQLite file), its schema fresh, the demo loaded."""
    instance = Path(tempfile.mkdtemp(prefix="o311prof"))
    config = testing_config(url or f"sqlite:///{instance / 'prof.db'}", instance,
                            rate_limits={"web_ip": (0, 60), "web_phone": (0, 60),
                                         "open311_key": (10**6, 60), "wechat_sender": (0, 60)},
                            redis_url=redis or None)
    app = create_app(config)
    with app.app_context():
        if url and url.startswith("postgres"):
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        upgrade()
        load_demo()
    return app


def bodies(app: Flask, n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], str]:
    """n staff-API bodies, n Open311 forms, n web forms, and the staff key."""
    with app.app_context():
        admin = db.session.scalar(select(User).where(User.role == "admin", User.active.is_(True)))
        _, staff_key = apikeys.issue(KeyKind.STAFF, "profile staff", utcnow(), user=admin)
        _, open311_key = apikeys.issue(KeyKind.OPEN311, "profile open311", utcnow())
        buildings = [(b.id, b.complex.name + b.name, b.complex_id, b.complex.grid.community_id)
                     for b in db.session.scalars(
            select(Building).where(Building.active.is_(True)))]
        # Categories whose Open311 attributes are all optional: the forms answer none.
        codes = [(c.code, c.id) for c in db.session.scalars(select(Category).where(
            Category.parent_id.is_not(None), Category.active.is_(True)))
            if not any(isinstance(f, dict) and f.get("required") for f in c.extra_fields or [])]
    rng = random.Random(7)
    staff, forms, web = [], [], []
    for i in range(n):
        building_id, address, complex_id, community_id = rng.choice(buildings)
        code, category_id = rng.choice(codes)
        phone = f"139{rng.randrange(10**8):08d}"
        staff.append({"channel": "service_hall", "description": rng.choice(DESCRIPTIONS), "phone": phone,
                      "name": "测试", "category": code, "building_id": building_id, "external_id": f"p{i}"})
        forms.append({"api_key": open311_key, "service_code": code, "description": rng.choice(DESCRIPTIONS),
                      "phone": phone, "first_name": "三", "last_name": "张",
                      "address_string": f"{address}2单元301室"})
        web.append({"category_id": category_id, "community_id": community_id, "complex_id": complex_id,
                    "building_id": building_id, "address_text": "", "unit_room": "2单元301",
                    "description": rng.choice(DESCRIPTIONS), "name": "张三丰", "phone": phone})
    return staff, forms, web, staff_key


def signed_in(app: Flask, username: str) -> FlaskClient:
    """A test client signed in as the demo's `username`."""
    client = app.test_client()
    token = dict(form_fields(client.get("/auth/login").get_data(as_text=True), "/auth/login", "/auth/login"))
    response = client.post("/auth/login", data={"csrf_token": token.get("csrf_token", ""), "username": username,
                                                "password": DEMO_PASSWORD})
    if response.status_code not in (302, 303):
        sys.exit(f"signing in as {username}: {response.status_code}")
    return client


def buildings_of(app: Flask, username: str) -> list[tuple[int, str]]:
    """(id, complex and building name) of the open buildings in the user's grids, or
    else in the user's community."""
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == username))
        assert user is not None, username
        grids = select(user_grids.c.grid_id).where(user_grids.c.user_id == user.id)
        where = (Complex.grid_id.in_(grids) if db.session.scalar(grids.limit(1)) is not None
                 else Complex.grid_id.in_(select(Grid.id).where(Grid.community_id == user.community_id)))
        return [(b.id, b.complex.name + b.name) for b in db.session.scalars(
            select(Building).join(Complex).where(where, Building.active.is_(True)).order_by(Building.id))]


class Patrol:
    """grid1's patrol reports, each with a new submission id."""

    def __init__(self, app: Flask, rng: random.Random) -> None:
        self.client, self.rng = signed_in(app, "grid1"), rng
        self.buildings = buildings_of(app, "grid1")
        page = self.client.get("/patrol/new").get_data(as_text=True)
        fields = dict(form_fields(page, "/patrol/new", "/patrol/new"))
        self.csrf = fields["csrf_token"]
        self.categories = [int(v) for v in re.findall(r'<option value="(\d+)"', page.split('name="category_id"')[1]
                                                      .split("</select>")[0])]

    def post(self, i: int) -> Any:
        data = {"csrf_token": self.csrf, "submission_id": f"{i:032x}", "category_id": self.rng.choice(self.categories),
                "building_id": self.rng.choice(self.buildings)[0], "lat": "", "lng": "",
                "description": self.rng.choice(DESCRIPTIONS), "phone": "", "result": "",
                "photo": (io.BytesIO(b""), "")}
        return self.client.post("/patrol/new", data=data, content_type="multipart/form-data")

    def read_flash(self) -> None:
        """What the ticket page the report redirects to does: take the "filed" message out
        of the session, which would otherwise grow with every report (not timed)."""
        with self.client.session_transaction() as session:
            session.pop("_flashes", None)


class GroupChat:
    """dispatcher1's pastes of three messages, and the drafts filed as the page shows them."""

    def __init__(self, app: Flask, rng: random.Random, categories: list[int]) -> None:
        self.client, self.rng, self.categories = signed_in(app, "dispatcher1"), rng, categories
        self.buildings = buildings_of(app, "dispatcher1")
        page = self.client.get("/patrol/groupchat").get_data(as_text=True)
        self.csrf = dict(form_fields(page, "/patrol/groupchat", "/patrol/groupchat"))["csrf_token"]
        self.page = ""
        self.drafts: list[tuple[str, str]] = []

    def paste(self, i: int) -> Any:
        lines = []
        for row in range(3):
            lines += [f"张阿姨 10:{10 + 7 * row:02d}",
                      f"{self.rng.choice(self.buildings)[1]}{self.rng.choice(DESCRIPTIONS)} 139{self.rng.randrange(10**8):08d}"]
        response = self.client.post("/patrol/groupchat", data={"csrf_token": self.csrf, "text": "\n".join(lines)})
        self.page = response.get_data(as_text=True)
        return response

    def read_drafts(self) -> None:
        """The drafts as the last paste's page shows them (not timed)."""
        self.drafts = form_fields(self.page, "/patrol/groupchat/file")

    def file(self, i: int) -> Any:
        fields = [(name, value or (str(self.rng.choice(self.buildings)[0]) if name.endswith("-building_id") else value))
                  for name, value in self.drafts if not name.endswith("-category_id") or value]
        fields += [(name, str(self.rng.choice(self.categories))) for name, value in self.drafts
                   if name.endswith("-category_id") and not value]  # chosen by hand where not guessed
        return self.client.post("/patrol/groupchat/file", data=MultiDict(fields))


def run(app: Flask, n: int, warmup: int, show: bool = False) -> dict[str, dict[str, list[float]]]:
    """Post alternately through each door; per door, statements, lazy loads and ms per request."""
    staff, forms, web, staff_key = bodies(app, n + warmup)
    rng = random.Random(11)
    patrol = Patrol(app, rng)
    chat = GroupChat(app, rng, patrol.categories)
    counter = Counter()
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", counter.statement)
    event.listen(Session, "do_orm_execute", counter.orm)
    client = app.test_client()
    page = client.get("/report").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    if csrf is None:
        sys.exit("no CSRF token on /report")
    results: dict[str, dict[str, list[float]]] = {door: {"statements": [], "lazy": [], "ms": [], "cpu": []}
                                                  for door in ("staff API", "Open311", "web form", "patrol",
                                                               "chat paste", "chat file")}
    try:
        for i in range(n + warmup):
            for door in results:
                if door == "chat file":
                    chat.read_drafts()
                counter.reset()
                started, cpu = time.perf_counter(), time.process_time()
                if door == "staff API":
                    response = client.post("/api/v1/tickets", json=staff[i],
                                           headers={"Authorization": f"Bearer {staff_key}"})
                elif door == "Open311":
                    response = client.post("/open311/v2/requests.json", data=forms[i])
                elif door == "web form":
                    response = client.post("/report", data={**web[i], "csrf_token": csrf.group(1)},
                                           content_type="multipart/form-data")
                elif door == "patrol":
                    response = patrol.post(i)
                elif door == "chat paste":
                    response = chat.paste(i)
                else:
                    response = chat.file(i)
                elapsed = (time.perf_counter() - started) * 1000
                cpu_ms = (time.process_time() - cpu) * 1000
                if door == "patrol":
                    patrol.read_flash()
                if response.status_code not in (201, 303) and not (door == "chat paste" and response.status_code == 200):
                    sys.exit(f"{door}: {response.status_code} {response.get_data(as_text=True)[:300]}")
                if show and i == n + warmup - 1:
                    print(f"--- {door}: the last request's statements", *counter.last, sep="\n  ")
                if i >= warmup:
                    results[door]["statements"].append(counter.statements)
                    results[door]["lazy"].append(counter.lazy)
                    results[door]["ms"].append(elapsed)
                    results[door]["cpu"].append(cpu_ms)
    finally:
        event.remove(Session, "do_orm_execute", counter.orm)
        with app.app_context():
            event.remove(db.engine, "before_cursor_execute", counter.statement)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("database_url", nargs="?", help="an empty (or scratch) database; default SQLite")
    parser.add_argument("-n", type=int, default=200, help="requests per door, after the warm-up")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--redis", help="count rate limits in this Redis, as production does")
    parser.add_argument("--show", action="store_true", help="print the last request's statements of each door")
    args = parser.parse_args()
    app = build_app(args.database_url, args.redis)
    results = run(app, args.n, args.warmup, args.show)
    print(f"{'door':<10} {'stmts med':>9} {'mean':>6} {'lazy med':>8} {'ms p50':>7} {'ms mean':>7} {'ms p90':>7} "
          f"{'cpu ms':>7}")
    for door, r in results.items():
        ms = sorted(r["ms"])
        print(f"{door:<10} {statistics.median(r['statements']):>9.0f} {statistics.mean(r['statements']):>6.1f} "
              f"{statistics.median(r['lazy']):>8.0f} {statistics.median(ms):>7.2f} {statistics.mean(ms):>7.2f} "
              f"{ms[int(len(ms) * 0.9)]:>7.2f} {statistics.mean(r['cpu']):>7.2f}")


if __name__ == "__main__":
    main()
