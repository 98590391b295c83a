"""The dashboard's download of a community's or street's ledgers over a period.

The form (templates/ledger/_area_export.html) sits under the dashboard's period and
names the area shown; the rules, the queries and the files are the services'
(services/area_export.py, services/area_files.py). The file is written to a spooled
temporary file first (memory up to SPOOL bytes, then disk) and sent from there: the
reader gets a whole file or an error page, never a file cut off half-way.

A file of more lines than AREA_EXPORT_INLINE_LINES is not written in the request
(a street's month takes a minute and a half): it is made in the background and the
reader finds its link in the inbox (services/area_export_jobs.py).
"""
from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import IO

from flask import current_app, send_file
from werkzeug.wrappers import Response

from ticketing.models import User
from ticketing.services import (
    area_export,
    area_export_jobs,
    area_files,
    ledger_export,
    ledger_report,
)
from ticketing.services.area_export import ExportArea
from ticketing.services.ledger_report import Period
from ticketing.web import local_tz, now, staff_user

SPOOL = 8 * 1024 * 1024


@dataclass(frozen=True)
class ExportForm:
    """What the form offers: the area, the periods around the day shown, full or not."""

    key: str
    area: ExportArea
    day: date
    week: Period
    month: Period
    first: date
    last: date
    may_full: bool


def form_for(area_key: str, span: Period) -> ExportForm | None:
    """The form for the dashboard's area and period, or None when the reader may not
    export that area (a grid worker; an admin's "everything" of several streets)."""
    user = staff_user()
    area = area_export.area_for_key(user, area_key)
    if area is None:
        return None
    day = span.last
    return ExportForm(area_key, area, day, ledger_report.period("week", day), ledger_report.period("month", day),
                      span.first, span.last, ledger_export.may_export_full(user))


def period_of(values: Mapping[str, str]) -> Period:
    """The period the form asks for (the day shown by default: yesterday); raises
    `InvalidInput` with a message for the reader."""
    yesterday = now().astimezone(local_tz()).date() - timedelta(days=1)
    day = area_export.parse_day(values.get("day"), "day") or yesterday
    return area_export.export_period(values.get("period", "day"), day,
                                     area_export.parse_day(values.get("from"), "from"),
                                     area_export.parse_day(values.get("to"), "to"))


def build(area: ExportArea, span: Period, fmt: str, full: bool) -> IO[bytes]:
    """The file, written and rewound; the caller sends it (and it is closed once sent)."""
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL)  # noqa: SIM115 (the response closes it once sent)
    try:
        area_files.write(area, span, fmt, out, now(), local_tz(), full)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out


def too_big(area: ExportArea, span: Period) -> bool:
    """Whether the file has more lines than AREA_EXPORT_INLINE_LINES: made in the
    background then (services/area_export_jobs.py)."""
    limit = int(current_app.config["AREA_EXPORT_INLINE_LINES"])
    return area_export.line_count(area, span, limit) > limit


def request_in_background(user: User, area: ExportArea, span: Period, fmt: str, full: bool,
                          remote_addr: str) -> None:
    """Record the big file's request; the route commits, and the job makes it."""
    area_export_jobs.request_export(user, area, span, fmt, full, now(), remote_addr)


def made_file(token: str) -> area_export_jobs.Ready | None:
    """The reader's own file made in the background, while it is kept."""
    return area_export_jobs.ready(token, staff_user().id, now())


def log_reveals(user: User, area: ExportArea, span: Period, remote_addr: str) -> int:
    """Log the full file's reveals, one per ticket; the route commits."""
    return area_export.log_reveals(user, area, span, now(), remote_addr)


def send(out: IO[bytes] | Path, filename: str, fmt: str, full: bool) -> Response:
    """The download: its name says the area and the period; a full file is never cached."""
    response = send_file(out, mimetype=ledger_export.MEDIA_TYPES[fmt], as_attachment=True,
                         download_name=filename, conditional=False, etag=False, max_age=None)
    response.headers["Cache-Control"] = "no-store" if full else "private, no-cache"
    return response
