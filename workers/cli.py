"""The workers' Flask commands, attached by ticketing.cli by name."""
from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """Attach `flask rq …`, `flask scheduler …`, `flask sla sweep` and `flask serve`."""
    from workers.scheduler import scheduler_cli, serve_command, sla_cli
    from workers.worker import rq_cli

    app.cli.add_command(rq_cli)
    app.cli.add_command(scheduler_cli)
    app.cli.add_command(sla_cli)
    app.cli.add_command(serve_command)
