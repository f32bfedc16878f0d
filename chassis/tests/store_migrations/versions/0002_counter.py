"""A second revision, so the tests see an upgrade path run in order."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("items", sa.Column("note", sa.Text, nullable=False, server_default=""))
