"""The governance pages as each persona sees them: the list, a task, the form, closing, 每月一题,
and the tasks on the ledger dashboard, a grid's day and a ticket's page.

The clock of the pages stands at NOW, Friday 2026-12-04 10:00 in Shanghai; the tasks
open on Wednesday 2026-11-18 (T0) unless a test says otherwise.
"""
from __future__ import annotations

import re
from datetime import date

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.conftest import csrf_from, login
from tests.factories import T0, TZ, World, make_ticket
from tests.governance_helpers import days, local, open_task
from ticketing.extensions import db
from ticketing.models import GovernanceTask, User
from ticketing.services import ledger
from ticketing.services.photos import PhotoStore

NOW = local(12, 4)


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("ticketing.governance.views", "ticketing.ledger.views"):
        monkeypatch.setattr(f"{module}.now", lambda: NOW)


def page(client: FlaskClient, url: str) -> tuple[int, str]:
    response = client.get(url)
    return response.status_code, response.get_data(as_text=True)


def form_data(client: FlaskClient, url: str, **fields: object) -> dict[str, object]:
    """The CSRF token of the form at `url`, with the fields."""
    return {"csrf_token": csrf_from(client.get(url).get_data(as_text=True)), **fields}


def new_task_fields(world: World, **fields: object) -> dict[str, object]:
    values: dict[str, object] = {
        "title": "槐树院楼道灯反复不亮", "place": f"complex:{world.courtyard.id}",
        "category_id": world.category("repair.stair_light").id, "responsible": f"user:{world.gina.id}",
        "responsible_unit": "", "plan": "更换声控开关", "deadline": "2026-12-20",
    }
    values.update(fields)
    return values


def count_tasks() -> int:
    return db.session.scalar(select(func.count()).select_from(GovernanceTask)) or 0


# --- opening -------------------------------------------------------------------------------------


def test_a_supervisor_opens_a_task_through_the_form(client: FlaskClient, world: World, english: None) -> None:
    login(client, world.sam)
    status, html = page(client, "/governance/new")
    assert status == 200 and "Open a governance task" in html and world.courtyard.name in html
    assert world.east.name not in html  # community B's complex: not Sam's
    response = client.post("/governance/new", data=form_data(client, "/governance/new", **new_task_fields(world)))
    assert response.status_code == 303
    task = db.session.scalars(select(GovernanceTask)).one()
    assert response.headers["Location"].endswith(f"/governance/{task.id}")
    assert (task.title, task.deadline, task.opened_at) == ("槐树院楼道灯反复不亮", date(2026, 12, 20), NOW)
    status, html = page(client, f"/governance/{task.id}")
    assert status == 200 and "槐树院楼道灯反复不亮" in html and world.gina.display_name in html


def test_the_form_says_what_is_wrong_and_keeps_what_was_typed(
        client: FlaskClient, world: World, english: None) -> None:
    login(client, world.sam)
    response = client.post("/governance/new", data=form_data(
        client, "/governance/new", **new_task_fields(world, title="", deadline="2026-12-01",
                                                     plan="先排查线路")))
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Give the task a title." in html and "The deadline cannot be in the past." in html
    assert "先排查线路" in html and count_tasks() == 0


def test_a_deadline_that_is_not_a_date_is_refused(client: FlaskClient, world: World) -> None:
    login(client, world.sam)
    response = client.post("/governance/new", data=form_data(
        client, "/governance/new", **new_task_fields(world, deadline="next week")))
    assert response.status_code == 400 and count_tasks() == 0


def test_a_form_without_its_csrf_token_is_refused(client: FlaskClient, world: World) -> None:
    login(client, world.sam)
    assert client.post("/governance/new", data=new_task_fields(world)).status_code == 400
    assert count_tasks() == 0


def test_the_hotspot_page_link_fills_in_the_form(client: FlaskClient, world: World) -> None:
    login(client, world.sue)
    status, html = page(client, f"/governance/new?level=complex&place_id={world.east.id}"
                                f"&category=repair.water_leak&hotspot=12&title=东苑漏水反复")
    assert status == 200
    assert re.search(rf'<option selected value="complex:{world.east.id}">', html)
    assert re.search(rf'<option selected value="{world.category("repair.water_leak").id}">', html)
    assert 'value="东苑漏水反复"' in html and 'name="hotspot" type="hidden" value="12"' in html


