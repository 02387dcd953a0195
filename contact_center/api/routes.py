"""Handlers of /api/: thin views that read the request, call a repository or use case, answer JSON.

Every route is declared once in :data:`ROUTES`, which feeds both the router and the OpenAPI document,
so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Awaitable, Callable

from aiohttp import web

from contact_center.api import serialize as ser
from contact_center.api.auth import PRINCIPAL_KEY, Principal
from contact_center.api.errors import BadRequest, Forbidden, error_response, path_int, query_int, read_json
from contact_center.api.scope import principal_of, require_back_office, require_customer, require_order, sees_everything
from contact_center.keys import CLOCK_KEY, DB_KEY, METRICS_KEY, SETTINGS_KEY
from crm_store.domain.identity import ContactKind, normalize_address
from crm_store.domain.interactions import InteractionKind
from crm_store.domain.validation import FieldError, ValidationFailed
from crm_store.repositories import conversations as conversations_repo
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import interactions as interactions_repo
from crm_store.repositories import orders as orders_repo
from crm_store.repositories import products as products_repo
from crm_store.repositories import views as views_repo
from crm_store.services import cancel_order, order_request_from_json, place_order, quote_order, transition_order

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Param:
    """A query or path parameter, for the OpenAPI document."""

    name: str
    where: str = "query"  # query / path
    type: str = "string"
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Route:
    """One API operation: method, path, handler, and what the OpenAPI document says of it."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    params: tuple[Param, ...] = ()
    body: dict[str, Any] | None = None
    responses: dict[int, str] = field(default_factory=lambda: {200: "OK"})
    auth: bool = True


def _today(request: web.Request) -> date:
    """Today's date from the app's clock (tests can set it)."""
    return request.app[CLOCK_KEY]().date()


def _actor(request: web.Request) -> str:
    """How the caller is named in order events."""
    principal: Principal | None = request.get(PRINCIPAL_KEY)
    return principal.actor if principal else "anonymous"


def _region(request: web.Request) -> str:
    """The region used to read local phone numbers."""
    return request.app[SETTINGS_KEY].default_phone_region


def _text(body: dict[str, Any], name: str, *, required: bool = False, max_len: int = 2000) -> str:
    """A text field of a JSON body, or a 422 naming it."""
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise ValidationFailed([FieldError(name, "required")])
        return ""
    if not isinstance(value, str):
        raise ValidationFailed([FieldError(name, "must be text")])
    if len(value) > max_len:
        raise ValidationFailed([FieldError(name, f"must be at most {max_len} characters")])
    return value


# --- customers -----------------------------------------------------------------------------------


async def search_customers(request: web.Request) -> web.Response:
    """Find customers by exact phone or email, or by part of their name."""
    require_back_office(request)
    phone, email, name = (request.query.get(k, "").strip() for k in ("phone", "email", "q"))
    if not (phone or email or name):
        raise BadRequest("give phone, email or q (part of a name)", field="q")
    limit = query_int(request, "limit", 20, 1, 100)
    async with request.app[DB_KEY].session() as s:
        found = await customers_repo.search_customers(
            s, phone=phone or None, email=email or None, name=name or None, default_region=_region(request), limit=limit
        )
    return web.json_response({"customers": ser.many(found, ser.customer)})


async def customer_360(request: web.Request) -> web.Response:
    """Everything about one customer: identity, contact points, timeline (first page), orders."""
    customer_id = path_int(request, "customer_id")
    await require_customer(request, customer_id)
    limit = query_int(request, "timeline_limit", 20, 1, 200)
    async with request.app[DB_KEY].reader() as conn:
        view = await views_repo.customer_360(conn, customer_id, timeline_limit=limit, orders_limit=20)
    today = _today(request)
    return web.json_response(
        {
            "customer": ser.customer(view.customer),
            "merged_from": view.merged_from,
            "contact_points": ser.many(view.contact_points, ser.contact_point),
            "timeline": {"items": ser.many(view.timeline.items, ser.interaction), "next_cursor": view.timeline.next_cursor},
            "orders": [ser.order_summary(o, today) for o in view.orders],
        }
    )


