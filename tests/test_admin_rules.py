"""The routing-rules admin page and the service behind it: create, edit, disable, reorder."""
from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.conftest import csrf_token, login
from tests.factories import World
from ticketing.admin import rules
from ticketing.admin.rules import RuleData
from ticketing.extensions import db
from ticketing.models import RoutingRule, SlaTier
from ticketing.services.errors import ValidationFailed

pytestmark = pytest.mark.usefixtures("english")


def rule_count() -> int:
    return db.session.scalar(select(func.count()).select_from(RoutingRule)) or 0


def make_rule(name: str, **fields: Any) -> RoutingRule:
    """A saved rule (placed last), through the service."""
    data = RuleData(name=name, handler_kind=fields.pop("handler_kind", "grid_worker"), **fields)
    rule = rules.save_rule(data)
    db.session.commit()
    return rule


def form_data(client: FlaskClient, **fields: Any) -> dict[str, Any]:
    """A complete rule form with a fresh CSRF token; `fields` override the defaults."""
    data: dict[str, Any] = {
        "csrf_token": csrf_token(client, "/admin/rules/new"),
        "name": "Repairs in grid A1", "category_id": "", "scope_kind": "any",
        "community_id": "", "grid_id": "", "complex_id": "", "handler_kind": "grid_worker",
        "team_id": "", "company_id": "", "tier_id": "",
    }
    data.update({k: str(v) for k, v in fields.items()})
    return data


# --- The service -------------------------------------------------------------

def test_new_rules_go_last(world: World) -> None:
    first = make_rule("First")
    second = make_rule("Second")
    assert second.priority > first.priority
    assert [r.name for r in rules.ordered_rules()] == ["First", "Second"]


def test_a_team_for_a_grid_worker_rule_is_refused(world: World) -> None:
    with pytest.raises(ValidationFailed) as exc:
        rules.save_rule(RuleData(name="x", handler_kind="grid_worker", team_id=world.volunteers.id))
    assert set(exc.value.errors) == {"team_id"}


def test_a_company_for_a_team_rule_is_refused(world: World) -> None:
    with pytest.raises(ValidationFailed) as exc:
        rules.save_rule(RuleData(name="x", handler_kind="volunteer_team", company_id=world.company.id))
    assert set(exc.value.errors) == {"company_id"}


def test_a_team_of_the_wrong_kind_is_refused(world: World) -> None:
    with pytest.raises(ValidationFailed) as exc:
        rules.save_rule(RuleData(name="x", handler_kind="volunteer_team", team_id=world.mediators.id))
    assert set(exc.value.errors) == {"team_id"}


def test_a_team_outside_the_scoped_community_is_refused(world: World) -> None:
    with pytest.raises(ValidationFailed) as exc:
        rules.save_rule(RuleData(name="x", scope_kind="grid", scope_id=world.grid_b1.id,
                                 handler_kind="volunteer_team", team_id=world.volunteers.id))
    assert set(exc.value.errors) == {"team_id"}


def test_a_team_of_the_complex_community_is_accepted(world: World) -> None:
    rule = rules.save_rule(RuleData(name="x", scope_kind="complex", scope_id=world.west.id,
                                    handler_kind="mediation_team", team_id=world.mediators.id))
    assert rule.team_id == world.mediators.id


def test_unknown_ids_are_refused_field_by_field(world: World) -> None:
    with pytest.raises(ValidationFailed) as exc:
        rules.save_rule(RuleData(name="", category_id=99999, scope_kind="complex", scope_id=99999,
                                 handler_kind="property", company_id=99999, tier_id=99999))
    assert set(exc.value.errors) == {"name", "category_id", "scope_id", "company_id", "tier_id"}
    assert rule_count() == 0


def test_a_place_for_an_any_scope_or_none_for_a_place_scope_is_refused(world: World) -> None:
    for data in (RuleData(name="x", scope_kind="any", scope_id=world.grid_a1.id, handler_kind="grid_worker"),
                 RuleData(name="x", scope_kind="grid", handler_kind="grid_worker"),
                 RuleData(name="x", scope_kind="street", handler_kind="grid_worker"),
                 RuleData(name="x", handler_kind="plumber")):
        with pytest.raises(ValidationFailed):
            rules.save_rule(data)
    assert rule_count() == 0


def test_moving_reorders_even_rules_sharing_a_priority(world: World) -> None:
    a, b, c = make_rule("A"), make_rule("B"), make_rule("C")
    a.priority = b.priority = c.priority = 100
    db.session.commit()
    assert rules.move_rule(c.id, "up")
    db.session.commit()
    assert [r.name for r in rules.ordered_rules()] == ["A", "C", "B"]
    assert len({a.priority, b.priority, c.priority}) == 3


def test_the_first_rule_cannot_move_up(world: World) -> None:
    a, _b = make_rule("A"), make_rule("B")
    assert not rules.move_rule(a.id, "up")


def test_scope_is_described_with_place_names(world: World) -> None:
    rule = make_rule("x", scope_kind="complex", scope_id=world.managed.id)
    assert rules.describe_scope(rule) == "东怡社区 · 第一网格 · 红星小区"


# --- The pages ---------------------------------------------------------------

