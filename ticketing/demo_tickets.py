"""The tickets of the demo: planned first (pure, seeded), then filed and moved for real.

Every ticket goes through `intake.submit` and then `lifecycle.perform`, each step at
an explicit past time, so events, deadlines and ticket numbers are consistent. The
plan covers every state (including returned, reopened, merged, withdrawn and each rating) and
the channels residents and staff use.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ticketing.demo_data import (
    DUPLICATES,
    GIVEN_NAMES,
    MERGE_NOTE,
    PHONE_PREFIXES,
    RATING_COMMENTS,
    REJECTED,
    REOPEN_NOTES,
    RETURN_NOTES,
    STORIES,
    SUPERVISE_NOTE,
    SURNAMES,
    WITHDRAW_NOTES,
    WORK_NOTES,
    Story,
)
from ticketing.extensions import db
from ticketing.models import (
    Building,
    Category,
    Channel,
    Community,
    Complex,
    Role,
    Team,
    Ticket,
    User,
)
from ticketing.services import intake
from ticketing.services.lifecycle import Actor, perform
from ticketing.services.patrol import OWN_REPORT
from ticketing.services.photos import PhotoStore
from ticketing.services.workdays import load_calendar

if TYPE_CHECKING:
    from ticketing.demo import DemoWorld

SEED = 20240105  # the day 宝丰's renewal report appeared; any constant would do
MARGIN = timedelta(minutes=20)  # the last step of every ticket is at least this old

# The steps of each path; "dispatch_wrong" sends a managed-complex repair to the
# grid worker first, who returns it (退单) because the property company is in charge.
PATHS: dict[str, tuple[str, ...]] = {
    "submitted": (),
    "returned": ("dispatch_wrong", "return"),
    "redispatched": ("dispatch_wrong", "return", "dispatch", "accept"),
    "dispatched": ("dispatch",),
    "accepted": ("dispatch", "accept", "note"),
    "supervised": ("dispatch", "accept", "supervise"),
    "on_hold": ("dispatch", "accept", "hold"),
    "resolved": ("dispatch", "accept", "resolve"),
    "satisfied": ("dispatch", "accept", "resolve", "rate:satisfied"),
    "basic": ("dispatch", "accept", "resolve", "rate:basic"),
    "unsatisfied": ("dispatch", "accept", "resolve", "rate:unsatisfied"),
    "held_closed": ("dispatch", "accept", "hold", "resume", "resolve", "rate:satisfied"),
    "auto_closed": ("dispatch", "accept", "resolve", "auto_close"),
    "reopened": ("dispatch", "accept", "resolve", "reopen"),
    "reopened_closed": ("dispatch", "accept", "resolve", "reopen", "resolve", "rate:basic"),
    "rejected": ("reject",),
    "merged": ("merge",),
    "withdrawn": ("dispatch", "withdraw"),
}

# path, how many, age range in days (how long ago the ticket came in)
PLAN: tuple[tuple[str, int, tuple[float, float]], ...] = (
    ("submitted", 4, (0.02, 1.2)),
    ("returned", 2, (0.3, 2.5)),
    ("redispatched", 1, (1, 4)),
    ("dispatched", 3, (0.1, 1.5)),
    ("accepted", 4, (1, 5)),
    ("supervised", 1, (9, 14)),
    ("on_hold", 3, (3, 10)),
    ("resolved", 5, (0.5, 5)),
    ("satisfied", 10, (4, 29)),
    ("basic", 4, (4, 29)),
    ("unsatisfied", 3, (4, 29)),
    ("held_closed", 1, (10, 28)),
    ("auto_closed", 2, (16, 29)),
    ("reopened", 2, (2, 6)),
    ("reopened_closed", 1, (8, 25)),
    ("withdrawn", 1, (2, 9)),
)
# What a grid worker's own patrol report can go through (services/patrol.py).
PATROL_PATHS = frozenset({"accepted", "resolved", "auto_closed"})
OPEN_PATHS = frozenset({"submitted", "returned", "redispatched", "dispatched", "accepted", "supervised", "on_hold"})
RESIDENT_CHANNELS = (Channel.WEB, Channel.WALK_IN, Channel.SERVICE_HALL, Channel.PHONE, Channel.WECHAT_GROUP)
CHANNEL_WEIGHTS = (45, 20, 10, 15, 10)

# step → minutes after the previous step, by tier (clock tiers act fast)
DELAYS: dict[str, dict[str, tuple[int, int]]] = {
    "dispatch": {"urgent": (3, 12), "utility": (5, 15), "*": (15, 180)},
    "accept": {"urgent": (3, 14), "utility": (8, 28), "*": (30, 900)},
    "resolve": {"urgent": (40, 360), "utility": (60, 600), "complex": (1440, 11520), "*": (240, 4320)},
    "return": {"*": (20, 240)},
    "hold": {"*": (60, 1440)},
    "resume": {"*": (1440, 4320)},
    "rate": {"*": (120, 2880)},
    "reopen": {"*": (720, 2880)},
    "auto_close": {"*": (7 * 1440, 7 * 1440 + 60)},
    # A patrol report is the worker's at once, and the sweep closes it once resolved.
    "patrol_own": {"*": (1, 2)},
    "note": {"*": (30, 600)},
    "supervise": {"*": (10500, 12000)},
    "reject": {"*": (10, 180)},
    "merge": {"*": (10, 120)},
    "withdraw": {"*": (20, 240)},
}


@dataclass
class Step:
    """One transition to perform at `at`."""

    name: str
    actor: Actor
    note: str = ""
    public: bool | None = None
    params: dict[str, Any] = field(default_factory=dict)
    pace: str = ""  # which DELAYS row times it; defaults to `name`
    at: datetime = datetime.min


@dataclass
class TicketPlan:
    """Everything about one demo ticket, decided before anything is written."""

    path: str
    category: Category
    description: str
    community: Community
    complex: Complex | None
    building: Building | None
    unit_room: str
    address_text: str
    channel: str
    name: str
    phone: str
    intake_actor: Actor
    created_at: datetime = field(default=datetime.min)
    steps: list[Step] = field(default_factory=list)
    target: TicketPlan | None = None
    ticket: Ticket | None = None


class Planner:
    """Decides the demo tickets from the seeded generator; writes nothing."""

    def __init__(self, world: DemoWorld, now: datetime, tz: tzinfo) -> None:
        self.world, self.now, self.tz = world, now, tz
        self.rng = random.Random(SEED)
        self.used: dict[str, int] = {}  # story key → times told
        self.places_used: dict[int, int] = {}  # complex id → tickets placed there
        self.channels = list(RESIDENT_CHANNELS)  # each one is used at least once first
        self.categories = {c.code: c for c in db.session.scalars(select(Category))}

    # --- choices -----------------------------------------------------------

    def story_for(self, path: str) -> Story:
        """The least-used story that fits the path (ties broken at random)."""
        def fits(story: Story) -> bool:
            tier = self.categories[story.category].effective_tier()
            if path in OPEN_PATHS and tier is not None and not tier.working_days:
                return False  # an urgent ticket is not left waiting for days
            if path in ("returned", "redispatched"):
                return story.category.startswith("repair.") and story.place != "self" and not story.channel
            if path in ("on_hold", "held_closed"):
                return bool(story.hold)
            if story.channel == Channel.PATROL:  # the worker's own: theirs at once, nobody rates it
                return path in PATROL_PATHS
            return True
        eligible = [s for s in STORIES if fits(s)]
        story = min(eligible, key=lambda s: (self.used.get(s.key, 0), self.rng.random()))
        self.used[story.key] = self.used.get(story.key, 0) + 1
        return story

    def place_for(self, kind: str) -> tuple[Complex, Building]:
        """A complex of the kind ("managed", "self", "any") and one of its buildings."""
        pool = [c for c in self.world.complexes
                if kind == "any" or (kind == "managed") == c.is_managed]
        # The least-used complex, so that every courtyard has a story to tell.
        cx = min(pool, key=lambda c: (self.places_used.get(c.id, 0), self.rng.random()))
        self.places_used[cx.id] = self.places_used.get(cx.id, 0) + 1
        return cx, self.rng.choice(cx.buildings)

    def channel_for(self, story: Story) -> str:
        """The story's own channel, else each resident channel once, then by weight."""
        if story.channel:
            return story.channel
        if self.channels:
            return self.channels.pop(self.rng.randrange(len(self.channels)))
        return self.rng.choices(RESIDENT_CHANNELS, weights=CHANNEL_WEIGHTS)[0]

    def resident(self) -> tuple[str, str]:
        """A plausible name (sometimes none) and mobile number."""
        name = "" if self.rng.random() < 0.2 else self.rng.choice(SURNAMES) + self.rng.choice(GIVEN_NAMES)
        phone = self.rng.choice(PHONE_PREFIXES) + "".join(self.rng.choices("0123456789", k=8))
        return name, phone

    def dispatcher(self, plan: TicketPlan) -> User:
        """The street hall for its own intake, else the community's station."""
        if plan.channel == Channel.SERVICE_HALL:
            return self.world.staff(Role.DISPATCHER, None)[0]
        return self.world.staff(Role.DISPATCHER, plan.community)[0]

    def grid_worker(self, plan: TicketPlan) -> User:
        """The worker of the ticket's grid (社区兜底), or of the community's first grid."""
        grid = plan.complex.grid if plan.complex else plan.community.grids[0]
        return self.world.grid_workers(grid)[0]

    def handler(self, plan: TicketPlan) -> tuple[dict[str, Any], User]:
        """Dispatch parameters and the person who then works the ticket, as the default
        routing of services/targets.py does: repairs in a managed complex to its company,
        elderly help to volunteers, disputes to mediators, the rest to the grid worker."""
        group = plan.category.group.code
        if group == "repair" and plan.complex is not None and plan.complex.is_managed:
            staff = [u for u in self.world.users.values()
                     if u.company_id == plan.complex.property_company_id]
            person = self.rng.choice(staff)
            return {"assignee": person}, person
        if group in ("elderly", "dispute"):
            kind = "volunteer" if group == "elderly" else "mediation"
            team: Team = self.world.teams[f"{plan.community.code}:{kind}"]
            members = [u for u in self.world.users.values() if u.team is team]
            return {"team": team}, self.rng.choice(members)
        worker = self.grid_worker(plan)
        return {"assignee": worker}, worker

    # --- plans -------------------------------------------------------------

    def base(self, path: str, category: str, description: str, channel: str,
             place: tuple[Complex | None, Building | None] | None, community: Community | None = None,
             address_text: str = "") -> TicketPlan:
        """A ticket at a place, with its requester and the one who enters it; no steps yet."""
        cx, building = place if place else (None, None)
        if community is None:
            community = cx.grid.community if cx else self.rng.choice(list(self.world.communities.values()))
        unit = self.rng.randint(1, 3)
        text = description.format(c=cx.name if cx else "", b=building.name if building else "", u=unit)
        room = f"{unit}单元{self.rng.randint(1, 7)}0{self.rng.randint(1, 2)}"
        if building is None or "{c}" in description:  # about the whole complex
            room = ""
        name, phone = self.resident()
        plan = TicketPlan(path, self.categories[category], text, community, cx, building, room,
                          address_text, channel, name, phone, Actor.resident())
        if channel == Channel.PATROL:
            worker = self.grid_worker(plan)
            plan.name, plan.phone = worker.display_name, worker.phone or phone
            plan.intake_actor, plan.unit_room = Actor.staff(worker), ""
        elif channel != Channel.WEB:
            plan.intake_actor = Actor.staff(self.dispatcher(plan))
            # Staff often type the address as residents say it ("东怡街79号院3号楼").
            if cx is not None and building is not None and cx.aliases and self.rng.random() < 0.35:
                plan.address_text = self.rng.choice(cx.aliases.splitlines()) + building.name
        return plan

    def story_plan(self, path: str, story: Story | None = None) -> TicketPlan:
        """A ticket telling `story` (or a fitting one), with the steps of `path`."""
        story = story or self.story_for(path)
        plan = self.base(path, story.category, story.description, self.channel_for(story),
                         self.place_for("managed" if path in ("returned", "redispatched") else story.place))
        plan.steps = self.steps(plan, story)
        return plan

    def steps(self, plan: TicketPlan, story: Story | None, reason: str = "") -> list[Step]:
        """The steps of the plan's path, each with its actor, note and delay from the last."""
        dispatch, worker = self.handler(plan)
        dispatcher = Actor.staff(self.dispatcher(plan))
        own = plan.channel == Channel.PATROL and plan.intake_actor.user is not None
        if own:  # the reporting worker's, not routed (services/patrol.py)
            assert plan.intake_actor.user is not None
            worker = plan.intake_actor.user
            dispatch = {"assignee": worker, "rule": OWN_REPORT}
            dispatcher = Actor.system()
        wrong = self.grid_worker(plan)
        steps: list[Step] = []
        for name in PATHS[plan.path]:
            name, _, rating = name.partition(":")
            if name == "dispatch_wrong":
                steps.append(Step("dispatch", dispatcher, params={"assignee": wrong}))
            elif name == "dispatch":
                steps.append(Step("dispatch", dispatcher, params=dict(dispatch), pace="patrol_own" if own else ""))
            elif name == "return":
                # History: the dispatcher sent it on by hand, so no re-routing job.
                steps.append(Step("return", Actor.staff(wrong), self.rng.choice(RETURN_NOTES),
                                  params={"reroute": False}))
            elif name in ("accept", "resume", "auto_close"):
                steps.append(Step(name, Actor.system() if name == "auto_close" else Actor.staff(worker),
                                  pace="patrol_own" if own and name != "resume" else ""))
            elif name in ("hold", "resolve"):
                note = (story.hold if name == "hold" else story.result) if story else ""
                steps.append(Step(name, Actor.staff(worker), note))
            elif name == "note":
                note, public = self.rng.choice(WORK_NOTES)
                steps.append(Step("note", Actor.staff(worker), note, public))
            elif name == "supervise":
                boss = self.world.staff(Role.SUPERVISOR, plan.community)[0]
                steps.append(Step("note", Actor.staff(boss), SUPERVISE_NOTE, False, pace="supervise"))
            elif name == "rate":
                steps.append(Step("rate", Actor.resident(), self.rng.choice(RATING_COMMENTS[rating]),
                                  params={"rating": rating}))
            elif name == "reopen":
                steps.append(Step("reopen", Actor.resident(), self.rng.choice(REOPEN_NOTES)))
            elif name == "withdraw":
                steps.append(Step("withdraw", Actor.resident(), self.rng.choice(WITHDRAW_NOTES)))
            elif name in ("reject", "merge"):
                steps.append(Step(name, dispatcher, reason))
        return steps

    def timeline(self, plan: TicketPlan, age: tuple[float, float], earliest: datetime | None = None) -> None:
        """Set the intake time (daytime, local) and each step's time after it."""
        tier = self.categories[plan.category.code].effective_tier()
        code = tier.code if tier else "general"
        delays = []
        for step in plan.steps:
            table = DELAYS[step.pace or step.name]
            low, high = table.get(code, table["*"])
            delays.append(timedelta(minutes=self.rng.randint(low, high)))
        total = sum(delays, timedelta())
        local = (self.now - timedelta(days=self.rng.uniform(*age))).astimezone(self.tz)
        created = local.replace(hour=self.rng.randint(7, 21), minute=self.rng.randint(0, 59),
                                second=self.rng.randint(0, 59), microsecond=0)
        latest = self.now.replace(microsecond=0) - MARGIN - total
        if earliest is not None:
            created = max(created, earliest)
        plan.created_at = min(created, latest)
        at = plan.created_at
        for step, delay in zip(plan.steps, delays, strict=True):
            at += delay
            step.at = at

    def plans(self) -> list[TicketPlan]:
        """Every demo ticket, in the order they came in."""
        plans: list[TicketPlan] = []
        for path, count, age in PLAN:
            for _ in range(count):
                plan = self.story_plan(path)
                self.timeline(plan, age)
                plans.append(plan)
        for key, text in DUPLICATES:
            story = next(s for s in STORIES if s.key == key)
            target = self.story_plan("dispatched", story)
            self.timeline(target, (1, 3))
            twin = self.base("merged", story.category, text, Channel.PHONE, (target.complex, target.building))
            twin.steps, twin.target = self.steps(twin, None, MERGE_NOTE), target
            self.timeline(twin, (0.1, 0.9), earliest=target.created_at + timedelta(hours=2))
            plans += [target, twin]
        for category, text, address, reason in REJECTED:
            community = self.rng.choice(list(self.world.communities.values()))
            place = None if address else self.place_for("any")
            plan = self.base("rejected", category, text, Channel.WEB if not address else Channel.PHONE,
                             place, community=community if not place else None, address_text=address)
            plan.steps = self.steps(plan, None, reason)
            self.timeline(plan, (0.5, 25))
            plans.append(plan)
        return sorted(plans, key=lambda p: p.created_at)


