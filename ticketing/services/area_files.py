"""The files of an area export (services/area_export.py): a workbook and a CSV file.

The workbook has three sheets, each laid out to print on A4 landscape (fitted to the
page's width, the column headers repeated on every page, the area and period in the
page header, page numbers and the time printed in the footer, gridlines printed):

- 汇总: a title row (area, period, printed at), then the summary figures;
- 分网格: a title row, then a row per grid and a total;
- 明细: a title row, then a line per ticket (continued on 明细2 … past Excel's
  1,048,576 rows).

The CSV file holds the lines only, under the same headers, UTF-8 with a byte-order
mark as the grid's CSV (services/ledger_export.py), so that Excel opens the Chinese.

Both are written as the lines come from the database: openpyxl's write-only mode
keeps each sheet on disk, not in memory. Headers and labels are Chinese whatever the
reader's language, as in the grid's files: this is the office's paper form.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import IO, Any, cast

from flask_babel import force_locale
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell, WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.header_footer import HeaderFooter, HeaderFooterItem, _HeaderFooterPart
from openpyxl.worksheet.page import PageMargins
from openpyxl.worksheet.properties import PageSetupProperties
from openpyxl.worksheet.worksheet import Worksheet

from ticketing import labels
from ticketing.models import Channel, Ticket
from ticketing.services import area_export, ledger_export, ledger_report, privacy
from ticketing.services.area_export import ExportArea, GridFigures, Summary
from ticketing.services.ledger_report import Period, Rate

LINE_COLUMNS: tuple[tuple[str, int], ...] = (
    ("编号", 14), ("社区", 10), ("网格", 10), ("渠道", 9), ("受理时间", 16), ("诉求人", 8), ("联系电话", 13),
    ("地点", 20), ("诉求内容", 36), ("类别", 11), ("承办人", 10), ("状态", 8), ("办理情况", 26), ("办理时限", 16),
    ("是否超时", 8), ("满意度", 9), ("回访情况", 20), ("状态截至", 11),
)
LINE_HEADERS = tuple(name for name, _width in LINE_COLUMNS)
# The long texts wrap in their column (by index, looked up for every cell).
WRAPPED = frozenset(LINE_HEADERS.index(name) for name in ("诉求内容", "办理情况"))
GRID_COLUMNS: tuple[tuple[str, int], ...] = (
    ("社区", 12), ("网格", 12), ("网格编号", 10), ("新受理", 8), ("已办结", 8), ("已完结", 8), ("期末未办结", 10),
    ("期末超时", 9), ("响应率", 8), ("应响应件数", 10), ("解决率", 8), ("完结件数", 9), ("满意率", 8),
    ("评价件数", 9), ("应回访", 8), ("按时回访", 9), ("联系上", 8), ("有效回访率", 10), ("平均响应(小时)", 13),
    ("平均办结(小时)", 13),
)
SUMMARY_COLUMNS: tuple[tuple[str, int], ...] = (("项目", 22), ("数值", 14), ("说明", 60))
RATE_NAMES = {"response": ("响应率", "及时响应", "应响应"), "resolution": ("解决率", "未重办的完结", "完结"),
              "satisfaction": ("满意率", "满意和基本满意", "评价")}
TOO_FEW = "样本不足"
SHEET_ROWS = 1_048_576  # Excel's limit
TIME_FORMAT = "yyyy-mm-dd hh:mm"
DAY_FORMAT = "yyyy-mm-dd"
PERCENT = "0.0%"
HOURS = "0.0"
BOLD = Font(bold=True)
TITLE = Font(bold=True, size=14)
HEADER_FILL = PatternFill("solid", fgColor="F2DCDB")
WRAP = Alignment(wrap_text=True, vertical="top")


def period_text(span: Period) -> str:
    """2026-11-18 · 2026-11-16 至 2026-11-22（周） · 2026年11月 · 2026-11-01 至 2026-12-15."""
    if span.kind == "day" or span.days == 1:
        return span.first.isoformat()
    if span.kind == "month":
        return f"{span.first.year}年{span.first.month}月"
    week = "（周）" if span.kind == "week" else ""
    return f"{span.first.isoformat()} 至 {span.last.isoformat()}{week}"


@dataclass(frozen=True)
class Heading:
    """What the title row and the page header and footer say."""

    area: str
    period: str
    printed_at: str
    full: bool

    @property
    def title(self) -> str:
        """东怡社区 台账 2026-11-16 至 2026-11-22（周）"""
        return f"{self.area} 台账 {self.period}"

    @property
    def subtitle(self) -> str:
        """When printed, and whether personal data is in it."""
        data = "含完整个人信息，每件查看已记录" if self.full else "个人信息已脱敏"
        return f"打印时间 {self.printed_at}　{data}"


@dataclass(frozen=True)
class ZhLabels:
    """The Chinese labels of the codes in the lines, looked up once per file."""

    channel: dict[str, str]
    status: dict[str, str]
    rating: dict[str, str]
    patrol_not_rated: str


def zh_labels() -> ZhLabels:
    """The labels as the office's form says them."""
    with force_locale("zh_CN"):
        channel, status, rating = ({code: str(label) for code, label in table.items()}
                                   for table in (labels.CHANNEL_LABELS, labels.STATUS_LABELS, labels.RATING_LABELS))
        return ZhLabels(channel, status, rating, str(ledger_export.PATROL_NOT_RATED))


