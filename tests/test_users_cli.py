"""`flask users create` and `flask users reset-password` on a real street office's database."""
from __future__ import annotations

import re

from flask import Flask
from sqlalchemy import select

from ticketing.extensions import db
from ticketing.models import Community, Grid, PropertyCompany, Street, User
from ticketing.services import passwords

ONE_TIME = re.compile(r"One-time password \([^)]*\): ([a-z0-9]{12})")


def places_only() -> None:
    """A fresh database with only its places loaded: no reference data, no accounts."""
    street = Street(code="XX", name="新街道")
    community = Community(code="XX-C1", name="新社区", street=street)
    db.session.add(Grid(code="XX-01", name="第一网格", community=community))
    db.session.commit()


def test_users_create_works_on_a_fresh_database_once_places_exist(ctx: Flask) -> None:
    places_only()
    result = ctx.test_cli_runner().invoke(args=[
        "users", "create", "liu", "--role", "grid_worker", "--grid", "XX-01", "--one-time-password"])
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.username == "liu"))
    assert [grid.code for grid in user.grids] == ["XX-01"] and user.street.code == "XX"
    assert user.must_change_password and user.check_password(ONE_TIME.search(result.output).group(1))


def test_users_create_on_an_empty_database_says_to_load_the_places_first(ctx: Flask) -> None:
    result = ctx.test_cli_runner().invoke(args=["users", "create", "liu", "--role", "grid_worker", "--grid", "XX-01"])
    assert result.exit_code == 1
    assert "there are no grids yet" in result.output and "flask places import" in result.output
    assert db.session.scalar(select(User.id)) is None


def test_an_unknown_grid_code_lists_the_known_ones(ctx: Flask) -> None:
    places_only()
    result = ctx.test_cli_runner().invoke(args=["users", "create", "liu", "--role", "grid_worker", "--grid", "XX-09"])
    assert result.exit_code == 1 and "known grids: XX-01" in result.output


def test_users_create_asks_again_for_a_common_password(ctx: Flask) -> None:
    places_only()
    result = ctx.test_cli_runner().invoke(
        args=["users", "create", "root", "--role", "admin"],
        input="woaini1314\nsturdy lamp on a bicycle\nsturdy lamp on a bicycle\n")
    assert result.exit_code == 0, result.output
    with ctx.test_request_context():
        refusal = str(passwords.problem("woaini1314"))
    assert f"Error: {refusal}" in result.output
    user = db.session.scalar(select(User).where(User.username == "root"))
    assert user.check_password("sturdy lamp on a bicycle") and not user.must_change_password


def test_users_reset_password_prints_a_one_time_password(ctx: Flask) -> None:
    places_only()
    runner = ctx.test_cli_runner()
    runner.invoke(args=["users", "create", "root", "--role", "admin", "--one-time-password"])
    result = runner.invoke(args=["users", "reset-password", "root"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    user = db.session.scalar(select(User).where(User.username == "root"))
    assert user.must_change_password and user.check_password(ONE_TIME.search(result.output).group(1))


def test_users_create_finds_a_company_by_the_code_the_workbook_gave_it(ctx: Flask) -> None:
    places_only()
    db.session.add(PropertyCompany(code="WY-01", name="城关红色物业"))
    db.session.commit()
    result = ctx.test_cli_runner().invoke(args=[
        "users", "create", "zhao", "--role", "property_staff", "--company", "WY-01", "--one-time-password"])
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.username == "zhao"))
    assert user.company.code == "WY-01"
