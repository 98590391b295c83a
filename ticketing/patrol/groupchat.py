"""Split a block of WeChat-group messages, as WeChat copies them, into draft tickets.

Three header shapes start a message:

    张阿姨 10:32                 (sender, then the time; a date may come before it)
    [11-20 10:32] 张阿姨: text   (time in brackets, sender, colon, maybe text)
    张阿姨：                     (sender and a colon alone on the line)

Every other line belongs to the message above it. Each draft then gets a guessed
phone (mainland mobile), category with its confidence (services/classify.py) and
place (a complex or building alias, through placing.place_in).
"""
from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ticketing.services import placing
from ticketing.services.classify import Guess, classify, phone_in_text
from ticketing.services.placing import CommunityEntry

MAX_SENDER = 32
TIME = r"\d{1,2}:\d{2}(?::\d{2})?"
DATE = r"(?:\d{2,4}[-/年.]\d{1,2}(?:[-/月.]\d{1,2}日?)?|\d{1,2}[-/月]\d{1,2}日?|昨天|今天|前天)"
STAMP = rf"(?:{DATE}\s*)?{TIME}"
# 张阿姨 10:32 / 张阿姨 2026-11-20 10:32
SENDER_TIME = re.compile(rf"^(?P<sender>\S(?:.{{0,{MAX_SENDER - 1}}}?\S)?)\s+(?P<time>{STAMP})$")
# [11-20 10:32] 张阿姨: text
BRACKETED = re.compile(rf"^[\[【](?P<time>{STAMP})[\]】]\s*(?P<sender>[^:：]{{1,{MAX_SENDER}}}?)\s*[:：]\s*(?P<text>.*)$")
# 张阿姨：
SENDER_ONLY = re.compile(rf"^(?P<sender>[^\s:：\d][^:：]{{0,{MAX_SENDER - 1}}}?)\s*[:：]$")


@dataclass
class Draft:
    """One message of the paste, and what was guessed from it."""

    sender: str
    time: str
    text: str
    phone: str = ""
    category_id: int | None = None
    guess: Guess | None = None  # the classifier's (confidence, urgent words), which the drafts page shows
    community_id: int | None = None
    complex_id: int | None = None
    building_id: int | None = None
    key: str = field(default_factory=lambda: uuid.uuid4().hex)


def _header(line: str) -> tuple[str, str, str] | None:
    """(sender, time, text on the same line) when the line starts a message."""
    for pattern in (BRACKETED, SENDER_TIME, SENDER_ONLY):
        match = pattern.match(line)
        if match:
            groups = match.groupdict()
            return groups["sender"].strip(), (groups.get("time") or "").strip(), (groups.get("text") or "").strip()
    return None


def parse(text: str) -> list[Draft]:
    """The messages of a pasted block, in order; empty messages are dropped.

    Lines before any header make one message without a sender.
    """
    drafts: list[Draft] = []
    current: Draft | None = None
    lines: list[str] = []

    def close() -> None:
        if current is not None:
            current.text = "\n".join(lines).strip()
            if current.text:
                drafts.append(current)

    for raw in unicodedata.normalize("NFC", text or "").replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.strip()
        head = _header(line) if line else None
        if head is not None:
            close()
            sender, time, rest = head
            current = Draft(sender=sender, time=time, text="")
            lines = [rest] if rest else []
        elif line:
            if current is None:
                current = Draft(sender="", time="", text="")
                lines = []
            lines.append(line)
    close()
    return drafts


def detect(drafts: list[Draft], communities: Sequence[CommunityEntry], category_ids: Iterable[int]) -> list[Draft]:
    """Fill in each draft's phone, category (among `category_ids`) and place guesses;
    returns the drafts."""
    candidates = set(category_ids)
    for draft in drafts:
        draft.phone = phone_in_text(draft.text) or ""
        guess = classify(draft.text, candidates)
        draft.category_id = guess.category.id if guess.category else None
        draft.guess = guess
        if communities:
            draft.community_id = communities[0].id
        for community in communities:
            placement = placing.place_in(community.id, draft.text)  # from the cached place names
            if placement is not None and placement.complex_id is not None:
                draft.community_id = community.id
                draft.complex_id = placement.complex_id
                draft.building_id = placement.building_id
                break
    return drafts
