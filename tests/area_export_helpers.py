"""The world of the area-export tests (tests/test_area_export*.py): the hand-worked
day of tests/ledger_day.py, compiled for the 17th, 18th and 19th of November 2026.

Community CA (grids A1, A2) has ten tickets touched over those days; community CB
(grid B1) has ledgers but no tickets. Three tickets are touched on two days: t1 (17th
and 18th), t5 (17th and 18th) and t8 (18th and 19th), so an export of the three
days has one line for each, of its later day.
"""
from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from openpyxl import load_workbook

from tests.factories import TZ, World
from tests.ledger_day import hand_worked_day, local
from ticketing.models import Ticket
from ticketing.services import ledger
from ticketing.services.photos import PhotoStore

FIRST, LAST = date(2026, 11, 17), date(2026, 11, 19)
PHONE = "13812345678"
# Every ticket of community CA in the three days, by the names of tests/ledger_day.py.
CA_TICKETS = ("t1", "t2", "t3", "t4", "t5", "t7", "t8", "u1", "u2", "u3")


def compiled_days(world: World, store: PhotoStore) -> dict[str, Ticket]:
    """Work the tickets and compile the three days; returns the tickets by name."""
    tickets = hand_worked_day(world, store)
    for day in (17, 18, 19):
        ledger.compile_day(date(2026, 11, day), TZ, local(20, 10))
    return tickets


def workbook(content: bytes) -> Any:
    """The workbook read back."""
    return load_workbook(io.BytesIO(content))


def sheet_rows(sheet: Any) -> list[tuple[Any, ...]]:
    """The values of a sheet, row by row."""
    return list(sheet.iter_rows(values_only=True))


def csv_rows(content: bytes) -> list[list[str]]:
    """The rows of a CSV file, which must start with the byte-order mark Excel needs."""
    assert content.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