def test_the_cluster_a_task_came_from_is_kept(
        client: FlaskClient, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from ticketing.services import hotspots

    spot = SimpleNamespace(id=12, place_name="槐树院", category_id=None, count=7, previous_count=1, days=30,
                           first_at=T0, last_at=T0 + days(5))
    monkeypatch.setattr(hotspots, "visible", lambda user, hotspot_id: spot if hotspot_id == spot.id else None)
    login(client, world.sam)
    status, html = page(client, "/governance/new?hotspot=12")
    assert status == 200 and "槐树院" in html
    client.post("/governance/new", data=form_data(client, "/governance/new?hotspot=12",
                                                  **new_task_fields(world, hotspot="12")))
    task = db.session.scalars(select(GovernanceTask)).one()
    assert task.hotspot_id == 12 and "槐树院" in task.hotspot_snapshot


# --- who may do what ---------------------------------------------------------------------------------


def test_dispatchers_read_tasks_but_do_not_change_them(client: FlaskClient, world: World) -> None:
    task = open_task(world)
    login(client, world.dora)
    assert page(client, "/governance/")[0] == 200
    assert page(client, f"/governance/{task.id}")[0] == 200
    assert page(client, "/governance/new")[0] == 403
    assert page(client, f"/governance/{task.id}/edit")[0] == 403
    token = csrf_from(page(client, f"/governance/{task.id}")[1])
    response = client.post(f"/governance/{task.id}/close", data={"csrf_token": token, "note": "done"})
    assert response.status_code == 403
    db.session.refresh(task)
    assert task.is_open


@pytest.mark.parametrize("who", ["gina", "pete", "vera"])
def test_handlers_find_no_governance_pages(client: FlaskClient, world: World, who: str) -> None:
    task = open_task(world)
    login(client, getattr(world, who))
    assert page(client, "/governance/")[0] == 404
    assert page(client, f"/governance/{task.id}")[0] == 404
    assert page(client, "/governance/month/2026-11")[0] == 404


def test_a_task_out_of_scope_is_not_found(client: FlaskClient, world: World) -> None:
    task = open_task(world)
    login(client, world.dan)
    assert page(client, f"/governance/{task.id}")[0] == 404
    assert "槐树院楼道灯反复不亮" not in page(client, "/governance/?view=all")[1]


def test_signed_out_visitors_are_sent_to_log_in(client: FlaskClient, world: World) -> None:
    assert client.get("/governance/").status_code == 302


def test_the_menu_links_the_tasks_for_those_who_read_them(client: FlaskClient, world: World) -> None:
    login(client, world.sam)
    assert 'href="/governance/"' in page(client, "/inbox/")[1]
    client.post("/auth/logout", data={"csrf_token": csrf_from(page(client, "/inbox/")[1])})
    login(client, world.gina)
    assert 'href="/governance/"' not in page(client, "/inbox/")[1]


# --- the list, a task, editing and closing ----------------------------------------------------------------


def test_the_list_says_which_tasks_reduced_complaints_and_by_how_much(
        client: FlaskClient, world: World, store: PhotoStore, english: None) -> None:
    for i in range(10):  # ten in the month before, none since
        make_ticket(world, store, now=local(10, 20) + days(3 * i))
    fell = open_task(world, title="灯修好了")
    quiet = open_task(world, title="西苑很少有人报", place=f"complex:{world.west.id}")
    login(client, world.sam)
    status, html = page(client, "/governance/")
    assert status == 200
    item = html[html.index("灯修好了"):html.index("西苑很少有人报")]
    assert "Complaints fell -100%" in item and "2.3 → 0.0 a week" in item
    assert "Too few tickets to judge (0, fewer than 10)" in html[html.index("西苑很少有人报"):]
    assert "Past its deadline" in item  # due 2 December, now the 4th
    assert "complaints fell after 1 of the 1 that can be judged" in html
    assert fell.id and quiet.id


def test_a_tasks_page_draws_its_weeks_and_masks_its_tickets(
        client: FlaskClient, world: World, store: PhotoStore, english: None) -> None:
    task = open_task(world)
    ticket = make_ticket(world, store, now=T0 + days(1), description="楼道灯又坏了，请打13912345678")
    db.session.commit()
    from ticketing.services import governance

    governance.link_new(T0 + days(1))
    db.session.commit()
    login(client, world.dora)
    status, html = page(client, f"/governance/{task.id}")
    assert status == 200
    assert html.count("<rect") == 1 and "opened" in html  # one week with a ticket, and the opening
    assert ticket.number in html and "13912345678" not in html and "139****5678" in html
    assert "Close the task" not in html  # Dora reads only


def test_a_supervisor_edits_a_task(client: FlaskClient, world: World) -> None:
    task = open_task(world)
    login(client, world.sam)
    status, html = page(client, f"/governance/{task.id}/edit")
    assert status == 200 and "排查线路，更换声控开关</textarea>" in html
    assert f'<option selected value="user:{world.gina.id}">' in html
    response = client.post(f"/governance/{task.id}/edit", data=form_data(
        client, f"/governance/{task.id}/edit", title="新标题", responsible="", responsible_unit="区住建委",
        plan="联系住建委", deadline="2026-12-02"))  # already past, kept as it was
    assert response.status_code == 303
    db.session.refresh(task)
    assert (task.title, task.responsible_name, task.plan) == ("新标题", "区住建委", "联系住建委")


def test_closing_needs_a_note(client: FlaskClient, world: World, english: None) -> None:
    task = open_task(world)
    login(client, world.sam)
    token = csrf_from(page(client, f"/governance/{task.id}")[1])
    response = client.post(f"/governance/{task.id}/close", data={"csrf_token": token, "note": " "})
    assert response.status_code == 400 and "Say what was done" in response.get_data(as_text=True)
    response = client.post(f"/governance/{task.id}/close", data={"csrf_token": token, "note": "已更换开关"})
    assert response.status_code == 303
    db.session.refresh(task)
    assert (task.status, task.closing_note, task.closed_at) == ("closed", "已更换开关", NOW)
    html = page(client, f"/governance/{task.id}")[1]
    assert "已更换开关" in html and "Close the task" not in html
    assert page(client, f"/governance/{task.id}/edit")[0] == 404


def test_the_month_view_lists_the_tasks_opened_in_that_month(
        client: FlaskClient, world: World, english: None) -> None:
    open_task(world, title="十一月的任务")
    open_task(world, title="十月的任务", at=local(10, 31, 23, 30), deadline=date(2026, 11, 30))
    login(client, world.sue)
    status, html = page(client, "/governance/month/2026-11")
    assert status == 200 and "十一月的任务" in html and "十月的任务" not in html
    assert "/governance/month/2026-10" in html and "/governance/month/2026-12" in html
    assert "十月的任务" in page(client, "/governance/month/2026-10")[1]
    assert page(client, "/governance/month/2026-13")[0] == 404
    assert client.get("/governance/month").headers["Location"].endswith("/governance/month/2026-12")


# --- the ledgers and the ticket page -------------------------------------------------------------------------


def test_the_dashboard_shows_the_areas_open_tasks_overdue_first(
        client: FlaskClient, world: World, english: None) -> None:
    later = open_task(world, title="后到期的任务", deadline=date(2026, 12, 30))
    open_task(world, title="已过期的任务", place=f"complex:{world.west.id}", deadline=date(2026, 12, 1))
    open_task(world, world.sue, title="西岭的任务", place=f"complex:{world.east.id}")
    login(client, world.sam)
    status, html = page(client, "/ledger/")
    assert status == 200 and 'id="governance"' in html
    block = html[html.index('id="governance"'):]
    assert block.index("已过期的任务") < block.index("后到期的任务") and "西岭的任务" not in html
    assert "Past its deadline" in block and f"/governance/{later.id}" in block


def test_the_dashboard_block_stays_off_the_tickets(client: FlaskClient, world: World) -> None:
    from sqlalchemy import event

    open_task(world)
    login(client, world.sam)
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert client.get("/ledger/").status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    governance_reads = [s for s in statements if "governance_tasks" in s]
    assert governance_reads and not [s for s in governance_reads if "tickets" in s.replace("governance_task_tickets", "")]


def test_a_grid_workers_ledger_shows_the_tasks_in_their_grid_without_links(
        client: FlaskClient, world: World, english: None) -> None:
    task = open_task(world)
    open_task(world, title="西苑的任务", place=f"complex:{world.west.id}")
    ledger.compile_day(date(2026, 11, 20), TZ, NOW)
    login(client, world.gina)
    status, html = page(client, "/ledger/grid/CA-01/2026-11-20")
    assert status == 200 and "Governance tasks in this grid" in html and task.title in html
    assert "西苑的任务" not in html and f"/governance/{task.id}" not in html
    assert "Governance tasks in this grid" not in page(client, "/ledger/grid/CA-01/2026-11-17")[1]


def test_a_linked_tickets_page_names_its_task(client: FlaskClient, world: World, store: PhotoStore,
                                              english: None) -> None:
    from ticketing.services import governance

    task = open_task(world)
    ticket = make_ticket(world, store, now=T0 + days(1))
    other = make_ticket(world, store, now=T0 + days(1), building=world.building_west)
    governance.link_new(T0 + days(1))
    db.session.commit()
    login(client, world.dora)
    html = page(client, f"/tickets/{ticket.number}")[1]
    assert "Part of the governance task" in html and f"/governance/{task.id}" in html
    assert "Part of the governance task" not in page(client, f"/tickets/{other.number}")[1]


def test_nobody_but_the_people_of_the_lists_may_be_named(client: FlaskClient, world: World) -> None:
    outsider = db.session.scalar(select(User).where(User.username == "adam"))
    assert outsider is not None
    login(client, world.sam)
    response = client.post("/governance/new", data=form_data(
        client, "/governance/new", **new_task_fields(world, responsible=f"user:{outsider.id}")))
    assert response.status_code == 400 and count_tasks() == 0
