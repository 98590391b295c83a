"""The state machine: every transition from every state, by every role."""
from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from tests.factories import T0, World, advance, calendar, make_ticket
from ticketing.extensions import db
from ticketing.models import HandlerKind, RoutingRule, Status, Ticket, TicketEvent, User
from ticketing.services.errors import (
    Conflict,
    IllegalTransition,
    InvalidInput,
    NotAllowed,
    ServiceError,
)
from ticketing.services.lifecycle import TRANSITIONS, Actor, allowed, perform
from ticketing.services.photos import PhotoStore

STAFF = ["adam", "sam", "sue", "dora", "dan", "gina", "greg", "gabe", "pete", "vera", "mia"]
ACTORS = [*STAFF, "resident", "system"]
STATES = ["submitted", "dispatched", "accepted", "on_hold", "resolved", "closed", "rejected", "merged", "withdrawn"]

# Who may perform each transition on a ticket of grid A1 handled by gina.
EXPECTED: dict[str, tuple[set[str], set[str]]] = {
    # name: (states it leaves from, actors allowed)
    "dispatch": ({"submitted", "dispatched"}, {"dora", "adam", "sam", "sue", "system"}),
    "reject": ({"submitted"}, {"dora", "adam"}),
    "merge": ({"submitted", "dispatched"}, {"dora", "adam"}),
    "accept": ({"dispatched"}, {"gina"}),
    "return": ({"dispatched", "accepted"}, {"gina"}),
    "hold": ({"accepted"}, {"gina"}),
    "resume": ({"on_hold"}, {"gina"}),
    "resolve": ({"accepted"}, {"gina"}),
    "rate": ({"resolved"}, {"resident"}),
    "reopen": ({"resolved"}, {"resident"}),
    "auto_close": ({"resolved"}, {"system"}),
    "note": ({"submitted", "dispatched", "accepted", "on_hold", "resolved"},
             {"gina", "dora", "adam", "sam", "sue"}),
    "expire": ({"dispatched"}, {"system"}),
    "release": ({"dispatched", "accepted", "on_hold"}, {"system"}),
    "escalate": ({"dispatched", "accepted", "on_hold"}, {"gina", "system"}),
    "deescalate": ({"dispatched", "accepted", "on_hold"}, {"sam", "sue"}),
    "extend": ({"dispatched", "accepted", "on_hold"}, {"sam", "sue"}),
    "recategorize": ({"submitted", "dispatched", "accepted", "on_hold"}, {"dora", "adam", "sam", "sue"}),
    "add_info": ({"submitted", "dispatched", "accepted", "on_hold"}, {"resident"}),
    "withdraw": ({"submitted", "dispatched"}, {"resident"}),
    "rate_merged": ({"merged"}, {"resident"}),
    "reopen_merged": ({"merged"}, {"resident"}),
    "callback_rate": ({"resolved", "closed"}, {"dora", "adam", "sam", "sue"}),
    "redo": ({"resolved", "closed"}, {"dora", "adam", "sam", "sue"}),
    "reassign": ({"dispatched", "accepted", "on_hold"}, {"dora", "adam", "sam", "sue"}),
    "transfer": ({"dispatched", "accepted", "on_hold"}, {"gina"}),
}

# A submitted ticket has no handler yet, so gina may not write on it.
EXCEPT = {("note", "submitted"): {"gina"}}

TARGET = {
    "dispatch": "dispatched", "reject": "rejected", "merge": "merged", "accept": "accepted",
    "return": "submitted", "hold": "on_hold", "resume": "accepted", "resolve": "resolved",
    "rate": "closed", "reopen": "accepted", "auto_close": "closed", "expire": "submitted", "release": "submitted",
    "withdraw": "withdrawn",
    "callback_rate": "closed", "redo": "dispatched",
    "reassign": "dispatched", "transfer": "dispatched",
}


def actor_for(world: World, name: str) -> Actor:
    if name == "resident":
        return Actor.resident()
    if name == "system":
        return Actor.system()
    return Actor.staff(world.people[name])


def ticket_in(state: str, world: World, store: PhotoStore) -> Ticket:
    """A fresh ticket of grid A1 (handler gina) in the given state."""
    ticket = make_ticket(world, store)
    if state in ("dispatched", "accepted", "on_hold", "resolved", "closed"):
        advance(ticket, state, world)
    elif state == "rejected":
        perform(ticket, "reject", Actor.staff(world.dora), T0, calendar(), note="重复报事")
    elif state == "merged":
        other = make_ticket(world, store)
        perform(ticket, "merge", Actor.staff(world.dora), T0, calendar(), target=other)
    elif state == "withdrawn":
        perform(ticket, "withdraw", Actor.resident(), T0, calendar())
    db.session.commit()
    assert ticket.status == state
    return ticket


