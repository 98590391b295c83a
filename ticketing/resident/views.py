"""The resident's pages: no account, just a form, a ticket number and a signed link.

Residents file a request, find it again by number + phone digits or by the link, see
its public timeline, add to it or withdraw it while it is open, and rate the result or
ask for it to be redone — also when their request was merged into another one
(services/merged.py).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from ticketing import web
from ticketing.extensions import db
from ticketing.models import Channel, Photo, Rating, Status, Ticket
from ticketing.qr import qr_svg
from ticketing.resident import follower as wechat_follower
from ticketing.resident.after import after_filing, visible_from_merged
from ticketing.resident.forms import (
    AddInfoForm,
    RateForm,
    ReopenForm,
    ReportForm,
    TrackForm,
    WithdrawForm,
)
from ticketing.resident.places import buildings_of, communities, complexes_of
from ticketing.services import (
    additions,
    callbacks,
    geo,
    intake,
    lifecycle,
    merged,
    ratelimit,
    throttle,
    tracking,
)
from ticketing.services.catalog import category_groups
from ticketing.services.errors import ServiceError, ValidationFailed
from ticketing.services.ratelimit import client_key

bp = Blueprint("resident", __name__)

Page = str | Response | tuple[str, int]


def secret() -> str:
    """The key that signs tracking links."""
    return str(current_app.config["SECRET_KEY"])


def link_token(ticket: Ticket) -> str:
    """The signed token of a ticket's tracking link."""
    return tracking.tracking_token(ticket, secret())


def ticket_or_404(token: str) -> Ticket:
    """The ticket of a tracking token; a forged or stale token is a 404."""
    ticket = tracking.ticket_from_token(token, secret())
    if ticket is None:
        abort(404)
    return ticket


def private(response: Response) -> Response:
    """Pages behind a tracking link: keep the link out of caches and other sites' Referer headers."""
    response.headers["Cache-Control"] = "private, no-store"
    # Not no-referrer: over HTTPS Flask-WTF refuses a form posted without a Referer,
    # so the rating and reopen forms on these pages would always fail.
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@bp.route("/")
def index() -> str:
    """The start page: report a problem, or track a request."""
    return render_template("resident/index.html")


