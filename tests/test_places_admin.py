"""The places admin pages: the workbook import (preview → apply), downloads, the tree,
every edit on the audit log, moves, boundaries, deactivation, several streets, access.

Personas (tests/factories.py): adam the admin, sam supervisor of community A, dora
dispatcher of A, gina grid worker of grid A1, greg of A2.
"""
from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import select

from tests.conftest import csrf_token, login
from tests.factories import T0, World, calendar, make_ticket, make_user, put_on_call
from tests.places_books import SQUARE, book, feature, geojson, sheets
from ticketing.admin import places_import as import_views
from ticketing.extensions import db
from ticketing.models import (
    AuditEntry,
    Community,
    Complex,
    Grid,
    PropertyCompany,
    Role,
    Street,
    Team,
    Ticket,
    utcnow,
)
from ticketing.services import geo, placing, routing
from ticketing.services.geo_import import wgs84_to_gcj02
from ticketing.services.photos import PhotoStore

pytestmark = pytest.mark.usefixtures("english")

TOKEN = re.compile(r'name="token" value="([^"]+)"')


def entries(action: str) -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def post(client: FlaskClient, url: str, page: str, **data: Any) -> Any:
    """POST a form with the CSRF token of `page`."""
    return client.post(url, data={**data, "csrf_token": csrf_token(client, page)})


def fresh(obj: Any) -> Any:
    db.session.expire_all()
    return db.session.get(type(obj), obj.id)


def preview(client: FlaskClient, workbook: io.BytesIO, boundaries: bytes | None = None, gcj02: bool = False) -> Any:
    data: dict[str, Any] = {"csrf_token": csrf_token(client, "/admin/places/import"),
                            "workbook": (workbook, "places.xlsx")}
    if boundaries is not None:
        data["boundaries"] = (io.BytesIO(boundaries), "grids.geojson")
    if gcj02:
        data["gcj02"] = "1"
    return client.post("/admin/places/import", data=data, content_type="multipart/form-data")


def token_of(response: Any) -> str:
    found = TOKEN.search(response.get_data(as_text=True))
    assert found, response.get_data(as_text=True)[:2000]
    return found.group(1)


def apply(client: FlaskClient, token: str) -> Any:
    return post(client, "/admin/places/import/apply", "/admin/places/import", token=token)


def routed(ticket: Ticket) -> Ticket:
    """Route and commit, as the job does."""
    routing.route(ticket, T0, calendar())
    db.session.commit()
    return ticket


def streets() -> int:
    return len(db.session.scalars(select(Street)).all())


# --- the import page ------------------------------------------------------------


