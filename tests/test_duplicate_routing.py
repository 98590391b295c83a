"""Duplicates stay together: a likely duplicate goes to the first ticket's handler (services/routing.py)."""
from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

from flask.testing import FlaskClient
from sqlalchemy import update

from tests.conftest import login
from tests.factories import T0, World, advance, calendar, make_ticket, make_user, put_on_call
from ticketing.extensions import db
from ticketing.models import Role, Status, Ticket, TicketEvent, User
from ticketing.services import routing
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore

HOUR = timedelta(hours=1)


def gwen(world: World) -> User:
    """A second grid worker of grid A1, on call and never busy; commits."""
    user = make_user("gwen", Role.GRID_WORKER, street=world.street, grids=[world.grid_a1], on_call=True)
    db.session.commit()
    return user


def busy_first(world: World, store: PhotoStore) -> Ticket:
    """The first report, in gina's hands, with gina busier than anyone else in her grid."""
    first = advance(make_ticket(world, store), "accepted", world)
    for building in (world.building_managed, world.building_west):
        advance(make_ticket(world, store, building=building, category="environment.litter"), "dispatched", world)
    return first


def dispatch_event(ticket: Ticket) -> TicketEvent:
    return [e for e in ticket.events if e.action == "dispatch"][-1]


def test_a_likely_duplicate_goes_to_the_first_tickets_handler_not_the_least_busy(
        world: World, store: PhotoStore) -> None:
    put_on_call(world.gina)
    other = gwen(world)
    first = busy_first(world, store)
    duplicate = make_ticket(world, store, now=T0 + 5 * HOUR, description="槐树院1号楼楼道灯还是不亮")
    decision = routing.route(duplicate, T0 + 5 * HOUR, calendar())
    db.session.commit()
    assert decision.routed and duplicate.assignee_id == world.gina.id != other.id
    event = dispatch_event(duplicate)
    assert first.number in event.detail["rule"] and first.number in event.detail["reason"]
    assert event.detail["rule"] == routing.text(routing._l("duplicate of %(number)s", number=first.number))


def test_a_duplicate_placed_only_at_the_complex_follows_too(world: World, store: PhotoStore) -> None:
    from tests.factories import PHONE, TZ
    from ticketing.services import intake

    put_on_call(world.gina)
    gwen(world)
    first = busy_first(world, store)
    request = intake.IntakeRequest(channel="web", description="槐树院的楼道灯坏了", phone=PHONE,
                                   category_id=world.category("repair.stair_light").id, complex_id=world.courtyard.id)
    duplicate, _ = intake.submit(request, Actor.resident(), T0 + HOUR, TZ, store, 5 * 1024 * 1024, route=False)
    routing.route(duplicate, T0 + HOUR, calendar())
    assert duplicate.assignee_id == world.gina.id and first.number in dispatch_event(duplicate).detail["rule"]


def test_another_building_another_category_or_more_than_72_hours_later_is_routed_as_usual(
        world: World, store: PhotoStore) -> None:
    put_on_call(world.gina)
    other = gwen(world)
    busy_first(world, store)
    tickets = [
        make_ticket(world, store, now=T0 + HOUR, building=world.building_managed),
        make_ticket(world, store, now=T0 + HOUR, category="environment.litter"),
        make_ticket(world, store, now=T0 + 73 * HOUR),
    ]
    for ticket in tickets:
        routing.route(ticket, T0 + 73 * HOUR, calendar())
        db.session.commit()
        assert "duplicate" not in dispatch_event(ticket).detail["rule"]
    assert tickets[2].assignee_id == other.id  # the least busy of grid A1


def test_when_the_first_handler_is_off_duty_the_duplicate_is_routed_as_usual(world: World, store: PhotoStore) -> None:
    other = gwen(world)  # gina is not on call and has no shift
    busy_first(world, store)
    duplicate = make_ticket(world, store, now=T0 + HOUR)
    routing.route(duplicate, T0 + HOUR, calendar())
    assert duplicate.assignee_id == other.id
    assert dispatch_event(duplicate).detail["rule"] != routing.text(
        routing._l("duplicate of %(number)s", number=duplicate.number))


def test_a_duplicate_does_not_go_back_to_someone_who_returned_it(world: World, store: PhotoStore) -> None:
    put_on_call(world.gina)
    other = gwen(world)
    busy_first(world, store)
    duplicate = make_ticket(world, store, now=T0 + HOUR)
    perform(duplicate, "dispatch", Actor.staff(world.dora), T0 + HOUR, calendar(), assignee=world.gina)
    perform(duplicate, "return", Actor.staff(world.gina), T0 + HOUR, calendar(), note="不是我的", reroute=False)
    db.session.commit()
    routing.route(duplicate, T0 + 2 * HOUR, calendar())
    assert duplicate.assignee_id == other.id


def test_a_duplicate_of_a_ticket_in_a_teams_queue_waits_in_the_same_queue(world: World, store: PhotoStore) -> None:
    first = make_ticket(world, store, category="elderly.help")
    perform(first, "dispatch", Actor.staff(world.dora), T0, calendar(), team=world.volunteers)
    db.session.commit()
    duplicate = make_ticket(world, store, now=T0 + HOUR, category="elderly.help")
    routing.route(duplicate, T0 + HOUR, calendar())
    assert (duplicate.assignee_id, duplicate.team_id) == (None, world.volunteers.id)
    assert first.number in dispatch_event(duplicate).detail["rule"]


