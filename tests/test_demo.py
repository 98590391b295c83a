"""The demo sub-district: complete, consistent, loaded once, and usable to sign in."""
from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.conftest import csrf_token, wipe
from tests.factories import T0, TZ
from ticketing.demo import DEMO_LOGINS, DEMO_PASSWORD, DemoConflict, load_demo
from ticketing.extensions import db
from ticketing.models import (
    STAFF_ENTRY_CHANNELS,
    Building,
    Channel,
    Complex,
    Grid,
    Rating,
    Role,
    Status,
    Street,
    Team,
    TeamKind,
    Ticket,
    TicketEvent,
    User,
)

NOW = T0  # a working-day morning the official calendar knows


def row_counts() -> dict[str, int]:
    """Rows per table, to tell whether anything changed."""
    return {
        table.name: db.session.scalar(select(func.count()).select_from(table))
        for table in db.metadata.sorted_tables
    }


class TestLoadedDemo:
    """Read-only checks on one loaded demo (loaded once for the class: it takes a second)."""

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def demo(cls, app: Flask) -> Iterator[Flask]:
        with app.app_context():
            assert load_demo(now=NOW) is True
            yield app
            db.session.remove()
            wipe(app)

    def test_every_role_has_an_account(self) -> None:
        roles = set(db.session.scalars(select(User.role)))
        assert roles == {r.value for r in Role}

    def test_every_demo_login_is_an_active_account_with_the_shared_password(self) -> None:
        for login in DEMO_LOGINS:
            user = db.session.scalar(select(User).where(User.username == login.username))
            assert user is not None and user.active and user.role == login.role
        assert db.session.scalar(select(User).where(User.username == "grid1")).check_password(DEMO_PASSWORD)

    def test_there_are_managed_and_self_managed_complexes_with_buildings_and_aliases(self) -> None:
        complexes = db.session.scalars(select(Complex)).all()
        assert {c.is_managed for c in complexes} == {True, False}
        assert all(c.buildings for c in complexes)
        assert any("东怡街79号院" in c.aliases.splitlines() for c in complexes)

    def test_the_demo_places_are_its_workbook_so_importing_it_again_changes_nothing(self) -> None:
        from ticketing.demo import DEMO_BOUNDARIES, DEMO_WORKBOOK
        from ticketing.services.places_import import import_places

        report = import_places(str(DEMO_WORKBOOK), DEMO_BOUNDARIES.read_bytes(), dry_run=True)
        assert report.problems == [] and report.added == [] and report.changed == [] and report.missing == []
        assert db.session.scalar(select(Complex).where(Complex.name == "锦华苑")).property_company.code == "WY01"

    def test_two_communities_with_three_bounded_grids_each(self) -> None:
        street = db.session.scalar(select(Street))
        assert len(street.communities) == 2
        assert all(len(c.grids) == 3 for c in street.communities)
        assert all('"Polygon"' in (g.boundary or "") for g in db.session.scalars(select(Grid)))

    def test_each_community_has_a_volunteer_and_a_mediation_team_with_members(self) -> None:
        teams = db.session.scalars(select(Team)).all()
        assert sorted(t.kind for t in teams) == sorted([TeamKind.MEDIATION, TeamKind.VOLUNTEER] * 2)
        assert all(t.members for t in teams)

    def test_tickets_reach_every_state(self) -> None:
        statuses = set(db.session.scalars(select(Ticket.status)))
        assert statuses == {s.value for s in Status}

    def test_tickets_come_through_the_web_and_every_staff_entry_channel(self) -> None:
        channels = set(db.session.scalars(select(Ticket.channel)))
        assert {Channel.WEB, *STAFF_ENTRY_CHANNELS} <= channels

    def test_closed_tickets_carry_every_rating_and_some_closed_unrated(self) -> None:
        ratings = set(db.session.scalars(select(Ticket.rating).where(Ticket.status == Status.CLOSED)))
        assert ratings == {*(r.value for r in Rating), None}

    def test_the_older_callbacks_were_worked_and_some_wait_in_the_queue(self) -> None:
        from ticketing.models import CallbackTask, Ledger

        states = set(db.session.scalars(select(CallbackTask.state)))
        assert states == {"open", "done", "failed"}
        assert db.session.scalar(select(db.func.sum(Ledger.callback_reached))) > 0

    def test_some_tickets_were_returned_reopened_held_and_merged(self) -> None:
        tickets = db.session.scalars(select(Ticket)).all()
        assert any(t.status == Status.SUBMITTED and t.return_count for t in tickets)
        assert any(t.status == Status.ACCEPTED and t.reopen_count for t in tickets)
        assert any(t.paused_seconds for t in tickets)
        merged = [t for t in tickets if t.status == Status.MERGED]
        assert merged and all(t.merged_into is not None and t.merged_into.is_open for t in merged)

    def test_tickets_are_spread_over_the_last_thirty_days(self) -> None:
        times = db.session.scalars(select(Ticket.created_at)).all()
        assert 40 <= len(times) <= 75  # the planner's 54 and the governance tasks' garbage complaints
        assert min(times) >= NOW - timedelta(days=30) and max(times) < NOW
        assert max(times) - min(times) > timedelta(days=20)

    def test_every_event_chain_is_consistent(self) -> None:
        for ticket in db.session.scalars(select(Ticket)):
            events = ticket.events
            assert events[0].action == "submit" and events[0].from_status is None
            for before, after in itertools.pairwise(events):
                assert after.from_status == before.to_status, ticket.number
                assert before.at <= after.at <= NOW, ticket.number
            assert events[-1].to_status == ticket.status, ticket.number

    def test_handled_tickets_have_a_handler_and_deadlines(self) -> None:
        active = db.session.scalars(
            select(Ticket).where(Ticket.status.in_([Status.DISPATCHED, Status.ACCEPTED, Status.ON_HOLD]))
        ).all()
        assert active and all(t.handler_kind and t.accept_due_at for t in active)
        assert all(t.resolve_due_at for t in active if t.status != Status.DISPATCHED)

    def test_a_governance_task_shows_its_drop_and_another_is_past_its_deadline(self) -> None:
        from ticketing.services import governance

        stopped, parking = governance.open_tasks(None)[::-1]
        effect = governance.effect(stopped, NOW)
        assert stopped.title == "院内垃圾清运不及时" and effect.judged and effect.reduced
        assert effect.change_percent is not None and effect.change_percent < -50
        assert len(governance.linked_tickets(stopped)) == 1
        assert governance.overdue_tasks(None, NOW) == [parking]

    def test_loading_again_changes_nothing(self) -> None:
        before = row_counts()
        assert load_demo(now=NOW + timedelta(days=3)) is False
        assert load_demo(now=NOW, force=True) is False
        assert row_counts() == before

    def test_a_recurring_problem_waits_on_the_hotspot_page(self) -> None:
        from ticketing.services import hotspots

        day = (NOW - timedelta(days=1)).astimezone(TZ).date()
        spots = {s.place_name: s for s in hotspots.for_scope(None, day, 30)}
        light = spots["锦华苑3号楼"]
        assert light.category.code == "repair.stair_light"
        assert (light.count, light.merged, light.is_new) == (6, 2, True)
        assert "锦华苑3号楼" in {s.place_name for s in hotspots.for_scope(None, day, 90)}

    def test_a_demo_login_signs_in_through_the_form(self, demo: Flask) -> None:
        client = demo.test_client()
        token = csrf_token(client)
        response = client.post("/auth/login", data={
            "username": "dispatcher1", "password": DEMO_PASSWORD, "csrf_token": token,
        })
        assert response.status_code == 302

    def test_the_load_command_prints_the_logins_every_time(self, demo: Flask) -> None:
        result = demo.test_cli_runner().invoke(args=["demo", "load"])
        assert result.exit_code == 0, result.output
        assert "nothing changed" in result.output
        assert DEMO_PASSWORD in result.output and "grid1" in result.output and "/auth/login" in result.output


