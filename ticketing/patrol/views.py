"""Grid patrol (巡查) and WeChat-group quick entry (收单): two more doors into intake."""
from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    url_for,
)
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from ticketing import place_choices as places
from ticketing.forms import with_blank
from ticketing.models import Channel, Role, User
from ticketing.patrol import groupchat
from ticketing.patrol.forms import DraftsForm, PasteForm, PatrolForm
from ticketing.place_choices import GroupedChoices
from ticketing.services import intake, placing
from ticketing.services.catalog import category_menu
from ticketing.services.doors import GROUPCHAT_ROLES, PATROL_ROLES
from ticketing.services.errors import InvalidInput, ServiceError, ValidationFailed
from ticketing.services.intake import IntakeRequest
from ticketing.services.lifecycle import Actor
from ticketing.services.patrol import OwnGrid, own_grids, place_report, theirs
from ticketing.services.placing import CommunityEntry
from ticketing.web import (
    calendar,
    local_tz,
    now,
    photo_store,
    roles_required,
    staff_actor,
    staff_user,
)

bp = Blueprint("patrol", __name__)


def worker_communities(own: list[OwnGrid]) -> list[CommunityEntry]:
    """The communities of a grid worker's grids (`own_grids`), in grid order, each once."""
    by_id = {c.id: c for c in placing.communities()}
    return [by_id[c_id] for c_id in dict.fromkeys(grid.community_id for grid in own) if c_id in by_id]


def groupchat_scope(user: User) -> tuple[list[CommunityEntry], GroupedChoices]:
    """The communities the user files group-chat tickets in, and the buildings offered:
    a grid worker's own grids', else those of the communities in the user's scope."""
    if user.role == Role.GRID_WORKER:
        own = own_grids(user)
        return worker_communities(own), places.grid_building_choices([grid.id for grid in own])
    in_scope = places.communities_in_scope(user)
    return in_scope, places.building_choices(in_scope)


# --- Grid patrol --------------------------------------------------------------


@bp.route("/new", methods=["GET", "POST"])
@roles_required(*PATROL_ROLES)
def new_report() -> str | Response | tuple[str, int]:
    """A grid worker reports what they found on patrol; 马上就办 takes it on the spot."""
    worker = staff_user()
    own_phone = intake.clean_phone(worker.phone)
    own = own_grids(worker)
    form = PatrolForm()
    form.category_id.choices = with_blank(places.category_choices(), _("Choose…"))
    form.building_id.choices = with_blank(places.grid_building_choices([grid.id for grid in own]),
                                          _("Use my location"))
    communities = worker_communities(own)

    def page(status: int = 200) -> tuple[str, int]:
        return render_template("patrol/new.html", form=form, ask_phone=own_phone is None), status

    if not form.is_submitted():
        return page()
    if not communities:
        form.form_errors.append(_("You have no grid to report in."))
        return page(400)
    if not form.validate():
        return page(400)
    point = form.point()
    grid = None
    community_id = communities[0].id
    address = ""
    if form.building_id.data is None:
        # Outside every grid's boundary, or without a location: the worker's own grid.
        grid = place_report(own, worker.street_id, *(point or (None, None)))
        if grid is not None:
            community_id = grid.community_id
        if point is not None:
            address = _("Location %(lat).6f, %(lng).6f", lat=point[0], lng=point[1])
    handle_now = bool(form.handle_now.data)
    result = (form.result.data or "").strip()
    req = IntakeRequest(
        channel=Channel.PATROL.value,
        description=form.description.data or "",
        phone=own_phone or form.phone.data or "",
        name=worker.display_name,
        category_id=form.category_id.data,
        community_id=None if form.building_id.data else community_id,
        building_id=form.building_id.data,
        grid_id=grid.id if grid is not None else None,
        address_text=address,
        photos=form.uploaded_photos(),
        external_id=form.submission_key(),
    )
    at = now()
    try:
        ticket, _created = intake.submit(
            req, Actor.staff(worker), at, local_tz(), photo_store(),
            current_app.config["MAX_PHOTO_BYTES"], current_app.config["MAX_PHOTOS"],
            route=False,  # the worker's own: not routed
            steps=theirs(worker, at, calendar(), on_the_spot=handle_now, result=result),
        )
    except ValidationFailed as exc:
        form.add_errors(exc.errors)
        return page(exc.status)
    except ServiceError as exc:  # bad input, or the worker may not take it (nothing stored)
        form.form_errors.append(exc.message)
        return page(exc.status)
    number = ticket.number
    flash(_("Ticket %(number)s filed.", number=number), "success")
    return redirect(url_for("staff.detail", number=number), 303)


