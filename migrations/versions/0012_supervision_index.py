"""the 督办 list's tickets indexed on their own

The console's link and the dashboard count the open tickets that are escalated or
flagged 督办; with millions of tickets that meant reading every open ticket (tens
of milliseconds on each page). This partial index holds only those tickets.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 09:10:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

WHERE = ("status IN ('submitted', 'dispatched', 'accepted', 'on_hold') "
         "AND (supervised IS true OR escalation_level >= 1)")


def upgrade():
    op.create_index('ix_tickets_supervision', 'tickets', ['street_id', 'escalation_level'], unique=False,
                    postgresql_where=sa.text(WHERE), sqlite_where=sa.text(WHERE))


def downgrade():
    op.drop_index('ix_tickets_supervision', table_name='tickets')
