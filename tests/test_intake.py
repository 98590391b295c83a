"""The intake service: normalising, validating, placing, numbering, idempotency, photos."""
from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete, func, select, text

from tests.factories import PHONE, T0, TZ, World, make_ticket, png_bytes
from tests.races import at_once
from ticketing.extensions import db
from ticketing.models import Photo, Status, Ticket, TicketCounter, TicketEvent, User
from ticketing.services import intake, numbering, patrol, photos
from ticketing.services.errors import ValidationFailed
from ticketing.services.lifecycle import Actor
from ticketing.services.photos import PhotoStore
from ticketing.services.workdays import cached_calendar

MB = 1024 * 1024


def request_for(world: World, **fields: Any) -> intake.IntakeRequest:
    values: dict[str, Any] = {
        "channel": "web", "description": "楼道灯不亮", "phone": PHONE,
        "category_id": world.category("repair.stair_light").id,
        "building_id": world.building_courtyard.id,
    }
    values.update(fields)
    return intake.IntakeRequest(**values)


def submit(world: World, store: PhotoStore, **fields: Any) -> Ticket:
    ticket, _ = intake.submit(request_for(world, **fields), Actor.resident(), T0, TZ, store, 5 * MB)
    return ticket


def ticket_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Ticket)) or 0


def files_under(store: PhotoStore) -> list[Path]:
    return [p for p in store.root.rglob("*") if p.is_file()]


def test_a_request_becomes_a_submitted_ticket_with_one_event(world: World, store: PhotoStore) -> None:
    ticket = submit(world, store)
    assert ticket.status == Status.SUBMITTED
    assert [e.action for e in ticket.events] == ["submit"]
    assert (ticket.grid_id, ticket.community_id) == (world.grid_a1.id, world.community_a.id)


def test_ticket_numbers_are_the_local_date_and_a_daily_sequence(world: World, store: PhotoStore) -> None:
    first, second = submit(world, store), submit(world, store)
    assert (first.number, second.number) == ("261118-0001", "261118-0002")


def test_full_width_digits_and_spaces_in_the_phone_are_accepted(world: World, store: PhotoStore) -> None:
    ticket = submit(world, store, phone="＋86 138-1234-5678")
    assert ticket.requester_phone == PHONE


