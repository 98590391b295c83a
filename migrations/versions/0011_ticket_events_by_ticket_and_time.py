"""ticket events indexed by ticket and time

The index on (ticket_id, at) replaces the one on ticket_id alone: it serves every
lookup of a ticket's events, and the ledger's question "the ticket's first event
after the day's end" is answered from the index instead of by reading each of the
ticket's events.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 09:00:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('ticket_events', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_events_ticket_at', ['ticket_id', 'at'], unique=False)
        batch_op.drop_index('ix_ticket_events_ticket_id')


def downgrade():
    with op.batch_alter_table('ticket_events', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_events_ticket_id', ['ticket_id'], unique=False)
        batch_op.drop_index('ix_ticket_events_ticket_at')
