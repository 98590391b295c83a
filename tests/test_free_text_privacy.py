"""Numbers in free text: one masking rule (services/privacy.py) on every staff surface and
masked export; the whole text only through the logged reveal."""
from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import select

from tests.conftest import csrf_token, login
from tests.factories import T0, TZ, World, advance, calendar, make_ticket
from ticketing.channels import open311
from ticketing.extensions import db
from ticketing.models import KeyKind, Notification, RevealLog, Ticket, User
from ticketing.services import apikeys, ledger
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore
from ticketing.services.privacy import mask_text

# A resident's words with a mobile written in groups, a landline and an ID number.
TEXT = "楼道灯不亮，请回电139 0000 1111或家里0371-6123456，身份证41010519900101123X"
WHOLE = ("139 0000 1111", "0371-6123456", "41010519900101123X")
MASKED = ("139****1111", "037****3456", "410***********123X")
# A handler's or resident's note with another number in it.
NOTE = "已联系物业，电话13700001234"
LEDGER_URL = "/ledger/grid/CA-01/2026-11-18"


def assert_masked(text: str) -> None:
    for whole in WHOLE:
        assert whole not in text
    for masked in MASKED:
        assert masked in text


def page(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def reveal_logs() -> list[RevealLog]:
    db.session.expire_all()
    return list(db.session.scalars(select(RevealLog)))


# --- The rule ---------------------------------------------------------------------------


@pytest.mark.parametrize("written", [
    "13812345678", "138 1234 5678", "138-1234-5678", "+86 138 1234 5678", "+8613812345678",
    "0086-13812345678", "013812345678", "１３８１２３４５６７８",
])
def test_a_mobile_number_is_masked_however_it_is_written(written: str) -> None:
    assert mask_text(f"电话{written}。") == "电话138****5678。"


@pytest.mark.parametrize("written, masked", [
    ("010-62345678", "010****5678"), ("0371-6123456", "037****3456"), ("(0371)6123456", "037****3456"),
    ("（0371）6123456", "037****3456"), ("0371 6123456", "037****3456"), ("021 6123 4567", "021****4567"),
])
def test_a_landline_with_its_area_code_is_masked(written: str, masked: str) -> None:
    assert mask_text(f"座机{written}转801") == f"座机{masked}转801"


@pytest.mark.parametrize("written, masked", [
    ("41010519900101123X", "410***********123X"), ("41010519900101123x", "410***********123X"),
    ("110101199003071234", "110***********1234"),
])
def test_an_id_card_number_is_masked_with_its_birth_date(written: str, masked: str) -> None:
    assert mask_text(f"身份证号{written}，") == f"身份证号{masked}，"


@pytest.mark.parametrize("text", [
    "工单261118-0001已转办", "日期20261206", "2026-12-06 13:45到场", "花了1380元", "共120户",
    "订单号202612061381234567", "编号12345678901234567890", "09:00-18:00在岗", "3楼到5楼的灯",
])
def test_numbers_that_are_not_phones_or_ids_are_left_alone(text: str) -> None:
    assert mask_text(text) == text


def test_the_tickets_requester_name_room_and_own_phone_are_masked() -> None:
    ticket = Ticket(requester_name="张三丰", unit_room="5单元1202", requester_phone="6123456")
    assert mask_text("张三丰住5单元1202，电话6123456，不是16123456", ticket) == "张**住***，电话*****56，不是16123456"


def test_open311_public_text_is_the_shared_rule() -> None:
    ticket = Ticket(requester_name="张三丰", unit_room="", requester_phone="13812345678")
    assert open311.public_text(TEXT, ticket) == mask_text(TEXT, ticket)
    assert_masked(open311.public_text(TEXT, ticket))


# --- The staff ticket page ----------------------------------------------------------------


def worked_ticket(world: World, store: PhotoStore) -> Ticket:
    """Gina's ticket: a number in its text, an internal note, the result and the rating comment."""
    ticket = advance(make_ticket(world, store, description=TEXT), "accepted", world)
    gina = Actor.staff(world.gina)
    perform(ticket, "note", gina, T0, calendar(), note="内部：业主另一电话15900002222", public=False)
    perform(ticket, "resolve", gina, T0, calendar(), note=NOTE)
    perform(ticket, "rate", Actor.resident(), T0, calendar(), rating="satisfied", note="谢谢，有事打18600003333")
    db.session.commit()
    return ticket


def test_the_ticket_page_masks_numbers_in_the_description(client: FlaskClient, world: World,
                                                          store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store, description=TEXT), "accepted", world)
    login(client, world.gina)
    assert_masked(page(client, f"/tickets/{ticket.number}"))


