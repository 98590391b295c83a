"""Reading a free-text request: its mobile number, its likely category, and urgent words.

The text is normalised (NFKC, traditional → simplified characters, lower-case Latin)
and cut into words by jieba, whose dictionary knows every category keyword and
trigger word, so 楼道灯 is one word and the 电 of 电话 is not a word at all.

Scores, per active leaf category:

- a keyword that is one of the words scores by its length (1 char 0.5, 2 chars 1,
  3 chars 1.5, 4 or more 2), divided by the number of categories that list it; a
  keyword of 2+ characters that only occurs inside another word scores half;
- each word of the text that dispatchers' corrections taught (classify_store.py)
  votes for the category the corrections chose, by n/(N+2) · n/N, where N is how
  often the word occurred in corrected texts and n how often for that category:
  words seen often and always for one category vote strongly, generic ones weakly.

The confidence is the winner's share of all scores, damped when the evidence is thin:
share · (1 − e^(−best)); one plain two-character keyword alone gives 0.63, two give
0.86. No evidence, no guess (category None, confidence 0).

A tier's trigger words (燃气泄漏, 起火 …) put the request on that tier when it is more
urgent than its category's, "more urgent" meaning a lower rank (the order the
dispatcher's queue uses), then shorter limits. A trigger is found as a substring of
the normalised text unless a negation stands right before it (没有起火, 打不着火); a
trigger written as several words ("电梯 困") needs all of them within 12 characters,
in any order (电梯里困了人, 被困在电梯).
"""
from __future__ import annotations

import math
import os
import re
import tempfile
import threading
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ticketing.reference import NEGATIONS, STOP_WORDS

PHONE_IN_TEXT = re.compile(r"(?<!\d)(?:(?:\+|00)?86[\s-]?)?(1[3-9]\d(?:[\s-]?\d){8})(?!\d)")

SUBSTRING_FACTOR = 0.5
LEARNED_WEIGHT = 1.0
MIN_VOTE = 0.05
LOW_CONFIDENCE = 0.5  # below this the staff pages ask a person to check the category
TRIGGER_WINDOW = 12
MAX_TERMS = 6  # evidence words kept on a guess
WORD = re.compile(r"\w", re.UNICODE)
CJK = re.compile(r"[\u4e00-\u9fff]")


def phone_in_text(text: str) -> str | None:
    """The first mainland mobile number in the text, as 11 digits (full-width digits allowed)."""
    found = PHONE_IN_TEXT.search(unicodedata.normalize("NFKC", text))
    return re.sub(r"\D", "", found.group(1)) if found else None


# --- normalising and segmenting -----------------------------------------------


class Segmenter:
    """jieba and OpenCC, loaded once per process on first use, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokenizer: Any = None
        self._converter: Any = None
        self._traditional: frozenset[str] = frozenset()
        self._words: set[str] = set()

    def _load(self) -> None:
        with self._lock:
            if self._tokenizer is not None:
                return
            import jieba
            from opencc import OpenCC

            jieba.setLogLevel(60)  # quiet: no "Building prefix dict" on every start
            tokenizer = jieba.Tokenizer()
            # Its dictionary cache (built once, ~1 s; read in ~0.5 s) goes to a private
            # temp folder, never into site-packages; jieba's own temp dir if that fails.
            cache_dir = os.path.join(tempfile.gettempdir(), "minhu-jieba")
            try:
                os.makedirs(cache_dir, mode=0o700, exist_ok=True)
                tokenizer.tmp_dir = cache_dir
            except OSError:
                pass
            tokenizer.initialize()
            self._converter = OpenCC("t2s")
            self._traditional = _traditional_characters()
            self._tokenizer = tokenizer

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            self._load()
        return self._tokenizer

    def normalise(self, text: str) -> str:
        """NFKC, traditional → simplified (only when the text has traditional characters), lower case."""
        text = unicodedata.normalize("NFKC", text or "")
        if self._tokenizer is None:
            self._load()
        if not self._traditional.isdisjoint(text):
            text = self._converter.convert(text)
        return text.lower()

    def add_words(self, words: Iterable[str]) -> None:
        """Teach jieba words (keywords, trigger words) so that each is cut as one word."""
        tokenizer = self.tokenizer
        with self._lock:
            for word in words:
                if len(word) > 1 and word not in self._words:
                    tokenizer.add_word(word)
                    self._words.add(word)

    def words(self, normalised: str) -> list[str]:
        """The words of a normalised text (search mode: long words also give their parts)."""
        return [w for w in self.tokenizer.cut_for_search(normalised, HMM=False) if WORD.search(w)]


def _traditional_characters() -> frozenset[str]:
    """Characters that OpenCC's t2s dictionary changes: their presence calls for conversion."""
    import opencc

    path = os.path.join(os.path.dirname(opencc.__file__), "dictionary", "TSCharacters.txt")
    found = set()
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            source, _, targets = line.rstrip("\n").partition("\t")
            if source and targets and targets.split(" ")[0] != source:
                found.add(source)
    return frozenset(found)


