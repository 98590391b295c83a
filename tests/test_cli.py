"""Operator commands for reference data and the working-day calendar."""
from __future__ import annotations

from datetime import date

from flask import Flask
from sqlalchemy import func, select

from tests.factories import TZ
from ticketing.extensions import db
from ticketing.models import CalendarDay, Category, SlaTier
from ticketing.services.workdays import load_calendar


def test_reference_load_creates_tiers_and_categories_once(ctx: Flask) -> None:
    runner = ctx.test_cli_runner()
    assert runner.invoke(args=["reference", "load"]).exit_code == 0
    counts = [db.session.scalar(select(func.count()).select_from(m)) for m in (SlaTier, Category)]
    assert runner.invoke(args=["reference", "load"]).exit_code == 0
    assert [db.session.scalar(select(func.count()).select_from(m)) for m in (SlaTier, Category)] == counts
    assert counts[0] == 4


def test_an_admin_declares_a_typhoon_day_a_holiday(ctx: Flask) -> None:
    result = ctx.test_cli_runner().invoke(args=["calendar", "set", "2026-09-16", "--holiday", "--note", "台风停工"])
    assert result.exit_code == 0, result.output
    assert not load_calendar(TZ).is_workday(date(2026, 9, 16))


def test_removing_an_override_restores_the_official_day(ctx: Flask) -> None:
    runner = ctx.test_cli_runner()
    runner.invoke(args=["calendar", "set", "2026-09-16", "--holiday"])
    assert runner.invoke(args=["calendar", "unset", "2026-09-16"]).exit_code == 0
    assert db.session.scalar(select(func.count()).select_from(CalendarDay)) == 0


def test_a_malformed_date_is_a_usage_error_and_changes_nothing(ctx: Flask) -> None:
    result = ctx.test_cli_runner().invoke(args=["calendar", "set", "16/09/2026", "--holiday"])
    assert result.exit_code == 2 and "not a date" in result.output
    assert db.session.scalar(select(func.count()).select_from(CalendarDay)) == 0
