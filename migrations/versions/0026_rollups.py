"""roll-ups: each street's and community's grid ledgers of a day, added up

Written by the compile with the grid ledgers (services/ledger_rollup.py), so that a
street's dashboard reads one row a day instead of a thousand. The ledgers compiled
before this are added up here, by the same rules: sums, the largest p90, the JSON
counts added key by key.

Revision ID: 0026_rollups
Revises: 0025_governance
Create Date: 2026-12-06 14:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0026_rollups'
down_revision = '0025_governance'
branch_labels = None
depends_on = None

COUNTS = ('new', 'dispatched', 'accepted', 'resolved', 'closed', 'escalated', 'reopened',
          'patrol_new', 'patrol_resolved', 'open_at_end', 'overdue_at_end', 'on_hold_at_end',
          'response_num', 'response_den', 'resolution_num', 'resolution_den',
          'satisfaction_num', 'satisfaction_den', 'callback_due', 'callback_in_time', 'callback_reached',
          'accept_n', 'resolve_n', 'hold_n')
TOTALS = ('accept_total_s', 'resolve_total_s', 'hold_total_s')
HIGHEST = ('accept_p90_s', 'resolve_p90_s')
BREAKDOWNS = ('by_channel', 'by_category', 'by_status')


def columns():
    return [
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('ledgers', sa.Integer(), nullable=False),
        sa.Column('compiled_at', sa.DateTime(timezone=True), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in TOTALS),
        *(sa.Column(name, sa.Integer(), nullable=True) for name in HIGHEST),
        *(sa.Column(name, sa.JSON(), nullable=False) for name in BREAKDOWNS),
    ]


def upgrade():
    op.create_table('ledger_street_days',
                    *columns(),
                    sa.Column('street_id', sa.Integer(), nullable=False),
                    sa.ForeignKeyConstraint(['street_id'], ['streets.id']),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('street_id', 'day'))
    op.create_table('ledger_community_days',
                    *columns(),
                    sa.Column('community_id', sa.Integer(), nullable=False),
                    sa.Column('street_id', sa.Integer(), nullable=False),
                    sa.ForeignKeyConstraint(['community_id'], ['communities.id']),
                    sa.ForeignKeyConstraint(['street_id'], ['streets.id']),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('community_id', 'day'))
    op.create_index('ix_ledger_community_days_day_street', 'ledger_community_days', ['day', 'street_id'])
    backfill()


def backfill():
    """Add up the ledgers already compiled, in SQL of the dialect at hand."""
    postgres = op.get_bind().dialect.name == 'postgresql'
    each, agg = ('json_each_text', 'json_object_agg') if postgres else ('json_each', 'json_group_object')
    figures = ', '.join((*COUNTS, *TOTALS, *HIGHEST))
    empty = ', '.join(["'{}'"] * len(BREAKDOWNS))
    sums = ', '.join((*(f'sum({n})' for n in (*COUNTS, *TOTALS)), *(f'max({n})' for n in HIGHEST)))
    for table, keys in (('ledger_street_days', ('street_id',)), ('ledger_community_days', ('community_id', 'street_id'))):
        key = ', '.join(keys)
        op.execute(f"INSERT INTO {table} ({key}, day, ledgers, compiled_at, {figures}, {', '.join(BREAKDOWNS)}) "
                   f"SELECT {key}, day, count(*), min(compiled_at), {sums}, {empty} "
                   f"FROM ledgers GROUP BY {key}, day")
        for name in BREAKDOWNS:
            op.execute(
                f"UPDATE {table} SET {name} = COALESCE((SELECT {agg}(k, n) FROM ("
                f"SELECT pair.key AS k, sum(CAST(pair.value AS INTEGER)) AS n "
                f"FROM ledgers, {each}(ledgers.{name}) AS pair "
                f"WHERE ledgers.{keys[0]} = {table}.{keys[0]} AND ledgers.day = {table}.day "
                f"GROUP BY pair.key) AS counts), '{{}}')")


def downgrade():
    op.drop_index('ix_ledger_community_days_day_street', table_name='ledger_community_days')
    op.drop_table('ledger_community_days')
    op.drop_table('ledger_street_days')
