"""Order and identity use cases: validate, write in one transaction, return what changed.

Each use case takes the :class:`~crm_store.db.Database` and opens its own transaction, so a failure
anywhere leaves nothing half-written (stock, order, lines, events and timeline move together).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Mapping

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_store.db import Database
from crm_store.domain.identity import ContactKind
from crm_store.domain.interactions import InteractionKind
from crm_store.domain.money import format_money
from crm_store.domain.orders import OrderStatus, check_transition, releases_stock
from crm_store.domain.pricing import Quote, quote
from crm_store.domain.validation import (
    FieldError,
    LineRequest,
    OrderRequest,
    ValidationFailed,
    validate_order,
)
from crm_store.models import Order, OrderEvent, OrderLine
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import marketing
from crm_store.repositories import orders as orders_repo
from crm_store.repositories import products as products_repo
from crm_store.repositories.interactions import record_interaction

log = logging.getLogger("crm_store.services")


class OrderConflict(ValueError):
    """The order changed under us (another transition won the race)."""


@dataclass(frozen=True)
class PlacedOrder:
    """The result of placing an order: the stored view and whether it was new or a replay."""

    view: orders_repo.OrderView
    replayed: bool


def parse_line_requests(raw_lines: Any) -> list[LineRequest]:
    """Turn a JSON list of lines into line requests, naming the field of any malformed entry."""
    if not isinstance(raw_lines, list) or not raw_lines:
        raise ValidationFailed([FieldError("lines", "give at least one line")])
    lines: list[LineRequest] = []
    errors: list[FieldError] = []
    for i, raw in enumerate(raw_lines):
        if not isinstance(raw, Mapping):
            errors.append(FieldError(f"lines[{i}]", "must be an object with sku and quantity"))
            continue
        sku, qty, options = raw.get("sku"), raw.get("quantity"), raw.get("options") or {}
        if not isinstance(sku, str) or not sku.strip():
            errors.append(FieldError(f"lines[{i}].sku", "required"))
            sku = ""
        if not isinstance(options, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in options.items()
        ):
            errors.append(FieldError(f"lines[{i}].options", "must map option names to chosen values"))
            options = {}
        lines.append(LineRequest(sku=sku.strip().upper(), quantity=qty, options=dict(options)))  # type: ignore[arg-type]
    if errors:
        raise ValidationFailed(errors)
    return lines


def _upper_skus(request: OrderRequest) -> OrderRequest:
    """The same request with SKUs in the catalogue's spelling (upper case, trimmed)."""
    lines = [
        replace(line, sku=line.sku.strip().upper()) if isinstance(line.sku, str) else line for line in request.lines
    ]
    return replace(request, lines=lines)


async def quote_order(db: Database, request: OrderRequest, today: date, region: str = "US") -> Quote:
    """Price an order and estimate its delivery without placing it (the bot's summary)."""
    request = _upper_skus(request)
    async with db.session() as s:
        catalogue = await products_repo.catalogue_for(s, [line.sku for line in request.lines])
    infos = {sku: products_repo.product_info(p) for sku, p in catalogue.items()}
    return quote(validate_order(request, infos, region), today)


async def place_order(
    db: Database,
    request: OrderRequest,
    *,
    today: date,
    customer_id: int | None = None,
    channel: str = "web",
    actor: str = "customer",
    idempotency_key: str | None = None,
    region: str = "US",
    currency: str = "EUR",
) -> PlacedOrder:
    """Validate, price, reserve stock and store a placed order, with its event and timeline entry.

    The customer is ``customer_id`` if given, else resolved from the order's phone or email. The
    order's phone (E.164) and email become the customer's *unverified* contact points (see
    :func:`link_given_contacts`), so a later SMS, call or email from them finds this customer.
    A repeated ``idempotency_key`` returns the first order instead of placing a second one.
    """
    if idempotency_key:
        async with db.session() as s:
            earlier = await orders_repo.find_by_idempotency_key(s, idempotency_key)
            if earlier is not None:
                assert earlier.id is not None
                return PlacedOrder(await orders_repo.get_order(s, earlier.id), replayed=True)

    try:
        new_id = await _place(db, request, today, customer_id, channel, actor, idempotency_key, region, currency)
    except IntegrityError:
        if not idempotency_key:
            raise
        async with db.session() as s:  # a concurrent request with the same key won the race
            earlier = await orders_repo.find_by_idempotency_key(s, idempotency_key)
            if earlier is None or earlier.id is None:
                raise
            return PlacedOrder(await orders_repo.get_order(s, earlier.id), replayed=True)
    async with db.session() as s:
        view = await orders_repo.get_order(s, new_id)
    # the customer's RFM value and routing tier, re-scored for this customer alone (issue 18)
    await marketing.update_customer_value_after(db, view.order.customer_id)
    return PlacedOrder(view, replayed=False)


