"""The dispatcher: rules, defaults, who is on duty, fair shares, returns, and the why."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from html import unescape
from typing import Any

import pytest
from flask import Flask, current_app
from flask.testing import FlaskClient
from sqlalchemy import event, func, select, text, update

from tests.conftest import csrf_token, is_postgres
from tests.factories import (
    PHONE,
    T0,
    TZ,
    World,
    calendar,
    give_leave,
    give_shift,
    make_ticket,
    make_user,
    put_on_call,
)
from ticketing.extensions import db
from ticketing.models import (
    HandlerKind,
    Notification,
    OutboxMessage,
    Role,
    RoutingRule,
    SlaTier,
    Status,
    Ticket,
    TicketEvent,
    User,
)
from ticketing.services import intake, notify, routing, targets
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore
from ticketing.services.routing import Decision, route
from workers.jobs import route_ticket

WEDNESDAY, TUESDAY = 2, 1
# Identical tickets filed closer than this are likely duplicates, which routing sends to the first
# one's handler (services/duplicates.py); the tests of fair shares file theirs further apart.
APART = timedelta(hours=73)


def filed_apart(i: int, n: int) -> datetime:
    """When the i-th of n same tickets was filed: none within 72 hours of another, the last at T0."""
    return T0 - APART * (n - 1 - i)


def route_at(ticket: Ticket, now: datetime = T0) -> Decision:
    """Route and commit, as the job does."""
    decision = route(ticket, now, calendar())
    db.session.commit()
    return decision


def dispatch_event(ticket: Ticket) -> TicketEvent:
    """The last dispatch of the ticket."""
    return [e for e in ticket.events if e.action == "dispatch"][-1]


def add_rule(world: World, handler_kind: str, priority: int = 100, category: str | None = None,
             scope_kind: str = "any", scope_id: int | None = None, **fields: Any) -> RoutingRule:
    """A routing rule; commits."""
    rule = RoutingRule(name=fields.pop("name", f"rule {priority}"), priority=priority,
                       category_id=world.category(category).id if category else None,
                       scope_kind=scope_kind, scope_id=scope_id, handler_kind=handler_kind, **fields)
    db.session.add(rule)
    db.session.commit()
    return rule


def grid_worker(world: World, username: str) -> User:
    """Another worker of grid A1, on call; commits."""
    user = make_user(username, Role.GRID_WORKER, street=world.street, grids=[world.grid_a1], on_call=True)
    db.session.commit()
    return user


def unrouted_messages(user: User) -> int:
    return db.session.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == user.id, Notification.kind == "unrouted")) or 0


@pytest.fixture()
def on_call(world: World) -> World:
    """Every handler persona on call."""
    put_on_call(world.gina, world.greg, world.gabe, world.pete, world.vera, world.mia)
    return world


# --- defaults ---------------------------------------------------------------


def test_a_repair_in_a_managed_complex_goes_to_its_property_company(on_call: World, store: PhotoStore) -> None:
    ticket = make_ticket(on_call, store, building=on_call.building_managed)
    decision = route_at(ticket)
    assert decision.routed and ticket.assignee_id == on_call.pete.id
    assert ticket.status == Status.DISPATCHED and ticket.handler_kind == HandlerKind.PROPERTY
    assert dispatch_event(ticket).detail["rule"] == routing.text(targets.DEFAULT_LABELS[HandlerKind.PROPERTY])


def test_a_repair_in_a_complex_without_a_company_goes_to_the_grid_worker(on_call: World, store: PhotoStore) -> None:
    ticket = make_ticket(on_call, store, building=on_call.building_courtyard)
    route_at(ticket)
    assert ticket.assignee_id == on_call.gina.id and ticket.handler_kind == HandlerKind.GRID_WORKER


def test_other_requests_in_a_managed_complex_go_to_the_grid_worker(on_call: World, store: PhotoStore) -> None:
    ticket = make_ticket(on_call, store, building=on_call.building_managed, category="environment.litter")
    route_at(ticket)
    assert ticket.assignee_id == on_call.gina.id


def test_elderly_help_goes_to_the_communitys_volunteer_team(on_call: World, store: PhotoStore) -> None:
    ticket = make_ticket(on_call, store, category="elderly.help")
    route_at(ticket)
    assert ticket.assignee_id == on_call.vera.id and ticket.team_id == on_call.volunteers.id
    assert ticket.handler_kind == HandlerKind.VOLUNTEER_TEAM


def test_a_dispute_goes_to_the_communitys_mediation_team(on_call: World, store: PhotoStore) -> None:
    ticket = make_ticket(on_call, store, category="dispute.noise")
    route_at(ticket)
    assert ticket.assignee_id == on_call.mia.id and ticket.handler_kind == HandlerKind.MEDIATION_TEAM


def test_a_ticket_placed_only_in_a_community_waits_for_the_dispatcher(on_call: World, store: PhotoStore) -> None:
    request = intake.IntakeRequest(channel="web", description="路灯不亮", phone=PHONE,
                                   category_id=on_call.category("repair.stair_light").id,
                                   community_id=on_call.community_a.id)
    ticket, _ = intake.submit(request, Actor.resident(), T0, TZ, store, 5 * 1024 * 1024)
    decision = route_at(ticket)
    assert not decision.routed and ticket.status == Status.SUBMITTED
    assert ticket.unrouted_reason and unrouted_messages(on_call.dora) == 1


# --- rules ------------------------------------------------------------------


def test_rules_are_tried_by_ascending_priority(on_call: World, store: PhotoStore) -> None:
    add_rule(on_call, HandlerKind.MEDIATION_TEAM, priority=20, name="second")
    add_rule(on_call, HandlerKind.VOLUNTEER_TEAM, priority=10, name="first")
    ticket = make_ticket(on_call, store)
    decision = route_at(ticket)
    assert ticket.assignee_id == on_call.vera.id and decision.rule == "first"
    assert dispatch_event(ticket).detail["rule"] == "first"


def test_an_inactive_rule_is_skipped(on_call: World, store: PhotoStore) -> None:
    add_rule(on_call, HandlerKind.VOLUNTEER_TEAM, priority=10, active=False)
    ticket = make_ticket(on_call, store)
    route_at(ticket)
    assert ticket.assignee_id == on_call.gina.id


def test_a_rule_for_a_parent_category_matches_its_children(on_call: World, store: PhotoStore) -> None:
    add_rule(on_call, HandlerKind.MEDIATION_TEAM, category="repair")
    ticket = make_ticket(on_call, store, category="repair.stair_light")
    route_at(ticket)
    assert ticket.assignee_id == on_call.mia.id


def test_a_rule_for_the_category_itself_matches(on_call: World, store: PhotoStore) -> None:
    add_rule(on_call, HandlerKind.MEDIATION_TEAM, category="repair.stair_light")
    ticket = make_ticket(on_call, store, category="repair.stair_light")
    route_at(ticket)
    assert ticket.assignee_id == on_call.mia.id


def test_a_rule_for_another_category_does_not_match(on_call: World, store: PhotoStore) -> None:
    add_rule(on_call, HandlerKind.MEDIATION_TEAM, category="repair.gas")
    ticket = make_ticket(on_call, store, category="repair.stair_light")
    route_at(ticket)
    assert ticket.assignee_id == on_call.gina.id


@pytest.mark.parametrize("scope_kind, here, elsewhere", [
    ("community", "community_a", "community_b"),
    ("grid", "grid_a1", "grid_a2"),
    ("complex", "courtyard", "west"),
])
def test_a_rule_applies_in_its_scope_only(on_call: World, store: PhotoStore, scope_kind: str,
                                          here: str, elsewhere: str) -> None:
    add_rule(on_call, HandlerKind.VOLUNTEER_TEAM, scope_kind=scope_kind, scope_id=getattr(on_call, here).id)
    add_rule(on_call, HandlerKind.MEDIATION_TEAM, priority=5, scope_kind=scope_kind,
             scope_id=getattr(on_call, elsewhere).id)
    ticket = make_ticket(on_call, store, building=on_call.building_courtyard)
    route_at(ticket)
    assert ticket.assignee_id == on_call.vera.id


def test_a_rule_may_name_the_company(on_call: World, store: PhotoStore) -> None:
    add_rule(on_call, HandlerKind.PROPERTY, company_id=on_call.company.id, name="西苑 by contract",
             scope_kind="complex", scope_id=on_call.west.id)
    ticket = make_ticket(on_call, store, building=on_call.building_west)
    route_at(ticket)
    assert ticket.assignee_id == on_call.pete.id and ticket.company_id == on_call.company.id


def test_a_rules_tier_sets_the_deadline(on_call: World, store: PhotoStore) -> None:
    urgent = db.session.scalar(select(SlaTier).where(SlaTier.code == "urgent"))
    add_rule(on_call, HandlerKind.GRID_WORKER, category="repair.stair_light", tier_id=urgent.id)
    ticket = make_ticket(on_call, store)
    assert ticket.tier.code == "general"
    route_at(ticket)
    assert ticket.tier.code == "urgent"
    assert ticket.accept_due_at == T0 + timedelta(minutes=urgent.accept_minutes)


def test_a_rules_slower_tier_does_not_undo_what_urgent_words_raised(on_call: World, store: PhotoStore) -> None:
    tiers = {t.code: t for t in db.session.scalars(select(SlaTier))}
    add_rule(on_call, HandlerKind.GRID_WORKER, category="repair.stair_light", tier_id=tiers["complex"].id)
    raised = make_ticket(on_call, store)
    raised.tier = tiers["urgent"]  # as intake does for 起火, 燃气泄漏 …
    db.session.commit()
    route_at(raised)
    assert raised.tier.code == "urgent"
    plain = make_ticket(on_call, store)
    route_at(plain)
    assert plain.tier.code == "complex"  # without urgent words the rule's tier applies


# --- on duty ----------------------------------------------------------------


def test_a_worker_in_a_shift_gets_the_ticket_and_the_reason_says_until_when(
        world: World, store: PhotoStore) -> None:
    give_shift(world.gina, WEDNESDAY, "08:30", "17:30")
    db.session.commit()
    ticket = make_ticket(world, store)
    decision = route_at(ticket)
    assert ticket.assignee_id == world.gina.id
    reason = dispatch_event(ticket).detail["reason"]
    assert reason == decision.reason and "17:30" in reason and "0" in reason


def test_a_night_shift_covers_the_small_hours(world: World, store: PhotoStore) -> None:
    give_shift(world.gina, TUESDAY, "22:00", "06:00")
    db.session.commit()
    night = datetime(2026, 11, 18, 2, 0, tzinfo=TZ)
    ticket = make_ticket(world, store, now=night)
    route_at(ticket, night)
    assert ticket.assignee_id == world.gina.id
    assert "06:00" in dispatch_event(ticket).detail["reason"]


def test_on_call_is_given_as_the_reason(world: World, store: PhotoStore) -> None:
    put_on_call(world.gina)
    ticket = make_ticket(world, store)
    route_at(ticket)
    assert dispatch_event(ticket).detail["reason"] == routing.text(
        routing._l("fewest open: %(n)d; on call", n=0))


def test_nobody_on_duty_leaves_the_ticket_submitted_and_alerts_the_dispatchers(
        world: World, store: PhotoStore) -> None:
    give_shift(world.gina, WEDNESDAY, "08:30", "17:30")
    db.session.commit()
    evening = datetime(2026, 11, 18, 19, 0, tzinfo=TZ)
    ticket = make_ticket(world, store, now=evening)
    decision = route_at(ticket, evening)
    assert not decision.routed and ticket.status == Status.SUBMITTED and ticket.assignee_id is None
    assert world.grid_a1.name in ticket.unrouted_reason
    assert unrouted_messages(world.dora) == 1 and unrouted_messages(world.dan) == 0
    route_at(ticket, evening + timedelta(minutes=5))
    assert unrouted_messages(world.dora) == 1, "the same reason is told once"


def test_leave_is_respected(world: World, store: PhotoStore) -> None:
    put_on_call(world.gina)
    other = grid_worker(world, "gwen")
    give_leave(world.gina, date(2026, 11, 18))
    db.session.commit()
    ticket = make_ticket(world, store)
    route_at(ticket)
    assert ticket.assignee_id == other.id


def test_the_unrouted_reason_is_cleared_once_dispatched(world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    route_at(ticket)
    assert ticket.unrouted_reason
    put_on_call(world.gina)
    route_at(ticket)
    assert ticket.status == Status.DISPATCHED and ticket.unrouted_reason == ""


# --- fair shares ------------------------------------------------------------


def test_a_hundred_tickets_over_three_workers_end_within_one_of_each_other(
        world: World, store: PhotoStore) -> None:
    workers = [world.gina, grid_worker(world, "gwen"), grid_worker(world, "gil")]
    put_on_call(world.gina)
    for i in range(100):
        route_at(make_ticket(world, store, now=filed_apart(i, 100)), T0 + timedelta(seconds=i))
    counts = routing.open_counts(u.id for u in workers)
    assert sum(counts.values()) == 100 and len(counts) == 3
    assert max(counts.values()) - min(counts.values()) <= 1


def test_a_batch_routes_each_ticket_as_routing_them_one_by_one_would(world: World, store: PhotoStore) -> None:
    put_on_call(world.gina)
    workers = [world.gina, grid_worker(world, "gwen"), grid_worker(world, "gil")]
    one_by_one = [make_ticket(world, store, now=filed_apart(i, 6)) for i in range(6)]
    for ticket in one_by_one:
        route_at(ticket, T0 + timedelta(minutes=1))
    expected = [t.assignee_id for t in one_by_one]
    for ticket in one_by_one:  # back to where they started, loads and waits too
        db.session.execute(update(Ticket).where(Ticket.id == ticket.id).values(status=Status.CLOSED))
    for user in workers:
        user.last_assigned_at = None
    db.session.commit()
    batch = [make_ticket(world, store, now=filed_apart(i, 6)) for i in range(6)]
    decisions = routing.route_many([t.id for t in reversed(batch)], T0 + timedelta(minutes=1), calendar())
    db.session.commit()
    assert [t.assignee_id for t in batch] == expected
    assert sorted(expected.count(u.id) for u in workers) == [2, 2, 2]
    assert all(decisions[t.id].routed for t in batch)
    assert [dispatch_event(t).detail["reason"] for t in batch] == [
        dispatch_event(t).detail["reason"] for t in one_by_one]


def test_a_batchs_events_are_numbered_in_the_order_they_happen_and_inserted_without_returning(
        world: World, store: PhotoStore, statements: list[str]) -> None:
    put_on_call(world.gina)
    # Filed as the doors file them: the residents' "received" messages are the batch's to write.
    batch = [make_ticket(world, store, now=filed_apart(i, 10), route=True) for i in range(10)]
    statements.clear()
    routing.route_many([t.id for t in batch], T0 + timedelta(minutes=1), calendar())
    db.session.commit()
    dispatched = [dispatch_event(t) for t in batch]
    assert all(t.status == Status.DISPATCHED for t in batch)
    # Routed in id order, each dispatch after its ticket's submit event.
    assert [e.id for e in dispatched] == sorted(e.id for e in dispatched)
    assert all(t.events[0].action == "submit" and t.events[0].id < e.id for t, e in zip(batch, dispatched, strict=True))
    events = [s for s in statements if s.startswith("INSERT INTO ticket_events")]
    messages = [s for s in statements if s.startswith("INSERT INTO notifications")]
    if is_postgres(current_app):
        # The events' ids from the sequence at once, then one executemany without
        # RETURNING; the same for the residents' messages (the inbox rows need no id).
        assert len([s for s in statements if "pg_get_serial_sequence" in s]) == 2
        assert len(events) == 1 and "RETURNING" not in events[0]
        assert len(messages) == 2 and not [s for s in messages if "RETURNING" in s]


def test_a_batch_sends_companies_and_teams_their_tickets_as_one_by_one_would(
        world: World, store: PhotoStore) -> None:
    """Companies' and teams' people are looked up once for the whole batch; the choices
    and their reasons are those of routing each ticket alone."""
    put_on_call(world.gina, world.pete, world.vera, world.mia)
    kinds = [(world.building_managed, "repair.stair_light"), (world.building_courtyard, "elderly.help"),
             (world.building_courtyard, "dispute.noise"), (world.building_courtyard, "repair.stair_light")]

    def file_all() -> list[Ticket]:
        return [make_ticket(world, store, building=b, category=c, now=filed_apart(i // 4, 2) + timedelta(seconds=i))
                for i, (b, c) in enumerate(kinds * 2)]

    one_by_one = file_all()
    for ticket in one_by_one:
        route_at(ticket, T0 + timedelta(minutes=1))
    expected = [(t.assignee_id, dispatch_event(t).detail["reason"]) for t in one_by_one]
    for ticket in one_by_one:  # back to where they started, loads and waits too
        db.session.execute(update(Ticket).where(Ticket.id == ticket.id).values(status=Status.CLOSED))
    for user in (world.gina, world.pete, world.vera, world.mia):
        user.last_assigned_at = None
    db.session.commit()
    batch = file_all()
    routing.route_many([t.id for t in batch], T0 + timedelta(minutes=1), calendar())
    db.session.commit()
    assert [(t.assignee_id, dispatch_event(t).detail["reason"]) for t in batch] == expected
    assert [t.assignee_id for t in batch[:4]] == [world.pete.id, world.vera.id, world.mia.id, world.gina.id]


def test_a_batch_leaves_tickets_nobody_fits_with_the_dispatcher_and_routes_the_rest(
        on_call: World, store: PhotoStore) -> None:
    world = on_call
    placed = make_ticket(world, store)
    request = intake.IntakeRequest(channel="web", description="路灯不亮", phone=PHONE,
                                   category_id=world.category("repair.stair_light").id,
                                   community_id=world.community_a.id)
    unplaced, _ = intake.submit(request, Actor.resident(), T0, TZ, store, 5 * 1024 * 1024, route=False)
    routing.route_many([placed.id, unplaced.id], T0, calendar())
    db.session.commit()
    assert placed.status == Status.DISPATCHED and placed.assignee_id is not None
    assert unplaced.status == Status.SUBMITTED and unplaced.unrouted_reason


def test_a_batch_looks_up_the_dispatchers_of_every_ticket_left_to_them_at_once(
        on_call: World, store: PhotoStore, statements: list[str]) -> None:
    world = on_call

    def unplaced(community: Any) -> Ticket:
        request = intake.IntakeRequest(channel="web", description="路灯不亮", phone=PHONE,
                                       category_id=world.category("repair.stair_light").id,
                                       community_id=community.id)
        return intake.submit(request, Actor.resident(), T0, TZ, store, 5 * 1024 * 1024, route=False)[0]

    tickets = [unplaced(world.community_a), unplaced(world.community_b), unplaced(world.community_a)]
    statements.clear()
    routing.route_many([t.id for t in tickets], T0, calendar())
    db.session.commit()
    assert all(t.status == Status.SUBMITTED and t.unrouted_reason for t in tickets)
    assert len([s for s in statements if "users.community_id IS NULL" in s]) == 1
    told = {t.id: {n.user_id for n in db.session.scalars(
        select(Notification).where(Notification.ticket_id == t.id, Notification.kind == "unrouted"))}
        for t in tickets}
    # Each ticket's own community's dispatchers, and the street's, as one by one.
    assert told == {t.id: {u.id for u in notify.dispatchers_of(t)} for t in tickets}
    assert world.dora.id in told[tickets[0].id] and world.dora.id not in told[tickets[1].id]
    assert world.dan.id in told[tickets[1].id] and world.dan.id not in told[tickets[0].id]


def test_ties_go_to_whoever_waited_longest(world: World, store: PhotoStore) -> None:
    put_on_call(world.gina)
    gwen, gil = grid_worker(world, "gwen"), grid_worker(world, "gil")
    world.gina.last_assigned_at = T0 - timedelta(hours=1)
    gwen.last_assigned_at = T0 - timedelta(hours=2)
    db.session.commit()
    first = make_ticket(world, store)
    route_at(first)
    assert first.assignee_id == gil.id, "never assigned waited longest"
    # Gil's ticket is done, so all three are at zero again; Gina waited less than Gwen.
    db.session.execute(update(Ticket).where(Ticket.id == first.id).values(status=Status.CLOSED))
    db.session.commit()
    second = make_ticket(world, store)
    route_at(second, T0 + timedelta(minutes=1))
    assert second.assignee_id == gwen.id
    assert routing.text(routing._l("; waited longest since a last assignment")) in second.events[-1].detail["reason"]


def test_fewest_open_beats_a_longer_wait(world: World, store: PhotoStore) -> None:
    put_on_call(world.gina)
    gwen = grid_worker(world, "gwen")
    busy = make_ticket(world, store, now=T0 - APART)  # not a duplicate of the next
    perform(busy, "dispatch", Actor.staff(world.dora), T0, calendar(), assignee=world.gina)
    world.gina.last_assigned_at = None  # as if she had waited forever
    db.session.commit()
    ticket = make_ticket(world, store)
    route_at(ticket)
    assert ticket.assignee_id == gwen.id


def test_a_manual_dispatch_counts_as_the_last_assignment(world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    perform(ticket, "dispatch", Actor.staff(world.dora), T0, calendar(), assignee=world.greg)
    db.session.commit()
    assert world.greg.last_assigned_at == T0


# --- returns and missed accepts ----------------------------------------------


def give_back(ticket: Ticket, user: User, now: datetime) -> None:
    perform(ticket, "return", Actor.staff(user), now, calendar(), note="不归我管")
    db.session.commit()


def test_a_return_reroutes_to_someone_else_and_two_returns_go_to_the_dispatcher(
        world: World, store: PhotoStore) -> None:
    put_on_call(world.gina)
    gwen = grid_worker(world, "gwen")
    ticket = make_ticket(world, store)
    route_at(ticket)
    first = ticket.assignee
    assert first is not None
    give_back(ticket, first, T0 + timedelta(minutes=5))
    route_at(ticket, T0 + timedelta(minutes=6))
    second = ticket.assignee
    assert second is not None and second.id != first.id and {first.id, second.id} == {world.gina.id, gwen.id}
    give_back(ticket, second, T0 + timedelta(minutes=7))
    decision = route_at(ticket, T0 + timedelta(minutes=8))
    assert not decision.routed and ticket.status == Status.SUBMITTED and ticket.return_count == 2
    assert "2" in ticket.unrouted_reason and unrouted_messages(world.dora) >= 1


def test_when_only_the_returner_is_on_duty_nobody_fits(world: World, store: PhotoStore) -> None:
    put_on_call(world.gina)
    ticket = make_ticket(world, store)
    route_at(ticket)
    give_back(ticket, world.gina, T0 + timedelta(minutes=5))
    decision = route_at(ticket, T0 + timedelta(minutes=6))
    assert not decision.routed and ticket.assignee_id is None


def test_whoever_let_the_accept_by_pass_is_not_chosen_again(world: World, store: PhotoStore) -> None:
    put_on_call(world.gina)
    gwen = grid_worker(world, "gwen")
    ticket = make_ticket(world, store)
    route_at(ticket)
    late = ticket.assignee_id
    perform(ticket, "expire", Actor.system(), T0 + timedelta(days=2), calendar())
    db.session.commit()
    route_at(ticket, T0 + timedelta(days=2))
    assert ticket.assignee_id is not None and ticket.assignee_id != late
    assert ticket.assignee_id in {world.gina.id, gwen.id}


# --- queues -----------------------------------------------------------------


def test_a_team_ticket_waits_in_the_team_queue_when_no_member_is_on_duty(
        world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, category="elderly.help")
    decision = route_at(ticket)
    assert decision.routed and ticket.status == Status.DISPATCHED
    assert ticket.assignee_id is None and ticket.team_id == world.volunteers.id
    assert world.volunteers.name in dispatch_event(ticket).detail["reason"]


def test_a_company_ticket_waits_in_the_company_queue_when_no_staff_is_on_duty(
        world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, building=world.building_managed)
    route_at(ticket)
    assert ticket.status == Status.DISPATCHED and ticket.assignee_id is None
    assert ticket.company_id == world.company.id and ticket.handler_kind == HandlerKind.PROPERTY
    assert dispatch_event(ticket).detail["company"] == world.company.name
    assert ticket.accept_due_at is not None


def test_a_team_without_active_members_leaves_the_ticket_with_the_dispatcher(
        world: World, store: PhotoStore) -> None:
    world.vera.active = False
    db.session.commit()
    ticket = make_ticket(world, store, category="elderly.help")
    decision = route_at(ticket)
    assert not decision.routed and world.volunteers.name in ticket.unrouted_reason


# --- the job ----------------------------------------------------------------


def test_only_submitted_tickets_are_routed(world: World, store: PhotoStore) -> None:
    put_on_call(world.gina)
    ticket = make_ticket(world, store)
    perform(ticket, "dispatch", Actor.staff(world.dora), T0, calendar(), assignee=world.greg)
    db.session.commit()
    assert not route_at(ticket).routed and ticket.assignee_id == world.greg.id


def file(world: World, store: PhotoStore, **options: Any) -> Ticket:
    """File a repair in 槐树院 through intake itself (make_ticket may skip routing)."""
    request = intake.IntakeRequest(channel="web", description="楼道灯不亮", phone=PHONE,
                                   category_id=world.category("repair.stair_light").id,
                                   building_id=world.building_courtyard.id)
    ticket, _ = intake.submit(request, Actor.resident(), T0, TZ, store, 5 * 1024 * 1024, **options)
    return ticket


def route_jobs() -> list[tuple[list[Any], str]]:
    rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.job == "workers.jobs.route_ticket"))
    return [(row.args, row.queue) for row in rows]


def test_intake_records_the_routing_job_with_the_ticket(world: World, store: PhotoStore) -> None:
    ticket = file(world, store)
    assert route_jobs() == [([ticket.id], "high")]


def test_intake_can_leave_the_routing_to_the_caller(world: World, store: PhotoStore) -> None:
    file(world, store, route=False)
    assert route_jobs() == []


def test_the_job_routes_once_and_a_second_run_does_nothing(world: World, store: PhotoStore) -> None:
    put_on_call(world.gina)
    ticket = make_ticket(world, store)
    assert route_ticket(ticket.id).startswith("routed")
    assert route_ticket(ticket.id).startswith("not routed")
    db.session.expire_all()
    assert ticket.status == Status.DISPATCHED and ticket.assignee_id == world.gina.id
    assert [e.action for e in ticket.events] == ["submit", "dispatch"]


def test_the_job_yields_to_a_dispatcher_who_acted_first(
        world: World, store: PhotoStore, monkeypatch: pytest.MonkeyPatch) -> None:
    put_on_call(world.gina)
    ticket = make_ticket(world, store)
    ticket_id = ticket.id
    real_explain = routing.explain

    def dispatcher_meanwhile(*args: Any) -> str:
        with db.engine.begin() as conn:  # another transaction changes the ticket first
            conn.execute(text("UPDATE tickets SET version = version + 1, status = 'rejected' WHERE id = :id"),
                         {"id": ticket_id})
        return real_explain(*args)

    monkeypatch.setattr(routing, "explain", dispatcher_meanwhile)
    assert route_ticket(ticket_id) == "someone else acted first"
    db.session.expire_all()
    assert db.session.get(Ticket, ticket_id).status == Status.REJECTED


# --- the web form, end to end -------------------------------------------------


def test_a_report_filed_on_the_web_is_routed_by_the_time_the_page_returns(
        client: FlaskClient, world: World) -> None:
    put_on_call(world.gina)
    data = {
        "category_id": str(world.category("repair.stair_light").id),
        "community_id": str(world.community_a.id), "complex_id": str(world.courtyard.id),
        "building_id": str(world.building_courtyard.id), "description": "楼道灯不亮，晚上看不见台阶",
        "name": "张三丰", "phone": PHONE, "csrf_token": csrf_token(client, "/report"),
    }
    response = client.post("/report", data=data, content_type="multipart/form-data")
    assert response.status_code in (200, 302, 303)
    db.session.expire_all()
    ticket = db.session.scalar(select(Ticket))
    assert ticket is not None and ticket.status == Status.DISPATCHED and ticket.assignee_id == world.gina.id
    detail = dispatch_event(ticket).detail
    assert detail["rule"] == routing.text(targets.DEFAULT_LABELS[HandlerKind.GRID_WORKER])
    assert detail["reason"] == routing.text(routing._l("fewest open: %(n)d; on call", n=0))


def test_the_staff_page_says_why_this_handler(client: FlaskClient, world: World, store: PhotoStore) -> None:
    from tests.conftest import login

    put_on_call(world.gina)
    ticket = make_ticket(world, store)
    route_at(ticket)
    login(client, world.gina)
    html = unescape(client.get(f"/tickets/{ticket.number}").get_data(as_text=True))
    reason = dispatch_event(ticket).detail["reason"]
    assert reason in html and dispatch_event(ticket).detail["rule"] in html


# --- cost -------------------------------------------------------------------


@pytest.fixture()
def statements(ctx: Flask) -> Iterator[list[str]]:
    """Every SQL statement sent while the fixture is in use."""
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    yield seen
    event.remove(db.engine, "before_cursor_execute", count)


# What the routing job (workers.jobs.route_ticket, which bench/route_bench.py times)
# sends to route one new ticket to a grid worker, one statement each. One more is a
# regression: find it (the assertion prints them) and fold it into one of these.
ROUTING_STATEMENTS = 11
#  1. the ticket with its category and group, tier, grid and complex, and its submit
#     event if the resident's "received" message is still to be written (routing.load_to_route)
#  2. the working-day calendar (workdays.load_calendar)
#  3. the active routing rules
#  4. the open tickets it may duplicate (duplicates.first_handled)
#  5. the pool's people on duty now
#  6. their open tickets, one grouped count
#  7. when their shifts end (for the reason)
#  8. UPDATE users: the chosen person's last assignment
#  9. UPDATE tickets: dispatched, version-locked
# 10. INSERT the dispatch event
# 11. INSERT the assignee's inbox message
# When intake left the "received" message to the job (every new ticket but the
# demo's history), three more: INSERT the message, INSERT its delivery row in the
# outbox, and the ticket read again after the message's own commit.
RECEIPT_STATEMENTS = 3


def statements_to_route(world: World, store: PhotoStore, statements: list[str], receipt_written: bool,
                        now: datetime = T0 + timedelta(hours=1)) -> list[str]:
    """The statements of the routing job for a ticket filed at `now`; with `receipt_written`
    False, intake has left the resident's "received" message to the job, as it does in service."""
    ticket_id = make_ticket(world, store, now=now, route=not receipt_written).id
    db.session.commit()
    db.session.expunge_all()  # nothing cached: the count does not depend on what ran before
    statements.clear()
    assert route_ticket(ticket_id).startswith("routed")
    sent = [" ".join(statement.split())[:100] for statement in statements]
    for value in [*vars(world).values(), *world.people.values()]:
        if isinstance(value, db.Model):
            db.session.add(value)  # back into the session, for the rest of the test
    return sent