def prepared(name: str, ticket: Ticket, world: World) -> Ticket:
    """Sending back down needs a ticket that was escalated; a merged resident's rating or
    redo, a main ticket with a result; a rating on a callback, a result the resident has
    not rated."""
    if name == "deescalate":
        ticket.escalation_level = 1
        db.session.commit()
    if name in ("rate_merged", "reopen_merged") and ticket.merged_into is not None:
        advance(ticket.merged_into, "resolved", world)
    if name == "callback_rate":
        ticket.rating = None
        db.session.commit()
    return ticket


def params_for(name: str, world: World, store: PhotoStore) -> dict[str, Any]:
    params: dict[str, Any] = {"note": "说明"}
    if name in ("dispatch", "redo"):
        params["assignee"] = world.gina
    if name == "merge":
        params["target"] = make_ticket(world, store)
    if name in ("rate", "rate_merged", "callback_rate"):
        params["rating"] = "satisfied"
    if name == "extend":
        params["deadline"] = T0 + timedelta(days=3)
    if name == "recategorize":
        params["category"] = world.category("repair.other")
    if name == "hold":
        params["until"] = T0.date() + timedelta(days=2)
    if name in ("reassign", "transfer"):
        world.greg.on_call = True  # a transfer goes only to someone on duty
        params["assignee"] = world.greg
    return params


@pytest.mark.parametrize("name", sorted(TRANSITIONS))
def test_each_transition_is_allowed_exactly_where_the_table_says(
    name: str, world: World, store: PhotoStore
) -> None:
    assert name in EXPECTED, "every transition needs a row in the expected table"
    sources, who = EXPECTED[name]
    for state in STATES:
        ticket = prepared(name, ticket_in(state, world, store), world)
        for actor_name in ACTORS:
            events_before = len(ticket.events)
            params = params_for(name, world, store)
            should_work = (state in sources and actor_name in who
                           and actor_name not in EXCEPT.get((name, state), set()))
            try:
                perform(ticket, name, actor_for(world, actor_name), T0, calendar(), **params)
                db.session.commit()
            except ServiceError as exc:
                assert not should_work, f"{actor_name} {name} from {state}: {exc}"
                expected = IllegalTransition if state not in sources else NotAllowed
                assert isinstance(exc, expected), (actor_name, name, state, exc)
                db.session.refresh(ticket)
                assert ticket.status == state
                assert len(ticket.events) == events_before
                continue
            assert should_work, f"{actor_name} could {name} from {state}"
            assert ticket.status == TARGET.get(name, state)
            assert ticket.events[-1].action == name
            ticket = prepared(name, ticket_in(state, world, store), world)


def test_allowed_lists_what_the_actor_may_do_now(world: World, store: PhotoStore) -> None:
    ticket = ticket_in("dispatched", world, store)
    assert [t.name for t in allowed(Actor.staff(world.gina), ticket)] == [
        "accept", "return", "note", "escalate", "transfer"]
    assert [t.name for t in allowed(Actor.staff(world.greg), ticket)] == []


def test_dispatch_sets_the_accept_deadline_from_the_tier(world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, category="repair.water_leak")  # utilities: 30 min
    perform(ticket, "dispatch", Actor.staff(world.dora), T0, calendar(), assignee=world.gina)
    assert ticket.accept_due_at == T0 + timedelta(minutes=30)
    assert ticket.events[-1].detail["rule"] == "manual"
    assert ticket.events[-1].detail["assignee_id"] == world.gina.id


def test_accept_sets_the_resolve_deadline(world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, category="repair.gas")  # urgent: 24 h
    advance(ticket, "accepted", world)
    assert ticket.resolve_due_at == T0 + timedelta(hours=24)