def test_the_same_now_gives_the_same_demo(ctx: Flask) -> None:
    def snapshot() -> list[tuple[object, ...]]:
        rows = db.session.execute(select(
            Ticket.number, Ticket.status, Ticket.channel, Ticket.description, Ticket.created_at
        ).order_by(Ticket.number)).all()
        return [tuple(r) for r in rows] + [(db.session.scalar(select(func.count()).select_from(TicketEvent)),)]

    load_demo(now=NOW)
    first = snapshot()
    db.session.remove()
    wipe(ctx)
    load_demo(now=NOW)
    assert snapshot() == first


def test_demo_is_not_added_to_a_database_that_holds_other_accounts(ctx: Flask) -> None:
    db.session.add(User(username="ops", display_name="Ops", role=Role.ADMIN, password_hash="x"))
    db.session.commit()
    assert load_demo(now=NOW) is False
    assert db.session.scalar(select(func.count()).select_from(Street)) == 0


def test_forcing_the_demo_past_a_taken_username_changes_nothing(ctx: Flask) -> None:
    db.session.add(User(username="admin", display_name="Ops", role=Role.ADMIN, password_hash="x"))
    db.session.commit()
    with pytest.raises(DemoConflict, match="admin"):
        load_demo(now=NOW, force=True)
    assert db.session.scalar(select(func.count()).select_from(Building)) == 0


def test_users_create_makes_an_account_with_a_prompted_password(ctx: Flask) -> None:
    result = ctx.test_cli_runner().invoke(
        args=["users", "create", "ops", "--role", "admin", "--name", "Ops"],
        input="long-enough-pw\nlong-enough-pw\n",
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.username == "ops"))
    assert user is not None and user.check_password("long-enough-pw")
    assert "long-enough-pw" not in result.output


def test_users_create_refuses_a_grid_worker_without_a_grid(ctx: Flask) -> None:
    result = ctx.test_cli_runner().invoke(args=["users", "create", "gw", "--role", "grid_worker"])
    assert result.exit_code != 0 and "--grid" in result.output
    assert db.session.scalar(select(func.count()).select_from(User)) == 0
