"""The WeChat channel: photos sent to the account, added to the sender's newest open ticket by a job.

There is no network in the tests: the download (`wechat_media.http_fetch`) is faked,
and `http_fetch` itself is tried against a fake `requests.get`.
"""
from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Self

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rq import Queue, SimpleWorker
from sqlalchemy import select
from wechatpy.crypto import WeChatCrypto

from tests.factories import World, advance, png_bomb, png_bytes
from tests.races import read_then_at_once
from tests.wechat_helpers import (
    OPENID,
    TEXT,
    TOKEN,
    post,
    post_encrypted,
    reply_content,
    text_xml,
    tickets,
)
from ticketing.channels import wechat_media
from ticketing.channels.wechat_media import DownloadFailed, DownloadRejected
from ticketing.extensions import db
from ticketing.models import OutboxMessage, Photo, Ticket, TicketEvent, utcnow
from ticketing.services import photos
from ticketing.services.photos import PhotoStore
from workers import jobs
from workers.queues import QUEUES
from workers.relay import relay

PIC_URL = "http://mmbiz.qpic.cn/mmbiz_jpg/abc123/0"
JOB = wechat_media.ATTACH_JOB


class FakeFetch:
    """Stands in for the download: records the addresses, answers with `data` or raises."""

    def __init__(self, data: bytes | None = None) -> None:
        self.data = png_bytes((40, 30), "JPEG") if data is None else data
        self.error: Exception | None = None
        self.urls: list[str] = []

    def __call__(self, url: str, max_bytes: int, timeout: float) -> bytes:
        self.urls.append(url)
        if self.error is not None:
            raise self.error
        return self.data


@pytest.fixture()
def fetch(monkeypatch: pytest.MonkeyPatch) -> FakeFetch:
    fake = FakeFetch()
    monkeypatch.setattr(wechat_media, "http_fetch", fake)
    return fake


def fresh(model: Any, row_id: int) -> Any:
    """A row as the database has it now."""
    db.session.expire_all()
    return db.session.get(model, row_id)


def work_burst(app: Flask, connection: Any) -> bool:
    """Run every queued job, as a burst worker inside the app does."""
    with app.app_context():
        worker = SimpleWorker([Queue(name, connection=connection) for name in QUEUES], connection=connection)
        return worker.work(burst=True)


def image_xml(msg_id: int = 5550001, openid: str = OPENID, pic_url: str = PIC_URL,
              media_id: str = "media-1") -> str:
    return (
        "<xml><ToUserName><![CDATA[gh_minhu]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[image]]></MsgType>"
        f"<PicUrl><![CDATA[{pic_url}]]></PicUrl><MediaId><![CDATA[{media_id}]]></MediaId>"
        f"<MsgId>{msg_id}</MsgId></xml>"
    )


def file_ticket(client: FlaskClient, msg_id: int = 1, openid: str = OPENID) -> Ticket:
    """A ticket filed by a text message of the follower."""
    reply_content(post(client, text_xml(TEXT, msg_id=msg_id, openid=openid)))
    return next(t for t in tickets() if t.external_id == f"wx:{msg_id}")


def photos_of(ticket: Ticket) -> list[Photo]:
    db.session.expire_all()
    return list(db.session.scalars(select(Photo).where(Photo.ticket_id == ticket.id).order_by(Photo.id)))


def photo_rows() -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.job == JOB)))


def events_of(ticket: Ticket, action: str) -> list[TicketEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(TicketEvent).where(
        TicketEvent.ticket_id == ticket.id, TicketEvent.action == action)))


# --- accepted, downloaded, attached -------------------------------------------


def test_an_image_is_added_to_the_senders_open_ticket(
        world: World, client: FlaskClient, account: None, fetch: FakeFetch, store: PhotoStore) -> None:
    ticket = file_ticket(client)
    content = reply_content(post(client, image_xml()))
    assert ticket.number in content
    [photo] = photos_of(ticket)
    assert (photo.kind, photo.content_type) == ("report", "image/jpeg")
    assert store.path(photo.storage_key).read_bytes()[:2] == b"\xff\xd8"
    assert fetch.urls == [PIC_URL]  # no app secret: from PicUrl
    [event] = events_of(ticket, "photo")
    assert event.public and event.actor_kind == "resident"
    assert event.detail["wechat_msg_id"] == "5550001"
    [row] = photo_rows()
    assert row.done_at is not None and row.args[:2] == [ticket.id, "5550001"]