def test_the_ticket_page_masks_numbers_in_notes_the_result_and_the_rating_comment(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = worked_ticket(world, store)
    login(client, world.gina)
    html = page(client, f"/tickets/{ticket.number}")
    assert "159****2222" in html and "15900002222" not in html
    assert "137****1234" in html and "13700001234" not in html
    assert "186****3333" in html and "18600003333" not in html


def test_the_texts_are_masked_until_the_logged_reveal_shows_them_whole(client: FlaskClient, world: World,
                                                                       store: PhotoStore) -> None:
    ticket = worked_ticket(world, store)
    login(client, world.gina)
    before = page(client, f"/tickets/{ticket.number}")
    assert_masked(before)
    assert reveal_logs() == []
    token = csrf_token(client, f"/tickets/{ticket.number}")
    response = client.post(f"/tickets/{ticket.number}/reveal", data={"csrf_token": token})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    for whole in (*WHOLE, "15900002222", "13700001234", "18600003333"):
        assert whole in html
    [entry] = reveal_logs()
    assert (entry.user_id, entry.ticket_id, entry.purpose) == (world.gina.id, ticket.id, "view")


def test_a_viewer_who_may_not_reveal_never_sees_the_text_whole(client: FlaskClient, world: World,
                                                               store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store, description=TEXT), "dispatched", world, handler=world.greg)
    login(client, world.gina)  # her grid, greg's ticket: she may read it but not reveal
    assert_masked(page(client, f"/tickets/{ticket.number}"))
    token = csrf_token(client, f"/tickets/{ticket.number}")
    response = client.post(f"/tickets/{ticket.number}/reveal", data={"csrf_token": token})
    assert response.status_code == 403 and WHOLE[0] not in response.get_data(as_text=True)


def test_the_duplicates_panel_masks_the_other_tickets_description(client: FlaskClient, world: World,
                                                                  store: PhotoStore) -> None:
    make_ticket(world, store, description=TEXT)
    ticket = make_ticket(world, store)
    login(client, world.dora)
    html = page(client, f"/tickets/{ticket.number}")
    assert 'id="duplicates"' in html
    assert_masked(html)


# --- Lists: console, supervision, workbench ----------------------------------------------


def test_the_console_queue_masks_numbers_in_the_description(client: FlaskClient, world: World,
                                                            store: PhotoStore) -> None:
    make_ticket(world, store, description=TEXT)
    login(client, world.dora)
    assert_masked(page(client, "/console/"))


def test_the_console_queue_masks_numbers_in_a_return_reason(client: FlaskClient, world: World,
                                                            store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "dispatched", world)
    perform(ticket, "return", Actor.staff(world.gina), T0, calendar(), note=f"不归我管，请联系{WHOLE[1]}")
    db.session.commit()
    login(client, world.dora)
    html = page(client, "/console/")
    assert MASKED[1] in html and WHOLE[1] not in html


