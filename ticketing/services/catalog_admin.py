"""Administering the catalogue: create, rename, move, re-tier, publish, deactivate and
reactivate categories; create and change time-limit tiers.

One function per action, each taking the acting account (None: a shell) and `now`,
recording one audit entry in the caller's transaction; the caller commits. Nothing
is ever deleted: tickets, rules and ledgers refer to categories and tiers.

- A group is a top-level category; groups stay top-level (a category moves between
  groups, a group does not move). A code is the key Open311 clients, the staff API
  and ledgers know a category by, so it never changes, not even on a move.
- A deactivated category (or every category of a deactivated group) is offered on
  no intake form and guessed by no classifier (services/catalog.py,
  classify_store.py); existing tickets, rules and past ledgers keep showing it.
- A tier change applies to deadlines set after it: deadlines are computed when a
  ticket is dispatched or accepted and stored on the ticket (services/effects.py),
  so tickets already dispatched or accepted keep theirs.

The reference cache and the classifier's index are refreshed by their session hooks
when the commit writes a category or a tier (services/refcache.py, classify_store.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from ticketing.extensions import db
from ticketing.models import Category, SlaTier, User
from ticketing.services import audit, emergency
from ticketing.services.classify import split_keywords, split_triggers
from ticketing.services.errors import ValidationFailed

GROUP_CODE = re.compile(r"[a-z][a-z0-9_]{0,30}")
CATEGORY_CODE = re.compile(r"([a-z][a-z0-9_]{0,30})\.([a-z][a-z0-9_]{0,30})")
TIER_CODE = re.compile(r"[a-z][a-z0-9_]{0,31}")
MAX_NAME = 64
MAX_WORDS = 100
MAX_WORD = 20
MAX_TRIGGER = 40  # characters of one trigger line
MAX_RANK = 99
# A year of minutes: a longer limit is a typing mistake, not a promise to residents.
MAX_MINUTES = 365 * 24 * 60


@dataclass(frozen=True)
class CategoryData:
    """What an admin sets on a category besides its code (and, when creating, keywords)."""

    name_zh: str
    name_en: str = ""
    parent_id: int | None = None  # None: the category is a group
    tier_id: int | None = None  # None: the group's tier (a group needs one)
    public: bool = False
    # Emergency guidance (services/emergency.py): what to do at once, and the numbers
    # to call, one "label number" a line; None leaves them as they are.
    guidance_zh: str | None = None
    guidance_en: str | None = None
    numbers: str | None = None


@dataclass(frozen=True)
class TierData:
    """What an admin sets on a tier besides its code; limits in (working) minutes."""

    name_zh: str
    name_en: str
    accept_minutes: int
    resolve_minutes: int
    working_days: bool
    rank: int


def category_record(category: Category) -> dict[str, Any]:
    """A category as the audit log keeps it: codes rather than ids, so it reads on its own."""
    return {
        "code": category.code, "name_zh": category.name_zh, "name_en": category.name_en,
        "group": category.parent.code if category.parent is not None else None,
        "tier": category.tier.code if category.tier is not None else None,
        "public": category.public, "active": category.active, "keywords": category.keywords,
        "emergency_guidance_zh": category.emergency_guidance_zh,
        "emergency_guidance_en": category.emergency_guidance_en,
        "emergency_numbers": category.emergency_numbers or [],
    }


def check_emergency(data: CategoryData, errors: dict[str, Any]) -> tuple[str, str, list[dict[str, str]]] | None:
    """The emergency guidance as stored, or None when `data` leaves it as it is."""
    if data.guidance_zh is None and data.guidance_en is None and data.numbers is None:
        return None
    try:
        numbers = emergency.parse_numbers(data.numbers)
    except ValidationFailed as exc:
        errors.update(exc.errors)
        numbers = []
    return emergency.clean_guidance(data.guidance_zh), emergency.clean_guidance(data.guidance_en), numbers


TIER_RECORD = ("code", "name_zh", "name_en", "accept_minutes", "resolve_minutes", "working_days", "rank")


def tier_record(tier: SlaTier) -> dict[str, Any]:
    """A tier as the audit log keeps it."""
    return audit.snapshot(tier, TIER_RECORD)


# --- categories ----------------------------------------------------------------


def clean_keywords(value: str | None) -> str:
    """The keywords as stored (space-separated, normalised, once each); raises ValidationFailed."""
    words = split_keywords(value)
    if len(words) > MAX_WORDS:
        raise ValidationFailed({"keywords": _l("At most %(n)d keywords.", n=MAX_WORDS)})
    long = [w for w in words if len(w) > MAX_WORD]
    if long:
        raise ValidationFailed({"keywords": _l("Keywords may be at most %(n)d characters: %(words)s",
                                              n=MAX_WORD, words=" · ".join(long))})
    return " ".join(words)


def clean_triggers(value: str | None) -> str:
    """The trigger words as stored (one per line, normalised, once each); raises ValidationFailed."""
    lines = split_triggers(value)
    if len(lines) > MAX_WORDS:
        raise ValidationFailed({"trigger_words": _l("At most %(n)d lines.", n=MAX_WORDS)})
    long = [line for line in lines if len(line) > MAX_TRIGGER]
    if long:
        raise ValidationFailed({"trigger_words": _l("Lines may be at most %(n)d characters: %(words)s",
                                                   n=MAX_TRIGGER, words=" · ".join(long))})
    return "\n".join(lines)


def check_names(data: CategoryData | TierData, errors: dict[str, Any]) -> tuple[str, str]:
    """Both names, trimmed; the Chinese one is required."""
    name_zh, name_en = " ".join(data.name_zh.split()), " ".join(data.name_en.split())
    if not name_zh:
        errors["name_zh"] = _l("Enter the Chinese name.")
    elif len(name_zh) > MAX_NAME:
        errors["name_zh"] = _l("The name may be at most %(n)d characters.", n=MAX_NAME)
    if len(name_en) > MAX_NAME:
        errors["name_en"] = _l("The name may be at most %(n)d characters.", n=MAX_NAME)
    return name_zh, name_en


def check_category(data: CategoryData, errors: dict[str, Any], category: Category | None = None
                   ) -> tuple[str, str, Category | None, SlaTier | None]:
    """Validate `data` for a new category (`category` None) or a change of `category`."""
    name_zh, name_en = check_names(data, errors)
    parent = None
    is_group = category.parent_id is None if category is not None else data.parent_id is None
    if category is not None and (data.parent_id is None) != is_group:
        errors["parent_id"] = _l("A group stays a group and a category stays in a group; "
                                 "create a new one instead.")
    elif data.parent_id is not None:
        parent = db.session.get(Category, data.parent_id)
        if parent is None or parent.parent_id is not None:
            errors["parent_id"] = _l("Choose a group from the list.")
            parent = None
    tier = db.session.get(SlaTier, data.tier_id) if data.tier_id is not None else None
    if data.tier_id is not None and tier is None:
        errors["tier_id"] = _l("Choose a time-limit tier from the list.")
    elif tier is None and is_group:
        errors["tier_id"] = _l("A group needs a time-limit tier: its categories without one use it.")
    if name_zh and "name_zh" not in errors and "parent_id" not in errors:
        same = select(Category.id).where(func.lower(Category.name_zh) == name_zh.lower(),
                                         Category.parent_id.is_(None) if parent is None
                                         else Category.parent_id == parent.id)
        if category is not None:
            same = same.where(Category.id != category.id)
        if db.session.scalar(same.limit(1)) is not None:
            errors["name_zh"] = _l("This group already has a category of this name.") if parent is not None \
                else _l("There is already a group of this name.")
    return name_zh, name_en, parent, tier


def check_code(code: str, parent: Category | None, errors: dict[str, Any]) -> str:
    """A new category's code: a group's one ASCII word, a category's "group.name"; unique."""
    code = code.strip()
    if parent is None:
        if not GROUP_CODE.fullmatch(code):
            errors["code"] = _l("A group's code is lower-case letters, digits and _, "
                                "starting with a letter, e.g. pets.")
            return code
    else:
        found = CATEGORY_CODE.fullmatch(code)
        if found is None or found.group(1) != parent.code:
            errors["code"] = _l("A category's code is its group's code, a dot and a lower-case name "
                                "(letters, digits, _), e.g. %(example)s.", example=f"{parent.code}.other")
            return code
    if db.session.scalar(select(Category.id).where(Category.code == code)) is not None:
        errors["code"] = _l("The code %(code)s is taken; codes are never reused.", code=code)
    return code


