"""Routing rules as data: checking and saving them, turning them on and off, reordering.

A rule says "(category or its group, place scope) → handler kind [, team or
company] [, tier]". Rules are tried by ascending priority; the admin page orders
them by moving one rule up or down, which swaps two priorities.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select

from ticketing.extensions import db
from ticketing.models import (
    Category,
    Community,
    Complex,
    Grid,
    HandlerKind,
    PropertyCompany,
    RoutingRule,
    SlaTier,
    Team,
    TeamKind,
)
from ticketing.services.errors import ValidationFailed

SCOPE_KINDS = ("any", "community", "grid", "complex")
SCOPE_MODELS: dict[str, Any] = {"community": Community, "grid": Grid, "complex": Complex}
TEAM_KINDS = {HandlerKind.VOLUNTEER_TEAM: TeamKind.VOLUNTEER, HandlerKind.MEDIATION_TEAM: TeamKind.MEDIATION}
# New rules go last, this far apart, so a rule can later be slotted between two.
PRIORITY_STEP = 10
MAX_NAME = 100


@dataclass(frozen=True)
class RuleData:
    """What an admin entered for a rule; ids are None when left empty."""

    name: str
    category_id: int | None = None
    scope_kind: str = "any"
    scope_id: int | None = None
    handler_kind: str = ""
    team_id: int | None = None
    company_id: int | None = None
    tier_id: int | None = None


def ordered_rules() -> list[RoutingRule]:
    """Every rule, active or not, in the order routing tries them."""
    return list(db.session.scalars(select(RoutingRule).order_by(RoutingRule.priority, RoutingRule.id)))


def scope_community_id(kind: str, place: Any) -> int | None:
    """The community a community, grid or complex scope lies in."""
    if kind == "community":
        return int(place.id)
    if kind == "grid":
        return int(place.community_id)
    if kind == "complex":
        return int(place.grid.community_id)
    return None


def check(data: RuleData) -> dict[str, Any]:
    """Every problem with `data`, by field name (empty when the rule may be saved)."""
    errors: dict[str, Any] = {}
    name = data.name.strip()
    if not name:
        errors["name"] = _("Give the rule a name.")
    elif len(name) > MAX_NAME:
        errors["name"] = _("The name may be at most %(n)d characters.", n=MAX_NAME)
    if data.category_id is not None and db.session.get(Category, data.category_id) is None:
        errors["category_id"] = _("Choose a category from the list.")
    if data.tier_id is not None and db.session.get(SlaTier, data.tier_id) is None:
        errors["tier_id"] = _("Choose a time-limit tier from the list.")

    place = None
    if data.scope_kind not in SCOPE_KINDS:
        errors["scope_kind"] = _("Choose where the rule applies.")
    elif data.scope_kind == "any":
        if data.scope_id is not None:
            errors["scope_id"] = _("A rule for any place has no place to choose.")
    elif data.scope_id is None:
        errors["scope_id"] = _("Choose the place the rule applies to.")
    else:
        place = db.session.get(SCOPE_MODELS[data.scope_kind], data.scope_id)
        if place is None:
            errors["scope_id"] = _("Choose a place of the chosen kind from the list.")
    community_id = scope_community_id(data.scope_kind, place) if place is not None else None

    if data.handler_kind not in set(HandlerKind):
        errors["handler_kind"] = _("Choose who handles the tickets.")
        return errors
    errors.update(_check_handler(data, community_id))
    return errors


def _check_handler(data: RuleData, community_id: int | None) -> dict[str, Any]:
    """Problems with the team or company of a rule whose handler kind is valid."""
    errors: dict[str, Any] = {}
    team_kind = TEAM_KINDS.get(HandlerKind(data.handler_kind))
    if data.team_id is not None:
        team = db.session.get(Team, data.team_id)
        if team_kind is None:
            errors["team_id"] = _("Only volunteer and mediation rules name a team.")
        elif team is None:
            errors["team_id"] = _("Choose a team from the list.")
        elif team.kind != team_kind:
            errors["team_id"] = (_("Choose a volunteer team.") if team_kind == TeamKind.VOLUNTEER
                                 else _("Choose a mediation team."))
        elif community_id is not None and team.community_id != community_id:
            errors["team_id"] = _("The team must belong to the community the rule applies to.")
    if data.company_id is not None:
        if data.handler_kind != HandlerKind.PROPERTY:
            errors["company_id"] = _("Only property-company rules name a company.")
        elif db.session.get(PropertyCompany, data.company_id) is None:
            errors["company_id"] = _("Choose a property company from the list.")
    return errors


def next_priority() -> int:
    """A priority after every existing rule's."""
    highest = db.session.scalar(select(func.max(RoutingRule.priority)))
    return (highest or 0) + PRIORITY_STEP


def save_rule(data: RuleData, rule: RoutingRule | None = None) -> RoutingRule:
    """Create a rule (placed last) or update `rule`; raises ValidationFailed, changing nothing.

    The caller commits.
    """
    errors = check(data)
    if errors:
        raise ValidationFailed(errors)
    if rule is None:
        rule = RoutingRule(priority=next_priority(), active=True)
        db.session.add(rule)
    rule.name = data.name.strip()
    rule.category_id = data.category_id
    rule.scope_kind = data.scope_kind
    rule.scope_id = data.scope_id if data.scope_kind != "any" else None
    rule.handler_kind = data.handler_kind
    rule.team_id = data.team_id
    rule.company_id = data.company_id
    rule.tier_id = data.tier_id
    db.session.flush()
    return rule


def set_active(rule: RoutingRule, active: bool) -> None:
    """Turn a rule on or off; a disabled rule keeps its place in the order."""
    rule.active = active


def move_rule(rule_id: int, direction: str) -> bool:
    """Swap a rule's priority with its neighbour's above ("up") or below ("down").

    The rules are locked for the swap, so two admins reordering at once cannot
    leave two rules on one priority. Priorities need not be consecutive; when two
    rules share one (entered by other means), all are renumbered first. Returns
    False when the rule is already first or last, or does not exist. The caller commits.
    """
    rules = list(db.session.scalars(
        select(RoutingRule).order_by(RoutingRule.priority, RoutingRule.id).with_for_update()
    ))
    index = next((i for i, r in enumerate(rules) if r.id == rule_id), None)
    if index is None or direction not in ("up", "down"):
        return False
    other = index - 1 if direction == "up" else index + 1
    if not 0 <= other < len(rules):
        return False
    if len({r.priority for r in rules}) < len(rules):
        for position, rule in enumerate(rules, start=1):
            rule.priority = position * PRIORITY_STEP
    a, b = rules[index], rules[other]
    a.priority, b.priority = b.priority, a.priority
    db.session.flush()
    return True


def scope_place(rule: RoutingRule) -> Any:
    """The community, grid or complex a rule is limited to, or None."""
    model = SCOPE_MODELS.get(rule.scope_kind)
    if model is None or rule.scope_id is None:
        return None
    return db.session.get(model, rule.scope_id)


def describe_scope(rule: RoutingRule) -> str:
    """Where a rule applies, in place names: "any place", "东怡社区 · 第一网格"…"""
    if rule.scope_kind == "any":
        return _("Any place")
    place = scope_place(rule)
    if place is None:
        return _("A place that no longer exists")
    if isinstance(place, Community):
        return place.name
    if isinstance(place, Grid):
        return f"{place.community.name} · {place.name}"
    return f"{place.grid.community.name} · {place.grid.name} · {place.name}"