def test_the_supervision_list_masks_numbers_in_the_escalation_reason(client: FlaskClient, world: World,
                                                                     store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    perform(ticket, "escalate", Actor.staff(world.gina), T0, calendar(), note=f"需协调，{WHOLE[0]}")
    db.session.commit()
    login(client, world.sam)
    html = page(client, "/console/supervision")
    assert MASKED[0] in html and WHOLE[0] not in html


def test_the_workbench_masks_numbers_in_the_description(client: FlaskClient, world: World,
                                                        store: PhotoStore) -> None:
    advance(make_ticket(world, store, description=TEXT), "dispatched", world)
    login(client, world.gina)
    assert_masked(page(client, "/workbench/"))


# --- The ledger: page, print and files ---------------------------------------------------


@pytest.fixture()
def ledger_day(world: World, store: PhotoStore) -> Ticket:
    """Grid A1's ledger of 2026-11-18 with one resolved ticket whose texts carry numbers."""
    ticket = advance(make_ticket(world, store, description=TEXT), "accepted", world)
    perform(ticket, "resolve", Actor.staff(world.gina), T0, calendar(), note=NOTE)
    db.session.commit()
    ledger.compile_day(T0.astimezone(TZ).date(), TZ, T0.replace(hour=15))
    return ticket


@pytest.mark.parametrize("suffix", ["", "/print"])
def test_the_ledger_page_and_its_print_view_mask_the_request_and_result(
        client: FlaskClient, world: World, ledger_day: Ticket, suffix: str) -> None:
    login(client, world.gina)
    html = page(client, LEDGER_URL + suffix)
    assert ledger_day.number in html
    assert_masked(html)
    assert "137****1234" in html and "13700001234" not in html


def read_csv(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def read_xlsx(content: bytes) -> list[list[Any]]:
    return [list(row) for row in load_workbook(io.BytesIO(content)).active.iter_rows(values_only=True)]


@pytest.mark.parametrize("fmt, read", [("csv", read_csv), ("xlsx", read_xlsx)])
def test_the_masked_export_masks_the_request_and_result(client: FlaskClient, world: World, ledger_day: Ticket,
                                                        fmt: str, read: Any) -> None:
    login(client, world.gina)
    response = client.get(f"{LEDGER_URL}/export.{fmt}")
    assert response.status_code == 200
    [_header, row] = read(response.data)
    assert_masked(row[6])
    assert row[10] == "已联系物业，电话137****1234"


def test_only_the_full_export_keeps_the_texts_whole(client: FlaskClient, world: World, ledger_day: Ticket) -> None:
    login(client, world.sam)
    [_header, masked] = read_csv(client.get(f"{LEDGER_URL}/export.csv").data)
    assert_masked(masked[6])
    token = csrf_token(client, LEDGER_URL)
    response = client.post(f"{LEDGER_URL}/export", data={"format": "csv", "csrf_token": token})
    [_header, row] = read_csv(response.data)
    assert (row[6], row[10]) == (TEXT, NOTE)
    assert [entry.purpose for entry in reveal_logs()] == ["export"]


# --- The staff API ------------------------------------------------------------------------


def api_headers(user: User) -> dict[str, str]:
    _row, key = apikeys.issue(KeyKind.STAFF, "test app", T0, user=user)
    return {"Authorization": f"Bearer {key}"}


def test_the_api_detail_masks_the_description_notes_and_result(client: FlaskClient, world: World,
                                                               store: PhotoStore) -> None:
    ticket = worked_ticket(world, store)
    body = client.get(f"/api/v1/tickets/{ticket.number}", headers=api_headers(world.dora)).get_json()
    assert_masked(body["description"])
    assert body["result_note"] == "已联系物业，电话137****1234"
    assert body["rating_comment"] == "谢谢，有事打186****3333"
    notes = " ".join(event["note"] for event in body["events"])
    assert "159****2222" in notes and "15900002222" not in notes and "13700001234" not in notes


def test_the_api_list_masks_the_description(client: FlaskClient, world: World, store: PhotoStore) -> None:
    make_ticket(world, store, description=TEXT)
    body = client.get("/api/v1/tickets", headers=api_headers(world.dora)).get_json()
    [listed] = body["tickets"]
    assert_masked(listed["description"])


def test_the_api_answers_the_texts_whole_only_with_the_logged_reveal(client: FlaskClient, world: World,
                                                                     store: PhotoStore) -> None:
    ticket = worked_ticket(world, store)
    headers = api_headers(world.dora)
    assert_masked(client.get(f"/api/v1/tickets/{ticket.number}", headers=headers).get_json()["description"])
    response = client.post(f"/api/v1/tickets/{ticket.number}/reveal", headers=headers)
    body = response.get_json()
    assert response.status_code == 200
    assert (body["description"], body["result_note"]) == (TEXT, NOTE)
    assert "15900002222" in " ".join(event["note"] for event in body["events"])
    [entry] = reveal_logs()
    assert (entry.user_id, entry.ticket_id) == (world.dora.id, ticket.id)


# --- Messages -----------------------------------------------------------------------------


def inbox_of(user: User) -> list[Notification]:
    return list(db.session.scalars(
        select(Notification).where(Notification.user_id == user.id, Notification.channel == "inbox")
        .order_by(Notification.id)))


def test_a_handlers_message_quotes_the_residents_comment_masked(world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "resolved", world)
    perform(ticket, "reopen", Actor.resident(), T0, calendar(), note=f"灯还是不亮，回电{WHOLE[0]}")
    db.session.commit()
    [message] = [m for m in inbox_of(world.gina) if m.kind == "reopened"]
    assert MASKED[0] in message.body and WHOLE[0] not in message.body


def test_the_inbox_masks_numbers_in_a_message_written_before_the_rule(client: FlaskClient, world: World,
                                                                      store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    db.session.add(Notification(
        dedupe_key="old:1", kind="returned", channel="inbox", ticket_id=ticket.id, user_id=world.dora.id,
        locale="zh", subject="工单被退回", body=f"退回原因：请联系{WHOLE[1]}", created_at=T0, status="sent",
        sent_at=T0, sender="inbox"))
    db.session.commit()
    login(client, world.dora)
    html = page(client, "/inbox/")
    assert MASKED[1] in html and WHOLE[1] not in html


def test_the_operations_page_masks_numbers_in_messages_to_residents(client: FlaskClient, world: World,
                                                                    store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    perform(ticket, "resolve", Actor.staff(world.gina), T0, calendar(), note=NOTE)
    db.session.commit()
    # The resident reads the result as written: it is their ticket, and the number may be one to call.
    assert any(NOTE in m.body for m in db.session.scalars(select(Notification).where(Notification.kind == "resolved")))
    login(client, world.adam)
    html = page(client, "/admin/ops")
    assert "137****1234" in html and "13700001234" not in html
