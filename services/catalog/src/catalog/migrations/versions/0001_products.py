"""Products: the catalog's schema as first released (IF NOT EXISTS: stores made before migrations adopt it)."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("brand", sa.Text, nullable=False, server_default=""),
        sa.Column("price_cents", sa.Integer, nullable=False),
        sa.Column("currency", sa.Text, nullable=False, server_default="EUR"),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("image_url", sa.Text, nullable=False, server_default=""),
        sa.Column("thumb_url", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
        sa.CheckConstraint("price_cents >= 0", name="price_not_negative"),
        if_not_exists=True,
    )
    op.create_index("products_category", "products", ["category", "id"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("products_category", table_name="products")
    op.drop_table("products")
