"""Annotated dependency aliases of reviews."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from chassis.auth import Principal, require_scope
from chassis.sqlite import DatabaseDep
from reviews.settings import Settings

__all__ = ["DatabaseDep", "Reviewer", "SettingsDep"]


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.live.current
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]
# The signed-in user who writes a review: a verified JWT with reviews:write; its ``sub`` is the author.
Reviewer = Annotated[Principal, Depends(require_scope("reviews:write"))]
