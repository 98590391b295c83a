"""The 人员 sheet: every column imports through the account service, every error is listed
and stops everything, a second import and an export's import change nothing, new
accounts get one-time passwords that must be changed, and supervisors stay in scope."""
from __future__ import annotations

import io
import re
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale
from openpyxl import load_workbook
from sqlalchemy import func, select

from tests.conftest import csrf_from, csrf_token, login
from tests.factories import World
from tests.places_books import book
from ticketing.extensions import db
from ticketing.models import AuditEntry, DutyShift, Role, User
from ticketing.services import duty
from ticketing.services.places_export import template
from ticketing.services.staff_import import import_staff
from ticketing.services.staff_snapshot import export_staff
from ticketing.services.staff_workbook import PatternError, format_shifts, parse_shifts

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
TZ = ZoneInfo("Asia/Shanghai")
HEADER = ["用户名", "姓名", "手机", "角色", "范围编码", "班次", "值班"]


def people(*rows: list[Any], header: list[str] = HEADER) -> io.BytesIO:
    """A workbook with a 人员 sheet of these rows."""
    return book({"人员": [header, *[list(r) for r in rows]]})


NEW_GRID_WORKER = ["wang", "王芳", "13800000001", "网格员", "CA-01、CA-02", "周一至周五 08:30-17:30；周六 09:00-12:00", "是"]


def account(username: str) -> User:
    return db.session.scalars(select(User).where(User.username == username)).one()


def user_count() -> int:
    return db.session.scalar(select(func.count()).select_from(User)) or 0


def where(report: Any) -> set[tuple[str, int, str]]:
    return {(p.sheet, p.row, p.column) for p in report.problems}


# --- every column ------------------------------------------------------------


def test_every_column_makes_a_new_account_with_its_shifts(world: World) -> None:
    report = import_staff(people(NEW_GRID_WORKER), None, NOW)
    assert report.problems == [] and report.applied
    wang = account("wang")
    assert (wang.display_name, wang.phone, wang.role) == ("王芳", "13800000001", Role.GRID_WORKER)
    assert [g.code for g in wang.grids] == ["CA-01", "CA-02"] and wang.street == world.street
    assert wang.on_call is True
    shifts = db.session.scalars(select(DutyShift).where(DutyShift.user_id == wang.id)
                                .order_by(DutyShift.weekday)).all()
    assert [(s.weekday, s.starts, s.ends) for s in shifts] == [
        *[(d, time(8, 30), time(17, 30)) for d in range(5)], (5, time(9), time(12))]


@pytest.mark.parametrize("role, scope_code, check", [
    ("管理员", "", lambda u, w: u.role == Role.ADMIN and u.street is None),
    ("书记主任", "ST01", lambda u, w: u.role == Role.SUPERVISOR and u.street == w.street and u.community is None),
    ("书记主任", "CB", lambda u, w: u.role == Role.SUPERVISOR and u.community == w.community_b),
    ("派单员", "CA", lambda u, w: u.role == Role.DISPATCHER and u.community == w.community_a),
    ("物业人员", "WY-HX", lambda u, w: u.role == Role.PROPERTY_STAFF and u.company == w.company
     and u.street == w.street),
    ("志愿者", "TEAM-M", lambda u, w: u.role == Role.VOLUNTEER and u.team == w.mediators),
])
def test_each_role_gets_the_scope_its_code_names(world: World, role: str, scope_code: str, check: Any) -> None:
    world.company.code, world.mediators.code = "WY-HX", "TEAM-M"
    db.session.commit()
    report = import_staff(people(["li", "李明", "", role, scope_code, "", ""]), None, NOW)
    assert report.problems == []
    assert check(account("li"), world)


# --- every error, and all or nothing ---------------------------------------


