"""Administration → API keys: issue and revoke the keys of Open311 client apps and staff apps.

A staff-app key acts as one staff account. A new key is shown once, on the page that
answers its creation (never in a flash message: those travel in the session
cookie); only its hash is kept (services/apikeys.py). Admins only.
"""
from __future__ import annotations

from typing import Any

from flask import abort, flash, make_response, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from werkzeug.wrappers import Response
from wtforms import SelectChoice, SelectField, StringField
from wtforms.validators import Optional

from ticketing.admin.views import bp
from ticketing.extensions import db
from ticketing.forms import id_select, with_blank
from ticketing.labels import ROLE_LABELS, label
from ticketing.models import ApiKey, KeyKind, Role, User
from ticketing.services import apikeys
from ticketing.web import now, roles_required, staff_user

KIND_LABELS: dict[str, Any] = {
    KeyKind.OPEN311: _l("Open311 client app"),
    KeyKind.STAFF: _l("Staff app (acts as a staff account)"),
}


class KeyForm(FlaskForm):
    """A new key: what it opens, a name to tell it apart, and for a staff app its account."""

    kind = SelectField(_l("Kind"), choices=[SelectChoice(k, v) for k, v in KIND_LABELS.items()],
                       invalid_choice_message=_l("Choose what the key is for."))
    name = StringField(_l("Name"), validators=[Optional()])
    user_id = id_select(_l("Staff account"), _l("Choose a staff account from the list."))

    def load_choices(self) -> None:
        """Fill the account list with the active staff accounts."""
        users = db.session.scalars(select(User).where(User.active.is_(True)).order_by(User.role, User.username))
        self.user_id.choices = with_blank(
            [(u.id, f"{u.display_name} ({u.username}, {label(ROLE_LABELS, u.role)})") for u in users],
            _("Choose…"))

    def check(self) -> User | None:
        """Mark the fields that are wrong; the staff account of a staff key. Call after validate()."""
        name = " ".join((self.name.data or "").split())
        if not name:
            self.name.errors = [_("Give the key a name, e.g. the app and who runs it.")]
        elif len(name) > apikeys.MAX_NAME:
            self.name.errors = [_("The name may be at most %(n)d characters.", n=apikeys.MAX_NAME)]
        user = None
        if self.kind.data == KeyKind.STAFF:
            user = db.session.get(User, self.user_id.data) if self.user_id.data else None
            if user is None or not user.active:
                self.user_id.errors = [*self.user_id.errors, _("Choose the staff account the key acts as.")]
        return user


def fresh_form() -> KeyForm:
    """An empty form with its lists filled."""
    form = KeyForm(formdata=None)
    form.load_choices()
    return form


def keys_page(form: KeyForm, new_key: str | None = None, issued: ApiKey | None = None) -> str:
    """The list of keys with the form; right after issuing, the new key once."""
    keys = db.session.scalars(
        select(ApiKey).options(joinedload(ApiKey.user))
        .order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc(), ApiKey.id.desc())
    ).all()
    return render_template("admin/keys.html", form=form, keys=keys, kinds=KIND_LABELS,
                           new_key=new_key, issued=issued)


@bp.get("/keys")
@roles_required(Role.ADMIN)
def key_list() -> str:
    """Every key, active ones first, and the form to issue one."""
    return keys_page(fresh_form())


@bp.post("/keys")
@roles_required(Role.ADMIN)
def create_key() -> Response | tuple[str, int]:
    """Issue a key and show it, this once."""
    form = KeyForm()
    form.load_choices()
    valid = form.validate()
    user = form.check()
    if not valid or form.errors:
        return keys_page(form), 400
    row, key = apikeys.issue(KeyKind(form.kind.data), form.name.data or "", now(), user=user,
                             created_by=staff_user())
    response = make_response(keys_page(fresh_form(), key, row), 201)
    # The page holds the only copy of the key: keep it out of caches.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/keys/<int:key_id>/revoke")
@roles_required(Role.ADMIN)
def revoke_key(key_id: int) -> Response:
    """Revoke a key: the app is refused from now on; the row stays for the record."""
    row = db.session.get(ApiKey, key_id)
    if row is None:
        abort(404)
    apikeys.revoke(row, now(), actor=staff_user())
    flash(_("Key \"%(name)s\" revoked.", name=row.name), "success")
    return redirect(url_for("admin.key_list"), 303)
