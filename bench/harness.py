"""What the load benchmarks share: the stack as production runs it, and CPU from /proc.

Used by bench/intake_bench.py (the staff API) and bench/doors_bench.py (every door).

- `stack_env` and `start_stack`: gunicorn (`wsgi:app`) and `flask rq worker` processes
  with DATABASE_URL, REDIS_URL and MINHU_ENV=production, as the README's production
  set-up runs them; `stop` ends a process group.
- wrk itself is driven by bench/loadgen.py.
- `cpu_seconds` (by role, over the whole machine), `tree_cpu` (a process and its
  descendants) and `machine_busy` (all cores) read clock ticks from /proc.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, select, text

PORT = 8391
# One browser for every request of a signed-in session: Flask-Login's "strong" session
# protection ties the session to the client's address and User-Agent.
USER_AGENT = "Mozilla/5.0 (Linux; Android 14) minhu-bench"
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


def sqlalchemy_url(url: str) -> str:
    """The URL with the psycopg 3 driver, as the app uses it."""
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg://", url)


# --- the stack ------------------------------------------------------------------


def stack_env(database_url: str, redis_url: str, run: str, workdir: Path, **extra: str) -> dict[str, str]:
    """The environment of the web and worker processes: production mode on this database
    and Redis, a secret of this run, the instance folder in `workdir`."""
    return dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url, MINHU_ENV="production",
                SECRET_KEY="bench-only-" + run, MINHU_INSTANCE=str(workdir), FLASK_APP="wsgi",
                PUBLIC_URL=f"http://127.0.0.1:{PORT}", PYTHONUNBUFFERED="1", **extra)


def start(cmd: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a process in a session of its own (so `stop` ends its children too)."""
    return subprocess.Popen(cmd, env=dict(env), cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group, SIGKILL after 15 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_for_port(port: int, timeout: float = 30) -> None:
    """Return once something listens on the port; exit when nothing does in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    sys.exit(f"nothing listens on port {port}; see the logs")


@dataclass
class Stack:
    """The running web and worker processes."""

    web: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self) -> None:
        for proc in (self.web, *self.workers):
            stop(proc)


def start_stack(env: Mapping[str, str], workdir: Path, web_workers: int, rq_workers: int,
                gunicorn_args: Sequence[str] = (), rq_args: Sequence[str] = ()) -> Stack:
    """gunicorn with `web_workers` workers on PORT and `rq_workers` `flask rq worker`s."""
    web = start([str(ROOT / ".venv/bin/gunicorn"), "wsgi:app", "--workers", str(web_workers),
                 "--bind", f"127.0.0.1:{PORT}", *gunicorn_args], env, workdir / "gunicorn.log")
    workers = [start([str(ROOT / ".venv/bin/flask"), "rq", "worker", *rq_args], env, workdir / f"rq{i}.log")
               for i in range(rq_workers)]
    return Stack(web, workers)


def vacuum(database_url: str) -> None:
    """VACUUM ANALYZE the tables intake and routing write.

    This machine's PostgreSQL runs with autovacuum off, and the dead rows of earlier
    runs skew the plans (the routing load count then reads every open ticket instead of
    an index range); production keeps autovacuum on.
    """
    engine = create_engine(sqlalchemy_url(database_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for table in ("tickets", "ticket_events", "outbox", "notifications", "ticket_counters", "users"):
            conn.execute(text(f"VACUUM ANALYZE {table}"))
    engine.dispose()


def hall_dispatcher() -> object:
    """A dispatcher of the whole street (service hall), made once: bench/generate.py makes
    community dispatchers only. Call in an app context."""
    from ticketing.extensions import db
    from ticketing.models import Street, User

    dispatcher = db.session.scalar(
        select(User).where(User.role == "dispatcher", User.community_id.is_(None), User.active.is_(True))
    )
    if dispatcher is None:
        street = db.session.scalar(select(Street))
        if street is None:
            sys.exit("no street in this database; run bench/generate.py first")
        dispatcher = User(username="bench-hall", display_name="bench", role="dispatcher",
                          street=street, password_hash="!")
        db.session.add(dispatcher)
        db.session.commit()
    return dispatcher


# --- CPU from /proc -------------------------------------------------------------

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


def _stat(pid: str) -> list[str]:
    """/proc/<pid>/stat's fields after the command name (state is [0], ppid [1], utime [11])."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(database: str = "") -> dict[str, float]:
    """CPU seconds used so far by the processes of each role (from /proc, in clock ticks)."""
    used = dict.fromkeys(ROLES, 0.0)
    tick = os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            if not args:  # a server process that rewrote its title: read it from ps's view
                args = Path(f"/proc/{pid}/comm").read_text().strip()
            stat = _stat(pid)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        role = role_of(args, database)
        if role is not None:
            used[role] += (int(stat[11]) + int(stat[12])) / tick
    return used


def machine_busy() -> float:
    """CPU seconds the machine's cores have been busy so far, all processes (/proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """CPU seconds of this process's ended children (wrk, once it has run)."""
    import resource

    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def own_cpu(pid: int) -> float:
    """CPU seconds the process itself used (utime + stime), children not included."""
    stat = _stat(str(pid))
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU seconds of the process and all its descendants, living or ended.

    Each process counts its own time and that of its children it has waited for
    (cutime, cstime), so a worker that ended between two readings is still counted.
    """
    children: dict[str, list[str]] = {}
    ticks: dict[str, int] = {}
    for other in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = _stat(other)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        children.setdefault(stat[1], []).append(other)
        ticks[other] = sum(int(stat[i]) for i in (11, 12, 13, 14))
    total, todo = 0, [str(pid)]
    while todo:
        current = todo.pop()
        total += ticks.get(current, 0)
        todo += children.get(current, [])
    return total / os.sysconf("SC_CLK_TCK")


def scratch_dir(prefix: str) -> Path:
    """A new folder for a run's logs, scripts and instance."""
    return Path(tempfile.mkdtemp(prefix=prefix))
