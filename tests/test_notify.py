"""Notifications: who hears about which event, once; sending with retries and final failure.

Staff messages land in the in-app inbox; residents' go out through a sender (the
recording default, SMTP against a real local aiosmtpd server, WeChat with a mocked
wechatpy client).
"""
from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any
from unittest.mock import ANY, MagicMock

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from flask import Flask
from sqlalchemy import func, select

from tests.conftest import app_on_test_database, dispose
from tests.factories import PHONE, T0, World, advance, calendar, make_ticket
from tests.redis_server import free_port
from ticketing.extensions import db
from ticketing.models import Notification, OutboxMessage, Ticket, TicketEvent, User
from ticketing.services import notify, outbox, tracking, wechat_api
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.notify import MAX_ATTEMPTS, RetryLater
from ticketing.services.photos import PhotoStore
from workers import jobs
from workers.relay import relay

SMTP_PASSWORD = "s3cret-Pa55word"

# --- helpers ----------------------------------------------------------------


def inbox_of(user: User) -> list[Notification]:
    return list(db.session.scalars(
        select(Notification).where(Notification.user_id == user.id, Notification.channel == "inbox")
        .order_by(Notification.id)
    ))


def staff_messages() -> list[Notification]:
    return list(db.session.scalars(select(Notification).where(Notification.channel == "inbox")))


def resident_messages(kind: str | None = None) -> list[Notification]:
    where = [Notification.channel != "inbox"] + ([Notification.kind == kind] if kind else [])
    return list(db.session.scalars(select(Notification).where(*where).order_by(Notification.id)))


def count(model: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def last_event(ticket: Ticket, action: str) -> TicketEvent:
    return db.session.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket.id, TicketEvent.action == action)
        .order_by(TicketEvent.id.desc())
    ).first()


def received_message_id(world: World, store: PhotoStore) -> int:
    """File a ticket; the id of the "received" SMS it queues for the resident."""
    make_ticket(world, store)
    return resident_messages("received")[0].id


@pytest.fixture()
def app_with(app: Flask, ctx: Flask, tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Make apps on the test database with other settings (senders, their servers)."""
    made: list[Flask] = []

    def make(**changes: Any) -> Flask:
        other = app_on_test_database(app, tmp_path / f"instance-{len(made)}", **changes)
        made.append(other)
        return other

    yield make
    for other in made:
        dispose(other)


class Mailbox:
    """An aiosmtpd handler that keeps what it receives."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture()
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server on a spare local port."""
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield mailbox, controller.port
    controller.stop()


def refuse_everyone(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    return AuthResult(success=False, handled=False)


@pytest.fixture()
def smtp_server_refusing_login() -> Iterator[int]:
    """An SMTP server that offers AUTH and refuses every login."""
    controller = Controller(Mailbox(), hostname="127.0.0.1", port=free_port(),
                            authenticator=refuse_everyone, auth_require_tls=False)
    controller.start()
    yield controller.port
    controller.stop()


def smtp_settings(port: int, **more: str) -> dict[str, Any]:
    return {"sms_sender": "smtp", "extra": {
        "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMS_SMTP_TO": "{address}@sms.example", **more,
    }}


# --- who hears about what ---------------------------------------------------


def test_filing_queues_a_received_sms_with_an_outbox_row_to_deliver_it(world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    [message] = resident_messages()
    assert (message.kind, message.channel, message.status, message.address) == ("received", "sms", "pending", PHONE)
    assert ticket.number in message.body
    row = db.session.scalars(select(OutboxMessage)).one()
    assert (row.job, row.args) == ("workers.jobs.deliver_notification", [message.id])


def test_a_dispatch_puts_the_ticket_in_the_handlers_inbox(world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "dispatched", world)
    [message] = inbox_of(world.gina)
    assert (message.kind, message.status, message.ticket_id) == ("assigned", "sent", ticket.id)
    assert ticket.number in message.subject
    assert [m.user_id for m in staff_messages()] == [world.gina.id]


def test_a_return_puts_the_ticket_in_the_dispatchers_inbox(world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "dispatched", world)
    perform(ticket, "return", Actor.staff(world.gina), T0, calendar(), note="不属于网格职责")
    db.session.commit()
    [message] = inbox_of(world.dora)
    assert message.kind == "returned" and "不属于网格职责" in message.body
    assert inbox_of(world.dan) == [] and inbox_of(world.sam) == []


def test_resolving_sends_the_resident_an_sms_with_the_tracking_link(
    world: World, store: PhotoStore, ctx: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(ctx.config, "PUBLIC_URL", "https://minhu.example.org/")
    ticket = advance(make_ticket(world, store), "resolved", world)
    [message] = resident_messages("resolved")
    assert (message.channel, message.address, message.status) == ("sms", PHONE, "pending")
    link = "https://minhu.example.org/t/" + tracking.tracking_token(ticket, ctx.config["SECRET_KEY"])
    assert link in message.body and "已更换灯泡" in message.body


def test_the_requesters_phone_and_name_never_appear_in_a_staff_message(world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "dispatched", world)
    gina = Actor.staff(world.gina)
    perform(ticket, "return", gina, T0, calendar(), note="不属于网格职责")
    advance(ticket, "resolved", world)
    perform(ticket, "reopen", Actor.resident(), T0, calendar(), note="灯还是不亮")
    perform(ticket, "resolve", gina, T0, calendar(), note="已更换整套灯具")
    perform(ticket, "rate", Actor.resident(), T0, calendar(), rating="satisfied", note="谢谢")
    db.session.commit()
    kinds = sorted(m.kind for m in staff_messages())
    assert kinds == ["assigned", "assigned", "rated", "reopened", "returned"]
    for message in staff_messages():
        assert PHONE not in message.subject + message.body
        assert "张三丰" not in message.subject + message.body


def test_an_events_messages_cannot_be_written_twice(world: World, store: PhotoStore) -> None:
    """Each event's messages are keyed by the event; the database refuses a second copy."""
    from sqlalchemy.exc import IntegrityError

    ticket = advance(make_ticket(world, store), "dispatched", world)
    before = (count(Notification), count(OutboxMessage))
    notify.on_event(ticket, last_event(ticket, "dispatch"))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()
    assert (count(Notification), count(OutboxMessage)) == before == (2, 1)


def test_sweep_messages_are_looked_up_before_they_are_written_again(
    world: World, store: PhotoStore
) -> None:
    ticket = advance(make_ticket(world, store), "dispatched", world)
    key = f"warn:{ticket.id}:test"
    assert notify.notify_staff("warning", ticket, [world.gina], key, T0) == 1
    assert notify.notify_staff("warning", ticket, [world.gina], key, T0) == 0
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(Notification)
                             .where(Notification.kind == "warning")) == 1


