"""治理任务 pages: the list, a task's page with its weekly bars, opening, editing and closing
a task, and the month's tasks (每月一题).

Supervisors and admins open, edit and close the tasks of their scope; dispatchers read
them; anyone else finds no such page (404), and a dispatcher asking to change one is
refused (403). A task out of scope is not found. The rules are services/governance.py's.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.wrappers import Response

from ticketing.extensions import db
from ticketing.forms import show_errors
from ticketing.governance import charts
from ticketing.governance.forms import CloseForm, EditForm, TaskForm
from ticketing.models import Category, GovernanceTask, TaskLevel
from ticketing.services import governance, governance_choices
from ticketing.services.errors import ServiceError, ValidationFailed
from ticketing.web import local_tz, now, roles_required, staff_user

bp = Blueprint("governance", __name__)

VIEWS = ("open", "closed", "all")


def task_or_404(task_id: int) -> GovernanceTask:
    """The task if the user may see it."""
    task = governance.find(staff_user(), task_id)
    if task is None:
        abort(404)
    return task


def managers_only() -> None:
    """Dispatchers read tasks but change none."""
    if not governance.may_manage(staff_user()):
        abort(403)


def today() -> date:
    """The local date now."""
    return now().astimezone(local_tz()).date()


def view_labels() -> dict[str, str]:
    return {"open": _("Open"), "closed": _("Closed"), "all": _("All")}


@bp.route("/")
@roles_required(*governance.READER_ROLES)
def task_list() -> str:
    """The tasks of the user's scope, each with its place, deadline and before → after."""
    view = request.args.get("view", "open")
    view = view if view in VIEWS else "open"
    rows = governance.tasks(staff_user(), view)
    return render_template("governance/list.html", tasks=rows, view=view, views=view_labels(),
                           **listing(rows))


def listing(rows: list[GovernanceTask]) -> dict[str, Any]:
    """What a list of tasks shows beside each: its place, its effect; today."""
    return {"effects": governance.effects(rows, now(), local_tz()), "places": governance.place_labels(rows),
            "today": today(), "may_manage": governance.may_manage(staff_user())}


def chart_of(task: GovernanceTask, weeks: list[governance.Week]) -> charts.BarChart:
    """The weekly bars, with the opening where it falls in its week."""
    start = governance.window_start(task, local_tz())
    return charts.bar_chart(weeks, (task.opened_at - start) / timedelta(days=7))


def render_task(task: GovernanceTask, close_form: CloseForm | None = None, status: int = 200) -> tuple[str, int]:
    at = now()
    weeks = governance.weekly(task, at, local_tz())
    html = render_template(
        "governance/detail.html", task=task, place=governance.place_labels([task])[task.id],
        effect=governance.effect(task, at, local_tz()), weeks=weeks, chart=chart_of(task, weeks),
        tickets=governance.linked_tickets(task), close_form=close_form or CloseForm(formdata=None),
        today=today(), may_manage=governance.may_manage(staff_user()) and task.is_open,
        before_weeks=governance.BEFORE_WEEKS)
    return html, status


@bp.route("/<int:task_id>")
@roles_required(*governance.READER_ROLES)
def detail(task_id: int) -> tuple[str, int]:
    """A task: its plan, the weekly bars before and after, the tickets linked to it."""
    return render_task(task_or_404(task_id))


def prefill(form: TaskForm) -> str:
    """Fill a new task's form from the link that opened it (the hotspot page's):
    ?level=&place_id=&category=<code>&hotspot=<id>&title=; returns the cluster's snapshot."""
    args = request.args
    if args.get("level") in set(TaskLevel) and (args.get("place_id") or "").isdigit():
        form.place.data = f"{args['level']}:{args['place_id']}"
    code = args.get("category")
    if code:
        form.category_id.data = db.session.scalar(select(Category.id).where(Category.code == code))
    form.title.data = (args.get("title") or "")[:governance.MAX_TITLE]
    form.hotspot.data = args.get("hotspot", "")
    return governance.hotspot_snapshot(staff_user(), form.hotspot_id(), today())


