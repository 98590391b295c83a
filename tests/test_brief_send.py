"""The morning brief delivered: inbox messages once a day, working days only, by hand,
and the page the message leads to."""
from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.brief_helpers import NOW, TODAY, brief_world
from tests.conftest import login
from tests.factories import TZ, World, calendar
from ticketing.extensions import db
from ticketing.models import Notification, OutboxMessage, Ticket
from ticketing.queues import DELIVER_NOTIFICATION
from ticketing.services import brief_send
from ticketing.services.brief_rules import RULES
from ticketing.services.photos import PhotoStore
from workers import jobs


@pytest.fixture()
def tickets(world: World, store: PhotoStore) -> dict[str, Ticket]:
    return brief_world(world, store)


def briefs(channel: str = "inbox") -> list[Notification]:
    return list(db.session.scalars(select(Notification).where(Notification.kind == "brief",
                                                              Notification.channel == channel)
                                   .order_by(Notification.user_id)))


# --- sending --------------------------------------------------------------------------


def test_each_supervisor_gets_one_brief_and_a_second_run_sends_nothing(world: World, tickets: dict) -> None:
    assert brief_send.send(TODAY, NOW, calendar()) == 2
    sam, sue = briefs()
    assert (sam.user_id, sue.user_id) == (world.sam.id, world.sue.id)
    assert sam.subject == "晨报 11-19：红 1 · 黄 1 · 绿 0 个网格"
    assert "已超期 1 件" in sam.body and "已超期 2 件" in sue.body
    assert sam.dedupe_key == f"brief:2026-11-19:u{world.sam.id}" and sam.status == "sent"
    assert brief_send.send(TODAY, NOW, calendar()) == 0
    assert len(briefs()) == 2


def test_an_inactive_supervisor_gets_no_brief(world: World, tickets: dict) -> None:
    world.sam.active = False
    db.session.commit()
    assert brief_send.send(TODAY, NOW, calendar()) == 1
    assert [m.user_id for m in briefs()] == [world.sue.id]


def test_a_copy_goes_by_sms_when_a_template_is_configured_and_the_supervisor_has_a_mobile(
        ctx: Flask, monkeypatch: pytest.MonkeyPatch, world: World, tickets: dict) -> None:
    world.sue.phone = "13900001111"
    db.session.commit()
    monkeypatch.setitem(ctx.config, "SMS_TEMPLATES", {"brief": {"code": "SMS_1", "params": []}})
    assert brief_send.send(TODAY, NOW, calendar()) == 2
    (sms,) = briefs("sms")
    assert (sms.user_id, sms.address, sms.status) == (world.sue.id, "13900001111", "pending")
    assert sms.params is not None and sms.params["overdue"] == "2" and sms.params["link"].endswith("/brief/")
    assert [sms.id] in db.session.scalars(select(OutboxMessage.args).where(OutboxMessage.job == DELIVER_NOTIFICATION))


def test_no_sms_goes_without_a_template(world: World, tickets: dict) -> None:
    world.sue.phone = "13900001111"
    db.session.commit()
    brief_send.send(TODAY, NOW, calendar())
    assert briefs("sms") == []


def test_one_supervisors_failure_does_not_hold_back_the_others(monkeypatch: pytest.MonkeyPatch, world: World,
                                                               tickets: dict) -> None:
    real = brief_send.compose

    def compose(user, day, now, cal):  # type: ignore[no-untyped-def]
        if user.id == world.sam.id:
            raise RuntimeError("broken")
        return real(user, day, now, cal)

    monkeypatch.setattr(brief_send, "compose", compose)
    with pytest.raises(brief_send.BriefsFailed) as failed:
        brief_send.send(TODAY, NOW, calendar())
    assert (failed.value.written, failed.value.failed) == (1, [world.sam.id])
    monkeypatch.setattr(brief_send, "compose", real)
    assert brief_send.send(TODAY, NOW, calendar()) == 1  # the retry writes only sam's


# --- the schedule: working days only ------------------------------------------------------


def eight(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 8, tzinfo=TZ).astimezone(UTC)


def test_the_scheduled_run_sends_nothing_on_a_holiday(monkeypatch: pytest.MonkeyPatch, world: World) -> None:
    monkeypatch.setattr(jobs, "utcnow", lambda: eight(2026, 10, 1))  # National Day, a Thursday
    assert jobs.morning_briefs() == "not a working day: no briefs"
    assert briefs() == []


