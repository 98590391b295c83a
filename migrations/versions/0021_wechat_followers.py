"""wechat followers: the phone and last place remembered, so later requests need neither

A follower's mobile number and the place of their last request are kept on their row
of `wechat_followers` (services/followers.py). The place used to be read from the
follower's newest ticket; it is copied from there once, here, so followers who filed
before keep that fallback. Phones are not copied: they are remembered only from the
next request on, whose reply says so.

Revision ID: 0021_wechat_followers
Revises: 0020_emergency
Create Date: 2026-12-12 09:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0021_wechat_followers'
down_revision = '0020_emergency'
branch_labels = None
depends_on = None

PLACES = (('last_community_id', 'communities'), ('last_complex_id', 'complexes'),
          ('last_building_id', 'buildings'), ('last_grid_id', 'grids'))


def upgrade():
    with op.batch_alter_table('wechat_followers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone', sa.String(length=20), nullable=False, server_default=''))
        for column, _table in PLACES:
            batch_op.add_column(sa.Column(column, sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))
        for column, table in PLACES:
            batch_op.create_foreign_key(batch_op.f(f'fk_wechat_followers_{column}_{table}'), table,
                                        [column], ['id'])
    copy_last_places()


def copy_last_places():
    """Each follower's newest ticket still holding personal data gives their last place."""
    tickets = sa.table('tickets', *(sa.column(name) for name in (
        'id', 'resident_openid', 'community_id', 'complex_id', 'building_id', 'grid_id',
        'created_at', 'personal_data_erased_at')))
    followers = sa.table('wechat_followers', sa.column('openid'), sa.column('label'),
                         *(sa.column(column) for column, _table in PLACES), sa.column('updated_at'))
    bind = op.get_bind()
    newest = sa.select(sa.func.max(tickets.c.id)).where(
        tickets.c.resident_openid.is_not(None), tickets.c.personal_data_erased_at.is_(None)
    ).group_by(tickets.c.resident_openid)
    rows = bind.execute(sa.select(tickets).where(tickets.c.id.in_(newest))).mappings().all()
    known = set(bind.execute(sa.select(followers.c.openid)).scalars())
    for row in rows:
        values = {'last_community_id': row['community_id'], 'last_complex_id': row['complex_id'],
                  'last_building_id': row['building_id'], 'last_grid_id': row['grid_id'],
                  'updated_at': row['created_at']}
        openid = row['resident_openid'][:64]
        if openid in known:
            bind.execute(followers.update().where(followers.c.openid == openid).values(**values))
        else:
            bind.execute(followers.insert().values(openid=openid, label='', **values))


def downgrade():
    with op.batch_alter_table('wechat_followers', schema=None) as batch_op:
        for column, table in reversed(PLACES):
            batch_op.drop_constraint(batch_op.f(f'fk_wechat_followers_{column}_{table}'), type_='foreignkey')
        batch_op.drop_column('updated_at')
        for column, _table in reversed(PLACES):
            batch_op.drop_column(column)
        batch_op.drop_column('phone')
