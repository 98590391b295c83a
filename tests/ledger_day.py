"""The hand-worked day of the ledger tests, shared by tests/test_ledger*.py.

The day is Wednesday 2026-11-18 in Shanghai: [17th 16:00Z, 18th 16:00Z). Times below
are local. Grid A1 (gina) and A2 (greg) have the tickets; B1 has none.

A1  t1  filed 17th 23:59; dispatched 08:00 (accept-by 10:00), accepted 08:30,
        resolved 12:00, rated satisfied 13:00
    t2  filed 00:01 (web); dispatched 09:00 (accept-by 11:00), accepted 10:00;
        resolve-by the 20th
    t3  filed 23:59 (walk-in); still submitted
    t4  filed 19th 00:01: another day
    t5  filed 16th 10:00, resolved 17th; reopened 09:00, resolved 15:00, rated basic 16:00
    t6  filed 15th, submitted, untouched on the day
    t7  filed 17th, dispatched 17th (accept-by 17th 12:00), never accepted
    t8  filed 10:00 (web); dispatched 11:00 (accept-by 23:00); accepted on the 19th
A2  u1  filed 10:00 (phone); dispatched 10:30 (accept-by 12:00), expired 12:30
    u2  filed 09:00 (web); dispatched 09:10 (accept-by 09:15), accepted 09:20 (late)
    u3  filed 08:00 (web); dispatched 08:10 (accept-by 09:00), accepted 08:20, escalated 14:00

The days around it, for roll-ups (tests/test_ledger_rollup.py):
    17th  A1: t1 and t7 filed, t7 dispatched, t5 resolved (23 h after filing);
          open at the end t1, t6, t7 (t7 past its accept-by): 3, 1 overdue. A2: nothing.
    19th  A1: t4 filed, t8 accepted late (22 h after dispatch); open at the end t2, t3,
          t4, t6, t7, t8: 6, t7 overdue. A2: nothing; u1, u2, u3 open.
Every 三率 event is gina's in A1 and greg's in A2 (u1's expiry names him).
"""
from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from tests.factories import TZ, World, calendar, make_ticket
from ticketing.extensions import db
from ticketing.models import Ticket, User
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore

DAY = date(2026, 11, 18)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A Shanghai time in November 2026, as the aware UTC time it is stored as."""
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ).astimezone(UTC)


def act(ticket: Ticket, name: str, actor: Actor, at: datetime, **params: Any) -> None:
    perform(ticket, name, actor, at, calendar(), **params)
    db.session.commit()


def dispatch(world: World, ticket: Ticket, at: datetime, accept_by: datetime, to: User) -> None:
    act(ticket, "dispatch", Actor.staff(world.dora), at, assignee=to)
    ticket.accept_due_at = accept_by  # the deadline by hand, not by the tier's working hours
    db.session.commit()


def accept(ticket: Ticket, at: datetime, by: User, resolve_by: datetime | None = None) -> None:
    act(ticket, "accept", Actor.staff(by), at)
    if resolve_by is not None:
        ticket.resolve_due_at = resolve_by
        db.session.commit()


def hand_worked_day(world: World, store: PhotoStore) -> dict[str, Ticket]:
    """File and work the tickets described above; returns them by name."""
    gina, greg = world.gina, world.greg
    a1, a2 = world.building_courtyard, world.building_west
    t: dict[str, Ticket] = {}
    t["t1"] = make_ticket(world, store, now=local(17, 23, 59), building=a1)
    dispatch(world, t["t1"], local(18, 8), local(18, 10), gina)
    accept(t["t1"], local(18, 8, 30), gina)
    act(t["t1"], "resolve", Actor.staff(gina), local(18, 12), note="已更换灯泡")
    act(t["t1"], "rate", Actor.resident(), local(18, 13), rating="satisfied")
    t["t2"] = make_ticket(world, store, now=local(18, 0, 1), building=a1)
    dispatch(world, t["t2"], local(18, 9), local(18, 11), gina)
    accept(t["t2"], local(18, 10), gina, resolve_by=local(20, 18))
    t["t3"] = make_ticket(world, store, now=local(18, 23, 59), building=a1, channel="walk_in",
                          actor=Actor.staff(world.dora))
    t["t4"] = make_ticket(world, store, now=local(19, 0, 1), building=a1)
    t["t5"] = make_ticket(world, store, now=local(16, 10), building=a1)
    dispatch(world, t["t5"], local(16, 11), local(16, 12), gina)
    accept(t["t5"], local(16, 11, 30), gina)
    act(t["t5"], "resolve", Actor.staff(gina), local(17, 9), note="已疏通")
    act(t["t5"], "reopen", Actor.resident(), local(18, 9), note="又堵了")
    act(t["t5"], "resolve", Actor.staff(gina), local(18, 15), note="更换了管道")
    act(t["t5"], "rate", Actor.resident(), local(18, 16), rating="basic")
    t["t6"] = make_ticket(world, store, now=local(15, 10), building=a1)
    t["t7"] = make_ticket(world, store, now=local(17, 9), building=a1)
    dispatch(world, t["t7"], local(17, 10), local(17, 12), gina)
    t["t8"] = make_ticket(world, store, now=local(18, 10), building=a1)
    dispatch(world, t["t8"], local(18, 11), local(18, 23), gina)
    accept(t["t8"], local(19, 9), gina)
    t["u1"] = make_ticket(world, store, now=local(18, 10), building=a2, channel="phone",
                          actor=Actor.staff(world.dora))
    dispatch(world, t["u1"], local(18, 10, 30), local(18, 12), greg)
    act(t["u1"], "expire", Actor.system(), local(18, 12, 30))
    t["u2"] = make_ticket(world, store, now=local(18, 9), building=a2)
    dispatch(world, t["u2"], local(18, 9, 10), local(18, 9, 15), greg)
    accept(t["u2"], local(18, 9, 20), greg, resolve_by=local(25, 18))
    t["u3"] = make_ticket(world, store, now=local(18, 8), building=a2)
    dispatch(world, t["u3"], local(18, 8, 10), local(18, 9), greg)
    accept(t["u3"], local(18, 8, 20), greg, resolve_by=local(25, 18))
    act(t["u3"], "escalate", Actor.staff(greg), local(18, 14), note="需要街道协调")
    return t
