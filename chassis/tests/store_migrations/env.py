"""Alembic environment of the store tests' schema."""

from chassis.store import run_migrations

run_migrations()
