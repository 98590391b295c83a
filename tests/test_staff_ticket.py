"""The staff ticket page: what it shows, every action on it, scope, reveal and photos."""
from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from tests.conftest import csrf_token, login
from tests.factories import PHONE, TZ, World, advance, make_ticket, png_bytes
from ticketing.extensions import db
from ticketing.models import HandlerKind, RevealLog, RoutingRule, Ticket, TicketEvent, utcnow
from ticketing.services.photos import PhotoStore

# These tests read the English labels; Chinese is checked in test_translations.
pytestmark = pytest.mark.usefixtures("english")


def act(client: FlaskClient, ticket: Ticket, name: str, **data: object) -> TestResponse:
    """Post one action form of the ticket page, with a valid CSRF token."""
    token = csrf_token(client, f"/tickets/{ticket.number}")
    return client.post(f"/tickets/{ticket.number}/act/{name}",
                       data={"csrf_token": token, **data}, content_type="multipart/form-data")


def reload(ticket: Ticket) -> Ticket:
    """The ticket as the database has it now."""
    db.session.expire_all()
    return db.session.get(Ticket, ticket.id)  # type: ignore[return-value]


def event_count(ticket: Ticket) -> int:
    return db.session.scalar(select(func.count()).where(TicketEvent.ticket_id == ticket.id)) or 0


def files_in(app: Flask) -> list[Path]:
    return [p for p in Path(app.config["UPLOAD_FOLDER"]).rglob("*") if p.is_file()]


def text_of(response: TestResponse) -> str:
    return response.get_data(as_text=True)


# What the page shows


