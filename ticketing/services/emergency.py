"""Emergency guidance: what a resident should do at once, and whom to call, when a
request describes a danger (a gas smell, a fire, a person trapped in a lift …).

Where it comes from, in the order it is shown:

1. the request's category: its own guidance and numbers (`Category.emergency_*`,
   edited on the category's admin page); a category on the urgent tier without
   guidance of its own gets the general guide;
2. the urgent tier's trigger words found in the text (services/classify.py finds
   them): each trigger word belongs to the first guide (`EmergencyGuide`, by its
   order) one of whose markers it holds — 燃气泄漏 holds 燃气, so it is the gas
   guide's — and to the general guide when none claims it.

The same guidance is not shown twice, and the general guide only when nothing more
particular applies. The start page lists the general guide's numbers. The resident's
pages, the WeChat reply and the Open311 response all read it from here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ticketing.extensions import db
from ticketing.labels import locale_of
from ticketing.models import Category, EmergencyGuide, Ticket, User
from ticketing.reference import NEGATIONS
from ticketing.services import audit, classify, classify_store, refcache
from ticketing.services.errors import ValidationFailed

URGENT_TIER = "urgent"  # the reference tier whose trigger words mean danger (ticketing/reference.py)
GENERAL = "general"  # the guide for urgent words no other guide claims; its numbers are the start page's
MAX_NUMBERS = 6
NUMBER_LINE = re.compile(r"^(?P<label>.+?)[\s:：]+(?P<number>\+?[0-9][0-9-]{1,19})$")
SHORT_TEXT = 90  # characters of guidance in a WeChat reply or an Open311 notice


@dataclass(frozen=True)
class Number:
    """A number to call, with what it is for (火警 119)."""

    label: str
    number: str

    @property
    def dial(self) -> str:
        """The digits a phone dials (for tel: links)."""
        return re.sub(r"[^0-9+]", "", self.number)


@dataclass(frozen=True)
class Guidance:
    """One piece of guidance as a page shows it, in one language."""

    key: str  # "category:<id>" or "guide:<code>"
    title: str
    text: str
    numbers: tuple[Number, ...]


@dataclass(frozen=True)
class GuideRef:
    """An emergency guide as cached per process (services/refcache.py)."""

    code: str
    name_zh: str
    name_en: str
    markers: tuple[str, ...]
    guidance_zh: str
    guidance_en: str
    numbers: tuple[Number, ...]


def numbers_of(stored: Any) -> tuple[Number, ...]:
    """The numbers a catalogue row stores ([{"label", "number"}]), skipping malformed entries."""
    found = []
    for item in stored or ():
        if isinstance(item, dict) and str(item.get("number") or "").strip():
            found.append(Number(str(item.get("label") or "").strip(), str(item["number"]).strip()))
    return tuple(found)


def parse_numbers(text: str | None, field: str = "emergency_numbers") -> list[dict[str, str]]:
    """Numbers typed one per line, a label then the number ("火警 119", "燃气抢修：96777");
    raises ValidationFailed naming the first line it cannot read."""
    numbers = []
    for raw in (text or "").splitlines():
        line = " ".join(raw.split())
        if not line:
            continue
        found = NUMBER_LINE.match(line)
        if found is None or len(found.group("label")) > 20:
            raise ValidationFailed({field: _l("Write each number on its own line, a short label and then the "
                                              "number, e.g. “火警 119”: “%(line)s” is not.", line=line[:40])})
        numbers.append({"label": found.group("label"), "number": found.group("number")})
    if len(numbers) > MAX_NUMBERS:
        raise ValidationFailed({field: _l("At most %(n)d numbers.", n=MAX_NUMBERS)})
    return numbers


def numbers_text(stored: Any) -> str:
    """Stored numbers as the admin form shows them, one per line."""
    return "\n".join(f"{n.label} {n.number}" for n in numbers_of(stored))


def clean_guidance(text: str | None) -> str:
    """Guidance as stored: lines trimmed, blank lines dropped, at most 1,000 characters."""
    lines = (" ".join(line.split()) for line in (text or "").splitlines())
    return "\n".join(line for line in lines if line)[:1000]


# --- what applies ------------------------------------------------------------------


def language(lang: str | None = None) -> str:
    """"en" or "zh": the given language, else the page's."""
    if lang is None:
        locale = get_locale()
        lang = locale.language if locale is not None else "zh"
    return "en" if str(lang).startswith("en") else "zh"


