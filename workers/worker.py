"""`flask rq worker`: an RQ worker for all queues inside the app context. (Being built.)"""
from __future__ import annotations

import click
from flask.cli import AppGroup

rq_cli = AppGroup("rq", help="RQ workers.")


@rq_cli.command("worker")
def worker_command() -> None:
    """Run a worker for the high, default and low queues."""
    raise click.ClickException("not built yet")
