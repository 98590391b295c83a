"""The requester's contact number: a mobile, a landline with its area code, or none.

Residents who file on the web, on WeChat or through an app have a mobile phone: it
is how they get their messages and find their request again. Many who come to the
service station or the hall, or who phone in, have only a landline or no phone at
all; on those doors (and for a WeChat-group message, whose requester is the group
nickname) staff may enter a landline or tick "no phone". What is stored:

- a mobile: its 11 digits (13812345678);
- a landline: area code and local number as digits (037112345678, 01012345678), which
  `privacy.mask_phone` shows as 037****5678 and whose last 4 digits find the request
  on the tracking page like a mobile's;
- no phone: the empty string, as the retention job leaves an erased one
  (services/retention.py); only the signed link finds the request then.

Only a mobile gets SMS (`can_text`): services/notify.py sends nothing to the others.
"""
from __future__ import annotations

import re
import unicodedata

from ticketing.models import STAFF_ENTRY_CHANNELS, Channel

MOBILE = re.compile(r"^1[3-9]\d{9}$")
# An area code (010, 02x, then four digits 0371, 0755 …) and a local number of 7 or 8
# digits that does not start with 0. Three-digit codes have 8-digit local numbers.
LANDLINE = re.compile(r"^0(?:(?:10|2\d)[1-9]\d{7}|[3-9]\d{2}[1-9]\d{6,7})$")
SEPARATORS = re.compile(r"[\s\-()（）]")

# The doors where staff take the request for the resident: a landline or no phone is
# accepted there (walk-in, service hall, phone, and WeChat-group messages).
LANDLINE_CHANNELS = frozenset({*(c.value for c in STAFF_ENTRY_CHANNELS), Channel.WECHAT_GROUP.value})

MOBILE_KIND = "mobile"
LANDLINE_KIND = "landline"
NO_PHONE_KIND = "none"


def digits_of(value: str | None) -> str:
    """What was typed with full-width characters made ASCII and separators dropped."""
    return SEPARATORS.sub("", unicodedata.normalize("NFKC", value or "").strip())


def clean_landline(value: str | None) -> str | None:
    """A landline with its area code from what was typed, as digits, or None if it is not one.

    0371-12345678, (0371)1234567, 010 1234 5678 and +86 10 1234 5678 are accepted; a
    number without its area code is not (it could be anywhere).
    """
    digits = digits_of(value)
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits = "0" + digits[len(prefix):].lstrip("0")
    return digits if LANDLINE.match(digits) else None


def kind_of(phone: str | None) -> str:
    """What a stored contact number is: mobile, landline or none."""
    phone = (phone or "").strip()
    if not phone:
        return NO_PHONE_KIND
    return MOBILE_KIND if MOBILE.match(phone) else LANDLINE_KIND


def can_text(phone: str | None) -> bool:
    """True when an SMS can reach the number: a mainland mobile."""
    return kind_of(phone) == MOBILE_KIND


def accepts_landline(channel: str) -> bool:
    """True for the doors where staff may enter a landline or no phone at all."""
    return channel in LANDLINE_CHANNELS
