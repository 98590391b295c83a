"""calendar: who set each admin entry and when; the years whose 调休 an admin confirmed

`chinese-calendar` knows the State Council's schedule only for the years it was
released with; for later years the statutory holidays are computed, but the make-up
working days (调休) cannot be, so an admin enters them and confirms the year.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 09:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('calendar_days', schema=None) as batch_op:
        batch_op.add_column(sa.Column('set_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('set_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_calendar_days_set_by_id_users'), 'users', ['set_by_id'], ['id'])

    op.create_table('calendar_years',
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('confirmed_by_id', sa.Integer(), nullable=True),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['confirmed_by_id'], ['users.id'], name=op.f('fk_calendar_years_confirmed_by_id_users')),
    sa.PrimaryKeyConstraint('year', name=op.f('pk_calendar_years'))
    )


def downgrade():
    op.drop_table('calendar_years')
    with op.batch_alter_table('calendar_days', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_calendar_days_set_by_id_users'), type_='foreignkey')
        batch_op.drop_column('set_at')
        batch_op.drop_column('set_by_id')
