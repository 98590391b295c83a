"""Flask commands: `flask demo load|logins`, `flask users create|reset-password|list` (and see
cli_reference; `users import|export` are in cli_staff)."""
from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import func, select

from ticketing.extensions import db
from ticketing.services.audit import shell_user

demo = AppGroup("demo", help="Demo data for trying Minhu out.")
users = AppGroup("users", help="Staff accounts.")

DEFAULT_URL = "http://127.0.0.1:5000/"
KNOWN_SHOWN = 10  # codes listed when one is not found


def display_width(text: str) -> int:
    """Columns `text` takes in a terminal: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table whose columns line up with Chinese text in them."""
    widths = [max(display_width(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [str(cell) + " " * (width - display_width(str(cell))) for cell, width in zip(row, widths, strict=True)]
        lines.append("  " + "  ".join(cells).rstrip())
    return "\n".join(lines)


def local_time(value: datetime | None) -> str:
    """A time in the site's zone to the minute, or empty."""
    return value.astimezone(ZoneInfo(current_app.config["TIMEZONE"])).strftime("%Y-%m-%d %H:%M") if value else ""


def revoke_key(kind: str, key_id: int, what: str) -> None:
    """Revoke key `key_id` of `kind` for `flask open311 revoke-key` / `flask api revoke-token`."""
    from ticketing.models import KeyKind, utcnow
    from ticketing.services import apikeys

    row = apikeys.find(KeyKind(kind), key_id)
    if row is None:
        raise click.ClickException(f"there is no {what} key {key_id}")
    if row.revoked_at is not None:
        click.echo(f"Key {key_id} ({row.name}) was already revoked on {local_time(row.revoked_at)}.")
        return
    apikeys.revoke(row, utcnow(), via="cli", actor_label=shell_user())
    click.echo(f"Key {key_id} ({row.name}) revoked.")


def echo_logins(url: str) -> None:
    """Print the demo accounts that exist, the shared password and where to go."""
    from ticketing.demo import DEMO_LOGINS, DEMO_PASSWORD, login_scope
    from ticketing.models import User

    present = {user.username: user for user in db.session.scalars(
        select(User).where(User.username.in_([d.username for d in DEMO_LOGINS]), User.active)
    )}
    rows = [(d.username, d.role, d.name, login_scope(present[d.username]))
            for d in DEMO_LOGINS if d.username in present]
    if not rows:
        return
    click.echo(f"\nDemo logins (password for every account: {DEMO_PASSWORD}):")
    click.echo(format_table(("username", "role", "name", "scope"), rows))
    base = url if url.endswith("/") else url + "/"
    click.echo(f"\nResidents file and track requests at {base}")
    click.echo(f"Staff sign in at {base}auth/login\n")


@demo.command("load")
@click.option("--force", is_flag=True,
              help="Add the demo even to a database that holds other data, or in production.")
@click.option("--url", default=DEFAULT_URL, show_default=True, help="Where the app is served, for the hint.")
def load_demo_command(force: bool, url: str) -> None:
    """Load the demo sub-district once (a second run changes nothing) and print its logins."""
    from ticketing.demo import EMPTY, LOADED, DemoConflict, demo_state, load_demo
    from ticketing.models import Ticket, utcnow

    if current_app.config.get("ENV") == "production" and not force:
        raise click.ClickException(
            "MINHU_ENV=production: the demo accounts share a published password, so demo data "
            "is not loaded here. Use --force if you really mean it."
        )
    state = demo_state()
    try:
        created = load_demo(now=utcnow(), force=force)
    except DemoConflict as exc:
        raise click.ClickException(f"Demo data not loaded: {exc}.") from None
    if created:
        tickets = db.session.scalar(select(func.count()).select_from(Ticket))
        click.echo(f"Demo data loaded: a street with 2 communities, 6 grids and {tickets} tickets "
                   "from the last 30 days.")
    elif state == LOADED:
        click.echo("Demo data already present; nothing changed.")
    elif state != EMPTY:
        click.echo("The database already holds places or accounts; demo data not added "
                   "(use --force to add it anyway).")
        return
    echo_logins(url)


@demo.command("logins")
@click.option("--url", default=DEFAULT_URL, show_default=True, help="Where the app is served, for the hint.")
def logins_command(url: str) -> None:
    """Print the demo logins table again."""
    echo_logins(url)


ModelT = TypeVar("ModelT")


def find_one(model: type[ModelT], column: Any, value: str, what: str, plural: str) -> ModelT:
    """The one row whose `column` is `value`; a ClickException that says what exists otherwise."""
    found = db.session.scalars(select(model).where(column == value)).all()
    if len(found) == 1:
        return found[0]
    if found:
        raise click.ClickException(f"{what} {value!r} is ambiguous: {len(found)} {plural} have that name")
    known = db.session.scalars(select(column).order_by(column).limit(KNOWN_SHOWN + 1)).all()
    if not known:
        raise click.ClickException(
            f"{what} {value!r} not found: there are no {plural} yet. Load the places first "
            "(flask places import WORKBOOK.xlsx), or try the demo (flask demo load).")
    listed = ", ".join(known[:KNOWN_SHOWN]) + (", …" if len(known) > KNOWN_SHOWN else "")
    raise click.ClickException(f"{what} {value!r} not found; known {plural}: {listed}")


def by_code_or_name(model: Any, value: str, what: str, plural: str) -> Any:
    """A company or team by its code (as the workbook names it), else by its exact name."""
    found = db.session.scalar(select(model).where(model.code == value))
    return found if found is not None else find_one(model, model.name, value, what, plural)


@users.command("create")
@click.argument("username")
@click.option("--role", required=True,
              type=click.Choice(["admin", "supervisor", "dispatcher", "grid_worker", "property_staff", "volunteer"]))
@click.option("--name", "display_name", help="Name shown to colleagues (default: the username).")
@click.option("--phone", help="Mobile number.")
@click.option("--street", "street_code", help="Street code: scope of a street-wide supervisor or dispatcher.")
@click.option("--community", "community_code", help="Community code: scope of a supervisor or dispatcher.")
@click.option("--grid", "grid_codes", multiple=True, help="Grid code of a grid worker (repeat for several).")
@click.option("--company", "company_name", help="Property company of property staff (its code, or exact name).")
@click.option("--team", "team_name", help="Volunteer or mediation team of a volunteer (its code, or exact name).")
@click.option("--one-time-password", "one_time", is_flag=True,
              help="Print a one-time password (once) instead of asking; it is changed at first sign-in.")
def create_user_command(username: str, role: str, display_name: str | None, phone: str | None,
                        street_code: str | None, community_code: str | None, grid_codes: tuple[str, ...],
                        company_name: str | None, team_name: str | None, one_time: bool) -> None:
    """Create a staff account; the password is asked for (hidden, twice) unless --one-time-password."""
    from ticketing.models import Community, Grid, PropertyCompany, Street, Team, utcnow
    from ticketing.services import accounts, passwords
    from ticketing.services.errors import ValidationFailed

    needs = {"supervisor": "--community or --street", "dispatcher": "--community or --street",
             "grid_worker": "--grid", "property_staff": "--company", "volunteer": "--team"}
    given = {"supervisor": community_code or street_code, "dispatcher": community_code or street_code,
             "grid_worker": grid_codes, "property_staff": company_name, "volunteer": team_name}
    if role in needs and not given[role]:
        raise click.ClickException(f"a {role} needs {needs[role]}")
    community = find_one(Community, Community.code, community_code, "community", "communities") \
        if community_code else None
    street = find_one(Street, Street.code, street_code, "street", "streets") if street_code else None
    grids = [find_one(Grid, Grid.code, code, "grid", "grids") for code in grid_codes]
    company = by_code_or_name(PropertyCompany, company_name, "company", "property companies") if company_name else None
    team = by_code_or_name(Team, team_name, "team", "teams") if team_name else None
    data = accounts.AccountData(
        display_name=display_name or username.strip(), role=role, phone=phone or "",
        street_id=street.id if street else None, community_id=community.id if community else None,
        grid_ids=tuple(grid.id for grid in grids), company_id=company.id if company else None,
        team_id=team.id if team else None,
    )

    def acceptable(value: str) -> str:
        trouble = passwords.problem(value, username.strip(), phone)
        if trouble is not None:
            raise click.BadParameter(str(trouble))  # click asks again
        return value

    password = None if one_time else click.prompt(
        "Password", hide_input=True, confirmation_prompt=True, value_proc=acceptable)
    try:
        user, issued = accounts.create_account(None, username, data, utcnow(), password=password)
    except ValidationFailed as exc:
        db.session.rollback()
        raise click.ClickException("; ".join(f"{name}: {message}" for name, message in exc.errors.items())) from None
    db.session.commit()
    click.echo(f"Created {role} {user.username!r}.")
    if issued:
        click.echo(f"One-time password (shown this once; changed at first sign-in): {issued}")


@users.command("reset-password")
@click.argument("username")
def reset_password_command(username: str) -> None:
    """Give an account a one-time password (printed once), to be changed at its next sign-in."""
    from ticketing.models import User, utcnow
    from ticketing.services import accounts

    user = db.session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        raise click.ClickException(f"there is no account {username!r}")
    one_time = accounts.reset_password(None, user, utcnow())
    db.session.commit()
    click.echo(f"Password of {user.username!r} reset; signed out everywhere.")
    click.echo(f"One-time password (shown this once; changed at next sign-in): {one_time}")


@users.command("list")
def list_users_command() -> None:
    """List staff accounts with their role and scope."""
    from ticketing.models import User

    rows = []
    for user in db.session.scalars(select(User).order_by(User.role, User.username)):
        scope = (", ".join(g.code for g in user.grids) or (user.company.name if user.company else "")
                 or (user.team.name if user.team else "") or (user.community.code if user.community else "")
                 or (user.street.code if user.street else "*"))
        rows.append((user.username, user.role, user.display_name, scope, "" if user.active else "inactive"))
    click.echo(format_table(("username", "role", "name", "scope", ""), rows) if rows else "No accounts yet.")


def register(app: Flask) -> None:
    """Attach the command groups to the app."""
    from werkzeug.utils import import_string

    from ticketing.cli_reference import calendar, reference

    import_string("ticketing.cli_staff")  # adds `users import|export` to the group
    app.cli.add_command(demo)
    app.cli.add_command(users)
    app.cli.add_command(reference)
    app.cli.add_command(calendar)
    app.cli.add_command(import_string("ticketing.cli_open311:open311"))
    app.cli.add_command(import_string("ticketing.cli_api:api"))  # staff API keys
    app.cli.add_command(import_string("ticketing.cli_ledger:ledger"))
    app.cli.add_command(import_string("ticketing.cli_privacy:privacy"))  # retention purge
    app.cli.add_command(import_string("ticketing.cli_places:places"))
    app.cli.add_command(import_string("ticketing.cli_brief:brief"))  # the supervisors' morning brief
    app.cli.add_command(import_string("ticketing.cli_hotspots:hotspots_cli"))  # recurring problems
    # The worker and scheduler commands live with the workers, found by name.
    import_string("workers.cli.register")(app)