def _local(value: datetime | None, tz: tzinfo) -> datetime | None:
    return value.astimezone(tz).replace(tzinfo=None) if value is not None else None


def line_row(r: Any, tz: tzinfo, full: bool, callback: str, names: ZhLabels) -> list[Any]:
    """One line (a row of `area_export.line_batches`) in LINE_COLUMNS' order; times as
    naive local datetimes (spreadsheets have no zones)."""
    # mask_text reads only the requester's name, room and phone, which the row has.
    requester = cast(Ticket, r)
    rating = names.patrol_not_rated if r.channel == Channel.PATROL else (
        names.rating.get(r.rating, r.rating) if r.rating else "")
    return [
        r.number, r.community_name, r.grid_name, names.channel.get(r.channel, r.channel), _local(r.created_at, tz),
        r.requester_name if full else privacy.mask_name(r.requester_name),
        r.requester_phone if full else privacy.mask_phone(r.requester_phone),
        ledger_export.place_of(r.complex_name, r.building_name, r.unit_room, r.address_text, full),
        r.description if full else privacy.mask_text(r.description, requester),
        r.category_name or "", r.handler, names.status.get(r.status, r.status),
        r.result if full else privacy.mask_text(r.result, requester),
        _local(r.deadline, tz), "是" if r.overdue else "否", rating, callback, r.day,
    ]


def lines(area: ExportArea, span: Period, tz: tzinfo, full: bool) -> Iterator[list[Any]]:
    """The file's lines, batch by batch, each batch's 回访 looked up at once."""
    names = zh_labels()
    for batch in area_export.line_batches(area, span):
        called = ledger_export.callbacks_of(sorted({r.ticket_id for r in batch}), tz)
        for r in batch:
            yield line_row(r, tz, full, called.get(r.ticket_id, ""), names)


def write(area: ExportArea, span: Period, fmt: str, out: IO[bytes], printed_at: datetime, tz: tzinfo,
          full: bool = False) -> int:
    """Write the area's file for the period to `out`: "xlsx" (summary, grids, lines) or
    "csv" (the lines). Returns how many lines. Reads only; logs nothing."""
    heading = Heading(area.name, period_text(span), f"{printed_at.astimezone(tz):%Y-%m-%d %H:%M}", full)
    if fmt == "csv":
        return write_csv(lines(area, span, tz, full), out)
    if fmt != "xlsx":
        raise ValueError(f"unknown format {fmt!r}")
    return write_xlsx(heading, area_export.summary(area, span), area_export.grid_figures(area, span),
                      lines(area, span, tz, full), out)


def write_csv(rows: Iterable[list[Any]], out: IO[bytes]) -> int:
    """The header and the lines, UTF-8 with a byte-order mark; returns how many lines."""
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")
    writer = csv.writer(text)
    writer.writerow(LINE_HEADERS)
    count = 0
    for row in rows:
        writer.writerow([ledger_export.csv_value(value) for value in row])
        count += 1
    text.flush()
    text.detach()  # leave `out` open for the caller
    return count


# --- the workbook -----------------------------------------------------------------------


def write_xlsx(heading: Heading, totals: Summary, grids: list[GridFigures], rows: Iterable[list[Any]],
               out: IO[bytes]) -> int:
    """The three sheets (see the module's docstring); returns how many lines."""
    book = Workbook(write_only=True)
    summary_sheet = _sheet(book, "汇总", SUMMARY_COLUMNS, heading)
    grid_sheet = _sheet(book, "分网格", GRID_COLUMNS, heading)
    for values in grid_rows(grids):
        grid_sheet.append([_cell(grid_sheet, value) for value in values])
    count = _write_lines(book, heading, rows)
    for values in summary_rows(totals, count):
        summary_sheet.append([_cell(summary_sheet, value) for value in values])
    book.save(out)
    return count


