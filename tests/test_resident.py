"""The resident's pages over HTTP: filing, tracking, rating, reopening, photos."""
from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from tests.conftest import csrf_from, csrf_token
from tests.factories import PHONE, T0, World, advance, calendar, make_ticket, png_bomb, png_bytes
from tests.resident_helpers import form_data, post_report, ticket_count
from ticketing import web
from ticketing.extensions import db
from ticketing.models import Status, Ticket
from ticketing.services import tracking
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore

# --- helpers ----------------------------------------------------------------




def stored_files(app: Flask) -> list[Path]:
    return [p for p in Path(app.config["UPLOAD_FOLDER"]).rglob("*") if p.is_file()]






def link(ticket: Ticket, app: Flask) -> str:
    return "/t/" + tracking.tracking_token(ticket, app.config["SECRET_KEY"])


def at(monkeypatch: pytest.MonkeyPatch, when: Any) -> None:
    """Set the web layer's clock."""
    monkeypatch.setattr(web, "now", lambda: when)


def assert_refused_without_trace(response: TestResponse, ctx: Flask, status: int = 400) -> None:
    assert response.status_code == status
    assert ticket_count() == 0
    assert stored_files(ctx) == []


# --- start page -------------------------------------------------------------


def test_the_start_page_offers_reporting_tracking_and_staff_sign_in(client: FlaskClient) -> None:
    client.get("/lang/en")
    html = client.get("/").get_data(as_text=True)
    assert "Report a problem" in html and 'href="/report"' in html
    assert "Track my request" in html and 'href="/track"' in html
    assert 'href="/auth/login"' in html


# --- filing a request -------------------------------------------------------


def test_the_report_form_groups_categories_and_places(client: FlaskClient, world: World) -> None:
    html = client.get("/report").get_data(as_text=True)
    assert "维修" in html and "楼道灯不亮" in html
    assert f'<optgroup label="{world.community_a.name}" data-parent="{world.community_a.id}">' in html
    assert f'data-parent="{world.courtyard.id}"' in html
    assert 'type="file"' in html and 'accept="image/*"' in html and "multiple" in html


def test_filing_a_valid_request_creates_one_ticket_with_one_submit_event_and_shows_the_number(
    client: FlaskClient, world: World, ctx: Flask
) -> None:
    response = post_report(client, form_data(world), photos=[(png_bytes(), "light.png")])
    assert response.status_code == 303
    ticket = db.session.scalars(select(Ticket)).one()
    assert ticket.channel == "web" and ticket.status == Status.SUBMITTED
    assert ticket.building_id == world.building_courtyard.id
    assert [e.action for e in ticket.events] == ["submit"]
    assert len(ticket.photos) == 1 and len(stored_files(ctx)) == 1
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert ticket.number in page
    assert "http://localhost" + link(ticket, ctx) in page


def test_a_typed_address_with_a_community_is_enough_to_file(client: FlaskClient, world: World) -> None:
    response = post_report(client, form_data(
        world, complex_id="", building_id="", address_text="东怡街79号院3栋门口"))
    assert response.status_code == 303
    ticket = db.session.scalars(select(Ticket)).one()
    assert ticket.complex_id == world.managed.id and ticket.building_id == world.building_managed.id


def test_an_empty_description_is_refused_beside_its_field(client: FlaskClient, world: World, ctx: Flask) -> None:
    client.get("/lang/en")
    response = post_report(client, form_data(world, description="   "))
    assert_refused_without_trace(response, ctx)
    assert "Please describe the problem." in response.get_data(as_text=True)


def test_a_description_over_2000_characters_is_refused(client: FlaskClient, world: World, ctx: Flask) -> None:
    response = post_report(client, form_data(world, description="漏" * 2001))
    assert_refused_without_trace(response, ctx)


