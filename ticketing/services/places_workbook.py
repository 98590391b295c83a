"""The places workbook as a file: its sheets and columns, reading rows, writing sheets.

The sheet names and column headers are the file format that community offices fill
in (Chinese, as their Excel is); they are data, not interface text, and are therefore
spelt out here once. Columns may come in any order, extra columns are ignored and
blank rows skipped. What the rows mean is services/places_import.py's.
"""
from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from openpyxl import Workbook, load_workbook
from openpyxl.comments import Comment
from openpyxl.styles import Font, PatternFill

CODE, NAME = "编码", "名称"
STREET_CODE, COMMUNITY_CODE, GRID_CODE = "街道编码", "社区编码", "网格编码"
COMPANY_CODE, COMPLEX_CODE = "物业公司编码", "小区编码"
PHONE, ALIASES, ADDRESS, KIND = "联系电话", "别名", "地址", "类型"
# 类型 of a team, as the sheet writes it → TeamKind value.
TEAM_KINDS = {"志愿服务队": "volunteer", "调解队": "mediation"}
# Aliases are separated by any of these (or new lines); the export writes the first.
ALIAS_SEPARATORS = "、，,；;\n"
MAX_CODE, MAX_NAME, MAX_PHONE, MAX_ADDRESS = 32, 100, 32, 200


@dataclass(frozen=True)
class Problem:
    """Something wrong in the files: where (sheet, row as Excel numbers it, column) and what."""

    sheet: str
    row: int
    column: str
    message: str

    def __str__(self) -> str:
        where = [self.sheet] + ([f"{self.row}"] if self.row else []) + ([self.column] if self.column else [])
        return " / ".join(w for w in where if w) + ": " + self.message


@dataclass(frozen=True)
class Column:
    """A column of a sheet: its header, whether a row needs it, and the template's note."""

    header: str
    required: bool
    note: Any  # a lazy string


@dataclass(frozen=True)
class Sheet:
    """A sheet of the workbook: its key in the code, its name, its columns."""

    key: str
    title: str
    columns: tuple[Column, ...]


def _code(what: Any) -> Column:
    return Column(CODE, True, _l("Required. The %(what)s's code, unique among them: the key an import "
                                 "matches rows by; never reuse one. At most 32 characters.", what=what))


def _name(what: Any) -> Column:
    return Column(NAME, True, _l("Required. The %(what)s's name as residents and staff know it.", what=what))


def _parent(header: str, what: Any, required: bool = True) -> Column:
    note = (_l("Required. The code of the %(what)s it belongs to (in this workbook or already in Minhu).",
               what=what) if required else what)
    return Column(header, required, note)


_ALIASES = Column(ALIASES, False, _l("Optional. Other names residents use, separated by 、 ， ; or new lines."))

SHEETS: tuple[Sheet, ...] = (
    Sheet("streets", "街道", (_code(_l("street")), _name(_l("street")))),
    Sheet("communities", "社区", (_code(_l("community")), _name(_l("community")),
                                 _parent(STREET_CODE, _l("street")))),
    Sheet("grids", "网格", (_code(_l("grid")), _name(_l("grid")), _parent(COMMUNITY_CODE, _l("community")))),
    Sheet("companies", "物业公司", (_code(_l("property company")), _name(_l("property company")),
                                   Column(PHONE, False, _l("Optional. The company's service phone.")))),
    Sheet("complexes", "小区", (
        _code(_l("complex")), _name(_l("complex")), _parent(GRID_CODE, _l("grid")),
        _parent(COMPANY_CODE, _l("Optional. The code of the property company that manages it; empty for a "
                                 "self-managed complex, whose requests the community handles (社区兜底)."),
                 required=False),
        _ALIASES,
        Column(ADDRESS, False, _l("Optional. The street address.")))),
    Sheet("buildings", "楼栋", (
        _code(_l("building")), _name(_l("building")), _parent(COMPLEX_CODE, _l("complex")), _ALIASES,
        _parent(GRID_CODE, _l("Optional. Only when the building lies in another grid of the same community "
                              "than its complex: that grid's code."), required=False))),
    Sheet("teams", "队伍", (
        _code(_l("team")), _name(_l("team")),
        Column(KIND, True, _l("Required. 志愿服务队 (volunteer service) or 调解队 (mediation).")),
        _parent(COMMUNITY_CODE, _l("community")))),
)
SHEET_BY_KEY = {s.key: s for s in SHEETS}


