"""挂起 with an expected date: asked for, stored, reminded on that date once, shown in the ledger."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import csrf_token, login
from tests.factories import T0, TZ, World, advance, calendar, make_ticket
from ticketing.extensions import db
from ticketing.models import KeyKind, Ledger, Notification, Status, Ticket, utcnow
from ticketing.services import apikeys, holds, ledger
from ticketing.services.errors import InvalidInput
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore
from workers.jobs import remind_holds

TODAY = T0.astimezone(TZ).date()  # Wednesday 2026-11-18


def at_local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ).astimezone(UTC)


def hold(ticket: Ticket, world: World, until: Any, at: datetime = T0, note: str = "等待配件到货") -> None:
    perform(ticket, "hold", Actor.staff(world.gina), at, calendar(), note=note, until=until)
    db.session.commit()


def reminders(ticket: Ticket) -> list[Notification]:
    return list(db.session.scalars(select(Notification).where(
        Notification.ticket_id == ticket.id, Notification.kind == "hold_due")))


def test_a_hold_stores_what_is_awaited_and_until_when(world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    hold(ticket, world, TODAY + timedelta(days=3))
    assert ticket.status == Status.ON_HOLD
    assert (ticket.hold_until, ticket.hold_reason) == (TODAY + timedelta(days=3), "等待配件到货")
    assert ticket.events[-1].detail["until"] == (TODAY + timedelta(days=3)).isoformat()


@pytest.mark.parametrize("until", [None, "2026-11-20", TODAY - timedelta(days=1),
                                   TODAY + timedelta(days=holds.MAX_HOLD_DAYS + 1)])
def test_a_hold_without_a_date_in_the_next_30_days_changes_nothing(
        world: World, store: PhotoStore, until: Any) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    with pytest.raises(InvalidInput) as refused:
        hold(ticket, world, until)
    assert refused.value.field == "until"
    db.session.refresh(ticket)
    assert ticket.status == Status.ACCEPTED and ticket.held_at is None


@pytest.mark.parametrize("days", [0, holds.MAX_HOLD_DAYS])
def test_today_and_30_days_ahead_are_the_bounds(world: World, store: PhotoStore, days: int) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    hold(ticket, world, TODAY + timedelta(days=days))
    assert ticket.status == Status.ON_HOLD


def test_the_handler_is_reminded_on_the_expected_date_once(world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    hold(ticket, world, TODAY + timedelta(days=2), note="等待物业报价")
    assert holds.remind_due(at_local(TODAY + timedelta(days=1), 20, 5), TZ) == 0
    assert reminders(ticket) == []
    assert holds.remind_due(at_local(TODAY + timedelta(days=2), 8, 5), TZ) == 1
    db.session.commit()
    [reminder] = reminders(ticket)
    assert reminder.user_id == world.gina.id and reminder.channel == "inbox"
    assert ticket.number in reminder.body and "等待物业报价" in reminder.body
    assert holds.remind_due(at_local(TODAY + timedelta(days=2), 9, 5), TZ) == 0  # an hour later: not again
    assert holds.remind_due(at_local(TODAY + timedelta(days=4), 9, 5), TZ) == 0  # nor days later
    assert len(reminders(ticket)) == 1


def test_a_new_hold_is_reminded_again_and_a_resumed_one_not_at_all(world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    hold(ticket, world, TODAY + timedelta(days=1))
    holds.remind_due(at_local(TODAY + timedelta(days=1), 8, 5), TZ)
    db.session.commit()
    resumed_at = at_local(TODAY + timedelta(days=1), 9)
    perform(ticket, "resume", Actor.staff(world.gina), resumed_at, calendar())
    db.session.commit()
    assert (ticket.hold_until, ticket.hold_reason) == (None, "")
    hold(ticket, world, TODAY + timedelta(days=3), at=resumed_at + timedelta(hours=1), note="等待第二批配件")
    assert holds.remind_due(at_local(TODAY + timedelta(days=3), 8, 5), TZ) == 1
    db.session.commit()
    assert len(reminders(ticket)) == 2
    other = advance(make_ticket(world, store), "accepted", world)
    hold(other, world, TODAY + timedelta(days=1))
    perform(other, "resume", Actor.staff(world.gina), T0 + timedelta(hours=2), calendar())
    db.session.commit()
    assert holds.remind_due(at_local(TODAY + timedelta(days=5), 8, 5), TZ) == 0
    assert reminders(other) == []


def test_the_scheduled_job_reminds_and_commits(world: World, store: PhotoStore) -> None:
    now = utcnow()
    ticket = advance(make_ticket(world, store, now=now - timedelta(hours=1)), "accepted", world,
                     now=now - timedelta(hours=1))
    hold(ticket, world, now.astimezone(TZ).date(), at=now - timedelta(minutes=30))
    assert remind_holds() == "hold reminders 1"
    db.session.rollback()  # what the job wrote is committed
    assert len(reminders(ticket)) == 1
    assert remind_holds() == "hold reminders 0"


# --- The ticket page, the workbench, the API ----------------------------------------------


def act(client: FlaskClient, ticket: Ticket, name: str, **data: object) -> Any:
    token = csrf_token(client, f"/tickets/{ticket.number}")
    return client.post(f"/tickets/{ticket.number}/act/{name}", data={"csrf_token": token, **data},
                       content_type="multipart/form-data")


def test_the_hold_form_asks_until_when_and_the_page_and_workbench_show_it(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    client.get("/lang/en")
    ticket = advance(make_ticket(world, store), "accepted", world)
    login(client, world.gina)
    page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert 'id="hold-until"' in page and 'type="date"' in page
    refused = act(client, ticket, "hold", note="等待配件")
    assert refused.status_code == 400 and 'id="action-hold" open' in refused.get_data(as_text=True)
    until = (utcnow().astimezone(TZ).date() + timedelta(days=5)).isoformat()
    assert act(client, ticket, "hold", note="等待配件", until=until).status_code == 303
    page = client.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "On hold until" in page and until in page
    assert f"On hold until {until}" in client.get("/workbench/?tab=hold").get_data(as_text=True)


def test_the_api_holds_with_an_expected_date_and_shows_it(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    _row, key = apikeys.issue(KeyKind.STAFF, "gina's phone", T0, user=world.gina)
    url, headers = f"/api/v1/tickets/{ticket.number}/transitions", {"Authorization": f"Bearer {key}"}
    refused = client.post(url, json={"action": "hold", "note": "等待配件"}, headers=headers)
    assert refused.status_code == 422 and "until" in refused.get_json()["errors"]
    past = client.post(url, json={"action": "hold", "note": "等待配件", "until": "2020-01-01"}, headers=headers)
    assert past.status_code == 422 and "until" in past.get_json()["errors"]
    until = (utcnow().astimezone(TZ).date() + timedelta(days=2)).isoformat()
    answer = client.post(url, json={"action": "hold", "note": "等待配件", "until": until}, headers=headers)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["status"], body["hold_until"], body["hold_reason"]) == ("on_hold", until, "等待配件")


# --- The ledger ------------------------------------------------------------------------------


def test_the_ledger_shows_tickets_on_hold_at_the_end_and_the_time_on_hold_of_those_resolved(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    still = advance(make_ticket(world, store), "accepted", world)
    hold(still, world, TODAY + timedelta(days=2))
    done = advance(make_ticket(world, store, category="environment.litter"), "accepted", world)
    hold(done, world, TODAY)
    perform(done, "resume", Actor.staff(world.gina), T0 + timedelta(hours=3), calendar())
    perform(done, "resolve", Actor.staff(world.gina), T0 + timedelta(hours=4), calendar(), note="已处理")
    never = advance(make_ticket(world, store, building=world.building_managed), "resolved", world)
    db.session.commit()
    ledger.compile_day(TODAY, TZ, T0 + timedelta(days=1))
    row = db.session.scalar(select(Ledger).where(Ledger.grid_id == world.grid_a1.id))
    assert row is not None and never.paused_seconds == 0
    assert row.on_hold_at_end == 1
    assert (row.hold_n, row.hold_total_s) == (1, 3 * 3600)
    client.get("/lang/en")
    login(client, world.sam)
    html = client.get(f"/ledger/grid/{world.grid_a1.code}/{TODAY.isoformat()}").get_data(as_text=True)
    assert "On hold at the end" in html and "Time on hold" in html
    assert "over 1 resolved ticket that was held" in html