def test_the_newest_open_ticket_gets_the_photo(
        world: World, client: FlaskClient, account: None, fetch: FakeFetch) -> None:
    older = file_ticket(client, msg_id=1)
    newer = file_ticket(client, msg_id=2)
    advance(db.session.get(Ticket, newer.id), "resolved", world)
    reply_content(post(client, image_xml()))
    assert len(photos_of(older)) == 1 and photos_of(newer) == []


def test_an_image_without_an_open_ticket_is_not_stored(
        world: World, client: FlaskClient, account: None, fetch: FakeFetch) -> None:
    content = reply_content(post(client, image_xml()))
    assert content  # asks for the problem in a text message first
    assert photo_rows() == [] and fetch.urls == []
    assert db.session.scalar(select(Photo.id)) is None


def test_someone_elses_ticket_never_gets_the_photo(
        world: World, client: FlaskClient, account: None, fetch: FakeFetch) -> None:
    theirs = file_ticket(client, openid="another-follower")
    reply_content(post(client, image_xml()))
    assert photos_of(theirs) == [] and photo_rows() == []


def test_an_image_retried_three_times_adds_one_photo(
        world: World, client: FlaskClient, account: None, fetch: FakeFetch) -> None:
    ticket = file_ticket(client)
    replies = [reply_content(post(client, image_xml())) for _ in range(3)]
    assert len(set(replies)) == 1 and ticket.number in replies[0]
    assert len(photos_of(ticket)) == 1
    assert len(photo_rows()) == 1 and len(fetch.urls) == 1


def test_a_job_run_again_adds_no_second_photo(
        world: World, client: FlaskClient, account: None, fetch: FakeFetch) -> None:
    ticket = file_ticket(client)
    reply_content(post(client, image_xml()))
    [row] = photo_rows()
    assert jobs.attach_wechat_photo(*row.args) == "already done"
    db.session.execute(OutboxMessage.__table__.update().values(done_at=None))  # as if never marked
    db.session.commit()
    assert jobs.run_outbox(row.id) == "already done"
    assert len(photos_of(ticket)) == 1 and len(fetch.urls) == 1


def test_a_failed_download_is_retried_by_the_outbox_and_adds_the_photo_once(
        world: World, client: FlaskClient, account: None, fetch: FakeFetch) -> None:
    ticket = file_ticket(client)
    fetch.error = DownloadFailed("ConnectTimeout")
    assert ticket.number in reply_content(post(client, image_xml()))  # the reply does not wait
    [row] = photo_rows()
    assert row.done_at is None and "ConnectTimeout" in row.last_error
    assert photos_of(ticket) == []
    fetch.error = None
    later = utcnow() + timedelta(minutes=11)
    assert relay(later).ran_inline == [row.id]
    assert relay(later + timedelta(minutes=11)).ran_inline == []
    assert len(photos_of(ticket)) == 1
    assert fresh(OutboxMessage, row.id).done_at is not None


def test_a_photo_that_finds_every_decode_slot_taken_is_retried_by_the_outbox(
        world: World, client: FlaskClient, account: None, fetch: FakeFetch,
        monkeypatch: pytest.MonkeyPatch) -> None:
    ticket = file_ticket(client)
    slots = photos.DecodeSlots(1, wait=0)
    monkeypatch.setattr(photos, "_decodes", slots)
    with slots.held():
        reply_content(post(client, image_xml()))
    [row] = photo_rows()
    assert row.done_at is None and photos_of(ticket) == []
    assert events_of(ticket, "note") == []  # not refused as "not an image"
    assert relay(utcnow() + timedelta(minutes=11)).ran_inline == [row.id]
    assert len(photos_of(ticket)) == 1


def test_a_retried_callback_while_the_download_is_pending_adds_no_second_job(
        world: World, client: FlaskClient, account: None, fetch: FakeFetch) -> None:
    ticket = file_ticket(client)
    fetch.error = DownloadFailed("ConnectTimeout")
    first = reply_content(post(client, image_xml()))
    assert reply_content(post(client, image_xml())) == first
    assert len(photo_rows()) == 1 and photos_of(ticket) == []


# --- refused ------------------------------------------------------------------


