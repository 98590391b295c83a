"""categories get a public flag: whether the keyless Open311 list shows their tickets

Every category starts private; the shipped categories about shared things (repairs,
cleanliness, safety hazards, parking, suggestions) are made public. Elderly help and
neighbour disputes, and any category an installation added itself, stay private
until an admin ticks them. The codes are written out here, not imported, so the
migration keeps meaning what it meant when it was written.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 09:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

PUBLIC_CODES = (
    'repair', 'repair.water_leak', 'repair.no_water', 'repair.power', 'repair.heating', 'repair.gas',
    'repair.lift_trapped', 'repair.lift', 'repair.stair_light', 'repair.door', 'repair.roof', 'repair.other',
    'environment', 'environment.litter', 'environment.sewage', 'environment.greenery', 'environment.pests',
    'safety', 'safety.fire_exit', 'safety.charging', 'safety.hazard',
    'parking', 'parking.disorder', 'parking.space',
    'suggestion', 'suggestion.general',
)


def upgrade():
    with op.batch_alter_table('categories', schema=None) as batch_op:
        batch_op.add_column(sa.Column('public', sa.Boolean(), nullable=False, server_default=sa.false()))

    categories = sa.table('categories', sa.column('code', sa.String), sa.column('public', sa.Boolean))
    op.execute(categories.update().where(categories.c.code.in_(PUBLIC_CODES)).values(public=True))


def downgrade():
    with op.batch_alter_table('categories', schema=None) as batch_op:
        batch_op.drop_column('public')