def test_the_scheduled_run_sends_on_a_make_up_saturday(world: World) -> None:
    assert brief_send.morning(eight(2026, 10, 10), calendar()) == 2  # 调休: a working Saturday
    assert brief_send.morning(eight(2026, 10, 17), calendar()) is None  # an ordinary Saturday


def test_flask_brief_send_sends_on_any_day_and_says_how_many(ctx: Flask, world: World) -> None:
    runner = ctx.test_cli_runner()
    result = runner.invoke(args=["brief", "send", "--date", "2026-10-01"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "morning briefs of 2026-10-01: 2 sent"
    assert runner.invoke(args=["brief", "send", "--date", "2026-10-01"]).output.strip().endswith(": 0 sent")
    assert runner.invoke(args=["brief", "send", "--date", "1 Oct"]).exit_code == 2


def test_the_help_of_flask_brief_send_says_it_sends_on_a_holiday_too(ctx: Flask) -> None:
    result = ctx.test_cli_runner().invoke(args=["brief", "send", "--help"])
    assert "weekend or holiday too" in result.output


# --- the page ---------------------------------------------------------------------------


@pytest.fixture()
def at_eight(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ticketing.brief.views.now", lambda: NOW)


def test_the_inbox_message_opens_the_brief_page(client: FlaskClient, world: World, tickets: dict) -> None:
    brief_send.send(TODAY, NOW, calendar())
    sam = briefs()[0]
    login(client, world.sam)
    response = client.get(f"/inbox/{sam.id}/open")
    assert response.status_code == 302 and response.headers["Location"].endswith("/brief/")


def test_nobody_opens_another_supervisors_brief_message(client: FlaskClient, world: World, tickets: dict) -> None:
    brief_send.send(TODAY, NOW, calendar())
    login(client, world.sam)
    assert client.get(f"/inbox/{briefs()[1].id}/open").status_code == 404


def test_the_page_shows_the_supervisors_scope_and_the_rules(client: FlaskClient, at_eight: None, world: World,
                                                             tickets: dict) -> None:
    login(client, world.sam)
    html = client.get("/brief/").get_data(as_text=True)
    assert "晨报" in html and "东怡社区" in html
    assert tickets["late"].number in html and tickets["due"].number in html
    assert tickets["far"].number not in html
    assert "样本少" in html
    with client.application.test_request_context():
        from flask_babel import force_locale
        with force_locale("zh"):
            texts = [rule.text() for rule in RULES]
    for text in texts:
        assert text in html


def test_a_street_supervisor_may_narrow_the_page_to_a_community(client: FlaskClient, at_eight: None,
                                                                 world: World, tickets: dict) -> None:
    login(client, world.sue)
    html = client.get("/brief/?community=CB").get_data(as_text=True)
    assert tickets["far"].number in html and tickets["late"].number not in html


def test_another_community_is_not_found(client: FlaskClient, at_eight: None, world: World, tickets: dict) -> None:
    login(client, world.sam)
    assert client.get("/brief/?community=CB").status_code == 404


def test_the_page_is_not_found_for_a_dispatcher(client: FlaskClient, world: World) -> None:
    login(client, world.dora)
    assert client.get("/brief/").status_code == 404


def test_the_page_is_laid_out_for_a_phone(client: FlaskClient, at_eight: None, world: World, tickets: dict) -> None:
    login(client, world.sue)
    html = client.get("/brief/").get_data(as_text=True)
    assert 'name="viewport" content="width=device-width' in html and 'class="wide"' not in html
    css = (Path(client.application.static_folder or "") / "css" / "brief.css").read_text(encoding="utf-8")
    # 360 px less the page's and a card's padding (1rem each side, 18 px a rem) and borders.
    inside_a_card = 360 - 4 * 18 - 2
    lengths = [float(n) * (18 if unit == "rem" else 1)
               for prop, value in re.findall(r"([a-z-]+)\s*:\s*([^;}]+)", css) if prop != "border-radius"
               for n, unit in re.findall(r"([\d.]+)(rem|px)", value)]
    assert max(lengths) <= inside_a_card
    (tile,) = {float(n) * 18 for n in re.findall(r"\.stats \{[^}]*minmax\(([\d.]+)rem", css)}
    assert 2 * tile + 0.5 * 18 <= inside_a_card  # two figures a row, even inside a card