def test_a_preview_with_problems_lists_them_by_sheet_row_and_column_and_writes_nothing(
        client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    bad = sheets(网格=[["编码", "名称", "社区编码"], ["DY-01", "东怡第一网格", "NOPE"]])
    response = preview(client, book(bad))
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Nothing was imported" in html and "<td>网格</td><td>2</td><td>社区编码</td>" in html and "NOPE" in html
    assert 'name="token"' not in html
    assert streets() == 1 and entries("import.apply") == []


def test_a_preview_then_apply_writes_the_places_and_puts_the_import_on_the_audit_log(
        client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    response = preview(client, book(), geojson(feature("DY-01")))
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Preview: nothing is saved yet" in html
    assert streets() == 1  # the preview wrote nothing
    assert apply(client, token_of(response)).status_code == 303
    grid = db.session.scalars(select(Grid).where(Grid.code == "DY-01")).one()
    assert grid.community.street.code == "HP" and json.loads(grid.boundary)["coordinates"] == [SQUARE]
    (entry,) = entries("import.apply")
    assert entry.actor_id == world.adam.id and entry.via == "web" and entry.after["added"]["网格"] == 3


def test_an_upload_is_applied_once_and_its_files_are_gone(client: FlaskClient, world: World, ctx: Flask) -> None:
    login(client, world.adam)
    token = token_of(preview(client, book()))
    assert apply(client, token).status_code == 303
    again = apply(client, token)
    assert again.status_code == 400 and "Upload it again" in again.get_data(as_text=True)
    assert len(entries("import.apply")) == 1
    assert not any(import_views.uploads_root().iterdir())


def test_another_admins_session_cannot_apply_the_upload(client: FlaskClient, world: World, app: Flask) -> None:
    login(client, world.adam)
    token = token_of(preview(client, book()))
    other = app.test_client()
    other.get("/lang/en")
    login(other, world.adam)  # the same account, another session: the token is not in its session
    refused = apply(other, token)
    assert refused.status_code == 400 and streets() == 1


def test_an_upload_older_than_an_hour_is_refused(client: FlaskClient, world: World,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    login(client, world.adam)
    token = token_of(preview(client, book()))
    later = utcnow() + timedelta(hours=1, minutes=1)
    monkeypatch.setattr(import_views, "now", lambda: later)
    assert apply(client, token).status_code == 400 and streets() == 1


def test_the_template_and_the_export_download_as_workbooks(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    for url in ("/admin/places/template.xlsx", "/admin/places/export.xlsx"):
        response = client.get(url)
        assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
        sheet_names = load_workbook(io.BytesIO(response.data)).sheetnames
        assert sheet_names[:3] == ["街道", "社区", "网格"]
    rows = list(load_workbook(io.BytesIO(client.get("/admin/places/export.xlsx").data))["小区"].values)
    assert any(row[1] == "红星小区" for row in rows)


def test_an_export_uploaded_again_through_the_page_changes_nothing(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    exported = io.BytesIO(client.get("/admin/places/export.xlsx").data)
    boundaries = client.get("/admin/places/boundaries.geojson").data
    html = preview(client, exported, boundaries).get_data(as_text=True)
    assert "there is nothing to import" in html and 'name="token"' not in html


# --- the tree and search ----------------------------------------------------------


def test_the_tree_shows_every_level_with_its_counts(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    html = client.get("/admin/places").get_data(as_text=True)
    for place in (world.street, world.community_a, world.grid_a2, world.west):
        assert f"/admin/places/{ {Street: 'street', Community: 'community', Grid: 'grid', Complex: 'complex'}[type(place)] }/{place.id}" in html
    assert "Complex 4" in html and "Building 4" in html  # the street's counts
    complex_page = client.get(f"/admin/places/complex/{world.managed.id}").get_data(as_text=True)
    assert world.building_managed.name in complex_page


def test_a_search_finds_a_complex_by_its_alias(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    html = client.get("/admin/places", query_string={"q": "79号院"}).get_data(as_text=True)
    assert f"/admin/places/complex/{world.managed.id}" in html and world.courtyard.name not in html


# --- edits, each on the audit log -------------------------------------------------------


def test_renaming_a_complex_changes_it_and_writes_an_audit_entry(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    page = f"/admin/places/complex/{world.courtyard.id}"
    response = post(client, page + "/edit", page, code="HS", name="槐树新院", aliases="槐树胡同、老槐树", address="槐树胡同1号",
                    company=str(world.company.id))
    assert response.status_code == 303
    cx = fresh(world.courtyard)
    assert (cx.code, cx.name, cx.aliases, cx.address, cx.property_company_id) == (
        "HS", "槐树新院", "槐树胡同\n老槐树", "槐树胡同1号", world.company.id)
    (entry,) = entries("place.update")
    assert entry.target_id == f"complex:{cx.id}" and entry.before["name"] == "槐树院" and entry.after["name"] == "槐树新院"
    assert entry.actor_id == world.adam.id


def test_a_code_another_place_has_is_refused_and_nothing_changes(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    page = f"/admin/places/grid/{world.grid_a2.id}"
    response = post(client, page + "/edit", page, code=world.grid_a1.code, name="改名")
    assert response.status_code == 400 and "has the code" in response.get_data(as_text=True)
    assert fresh(world.grid_a2).name == "第二网格" and entries("place.update") == []


def test_a_buildings_own_grid_must_lie_in_its_complexs_community(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    page = f"/admin/places/building/{world.building_courtyard.id}"
    refused = post(client, page + "/edit", page, code="B1", name="1号楼", aliases="", grid=str(world.grid_b1.id))
    assert refused.status_code == 400 and fresh(world.building_courtyard).grid_id is None
    assert post(client, page + "/edit", page, code="B1", name="1号楼", aliases="",
                grid=str(world.grid_a2.id)).status_code == 303
    assert fresh(world.building_courtyard).grid_id == world.grid_a2.id
    assert placing.building_place(world.building_courtyard.id).grid_id == world.grid_a2.id


def test_creating_a_grid_under_a_community_is_on_the_audit_log(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    response = post(client, "/admin/places/new/grid", f"/admin/places/community/{world.community_b.id}",
                    parent_id=str(world.community_b.id), code="CB-02", name="第二网格")
    assert response.status_code == 303
    grid = db.session.scalars(select(Grid).where(Grid.code == "CB-02")).one()
    assert grid.community_id == world.community_b.id and grid.active
    (entry,) = entries("place.create")
    assert entry.before is None and entry.after["code"] == "CB-02"


def test_a_company_and_a_team_are_created_and_changed(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    page = "/admin/places/organisations"
    assert post(client, "/admin/places/new/company", page, code="WY9", name="绿城物业", phone="010-1").status_code == 303
    assert post(client, "/admin/places/new/team", page, code="CB-ZY", name="西岭志愿服务队", kind="volunteer",
                parent_id=str(world.community_b.id)).status_code == 303
    company = db.session.scalars(select(PropertyCompany).where(PropertyCompany.code == "WY9")).one()
    team = db.session.scalars(select(Team).where(Team.code == "CB-ZY")).one()
    assert company.phone == "010-1" and team.community_id == world.community_b.id
    company_page = f"/admin/places/company/{company.id}"
    assert post(client, company_page + "/edit", company_page, code="WY9", name="绿城物业服务",
                phone="010-2").status_code == 303
    assert fresh(company).name == "绿城物业服务" and len(entries("place.create")) == 2 and entries("place.update")
    duplicate = post(client, "/admin/places/new/company", page, code="WY10", name=world.company.name)
    assert duplicate.status_code == 400


# --- moves ----------------------------------------------------------------------------


def test_moving_a_complex_keeps_open_tickets_and_places_new_ones_in_the_new_grid(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    put_on_call(world.gina, world.greg)
    before = routed(make_ticket(world, store))
    assert (before.grid_id, before.assignee_id) == (world.grid_a1.id, world.gina.id)
    login(client, world.adam)
    page = f"/admin/places/complex/{world.courtyard.id}"
    response = post(client, page + "/move", page, parent=world.grid_a2.code)
    assert response.status_code == 303
    kept = fresh(before)
    assert (kept.grid_id, kept.assignee_id) == (world.grid_a1.id, world.gina.id)
    # Another problem (the same one would follow the first ticket to its handler).
    after = routed(make_ticket(world, store, now=T0 + timedelta(minutes=5), category="environment.litter"))
    assert (after.grid_id, after.assignee_id) == (world.grid_a2.id, world.greg.id)
    (entry,) = entries("place.move")
    assert entry.before["grid_id"] == world.grid_a1.id and entry.after["grid_id"] == world.grid_a2.id


def test_moving_a_building_to_another_complex(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    page = f"/admin/places/building/{world.building_courtyard.id}"
    assert post(client, page + "/move", page, parent=world.west.code).status_code == 303
    assert fresh(world.building_courtyard).complex_id == world.west.id
    unknown = post(client, page + "/move", page, parent="NO-SUCH")
    assert unknown.status_code == 400 and "NO-SUCH" in unknown.get_data(as_text=True)


# --- boundaries -------------------------------------------------------------------------


def upload_boundary(client: FlaskClient, grid: Grid, data: bytes, gcj02: bool = False) -> Any:
    page = f"/admin/places/grid/{grid.id}"
    form: dict[str, Any] = {"csrf_token": csrf_token(client, page), "file": (io.BytesIO(data), "grid.geojson")}
    if gcj02:
        form["gcj02"] = "1"
    return client.post(page + "/boundary", data=form, content_type="multipart/form-data")


def test_a_wgs84_boundary_is_saved_as_uploaded_and_audited(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    assert upload_boundary(client, world.grid_b1, geojson(feature("CB-01"))).status_code == 303
    assert json.loads(fresh(world.grid_b1).boundary) == {"type": "Polygon", "coordinates": [SQUARE]}
    (entry,) = entries("place.update")
    assert entry.before["boundary"] is None and entry.after["boundary"] == "Polygon (5)"


def test_a_gcj02_boundary_is_stored_in_wgs84(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    shifted = [list(wgs84_to_gcj02(lng, lat)) for lng, lat in SQUARE]
    geometry = json.dumps({"type": "Polygon", "coordinates": [shifted]}).encode()
    assert upload_boundary(client, world.grid_b1, geometry, gcj02=True).status_code == 303
    stored = json.loads(fresh(world.grid_b1).boundary)["coordinates"][0]
    assert all(abs(a - b) < 1e-6 for got, want in zip(stored, SQUARE, strict=True) for a, b in zip(got, want, strict=True))


def test_an_invalid_polygon_is_refused_with_a_clear_error(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    open_ring = [[116.40, 39.90], [116.41, 39.90], [116.41, 39.91], [116.40, 39.91]]
    response = upload_boundary(client, world.grid_b1, geojson(feature("CB-01", open_ring + [[116.5, 39.95]])))
    assert response.status_code == 400
    assert "a ring must end where it starts" in response.get_data(as_text=True)
    assert fresh(world.grid_b1).boundary is None and entries("place.update") == []


# --- deactivation -----------------------------------------------------------------------


def test_a_deactivated_complex_leaves_the_resident_form_and_placing_but_its_tickets_keep_it(
        client: FlaskClient, world: World, store: PhotoStore) -> None:
    ticket = make_ticket(world, store)
    login(client, world.adam)
    page = f"/admin/places/complex/{world.courtyard.id}"
    assert post(client, page + "/deactivate", page).status_code == 303
    assert not fresh(world.courtyard).active and entries("place.deactivate")
    form = client.get("/report").get_data(as_text=True)
    assert f'value="{world.courtyard.id}">槐树院' not in form and f'value="{world.managed.id}">红星小区' in form
    db.session.expire_all()
    assert placing.complex_place(world.courtyard.id) is None
    assert placing.building_place(world.building_courtyard.id) is None
    assert fresh(ticket).complex_id == world.courtyard.id


def test_a_deactivated_community_is_no_longer_offered_nor_placed(client: FlaskClient, world: World) -> None:
    login(client, world.adam)
    page = f"/admin/places/community/{world.community_b.id}"
    assert post(client, page + "/deactivate", page).status_code == 303
    db.session.expire_all()
    assert placing.building_place(world.building_east.id) is None  # everything under it goes too
    errors: dict[str, object] = {}
    assert placing.resolve(None, None, world.community_b.id, None, "", errors) is None and "community_id" in errors
    assert f'value="{world.community_b.id}">西岭社区' not in client.get("/report").get_data(as_text=True)
    assert post(client, page + "/reactivate", page).status_code == 303
    assert placing.building_place(world.building_east.id) is not None


def test_a_location_in_a_deactivated_grid_is_not_placed_there(client: FlaskClient, world: World) -> None:
    world.grid_a1.boundary = json.dumps({"type": "Polygon", "coordinates": [SQUARE]})
    db.session.commit()
    assert geo.grid_at([world.grid_a1], 39.905, 116.405) is not None
    login(client, world.adam)
    page = f"/admin/places/grid/{world.grid_a1.id}"
    assert post(client, page + "/deactivate", page).status_code == 303
    assert geo.grid_at([fresh(world.grid_a1)], 39.905, 116.405) is None


# --- several streets, and who may ---------------------------------------------------------


def test_a_second_streets_dispatcher_files_only_in_their_street_and_residents_see_both(
        client: FlaskClient, world: World, app: Flask) -> None:
    login(client, world.adam)
    preview_page = preview(client, book())
    apply(client, token_of(preview_page))
    other = db.session.scalars(select(Community).where(Community.code == "HP-XL")).one()
    post(client, f"/admin/places/community/{other.id}/deactivate", f"/admin/places/community/{other.id}")
    form = client.get("/report").get_data(as_text=True)
    assert f'value="{world.community_b.id}">西岭社区' in form and f'value="{other.id}">西岭社区' not in form
    mine = db.session.scalars(select(Community).where(Community.code == "HP-DY")).one()
    assert f'value="{mine.id}">东怡社区' in form
    hp = db.session.scalars(select(Street).where(Street.code == "HP")).one()
    make_user("hana", Role.DISPATCHER, street=hp)
    db.session.commit()
    dispatcher = app.test_client()
    login(dispatcher, "hana")
    new = dispatcher.get("/console/new").get_data(as_text=True)
    assert f'value="{mine.id}">东怡社区' in new and f'value="{world.community_a.id}">东怡社区' not in new
    assert f'value="{other.id}">西岭社区' not in new


@pytest.mark.parametrize("persona", ["sam", "sue", "dora", "gina"])
def test_only_admins_open_the_places_pages(client: FlaskClient, world: World, persona: str) -> None:
    login(client, getattr(world, persona))
    for url in ("/admin/places", "/admin/places/import", "/admin/places/export.xlsx",
                f"/admin/places/complex/{world.managed.id}", "/admin/places/organisations"):
        assert client.get(url).status_code in (403, 404), url
    edit = client.post(f"/admin/places/complex/{world.managed.id}/edit",
                       data={"csrf_token": csrf_token(client, "/console/" if persona != "gina" else "/workbench/"),
                             "code": "X", "name": "X"})
    assert edit.status_code in (403, 404) and fresh(world.managed).name == "红星小区"


def test_places_deactivated_in_the_database_are_neither_offered_nor_placed(
        client: FlaskClient, world: World, app: Flask) -> None:
    world.west.active = False  # however it came to be: an admin page, a shell, a script
    world.building_managed.active = False
    db.session.commit()
    form = client.get("/report").get_data(as_text=True)
    assert f'value="{world.west.id}">西苑' not in form and f'value="{world.building_managed.id}">3号楼' not in form
    assert placing.complex_place(world.west.id) is None and placing.building_place(world.building_managed.id) is None
    assert placing.place_from_text(world.community_a, "西苑5号楼漏水").complex_id is None
    login(client, world.dora)
    new = client.get("/console/new").get_data(as_text=True)
    assert f'value="{world.west.id}">西苑' not in new and f'value="{world.courtyard.id}">槐树院' in new