def file_demo_tickets(world: DemoWorld, now: datetime, tz: tzinfo, upload_folder: Path,
                      max_photo_bytes: int) -> list[Ticket]:
    """Plan the demo tickets, then file and move each one; commits per ticket."""
    calendar = load_calendar(tz)
    store = PhotoStore(upload_folder)
    tickets = []
    for plan in Planner(world, now, tz).plans():
        use_text = bool(plan.address_text) and plan.intake_actor.kind == "staff"
        request = intake.IntakeRequest(
            channel=plan.channel, description=plan.description, phone=plan.phone, name=plan.name,
            category_id=plan.category.id, community_id=plan.community.id,
            complex_id=None if use_text or plan.complex is None else plan.complex.id,
            building_id=None if use_text or plan.building is None else plan.building.id,
            address_text=plan.address_text, unit_room=plan.unit_room,
        )
        # The demo's history is moved by hand below; routing it now would rewrite it.
        ticket, _ = intake.submit(request, plan.intake_actor, plan.created_at, tz, store, max_photo_bytes,
                                  route=False)
        plan.ticket = ticket
        for step in plan.steps:
            params = dict(step.params)
            if step.name == "merge" and plan.target is not None:
                params["target"] = plan.target.ticket
            if step.name == "hold":  # expected in a few days (services/holds.py)
                params["until"] = step.at.astimezone(tz).date() + timedelta(days=3)
            perform(ticket, step.name, step.actor, step.at, calendar, note=step.note,
                    public=step.public, **params)
        db.session.commit()
        tickets.append(ticket)
    return tickets
