"""Lockouts after repeated failed guesses, kept in the database so every process sees it.

Two doors can be guessed at: the staff sign-in, and the resident's lookup by ticket
number and the last four digits of a phone (10,000 values; numbers are sequential).
Failures are counted over a sliding window of 15 minutes; the limits are settings
(config.py, `LOGIN_*` and `TRACK_*`).

Sign-in keeps three counts, and an attempt over any of them is refused unread:

- per client address, whatever the usernames (LOGIN_FAILURES_PER_ADDRESS, 30):
  one address trying many accounts is stopped;
- per client address and username (LOGIN_FAILURES_PER_USER_ADDRESS, 10): one
  address guessing at one account is stopped;
- per username from every address (LOGIN_DELAY_AFTER, 5): once an account has
  failed that often, an address that has itself failed on it must wait
  2^(failures - LOGIN_DELAY_AFTER) seconds after the account's last failure
  (at most until its own failures leave the window). Many addresses guessing at
  one account get a guess or two each, then a growing wait.

None of them refuses an address that has no failures of its own on the account
and is under its own address limit: wrong passwords typed elsewhere, by anyone, never
lock the owner out of their account when they sign in from another network. A
refused attempt is neither checked nor counted; a successful sign-in forgets its
address's failures on that account.

The lookup keeps two: per ticket number (TRACK_FAILURES_PER_NUMBER, 10) and per
client address (TRACK_FAILURES_PER_ADDRESS, 30), so one address cannot try ten
guesses on each of many numbers.

Keys are what was typed (a username in lower case, a number in upper case), whether
or not it exists, so a lockout tells nothing. A client address is personal data, so
keys holding one are an HMAC under the app's SECRET_KEY.
"""
from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from flask import current_app
from sqlalchemy import CursorResult, delete, func, select

from ticketing.extensions import db
from ticketing.models import FailedAttempt
from ticketing.services.ratelimit import PREFIX as RATE_LIMIT_PREFIX
from ticketing.services.ratelimit import client_key

WINDOW = timedelta(minutes=15)
MAX_FAILURES = 10  # the default of `locked`


@dataclass(frozen=True)
class Limits:
    """Failures allowed within `WINDOW` at each door (config: LOGIN_*, TRACK_*)."""

    login_per_address: int
    login_per_user_address: int
    login_delay_after: int
    track_per_address: int
    track_per_number: int

    @classmethod
    def configured(cls) -> Limits:
        """The limits of the current app."""
        config = current_app.config
        return cls(
            login_per_address=config["LOGIN_FAILURES_PER_ADDRESS"],
            login_per_user_address=config["LOGIN_FAILURES_PER_USER_ADDRESS"],
            login_delay_after=config["LOGIN_DELAY_AFTER"],
            track_per_address=config["TRACK_FAILURES_PER_ADDRESS"],
            track_per_number=config["TRACK_FAILURES_PER_NUMBER"],
        )


# --- counting -------------------------------------------------------------------------


def failure_times(key: str, now: datetime) -> list[datetime]:
    """When `key` failed within the window before `now`, oldest first."""
    return list(db.session.scalars(
        select(FailedAttempt.at)
        .where(FailedAttempt.key == key[:100], FailedAttempt.at > now - WINDOW)
        .order_by(FailedAttempt.at)
    ))


def locked(key: str, now: datetime, limit: int = MAX_FAILURES) -> bool:
    """True when `key` has failed `limit` times or more within the window."""
    count = db.session.scalar(
        select(func.count()).select_from(FailedAttempt)
        .where(FailedAttempt.key == key[:100], FailedAttempt.at > now - WINDOW)
    )
    return (count or 0) >= limit


def record_failure(key: str, now: datetime) -> None:
    """Count one failure of `key` and forget its failures older than the window; commits."""
    record_failures([key], now)


def record_failures(keys: Iterable[str], now: datetime) -> None:
    """Count one failure of each key and forget their failures older than the window; commits."""
    for key in (key[:100] for key in keys):
        db.session.execute(delete(FailedAttempt).where(FailedAttempt.key == key, FailedAttempt.at <= now - WINDOW))
        db.session.add(FailedAttempt(key=key, at=now))
    db.session.commit()