def create_category(actor: User | None, code: str, data: CategoryData, keywords: str, now: datetime,
                    via: str = "web") -> Category:
    """A new category (or, without a parent, a new group), active; raises ValidationFailed."""
    errors: dict[str, Any] = {}
    name_zh, name_en, parent, tier = check_category(data, errors)
    if "parent_id" not in errors:
        code = check_code(code, parent, errors)
    try:
        words = clean_keywords(keywords)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    guidance = check_emergency(data, errors) or ("", "", [])
    if errors:
        raise ValidationFailed(errors)
    last = db.session.scalar(select(func.max(Category.sort_order)).where(
        Category.parent_id.is_(None) if parent is None else Category.parent_id == parent.id))
    category = Category(code=code, name_zh=name_zh, name_en=name_en, parent=parent, tier=tier,
                        keywords=words, public=data.public, active=True, sort_order=(last or 0) + 1,
                        hint_zh="", hint_en="", extra_fields=[], emergency_guidance_zh=guidance[0],
                        emergency_guidance_en=guidance[1], emergency_numbers=guidance[2])
    db.session.add(category)
    db.session.flush()
    audit.record(actor, "category.create", "category", category.id, category.name_zh, None,
                 category_record(category), now, via)
    return category


def change_verb(before: dict[str, Any], after: dict[str, Any]) -> str:
    """"rename" when only the names changed, "move" when only the group did, else "update"."""
    changed = {name for name in after if before.get(name) != after[name]}
    if changed <= {"name_zh", "name_en"}:
        return "rename"
    if changed == {"group"}:
        return "move"
    return "update"


