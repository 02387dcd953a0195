"""The hub's HTTP API as the bot's actions use it (aiohttp, bearer service token).

Configuration (environment of the action server):

- ``HUB_URL``: base URL of the hub, default ``http://127.0.0.1:8080``;
- ``HUB_SERVICE_TOKEN``: one of the hub's ``SERVICE_TOKEN`` values;
- ``HUB_TIMEOUT_SECONDS``: per request, default 5.

Two kinds of failure: :class:`HubRejected` (the hub answered 4xx with a reason: a product is sold out,
an order cannot be cancelled any more) is part of the conversation; :class:`HubUnavailable` (no answer,
a timeout, 5xx, a refused token) is an action failure, and the actions hand the customer over to a person.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

_CATALOGUE_TTL = 30.0


class HubUnavailable(RuntimeError):
    """The hub could not be reached or failed (timeout, connection refused, 5xx, 401/403)."""


@dataclass
class HubRejected(Exception):
    """The hub refused a request with a reason (400, 404, 409, 422)."""

    status: int
    body: dict[str, Any]

    @property
    def fields(self) -> list[dict[str, str]]:
        """The ``fields`` list of a 422 (``[{"field": "lines[0].quantity", "reason": "only 3 left of ..."}]``)."""
        fields = self.body.get("fields") if isinstance(self.body, dict) else None
        return [f for f in fields or [] if isinstance(f, dict)]

    @property
    def message(self) -> str:
        return str(self.body.get("message") or self.body.get("error") or f"HTTP {self.status}")

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"


# one session per event loop (the action server runs one loop; tests may run several)
_sessions: dict[int, aiohttp.ClientSession] = {}
_catalogue: dict[str, tuple[float, list[dict[str, Any]]]] = {}


async def close_sessions() -> None:
    """Close the HTTP sessions of this process (scripts and tests; the action server keeps its own open)."""
    for key, session in list(_sessions.items()):
        await session.close()
        _sessions.pop(key, None)


class HubClient:
    """A thin client of the /api/ endpoints the bot needs."""

    def __init__(self, base_url: str | None = None, token: str | None = None, timeout: float | None = None) -> None:
        self.base_url = (base_url or os.environ.get("HUB_URL") or "http://127.0.0.1:8080").rstrip("/")
        self.token = token if token is not None else os.environ.get("HUB_SERVICE_TOKEN", "")
        self.timeout = timeout or float(os.environ.get("HUB_TIMEOUT_SECONDS") or 5)

    async def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = _sessions.get(id(loop))
        if session is None or session.closed:
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            _sessions[id(loop)] = session
        return session

    async def request(self, method: str, path: str, *, json: Any = None, headers: dict[str, str] | None = None,
                      params: dict[str, Any] | None = None) -> tuple[int, Any]:
        """Call the hub; 2xx and 4xx come back as (status, JSON); anything else raises HubUnavailable."""
        hdrs = {"Accept": "application/json", **(headers or {})}
        if self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        url = f"{self.base_url}{path}"
        try:
            session = await self._session()
            async with session.request(method, url, json=json, headers=hdrs, params=params,
                                       timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = {"error": "not_json", "message": (await resp.text())[:300]}
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise HubUnavailable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if status in (401, 403) or status >= 500:
            raise HubUnavailable(f"{method} {path}: HTTP {status}: {body}")
        if not isinstance(body, (dict, list)):
            body = {"value": body}
        return status, body

    async def _ok(self, method: str, path: str, **kw: Any) -> Any:
        status, body = await self.request(method, path, **kw)
        if status >= 400:
            raise HubRejected(status, body if isinstance(body, dict) else {"value": body})
        return body

    # --- catalogue ---------------------------------------------------------------------------------

    async def products(self, *, fresh: bool = False) -> list[dict[str, Any]]:
        """GET /api/products, cached for 30 s (names and options rarely change; stock is read per product)."""
        cached = _catalogue.get(self.base_url)
        if cached and not fresh and time.monotonic() - cached[0] < _CATALOGUE_TTL:
            return cached[1]
        body = await self._ok("GET", "/api/products")
        items = list(body.get("products") or [])
        _catalogue[self.base_url] = (time.monotonic(), items)
        return items

    async def product(self, sku: str) -> dict[str, Any] | None:
        """GET /api/products/{sku} (fresh stock), or None for an unknown SKU."""
        status, body = await self.request("GET", f"/api/products/{sku}")
        if status == 404:
            return None
        if status >= 400:
            raise HubRejected(status, body)
        return body.get("product")

    # --- orders ------------------------------------------------------------------------------------

    async def quote(self, order: dict[str, Any]) -> dict[str, Any]:
        """POST /api/orders/quote: lines, totals and the estimated delivery, or HubRejected (422 with fields)."""
        return await self._ok("POST", "/api/orders/quote", json=order)

    async def place_order(self, order: dict[str, Any], idempotency_key: str) -> tuple[dict[str, Any], bool]:
        """POST /api/orders with an Idempotency-Key; returns (order, replayed)."""
        body = await self._ok("POST", "/api/orders", json=order, headers={"Idempotency-Key": idempotency_key})
        return body["order"], bool(body.get("replayed"))

    async def order(self, order_id: int) -> dict[str, Any] | None:
        """GET /api/orders/{id} (lines, status, promised date, customer), or None when unknown."""
        status, body = await self.request("GET", f"/api/orders/{int(order_id)}")
        if status == 404:
            return None
        if status >= 400:
            raise HubRejected(status, body)
        return body.get("order")

    async def orders_of(self, *, customer_id: Any = None, email: str | None = None, phone: str | None = None,
                        limit: int = 5) -> list[dict[str, Any]]:
        """GET /api/orders?customer_id=|email=|phone=, newest first (empty when nothing matches)."""
        params: dict[str, Any] = {"limit": limit}
        if customer_id is not None:
            params["customer_id"] = str(customer_id)
        elif email:
            params["email"] = email
        elif phone:
            params["phone"] = phone
        else:
            return []
        status, body = await self.request("GET", "/api/orders", params=params)
        if status in (404, 422, 400):
            return []
        return list(body.get("orders") or [])

    async def evaluation_settings(self) -> dict[str, Any]:
        """GET /api/evaluation/settings: the shop's settings (``bot_cross_sell`` among them)."""
        body = await self._ok("GET", "/api/evaluation/settings")
        return dict(body.get("settings") or {})

    async def customer_value(self, customer_id: int, channel: str = "chat") -> dict[str, Any]:
        """GET /api/customers/{id}/value: the customer's value and next best offers (never a declined product)."""
        return dict(await self._ok("GET", f"/api/customers/{int(customer_id)}/value", params={"channel": channel}))

    async def record_offer(self, customer_id: int, event: dict[str, Any]) -> dict[str, Any]:
        """POST /api/customers/{id}/offers: an offer made (``{outcome, source, sku, title, conversation_id}``)."""
        return dict(await self._ok("POST", f"/api/customers/{int(customer_id)}/offers", json=event))

    async def cancel(self, order_id: int, reason: str) -> dict[str, Any]:
        """POST /api/orders/{id}/cancel; HubRejected(409) when the order rules do not allow it any more."""
        body = await self._ok("POST", f"/api/orders/{int(order_id)}/cancel", json={"reason": reason})
        return body["order"]
