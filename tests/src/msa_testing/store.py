"""Looking into a service's store from a test, whichever engine it runs on."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from fastapi import FastAPI
from sqlalchemy import Connection, create_engine

from chassis.state import resource
from chassis.store import Database

__all__ = ["store_connection"]


@contextlib.contextmanager
def store_connection(app: FastAPI) -> Iterator[Connection]:
    """A connection of the test's own to ``app``'s store (its SQLite file or PostgreSQL database),
    in one transaction committed on exit. SQL goes through ``sqlalchemy.text`` with ``:name``
    parameters, so one statement runs on both engines."""
    engine = create_engine(resource(app, Database).url)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()
