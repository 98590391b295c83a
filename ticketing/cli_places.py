"""`flask places import|export|template`: the places workbook from the command line."""
from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import AppGroup

places = AppGroup("places", help="Places (streets to buildings), property companies and teams, as a workbook.")

SHOWN = 50  # entries listed per kind of change; the rest are counted


def echo_report(report: object, dry_run: bool) -> None:
    """Print what an import found and did."""
    from ticketing.services.places_import import ImportReport

    assert isinstance(report, ImportReport)
    for title, entries in (("Added", report.added), ("Changed", report.changed)):
        counts = report.count(entries)
        if counts:
            click.echo(f"{title}: " + ", ".join(f"{sheet} {n}" for sheet, n in counts.items()))
    for entry in report.changed[:SHOWN]:
        click.echo(f"  {entry.sheet} {entry.code} {entry.name}: " + "; ".join(
            f"{header} {before or '∅'} → {after or '∅'}" for header, before, after in entry.changes))
    if len(report.changed) > SHOWN:
        click.echo(f"  … and {len(report.changed) - SHOWN} more changes")
    click.echo(f"Unchanged: {report.unchanged}")
    if report.missing:
        click.echo(f"In Minhu but not in the workbook (kept as they are): {len(report.missing)}")
        for entry in report.missing[:SHOWN]:
            click.echo(f"  {entry.sheet} {entry.code} {entry.name}")
    if dry_run:
        click.echo("Dry run: nothing was written.")


@places.command("import")
@click.argument("workbook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--boundaries", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="GeoJSON FeatureCollection of grid boundaries (properties.编码 = grid code).")
@click.option("--gcj02", is_flag=True, help="The boundaries are in GCJ-02 (高德, 腾讯 maps), not WGS-84.")
@click.option("--dry-run", is_flag=True, help="Check and show what would change; write nothing.")
def import_command(workbook: Path, boundaries: Path | None, gcj02: bool, dry_run: bool) -> None:
    """Add and update places, companies and teams from WORKBOOK.xlsx: all or nothing."""
    from ticketing.models import utcnow
    from ticketing.services.places_import import import_places

    data = boundaries.read_bytes() if boundaries else None
    report = import_places(str(workbook), data, boundaries.name if boundaries else "GeoJSON", gcj02, dry_run,
                           now=utcnow())
    if report.problems:
        for problem in report.problems:
            click.echo(str(problem), err=True)
        raise click.ClickException(f"{len(report.problems)} problem(s) found; nothing was written.")
    echo_report(report, dry_run)


@places.command("export")
@click.argument("workbook", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--boundaries", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the grid boundaries to this GeoJSON file.")
@click.option("--street", "streets", multiple=True, help="Street code to export (repeat; default: every street).")
def export_command(workbook: Path, boundaries: Path | None, streets: tuple[str, ...]) -> None:
    """Write the places to WORKBOOK.xlsx in the format `flask places import` reads."""
    from ticketing.services.places_export import export_places

    book, collection = export_places(list(streets) or None)
    workbook.write_bytes(book)
    click.echo(f"Wrote {workbook}.")
    if boundaries:
        boundaries.write_text(json.dumps(collection, ensure_ascii=False, indent=1), encoding="utf-8")
        click.echo(f"Wrote {boundaries} ({len(collection['features'])} grid boundaries).")


@places.command("template")
@click.argument("workbook", type=click.Path(dir_okay=False, path_type=Path))
def template_command(workbook: Path) -> None:
    """Write an empty workbook to fill in: the sheets, a note per column, an example row."""
    from ticketing.demo import DEMO_WORKBOOK
    from ticketing.services.places_export import template

    workbook.write_bytes(template(str(DEMO_WORKBOOK)))
    click.echo(f"Wrote {workbook}.")
