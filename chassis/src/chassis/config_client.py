"""Settings loading: the seam where configuration from config-service joins the environment.

Precedence: environment > config-service > code defaults (see ``ServiceSettings.load``).
"""

from __future__ import annotations

from typing import TypeVar

from chassis.settings import ServiceSettings

__all__ = ["load_settings"]

S = TypeVar("S", bound=ServiceSettings)


def load_settings(cls: type[S]) -> S:
    """Build a service's settings at start-up. Remote configuration is not fetched yet."""
    return cls.load(remote={})
