"""JSON shapes of the contact repository's records, as the API returns them."""

from __future__ import annotations

from datetime import date
from typing import Any, Sequence

from crm_store.domain.money import format_money
from crm_store.domain.orders import OrderStatus, is_at_risk, is_overdue
from crm_store.models import ContactPoint, Customer, Interaction, Order, OrderEvent, OrderLine, Product
from crm_store.repositories.conversations import Handoff
from crm_store.repositories.orders import OrderView


def _iso(value: Any) -> str | None:
    """ISO 8601 text of a date or time."""
    return value.isoformat() if value is not None else None


def customer(c: Customer) -> dict[str, Any]:
    """A customer's identity card."""
    return {"id": c.id, "display_name": c.display_name, "tier": c.tier, "created_at": _iso(c.created_at)}


def contact_point(p: ContactPoint) -> dict[str, Any]:
    """One address of a customer."""
    return {"id": p.id, "kind": p.kind, "value": p.value, "verified": p.verified, "created_at": _iso(p.created_at)}


def interaction(i: Interaction) -> dict[str, Any]:
    """One touch on the timeline."""
    return {
        "id": i.id,
        "kind": i.kind,
        "channel": i.channel,
        "occurred_at": _iso(i.occurred_at),
        "summary": i.summary,
        "agent_id": i.agent_id,
        "conversation_id": i.conversation_id,
        "order_id": i.order_id,
        "payload": i.payload,
    }


def product(p: Product) -> dict[str, Any]:
    """A catalogue entry with its stock."""
    return {
        "sku": p.sku,
        "name": p.name,
        "description": p.description,
        "category": p.category,
        "price_minor": p.price_minor,
        "price": format_money(p.price_minor, p.currency),
        "currency": p.currency,
        "stock": p.stock,
        "in_stock": p.stock > 0,
        "low_stock": p.stock <= p.low_stock_threshold,
        "lead_time_days": p.lead_time_days,
        "options": p.options,
    }


def order_summary(o: Order, today: date | None = None) -> dict[str, Any]:
    """An order without its lines (lists)."""
    data = {
        "id": o.id,
        "customer_id": o.customer_id,
        "status": o.status,
        "channel": o.channel,
        "total_minor": o.total_minor,
        "total": format_money(o.total_minor, o.currency),
        "currency": o.currency,
        "promised_date": _iso(o.promised_date),
        "created_at": _iso(o.created_at),
    }
    if today is not None and o.promised_date is not None:
        status = OrderStatus(o.status)
        data["overdue"] = is_overdue(status, o.promised_date, today)
        data["at_risk"] = is_at_risk(status, o.promised_date, today)
    return data


def line(li: OrderLine) -> dict[str, Any]:
    """One priced line."""
    return {
        "sku": li.sku,
        "name": li.name,
        "options": li.options,
        "quantity": li.quantity,
        "unit_price_minor": li.unit_price_minor,
        "line_total_minor": li.line_total_minor,
    }


def event(e: OrderEvent) -> dict[str, Any]:
    """One step of an order's history."""
    return {
        "from_status": e.from_status,
        "to_status": e.to_status,
        "actor": e.actor,
        "note": e.note,
        "occurred_at": _iso(e.occurred_at),
    }


def order_view(v: OrderView, today: date) -> dict[str, Any]:
    """A whole order: summary, money, delivery, lines and history."""
    o = v.order
    return {
        **order_summary(o, today),
        "subtotal_minor": o.subtotal_minor,
        "shipping_minor": o.shipping_minor,
        "delivery_address": o.delivery_address,
        "contact_phone": o.contact_phone,
        "contact_email": o.contact_email,
        "notes": o.notes,
        "lines": [line(li) for li in v.lines],
        "events": [event(e) for e in v.events],
    }


def many(items: Sequence[Any], fn: Any) -> list[dict[str, Any]]:
    """Serialise a list."""
    return [fn(i) for i in items]


def handoff(h: Handoff) -> dict[str, Any]:
    """A handed-over chat in the shape bot/export_candidates.py reads: the transcript, with the intent the
    bot detected on each customer line it saw (from the handoff's context), and the handoff itself."""
    note = h.handoff
    context = note.get("context") if isinstance(note.get("context"), dict) else {}
    intents: dict[str, Any] = {}
    for m in context.get("transcript") or ():
        if isinstance(m, dict) and m.get("sender") == "customer" and isinstance(m.get("text"), str) and m.get("intent"):
            intents[m["text"]] = m["intent"]
    messages = []
    for m in h.transcript:
        if m.sender_kind not in ("customer", "bot", "agent"):
            continue  # system lines (joined, transferred) are not part of the dialogue
        item: dict[str, Any] = {"sender": m.sender_kind, "text": m.body, "seq": m.seq, "at": _iso(m.created_at)}
        if m.sender_kind == "customer" and m.body in intents:
            item["intent"] = intents[m.body]
        messages.append(item)
    return {
        "conversation_id": h.conversation.id,
        "customer_id": h.conversation.customer_id,
        "status": h.conversation.status,
        "handed_over_at": _iso(h.note.created_at),
        "handoff": {"reason": note.get("reason"), **context},
        "messages": messages,
    }
