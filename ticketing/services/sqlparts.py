"""Pieces of SQL the services share.

`among(column, ids)` is `column IN ids` written so that PostgreSQL sees the same
statement text however many ids there are: one array parameter (`= ANY(%(ids)s)`)
instead of one parameter per id. A statement whose text changes with the length of
its list is parsed and planned anew on every run; routing a batch of tickets runs
half a dozen such statements per batch, and planning the ticket load alone (six
tables joined) cost more database CPU than the rest of a ticket's filing. With one
text, psycopg prepares the statement after a few runs and PostgreSQL keeps its plan.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Integer, String, any_, bindparam, false
from sqlalchemy.dialects import postgresql

from ticketing.extensions import db


def among(column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """`column IN values` (ids or codes); on PostgreSQL one array parameter, whatever
    the number of values. No values: a condition that is false."""
    unique = sorted(set(values))
    if not unique:
        return false()
    if db.session.get_bind().dialect.name == "postgresql":
        item = String() if isinstance(unique[0], str) else Integer()
        return column == any_(bindparam(None, unique, type_=postgresql.ARRAY(item)))
    return column.in_(unique)
