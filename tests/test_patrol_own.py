"""Patrol reports are the grid worker's own: theirs at once, no resident messages, no rating,
closed when resolved, apart in the ledger, and never outside every grid (services/patrol.py)."""
from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import func, select, update

from tests.conftest import csrf_token, login
from tests.factories import T0, TZ, World, advance, calendar, make_ticket
from ticketing.extensions import db
from ticketing.models import (
    HandlerDay,
    KeyKind,
    Ledger,
    Notification,
    Status,
    Ticket,
    TicketEvent,
    User,
)
from ticketing.services import apikeys, ledger, patrol
from ticketing.services.errors import NotAllowed
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore
from ticketing.services.sweep import sweep

pytestmark = pytest.mark.usefixtures("english")

WORKER_PHONE = "13900001111"
NEAR = {"type": "Polygon", "coordinates": [[[116.0, 39.0], [116.1, 39.0], [116.1, 39.1], [116.0, 39.1], [116.0, 39.0]]]}
FAR = {"type": "Polygon", "coordinates": [[[117.0, 40.0], [117.1, 40.0], [117.1, 40.1], [117.0, 40.1], [117.0, 40.0]]]}


def patrol_report(world: World, store: PhotoStore, worker: User | None = None, **fields: Any) -> Ticket:
    """A grid worker's report as the patrol page files it: intake, then theirs (not routed)."""
    worker = worker or world.gina
    return make_ticket(world, store, channel="patrol", actor=Actor.staff(worker), phone=WORKER_PHONE,
                       name=worker.display_name, unit_room="",
                       steps=patrol.theirs(worker, fields.get("now", T0), calendar()), **fields)


def resident_messages(ticket: Ticket) -> list[Notification]:
    return list(db.session.scalars(select(Notification).where(
        Notification.ticket_id == ticket.id, Notification.channel != "inbox")))


def post_report(client: FlaskClient, **fields: object) -> Any:
    data = {"csrf_token": csrf_token(client, "/patrol/new"), "description": "3号楼楼道灯不亮",
            "phone": WORKER_PHONE, **fields}
    return client.post("/patrol/new", data=data, content_type="multipart/form-data")


def only_ticket() -> Ticket:
    return db.session.scalars(select(Ticket)).one()


# --- Theirs at once ----------------------------------------------------------------------


def test_a_report_without_handle_now_is_dispatched_to_the_worker_and_accepted(
        client: FlaskClient, world: World) -> None:
    login(client, world.gina)
    assert post_report(client, category_id=world.category("repair.stair_light").id,
                       building_id=world.building_courtyard.id).status_code == 303
    ticket = only_ticket()
    assert (ticket.status, ticket.assignee_id) == (Status.ACCEPTED, world.gina.id)
    assert [e.action for e in ticket.events] == ["submit", "dispatch", "accept"]
    assert ticket.events[1].detail["rule"] == patrol.OWN_REPORT
    assert ticket.accepted_at is not None and ticket.resolve_due_at is not None


def test_a_report_is_stored_once_already_taken_on_the_spot_with_its_events_in_order(
        client: FlaskClient, world: World) -> None:
    """The steps are planned before the report is stored (lifecycle.plan): one row,
    written once, and its four events in the order they were taken, each beginning where
    the one before ended."""
    login(client, world.gina)
    post_report(client, category_id=world.category("repair.stair_light").id,
                building_id=world.building_courtyard.id, handle_now="y", result="换了灯泡")
    ticket = only_ticket()
    assert (ticket.status, ticket.version, ticket.result_note) == (Status.RESOLVED, 1, "换了灯泡")
    logged = db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
                                .order_by(TicketEvent.id)).all()
    assert [(e.action, e.from_status, e.to_status) for e in logged] == [
        ("submit", None, Status.SUBMITTED), ("dispatch", Status.SUBMITTED, Status.DISPATCHED),
        ("accept", Status.DISPATCHED, Status.ACCEPTED), ("resolve", Status.ACCEPTED, Status.RESOLVED)]
    assert [e.actor_id for e in logged] == [world.gina.id, None, world.gina.id, world.gina.id]


