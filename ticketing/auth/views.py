"""Staff sign-in and sign-out. Residents need no account."""
from __future__ import annotations

import math

from flask import Blueprint, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from ticketing.auth.forms import LoginForm
from ticketing.extensions import db
from ticketing.models import Role, User
from ticketing.redirects import safe_next
from ticketing.services import throttle
from ticketing.web import now

bp = Blueprint("auth", __name__)


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