def _write_lines(book: Workbook, heading: Heading, rows: Iterable[list[Any]]) -> int:
    sheet, room, part, count = None, 0, 1, 0
    for row in rows:
        if room == 0:
            sheet = _sheet(book, "明细" if part == 1 else f"明细{part}", LINE_COLUMNS, heading)
            room, part = SHEET_ROWS - 2, part + 1
        assert sheet is not None
        sheet.append([_line_cell(sheet, index, value) for index, value in enumerate(row)])
        room -= 1
        count += 1
    if sheet is None:
        _sheet(book, "明细", LINE_COLUMNS, heading)
    return count


def _sheet(book: Workbook, name: str, columns: tuple[tuple[str, int], ...], heading: Heading) -> WriteOnlyWorksheet:
    """A sheet with its widths and print set-up, its title row and its column headers
    (row 2, frozen on screen and repeated on every printed page)."""
    sheet = cast(WriteOnlyWorksheet, book.create_sheet(name))
    for index, (_header, width) in enumerate(columns, start=1):
        as_worksheet(sheet).column_dimensions[get_column_letter(index)].width = width
    as_worksheet(sheet).freeze_panes = "A3"
    print_setup(sheet, heading)
    sheet.append([_styled(sheet, f"{heading.title}　{heading.subtitle}", font=TITLE)])
    sheet.append([_styled(sheet, header, font=BOLD, fill=HEADER_FILL, alignment=WRAP) for header, _ in columns])
    return sheet


def as_worksheet(sheet: WriteOnlyWorksheet) -> Worksheet:
    """The sheet as typed by its page set-up: a write-only sheet shares the widths, panes
    and print settings of an ordinary one (openpyxl copies them), though the type stubs
    leave them out. Set them before the first row: they are written first."""
    return cast(Worksheet, sheet)


def print_setup(sheet: WriteOnlyWorksheet, heading: Heading, header_row: int = 2) -> None:
    """A4 landscape, fitted to the page's width, headers repeated on every page."""
    setup = as_worksheet(sheet)
    setup.page_setup.orientation = "landscape"
    setup.page_setup.paperSize = Worksheet.PAPERSIZE_A4
    setup.page_setup.fitToWidth = 1
    setup.page_setup.fitToHeight = 0  # as many pages down as it takes
    setup.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    setup.print_title_rows = f"{header_row}:{header_row}"
    setup.print_options.gridLines = True
    setup.print_options.horizontalCentered = True
    setup.page_margins = PageMargins(left=0.4, right=0.4, top=0.75, bottom=0.6, header=0.3, footer=0.3)
    setup.HeaderFooter = HeaderFooter(
        oddHeader=HeaderFooterItem(center=_HeaderFooterPart(_header_text(heading.title), size=12)),
        oddFooter=HeaderFooterItem(left=_HeaderFooterPart(_header_text(heading.subtitle), size=9),
                                   right=_HeaderFooterPart("第 &P 页，共 &N 页", size=9)))


def _header_text(text: str) -> str:
    return text.replace("&", "&&")  # "&" starts a code in headers and footers


def _formatted(sheet: WriteOnlyWorksheet, value: Any, number_format: str) -> Cell:
    cell = WriteOnlyCell(sheet)
    cell.value = value
    cell.number_format = number_format
    return cell


def _styled(sheet: WriteOnlyWorksheet, value: Any, **style: Any) -> Cell:
    cell = _cell(sheet, value)
    if not isinstance(cell, Cell):
        cell = WriteOnlyCell(sheet, value=cell)
    for name, setting in style.items():
        setattr(cell, name, setting)
    return cell


def _cell(sheet: WriteOnlyWorksheet, value: Any) -> Any:
    """A value as a cell: text stays text (never a formula, no control characters),
    times and days with their formats, fractions as percentages."""
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
        if value.startswith("="):  # openpyxl would store "=…" as a formula
            cell = WriteOnlyCell(sheet, value=value)
            cell.data_type = "s"
            return cell
        return value
    if isinstance(value, datetime):
        return _formatted(sheet, value, TIME_FORMAT)
    if isinstance(value, date):
        return _formatted(sheet, value, DAY_FORMAT)
    if isinstance(value, Percent):
        return _formatted(sheet, value.value, PERCENT)
    if isinstance(value, Hours):
        return _formatted(sheet, value.value, HOURS)
    return value