def test_admin_creates_a_rule(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    tier = db.session.scalars(select(SlaTier).order_by(SlaTier.rank)).first()
    group = world.category("repair.stair_light").parent
    response = client.post("/admin/rules/new", data=form_data(
        client, name="Repairs in the managed complex", category_id=group.id, scope_kind="complex",
        complex_id=world.managed.id, grid_id=world.grid_b1.id,  # ignored: not the chosen kind
        handler_kind="property", company_id=world.company.id, tier_id=tier.id))
    assert response.status_code == 303
    rule = db.session.scalars(select(RoutingRule)).one()
    assert (rule.name, rule.category_id, rule.scope_kind, rule.scope_id, rule.handler_kind,
            rule.team_id, rule.company_id, rule.tier_id, rule.active) == (
        "Repairs in the managed complex", group.id, "complex", world.managed.id, "property",
        None, world.company.id, tier.id, True)
    page = client.get("/admin/rules").get_data(as_text=True)
    assert "Repairs in the managed complex" in page and "红星小区" in page and "红心物业服务公司" in page


def test_admin_edits_a_rule(client: FlaskClient, world: World) -> None:
    rule = make_rule("Old name")
    priority = rule.priority
    login(client, world.adam)
    assert "Old name" in client.get(f"/admin/rules/{rule.id}/edit").get_data(as_text=True)
    response = client.post(f"/admin/rules/{rule.id}/edit", data=form_data(
        client, name="Volunteers for A", scope_kind="community", community_id=world.community_a.id,
        handler_kind="volunteer_team", team_id=world.volunteers.id))
    assert response.status_code == 303
    db.session.refresh(rule)
    assert (rule.name, rule.scope_kind, rule.scope_id, rule.handler_kind, rule.team_id, rule.priority) == (
        "Volunteers for A", "community", world.community_a.id, "volunteer_team", world.volunteers.id, priority)


def test_invalid_combination_is_refused_with_nothing_saved(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    response = client.post("/admin/rules/new", data=form_data(
        client, handler_kind="grid_worker", team_id=world.volunteers.id))
    assert response.status_code == 400
    assert "Only volunteer and mediation rules name a team." in response.get_data(as_text=True)
    assert rule_count() == 0


def test_a_team_of_another_community_is_refused_on_the_page(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    response = client.post("/admin/rules/new", data=form_data(
        client, scope_kind="grid", grid_id=world.grid_b1.id, handler_kind="mediation_team",
        team_id=world.mediators.id))
    assert response.status_code == 400
    assert "The team must belong to the community the rule applies to." in response.get_data(as_text=True)
    assert rule_count() == 0


def test_a_place_scope_without_its_place_is_refused(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    response = client.post("/admin/rules/new", data=form_data(client, scope_kind="grid"))
    assert response.status_code == 400
    assert "Choose the place the rule applies to." in response.get_data(as_text=True)
    assert rule_count() == 0


def test_admin_disables_and_enables_a_rule(client: FlaskClient, world: World) -> None:
    rule = make_rule("Toggle me")
    login(client, world.adam)
    token = csrf_token(client, "/admin/rules")
    assert client.post(f"/admin/rules/{rule.id}/disable", data={"csrf_token": token}).status_code == 303
    db.session.refresh(rule)
    assert not rule.active
    assert 'class="rule card inactive"' in client.get("/admin/rules").get_data(as_text=True)
    client.post(f"/admin/rules/{rule.id}/enable", data={"csrf_token": token})
    db.session.refresh(rule)
    assert rule.active


def test_admin_moves_a_rule_down_swapping_priorities(client: FlaskClient, world: World) -> None:
    first, second = make_rule("First"), make_rule("Second")
    p1, p2 = first.priority, second.priority
    login(client, world.adam)
    token = csrf_token(client, "/admin/rules")
    assert client.post(f"/admin/rules/{first.id}/move/down", data={"csrf_token": token}).status_code == 303
    db.session.refresh(first)
    db.session.refresh(second)
    assert (first.priority, second.priority) == (p2, p1)
    client.post(f"/admin/rules/{first.id}/move/up", data={"csrf_token": token})
    db.session.refresh(first)
    db.session.refresh(second)
    assert (first.priority, second.priority) == (p1, p2)


@pytest.mark.parametrize("persona", ["sam", "dora", "gina"])
def test_non_admins_get_not_found(client: FlaskClient, world: World, persona: str) -> None:
    rule = make_rule("Secret")
    login(client, persona)
    token = csrf_token(client, "/auth/login")
    assert client.get("/admin/rules").status_code == 404
    assert client.get("/admin/rules/new").status_code == 404
    assert client.get(f"/admin/rules/{rule.id}/edit").status_code == 404
    assert client.post(f"/admin/rules/{rule.id}/disable", data={"csrf_token": token}).status_code == 404
    assert client.post(f"/admin/rules/{rule.id}/move/up", data={"csrf_token": token}).status_code == 404
    db.session.refresh(rule)
    assert rule.active


def test_the_nav_links_administration_for_admins_only(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    assert 'href="/admin/rules"' in client.get("/admin/rules").get_data(as_text=True)
    client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/admin/rules")})
    login(client, world.dora)
    assert 'href="/admin/rules"' not in client.get("/console/").get_data(as_text=True)


def test_actions_without_csrf_token_are_refused(client: FlaskClient, world: World) -> None:
    rule = make_rule("Guarded")
    login(client, world.adam)
    assert client.post(f"/admin/rules/{rule.id}/disable").status_code == 400
    data = form_data(client, name="Sneaky")
    del data["csrf_token"]
    assert client.post("/admin/rules/new", data=data).status_code == 400
    db.session.refresh(rule)
    assert rule.active and rule_count() == 1
