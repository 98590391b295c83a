"""The demo's recurring problem (高频诉求): a stairwell light that keeps going out.

Over the last four weeks 锦华苑3号楼 reported its stairwell light six times, in six
different ways, through the web form, the phone and the community's station; each was
handled on its own by the property company, two were rated 不满意, one reopened, and
two were filed under the wrong category (电路故障, 其他维修) — so nobody saw the six as
one problem. The supervisor sees it on /ledger/hotspots, where near-identical wording
puts the misfiled two with the rest.

Filed like every demo ticket (demo_tickets.py): through intake at past times, then
moved through the state machine. `find_demo_hotspots` runs the clustering once at the
end of the demo load, as the nightly job would have, so the page has data at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from flask import current_app
from sqlalchemy import select

from ticketing.extensions import db
from ticketing.models import Building, Category, Channel, Complex, Role
from ticketing.services import hotspots, intake
from ticketing.services.geo import polygons
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.photos import PhotoStore
from ticketing.services.workdays import load_calendar

if TYPE_CHECKING:
    from ticketing.demo import DemoWorld

COMPLEX, BUILDING = "锦华苑", "3号楼"


@dataclass(frozen=True)
class Report:
    """One of the six: when (days ago, local hour), how, in which category, and what became of it."""

    days_ago: int
    hour: int
    channel: str
    category: str
    text: str
    path: tuple[str, ...]  # steps after filing: dispatch, accept, resolve, rate:<rating>, reopen


DONE = ("dispatch", "accept", "resolve")
REPORTS = (
    Report(25, 19, Channel.WEB, "repair.stair_light", "锦华苑3号楼2单元楼道灯不亮，晚上上下楼看不见台阶。",
           (*DONE, "rate:satisfied")),
    Report(19, 20, Channel.PHONE, "repair.stair_light", "3号楼楼道的声控灯又坏了，老人晚上下楼差点摔倒。",
           (*DONE, "reopen", "resolve", "rate:basic")),
    Report(15, 21, Channel.WEB, "repair.power", "3号楼2单元楼道灯又不亮了，晚上上下楼看不见台阶。",
           (*DONE, "rate:unsatisfied")),
    Report(11, 18, Channel.WALK_IN, "repair.stair_light", "楼道灯修了没几天又不亮了，到底有没有人管？",
           (*DONE, "rate:unsatisfied")),
    Report(6, 20, Channel.WEB, "repair.other", "3号楼2单元的楼道灯还是不亮，晚上上下楼看不见台阶，修了好几次了。",
           ("dispatch", "accept")),
    Report(2, 19, Channel.PHONE, "repair.stair_light", "3号楼楼道灯不亮，黑漆漆的，拎着菜上楼很危险。",
           ("dispatch",)),
)
NOTES = {"resolve": "已更换楼道灯泡，试亮正常。", "reopen": "修好第二天又不亮了。",
         "rate:unsatisfied": "换了灯泡没几天又坏，根本没查线路。"}
MINUTES_APART = {"dispatch": 25, "accept": 60, "resolve": 600, "reopen": 1500, "rate": 300}


def file_recurring_problem(world: DemoWorld, now: datetime, tz: tzinfo) -> None:
    """File and move the six reports of 锦华苑3号楼's stairwell light; commits per ticket."""
    building = db.session.scalars(select(Building).join(Complex).where(
        Complex.name == COMPLEX, Building.name == BUILDING)).one()
    community = building.complex.grid.community
    dispatcher = world.staff(Role.DISPATCHER, community)[0]
    handler = next(u for u in world.users.values()
                   if u.role == Role.PROPERTY_STAFF and u.company_id == building.complex.property_company_id)
    calendar = load_calendar(tz)
    store = PhotoStore(Path(current_app.config["UPLOAD_FOLDER"]))
    categories = {c.code: c for c in db.session.scalars(select(Category))}
    centre = middle(building.complex.grid.boundary)
    for number, report in enumerate(REPORTS):
        local_day = now.astimezone(tz).date() - timedelta(days=report.days_ago)
        at = datetime.combine(local_day, time(report.hour, 7 * number), tzinfo=tz)
        staff_door = report.channel != Channel.WEB
        request = intake.IntakeRequest(
            channel=report.channel, description=report.text, phone=f"1393751{2000 + number:04d}",
            name="" if number % 2 else "业主", category_id=categories[report.category].id,
            community_id=community.id, complex_id=building.complex_id, building_id=building.id,
            unit_room=f"2单元{301 + 100 * number}",
            # The web form's map pin, a few metres apart each time (the map draws a dot per ticket).
            lat=centre[0] + 0.00004 * number if centre and not staff_door else None,
            lon=centre[1] - 0.00005 * number if centre and not staff_door else None,
        )
        actor = Actor.staff(dispatcher) if staff_door else Actor.resident()
        ticket, _ = intake.submit(request, actor, at, tz, store, current_app.config["MAX_PHOTO_BYTES"], route=False)
        for step in report.path:
            name, _sep, rating = step.partition(":")
            at += timedelta(minutes=MINUTES_APART[name])
            who = {"dispatch": Actor.staff(dispatcher), "accept": Actor.staff(handler),
                   "resolve": Actor.staff(handler)}.get(name, Actor.resident())
            params = {"assignee": handler} if name == "dispatch" else {"rating": rating} if rating else {}
            perform(ticket, name, who, at, calendar, note=NOTES.get(step, ""), **params)
        db.session.commit()


def middle(boundary: str | None) -> tuple[float, float] | None:
    """(lat, lon) of the middle of a grid's outline, None without one."""
    rings = [ring for polygon in polygons(boundary) for ring in polygon[:1]] if boundary else []
    points = [pt for ring in rings for pt in ring]
    if not points:
        return None
    return ((min(p[1] for p in points) + max(p[1] for p in points)) / 2,
            (min(p[0] for p in points) + max(p[0] for p in points)) / 2)


def find_demo_hotspots(now: datetime, tz: tzinfo) -> None:
    """Find and store the clusters of yesterday's 30 and 90 days, as the nightly job would; commits."""
    yesterday = now.astimezone(tz).date() - timedelta(days=1)
    for days in hotspots.WINDOWS:
        hotspots.run(yesterday, days, now, current_app.config["HOTSPOT_MIN_COUNT"], tz)
    db.session.commit()

