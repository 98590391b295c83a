"""Which kind of handler a ticket goes to: the first matching routing rule, else the
default (README, "Routing, time limits and the escalation ladder"). The people of that kind are services/routing.py's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ticketing.extensions import db
from ticketing.models import Category, Complex, HandlerKind, RoutingRule, Ticket

DEFAULT_LABELS: dict[str, Any] = {
    HandlerKind.PROPERTY: _l("default: property company of the complex"),
    HandlerKind.VOLUNTEER_TEAM: _l("default: the community's volunteer team"),
    HandlerKind.MEDIATION_TEAM: _l("default: the community's mediation team"),
    HandlerKind.GRID_WORKER: _l("default: the grid's workers"),
}



@dataclass(frozen=True)
class Target:
    """The handler kind a rule or default chose, and the rule's label and overrides."""

    kind: str
    label: str
    team_id: int | None = None
    company_id: int | None = None
    tier_id: int | None = None


def text(message: Any) -> str:
    """A message in the site's default language: it is stored, and read by anyone later.

    `route()` runs inside one `force_locale` for the default language (switching locale
    costs more than the rest of a routing decision), so here it is a plain str().
    """
    return str(message)


def category_ids(category: Category) -> list[int]:
    """The category and its ancestors: a rule for a group matches its children."""
    ids: list[int] = []
    node: Category | None = category
    while node is not None:
        ids.append(node.id)
        node = node.parent
    return ids


def matching_rule(ticket: Ticket, rules: list[RoutingRule]) -> RoutingRule | None:
    """The first of the active `rules` (by ascending priority) that matches the ticket."""
    ids = set(category_ids(ticket.category))
    places = {("any", None)} | {(kind, place_id) for kind, place_id in (
        ("community", ticket.community_id), ("grid", ticket.grid_id), ("complex", ticket.complex_id))
        if place_id is not None}
    for rule in rules:
        if (rule.category_id is None or rule.category_id in ids) and (
                (rule.scope_kind, None if rule.scope_kind == "any" else rule.scope_id) in places):
            return rule
    return None


def active_rules() -> list[RoutingRule]:
    """Every active rule, by ascending priority (a street has tens, not thousands)."""
    return list(db.session.scalars(
        select(RoutingRule).where(RoutingRule.active.is_(True)).order_by(RoutingRule.priority, RoutingRule.id)
    ))


def default_target(ticket: Ticket) -> Target:
    """No rule matched: repairs in a managed complex to its company, elderly help to
    volunteers, disputes to mediators, everything else to the grid (社区兜底)."""
    group = ticket.category.group.code
    cx: Complex | None = ticket.complex
    if group == "repair" and cx is not None and cx.property_company_id is not None:
        kind = HandlerKind.PROPERTY
    elif group == "elderly":
        kind = HandlerKind.VOLUNTEER_TEAM
    elif group == "dispute":
        kind = HandlerKind.MEDIATION_TEAM
    else:
        kind = HandlerKind.GRID_WORKER
    return Target(kind, text(DEFAULT_LABELS[kind]))


def target_for(ticket: Ticket, rules: list[RoutingRule]) -> Target:
    """What the first matching rule of `rules` says, else the default."""
    rule = matching_rule(ticket, rules)
    if rule is None:
        return default_target(ticket)
    return Target(rule.handler_kind, rule.name, rule.team_id, rule.company_id, rule.tier_id)
