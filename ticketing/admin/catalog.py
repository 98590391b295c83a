"""The catalogue's words (admins): each category's keywords, whether it is offered and
whether the public Open311 list shows its tickets, each tier's trigger words, and
keywords that dispatchers' corrections suggest.

Saving normalises the words as the classifier reads them (traditional characters
to simplified, full-width to half-width, Latin lower-case) and drops repeats. A
saved edit applies to the next ticket in this process and within seconds in the
others (services/classify_store.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response
from wtforms import BooleanField, StringField, TextAreaField

from ticketing.admin.views import bp
from ticketing.extensions import db
from ticketing.labels import localized_name
from ticketing.models import Category, ClassificationCorrection, Role, SlaTier
from ticketing.services import audit, classify_store
from ticketing.services.catalog_admin import clean_keywords, clean_triggers
from ticketing.services.classify import split_keywords
from ticketing.services.errors import ValidationFailed
from ticketing.web import now, roles_required, staff_user


class KeywordsForm(FlaskForm):
    """A category's keywords, whether residents and the classifier are offered it, and
    whether its tickets are public in Open311."""

    class Meta:
        csrf = False  # CSRFProtect checks every POST; the page has a form per category

    keywords = TextAreaField(_l("Keywords"))
    active = BooleanField(_l("Active"))
    public = BooleanField(_l("Public in Open311"))


class TriggersForm(FlaskForm):
    """A tier's trigger words, one per line."""

    class Meta:
        csrf = False

    trigger_words = TextAreaField(_l("Trigger words"))


class AdoptForm(FlaskForm):
    """One suggested keyword to add."""

    class Meta:
        csrf = False

    word = StringField(_l("Keyword"))


@dataclass(frozen=True)
class CategoryRow:
    """A category on the page, with what corrections say about it."""

    category: Category
    corrections: int
    suggestions: list[tuple[str, int]]


def adopt_keyword(category: Category, word: str) -> bool:
    """Add one keyword to a category; False when it was already there. The caller commits."""
    words = split_keywords(category.keywords)
    new = split_keywords(word)
    if len(new) != 1:
        raise ValidationFailed({"keywords": _("Give one keyword.")})
    if new[0] in words:
        return False
    category.keywords = clean_keywords(" ".join([*words, new[0]]))
    return True


def correction_counts() -> dict[int, int]:
    """How many corrections chose each category."""
    rows = db.session.execute(
        select(ClassificationCorrection.chosen_category_id, func.count())
        .group_by(ClassificationCorrection.chosen_category_id)
    )
    return {category_id: count for category_id, count in rows}


def catalogue() -> list[tuple[Category, list[CategoryRow]]]:
    """Every top-level category (active or not) with its children, in catalogue order."""
    counts = correction_counts()
    groups = db.session.scalars(
        select(Category).where(Category.parent_id.is_(None))
        .options(selectinload(Category.children)).order_by(Category.sort_order, Category.id)
    ).all()

    def row(category: Category) -> CategoryRow:
        return CategoryRow(category, counts.get(category.id, 0),
                           classify_store.suggested_keywords(category.id, category.keywords))

    return [(group, [row(child) for child in group.children] or [row(group)]) for group in groups]


def page(status: int = 200, errors: dict[tuple[str, int], Any] | None = None) -> tuple[str, int]:
    """The catalogue page; `errors` maps ("category" | "tier", id) to the message to show there."""
    tiers = db.session.scalars(select(SlaTier).order_by(SlaTier.rank, SlaTier.id)).all()
    return render_template("admin/categories.html", groups=catalogue(), tiers=tiers,
                           errors=errors or {}), status


def saved(message: str, anchor: str) -> Response:
    """Commit, make this process re-read the words, and go back to the page."""
    db.session.commit()
    classify_store.invalidate()
    flash(message, "success")
    return redirect(url_for("admin.categories", _anchor=anchor), 303)


@bp.route("/categories")
@roles_required(Role.ADMIN)
def categories() -> tuple[str, int]:
    """The categories with their keywords, and the tiers with their trigger words."""
    return page()


@bp.route("/categories/<int:category_id>", methods=["POST"])
@roles_required(Role.ADMIN)
def save_category(category_id: int) -> Response | tuple[str, int]:
    """Save a category's keywords, active flag and Open311 public flag."""
    category = db.get_or_404(Category, category_id)
    before = audit.snapshot(category, audit.CATEGORY_FIELDS)
    form = KeywordsForm()
    try:
        category.keywords = clean_keywords(form.keywords.data)
    except ValidationFailed as exc:
        db.session.rollback()
        return page(400, {("category", category_id): exc.errors["keywords"]})
    category.active = bool(form.active.data)
    category.public = bool(form.public.data)
    audit.record(staff_user(), "category.update", "category", category.id, category.name_zh, before,
                 audit.snapshot(category, audit.CATEGORY_FIELDS), now())
    return saved(_("Keywords of “%(name)s” saved.", name=localized_name(category)), f"category-{category.id}")


@bp.route("/categories/<int:category_id>/adopt", methods=["POST"])
@roles_required(Role.ADMIN)
def adopt(category_id: int) -> Response | tuple[str, int]:
    """Add a suggested keyword to a category in one click."""
    category = db.get_or_404(Category, category_id)
    before = audit.snapshot(category, ("keywords",))
    form = AdoptForm()
    try:
        added = adopt_keyword(category, form.word.data or "")
    except ValidationFailed as exc:
        db.session.rollback()
        return page(400, {("category", category_id): exc.errors["keywords"]})
    if not added:
        flash(_("“%(word)s” is already a keyword.", word=form.word.data), "info")
        return redirect(url_for("admin.categories", _anchor=f"category-{category.id}"), 303)
    audit.record(staff_user(), "category.adopt", "category", category.id, category.name_zh, before,
                 audit.snapshot(category, ("keywords",)), now())
    return saved(_("“%(word)s” added to the keywords of “%(name)s”.", word=split_keywords(form.word.data)[0],
                   name=localized_name(category)), f"category-{category.id}")


@bp.route("/tiers/<int:tier_id>/triggers", methods=["POST"])
@roles_required(Role.ADMIN)
def save_triggers(tier_id: int) -> Response | tuple[str, int]:
    """Save a tier's trigger words."""
    tier = db.session.get(SlaTier, tier_id)
    if tier is None:
        abort(404)
    before = audit.snapshot(tier, audit.TIER_FIELDS)
    form = TriggersForm()
    try:
        tier.trigger_words = clean_triggers(form.trigger_words.data)
    except ValidationFailed as exc:
        db.session.rollback()
        return page(400, {("tier", tier_id): exc.errors["trigger_words"]})
    audit.record(staff_user(), "tier.update", "tier", tier.id, tier.name_zh, before,
                 audit.snapshot(tier, audit.TIER_FIELDS), now())
    return saved(_("Trigger words of “%(name)s” saved.", name=localized_name(tier)), f"tier-{tier.id}")
