"""wechat nonces: signed callbacks already seen, so a replayed one is refused

Kept here only while Redis is not configured or not answering; each row lives as
long as its callback's timestamp is acceptable (services/nonces.py).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 10:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('wechat_nonces',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_wechat_nonces'))
    )
    with op.batch_alter_table('wechat_nonces', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wechat_nonces_expires_at'), ['expires_at'], unique=False)


def downgrade():
    with op.batch_alter_table('wechat_nonces', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wechat_nonces_expires_at'))
    op.drop_table('wechat_nonces')
