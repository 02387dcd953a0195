"""The core's ports for channel adapters, found on the app when something arrives.

Adapters' routes exist before the hub starts (aiohttp freezes its router at start), so the composition
root hands them this object, which looks the hub up at each call: :class:`contact_center.ports.InboundPort`
(every channel) and :class:`contact_center.ports.LiveContactPort` (the phone).
"""

from __future__ import annotations

from typing import Any, Callable

from contact_center.hub.service import HubService
from contact_center.ports import InboundEvent, InboundResult


class HubInbound:
    """:class:`~contact_center.ports.InboundPort` and :class:`~contact_center.ports.LiveContactPort` by delegation."""

    def __init__(self, hub: Callable[[], HubService]) -> None:
        self._hub = hub

    async def receive_inbound(self, event: InboundEvent) -> InboundResult:
        return await self._hub().receive_inbound(event)

    async def delivery_update(
        self, channel: str, provider_id: str, status: str, error_code: str | None = None, error_message: str | None = None
    ) -> bool:
        return await self._hub().delivery_update(channel, provider_id, status, error_code, error_message)

    async def opt_out(self, channel: str, customer_address: str, opted_out: bool) -> None:
        await self._hub().opt_out(channel, customer_address, opted_out)

    async def address_undeliverable(self, channel: str, customer_address: str, reason: str) -> bool:
        return await self._hub().address_undeliverable(channel, customer_address, reason)

    async def contact_state(self, channel: str, thread_key: str) -> dict[str, Any] | None:
        return await self._hub().contact_state(channel, thread_key)

    async def request_agent(self, channel: str, thread_key: str, reason: str, context: dict[str, Any] | None = None) -> bool:
        return await self._hub().request_agent(channel, thread_key, reason, context)

    async def contact_ended(self, channel: str, thread_key: str, reason: str) -> bool:
        return await self._hub().contact_ended(channel, thread_key, reason)

    async def call_status(self, channel: str, thread_key: str, status: str, detail: dict[str, Any] | None = None) -> None:
        await self._hub().call_status(channel, thread_key, status, detail)

    async def settled(self, conversation_id: int, timeout: float) -> bool:
        return await self._hub().settled(conversation_id, timeout)
