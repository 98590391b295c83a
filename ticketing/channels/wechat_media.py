"""Photos sent to the WeChat official account, added to the sender's newest open ticket.

In the callback (WeChat wants the reply within 5 s) nothing is downloaded: the photo
is accepted by recording the job `workers.jobs.attach_wechat_photo` in the outbox.
The job downloads it — through WeChat's media API when `WECHAT_APP_ID` and
`WECHAT_APP_SECRET` are set, else from the message's `PicUrl` — within a size cap and
a time limit, cleans it like every photo (`services/photos.py`), stores it and adds it
to the ticket as a report photo, at most `MAX_PHOTOS` per ticket.

Once per MsgId: the photo's event on the ticket carries the MsgId, a retried job
finds it and does nothing, and adding a photo bumps the ticket's version, so two
runs at once cannot both add one. A retried callback finds the job still pending or
its event. A file that is too large or not an image is refused for good and noted
on the ticket (internal); a network failure raises, and the outbox retries the job.
"""
from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from flask_babel import gettext as _
from sqlalchemy import select

from ticketing.extensions import db
from ticketing.models import OPEN_STATUSES, Channel, OutboxMessage, Photo, Ticket, TicketEvent
from ticketing.queues import ATTACH_WECHAT_PHOTO
from ticketing.services import outbox
from ticketing.services.errors import InvalidInput, PayloadTooLarge
from ticketing.services.photos import PhotoStore, clean_photo

log = logging.getLogger(__name__)

ATTACH_JOB = ATTACH_WECHAT_PHOTO  # the name tests and older callers know
MSG_KEY = "wechat_msg_id"  # in the detail of the ticket event that records the outcome
CONNECT_TIMEOUT = 3.0  # seconds
DOWNLOAD_TIMEOUT = 10.0  # seconds for the whole download, however slowly it trickles
MAX_REDIRECTS = 3
# Only WeChat's own servers are fetched from: in plain mode the signature does not
# cover the body, so a PicUrl must not be able to point the worker at our network.
WECHAT_HOSTS = ("qpic.cn", "qlogo.cn", "weixin.qq.com", "wx.qq.com")
MEDIA_ID = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")
# WeChat API errors that a fresh access token cures: worth retrying.
TOKEN_ERRORS = {40001, 40014, 42001}

Fetcher = Callable[[str, int, float], bytes]


class DownloadRejected(Exception):
    """The picture will never be added (too large, not an image, not WeChat's …)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DownloadFailed(Exception):
    """The picture could not be fetched now (network, WeChat busy): retry later."""


# --- the callback: accept a photo --------------------------------------------------


def msg_id_of(message: Any) -> str | None:
    """The message's MsgId as text, or None when it has none."""
    value = str(getattr(message, "id", "") or "")
    return value if value.isdigit() and value.strip("0") and len(value) <= 32 else None


def pending_jobs() -> list[list[Any]]:
    """The arguments of photo jobs still to run ([ticket id, msg id, media id, url]).

    Few rows, found by the outbox's pending index (done_at); rows given up on are not counted."""
    rows = db.session.scalars(
        select(OutboxMessage.args).where(OutboxMessage.done_at.is_(None), OutboxMessage.failed_at.is_(None),
                                         OutboxMessage.job == ATTACH_JOB)
    )
    return [list(args) for args in rows if isinstance(args, list) and len(args) >= 2]


def accepted_ticket(openid: str, msg_id: str) -> Ticket | None:
    """The ticket a photo message was already accepted for (a retried callback)."""
    for args in pending_jobs():
        if str(args[1]) == msg_id:
            return db.session.get(Ticket, args[0])
    recorded = db.session.execute(
        select(TicketEvent.ticket_id, TicketEvent.detail).join(Ticket)
        .where(Ticket.resident_openid == openid, TicketEvent.action.in_(("photo", "note")))
    )
    for ticket_id, detail in recorded:
        if (detail or {}).get(MSG_KEY) == msg_id:
            return db.session.get(Ticket, ticket_id)
    return None


