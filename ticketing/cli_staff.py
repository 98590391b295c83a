"""`flask users import|export`: the 人员 sheet of the workbook from the command line."""
from __future__ import annotations

from pathlib import Path

import click

from ticketing.cli import format_table, users
from ticketing.cli_places import echo_report


@users.command("import")
@click.argument("workbook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check and show what would change; write nothing.")
def import_command(workbook: Path, dry_run: bool) -> None:
    """Add and update accounts from the 人员 sheet of WORKBOOK.xlsx: all or nothing.

    New accounts get one-time passwords, printed once at the end and changed at first sign-in.
    """
    from ticketing.models import utcnow
    from ticketing.services.staff_import import import_staff

    report = import_staff(str(workbook), None, utcnow(), dry_run)
    if report.problems:
        for problem in report.problems:
            click.echo(str(problem), err=True)
        raise click.ClickException(f"{len(report.problems)} problem(s) found; nothing was written.")
    echo_report(report, dry_run)
    if report.one_time:
        click.echo("\nOne-time passwords (shown this once; each is changed at first sign-in). "
                   "Hand them over in person:")
        click.echo(format_table(("username", "name", "one-time password"), report.one_time))


@users.command("export")
@click.argument("workbook", type=click.Path(dir_okay=False, path_type=Path))
def export_command(workbook: Path) -> None:
    """Write the active accounts to WORKBOOK.xlsx (sheet 人员) in the format `flask users import` reads."""
    from ticketing.services.staff_snapshot import export_staff

    workbook.write_bytes(export_staff())
    click.echo(f"Wrote {workbook}.")
