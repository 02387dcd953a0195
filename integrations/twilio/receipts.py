"""Webhook receipts in memory: for tests and a single process (the hub's own are in SQL)."""

from __future__ import annotations

import asyncio
from typing import Any


class MemoryWebhookReceipts:
    """:class:`integrations.twilio.ports.WebhookReceipts` in a dict."""

    def __init__(self) -> None:
        self.payloads: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._lock = asyncio.Lock()

    async def first_time(self, provider: str, kind: str, key: str, payload: dict[str, Any]) -> bool:
        """Record the webhook; True if it is new."""
        async with self._lock:
            if (provider, kind, key) in self.payloads:
                return False
            self.payloads[(provider, kind, key)] = dict(payload)
            return True

    async def forget(self, provider: str, kind: str, key: str) -> None:
        """Drop a receipt."""
        async with self._lock:
            self.payloads.pop((provider, kind, key), None)