def test_the_worker_is_not_asked_to_accept_their_own_report(client: FlaskClient, world: World) -> None:
    """No "sent to you, accept it by …" in the inbox of the worker who filed it, already
    theirs; a report given to another handler later tells that one, as any ticket."""
    login(client, world.gina)
    for extra in ({}, {"handle_now": "y", "result": "换了灯泡"}):
        post_report(client, category_id=world.category("repair.stair_light").id,
                    building_id=world.building_courtyard.id, **extra)
    assert db.session.scalars(select(Notification.kind).where(Notification.user_id == world.gina.id)).all() == []
    report = db.session.scalars(select(Ticket).where(Ticket.status == Status.ACCEPTED)).one()
    perform(report, "reassign", Actor.staff(world.dora), T0, calendar(), note="换人处理", assignee=world.greg)
    db.session.commit()
    assert db.session.scalars(select(Notification.kind).where(Notification.user_id == world.greg.id)).all() == [
        "assigned"]


def test_a_report_sent_twice_is_filed_and_taken_once(world: World, store: PhotoStore) -> None:
    """The second delivery of one report (its submission key) gets the first ticket; the
    steps planned for it before the store found the first leave nothing behind."""
    first = patrol_report(world, store, external_id="patrol:k1")
    again = patrol_report(world, store, external_id="patrol:k1", now=T0 + timedelta(hours=1))
    db.session.commit()
    assert again.id == first.id and db.session.scalar(select(func.count()).select_from(Ticket)) == 1
    db.session.refresh(world.gina)
    assert world.gina.last_assigned_at is not None
    assert world.gina.last_assigned_at.replace(tzinfo=None) == T0.replace(tzinfo=None)


def test_handle_now_is_as_it_was(client: FlaskClient, world: World) -> None:
    login(client, world.gina)
    post_report(client, category_id=world.category("repair.stair_light").id,
                building_id=world.building_courtyard.id, handle_now="y", result="换了灯泡")
    ticket = only_ticket()
    assert ticket.status == Status.RESOLVED and ticket.events[1].detail["rule"] == patrol.TAKEN_ON_THE_SPOT


