"""Duplicate hints: the 72-hour rule, scope, the ticket page's one-click merges, the queue badge."""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event, select

from tests.conftest import csrf_token, login
from tests.factories import PHONE, T0, TZ, World, advance, calendar, make_ticket
from ticketing.extensions import db
from ticketing.models import Building, Complex, Status, Ticket, TicketEvent, utcnow
from ticketing.services import duplicates, intake
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore

# These tests read the English labels; Chinese is checked in test_translations.
pytestmark = pytest.mark.usefixtures("english")

HOUR = timedelta(hours=1)


def file_in_complex(world: World, store: PhotoStore, cx: Complex, now: datetime = T0,
                    category: str = "repair.stair_light") -> Ticket:
    """A ticket placed at complex level only, with no building."""
    ticket, _ = intake.submit(intake.IntakeRequest(
        channel="web", description="院里路灯坏了", phone=PHONE,
        category_id=world.category(category).id, complex_id=cx.id,
    ), Actor.resident(), now, TZ, store, 5 * 1024 * 1024, route=False)
    return ticket


def numbers(tickets: list[Ticket]) -> list[str]:
    return [t.number for t in tickets]


def reload(ticket: Ticket) -> Ticket:
    db.session.expire_all()
    return db.session.get(Ticket, ticket.id)  # type: ignore[return-value]


