"""Staff sign-in and sign-out. Residents need no account."""
from __future__ import annotations

import math

from flask import (
    Blueprint,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from ticketing.auth.forms import ChangePasswordForm, LoginForm
from ticketing.extensions import db
from ticketing.models import Role, User
from ticketing.redirects import safe_next
from ticketing.services import accounts, passwords, throttle
from ticketing.services.errors import ValidationFailed
from ticketing.web import now, staff_user

bp = Blueprint("auth", __name__)

# What a person who must change a one-time password may still reach.
OPEN_WHILE_PASSWORD_MUST_CHANGE = frozenset({"auth.change_password", "auth.logout", "static", "set_language"})


def home_for(user: User) -> str:
    """Where a user lands after signing in."""
    if user.is_handler:
        return url_for("workbench.index")
    if user.role in (Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN):
        return url_for("console.queue")
    return url_for("resident.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int]:
    """Show the sign-in form; sign in on a valid username and password."""
    # Checked first: a malformed return address is a 400 before anything else happens.
    next_page = safe_next(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form), 400 if form.errors else 200
    username, address, at = form.username.data.strip(), request.remote_addr, now()
    wait = throttle.login_wait(username, address, at)
    if wait:
        return too_many_failures(form, wait)
    user = db.session.scalar(select(User).where(User.username == username))
    if user is not None and user.active and user.check_password(form.password.data):
        throttle.forget_login_failures(username, address)
        login_user(user, remember=form.remember.data)
        if user.must_change_password:
            return redirect(url_for("auth.change_password", next=next_page))
        return redirect(next_page or home_for(user))
    throttle.record_login_failure(username, address, at)
    form.password.errors.append(_("Wrong username or password."))
    return render_template("auth/login.html", form=form), 401


def too_many_failures(form: LoginForm, wait: int) -> Response:
    """429: the form again, how long to wait, and Retry-After."""
    minutes = max(1, math.ceil(wait / 60))
    form.password.errors.append(ngettext(
        "Too many failed sign-ins. Please try again in %(num)d minute.",
        "Too many failed sign-ins. Please try again in %(num)d minutes.", minutes,
    ))
    response = make_response(render_template("auth/login.html", form=form), 429)
    response.headers["Retry-After"] = str(wait)
    return response


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Response:
    """Sign out and go back to the start page."""
    logout_user()
    return redirect(url_for("resident.index"))


@bp.before_app_request
def password_must_change() -> Response | None:
    """A one-time password opens nothing but the page to choose one's own."""
    if (current_user.is_authenticated and current_user.must_change_password
            and request.endpoint not in OPEN_WHILE_PASSWORD_MUST_CHANGE):
        back = safe_next(request.full_path.rstrip("?")) if request.method == "GET" else None
        return redirect(url_for("auth.change_password", next=back), 303)
    return None


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password() -> str | Response | tuple[str, int]:
    """Choose one's own password; other sessions of the account end, this one continues."""
    next_page = safe_next(request.args.get("next"))
    user = staff_user()
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            accounts.change_own_password(user, form.current.data, form.new.data, now())
        except ValidationFailed as exc:
            db.session.rollback()
            for name, message in exc.errors.items():
                form[name].errors = [*form[name].errors, message]
        else:
            db.session.commit()
            # The session (and a remember-me cookie, if the device had one) carries the
            # new version (User.get_id); every other session of the account ends.
            had_cookie = request.cookies.get(current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token"))
            login_user(user, remember=had_cookie is not None)
            flash(_("Your password was changed."), "success")
            return redirect(next_page or home_for(user), 303)
    return render_template("auth/password.html", form=form, user=user,
                           min_length=passwords.MIN_LENGTH), 400 if form.errors else 200
