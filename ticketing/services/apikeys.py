"""Issuing and checking API keys: Open311 client apps and staff apps (see models/channels.py).

A key is shown once, when it is issued; only its SHA-256 is kept. Checking a key is
one indexed lookup by that hash, cached for a few seconds (services/refcache.py); a
staff key's account is read afresh on every request, in one statement with whether the
key was revoked, so a revoked key or a deactivated account stops at once.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from ticketing.extensions import db
from ticketing.models import ApiKey, KeyKind, User
from ticketing.services import audit, refcache

PREFIXES = {KeyKind.OPEN311: "o311_", KeyKind.STAFF: "mhs_"}
MAX_NAME = 100
# last_used_at is written at most this often per key, not on every request.
TOUCH_EVERY = timedelta(minutes=5)


def digest(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def issue(kind: KeyKind, name: str, now: datetime, user: User | None = None,
          created_by: User | None = None, via: str = "web",
          actor_label: str | None = None) -> tuple[ApiKey, str]:
    """Create a key; return the row and the key itself (the only time it is seen). Commits,
    with its audit entry (by `created_by`, or `actor_label` from a shell)."""
    name = " ".join((name or "").split())
    if not name or len(name) > MAX_NAME:
        raise ValueError(f"a key needs a name of 1–{MAX_NAME} characters")
    if kind == KeyKind.STAFF and (user is None or not user.active):
        raise ValueError("a staff key needs an active staff account")
    key = PREFIXES[kind] + secrets.token_urlsafe(32)
    row = ApiKey(kind=kind, name=name, prefix=key[:12], key_hash=digest(key),
                 user=user if kind == KeyKind.STAFF else None, created_by=created_by,
                 created_at=now)
    db.session.add(row)
    db.session.flush()
    audit.record(created_by, "apikey.issue", "apikey", row.id, row.name, None,
                 audit.snapshot(row, audit.KEY_FIELDS), now, via=via, actor_label=actor_label)
    db.session.commit()
    return row, key


def verify(kind: KeyKind, key: str | None, now: datetime) -> ApiKey | None:
    """The active key of `kind` that `key` is, else None. Records when it was last used.

    A staff key's account (`ApiKey.user`) is the one `live_account` has just read.
    """
    if not key or len(key) > 200:
        return None
    key_hash = digest(key)
    row = refcache.api_key(key_hash)
    if row is None or row.kind != kind or row.revoked_at is not None:
        return None
    if row.kind == KeyKind.STAFF:
        account = live_account(row.id)
        if account is None:
            return None
        set_committed_value(row, "user", account)  # as loaded: the row itself is unchanged
    if row.last_used_at is None or now - row.last_used_at > TOUCH_EVERY:
        # A plain UPDATE: no version check, no conflict between concurrent requests.
        db.session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
        db.session.commit()
        refcache.touched_key(key_hash, now)
    return row


# Built once (as intake.EXISTING): building the statement for every request cost more
# than running it. populate_existing: an account already in the session is read afresh.
LIVE_ACCOUNT = (select(User).join(ApiKey, ApiKey.user_id == User.id)
                .where(ApiKey.id == bindparam("key_id"), ApiKey.revoked_at.is_(None), User.active.is_(True))
                .execution_options(populate_existing=True))


def live_account(key_id: int) -> User | None:
    """The account a staff key acts as, read afresh (one statement), when the key is not
    revoked and the account is active: the cached key may be seconds old, and a revoked
    key or a deactivated person's app must be refused at once. Its role and scope are
    today's too."""
    return db.session.scalar(LIVE_ACCOUNT, {"key_id": key_id})


def of_kind(kind: KeyKind) -> list[ApiKey]:
    """Every key of a kind, oldest first, with the accounts staff keys act as."""
    return list(db.session.scalars(
        select(ApiKey).where(ApiKey.kind == kind).options(joinedload(ApiKey.user)).order_by(ApiKey.id)
    ))


def find(kind: KeyKind, key_id: int) -> ApiKey | None:
    """The key `key_id` if it is of `kind`."""
    row = db.session.get(ApiKey, key_id)
    return row if row is not None and row.kind == kind else None


def revoke(row: ApiKey, now: datetime, actor: User | None = None, via: str = "web",
           actor_label: str | None = None) -> None:
    """Stop a key from working; the row stays for the record. Commits, with its audit entry."""
    if row.revoked_at is None:
        before = audit.snapshot(row, audit.KEY_FIELDS)
        row.revoked_at = now
        audit.record(actor, "apikey.revoke", "apikey", row.id, row.name, before,
                     audit.snapshot(row, audit.KEY_FIELDS), now, via=via, actor_label=actor_label)
        db.session.commit()