async def _place(
    db: Database,
    request: OrderRequest,
    today: date,
    customer_id: int | None,
    channel: str,
    actor: str,
    idempotency_key: str | None,
    region: str,
    currency: str,
) -> int:
    """The transaction of :func:`place_order`; returns the new order's id."""
    request = _upper_skus(request)
    async with db.transaction() as s:
        catalogue = await products_repo.catalogue_for(s, [line.sku for line in request.lines])
        infos = {sku: products_repo.product_info(p) for sku, p in catalogue.items()}
        valid = validate_order(request, infos, region)
        priced = quote(valid, today)

        if customer_id is not None:
            customer = await customers_repo.get_customer(s, customer_id)
        else:
            kind, address = (
                (ContactKind.PHONE, valid.phone) if valid.phone else (ContactKind.EMAIL, valid.email or "")
            )
            customer = (await customers_repo.resolve_identity(s, kind, address, default_region=region)).customer
        assert customer.id is not None

        # Reserve stock line by line; the conditional UPDATE is the oversell guard under concurrency.
        needed: dict[str, int] = {}
        for line in valid.lines:
            needed[line.product.sku] = needed.get(line.product.sku, 0) + line.quantity
        for sku, qty in sorted(needed.items()):  # sorted: a fixed lock order, no deadlocks
            product_id = catalogue[sku].id
            assert product_id is not None
            if not await products_repo.reserve_stock(s, product_id, qty):
                index = next(j for j, line in enumerate(valid.lines) if line.product.sku == sku)
                raise ValidationFailed([FieldError(f"lines[{index}].quantity", f"not enough {catalogue[sku].name} in stock")])

        order = Order(
            customer_id=customer.id,
            status=OrderStatus.PLACED,
            channel=channel,
            subtotal_minor=priced.subtotal_minor,
            shipping_minor=priced.shipping_minor,
            total_minor=priced.total_minor,
            currency=currency,
            delivery_address=valid.delivery_address,
            contact_phone=valid.phone,
            contact_email=valid.email,
            notes=valid.notes,
            promised_date=priced.estimated_delivery,
            idempotency_key=idempotency_key,
        )
        s.add(order)
        await s.flush()
        assert order.id is not None
        for pl in priced.lines:
            s.add(
                OrderLine(
                    order_id=order.id,
                    product_id=catalogue[pl.sku].id,  # type: ignore[arg-type]
                    sku=pl.sku,
                    name=pl.name,
                    options=dict(pl.options),
                    quantity=pl.quantity,
                    unit_price_minor=pl.unit_price_minor,
                    line_total_minor=pl.line_total_minor,
                )
            )
        await link_given_contacts(
            s, customer.id, phone=valid.phone, email=valid.email, source=f"with order {order.id}",
            channel=channel, payload={"order_id": order.id, "actor": actor}, order_id=order.id, default_region=region,
        )
        s.add(OrderEvent(order_id=order.id, from_status=None, to_status=OrderStatus.PLACED, actor=actor))
        await record_interaction(
            s,
            customer.id,
            InteractionKind.ORDER_EVENT,
            channel,
            f"Order {order.id} placed: {format_money(priced.total_minor, currency)}, "
            f"delivery by {priced.estimated_delivery.isoformat()}",
            {"order_id": order.id, "status": "placed", "actor": actor, "lines": len(priced.lines)},
            order_id=order.id,
        )
        return order.id