def render_report(form: ReportForm, status: int = 200, **extra: Any) -> tuple[str, int]:
    """The report form with the categories and places to choose from."""
    return render_template(
        "resident/report.html",
        form=form,
        groups=category_groups(),
        communities=communities(),
        complexes_of=complexes_of,
        buildings_of=buildings_of,
        max_photos=current_app.config["MAX_PHOTOS"],
        max_photo_mb=max(current_app.config["MAX_PHOTO_BYTES"] // (1024 * 1024), 1),
        max_description=intake.MAX_DESCRIPTION,
        follower=wechat_follower.for_form(form),
        **extra,
    ), status


def count_attempt(form: ReportForm) -> None:
    """Count a submission against the limits per client address and per phone (web_ip,
    web_phone); raises `ratelimit.RateLimited`. A phone intake will refuse is not counted."""
    at = web.now()
    ratelimit.check("web_ip", client_key(request.remote_addr), at)
    phone = intake.clean_phone(form.phone.data)
    if phone is not None:
        ratelimit.check("web_phone", phone, at)


def too_many(form: ReportForm, retry_after: int) -> Response:
    """429: the form again with the resident's answers, how long to wait, and who else to ask."""
    html, status = render_report(form, 429, wait_minutes=max(1, math.ceil(retry_after / 60)))
    response = make_response(html, status)
    response.headers["Retry-After"] = str(retry_after)
    return response


@bp.route("/report", methods=["GET", "POST"])
def report() -> Page:
    """The request form; files the request through the intake service."""
    form = ReportForm()
    wechat_follower.prefill(form)
    if not form.validate_on_submit():
        return render_report(form, 400 if form.errors else 200)
    # A double tap or a browser's retry of a form already filed: show that ticket
    # again, whatever the limits say now (nothing already accepted is lost).
    filed = intake.find_existing(Channel.WEB, form.submission_key())
    if filed is not None:
        return redirect(url_for(".submitted", token=link_token(filed)), 303)
    # Counted before intake stores anything, so a refused request leaves no trace.
    try:
        count_attempt(form)
    except ratelimit.RateLimited as exc:
        return too_many(form, exc.retry_after)
    # An empty file input still posts one part without a file name.
    photos = [upload.read() for upload in request.files.getlist(form.photos.name) if upload.filename]
    req = form.intake_request("web", photos)
    wechat_follower.complete(req)  # from the WeChat menu: their openid, their phone if none typed
    placed = place_by_location(req)
    try:
        ticket, _created = intake.submit(
            req,
            lifecycle.Actor.resident(),
            web.now(),
            web.local_tz(),
            web.photo_store(),
            current_app.config["MAX_PHOTO_BYTES"],
            current_app.config["MAX_PHOTOS"],
            looked_up=True,  # just above
        )
    except ValidationFailed as exc:
        if req.lat is not None and not placed and "community_id" in exc.errors:
            exc.errors["community_id"] = _("Your location is not in a community this service covers. "
                                           "Please choose your complex or community.")
        form.add_errors(exc.errors)
        return render_report(form, exc.status)
    wechat_follower.remember(ticket)
    return redirect(url_for(".submitted", token=link_token(ticket)), 303)


def place_by_location(req: intake.IntakeRequest) -> bool:
    """Place a request by the phone's location when no complex or building was chosen:
    the open grid whose boundary holds the point (services/geo.py), unless the community
    chosen is another one. True when the point placed it."""
    if req.lat is None or req.lon is None or req.complex_id or req.building_id:
        return False
    area = geo.open_grid_at(req.lat, req.lon)
    if area is None or (req.community_id and req.community_id != area.community_id):
        return False
    req.grid_id, req.community_id = area.id, area.community_id
    return True


@bp.route("/report/sent/<token>")
def submitted(token: str) -> Response:
    """The confirmation: the ticket number, the tracking link, what happens next."""
    ticket = ticket_or_404(token)
    link = url_for(".ticket", token=token, _external=True)
    page = render_template("resident/submitted.html", ticket=ticket, link=link,
                           qr=qr_svg(link, title=_("QR code of your tracking link")))
    return private(make_response(page))


@bp.route("/track", methods=["GET", "POST"])
def track() -> Page:
    """Find a request by its number and the last four digits of the phone."""
    form = TrackForm()
    if not form.validate_on_submit():
        return render_template("resident/track.html", form=form), 400 if form.errors else 200
    number, address, at = form.number.data or "", request.remote_addr, web.now()
    wait = throttle.track_wait(number, address, at)
    if wait:
        form.last4.data = ""
        html = render_template("resident/track.html", form=form, wait_minutes=max(1, math.ceil(wait / 60)))
        response = make_response(html, 429)
        response.headers["Retry-After"] = str(wait)
        return response
    ticket = tracking.lookup(form.number.data, form.last4.data)
    if ticket is None:
        # The same answer for an unknown number and a wrong phone: no enumeration.
        throttle.record_track_failure(number, address, at)
        form.last4.data = ""
        return render_template("resident/track.html", form=form, not_found=True), 404
    return redirect(url_for(".ticket", token=link_token(ticket)), 303)


def render_ticket(
    ticket: Ticket,
    token: str,
    rate_form: RateForm | None = None,
    reopen_form: ReopenForm | None = None,
    status: int = 200,
    unsatisfied_step: bool = False,
    **forms: Any,
) -> Response:
    """The resident's view of a ticket, with the forms its state allows; `unsatisfied_step`
    shows, after 不满意 was chosen, the redo first and the rating second."""
    now = web.now()
    reopen_until = (
        ticket.resolved_at + lifecycle.REOPEN_WINDOW
        if ticket.status == Status.RESOLVED and ticket.resolved_at is not None
        else None
    )
    page = render_template(
        "resident/ticket.html",
        ticket=ticket,
        token=token,
        events=[event for event in ticket.events if event.public],
        report_photos=[p for p in ticket.photos if p.kind == "report"],
        result_photos=[p for p in ticket.photos if p.kind == "result"],
        rate_form=rate_form or RateForm(formdata=None),
        reopen_form=reopen_form or ReopenForm(formdata=None),
        reopen_until=reopen_until if reopen_until is not None and now <= reopen_until else None,
        **after_filing(ticket, now, forms),
        unsatisfied_step=unsatisfied_step,
        callback=callbacks.promised(ticket),
    )
    return private(make_response(page, status))


@bp.route("/t/<token>", endpoint="ticket")
def show_ticket(token: str) -> Response:
    """The tracking page behind a signed link."""
    return render_ticket(ticket_or_404(token), token)


def resident_action(
    token: str, name: str, form: RateForm | ReopenForm, note_field: Any, done: str, **params: Any
) -> Response:
    """Apply a resident transition from a posted form; on refusal show the page again."""
    ticket = ticket_or_404(token)
    forms: dict[str, Any] = {"rate_form": form} if isinstance(form, RateForm) else {"reopen_form": form}
    # A redo asked for after choosing 不满意 comes back to that step when refused.
    forms["unsatisfied_step"] = isinstance(form, ReopenForm) and form.unsatisfied.data == "1"
    if not form.validate_on_submit():
        return render_ticket(ticket, token, status=400, **forms)
    try:
        lifecycle.perform(
            ticket, name, lifecycle.Actor.resident(), web.now(), web.calendar(),
            note=note_field.data or "", **params,
        )
        db.session.commit()
    except ServiceError as exc:
        db.session.rollback()
        field = note_field if exc.field == "note" else form._fields.get(exc.field or "")
        if field is not None:
            field.errors = [*field.errors, exc.message]
        else:
            flash(str(exc.message), "error")
        return render_ticket(ticket_or_404(token), token, status=exc.status, **forms)
    flash(done, "success")
    return redirect(url_for(".ticket", token=token), 303)


@bp.route("/t/<token>/rate", methods=["POST"])
def rate(token: str) -> Response:
    """The resident confirms the result and rates it; the ticket closes."""
    form = RateForm()
    if form.rating.data == Rating.UNSATISFIED and form.confirmed.data != "1" and form.validate_on_submit():
        # Not solved? A redo is offered first; rating 不满意 all the same stays one tap away.
        ticket = ticket_or_404(token)
        if ticket.status == Status.RESOLVED:
            reopen_form = ReopenForm(formdata=None, reason=form.comment.data, unsatisfied="1")
            return render_ticket(ticket, token, rate_form=form, reopen_form=reopen_form, unsatisfied_step=True)
    unsatisfied = form.rating.data == Rating.UNSATISFIED
    return resident_action(
        token, "rate", form, form.comment,
        _("Your rating was recorded and the request is closed. The community office will call you back "
          "about it within 2 working days.") if unsatisfied else
        _("Thank you. Your rating was recorded and the request is closed."),
        rating=form.rating.data,
    )


@bp.route("/t/<token>/reopen", methods=["POST"])
def reopen(token: str) -> Response:
    """The resident asks for the work to be redone (within 7 days of the result)."""
    form = ReopenForm()
    unsatisfied = form.unsatisfied.data == "1"
    return resident_action(
        token, "reopen", form, form.reason,
        _("Your request is open again. The handler will come back to it, and the community office "
          "will call you back.") if unsatisfied else
        _("Your request is open again. The handler will come back to it."),
        unsatisfied=unsatisfied,
    )


@bp.route("/t/<token>/add", methods=["POST"])
def add_info(token: str) -> Response:
    """The resident adds words or photos to an open request (services/additions.py)."""
    form = AddInfoForm()
    photos = [upload.read() for upload in request.files.getlist(form.photos.name) if upload.filename]
    config = current_app.config
    return after_action(token, form, lambda ticket: additions.add_info(
        ticket, form.text.data or "", photos, web.now(), web.calendar(), web.photo_store(),
        config["MAX_PHOTO_BYTES"], config["MAX_PHOTOS"]),
        _("Thank you. What you added is on your request, and the staff handling it see it."),
        "add_form", form.text)


@bp.route("/t/<token>/withdraw", methods=["POST"])
def withdraw(token: str) -> Response:
    """The resident takes the request back before anyone accepted it."""
    form = WithdrawForm()
    return after_action(token, form, lambda ticket: lifecycle.perform(
        ticket, "withdraw", lifecycle.Actor.resident(), web.now(), web.calendar(), note=form.reason.data or ""),
        _("Your request is withdrawn. If the problem comes back, you can report it again."),
        "withdraw_form", form.reason)


@bp.route("/t/<token>/merged/rate", methods=["POST"])
def merged_rate(token: str) -> Response:
    """The resident of a merged request rates the result of the ticket it was merged into."""
    form = RateForm()
    return after_action(token, form, lambda ticket: merged.rate(
        ticket, form.rating.data, form.comment.data or "", web.now(), web.calendar()),
        _("Thank you. Your rating was recorded."), "merged_rate_form", form.comment)


@bp.route("/t/<token>/merged/redo", methods=["POST"])
def merged_redo(token: str) -> Response:
    """The resident of a merged request asks for the work on the main ticket to be redone."""
    form = ReopenForm()
    return after_action(token, form, lambda ticket: merged.ask_redo(
        ticket, form.reason.data or "", web.now(), web.calendar()),
        _("The request is open again. The handler will come back to it."), "merged_redo_form", form.reason)


def after_action(token: str, form: FlaskForm, act: Callable[[Ticket], object], done: str, form_name: str,
                 note_field: Any) -> Response:
    """Run one of the actions after filing on the posted form's ticket, then commit; on
    refusal show the page again with the form (as `form_name`) and its errors."""
    ticket = ticket_or_404(token)
    if not form.validate_on_submit():
        return render_ticket(ticket, token, status=400, **{form_name: form})
    try:
        act(ticket)
        db.session.commit()
    except ServiceError as exc:
        db.session.rollback()
        field = note_field if exc.field == "note" else form._fields.get(exc.field or "")
        if field is not None:
            field.errors = [*field.errors, exc.message]
        else:
            flash(str(exc.message), "error")
        return render_ticket(ticket_or_404(token), token, status=exc.status, **{form_name: form})
    flash(done, "success")
    return redirect(url_for(".ticket", token=token), 303)


@bp.route("/t/<token>/photos/<int:photo_id>")
def photo(token: str, photo_id: int) -> Response:
    """A photo of this ticket, from the upload folder; other tickets' photos are 404."""
    ticket = ticket_or_404(token)
    found = db.session.get(Photo, photo_id)
    if found is None or not (found.ticket_id == ticket.id or visible_from_merged(ticket, found)):
        abort(404)
    try:
        path = web.photo_store().path(found.storage_key)
    except ServiceError:
        abort(404)
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype=found.content_type, max_age=0, conditional=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Disposition"] = "inline"
    return private(response)
