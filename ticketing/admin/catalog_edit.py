"""Administration → the catalogue's structure (admins): create, rename, move, re-tier,
publish, deactivate and reactivate categories and groups; list, create and change
time-limit tiers. The rules are in services/catalog_admin.py; the keywords and
trigger words stay on the categories page (admin/catalog.py).
"""
from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select
from werkzeug.wrappers import Response
from wtforms import SelectChoice

from ticketing.admin.catalog_forms import CategoryForm, TierForm, limit_text
from ticketing.admin.views import bp
from ticketing.extensions import db
from ticketing.forms import optional_id, show_errors
from ticketing.labels import localized_name
from ticketing.models import Category, Role, SlaTier, Ticket
from ticketing.services import catalog_admin, classify_store
from ticketing.services.errors import ValidationFailed
from ticketing.web import now, roles_required, staff_user


def done(message: str, target: str) -> Response:
    """Commit, make this process's classifier re-read the catalogue, and go to `target`."""
    db.session.commit()
    classify_store.invalidate()
    flash(message, "success")
    return redirect(target, 303)


def category_page(form: CategoryForm, category: Category | None, status: int = 200) -> tuple[str, int]:
    """The page of a new or an existing category."""
    tickets = db.session.scalar(select(func.count(Ticket.id)).where(Ticket.category_id == category.id)) \
        if category is not None else 0
    return render_template("admin/category_form.html", form=form, category=category, tickets=tickets), status


def back_to(category: Category) -> str:
    """The categories page at the category's entry."""
    return url_for("admin.categories", _anchor=f"category-{category.id}" if category.parent_id is not None
                   else f"group-{category.id}")


@bp.route("/categories/new", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def new_category() -> Response | tuple[str, int]:
    """Create a category in a group, or a new group."""
    form = CategoryForm()
    form.load_choices(None)
    if not form.is_submitted():
        form.parent_id.data = optional_id(request.args.get("group"))
        return category_page(form, None)
    if form.validate():
        try:
            category = catalog_admin.create_category(staff_user(), form.code.data or "", form.category_data(),
                                                     form.keywords.data or "", now())
        except ValidationFailed as exc:
            db.session.rollback()
            show_errors(form, exc.errors)
        else:
            return done(_("“%(name)s” created.", name=localized_name(category)), back_to(category))
    return category_page(form, None, 400)


@bp.route("/categories/<int:category_id>/edit", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def edit_category(category_id: int) -> Response | tuple[str, int]:
    """Rename a category, move it to another group, set its tier and public flag."""
    category = db.get_or_404(Category, category_id)
    form = CategoryForm()
    form.load_choices(category)
    if category.parent_id is None:
        form.parent_id.choices = [SelectChoice("", "")]  # a group has no group; the field is not shown
    if not form.is_submitted():
        form.fill_from(category)
        return category_page(form, category)
    if form.validate():
        try:
            changed = catalog_admin.update_category(staff_user(), category, form.category_data(), now())
        except ValidationFailed as exc:
            db.session.rollback()
            show_errors(form, exc.errors)
        else:
            message = _("“%(name)s” saved.", name=localized_name(category)) if changed else _("Nothing changed.")
            return done(message, back_to(category))
    return category_page(form, db.get_or_404(Category, category_id), 400)


@bp.post("/categories/<int:category_id>/deactivate")
@roles_required(Role.ADMIN)
def deactivate_category(category_id: int) -> Response:
    """Stop offering a category (a group: all its categories) on every intake form."""
    category = db.get_or_404(Category, category_id)
    catalog_admin.set_category_active(staff_user(), category, False, now())
    return done(_("“%(name)s” is no longer offered; its tickets keep it.", name=localized_name(category)),
                back_to(category))


@bp.post("/categories/<int:category_id>/reactivate")
@roles_required(Role.ADMIN)
def reactivate_category(category_id: int) -> Response:
    """Offer a deactivated category again."""
    category = db.get_or_404(Category, category_id)
    catalog_admin.set_category_active(staff_user(), category, True, now())
    return done(_("“%(name)s” is offered again.", name=localized_name(category)), back_to(category))


# --- tiers ---------------------------------------------------------------------


def tier_page(form: TierForm, tier: SlaTier | None, status: int = 200) -> tuple[str, int]:
    """The page of a new or an existing tier."""
    return render_template("admin/tier_form.html", form=form, tier=tier), status


def tier_users() -> dict[int, int]:
    """How many categories name each tier."""
    rows = db.session.execute(select(Category.tier_id, func.count()).where(Category.tier_id.is_not(None))
                              .group_by(Category.tier_id))
    return {tier_id: count for tier_id, count in rows}


@bp.get("/tiers")
@roles_required(Role.ADMIN)
def tier_list() -> str:
    """The time-limit tiers with their limits."""
    tiers = db.session.scalars(select(SlaTier).order_by(SlaTier.rank, SlaTier.id)).all()
    return render_template("admin/tiers.html", tiers=tiers, users=tier_users(), limit_text=limit_text)


def save_tier(form: TierForm, tier: SlaTier | None) -> Response | tuple[str, int]:
    """Create (`tier` None) or change a tier from the posted form."""
    errors: dict[str, Any] = {}
    if form.validate():
        data = form.tier_data(errors)
        try:
            if tier is None:
                tier = catalog_admin.create_tier(staff_user(), form.code.data or "", data, now())
                changed = True
            else:
                changed = catalog_admin.update_tier(staff_user(), tier, data, now())
        except ValidationFailed as exc:
            db.session.rollback()
            errors = {**exc.errors, **errors}  # "not a number" says more than "not above zero"
        else:
            if not errors:
                message = _("Time limits of “%(name)s” saved.", name=localized_name(tier)) if changed \
                    else _("Nothing changed.")
                return done(message, url_for("admin.tier_list", _anchor=f"tier-{tier.id}"))
        db.session.rollback()
        show_errors(form, errors)
    return tier_page(form, db.session.get(SlaTier, tier.id) if tier is not None and tier.id else None, 400)


@bp.route("/tiers/new", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def new_tier() -> Response | tuple[str, int]:
    """Create a time-limit tier."""
    form = TierForm()
    if not form.is_submitted():
        highest = db.session.scalar(select(func.max(SlaTier.rank)))
        form.rank.data = str((highest or 0) + 1)
        form.counting.data = "workdays"
        form.accept_unit.data = form.resolve_unit.data = "days"
        return tier_page(form, None)
    return save_tier(form, None)


@bp.route("/tiers/<int:tier_id>/edit", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def edit_tier(tier_id: int) -> Response | tuple[str, int]:
    """Change a tier's names and limits; deadlines already set stay."""
    tier = db.get_or_404(SlaTier, tier_id)
    form = TierForm()
    if not form.is_submitted():
        form.fill_from(tier)
        return tier_page(form, tier)
    return save_tier(form, tier)
