"""Forms of the accounts pages: an account's name, phone, role and scope; a deactivation."""
from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import false, select
from sqlalchemy.orm import joinedload
from wtforms import SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import Optional

from ticketing.extensions import db
from ticketing.forms import id_select, optional_id, show_errors, with_blank
from ticketing.labels import ROLE_LABELS, label
from ticketing.models import Community, Grid, PropertyCompany, Role, Street, Team, User
from ticketing.services.accounts import AccountData, roles_given_by


class AccountForm(FlaskForm):
    """An account: username (new ones only), name, phone, role, and the scope of its role."""

    username = StringField(_l("Username"), validators=[Optional()])
    display_name = StringField(_l("Name"), validators=[Optional()])
    phone = StringField(_l("Mobile phone"), validators=[Optional()])
    role = SelectField(_l("Role"), invalid_choice_message=_l("Choose a role from the list."))
    place = SelectField(_l("Street or community"), validators=[Optional()],
                        invalid_choice_message=_l("Choose a place from the list."))
    grid_ids = SelectMultipleField(_l("Grids"), coerce=optional_id,
                                   invalid_choice_message=_l("Choose grids from the list."))
    company_id = id_select(_l("Property company"), _l("Choose a property company from the list."))
    team_id = id_select(_l("Team"), _l("Choose a team from the list."))

    def load_choices(self, actor: User) -> None:
        """Offer the roles `actor` may give and the places inside their own scope."""
        self.role.choices = with_blank([(role, label(ROLE_LABELS, role)) for role in roles_given_by(actor)],
                                       _("Choose…"))
        streets = select(Street).order_by(Street.code)
        communities = select(Community).options(joinedload(Community.street)).order_by(Community.code)
        if actor.role != Role.ADMIN:
            streets = streets.where(Street.id == actor.street_id) if actor.community_id is None \
                else streets.where(false())
            communities = communities.where(Community.id == actor.community_id) \
                if actor.community_id is not None else communities.where(Community.street_id == actor.street_id)
        community_list = db.session.scalars(communities).all()
        self.place.choices = with_blank(
            [(f"street-{s.id}", _("%(name)s (whole street)", name=s.name)) for s in db.session.scalars(streets)]
            + [(f"community-{c.id}", f"{c.street.name} · {c.name}") for c in community_list], _("Choose…"))
        grids = select(Grid).options(joinedload(Grid.community)).order_by(Grid.code)
        teams = select(Team).options(joinedload(Team.community)).order_by(Team.community_id, Team.name)
        if actor.role != Role.ADMIN:
            ids = [c.id for c in community_list]
            grids, teams = grids.where(Grid.community_id.in_(ids)), teams.where(Team.community_id.in_(ids))
        self.grid_ids.choices = [(g.id, f"{g.community.name} · {g.name} ({g.code})") for g in db.session.scalars(grids)]
        self.team_id.choices = with_blank(
            [(t.id, f"{t.community.name} · {t.name}") for t in db.session.scalars(teams)], _("Choose…"))
        self.company_id.choices = with_blank(
            [(c.id, c.name) for c in db.session.scalars(select(PropertyCompany).order_by(PropertyCompany.name))],
            _("Choose…"))

    def fill_from(self, person: User) -> None:
        """Show an existing account (a GET of its page)."""
        self.username.data = person.username
        self.display_name.data = person.display_name
        self.phone.data = person.phone or ""
        self.role.data = person.role
        if person.community_id is not None:
            self.place.data = f"community-{person.community_id}"
        elif person.street_id is not None:
            self.place.data = f"street-{person.street_id}"
        self.grid_ids.data = [grid.id for grid in person.grids]
        self.company_id.data = person.company_id
        self.team_id.data = person.team_id

    def account_data(self) -> AccountData:
        """The account as entered; the service checks it."""
        kind, _dash, place_id = (self.place.data or "").partition("-")
        return AccountData(
            display_name=self.display_name.data or "",
            role=self.role.data or "",
            phone=self.phone.data or "",
            street_id=int(place_id) if kind == "street" and place_id.isdigit() else None,
            community_id=int(place_id) if kind == "community" and place_id.isdigit() else None,
            grid_ids=tuple(g for g in self.grid_ids.data or () if g is not None),
            company_id=self.company_id.data,
            team_id=self.team_id.data,
        )

    def add_errors(self, errors: dict[str, Any]) -> None:
        """Show the service's messages beside their fields; the scope's beside the place."""
        show_errors(self, errors, rename={"scope": "place"})


class DeactivateForm(FlaskForm):
    """Why an account is deactivated: the reason goes on each of their re-routed tickets."""

    reason = TextAreaField(_l("Reason"), validators=[Optional()])