def guides() -> tuple[GuideRef, ...]:
    """Every emergency guide in order, cached per process like the catalogue."""
    def load() -> tuple[GuideRef, ...]:
        rows = db.session.scalars(select(EmergencyGuide).order_by(EmergencyGuide.sort_order, EmergencyGuide.id))
        return tuple(GuideRef(row.code, row.name_zh, row.name_en, tuple((row.markers or "").split()),
                              row.guidance_zh, row.guidance_en, numbers_of(row.numbers)) for row in rows)

    return refcache.remember(("emergency_guides",), load) or ()


def guide_of(line: str, known: tuple[GuideRef, ...]) -> GuideRef | None:
    """The guide a trigger word belongs to: the first whose marker it holds, else the general one."""
    for guide in known:
        if guide.code != GENERAL and any(marker in line for marker in guide.markers):
            return guide
    return next((guide for guide in known if guide.code == GENERAL), None)


def urgent_triggers() -> list[classify.Trigger]:
    """The urgent tier's trigger words, as the classifier matches them."""
    index, _learned = classify_store.current()
    return [trigger for tier, triggers in index.tiers if tier.code == URGENT_TIER for trigger in triggers]


def urgent_words(text: str) -> list[str]:
    """The urgent tier's trigger words found in `text` (services/classify.py's rules)."""
    if not (text or "").strip():
        return []
    norm = classify.normalise(text)
    return [trigger.line for trigger in urgent_triggers() if classify.trigger_found(trigger, norm)]


def from_guide(guide: GuideRef, lang: str) -> Guidance:
    english = lang == "en"
    return Guidance(f"guide:{guide.code}", guide.name_en if english and guide.name_en else guide.name_zh,
                    guide.guidance_en if english and guide.guidance_en else guide.guidance_zh, guide.numbers)


def for_category(category: Category | None, lang: str | None = None) -> Guidance | None:
    """The category's own guidance; the general guide for an urgent category without it."""
    if category is None:
        return None
    lang = language(lang)
    numbers = numbers_of(category.emergency_numbers)
    own = category.emergency_guidance_en if lang == "en" and category.emergency_guidance_en \
        else category.emergency_guidance_zh
    if own or numbers:
        title = category.name_en if lang == "en" and category.name_en else category.name_zh
        return Guidance(f"category:{category.id}", title, own, numbers)
    tier = category.effective_tier()
    if tier is not None and tier.code == URGENT_TIER:
        general = next((g for g in guides() if g.code == GENERAL), None)
        return from_guide(general, lang) if general is not None else None
    return None


def for_text(text: str, lang: str | None = None) -> list[Guidance]:
    """The guides of the urgent words in `text`, each once, in the order of the guides."""
    lang, known = language(lang), guides()
    found = {guide.code for line in urgent_words(text) if (guide := guide_of(line, known)) is not None}
    return [from_guide(guide, lang) for guide in known if guide.code in found]


def combine(found: list[Guidance]) -> list[Guidance]:
    """Each guidance once (by key and by text); the general guide only when alone."""
    seen_keys: set[str] = set()
    seen_texts: set[str] = set()
    kept = []
    for guidance in found:
        if guidance.key in seen_keys or (guidance.text and guidance.text in seen_texts):
            continue
        seen_keys.add(guidance.key)
        seen_texts.add(guidance.text)
        kept.append(guidance)
    particular = [g for g in kept if g.key != f"guide:{GENERAL}"]
    return particular or kept


def for_request(category: Category | None, text: str, lang: str | None = None) -> list[Guidance]:
    """Everything that applies to a request of this category and text, category first."""
    lang = language(lang)
    first = for_category(category, lang)
    return combine(([first] if first is not None else []) + for_text(text, lang))


