"""A resident whose request was merged into another follows the main ticket, gets its
result, rates it and asks for a redo from their own page (services/merged.py)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.factories import PHONE, T0, World, advance, calendar, make_ticket, png_bytes
from tests.tracking_helpers import at, inbox, link, messages_to, post_on
from ticketing.extensions import db
from ticketing.models import OutboxMessage, Photo, Status, Ticket
from ticketing.services import merged, notify, tracking
from ticketing.services.errors import IllegalTransition
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore, clean_photo

OTHER_PHONE = "13900001111"
MERGED_LINE = "您反映的问题已与同一问题合并办理"


def merged_pair(world: World, store: PhotoStore) -> tuple[Ticket, Ticket]:
    """张三丰's ticket (the main one) and 李四's, merged into it by the dispatcher."""
    main = make_ticket(world, store)
    dup = make_ticket(world, store, name="李四", phone=OTHER_PHONE, unit_room="1单元101",
                      description="槐树院1号楼楼道灯坏了")
    perform(dup, "merge", Actor.staff(world.dora), T0, calendar(), target=main)
    db.session.commit()
    return main, dup


def resolve(main: Ticket, world: World, note: str = "已更换灯泡") -> None:
    advance(main, "accepted", world)
    perform(main, "resolve", Actor.staff(world.gina), T0, calendar(), note=note)
    db.session.commit()


# --- what the merged resident sees ------------------------------------------------


def test_the_merged_view_leaves_out_what_residents_wrote_and_masks_staff_notes(
        world: World, store: PhotoStore) -> None:
    main, dup = merged_pair(world, store)
    advance(main, "accepted", world)
    perform(main, "add_info", Actor.resident(), T0, calendar(), note=f"我家电话{PHONE}，随时联系")
    perform(main, "note", Actor.staff(world.gina), T0, calendar(), note="张三丰家门口的灯已订货", public=True)
    perform(main, "note", Actor.staff(world.gina), T0, calendar(), note="内部：供应商", public=False)
    db.session.commit()
    view = merged.main_view(dup)
    assert view is not None and view.ticket.id == main.id
    notes = [e.note for e in view.events]
    assert "张**家门口的灯已订货" in notes
    assert not any(PHONE in n or "张三丰" in n or "供应商" in n for n in notes)
    assert [e.action for e in view.events if e.action == "add_info"] == ["add_info"]
    assert merged.main_view(main) is None


def test_a_merged_residents_page_says_so_and_shows_the_main_tickets_state_and_timeline(
        client: FlaskClient, world: World, store: PhotoStore, ctx: Flask) -> None:
    main, dup = merged_pair(world, store)
    advance(main, "accepted", world)
    perform(main, "note", Actor.staff(world.gina), T0, calendar(), note="张三丰家门口的灯已订货", public=True)
    db.session.commit()
    html = client.get(link(dup, ctx)).get_data(as_text=True)
    assert MERGED_LINE in html
    assert main.number in html and "办理中" in html  # the main ticket's state
    assert "张**家门口的灯已订货" in html
    assert "槐树院1号楼楼道灯坏了" in html  # their own words
    for theirs in ("张三丰", PHONE, "138****5678", "2单元301", "3号楼2单元楼道灯不亮"):
        assert theirs not in html


def test_the_main_tickets_result_photo_is_shown_but_not_its_report_photos(
        client: FlaskClient, world: World, store: PhotoStore, ctx: Flask) -> None:
    main, dup = merged_pair(world, store)
    reported = Photo(ticket=main, kind="report", storage_key=store.write(clean_photo(png_bytes(), 10**6), T0),
                     content_type="image/png", size_bytes=1)
    result = Photo(ticket=main, kind="result", storage_key=store.write(clean_photo(png_bytes(), 10**6), T0),
                   content_type="image/png", size_bytes=1)
    db.session.add_all([reported, result])
    resolve(main, world)
    html = client.get(link(dup, ctx)).get_data(as_text=True)
    assert f"{link(dup, ctx)}/photos/{result.id}" in html
    assert client.get(f"{link(dup, ctx)}/photos/{result.id}").status_code == 200
    assert client.get(f"{link(dup, ctx)}/photos/{reported.id}").status_code == 404


def test_the_main_ticket_is_found_through_a_chain_of_merges(world: World, store: PhotoStore) -> None:
    main, dup = merged_pair(world, store)
    last = make_ticket(world, store, phone="13700002222")
    perform(main, "merge", Actor.staff(world.dora), T0, calendar(), target=last)
    db.session.commit()
    assert merged.main_of(dup).id == last.id
    assert [t.id for t in merged.merged_tickets(last)] == [main.id, dup.id]


# --- the result reaches them --------------------------------------------------------


def test_resolving_the_main_ticket_texts_each_merged_resident_their_own_link(
        world: World, store: PhotoStore, ctx: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ctx.config, "PUBLIC_URL", "https://minhu.example.org")
    main, dup = merged_pair(world, store)
    resolve(main, world, note=f"已更换灯泡，已电话告知{PHONE}")
    [message] = messages_to(OTHER_PHONE, "resolved")
    own_link = "https://minhu.example.org/t/" + tracking.tracking_token(dup, ctx.config["SECRET_KEY"])
    assert own_link in message.body and dup.number in message.body
    assert "已更换灯泡" in message.body and PHONE not in message.body
    assert (message.channel, message.status) == ("sms", "pending")
    assert any(message.id in row.args for row in db.session.scalars(select(OutboxMessage)))
    assert len(messages_to(PHONE, "resolved")) == 1  # the main requester's own, unchanged


def test_the_merged_residents_message_is_written_once_per_event(world: World, store: PhotoStore) -> None:
    main, _dup = merged_pair(world, store)
    resolve(main, world)
    event = next(e for e in main.events if e.action == "resolve")
    assert notify.notify_merged_residents("resolved", main, f"ev{event.id}", T0, "已更换灯泡") == 0
    assert len(messages_to(OTHER_PHONE, "resolved")) == 1


# --- their verdict and their redo request ------------------------------------------


def test_the_page_offers_rating_and_redo_once_the_main_ticket_is_resolved(
        client: FlaskClient, world: World, store: PhotoStore, ctx: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    at(monkeypatch, T0 + timedelta(days=1))
    main, dup = merged_pair(world, store)
    before = client.get(link(dup, ctx)).get_data(as_text=True)
    assert "/merged/rate" not in before and "/merged/redo" not in before
    resolve(main, world)
    html = client.get(link(dup, ctx)).get_data(as_text=True)
    assert f'action="{link(dup, ctx)}/merged/rate"' in html
    assert f'action="{link(dup, ctx)}/merged/redo"' in html
    assert "已更换灯泡" in html


def test_a_merged_resident_rates_the_result_on_their_own_ticket(
        client: FlaskClient, world: World, store: PhotoStore, ctx: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    at(monkeypatch, T0 + timedelta(days=1))
    main, dup = merged_pair(world, store)
    resolve(main, world)
    response = post_on(client, dup, ctx, "merged/rate", rating="unsatisfied", comment="我家那层还是黑的")
    assert response.status_code == 303
    db.session.expire_all()
    assert (dup.status, dup.rating, dup.rating_comment) == (Status.MERGED, "unsatisfied", "我家那层还是黑的")
    assert dup.events[-1].action == "rate_merged" and dup.events[-1].detail["main"] == main.number
    assert (main.status, main.rating) == (Status.RESOLVED, None)  # the main requester's verdict is theirs
    [told] = inbox(world.gina.id, "merged_rated")
    assert dup.number in told.body and "不满意" in told.body
    assert OTHER_PHONE not in told.body


def test_rating_before_the_main_ticket_has_a_result_is_refused(
        client: FlaskClient, world: World, store: PhotoStore, ctx: Flask) -> None:
    main, dup = merged_pair(world, store)
    advance(main, "accepted", world)
    response = post_on(client, dup, ctx, "merged/rate", rating="satisfied")
    assert response.status_code == 409
    db.session.expire_all()
    assert dup.rating is None and dup.events[-1].action == "merge"


def test_a_merged_resident_rates_once(world: World, store: PhotoStore) -> None:
    main, dup = merged_pair(world, store)
    resolve(main, world)
    merged.rate(dup, "satisfied", "", T0, calendar())
    db.session.commit()
    with pytest.raises(IllegalTransition):
        merged.rate(dup, "unsatisfied", "", T0, calendar())
    db.session.refresh(dup)
    assert dup.rating == "satisfied"


def test_a_merged_residents_redo_request_reopens_the_main_ticket(
        client: FlaskClient, world: World, store: PhotoStore, ctx: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    at(monkeypatch, T0 + timedelta(days=2))
    main, dup = merged_pair(world, store)
    resolve(main, world)
    reason = f"灯还是不亮，请打{OTHER_PHONE}"
    response = post_on(client, dup, ctx, "merged/redo", reason=reason)
    assert response.status_code == 303
    db.session.expire_all()
    assert (main.status, main.reopen_count) == (Status.ACCEPTED, 1)
    reopened = main.events[-1]
    assert reopened.action == "reopen" and reopened.detail["merged_from"] == dup.number
    assert OTHER_PHONE not in reopened.note and "灯还是不亮" in reopened.note
    assert (dup.status, dup.events[-1].action, dup.events[-1].note) == (Status.MERGED, "reopen_merged", reason)
    assert len(inbox(world.gina.id, "reopened")) == 1


def test_a_redo_after_seven_days_is_refused_and_changes_nothing(
        client: FlaskClient, world: World, store: PhotoStore, ctx: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    at(monkeypatch, T0 + timedelta(days=8))
    main, dup = merged_pair(world, store)
    resolve(main, world)
    response = post_on(client, dup, ctx, "merged/redo", reason="灯还是不亮")
    assert response.status_code == 409
    db.session.expire_all()
    assert main.status == Status.RESOLVED and dup.events[-1].action == "merge"
    assert "/merged/redo" not in client.get(link(dup, ctx)).get_data(as_text=True)