async def customer_timeline(request: web.Request) -> web.Response:
    """A page of the customer's timeline across all channels, newest first."""
    customer_id = path_int(request, "customer_id")
    await require_customer(request, customer_id)
    limit = query_int(request, "limit", 50, 1, 200)
    kinds = [k for k in request.query.get("kind", "").split(",") if k]
    async with request.app[DB_KEY].session() as s:
        c = await customers_repo.get_customer(s, customer_id)
        assert c.id is not None
        page = await interactions_repo.timeline(s, c.id, limit=limit, cursor=request.query.get("cursor"), kinds=kinds)
    return web.json_response({"items": ser.many(page.items, ser.interaction), "next_cursor": page.next_cursor})


async def customer_orders(request: web.Request) -> web.Response:
    """A customer's orders, newest first."""
    customer_id = path_int(request, "customer_id")
    await require_customer(request, customer_id)
    limit = query_int(request, "limit", 50, 1, 200)
    async with request.app[DB_KEY].session() as s:
        c = await customers_repo.get_customer(s, customer_id)
        assert c.id is not None
        orders = await orders_repo.orders_of_customer(s, c.id, limit=limit)
    today = _today(request)
    return web.json_response({"orders": [ser.order_summary(o, today) for o in orders]})


async def resolve_customer(request: web.Request) -> web.Response:
    """Find the customer an address belongs to, or create one (identity resolution)."""
    require_back_office(request)
    body = await read_json(request)
    kind = _text(body, "kind", required=True, max_len=16)
    if kind not in {k.value for k in ContactKind}:
        raise ValidationFailed([FieldError("kind", f"must be one of {', '.join(k.value for k in ContactKind)}")])
    address = _text(body, "address", required=True, max_len=300)
    name = _text(body, "display_name", max_len=200)
    async with request.app[DB_KEY].transaction() as s:
        res = await customers_repo.resolve_identity(s, kind, address, display_name=name, default_region=_region(request))
    return web.json_response(
        {"customer": ser.customer(res.customer), "contact_point": ser.contact_point(res.contact_point), "created": res.created},
        status=201 if res.created else 200,
    )


async def link_contact_point(request: web.Request) -> web.Response:
    """Attach a verified address to a customer; an address of someone else is a 409, never a merge."""
    customer_id = path_int(request, "customer_id")
    require_back_office(request)
    body = await read_json(request)
    kind = _text(body, "kind", required=True, max_len=16)
    if kind not in {k.value for k in ContactKind}:
        raise ValidationFailed([FieldError("kind", f"must be one of {', '.join(k.value for k in ContactKind)}")])
    address = _text(body, "address", required=True, max_len=300)
    async with request.app[DB_KEY].transaction() as s:
        point = await customers_repo.link_contact_point(s, customer_id, kind, address, default_region=_region(request))
        await interactions_repo.record_interaction(
            s, point.customer_id, InteractionKind.IDENTITY, "backoffice", f"{kind} {point.value} linked",
            {"contact_point_id": point.id, "actor": _actor(request)},
        )
    return web.json_response({"contact_point": ser.contact_point(point)}, status=201)


async def merge_customer(request: web.Request) -> web.Response:
    """Merge this customer into another (``into``), moving all history; leaves an audit record."""
    source_id = path_int(request, "customer_id")
    require_back_office(request)
    body = await read_json(request)
    target = body.get("into")
    if not isinstance(target, int) or isinstance(target, bool):
        raise ValidationFailed([FieldError("into", "the id of the customer to merge into")])
    reason = _text(body, "reason", max_len=500)
    async with request.app[DB_KEY].transaction() as s:
        audit = await customers_repo.merge_customers(s, source_id, target, actor=_actor(request), reason=reason)
        await interactions_repo.record_interaction(
            s, target, InteractionKind.IDENTITY, "backoffice", f"customer {source_id} merged in",
            {"merge_id": audit.id, "moved": audit.moved, "reason": reason},
        )
    return web.json_response(
        {"merge": {"id": audit.id, "source": source_id, "target": target, "moved": audit.moved, "actor": audit.actor}}
    )


async def record_interaction(request: web.Request) -> web.Response:
    """Record a touch (a note, a page view, a call) on a customer's timeline."""
    require_back_office(request)
    body = await read_json(request)
    customer_id = body.get("customer_id")
    if not isinstance(customer_id, int) or isinstance(customer_id, bool):
        raise ValidationFailed([FieldError("customer_id", "required: a customer id")])
    kind = _text(body, "kind", required=True, max_len=24)
    if kind not in {k.value for k in InteractionKind}:
        raise ValidationFailed([FieldError("kind", f"must be one of {', '.join(k.value for k in InteractionKind)}")])
    channel = _text(body, "channel", required=True, max_len=16)
    summary = _text(body, "summary", max_len=500)
    payload = body.get("payload") or {}
    if not isinstance(payload, dict):
        raise ValidationFailed([FieldError("payload", "must be a JSON object")])
    async with request.app[DB_KEY].transaction() as s:
        c = await customers_repo.get_customer(s, customer_id)
        assert c.id is not None
        item = await interactions_repo.record_interaction(s, c.id, kind, channel, summary, payload)
    return web.json_response({"interaction": ser.interaction(item)}, status=201)


