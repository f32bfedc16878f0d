"""Money columns hold 64-bit integers everywhere: a large order (up to 20 lines of 100 units at
the highest price) passes 2^31 cents, PostgreSQL's INTEGER. SQLite's INTEGER is 64-bit already."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"

_MONEY = [("orders", "total_cents"), ("order_lines", "unit_price_cents"), ("order_lines", "line_total_cents")]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in _MONEY:
        op.alter_column(
            table, column, type_=sa.BigInteger(), existing_type=sa.Integer(), existing_nullable=False
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in _MONEY:
        op.alter_column(
            table, column, type_=sa.Integer(), existing_type=sa.BigInteger(), existing_nullable=False
        )
