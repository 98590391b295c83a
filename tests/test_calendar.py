"""The holiday calendar: statutory holidays for years chinese-calendar does not know,
admin entries and pasted schedules, confirming a year, and the warnings until then."""
from __future__ import annotations

import csv
import io
import logging
from datetime import UTC, date, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import Workbook
from sqlalchemy import func, select

from tests.conftest import csrf_token, login
from tests.factories import TZ, World, advance, make_ticket
from ticketing.extensions import db
from ticketing.models import CalendarDay, CalendarYear
from ticketing.services import calendar_admin
from ticketing.services.calendar_import import parse_text
from ticketing.services.holidays import PACKAGE_HOLIDAYS, statutory_holidays
from ticketing.services.photos import PhotoStore
from ticketing.services.workdays import WorkCalendar, load_calendar

# Sunday 6 December 2026, 16:00 in Shanghai: 2027 begins in 26 days.
DECEMBER = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
BANNER = "2027年的调休安排尚未确认"


def local(*args: int) -> datetime:
    """A Shanghai wall-clock time as an aware datetime."""
    return datetime(*args, tzinfo=TZ)  # type: ignore[misc]


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """The web layer's clock, DECEMBER unless a test sets clock[0]."""
    from ticketing import web
    from ticketing.admin import calendar as admin_calendar
    from ticketing.ops import views as ops_views

    moment = [DECEMBER]
    for module in (web, admin_calendar, ops_views):
        monkeypatch.setattr(module, "now", lambda: moment[0])
    return moment


def count_entries() -> int:
    return db.session.scalar(select(func.count()).select_from(CalendarDay)) or 0


def post(client: FlaskClient, url: str, **data: object) -> object:
    token = csrf_token(client, "/admin/calendar/2027")
    return client.post(url, data={"csrf_token": token, **data})


# --- the statutory rule -------------------------------------------------------


@pytest.mark.parametrize("day", ["2027-01-01", "2027-02-05", "2027-02-08", "2027-04-05",
                                 "2027-06-09", "2027-09-15", "2027-10-01"])
def test_the_statutory_holidays_of_2027_are_not_working_days_without_admin_entries(ctx: Flask, day: str) -> None:
    assert not load_calendar(TZ).is_workday(date.fromisoformat(day))


def test_an_ordinary_monday_of_2027_is_a_working_day(ctx: Flask) -> None:
    assert load_calendar(TZ).is_workday(date(2027, 1, 4))


def test_the_statutory_rule_agrees_with_the_state_councils_schedule_of_2025_and_2026() -> None:
    for year in (2025, 2026):
        for day, holiday in statutory_holidays(year).items():
            assert PACKAGE_HOLIDAYS.get(day) == holiday.value, day


def test_chuxi_is_the_day_before_the_new_year_when_the_twelfth_month_has_30_days() -> None:
    # Lunar 2029's twelfth month has 30 days; 初一 of 2030 is Sunday 3 February.
    assert statutory_holidays(2030).get(date(2030, 2, 2)) is not None
    assert date(2030, 2, 1) not in statutory_holidays(2030)


def test_the_statutory_holidays_are_computed_once_per_year() -> None:
    statutory_holidays.cache_clear()
    WorkCalendar(TZ).add(local(2027, 1, 4, 9, 0), timedelta(days=200))
    assert statutory_holidays.cache_info().misses == 1


# --- deadlines ------------------------------------------------------------------


