"""Retention: the personal data of tickets closed more than RETENTION_DAYS ago is erased;
open and recent tickets, counts and ledgers stay; a dry run writes nothing; twice is once."""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from config import Config, ConfigError
from tests.factories import PHONE, T0, TZ, World, advance, calendar, make_ticket, png_bytes
from ticketing.extensions import db
from ticketing.models import Ledger, LedgerLine, Notification, Photo, Status, Ticket, TicketEvent
from ticketing.services import retention
from ticketing.services.ledger import compile_day
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore

DAYS = 1095
LATER = T0 + timedelta(days=DAYS + 1)  # the first ticket closed at T0 is then due
TEXT = "楼道灯坏了，请打13912345678找我，住2单元301"


def closed_ticket(world: World, store: PhotoStore, note: str = "") -> Ticket:
    """A ticket filed, handled and closed at T0, with a photo, a point and an openid."""
    ticket = make_ticket(world, store, description=TEXT, photos=[png_bytes()], lat=39.9, lon=116.4,
                         openid="o-resident-1", address_text="东怡街79号院3栋2单元301")
    advance(ticket, "resolved", world)
    if note:
        perform(ticket, "note", Actor.staff(world.adam), T0, calendar(), note=note)
    perform(ticket, "rate", Actor.resident(), T0, calendar(), rating="satisfied",
            comment="谢谢！有事打13912345678")
    db.session.commit()
    assert ticket.status == Status.CLOSED
    return ticket


def reload(ticket: Ticket) -> Ticket:
    db.session.expire_all()
    return db.session.get(Ticket, ticket.id)


def test_an_old_closed_ticket_loses_its_requesters_data(world: World, store: PhotoStore) -> None:
    ticket = closed_ticket(world, store)
    result = retention.purge(LATER, DAYS, store)
    assert result.tickets == 1 and result.numbers == [ticket.number]
    ticket = reload(ticket)
    assert (ticket.requester_name, ticket.requester_phone, ticket.unit_room) == ("", "", "")
    assert ticket.resident_openid is None and ticket.lat is None and ticket.lon is None
    assert ticket.address_text == "东怡街79号院3栋***"
    assert "13912345678" not in ticket.description and "2单元301" not in ticket.description
    assert "13912345678" not in ticket.rating_comment
    assert ticket.personal_data_erased_at == LATER


def test_its_photos_rows_and_files_are_deleted(world: World, store: PhotoStore) -> None:
    ticket = closed_ticket(world, store)
    key = db.session.scalars(select(Photo.storage_key).where(Photo.ticket_id == ticket.id)).one()
    assert store.path(key).exists()
    assert retention.purge(LATER, DAYS, store).photos == 1
    assert db.session.scalar(select(func.count()).select_from(Photo)) == 0
    assert not store.path(key).exists()


def test_history_notes_and_resident_messages_are_masked(world: World, store: PhotoStore) -> None:
    ticket = closed_ticket(world, store, note="回电13912345678")
    retention.purge(LATER, DAYS, store)
    notes = db.session.scalars(select(TicketEvent.note).where(TicketEvent.ticket_id == ticket.id)).all()
    assert not any("13912345678" in note for note in notes)
    messages = db.session.scalars(select(Notification).where(Notification.ticket_id == ticket.id,
                                                             Notification.channel != "inbox")).all()
    assert messages and all(m.address == "" for m in messages)


def test_recent_and_open_tickets_are_left_alone(world: World, store: PhotoStore) -> None:
    old = closed_ticket(world, store)
    recent = make_ticket(world, store, now=T0 + timedelta(days=30), name="李四")
    advance(recent, "closed", world, now=T0 + timedelta(days=30))
    still_open = make_ticket(world, store, name="王五")
    retention.purge(LATER, DAYS, store)
    assert reload(old).requester_phone == ""
    assert reload(recent).requester_name == "李四" and reload(recent).requester_phone == PHONE
    assert reload(still_open).requester_name == "王五" and reload(still_open).personal_data_erased_at is None


def test_counts_and_ledgers_stay(world: World, store: PhotoStore) -> None:
    ticket = closed_ticket(world, store)
    compile_day(date(2026, 11, 18), TZ, T0 + timedelta(days=1))
    before = db.session.scalars(select(Ledger)).all()
    summary = [(row.grid_id, row.new, row.closed, row.resolution_num, row.satisfaction_den) for row in before]
    retention.purge(LATER, DAYS, store)
    db.session.expire_all()
    after = [(row.grid_id, row.new, row.closed, row.resolution_num, row.satisfaction_den)
             for row in db.session.scalars(select(Ledger))]
    assert after == summary
    lines = db.session.scalars(select(LedgerLine).where(LedgerLine.ticket_id == ticket.id)).all()
    assert lines and all(line.status == Status.CLOSED for line in lines)
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 1


def test_a_dry_run_lists_and_writes_nothing(world: World, store: PhotoStore) -> None:
    ticket = closed_ticket(world, store)
    result = retention.purge(LATER, DAYS, store, dry_run=True)
    assert (result.tickets, result.photos, result.numbers) == (1, 1, [ticket.number])
    ticket = reload(ticket)
    assert ticket.requester_phone == PHONE and ticket.personal_data_erased_at is None
    assert db.session.scalar(select(func.count()).select_from(Photo)) == 1


def test_purging_twice_erases_once(world: World, store: PhotoStore) -> None:
    closed_ticket(world, store)
    assert retention.purge(LATER, DAYS, store).tickets == 1
    again = retention.purge(LATER + timedelta(days=1), DAYS, store)
    assert again.tickets == 0 and again.numbers == []


def test_batches_cover_every_due_ticket(world: World, store: PhotoStore) -> None:
    tickets = [closed_ticket(world, store) for _ in range(3)]
    assert retention.purge(LATER, DAYS, store, batch=2).tickets == 3
    assert all(reload(t).personal_data_erased_at is not None for t in tickets)


def test_the_command_dry_run_prints_the_count_and_numbers(ctx: Flask, world: World, store: PhotoStore) -> None:
    ticket = closed_ticket(world, store)
    ticket.closed_at = T0 - timedelta(days=4000)  # long before the real clock's cutoff
    db.session.commit()
    result = ctx.test_cli_runner().invoke(args=["privacy", "purge", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "1 tickets would be erased" in result.output and ticket.number in result.output
    assert reload(ticket).requester_phone == PHONE


def test_the_command_erases(ctx: Flask, world: World, store: PhotoStore) -> None:
    ticket = closed_ticket(world, store)
    ticket.closed_at = T0 - timedelta(days=4000)
    db.session.commit()
    result = ctx.test_cli_runner().invoke(args=["privacy", "purge"])
    assert result.exit_code == 0 and "1 tickets erased" in result.output
    assert reload(ticket).requester_phone == ""


def test_the_nightly_job_purges(ctx: Flask, world: World, store: PhotoStore) -> None:
    from workers.jobs import retention_purge

    ticket = closed_ticket(world, store)
    ticket.closed_at = T0 - timedelta(days=4000)
    db.session.commit()
    assert retention_purge().startswith("personal data erased of 1 tickets")


def test_retention_days_default_to_three_years(tmp_path: Path) -> None:
    assert Config.from_env({"MINHU_INSTANCE": str(tmp_path)}).retention_days == 1095


@pytest.mark.parametrize("value", ["three years", "7", "-1"])
def test_a_malformed_or_tiny_retention_is_a_config_error(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError):
        Config.from_env({"MINHU_INSTANCE": str(tmp_path), "RETENTION_DAYS": value})