# --- sending: retries and final failure --------------------------------------


def test_a_failing_sender_is_retried_until_the_last_attempt_then_the_message_fails_for_good(
    world: World, store: PhotoStore, app_with: Callable[..., Flask]
) -> None:
    message_id = received_message_id(world, store)
    port = free_port()  # nobody listens here
    with app_with(**smtp_settings(port)).app_context():
        for attempt in range(1, MAX_ATTEMPTS):
            with pytest.raises(RetryLater):
                jobs.deliver_notification(message_id)
            message = db.session.get(Notification, message_id)
            assert (message.status, message.attempts) == ("pending", attempt)
        assert jobs.deliver_notification(message_id) == "failed"
        message = db.session.get(Notification, message_id)
        assert (message.status, message.attempts, message.sent_at) == ("failed", MAX_ATTEMPTS, None)
        assert f"SMTP 127.0.0.1:{port}" in message.last_error and "ConnectionRefusedError" in message.last_error

        assert jobs.deliver_notification(message_id) == "not pending"
        assert db.session.get(Notification, message_id).attempts == MAX_ATTEMPTS


def test_a_message_that_failed_for_good_lets_its_outbox_row_finish(
    world: World, store: PhotoStore, app_with: Callable[..., Flask]
) -> None:
    make_ticket(world, store)
    row_id = db.session.scalars(select(OutboxMessage.id)).one()
    with app_with(**smtp_settings(free_port())).app_context():
        for _ in range(MAX_ATTEMPTS - 1):
            assert jobs.run_outbox(row_id) == "failed, will retry"
        assert jobs.run_outbox(row_id) == "failed"
        row = db.session.get(OutboxMessage, row_id)
        assert row.done_at is not None and row.failed_at is None
    assert resident_messages()[0].status == "failed"