def page_of(client: FlaskClient, ticket: Ticket) -> str:
    response = client.get(f"/tickets/{ticket.number}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def duplicates_section(html: str) -> str:
    found = re.search(r'<section class="card duplicates".*?</section>', html, re.DOTALL)
    return found.group(0) if found else ""


def merge_forms(html: str) -> list[tuple[str, str]]:
    """(action URL, hidden target) of each one-click merge form of the duplicates section."""
    return re.findall(
        r'<form method="post" action="([^"]+/act/merge)">.*?name="target" value="([^"]+)"',
        duplicates_section(html), re.DOTALL,
    )


# The rule


def test_a_ticket_at_the_same_building_and_category_within_72_hours_is_a_candidate_both_ways(
    world: World, store: PhotoStore,
) -> None:
    older = make_ticket(world, store, now=T0)
    newer = make_ticket(world, store, now=T0 + 71 * HOUR)
    assert duplicates.candidates(newer, world.dora, T0 + 71 * HOUR) == [older]
    assert duplicates.candidates(older, world.dora, T0 + 71 * HOUR) == [newer]


def test_tickets_more_than_72_hours_apart_are_not_candidates(world: World, store: PhotoStore) -> None:
    older = make_ticket(world, store, now=T0)
    newer = make_ticket(world, store, now=T0 + 73 * HOUR)
    assert duplicates.candidates(newer, world.dora, T0 + 73 * HOUR) == []
    assert duplicates.candidates(older, world.dora, T0 + 73 * HOUR) == []


def test_another_building_of_the_same_complex_is_not_a_candidate(world: World, store: PhotoStore) -> None:
    second = Building(name="2号楼", complex=world.courtyard)
    db.session.add(second)
    db.session.commit()
    make_ticket(world, store, now=T0, building=second)
    ticket = make_ticket(world, store, now=T0 + HOUR)
    assert duplicates.candidates(ticket, world.dora, T0 + HOUR) == []


def test_another_category_is_not_a_candidate(world: World, store: PhotoStore) -> None:
    make_ticket(world, store, now=T0, category="repair.water_leak")
    ticket = make_ticket(world, store, now=T0 + HOUR)
    assert duplicates.candidates(ticket, world.dora, T0 + HOUR) == []


@pytest.mark.parametrize("status", ["resolved", "closed"])
def test_a_ticket_no_longer_open_is_not_a_candidate(world: World, store: PhotoStore, status: str) -> None:
    advance(make_ticket(world, store, now=T0), status, world)
    ticket = make_ticket(world, store, now=T0 + HOUR)
    assert duplicates.candidates(ticket, world.dora, T0 + HOUR) == []


def test_tickets_in_progress_are_candidates(world: World, store: PhotoStore) -> None:
    held = advance(make_ticket(world, store, now=T0), "on_hold", world)
    ticket = make_ticket(world, store, now=T0 + HOUR)
    assert duplicates.candidates(ticket, world.dora, T0 + HOUR) == [held]


def test_a_merged_ticket_has_no_hints(world: World, store: PhotoStore) -> None:
    target = make_ticket(world, store, now=T0)
    ticket = make_ticket(world, store, now=T0 + HOUR)
    perform(ticket, "merge", Actor.staff(world.dora), T0 + HOUR, calendar(), target=target)
    db.session.commit()
    assert duplicates.candidates(ticket, world.dora, T0 + HOUR) == []
    assert duplicates.candidates(target, world.dora, T0 + HOUR) == []


def test_candidates_are_only_those_the_viewer_may_see(world: World, store: PhotoStore) -> None:
    older = make_ticket(world, store, now=T0)  # grid A1: gina's grid, not greg's
    newer = advance(make_ticket(world, store, now=T0 + HOUR), "dispatched", world, handler=world.greg)
    assert duplicates.candidates(newer, world.greg, T0 + HOUR) == []
    assert duplicates.candidates(newer, world.dora, T0 + HOUR) == [older]
    assert duplicates.candidates(newer, world.gina, T0 + HOUR) == [older]


def test_candidates_are_newest_first_and_bounded(world: World, store: PhotoStore) -> None:
    made = [make_ticket(world, store, now=T0 + i * HOUR) for i in range(7)]
    ticket = made[-1]
    found = duplicates.candidates(ticket, world.dora, T0 + 7 * HOUR)
    assert numbers(found) == numbers(list(reversed(made[1:-1])))[:duplicates.LIMIT]


def test_a_ticket_without_a_building_hints_at_the_same_complex(world: World, store: PhotoStore) -> None:
    at_building = make_ticket(world, store, now=T0)
    loose = file_in_complex(world, store, world.courtyard, now=T0 + HOUR)
    assert duplicates.candidates(loose, world.dora, T0 + HOUR) == [at_building]
    assert duplicates.candidates(at_building, world.dora, T0 + HOUR) == [loose]
    other_complex = file_in_complex(world, store, world.managed, now=T0 + HOUR)
    assert duplicates.candidates(other_complex, world.dora, T0 + HOUR) == []


def test_same_building_hints_come_before_same_complex_ones(world: World, store: PhotoStore) -> None:
    same_building = make_ticket(world, store, now=T0)
    loose = file_in_complex(world, store, world.courtyard, now=T0 + 2 * HOUR)
    ticket = make_ticket(world, store, now=T0 + 3 * HOUR)
    assert duplicates.candidates(ticket, world.dora, T0 + 3 * HOUR) == [same_building, loose]


def test_a_ticket_placed_only_in_a_community_gets_no_hints(world: World, store: PhotoStore) -> None:
    ticket, _ = intake.submit(intake.IntakeRequest(
        channel="web", description="路口积水", phone=PHONE,
        category_id=world.category("repair.stair_light").id, community_id=world.community_a.id,
    ), Actor.resident(), T0, TZ, store, 5 * 1024 * 1024, route=False)
    file_in_complex(world, store, world.courtyard, now=T0)
    assert duplicates.candidates(ticket, world.dora, T0) == []


# The ticket page


def test_the_dispatcher_sees_the_hint_with_number_category_time_and_masked_requester(
    client: FlaskClient, world: World, store: PhotoStore,
) -> None:
    older = make_ticket(world, store, now=T0, phone="13900001234", name="李四光")
    newer = make_ticket(world, store, now=T0 + HOUR)
    login(client, world.dora)
    section = duplicates_section(page_of(client, newer))
    assert "Possible duplicates" in section
    assert older.number in section and f'href="/tickets/{older.number}"' in section
    assert "same building" in section
    assert "2026-11-18 10:00" in section  # T0 in Shanghai time
    assert "139****1234" in section and "13900001234" not in section
    assert "李四光" not in section and "李**" not in section and "2单元301" not in section
    assert "楼道灯不亮" in section


def test_the_merge_button_merges_this_ticket_into_the_other_one(
    client: FlaskClient, world: World, store: PhotoStore,
) -> None:
    older = make_ticket(world, store, now=T0)
    newer = make_ticket(world, store, now=T0 + HOUR)
    login(client, world.dora)
    forms = merge_forms(page_of(client, newer))
    assert (f"/tickets/{newer.number}/act/merge", older.number) in forms
    response = client.post(f"/tickets/{newer.number}/act/merge", data={
        "csrf_token": csrf_token(client, f"/tickets/{newer.number}"), "target": older.number,
    })
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/tickets/{newer.number}")
    newer = reload(newer)
    assert newer.status == Status.MERGED and newer.merged_into_id == older.id
    merge = db.session.scalar(select(TicketEvent).where(
        TicketEvent.ticket_id == newer.id, TicketEvent.action == "merge"))
    assert merge is not None and merge.actor_id == world.dora.id
    assert merge.detail["merged_into"] == older.number
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "The ticket was merged." in html
    assert duplicates_section(html) == ""


def test_the_reverse_button_merges_the_other_ticket_into_this_one(
    client: FlaskClient, world: World, store: PhotoStore,
) -> None:
    older = advance(make_ticket(world, store, now=T0), "accepted", world)
    newer = make_ticket(world, store, now=T0 + HOUR)
    login(client, world.dora)
    # The older one is in progress: it can take the newer one, but not be merged itself.
    forms = merge_forms(page_of(client, older))
    assert forms == [(f"/tickets/{newer.number}/act/merge", older.number)]
    response = client.post(forms[0][0], data={
        "csrf_token": csrf_token(client, f"/tickets/{older.number}"), "target": forms[0][1],
    })
    assert response.status_code == 303
    assert reload(newer).merged_into_id == older.id
    assert reload(older).status == Status.ACCEPTED


def test_a_grid_worker_sees_the_hint_but_no_merge_button(
    client: FlaskClient, world: World, store: PhotoStore,
) -> None:
    older = make_ticket(world, store, now=T0)
    newer = make_ticket(world, store, now=T0 + HOUR)
    login(client, world.gina)
    html = page_of(client, newer)
    assert older.number in duplicates_section(html)
    assert merge_forms(html) == []
    assert "Merge this ticket into" not in html


def test_a_page_without_duplicates_has_no_hint_section(
    client: FlaskClient, world: World, store: PhotoStore,
) -> None:
    ticket = make_ticket(world, store, now=T0)
    login(client, world.dora)
    assert duplicates_section(page_of(client, ticket)) == ""


def test_a_walk_in_ticket_with_a_similar_open_one_says_so_after_filing(
    client: FlaskClient, world: World, store: PhotoStore,
) -> None:
    older = make_ticket(world, store, now=utcnow() - HOUR)
    login(client, world.dora)
    response = client.post("/console/new", data={
        "csrf_token": csrf_token(client, "/console/new"), "channel": "walk_in",
        "category_id": str(world.category("repair.stair_light").id),
        "community_id": str(world.community_a.id), "complex_id": str(world.courtyard.id),
        "building_id": str(world.building_courtyard.id), "description": "楼道灯又坏了",
        "name": "王五", "phone": "13700001111",
    }, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert f"A similar open ticket exists: {older.number}" in html


# The queue


@pytest.fixture()
def statements() -> Iterator[list[str]]:
    recorded: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        recorded.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    yield recorded
    event.remove(db.engine, "before_cursor_execute", record)


def queue_items(html: str) -> dict[str, str]:
    """Ticket number → the item's HTML, for the queue's list."""
    return {
        m.group(1): m.group(0)
        for m in re.finditer(r'<li class="ticket-item console-item.*?class="title" href="/tickets/([0-9-]+)".*?</li>', html, re.DOTALL)
    }


def test_the_queue_marks_tickets_that_have_a_possible_duplicate(
    client: FlaskClient, world: World, store: PhotoStore,
) -> None:
    first = make_ticket(world, store, now=T0)
    second = make_ticket(world, store, now=T0 + HOUR)
    lone = make_ticket(world, store, now=T0, building=world.building_west)
    late = make_ticket(world, store, now=T0 + 100 * HOUR, building=world.building_west)
    login(client, world.dora)
    items = queue_items(client.get("/console/?tab=awaiting").get_data(as_text=True))
    assert set(items) == {first.number, second.number, lone.number, late.number}
    assert "Possible duplicate" in items[first.number] and "Possible duplicate" in items[second.number]
    assert "Possible duplicate" not in items[lone.number] and "Possible duplicate" not in items[late.number]


def test_the_queue_badge_respects_scope(world: World, store: PhotoStore) -> None:
    mine = advance(make_ticket(world, store, now=T0), "dispatched", world, handler=world.greg)
    make_ticket(world, store, now=T0 + HOUR)  # grid A1: not greg's
    flagged = duplicates.flagged([mine], world.greg)
    assert flagged == set()
    assert duplicates.flagged([mine], world.dora) == {mine.id}


def test_the_queue_badge_costs_one_query_whatever_the_page_holds(
    client: FlaskClient, world: World, store: PhotoStore, statements: list[str],
) -> None:
    login(client, world.dora)
    counts = []
    for start, more in ((0, 4), (4, 16)):
        for i in range(start, start + more):
            building = [world.building_courtyard, world.building_managed, world.building_west][i % 3]
            make_ticket(world, store, now=T0 + i * HOUR, building=building)
        statements.clear()
        html = client.get("/console/?tab=all").get_data(as_text=True)
        counts.append(len(statements))
        assert "Possible duplicate" in html
    assert counts[0] == counts[1], counts
    tickets, dora = list(db.session.scalars(select(Ticket))), world.dora
    assert dora.community_id is not None  # loaded before counting
    statements.clear()
    assert len(duplicates.flagged(tickets, dora)) == 20
    assert len(statements) == 1
