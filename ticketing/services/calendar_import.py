"""Reading a year's holiday schedule as the State Council publishes it, pasted or uploaded.

One day per line (or row): the date, 休 or 班, and an optional note, e.g.
`2027-02-06 班 春节调休`. Dates may be written 2027-2-6, 2027/2/6, 2027.2.6 or
2027年2月6日; the kind may be 休 / 休息 / 放假 / 假 (a holiday) or 班 / 上班 / 补班
(a working day), or `holiday` / `workday`; full-width digits and spaces, tabs and
commas are fine. Blank lines and lines starting with # are skipped, and so is a
header row such as 日期,类型,备注. Every bad line is reported and nothing is returned
for writing, so a schedule is applied whole or not at all.
"""
from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from flask_babel import gettext as _
from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from ticketing.services.calendar_admin import MAX_NOTE

HOLIDAY_WORDS = frozenset({"休", "休息", "放假", "假", "holiday", "off"})
WORKDAY_WORDS = frozenset({"班", "上班", "补班", "workday", "work"})
DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
SEPARATORS = re.compile(r"[\s,;，；、]+")
MAX_LINES = 400  # a year's schedule is a few dozen days


@dataclass(frozen=True)
class ScheduleLine:
    """One valid line of a schedule."""

    line: int
    day: date
    is_workday: bool
    note: str


@dataclass
class Schedule:
    """What a pasted or uploaded schedule says, and what is wrong with it, by line."""

    lines: list[ScheduleLine] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)

    def entries(self) -> list[tuple[date, bool, str]]:
        """(day, is_workday, note) of every line, for calendar_admin.apply_schedule."""
        return [(line.day, line.is_workday, line.note) for line in self.lines]

    def as_text(self) -> str:
        """The schedule as canonical text, one day a line (what the preview posts back)."""
        return "\n".join(f"{line.day.isoformat()} {'班' if line.is_workday else '休'} {line.note}".rstrip()
                         for line in self.lines)


def parse_day(text: str) -> date | None:
    """A date written as the schedules write it, or None."""
    match = DATE.match(text)
    if not match:
        return None
    try:
        return date(*(int(part) for part in match.groups()))
    except ValueError:
        return None


def parse_kind(text: str) -> bool | None:
    """True for a working day, False for a holiday, None for anything else."""
    word = text.strip().lower()
    if word in WORKDAY_WORDS:
        return True
    if word in HOLIDAY_WORDS:
        return False
    return None


def line_error(cells: list[str], year: int, seen: dict[date, int]) -> str | None:
    """What is wrong with one line's cells (date, kind, note), or None."""
    if len(cells) < 2:
        return _("Give a date and 休 (holiday) or 班 (working day).")
    day = parse_day(cells[0])
    if day is None:
        return _("“%(text)s” is not a date like 2027-02-06.", text=cells[0])
    if parse_kind(cells[1]) is None:
        return _("“%(text)s” is neither 休 (holiday) nor 班 (working day).", text=cells[1])
    if abs(day.year - year) > 1:
        return _("%(day)s is not near %(year)d.", day=day.isoformat(), year=year)
    if len(" ".join(cells[2:])) > MAX_NOTE:
        return _("The note is longer than %(n)d characters.", n=MAX_NOTE)
    if day in seen:
        return _("%(day)s is already on line %(line)d.", day=day.isoformat(), line=seen[day])
    return None


def parse_rows(rows: list[tuple[int, list[str]]], year: int) -> Schedule:
    """A schedule from numbered rows of cells; a first row that is not a date is a header."""
    schedule, first = Schedule(), True
    seen: dict[date, int] = {}
    for number, raw in rows:
        cells = [unicodedata.normalize("NFKC", cell).strip() for cell in raw]
        while cells and not cells[-1]:
            cells.pop()
        if not cells or cells[0].startswith("#"):
            continue
        header, first = first and not cells[0][:1].isdigit(), False
        if header:
            continue  # 日期, 类型, 备注
        error = line_error(cells, year, seen)
        if error is not None:
            schedule.errors.append((number, error))
            continue
        day = parse_day(cells[0])
        assert day is not None
        seen[day] = number
        schedule.lines.append(ScheduleLine(number, day, bool(parse_kind(cells[1])), " ".join(cells[2:]).strip()))
    if len(schedule.lines) + len(schedule.errors) > MAX_LINES:
        return Schedule(errors=[(0, _("At most %(n)d days at a time.", n=MAX_LINES))])
    if not schedule.lines and not schedule.errors:
        schedule.errors.append((0, _("The schedule has no days.")))
    return schedule


def parse_text(text: str, year: int) -> Schedule:
    """A pasted schedule: one day per line, the date, 休 or 班 and the note separated by spaces."""
    rows = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = unicodedata.normalize("NFKC", raw).strip()
        # The date may itself contain spaces ("2027年 2月 6日"): split the rest only.
        match = re.match(r"^(\d{4}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}\s*日?)(.*)$", line)
        if match:
            rest = SEPARATORS.split(match.group(2).strip(" \t,;，；、"), maxsplit=1)
            rows.append((number, [match.group(1), *rest]))
        else:
            rows.append((number, SEPARATORS.split(line, maxsplit=2) if line else []))
    return parse_rows(rows, year)


def cell_text(value: Any) -> str:
    """A spreadsheet cell as text; a date cell as its ISO date."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)


def parse_upload(filename: str, data: bytes, year: int) -> Schedule:
    """An uploaded schedule: a CSV (UTF-8, with or without BOM, or GB18030) or an XLSX
    whose first sheet has the columns date, 休/班, note."""
    if filename.lower().endswith(".xlsx"):
        try:
            sheet = load_workbook(io.BytesIO(data), read_only=True, data_only=True).worksheets[0]
        except (InvalidFileException, KeyError, OSError, ValueError, IndexError):
            return Schedule(errors=[(0, _("The file is not an Excel workbook (.xlsx)."))])
        rows = [(number, [cell_text(v) for v in row[:3]])
                for number, row in enumerate(sheet.iter_rows(values_only=True, max_row=MAX_LINES + 2), start=1)]
        return parse_rows(rows, year)
    if filename.lower().endswith(".csv"):
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                text = data.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            return Schedule(errors=[(0, _("The file is neither UTF-8 nor GB18030 text."))])
        rows = [(number, row[:2] + [" ".join(row[2:])]) if len(row) > 2 else (number, row)
                for number, row in enumerate(csv.reader(io.StringIO(text)), start=1)]
        return parse_rows(rows, year)
    return Schedule(errors=[(0, _("Upload a .csv or .xlsx file."))])
