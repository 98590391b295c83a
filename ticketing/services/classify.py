"""Reading a free-text request: the mobile number in it, and a category by keywords.

A stop-gap shared by the channels that receive plain text (WeChat, group-chat
entry): the first category, in catalogue order, one of whose keywords occurs in
the text. Word segmentation, urgent words and confidence will replace it here.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Sequence

from ticketing.models import Category

PHONE_IN_TEXT = re.compile(r"(?<!\d)(?:(?:\+|00)?86[\s-]?)?(1[3-9]\d(?:[\s-]?\d){8})(?!\d)")


def phone_in_text(text: str) -> str | None:
    """The first mainland mobile number in the text, as 11 digits (full-width digits allowed)."""
    found = PHONE_IN_TEXT.search(unicodedata.normalize("NFKC", text))
    return re.sub(r"\D", "", found.group(1)) if found else None


def keyword_category(text: str, categories: Sequence[Category]) -> Category | None:
    """The first of `categories` one of whose keywords occurs in the text, else None."""
    text = unicodedata.normalize("NFKC", text)
    for category in categories:
        if any(word and word in text for word in (category.keywords or "").split()):
            return category
    return None