@pytest.mark.parametrize("row, column, words", [
    (["li", "李明", "", "队长", "CA", "", ""], "角色", "管理员 / 书记主任"),
    (["li", "李明", "", "网格员", "CA-09", "", ""], "范围编码", "unknown"),
    (["li", "李明", "", "网格员", "CA", "", ""], "范围编码", "社区"),
    (["li", "李明", "", "派单员", "CA-01", "", ""], "范围编码", "网格"),
    (["li", "李明", "", "派单员", "CA、CB", "", ""], "范围编码", "one code"),
    (["li", "李明", "", "管理员", "ST01", "", ""], "范围编码", "empty"),
    (["li", "李明", "", "网格员", "CA-01", "周一至周五 08:30-17:30；周八 09:00-12:00", ""], "班次", "character 19"),
    (["li", "李明", "", "网格员", "CA-01", "周一 08:30-17:30；周一 12:00-13:00", ""], "班次", "overlap"),
    (["li", "李明", "", "派单员", "CA", "周一 08:30-17:30", ""], "班次", "网格员"),
    (["li", "李明", "", "网格员", "CA-01", "", "可能"], "值班", "是"),
    (["li", "", "", "网格员", "CA-01", "", ""], "姓名", "empty"),
    (["li", "李明", "", "网格员", "", "", ""], "范围编码", "empty"),
    (["li", "李明", "1380000000x", "网格员", "CA-01", "", ""], "手机", "phone"),
    (["l i", "李明", "", "网格员", "CA-01", "", ""], "用户名", "letters"),
])
def test_an_error_is_reported_by_sheet_row_and_column_and_nothing_is_written(
        world: World, row: list[Any], column: str, words: str) -> None:
    before = user_count()
    with force_locale("en"):
        report = import_staff(people(NEW_GRID_WORKER, row), None, NOW)
    assert where(report) == {("人员", 3, column)}, report.problems
    assert words in report.problems[0].message
    assert not report.applied and report.one_time == [] and user_count() == before


def test_a_username_twice_in_the_sheet_is_an_error_whatever_its_case(world: World) -> None:
    with force_locale("en"):
        report = import_staff(people(NEW_GRID_WORKER, ["WANG", "王芳", "", "网格员", "CA-01", "", ""]), None, NOW)
    assert where(report) == {("人员", 3, "用户名")} and "row 2" in report.problems[0].message


def test_a_missing_required_column_is_an_error(world: World) -> None:
    report = import_staff(people(["li", "李明", "网格员"], header=["用户名", "姓名", "角色"]), None, NOW)
    assert where(report) == {("人员", 1, "范围编码")}


def test_a_workbook_without_the_staff_sheet_is_an_error(world: World) -> None:
    assert import_staff(book({"街道": [["编码", "名称"]]}), None, NOW).problems


def test_every_error_is_listed_not_only_the_first(world: World) -> None:
    report = import_staff(people(["li", "", "", "队长", "", "", "x"], ["wu", "吴", "", "网格员", "NOPE", "", ""]),
                          None, NOW)
    assert where(report) == {("人员", 2, "姓名"), ("人员", 2, "角色"), ("人员", 2, "值班"), ("人员", 3, "范围编码")}


def test_a_failing_row_leaves_the_good_rows_unwritten(world: World) -> None:
    report = import_staff(people(NEW_GRID_WORKER, ["gina", "新名字", "", "网格员", "CA-01", "", ""],
                                 ["li", "李明", "", "网格员", "NOPE", "", ""]), None, NOW)
    assert report.problems and not report.applied
    assert db.session.scalar(select(User).where(User.username == "wang")) is None
    assert account("gina").display_name == "Gina"


def test_a_dry_run_reports_what_it_would_add_and_change_and_writes_nothing(world: World) -> None:
    before = user_count()
    report = import_staff(people(NEW_GRID_WORKER, ["gina", "新名字", "", "网格员", "CA-01", "", ""]), None, NOW,
                          dry_run=True)
    assert [e.code for e in report.added] == ["wang"] and report.one_time == []
    assert report.changed[0].changes == [("姓名", "Gina", "新名字")]
    assert not report.applied and user_count() == before and account("gina").display_name == "Gina"
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 0


# --- updates, no-ops, missing ------------------------------------------------


