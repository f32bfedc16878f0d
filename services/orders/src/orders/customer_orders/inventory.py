"""Calls to inventory as orders itself: every request carries orders' own client_credentials
token (scope ``inventory:reserve``), never the end user's. Inventory trusts orders, not the user,
with reservations, and the background recovery has no user token anyway."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI, Request

from chassis import Downstream
from chassis.auth import ServiceTokenProvider, service_token_provider

__all__ = ["InventoryClient", "inventory_client", "inventory_dependency"]


@dataclass(frozen=True)
class InventoryClient:
    downstream: Downstream
    tokens: ServiceTokenProvider

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = await self.downstream.request(
            method, url, headers=await self.tokens.auth_header(), **kwargs
        )
        if response.status_code == 401:
            # our cached token was refused (signing key rotated, clock skew): fetch a new one, once;
            # reserve and release are idempotent by order id, so repeating them is safe
            self.tokens.invalidate()
            response = await self.downstream.request(
                method, url, headers=await self.tokens.auth_header(), **kwargs
            )
        return response


def inventory_client(app: FastAPI) -> InventoryClient:
    return InventoryClient(app.state.downstreams["inventory"], service_token_provider(app))


def inventory_dependency(request: Request) -> InventoryClient:
    return inventory_client(request.app)