def test_a_bad_phone_number_is_refused(client: FlaskClient, world: World, ctx: Flask) -> None:
    client.get("/lang/en")
    response = post_report(client, form_data(world, phone="12345"))
    assert_refused_without_trace(response, ctx)
    assert "Enter an 11-digit mobile number" in response.get_data(as_text=True)


def test_an_unknown_building_is_refused(client: FlaskClient, world: World, ctx: Flask) -> None:
    response = post_report(client, form_data(world, complex_id="", building_id="999999"))
    assert_refused_without_trace(response, ctx)


def test_a_building_id_that_is_not_a_number_is_refused(client: FlaskClient, world: World, ctx: Flask) -> None:
    response = post_report(client, form_data(world, complex_id="", building_id="3; DROP TABLE"))
    assert_refused_without_trace(response, ctx)


def test_a_text_file_named_jpg_is_refused_and_leaves_no_file(
    client: FlaskClient, world: World, ctx: Flask
) -> None:
    client.get("/lang/en")
    response = post_report(client, form_data(world), photos=[(b"not a picture at all", "photo.jpg")])
    assert_refused_without_trace(response, ctx)
    assert "Photos must be JPEG, PNG or WebP images." in response.get_data(as_text=True)


def test_a_photo_over_the_size_limit_is_refused_with_413(client: FlaskClient, world: World, ctx: Flask) -> None:
    big = png_bytes() + b"\0" * ctx.config["MAX_PHOTO_BYTES"]
    response = post_report(client, form_data(world), photos=[(big, "big.png")])
    assert_refused_without_trace(response, ctx, status=413)
    assert 'name="description"' in response.get_data(as_text=True)  # the form, not a bare error page


def test_a_png_bomb_is_refused_with_413_and_leaves_no_trace(
    client: FlaskClient, world: World, ctx: Flask
) -> None:
    client.get("/lang/en")
    response = post_report(client, form_data(world), photos=[(png_bomb(), "screenshot.png")])
    assert_refused_without_trace(response, ctx, status=413)
    assert "This photo has too many pixels. Please send a smaller one." in response.get_data(as_text=True)


def test_four_photos_are_refused(client: FlaskClient, world: World, ctx: Flask) -> None:
    response = post_report(client, form_data(world), photos=[(png_bytes(), f"{i}.png") for i in range(4)])
    assert_refused_without_trace(response, ctx)


def test_a_good_photo_beside_a_bad_field_leaves_no_file(client: FlaskClient, world: World, ctx: Flask) -> None:
    response = post_report(client, form_data(world, phone=""), photos=[(png_bytes(), "ok.png")])
    assert_refused_without_trace(response, ctx)


def test_a_report_without_csrf_token_is_refused(client: FlaskClient, world: World, ctx: Flask) -> None:
    response = client.post("/report", data=form_data(world))
    assert_refused_without_trace(response, ctx)


def test_every_error_is_shown_at_once(client: FlaskClient, world: World, ctx: Flask) -> None:
    client.get("/lang/en")
    response = post_report(client, form_data(world, description="", phone="1", category_id=""))
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Please describe the problem." in html
    assert "Enter an 11-digit mobile number" in html
    assert "Choose what kind of problem it is." in html


def test_the_choices_made_survive_an_error(client: FlaskClient, world: World) -> None:
    category = world.category("environment.litter")
    response = post_report(client, form_data(world, category_id=str(category.id), phone="bad"))
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert re.search(rf'value="{category.id}"\s+checked', html)
    assert f'<option value="{world.community_a.id}" selected>' in html
    assert f'<option value="{world.courtyard.id}" selected>' in html
    assert f'<option value="{world.building_courtyard.id}" selected>' in html
    assert "楼道灯不亮，晚上看不见台阶" in html and 'value="张三丰"' in html


# --- tracking by number and phone -------------------------------------------