# --- WeChat-group quick entry -------------------------------------------------


def drafts_form(communities: list[CommunityEntry], buildings: GroupedChoices,
                data: dict[str, Any] | None = None) -> DraftsForm:
    """The step-2 form with its rows' choices set (`groupchat_scope`)."""
    form = DraftsForm(formdata=None, data=data) if data is not None else DraftsForm()
    categories = with_blank(places.category_choices(), _("Choose…"))
    community_choices = [(c.id, c.name) for c in communities]
    building_choices = with_blank(buildings, _("Not in the list"))
    for row in form.rows:
        row.form.category_id.choices = categories
        row.form.community_id.choices = community_choices
        row.form.building_id.choices = building_choices
    return form


@bp.route("/groupchat", methods=["GET", "POST"])
@roles_required(*GROUPCHAT_ROLES)
def groupchat_entry() -> str | Response | tuple[str, int]:
    """Step 1: paste the messages; step 2 (POST with `text`): the drafts to fix and file."""
    paste = PasteForm()
    if not paste.is_submitted():
        return render_template("patrol/groupchat.html", form=paste)
    if not paste.validate():
        return render_template("patrol/groupchat.html", form=paste), 400
    in_scope, buildings = groupchat_scope(staff_user())
    drafts = groupchat.detect(groupchat.parse(paste.text.data or ""), in_scope,
                              [c.id for group in category_menu() for c in group.options])  # cached ids
    if not drafts:
        paste.text.errors = [*paste.text.errors, _("No messages found. Paste the messages as WeChat copies them.")]
        return render_template("patrol/groupchat.html", form=paste), 400
    rows = [{
        "include": True, "key": d.key, "sender": d.sender, "time": d.time, "name": d.sender[:32],
        "category_id": d.category_id, "community_id": d.community_id, "building_id": d.building_id,
        "phone": d.phone, "description": d.text,
    } for d in drafts[:50]]
    form = drafts_form(in_scope, buildings, {"rows": rows})
    # The page shows each draft's guess as `detect` made it, not classified again.
    return render_template("patrol/drafts.html", form=form, guesses={d.key: d.guess for d in drafts[:50]})


@bp.route("/groupchat/file", methods=["POST"])
@roles_required(*GROUPCHAT_ROLES)
def groupchat_file() -> str | Response | tuple[str, int]:
    """File every included draft, each in its own transaction; show the failed ones again."""
    form = drafts_form(*groupchat_scope(staff_user()))
    if not form.validate():
        # A tampered row (a choice not offered) or a stale token: nothing is filed.
        return render_template("patrol/drafts.html", form=form), 400
    filed = 0
    keep = []
    for row in form.rows:
        if not row.form.include.data:
            continue
        req = IntakeRequest(
            channel=Channel.WECHAT_GROUP.value,
            description=row.form.description.data or "",
            # Without a number the requester is the group nickname, answered in the group
            # by hand: no SMS (services/phones.py, intake.check_phone).
            phone=row.form.phone.data or "",
            name=row.form.name.data or "",
            category_id=row.form.category_id.data,
            community_id=None if row.form.building_id.data else row.form.community_id.data,
            building_id=row.form.building_id.data,
            external_id=row.form.key.data if groupchat_key(row.form.key.data) else None,
        )
        try:
            _ticket, _created = intake.submit(
                req, staff_actor(), now(), local_tz(), photo_store(),
                current_app.config["MAX_PHOTO_BYTES"], current_app.config["MAX_PHOTOS"],
            )
        except ValidationFailed as exc:
            for name, message in exc.errors.items():
                field = row.form._fields.get(name)
                if field is None:
                    field = row.form.description
                field.errors = [*field.errors, message]
            keep.append(row)
        except InvalidInput as exc:
            row.form.description.errors = [*row.form.description.errors, exc.message]
            keep.append(row)
        else:
            filed += 1
    flash(_("%(n)d filed.", n=filed), "success" if filed else "info")
    if not keep:
        return redirect(url_for("patrol.groupchat_entry"), 303)
    form.rows.entries = keep
    return render_template("patrol/drafts.html", form=form), 400


def groupchat_key(value: str | None) -> bool:
    """A draft key is one we issued: 32 hex digits."""
    return bool(value) and len(value or "") == 32 and all(ch in "0123456789abcdef" for ch in value or "")
