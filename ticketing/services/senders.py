"""Pluggable senders for residents' messages: recorded, SMTP, WeChat template messages,
and SMS through Aliyun or Tencent Cloud (services/sms.py).

Chosen per channel by configuration (`SMS_SENDER`, `WECHAT_SENDER`, `EMAIL_SENDER`);
the default "record" sends nothing and leaves the message in the notifications table,
where admins read it, so the embedded set-up shows what would have gone out.
Senders raise `SendError` on failure, and the caller retries with backoff; or
`PermanentSendError` when no retry can help, and the message is marked failed at once.
"""
from __future__ import annotations

import smtplib
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any, Protocol

from ticketing.models import Notification


class SendError(RuntimeError):
    """A message could not be handed to its transport; it is tried again later."""


class PermanentSendError(SendError):
    """A message that can never be sent as it is (a wrong number, template or signature,
    no balance): it is marked failed at once instead of being tried again."""


class Sender(Protocol):
    """Delivers one notification, or raises SendError."""

    name: str
    # True when send() reaches the outside world: each sent message is then committed
    # before the next is sent, so a crash cannot make it be sent twice.
    external: bool

    def send(self, notification: Notification) -> None: ...


class RecordSender:
    """Sends nothing: the stored row is the record of what would have been sent."""

    name = "record"
    external = False

    def send(self, notification: Notification) -> None:
        return None


class SmtpSender:
    """E-mail through an SMTP server; for SMS, an operator's e-mail-to-SMS gateway.

    `to_template` turns the notification's address into a mailbox, e.g.
    "{address}@sms.gateway.example" for SMS, or "{address}" for plain e-mail.
    """

    name = "smtp"
    external = True

    def __init__(self, config: Mapping[str, Any], to_template: str) -> None:
        self.host = config.get("SMTP_HOST") or "localhost"
        self.port = int(config.get("SMTP_PORT") or 25)
        self.user = config.get("SMTP_USER") or ""
        self.password = config.get("SMTP_PASSWORD") or ""
        self.sender = config.get("SMTP_FROM") or "minhu@localhost"
        self.starttls = bool(config.get("SMTP_STARTTLS"))
        self.to_template = to_template

    def send(self, notification: Notification) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = self.to_template.format(address=notification.address)
        message["Subject"] = notification.subject
        message.set_content(notification.body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=10) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.user:
                    smtp.login(self.user, self.password)
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            # Its text lists the refused addresses, which are residents' phone numbers.
            codes = ", ".join(str(code) for code, _ in exc.recipients.values())
            raise SendError(f"SMTP {self.host}:{self.port}: recipient refused ({codes})") from None
        except (OSError, smtplib.SMTPException) as exc:
            # The exception text names the server, never the password.
            raise SendError(f"SMTP {self.host}:{self.port}: {type(exc).__name__}: {exc}") from None


class WechatSender:
    """A WeChat official-account template message to the resident's openid."""

    name = "wechat"
    external = True

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.app_id = config.get("WECHAT_APP_ID") or ""
        self.app_secret = config.get("WECHAT_APP_SECRET") or ""
        self.template_id = config.get("WECHAT_TEMPLATE_ID") or ""

    def send(self, notification: Notification) -> None:
        from wechatpy.exceptions import WeChatException

        from ticketing.services import wechat_api

        if not (self.app_id and self.app_secret and self.template_id):
            raise SendError("WeChat sender is not configured (WECHAT_APP_ID, _SECRET, _TEMPLATE_ID)")
        client = wechat_api.client(self.app_id, self.app_secret, timeout=10)
        data = {"first": {"value": notification.subject}, "remark": {"value": notification.body}}
        try:
            client.message.send_template(notification.address, self.template_id, data)
        except (WeChatException, OSError) as exc:
            raise SendError(f"WeChat: {type(exc).__name__}: {exc}") from None
        except Exception as exc:  # noqa: BLE001  requests' errors, which wechatpy lets through
            raise SendError(f"WeChat: {type(exc).__name__}") from None


def sender_for(channel: str, config: Mapping[str, Any]) -> Sender:
    """The sender configured for a channel (sms, wechat, email)."""
    choice = (config.get(f"{channel.upper()}_SENDER") or "record").lower()
    if choice == "record":
        return RecordSender()
    if choice == "smtp":
        default = "{address}" if channel == "email" else "{address}@localhost"
        return SmtpSender(config, config.get(f"{channel.upper()}_SMTP_TO") or default)
    if choice == "wechat" and channel == "wechat":
        return WechatSender(config)
    if choice in ("aliyun", "tencent") and channel == "sms":
        from ticketing.services import sms  # it builds on this module's errors

        return sms.AliyunSmsSender(config) if choice == "aliyun" else sms.TencentSmsSender(config)
    raise SendError(f"unknown sender {choice!r} for {channel}")