# --- catalogue -----------------------------------------------------------------------------------


async def list_products(request: web.Request) -> web.Response:
    """The catalogue with stock, optionally by category or name."""
    async with request.app[DB_KEY].session() as s:
        items = await products_repo.list_products(
            s, category=request.query.get("category") or None, query=request.query.get("q") or None
        )
    return web.json_response({"products": ser.many(items, ser.product)})


async def get_product(request: web.Request) -> web.Response:
    """One product by SKU."""
    sku = request.match_info["sku"]
    async with request.app[DB_KEY].session() as s:
        item = await products_repo.get_by_sku(s, sku)
    if item is None:
        raise web.HTTPNotFound(text=f"no product with SKU {sku[:40]!r}")
    return web.json_response({"product": ser.product(item)})


# --- orders --------------------------------------------------------------------------------------


async def create_order(request: web.Request) -> web.Response:
    """Place an order: validated, priced, stock reserved, delivery date promised. Idempotent by key."""
    body = await read_json(request)
    order_request = order_request_from_json(body)
    customer_id = body.get("customer_id")
    if customer_id is not None and (not isinstance(customer_id, int) or isinstance(customer_id, bool)):
        raise ValidationFailed([FieldError("customer_id", "must be a customer id")])
    if not sees_everything(principal_of(request)):  # an agent orders for the customer of their conversation
        if customer_id is None:
            raise Forbidden("give the customer_id of the customer of your conversation")
        await require_customer(request, customer_id)
    channel = _text(body, "channel", max_len=16) or "web"
    key = request.headers.get("Idempotency-Key") or _text(body, "idempotency_key", max_len=100) or None
    settings = request.app[SETTINGS_KEY]
    placed = await place_order(
        request.app[DB_KEY],
        order_request,
        today=_today(request),
        customer_id=customer_id,
        channel=channel,
        actor=_actor(request),
        idempotency_key=key,
        region=settings.default_phone_region,
        currency=settings.currency,
    )
    if not placed.replayed:
        request.app[METRICS_KEY].orders_placed.labels(channel=channel).inc()
    return web.json_response(
        {"order": ser.order_view(placed.view, _today(request)), "replayed": placed.replayed},
        status=200 if placed.replayed else 201,
    )


async def quote(request: web.Request) -> web.Response:
    """Price an order and estimate its delivery without placing it."""
    body = await read_json(request)
    q = await quote_order(request.app[DB_KEY], order_request_from_json(body), _today(request), _region(request))
    return web.json_response(
        {
            "lines": [
                {"sku": pl.sku, "name": pl.name, "options": dict(pl.options), "quantity": pl.quantity,
                 "unit_price_minor": pl.unit_price_minor, "line_total_minor": pl.line_total_minor}
                for pl in q.lines
            ],
            "subtotal_minor": q.subtotal_minor,
            "shipping_minor": q.shipping_minor,
            "total_minor": q.total_minor,
            "estimated_delivery": q.estimated_delivery.isoformat(),
        }
    )


async def list_orders(request: web.Request) -> web.Response:
    """Orders of a customer found by id, phone or email, newest first."""
    limit = query_int(request, "limit", 50, 1, 200)
    phone, email = request.query.get("phone", "").strip(), request.query.get("email", "").strip()
    async with request.app[DB_KEY].reader() as s:
        if request.query.get("customer_id"):
            cid = query_int(request, "customer_id", 0, 1, 10**18)
            await require_customer(request, cid)
            orders = await orders_repo.orders_of_customer(s, await customers_repo.survivor_id(s, cid), limit=limit)
        elif phone:
            value = normalize_address(ContactKind.PHONE, phone, _region(request))
            orders = await orders_repo.orders_by_contact(s, "phone", value, limit=limit)
        elif email:
            orders = await orders_repo.orders_by_contact(s, "email", normalize_address(ContactKind.EMAIL, email), limit=limit)
        else:
            raise BadRequest("give customer_id, phone or email", field="customer_id")
    today = _today(request)
    return web.json_response({"orders": [ser.order_summary(o, today) for o in orders]})