@bp.route("/new", methods=["GET", "POST"])
@roles_required(*governance.READER_ROLES)
def new() -> Response | tuple[str, int]:
    """Open a task; the form may come filled in from a recurring problem."""
    managers_only()
    user = staff_user()
    form = TaskForm()
    form.prepare_new(governance_choices.responsible_options(user), governance_choices.place_options(user))
    if request.method == "GET":
        snapshot = prefill(form)
        return render_template("governance/form.html", form=form, task=None, snapshot=snapshot), 200
    snapshot = governance.hotspot_snapshot(user, form.hotspot_id(), today())
    if form.validate():
        try:
            task = governance.open_task(user, form.task_input(
                place=form.place.data or "", category_id=form.category_id.data, hotspot_id=form.hotspot_id(),
                hotspot_snapshot=snapshot), now(), local_tz())
            db.session.commit()
        except ValidationFailed as err:
            db.session.rollback()
            show_errors(form, err.errors)
        else:
            flash(_("The task is open. New tickets at its place and in its category will be linked to it."),
                  "success")
            return redirect(url_for("governance.detail", task_id=task.id), 303)
    return render_template("governance/form.html", form=form, task=None, snapshot=snapshot), 400


@bp.route("/<int:task_id>/edit", methods=["GET", "POST"])
@roles_required(*governance.READER_ROLES)
def edit(task_id: int) -> Response | tuple[str, int]:
    """Change an open task's title, who is responsible, plan and deadline."""
    task = task_or_404(task_id)
    managers_only()
    if not task.is_open:
        abort(404)
    form = EditForm(obj=task) if request.method == "GET" else EditForm()
    form.prepare(governance_choices.responsible_options(staff_user()))
    if request.method == "GET":
        form.responsible.data = responsible_value(task)
        return render_template("governance/form.html", form=form, task=task, snapshot=""), 200
    if form.validate():
        try:
            governance.edit_task(staff_user(), task, form.task_input(), now(), local_tz())
            db.session.commit()
        except ValidationFailed as err:
            db.session.rollback()
            show_errors(form, err.errors)
        except ServiceError as err:
            db.session.rollback()
            flash(str(err.message), "error")
            return redirect(url_for("governance.detail", task_id=task_id), 303)
        else:
            flash(_("The task was saved."), "success")
            return redirect(url_for("governance.detail", task_id=task.id), 303)
    return render_template("governance/form.html", form=form, task=task, snapshot=""), 400


def responsible_value(task: GovernanceTask) -> str:
    """The task's responsible person, team or company as the form's select names it."""
    for kind, column in governance.RESPONSIBLE_COLUMNS.items():
        value = getattr(task, column)
        if value is not None:
            return f"{kind}:{value}"
    return ""


@bp.route("/<int:task_id>/close", methods=["POST"])
@roles_required(*governance.READER_ROLES)
def close(task_id: int) -> Response | tuple[str, int]:
    """Close a task with a note."""
    task = task_or_404(task_id)
    managers_only()
    form = CloseForm()
    try:
        governance.close_task(staff_user(), task, form.note.data or "", now())
        db.session.commit()
    except ValidationFailed as err:
        db.session.rollback()
        show_errors(form, err.errors)
        return render_task(task_or_404(task_id), close_form=form, status=400)
    except ServiceError as err:
        db.session.rollback()
        flash(str(err.message), "error")
        return redirect(url_for("governance.detail", task_id=task_id), 303)
    flash(_("The task is closed."), "success")
    return redirect(url_for("governance.detail", task_id=task_id), 303)


@bp.route("/month")
@roles_required(*governance.READER_ROLES)
def this_month() -> Response:
    """This month's 每月一题."""
    return redirect(url_for("governance.month", month=today().strftime("%Y-%m")))


@bp.route("/month/<month>")
@roles_required(*governance.READER_ROLES)
def month(month: str) -> str:
    """每月一题: the tasks opened in a month, with what came of them."""
    try:
        first = datetime.strptime(month, "%Y-%m").date()
    except ValueError:
        abort(404)
    rows = governance.month_tasks(staff_user(), first, local_tz())
    earlier = (first - timedelta(days=1)).replace(day=1)
    later = (first + timedelta(days=32)).replace(day=1)
    return render_template("governance/month.html", tasks=rows, first=first, earlier=earlier,
                           later=later if later <= today() else None, **listing(rows))
