"""Big exports of a community or a street, made in the background.

A street's month is some 440,000 lines: its workbook takes a minute and a half to
write (its CSV file half a minute), longer than a reverse proxy waits for an answer
(nginx: 60 s), and a web thread would be held all that time. So the page counts the
period's ledger lines first (`area_export.line_count`, which stops counting past the
limit) and, above `AREA_EXPORT_INLINE_LINES`, does not write the file: it records
the request (`request_export`) and tells the reader they will be told in their inbox.
Smaller files are written in the request as before (ledger/exports.py).

The request is the outbox row's argument (services/outbox.py), written in the
request's transaction: who asked, the area, the period, the format, full or masked,
and a random token. Its job (workers/jobs.py `area_export`) hands the build to the
low queue with the build's own time limit (`build_area_export`; embedded, it runs
right after the request). The build (`build`):

- writes the file with services/area_files.py into the instance folder's
  `exports/<token>.<xlsx|csv>`, first under `<token>.<fmt>.part`, renamed once whole;
- logs a reveal per ticket of a full file as the requester, when it is written;
- leaves a message in the requester's inbox (kind "area_export", one per export)
  whose link is `/ledger/export/<token>`;
- keeps what the download needs in `exports/<token>.json` beside the file: the
  request, its status (building, done, failed), when it was finished, the error.

No table: the record lives and dies with its file. The download (`ready`) is the
requester's only, for a day (KEEP); nightly housekeeping deletes older files (`prune`).
A build that fails leaves no file, records the error and tells the requester.
"""
from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from flask import current_app
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l

from ticketing.extensions import db
from ticketing.labels import locale_of
from ticketing.models import User
from ticketing.queues import AREA_EXPORT, LOW
from ticketing.services import area_export, area_files, ledger_export, notify, outbox
from ticketing.services.area_export import ExportArea
from ticketing.services.brief_send import insert_message
from ticketing.services.ledger_report import Period

KIND = "area_export"
# How long a file is kept and may be downloaded.
KEEP = timedelta(days=1)
DOWNLOAD_PATH = "/ledger/export/"  # the ledger blueprint's download, + the token
TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")  # secrets.token_urlsafe(24)
BUILDING, DONE, FAILED = "building", "done", "failed"

READY_SUBJECT = _l("Your ledger file is ready")
READY_BODY = _l("%(title)s, %(format)s: %(lines)d lines. Open this message to download it; it is kept for a day.")
FAILED_SUBJECT = _l("Your ledger file could not be made")
FAILED_BODY = _l("%(title)s, %(format)s: the file could not be made. Please try again, or tell the administrator.")


class ExportRefused(Exception):
    """The requester may no longer export the area (or it is gone)."""


def folder() -> Path:
    """Where the files and their records are: the instance folder's exports/."""
    return Path(current_app.instance_path) / "exports"


@dataclass(frozen=True)
class ExportRequest:
    """What the reader asked for; the outbox row's argument, as JSON."""

    token: str
    user_id: int
    area_kind: str
    area_code: str
    period: str  # day | week | month | range
    first: date
    last: date
    fmt: str
    full: bool
    requested_at: datetime
    remote_addr: str = ""

    @property
    def span(self) -> Period:
        """The period asked for."""
        return Period(self.period, self.first, self.last)

    def as_json(self) -> dict[str, Any]:
        """The request as JSON values (days and times in ISO form)."""
        values = asdict(self)
        values.update(first=self.first.isoformat(), last=self.last.isoformat(),
                      requested_at=self.requested_at.isoformat())
        return values

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> ExportRequest:
        """The request back from `as_json`."""
        return cls(**{**values, "first": date.fromisoformat(values["first"]),
                      "last": date.fromisoformat(values["last"]),
                      "requested_at": datetime.fromisoformat(values["requested_at"])})


def request_export(user: User, area: ExportArea, span: Period, fmt: str, full: bool, now: datetime,
                   remote_addr: str = "") -> ExportRequest:
    """Record that the file must be made, as an outbox row of this transaction; the
    caller commits (and the row runs after the commit)."""
    request = ExportRequest(secrets.token_urlsafe(24), user.id, area.kind, area.code, span.kind, span.first,
                            span.last, fmt, full, now, remote_addr[:64])
    outbox.emit(AREA_EXPORT, request.as_json(), queue=LOW)
    return request


def _path(token: str, suffix: str) -> Path:
    return folder() / f"{token}{suffix}"


