"""What the Twilio webhooks need from the hub besides the core's :class:`~contact_center.ports.InboundPort`."""

from __future__ import annotations

from typing import Any, Protocol


class WebhookReceipts(Protocol):
    """Remembers which provider webhooks were already handled, so a repeat does nothing twice.

    The hub keeps them in SQL (table ``webhook_receipts``, unique on provider, kind and key), so that
    every hub process behind the proxy agrees; :class:`integrations.twilio.receipts.MemoryWebhookReceipts`
    is the one-process version.
    """

    async def first_time(self, provider: str, kind: str, key: str, payload: dict[str, Any]) -> bool:
        """Record this webhook; True if it was not recorded before (atomically: of two racing callers one wins).

        :param provider: ``twilio``.
        :param kind: ``message`` (an inbound message with media or a STOP/START keyword, key =
            MessageSid: a plain message relies on the core storing a MessageSid once) or ``status``
            (a status callback, key = ``MessageSid:MessageStatus``).
        :param payload: the webhook's form, kept; a status callback's also has ``ErrorWords`` (the
            agent's words for its ``ErrorCode``), so that a callback that arrives before the send's
            answer can be applied from its receipt later.
        """
        ...

    async def forget(self, provider: str, kind: str, key: str) -> None:
        """Drop a receipt whose handling failed, so that Twilio's retry of it is handled again."""
        ...