def _line_cell(sheet: WriteOnlyWorksheet, index: int, value: Any) -> Any:
    # Every cell costs (openpyxl writes each as XML in Python; about 15 µs here), and a
    # styled one more: an empty text is no cell at all, and only the long texts wrap.
    if value == "":
        return None
    if index in WRAPPED:
        return _styled(sheet, value, alignment=WRAP)
    return _cell(sheet, value)


@dataclass(frozen=True)
class Percent:
    """A fraction shown as a percentage."""

    value: float


@dataclass(frozen=True)
class Hours:
    """A duration in hours, one decimal shown."""

    value: float


def hours(seconds: int | None) -> Hours | None:
    """Seconds as hours, or None."""
    return Hours(round(seconds / 3600, 2)) if seconds is not None else None


def rate_cell(rate: Rate) -> Percent | str:
    """The rate, or why it is not shown: nothing due ("—"), or too few (the small-sample rule)."""
    if rate.value is None:
        return "—"
    return Percent(rate.value) if ledger_report.enough(rate.den) else TOO_FEW


def grid_rows(grids: list[GridFigures]) -> Iterator[list[Any]]:
    """A row per grid in GRID_COLUMNS' order, then the total of the area."""
    for grid in grids:
        yield _grid_row(grid.community, grid.name, grid.code, grid)
    if grids:
        sums = {name: sum(grid.sums[name] for grid in grids) for name in area_export.GRID_SUMS}
        total = GridFigures("合计", "", "", sums, sum(g.open_at_end for g in grids), sum(g.overdue_at_end for g in grids))
        yield _grid_row(total.community, None, None, total)


def _grid_row(community: str, name: str | None, code: str | None, grid: GridFigures) -> list[Any]:
    s = grid.sums
    return [community, name, code, s["new"], s["resolved"], s["closed"], grid.open_at_end, grid.overdue_at_end,
            rate_cell(grid.rate("response")), s["response_den"], rate_cell(grid.rate("resolution")),
            s["resolution_den"], rate_cell(grid.rate("satisfaction")), s["satisfaction_den"],
            s["callback_due"], s["callback_in_time"], s["callback_reached"], rate_cell(grid.rate("callback")),
            hours(grid.mean_s("accept")), hours(grid.mean_s("resolve"))]


def summary_rows(totals: Summary, line_count: int) -> Iterator[list[Any]]:
    """The summary sheet's rows: item, figure, how it is counted."""
    f, c = totals.figures, totals.figures.counts
    last = totals.last_compiled.isoformat() if totals.last_compiled else "—"
    yield ["已编制台账的天数", totals.compiled_days, f"网格台账 {f.ledgers} 份（网格×天）"]
    yield ["涉及工单", line_count, "期内有受理或办理的工单，每件一行，见“明细”"]
    # The dashboard's words (templates/ledger/_figures.html in Chinese).
    for label, name, note in (("新受理", "new", ""), ("已派单", "dispatched", ""), ("已接单", "accepted", ""),
                              ("已办结", "resolved", "承办人办理完成"), ("已完结", "closed", "居民评价，或到期自动完结"),
                              ("已上报", "escalated", ""), ("重办", "reopened", ""),
                              ("期末未办结", "open_at_end", f"截至 {last} 日终"),
                              ("期末超时", "overdue_at_end", f"截至 {last} 日终"),
                              ("期末挂起", "on_hold_at_end", f"截至 {last} 日终")):
        yield [label, c[name], note]
    for name, (label, num_label, den_label) in RATE_NAMES.items():
        rate = f.rates[name]
        yield [label, rate_cell(rate), _rate_note(rate, num_label, den_label)]
    yield ["平均响应时长（小时）", hours(f.accept_mean_s), f"90%在 {_hours_text(f.accept_p90_s)} 小时内（派单到接单）"]
    yield ["平均办结时长（小时）", hours(f.resolve_mean_s), f"90%在 {_hours_text(f.resolve_p90_s)} 小时内（受理到办结）"]
    yield ["应回访", c["callback_due"], "期内到期的回访"]
    yield ["按时回访", c["callback_in_time"], "到期前完成（联系上，或最后一次未联系上）"]
    yield ["联系上", c["callback_reached"], ""]
    yield ["有效回访率", rate_cell(f.callbacks), _rate_note(f.callbacks, "联系上", "应回访")]


def _hours_text(seconds: int | None) -> str:
    return f"{seconds / 3600:.1f}" if seconds is not None else "—"


def _rate_note(rate: Rate, num_label: str, den_label: str) -> str:
    if not ledger_report.enough(rate.den) and rate.den:
        return f"{den_label} {rate.den} 件，少于 {ledger_report.MIN_TICKETS} 件不计算比率"
    return f"{num_label} {rate.num} / {den_label} {rate.den}"