def newest_open_ticket(openid: str) -> Ticket | None:
    """The sender's newest ticket that still needs work."""
    return db.session.scalar(
        select(Ticket).where(Ticket.resident_openid == openid, Ticket.status.in_(list(OPEN_STATUSES)))
        .order_by(Ticket.id.desc()).limit(1)
    )


def report_photos(ticket: Ticket) -> int:
    """The resident's photos on the ticket."""
    return sum(1 for photo in ticket.photos if photo.kind == "report")


def photos_taken(ticket: Ticket) -> int:
    """Report photos on the ticket, counting those still being downloaded."""
    return report_photos(ticket) + sum(1 for args in pending_jobs() if args[0] == ticket.id)


def accept(ticket: Ticket, msg_id: str, media_id: str, pic_url: str) -> None:
    """Record the download job for the photo; commits."""
    outbox.emit(ATTACH_JOB, ticket.id, msg_id, (media_id or "")[:128], (pic_url or "")[:1000])
    db.session.commit()
    log.info("wechat photo %s accepted for ticket %s", msg_id, ticket.number)


# --- the job: download and attach ------------------------------------------------


def host_allowed(url: str) -> bool:
    """True for http(s) addresses on WeChat's servers."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    return parts.scheme in ("http", "https") and any(
        host == domain or host.endswith("." + domain) for domain in WECHAT_HOSTS)


def http_fetch(url: str, max_bytes: int, timeout: float) -> bytes:
    """GET a picture from WeChat's servers: at most `max_bytes`, within `timeout` seconds."""
    import requests

    deadline = time.monotonic() + timeout
    for _hop in range(MAX_REDIRECTS + 1):
        if not host_allowed(url):
            raise DownloadRejected("not_allowed")
        try:
            response = requests.get(url, stream=True, allow_redirects=False,
                                    timeout=(CONNECT_TIMEOUT, timeout))
        except requests.RequestException as exc:
            raise DownloadFailed(type(exc).__name__) from None
        with response:
            if response.is_redirect:
                url = urljoin(url, response.headers.get("Location", ""))
                continue
            if response.status_code == 429 or response.status_code >= 500:
                raise DownloadFailed(f"HTTP {response.status_code}")
            if response.status_code != 200:
                raise DownloadRejected("unavailable")
            return read_capped(response, max_bytes, deadline)
    raise DownloadRejected("not_allowed")


def read_capped(response: Any, max_bytes: int, deadline: float) -> bytes:
    """The body of a streamed response; `DownloadRejected("too_large")` past `max_bytes`."""
    import requests

    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise DownloadRejected("too_large")
    chunks, size = [], 0
    try:
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > max_bytes:
                raise DownloadRejected("too_large")
            if time.monotonic() > deadline:
                raise DownloadFailed("timeout")
            chunks.append(chunk)
    except requests.RequestException as exc:
        raise DownloadFailed(type(exc).__name__) from None
    return b"".join(chunks)


def media_url(app_id: str, app_secret: str, media_id: str) -> str:
    """The media API's address of a temporary media file (with the shared access token)."""
    from ticketing.services import wechat_api

    if not MEDIA_ID.match(media_id):
        raise DownloadRejected("unavailable")
    try:
        return str(wechat_api.client(app_id, app_secret, timeout=CONNECT_TIMEOUT).media.get_url(media_id))
    except Exception as exc:  # noqa: BLE001 - wechatpy and requests errors alike: retry later
        raise DownloadFailed(f"access token: {type(exc).__name__}") from None


def api_error(data: bytes) -> None:
    """Raise for a WeChat API error answered instead of the picture."""
    if not data.lstrip().startswith(b"{"):
        return
    try:
        errcode = int(json.loads(data).get("errcode", 0))
    except (ValueError, TypeError, AttributeError):
        return
    if errcode in TOKEN_ERRORS:
        raise DownloadFailed(f"WeChat errcode {errcode}")
    if errcode:
        raise DownloadRejected("unavailable")


