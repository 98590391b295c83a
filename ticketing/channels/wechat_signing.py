"""Who may call `/channels/wechat`: WeChat's signature, a fresh timestamp, each nonce once.

WeChat signs a callback's URL with sha1 over our token, a timestamp and a nonce. In
plain mode that signature does not cover the body, so on its own a signed URL seen
anywhere (a proxy's log, an access log) would let anyone post any message as any
follower, at any later time. So, besides the signature:

- the timestamp must be within `CLOCK_SKEW` (5 minutes) of our clock, else 403;
- the (timestamp, nonce, signature) is remembered for that window with a fingerprint
  of the request (services/nonces.py): the same request again is WeChat's own retry
  (it resends a callback byte for byte up to three times when we are slow) and is
  answered again, idempotently; the same nonce with another body or query is a
  replay, refused with 403 before anything is read or written.

In safe mode (encrypt_type=aes, the production setting, docs/wechat.md) the
msg_signature also covers the encrypted body, so a new body cannot be forged at all;
the window and the nonce still apply.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from ticketing.channels.wechat import Refused, Settings
from ticketing.services import nonces

CLOCK_SKEW = timedelta(minutes=5)
# Kept a little past the window: web processes' clocks differ by a few seconds.
KEEP_MARGIN = timedelta(minutes=1)
MAX_TIMESTAMP_DIGITS = 12  # WeChat sends Unix seconds; anything longer is not a time


def signed_at(timestamp: str) -> datetime | None:
    """The time a callback says it was signed (Unix seconds), or None when it is not one."""
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > MAX_TIMESTAMP_DIGITS:
        return None
    return datetime.fromtimestamp(int(timestamp), tz=UTC)


def check_signature(account: Settings, args: Mapping[str, str], now: datetime) -> None:
    """`Refused(403)` unless `signature` is WeChat's over token, timestamp and nonce,
    and the timestamp is within `CLOCK_SKEW` of `now`."""
    from wechatpy.exceptions import InvalidSignatureException
    from wechatpy.utils import check_signature as wechat_check

    signature, timestamp, nonce = (args.get(k, "") for k in ("signature", "timestamp", "nonce"))
    if not signature or not timestamp or not nonce:
        raise Refused(403, "missing signature")
    try:
        wechat_check(account.token, signature, timestamp, nonce)
    except InvalidSignatureException:
        raise Refused(403, "bad signature") from None
    at = signed_at(timestamp)
    if at is None or abs(now - at) > CLOCK_SKEW:
        raise Refused(403, "timestamp outside the 5-minute window")


def fingerprint(method: str, args: Mapping[str, str], body: bytes) -> str:
    """A digest of the whole request: a retry has the same one, a replay with a new body not."""
    digest = hashlib.sha256(method.upper().encode())
    for name, value in sorted(args.items()):
        digest.update(b"\n" + name.encode() + b"=" + value.encode())
    digest.update(b"\n\n" + body)
    return digest.hexdigest()


def check_replay(args: Mapping[str, str], method: str, body: bytes, now: datetime) -> nonces.Seen:
    """Remember this signed request's nonce; `Refused(403)` when it came before with
    another request. Call after `check_signature`, before the message does anything."""
    timestamp, nonce, signature = (args.get(k, "") for k in ("timestamp", "nonce", "signature"))
    at = signed_at(timestamp)
    if at is None:
        raise Refused(403, "missing signature")
    key = hashlib.sha256(f"wechat\n{timestamp}\n{nonce}\n{signature}".encode()).hexdigest()
    seen = nonces.remember(key, fingerprint(method, args, body), at + CLOCK_SKEW + KEEP_MARGIN, now)
    if seen is nonces.Seen.REPLAY:
        raise Refused(403, "nonce already used")
    return seen
