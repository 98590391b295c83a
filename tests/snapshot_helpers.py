"""The `world` fixture's rows, built once per session and copied back for each test.

`build_world()` goes through the ORM: about 70 rows of reference data and people, a
flush of each, and the working of the reference data's rules; several hundred times
a session. Its rows are the same every time (ids included: every test starts from
empty tables and restarted sequences), so the session builds the world once
(`take`), keeps its rows, and each test inserts them again in one statement per
table (`restore`), which is several times quicker, and on PostgreSQL sets the
sequences where the build left them.

The `World` handed to the test then holds the objects `build_world()` returns:
persistent in the test's session and expired, as after its commit, so that reading
an attribute loads the row as it is now. Whatever `World` gains (a field, a persona)
comes along by itself; nothing here lists them.

The rows go in by plain INSERTs, which fire none of the ORM events that caches in the
process listen for: `ctx` resets those caches for every test (tests/conftest.py).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import JSON, Table, insert, inspect, null, select, text
from sqlalchemy.orm import make_transient_to_detached

from tests.factories import World, build_world
from ticketing.extensions import db

# The sequences PostgreSQL has handed values from, and the last value of each.
SEQUENCES_USED = ("SELECT sequencename, last_value FROM pg_sequences "
                  "WHERE schemaname = current_schema() AND last_value IS NOT NULL")


@dataclass(frozen=True)
class Snapshot:
    """The rows `build_world()` wrote, and how to name its objects again."""

    rows: list[tuple[Table, list[dict[str, Any]]]]  # parents before children
    sequences: dict[str, int]  # PostgreSQL only
    world: dict[str, Any]  # field -> (class, primary key), or {username: (class, key)}


def identity(obj: Any) -> tuple[type, tuple[Any, ...]]:
    state = inspect(obj)
    assert state.identity is not None, f"{obj!r} is not stored"
    return type(obj), state.identity


def take(postgres: bool) -> Snapshot:
    """Build the world on empty tables and keep its rows; commits. Leaves the rows in place."""
    world = build_world()
    names = {f.name: getattr(world, f.name) for f in fields(World)}
    keys = {name: ({username: identity(user) for username, user in value.items()} if isinstance(value, dict)
                   else identity(value)) for name, value in names.items()}
    rows = []
    for table in db.metadata.sorted_tables:
        found = [dict(row) for row in db.session.execute(select(table)).mappings()]
        if found:
            rows.append((table, found))
    sequences = {name: value for name, value in db.session.execute(text(SEQUENCES_USED))} if postgres else {}
    db.session.commit()
    return Snapshot(rows, sequences, keys)


def stored(cls: type, key: tuple[Any, ...]) -> Any:
    """The object of `cls` with primary key `key`, in the session and expired (no query)."""
    mapper = inspect(cls)
    obj = cls(**{column.key: value for column, value in zip(mapper.primary_key, key, strict=True)})
    make_transient_to_detached(obj)  # as if loaded, every attribute but the key expired
    db.session.add(obj)
    return obj


def insert_rows(table: Table, rows: list[dict[str, Any]]) -> None:
    """One INSERT of many rows; row by row where a JSON column is SQL NULL.

    A Python None bound to a JSON column is stored as JSON `null`, not as SQL NULL;
    only a per-row `null()` keeps the NULL.
    """
    json_columns = {column.name for column in table.columns if isinstance(column.type, JSON)}
    if not any(row[name] is None for row in rows for name in json_columns):
        db.session.execute(insert(table), rows)
        return
    for row in rows:
        db.session.execute(insert(table).values(
            {name: null() if name in json_columns and value is None else value for name, value in row.items()}))


def restore(snapshot: Snapshot) -> World:
    """Insert the world's rows again into empty tables; commits."""
    for table, rows in snapshot.rows:
        insert_rows(table, rows)
    if snapshot.sequences:
        values = ", ".join(f"('{name}', {value})" for name, value in snapshot.sequences.items())
        db.session.execute(text(f"SELECT setval(name, value) FROM (VALUES {values}) AS used (name, value)"))
    db.session.commit()
    objects: dict[tuple[type, tuple[Any, ...]], Any] = {}

    def again(key: tuple[type, tuple[Any, ...]]) -> Any:
        if key not in objects:
            objects[key] = stored(*key)
        return objects[key]

    return World(**{name: ({username: again(key) for username, key in value.items()} if isinstance(value, dict)
                           else again(value)) for name, value in snapshot.world.items()})
