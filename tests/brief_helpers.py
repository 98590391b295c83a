"""The small world of the morning-brief tests (tests/test_brief*.py).

Thursday 2026-11-19, 08:00 in Shanghai, a working day. Community A (sam's) has:

    due      dispatched to gina in A1, accept-by today 17:00: breaches later today
    late     accepted by greg in A2, resolve-by yesterday 18:00: overdue
    flagged  accepted by gina in A1, resolve-by next week, flagged 督办
    called   resolved in A1, with a 回访 due today 18:00

Community B, which only sue (the street's supervisor) sees:

    far      accepted by gabe in B1, resolve-by the 17th 18:00: overdue, the longest

Yesterday's ledgers (the 18th) are written by hand: A1 12 new, 9 resolved, 响应率
18/20, 解决率 3/4 (too few to show), 满意率 9/10; A2 and B1 one new ticket each.
"""
from __future__ import annotations

from datetime import UTC, date, datetime

from tests.factories import TZ, World, advance, make_ticket
from ticketing.extensions import db
from ticketing.models import CallbackState, CallbackTask, Grid, Ledger, Ticket
from ticketing.services.photos import PhotoStore

TODAY = date(2026, 11, 19)
YESTERDAY = date(2026, 11, 18)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A Shanghai time in November 2026, as the aware UTC time it is stored as."""
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ).astimezone(UTC)


NOW = local(19, 8)


def ledger(grid: Grid, new: int, resolved: int = 0, rates: tuple[int, ...] = (0,) * 6) -> Ledger:
    """A compiled ledger of the 18th for `grid`, with the 三率 as (num, den) × 3."""
    response_num, response_den, resolution_num, resolution_den, satisfaction_num, satisfaction_den = rates
    row = Ledger(grid_id=grid.id, community_id=grid.community_id, street_id=grid.community.street_id,
                 day=YESTERDAY, compiled_at=local(19, 0, 10), new=new, resolved=resolved,
                 response_num=response_num, response_den=response_den, resolution_num=resolution_num,
                 resolution_den=resolution_den, satisfaction_num=satisfaction_num,
                 satisfaction_den=satisfaction_den, by_channel={}, by_category={}, by_status={})
    db.session.add(row)
    return row


def brief_world(world: World, store: PhotoStore) -> dict[str, Ticket]:
    """File and work the tickets described above, write yesterday's ledgers; commits."""
    t: dict[str, Ticket] = {}
    t["due"] = advance(make_ticket(world, store, now=local(19, 7)), "dispatched", world, now=local(19, 7))
    t["due"].accept_due_at = local(19, 17)
    t["late"] = advance(make_ticket(world, store, now=local(16, 9), building=world.building_west), "accepted",
                        world, now=local(16, 10), handler=world.greg)
    t["late"].resolve_due_at = local(18, 18)
    t["flagged"] = advance(make_ticket(world, store, now=local(18, 9)), "accepted", world, now=local(18, 10))
    t["flagged"].resolve_due_at, t["flagged"].supervised = local(25, 18), True
    t["called"] = advance(make_ticket(world, store, now=local(16, 9)), "resolved", world, now=local(16, 12))
    db.session.add(CallbackTask(ticket_id=t["called"].id, reason="staff_entry", work_round=0,
                                state=CallbackState.OPEN, version=1, created_at=local(17, 18),
                                due_at=local(19, 18), attempts=0, attempt_log=[], rating_recorded=False,
                                redone=False, note=""))
    t["far"] = advance(make_ticket(world, store, now=local(15, 9), building=world.building_east), "accepted",
                       world, now=local(15, 10), handler=world.gabe)
    t["far"].resolve_due_at = local(17, 18)
    ledger(world.grid_a1, 12, 9, (18, 20, 3, 4, 9, 10))
    ledger(world.grid_a2, 1)
    ledger(world.grid_b1, 1)
    db.session.commit()
    return t