async def get_order(request: web.Request) -> web.Response:
    """One order with lines and history."""
    order_id = path_int(request, "order_id")
    async with request.app[DB_KEY].reader() as s:
        view = await orders_repo.get_order(s, order_id)
    return web.json_response({"order": ser.order_view(view, _today(request))})


async def track_order(request: web.Request) -> web.Response:
    """Where an order is: status, promised date, whether it is late, and its history."""
    order_id = path_int(request, "order_id")
    async with request.app[DB_KEY].reader() as s:
        view = await orders_repo.get_order(s, order_id)
    data = ser.order_summary(view.order, _today(request))
    return web.json_response(
        {"order_id": order_id, "status": data["status"], "promised_date": data["promised_date"],
         "overdue": data.get("overdue", False), "at_risk": data.get("at_risk", False),
         "events": ser.many(view.events, ser.event)}
    )


async def cancel(request: web.Request) -> web.Response:
    """Cancel an order (until it ships); its stock is released."""
    order_id = path_int(request, "order_id")
    await require_order(request, order_id)
    body = await read_json(request) if request.can_read_body else {}
    view = await cancel_order(request.app[DB_KEY], order_id, actor=_actor(request), reason=_text(body, "reason", max_len=500))
    return web.json_response({"order": ser.order_view(view, _today(request))})


async def change_status(request: web.Request) -> web.Response:
    """Move an order to its next status (confirm, pick, ship, deliver, return, refund)."""
    order_id = path_int(request, "order_id")
    await require_order(request, order_id)
    body = await read_json(request)
    status = _text(body, "status", required=True, max_len=16)
    view = await transition_order(
        request.app[DB_KEY], order_id, status, actor=_actor(request), note=_text(body, "note", max_len=500)
    )
    return web.json_response({"order": ser.order_view(view, _today(request))})


async def overdue(request: web.Request) -> web.Response:
    """Open orders past their promised date, most overdue first."""
    require_back_office(request)
    today = _today(request)
    async with request.app[DB_KEY].session() as s:
        orders = await orders_repo.overdue_orders(s, today, limit=query_int(request, "limit", 200, 1, 1000))
    return web.json_response({"orders": [ser.order_summary(o, today) for o in orders]})


async def bot_handoffs(request: web.Request) -> web.Response:
    """Chats the bot handed to a person, with their transcripts: the input of bot/export_candidates.py."""
    from contact_center.supervisor import SUPERVISOR_ROLES

    principal = request.get(PRINCIPAL_KEY)
    if principal is None or (principal.kind != "service" and principal.role not in SUPERVISOR_ROLES):
        return error_response(403, "forbidden", "supervisors only")
    limit = query_int(request, "limit", 100, 1, 500)
    async with request.app[DB_KEY].session() as s:
        found = await conversations_repo.handoffs(s, after_id=query_int(request, "after", 0, 0, 2**62), limit=limit)
    return web.json_response({
        "conversations": [ser.handoff(h) for h in found],
        "next_after": found[-1].note.id if len(found) == limit else None,
    })


# --- evaluation ----------------------------------------------------------------------------------


# The batch size docs/subsystems/order-evaluation.md names: the work and memory grow with n squared, and
# 1 MB of JSON could otherwise carry some 20,000 alternatives (3 GB per n x n float matrix).
ELECTRE2_MAX_ALTERNATIVES = 2000


async def electre2_rank(request: web.Request) -> web.Response:
    """Rank any decision matrix with ELECTRE II (docs/subsystems/order-evaluation.md); bad input is a 400."""
    import asyncio

    from crm_store.domain.electre import ElectreInputError, parse_json, rank_json

    if request.content_length is not None and request.content_length > 1_000_000:
        raise BadRequest("body too large")
    try:
        text = await request.text()
    except UnicodeDecodeError:
        raise BadRequest("body must be valid JSON (UTF-8)") from None
    matrices = request.query.get("matrices", "").lower() in {"1", "true", "yes"}
    try:
        # A name given twice is refused (parse_json), not silently collapsed as a plain JSON reader would.
        # The work is numpy over n x n matrices: off the event loop, so a big matrix does not stall the hub.
        answer = await asyncio.to_thread(
            lambda: rank_json(parse_json(text), matrices=matrices, max_alternatives=ELECTRE2_MAX_ALTERNATIVES)
        )
    except ElectreInputError as exc:
        raise BadRequest(str(exc), field=exc.field) from None
    return web.json_response(answer)