def download(config: Mapping[str, Any], media_id: str, pic_url: str, max_bytes: int,
             fetch: Fetcher | None = None) -> bytes:
    """The picture's bytes: by the media API when the account is configured, else PicUrl."""
    fetch = fetch or http_fetch
    app_id, secret = config.get("WECHAT_APP_ID") or "", config.get("WECHAT_APP_SECRET") or ""
    if app_id and secret and media_id:
        data = fetch(media_url(app_id, secret, media_id), max_bytes, DOWNLOAD_TIMEOUT)
        api_error(data)
        return data
    if not pic_url:
        raise DownloadRejected("unavailable")
    if not host_allowed(pic_url):
        raise DownloadRejected("not_allowed")
    return fetch(pic_url, max_bytes, DOWNLOAD_TIMEOUT)


def already_done(ticket: Ticket, msg_id: str) -> bool:
    """True when the ticket records an outcome for this MsgId."""
    return any((event.detail or {}).get(MSG_KEY) == msg_id for event in ticket.events)


def refusal(reason: str, config: Mapping[str, Any]) -> str:
    """Why a photo was not added, for the ticket's internal note."""
    mb = max(1, int(config["MAX_PHOTO_BYTES"]) // (1024 * 1024))
    reasons = {
        "too_large": _("the file is larger than %(mb)d MB", mb=mb),
        "not_image": _("the file is not a JPEG, PNG or WebP image"),
        "limit": _("the request already has %(n)d photos", n=int(config["MAX_PHOTOS"])),
        "not_allowed": _("the address is not one of WeChat's servers"),
    }
    why = reasons.get(reason) or _("WeChat did not hand it over")
    return _("A photo sent on WeChat was not added: %(reason)s.", reason=why)


def refuse(ticket: Ticket, msg_id: str, reason: str, now: datetime, config: Mapping[str, Any]) -> str:
    """Note on the ticket (internal) that the photo was refused; commits."""
    db.session.add(TicketEvent(
        ticket=ticket, at=now, actor_kind="system", action="note", from_status=ticket.status,
        to_status=ticket.status, public=False, note=refusal(reason, config),
        detail={"channel": Channel.WECHAT_OA.value, MSG_KEY: msg_id, "refused": reason},
    ))
    db.session.commit()
    log.warning("wechat photo %s for ticket %s refused: %s", msg_id, ticket.number, reason)
    return f"refused: {reason}"


def attach(ticket_id: int, msg_id: str, media_id: str, pic_url: str, now: datetime,
           store: PhotoStore, config: Mapping[str, Any], fetch: Fetcher | None = None) -> str:
    """Download the photo of message `msg_id` and add it to the ticket, once.

    Raises `DownloadFailed` (and lets database conflicts through) so the outbox retries.
    """
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None:
        return "no such ticket"
    if already_done(ticket, msg_id):
        return "already done"
    max_bytes = int(config["MAX_PHOTO_BYTES"])
    if report_photos(ticket) >= int(config["MAX_PHOTOS"]):
        return refuse(ticket, msg_id, "limit", now, config)
    try:
        photo = clean_photo(download(config, media_id, pic_url, max_bytes, fetch), max_bytes)
    except DownloadRejected as exc:
        return refuse(ticket, msg_id, exc.reason, now, config)
    except PayloadTooLarge:
        return refuse(ticket, msg_id, "too_large", now, config)
    except InvalidInput:
        return refuse(ticket, msg_id, "not_image", now, config)
    try:
        with store.staged() as written:
            key = store.write(photo, now)
            written.append(key)
            db.session.add(Photo(ticket=ticket, kind="report", storage_key=key, created_at=now,
                                 content_type=photo.content_type, size_bytes=len(photo.data)))
            db.session.add(TicketEvent(
                ticket=ticket, at=now, actor_kind="resident", action="photo",
                from_status=ticket.status, to_status=ticket.status, public=True,
                detail={"channel": Channel.WECHAT_OA.value, MSG_KEY: msg_id},
            ))
            # Bumps the version: of two runs adding photos to one ticket at once, one
            # commits and the other fails here and is retried (and then counts again).
            ticket.updated_at = now
            db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    log.info("wechat photo %s added to ticket %s", msg_id, ticket.number)
    return f"added to {ticket.number}"
