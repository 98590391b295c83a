"""handlers: a hold's reason and expected date; the ledger's patrol and hold figures

A hold (挂起) now says what is awaited and until when (`hold_reason`, `hold_until`, a
local date); `hold_reminded_at` is the reminder's claim, once per hold
(services/holds.py). The ledger counts the patrol's own reports apart from the
residents' (`patrol_new`, `patrol_resolved`), the tickets on hold at the end of the
day, and the time on hold of the day's resolved tickets (`hold_n`, `hold_total_s`).
Ledgers compiled before this have zeros there until the day is compiled again.

Revision ID: 0023_handlers
Revises: 0022_callbacks
Create Date: 2026-12-08 09:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0023_handlers'
down_revision = '0022_callbacks'
branch_labels = None
depends_on = None

LEDGER_COUNTS = ('patrol_new', 'patrol_resolved', 'on_hold_at_end', 'hold_n', 'hold_total_s')


def upgrade():
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hold_reason', sa.String(length=200), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('hold_until', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('hold_reminded_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('ledgers', schema=None) as batch_op:
        for name in LEDGER_COUNTS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default='0'))


def downgrade():
    with op.batch_alter_table('ledgers', schema=None) as batch_op:
        for name in reversed(LEDGER_COUNTS):
            batch_op.drop_column(name)
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('hold_reminded_at')
        batch_op.drop_column('hold_until')
        batch_op.drop_column('hold_reason')