def update_category(actor: User | None, category: Category, data: CategoryData, now: datetime,
                    via: str = "web") -> bool:
    """Rename, move to another group, set the tier, the public flag and the emergency
    guidance; False when nothing changed."""
    errors: dict[str, Any] = {}
    name_zh, name_en, parent, tier = check_category(data, errors, category)
    guidance = check_emergency(data, errors)
    if errors:
        raise ValidationFailed(errors)
    before = category_record(category)
    category.name_zh, category.name_en = name_zh, name_en
    if parent is not None and parent.id != category.parent_id:
        last = db.session.scalar(select(func.max(Category.sort_order)).where(Category.parent_id == parent.id))
        category.parent, category.sort_order = parent, (last or 0) + 1
    category.tier, category.public = tier, data.public
    if guidance is not None:
        category.emergency_guidance_zh, category.emergency_guidance_en, category.emergency_numbers = guidance
    after = category_record(category)
    if after == before:
        return False
    audit.record(actor, f"category.{change_verb(before, after)}", "category", category.id, category.name_zh,
                 before, after, now, via)
    return True


def set_category_active(actor: User | None, category: Category, active: bool, now: datetime,
                        via: str = "web") -> bool:
    """Deactivate or reactivate a category (a group: with all its categories); False if already so."""
    if category.active is active:
        return False
    before = category_record(category)
    category.active = active
    audit.record(actor, "category.reactivate" if active else "category.deactivate", "category", category.id,
                 category.name_zh, before, category_record(category), now, via)
    return True


# --- tiers ---------------------------------------------------------------------


def check_tier(data: TierData, errors: dict[str, Any], tier: SlaTier | None = None) -> tuple[str, str]:
    """Validate a tier's names, limits and rank."""
    name_zh, name_en = check_names(data, errors)
    if name_zh and "name_zh" not in errors:
        same = select(SlaTier.id).where(SlaTier.name_zh == name_zh)
        if tier is not None:
            same = same.where(SlaTier.id != tier.id)
        if db.session.scalar(same.limit(1)) is not None:
            errors["name_zh"] = _l("There is already a tier of this name.")
    for name, minutes in (("accept", data.accept_minutes), ("resolve", data.resolve_minutes)):
        if minutes <= 0:
            errors[name] = _l("A time limit must be more than zero.")
        elif minutes > MAX_MINUTES:
            errors[name] = _l("A time limit may be at most a year.")
    if "accept" not in errors and "resolve" not in errors and data.resolve_minutes < data.accept_minutes:
        errors["resolve"] = _l("Resolve-within cannot be shorter than accept-within.")
    if not 0 <= data.rank <= MAX_RANK:
        errors["rank"] = _l("The urgency order is a number from 0 to %(n)d.", n=MAX_RANK)
    return name_zh, name_en


def create_tier(actor: User | None, code: str, data: TierData, now: datetime, via: str = "web") -> SlaTier:
    """A new time-limit tier; raises ValidationFailed."""
    errors: dict[str, Any] = {}
    code = code.strip()
    if not TIER_CODE.fullmatch(code):
        errors["code"] = _l("A tier's code is lower-case letters, digits and _, starting with a letter, "
                            "e.g. night_repair.")
    elif db.session.scalar(select(SlaTier.id).where(SlaTier.code == code)) is not None:
        errors["code"] = _l("The code %(code)s is taken; codes are never reused.", code=code)
    name_zh, name_en = check_tier(data, errors)
    if errors:
        raise ValidationFailed(errors)
    tier = SlaTier(code=code, name_zh=name_zh, name_en=name_en, accept_minutes=data.accept_minutes,
                   resolve_minutes=data.resolve_minutes, working_days=data.working_days, rank=data.rank,
                   trigger_words="")
    db.session.add(tier)
    db.session.flush()
    audit.record(actor, "tier.create", "tier", tier.id, tier.name_zh, None, tier_record(tier), now, via)
    return tier


def update_tier(actor: User | None, tier: SlaTier, data: TierData, now: datetime, via: str = "web") -> bool:
    """Change a tier's names, limits, kind of time and urgency order; False when nothing changed.

    Deadlines already on tickets stay as they are (see the module's docstring).
    """
    errors: dict[str, Any] = {}
    name_zh, name_en = check_tier(data, errors, tier)
    if errors:
        raise ValidationFailed(errors)
    before = tier_record(tier)
    tier.name_zh, tier.name_en = name_zh, name_en
    tier.accept_minutes, tier.resolve_minutes = data.accept_minutes, data.resolve_minutes
    tier.working_days, tier.rank = data.working_days, data.rank
    after = tier_record(tier)
    if after == before:
        return False
    audit.record(actor, "tier.update", "tier", tier.id, tier.name_zh, before, after, now, via)
    return True
