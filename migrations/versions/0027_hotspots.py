"""hotspots: the recurring problems (高频诉求) found each night

One row per run (local day × window in days), the clusters it found (place × category,
with counts, trend, score, weekly counts, handlers and typical wording), and a sample of
each cluster's latest tickets (services/hotspots.py).

Revision ID: 0027_hotspots
Revises: 0026_rollups
Create Date: 2026-12-10 09:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0027_hotspots'
down_revision = '0026_rollups'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'hotspot_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('days', sa.Integer(), nullable=False),
        sa.Column('found_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('min_count', sa.Integer(), nullable=False),
        sa.Column('clusters', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_hotspot_runs')),
        sa.UniqueConstraint('day', 'days', name=op.f('uq_hotspot_runs_day_days')),
    )
    op.create_table(
        'hotspots',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('days', sa.Integer(), nullable=False),
        sa.Column('level', sa.String(length=12), nullable=False),
        sa.Column('place_id', sa.Integer(), nullable=False),
        sa.Column('place_name', sa.String(length=200), nullable=False),
        sa.Column('street_id', sa.Integer(), nullable=False),
        sa.Column('community_id', sa.Integer(), nullable=False),
        sa.Column('grid_id', sa.Integer(), nullable=True),
        sa.Column('category_id', sa.Integer(), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('previous_count', sa.Integer(), nullable=False),
        sa.Column('unsatisfied', sa.Integer(), nullable=False),
        sa.Column('reopened', sa.Integer(), nullable=False),
        sa.Column('merged', sa.Integer(), nullable=False),
        sa.Column('score', sa.Integer(), nullable=False),
        sa.Column('first_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('weekly', sa.JSON(), nullable=False),
        sa.Column('handlers', sa.JSON(), nullable=False),
        sa.Column('wording', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['hotspot_runs.id'], name=op.f('fk_hotspots_run_id_hotspot_runs'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['street_id'], ['streets.id'], name=op.f('fk_hotspots_street_id_streets')),
        sa.ForeignKeyConstraint(['community_id'], ['communities.id'],
                                name=op.f('fk_hotspots_community_id_communities')),
        sa.ForeignKeyConstraint(['grid_id'], ['grids.id'], name=op.f('fk_hotspots_grid_id_grids')),
        sa.ForeignKeyConstraint(['category_id'], ['categories.id'], name=op.f('fk_hotspots_category_id_categories')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_hotspots')),
        sa.UniqueConstraint('day', 'days', 'level', 'place_id', 'category_id',
                            name=op.f('uq_hotspots_day_days_level_place_id_category_id')),
    )
    op.create_index('ix_hotspots_day_days_score', 'hotspots', ['day', 'days', 'score'])
    op.create_index(op.f('ix_hotspots_run_id'), 'hotspots', ['run_id'])
    op.create_table(
        'hotspot_tickets',
        sa.Column('hotspot_id', sa.Integer(), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['hotspot_id'], ['hotspots.id'], name=op.f('fk_hotspot_tickets_hotspot_id_hotspots'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('hotspot_id', 'ticket_id', name=op.f('pk_hotspot_tickets')),
    )


def downgrade():
    op.drop_table('hotspot_tickets')
    op.drop_index(op.f('ix_hotspots_run_id'), table_name='hotspots')
    op.drop_index('ix_hotspots_day_days_score', table_name='hotspots')
    op.drop_table('hotspots')
    op.drop_table('hotspot_runs')
