"""The classifier's data in each process: the catalogue's keywords and trigger words, and
what dispatchers' corrections taught it (services/classify.py does the guessing).

Nothing here reads a table per ticket. Every few seconds (`REFRESH_SECONDS`) one
call checks two stamps: a hash of the categories' and tiers' few rows (keywords,
trigger words, names, active, order) and the corrections' (count, max id). A changed
catalogue rebuilds the index; new corrections are added to the learned word table
incrementally (a deleted one, or a table grown past twice `MAX_LEARNED`, reloads the
latest `MAX_LEARNED`). A commit in this process that touched a category, a tier or
a correction makes the next call check at once, so an admin's edit or a dispatcher's
correction applies to the very next ticket here, and within seconds elsewhere.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from itertools import chain
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from ticketing.extensions import db
from ticketing.models import Category, ClassificationCorrection, SlaTier
from ticketing.services.classify import (
    SEGMENTER,
    CategoryRef,
    Index,
    Learned,
    TierRef,
    build_index,
    normalise,
    split_keywords,
)

REFRESH_SECONDS = 5.0
MAX_LEARNED = 1000  # the latest corrections learned from; older ones have had their say
CHANGED = "minhu.classify_changed"
WATCHED = (Category, SlaTier, ClassificationCorrection)

log = logging.getLogger(__name__)


def load_catalog() -> tuple[str, list[tuple[CategoryRef, str]], list[tuple[TierRef, str]]]:
    """(stamp, active leaf categories with their keywords, tiers with their trigger words)."""
    rows = db.session.execute(
        select(Category.id, Category.parent_id, Category.code, Category.name_zh, Category.name_en,
               Category.keywords, Category.active, Category.sort_order).order_by(Category.id)
    ).all()
    tiers = db.session.execute(
        select(SlaTier.id, SlaTier.code, SlaTier.name_zh, SlaTier.name_en, SlaTier.rank,
               SlaTier.accept_minutes, SlaTier.resolve_minutes, SlaTier.trigger_words).order_by(SlaTier.id)
    ).all()
    stamp = hashlib.sha256(repr(([tuple(r) for r in rows], [tuple(t) for t in tiers])).encode()).hexdigest()
    children: dict[int, list[Any]] = {}
    parents = {row.parent_id for row in rows}
    for row in rows:
        if row.parent_id is not None and row.active:
            children.setdefault(row.parent_id, []).append(row)
    groups = sorted((r for r in rows if r.parent_id is None and r.active), key=lambda r: (r.sort_order, r.id))
    leaves: list[tuple[CategoryRef, str]] = []
    for group in groups:
        # As services/catalog.py offers them: a group is its own option only without categories.
        own = [] if group.id in parents else [group]
        for row in sorted(children.get(group.id, []), key=lambda r: (r.sort_order, r.id)) or own:
            ref = CategoryRef(row.id, row.code, row.name_zh, row.name_en,
                              group.name_zh if row is not group else "", group.name_en if row is not group else "",
                              len(leaves))
            leaves.append((ref, row.keywords or ""))
    tier_refs = [(TierRef(t.id, t.code, t.name_zh, t.name_en, t.rank, t.accept_minutes, t.resolve_minutes),
                  t.trigger_words or "") for t in tiers]
    return stamp, leaves, tier_refs


def corrected_texts(newer_than: int = 0, limit: int | None = None) -> list[tuple[list[str], int]]:
    """(words, chosen category id) of corrections with an id above `newer_than`, the latest `limit`."""
    query = (select(ClassificationCorrection.text, ClassificationCorrection.chosen_category_id)
             .where(ClassificationCorrection.id > newer_than)
             .order_by(ClassificationCorrection.id.desc()))
    if limit is not None:
        query = query.limit(limit)
    return [(SEGMENTER.words(normalise(text)), cid) for text, cid in db.session.execute(query)]


class Store:
    """The index and the learned table of this process, refreshed as the module says."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.index: Index | None = None
        self.learned = Learned()
        self._catalog: str | None = None
        self._corrections: tuple[int, int] | None = None
        self._checked_at = float("-inf")
        self._forced = True

    def force(self) -> None:
        """Check both stamps on the next call."""
        self._forced = True

    def current(self) -> tuple[Index, Learned]:
        """The index and learned table, checked against the database when due."""
        if self._due():
            with self._lock:
                if self._due():
                    self._forced = False  # a force arriving during the refresh is kept
                    try:
                        self._refresh()
                    except Exception:
                        if self.index is None:
                            raise
                        # Keep guessing with what we have; the next check tries again.
                        log.exception("classifier data could not be refreshed")
                    self._checked_at = time.monotonic()
        assert self.index is not None
        return self.index, self.learned

    def _due(self) -> bool:
        return self.index is None or self._forced or time.monotonic() - self._checked_at >= REFRESH_SECONDS

    def _refresh(self) -> None:
        stamp, leaves, tiers = load_catalog()
        if stamp != self._catalog:
            index = build_index(leaves, tiers)
            SEGMENTER.add_words(index.words)
            self.index, self._catalog = index, stamp
        count, highest = db.session.execute(
            select(func.count(ClassificationCorrection.id), func.max(ClassificationCorrection.id))
        ).one()
        seen = (int(count), int(highest or 0))
        if seen == self._corrections:
            return
        old = self._corrections
        if old is not None and seen[1] > old[1] and seen[0] > old[0] \
                and self.learned.texts + seen[0] - old[0] <= 2 * MAX_LEARNED:
            rows = corrected_texts(newer_than=old[1])
            if len(rows) == seen[0] - old[0]:
                self.learned, self._corrections = self.learned.with_texts(reversed(rows)), seen
                return
        self.learned = Learned().with_texts(reversed(corrected_texts(limit=MAX_LEARNED)))
        self._corrections = seen


STORE = Store()


def current() -> tuple[Index, Learned]:
    """The classifier's index and learned table (needs an app context)."""
    return STORE.current()


def warm_up() -> None:
    """Load jieba, OpenCC, the index and the learned table now (about 2 s), e.g. when a
    worker starts, instead of during its first ticket (needs an app context)."""
    STORE.current()


def invalidate() -> None:
    """Make this process re-check the catalogue and corrections on the next guess."""
    STORE.force()


def suggested_keywords(category_id: int, keywords: str, limit: int = 5) -> list[tuple[str, int]]:
    """Words that corrected texts often had when dispatchers chose this category, and that
    are not yet (part of) its keywords: (word, texts), most frequent first.

    A word qualifies when at least two corrections for the category had it and at
    least 60 % of the corrected texts with it were for this category.
    """
    _, learned = current()
    known = split_keywords(keywords)
    found = []
    for word, per in learned.counts.items():
        n = per.get(category_id, 0)
        if n >= 2 and n / sum(per.values()) >= 0.6 and not any(word in k for k in known):
            found.append((word, n))
    found.sort(key=lambda item: (-item[1], -len(item[0]), item[0]))
    return found[:limit]


@event.listens_for(Session, "after_flush")
def _note_changes(session: Session, _context: Any) -> None:
    """Remember that this transaction wrote classifier data."""
    if session.info.get(CHANGED):
        return
    if any(isinstance(obj, WATCHED) for obj in chain(session.new, session.dirty, session.deleted)):
        session.info[CHANGED] = True


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(CHANGED, False):
        STORE.force()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(CHANGED, None)
