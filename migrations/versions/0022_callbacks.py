"""回访: callback tasks, and the ledgers' callback figures

`callback_tasks` holds the residents to call back about a ticket's result (services/
callbacks.py): one per ticket, reason and round of work (a unique constraint, so a
retried event makes one). The daily ledgers and their handler rows gain the day's
callbacks due, finished in time and reached.

Revision ID: 0022_callbacks
Revises: 0021_wechat_followers
Create Date: 2026-12-10 09:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0022_callbacks'
down_revision = '0021_wechat_followers'
branch_labels = None
depends_on = None

FIGURES = ('callback_due', 'callback_in_time', 'callback_reached')


def upgrade():
    op.create_table('callback_tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('work_round', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempt_log', sa.JSON(), nullable=False),
    sa.Column('reached', sa.Boolean(), nullable=True),
    sa.Column('solved', sa.Boolean(), nullable=True),
    sa.Column('rating', sa.String(length=16), nullable=True),
    sa.Column('rating_recorded', sa.Boolean(), nullable=False),
    sa.Column('redone', sa.Boolean(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['finished_by_id'], ['users.id'], name=op.f('fk_callback_tasks_finished_by_id_users')),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_callback_tasks_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_callback_tasks')),
    sa.UniqueConstraint('ticket_id', 'reason', 'work_round',
                        name=op.f('uq_callback_tasks_ticket_id_reason_work_round'))
    )
    with op.batch_alter_table('callback_tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_callback_tasks_due_at'), ['due_at'], unique=False)
        batch_op.create_index('ix_callback_tasks_state_due', ['state', 'due_at'], unique=False)
    for table in ('ledgers', 'ledger_handlers'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name in FIGURES:
                batch_op.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default='0'))


def downgrade():
    for table in ('ledger_handlers', 'ledgers'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name in reversed(FIGURES):
                batch_op.drop_column(name)
    with op.batch_alter_table('callback_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_callback_tasks_state_due')
        batch_op.drop_index(batch_op.f('ix_callback_tasks_due_at'))
    op.drop_table('callback_tasks')
