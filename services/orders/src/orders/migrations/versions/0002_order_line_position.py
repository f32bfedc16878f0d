"""Order lines keep the position they had in the request (SQLite's rowid gave it before; PostgreSQL
has no rowid). Lines stored earlier take their position from the rowid."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("order_lines", sa.Column("line_no", sa.Integer, nullable=False, server_default="0"))
    if op.get_bind().dialect.name == "sqlite":
        op.execute("UPDATE order_lines SET line_no = rowid")


def downgrade() -> None:
    with op.batch_alter_table("order_lines") as batch:
        batch.drop_column("line_no")