def test_dispatch_to_a_worker_of_another_community_is_refused(world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    with pytest.raises(InvalidInput):
        perform(ticket, "dispatch", Actor.staff(world.dora), T0, calendar(), assignee=world.gabe)
    db.session.refresh(ticket)
    assert ticket.status == Status.SUBMITTED


def test_dispatch_to_staff_of_a_company_that_does_not_manage_the_complex_is_refused(
        world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)  # 槐树院 has no property company
    with pytest.raises(InvalidInput) as refused:
        perform(ticket, "dispatch", Actor.staff(world.dora), T0, calendar(), assignee=world.pete)
    assert refused.value.field == "handler"
    db.session.refresh(ticket)
    assert (ticket.status, ticket.assignee_id, ticket.company_id) == (Status.SUBMITTED, None, None)


def rule_for(world: World, scope_kind: str, scope_id: int | None, active: bool = True) -> RoutingRule:
    rule = RoutingRule(name="道路维修外包", scope_kind=scope_kind, scope_id=scope_id,
                       handler_kind=HandlerKind.PROPERTY, company_id=world.company.id, active=active)
    db.session.add(rule)
    db.session.commit()
    return rule


def test_a_company_a_rule_names_for_the_place_may_be_sent_the_ticket(world: World, store: PhotoStore) -> None:
    rule_for(world, "community", world.community_a.id)
    ticket = make_ticket(world, store)  # 槐树院, community A: in the rule's service area
    perform(ticket, "dispatch", Actor.staff(world.dora), T0, calendar(), assignee=world.pete)
    assert (ticket.assignee_id, ticket.company_id) == (world.pete.id, world.company.id)


@pytest.mark.parametrize("scope_kind,place,active", [("grid", "grid_a2", True), ("community", "community_a", False)])
def test_a_rule_for_another_place_or_a_disabled_rule_does_not_make_the_company_fit(
        world: World, store: PhotoStore, scope_kind: str, place: str, active: bool) -> None:
    rule_for(world, scope_kind, getattr(world, place).id, active=active)
    ticket = make_ticket(world, store)  # 槐树院, grid A1
    with pytest.raises(InvalidInput):
        perform(ticket, "dispatch", Actor.staff(world.dora), T0, calendar(), assignee=world.pete)


def test_a_team_ticket_can_be_accepted_by_any_member(world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, category="elderly.help")
    perform(ticket, "dispatch", Actor.staff(world.dora), T0, calendar(), team=world.volunteers)
    perform(ticket, "accept", Actor.staff(world.vera), T0, calendar())
    assert ticket.assignee_id == world.vera.id
    assert ticket.handler_kind == "volunteer_team"


def test_return_clears_the_handler_and_counts(world: World, store: PhotoStore) -> None:
    ticket = ticket_in("accepted", world, store)
    perform(ticket, "return", Actor.staff(world.gina), T0, calendar(), note="不属于网格职责")
    assert (ticket.status, ticket.assignee_id, ticket.return_count) == ("submitted", None, 1)
    assert ticket.resolve_due_at is None


def test_hold_pauses_the_resolve_clock(world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, category="repair.water_leak")  # clock tier, 24 h
    advance(ticket, "accepted", world)
    due = ticket.resolve_due_at
    perform(ticket, "hold", Actor.staff(world.gina), T0 + timedelta(hours=1), calendar(), note="等待配件",
            until=T0.date() + timedelta(days=1))
    perform(ticket, "resume", Actor.staff(world.gina), T0 + timedelta(hours=4), calendar())
    assert ticket.resolve_due_at == due + timedelta(hours=3)
    assert ticket.paused_seconds == 3 * 3600


def test_reopen_after_seven_days_is_refused(world: World, store: PhotoStore) -> None:
    ticket = ticket_in("resolved", world, store)
    with pytest.raises(IllegalTransition):
        perform(ticket, "reopen", Actor.resident(), T0 + timedelta(days=7, minutes=1), calendar(), note="还是不亮")
    db.session.refresh(ticket)
    assert ticket.status == Status.RESOLVED


def test_reopen_counts_and_restarts_the_clock(world: World, store: PhotoStore) -> None:
    ticket = ticket_in("resolved", world, store)
    later = T0 + timedelta(days=2)
    perform(ticket, "reopen", Actor.resident(), later, calendar(), note="还是不亮")
    assert (ticket.status, ticket.reopen_count, ticket.assignee_id) == ("accepted", 1, world.gina.id)
    assert ticket.resolve_due_at is not None and ticket.resolve_due_at > later


def test_a_reason_is_required_where_the_table_says(world: World, store: PhotoStore) -> None:
    ticket = ticket_in("accepted", world, store)
    with pytest.raises(InvalidInput):
        perform(ticket, "return", Actor.staff(world.gina), T0, calendar(), note="   ")
    db.session.refresh(ticket)
    assert ticket.status == Status.ACCEPTED


def test_rating_must_be_one_of_the_three(world: World, store: PhotoStore) -> None:
    ticket = ticket_in("resolved", world, store)
    with pytest.raises(InvalidInput):
        perform(ticket, "rate", Actor.resident(), T0, calendar(), rating="great")


def test_merge_into_itself_is_refused(world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    with pytest.raises(InvalidInput):
        perform(ticket, "merge", Actor.staff(world.dora), T0, calendar(), target=ticket)


def test_a_stale_copy_loses_and_writes_nothing(world: World, store: PhotoStore, ctx: Any) -> None:
    """Two sessions hold the same ticket; the second to write gets Conflict."""
    ticket = ticket_in("dispatched", world, store)
    ticket_id, gina_id = ticket.id, world.gina.id
    db.session.remove()
    first = db.session.get(Ticket, ticket_id)
    assert first is not None
    # Someone else accepts the ticket behind this session's back.
    with db.engine.begin() as conn:
        conn.execute(update(Ticket).where(Ticket.id == ticket_id)
                     .values(version=Ticket.version + 1, status="accepted", assignee_id=gina_id))
    gina = db.session.get(User, gina_id)
    assert gina is not None
    with pytest.raises(Conflict):
        perform(first, "return", Actor.staff(gina), T0, calendar(), note="退回")
    count: Callable[[], int] = lambda: db.session.scalar(
        select(func.count()).select_from(TicketEvent).where(TicketEvent.ticket_id == ticket_id)
    ) or 0
    assert count() == 2  # submit and dispatch; nothing from the losing return