_ELECTRE2_BODY = {
    "type": "object",
    "required": ["alternatives", "weights", "directions", "scales", "concordance", "discordance"],
    "additionalProperties": False,
    "properties": {
        "alternatives": {"type": "object", "description": "name -> one value per criterion",
                         "additionalProperties": {"type": "array", "items": {"type": "number"}}},
        "weights": {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}},
        "directions": {"type": "array", "items": {"type": "string", "enum": ["max", "min"]}},
        "scales": {"type": "array", "description": "[min, max] of each criterion; discordance is divided by max - min",
                   "items": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}},
        "concordance": {"type": "array", "description": "[c_low, c_high], 0 <= c_low < c_high <= 1",
                        "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
        "discordance": {"type": "array", "description": "[d_low, d_high], 0 <= d_low < d_high <= 1",
                        "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
        "criteria": {"type": "array", "items": {"type": "string"}, "description": "optional names of the criteria"},
    },
}


_CUSTOMER = Param("customer_id", "path", "integer", "customer id", True)
_ORDER = Param("order_id", "path", "integer", "order id", True)
_LIMIT = Param("limit", type="integer", description="page size")
_ORDER_BODY = {
    "type": "object",
    "required": ["lines", "delivery_address"],
    "properties": {
        "customer_id": {"type": "integer"},
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["sku", "quantity"],
                "properties": {
                    "sku": {"type": "string"},
                    "quantity": {"type": "integer", "minimum": 1, "maximum": 100},
                    "options": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
        },
        "delivery_address": {"type": "string"},
        "phone": {"type": "string"},
        "email": {"type": "string"},
        "notes": {"type": "string"},
        "channel": {"type": "string"},
        "idempotency_key": {"type": "string"},
    },
}

