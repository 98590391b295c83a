"""Administration pages: routing rules (admins) and duty rosters (admins and supervisors).

Out-of-scope pages and people answer 404, as everywhere else.
"""
from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload
from werkzeug.wrappers import Response

from ticketing.admin import rules
from ticketing.admin.forms import WEEKDAY_SHORT, LeaveForm, RosterForm, RuleForm
from ticketing.extensions import db
from ticketing.models import DutyShift, Grid, Role, RoutingRule, User
from ticketing.services import audit, rosters
from ticketing.services.errors import ValidationFailed
from ticketing.web import local_tz, now, roles_required, staff_user

bp = Blueprint("admin", __name__)

ROSTER_ROLES = (Role.ADMIN, Role.SUPERVISOR)
PEOPLE_PER_PAGE = 50


@bp.app_template_filter("shift_span")
def shift_span(shift: DutyShift) -> str:
    """"Mon 08:30–17:30", or "Fri 22:00–06:00 (next day)" for a night shift."""
    text = f"{WEEKDAY_SHORT[shift.weekday]} {shift.starts:%H:%M}–{shift.ends:%H:%M}"
    return _("%(span)s (next day)", span=text) if shift.ends <= shift.starts else text


# --- Routing rules ----------------------------------------------------------

@bp.route("/rules")
@roles_required(Role.ADMIN)
def rule_list() -> str:
    """Every rule in the order routing tries them, disabled ones greyed."""
    ordered = rules.ordered_rules()
    return render_template("admin/rules.html",
                           rules=[(rule, rules.describe_scope(rule)) for rule in ordered])


