"""The scheduler: the schedule as data; each entry only enqueues. (Being built.)"""
from __future__ import annotations

import click
from flask.cli import AppGroup

scheduler_cli = AppGroup("scheduler", help="The one scheduler process.")


@scheduler_cli.command("run")
def run_command() -> None:
    """Run the scheduler in the foreground."""
    raise click.ClickException("not built yet")


@click.command("serve")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
def serve_command(host: str, port: int) -> None:
    """The embedded single process: web server plus the scheduler thread."""
    from flask import current_app

    current_app.run(host=host, port=port, use_reloader=False, debug=False)