def test_importing_the_same_sheet_again_changes_nothing(world: World) -> None:
    import_staff(people(NEW_GRID_WORKER), None, NOW)
    entries = db.session.scalar(select(func.count()).select_from(AuditEntry))
    again = import_staff(people(NEW_GRID_WORKER), None, NOW)
    assert again.added == [] and again.changed == [] and again.unchanged == 1 and again.one_time == []
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == entries + 1  # the import itself


def test_changed_cells_update_the_same_account(world: World) -> None:
    import_staff(people(NEW_GRID_WORKER), None, NOW)
    wang_id = account("wang").id
    report = import_staff(people(["Wang", "王芳芳", "13900000009", "志愿者", world.volunteers.code,
                                  "每天 22:00-06:00", "否"]), None, NOW)
    assert report.problems == [] and [e.code for e in report.changed] == ["wang"]
    assert {c[0] for c in report.changed[0].changes} == {"姓名", "手机", "角色", "范围编码", "班次", "值班"}
    wang = account("wang")
    assert wang.id == wang_id and wang.role == Role.VOLUNTEER and wang.team == world.volunteers
    assert wang.grids == [] and wang.phone == "13900000009" and wang.on_call is False
    assert format_shifts([(s.weekday, s.starts, s.ends) for s in db.session.scalars(
        select(DutyShift).where(DutyShift.user_id == wang.id))]) == "每天 22:00-06:00"


def test_an_optional_column_the_sheet_lacks_leaves_its_values_alone(world: World) -> None:
    import_staff(people(NEW_GRID_WORKER), None, NOW)
    report = import_staff(people(["wang", "王芳", "网格员", "CA-01、CA-02"], header=["用户名", "姓名", "角色", "范围编码"]),
                          None, NOW)
    assert report.changed == [] and report.unchanged == 1
    assert account("wang").phone == "13800000001" and account("wang").on_call is True


def test_a_person_missing_from_the_sheet_is_reported_not_deactivated(world: World) -> None:
    report = import_staff(people(NEW_GRID_WORKER), None, NOW)
    assert "gina" in {e.code for e in report.missing}
    assert account("gina").active


def test_export_then_import_is_a_no_op(world: World) -> None:
    import_staff(people(NEW_GRID_WORKER), None, NOW)
    report = import_staff(io.BytesIO(export_staff()), None, NOW)
    assert report.problems == [] and report.added == [] and report.changed == []
    assert report.unchanged == 12