def test_routing_takes_the_same_number_of_queries_however_many_staff_and_tickets(
        world: World, store: PhotoStore, statements: list[str]) -> None:
    put_on_call(world.gina)
    small = statements_to_route(world, store, statements, receipt_written=True)
    for i in range(40):
        make_user(f"w{i}", Role.GRID_WORKER, street=world.street, grids=[world.grid_a1], on_call=True)
    db.session.commit()
    for i in range(60):
        route_at(make_ticket(world, store, now=filed_apart(i, 61)))
    large = statements_to_route(world, store, statements, receipt_written=True, now=T0 + APART + timedelta(hours=1))
    assert len(small) == ROUTING_STATEMENTS, "\n".join(small)
    assert len(large) == ROUTING_STATEMENTS, "\n".join(large)


def test_writing_the_received_message_intake_left_takes_three_statements_more(
        world: World, store: PhotoStore, statements: list[str]) -> None:
    put_on_call(world.gina)
    sent = statements_to_route(world, store, statements, receipt_written=False)
    assert len(sent) == ROUTING_STATEMENTS + RECEIPT_STATEMENTS, "\n".join(sent)
    assert db.session.scalar(select(func.count()).select_from(Notification).where(
        Notification.kind == "received")) == 1


def test_the_staff_page_says_why_a_ticket_waits_for_the_dispatcher(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    from tests.conftest import login

    ticket = make_ticket(world, store)
    route_at(ticket)
    login(client, world.dora)
    html = unescape(client.get(f"/tickets/{ticket.number}").get_data(as_text=True))
    assert ticket.unrouted_reason in html


def test_a_batch_writes_each_tickets_messages_and_their_delivery_rows(world: World, store: PhotoStore) -> None:
    """Routing in a batch holds its writes back to one flush; every message still gets written."""
    put_on_call(world.gina)
    batch = [make_ticket(world, store, route=True, now=T0 + timedelta(seconds=i)) for i in range(3)]
    routing.route_many([t.id for t in batch], T0 + timedelta(minutes=1), calendar())
    db.session.commit()
    for ticket in batch:
        kinds = sorted(db.session.scalars(select(Notification.kind).where(Notification.ticket_id == ticket.id)))
        assert kinds == ["assigned", "received"]
    received = db.session.scalars(select(Notification.id).where(Notification.kind == "received")).all()
    deliveries = db.session.scalars(select(OutboxMessage.args).where(
        OutboxMessage.job == "workers.jobs.deliver_notification")).all()
    assert [sorted(args) for args in deliveries] == [sorted(received)]  # one row for the batch


def test_a_batch_that_loses_a_race_raises_and_leaves_the_rollback_to_its_caller(
        world: World, store: PhotoStore) -> None:
    """Someone changed a ticket while the batch decided: the batch's flush refuses it."""
    from sqlalchemy.orm.exc import StaleDataError

    put_on_call(world.gina)
    ticket = make_ticket(world, store)
    calls = []

    def changed_meanwhile(*args: Any, **kwargs: Any) -> list[User]:
        if not calls:  # a dispatcher bumps the version between the load and the write
            db.session.execute(update(Ticket).where(Ticket.id == ticket.id).values(version=Ticket.version + 1)
                               .execution_options(synchronize_session=False))
        calls.append(1)
        return [world.gina]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(routing, "on_duty_people", changed_meanwhile)
        with pytest.raises(StaleDataError):
            routing.route_many([ticket.id], T0, calendar())
    db.session.rollback()
    assert db.session.get(Ticket, ticket.id).status == Status.SUBMITTED  # type: ignore[union-attr]
    assert db.session.scalar(select(func.count()).select_from(Notification).where(
        Notification.kind == "assigned")) == 0


def test_a_batch_across_grids_gives_each_ticket_to_its_own_grids_worker(world: World, store: PhotoStore) -> None:
    """The batch looks up every grid's people at once; nobody gets another grid's ticket."""
    for user in (world.gina, world.greg, world.gabe):
        put_on_call(user)
    places = [world.building_courtyard, world.building_west, world.building_east] * 2
    tickets = [make_ticket(world, store, building=b, now=filed_apart(i // 3, 2) + timedelta(seconds=i))
               for i, b in enumerate(places)]
    routing.route_many([t.id for t in tickets], T0 + timedelta(minutes=1), calendar())
    db.session.commit()
    owners = {world.grid_a1.id: world.gina.id, world.grid_a2.id: world.greg.id, world.grid_b1.id: world.gabe.id}
    assert [t.assignee_id for t in tickets] == [owners[t.grid_id] for t in tickets]
    # Each grid's worker had none open, then the one the batch gave them.
    assert [dispatch_event(t).detail["reason"] for t in tickets] == (
        ["在办最少：0 件；值守中"] * 3 + ["在办最少：1 件；值守中"] * 3)
