"""Annotated dependency aliases of ops-dashboard."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from chassis.state import resource_of
from ops_dashboard.live.dashboard import Dashboard

__all__ = ["DashboardDep"]


DashboardDep = Annotated[Dashboard, Depends(resource_of(Dashboard))]
