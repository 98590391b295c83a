"""Acting on a ticket as its resident, through the tracking link, in tests."""
from __future__ import annotations

import io
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from tests.conftest import csrf_token
from ticketing import web
from ticketing.extensions import db
from ticketing.models import Notification, Ticket
from ticketing.services import tracking


def link(ticket: Ticket, app: Flask) -> str:
    """The path of the ticket's tracking page."""
    return "/t/" + tracking.tracking_token(ticket, app.config["SECRET_KEY"])


def post_on(client: FlaskClient, ticket: Ticket, app: Flask, action: str,
            photos: list[tuple[bytes, str]] = (), **data: Any) -> TestResponse:
    """Post a form of the tracking page (`action`: rate, withdraw, merged/rate …)."""
    body: dict[str, Any] = {"csrf_token": csrf_token(client, "/track"), **data}
    if photos:
        body["photos"] = [(io.BytesIO(content), name) for content, name in photos]
        return client.post(f"{link(ticket, app)}/{action}", data=body, content_type="multipart/form-data")
    return client.post(f"{link(ticket, app)}/{action}", data=body)


def at(monkeypatch: pytest.MonkeyPatch, when: Any) -> None:
    """Set the web layer's clock."""
    monkeypatch.setattr(web, "now", lambda: when)


def messages_to(address: str, kind: str | None = None) -> list[Notification]:
    """The residents' messages (SMS, WeChat) to one address, oldest first."""
    where = [Notification.channel != "inbox", Notification.address == address]
    if kind is not None:
        where.append(Notification.kind == kind)
    return list(db.session.scalars(select(Notification).where(*where).order_by(Notification.id)))


def inbox(user_id: int, kind: str) -> list[Notification]:
    """A staff member's inbox messages of one kind."""
    return list(db.session.scalars(select(Notification).where(
        Notification.channel == "inbox", Notification.user_id == user_id, Notification.kind == kind)))