SEGMENTER = Segmenter()


def normalise(text: str) -> str:
    """The text as the classifier reads it."""
    return SEGMENTER.normalise(text)


def learnable(word: str) -> bool:
    """Whether a word of a corrected text may teach its category: no single characters,
    numbers or stop words."""
    return (len(word) >= 2 and word not in STOP_WORDS and not word.isdigit()
            and (len(word) >= 3 or bool(CJK.search(word))))


# --- the index: what the classifier knows ---------------------------------------


@dataclass(frozen=True)
class CategoryRef:
    """A category as the classifier knows it (no database session needed)."""

    id: int
    code: str
    name_zh: str
    name_en: str
    group_zh: str = ""
    group_en: str = ""
    position: int = 0  # catalogue order: ties go to the earlier category

    @property
    def group(self) -> CategoryRef | None:
        """The top-level category's names (for display, like `Category.group`), if any."""
        if not self.group_zh:
            return None
        return CategoryRef(0, "", self.group_zh, self.group_en)


@dataclass(frozen=True)
class TierRef:
    """A time-limit tier as the classifier knows it."""

    id: int
    code: str
    name_zh: str
    name_en: str
    rank: int
    accept_minutes: int
    resolve_minutes: int


def tier_urgency(tier: Any) -> tuple[int, int, int]:
    """Sorts tiers (a `TierRef` or an `SlaTier`) most urgent first: lower rank, then shorter limits."""
    return (tier.rank, tier.accept_minutes, tier.resolve_minutes)


@dataclass(frozen=True)
class Guess:
    """What the classifier made of a text."""

    category: CategoryRef | None
    confidence: float
    urgent_tier: TierRef | None = None
    urgent_words: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()  # the words that decided the category

    @property
    def low(self) -> bool:
        """True when a person should check the guess."""
        return self.category is None or self.confidence < LOW_CONFIDENCE


@dataclass(frozen=True)
class Trigger:
    """One trigger line: a phrase, or several words that must occur close together."""

    line: str
    parts: tuple[str, ...]


@dataclass(frozen=True)
class Index:
    """Keywords and trigger words of the active catalogue, ready to match."""

    categories: dict[int, CategoryRef]
    keywords: dict[str, tuple[tuple[int, float], ...]]
    tiers: tuple[tuple[TierRef, tuple[Trigger, ...]], ...]

    @cached_property
    def long_keywords(self) -> tuple[str, ...]:
        """Keywords of two or more characters: these also count (half) inside other words."""
        return tuple(word for word in self.keywords if len(word) > 1)

    @property
    def words(self) -> set[str]:
        """Every word jieba must know."""
        found = set(self.keywords)
        for _, triggers in self.tiers:
            for trigger in triggers:
                found.update(trigger.parts)
        return found


@dataclass
class Learned:
    """Word counts of corrected texts: word → {chosen category id: texts}."""

    counts: dict[str, dict[int, int]] = field(default_factory=dict)
    texts: int = 0

    def with_texts(self, rows: Iterable[tuple[Iterable[str], int]]) -> Learned:
        """A copy that also knows `rows` of (words, chosen category id); self is left alone,
        so readers in other threads never see a half-made table."""
        counts = dict(self.counts)
        texts = self.texts
        for words, category_id in rows:
            texts += 1
            for word in set(words):
                if learnable(word):
                    per = dict(counts.get(word, {}))
                    per[category_id] = per.get(category_id, 0) + 1
                    counts[word] = per
        return Learned(counts, texts)

    memo: dict[str, tuple[tuple[int, float], ...]] = field(default_factory=dict, repr=False)

    def votes(self, word: str) -> tuple[tuple[int, float], ...]:
        """(category id, vote) of one word; votes under MIN_VOTE (words of every category) are dropped."""
        found = self.memo.get(word)
        if found is None:
            per = self.counts.get(word) or {}
            total = sum(per.values())
            found = tuple((cid, vote) for cid, n in per.items()
                          if (vote := LEARNED_WEIGHT * n / (total + 2) * n / total) >= MIN_VOTE)
            self.memo[word] = found  # the same value whichever thread writes it
        return found


def split_keywords(value: str | None) -> list[str]:
    """The words of a keywords field (whitespace, commas or 、 between them), normalised, once each."""
    words = re.split(r"[\s,，、;；]+", normalise(value or ""))
    return list(dict.fromkeys(w for w in words if w))


