"""改派 and 转办: passing a ticket on after it was dispatched (services/handoff.py, effects.py)."""
from __future__ import annotations

from datetime import timedelta
from html import unescape

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import csrf_token, login
from tests.factories import (
    T0,
    World,
    advance,
    calendar,
    give_shift,
    make_ticket,
    make_user,
    put_on_call,
)
from ticketing.extensions import db
from ticketing.models import KeyKind, Notification, Role, Status, Ticket, User
from ticketing.services import apikeys, sla
from ticketing.services.errors import IllegalTransition, InvalidInput, NotAllowed
from ticketing.services.handoff import MAX_RETURNS
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore
from ticketing.services.routing import route

LATER = T0 + timedelta(hours=2)


def inbox(user: User, kind: str) -> list[Notification]:
    return list(db.session.scalars(select(Notification).where(
        Notification.user_id == user.id, Notification.kind == kind, Notification.channel == "inbox")))


def reload(ticket: Ticket) -> Ticket:
    db.session.expire_all()
    return db.session.get(Ticket, ticket.id)  # type: ignore[return-value]


def gwen(world: World) -> User:
    """A third grid worker of grid A1, on call; commits."""
    user = make_user("gwen", Role.GRID_WORKER, street=world.street, grids=[world.grid_a1], on_call=True)
    db.session.commit()
    return user


# --- 改派: dispatchers and supervisors reassign -------------------------------------------


