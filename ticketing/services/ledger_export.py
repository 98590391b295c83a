"""The ledger as a file: Excel (.xlsx) and CSV, in the columns a community office files.

The headers and the labels in the cells are Chinese whatever the reader's language:
this is the office's paper form, not a page of the app. Personal data (name, phone,
the household part of the address, and the numbers and rooms inside the request and
result texts) is masked unless the full version is asked for;
a full export logs a reveal per ticket (purpose "export"), as the ticket page does.
The last column says where the ticket's latest 回访 stands (services/callbacks.py) when
the file is made.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any

from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import contains_eager, joinedload

from ticketing import labels
from ticketing.extensions import db
from ticketing.models import (
    CallbackState,
    CallbackTask,
    Channel,
    Grid,
    Ledger,
    LedgerLine,
    RevealLog,
    Role,
    Ticket,
    User,
)
from ticketing.services import privacy

# (header, width in characters): the columns of the office's ledger, in its order.
COLUMNS: tuple[tuple[str, int], ...] = (
    ("编号", 14), ("渠道", 10), ("受理时间", 17), ("诉求人", 9), ("联系电话", 14), ("地点", 24),
    ("诉求内容", 40), ("类别", 12), ("承办人", 12), ("状态", 9), ("办理情况", 30), ("办理时限", 17),
    ("是否超时", 9), ("满意度", 10), ("回访情况", 22),
)
HEADERS = tuple(name for name, _width in COLUMNS)
# A grid worker's own patrol report has nobody to rate it (services/patrol.py).
PATROL_NOT_RATED = _l("patrol report, not rated")
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
FORMATS = ("xlsx", "csv")
MEDIA_TYPES = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
               "csv": "text/csv; charset=utf-8"}


@dataclass(frozen=True)
class Export:
    """A finished file: its name, media type and bytes."""

    filename: str
    media_type: str
    content: bytes


def may_export_full(user: User) -> bool:
    """Supervisors and admins may ask for the names, phones and rooms in full."""
    return user.role in (Role.SUPERVISOR, Role.ADMIN)


def lines_of(where: ColumnElement[bool], day: date) -> list[LedgerLine]:
    """The lines of the day's ledgers selected by `where`, by grid and ticket number."""
    return list(db.session.scalars(
        select(LedgerLine).join(Ledger, LedgerLine.ledger_id == Ledger.id).join(Grid, Ledger.grid_id == Grid.id)
        .join(Ticket, LedgerLine.ticket_id == Ticket.id)
        .where(where, Ledger.day == day)
        .options(contains_eager(LedgerLine.ticket).options(
            joinedload(Ticket.category), joinedload(Ticket.complex), joinedload(Ticket.building)))
        .order_by(Grid.code, Ticket.number)))


def place_text(ticket: Ticket, full: bool) -> str:
    """Complex, building and room (the room masked), else the address as given (masked)."""
    return place_of(ticket.complex.name if ticket.complex else None, ticket.building.name if ticket.building else None,
                    ticket.unit_room, ticket.address_text, full)


def place_of(complex_name: str | None, building_name: str | None, unit_room: str, address_text: str,
             full: bool) -> str:
    """`place_text` from the names alone, for exports that read columns, not tickets."""
    if not complex_name and not building_name:
        return address_text if full else privacy.mask_address(address_text)
    room = unit_room if full else privacy.mask_room(unit_room)
    return " ".join(part for part in (complex_name, building_name, room) if part)


def callbacks_of(ticket_ids: list[int], tz: tzinfo) -> dict[int, str]:
    """Each ticket's latest 回访, as the office's 回访情况 column says it."""
    if not ticket_ids:
        return {}
    latest: dict[int, CallbackTask] = {}
    for task in db.session.scalars(select(CallbackTask).where(CallbackTask.ticket_id.in_(ticket_ids))
                                   .order_by(CallbackTask.id)):
        latest[task.ticket_id] = task
    return {ticket_id: callback_text(task, tz) for ticket_id, task in latest.items()}


