"""The per-street and per-community roll-ups of a day's grid ledgers (models/rollups.py).

`write` is called by the compile (services/ledger.py `compile_day`, the nightly one
and today's every 10 minutes alike) after it has written the grid ledgers, in the
same transaction: it adds up again, from the `ledgers` table, every grid of each
street and community it touched, so a recompile of one grid leaves its street's
and community's rows equal to the sum of their grid ledgers, by the rules of
services/ledger_report.py:

- flows, rate parts, callbacks, stocks of the day, counts and sums of durations:
  sums over the grids (a stock is summed over grids, never over days);
- the 90th percentiles: the largest of the grids';
- by channel, category and state: the JSON objects of counts added key by key;
- `ledgers`: how many grid ledgers, `compiled_at`: the oldest of their compiles.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from ticketing.extensions import db
from ticketing.models import CommunityDay, Ledger, StreetDay

# The columns added up as they are; their names are the same in Ledger and the roll-ups.
SUMMED = ("new", "dispatched", "accepted", "resolved", "closed", "escalated", "reopened",
          "patrol_new", "patrol_resolved", "open_at_end", "overdue_at_end", "on_hold_at_end",
          "response_num", "response_den", "resolution_num", "resolution_den",
          "satisfaction_num", "satisfaction_den", "callback_due", "callback_in_time", "callback_reached",
          "accept_n", "accept_total_s", "resolve_n", "resolve_total_s", "hold_n", "hold_total_s")
HIGHEST = ("accept_p90_s", "resolve_p90_s")
BREAKDOWNS = ("by_channel", "by_category", "by_status")


def write(day: date, street_ids: Iterable[int], community_ids: Iterable[int]) -> None:
    """Add up (again) the grid ledgers of `day` of these streets and communities; the
    caller commits (the compile, with the grid ledgers)."""
    streets, communities = sorted(set(street_ids)), sorted(set(community_ids))
    if streets:
        _write(StreetDay, ("street_id",), streets, day)
    if communities:
        _write(CommunityDay, ("community_id", "street_id"), communities, day)


def _write(model: Any, keys: tuple[str, ...], ids: list[int], day: date) -> None:
    place = getattr(Ledger, keys[0])
    in_day = (Ledger.day == day, place.in_(ids))
    # A community's street: its grids' (the same for all, unless it moved between compiles).
    others = [func.max(getattr(Ledger, name)).label(name) for name in keys[1:]]
    rows: dict[int, dict[str, Any]] = {}
    for row in db.session.execute(
            select(place.label(keys[0]), *others, func.count().label("ledgers"),
                   func.min(Ledger.compiled_at).label("compiled_at"),
                   *(func.sum(getattr(Ledger, name)).label(name) for name in SUMMED),
                   *(func.max(getattr(Ledger, name)).label(name) for name in HIGHEST))
            .where(*in_day).group_by(place)).mappings():
        rows[row[keys[0]]] = {**{k: row[k] for k in keys}, "day": day, "ledgers": row["ledgers"],
                              "compiled_at": row["compiled_at"], **{name: int(row[name] or 0) for name in SUMMED},
                              **{name: row[name] for name in HIGHEST}}
    # The JSON objects of counts, added key by key here: a few thousand small objects at most.
    counts: dict[int, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for place_id, *breakdowns in db.session.execute(
            select(place, *(getattr(Ledger, name) for name in BREAKDOWNS)).where(*in_day)):
        for name, value in zip(BREAKDOWNS, breakdowns, strict=True):
            counts[place_id][name].update(value or {})
    for place_id, values in rows.items():
        values.update({name: dict(sorted(counts[place_id][name].items())) for name in BREAKDOWNS})
    # A place none of whose grids has a ledger of the day any more (they moved) has no row.
    gone = [place_id for place_id in ids if place_id not in rows]
    if gone:
        db.session.execute(delete(model).where(getattr(model, keys[0]).in_(gone), model.day == day))
    if not rows:
        return
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(model.__table__)
    index = [keys[0], "day"]
    db.session.execute(statement.on_conflict_do_update(
        index_elements=index,
        set_={c.name: statement.excluded[c.name] for c in model.__table__.c if c.name not in ("id", *index)}),
        list(rows.values()))
