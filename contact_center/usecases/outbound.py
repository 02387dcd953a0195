"""Outbound: what the shop says leaves through the conversation's channel, with a status that only moves forward.

* :func:`publish`: a stored message goes to the assigned agent, the watchers, and the customer — on a
  live channel (web chat) in the same batch of notices; on any other channel its adapter delivers it
  in the background (:func:`deliver_later`), one conversation's messages in order.
* :func:`delivery_update`: a provider's status callback; a late "sent" never overwrites "delivered".
* :func:`check_can_send`: a reply the channel would not carry (opted out, outside its reply window)
  is refused before it is stored, with the reason in words.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from contact_center.domain.channels import ChannelSpec, DeliveryStatus, delivery_status, numbered_choices
from contact_center.ports import ConversationRow, DeliveryReport, Notice, OutboundMessage
from contact_center.usecases.context import Hub
from contact_center.usecases.errors import HubError
from contact_center.usecases.views import buttons_of, delivery_error

log = logging.getLogger("contact_center.hub")


async def publish(
    hub: Hub, conversation_id: int, agent_id: int | None, payload: dict[str, Any], *, to_customer: ChannelSpec | None,
    skip: str | None = None,
) -> None:
    """Send a stored message to the assigned agent, watchers, and the customer (unless internal).

    ``to_customer`` is the conversation's channel, or None for what only agents see. Any channel with an
    adapter gets what the shop sends (never the customer's own messages) in the background.
    """
    live = hub.is_live(to_customer)
    notices: list[Notice] = []
    if live:
        notices.append(Notice("customer", conversation_id, "message", payload, skip=skip))
    if agent_id is not None:
        notices.append(Notice("agent", agent_id, "message", payload))
    if conversation_id in hub.watched:
        notices.append(Notice("watchers", conversation_id, "message", payload))
    await hub.notify.send(notices)
    if to_customer is not None and not live and payload.get("sender_kind") != "customer" and not payload.get("internal"):
        deliver_later(hub, conversation_id, int(payload["seq"]))


async def point_of(hub: Hub, conv: ConversationRow) -> Any:
    """The contact point of the customer's address on the conversation's channel (None if it has none)."""
    spec = hub.channels.get(conv.channel)
    if spec is None or not conv.customer_address:
        return None
    return await hub.repo.contact_point(spec.contact_kind, conv.customer_address)


async def check_can_send(hub: Hub, conv: ConversationRow, spec: ChannelSpec | None) -> None:
    """Refuse, with the reason in words, a reply the channel would not carry."""
    if spec is None:
        raise HubError("bad_request", f"no channel named {conv.channel!r}")
    assert conv.id is not None
    point = await point_of(hub, conv)
    last = await hub.repo.last_customer_message_at(conv.id) if spec.reply_window_seconds else None
    if point is not None and point.opted_out_at is not None:
        raise HubError(
            "opted_out",
            f"The customer replied STOP on {spec.label}: nothing can be sent to {conv.customer_address} until they text START.",
        )
    failed_at = getattr(point, "undeliverable_at", None) if point is not None else None
    if failed_at is not None:
        heard = last if last is not None else await hub.repo.last_customer_message_at(conv.id)
        if heard is None or heard <= failed_at:
            raise HubError(
                "undeliverable",
                f"{spec.label} to {conv.customer_address} cannot be delivered ({point.undeliverable_reason or 'a permanent failure'}); "
                "check the address with the customer on another channel.",
            )
    if spec.reply_window_seconds and (last is None or hub.clock() - last.timestamp() > spec.reply_window_seconds):
        hours = spec.reply_window_seconds // 3600
        raise HubError(
            "outside_window",
            f"{spec.label} allows free-form replies only within {hours} hours of the customer's last message; "
            "message templates are not supported yet.",
        )


async def media_attachments(hub: Hub, raw: Any) -> list[dict[str, Any]]:
    """The files an agent attaches to a reply: keys of uploads in the media store (at most 5)."""
    if raw is None or raw == []:
        return []
    if not isinstance(raw, list) or len(raw) > 5 or not all(isinstance(k, str) and 0 < len(k) <= 100 for k in raw):
        raise HubError("bad_request", "media must be a list of at most 5 upload keys")
    if hub.media is None:
        raise HubError("bad_request", "this hub keeps no media")
    out: list[dict[str, Any]] = []
    for key in raw:
        found = await hub.media.get(key)
        if found is None:
            raise HubError("not_found", f"no upload with the key {key}")
        stored = found[0]
        out.append({"type": "media", "content_type": stored.content_type, "url": f"/media/{stored.key}", "name": stored.name, "size": stored.size})
    return out


def deliver_later(hub: Hub, conversation_id: int, seq: int) -> None:
    """Hand a stored outbound message to its channel's adapter in the background."""
    hub.spawn(hub.delivery_tasks, _deliver(hub, conversation_id, seq), conversation_id)


async def _deliver(hub: Hub, conversation_id: int, seq: int) -> None:
    """Deliver one outbound message (a conversation's messages go out in order) and record the outcome."""
    lock = hub.delivery_locks.setdefault(conversation_id, asyncio.Lock())
    try:
        async with lock:
            report = await _deliver_one(hub, conversation_id, seq)
            if report is not None:
                await _record_sent(hub, conversation_id, seq, report)
    except Exception:  # noqa: BLE001 - logged; the message is stored and stays "queued" for the agent to see
        log.exception("delivery failed", extra={"conversation_id": conversation_id, "seq": seq})
    finally:
        if not lock.locked() and hub.delivery_locks.get(conversation_id) is lock:
            del hub.delivery_locks[conversation_id]


async def _deliver_one(hub: Hub, conversation_id: int, seq: int) -> DeliveryReport | None:
    """Ask the adapter to send the message; a refusal we know before sending is a ``failed`` report."""
    conv = await hub.repo.conversation(conversation_id)
    msg = await hub.repo.message_at(conversation_id, seq)
    if conv is None or msg is None or msg.internal or msg.delivery_status not in (None, DeliveryStatus.QUEUED.value):
        return None
    point = await point_of(hub, conv)
    spec = hub.channels.spec(conv.channel)
    adapter = hub.channels.adapter(spec.name)
    if adapter is None:
        return None
    if point is not None and point.opted_out_at is not None:
        return DeliveryReport("failed", error_code="opted_out", error_message="the customer replied STOP; nothing is sent to them")
    buttons = buttons_of(msg)
    text = numbered_choices(msg.body, [str(b.get("title", "")) for b in buttons]) if spec.buttons_as_text else msg.body
    media = tuple(
        hub.media_link(a["url"]) for a in msg.attachments or ()
        if isinstance(a, dict) and a.get("type") == "media" and isinstance(a.get("url"), str)
    )
    extra = next((
        {k: v for k, v in a.items() if k != "type"} for a in msg.attachments or ()
        if isinstance(a, dict) and a.get("type") == "channel"
    ), None)
    keys = tuple(
        str(a["url"]).rsplit("/", 1)[-1] for a in msg.attachments or ()
        if isinstance(a, dict) and a.get("type") == "media" and isinstance(a.get("url"), str)
    )
    return await adapter.deliver(OutboundMessage(
        conversation_id=conversation_id, seq=seq, channel=spec.name, to_address=conv.customer_address,
        from_address=conv.our_address, text=text, media=media,
        buttons=() if spec.buttons_as_text else tuple(buttons), extra=extra, media_keys=keys,
        thread_key=conv.thread_key, sender_kind=msg.sender_kind,
    ))


async def _record_sent(hub: Hub, conversation_id: int, seq: int, report: DeliveryReport) -> None:
    """Store what the adapter said (its id for the status callbacks, a failure's reason), then any status that came first."""
    stored = await hub.repo.record_sent(conversation_id, seq, report)
    if stored is None:
        return
    provider_id, early = stored
    for status_word, code, words in early:  # status callbacks that arrived before we knew the id
        await delivery_update(hub, "", provider_id or "", status_word, code, words, emit=False)
    await emit_status(hub, conversation_id, seq)


async def delivery_update(
    hub: Hub, channel: str, provider_id: str, status: str, error_code: str | None = None, error_message: str | None = None,
    *, emit: bool = True,
) -> bool:
    """A provider's status callback: the message's status moves forward only; True if it moved.

    Unknown ids are kept by the adapter's receipt and applied once the send's answer has stored the id.
    """
    if delivery_status(status) is None or not provider_id:
        return False
    moved = await hub.repo.update_delivery(provider_id, status, error_code, error_message)
    if moved is None:
        return False
    if emit:
        await emit_status(hub, *moved)
    return True


async def emit_status(hub: Hub, conversation_id: int, seq: int) -> None:
    """Tell the conversation's agent (and watchers) a message's delivery status."""
    conv = await hub.repo.conversation(conversation_id)
    m = await hub.repo.message_at(conversation_id, seq)
    if conv is None or m is None:
        return
    data = {"conversation_id": conversation_id, "seq": seq, "delivery_status": m.delivery_status, "delivery_error": delivery_error(m)}
    notices: list[Notice] = []
    if conv.assigned_agent_id is not None:
        notices.append(Notice("agent", conv.assigned_agent_id, "message_status", data))
    if conversation_id in hub.watched:
        notices.append(Notice("watchers", conversation_id, "message_status", data))
    await hub.notify.send(notices)
