"""Lockout after repeated failed guesses, kept in the database so every process sees it.

Ticket numbers are easy to guess and the last four digits of a phone have only 10,000
values, so lookups of one number are limited; so are sign-ins of one username. The
key is what was typed, whether or not it exists, so a lockout tells nothing either.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from ticketing.extensions import db
from ticketing.models import FailedAttempt

WINDOW = timedelta(minutes=15)
MAX_FAILURES = 10


def locked(key: str, now: datetime) -> bool:
    """True when `key` has failed too often within the window."""
    count = db.session.scalar(
        select(func.count()).select_from(FailedAttempt)
        .where(FailedAttempt.key == key[:100], FailedAttempt.at > now - WINDOW)
    )
    return (count or 0) >= MAX_FAILURES


def record_failure(key: str, now: datetime) -> None:
    """Count one failure of `key` and forget its failures older than the window; commits."""
    key = key[:100]
    db.session.execute(delete(FailedAttempt).where(FailedAttempt.key == key, FailedAttempt.at <= now - WINDOW))
    db.session.add(FailedAttempt(key=key, at=now))
    db.session.commit()
