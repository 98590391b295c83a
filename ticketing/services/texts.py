"""Text a channel may store, checked as sent: refused with the reason, never mended.

Werkzeug decodes form fields leniently (invalid UTF-8 is kept as percent-escapes or
becomes U+FFFD), JSON may carry a lone surrogate (`"\\ud800"`) that UTF-8 cannot
encode, and PostgreSQL text cannot hold a NUL byte while SQLite keeps it. Silently
dropping or replacing such characters would store something the sender did not send,
so a channel answers 400 naming the field instead.
"""
from __future__ import annotations

import re

SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored as sent ("contains a NUL byte", …), else None."""
    if "\x00" in text:
        return "contains a NUL byte"
    if SURROGATE.search(text):
        return "contains a lone surrogate (not valid Unicode)"
    return None


def bytes_problem(raw: bytes, charset: str = "utf-8") -> str | None:
    """Why the bytes of a form field are not text we can store, else None."""
    try:
        text = raw.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return "is not valid UTF-8" if charset == "utf-8" else f"is not valid {charset}"
    return text_problem(text)
