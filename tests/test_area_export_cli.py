"""`flask ledger export --community CODE | --street CODE --from D1 --to D2`: the file, the
full version's reveals, and an error for each wrong call that leaves no file behind."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from tests.area_export_helpers import (
    CA_TICKETS,
    PHONE,
    compiled_days,
    csv_rows,
    sheet_rows,
    workbook,
)
from tests.conftest import wipe
from tests.factories import World, build_world
from ticketing.extensions import db
from ticketing.models import RevealLog, Ticket
from ticketing.services import refcache
from ticketing.services.photos import PhotoStore

RANGE = ["--from", "2026-11-17", "--to", "2026-11-19"]


@pytest.fixture(scope="class")
def compiled(app: Flask) -> Iterator[dict[str, Ticket]]:
    """The compiled days, once for a class of commands that only read them."""
    refcache.clear()
    with app.app_context():
        yield compiled_days(build_world(), PhotoStore(app.config["UPLOAD_FOLDER"]))
        db.session.remove()
        wipe(app)


def run(app: Flask, *args: str) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["ledger", "export", *args])
    return result.exit_code, result.output


class TestCommandsThatOnlyRead:
    """One world for the calls that write a masked file or none."""

    def test_a_streets_range_is_written_as_one_workbook(
            self, app: Flask, compiled: dict[str, Ticket], tmp_path: Path) -> None:
        out = tmp_path / "street.xlsx"
        code, output = run(app, "--street", "ST01", *RANGE, "--output", str(out))
        assert code == 0, output
        assert f"wrote {len(CA_TICKETS)} lines of 和平街道 (ST01), 2026-11-17 to 2026-11-19, to {out}" in output
        book = workbook(out.read_bytes())
        assert book.sheetnames == ["汇总", "分网格", "明细"]
        assert book["明细"]["A1"].value.startswith("和平街道 台账 2026-11-17 至 2026-11-19")
        assert {row[5] for row in sheet_rows(book["明细"])[2:]} == {"张**"}
        assert list(tmp_path.iterdir()) == [out]  # nothing left beside it

    def test_a_communitys_csv_is_named_after_it_when_no_output_is_given(
            self, app: Flask, compiled: dict[str, Ticket], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        code, output = run(app, "--community", "CA", "--from", "2026-11-18", "--to", "2026-11-18", "--format", "csv")
        assert code == 0, output
        rows = csv_rows((tmp_path / "ledger-CA-2026-11-18.csv").read_bytes())
        assert len(rows) == 1 + 8  # the 18th's tickets of A1 (five) and A2 (three)
        assert db.session.scalars(select(RevealLog)).all() == []

    @pytest.mark.parametrize(("args", "message"), [
        (["--community", "NOPE", *RANGE], "no community 'NOPE'"),
        (["--street", "NOPE", *RANGE], "no street 'NOPE'"),
        (["--community", "CA", "--street", "ST01", *RANGE], "either --community CODE or --street CODE"),
        (RANGE, "either --community CODE or --street CODE"),
        (["--community", "CA", "--from", "2026-11-19"], "need --from D1 and --to D2"),
        (["--community", "CA", "--from", "2026-11-19", "--to", "2026-11-17"],
         "The first day (2026-11-19) is after the last (2026-11-17)."),
        (["--community", "CA", "--from", "2026-11-31", "--to", "2026-12-01"], "'2026-11-31' is not a date"),
        (["--community", "CA", "--from", "2025-01-01", "--to", "2026-01-02"], "at most 366 days"),
        (["--community", "CA", "--from", "2025-01-01", "--to", "2025-01-31"], "no ledger of CA"),
        (["--community", "CA", "--date", "2026-11-18", *RANGE], "two different exports"),
        (["--community", "CA", *RANGE, "--full"], "--full needs --user"),
        (["--street", "ST01", *RANGE, "--full", "--user", "sam"], "sam may not export the street 'ST01'"),
    ])
    def test_a_wrong_call_says_what_is_wrong_and_writes_nothing(
            self, app: Flask, compiled: dict[str, Ticket], tmp_path: Path, args: list[str], message: str) -> None:
        code, output = run(app, *args, "--output", str(tmp_path / "out.xlsx"))
        assert code != 0 and message in " ".join(output.split()), output
        assert list(tmp_path.iterdir()) == []
        assert db.session.scalars(select(RevealLog)).all() == []

    def test_a_file_that_cannot_be_written_is_an_error_not_a_traceback(
            self, app: Flask, compiled: dict[str, Ticket], tmp_path: Path) -> None:
        code, output = run(app, "--community", "CA", *RANGE, "--output", str(tmp_path / "missing" / "out.xlsx"))
        assert code == 1 and "cannot write" in output


def test_the_full_file_is_for_a_named_supervisor_and_logs_a_reveal_per_ticket(
        app: Flask, world: World, store: PhotoStore, tmp_path: Path) -> None:
    tickets = compiled_days(world, store)
    out = tmp_path / "full.csv"
    code, output = run(app, "--community", "CA", *RANGE, "--format", "csv", "--full", "--user", "sam",
                       "--output", str(out))
    assert code == 0, output
    assert f"full version for sam: {len(CA_TICKETS)} reveals logged" in output
    assert PHONE in out.read_text(encoding="utf-8-sig")
    logged = db.session.scalars(select(RevealLog)).all()
    assert sorted(r.ticket_id for r in logged) == sorted(tickets[name].id for name in CA_TICKETS)
    assert {(r.user_id, r.purpose, r.remote_addr) for r in logged} == {(world.sam.id, "export", "cli")}
