"""Duty rosters: weekly shifts, on call and leave, edited by admins and by supervisors in scope."""
from __future__ import annotations

from datetime import date, time
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import csrf_token, login
from tests.factories import World
from ticketing.extensions import db
from ticketing.models import DutyShift, Leave, User
from ticketing.services import rosters
from ticketing.services.errors import ValidationFailed
from ticketing.services.rosters import ShiftInput

pytestmark = pytest.mark.usefixtures("english")


def shifts(person: User) -> list[tuple[int, time, time]]:
    return [(s.weekday, s.starts, s.ends) for s in db.session.scalars(
        select(DutyShift).where(DutyShift.user_id == person.id).order_by(DutyShift.weekday, DutyShift.starts))]


def leaves(person: User) -> list[tuple[date, date, str]]:
    return [(v.first_day, v.last_day, v.note) for v in db.session.scalars(
        select(Leave).where(Leave.user_id == person.id).order_by(Leave.first_day))]


def roster_form(client: FlaskClient, person: User, rows: list[tuple[int, str, str]],
                on_call: bool = False) -> dict[str, Any]:
    """The roster form as a browser posts it: every row, the empty ones too."""
    data: dict[str, Any] = {"csrf_token": csrf_token(client, f"/admin/people/{person.id}/duty")}
    for index, (weekday, starts, ends) in enumerate(rows):
        data[f"shifts-{index}-weekday"] = str(weekday)
        data[f"shifts-{index}-starts"] = starts
        data[f"shifts-{index}-ends"] = ends
    if on_call:
        data["on_call"] = "y"
    return data


def names_on(client: FlaskClient, url: str) -> str:
    return client.get(url).get_data(as_text=True)


# --- The service -------------------------------------------------------------

def test_a_night_shift_is_stored_as_ending_before_it_starts(world: World) -> None:
    rosters.save_roster(world.gina, [ShiftInput(4, "22:00", "06:00")], on_call=False)
    db.session.commit()
    assert shifts(world.gina) == [(4, time(22), time(6))]


def test_saving_replaces_every_shift(world: World) -> None:
    rosters.save_roster(world.gina, [ShiftInput(0, "08:00", "12:00"), ShiftInput(1, "08:00", "12:00")], False)
    rosters.save_roster(world.gina, [ShiftInput(2, "13:00", "17:00")], True)
    db.session.commit()
    assert shifts(world.gina) == [(2, time(13), time(17))]
    assert world.gina.on_call


@pytest.mark.parametrize("starts, ends", [("8", "12:00"), ("25:00", "12:00"), ("08:60", "12:00"),
                                          ("08:00", ""), ("09:00", "09:00"), ("nine", "five")])