def test_a_report_filed_through_the_api_is_the_workers_too(client: FlaskClient, world: World) -> None:
    _row, key = apikeys.issue(KeyKind.STAFF, "gina's phone", T0, user=world.gina)
    body = {"description": "楼道堆放杂物", "category": "safety.fire_exit", "building_id": world.building_courtyard.id,
            "phone": WORKER_PHONE}
    answer = client.post("/api/v1/tickets", json=body, headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 201 and answer.get_json()["status"] == "accepted"
    ticket = only_ticket()
    assert (ticket.channel, ticket.assignee_id) == ("patrol", world.gina.id)
    assert not resident_messages(ticket)


# --- Nobody to tell, nobody to rate ---------------------------------------------------------


def test_a_patrol_report_sends_no_resident_message_from_filing_to_closing(world: World, store: PhotoStore) -> None:
    ticket = patrol_report(world, store)
    perform(ticket, "resolve", Actor.staff(world.gina), T0 + timedelta(hours=1), calendar(), note="已清理")
    db.session.commit()
    sweep(T0 + timedelta(hours=1, minutes=1), calendar())
    db.session.refresh(ticket)
    assert ticket.status == Status.CLOSED
    assert resident_messages(ticket) == []
    web = advance(make_ticket(world, store), "resolved", world)
    assert {n.kind for n in resident_messages(web)} >= {"received", "accepted", "resolved"}  # residents' still are


def test_nobody_may_rate_or_reopen_a_patrol_report(world: World, store: PhotoStore) -> None:
    ticket = patrol_report(world, store)
    perform(ticket, "resolve", Actor.staff(world.gina), T0, calendar(), note="已清理")
    db.session.commit()
    for name, params in (("rate", {"rating": "satisfied"}), ("reopen", {"note": "没修好"})):
        with pytest.raises(NotAllowed):
            perform(ticket, name, Actor.resident(), T0 + timedelta(hours=1), calendar(), **params)


def test_the_sweep_closes_a_resolved_patrol_report_at_once_and_a_residents_after_three_working_days(
        world: World, store: PhotoStore) -> None:
    mine = patrol_report(world, store)
    theirs = advance(make_ticket(world, store), "accepted", world)
    for ticket in (mine, theirs):
        perform(ticket, "resolve", Actor.staff(world.gina), T0, calendar(), note="已处理")
    db.session.commit()
    result = sweep(T0 + timedelta(minutes=1), calendar())
    assert result.auto_closed == 1
    db.session.refresh(mine)
    db.session.refresh(theirs)
    assert (mine.status, theirs.status) == (Status.CLOSED, Status.RESOLVED)
    closing = mine.events[-1]
    assert closing.action == "auto_close" and "patrol" in closing.note.lower() or "巡查" in closing.note


# --- Placed in a grid, always --------------------------------------------------------------


def test_a_report_outside_every_grid_goes_to_the_workers_nearest_own_grid(world: World) -> None:
    world.grid_a1.boundary = json.dumps(FAR)
    world.grid_a2.boundary = json.dumps(NEAR)
    world.gina.grids.append(world.grid_a2)
    db.session.commit()

    def placed(lat: float | None, lng: float | None) -> int | None:
        grid = patrol.place_report(patrol.own_grids(world.gina), world.gina.street_id, lat, lng)
        return grid.id if grid is not None else None

    assert placed(39.05, 116.05) == world.grid_a2.id  # inside A2
    assert placed(39.3, 116.3) == world.grid_a2.id  # outside both, nearer A2
    assert placed(40.3, 117.3) == world.grid_a1.id  # outside both, nearer A1
    assert placed(None, None) == world.grid_a1.id  # no location: her first grid


def test_a_report_without_a_location_or_building_is_placed_in_the_workers_grid(
        client: FlaskClient, world: World) -> None:
    login(client, world.gina)
    assert post_report(client, category_id=world.category("environment.litter").id).status_code == 303
    ticket = only_ticket()
    assert (ticket.community_id, ticket.grid_id) == (world.community_a.id, world.grid_a1.id)


def test_the_api_places_a_report_outside_every_grid_in_the_workers_grid(client: FlaskClient, world: World) -> None:
    world.grid_a2.boundary = json.dumps(NEAR)
    db.session.commit()
    _row, key = apikeys.issue(KeyKind.STAFF, "gina's phone", T0, user=world.gina)
    body = {"description": "路灯不亮", "category": "repair.stair_light", "phone": WORKER_PHONE, "lat": 30.0, "lon": 120.0}
    assert client.post("/api/v1/tickets", json=body, headers={"Authorization": f"Bearer {key}"}).status_code == 201
    assert only_ticket().grid_id == world.grid_a1.id


# --- Apart in the ledger -------------------------------------------------------------------


def patrol_day(world: World, store: PhotoStore) -> tuple[Ticket, Ticket]:
    """On the day of T0 in grid A1: a patrol report filed and resolved; a resident's ticket
    rated unsatisfied; and one that was rated satisfied before it became a patrol report
    (as data from before this rule would be): only the resident's rating counts."""
    report = patrol_report(world, store)
    perform(report, "resolve", Actor.staff(world.gina), T0 + timedelta(hours=1), calendar(), note="已清理")
    residents = advance(make_ticket(world, store, building=world.building_managed), "resolved", world)
    perform(residents, "rate", Actor.resident(), T0 + timedelta(hours=2), calendar(), rating="unsatisfied")
    legacy = advance(make_ticket(world, store, category="environment.litter"), "closed", world)
    db.session.execute(update(Ticket).where(Ticket.id == legacy.id).values(channel="patrol"))
    db.session.commit()
    ledger.compile_day(T0.astimezone(TZ).date(), TZ, T0 + timedelta(days=1))
    return report, residents


def test_the_ledger_counts_patrol_reports_apart_and_leaves_them_out_of_the_satisfaction_rate(
        world: World, store: PhotoStore) -> None:
    patrol_day(world, store)
    row = db.session.scalar(select(Ledger).where(Ledger.grid_id == world.grid_a1.id))
    assert row is not None
    assert (row.patrol_new, row.patrol_resolved) == (2, 2)  # the report, and the one that became one
    assert (row.satisfaction_num, row.satisfaction_den) == (0, 1)
    gina = db.session.scalar(select(HandlerDay).where(HandlerDay.user_id == world.gina.id))
    assert gina is not None and (gina.satisfaction_num, gina.satisfaction_den) == (0, 1)


def test_the_ledger_page_and_its_export_show_patrol_reports_as_not_rated(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    report, _residents = patrol_day(world, store)
    login(client, world.sam)
    day = T0.astimezone(TZ).date().isoformat()
    html = client.get(f"/ledger/grid/{world.grid_a1.code}/{day}").get_data(as_text=True)
    assert "Patrol reports filed" in html and "Patrol reports resolved" in html
    assert "patrol report, not rated" in html
    sheet = load_workbook(io.BytesIO(client.get(f"/ledger/grid/{world.grid_a1.code}/{day}/export.xlsx").data)).active
    header, *lines = sheet.iter_rows(min_row=1, values_only=True)
    rows = {row[0]: dict(zip(header, row, strict=True)) for row in lines}
    assert rows[report.number]["满意度"] == "巡查上报，不参评"