def read_record(token: str) -> dict[str, Any] | None:
    """The export's record, or None (no such export, or a token that is not one)."""
    if not TOKEN.fullmatch(token):
        return None
    try:
        record: dict[str, Any] = json.loads(_path(token, ".json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return record


def _write_record(token: str, record: dict[str, Any]) -> None:
    """Write the record whole (a temporary name, then renamed over the old one)."""
    path = _path(token, ".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".part")
    temporary.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    os.replace(temporary, path)


def build(request: ExportRequest, now: datetime, tz: tzinfo) -> str:
    """Make the file, log a full file's reveals and write the requester's message; the
    caller commits, and on an exception rolls back and calls `fail`. A second run of
    the same request does nothing (its record exists)."""
    if read_record(request.token) is not None:
        return "already made or being made"
    user = db.session.get(User, request.user_id)
    area = area_export.find_area(request.area_kind, request.area_code)
    if user is None or not user.active or area is None or not area_export.may_export(user, area) or (
            request.full and not ledger_export.may_export_full(user)):
        raise ExportRefused("the requester may no longer export this area")
    span = request.span
    record = {**request.as_json(), "status": BUILDING, "filename": area.filename(span, request.fmt, request.full)}
    _write_record(request.token, record)
    final, part = _path(request.token, f".{request.fmt}"), _path(request.token, f".{request.fmt}.part")
    try:
        with part.open("wb") as out:
            lines = area_files.write(area, span, request.fmt, out, now, tz, request.full)
        if request.full:
            area_export.log_reveals(user, area, span, now, request.remote_addr)
        _message(user, request, READY_SUBJECT, READY_BODY, now, lines)
        os.replace(part, final)
    finally:
        part.unlink(missing_ok=True)
    _write_record(request.token, {**record, "status": DONE, "finished_at": now.isoformat(), "lines": lines})
    return f"{lines} lines"


def fail(request: ExportRequest, error: str, now: datetime) -> None:
    """After a build that raised (and was rolled back): no file, the error in the
    record, and a message to the requester; the caller commits."""
    for suffix in (f".{request.fmt}", f".{request.fmt}.part"):
        _path(request.token, suffix).unlink(missing_ok=True)
    _write_record(request.token, {**request.as_json(), "status": FAILED, "finished_at": now.isoformat(),
                                  "error": error[:500]})
    user = db.session.get(User, request.user_id)
    if user is not None:
        _message(user, request, FAILED_SUBJECT, FAILED_BODY, now)


def _message(user: User, request: ExportRequest, subject: Any, body: Any, now: datetime,
             lines: int | None = None) -> None:
    """The requester's inbox message: one per export, whatever becomes of it."""
    locale = user.locale or notify.RESIDENT_LOCALE
    area = area_export.find_area(request.area_kind, request.area_code)
    title = f"{area.name if area else request.area_code} {area_files.period_text(request.span)}"
    with force_locale(locale_of(locale)):
        text = str(body) % {"title": title, "format": "CSV" if request.fmt == "csv" else "Excel",
                            "lines": lines or 0}
        insert_message({
            "dedupe_key": f"{KIND}:{request.token}", "kind": KIND, "channel": "inbox", "user_id": user.id,
            "locale": locale, "subject": str(subject), "body": text,
            "params": {"link": DOWNLOAD_PATH + request.token} if lines is not None else None,
            "status": "sent", "sender": "inbox", "created_at": now, "sent_at": now})


@dataclass(frozen=True)
class Ready:
    """A made file, for its download."""

    path: Path
    filename: str
    fmt: str
    full: bool


def ready(token: str, user_id: int, now: datetime) -> Ready | None:
    """The file of this export if it is made, is the user's, and is not past KEEP."""
    record = read_record(token)
    if record is None or record.get("user_id") != user_id or record.get("status") != DONE:
        return None
    if datetime.fromisoformat(record["finished_at"]) + KEEP <= now:
        return None
    path = _path(token, f".{record['fmt']}")
    return Ready(path, record["filename"], record["fmt"], bool(record["full"])) if path.is_file() else None


def prune(before: datetime) -> int:
    """Delete the files (and records, and leftovers) last written before `before`;
    returns how many exports' files were deleted."""
    if not folder().is_dir():
        return 0
    deleted = 0
    for path in folder().iterdir():
        if path.is_file() and path.stat().st_mtime < before.timestamp():
            path.unlink(missing_ok=True)
            deleted += path.suffix in (".xlsx", ".csv")
    return deleted
