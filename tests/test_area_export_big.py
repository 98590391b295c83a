"""Big exports of a community or a street (services/area_export_jobs.py): above the
limit the page records the request and the job makes the file; the requester hears in
the inbox and downloads it, nobody else can; a failure leaves no file; housekeeping
deletes the old ones. The limit is set low: the world's community has 13 ledger lines."""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.area_export_helpers import (
    CA_TICKETS,
    FIRST,
    LAST,
    PHONE,
    compiled_days,
    csv_rows,
    workbook,
)
from tests.conftest import csrf_token, login
from tests.factories import World
from ticketing.extensions import db
from ticketing.models import Notification, OutboxMessage, RevealLog, Ticket, utcnow
from ticketing.queues import AREA_EXPORT
from ticketing.services import area_export, area_export_jobs, area_files
from ticketing.services.ledger_report import Period
from ticketing.services.photos import PhotoStore

RANGE = {"area": "all", "period": "range", "from": FIRST.isoformat(), "to": LAST.isoformat()}
LINES = 13  # CA's ledger lines over the three days: ten tickets, three of them on two days


@pytest.fixture()
def days(world: World, store: PhotoStore) -> dict[str, Ticket]:
    return compiled_days(world, store)


@pytest.fixture()
def exports(ctx: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The exports folder, empty; files of more than 3 lines made in the background."""
    monkeypatch.setitem(ctx.config, "AREA_EXPORT_INLINE_LINES", 3)
    folder = area_export_jobs.folder()
    shutil.rmtree(folder, ignore_errors=True)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture()
def no_relay(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outbox rows wait after the request (as they do for a worker with Redis)."""
    monkeypatch.setattr("workers.relay.relay_after_request", lambda: None)


def ask(client: FlaskClient, **form: str) -> Any:
    return client.post("/ledger/export", data={"csrf_token": csrf_token(client, "/ledger/"), **RANGE, **form})


def message_of(user_id: int) -> Notification:
    [message] = db.session.scalars(select(Notification).where(Notification.user_id == user_id,
                                                              Notification.kind == area_export_jobs.KIND)).all()
    return message


def export_rows() -> list[OutboxMessage]:
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.job == AREA_EXPORT)))


def made(folder: Path) -> list[str]:
    return sorted(path.suffix for path in folder.iterdir()) if folder.is_dir() else []


def test_the_count_stops_past_the_limit(days: dict[str, Ticket]) -> None:
    ca = area_export.find_area("community", "CA")
    assert ca is not None
    span = Period("range", FIRST, LAST)
    assert area_export.line_count(ca, span, 100) == LINES
    assert area_export.line_count(ca, span, 3) == 4


def test_above_the_limit_the_page_records_the_request_and_makes_nothing(
        client: FlaskClient, world: World, days: dict[str, Ticket], exports: Path, no_relay: None) -> None:
    login(client, world.sam)
    response = ask(client, format="xlsx")
    assert response.status_code == 302 and response.headers["Location"].endswith("#export")
    assert "正在生成，完成后会在消息中通知您" in client.get(response.headers["Location"]).get_data(as_text=True)
    [row] = export_rows()
    [request] = row.args
    assert (row.job, row.done_at, request["user_id"], request["area_code"], request["fmt"], request["full"]) == (
        AREA_EXPORT, None, world.sam.id, "CA", "xlsx", False)
    assert made(exports) == [] and db.session.scalars(
        select(Notification).where(Notification.kind == area_export_jobs.KIND)).all() == []


def test_the_job_makes_the_file_for_the_requester_alone(
        client: FlaskClient, app: Flask, world: World, days: dict[str, Ticket], exports: Path, no_relay: None) -> None:
    from workers.relay import relay

    login(client, world.sam)
    ask(client, format="xlsx")
    [row] = export_rows()
    assert relay(ids=[row.id]).ran_inline == [row.id]  # as the scheduled relay runs it when embedded
    assert made(exports) == [".json", ".xlsx"]
    message = message_of(world.sam.id)
    assert message.subject == "台账文件已生成" and "共 10 行" in message.body
    opened = client.get(f"/inbox/{message.id}/open")
    link = opened.headers["Location"]
    db.session.refresh(message)
    assert link.startswith("/ledger/export/") and message.read_at is not None
    response = client.get(link)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "private, no-cache"
    assert response.headers["Content-Disposition"] == "attachment; filename=ledger-CA-2026-11-17-2026-11-19.xlsx"
    lines = workbook(response.data)["明细"]
    assert lines.max_row == 2 + len(CA_TICKETS) and PHONE not in str(list(lines.values))
    other = app.test_client()
    login(other, world.sue)  # the street's supervisor may export CA, but did not ask for this file
    assert other.get(link).status_code == 404
    assert client.get("/ledger/export/" + "x" * 32).status_code == 404


