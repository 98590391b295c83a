"""The demo's 回访: the older callback tasks worked as a community office would.

The tickets of the demo open their callback tasks themselves (services/callbacks.py
listens to their events). Here the tasks opened more than a day before `now` are
called, by the dispatcher of the ticket's community, a few hours after they opened
(and after the ticket's last change): most residents are reached and say the problem
is solved, those who came in person giving their rating on the phone; every fifth is
not reached three times; every seventh is left open, overdue. The newer ones stay in
the queue.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from ticketing.extensions import db
from ticketing.models import CallbackState, CallbackTask, Rating, Role
from ticketing.services import callbacks
from ticketing.services.callbacks import Outcome
from ticketing.services.workdays import WorkCalendar

if TYPE_CHECKING:
    from ticketing.demo import DemoWorld

WORKED_AFTER = timedelta(days=1)
NOTES = ("居民表示问题已解决，感谢社区。", "居民说已经修好了，希望以后维护及时。", "居民对处理结果认可。")


def work_demo_callbacks(world: DemoWorld, now: datetime, calendar: WorkCalendar) -> int:
    """Record the outcome of the demo's older callbacks; commits. Returns how many were worked."""
    worked = 0
    tasks = db.session.scalars(select(CallbackTask).where(
        CallbackTask.state == CallbackState.OPEN, CallbackTask.created_at < now - WORKED_AFTER)
        .order_by(CallbackTask.id)).all()
    for task in tasks:
        if task.id % 7 == 0:
            continue
        ticket = task.ticket
        caller = (world.staff(Role.DISPATCHER, ticket.community) or world.staff(Role.DISPATCHER, None))[0]
        # After everything already on the ticket: two tasks of one ticket are worked in turn.
        last = max((event.at for event in ticket.events), default=ticket.updated_at)
        at = max(task.created_at + timedelta(hours=3), ticket.updated_at + timedelta(minutes=5),
                 last + timedelta(minutes=5))
        if task.id % 5 == 0:
            for attempt in range(callbacks.MAX_ATTEMPTS):
                callbacks.record_outcome(task, caller, Outcome(False, note="无人接听"),
                                         at + timedelta(hours=4 * attempt), calendar)
        else:
            # Residents who came in person rate on the phone; the others keep their silence.
            rating = (Rating.SATISFIED if task.id % 3 else Rating.BASIC) if task.reason == "staff_entry" else None
            callbacks.record_outcome(task, caller, Outcome(True, True, rating=rating, note=NOTES[task.id % 3]),
                                     at, calendar)
        db.session.commit()
        worked += 1
    return worked
