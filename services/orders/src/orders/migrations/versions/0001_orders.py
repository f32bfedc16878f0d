"""Orders, their lines, and Idempotency-Keys: the schema as first released (IF NOT EXISTS:
stores made before migrations adopt it)."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("user", sa.Text, nullable=False),  # a reserved word in PostgreSQL: SQL quotes it
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("total_cents", sa.Integer, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.CheckConstraint("status IN ('confirmed', 'delivered')", name="known_status"),
        if_not_exists=True,
    )
    op.create_index("orders_by_user", "orders", ["user", sa.text("created_at DESC")], if_not_exists=True)
    op.create_table(
        "order_lines",
        sa.Column("order_id", sa.Text, sa.ForeignKey("orders.id"), primary_key=True),
        sa.Column("product_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("unit_price_cents", sa.Integer, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("line_total_cents", sa.Integer, nullable=False),
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        if_not_exists=True,
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("user", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("request_hash", sa.Text, nullable=False),
        # One attempt per order id, whichever replica claimed the key.
        sa.Column("order_id", sa.Text, nullable=False, unique=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
        sa.CheckConstraint("state IN ('pending', 'releasing', 'done')", name="known_state"),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("order_lines")
    op.drop_index("orders_by_user", table_name="orders")
    op.drop_table("orders")
