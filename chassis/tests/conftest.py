"""Fixtures of the chassis tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from msa_testing.servers import FlakyServer, flaky_server


@pytest.fixture
def server() -> Iterator[FlakyServer]:
    """A callee whose answers, delays and failures each test sets (``msa_testing.servers``)."""
    with flaky_server() as running:
        yield running
