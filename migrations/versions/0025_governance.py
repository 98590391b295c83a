"""governance: 治理任务 and the tickets linked to them

`governance_tasks` holds a supervisor's tasks against a recurring problem: its place
(level + place_id, with the grid, community and street it lies in), category, who is
responsible, plan, deadline, status, and the recurring-problem cluster it came from
(`hotspot_id`, deliberately no foreign key: the clusters are replaced nightly, so the
text snapshot keeps what it said). `governance_task_tickets` links the tickets filed
after a task opened at its place and in its category; its primary key (task, ticket)
makes the link job idempotent.

Revision ID: 0025_governance
Revises: 0023_handlers
Create Date: 2026-12-15 09:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0025_governance'
down_revision = '0023_handlers'
branch_labels = None
depends_on = None

ONE_RESPONSIBLE = " + ".join(f"(CASE WHEN {c} IS NULL THEN 0 ELSE 1 END)" for c in (
    "responsible_user_id", "responsible_team_id", "responsible_company_id")) + " <= 1"


def upgrade():
    op.create_table('governance_tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=100), nullable=False),
    sa.Column('responsible_user_id', sa.Integer(), nullable=True),
    sa.Column('responsible_team_id', sa.Integer(), nullable=True),
    sa.Column('responsible_company_id', sa.Integer(), nullable=True),
    sa.Column('responsible_unit', sa.String(length=100), nullable=False),
    sa.Column('plan', sa.Text(), nullable=False),
    sa.Column('deadline', sa.Date(), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('place_id', sa.Integer(), nullable=False),
    sa.Column('grid_id', sa.Integer(), nullable=True),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('street_id', sa.Integer(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('opened_by_id', sa.Integer(), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_by_id', sa.Integer(), nullable=True),
    sa.Column('closing_note', sa.Text(), nullable=False),
    sa.Column('hotspot_id', sa.Integer(), nullable=True),
    sa.Column('hotspot_snapshot', sa.Text(), nullable=False),
    sa.CheckConstraint("level IN ('building', 'complex', 'grid', 'community')",
                       name=op.f('ck_governance_tasks_level')),
    sa.CheckConstraint("status IN ('open', 'closed')", name=op.f('ck_governance_tasks_status')),
    sa.CheckConstraint(ONE_RESPONSIBLE, name=op.f('ck_governance_tasks_one_responsible')),
    sa.ForeignKeyConstraint(['category_id'], ['categories.id'],
                            name=op.f('fk_governance_tasks_category_id_categories')),
    sa.ForeignKeyConstraint(['closed_by_id'], ['users.id'], name=op.f('fk_governance_tasks_closed_by_id_users')),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'],
                            name=op.f('fk_governance_tasks_community_id_communities')),
    sa.ForeignKeyConstraint(['grid_id'], ['grids.id'], name=op.f('fk_governance_tasks_grid_id_grids')),
    sa.ForeignKeyConstraint(['opened_by_id'], ['users.id'], name=op.f('fk_governance_tasks_opened_by_id_users')),
    sa.ForeignKeyConstraint(['responsible_company_id'], ['property_companies.id'],
                            name=op.f('fk_governance_tasks_responsible_company_id_property_companies')),
    sa.ForeignKeyConstraint(['responsible_team_id'], ['teams.id'],
                            name=op.f('fk_governance_tasks_responsible_team_id_teams')),
    sa.ForeignKeyConstraint(['responsible_user_id'], ['users.id'],
                            name=op.f('fk_governance_tasks_responsible_user_id_users')),
    sa.ForeignKeyConstraint(['street_id'], ['streets.id'], name=op.f('fk_governance_tasks_street_id_streets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_governance_tasks'))
    )
    with op.batch_alter_table('governance_tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_governance_tasks_community_id'), ['community_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_governance_tasks_grid_id'), ['grid_id'], unique=False)
        batch_op.create_index('ix_governance_tasks_status_deadline', ['status', 'deadline'], unique=False)
        batch_op.create_index('ix_governance_tasks_street_opened', ['street_id', 'opened_at'], unique=False)

    op.create_table('governance_task_tickets',
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('linked_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['governance_tasks.id'],
                            name=op.f('fk_governance_task_tickets_task_id_governance_tasks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_governance_task_tickets_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('task_id', 'ticket_id', name=op.f('pk_governance_task_tickets'))
    )
    with op.batch_alter_table('governance_task_tickets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_governance_task_tickets_ticket_id'), ['ticket_id'], unique=False)


def downgrade():
    with op.batch_alter_table('governance_task_tickets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_governance_task_tickets_ticket_id'))
    op.drop_table('governance_task_tickets')
    with op.batch_alter_table('governance_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_governance_tasks_street_opened')
        batch_op.drop_index('ix_governance_tasks_status_deadline')
        batch_op.drop_index(batch_op.f('ix_governance_tasks_grid_id'))
        batch_op.drop_index(batch_op.f('ix_governance_tasks_community_id'))
    op.drop_table('governance_tasks')