def callback_text(task: CallbackTask, tz: tzinfo) -> str:
    """待回访 (by when), 未联系上, or 已回访 with what the call found."""
    if task.state == CallbackState.OPEN:
        return f"待回访（{task.due_at.astimezone(tz):%m-%d %H:%M}前）"
    if task.state == CallbackState.FAILED:
        return f"未联系上（{task.attempts}次）"
    found = "已解决" if task.solved else "未解决，已重办" if task.redone else "未解决"
    with force_locale("zh_CN"):
        rating = f"，{labels.label(labels.RATING_LABELS, task.rating)}" if task.rating else ""
    return f"已回访：{found}{rating}"


def row_of(line: LedgerLine, tz: tzinfo, full: bool, callback: str = "") -> list[Any]:
    """One line as the office's columns; times as naive local datetimes (Excel has no zones)."""
    t = line.ticket
    with force_locale("zh_CN"):
        return [
            t.number, labels.label(labels.CHANNEL_LABELS, t.channel),
            t.created_at.astimezone(tz).replace(tzinfo=None),
            t.requester_name if full else privacy.mask_name(t.requester_name),
            t.requester_phone if full else privacy.mask_phone(t.requester_phone),
            place_text(t, full), t.description if full else privacy.mask_text(t.description, t),
            t.category.name_zh, line.handler, labels.label(labels.STATUS_LABELS, line.status),
            line.result if full else privacy.mask_text(line.result, t),
            line.deadline.astimezone(tz).replace(tzinfo=None) if line.deadline else None,
            "是" if line.overdue else "否",
            str(PATROL_NOT_RATED) if t.channel == Channel.PATROL else labels.label(labels.RATING_LABELS, line.rating),
            callback,
        ]


# A cell whose text starts with one of these is a formula to Excel (and to LibreOffice),
# which would run what a resident typed ("=HYPERLINK(…)") on a supervisor's computer.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def as_text(value: str) -> str:
    """Text that a spreadsheet reads as text: a leading apostrophe before a formula start
    (OWASP's advice for CSV; Excel shows the text without it)."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def to_xlsx(rows: list[list[Any]], title: str) -> bytes:
    """A workbook of one sheet: bold frozen header row, set widths, dates as dates, and
    every text a string cell, never a formula."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title[:31]  # Excel's limit
    sheet.append(list(HEADERS))
    for row in rows:
        sheet.append(row)
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # openpyxl would store "=…" as a formula
    for index, (_name, width) in enumerate(COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="F2DCDB")
    wrap = Alignment(wrap_text=True, vertical="top")
    for cells in sheet.iter_rows(min_row=2):
        for cell in cells:
            cell.alignment = wrap
            if isinstance(cell.value, datetime):
                cell.number_format = DATETIME_FORMAT
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def to_csv(rows: list[list[Any]]) -> bytes:
    """UTF-8 with a byte-order mark, so that Excel opens the Chinese text correctly."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADERS)
    for row in rows:
        writer.writerow([csv_value(value) for value in row])
    return out.getvalue().encode("utf-8-sig")


def csv_value(value: Any) -> Any:
    """A cell as the CSV file writes it: times to the minute, text never a formula."""
    if isinstance(value, str):
        return as_text(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return "" if value is None else value


def build(lines: list[LedgerLine], fmt: str, name: str, tz: tzinfo, full: bool) -> Export:
    """The file of `lines` in `fmt` ("xlsx" or "csv"), named `name` plus its suffix."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    called = callbacks_of(sorted({line.ticket_id for line in lines}), tz)
    rows = [row_of(line, tz, full, called.get(line.ticket_id, "")) for line in lines]
    content = to_xlsx(rows, name) if fmt == "xlsx" else to_csv(rows)
    return Export(f"{name}{'-full' if full else ''}.{fmt}", MEDIA_TYPES[fmt], content)


def log_full_export(user: User, lines: list[LedgerLine], now: datetime, remote_addr: str = "") -> int:
    """A reveal per ticket of a full export, in one INSERT; the caller commits."""
    tickets = sorted({line.ticket_id for line in lines})
    if tickets:
        db.session.execute(RevealLog.__table__.insert(), [
            {"ticket_id": ticket_id, "user_id": user.id, "at": now, "purpose": "export", "remote_addr": remote_addr[:64]}
            for ticket_id in tickets])
    return len(tickets)