def test_a_failed_send_is_logged_with_the_phone_masked(
    world: World, store: PhotoStore, app_with: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    message_id = received_message_id(world, store)
    with (app_with(**smtp_settings(free_port())).app_context(), caplog.at_level(logging.WARNING),
          pytest.raises(RetryLater)):
        notify.deliver(message_id, T0)
    assert "138****5678" in caplog.text and PHONE not in caplog.text


class RefusingMailbox(Mailbox):
    """Refuses every recipient, as a gateway does for a number it does not serve."""

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        return "550 5.1.1 unknown recipient"


def test_a_refused_recipient_is_logged_with_the_phone_masked(
    world: World, store: PhotoStore, app_with: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    message_id = received_message_id(world, store)
    controller = Controller(RefusingMailbox(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        with (app_with(**smtp_settings(controller.port)).app_context(), caplog.at_level(logging.WARNING),
              pytest.raises(RetryLater)):
            notify.deliver(message_id, T0)
    finally:
        controller.stop()
    assert "138****5678" in caplog.text
    assert PHONE not in caplog.text


class WorkerKilled(BaseException):
    """What a job sees of kill -9: nothing after this point runs."""


def die(channel: str, config: Any) -> Any:
    raise WorkerKilled()


def test_a_message_left_sending_by_a_dead_worker_is_still_sent(
    world: World, store: PhotoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_ticket(world, store)
    row_id = db.session.scalars(select(OutboxMessage.id)).one()
    message_id = resident_messages()[0].id
    assert outbox.claim(row_id, T0)  # the relay hands the row to a worker …
    with monkeypatch.context() as patch:
        patch.setattr(notify, "sender_for", die)
        with pytest.raises(WorkerKilled):  # … which claims the message and dies before sending
            notify.deliver(message_id, T0 + timedelta(seconds=1))
    db.session.rollback()
    # From the moment the row is stale, the scheduled relay_outbox runs every 30 s, for an hour.
    now = T0 + outbox.STALE_AFTER + timedelta(seconds=0.5)
    for _ in range(120):
        notify.release_stuck(now)
        relay(now)
        now += timedelta(seconds=30)
    db.session.expire_all()
    assert db.session.get(Notification, message_id).status == "sent"


def test_an_smtp_failure_never_shows_the_password(
    world: World, store: PhotoStore, app_with: Callable[..., Flask], smtp_server_refusing_login: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    message_id = received_message_id(world, store)
    settings = smtp_settings(smtp_server_refusing_login, SMTP_USER="minhu", SMTP_PASSWORD=SMTP_PASSWORD)
    with app_with(**settings).app_context(), caplog.at_level(logging.DEBUG):
        with pytest.raises(RetryLater) as raised:
            notify.deliver(message_id, T0)
        error = db.session.get(Notification, message_id).last_error
    assert "SMTPAuthenticationError" in error
    encoded = base64.b64encode(SMTP_PASSWORD.encode()).decode()
    for text in (error, str(raised.value), caplog.text):
        assert SMTP_PASSWORD not in text and encoded not in text


# --- the senders --------------------------------------------------------------


def test_the_record_sender_marks_the_message_sent_and_keeps_it(world: World, store: PhotoStore) -> None:
    message_id = received_message_id(world, store)
    assert jobs.deliver_notification(message_id) == "sent"
    message = db.session.get(Notification, message_id)
    assert (message.status, message.sender, message.attempts) == ("sent", "record", 1)
    assert message.sent_at is not None


def test_the_smtp_sender_mails_the_sms_gateway_address(
    world: World, store: PhotoStore, app_with: Callable[..., Flask], smtp_server: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp_server
    message_id = received_message_id(world, store)
    with app_with(**smtp_settings(port)).app_context():
        assert jobs.deliver_notification(message_id) == "sent"
        message = db.session.get(Notification, message_id)
        assert (message.status, message.sender) == ("sent", "smtp")
        subject, number = message.subject, message.ticket.number
    [envelope] = mailbox.envelopes
    assert envelope.rcpt_tos == [f"{PHONE}@sms.example"]
    mail = message_from_bytes(envelope.original_content, policy=default_policy)
    assert mail["To"] == f"{PHONE}@sms.example"
    assert mail["Subject"] == subject and number in mail.get_content()


def test_one_delivery_job_sends_several_messages_and_retries_none_twice(
    world: World, store: PhotoStore, app_with: Callable[..., Flask], smtp_server: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp_server
    make_ticket(world, store)
    make_ticket(world, store)
    ids = [m.id for m in resident_messages("received")]
    with app_with(**smtp_settings(free_port())).app_context(), pytest.raises(RetryLater):  # nobody listens
        jobs.deliver_notification(*ids)
    assert [(m.status, m.attempts) for m in resident_messages()] == [("pending", 1)] * 2
    with app_with(**smtp_settings(port)).app_context():
        assert jobs.deliver_notification(*ids) == "2 messages"
        assert jobs.deliver_notification(*ids) == "2 messages"  # a retry of the job: nothing pending
    assert len(mailbox.envelopes) == 2
    db.session.expire_all()
    assert [(m.status, m.sender, m.attempts) for m in resident_messages()] == [("sent", "smtp", 2)] * 2


def test_the_record_sender_marks_a_whole_batch_sent(world: World, store: PhotoStore) -> None:
    make_ticket(world, store)
    make_ticket(world, store)
    ids = [m.id for m in resident_messages("received")]
    assert notify.deliver_many(ids, T0) == set()
    db.session.expire_all()
    assert [(m.status, m.sender, m.attempts, m.sent_at) for m in resident_messages()] == [
        ("sent", "record", 1, T0)] * 2


def test_the_wechat_sender_sends_a_template_message_to_the_openid(
    world: World, store: PhotoStore, app_with: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = make_ticket(world, store)
    message = Notification(dedupe_key="wechat-test", kind="received", channel="wechat", ticket_id=ticket.id,
                           address="o6_bmjrPTlm6_2sgVt7hMZOPfL2M", subject="已受理", body="您的诉求已受理")
    db.session.add(message)
    db.session.commit()
    client_class = MagicMock(name="WeChatClient")
    monkeypatch.setattr("wechatpy.WeChatClient", client_class)
    settings = {"wechat_sender": "wechat", "extra": {
        "WECHAT_APP_ID": "wx-app", "WECHAT_APP_SECRET": "wx-secret", "WECHAT_TEMPLATE_ID": "tmpl-1"}}
    with app_with(**settings).app_context():
        assert jobs.deliver_notification(message.id) == "sent"
    client_class.assert_called_once_with("wx-app", "wx-secret", session=ANY, timeout=10)
    assert isinstance(client_class.call_args.kwargs["session"], wechat_api.SharedTokens)
    client_class.return_value.message.send_template.assert_called_once_with(
        "o6_bmjrPTlm6_2sgVt7hMZOPfL2M", "tmpl-1",
        {"first": {"value": "已受理"}, "remark": {"value": "您的诉求已受理"}},
    )


def test_a_deadline_at_midnight_reads_as_24_00_in_a_staff_message(world: World, store: PhotoStore) -> None:
    midnight = T0.replace(hour=16)  # 00:00 on Thursday in Shanghai: due at the end of Thursday
    ticket = make_ticket(world, store, now=midnight)
    perform(ticket, "dispatch", Actor.staff(world.dora), midnight, calendar(), assignee=world.gina)
    db.session.commit()
    body = db.session.scalar(select(Notification.body).where(Notification.kind == "assigned"))
    assert body is not None and "24:00" in body and "00:00" not in body


def test_a_batch_writes_its_events_messages_once_at_its_end(world: World, store: PhotoStore) -> None:
    tickets = [advance(make_ticket(world, store), "accepted", world) for _ in range(2)]
    before = count(Notification)
    with notify.batched():
        for ticket in tickets:
            perform(ticket, "resolve", Actor.staff(world.gina), T0, calendar(), note="已修好", flush=False)
        assert count(Notification) == before  # held back until the batch ends
    db.session.commit()
    resolved = resident_messages("resolved")
    assert sorted(m.ticket_id for m in resolved) == sorted(t.id for t in tickets)
    # One delivery row for the batch's messages, besides the rows of those made before it.
    rows = db.session.scalars(select(OutboxMessage.args).where(
        OutboxMessage.job == "workers.jobs.deliver_notification").order_by(OutboxMessage.id)).all()
    assert sorted(rows[-1]) == sorted(m.id for m in resolved)
    assert all(len(args) == 1 for args in rows[:-1])


def test_a_batch_that_fails_writes_none_of_its_messages(world: World, store: PhotoStore) -> None:
    ticket = advance(make_ticket(world, store), "accepted", world)
    before = (count(Notification), count(OutboxMessage))
    with pytest.raises(RuntimeError), notify.batched():
        perform(ticket, "resolve", Actor.staff(world.gina), T0, calendar(), note="已修好", flush=False)
        raise RuntimeError("the batch broke")
    db.session.rollback()
    assert (count(Notification), count(OutboxMessage)) == before
    assert not resident_messages("resolved")
