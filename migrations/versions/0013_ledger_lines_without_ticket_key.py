"""ledger lines keep their ticket's id without a foreign key

A ledger line is written only by the compile's INSERT … SELECT from the tickets,
and tickets are never deleted. The foreign key's check locked each ticket touched
that day (a hundred thousand on a busy street) on every compile: 1.2 s of 6, and
a write to each of those tickets' pages.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 08:50:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('ledger_lines', schema=None) as batch_op:
        batch_op.drop_constraint('fk_ledger_lines_ticket_id_tickets', type_='foreignkey')


def downgrade():
    with op.batch_alter_table('ledger_lines', schema=None) as batch_op:
        batch_op.create_foreign_key('fk_ledger_lines_ticket_id_tickets', 'tickets', ['ticket_id'], ['id'])
