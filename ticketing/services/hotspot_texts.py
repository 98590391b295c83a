"""Near-identical wording, for the recurring problems (services/hotspots.py).

Two tickets at one place say the same thing when rapidfuzz's `fuzz.ratio` of their
texts (the normalised Indel similarity, 0–100) is at least `NEAR_IDENTICAL`, once the
texts are normalised: full-width characters made half-width (NFKC), punctuation,
spaces and case dropped, and the place's own names (complex, building, their aliases)
taken out, so that "红星小区3号楼漏水" and "红星小区3号楼停电" are not alike for sharing
their address. Tickets alike, directly or through others, form a group; a group that
spans categories is one problem filed under several (by the classifier or by staff),
and its tickets join the category most of them have.

A cluster's typical wording is the text of its sample most like all the others (the
medoid), masked as every staff page masks free text (services/privacy.py).
"""
from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz, process, utils

NEAR_IDENTICAL = 80  # fuzz.ratio at or above which two texts say the same thing
WORDING_LENGTH = 120  # characters of the typical wording kept


def normalised(text: str, names: Iterable[str] = ()) -> str:
    """The text as it is compared: NFKC, the place's names out, no punctuation or spaces, lower case."""
    text = unicodedata.normalize("NFKC", text or "")
    for name in sorted({n for n in names if n}, key=len, reverse=True):
        text = text.replace(name, "")
    return utils.default_process(text).replace(" ", "")


@lru_cache(maxsize=65536)
def plain(text: str) -> str:
    """`normalised` without place names, remembered: a night's samples repeat their texts."""
    return normalised(text)


def alike_groups(texts: Sequence[str]) -> list[int]:
    """For each (normalised) text, the index of its group's first text: texts with a
    ratio of at least NEAR_IDENTICAL are in one group, and so are their groups."""
    parent = list(range(len(texts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, text in enumerate(texts):
        if not text:
            continue
        for _choice, _score, j in process.extract(text, texts, scorer=fuzz.ratio, processor=None,
                                                  score_cutoff=NEAR_IDENTICAL, limit=None):
            if j != i and texts[j]:
                a, b = root(i), root(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    return [root(i) for i in range(len(texts))]


@dataclass(frozen=True)
class Said:
    """One ticket's words at a place, with its category."""

    ticket_id: int
    category_id: int
    text: str  # normalised


def regrouped(tickets: Sequence[Said], weight: dict[int, int]) -> dict[int, int]:
    """Tickets to move to another category: {ticket id: category}.

    A group of alike texts that spans categories goes to the category most of its tickets
    have; a tie goes to the category with more tickets at the place (`weight`), then to
    the lower id, so that the outcome does not depend on the order of reading.
    """
    groups: dict[int, list[Said]] = {}
    for said, group in zip(tickets, alike_groups([t.text for t in tickets]), strict=True):
        groups.setdefault(group, []).append(said)
    moves: dict[int, int] = {}
    for members in groups.values():
        counts = Counter(s.category_id for s in members)
        if len(counts) < 2:
            continue
        main = max(counts, key=lambda c: (counts[c], weight.get(c, 0), -c))
        moves.update({s.ticket_id: main for s in members if s.category_id != main})
    return moves


def typical(texts: Sequence[str], names: Iterable[str] = ()) -> int:
    """The index of the text most like all the others (the first among equals); texts
    normalised alike count as one, weighted by how often they occur."""
    if not texts:
        raise ValueError("no texts")
    names = tuple(names)
    keys = [normalised(t, names) if names else plain(t) for t in texts]
    counts = Counter(keys)
    unique = list(counts)
    if len(unique) == 1:
        return 0
    best, best_total = unique[0], -1.0
    for key in unique:
        total = sum(score * counts[other] for other, score, _ in process.extract(
            key, unique, scorer=fuzz.ratio, processor=None, limit=None) if other != key)
        total += 100.0 * (counts[key] - 1)
        if total > best_total:
            best, best_total = key, total
    return keys.index(best)


def shortened(text: str, length: int = WORDING_LENGTH) -> str:
    """The text on one line, cut to `length` characters with an ellipsis."""
    text = " ".join((text or "").split())
    return text if len(text) <= length else text[: length - 1] + "…"
