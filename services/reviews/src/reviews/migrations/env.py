"""Alembic environment of reviews's store: chassis.store runs the migrations at start-up."""

from chassis.store import run_migrations

run_migrations()
