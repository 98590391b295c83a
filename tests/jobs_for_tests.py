"""Jobs only the tests use, built the way real jobs are: ids in, claim first, effect once.

Their effects go to two small tables of their own (not part of the app's schema),
created by `create_tables()` and dropped by `drop_tables()`:
  test_job_runs     one row per time a job started (so a test sees a retry happened)
  test_job_effects  the effect, keyed by the job's key: a second insert is refused,
                    which is the claim that makes a re-run harmless
"""
from __future__ import annotations

import os
import time

from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.exc import IntegrityError

from ticketing.extensions import db
from workers.queues import DEFAULT, LOW, job

metadata = MetaData()
runs = Table(
    "test_job_runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(64), nullable=False),
    Column("pid", Integer, nullable=False),
)
effects = Table(
    "test_job_effects", metadata,
    Column("key", String(64), primary_key=True),
    Column("pid", Integer, nullable=False),
)


def create_tables() -> None:
    metadata.create_all(db.engine)


def drop_tables() -> None:
    metadata.drop_all(db.engine)


def run_count(key: str) -> int:
    return db.session.scalar(select(func.count()).select_from(runs).where(runs.c.key == key)) or 0


def effect_count(key: str) -> int:
    return db.session.scalar(select(func.count()).select_from(effects).where(effects.c.key == key)) or 0


def pids_of(key: str) -> list[int]:
    """The process ids that ran job `key`, in order."""
    return list(db.session.scalars(select(runs.c.pid).where(runs.c.key == key).order_by(runs.c.id)))


def _effect_once(key: str) -> bool:
    """Write the effect unless an earlier run did; True when this run wrote it."""
    try:
        db.session.execute(insert(effects).values(key=key, pid=os.getpid()))
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return False
    return True


# Retried at once by RQ when abandoned (interval 0), so a test needs no clock.
@job(queue=LOW, timeout=60, retries=1, backoff=(0,))
def effect_then_sleep(key: str, seconds: float) -> str:
    """Record the run, do the effect once, then (on the first run only) sleep.

    The sleep is where a test kills the worker: the effect is committed, the job
    is not finished, and its retry must not do the effect again.
    """
    db.session.execute(insert(runs).values(key=key, pid=os.getpid()))
    db.session.commit()
    wrote = _effect_once(key)
    if run_count(key) == 1:
        db.session.commit()  # end the read: hold no transaction while sleeping
        time.sleep(seconds)
    return "effect" if wrote else "effect already done"


@job(queue=DEFAULT, timeout=30, retries=0)
def effect(key: str) -> str:
    """Do the effect once."""
    db.session.execute(insert(runs).values(key=key, pid=os.getpid()))
    db.session.commit()
    return "effect" if _effect_once(key) else "effect already done"


@job(queue=DEFAULT, timeout=30, retries=1, backoff=(1,))
def fails_first_time(key: str) -> str:
    """Fails on its first run (a flaky SMTP server, say); does the effect on the retry."""
    db.session.execute(insert(runs).values(key=key, pid=os.getpid()))
    db.session.commit()
    if run_count(key) == 1:
        raise RuntimeError(f"{key}: try again later")
    return "effect" if _effect_once(key) else "effect already done"


@job(queue=DEFAULT, timeout=30, retries=1, backoff=(3,))
def fails_first_time_retried_later(key: str) -> str:
    """`fails_first_time` with its retry 3 s later: time for a test to stop Redis first."""
    return fails_first_time(key)


@job(queue=LOW, timeout=30, retries=0)
def always_fails(key: str) -> str:
    """Fails every time, as a job whose target is gone for good would."""
    raise RuntimeError(f"cannot do {key}")
