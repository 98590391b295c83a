"""Pieces of SQL the services share.

`by_key(model, key, statement, params)` is `Session.get` with a statement built once:
the row from the session when it holds it, else `statement` run with `params`
(Session.get builds its SELECT anew every time, which on a read made for every
request cost more than the read).

`among(column, ids)` is `column IN ids` written so that PostgreSQL sees the same
statement text however many ids there are: one array parameter (`= ANY(%(ids)s)`)
instead of one parameter per id. A statement whose text changes with the length of
its list is parsed and planned anew on every run; routing a batch of tickets runs
half a dozen such statements per batch, and planning the ticket load alone (six
tables joined) cost more database CPU than the rest of a ticket's filing. With one
text, psycopg prepares the statement after a few runs and PostgreSQL keeps its plan.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Integer, Select, String, any_, bindparam, false
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm.util import identity_key

from ticketing.extensions import db

T = TypeVar("T")


def by_key(model: type[T], key: Any, statement: Select[tuple[T]], params: Mapping[str, Any]) -> T | None:
    """The `model` row with primary key `key`: from the session if it holds it, else by
    `statement` (built once by the caller, selecting that row by `params`)."""
    held: T | None = db.session.identity_map.get(identity_key(model, key))
    return held if held is not None else db.session.scalar(statement, params)


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
