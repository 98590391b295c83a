"""Flask commands: `flask demo load`, `flask users create`."""
from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

demo = AppGroup("demo", help="Demo data for trying Minhu out.")


@demo.command("load")
@click.option("--force", is_flag=True, help="Load even if demo data is already there.")
def load_demo_command(force: bool) -> None:
    """Load the demo sub-district once (a second run changes nothing)."""
    from ticketing.demo import load_demo

    created = load_demo(force=force)
    click.echo("Demo data loaded." if created else "Demo data already present; nothing changed.")


def register(app: Flask) -> None:
    """Attach the command groups to the app."""
    app.cli.add_command(demo)
