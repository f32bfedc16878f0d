"""Stock and reservations: inventory's schema as first released (IF NOT EXISTS: stores made
before migrations adopt it)."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "stock",
        sa.Column("sku", sa.Text, primary_key=True),
        sa.Column("on_hand", sa.Integer, nullable=False),
        sa.Column("reserved", sa.Integer, nullable=False, server_default="0"),
        sa.CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        # What makes overselling impossible, whichever replica reserves.
        sa.CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="reserved_within_on_hand"),
        if_not_exists=True,
    )
    op.create_table(
        "reservations",
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
        sa.CheckConstraint("status IN ('reserved', 'released')", name="known_status"),
        if_not_exists=True,
    )
    op.create_table(
        "reservation_lines",
        sa.Column("order_id", sa.Text, sa.ForeignKey("reservations.order_id"), primary_key=True),
        sa.Column("sku", sa.Text, primary_key=True),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table("reservation_lines")
    op.drop_table("reservations")
    op.drop_table("stock")
