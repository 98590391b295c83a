"""The audit log: every admin and supervisor change writes one append-only entry with
before and after; no secret is ever stored; the page filters and keeps to its reader."""
from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text, update
from sqlalchemy.exc import DatabaseError

from tests.conftest import csrf_token, login
from tests.factories import T0, World
from ticketing.admin import rules
from ticketing.admin.rules import RuleData
from ticketing.extensions import db
from ticketing.models import ApiKey, AuditEntry, KeyKind, Leave, RoutingRule, SlaTier, User
from ticketing.services import accounts, apikeys, audit
from ticketing.services.workdays import WorkCalendar

pytestmark = pytest.mark.usefixtures("english")


def entries(action: str | None = None) -> list[AuditEntry]:
    """The audit entries, oldest first, of one action if given."""
    query = select(AuditEntry).order_by(AuditEntry.id)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    db.session.expire_all()
    return list(db.session.scalars(query))


def only(action: str) -> AuditEntry:
    """The one entry of `action`."""
    found = entries(action)
    assert len(found) == 1, [e.action for e in entries()]
    return found[0]


def post(client: FlaskClient, url: str, page: str, **data: Any) -> Any:
    """Post a form with a fresh CSRF token from `page`."""
    return client.post(url, data={"csrf_token": csrf_token(client, page), **data})


def make_rule(name: str) -> RoutingRule:
    rule = rules.save_rule(RuleData(name=name, handler_kind="grid_worker"))
    db.session.commit()
    return rule


# --- Each change path writes one entry -----------------------------------------