@dataclass(frozen=True)
class Row:
    """A filled-in row: its sheet, its number as Excel shows it, its cells by header (trimmed)."""

    sheet: str
    number: int
    cells: dict[str, str]

    def get(self, header: str) -> str:
        """The cell under `header`, "" when empty or absent."""
        return self.cells.get(header, "")


def cell_text(value: Any) -> str:
    """A cell as trimmed text: 101.0 is "101", full-width spaces are trimmed too."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (datetime, date)):
        value = value.isoformat()
    return str(value).strip()  # str.strip() knows U+3000 and U+00A0


def split_list(text: str, separators: str) -> list[str]:
    """The items of a cell separated by any of `separators`, trimmed, without blanks or repeats."""
    seen: list[str] = []
    for item in re.split("[" + re.escape(separators) + "]", text or ""):
        item = item.strip()
        if item and item not in seen:
            seen.append(item)
    return seen


def split_aliases(text: str) -> list[str]:
    """The aliases of a cell or of a stored value, trimmed, without blanks or repeats."""
    return split_list(text, ALIAS_SEPARATORS + "\r")


def read_workbook(source: str | IO[bytes], specs: tuple[Sheet, ...] = SHEETS
                  ) -> tuple[dict[str, list[Row]], list[Problem]]:
    """The rows of every sheet of `specs` (absent sheets have none), and the problems found."""
    try:
        book = load_workbook(source, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001  openpyxl raises a zoo of errors for a file that is not .xlsx
        return {}, [Problem("", 0, "", _("not an Excel workbook (.xlsx): %(error)s", error=str(exc)[:200]))]
    rows: dict[str, list[Row]] = {s.key: [] for s in specs}
    problems: list[Problem] = []
    try:
        for sheet in specs:
            if sheet.title not in book.sheetnames:
                continue
            found = _read_sheet(sheet, book[sheet.title].iter_rows(values_only=True), problems)
            rows[sheet.key] = found
    finally:
        book.close()
    return rows, problems


def _read_sheet(sheet: Sheet, lines: Iterable[tuple[Any, ...]], problems: list[Problem]) -> list[Row]:
    """The filled-in rows under the header line; a required column missing is a problem."""
    lines = iter(lines)
    header = next(lines, None) or ()
    where: dict[str, int] = {}
    for index, title in enumerate(header):
        where.setdefault(cell_text(title), index)
    known = [c.header for c in sheet.columns if c.header in where]
    missing = [c.header for c in sheet.columns if c.required and c.header not in where]
    for column in missing:
        problems.append(Problem(sheet.title, 1, column, _("the column is missing")))
    found = []
    for number, values in enumerate(lines, start=2):
        if not any(cell_text(v) for v in values):
            continue  # a blank row
        cells = {h: cell_text(values[where[h]]) if where[h] < len(values) else "" for h in known}
        found.append(Row(sheet.title, number, cells))
    return found


HEADER_FONT = Font(bold=True)
REQUIRED_FILL = PatternFill("solid", fgColor="FFF2CC")


def write_workbook(sheets: dict[str, list[dict[str, str]]], specs: tuple[Sheet, ...] = SHEETS) -> bytes:
    """An .xlsx of every sheet of `specs` in order: headers with their notes, then the rows."""
    book = Workbook()
    book.remove(book.worksheets[0])  # the empty sheet a new workbook starts with
    for sheet in specs:
        ws = book.create_sheet(sheet.title)
        ws.append([c.header for c in sheet.columns])
        for index, column in enumerate(sheet.columns, start=1):
            cell = ws.cell(row=1, column=index)
            cell.font = HEADER_FONT
            if column.required:
                cell.fill = REQUIRED_FILL
            cell.comment = Comment(str(column.note), "Minhu", width=320, height=120)
            ws.column_dimensions[cell.column_letter].width = 14 if column.header == CODE else 24
        for values in sheets.get(sheet.key, []):
            ws.append([values.get(c.header, "") or None for c in sheet.columns])
        ws.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
