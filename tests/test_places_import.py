"""The places workbook: every sheet imports, every error is listed and stops everything,
a second import and an export's import change nothing, and streets stay apart."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from flask import Flask
from openpyxl import load_workbook
from sqlalchemy import func, select

from tests.factories import World, make_ticket
from tests.places_books import SQUARE, STREET, book, feature, geojson, sheets
from ticketing.extensions import db
from ticketing.models import (
    Building,
    Community,
    Complex,
    Grid,
    PropertyCompany,
    Street,
    Team,
    TeamKind,
)
from ticketing.services import placing
from ticketing.services.photos import PhotoStore
from ticketing.services.places_export import export_places, template
from ticketing.services.places_import import import_places
from ticketing.services.places_workbook import Problem


def counts() -> dict[str, int]:
    """Rows of every place kind, company and team."""
    return {m.__tablename__: db.session.scalar(select(func.count()).select_from(m))
            for m in (Street, Community, Grid, PropertyCompany, Complex, Building, Team)}


def by_code(model: type, code: str) -> object:
    return db.session.scalars(select(model).where(model.code == code)).one()


def where(problems: list[Problem]) -> set[tuple[str, int, str]]:
    return {(p.sheet, p.row, p.column) for p in problems}


# --- every sheet -------------------------------------------------------------


def test_every_sheet_is_imported_with_its_parents_aliases_and_address(ctx: Flask) -> None:
    report = import_places(book())
    assert report.problems == [] and report.applied
    assert counts() == {"streets": 1, "communities": 2, "grids": 3, "property_companies": 1, "complexes": 2,
                        "buildings": 3, "teams": 2}
    managed = by_code(Complex, "HX")
    assert managed.grid.code == "DY-01" and managed.property_company.code == "WY1"
    assert managed.aliases.splitlines() == ["东怡街79号院", "红星院", "老红星", "红星家园"]
    assert managed.address == "东怡街79号"
    assert by_code(Complex, "HS").property_company is None  # self-managed: 社区兜底
    assert by_code(PropertyCompany, "WY1").phone == "010-66660000"
    assert by_code(Building, "HX-9").grid.code == "DY-02" and by_code(Building, "HX-3").grid is None
    assert by_code(Team, "DY-TJ").kind == TeamKind.MEDIATION and by_code(Team, "DY-ZY").kind == TeamKind.VOLUNTEER
    assert by_code(Community, "HP-XL").street.code == "HP"


def test_columns_may_come_in_any_order_with_extra_columns_and_blank_rows(ctx: Flask) -> None:
    data = sheets(网格=[["备注", "社区编码", "名称", "编码"], ["x", "HP-DY", "东怡第一网格", "DY-01"], [None, None, None, None],
                      [], ["", "HP-DY", "东怡第二网格", "DY-02"], ["", "HP-XL", "西岭第一网格", "XL-01"]])
    report = import_places(book(data))
    assert report.problems == []
    assert by_code(Grid, "DY-02").community.code == "HP-DY"


def test_cells_are_trimmed_of_half_and_full_width_spaces_and_numbers_read_as_codes(ctx: Flask) -> None:
    data = sheets(街道=[["编码", "名称"], ["\u3000HP ", " 和平街道\u3000"]],
                  物业公司=[["编码", "名称", "联系电话"], [101, "红心物业", 66660000]],
                  小区=[["编码", "名称", "网格编码", "物业公司编码"], ["HX", "红星小区", "DY-01", 101.0],
                       ["HS", "槐树院", "DY-01", None]])
    assert import_places(book(data)).problems == []
    assert by_code(Street, "HP").name == "和平街道"
    assert by_code(Complex, "HX").property_company.code == "101"


# --- every error, and all or nothing -------------------------------------------


@pytest.mark.parametrize("data, expected", [
    (sheets(社区=[["编码", "名称", "街道编码"], ["HP-DY", "东怡社区", "NOPE"], ["HP-XL", "西岭社区", "HP"]]),
     ("社区", 2, "街道编码")),
    (sheets(网格=[["编码", "名称", "社区编码"], ["DY-01", "一", "HP-DY"], ["DY-02", "二", "HP-DY"], ["DY-01", "又一", "HP-DY"],
                 ["XL-01", "三", "HP-XL"]]),
     ("网格", 4, "编码")),
    (sheets(物业公司=[["编码", "名称", "联系电话"], ["WY1", None, "1"]]), ("物业公司", 2, "名称")),
    (sheets(队伍=[["编码", "名称", "社区编码"], ["DY-ZY", "东怡志愿服务队", "HP-DY"]]), ("队伍", 1, "类型")),
    (sheets(队伍=[["编码", "名称", "类型", "社区编码"], ["DY-ZY", "东怡志愿服务队", "助老队", "HP-DY"]]), ("队伍", 2, "类型")),
    (sheets(楼栋=[["编码", "名称", "小区编码", "网格编码"], ["HX-3", "3号楼", "HX", "XL-01"]]), ("楼栋", 2, "网格编码")),
    (sheets(小区=[["编码", "名称", "网格编码", "物业公司编码"], ["HX", "红星小区", "DY-01", "WY9"]]), ("小区", 2, "物业公司编码")),
    (sheets(街道=[["编码", "名称"], ["HP" * 20, "和平街道"]]), ("街道", 2, "编码")),
    (sheets(物业公司=[["编码", "名称"], ["WY1", "红心物业"], ["WY2", "红心物业"]]), ("物业公司", 3, "名称")),
], ids=["unknown parent", "duplicate code", "missing cell", "missing column", "bad team type",
        "building grid of another community", "unknown company", "code too long", "company name twice"])
def test_an_error_is_reported_by_sheet_row_and_column_and_nothing_is_written(
        ctx: Flask, data: dict, expected: tuple[str, int, str]) -> None:
    report = import_places(book(data))
    assert expected in where(report.problems)
    assert not report.applied and sum(counts().values()) == 0


def test_every_error_is_listed_not_only_the_first(ctx: Flask) -> None:
    data = sheets(社区=[["编码", "名称", "街道编码"], ["HP-DY", "东怡社区", "NOPE"], ["HP-XL", None, "HP"]],
                  楼栋=[["编码", "名称", "小区编码"], ["B1", "1号楼", "ZZ"]])
    found = where(import_places(book(data)).problems)
    assert {("社区", 2, "街道编码"), ("社区", 3, "名称"), ("楼栋", 2, "小区编码")} <= found


def test_a_file_that_is_not_a_workbook_is_an_error(ctx: Flask) -> None:
    report = import_places(io.BytesIO(b"code,name\nHP,x\n"))
    assert len(report.problems) == 1 and not report.applied


def test_one_failing_row_among_good_ones_writes_nothing(ctx: Flask) -> None:
    data = sheets()
    data["楼栋"].append(["HX-4", "4号楼", "NOPE", None, None])
    report = import_places(book(data))
    assert where(report.problems) == {("楼栋", 5, "小区编码")}
    assert sum(counts().values()) == 0


def test_a_failing_row_leaves_an_earlier_import_untouched(ctx: Flask) -> None:
    import_places(book())
    data = sheets(街道=[["编码", "名称"], ["HP", "新名字"]])
    data["网格"].append(["XL-02", "西岭第二网格", "NOPE"])
    assert import_places(book(data)).problems
    assert by_code(Street, "HP").name == "和平街道"
    assert db.session.scalar(select(Grid).where(Grid.code == "XL-02")) is None


def test_a_dry_run_reports_what_it_would_add_and_writes_nothing(ctx: Flask) -> None:
    report = import_places(book(), dry_run=True)
    assert report.problems == [] and not report.applied
    assert report.count(report.added) == {"街道": 1, "社区": 2, "网格": 3, "物业公司": 1, "小区": 2, "楼栋": 3, "队伍": 2}
    assert sum(counts().values()) == 0


def test_a_dry_run_of_a_change_shows_before_and_after_and_changes_nothing(ctx: Flask) -> None:
    import_places(book())
    report = import_places(book(sheets(街道=[["编码", "名称"], ["HP", "和平路街道"]])), dry_run=True)
    assert [(e.code, e.changes) for e in report.changed] == [("HP", [("名称", "和平街道", "和平路街道")])]
    db.session.expire_all()
    assert by_code(Street, "HP").name == "和平街道"


# --- re-import, updates, moves, missing places -----------------------------------


def test_importing_the_same_workbook_again_changes_nothing(ctx: Flask) -> None:
    import_places(book())
    before = counts()
    report = import_places(book())
    assert report.added == [] and report.changed == [] and report.missing == []
    assert report.unchanged == 14 and counts() == before


def test_a_changed_name_and_parent_are_updates_of_the_same_rows(ctx: Flask) -> None:
    import_places(book())
    first_id = by_code(Complex, "HS").id
    data = sheets(小区=[["编码", "名称", "网格编码", "物业公司编码"], ["HX", "红星小区", "DY-01", "WY1"],
                       ["HS", "老槐树院", "DY-02", "WY1"]])
    report = import_places(book(data))
    assert [e.code for e in report.changed] == ["HS"]
    db.session.expire_all()
    moved = by_code(Complex, "HS")
    assert moved.id == first_id and moved.name == "老槐树院" and moved.grid.code == "DY-02"
    assert moved.property_company.code == "WY1"


def test_a_moved_complex_keeps_its_open_tickets_and_places_new_ones_in_its_new_grid(
        world: World, store: PhotoStore) -> None:
    old = make_ticket(world, store, building=world.building_courtyard)
    assert old.grid_id == world.grid_a1.id
    workbook, _bounds = export_places()
    wb = load_workbook(io.BytesIO(workbook))
    ws = wb["小区"]
    header = [c.value for c in ws[1]]
    for row in ws.iter_rows(min_row=2):
        if row[header.index("编码")].value == world.courtyard.code:
            row[header.index("网格编码")].value = world.grid_a2.code
    out = io.BytesIO()
    wb.save(out)
    out.seek(0)
    report = import_places(out)
    assert [e.code for e in report.changed] == [world.courtyard.code]
    db.session.expire_all()
    assert old.grid_id == world.grid_a1.id  # filed tickets keep their grid and handler
    assert placing.building_place(world.building_courtyard.id).grid_id == world.grid_a2.id
    new = make_ticket(world, store, building=world.building_courtyard)
    assert new.grid_id == world.grid_a2.id


def test_a_place_missing_from_the_workbook_is_reported_not_removed(ctx: Flask) -> None:
    import_places(book())
    report = import_places(book(sheets(楼栋=STREET["楼栋"][:2] + STREET["楼栋"][3:])))
    assert [(e.sheet, e.code) for e in report.missing] == [("楼栋", "HX-9")]
    assert by_code(Building, "HX-9").active


def test_an_optional_column_the_sheet_lacks_leaves_its_values_alone(ctx: Flask) -> None:
    import_places(book())
    data = sheets(小区=[["编码", "名称", "网格编码"], ["HX", "红星小区", "DY-01"], ["HS", "槐树院", "DY-01"]])
    assert import_places(book(data)).changed == []
    assert by_code(Complex, "HX").property_company is not None and by_code(Complex, "HX").address


def test_an_empty_optional_cell_clears_its_value(ctx: Flask) -> None:
    import_places(book())
    data = sheets()
    data["小区"][1][3:] = [None, None, None]
    report = import_places(book(data))
    assert [(e.code, [c[0] for c in e.changes]) for e in report.changed] == [("HX", ["物业公司编码", "别名", "地址"])]
    assert by_code(Complex, "HX").property_company is None and by_code(Complex, "HX").aliases == ""


def test_a_building_in_another_grid_is_placed_in_that_grid(ctx: Flask) -> None:
    import_places(book())
    own = placing.building_place(by_code(Building, "HX-9").id)
    usual = placing.building_place(by_code(Building, "HX-3").id)
    assert own.grid_id == by_code(Grid, "DY-02").id and usual.grid_id == by_code(Grid, "DY-01").id
    found = placing.place_from_text(by_code(Community, "HP-DY"), "红星小区9号楼")
    assert found.building_id == by_code(Building, "HX-9").id and found.grid_id == by_code(Grid, "DY-02").id


# --- boundaries ------------------------------------------------------------------


def test_boundaries_are_stored_in_wgs84_as_given(ctx: Flask) -> None:
    report = import_places(book(), geojson(feature("DY-01"), feature("XL-01", kind="MultiPolygon", key="code")))
    assert report.problems == []
    assert json.loads(by_code(Grid, "DY-01").boundary) == {"type": "Polygon", "coordinates": [SQUARE]}
    assert json.loads(by_code(Grid, "XL-01").boundary)["type"] == "MultiPolygon"
    assert by_code(Grid, "DY-02").boundary is None


def test_gcj02_boundaries_are_converted_to_wgs84(ctx: Flask) -> None:
    from ticketing.services.geo_import import wgs84_to_gcj02

    shifted = [list(wgs84_to_gcj02(lng, lat)) for lng, lat in SQUARE]
    assert import_places(book(), geojson(feature("DY-01", shifted)), gcj02=True).problems == []
    stored = json.loads(by_code(Grid, "DY-01").boundary)["coordinates"][0]
    assert all(abs(a - b) < 1e-6 for p, q in zip(stored, SQUARE, strict=True) for a, b in zip(p, q, strict=True))


@pytest.mark.parametrize("bad, column", [
    (feature("NOPE"), "properties.编码"),
    (feature("DY-01", SQUARE[:-1]), "geometry"),
    (feature("DY-01", [[116.4, 39.9], [116.41, 39.9], [116.41, 39.91], [116.4, 39.9]][:3]), "geometry"),
    (feature("DY-01", [[216.4, 39.9], [116.41, 39.9], [116.41, 39.91], [216.4, 39.9]]), "geometry"),
    ({"type": "Feature", "properties": {"编码": "DY-01"}, "geometry": {"type": "Point", "coordinates": [1, 2]}},
     "geometry"),
], ids=["grid not in workbook", "ring not closed", "too few points", "out of range", "not a polygon"])
def test_a_bad_boundary_is_an_error_and_nothing_is_written(ctx: Flask, bad: dict, column: str) -> None:
    report = import_places(book(), geojson(feature("DY-02"), bad), boundaries_name="grids.geojson")
    assert where(report.problems) == {("grids.geojson", 2, column)}
    assert sum(counts().values()) == 0


def test_a_changed_boundary_is_an_update_and_the_same_one_is_not(ctx: Flask) -> None:
    import_places(book(), geojson(feature("DY-01")))
    assert import_places(book(), geojson(feature("DY-01"))).changed == []
    bigger = [[116.40, 39.90], [116.42, 39.90], [116.42, 39.91], [116.40, 39.91], [116.40, 39.90]]
    report = import_places(book(), geojson(feature("DY-01", bigger)))
    assert [(e.code, [c[0] for c in e.changes]) for e in report.changed] == [("DY-01", ["GeoJSON"])]


# --- export ------------------------------------------------------------------------


def test_export_then_import_is_a_no_op(ctx: Flask) -> None:
    import_places(book(), geojson(feature("DY-01"), feature("XL-01", kind="MultiPolygon")))
    workbook, boundaries = export_places()
    report = import_places(io.BytesIO(workbook), json.dumps(boundaries).encode())
    assert report.problems == [] and report.added == [] and report.changed == [] and report.missing == []
    assert report.unchanged == 14


def test_the_world_of_the_tests_exports_and_reimports_unchanged(world: World) -> None:
    workbook, boundaries = export_places()
    report = import_places(io.BytesIO(workbook), json.dumps(boundaries).encode())
    assert report.problems == [] and report.added == [] and report.changed == []


def test_the_template_has_every_sheet_a_note_per_column_and_an_example_row(ctx: Flask) -> None:
    from ticketing.demo import DEMO_WORKBOOK

    wb = load_workbook(io.BytesIO(template(str(DEMO_WORKBOOK))))
    assert wb.sheetnames == [*STREET, "人员"]  # the staff sheet is part of the same workbook
    for ws in wb.worksheets:
        rows = list(ws.iter_rows(values_only=True))
        assert len(rows) == 2 and rows[0][0] in ("编码", "用户名") and rows[1][0]
        assert all(cell.comment is not None and cell.comment.text for cell in ws[1])


# --- several streets -----------------------------------------------------------------


def other_street() -> io.BytesIO:
    return book({"街道": [["编码", "名称"], ["CG", "城关街道"]], "社区": [["编码", "名称", "街道编码"], ["CG-NG", "南关社区", "CG"]],
                 "网格": [["编码", "名称", "社区编码"], ["NG-01", "南关第一网格", "CG-NG"]]})


def test_two_streets_are_imported_and_exported_apart(ctx: Flask) -> None:
    import_places(book())
    report = import_places(other_street())
    assert report.problems == [] and report.missing == []  # the first street is not "missing"
    assert import_places(book()).missing == []
    workbook, _bounds = export_places(["CG"])
    rows = {ws.title: [r for r in ws.iter_rows(min_row=2, values_only=True)] for ws in
            load_workbook(io.BytesIO(workbook)).worksheets}
    assert [r[0] for r in rows["街道"]] == ["CG"] and [r[0] for r in rows["网格"]] == ["NG-01"]
    assert rows["小区"] == [] and rows["物业公司"] == []


# --- the command line --------------------------------------------------------------------


def test_the_command_imports_a_dry_run_and_lists_errors(ctx: Flask, tmp_path: Path) -> None:
    runner = ctx.test_cli_runner()
    good = tmp_path / "places.xlsx"
    good.write_bytes(book().getvalue())
    dry = runner.invoke(args=["places", "import", str(good), "--dry-run"])
    assert dry.exit_code == 0 and "Dry run" in dry.output and sum(counts().values()) == 0
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(book(sheets(社区=[["编码", "名称", "街道编码"], ["HP-DY", "东怡社区", "NOPE"]])).getvalue())
    failed = runner.invoke(args=["places", "import", str(bad)])
    assert failed.exit_code == 1 and "社区 / 2 / 街道编码" in failed.output
    assert runner.invoke(args=["places", "import", str(good)]).exit_code == 0 and counts()["grids"] == 3


def test_the_command_exports_what_it_imports(ctx: Flask, tmp_path: Path) -> None:
    runner = ctx.test_cli_runner()
    source, grids = tmp_path / "in.xlsx", tmp_path / "in.geojson"
    source.write_bytes(book().getvalue())
    grids.write_bytes(geojson(feature("DY-01")))
    assert runner.invoke(args=["places", "import", str(source), "--boundaries", str(grids)]).exit_code == 0
    out, out_grids = tmp_path / "out.xlsx", tmp_path / "out.geojson"
    assert runner.invoke(args=["places", "export", str(out), "--boundaries", str(out_grids)]).exit_code == 0
    again = runner.invoke(args=["places", "import", str(out), "--boundaries", str(out_grids), "--dry-run"])
    assert "Unchanged: 14" in again.output and "Added" not in again.output and "Changed" not in again.output
    template_path = tmp_path / "template.xlsx"
    assert runner.invoke(args=["places", "template", str(template_path)]).exit_code == 0
    assert load_workbook(template_path).sheetnames == [*STREET, "人员"]
