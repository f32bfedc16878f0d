"""Items and a counter: what the store tests write."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
        sa.CheckConstraint("n >= 0", name="n_not_negative"),
    )
