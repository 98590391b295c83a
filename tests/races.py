"""Work released at the same moment, each part in a thread, app context and session of
its own: the race tests (PostgreSQL, where two transactions really run at once)."""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from flask import Flask

from ticketing.extensions import db

T = TypeVar("T")


def read_then_at_once(app: Flask, tasks: Sequence[Callable[[], Callable[[], T]]]) -> list[T | Exception]:
    """Each task in its own thread and session: called first, to read what it needs; then,
    all released together, the callable it returned runs. What each returned or raised (an
    `Exception`; anything else fails the test), in the order they finished."""
    barrier = threading.Barrier(len(tasks))
    ended: list[T | Exception] = []
    failed: list[BaseException] = []

    def run(task: Callable[[], Callable[[], T]]) -> None:
        with app.app_context():
            try:
                act = task()
                barrier.wait(timeout=10)
                ended.append(act())
            except Exception as exc:  # noqa: BLE001 - the caller judges it
                ended.append(exc)
            except BaseException as exc:  # noqa: BLE001 - reported below, in the test's thread
                failed.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(task,)) for task in tasks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failed, failed
    assert len(ended) == len(tasks), "a thread did not finish"
    return ended


def at_once(app: Flask, acts: Sequence[Callable[[], T]]) -> list[T]:
    """Each act in its own thread and session, all released together; what each returned,
    in the order they finished. None may raise."""
    ended = read_then_at_once(app, [lambda act=act: act for act in acts])
    errors = [outcome for outcome in ended if isinstance(outcome, Exception)]
    assert errors == [], errors
    return ended  # type: ignore[return-value]  # none is an Exception, checked above