async def link_given_contacts(
    s: AsyncSession,
    customer_id: int,
    *,
    phone: str | None = None,
    email: str | None = None,
    source: str,
    channel: str,
    payload: dict[str, Any] | None = None,
    agent_id: int | None = None,
    conversation_id: int | None = None,
    order_id: int | None = None,
    default_region: str = "US",
) -> list[customers_repo.GivenContact]:
    """Link a phone and an email the customer gave (to the bot, with an order, to an agent) as unverified points.

    In the caller's transaction. Each new link goes on the customer's timeline ("Phone +1... given with
    order 12 (unverified)"). An address already theirs is left as it is. An address of someone else
    (for a phone: the same number on any phone channel) is not taken from them: it stays theirs, the
    refusal is logged, and the outcome says so (joining two customers is an explicit merge).
    Raises :class:`~crm_store.domain.identity.InvalidAddress` for an address that is not one.
    """
    outcomes: list[customers_repo.GivenContact] = []
    for kind, raw in ((ContactKind.PHONE, phone), (ContactKind.EMAIL, email)):
        if not raw:
            continue
        given = await customers_repo.link_given_contact(s, customer_id, kind, raw, default_region=default_region)
        outcomes.append(given)
        if given.taken_by is not None:
            log.info(
                "given %s not linked: it belongs to another customer", kind.value,
                extra={"customer_id": customer_id, "owner_id": given.taken_by, "source": source},
            )
            # the agent's 360 shows the owner as a possible match (docs/subsystems/console.md)
            await customers_repo.note_given_elsewhere(
                s, customer_id, kind, given.value, given.taken_by, channel=channel, source=source,
                agent_id=agent_id, conversation_id=conversation_id,
            )
            continue
        if not given.created:
            continue
        assert given.point is not None
        await record_interaction(
            s,
            given.point.customer_id,
            InteractionKind.IDENTITY,
            channel,
            f"{kind.value.capitalize()} {given.point.value} given {source} (unverified)",
            {**(payload or {}), "contact_point_id": given.point.id, "kind": kind.value, "verified": False},
            agent_id=agent_id,
            conversation_id=conversation_id,
            order_id=order_id,
        )
    return outcomes


VALUE_MOVES = frozenset({OrderStatus.DELIVERED, OrderStatus.CANCELLED, OrderStatus.RETURNED, OrderStatus.REFUNDED})
"""Moves after which the customer's RFM value is re-scored (placing an order re-scores too)."""


async def transition_order(
    db: Database,
    order_id: int,
    target: OrderStatus | str,
    *,
    actor: str,
    note: str = "",
    channel: str = "backoffice",
    agent_id: int | None = None,
) -> orders_repo.OrderView:
    """Move an order to its next status if the order rules allow it; cancelling releases its stock."""
    try:
        target = OrderStatus(target)
    except ValueError:
        raise ValidationFailed([FieldError("status", f"unknown status {target!r}")]) from None
    async with db.transaction() as s:
        view = await orders_repo.get_order(s, order_id, with_events=False)
        current = OrderStatus(view.order.status)
        check_transition(current, target)
        if not await orders_repo.set_status_if(s, order_id, current, target):
            raise OrderConflict(f"order {order_id} changed while moving it to {target}; try again")
        if releases_stock(current, target):
            for line in view.lines:
                await products_repo.release_stock(s, line.product_id, line.quantity)
        s.add(OrderEvent(order_id=order_id, from_status=current, to_status=target, actor=actor, note=note[:500]))
        await record_interaction(
            s,
            view.order.customer_id,
            InteractionKind.ORDER_EVENT,
            channel,
            f"Order {order_id} {target.value}" + (f": {note[:200]}" if note else ""),
            {"order_id": order_id, "from": current.value, "status": target.value, "actor": actor},
            order_id=order_id,
            agent_id=agent_id,
        )
    async with db.session() as s:
        after = await orders_repo.get_order(s, order_id)
    if target in VALUE_MOVES:  # the customer's RFM value counts this order differently now (issue 18)
        await marketing.update_customer_value_after(db, view.order.customer_id)
    return after


async def cancel_order(db: Database, order_id: int, *, actor: str, reason: str = "", **kw: Any) -> orders_repo.OrderView:
    """Cancel an order (allowed until it ships); its stock goes back on the shelf."""
    return await transition_order(db, order_id, OrderStatus.CANCELLED, actor=actor, note=reason, **kw)


def order_request_from_json(body: Mapping[str, Any]) -> OrderRequest:
    """Read an order request from a JSON body, naming any malformed field."""
    lines = parse_line_requests(body.get("lines"))
    errors: list[FieldError] = []
    texts: dict[str, str | None] = {}
    for name in ("delivery_address", "phone", "email", "notes"):
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            errors.append(FieldError(name, "must be text"))
            value = None
        texts[name] = value
    if errors:
        raise ValidationFailed(errors)
    return OrderRequest(
        lines=lines,
        delivery_address=texts["delivery_address"] or "",
        phone=texts["phone"],
        email=texts["email"],
        notes=texts["notes"] or "",
    )