def test_creating_a_rule_writes_who_when_and_the_rule(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    response = post(client, "/admin/rules/new", "/admin/rules/new", name="Repairs", scope_kind="any",
                    handler_kind="grid_worker")
    assert response.status_code == 303
    entry = only("rule.create")
    assert entry.actor_id == world.adam.id and entry.via == "web" and entry.target_type == "rule"
    assert entry.before is None and entry.after["name"] == "Repairs" and entry.after["active"] is True


def test_editing_a_rule_keeps_the_values_before_and_after(client: FlaskClient, world: World) -> None:
    rule = make_rule("Old name")
    login(client, world.adam)
    post(client, f"/admin/rules/{rule.id}/edit", f"/admin/rules/{rule.id}/edit", name="New name",
         scope_kind="any", handler_kind="grid_worker")
    entry = only("rule.update")
    assert entry.target_id == str(rule.id)
    assert audit.changes(entry) == [("name", "Old name", "New name")]


def test_disabling_a_rule_is_recorded(client: FlaskClient, world: World) -> None:
    rule = make_rule("A rule")
    login(client, world.adam)
    post(client, f"/admin/rules/{rule.id}/disable", "/admin/rules")
    assert audit.changes(only("rule.disable")) == [("active", True, False)]


def test_moving_a_rule_records_its_position(client: FlaskClient, world: World) -> None:
    make_rule("First")
    second = make_rule("Second")
    login(client, world.adam)
    post(client, f"/admin/rules/{second.id}/move/up", "/admin/rules")
    assert audit.changes(only("rule.move")) == [("position", 2, 1)]


def test_saving_a_category_records_its_keywords_and_flags(client: FlaskClient, world: World) -> None:
    pests = world.category("environment.pests")
    was = {"keywords": pests.keywords, "active": pests.active, "public": pests.public}
    login(client, world.adam)
    post(client, f"/admin/categories/{pests.id}", "/admin/categories", keywords="老鼠", active="y", public="y")
    entry = only("category.update")
    assert entry.before == was and entry.after == {"keywords": "老鼠", "active": True, "public": True}


def test_saving_a_tiers_trigger_words_is_recorded(client: FlaskClient, world: World) -> None:
    tier = db.session.scalars(select(SlaTier).order_by(SlaTier.rank)).first()
    login(client, world.adam)
    post(client, f"/admin/tiers/{tier.id}/triggers", "/admin/categories", trigger_words="起火")
    assert only("tier.update").after == {"trigger_words": "起火"}


def test_a_roster_change_records_the_shifts_before_and_after(client: FlaskClient, world: World) -> None:
    login(client, world.sam)
    post(client, f"/admin/people/{world.gina.id}/duty", f"/admin/people/{world.gina.id}/duty",
         **{"shifts-0-weekday": "0", "shifts-0-starts": "08:30", "shifts-0-ends": "17:30", "on_call": "y"})
    entry = only("roster.update")
    assert entry.actor_id == world.sam.id and entry.target_type == "user" and entry.target_id == str(world.gina.id)
    assert entry.before == {"shifts": [], "on_call": False}
    assert entry.after == {"shifts": ["0 08:30-17:30"], "on_call": True}


def test_adding_and_removing_leave_are_recorded(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    page = f"/admin/people/{world.gina.id}/duty"
    post(client, f"/admin/people/{world.gina.id}/leave", page, first_day="2099-12-01", last_day="2099-12-03",
         note="annual leave")
    assert only("leave.add").after == {"first_day": "2099-12-01", "last_day": "2099-12-03", "note": "annual leave"}
    leave_id = db.session.scalars(select(Leave.id)).one()
    post(client, f"/admin/people/{world.gina.id}/leave/{leave_id}/delete", page)
    removed = only("leave.remove")
    assert removed.before["first_day"] == "2099-12-01" and removed.after is None


def test_issuing_and_revoking_a_key_are_recorded_without_the_key(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    response = post(client, "/admin/keys", "/admin/keys", kind="open311", name="Street app")
    assert response.status_code == 201
    row = db.session.scalars(select(ApiKey)).one()
    issued = only("apikey.issue")
    assert issued.actor_id == world.adam.id and issued.after["name"] == "Street app"
    post(client, f"/admin/keys/{row.id}/revoke", "/admin/keys")
    revoked = only("apikey.revoke")
    assert revoked.before["revoked_at"] is None and revoked.after["revoked_at"] is not None
    stored = json.dumps([e.before for e in entries()] + [e.after for e in entries()])
    assert row.key_hash not in stored


def test_a_key_created_on_the_command_line_names_the_shell_user(ctx: Flask, world: World) -> None:
    result = ctx.test_cli_runner().invoke(args=["open311", "create-key", "County app"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[-1]
    entry = only("apikey.issue")
    assert entry.via == "cli" and entry.actor_id is None and entry.actor_label.startswith("shell")
    assert key not in json.dumps(entry.after) and apikeys.digest(key) not in json.dumps(entry.after)


def test_revoking_a_staff_token_on_the_command_line_is_recorded(ctx: Flask, world: World) -> None:
    row, _key = apikeys.issue(KeyKind.STAFF, "Tablet", T0, user=world.gina)
    assert ctx.test_cli_runner().invoke(args=["api", "revoke-token", str(row.id)]).exit_code == 0
    assert only("apikey.revoke").via == "cli"


def test_creating_an_account_on_the_command_line_stores_no_password(ctx: Flask, world: World) -> None:
    result = ctx.test_cli_runner().invoke(
        args=["users", "create", "olga", "--role", "grid_worker", "--grid", "CA-01", "--phone", "13900000000"],
        input="long-enough-pw\nlong-enough-pw\n")
    assert result.exit_code == 0, result.output
    entry = only("user.create")
    olga = db.session.scalars(select(User).where(User.username == "olga")).one()
    assert entry.target_id == str(olga.id) and entry.after["role"] == "grid_worker"
    assert entry.after["grids"] == ["CA-01"] and entry.after["password"] == "changed"
    stored = json.dumps(entry.after)
    assert "long-enough-pw" not in stored and olga.password_hash not in stored


def test_setting_and_unsetting_a_calendar_day_are_recorded(ctx: Flask, world: World) -> None:
    runner = ctx.test_cli_runner()
    runner.invoke(args=["calendar", "set", "2026-09-16", "--holiday", "--note", "台风停工"])
    runner.invoke(args=["calendar", "unset", "2026-09-16"])
    assert only("calendar.set").after == {"is_workday": False, "note": "台风停工"}
    unset = only("calendar.unset")
    assert unset.before == {"is_workday": False, "note": "台风停工"} and unset.after is None


# --- The service -----------------------------------------------------------------

def test_secret_fields_are_stored_only_as_changed(ctx: Flask) -> None:
    entry = audit.record(None, "user.update", "user", 1, "x", {"password_hash": "old-hash", "phone": "1"},
                         {"password_hash": "new-hash", "phone": "2"}, T0, via="cli")
    assert entry.before == {"password_hash": "(hidden)", "phone": "1"}
    assert entry.after == {"password_hash": "changed", "phone": "2"}


def test_an_unknown_door_is_refused(ctx: Flask) -> None:
    with pytest.raises(ValueError):
        audit.record(None, "rule.update", "rule", 1, "x", None, None, T0, via="email")


def test_the_database_refuses_to_change_an_entry(ctx: Flask, world: World) -> None:
    audit.record(world.adam, "rule.create", "rule", 1, "x", None, {"name": "x"}, T0)
    db.session.commit()
    with pytest.raises(DatabaseError):
        db.session.execute(update(AuditEntry).values(target_label="forged"))
    db.session.rollback()
    assert only("rule.create").target_label == "x"


@pytest.mark.postgres
def test_postgresql_refuses_to_delete_an_entry(ctx: Flask, world: World) -> None:
    audit.record(world.adam, "rule.create", "rule", 1, "x", None, {"name": "x"}, T0)
    db.session.commit()
    with pytest.raises(DatabaseError):
        db.session.execute(text("DELETE FROM audit_entries"))
    db.session.rollback()
    assert len(entries()) == 1


# --- The page ----------------------------------------------------------------------

def seed_entries(world: World) -> None:
    """Three entries: adam changes a rule and gina's roster, sam changes gabe's roster."""
    audit.record(world.adam, "rule.update", "rule", 7, "Repairs rule", {"name": "a"}, {"name": "b"}, T0)
    audit.record(world.adam, "roster.update", "user", world.gina.id, "Gina roster",
                 {"on_call": False}, {"on_call": True}, T0 + timedelta(days=1))
    audit.record(world.sue, "roster.update", "user", world.gabe.id, "Gabe roster",
                 {"on_call": False}, {"on_call": True}, T0 + timedelta(days=2))
    db.session.commit()


def test_an_admin_sees_every_entry_with_before_and_after(client: FlaskClient, world: World) -> None:
    seed_entries(world)
    login(client, world.adam)
    page = client.get("/admin/audit").get_data(as_text=True)
    assert "Repairs rule" in page and "Gina roster" in page and "Gabe roster" in page
    assert "Routing rule · changed" in page


def test_the_page_filters_by_kind_actor_and_date(client: FlaskClient, world: World) -> None:
    seed_entries(world)
    login(client, world.adam)
    by_kind = client.get("/admin/audit?type=rule").get_data(as_text=True)
    assert "Repairs rule" in by_kind and "Gina roster" not in by_kind
    by_actor = client.get("/admin/audit?actor=sue").get_data(as_text=True)
    assert "Gabe roster" in by_actor and "Repairs rule" not in by_actor
    by_day = client.get("/admin/audit?from=2026-11-19&to=2026-11-19").get_data(as_text=True)
    assert "Gina roster" in by_day and "Repairs rule" not in by_day and "Gabe roster" not in by_day


def test_a_malformed_date_filter_is_a_400_with_a_message(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    response = client.get("/admin/audit?from=19/11/2026")
    assert response.status_code == 400 and "YYYY-MM-DD" in response.get_data(as_text=True)


def test_a_supervisor_sees_their_own_entries_and_those_about_their_people(client: FlaskClient,
                                                                          world: World) -> None:
    seed_entries(world)
    login(client, world.sam)  # community A: gina is theirs, gabe (community B) is not
    page = client.get("/admin/audit").get_data(as_text=True)
    assert "Gina roster" in page and "Repairs rule" not in page and "Gabe roster" not in page


def test_dispatchers_and_handlers_get_not_found(client: FlaskClient, world: World) -> None:
    login(client, world.dora)
    assert client.get("/admin/audit").status_code == 404


def test_the_page_is_chinese_by_default(ctx: Flask, world: World) -> None:
    seed_entries(world)
    client = ctx.test_client()
    login(client, world.adam)
    page = client.get("/admin/audit").get_data(as_text=True)
    assert "操作日志" in page


def test_deactivating_and_resetting_an_account_are_recorded_without_the_password(ctx: Flask, world: World) -> None:
    accounts.deactivate(world.adam, world.gina, "离职", T0, WorkCalendar(ZoneInfo("Asia/Shanghai")))
    one_time = accounts.reset_password(world.adam, world.gina, T0)
    db.session.commit()
    entry = only("user.deactivate")
    assert entry.actor_id == world.adam.id and entry.target_id == str(world.gina.id)
    assert entry.before["active"] is True and entry.after["active"] is False and entry.after["reason"] == "离职"
    reset = only("user.reset_password")
    assert reset.after == {"password": "changed"} and one_time not in json.dumps(reset.after)


def test_an_applied_places_import_is_recorded_with_its_counts(ctx: Flask, tmp_path: Any) -> None:
    from ticketing.demo import DEMO_BOUNDARIES, DEMO_WORKBOOK

    runner = ctx.test_cli_runner()
    runner.invoke(args=["places", "import", str(DEMO_WORKBOOK), "--dry-run"])
    assert entries("import.apply") == []  # a dry run writes nothing, the log included
    result = runner.invoke(args=["places", "import", str(DEMO_WORKBOOK), "--boundaries", str(DEMO_BOUNDARIES)])
    assert result.exit_code == 0, result.output
    entry = only("import.apply")
    assert entry.via == "cli" and entry.actor_label.startswith("shell")
    assert entry.after["added"]["网格"] >= 1 and entry.after["changes"] == {}
