"""No statement on a ticket's way in reads a big table whole.

Filing and routing a ticket runs the same few statements for every request of every
door, so one that scans a table growing with the years is paid on each ticket, and the
database's CPU grows with its age: the urgent alert's look-up of the messages already
sent once read every message ever written (106 M rows read in one 20-second county
run at 1 M tickets). Here each statement that filing and routing an urgent ticket
sends is explained with its own parameters, with sequential scans made the planner's
last resort (`enable_seqscan` off): a whole read that remains, of the table or of an
index, is one no index condition can serve, however small the test's tables are.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy.event

from tests.factories import T0, World, calendar, make_ticket, put_on_call
from ticketing.extensions import db
from ticketing.services.photos import PhotoStore
from ticketing.services.routing import route_many

pytestmark = pytest.mark.postgres

# Tables that grow with every ticket; a whole read of one is a bug on this path.
BIG = ("notifications", "tickets", "ticket_events", "outbox", "photos")


@pytest.fixture
def grown(world: World) -> World:
    """The world, with phones for the urgent alerts."""
    world.dora.phone = "13900000001"
    world.gina.phone = "13900000002"
    db.session.commit()
    return world


@pytest.fixture
def sent() -> Iterator[list[tuple[str, Any]]]:
    """The statements sent meanwhile, with their parameters (not those sent many at once)."""
    found: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if not executemany and statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "WITH")):
            found.append((statement, parameters))

    sqlalchemy.event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield found
    finally:
        sqlalchemy.event.remove(db.engine, "before_cursor_execute", record)


def whole_reads(statements: list[tuple[str, Any]]) -> list[str]:
    """The statements whose plan reads a big table whole, with the plan: a sequential
    scan, or an index read end to end (a scan with a filter and no index condition)."""
    found = []
    conn = db.session.connection()
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    for statement, parameters in statements:
        [[plan]] = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters).all()
        if any(whole_read(node) for node in nodes(plan[0]["Plan"])):
            found.append(f"{statement}\n{json.dumps(plan, indent=1)}")
    return found


def nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from nodes(child)


def whole_read(node: dict[str, Any]) -> bool:
    if node.get("Relation Name") not in BIG:
        return False
    if node["Node Type"] == "Seq Scan":
        return True
    if node["Node Type"] == "Bitmap Heap Scan":  # its index scans hold the conditions
        return any(child["Node Type"] == "Bitmap Index Scan" and "Index Cond" not in child
                   for child in nodes(node))
    return node["Node Type"] in ("Index Scan", "Index Only Scan") and "Index Cond" not in node


def test_filing_and_routing_an_urgent_ticket_reads_no_big_table_whole(
    grown: World, store: PhotoStore, sent: list[tuple[str, Any]],
) -> None:
    put_on_call(grown.gina)
    ticket = make_ticket(grown, store, category="repair.lift_trapped", description="3号楼电梯困人", route=True)
    route_many([ticket.id], T0, calendar())
    db.session.commit()
    assert ticket.assignee_id == grown.gina.id  # routed, and both alerts looked up what was sent
    assert len(sent) > 5
    assert whole_reads(sent) == []


def routing_statements(world: World, store: PhotoStore, sent: list[tuple[str, Any]], batch: int) -> set[str]:
    """The texts of the statements routing a batch of `batch` new tickets sends, each
    ticket of another category and place."""
    places = [world.building_courtyard, world.building_managed, world.building_west, world.building_east]
    categories = ["repair.stair_light", "environment.litter", "parking.disorder", "environment.pests"]  # none urgent
    tickets = [make_ticket(world, store, building=places[i % len(places)], category=categories[i % len(categories)],
                           route=True) for i in range(batch)]
    sent.clear()
    route_many([t.id for t in tickets], T0, calendar())
    db.session.commit()
    return {statement for statement, _ in sent}


def test_routing_sends_the_same_statements_for_a_batch_of_one_and_of_four(
    grown: World, store: PhotoStore, sent: list[tuple[str, Any]],
) -> None:
    """A statement whose text grew with the batch (a parameter per id, a condition per
    ticket) was parsed and planned anew for every batch; with the same texts, psycopg
    prepares them and PostgreSQL keeps their plans (services/sqlparts.py)."""
    one = routing_statements(grown, store, sent, 1)
    four = routing_statements(grown, store, sent, 4)
    assert four == one
