"""Annotated dependency aliases of ops-dashboard."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ops_dashboard.live.dashboard import Dashboard

__all__ = ["DashboardDep"]


def get_dashboard(request: Request) -> Dashboard:
    dashboard: Dashboard = request.app.state.dashboard
    return dashboard


DashboardDep = Annotated[Dashboard, Depends(get_dashboard)]