def test_the_export_writes_shifts_in_the_grammar(world: World) -> None:
    import_staff(people(NEW_GRID_WORKER), None, NOW)
    sheet = load_workbook(io.BytesIO(export_staff()))["人员"]
    rows = {r[0]: r for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert rows["wang"] == ("wang", "王芳", "13800000001", "网格员", "CA-01、CA-02",
                            "周一至周五 08:30-17:30；周六 09:00-12:00", "是")


# --- who may import ------------------------------------------------------------


def test_a_supervisor_importing_outside_their_scope_gets_an_error_on_that_row(world: World) -> None:
    report = import_staff(people(["li", "李明", "", "网格员", "CA-01", "", ""],
                                 ["wu", "吴", "", "网格员", "CB-01", "", ""]), world.sam, NOW)
    assert where(report) == {("人员", 3, "范围编码")} and not report.applied


def test_a_supervisor_may_not_give_a_role_above_a_dispatcher(world: World) -> None:
    report = import_staff(people(["li", "李明", "", "书记主任", "CA", "", ""]), world.sam, NOW)
    assert where(report) == {("人员", 2, "角色")}


def test_a_supervisor_may_not_change_an_account_they_do_not_manage(world: World) -> None:
    report = import_staff(people(["gabe", "Gabe", "", "网格员", "CA-01", "", ""]), world.sam, NOW)
    assert where(report) == {("人员", 2, "用户名")}


def test_a_supervisor_imports_people_of_their_community(world: World) -> None:
    report = import_staff(people(["li", "李明", "", "网格员", "CA-02", "周一 09:00-12:00", "否"]), world.sam, NOW)
    assert report.applied and account("li").grids == [world.grid_a2]
    assert "dora" in {e.code for e in report.missing} and "gabe" not in {e.code for e in report.missing}


# --- passwords and the record ---------------------------------------------------


def test_a_new_account_gets_a_one_time_password_that_must_be_changed(world: World) -> None:
    report = import_staff(people(NEW_GRID_WORKER), None, NOW)
    [(username, name, password)] = report.one_time
    wang = account("wang")
    assert (username, name) == ("wang", "王芳") and wang.check_password(password)
    assert wang.must_change_password is True


def test_an_applied_import_is_on_the_audit_log_once_and_never_with_a_password(world: World) -> None:
    report = import_staff(people(NEW_GRID_WORKER), world.adam, NOW)
    entries = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [e.action for e in entries] == ["user.create", "roster.update", "import.apply"]
    assert entries[-1].after["added"] == ["wang"] and entries[-1].actor_id == world.adam.id
    assert report.one_time[0][2] not in repr([(e.before, e.after) for e in entries])


# --- the 班次 grammar ---------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("周一至周五 08:30-17:30；周六 09:00-12:00", "周一至周五 08:30-17:30；周六 09:00-12:00"),
    ("周一到周五 8:30–17:30", "周一至周五 08:30-17:30"),
    ("星期一、周三 ０９：００－１２：００", "周一、周三 09:00-12:00"),
    ("周六 09:00-12:00;周日 09:00-12:00", "周六、周日 09:00-12:00"),
    ("每天 08:00-20:00\n", "每天 08:00-20:00"),
    ("周一至周五 08:30-11:30、14:30-17:30", "周一至周五 08:30-11:30、14:30-17:30"),
    ("周五至周一 22:00-06:00", "周一、周五至周日 22:00-06:00"),
    ("周日 20:00-24:00", "周日 20:00-00:00"),
    ("", ""),
])
def test_the_shift_grammar_reads_its_variants_and_writes_them_one_way(text: str, expected: str) -> None:
    assert format_shifts(parse_shifts(text)) == expected
    assert parse_shifts(expected) == parse_shifts(text)


@pytest.mark.parametrize("text, position", [
    ("周八 09:00-12:00", 1), ("周一至周五", 6), ("08:00-12:00", 1), ("周一 09:00-25:00", 4),
    ("周一 09:00-09:00", 4), ("周一 09:00-12:00；周二 9点", 19),
])
def test_a_shift_that_does_not_follow_the_grammar_says_where(app: Flask, text: str, position: int) -> None:
    with app.test_request_context(), pytest.raises(PatternError) as caught:
        parse_shifts(text)
    assert caught.value.position == position


def test_an_imported_night_shift_puts_the_person_on_duty_after_midnight(world: World) -> None:
    import_staff(people(["night", "夜班", "", "网格员", "CA-01", "周一 22:00-06:00", "否"]), None, NOW)
    tuesday_3am = datetime(2026, 3, 2, 19, 0, tzinfo=UTC)  # Tue 03:00 in Shanghai
    assert duty.is_on_duty(account("night"), tuesday_3am, TZ)
    assert not duty.is_on_duty(account("night"), datetime(2026, 3, 3, 19, 0, tzinfo=UTC), TZ)


def test_the_template_has_the_staff_sheet_with_the_grammar_and_an_example(ctx: Flask) -> None:
    from ticketing.demo import DEMO_WORKBOOK

    sheet = load_workbook(io.BytesIO(template(str(DEMO_WORKBOOK))))["人员"]
    header = [c.value for c in sheet[1]]
    assert header == HEADER
    assert "周一至周五 08:30-17:30" in sheet.cell(row=1, column=6).comment.text
    assert sheet.cell(row=2, column=1).value


# --- the command ---------------------------------------------------------------------