def test_bad_times_are_refused(world: World, starts: str, ends: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        rosters.save_roster(world.gina, [ShiftInput(0, "06:00", "07:00"), ShiftInput(0, starts, ends)], False)
    assert set(exc.value.errors) == {"1"}


def test_overlapping_shifts_are_refused_even_across_midnight(world: World) -> None:
    with pytest.raises(ValidationFailed):
        rosters.save_roster(world.gina, [ShiftInput(0, "08:00", "12:00"), ShiftInput(0, "11:00", "14:00")], False)
    with pytest.raises(ValidationFailed):
        rosters.save_roster(world.gina, [ShiftInput(0, "22:00", "06:00"), ShiftInput(1, "05:00", "09:00")], False)
    with pytest.raises(ValidationFailed):  # Sunday night runs into Monday morning
        rosters.save_roster(world.gina, [ShiftInput(6, "22:00", "06:00"), ShiftInput(0, "05:30", "09:00")], False)


def test_back_to_back_shifts_are_accepted(world: World) -> None:
    saved = rosters.save_roster(world.gina, [ShiftInput(0, "22:00", "06:00"), ShiftInput(1, "06:00", "14:00")], False)
    assert len(saved) == 2


def test_leave_ending_before_it_starts_is_refused(world: World) -> None:
    with pytest.raises(ValidationFailed) as exc:
        rosters.add_leave(world.gina, date(2026, 12, 5), date(2026, 12, 1), "")
    assert set(exc.value.errors) == {"last_day"}


def test_a_street_supervisor_may_edit_property_staff_and_a_community_supervisor_may_not(world: World) -> None:
    assert rosters.editable_person(world.sue, world.pete.id) is not None
    assert rosters.editable_person(world.sue, world.gabe.id) is not None
    assert rosters.editable_person(world.sam, world.pete.id) is None
    assert rosters.editable_person(world.sam, world.vera.id) is not None
    assert rosters.editable_person(world.sam, world.sam.id) is None  # not a handler


# --- The pages ---------------------------------------------------------------

def test_admin_sets_shifts_and_on_call(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    response = client.post(f"/admin/people/{world.gina.id}/duty", data=roster_form(client, world.gina, [
        (0, "08:30", "12:00"), (0, "13:30", "17:30"), (1, "", ""), (1, "", ""), (5, "22:00", "06:00"),
    ], on_call=True))
    assert response.status_code == 303
    assert shifts(world.gina) == [(0, time(8, 30), time(12)), (0, time(13, 30), time(17, 30)),
                                  (5, time(22), time(6))]
    db.session.refresh(world.gina)
    assert world.gina.on_call
    page = names_on(client, "/admin/people")
    assert "Sat 22:00–06:00 (next day)" in page and "on call" in page


def test_the_duty_page_shows_the_saved_shifts(client: FlaskClient, world: World) -> None:
    rosters.save_roster(world.gina, [ShiftInput(2, "09:15", "17:45")], False)
    db.session.commit()
    login(client, world.adam)
    page = names_on(client, f"/admin/people/{world.gina.id}/duty")
    assert 'value="09:15"' in page and 'value="17:45"' in page and page.count('type="time"') == 28


def test_admin_adds_and_removes_leave(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    token = csrf_token(client, f"/admin/people/{world.gina.id}/duty")
    response = client.post(f"/admin/people/{world.gina.id}/leave", data={
        "csrf_token": token, "first_day": "2099-12-01", "last_day": "2099-12-03", "note": "annual leave"})
    assert response.status_code == 303
    assert leaves(world.gina) == [(date(2099, 12, 1), date(2099, 12, 3), "annual leave")]
    assert "On leave 2099-12-01 – 2099-12-03" in names_on(client, "/admin/people")
    leave_id = db.session.scalars(select(Leave.id)).one()
    assert client.post(f"/admin/people/{world.gina.id}/leave/{leave_id}/delete",
                       data={"csrf_token": token}).status_code == 303
    assert leaves(world.gina) == []


def test_a_leave_range_ending_before_it_starts_is_refused(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    response = client.post(f"/admin/people/{world.gina.id}/leave", data={
        "csrf_token": csrf_token(client, f"/admin/people/{world.gina.id}/duty"),
        "first_day": "2099-12-03", "last_day": "2099-12-01", "note": ""})
    assert response.status_code == 400
    assert "The last day cannot be before the first day." in response.get_data(as_text=True)
    assert leaves(world.gina) == []


def test_bad_times_are_refused_and_nothing_is_saved(client: FlaskClient, world: World) -> None:
    rosters.save_roster(world.gina, [ShiftInput(3, "08:00", "12:00")], False)
    db.session.commit()
    login(client, world.adam)
    response = client.post(f"/admin/people/{world.gina.id}/duty", data=roster_form(client, world.gina, [
        (0, "08:00", "12:00"), (1, "25:00", "12:00")], on_call=True))
    assert response.status_code == 400
    assert "Enter both times as HH:MM" in response.get_data(as_text=True)
    assert shifts(world.gina) == [(3, time(8), time(12))]
    db.session.refresh(world.gina)
    assert not world.gina.on_call


def test_supervisor_edits_a_grid_worker_of_the_community(client: FlaskClient, world: World) -> None:
    login(client, world.sam)
    page = names_on(client, "/admin/people")
    assert "Gina" in page and "Vera" in page and "Gabe" not in page and "Pete" not in page
    response = client.post(f"/admin/people/{world.gina.id}/duty",
                           data=roster_form(client, world.gina, [(0, "09:00", "17:00")]))
    assert response.status_code == 303
    assert shifts(world.gina) == [(0, time(9), time(17))]


def test_supervisor_gets_not_found_for_another_community(client: FlaskClient, world: World) -> None:
    login(client, world.sam)
    token = csrf_token(client, "/admin/people")
    assert client.get(f"/admin/people/{world.gabe.id}/duty").status_code == 404
    response = client.post(f"/admin/people/{world.gabe.id}/duty", data={
        "csrf_token": token, "shifts-0-weekday": "0", "shifts-0-starts": "09:00", "shifts-0-ends": "17:00"})
    assert response.status_code == 404
    assert client.post(f"/admin/people/{world.gabe.id}/leave", data={
        "csrf_token": token, "first_day": "2099-01-01", "last_day": "2099-01-02"}).status_code == 404
    assert shifts(world.gabe) == [] and leaves(world.gabe) == []


def test_someone_elses_leave_cannot_be_removed_through_gina(client: FlaskClient, world: World) -> None:
    rosters.add_leave(world.gabe, date(2099, 1, 1), date(2099, 1, 2), "")
    db.session.commit()
    leave_id = db.session.scalars(select(Leave.id)).one()
    login(client, world.adam)
    response = client.post(f"/admin/people/{world.gina.id}/leave/{leave_id}/delete",
                           data={"csrf_token": csrf_token(client, "/admin/people")})
    assert response.status_code == 404
    assert len(leaves(world.gabe)) == 1


@pytest.mark.parametrize("persona", ["gina", "dora"])
def test_handlers_and_dispatchers_get_not_found(client: FlaskClient, world: World, persona: str) -> None:
    login(client, persona)
    assert client.get("/admin/people").status_code == 404
    assert client.get(f"/admin/people/{world.gina.id}/duty").status_code == 404


def test_supervisors_see_a_rosters_link(client: FlaskClient, world: World) -> None:
    login(client, world.sam)
    page = names_on(client, "/console/")
    assert 'href="/admin/people"' in page and 'href="/admin/rules"' not in page


def test_saving_without_csrf_token_is_refused(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    data = roster_form(client, world.gina, [(0, "09:00", "17:00")])
    del data["csrf_token"]
    assert client.post(f"/admin/people/{world.gina.id}/duty", data=data).status_code == 400
    assert shifts(world.gina) == []
