"""The shapes the use cases hand back and publish: a message, a conversation summary, a queue update.

They are plain JSON-ready dicts, the same on every transport; ``docs/subsystems/realtime.md`` documents
them. Text is plain text: clients must never render it as HTML.
"""

from __future__ import annotations

from typing import Any

from contact_center.domain.routing import estimate_wait_seconds
from contact_center.ports import ConversationRow, CustomerRow

DEFAULT_AHT_SECONDS = 180.0


def message_json(m: Any, sender_name: str = "") -> dict[str, Any]:
    """The wire shape of a message (text is plain text; clients must not render it as HTML)."""
    created = getattr(m, "created_at", None)
    return {
        "conversation_id": m.conversation_id,
        "seq": m.seq,
        "sender_kind": m.sender_kind,
        "sender_name": sender_name,
        "text": m.body,
        "internal": m.internal,
        "created_at": created.isoformat() if created else None,
        "client_msg_id": m.client_msg_id,
        "delivery_status": getattr(m, "delivery_status", None),
        "delivery_error": delivery_error(m),
        **attachment_fields(getattr(m, "attachments", None)),
    }


def delivery_error(m: Any) -> dict[str, Any] | None:
    """Why an outbound message failed, in words, when it did."""
    words = getattr(m, "delivery_error", None)
    code = getattr(m, "delivery_error_code", None)
    return {"code": code, "message": words or "the message could not be delivered"} if (words or code) else None


def attachment_fields(attachments: Any) -> dict[str, Any]:
    """Buttons (bot replies), the bot's handover context (internal notes) and files, when a message has them."""
    out: dict[str, Any] = {}
    for a in attachments or ():
        if isinstance(a, dict) and a.get("type") == "buttons":
            out["buttons"] = a.get("buttons") or []
        elif isinstance(a, dict) and a.get("type") == "handoff":
            out["handoff"] = {"reason": a.get("reason"), "context": a.get("context")}
        elif isinstance(a, dict) and a.get("type") == "channel":
            out["extra"] = {k: v for k, v in a.items() if k != "type"}
        elif isinstance(a, dict) and a.get("type") == "media":
            out.setdefault("attachments", []).append({k: a.get(k) for k in ("content_type", "url", "name", "size")})
    return out


def buttons_of(m: Any) -> list[dict[str, Any]]:
    """The buttons a (bot) message offered, if any."""
    return next(
        (a.get("buttons") or [] for a in getattr(m, "attachments", None) or () if isinstance(a, dict) and a.get("type") == "buttons"),
        [],
    )


def customer_label(customer: CustomerRow | Any, address: str | None = None) -> str:
    """How the console names a customer: their name, else their address on the channel, else "Visitor N"."""
    return customer.display_name or address or f"Visitor {customer.id}"


def conversation_json(hub: Any, conv: ConversationRow | Any, customer: CustomerRow | Any, point: Any = None) -> dict[str, Any]:
    """A conversation summary for the console."""
    spec = hub.channels.get(conv.channel)
    return {
        "id": conv.id,
        "customer_id": customer.id,
        "customer_name": customer_label(customer, conv.customer_address or None),
        "channel": conv.channel,
        "channel_label": spec.label if spec is not None else conv.channel,
        "status": conv.status,
        "subject": conv.subject,
        "last_seq": conv.last_seq,
        "queue_id": conv.queue_id,
        "queue": hub.queue_name(conv),
        "customer_address": conv.customer_address or None,
        "address_verified": bool(point.verified) if point is not None else None,
        "opted_out": bool(point is not None and point.opted_out_at is not None),
        "last_message_at": conv.updated_at.isoformat() if conv.updated_at else None,
        # the first-response clock: since it entered the queue, against its queue's service-level target
        "queued_at": queued.isoformat() if (queued := getattr(conv, "queued_at", None)) else None,
        "sl_target_seconds": rule.sl_target_seconds if (rule := hub.rules.get(hub.queue_name(conv))) is not None else None,
        "thread_key": getattr(conv, "thread_key", None),
        "assigned_at": assigned.isoformat() if (assigned := getattr(conv, "assigned_at", None)) else None,
    }


def queue_update(conversation_id: int, position: int, serving: int, concurrency: float) -> dict[str, Any]:
    """The ``queue`` event: place in line and estimated wait (None while no agent is serving).

    ``concurrency``: conversations of this channel an agent works at once (its ChannelSpec).
    """
    eta = estimate_wait_seconds(position, serving, DEFAULT_AHT_SECONDS, concurrency)
    return {
        "conversation_id": conversation_id,
        "position": position,
        "estimated_wait_seconds": None if eta == float("inf") else int(round(eta)),
    }