def test_the_command_prints_one_time_passwords_once_and_a_dry_run_writes_nothing(
        world: World, tmp_path: Path) -> None:
    path = tmp_path / "staff.xlsx"
    path.write_bytes(people(NEW_GRID_WORKER).getvalue())
    runner = world_runner()
    dry = runner.invoke(args=["users", "import", str(path), "--dry-run"])
    assert dry.exit_code == 0 and "Dry run" in dry.output and "One-time" not in dry.output
    assert db.session.scalar(select(User).where(User.username == "wang")) is None
    done = runner.invoke(args=["users", "import", str(path)])
    assert done.exit_code == 0, done.output
    password = next(line.split()[-1] for line in done.output.splitlines() if line.strip().startswith("wang"))
    db.session.expire_all()
    assert account("wang").check_password(password)
    again = runner.invoke(args=["users", "import", str(path)])
    assert "One-time" not in again.output and "Unchanged: 1" in again.output


def test_the_command_lists_problems_and_exports_what_it_imports(world: World, tmp_path: Path) -> None:
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(people(["li", "李明", "", "队长", "CA", "", ""]).getvalue())
    runner = world_runner()
    failed = runner.invoke(args=["users", "import", str(bad)])
    assert failed.exit_code != 0 and "人员 / 2 / 角色" in failed.output
    out = tmp_path / "out.xlsx"
    assert runner.invoke(args=["users", "export", str(out)]).exit_code == 0
    assert import_staff(str(out), None, NOW).changed == []


def world_runner() -> Any:
    from flask import current_app

    return current_app.test_cli_runner()


# --- the admin page ---------------------------------------------------------------------


def upload(client: FlaskClient, data: io.BytesIO) -> Any:
    token = csrf_token(client, "/admin/accounts/import")
    return client.post("/admin/accounts/import", data={"csrf_token": token, "workbook": (data, "staff.xlsx")},
                       content_type="multipart/form-data")


def test_the_page_previews_then_applies_and_shows_each_one_time_password_once(
        client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    preview = upload(client, people(NEW_GRID_WORKER, ["gina", "新名字", "", "网格员", "CA-01", "", ""]))
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and 'id="staff-added"' in html and "新名字" in html
    assert db.session.scalar(select(User).where(User.username == "wang")) is None
    token = re.search(r'name="token"[^>]*value="([^"]+)"', html).group(1)
    done = client.post("/admin/accounts/import/apply", data={"csrf_token": csrf_from(html), "token": token})
    assert done.status_code == 200 and done.headers["Cache-Control"] == "no-store"
    password = re.search(r"<code>wang</code></td><td>王芳</td><td><code>([^<]+)</code>", done.get_data(as_text=True))
    db.session.expire_all()
    assert password and account("wang").check_password(password.group(1))
    assert account("gina").display_name == "新名字"
    again = client.post("/admin/accounts/import/apply", data={"csrf_token": csrf_from(html), "token": token})
    assert again.status_code == 410 and password.group(1) not in again.get_data(as_text=True)


def test_the_page_lists_problems_and_offers_no_apply(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    response = upload(client, people(["li", "李明", "", "队长", "CA", "", ""]))
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="staff-problems"' in html and "角色" in html
    assert 'id="staff-apply"' not in html


def test_a_supervisor_cannot_apply_another_persons_upload(ctx: Flask, client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    html = upload(client, people(NEW_GRID_WORKER)).get_data(as_text=True)
    token = re.search(r'name="token"[^>]*value="([^"]+)"', html).group(1)
    client = ctx.test_client()
    login(client, world.sam)
    response = client.post("/admin/accounts/import/apply",
                           data={"csrf_token": csrf_token(client, "/admin/accounts/import"), "token": token})
    assert response.status_code == 410
    assert db.session.scalar(select(User).where(User.username == "wang")) is None


def test_a_new_account_from_the_import_must_change_its_password_at_first_sign_in(
        client: FlaskClient, world: World) -> None:
    [(_u, _n, one_time)] = import_staff(people(NEW_GRID_WORKER), None, NOW).one_time
    response = client.post("/auth/login", data={"username": "wang", "password": one_time,
                                                "csrf_token": csrf_token(client)})
    assert response.headers["Location"].startswith("/auth/password")


def test_a_grid_worker_has_no_import_page(client: FlaskClient, world: World) -> None:
    login(client, world.gina)
    assert client.get("/admin/accounts/import").status_code in (403, 404)
