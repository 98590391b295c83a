"""Administration → accounts: list and search, create, edit, deactivate, reactivate, reset.

Admins manage every account, supervisors the dispatchers and handlers in their scope
(services/scope.py `managed_people`); anyone else, and anyone out of scope, is "not
found". A one-time password is shown once, on the page that answers its creation
(never in a flash message: those travel in the session cookie), and never stored.
"""
from __future__ import annotations

from flask import abort, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy.orm import joinedload, selectinload
from werkzeug.wrappers import Response

from ticketing.admin.account_forms import AccountForm, DeactivateForm
from ticketing.admin.views import ROSTER_ROLES, bp
from ticketing.extensions import db
from ticketing.models import Grid, User
from ticketing.services import accounts
from ticketing.services.errors import ServiceError, ValidationFailed
from ticketing.web import calendar, now, roles_required, staff_user

ACCOUNTS_PER_PAGE = 50
STATUS_FILTERS = ("active", "inactive", "all")


def account_or_404(person_id: int) -> User:
    """The account `person_id` if the signed-in user manages it; 404 otherwise."""
    person = accounts.managed_person(staff_user(), person_id)
    if person is None:
        abort(404)
    return person


def once(html: str, status: int) -> Response:
    """A page that holds the only copy of a one-time password: kept out of every cache."""
    response = make_response(html, status)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/accounts")
@roles_required(*ROSTER_ROLES)
def account_list() -> str:
    """The accounts the user manages, searchable by name, username or phone."""
    text = request.args.get("q", "").strip()[:100]
    status = request.args.get("status", "active")
    status = status if status in STATUS_FILTERS else "active"
    page = db.paginate(
        accounts.search(staff_user(), text, status)
        .options(selectinload(User.grids).joinedload(Grid.community), joinedload(User.team),
                 joinedload(User.company), joinedload(User.community), joinedload(User.street)),
        per_page=ACCOUNTS_PER_PAGE, error_out=False,
    )
    return render_template("admin/accounts.html", page=page, q=text, status=status,
                           held=accounts.open_tickets_held([p.id for p in page.items]))


@bp.route("/accounts/new", methods=["GET", "POST"])
@roles_required(*ROSTER_ROLES)
def new_account() -> str | Response | tuple[str, int]:
    """Create an account with a one-time password, shown once."""
    actor = staff_user()
    form = AccountForm()
    form.load_choices(actor)
    if not form.is_submitted():
        return render_template("admin/account_form.html", form=form, person=None)
    if form.validate():
        try:
            person, one_time = accounts.create_account(actor, form.username.data or "",
                                                       form.account_data(), now())
        except ValidationFailed as exc:
            db.session.rollback()
            form.add_errors(exc.errors)
            status = exc.status
        else:
            db.session.commit()
            return once(render_template("admin/account_password.html", person=person,
                                        one_time=one_time, created=True), 201)
    else:
        status = 400
    return render_template("admin/account_form.html", form=form, person=None), status


@bp.route("/accounts/<int:person_id>", methods=["GET", "POST"])
@roles_required(*ROSTER_ROLES)
def edit_account(person_id: int) -> str | Response | tuple[str, int]:
    """An account: change its name, phone, role and scope; the buttons for the rest."""
    actor, person = staff_user(), account_or_404(person_id)
    form = AccountForm()
    form.load_choices(actor)
    if not form.is_submitted():
        form.fill_from(person)
        return account_page(person, form, DeactivateForm(formdata=None))
    status = 400
    if form.validate():
        try:
            accounts.update_account(actor, person, form.account_data(), now())
        except ValidationFailed as exc:
            db.session.rollback()
            form.add_errors(exc.errors)
            status = exc.status
            person = account_or_404(person_id)
        else:
            db.session.commit()
            flash(_("Account of %(name)s saved.", name=person.display_name), "success")
            return redirect(url_for("admin.edit_account", person_id=person.id), 303)
    return account_page(person, form, DeactivateForm(formdata=None)), status


def account_page(person: User, form: AccountForm, deactivate_form: DeactivateForm) -> str:
    """Render an account's page with its two forms."""
    form.username.data = person.username
    return render_template("admin/account_form.html", form=form, person=person, deactivate_form=deactivate_form,
                           held=accounts.open_tickets_held([person.id])[person.id])


@bp.post("/accounts/<int:person_id>/deactivate")
@roles_required(*ROSTER_ROLES)
def deactivate_account(person_id: int) -> str | Response | tuple[str, int]:
    """Deactivate: signed out at once, keys refused, open tickets back to routing."""
    actor, person = staff_user(), account_or_404(person_id)
    form = DeactivateForm()
    if form.validate():
        try:
            released = accounts.deactivate(actor, person, form.reason.data or "", now(), calendar())
        except ServiceError as exc:
            db.session.rollback()
            form.reason.errors = [*form.reason.errors, exc.message]
            status = exc.status
            person = account_or_404(person_id)
        else:
            db.session.commit()
            flash(_("Account of %(name)s deactivated; %(count)d open tickets went back to routing.",
                    name=person.display_name, count=len(released)), "success")
            return redirect(url_for("admin.edit_account", person_id=person.id), 303)
    else:
        status = 400
    details = AccountForm(formdata=None)
    details.load_choices(actor)
    details.fill_from(person)
    return account_page(person, details, form), status


@bp.post("/accounts/<int:person_id>/reactivate")
@roles_required(*ROSTER_ROLES)
def reactivate_account(person_id: int) -> Response:
    """Let a deactivated account sign in again."""
    person = account_or_404(person_id)
    try:
        accounts.reactivate(staff_user(), person, now())
    except ServiceError as exc:
        db.session.rollback()
        flash(str(exc.message), "error")
    else:
        db.session.commit()
        flash(_("Account of %(name)s reactivated.", name=person.display_name), "success")
    return redirect(url_for("admin.edit_account", person_id=person.id), 303)


@bp.post("/accounts/<int:person_id>/reset-password")
@roles_required(*ROSTER_ROLES)
def reset_account_password(person_id: int) -> Response:
    """Give the person a one-time password, shown once; they choose their own at sign-in."""
    person = account_or_404(person_id)
    try:
        one_time = accounts.reset_password(staff_user(), person, now())
    except ServiceError as exc:
        db.session.rollback()
        flash(str(exc.message), "error")
        return redirect(url_for("admin.edit_account", person_id=person.id), 303)
    db.session.commit()
    return once(render_template("admin/account_password.html", person=person, one_time=one_time,
                                created=False), 200)