def for_ticket(ticket: Ticket, lang: str | None = None) -> list[Guidance]:
    """The guidance of a filed ticket (its category, from the cache, and description)."""
    category = refcache.category(ticket.category_id) if ticket.category_id else None
    return for_request(category, ticket.description or "", lang)


def start_page_numbers() -> tuple[Number, ...]:
    """The numbers the start page lists: the general guide's."""
    return next((guide.numbers for guide in guides() if guide.code == GENERAL), ())


def short_text(found: list[Guidance], lang: str | None = None) -> str:
    """One short paragraph for a reply that cannot show a page: the first guidance's
    first sentence and every number, e.g. for WeChat or Open311; "" when none applies."""
    if not found:
        return ""
    lang = language(lang)
    sentence = re.split(r"(?<=[。！!])|(?<=\.\s)", found[0].text.strip(), maxsplit=1)[0].strip()
    if len(sentence) > SHORT_TEXT:
        sentence = sentence[:SHORT_TEXT - 1] + "…"
    numbers = {n.number: n for g in found for n in g.numbers}
    calls = " / ".join(f"{n.label} {n.number}".strip() for n in numbers.values())
    with force_locale(locale_of("en" if lang == "en" else "zh_CN")):
        if calls:
            return _("Safety first: %(advice)s Call %(numbers)s.", advice=sentence, numbers=calls)
        return _("Safety first: %(advice)s", advice=sentence)


def client_triggers(known: tuple[GuideRef, ...] | None = None) -> list[dict[str, Any]]:
    """The urgent trigger words and their guides, for the report form's script."""
    known = guides() if known is None else known
    rows = []
    for trigger in urgent_triggers():
        guide = guide_of(trigger.line, known)
        if guide is not None:
            rows.append({"parts": list(trigger.parts), "key": f"guide:{guide.code}"})
    return rows


def client_rules() -> dict[str, Any]:
    """What the report form's script needs to find urgent words as the server does."""
    return {"triggers": client_triggers(), "negations": list(NEGATIONS), "window": classify.TRIGGER_WINDOW}


# --- administering the guides ---------------------------------------------------

GUIDE_RECORD = ("code", "name_zh", "name_en", "markers", "guidance_zh", "guidance_en", "numbers")


def update_guide(actor: User | None, guide: EmergencyGuide, markers: str | None, guidance_zh: str | None,
                 guidance_en: str | None, numbers: str | None, now: datetime, via: str = "web") -> bool:
    """Change a guide's markers, guidance and numbers, with an audit entry; False when nothing
    changed; raises ValidationFailed and changes nothing. The caller commits.

    The general guide has no markers (it takes the urgent words no other guide claims).
    """
    errors: dict[str, Any] = {}
    words = list(dict.fromkeys((markers or "").replace("，", " ").replace(",", " ").split()))
    if guide.code == GENERAL:
        words = []
    elif not words:
        errors["markers"] = _l("Give at least one word part, e.g. 燃气.")
    elif any(len(word) > 10 for word in words) or len(words) > 20:
        errors["markers"] = _l("At most 20 parts of at most 10 characters each.")
    try:
        parsed = parse_numbers(numbers, "numbers")
    except ValidationFailed as exc:
        errors.update(exc.errors)
        parsed = []
    zh = clean_guidance(guidance_zh)
    if not zh:
        errors["guidance_zh"] = _l("Say in Chinese what to do at once.")
    if errors:
        raise ValidationFailed(errors)
    before = audit.snapshot(guide, GUIDE_RECORD)
    guide.markers, guide.guidance_zh, guide.guidance_en = " ".join(words), zh, clean_guidance(guidance_en)
    guide.numbers = parsed
    after = audit.snapshot(guide, GUIDE_RECORD)
    if after == before:
        return False
    audit.record(actor, "emergency_guide.update", "emergency_guide", guide.code, guide.name_zh, before, after,
                 now, via)
    return True
