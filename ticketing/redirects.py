"""Return addresses (`?next=`) that can only lead back into this site.

Sign-in and the language switch redirect to the `next=` they were given. A browser
reads a Location header the WHATWG way, not the way `startswith("/")` does: it drops
tabs and newlines anywhere and C0 controls and spaces at either end, and takes a
backslash for a slash, so `/\\t/evil.com`, `/\\\\evil.com` and ` //evil.com` all lead
to evil.com. So a return address is accepted only if, as a browser reads it, it is a
path on this site:

- a control character (C0 or DEL) makes the link malformed: no page of ours makes
  one (url_for percent-encodes them), and a newline cannot go into a header at all.
  That is a 400 (`MalformedNext`), not a silent fallback, so a broken link is seen;
- spaces at either end are dropped, as the browser would;
- what is left must start with one `/` (not `//`), hold no backslash, and parse with
  neither scheme nor host. Anything else is ignored and the caller's default is used.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import BadRequest

CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class MalformedNext(BadRequest):
    """A `next=` with a control character in it: answered 400 with its own page."""

    description = _l("This link's return address is malformed. Please open the start page instead.")


def safe_next(target: str | None) -> str | None:
    """The local path to go back to, or None when `target` may lead off the site.

    Raises `MalformedNext` when `target` holds a control character.
    """
    if not target:
        return None
    if CONTROL.search(target):
        raise MalformedNext()
    target = target.strip(" ")
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target
