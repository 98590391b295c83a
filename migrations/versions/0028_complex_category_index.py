"""tickets: the complex's index also holds the category and the filing time

Routing looks for the open tickets a new one may duplicate by category, complex and
a window of filing times (services/duplicates.py `near_many`), a condition per
(category, complex) of the batch. With the complex's index alone PostgreSQL read
every ticket of each complex and of each category and intersected the two, half a
millisecond per condition at 1 M tickets; the composite index finds each window in
one range. It replaces the complex's own index (whose look-ups it serves as well),
so filing a ticket updates no more indexes than before. Built CONCURRENTLY on
PostgreSQL: filing goes on while a large table is indexed.

Revision ID: 0028_complex_category_index
Revises: 0027_hotspots
Create Date: 2026-12-06 17:10:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0028_complex_category_index'
down_revision = '0027_hotspots'
branch_labels = None
depends_on = None

NEW = 'ix_tickets_complex_category'
OLD = 'ix_tickets_complex_id'


def _swap(create: str, create_columns: list[str], drop: str) -> None:
    if op.get_bind().dialect.name == 'postgresql':
        with op.get_context().autocommit_block():
            op.create_index(create, 'tickets', create_columns, postgresql_concurrently=True, if_not_exists=True)
            op.drop_index(drop, table_name='tickets', postgresql_concurrently=True, if_exists=True)
    else:
        op.create_index(create, 'tickets', create_columns)
        op.drop_index(drop, table_name='tickets')


def upgrade():
    _swap(NEW, ['complex_id', 'category_id', 'created_at'], OLD)


def downgrade():
    _swap(OLD, ['complex_id'], NEW)
