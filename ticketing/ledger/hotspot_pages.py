"""The recurring problems' pages (高频诉求), under /ledger/hotspots.

For supervisors and admins: the clusters the nightly job stored (services/hotspots.py),
ranked, per street or community of their scope, over 30 or 90 days; each with its
tickets (masked), its weeks, its handlers, and a link that opens a governance task for
it. A cluster's own page adds the map of where its tickets were reported from. A
cluster out of the reader's scope does not exist for them (404), like a ticket.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, abort, render_template, request
from flask_babel import gettext as _
from sqlalchemy import select

from ticketing import labels
from ticketing.extensions import db
from ticketing.ledger import hotspot_charts, pages
from ticketing.models import Community, Grid, Hotspot, HotspotRun, Role, Ticket, User
from ticketing.services import hotspots
from ticketing.web import local_tz, now, roles_required, staff_user

HOTSPOT_ROLES = (Role.SUPERVISOR, Role.ADMIN)
PAGE_SIZE = 20
GOVERNANCE_NEW = "/governance/new"  # the governance tasks' form (ticketing/governance/, its own blueprint)


def register(bp: Blueprint) -> None:
    """Add the pages to the ledger's blueprint."""
    bp.add_url_rule("/hotspots", "hotspots", hotspot_list)
    bp.add_url_rule("/hotspots/<int:hotspot_id>", "hotspot", hotspot_detail)


@dataclass
class Card:
    """One cluster as the pages show it."""

    spot: Hotspot
    rank: int
    tickets: list[Ticket]
    bars: hotspot_charts.Bars
    govern_url: str


def govern_url(spot: Hotspot) -> str:
    """The link that opens a governance task for the cluster, its fields filled in."""
    title = _("%(place)s: %(category)s again and again", place=spot.place_name,
              category=labels.localized_name(spot.category))
    return GOVERNANCE_NEW + "?" + urlencode({
        "level": spot.level, "place_id": spot.place_id, "category": spot.category.code,
        "hotspot": spot.id, "title": title})


def cards(spots: list[Hotspot], first_rank: int = 1) -> list[Card]:
    """The clusters with their sampled tickets, bars and links."""
    tickets = hotspots.sample_tickets(spots)
    return [Card(spot, first_rank + i, tickets[spot.id], hotspot_charts.weekly_bars(spot.weekly), govern_url(spot))
            for i, spot in enumerate(spots)]


def days_asked() -> int:
    """30 or 90 (the windows the nightly job stores)."""
    days = request.args.get("days", type=int)
    return days if days in hotspots.WINDOWS else hotspots.WINDOWS[0]


def today() -> date:
    """The local date now."""
    return now().astimezone(local_tz()).date()


@roles_required(*HOTSPOT_ROLES)
def hotspot_list() -> str:
    """The ranked clusters of a street or community in scope, 30 or 90 days."""
    user = staff_user()
    areas = pages.areas_for(user)
    area = pages.chosen(areas, request.args.get("area"))
    days = days_asked()
    page = max(request.args.get("page", 1, type=int), 1)
    found = hotspots.listing(user, today(), days, where=area.where(user, Hotspot),
                             limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    spots = found.hotspots
    pages_total = max((found.total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    return render_template("ledger/hotspots.html", areas=areas, area=area, days=days, windows=hotspots.WINDOWS,
                           run=found.run, total=found.total, cards=cards(spots, (page - 1) * PAGE_SIZE + 1),
                           page=page, pages=pages_total, stale=is_stale(found.run))


def is_stale(run: HotspotRun | None) -> bool:
    """True when the latest run is older than yesterday's: the nightly job did not run."""
    return run is not None and run.day < today() - timedelta(days=1)


def visible_or_404(user: User, hotspot_id: int) -> Hotspot:
    """The cluster if the user may see it."""
    spot = hotspots.visible(user, hotspot_id) if hotspot_id <= 2**31 - 1 else None
    if spot is None:
        abort(404)
    return spot


def map_of(spot: Hotspot) -> tuple[hotspot_charts.PointMap, int, int]:
    """The cluster's map (its community's grids, its tickets' points), how many points, how many without."""
    points, missing = hotspots.points(spot, local_tz())
    grids = list(db.session.execute(select(Grid.id, Grid.name, Grid.boundary).where(
        Grid.community_id == spot.community_id).order_by(Grid.code)))
    return hotspot_charts.points_map(grids, points, spot.grid_id), len(points), missing


@roles_required(*HOTSPOT_ROLES)
def hotspot_detail(hotspot_id: int) -> str:
    """One cluster: everything of the list's card, and the map of its tickets."""
    spot = visible_or_404(staff_user(), hotspot_id)
    card = cards([spot])[0]
    point_map, located, missing = map_of(spot)
    community = db.session.get(Community, spot.community_id)
    return render_template("ledger/hotspot.html", card=card, spot=spot, point_map=point_map, located=located,
                           missing=missing, community=community, days=spot.days, stale=False,
                           back=back_args(spot))


def back_args(spot: Hotspot) -> dict[str, Any]:
    """The list's arguments that lead back to the cluster's window."""
    return {"days": spot.days}