def test_the_page_shows_the_ticket_with_personal_data_masked(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    login(client, world.gina)
    html = text_of(client.get(f"/tickets/{ticket.number}"))
    assert ticket.number in html and "槐树院" in html and "楼道灯不亮" in html
    assert "138****5678" in html and PHONE not in html
    assert "张**" in html and "张三丰" not in html
    assert "2单元301" not in html


def test_the_page_says_why_the_ticket_came_to_its_handler(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "dispatched", world)
    login(client, world.gina)
    html = text_of(client.get(f"/tickets/{ticket.number}"))
    assert "Chosen by hand by Dora" in html
    assert "Accept by" in html


def test_internal_notes_are_marked_on_the_timeline(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    login(client, world.gina)
    act(client, ticket, "note", note="业主不在家，明天再来", visibility="internal")
    html = text_of(client.get(f"/tickets/{ticket.number}"))
    item = re.search(r'<li class="internal">.*?</li>', html, re.DOTALL)
    assert item is not None and "业主不在家" in item.group(0) and "Gina" in item.group(0)


def test_a_merged_ticket_links_to_the_one_it_was_merged_into(client: FlaskClient, world: World, store: PhotoStore) -> None:
    target = make_ticket(world, store)
    duplicate = make_ticket(world, store)
    login(client, world.dora)
    assert act(client, duplicate, "merge", target=target.number).status_code == 303
    assert reload(duplicate).merged_into_id == target.id
    html = text_of(client.get(f"/tickets/{duplicate.number}"))
    assert f'href="/tickets/{target.number}"' in html


# Scope


def test_a_dispatcher_of_another_community_gets_404(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    login(client, world.dan)
    assert client.get(f"/tickets/{ticket.number}").status_code == 404
    assert act(client, ticket, "reject", note="无效").status_code == 404
    assert reload(ticket).status == "submitted"


def test_a_grid_worker_cannot_see_another_grids_ticket(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "dispatched", world)
    login(client, world.greg)
    assert client.get(f"/tickets/{ticket.number}").status_code == 404
    assert act(client, ticket, "accept").status_code == 404
    assert reload(ticket).status == "dispatched"


def test_the_page_needs_a_login(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    response = client.get(f"/tickets/{ticket.number}")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


# Dispatch


def test_dora_dispatches_to_gina_which_sets_the_accept_deadline_and_names_the_rule(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    login(client, world.dora)
    response = act(client, ticket, "dispatch", handler=f"user:{world.gina.id}")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/tickets/{ticket.number}")
    ticket = reload(ticket)
    assert ticket.status == "dispatched" and ticket.assignee_id == world.gina.id
    assert ticket.accept_due_at is not None and ticket.accept_due_at > ticket.dispatched_at
    event = ticket.events[-1]
    assert event.action == "dispatch" and event.detail["rule"] == "manual"
    assert event.detail["assignee"] == "Gina"


def test_dora_dispatches_to_a_volunteer_team(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, category="elderly.help")
    login(client, world.dora)
    assert act(client, ticket, "dispatch", handler=f"team:{world.volunteers.id}").status_code == 303
    ticket = reload(ticket)
    assert ticket.team_id == world.volunteers.id and ticket.assignee_id is None


def test_the_dispatch_list_puts_the_tickets_own_grid_first(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, building=world.building_west)  # grid A2: greg's
    login(client, world.dora)
    html = text_of(client.get(f"/tickets/{ticket.number}"))
    options = re.findall(r'<option[^>]*value="((?:user|team):\d+)"', html)
    assert options.index(f"user:{world.greg.id}") < options.index(f"user:{world.gina.id}")
    assert f"team:{world.volunteers.id}" in options
    assert f"user:{world.gabe.id}" not in options  # community B's grid worker


def dispatch_options(client: FlaskClient, ticket: Ticket) -> list[str]:
    return re.findall(r'<option[^>]*value="((?:user|team):\d+)"', text_of(client.get(f"/tickets/{ticket.number}")))


def test_the_dispatch_list_offers_property_staff_only_where_their_company_manages(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    login(client, world.dora)
    managed = make_ticket(world, store, building=world.building_managed)
    elsewhere = make_ticket(world, store, building=world.building_west)  # 西苑: no company
    assert f"user:{world.pete.id}" in dispatch_options(client, managed)
    assert f"user:{world.pete.id}" not in dispatch_options(client, elsewhere)


def test_the_dispatch_list_offers_the_staff_of_a_company_a_rule_names_for_the_place(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    db.session.add(RoutingRule(name="西苑代管", scope_kind="complex", scope_id=world.west.id,
                               handler_kind=HandlerKind.PROPERTY, company_id=world.company.id))
    db.session.commit()
    login(client, world.dora)
    ticket = make_ticket(world, store, building=world.building_west)
    assert f"user:{world.pete.id}" in dispatch_options(client, ticket)
    assert act(client, ticket, "dispatch", handler=f"user:{world.pete.id}").status_code == 303
    assert reload(ticket).assignee_id == world.pete.id


def test_dispatch_to_staff_of_a_company_that_does_not_manage_the_complex_is_400(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, building=world.building_west)
    login(client, world.dora)
    response = act(client, ticket, "dispatch", handler=f"user:{world.pete.id}")
    assert response.status_code == 400
    assert (reload(ticket).status, reload(ticket).assignee_id) == ("submitted", None)


def test_dispatch_to_someone_not_on_the_list_is_refused(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    login(client, world.dora)
    response = act(client, ticket, "dispatch", handler=f"user:{world.gabe.id}")
    assert response.status_code == 400
    assert reload(ticket).status == "submitted"


def test_dispatch_without_a_choice_says_what_is_missing(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    login(client, world.dora)
    response = act(client, ticket, "dispatch", handler="")
    assert response.status_code == 400
    assert "Choose who should handle the ticket." in text_of(response)
    assert reload(ticket).status == "submitted"


def test_merging_into_an_unknown_number_is_400(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    other_community = make_ticket(world, store, building=world.building_east)
    login(client, world.dora)
    for number in ("000000-0000", other_community.number):
        assert act(client, ticket, "merge", target=number).status_code == 400
    assert reload(ticket).status == "submitted"


def test_a_supervisor_may_add_notes_and_assign_a_ticket_in_hand(
    client: FlaskClient, world: World, store: PhotoStore
) -> None:
    ticket = make_ticket(world, store)
    login(client, world.sam)
    html = text_of(client.get(f"/tickets/{ticket.number}"))
    assert 'id="action-note"' in html and 'id="action-dispatch"' in html
    assert act(client, ticket, "dispatch", handler=f"user:{world.gina.id}").status_code == 303
    assert reload(ticket).assignee_id == world.gina.id


def test_a_supervisor_of_another_community_cannot_assign(
    client: FlaskClient, world: World, store: PhotoStore
) -> None:
    ticket = make_ticket(world, store, building=world.building_east)
    login(client, world.sam)
    assert act(client, ticket, "dispatch", handler=f"user:{world.gabe.id}").status_code == 404


def test_gina_cannot_dispatch(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    login(client, world.gina)
    response = act(client, ticket, "dispatch", handler=f"user:{world.gina.id}")
    assert response.status_code == 403
    assert reload(ticket).status == "submitted"


def test_dora_rejects_with_a_reason(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    login(client, world.dora)
    assert act(client, ticket, "reject", note="不属于社区受理范围").status_code == 303
    ticket = reload(ticket)
    assert ticket.status == "rejected" and ticket.events[-1].note == "不属于社区受理范围"


# The handler's actions


def test_gina_accepts_a_dispatched_ticket(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "dispatched", world)
    login(client, world.gina)
    assert act(client, ticket, "accept").status_code == 303
    ticket = reload(ticket)
    assert ticket.status == "accepted" and ticket.resolve_due_at is not None


def test_accepting_a_submitted_ticket_is_409_and_changes_nothing(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    before = event_count(ticket)
    login(client, world.gina)
    response = act(client, ticket, "accept")
    assert response.status_code == 409
    assert "flash-error" in text_of(response)
    assert reload(ticket).status == "submitted" and event_count(ticket) == before


def test_gina_returns_a_ticket_to_the_dispatcher_with_a_reason(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    login(client, world.gina)
    assert act(client, ticket, "return", note="不是网格能处理的，需要住建部门").status_code == 303
    ticket = reload(ticket)
    assert ticket.status == "submitted" and ticket.assignee_id is None
    assert ticket.events[-1].note == "不是网格能处理的，需要住建部门"


def test_returning_without_a_reason_is_400_and_changes_nothing(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "dispatched", world)
    login(client, world.gina)
    response = act(client, ticket, "return", note="  ")
    assert response.status_code == 400
    assert 'id="action-return" open' in text_of(response)
    assert reload(ticket).status == "dispatched"


def test_gina_puts_a_ticket_on_hold_and_resumes_it(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    login(client, world.gina)
    until = (utcnow().astimezone(TZ).date() + timedelta(days=2)).isoformat()
    assert act(client, ticket, "hold", note="等待配件到货", until=until).status_code == 303
    assert reload(ticket).status == "on_hold"
    assert act(client, ticket, "resume").status_code == 303
    ticket = reload(ticket)
    assert ticket.status == "accepted" and ticket.held_at is None


def test_gina_resolves_with_an_after_photo(client: FlaskClient, world: World, store: PhotoStore, ctx: Flask) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    login(client, world.gina)
    response = act(client, ticket, "resolve", note="已更换灯泡",
                   photo=(io.BytesIO(png_bytes()), "after.png"))
    assert response.status_code == 303
    ticket = reload(ticket)
    assert ticket.status == "resolved" and ticket.result_note == "已更换灯泡"
    [photo] = ticket.photos
    assert photo.kind == "result" and store.path(photo.storage_key).is_file()


def test_a_bad_after_photo_is_400_and_leaves_nothing(client: FlaskClient, world: World, store: PhotoStore, ctx: Flask) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    login(client, world.gina)
    response = act(client, ticket, "resolve", note="已更换灯泡",
                   photo=(io.BytesIO(b"<?php echo 1; ?>"), "after.jpg"))
    assert response.status_code == 400
    ticket = reload(ticket)
    assert ticket.status == "accepted" and ticket.photos == []
    assert files_in(ctx) == []


def test_a_refused_resolve_leaves_no_photo_on_disk(client: FlaskClient, world: World, store: PhotoStore, ctx: Flask) -> None:
    ticket = advance(make_ticket(world, store), "dispatched", world)
    login(client, world.gina)
    response = act(client, ticket, "resolve", note="已处理", photo=(io.BytesIO(png_bytes()), "after.png"))
    assert response.status_code == 409
    assert files_in(ctx) == [] and reload(ticket).photos == []


def test_notes_are_internal_or_public_as_chosen(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    login(client, world.gina)
    act(client, ticket, "note", note="内部：联系了物业", visibility="internal")
    act(client, ticket, "note", note="师傅明天上午上门", visibility="public")
    notes = [(e.note, e.public) for e in reload(ticket).events if e.action == "note"]
    assert notes == [("内部：联系了物业", False), ("师傅明天上午上门", True)]


def test_vera_returns_a_team_ticket_and_lands_on_her_workbench(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, category="elderly.help")
    login(client, world.dora)
    act(client, ticket, "dispatch", handler=f"team:{world.volunteers.id}")
    client.post("/auth/logout", data={"csrf_token": csrf_token(client, f"/tickets/{ticket.number}")})
    login(client, world.vera)
    response = act(client, ticket, "return", note="需要专业维修，不是志愿服务")
    assert response.status_code == 303 and response.headers["Location"].endswith("/workbench/")


def test_an_unknown_action_is_404(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "resolved", world)
    login(client, world.dora)
    assert act(client, ticket, "frobnicate").status_code == 404
    assert act(client, ticket, "rate", rating="satisfied").status_code == 404
    assert reload(ticket).status == "resolved"


def test_an_action_without_a_csrf_token_is_refused(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "dispatched", world)
    login(client, world.gina)
    assert client.post(f"/tickets/{ticket.number}/act/accept").status_code == 400
    assert reload(ticket).status == "dispatched"


# Reveal


def reveal_logs() -> list[RevealLog]:
    return list(db.session.scalars(select(RevealLog)))


def test_reveal_logs_once_and_shows_the_full_phone(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    login(client, world.gina)
    token = csrf_token(client, f"/tickets/{ticket.number}")
    response = client.post(f"/tickets/{ticket.number}/reveal", data={"csrf_token": token})
    assert response.status_code == 200
    html = text_of(response)
    assert PHONE in html and "张三丰" in html and "2单元301" in html
    [entry] = reveal_logs()
    assert (entry.user_id, entry.ticket_id, entry.purpose) == (world.gina.id, ticket.id, "view")
    assert PHONE not in text_of(client.get(f"/tickets/{ticket.number}"))


def test_the_handler_is_offered_the_reveal_button(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "dispatched", world)
    login(client, world.gina)
    assert "Show contact details" in text_of(client.get(f"/tickets/{ticket.number}"))


def test_a_grid_worker_who_is_not_the_handler_cannot_reveal(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "dispatched", world, handler=world.greg)
    login(client, world.gina)  # the ticket is in her grid, but greg handles it
    html = text_of(client.get(f"/tickets/{ticket.number}"))
    assert "Show contact details" not in html
    token = csrf_token(client, f"/tickets/{ticket.number}")
    assert client.post(f"/tickets/{ticket.number}/reveal", data={"csrf_token": token}).status_code == 403
    assert reveal_logs() == []


def test_reveal_outside_scope_is_404(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    login(client, world.dan)
    token = csrf_token(client, "/auth/login")
    assert client.post(f"/tickets/{ticket.number}/reveal", data={"csrf_token": token}).status_code == 404
    assert reveal_logs() == []


# Photos


def test_a_photo_is_served_only_within_scope(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store, photos=[png_bytes()])
    [photo] = ticket.photos
    url = f"/tickets/{ticket.number}/photos/{photo.id}"
    login(client, world.gina)
    response = client.get(url)
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "private" in response.headers["Cache-Control"]
    client.post("/auth/logout", data={"csrf_token": csrf_token(client, f"/tickets/{ticket.number}")})
    login(client, world.greg)
    assert client.get(url).status_code == 404


def test_a_photo_of_another_ticket_is_404_under_this_number(client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    other = make_ticket(world, store, photos=[png_bytes()])
    login(client, world.gina)
    assert client.get(f"/tickets/{ticket.number}/photos/{other.photos[0].id}").status_code == 404


def test_a_web_form_submission_id_is_not_shown_as_an_upstream_number(
    client: FlaskClient, world: World, store: PhotoStore
) -> None:
    ticket = make_ticket(world, store, external_id="0123456789abcdef0123456789abcdef")
    login(client, world.dora)
    assert "0123456789abcdef" not in text_of(client.get(f"/tickets/{ticket.number}"))
