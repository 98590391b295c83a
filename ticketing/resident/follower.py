"""The WeChat follower the official account's menu sent to the form (the web
authorisation of channels/wechat_oauth.py keeps their openid in the session): their
remembered phone and place as the form's defaults, their openid on the request, so
its replies and 查询 stay on WeChat (services/followers.py, services/notify.py).

The phone is never put in the page: the field stays empty, shows the number masked,
and an empty field means "the number you gave us before"; typing one replaces it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import after_this_request, session
from flask_wtf import FlaskForm
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from ticketing import web
from ticketing.models import Ticket
from ticketing.services import followers
from ticketing.services.intake import IntakeRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FormFollower:
    """The follower filling in the form, and what we remember of them (None: nothing yet)."""

    openid: str
    known: followers.Remembered | None

    @property
    def masked_phone(self) -> str:
        return self.known.masked_phone if self.known is not None else ""

    def __repr__(self) -> str:  # never the openid in a log or traceback
        return f"FormFollower(known={self.known!r})"


def current() -> FormFollower | None:
    """The follower of this session, if WeChat vouched for one lately."""
    openid = followers.openid_from_session(session.get(followers.SESSION_KEY), web.now())
    return FormFollower(openid, followers.remembered(openid)) if openid else None


def for_form(form: FlaskForm) -> FormFollower | None:
    """The follower, for the page; their masked phone is the phone field's placeholder."""
    follower = current()
    if follower is not None:
        after_this_request(private)
    phone = getattr(form, "phone", None)
    if follower is not None and follower.masked_phone and phone is not None:
        # Not required: left empty, the remembered number is used.
        phone.render_kw = {**(phone.render_kw or {}), "placeholder": follower.masked_phone, "required": False}
    return follower


def private(response: Response) -> Response:
    """A page made for one follower stays out of shared caches."""
    response.headers["Cache-Control"] = "private, no-store"
    return response


def prefill(form: FlaskForm) -> None:
    """A fresh form starts at the follower's last place (they may choose another)."""
    follower = current()
    if form.is_submitted() or follower is None or follower.known is None:
        return
    known = follower.known
    for name, value in (("community_id", known.community_id), ("complex_id", known.complex_id),
                        ("building_id", known.building_id)):
        field = getattr(form, name, None)
        if field is not None and value is not None:
            field.data = value


def complete(req: IntakeRequest) -> None:
    """The request is the follower's: their openid, and their phone when none was typed."""
    follower = current()
    if follower is None:
        return
    req.openid = follower.openid
    if not req.phone.strip() and follower.known is not None and follower.known.phone:
        req.phone = follower.known.phone


def remember(ticket: Ticket) -> None:
    """Remember the filed request's phone and place for the follower's next one; the
    request is filed whatever happens here."""
    if not ticket.resident_openid:
        return
    try:
        followers.remember_apart(ticket, web.now())
    except SQLAlchemyError:
        log.exception("wechat follower's phone and place not remembered")
