"""The migrations and the models describe the same schema, with one head."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask

from ticketing.extensions import db


def test_migrations_have_a_single_head(ctx: Flask) -> None:
    config = ctx.extensions["migrate"].migrate.get_config()
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1


def test_models_and_migrations_agree(ctx: Flask) -> None:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == []


def test_the_supervision_index_holds_what_the_list_asks_for(ctx: Flask) -> None:
    """The partial index is written out by hand: its statuses must be the open ones, or
    the database could no longer use it for the 督办 list (or would miss tickets)."""
    import re

    from ticketing.models import OPEN_STATUSES
    from ticketing.models.tickets import SUPERVISION_WHERE, Ticket
    from ticketing.services.supervision import supervised_condition

    assert set(re.findall(r"'(\w+)'", SUPERVISION_WHERE)) == {str(s) for s in OPEN_STATUSES}
    condition = str(supervised_condition().compile(compile_kwargs={"literal_binds": True}))
    assert "tickets.supervised IS true OR tickets.escalation_level >= 1" in condition
    assert any(index.name == "ix_tickets_supervision" for index in Ticket.__table__.indexes)