@pytest.mark.parametrize("field,value", [
    ("description", ""),
    ("description", "   \n "),
    ("description", "漏" * 2001),
    ("phone", "12345"),
    ("phone", "23812345678"),
    ("building_id", 999999),
    ("category_id", 999999),
    ("name", "名" * 33),
])
def test_bad_input_is_refused_and_stores_nothing(
    world: World, store: PhotoStore, field: str, value: Any
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        submit(world, store, **{field: value})
    assert field in caught.value.errors
    assert ticket_count() == 0


def test_every_problem_is_reported_at_once(world: World, store: PhotoStore) -> None:
    with pytest.raises(ValidationFailed) as caught:
        submit(world, store, description="", phone="1")
    assert {"description", "phone"} <= set(caught.value.errors)


@pytest.mark.parametrize("lat,lon", [
    (39.9, None), (None, 116.4), (float("nan"), 116.4), (39.9, float("inf")), (91.0, 116.4), (39.9, -180.5),
])
def test_half_a_location_or_one_off_the_globe_is_refused(
    world: World, store: PhotoStore, lat: float | None, lon: float | None
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        submit(world, store, lat=lat, lon=lon)
    assert "location" in caught.value.errors
    assert ticket_count() == 0


def test_a_location_on_the_edge_of_the_globe_is_kept(world: World, store: PhotoStore) -> None:
    ticket = submit(world, store, lat=-90.0, lon=180.0)
    assert (ticket.lat, ticket.lon) == (-90.0, 180.0)


def test_a_typed_address_is_placed_by_its_alias(world: World, store: PhotoStore) -> None:
    ticket = submit(world, store, building_id=None, community_id=world.community_a.id,
                    address_text="东怡街79号院3栋2单元")
    assert ticket.complex_id == world.managed.id
    assert ticket.building_id == world.building_managed.id


def test_an_unplaceable_address_stays_at_community_level(world: World, store: PhotoStore) -> None:
    ticket = submit(world, store, building_id=None, community_id=world.community_a.id,
                    address_text="社区东门外的马路")
    assert (ticket.community_id, ticket.grid_id, ticket.complex_id) == (world.community_a.id, None, None)


def test_a_building_and_community_that_disagree_are_refused(world: World, store: PhotoStore) -> None:
    with pytest.raises(ValidationFailed):
        submit(world, store, community_id=world.community_b.id)


def test_the_same_external_message_files_one_ticket(world: World, store: PhotoStore) -> None:
    first = submit(world, store, channel="wechat_oa", external_id="msg-1")
    again = submit(world, store, channel="wechat_oa", external_id="msg-1")
    assert first.id == again.id
    assert ticket_count() == 1


def test_a_repeat_stores_nothing_and_draws_no_number(world: World, store: PhotoStore) -> None:
    from ticketing.models import OutboxMessage

    first, created = intake.submit(request_for(world, channel="wechat_oa", external_id="msg-1"),
                                   Actor.resident(), T0, TZ, store, 5 * MB)
    db.session.commit()
    again, created_again = intake.submit(request_for(world, channel="wechat_oa", external_id="msg-1",
                                                     photos=[png_bytes()]),
                                         Actor.resident(), T0, TZ, store, 5 * MB)
    db.session.commit()
    assert (created, created_again, again.id) == (True, False, first.id)
    assert ticket_count() == 1
    assert db.session.scalar(select(func.count()).select_from(TicketEvent)) == 1
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 1
    assert files_under(store) == []  # the repeat's photo is not kept
    # The next new ticket takes the next number: the repeat drew none.
    assert submit(world, store, external_id="other").number == first.number[:-4] + "0002"


def test_a_repeat_that_no_longer_validates_still_gets_the_first_ticket(world: World, store: PhotoStore) -> None:
    first = submit(world, store, channel="wechat_oa", external_id="msg-1")
    db.session.commit()
    world.category("repair.stair_light").active = False
    db.session.commit()
    again = submit(world, store, channel="wechat_oa", external_id="msg-1")
    assert again.id == first.id
    with pytest.raises(ValidationFailed):  # a new message in that category is refused
        submit(world, store, channel="wechat_oa", external_id="msg-2")
    assert ticket_count() == 1


def test_photos_are_stored_re_encoded(world: World, store: PhotoStore) -> None:
    ticket = submit(world, store, photos=[png_bytes(), png_bytes(fmt="JPEG")])
    assert [p.content_type for p in ticket.photos] == ["image/png", "image/jpeg"]
    assert len(files_under(store)) == 2


def test_a_file_that_only_claims_to_be_an_image_is_refused(world: World, store: PhotoStore) -> None:
    with pytest.raises(ValidationFailed) as caught:
        submit(world, store, photos=[b"\xff\xd8\xff\xe0 not really a jpeg"])
    assert "photos" in caught.value.errors
    assert ticket_count() == 0 and files_under(store) == []


def test_an_oversize_photo_is_a_413(world: World, store: PhotoStore) -> None:
    with pytest.raises(ValidationFailed) as caught:
        intake.submit(request_for(world, photos=[png_bytes()]), Actor.resident(), T0, TZ, store, 50)
    assert caught.value.status == 413
    assert ticket_count() == 0


def test_photos_waiting_too_long_to_be_decoded_are_a_503_and_nothing_is_stored(
    world: World, store: PhotoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    slots = photos.DecodeSlots(1, wait=0)
    monkeypatch.setattr(photos, "_decodes", slots)
    with slots.held(), pytest.raises(ValidationFailed) as caught:
        submit(world, store, photos=[png_bytes()])
    assert caught.value.status == 503 and "photos" in caught.value.errors
    assert ticket_count() == 0 and files_under(store) == []


def test_a_failed_commit_leaves_no_photo_on_disk(
    world: World, store: PhotoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_commit() -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(db.session, "commit", broken_commit)
    with pytest.raises(RuntimeError):
        submit(world, store, photos=[png_bytes()])
    monkeypatch.undo()
    assert files_under(store) == []
    assert ticket_count() == 0


def test_staff_entry_records_who_entered_it(world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, channel="walk_in", actor=Actor.staff(world.dora))
    assert ticket.created_by_id == world.dora.id
    event = db.session.scalar(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id))
    assert event is not None and (event.actor_kind, event.actor_id) == ("staff", world.dora.id)


def numbered_up_to(day: str, last: int) -> None:
    """The day has had `last` numbers from the counter, as before numbers came from
    sequences (and as SQLite still numbers): its sequence is not made yet."""
    db.session.add(TicketCounter(day=day, last=last))
    db.session.commit()
    if numbering.uses_sequences():
        db.session.execute(text(f"DROP SEQUENCE IF EXISTS {numbering.sequence_name(day)}"))
        db.session.commit()
        numbering.forget()


def eight_at_once(app: Flask, world: World, route: bool = True, steps: Callable[[], intake.Steps] | None = None,
                  **request: Any) -> list[tuple[int, str, bool]]:
    """Eight threads file the same request at once through intake on PostgreSQL, each in
    its own session (`steps` makes each one's first steps there); the ticket each got
    back (id, number) and whether it was new. None may raise."""
    ids = (world.category("repair.stair_light").id, world.building_courtyard.id)
    store = PhotoStore(app.config["UPLOAD_FOLDER"])

    def file_one() -> tuple[int, str, bool]:
        req = intake.IntakeRequest(description="灯不亮", phone=PHONE, category_id=ids[0],
                                   building_id=ids[1], **request)
        ticket, created = intake.submit(req, Actor.resident(), T0, TZ, store, 5 * MB, route=route,
                                        steps=steps() if steps is not None else None)
        return ticket.id, ticket.number, created

    return at_once(app, [file_one] * 8)


@pytest.mark.postgres
@pytest.mark.parametrize("route", [True, False])
def test_concurrent_intake_never_repeats_a_number(app: Flask, world: World, route: bool) -> None:
    """Eight threads file the day's first tickets at once on PostgreSQL (so they also race
    to make the day's sequence); every number is distinct."""
    numbered_up_to(T0.astimezone(TZ).strftime("%y%m%d"), 0)
    numbers = [number for _, number, _ in eight_at_once(app, world, route=route, channel="web")]
    assert sorted(numbers) == [f"{T0.astimezone(TZ):%y%m%d}-{n:04d}" for n in range(1, 9)]
    assert db.session.scalar(select(func.count()).select_from(Photo)) == 0


@pytest.mark.postgres
def test_one_message_delivered_eight_times_at_once_files_one_ticket(app: Flask, world: World) -> None:
    """Eight deliveries of one external message race past the look-up in the statement
    that stores it (services/intake.py `_store_at_once`); the unique index lets one in,
    and the others get its ticket."""
    results = eight_at_once(app, world, channel="wechat_oa", external_id="wx:race")
    assert len(results) == 8 and len({ticket_id for ticket_id, _, _ in results}) == 1
    assert sum(created for _, _, created in results) == 1
    assert ticket_count() == 1


@pytest.mark.postgres
def test_one_patrol_report_sent_eight_times_at_once_is_filed_and_taken_once(app: Flask, world: World) -> None:
    """A patrol report's steps are planned before the statement that stores it knows it
    is a repeat (services/intake.py `steps`): of eight deliveries at once, one ticket,
    the worker's, with its three events once, and the worker's row as the one that won
    left it."""
    worker_id = world.gina.id

    def theirs() -> intake.Steps:
        return patrol.theirs(db.session.get_one(User, worker_id), T0, cached_calendar(TZ))

    results = eight_at_once(app, world, route=False, steps=theirs, channel="patrol", external_id="patrol:race")
    assert len({ticket_id for ticket_id, _, _ in results}) == 1 and sum(created for *_, created in results) == 1
    ticket = db.session.scalars(select(Ticket)).one()
    assert (ticket.status, ticket.assignee_id, ticket.version) == (Status.ACCEPTED, worker_id, 1)
    assert db.session.scalars(select(TicketEvent.action).where(TicketEvent.ticket_id == ticket.id)
                              .order_by(TicketEvent.id)).all() == ["submit", "dispatch", "accept"]


def test_chinese_punctuation_is_kept_as_typed(world: World, store: PhotoStore) -> None:
    ticket = submit(world, store, description="楼道灯不亮好几天了，晚上看不见！（3号楼）")
    assert ticket.description == "楼道灯不亮好几天了，晚上看不见！（3号楼）"


def test_full_width_digits_in_an_address_still_find_the_building(world: World, store: PhotoStore) -> None:
    ticket = submit(world, store, building_id=None, community_id=world.community_a.id,
                    address_text="东怡街７９号院３栋")
    assert ticket.building_id == world.building_managed.id


def test_a_grid_given_without_a_building_places_the_ticket_in_it(world: World, store: PhotoStore) -> None:
    ticket = submit(world, store, building_id=None, community_id=world.community_a.id,
                    grid_id=world.grid_a2.id, address_text="Location 39.9, 116.4")
    assert (ticket.grid_id, ticket.complex_id) == (world.grid_a2.id, None)


def test_a_grid_of_another_community_is_refused(world: World, store: PhotoStore) -> None:
    with pytest.raises(ValidationFailed) as caught:
        submit(world, store, building_id=None, community_id=world.community_a.id, grid_id=world.grid_b1.id)
    assert "grid_id" in caught.value.errors
    assert ticket_count() == 0


@pytest.mark.parametrize("route", [True, False])
def test_numbers_go_past_four_digits_on_a_busy_day(world: World, store: PhotoStore, route: bool) -> None:
    """Beijing's 12345 takes about 70,000 a day: the 10,000th ticket is …-10000, not a repeat.
    On PostgreSQL this is also a day the counter numbered before sequences: it goes on."""
    numbered_up_to(T0.astimezone(TZ).strftime("%y%m%d"), 9999)
    ticket = make_ticket(world, store, route=route)
    assert ticket.number == T0.astimezone(TZ).strftime("%y%m%d") + "-10000"


@pytest.mark.postgres
@pytest.mark.parametrize("route", [True, False])
def test_on_postgresql_each_day_numbers_from_its_own_sequence_without_a_counter_row(
        world: World, store: PhotoStore, route: bool) -> None:
    for day in (T0, T0 + timedelta(days=1)):
        numbered_up_to(day.astimezone(TZ).strftime("%y%m%d"), 0)
    db.session.execute(delete(TicketCounter))
    db.session.commit()
    numbers = [make_ticket(world, store, now=at, route=route).number
               for at in (T0, T0, T0 + timedelta(days=1), T0 + timedelta(seconds=1))]
    today, tomorrow = T0.astimezone(TZ).strftime("%y%m%d"), (T0 + timedelta(days=1)).astimezone(TZ).strftime("%y%m%d")
    assert numbers == [f"{today}-0001", f"{today}-0002", f"{tomorrow}-0001", f"{today}-0003"]
    assert db.session.scalar(select(func.count()).select_from(TicketCounter)) == 0  # no row to queue on


@pytest.mark.postgres
def test_on_postgresql_the_sequences_of_days_long_past_are_dropped(world: World, store: PhotoStore) -> None:
    days = [T0 - timedelta(days=n) for n in (9, 8, 7, 0)]
    for at in days:
        make_ticket(world, store, now=at)
    names = [numbering.sequence_name(at.astimezone(TZ).strftime("%y%m%d")) for at in days]

    def sequences() -> set[str]:
        return set(db.session.scalars(text("SELECT sequencename FROM pg_sequences WHERE sequencename LIKE 'ticket%'")))

    before = sequences()
    dropped = numbering.drop_days_before((T0 - timedelta(days=7)).astimezone(TZ).date())
    left = sequences()
    assert dropped == len(before - left) >= 2  # other tests' older days go too
    assert (names[0] in left, names[1] in left, names[2] in left, names[3] in left) == (False, False, True, True)
    assert make_ticket(world, store, now=T0).number.endswith("-0002")  # today's goes on


@pytest.mark.postgres
def test_on_postgresql_a_routed_ticket_is_stored_in_one_statement(world: World, store: PhotoStore) -> None:
    """Number, ticket, submit event and routing job: one round trip; the rows are all there."""
    from sqlalchemy import event

    from ticketing.models import OutboxMessage

    writes: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith("SELECT"):
            writes.append(statement)

    numbering.prepare_day(T0.astimezone(TZ).strftime("%y%m%d"))  # made once a day per process
    event.listen(db.engine, "before_cursor_execute", record)
    try:
        ticket = make_ticket(world, store, route=True)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert len(writes) == 1 and writes[0].lstrip().startswith("WITH")
    [submitted] = db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)).all()
    assert (submitted.action, submitted.to_status, submitted.detail["channel"]) == ("submit", "submitted", "web")
    job = db.session.scalars(select(OutboxMessage)).one()
    assert (job.job, job.args, job.queue, job.done_at) == ("workers.jobs.route_ticket", [ticket.id], "high", None)
    assert (ticket.status, ticket.version, ticket.unrouted_reason, ticket.extra) == (Status.SUBMITTED, 1, "", {})
