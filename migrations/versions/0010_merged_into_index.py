"""tickets merged into another are found by an index

A ticket's `merged_into_id` points at the ticket it was merged into. Without an
index, deleting or merging a ticket made PostgreSQL check the foreign key by
scanning all tickets; the index is partial, since few tickets are ever merged.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 08:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_tickets_merged_into', 'tickets', ['merged_into_id'], unique=False,
                    postgresql_where=sa.text('merged_into_id IS NOT NULL'),
                    sqlite_where=sa.text('merged_into_id IS NOT NULL'))


def downgrade():
    op.drop_index('ix_tickets_merged_into', table_name='tickets')
