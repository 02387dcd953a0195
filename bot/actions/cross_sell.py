"""The bot's cross-sell after an order confirmed on chat (issue 18), without rasa_sdk so the hub's tests run it.

After the first order of a conversation, where the shop's setting ``bot_cross_sell`` allows it and the channel
is a chat, the bot offers the hub's best association suggestion once (``GET /api/customers/{id}/value``:
never a product the customer declined, never one out of stock, never one in the order just placed) and records
it as offered (``POST /api/customers/{id}/offers``), so the supervisor's offer figures count it and an
agent marking it declined keeps it from coming back. A hub that fails here costs nothing: no offer is made.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

from .hub import HubClient, HubRejected, HubUnavailable
from .shop import cross_sell_offer, cross_sell_text

log = logging.getLogger(__name__)

CHAT_CHANNELS = frozenset({"chat", "web", "whatsapp", "sms"})


async def maybe_cross_sell(hub: HubClient, *, customer_id: Any, ordered_skus: Iterable[str], product_name: str,
                           channel: str = "chat", conversation_id: Any = None, first_order: bool = True
                           ) -> dict[str, Any] | None:
    """The cross-sell to say after an order (``{"text", "sku", "title"}``), or None (not allowed, nothing to offer)."""
    if not first_order or channel not in CHAT_CHANNELS or customer_id is None or not str(customer_id).isdigit():
        return None
    customer_id = int(customer_id)
    try:
        settings = await hub.evaluation_settings()
        if not settings.get("bot_cross_sell"):
            return None
        view = await hub.customer_value(customer_id, channel=channel)
        offer = cross_sell_offer(view, ordered_skus)
        if offer is None:
            return None
        event: dict[str, Any] = {"outcome": "offered", "source": "association", "sku": offer["sku"],
                                 "title": str(offer.get("title") or "")[:200]}
        if conversation_id is not None and str(conversation_id).isdigit():
            event["conversation_id"] = int(conversation_id)
        await hub.record_offer(customer_id, event)
    except (HubUnavailable, HubRejected) as exc:
        log.info("no cross-sell: the hub said %s", exc)
        return None
    return {"text": cross_sell_text(offer, product_name), "sku": offer["sku"], "title": offer.get("title")}