def split_triggers(value: str | None) -> list[str]:
    """The lines of a trigger-words field, normalised, once each; a line keeps its inner spaces."""
    lines = (" ".join(normalise(line).split()) for line in (value or "").splitlines())
    return list(dict.fromkeys(line for line in lines if line))


def keyword_weight(word: str) -> float:
    """Longer keywords say more: 1 char 0.5, 2 chars 1, 3 chars 1.5, 4 or more 2."""
    return min(len(word), 4) / 2


def build_index(categories: Sequence[tuple[CategoryRef, str]],
                tiers: Sequence[tuple[TierRef, str]]) -> Index:
    """An index of (category, keywords field) and (tier, trigger-words field) pairs."""
    owners: dict[str, list[int]] = defaultdict(list)
    for ref, keywords in categories:
        for word in split_keywords(keywords):
            owners[word].append(ref.id)
    index_words = {
        word: tuple((cid, keyword_weight(word) / len(ids)) for cid in ids) for word, ids in owners.items()
    }
    tier_rows = tuple(sorted(
        ((tier, tuple(Trigger(line, tuple(line.split())) for line in split_triggers(words)))
         for tier, words in tiers),
        key=lambda row: tier_urgency(row[0]),
    ))
    return Index({ref.id: ref for ref, _ in categories}, index_words,
                 tuple(row for row in tier_rows if row[1]))


# --- guessing -------------------------------------------------------------------


def _negated(text: str, at: int) -> bool:
    before = text[max(0, at - 2):at]
    return any(before.endswith(word) for word in NEGATIONS)


def _positions(text: str, part: str) -> list[int]:
    found, start = [], text.find(part)
    while start >= 0:
        if not _negated(text, start):
            found.append(start)
        start = text.find(part, start + 1)
    return found


def trigger_found(trigger: Trigger, text: str) -> bool:
    """Whether the normalised text holds the trigger (see the module's docstring)."""
    if not all(part in text for part in trigger.parts):
        return False
    places = [_positions(text, part) for part in trigger.parts]
    if not all(places):
        return False
    if len(places) == 1:
        return True
    first, *others = places
    return any(
        all(any(abs(at - start) <= TRIGGER_WINDOW for at in spots) for spots in others) for start in first
    )


def urgency(index: Index, text: str) -> tuple[TierRef | None, tuple[str, ...]]:
    """The most urgent tier whose trigger words occur in the normalised text, with those words."""
    for tier, triggers in index.tiers:
        words = tuple(t.line for t in triggers if trigger_found(t, text))
        if words:
            return tier, words
    return None, ()


def guess_with(index: Index, learned: Learned, text: str, candidates: set[int] | None = None) -> Guess:
    """The category, confidence and urgency of `text` by `index` and `learned` (pure)."""
    norm = normalise(text)
    words = set(SEGMENTER.words(norm))
    allowed = index.categories.keys() if candidates is None else index.categories.keys() & candidates
    scores: dict[int, float] = defaultdict(float)
    evidence: dict[int, dict[str, float]] = defaultdict(dict)
    whole = words & index.keywords.keys()
    found = [(word, 1.0) for word in whole]
    found += [(word, SUBSTRING_FACTOR) for word in index.long_keywords if word not in whole and word in norm]
    for word, factor in found:
        for cid, weight in index.keywords[word]:
            if cid in allowed:
                scores[cid] += weight * factor
                evidence[cid][word] = evidence[cid].get(word, 0) + weight * factor
    for word in words & learned.counts.keys():
        for cid, vote in learned.votes(word):
            if cid in allowed:
                scores[cid] += vote
                evidence[cid][word] = evidence[cid].get(word, 0) + vote
    tier, urgent_words = urgency(index, norm)
    if not scores:
        return Guess(None, 0.0, tier, urgent_words)
    best_id = min(scores, key=lambda cid: (-scores[cid], index.categories[cid].position, cid))
    best = scores[best_id]
    confidence = best / sum(scores.values()) * (1 - math.exp(-best))
    terms = sorted(evidence[best_id], key=lambda w: -evidence[best_id][w])[:MAX_TERMS]
    return Guess(index.categories[best_id], round(confidence, 3), tier, urgent_words, tuple(terms))


def classify(text: str, candidates: set[int] | None = None) -> Guess:
    """Guess the category and urgency of `text` from the catalogue in the database
    (cached per process; see classify_store.py). Needs an app context."""
    from ticketing.services import classify_store

    index, learned = classify_store.current()
    return guess_with(index, learned, text, candidates)
