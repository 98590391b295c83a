"""The demo's 治理任务: one task whose complaints stopped, one open past its deadline.

- 院内垃圾清运不及时: residents of a self-managed courtyard in 大寺社区 complained about
  garbage nine times in the two weeks before the street's supervisor (张秀兰) opened a
  task 16 days ago, with its grid worker and the 环卫所 responsible; one more came two
  days after, then none. Its page shows the drop, with enough tickets to judge it.
- 门口外来车辆乱停: 南关社区's party secretary opened a task on parking across the
  community 25 days ago, due 5 days ago and still open: it is past its deadline on the
  dashboard and the list, with too few tickets to judge.

The tickets are filed through intake and moved through the state machine at explicit
past times, as demo_tickets.py does; the tasks are opened through the service at their
past times, so their links and audit rows are what real use would have written.
"""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from flask import current_app
from sqlalchemy import func, select

from ticketing.demo_data import STORIES
from ticketing.demo_tickets import Planner, TicketPlan
from ticketing.extensions import db
from ticketing.models import Channel, GovernanceTask, Ticket
from ticketing.services import governance, intake
from ticketing.services.governance import TaskInput
from ticketing.services.lifecycle import perform
from ticketing.services.photos import PhotoStore
from ticketing.services.workdays import load_calendar

if TYPE_CHECKING:
    from ticketing.demo import DemoWorld

GARBAGE = (
    "院里垃圾又没人清运了，垃圾桶都满出来了，味道很大。",
    "{b}门口的垃圾桶满了好几天，苍蝇到处飞，夏天怎么受得了。",
    "垃圾清运太不及时了，这周已经第二次满溢了，请督促一下。",
    "院子里垃圾堆在桶外面，野猫翻得到处都是。",
    "反映过好几次了，{c}的垃圾还是隔三差五没人拉走。",
)
# Days before `now` the garbage complaints came in: nine before the task, one after.
BEFORE_DAYS = (29, 27.5, 26, 24.5, 23, 21.5, 20.5, 19, 17.5)
OPENED_DAYS_AGO = 16
AFTER_DAYS = (14,)
PATHS = ("satisfied", "basic", "auto_closed")


def _file(plans: list[TicketPlan], tz: tzinfo) -> None:
    """File and move each planned ticket at its times; commits per ticket (as the demo does)."""
    calendar = load_calendar(tz)
    store = PhotoStore(Path(current_app.config["UPLOAD_FOLDER"]))
    for plan in plans:
        request = intake.IntakeRequest(
            channel=plan.channel, description=plan.description, phone=plan.phone, name=plan.name,
            category_id=plan.category.id, community_id=plan.community.id,
            complex_id=plan.complex.id if plan.complex else None,
            building_id=plan.building.id if plan.building else None, unit_room=plan.unit_room)
        ticket, _ = intake.submit(request, plan.intake_actor, plan.created_at, tz, store,
                                  current_app.config["MAX_PHOTO_BYTES"], route=False)
        for step in plan.steps:
            perform(ticket, step.name, step.actor, step.at, calendar, note=step.note, public=step.public,
                    **step.params)
        db.session.commit()


def _garbage_plans(planner: Planner, world: DemoWorld) -> list[TicketPlan]:
    """The courtyard's garbage complaints, each resolved and rated or closed in time."""
    story = next(s for s in STORIES if s.key == "litter")
    litter = planner.categories[story.category]
    # The self-managed courtyard of 大寺社区 the other demo tickets left quietest about garbage,
    # so that the complaints stop once the task opens.
    courtyard = min((c for c in world.complexes if not c.is_managed and c.grid.community.code == "CGJD-DS"),
                    key=lambda c: (db.session.scalar(select(func.count()).select_from(Ticket).where(
                        Ticket.complex_id == c.id, Ticket.category_id == litter.id)), c.code))
    channels = (Channel.WEB, Channel.PHONE, Channel.WEB, Channel.WALK_IN, Channel.WEB)
    plans = []
    for i, age in enumerate(BEFORE_DAYS + AFTER_DAYS):
        building = courtyard.buildings[i % len(courtyard.buildings)]
        plan = planner.base(PATHS[i % len(PATHS)], story.category, GARBAGE[i % len(GARBAGE)],
                            channels[i % len(channels)], (courtyard, building))
        plan.steps = planner.steps(plan, story)
        planner.timeline(plan, (age, age + 0.01))
        plans.append(plan)
    return plans


def file_demo_governance(world: DemoWorld, now: datetime, tz: tzinfo) -> list[GovernanceTask]:
    """File the garbage complaints and open both tasks at their past times; commits."""
    planner = Planner(world, now, tz)
    plans = _garbage_plans(planner, world)
    _file(plans, tz)
    courtyard = plans[0].complex
    assert courtyard is not None
    worker = world.grid_workers(courtyard.grid)[0]
    opened = _morning(now - timedelta(days=OPENED_DAYS_AGO), tz)
    garbage = governance.open_task(world.users["supervisor"], TaskInput(
        title="院内垃圾清运不及时", responsible=f"user:{worker.id}", responsible_unit="街道环卫所",
        plan="与环卫所约定每天上午清运一次；网格员每天巡查垃圾桶满溢情况；在院内张贴清运时间和监督电话。",
        deadline=_local_day(opened, tz) + timedelta(days=30), place=f"complex:{courtyard.id}",
        category_id=planner.categories["environment.litter"].id), opened, tz)
    parking_opened = _morning(now - timedelta(days=25), tz)
    community = world.communities["CGJD-NG"]
    parking = governance.open_task(world.users["secretary2"], TaskInput(
        title="门口外来车辆乱停", responsible_unit="城关交警中队",
        plan="协调交警中队设置禁停标志；物业和门岗加强劝导；每周通报一次。",
        deadline=_local_day(parking_opened, tz) + timedelta(days=20), place=f"community:{community.id}",
        category_id=planner.categories["parking.disorder"].id), parking_opened, tz)
    governance.link_new(now)  # the scheduler's 10-minute job would have linked them by now
    db.session.commit()
    return [garbage, parking]


def _local_day(at: datetime, tz: tzinfo) -> date:
    return at.astimezone(tz).date()


def _morning(at: datetime, tz: tzinfo) -> datetime:
    """09:30 local on the day of `at`: when a supervisor opens a task, in office hours."""
    return datetime.combine(_local_day(at, tz), time(9, 30), tzinfo=tz).astimezone(UTC)
