"""The files of a places import kept between the page's preview and its apply.

The admin uploads once: the preview must be of exactly the files that are applied,
and a 20,000-building workbook is not something to send twice over a phone
connection. The files go into a folder of their own under the instance folder, named
by a random token that only the uploading admin's session holds; the folder records
whose it is and when it was made. Applying needs the token, the same account and a
folder younger than `KEPT_FOR`; the folder is deleted after the apply, and stale
folders whenever a new upload comes in.
"""
from __future__ import annotations

import json
import re
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

KEPT_FOR = timedelta(hours=1)
TOKEN = re.compile(r"^[A-Za-z0-9_-]{32}$")
WORKBOOK, BOUNDARIES, META = "workbook.xlsx", "boundaries.geojson", "meta.json"


@dataclass(frozen=True)
class Pending:
    """An upload waiting to be applied."""

    token: str
    folder: Path
    user_id: int
    made_at: datetime
    gcj02: bool
    workbook_name: str
    boundaries_name: str | None

    @property
    def workbook(self) -> Path:
        """The uploaded workbook."""
        return self.folder / WORKBOOK

    def boundaries(self) -> bytes | None:
        """The uploaded GeoJSON, if one was."""
        path = self.folder / BOUNDARIES
        return path.read_bytes() if path.exists() else None


def keep(root: Path, user_id: int, workbook: bytes, workbook_name: str, boundaries: bytes | None,
         boundaries_name: str | None, gcj02: bool, now: datetime) -> Pending:
    """Store the files under a new token (and remove stale uploads)."""
    sweep(root, now)
    token = secrets.token_urlsafe(24)
    folder = root / token
    folder.mkdir(parents=True, mode=0o700)
    meta = {"user_id": user_id, "made_at": now.isoformat(), "gcj02": gcj02,
            "workbook_name": workbook_name, "boundaries_name": boundaries_name}
    (folder / META).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    (folder / WORKBOOK).write_bytes(workbook)
    if boundaries is not None:
        (folder / BOUNDARIES).write_bytes(boundaries)
    return Pending(token, folder, user_id, now, gcj02, workbook_name, boundaries_name)


def load(root: Path, token: str, user_id: int, now: datetime) -> Pending | None:
    """The upload of that token if it is this account's and not stale; None otherwise."""
    if not TOKEN.match(token or ""):
        return None
    folder = root / token
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
        pending = Pending(token, folder, int(meta["user_id"]), datetime.fromisoformat(meta["made_at"]),
                          bool(meta["gcj02"]), str(meta["workbook_name"]), meta.get("boundaries_name"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if pending.user_id != user_id or not (pending.made_at <= now < pending.made_at + KEPT_FOR):
        return None
    return pending


def discard(root: Path, token: str) -> None:
    """Delete an upload's files."""
    if TOKEN.match(token or ""):
        shutil.rmtree(root / token, ignore_errors=True)


def sweep(root: Path, now: datetime) -> None:
    """Delete every upload older than `KEPT_FOR` (or unreadable)."""
    if not root.is_dir():
        return
    for folder in root.iterdir():
        try:
            made = datetime.fromisoformat(json.loads((folder / META).read_text(encoding="utf-8"))["made_at"])
            stale = now - made >= KEPT_FOR
        except (OSError, ValueError, KeyError, TypeError):  # half written, or not ours: by its age
            stale = now.timestamp() - folder.stat().st_mtime >= KEPT_FOR.total_seconds()
        if stale and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
