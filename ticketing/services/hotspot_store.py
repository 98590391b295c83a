"""Writing a run of the recurring problems (services/hotspots.py) in bulk.

A 5-million-ticket street can have tens of thousands of clusters a night and twenty
sampled tickets each: on PostgreSQL they go in by COPY, ids drawn from the table's
sequence first (an INSERT … RETURNING of 13,000 wide rows took 9 s, COPY 1 s);
elsewhere (SQLite) by an ordinary executemany. The caller's transaction holds it all.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, delete, insert, text

from ticketing.extensions import db
from ticketing.models import Hotspot, HotspotTicket

SPOT_COLUMNS = tuple(c.key for c in Hotspot.__table__.c if c.key != "id")
LINK_COLUMNS = ("hotspot_id", "ticket_id", "position")


def write(spots: Sequence[dict[str, Any]], samples: Sequence[Sequence[int]]) -> None:
    """Insert the clusters (column values, `run_id` included) and their sampled tickets, in order."""
    if not spots:
        return
    if db.session.get_bind().dialect.name == "postgresql":
        ids = list(db.session.scalars(text("SELECT nextval(pg_get_serial_sequence('hotspots', 'id')) "
                                           "FROM generate_series(1, :n)"), {"n": len(spots)}))
        _copy("hotspots", ("id", *SPOT_COLUMNS), ([i, *(_plain(row[c]) for c in SPOT_COLUMNS)]
                                                 for i, row in zip(ids, spots, strict=True)))
    else:
        ids = list(db.session.scalars(insert(Hotspot).returning(Hotspot.id, sort_by_parameter_order=True),
                                      [dict(row) for row in spots]))
    links = [(spot_id, ticket_id, position) for spot_id, sample in zip(ids, samples, strict=True)
             for position, ticket_id in enumerate(sample)]
    if not links:
        return
    if db.session.get_bind().dialect.name == "postgresql":
        _copy("hotspot_tickets", LINK_COLUMNS, links)
    else:
        db.session.execute(insert(HotspotTicket), [dict(zip(LINK_COLUMNS, link, strict=True)) for link in links])


def _plain(value: Any) -> Any:
    """A value as COPY takes it: JSON columns as their text."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else value


def _copy(table: str, columns: Sequence[str], rows: Any) -> None:
    """COPY rows into a table through the session's own connection (its transaction)."""
    connection = db.session.connection().connection.driver_connection
    assert connection is not None
    with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def forget(spots: Select[Any]) -> None:
    """Delete these clusters and their ticket links."""
    db.session.execute(delete(HotspotTicket).where(HotspotTicket.hotspot_id.in_(spots)))
    db.session.execute(delete(Hotspot).where(Hotspot.id.in_(spots)))
