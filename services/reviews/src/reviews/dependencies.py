"""Annotated dependency aliases of reviews."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from chassis.auth import Principal, require_scope
from chassis.dependencies import settings_of
from chassis.store import DatabaseDep
from reviews.settings import Settings

__all__ = ["DatabaseDep", "Reviewer", "SettingsDep"]


SettingsDep = Annotated[Settings, Depends(settings_of(Settings))]
# The signed-in user who writes a review: a verified JWT with reviews:write; its ``sub`` is the author.
Reviewer = Annotated[Principal, Depends(require_scope("reviews:write"))]