async def supervisor_snapshot(request: web.Request) -> web.Response:
    """The supervisor dashboard's live figures (contact_center/supervisor.py builds them)."""
    from contact_center.supervisor import snapshot_api

    return await snapshot_api(request)


ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/customers", search_customers, "Search customers by phone, email or name", "customers",
          (Param("phone"), Param("email"), Param("q", description="part of a name"), _LIMIT), responses={403: "an agent's session outside its scope (docs/security.md)", 200: "OK", 400: "no criterion", 422: "invalid phone or email"}),
    Route("POST", "/api/customers/resolve", resolve_customer, "Find or create the customer of an address", "customers",
          body={"type": "object", "required": ["kind", "address"], "properties": {"kind": {"type": "string"}, "address": {"type": "string"}, "display_name": {"type": "string"}}},
          responses={403: "an agent's session outside its scope (docs/security.md)", 200: "found", 201: "created", 422: "invalid address"}),
    Route("GET", "/api/customers/{customer_id}", customer_360, "Customer 360: contact points, timeline, orders", "customers",
          (_CUSTOMER, Param("timeline_limit", type="integer")), responses={403: "an agent's session outside its scope (docs/security.md)", 200: "OK", 404: "unknown customer"}),
    Route("GET", "/api/customers/{customer_id}/timeline", customer_timeline, "A page of the customer's timeline", "customers",
          (_CUSTOMER, _LIMIT, Param("cursor"), Param("kind", description="comma-separated kinds")), responses={403: "an agent's session outside its scope (docs/security.md)", 200: "OK", 400: "bad cursor", 404: "unknown customer"}),
    Route("GET", "/api/customers/{customer_id}/orders", customer_orders, "A customer's orders", "customers", (_CUSTOMER, _LIMIT), responses={200: "OK", 403: "an agent's session outside its scope (docs/security.md)"}),
    Route("POST", "/api/customers/{customer_id}/contact-points", link_contact_point, "Link a verified address", "customers", (_CUSTOMER,),
          body={"type": "object", "required": ["kind", "address"], "properties": {"kind": {"type": "string"}, "address": {"type": "string"}}},
          responses={403: "an agent's session outside its scope (docs/security.md)", 201: "linked", 409: "belongs to another customer", 422: "invalid address"}),
    Route("POST", "/api/customers/{customer_id}/merge", merge_customer, "Merge this customer into another", "customers", (_CUSTOMER,),
          body={"type": "object", "required": ["into"], "properties": {"into": {"type": "integer"}, "reason": {"type": "string"}}},
          responses={403: "an agent's session outside its scope (docs/security.md)", 200: "merged", 409: "refused"}),
    Route("POST", "/api/interactions", record_interaction, "Record a touch on a customer's timeline", "customers",
          body={"type": "object", "required": ["customer_id", "kind", "channel"], "properties": {"customer_id": {"type": "integer"}, "kind": {"type": "string"}, "channel": {"type": "string"}, "summary": {"type": "string"}, "payload": {"type": "object"}}},
          responses={403: "an agent's session outside its scope (docs/security.md)", 201: "recorded", 422: "invalid"}),
    Route("GET", "/api/products", list_products, "The catalogue with stock", "catalogue", (Param("category"), Param("q"))),
    Route("GET", "/api/products/{sku}", get_product, "One product", "catalogue", (Param("sku", "path", required=True),), responses={200: "OK", 404: "unknown SKU"}),
    Route("POST", "/api/orders", create_order, "Place an order", "orders", body=_ORDER_BODY,
          responses={403: "an agent's session outside its scope (docs/security.md)", 201: "placed", 200: "replay of an earlier request with the same idempotency key", 422: "invalid order"}),
    Route("POST", "/api/orders/quote", quote, "Price an order and estimate delivery without placing it", "orders", body=_ORDER_BODY,
          responses={200: "OK", 422: "invalid order"}),
    Route("GET", "/api/orders", list_orders, "Orders of a customer by id, phone or email", "orders",
          (Param("customer_id", type="integer"), Param("phone"), Param("email"), _LIMIT), responses={403: "an agent's session outside its scope (docs/security.md)", 200: "OK", 400: "no criterion", 404: "unknown customer", 422: "invalid address"}),
    Route("GET", "/api/orders/overdue", overdue, "Open orders past their promised date", "orders", (_LIMIT,), responses={200: "OK", 403: "an agent's session outside its scope (docs/security.md)"}),
    Route("GET", "/api/orders/{order_id}", get_order, "One order with lines and history", "orders", (_ORDER,), responses={200: "OK", 404: "unknown order"}),
    Route("GET", "/api/orders/{order_id}/track", track_order, "Where an order is", "orders", (_ORDER,), responses={200: "OK", 404: "unknown order"}),
    Route("POST", "/api/orders/{order_id}/cancel", cancel, "Cancel an order", "orders", (_ORDER,),
          body={"type": "object", "properties": {"reason": {"type": "string"}}}, responses={403: "an agent's session outside its scope (docs/security.md)", 200: "cancelled", 404: "unknown order", 409: "too late to cancel"}),
    Route("POST", "/api/orders/{order_id}/status", change_status, "Move an order to its next status", "orders", (_ORDER,),
          body={"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}, "note": {"type": "string"}}},
          responses={403: "an agent's session outside its scope (docs/security.md)", 200: "moved", 404: "unknown order", 409: "illegal transition"}),
    Route("GET", "/api/bot/handoffs", bot_handoffs, "Chats the bot handed to a person, with transcripts (training candidates)", "bot",
          (Param("after", type="integer", description="the next_after of the previous page"), _LIMIT), responses={200: "OK", 403: "supervisors only"}),
    Route("POST", "/api/evaluation/electre2", electre2_rank, "Rank a decision matrix with ELECTRE II", "evaluation",
          (Param("matrices", type="boolean", description="also return the concordance and discordance matrices"),),
          body=_ELECTRE2_BODY, responses={200: "strong, weak, descending, ascending, ranking and explanation", 400: "invalid problem (or over 2,000 alternatives), with the reason"}),
    Route("GET", "/api/supervisor/snapshot", supervisor_snapshot, "Live queue, agent and service-level figures", "supervision",
          responses={200: "OK", 403: "supervisors only (or the service token)", 503: "the hub is starting"}),
)

# Issue 18's routes (the fulfilment queue, settings, customer value, offers, rules): contact_center/api/evaluation_queue.py
from contact_center.api.evaluation_queue import evaluation_routes  # noqa: E402

ROUTES = ROUTES + evaluation_routes()

# Issue 15's public "call me back" form: contact_center/callback_wiring.py
from contact_center.callback_wiring import callback_routes  # noqa: E402

ROUTES = ROUTES + callback_routes()