def test_tracking_by_number_and_last_4_digits_opens_the_ticket(
    client: FlaskClient, world: World, store: PhotoStore, ctx: Flask
) -> None:
    ticket = make_ticket(world, store)
    token = csrf_token(client, "/track")
    response = client.post("/track", data={"number": ticket.number.lower(), "last4": PHONE[-4:], "csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(link(ticket, ctx))


def test_a_wrong_phone_and_an_unknown_number_get_the_same_answer(
    client: FlaskClient, world: World, store: PhotoStore
) -> None:
    ticket = make_ticket(world, store)
    unknown = ticket.number[:-1] + ("0" if ticket.number[-1] != "0" else "1")
    token = csrf_token(client, "/track")
    wrong_pair = client.post("/track", data={"number": ticket.number, "last4": "0000", "csrf_token": token})
    no_such = client.post("/track", data={"number": unknown, "last4": PHONE[-4:], "csrf_token": token})

    def comparable(response: TestResponse, number: str, last4: str) -> str:
        html = response.get_data(as_text=True)
        html = html.replace(csrf_from(html), "CSRF").replace(number, "NUMBER")
        return html.replace(f'value="{last4}"', 'value="LAST4"')

    assert wrong_pair.status_code == no_such.status_code == 404
    assert comparable(wrong_pair, ticket.number, "0000") == comparable(no_such, unknown, PHONE[-4:])


def test_guessing_the_phone_digits_is_stopped_after_ten_tries(
    client: FlaskClient, world: World, store: PhotoStore
) -> None:
    ticket = make_ticket(world, store)
    token = csrf_token(client, "/track")
    for guess in range(10):
        client.post("/track", data={"number": ticket.number, "last4": f"{guess:04d}", "csrf_token": token})
    right = client.post("/track", data={"number": ticket.number, "last4": PHONE[-4:], "csrf_token": token})
    assert right.status_code == 429


def test_a_lockout_looks_the_same_for_an_unknown_number(
    client: FlaskClient, world: World, store: PhotoStore
) -> None:
    token = csrf_token(client, "/track")
    for guess in range(11):
        last = client.post("/track", data={"number": "991231-9999", "last4": f"{guess:04d}", "csrf_token": token})
    assert last.status_code == 429


def test_tracking_with_a_malformed_last4_is_refused_beside_the_field(client: FlaskClient, world: World) -> None:
    token = csrf_token(client, "/track")
    response = client.post("/track", data={"number": "X", "last4": "12a", "csrf_token": token})
    assert response.status_code == 400


# --- the tracking page ------------------------------------------------------


def test_the_tracking_page_shows_the_public_timeline_and_masked_requester(
    client: FlaskClient, world: World, store: PhotoStore, ctx: Flask
) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    perform(ticket, "note", Actor.staff(world.gina), T0, calendar(), note="内部备注：住户难沟通", public=False)
    perform(ticket, "note", Actor.staff(world.gina), T0, calendar(), note="明天上午上门", public=True)
    db.session.commit()
    html = client.get(link(ticket, ctx)).get_data(as_text=True)
    assert ticket.number in html
    assert "明天上午上门" in html
    assert "内部备注" not in html
    assert "138****5678" in html and PHONE not in html
    assert "张**" in html and "张三丰" not in html
    assert "2单元301" not in html
    assert world.gina.display_name not in html


def test_the_tracking_page_shows_the_deadline_in_local_time(
    client: FlaskClient, world: World, store: PhotoStore, ctx: Flask
) -> None:
    ticket = advance(make_ticket(world, store), "dispatched", world)
    html = client.get(link(ticket, ctx)).get_data(as_text=True)
    local = ticket.accept_due_at.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    assert local in html


def test_a_forged_token_is_not_found(client: FlaskClient, world: World, store: PhotoStore, ctx: Flask) -> None:
    ticket = make_ticket(world, store)
    assert client.get(link(ticket, ctx) + "x").status_code == 404
    assert client.get("/t/not-a-token").status_code == 404


def test_a_resolved_ticket_offers_rating_and_reopening(
    client: FlaskClient, world: World, store: PhotoStore, ctx: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(monkeypatch, T0 + timedelta(days=1))
    ticket = advance(make_ticket(world, store), "resolved", world)
    html = client.get(link(ticket, ctx)).get_data(as_text=True)
    assert "已更换灯泡" in html
    assert f'action="{link(ticket, ctx)}/rate"' in html
    assert f'action="{link(ticket, ctx)}/reopen"' in html


def test_a_closed_ticket_shows_the_rating_given(
    client: FlaskClient, world: World, store: PhotoStore, ctx: Flask
) -> None:
    ticket = advance(make_ticket(world, store), "closed", world)
    client.get("/lang/en")
    html = client.get(link(ticket, ctx)).get_data(as_text=True)
    assert "Satisfied" in html
    assert "/rate" not in html and "/reopen" not in html


# --- rating and reopening ---------------------------------------------------


def post_on_ticket(client: FlaskClient, ticket: Ticket, ctx: Flask, action: str, **data: str) -> TestResponse:
    token = csrf_token(client, "/track")  # the token belongs to the session, not the page
    return client.post(f"{link(ticket, ctx)}/{action}", data={"csrf_token": token, **data})


def test_rating_a_resolved_ticket_closes_it(
    client: FlaskClient, world: World, store: PhotoStore, ctx: Flask
) -> None:
    ticket = advance(make_ticket(world, store), "resolved", world)
    response = post_on_ticket(client, ticket, ctx, "rate", rating="basic", comment="灯亮了")
    assert response.status_code == 303
    db.session.refresh(ticket)
    assert ticket.status == Status.CLOSED and ticket.rating == "basic" and ticket.rating_comment == "灯亮了"
    assert ticket.events[-1].action == "rate" and ticket.events[-1].actor_kind == "resident"


def test_rating_a_ticket_that_is_not_resolved_fails_and_changes_nothing(
    client: FlaskClient, world: World, store: PhotoStore, ctx: Flask
) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    events = len(ticket.events)
    response = post_on_ticket(client, ticket, ctx, "rate", rating="satisfied")
    assert response.status_code == 409
    db.session.expire_all()
    assert ticket.status == Status.ACCEPTED and ticket.rating is None
    assert len(ticket.events) == events


def test_rating_without_a_choice_is_refused_beside_the_field(
    client: FlaskClient, world: World, store: PhotoStore, ctx: Flask
) -> None:
    client.get("/lang/en")
    ticket = advance(make_ticket(world, store), "resolved", world)
    response = post_on_ticket(client, ticket, ctx, "rate", comment="?")
    assert response.status_code == 400
    assert "Choose how satisfied you are." in response.get_data(as_text=True)
    db.session.expire_all()
    assert ticket.status == Status.RESOLVED


def test_rating_without_csrf_token_is_refused(
    client: FlaskClient, world: World, store: PhotoStore, ctx: Flask
) -> None:
    ticket = advance(make_ticket(world, store), "resolved", world)
    response = client.post(f"{link(ticket, ctx)}/rate", data={"rating": "satisfied"})
    assert response.status_code == 400
    db.session.expire_all()
    assert ticket.status == Status.RESOLVED


def test_reopening_within_7_days_returns_the_ticket_to_accepted(
    client: FlaskClient, world: World, store: PhotoStore, ctx: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = advance(make_ticket(world, store), "resolved", world)
    at(monkeypatch, T0 + timedelta(days=6))
    response = post_on_ticket(client, ticket, ctx, "reopen", reason="灯又不亮了")
    assert response.status_code == 303
    db.session.refresh(ticket)
    assert ticket.status == Status.ACCEPTED and ticket.reopen_count == 1
    assert ticket.events[-1].action == "reopen" and ticket.events[-1].note == "灯又不亮了"


def test_reopening_after_7_days_is_refused(
    client: FlaskClient, world: World, store: PhotoStore, ctx: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = advance(make_ticket(world, store), "resolved", world)
    events = len(ticket.events)
    at(monkeypatch, T0 + timedelta(days=8))
    response = post_on_ticket(client, ticket, ctx, "reopen", reason="灯又不亮了")
    assert response.status_code == 409
    db.session.expire_all()
    assert ticket.status == Status.RESOLVED and ticket.reopen_count == 0
    assert len(ticket.events) == events


def test_after_7_days_the_reopen_form_is_not_offered(
    client: FlaskClient, world: World, store: PhotoStore, ctx: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = advance(make_ticket(world, store), "resolved", world)
    at(monkeypatch, T0 + timedelta(days=8))
    html = client.get(link(ticket, ctx)).get_data(as_text=True)
    assert "/reopen" not in html and "/rate" in html


def test_reopening_without_a_reason_is_refused(
    client: FlaskClient, world: World, store: PhotoStore, ctx: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = advance(make_ticket(world, store), "resolved", world)
    at(monkeypatch, T0 + timedelta(days=1))
    response = post_on_ticket(client, ticket, ctx, "reopen", reason="  ")
    assert response.status_code == 400
    db.session.expire_all()
    assert ticket.status == Status.RESOLVED


# --- photos -----------------------------------------------------------------


def test_a_ticket_photo_is_served_with_its_type_and_nosniff(
    client: FlaskClient, world: World, store: PhotoStore, ctx: Flask
) -> None:
    ticket = make_ticket(world, store, photos=[png_bytes()])
    photo = ticket.photos[0]
    with client.get(f"{link(ticket, ctx)}/photos/{photo.id}") as response:
        assert response.status_code == 200
        assert response.mimetype == "image/png"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.data == store.path(photo.storage_key).read_bytes()


def test_another_tickets_photo_is_not_found(
    client: FlaskClient, world: World, store: PhotoStore, ctx: Flask
) -> None:
    mine = make_ticket(world, store)
    theirs = make_ticket(world, store, photos=[png_bytes()], phone="13900001111")
    response = client.get(f"{link(mine, ctx)}/photos/{theirs.photos[0].id}")
    assert response.status_code == 404


def test_photos_are_not_in_the_static_folder(
    client: FlaskClient, world: World, store: PhotoStore, ctx: Flask
) -> None:
    ticket = make_ticket(world, store, photos=[png_bytes()])
    key = ticket.photos[0].storage_key
    assert client.get(f"/static/{key}").status_code == 404
    assert Path(ctx.static_folder or "") not in store.path(key).parents


def test_the_report_form_renders_each_place_field_once(client: FlaskClient, world: World) -> None:
    html = client.get("/report").get_data(as_text=True)
    for name in ("category_id", "community_id", "complex_id", "building_id"):
        assert html.count(f'name="{name}" type="hidden"') + html.count(f'type="hidden" name="{name}"') == 0
        assert html.count(f'id="{name}"') <= 1


def test_pages_behind_a_tracking_link_are_html(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    token = tracking.tracking_token(ticket, client.application.config["SECRET_KEY"])
    for url in (f"/report/sent/{token}", f"/t/{token}"):
        response = client.get(url)
        assert response.status_code == 200
        assert response.mimetype == "text/html", url


def test_sending_the_same_form_twice_files_one_ticket(client: FlaskClient, world: World) -> None:
    html = client.get("/report").get_data(as_text=True)
    submission = re.search(r'name="submission_id" type="hidden" value="([0-9a-f]{32})"', html)
    assert submission, "the form carries a submission id"
    data = form_data(world, submission_id=submission.group(1), csrf_token=csrf_from(html))
    first, second = post_report(client, data), post_report(client, data)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert ticket_count() == 1


def test_each_rendering_of_the_form_gets_its_own_submission_id(client: FlaskClient, world: World) -> None:
    ids = {re.search(r'name="submission_id" type="hidden" value="(\w+)"', client.get("/report").get_data(as_text=True)).group(1)
           for _ in range(2)}
    assert len(ids) == 2
