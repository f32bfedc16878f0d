"""Reviews: the schema as first released (IF NOT EXISTS: stores made before migrations adopt it)."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("product_id", sa.Text, nullable=False),
        sa.Column("author", sa.Text, nullable=False),
        sa.Column("rating", sa.Integer, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name="rating_1_to_5"),
        sa.UniqueConstraint("product_id", "author", name="one_review_per_author"),
        sqlite_autoincrement=True,  # ids are never reused, as before migrations
        if_not_exists=True,
    )
    op.create_index(
        "reviews_by_product", "reviews", ["product_id", sa.text("created_at DESC")], if_not_exists=True
    )


def downgrade() -> None:
    op.drop_index("reviews_by_product", table_name="reviews")
    op.drop_table("reviews")