def test_in_a_batch_a_duplicate_of_a_ticket_in_a_teams_queue_waits_in_the_same_queue(
        world: World, store: PhotoStore) -> None:
    first = make_ticket(world, store, category="elderly.help")
    perform(first, "dispatch", Actor.staff(world.dora), T0, calendar(), team=world.volunteers)
    db.session.commit()
    duplicate = make_ticket(world, store, now=T0 + HOUR, category="elderly.help", route=True)
    routing.route_many([duplicate.id], T0 + HOUR, calendar())
    db.session.commit()
    assert (duplicate.assignee_id, duplicate.team_id) == (None, world.volunteers.id)
    assert first.number in dispatch_event(duplicate).detail["rule"]


def test_in_a_batch_a_duplicate_follows_the_ticket_routed_just_before_it(world: World, store: PhotoStore) -> None:
    put_on_call(world.gina)
    gwen(world)
    pair = [make_ticket(world, store, now=T0 + i * HOUR) for i in range(2)]
    routing.route_many([t.id for t in pair], T0 + 2 * HOUR, calendar())
    db.session.commit()
    assert pair[0].assignee_id is not None and pair[1].assignee_id == pair[0].assignee_id
    assert pair[0].number in dispatch_event(pair[1]).detail["rule"]


def test_a_batch_of_duplicates_asks_once_whether_their_first_handlers_are_on_duty(
        world: World, store: PhotoStore, statements: list[str]) -> None:
    put_on_call(world.gina)
    gwen(world)
    first = busy_first(world, store)
    duplicates = [make_ticket(world, store, now=T0 + (i + 1) * HOUR, route=True) for i in range(3)]
    statements.clear()
    routing.route_many([t.id for t in duplicates], T0 + 4 * HOUR, calendar())
    db.session.commit()
    assert {t.assignee_id for t in duplicates} == {world.gina.id}
    assert all(first.number in dispatch_event(t).detail["rule"] for t in duplicates)
    duty_reads = [s for s in statements if "FROM users" in s and "leaves" in s and "user_grids" not in s]
    assert len(duty_reads) == 1, duty_reads


def test_in_a_batch_a_duplicate_of_an_off_duty_handler_is_routed_as_usual(world: World, store: PhotoStore) -> None:
    other = gwen(world)  # gina is not on call and has no shift
    busy_first(world, store)
    duplicate = make_ticket(world, store, now=T0 + HOUR, route=True)
    routing.route_many([duplicate.id], T0 + HOUR, calendar())
    db.session.commit()
    assert duplicate.assignee_id == other.id


def test_both_ticket_pages_show_the_hint_and_the_duplicate_says_why_it_came(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    put_on_call(world.gina)
    first = busy_first(world, store)
    duplicate = make_ticket(world, store, now=T0 + HOUR)
    routing.route(duplicate, T0 + HOUR, calendar())
    db.session.commit()
    client.get("/lang/en")
    login(client, world.dora)
    mine = unescape(client.get(f"/tickets/{duplicate.number}").get_data(as_text=True))
    theirs = unescape(client.get(f"/tickets/{first.number}").get_data(as_text=True))
    assert first.number in mine.split('id="duplicates"', 1)[1] and "same handler" in mine
    assert duplicate.number in theirs.split('id="duplicates"', 1)[1] and "same handler" in theirs
    assert dispatch_event(duplicate).detail["reason"] in mine  # "Why this handler"


def console_items(html: str) -> dict[str, str]:
    """Ticket number → the item's HTML, on a console list."""
    return {m.group(1): m.group(0) for m in re.finditer(
        r'<li class="ticket-item console-item.*?class="title" href="/tickets/([0-9-]+)".*?</li>', html, re.DOTALL)}


def test_every_console_tab_and_the_supervision_list_mark_the_duplicates(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    in_progress = advance(make_ticket(world, store), "accepted", world)
    overdue = advance(make_ticket(world, store, now=T0 + HOUR), "dispatched", world)
    waiting = make_ticket(world, store, now=T0 + 2 * HOUR)
    resolved = advance(make_ticket(world, store, now=T0 + 3 * HOUR), "resolved", world)
    lone = make_ticket(world, store, building=world.building_west)
    db.session.execute(update(Ticket).where(Ticket.id == overdue.id).values(accept_due_at=T0 - HOUR))
    db.session.execute(update(Ticket).where(Ticket.id == in_progress.id).values(supervised=True))
    db.session.commit()
    client.get("/lang/en")
    login(client, world.dora)
    expected = {"awaiting": {waiting, lone}, "dispatched": {overdue}, "in_progress": {in_progress},
                "overdue": {overdue}, "resolved": {resolved}, "all": {in_progress, overdue, waiting, resolved, lone}}
    for tab, tickets in expected.items():
        items = console_items(client.get(f"/console/?tab={tab}").get_data(as_text=True))
        # The pages judge "overdue" by the real clock, after T0: more may be overdue than the one set so.
        assert {t.number for t in tickets} <= set(items), tab
        for number, item in items.items():
            assert ("Possible duplicate" in item) is (number != lone.number), (tab, number)
    login(client, world.sam)
    items = console_items(client.get("/console/supervision").get_data(as_text=True))
    assert "Possible duplicate" in items[in_progress.number]
    assert in_progress.status == Status.ACCEPTED