def test_a_full_file_logs_its_reveals_once_as_the_requester(
        client: FlaskClient, world: World, days: dict[str, Ticket], exports: Path) -> None:
    from workers.jobs import build_area_export

    login(client, world.sam)
    ask(client, format="csv", full="1")  # embedded: made right after the request
    logged = db.session.scalars(select(RevealLog)).all()
    assert sorted(r.ticket_id for r in logged) == sorted(days[name].id for name in CA_TICKETS)
    assert {(r.user_id, r.purpose) for r in logged} == {(world.sam.id, "export")}
    [row] = export_rows()
    assert row.done_at is not None
    assert build_area_export(row.args[0]) == "already made or being made"  # handed over twice: made once
    assert len(db.session.scalars(select(RevealLog)).all()) == len(CA_TICKETS)
    response = client.get(f"/ledger/export/{row.args[0]['token']}")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"] == "attachment; filename=ledger-CA-2026-11-17-2026-11-19-full.csv"
    t1 = next(line for line in csv_rows(response.data) if line[0] == days["t1"].number)
    assert t1[6] == PHONE


def test_a_failed_build_leaves_no_file_and_tells_the_requester(
        client: FlaskClient, world: World, days: dict[str, Ticket], exports: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> int:
        out: IO[bytes] = args[3]
        out.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(area_files, "write", broken)
    login(client, world.sam)
    ask(client, format="xlsx", full="1")
    assert made(exports) == [".json"]
    [row] = export_rows()
    token = row.args[0]["token"]
    record = area_export_jobs.read_record(token)
    assert record is not None and (record["status"], record["error"]) == ("failed", "OSError: disk full")
    message = message_of(world.sam.id)
    assert message.subject == "台账文件生成失败" and message.params is None
    assert db.session.scalars(select(RevealLog)).all() == []
    assert client.get(f"/ledger/export/{token}").status_code == 404


def test_a_file_is_kept_for_a_day_and_then_deleted_by_housekeeping(
        client: FlaskClient, world: World, days: dict[str, Ticket], exports: Path) -> None:
    from workers.jobs import housekeeping

    login(client, world.sam)
    ask(client, format="csv")
    [row] = export_rows()
    token, now = row.args[0]["token"], utcnow()
    assert area_export_jobs.ready(token, world.sam.id, now) is not None
    assert area_export_jobs.ready(token, world.sam.id, now + area_export_jobs.KEEP) is None
    assert housekeeping().endswith("area export files deleted 0")
    old = (now - timedelta(days=1, minutes=1)).timestamp()
    for path in exports.iterdir():
        os.utime(path, (old, old))
    (exports / "fresh.csv").write_bytes(b"")
    assert housekeeping().endswith("area export files deleted 1")
    assert made(exports) == [".csv"] and client.get(f"/ledger/export/{token}").status_code == 404


def test_below_the_limit_the_file_comes_at_once_and_a_big_one_is_never_made_by_a_get(
        client: FlaskClient, world: World, days: dict[str, Ticket], exports: Path, app: Flask,
        monkeypatch: pytest.MonkeyPatch) -> None:
    login(client, world.sam)
    query = "/ledger/export?area=all&period=range&from=2026-11-17&to=2026-11-19&format=csv"
    big = client.get(query)
    assert big.status_code == 302 and export_rows() == []
    monkeypatch.setitem(app.config, "AREA_EXPORT_INLINE_LINES", LINES)
    small = client.get(query)
    assert small.status_code == 200 and len(csv_rows(small.data)) == 1 + len(CA_TICKETS)
    assert made(exports) == [] and export_rows() == []


def test_the_messages_link_is_the_download_route(ctx: Flask) -> None:
    with ctx.test_request_context():
        assert url_for("ledger.area_export_made", token="t") == area_export_jobs.DOWNLOAD_PATH + "t"
    assert area_export_jobs.read_record("../../secret_key") is None
    assert datetime.fromisoformat(area_export_jobs.ExportRequest(
        "t", 1, "street", "ST01", "week", FIRST, LAST, "csv", False, utcnow()).as_json()["requested_at"])


def test_openpyxl_writes_through_lxml() -> None:
    import openpyxl

    assert openpyxl.LXML  # lxml installed (requirements.lock): the workbook is written about 1.3x faster


@pytest.mark.redis
def test_with_redis_the_build_goes_to_the_low_queue_with_an_hours_limit(redis_app: Flask, redis_conn: Any) -> None:
    from rq import Queue

    from workers.jobs import area_export as hand_over

    request = area_export_jobs.ExportRequest("a" * 32, 1, "street", "ST01", "week", FIRST, LAST, "csv", False,
                                             utcnow()).as_json()
    with redis_app.app_context():
        assert hand_over(request) == "build queued"
    [job] = Queue("low", connection=redis_conn).get_jobs()
    assert (job.id, job.func_name, job.timeout, job.args) == (
        "area-export-" + "a" * 32, "workers.jobs.build_area_export", 3600, (request,))