def assert_refused(ticket: Ticket, reason: str) -> None:
    """No photo, the ticket as it was, an internal note saying why, the job done."""
    before = (ticket.status, ticket.version)
    assert photos_of(ticket) == []
    after = db.session.get(Ticket, ticket.id)
    assert (after.status, after.version) == before
    [note] = [e for e in events_of(ticket, "note") if e.detail.get("refused")]
    assert not note.public and note.actor_kind == "system" and note.note
    assert note.detail["refused"] == reason
    [row] = photo_rows()
    assert row.done_at is not None  # refused for good: not retried


def test_an_oversized_download_is_refused_and_noted(
        world: World, client: FlaskClient, account: None, fetch: FakeFetch,
        ctx: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    ticket = file_ticket(client)
    monkeypatch.setitem(ctx.config, "MAX_PHOTO_BYTES", 2048)
    fetch.data = png_bytes((400, 400), "PNG") + b"\0" * 4096
    reply_content(post(client, image_xml()))
    assert_refused(ticket, "too_large")


def test_a_png_bomb_is_refused_as_too_large_and_noted(
        world: World, client: FlaskClient, account: None, fetch: FakeFetch) -> None:
    ticket = file_ticket(client)
    fetch.data = png_bomb()
    reply_content(post(client, image_xml()))
    assert_refused(ticket, "too_large")


def test_a_download_that_is_not_an_image_is_refused_and_noted(
        world: World, client: FlaskClient, account: None, fetch: FakeFetch) -> None:
    ticket = file_ticket(client)
    fetch.data = b"<html><body>not a picture</body></html>"
    reply_content(post(client, image_xml()))
    assert_refused(ticket, "not_image")


def test_a_picture_address_off_wechats_servers_is_never_fetched(
        world: World, client: FlaskClient, account: None, fetch: FakeFetch) -> None:
    ticket = file_ticket(client)
    reply_content(post(client, image_xml(pic_url="http://127.0.0.1:6379/")))
    assert fetch.urls == []
    assert_refused(ticket, "not_allowed")


@pytest.mark.parametrize(("url", "allowed"), [
    ("http://mmbiz.qpic.cn/mmbiz_jpg/x/0", True),
    ("https://api.weixin.qq.com/cgi-bin/media/get?media_id=1", True),
    ("http://qpic.cn.attacker.example/x", False),
    ("http://evilqpic.cn/x", False),
    ("file:///etc/passwd", False),
    ("http://169.254.169.254/latest/meta-data", False),
    ("http://mmbiz.qpic.cn@10.0.0.1/x", False),
])
def test_only_wechats_hosts_are_fetched_from(url: str, allowed: bool) -> None:
    assert wechat_media.host_allowed(url) is allowed


def test_the_photo_limit_is_kept_and_the_reply_says_so(
        world: World, client: FlaskClient, account: None, fetch: FakeFetch, ctx: Flask) -> None:
    ticket = file_ticket(client)
    most = ctx.config["MAX_PHOTOS"]
    for msg_id in range(most):
        reply_content(post(client, image_xml(msg_id=100 + msg_id)))
    content = reply_content(post(client, image_xml(msg_id=200)))
    assert ticket.number in content and str(most) in content
    assert len(photos_of(ticket)) == most and len(photo_rows()) == most


def test_a_job_finding_the_ticket_full_refuses_the_photo(
        world: World, client: FlaskClient, account: None, fetch: FakeFetch,
        ctx: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    ticket = file_ticket(client)
    reply_content(post(client, image_xml(msg_id=100)))
    monkeypatch.setitem(ctx.config, "MAX_PHOTOS", 1)  # e.g. two photos accepted at once
    outcome = jobs.attach_wechat_photo(ticket.id, "101", "media-2", PIC_URL)
    assert outcome == "refused: limit"
    assert len(photos_of(ticket)) == 1


# --- where the picture comes from ---------------------------------------------


def test_with_the_app_secret_the_media_api_is_used(
        world: World, client: FlaskClient, account: None, fetch: FakeFetch,
        ctx: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ctx.config, "WECHAT_APP_ID", "wx0123456789abcdef")
    monkeypatch.setitem(ctx.config, "WECHAT_APP_SECRET", "app-secret")
    asked: list[tuple[str, str, str]] = []

    def media_url(app_id: str, secret: str, media_id: str) -> str:
        asked.append((app_id, secret, media_id))
        return f"https://api.weixin.qq.com/cgi-bin/media/get?access_token=T&media_id={media_id}"

    monkeypatch.setattr(wechat_media, "media_url", media_url)
    ticket = file_ticket(client)
    reply_content(post(client, image_xml(media_id="Mx_1-a")))
    assert asked == [("wx0123456789abcdef", "app-secret", "Mx_1-a")]
    assert fetch.urls == ["https://api.weixin.qq.com/cgi-bin/media/get?access_token=T&media_id=Mx_1-a"]
    assert len(photos_of(ticket)) == 1


def test_a_wechat_api_error_is_retried_only_when_a_new_token_cures_it() -> None:
    with pytest.raises(DownloadFailed):
        wechat_media.api_error(b'{"errcode": 42001, "errmsg": "access_token expired"}')
    with pytest.raises(DownloadRejected):
        wechat_media.api_error(b'{"errcode": 40007, "errmsg": "invalid media_id"}')
    wechat_media.api_error(png_bytes())  # a picture: no error


class FakeResponse:
    """Enough of a streamed `requests` response."""

    def __init__(self, status: int = 200, chunks: list[bytes] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.status_code, self.headers = status, headers or {}
        self.chunks, self.read = chunks or [], 0
        self.is_redirect = status in (301, 302, 303, 307, 308) and "Location" in self.headers

    def iter_content(self, size: int) -> Any:
        for chunk in self.chunks:
            self.read += len(chunk)
            yield chunk

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.fixture()
def responses(monkeypatch: pytest.MonkeyPatch) -> dict[str, FakeResponse]:
    """What the fake `requests.get` answers, by URL; asking for another URL fails the test."""
    import requests

    table: dict[str, FakeResponse] = {}

    def get(url: str, **kwargs: Any) -> FakeResponse:
        assert kwargs["stream"] and not kwargs["allow_redirects"] and kwargs["timeout"]
        return table[url]

    monkeypatch.setattr(requests, "get", get)
    return table


def test_http_fetch_reads_the_picture(responses: dict[str, FakeResponse]) -> None:
    responses[PIC_URL] = FakeResponse(chunks=[b"abc", b"def"])
    assert wechat_media.http_fetch(PIC_URL, 100, 5) == b"abcdef"


def test_http_fetch_stops_reading_past_the_cap(responses: dict[str, FakeResponse]) -> None:
    endless = FakeResponse(chunks=[b"x" * 1000] * 50)
    responses[PIC_URL] = endless
    with pytest.raises(DownloadRejected, match="too_large"):
        wechat_media.http_fetch(PIC_URL, 2500, 5)
    assert endless.read <= 3000
    declared = FakeResponse(chunks=[b"x"], headers={"Content-Length": "999999"})
    responses[PIC_URL] = declared
    with pytest.raises(DownloadRejected, match="too_large"):
        wechat_media.http_fetch(PIC_URL, 2500, 5)
    assert declared.read == 0


def test_http_fetch_follows_redirects_only_within_wechat(responses: dict[str, FakeResponse]) -> None:
    elsewhere = "http://mmbiz.qpic.cn/moved"
    responses[PIC_URL] = FakeResponse(302, headers={"Location": elsewhere})
    responses[elsewhere] = FakeResponse(chunks=[b"pic"])
    assert wechat_media.http_fetch(PIC_URL, 100, 5) == b"pic"
    responses[PIC_URL] = FakeResponse(302, headers={"Location": "http://10.0.0.1/admin"})
    with pytest.raises(DownloadRejected, match="not_allowed"):
        wechat_media.http_fetch(PIC_URL, 100, 5)


def test_http_fetch_says_which_failures_are_worth_a_retry(responses: dict[str, FakeResponse]) -> None:
    responses[PIC_URL] = FakeResponse(503)
    with pytest.raises(DownloadFailed):
        wechat_media.http_fetch(PIC_URL, 100, 5)
    responses[PIC_URL] = FakeResponse(404)
    with pytest.raises(DownloadRejected):
        wechat_media.http_fetch(PIC_URL, 100, 5)


# --- limits, safe mode, Redis -------------------------------------------------


def test_an_image_over_the_senders_limit_is_not_accepted(
        world: World, client: FlaskClient, account: None, fetch: FakeFetch,
        ctx: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ctx.config["RATE_LIMITS"], "wechat_sender", (2, 600))
    ticket = file_ticket(client)  # 1
    accepted = reply_content(post(client, image_xml(msg_id=100)))  # 2
    limited = reply_content(post(client, image_xml(msg_id=101)))
    assert ticket.number in accepted and ticket.number not in limited
    assert len(photo_rows()) == 1 and len(photos_of(ticket)) == 1
    assert reply_content(post(client, image_xml(msg_id=100))) == accepted  # a retry is still answered


def test_an_encrypted_image_is_added(
        world: World, client: FlaskClient, safe_mode: WeChatCrypto, fetch: FakeFetch) -> None:
    def send(body: str) -> str:
        return str(post_encrypted(client, safe_mode, body)["Content"])

    send(text_xml(TEXT))
    [ticket] = tickets()
    assert ticket.number in send(image_xml())
    assert len(photos_of(ticket)) == 1


@pytest.mark.redis
def test_with_redis_the_reply_comes_first_and_a_worker_adds_the_photo(
        world: World, redis_app: Flask, redis_conn: Any, fetch: FakeFetch, tmp_path: Path) -> None:
    redis_app.config["WECHAT_TOKEN"] = TOKEN
    client = redis_app.test_client()
    reply_content(post(client, text_xml(TEXT)))
    [ticket] = tickets()
    reply = reply_content(post(client, image_xml()))
    assert ticket.number in reply
    [row] = photo_rows()
    assert row.done_at is None and fetch.urls == []
    assert reply_content(post(client, image_xml())) == reply  # retried while queued: no second job
    assert len(photo_rows()) == 1
    assert Queue("high", connection=redis_conn).job_ids  # a drain, which hands the download to a job
    work_burst(redis_app, redis_conn)
    assert len(photos_of(ticket)) == 1 and fetch.urls == [PIC_URL]
    [photo] = photos_of(ticket)
    assert (Path(redis_app.config["UPLOAD_FOLDER"]) / photo.storage_key).is_file()


# --- two runs at once (PostgreSQL) --------------------------------------------


def race_attach(app: Flask, ticket_id: int, msg_ids: list[str], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Run the job for each MsgId in its own thread and session, all past the download
    before any of them stores; report each outcome or the error it raised."""
    barrier = threading.Barrier(len(msg_ids))

    def fetch(url: str, max_bytes: int, timeout: float) -> bytes:
        barrier.wait(timeout=10)
        return png_bytes((40, 30), "JPEG")

    monkeypatch.setattr(wechat_media, "http_fetch", fetch)
    # The loser's conflict is an outcome: the outbox retries the job.
    ended = read_then_at_once(app, [lambda m=m: lambda: jobs.attach_wechat_photo(ticket_id, m, "", PIC_URL)
                                    for m in msg_ids])
    return sorted(type(outcome).__name__ if isinstance(outcome, Exception) else str(outcome) for outcome in ended)


@pytest.mark.postgres
def test_one_photo_job_running_twice_at_once_adds_it_once(
        app: Flask, world: World, client: FlaskClient, account: None, store: PhotoStore,
        monkeypatch: pytest.MonkeyPatch) -> None:
    ticket = file_ticket(client)
    outcomes = race_attach(app, ticket.id, ["900", "900"], monkeypatch)
    assert outcomes[0].startswith("StaleDataError") and outcomes[1].startswith("added to")
    assert len(photos_of(ticket)) == 1
    assert jobs.attach_wechat_photo(ticket.id, "900", "", PIC_URL) == "already done"
    assert len(list(Path(app.config["UPLOAD_FOLDER"]).rglob("*.jpg"))) == 1  # the loser's file is gone


@pytest.mark.postgres
def test_photos_arriving_at_once_do_not_overshoot_the_limit(
        app: Flask, world: World, client: FlaskClient, account: None, store: PhotoStore,
        ctx: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    ticket = file_ticket(client)
    monkeypatch.setitem(app.config, "MAX_PHOTOS", 1)
    outcomes = race_attach(app, ticket.id, ["901", "902"], monkeypatch)
    assert len(photos_of(ticket)) == 1 and "StaleDataError" in outcomes
    [won] = events_of(ticket, "photo")
    loser = "902" if won.detail["wechat_msg_id"] == "901" else "901"
    assert jobs.attach_wechat_photo(ticket.id, loser, "", PIC_URL) == "refused: limit"  # its retry