def prune(now: datetime) -> int:
    """Delete every lockout row older than the window; how many went.

    The rate limits' rows (`rl:…`) share the table and are left to `ratelimit.prune`.
    """
    result = db.session.execute(delete(FailedAttempt).where(
        ~FailedAttempt.key.startswith(RATE_LIMIT_PREFIX), FailedAttempt.at <= now - WINDOW,
    ))
    db.session.commit()
    return int(cast(CursorResult[Any], result).rowcount or 0)


def seconds_until(moment: datetime, now: datetime) -> int:
    """Whole seconds from `now` to `moment`, rounded up; 0 when it is past."""
    return max(0, math.ceil((moment - now).total_seconds()))


def wait_for_limit(times: list[datetime], limit: int, now: datetime) -> int:
    """Seconds until fewer than `limit` of these failures are left in the window (0: under it)."""
    if len(times) < limit:
        return 0
    return max(1, seconds_until(times[len(times) - limit] + WINDOW, now))


def growing_delay(failures: int, after: int) -> timedelta:
    """The wait after an account's last failure: none below `after`, then 1, 2, 4 … seconds, at most the window."""
    if failures < after:
        return timedelta(0)
    return min(timedelta(seconds=2 ** min(failures - after, 20)), WINDOW)


def address_key(kind: str, address: str | None, detail: str = "") -> str:
    """`kind:<HMAC>` of a client address (and what it typed): the raw address is never stored.

    IPv6 addresses count by their /64, as for the rate limits (`ratelimit.client_key`).
    """
    secret = str(current_app.config["SECRET_KEY"]).encode()
    message = f"{kind}\n{client_key(address)}\n{detail}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]
    return f"{kind}:{digest}"


# --- staff sign-in --------------------------------------------------------------------


def login_keys(username: str, address: str | None) -> tuple[str, str, str]:
    """The keys of the account, of the address with the account, and of the address."""
    name = username.strip().lower()
    return "login:" + name, address_key("login-pair", address, name), address_key("login-addr", address)


def login_wait(username: str, address: str | None, now: datetime, limits: Limits | None = None) -> int:
    """Seconds this address must wait before a sign-in as `username` is checked; 0 to check it now."""
    limits = limits or Limits.configured()
    account_key, pair_key, addr_key = login_keys(username, address)
    pair = failure_times(pair_key, now)
    waits = [
        wait_for_limit(failure_times(addr_key, now), limits.login_per_address, now),
        wait_for_limit(pair, limits.login_per_user_address, now),
    ]
    if pair:  # only an address that failed on this account waits for the account's delay
        account = failure_times(account_key, now)
        delay = growing_delay(len(account), limits.login_delay_after)
        if delay:
            waits.append(min(seconds_until(account[-1] + delay, now), seconds_until(pair[-1] + WINDOW, now)))
    return max(waits)


def record_login_failure(username: str, address: str | None, now: datetime) -> None:
    """Count a failed sign-in as `username` from `address`; commits."""
    record_failures(login_keys(username, address), now)


def forget_login_failures(username: str, address: str | None) -> None:
    """After a successful sign-in: this address's failures on the account no longer count; commits."""
    _account_key, pair_key, _addr_key = login_keys(username, address)
    db.session.execute(delete(FailedAttempt).where(FailedAttempt.key == pair_key))
    db.session.commit()


# --- the resident's lookup ------------------------------------------------------------


def track_keys(number: str, address: str | None) -> tuple[str, str]:
    """The keys of the ticket number typed and of the client address."""
    return "track:" + number.strip().upper(), address_key("track-addr", address)


def track_wait(number: str, address: str | None, now: datetime, limits: Limits | None = None) -> int:
    """Seconds before a lookup of `number` from `address` is tried; 0 to try it now."""
    limits = limits or Limits.configured()
    number_key, addr_key = track_keys(number, address)
    return max(
        wait_for_limit(failure_times(number_key, now), limits.track_per_number, now),
        wait_for_limit(failure_times(addr_key, now), limits.track_per_address, now),
    )


def record_track_failure(number: str, address: str | None, now: datetime) -> None:
    """Count a failed lookup of `number` from `address`; commits."""
    record_failures(track_keys(number, address), now)
