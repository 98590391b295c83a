"""place codes: complexes, buildings, property companies and teams get a unique code

The places workbook (services/places_import.py) keys every row by its code, so the
kinds that had none get one; existing rows are given `C<id>`, `B<id>`, `P<id>` and
`T<id>`. Every place kind, company and team gets an `active` flag (an import never
deletes), a building may lie in another grid than its complex (`grid_id`), and a
complex gets its street address.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 09:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

CODED = (('complexes', 'C'), ('buildings', 'B'), ('property_companies', 'P'), ('teams', 'T'))
FLAGGED = ('streets', 'communities', 'grids', 'complexes', 'buildings', 'property_companies', 'teams')


def upgrade():
    for table, prefix in CODED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('code', sa.String(length=32), nullable=True))
        rows = sa.table(table, sa.column('id', sa.Integer), sa.column('code', sa.String))
        op.execute(rows.update().values(
            code=sa.literal(prefix) + sa.cast(rows.c.id, sa.String(length=31))))
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('code', existing_type=sa.String(length=32), nullable=False)
            batch_op.create_unique_constraint(batch_op.f(f'uq_{table}_code'), ['code'])
    for table in FLAGGED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('active', sa.Boolean(), nullable=False, server_default=sa.true()))
    with op.batch_alter_table('complexes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('address', sa.String(length=200), nullable=False, server_default=''))
    with op.batch_alter_table('buildings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('grid_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_buildings_grid_id'), ['grid_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_buildings_grid_id_grids'), 'grids', ['grid_id'], ['id'])


def downgrade():
    with op.batch_alter_table('buildings', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_buildings_grid_id_grids'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_buildings_grid_id'))
        batch_op.drop_column('grid_id')
    with op.batch_alter_table('complexes', schema=None) as batch_op:
        batch_op.drop_column('address')
    for table in FLAGGED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('active')
    for table, _prefix in CODED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f(f'uq_{table}_code'), type_='unique')
            batch_op.drop_column('code')