def test_a_general_ticket_accepted_on_new_years_eve_2026_is_due_after_yuandan(
        world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    advance(ticket, "accepted", world, now=local(2026, 12, 31, 14, 0))
    assert ticket.tier.code == "general"
    # Five working days: 4–8 January 2027; 1 January is 元旦.
    assert ticket.resolve_due_at == local(2027, 1, 8, 14, 0)


def test_a_ticket_dispatched_on_new_years_eve_2026_is_to_be_accepted_after_yuandan(
        world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    advance(ticket, "dispatched", world, now=local(2026, 12, 31, 14, 0))
    assert ticket.accept_due_at == local(2027, 1, 4, 14, 0)


# --- admin entries ----------------------------------------------------------------


def test_an_admin_entry_beats_the_statutory_rule(ctx: Flask) -> None:
    calendar_admin.set_day(date(2027, 2, 6), True, "春节调休", None, DECEMBER)
    calendar_admin.set_day(date(2027, 2, 9), False, "春节", None, DECEMBER)
    db.session.commit()
    cal = load_calendar(TZ)
    assert cal.is_workday(date(2027, 2, 6)) and not cal.is_workday(date(2027, 2, 9))


def test_an_admin_entry_records_who_set_it_and_when(world: World) -> None:
    row = calendar_admin.set_day(date(2027, 2, 6), True, "春节调休", world.adam, DECEMBER)
    db.session.commit()
    assert (row.set_by_id, row.set_at) == (world.adam.id, DECEMBER)


def test_calendar_show_prints_date_kind_source_and_note_per_special_day(ctx: Flask) -> None:
    calendar_admin.set_day(date(2027, 2, 6), True, "春节调休", None, DECEMBER)
    db.session.commit()
    result = ctx.test_cli_runner().invoke(args=["calendar", "show", "2027"])
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines[0] == ["2027-01-01", "holiday", "statutory", "元旦"]
    assert ["2027-02-06", "workday", "admin", "春节调休"] in lines
    assert ["2027-10-01", "holiday", "statutory", "国庆节"] in lines
    assert all(line[0] != "2027-01-02" for line in lines)  # an ordinary Saturday is not listed


def test_calendar_show_gives_the_package_as_source_of_a_year_it_knows(ctx: Flask) -> None:
    result = ctx.test_cli_runner().invoke(args=["calendar", "show", "2026"])
    assert ["2026-01-04", "workday", "package", "元旦"] in [line.split() for line in result.stdout.splitlines()]


# --- confirming a year and the warnings -------------------------------------------


def test_readyz_warns_of_an_unconfirmed_year_within_90_days_and_stays_200(
        client: FlaskClient, clock: list[datetime]) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    [warning] = response.get_json()["warnings"]
    assert "calendar 2027 is not confirmed" in warning


def test_calendar_confirm_ends_the_readyz_warning(client: FlaskClient, clock: list[datetime]) -> None:
    result = client.application.test_cli_runner().invoke(args=["calendar", "confirm", "2027"])
    assert result.exit_code == 0, result.output
    assert client.get("/readyz").get_json()["warnings"] == []


def test_admins_see_the_banner_on_every_page(client: FlaskClient, world: World, clock: list[datetime]) -> None:
    login(client, world.adam)
    for url in ("/console/", "/admin/rules", "/inbox/"):
        assert BANNER in client.get(url, follow_redirects=True).get_data(as_text=True), url


def test_other_staff_never_see_the_banner(client: FlaskClient, world: World, clock: list[datetime]) -> None:
    login(client, world.dora)
    assert BANNER not in client.get("/console/", follow_redirects=True).get_data(as_text=True)


def test_the_banner_appears_90_days_before_the_year_begins(
        client: FlaskClient, world: World, clock: list[datetime]) -> None:
    login(client, world.adam)
    clock[0] = local(2026, 10, 2, 23, 0)  # 91 days before
    assert BANNER not in client.get("/admin/rules").get_data(as_text=True)
    clock[0] = local(2026, 10, 3, 0, 30)  # 90 days before
    assert BANNER in client.get("/admin/rules").get_data(as_text=True)


def test_confirming_the_year_on_its_page_ends_the_banner(
        client: FlaskClient, world: World, clock: list[datetime]) -> None:
    login(client, world.adam)
    response = post(client, "/admin/calendar/2027/confirm")
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert db.session.get(CalendarYear, 2027).confirmed_by_id == world.adam.id  # type: ignore[union-attr]
    assert BANNER not in client.get("/admin/rules").get_data(as_text=True)


def test_the_operations_page_warns_of_the_unconfirmed_year(
        client: FlaskClient, world: World, clock: list[datetime]) -> None:
    login(client, world.adam)
    html = client.get("/admin/ops").get_data(as_text=True)
    assert "警告：2027 年的调休安排尚未确认" in html


def test_the_daily_check_warns_in_the_log(ctx: Flask, monkeypatch: pytest.MonkeyPatch,
                                          caplog: pytest.LogCaptureFixture) -> None:
    from workers import jobs

    monkeypatch.setattr(jobs, "utcnow", lambda: DECEMBER)
    with caplog.at_level(logging.WARNING):
        assert "2027" in jobs.check_calendar()
    assert any("calendar 2027 is not confirmed" in r.getMessage() for r in caplog.records)


def test_the_daily_check_is_in_the_schedule() -> None:
    from workers.scheduler import SCHEDULE

    entry = next(e for e in SCHEDULE if e.id == "calendar-check")
    assert entry.job == "workers.jobs.check_calendar" and entry.cron == "0 9 * * *"


# --- the page ---------------------------------------------------------------------


def test_the_page_lists_each_special_day_with_its_source_at_phone_width(
        client: FlaskClient, world: World, clock: list[datetime]) -> None:
    login(client, world.adam)
    html = client.get("/admin/calendar/2027").get_data(as_text=True)
    assert 'name="viewport" content="width=device-width' in html
    assert '<ul class="calendar-days">' in html and "<table" not in html  # a list wraps on a phone
    assert 'id="day-2027-01-01"' in html and "法定规则推算" in html
    assert 'name="text"' in html and 'type="file"' in html  # paste or upload


def test_the_calendar_is_for_admins_only(client: FlaskClient, world: World) -> None:
    login(client, world.sue)
    assert client.get("/admin/calendar/2027").status_code == 404


def test_an_admin_adds_and_removes_an_entry(client: FlaskClient, world: World, clock: list[datetime]) -> None:
    login(client, world.adam)
    response = post(client, "/admin/calendar/2027/days", day="2027-02-06", kind="workday", note="春节调休")
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert db.session.get(CalendarDay, date(2027, 2, 6)).is_workday  # type: ignore[union-attr]
    response = post(client, "/admin/calendar/2027/days/2027-02-06/remove")
    assert response.status_code == 303 and count_entries() == 0  # type: ignore[attr-defined]


def test_a_pasted_schedule_with_a_bad_line_writes_nothing_and_names_the_line(
        client: FlaskClient, world: World, clock: list[datetime]) -> None:
    login(client, world.adam)
    text = "2027-02-06 班 春节调休\n2027-02-30 休 春节\n2027-02-07 班"
    response = post(client, "/admin/calendar/2027/schedule", text=text, action="apply")
    html = response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert "第 2 行：" in html and "2027-02-30" in html
    assert count_entries() == 0


def test_a_pasted_schedule_is_previewed_then_applied(
        client: FlaskClient, world: World, clock: list[datetime]) -> None:
    login(client, world.adam)
    text = "日期 类型 备注\n2027-2-6\u3000上班\u3000春节调休\n2027-02-09 休息 春节"
    response = post(client, "/admin/calendar/2027/schedule", text=text)
    html = response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert response.status_code == 200 and "预览：尚未保存" in html and count_entries() == 0  # type: ignore[attr-defined]
    response = post(client, "/admin/calendar/2027/schedule", text=text, action="apply")
    assert response.status_code == 303  # type: ignore[attr-defined]
    rows = db.session.scalars(select(CalendarDay).order_by(CalendarDay.day)).all()
    assert [(r.day, r.is_workday, r.note, r.set_by_id) for r in rows] == [
        (date(2027, 2, 6), True, "春节调休", world.adam.id), (date(2027, 2, 9), False, "春节", world.adam.id)]


def test_an_uploaded_csv_schedule_is_previewed(client: FlaskClient, world: World, clock: list[datetime]) -> None:
    login(client, world.adam)
    out = io.StringIO()
    csv.writer(out).writerows([["日期", "类型", "备注"], ["2027-02-06", "班", "春节调休"]])
    data = {"csrf_token": csrf_token(client, "/admin/calendar/2027"),
            "file": (io.BytesIO(out.getvalue().encode("utf-8-sig")), "2027.csv")}
    html = client.post("/admin/calendar/2027/schedule", data=data).get_data(as_text=True)
    assert "预览：尚未保存" in html and "2027-02-06 班 春节调休" in html


def test_an_uploaded_xlsx_schedule_with_date_cells_is_read(ctx: Flask) -> None:
    from ticketing.services.calendar_import import parse_upload

    book = Workbook()
    book.active.append(["日期", "类型", "备注"])
    book.active.append([datetime(2027, 2, 6), "班", "春节调休"])
    buffer = io.BytesIO()
    book.save(buffer)
    schedule = parse_upload("2027.xlsx", buffer.getvalue(), 2027)
    assert schedule.errors == [] and schedule.entries() == [(date(2027, 2, 6), True, "春节调休")]


def test_a_schedule_line_may_use_full_width_digits_and_slashes(ctx: Flask) -> None:
    schedule = parse_text("２０２７/2/6　班\n2027年2月9日 休", 2027)
    assert schedule.entries() == [(date(2027, 2, 6), True, ""), (date(2027, 2, 9), False, "")]


def test_the_calendar_opens_at_the_year_that_needs_confirming(
        client: FlaskClient, world: World, clock: list[datetime]) -> None:
    login(client, world.adam)
    response = client.get("/admin/calendar")
    assert response.status_code == 302 and response.location.endswith("/admin/calendar/2027")