@bp.route("/rules/new", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def new_rule() -> str | Response | tuple[str, int]:
    """Create a rule; it goes last in the order."""
    return rule_page(None)


@bp.route("/rules/<int:rule_id>/edit", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def edit_rule(rule_id: int) -> str | Response | tuple[str, int]:
    """Change a rule; its place in the order stays."""
    return rule_page(db.get_or_404(RoutingRule, rule_id))


def rule_page(rule: RoutingRule | None) -> str | Response | tuple[str, int]:
    """The rule form: show it, or save what was posted and go back to the list."""
    form = RuleForm()
    form.load_choices()
    if not form.is_submitted():
        if rule is not None:
            form.fill_from(rule)
        return render_template("admin/rule_form.html", form=form, rule=rule)
    if form.validate():
        before = audit.snapshot(rule, audit.RULE_FIELDS) if rule is not None else None
        try:
            saved = rules.save_rule(form.rule_data(), rule)
        except ValidationFailed as exc:
            db.session.rollback()
            form.add_errors(exc.errors)
        else:
            audit.record(staff_user(), "rule.update" if before else "rule.create", "rule", saved.id, saved.name,
                         before, audit.snapshot(saved, audit.RULE_FIELDS), now())
            db.session.commit()
            flash(_("Rule \"%(name)s\" saved.", name=saved.name), "success")
            return redirect(url_for("admin.rule_list"), 303)
    return render_template("admin/rule_form.html", form=form, rule=rule), 400


@bp.route("/rules/<int:rule_id>/<any(enable, disable):action>", methods=["POST"])
@roles_required(Role.ADMIN)
def toggle_rule(rule_id: int, action: str) -> Response:
    """Turn a rule on or off."""
    rule = db.get_or_404(RoutingRule, rule_id)
    before = audit.snapshot(rule, ("active",))
    rules.set_active(rule, action == "enable")
    audit.record(staff_user(), f"rule.{action}", "rule", rule.id, rule.name, before,
                 audit.snapshot(rule, ("active",)), now())
    db.session.commit()
    message = _("Rule \"%(name)s\" enabled.", name=rule.name) if rule.active \
        else _("Rule \"%(name)s\" disabled; routing skips it.", name=rule.name)
    flash(message, "success")
    return redirect(url_for("admin.rule_list"), 303)


@bp.route("/rules/<int:rule_id>/move/<any(up, down):direction>", methods=["POST"])
@roles_required(Role.ADMIN)
def move_rule(rule_id: int, direction: str) -> Response:
    """Move a rule one place earlier or later in the order."""
    was = [rule.id for rule in rules.ordered_rules()]
    if rules.move_rule(rule_id, direction):
        moved = db.session.get(RoutingRule, rule_id)
        order = [rule.id for rule in rules.ordered_rules()]
        audit.record(staff_user(), "rule.move", "rule", rule_id, moved.name if moved else "",
                     {"position": was.index(rule_id) + 1}, {"position": order.index(rule_id) + 1}, now())
        db.session.commit()
    else:
        db.session.rollback()
        if db.session.get(RoutingRule, rule_id) is None:
            abort(404)
    return redirect(url_for("admin.rule_list", _anchor=f"rule-{rule_id}"), 303)


# --- Duty rosters -----------------------------------------------------------

def local_today() -> date:
    """Today's date where the pages are shown."""
    return now().astimezone(local_tz()).date()


def person_or_404(person_id: int) -> User:
    """The handler `person_id` if the logged-in user may edit their roster; 404 otherwise."""
    person = rosters.editable_person(staff_user(), person_id)
    if person is None:
        abort(404)
    return person


@bp.route("/people")
@roles_required(*ROSTER_ROLES)
def people() -> str:
    """The handlers whose rosters the user may edit, with shifts, on call and leave."""
    page = db.paginate(
        select(User).where(rosters.editable_people(staff_user()))
        .options(selectinload(User.grids).joinedload(Grid.community), joinedload(User.team),
                 joinedload(User.company))
        .order_by(User.role, User.display_name, User.id),
        per_page=PEOPLE_PER_PAGE, error_out=False,
    )
    ids = [person.id for person in page.items]
    return render_template(
        "admin/people.html", page=page, shifts=rosters.shifts_of(ids),
        leave=rosters.leave_of(ids, local_today()),
    )


@bp.route("/people/<int:person_id>/duty", methods=["GET", "POST"])
@roles_required(*ROSTER_ROLES)
def duty(person_id: int) -> str | Response | tuple[str, int]:
    """A person's weekly shifts and on-call flag; saving replaces all their shifts."""
    person = person_or_404(person_id)
    form = RosterForm()
    if not form.is_submitted():
        form.fill_from(rosters.shifts_of([person.id])[person.id], person.on_call)
        return duty_page(person, form, LeaveForm())
    if form.validate():
        before = rosters.roster_record(person)
        try:
            rosters.save_roster(person, form.rows(), bool(form.on_call.data))
        except ValidationFailed as exc:
            db.session.rollback()
            form.add_errors(exc.errors)
        else:
            audit.record(staff_user(), "roster.update", "user", person.id, person.display_name, before,
                         rosters.roster_record(person), now())
            db.session.commit()
            flash(_("Duty roster of %(name)s saved.", name=person.display_name), "success")
            return redirect(url_for("admin.duty", person_id=person.id), 303)
    return duty_page(person, form, LeaveForm()), 400


@bp.route("/people/<int:person_id>/leave", methods=["POST"])
@roles_required(*ROSTER_ROLES)
def add_leave(person_id: int) -> str | Response | tuple[str, int]:
    """Record a leave period for a person."""
    person = person_or_404(person_id)
    form = LeaveForm()
    if form.validate():
        try:
            leave = rosters.add_leave(person, form.first_day.data, form.last_day.data, form.note.data or "")
        except ValidationFailed as exc:
            db.session.rollback()
            form.add_errors(exc.errors)
        else:
            audit.record(staff_user(), "leave.add", "user", person.id, person.display_name, None,
                         audit.snapshot(leave, rosters.LEAVE_FIELDS), now())
            db.session.commit()
            flash(_("Leave of %(name)s recorded.", name=person.display_name), "success")
            return redirect(url_for("admin.duty", person_id=person.id, _anchor="leave"), 303)
    roster = RosterForm(formdata=None)
    roster.fill_from(rosters.shifts_of([person.id])[person.id], person.on_call)
    return duty_page(person, roster, form), 400


@bp.route("/people/<int:person_id>/leave/<int:leave_id>/delete", methods=["POST"])
@roles_required(*ROSTER_ROLES)
def remove_leave(person_id: int, leave_id: int) -> Response:
    """Remove one of a person's leave periods."""
    person = person_or_404(person_id)
    removed = rosters.remove_leave(person, leave_id)
    if removed is None:
        abort(404)
    audit.record(staff_user(), "leave.remove", "user", person.id, person.display_name,
                 audit.snapshot(removed, rosters.LEAVE_FIELDS), None, now())
    db.session.commit()
    flash(_("Leave removed."), "success")
    return redirect(url_for("admin.duty", person_id=person.id, _anchor="leave"), 303)


def duty_page(person: User, roster: RosterForm, leave_form: LeaveForm) -> str:
    """Render the duty page of `person` with the two forms."""
    return render_template(
        "admin/duty.html", person=person, form=roster, leave_form=leave_form,
        leave=rosters.leave_of([person.id], local_today())[person.id],
    )