def test_a_dispatcher_reassigns_an_accepted_ticket_and_the_clocks_start_as_on_a_new_dispatch(
        world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    assert ticket.accepted_at is not None and ticket.resolve_due_at is not None
    perform(ticket, "reassign", Actor.staff(world.dora), LATER, calendar(), note="顾不过来，换人", assignee=world.greg)
    db.session.commit()
    ticket = reload(ticket)
    assert (ticket.status, ticket.assignee_id) == (Status.DISPATCHED, world.greg.id)
    assert ticket.dispatched_at == LATER
    assert ticket.accept_due_at == sla.accept_deadline(ticket.tier, LATER, calendar())
    assert ticket.accepted_at is None and ticket.resolve_due_at is None
    event = ticket.events[-1]
    assert event.action == "reassign" and not event.public
    assert event.detail["from_assignee_id"] == world.gina.id and event.detail["assignee_id"] == world.greg.id


def test_a_held_ticket_reassigned_ends_its_hold_and_keeps_the_time_on_hold_counted(
        world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "on_hold", world)  # held at T0
    perform(ticket, "reassign", Actor.staff(world.sam), T0 + timedelta(hours=3), calendar(),
            note="配件到了，换人去装", assignee=world.greg)
    db.session.commit()
    ticket = reload(ticket)
    assert ticket.status == Status.DISPATCHED
    assert ticket.paused_seconds == 3 * 3600
    assert (ticket.held_at, ticket.hold_until, ticket.hold_reason) == (None, None, "")


def test_the_old_and_the_new_handler_are_told_with_the_reason(world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    perform(ticket, "reassign", Actor.staff(world.dora), LATER, calendar(), note="居民要求换人，电话13900001111",
            assignee=world.greg)
    db.session.commit()
    [assigned] = inbox(world.greg, "assigned")
    [told] = inbox(world.gina, "reassigned")
    assert ticket.number in assigned.subject and ticket.number in told.body
    assert "居民要求换人" in told.body and "13900001111" not in told.body  # quoted masked
    assert inbox(world.gina, "assigned") == [inbox(world.gina, "assigned")[0]]  # only her first dispatch


def test_a_dispatched_ticket_sent_again_tells_the_new_handler_not_the_one_before(
        world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "dispatched", world)
    assert ticket.assignee is world.gina  # the relationship is loaded before it changes
    perform(ticket, "dispatch", Actor.staff(world.dora), LATER, calendar(), assignee=world.greg)
    db.session.commit()
    assert (len(inbox(world.gina, "assigned")), len(inbox(world.greg, "assigned"))) == (1, 1)


def test_a_team_reassigned_tells_the_whole_team_it_came_from(world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, category="elderly.help")
    perform(ticket, "dispatch", Actor.staff(world.dora), T0, calendar(), team=world.volunteers)
    perform(ticket, "reassign", Actor.staff(world.dora), LATER, calendar(), note="网格员更合适", assignee=world.gina)
    db.session.commit()
    assert len(inbox(world.vera, "reassigned")) == 1 and len(inbox(world.gina, "assigned")) == 1


@pytest.mark.parametrize("state", ["dispatched", "accepted", "on_hold"])
def test_dispatchers_and_supervisors_in_scope_may_reassign_from_each_open_hand(
        world: World, store: PhotoStore, state: str) -> None:
    for name in ("dora", "sam", "sue", "adam"):
        ticket = advance(make_ticket(world, store), state, world)
        perform(ticket, "reassign", Actor.staff(world.people[name]), LATER, calendar(), note="换人",
                assignee=world.greg)
        assert ticket.status == Status.DISPATCHED


@pytest.mark.parametrize("name", ["gina", "greg", "dan", "pete"])
def test_handlers_and_staff_out_of_scope_may_not_reassign(world: World, store: PhotoStore, name: str) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    with pytest.raises(NotAllowed):
        perform(ticket, "reassign", Actor.staff(world.people[name]), LATER, calendar(), note="换人",
                assignee=world.greg)
    assert reload(ticket).assignee_id == world.gina.id


def test_a_submitted_or_resolved_ticket_is_not_reassigned(world: World, store: PhotoStore) -> None:
    for state in ("submitted", "resolved"):
        ticket = make_ticket(world, store)
        if state != "submitted":
            advance(ticket, state, world)
        with pytest.raises(IllegalTransition):
            perform(ticket, "reassign", Actor.staff(world.dora), LATER, calendar(), note="换人", assignee=world.greg)


@pytest.mark.parametrize("params", [
    {"note": "", "assignee": "greg"},  # a reason is required
    {"note": "换人", "assignee": "gina"},  # already hers
    {"note": "换人", "assignee": "gabe"},  # community B's worker does not serve the place
    {"note": "换人"},  # nobody named
])
def test_a_reassignment_without_a_reason_or_a_fitting_new_handler_changes_nothing(
        world: World, store: PhotoStore, params: dict[str, str]) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    args = {"note": params["note"], **({"assignee": world.people[params["assignee"]]} if "assignee" in params else {})}
    with pytest.raises(InvalidInput):
        perform(ticket, "reassign", Actor.staff(world.dora), LATER, calendar(), **args)
    ticket = reload(ticket)
    assert (ticket.status, ticket.assignee_id) == (Status.ACCEPTED, world.gina.id)
    assert [e.action for e in ticket.events][-1] == "accept"


# --- 转办: handlers pass it on ------------------------------------------------------------


def test_a_handler_passes_an_accepted_ticket_to_a_colleague_on_duty(world: World, store: PhotoStore) -> None:
    put_on_call(world.greg)
    ticket = advance(make_ticket(world, store), "accepted", world)
    perform(ticket, "transfer", Actor.staff(world.gina), LATER, calendar(), note="在我片区外，请第二网格处理",
            assignee=world.greg)
    db.session.commit()
    ticket = reload(ticket)
    assert (ticket.status, ticket.assignee_id, ticket.return_count) == (Status.DISPATCHED, world.greg.id, 1)
    assert ticket.accepted_at is None and ticket.accept_due_at == sla.accept_deadline(ticket.tier, LATER, calendar())
    assert ticket.events[-1].detail["transferred_by"] == world.gina.id
    assert len(inbox(world.greg, "assigned")) == 1


def test_a_handler_may_pass_a_ticket_to_a_team_of_the_community(world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store, category="elderly.help"), "dispatched", world)
    perform(ticket, "transfer", Actor.staff(world.gina), LATER, calendar(), note="需要志愿者上门", team=world.volunteers)
    db.session.commit()
    ticket = reload(ticket)
    assert (ticket.assignee_id, ticket.team_id) == (None, world.volunteers.id)
    assert len(inbox(world.vera, "assigned")) == 1


def test_a_transfer_to_someone_off_duty_is_refused(world: World, store: PhotoStore) -> None:
    # Greg works Wednesdays 14:00-18:00 only; T0 is a Wednesday 10:00 in Shanghai.
    give_shift(world.greg, 2, "14:00", "18:00")
    db.session.commit()
    ticket = advance(make_ticket(world, store), "accepted", world)
    with pytest.raises(InvalidInput) as refused:
        perform(ticket, "transfer", Actor.staff(world.gina), LATER, calendar(), note="请接手", assignee=world.greg)
    assert refused.value.field == "handler"
    assert reload(ticket).assignee_id == world.gina.id
    # In his shift the same transfer goes through.
    afternoon = T0 + timedelta(hours=5)
    perform(ticket, "transfer", Actor.staff(world.gina), afternoon, calendar(), note="请接手", assignee=world.greg)
    assert ticket.assignee_id == world.greg.id


def test_a_transfer_to_someone_who_does_not_serve_the_place_is_refused(world: World, store: PhotoStore) -> None:
    put_on_call(world.gabe)  # community B
    ticket = advance(make_ticket(world, store), "accepted", world)
    with pytest.raises(InvalidInput):
        perform(ticket, "transfer", Actor.staff(world.gina), LATER, calendar(), note="请接手", assignee=world.gabe)


def test_only_the_handler_passes_a_ticket_on(world: World, store: PhotoStore) -> None:
    put_on_call(world.greg)
    ticket = advance(make_ticket(world, store), "accepted", world)
    for name in ("greg", "dora", "sam"):
        with pytest.raises(NotAllowed):
            perform(ticket, "transfer", Actor.staff(world.people[name]), LATER, calendar(), note="请接手",
                    assignee=world.greg)


def test_transfers_count_like_returns_and_after_two_the_dispatcher_decides(world: World, store: PhotoStore) -> None:
    assert MAX_RETURNS == 2
    put_on_call(world.gina, world.greg)
    third = gwen(world)
    ticket = advance(make_ticket(world, store), "accepted", world)
    perform(ticket, "transfer", Actor.staff(world.gina), LATER, calendar(), note="请第二网格处理", assignee=world.greg)
    db.session.commit()  # a refused action rolls back what is not committed
    with pytest.raises(InvalidInput):  # no ping-pong: gina passed it on, she does not get it back
        perform(ticket, "transfer", Actor.staff(world.greg), LATER, calendar(), note="还给你", assignee=world.gina)
    perform(ticket, "transfer", Actor.staff(world.greg), LATER, calendar(), note="请Gwen处理", assignee=third)
    db.session.commit()
    assert ticket.return_count == 2
    with pytest.raises(IllegalTransition):
        perform(ticket, "transfer", Actor.staff(third), LATER, calendar(), note="再转", assignee=world.greg)
    # Returned now, it waits for the dispatcher instead of going round again.
    perform(ticket, "return", Actor.staff(third), LATER, calendar(), note="不归网格管", reroute=False)
    db.session.commit()
    decision = route(ticket, LATER, calendar())
    assert not decision.routed and ticket.status == Status.SUBMITTED
    assert "3" in ticket.unrouted_reason


def test_whoever_transferred_a_ticket_is_left_out_when_it_is_routed_again(world: World, store: PhotoStore) -> None:
    put_on_call(world.gina, world.greg)
    third = gwen(world)
    ticket = advance(make_ticket(world, store), "accepted", world)
    perform(ticket, "transfer", Actor.staff(world.gina), LATER, calendar(), note="请Gwen处理", assignee=third)
    perform(ticket, "return", Actor.staff(third), LATER, calendar(), note="不是我的", reroute=False)
    db.session.commit()
    route(ticket, LATER, calendar())
    assert ticket.assignee_id not in (world.gina.id, third.id)


# --- The ticket page, the workbench, the 督办 list and the API ------------------------------


def act(client: FlaskClient, ticket: Ticket, name: str, **data: object) -> object:
    token = csrf_token(client, f"/tickets/{ticket.number}")
    return client.post(f"/tickets/{ticket.number}/act/{name}", data={"csrf_token": token, **data},
                       content_type="multipart/form-data")


def test_a_supervisor_reassigns_on_the_ticket_page(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    login(client, world.sam)
    page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert 'id="action-reassign"' in page and 'id="reassign-handler"' in page
    response = act(client, ticket, "reassign", handler=f"user:{world.greg.id}", note="换人办理")
    assert response.status_code == 303  # type: ignore[attr-defined]
    ticket = reload(ticket)
    assert (ticket.status, ticket.assignee_id) == (Status.DISPATCHED, world.greg.id)
    page = unescape(client.get(f"/tickets/{ticket.number}").get_data(as_text=True))
    assert world.gina.display_name in page  # the timeline names whom it came from


def test_the_supervision_list_says_that_a_ticket_can_be_reassigned(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    client.get("/lang/en")
    login(client, world.sam)
    html = client.get("/console/supervision").get_data(as_text=True)
    assert "assign or reassign its handler" in html


def test_a_handler_passes_a_ticket_on_from_the_ticket_page_to_people_on_duty_only(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    put_on_call(world.greg)
    off_duty = make_user("gil", Role.GRID_WORKER, street=world.street, grids=[world.grid_a1])
    db.session.commit()
    ticket = advance(make_ticket(world, store), "accepted", world)
    login(client, world.gina)
    page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert 'id="action-transfer"' in page and 'id="action-reassign"' not in page
    options = page.split('id="transfer-handler"', 1)[1].split("</select>", 1)[0]
    assert f'value="user:{world.greg.id}"' in options
    assert f'value="user:{off_duty.id}"' not in options and f'value="user:{world.gina.id}"' not in options
    response = act(client, ticket, "transfer", handler=f"user:{world.greg.id}", note="请第二网格处理")
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert reload(ticket).assignee_id == world.greg.id


def test_the_workbench_offers_to_pass_a_ticket_on(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    login(client, world.gina)
    html = client.get("/workbench/").get_data(as_text=True)
    assert f"/tickets/{ticket.number}#action-transfer" in html


def test_the_api_reassigns_and_transfers(client: FlaskClient, world: World, store: PhotoStore) -> None:
    put_on_call(world.gina)
    ticket = advance(make_ticket(world, store), "accepted", world)
    _row, dora = apikeys.issue(KeyKind.STAFF, "dora's app", T0, user=world.dora)
    _row, greg = apikeys.issue(KeyKind.STAFF, "greg's app", T0, user=world.greg)
    db.session.commit()
    url = f"/api/v1/tickets/{ticket.number}/transitions"
    refused = client.post(url, json={"action": "reassign", "handler": f"user:{world.greg.id}"},
                          headers={"Authorization": f"Bearer {dora}"})
    assert refused.status_code == 422 and "note" in refused.get_json()["errors"]
    answer = client.post(url, json={"action": "reassign", "handler": f"user:{world.greg.id}", "note": "换人"},
                         headers={"Authorization": f"Bearer {dora}"})
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["status"] == "dispatched" and body["handler"]["assignee"]["id"] == world.greg.id
    assert body["events"][-1]["action"] == "reassign"
    answer = client.post(url, json={"action": "transfer", "handler": f"user:{world.gina.id}", "note": "还是一网格的"},
                         headers={"Authorization": f"Bearer {greg}"})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["handler"]["assignee"]["id"] == world.gina.id
    assert answer.get_json()["return_count"] == 1


def test_the_api_refuses_a_transfer_to_someone_off_duty_on_the_handler_field(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    _row, gina = apikeys.issue(KeyKind.STAFF, "gina's app", T0, user=world.gina)
    db.session.commit()
    answer = client.post(f"/api/v1/tickets/{ticket.number}/transitions",
                         json={"action": "transfer", "handler": f"user:{world.greg.id}", "note": "请接手"},
                         headers={"Authorization": f"Bearer {gina}"})
    assert answer.status_code == 422 and "handler" in answer.get_json()["errors"]
    assert reload(ticket).assignee_id == world.gina.id  # greg has no shift and is not on call
