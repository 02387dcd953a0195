"""Issue 18's API: the shop's evaluation settings, the fulfilment queue, customer value, offers and rules.

Routes are built by :func:`evaluation_routes` (``contact_center/api/routes.py`` adds them to ``ROUTES``),
and :func:`evaluation_jobs` is the app's timer: every minute it re-ranks the fulfilment queue if anything
it depends on changed, and once a day (or when nothing was ever computed) it recomputes customer values
and associations. docs/subsystems/order-evaluation.md describes it all.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any, AsyncIterator

from aiohttp import web
from sqlalchemy import func, select

from contact_center.api.auth import PRINCIPAL_KEY, Principal
from contact_center.api.errors import BadRequest, path_int, query_int, read_json
from contact_center.keys import CLOCK_KEY, DB_KEY, SETTINGS_KEY
from crm_store.domain.electre import ElectreInputError
from crm_store.domain.offers import RuleInvalid
from crm_store.domain.validation import FieldError, ValidationFailed
from crm_store.models import CustomerValue, Order
from crm_store.repositories import alerts as alerts_repo
from crm_store.repositories import evaluation as eval_repo
from crm_store.repositories import marketing

log = logging.getLogger(__name__)

QUEUE_REFRESH_SECONDS = 60.0
VALUES_MAX_AGE = timedelta(hours=24)
_STAFF = {"admin", "supervisor"}


def _principal(request: web.Request) -> Principal | None:
    return request.get(PRINCIPAL_KEY)


def _require(request: web.Request, roles: set[str]) -> Principal | None:
    p = _principal(request)
    if p is not None and p.kind != "service" and p.role not in roles:
        raise web.HTTPForbidden(text='{"error": "forbidden", "message": "%s only"}' % " and ".join(sorted(roles)),
                                content_type="application/json")
    return p


def _actor(request: web.Request) -> str:
    p = _principal(request)
    return p.actor if p else "anonymous"


async def _require_customer(request: web.Request, customer_id: int) -> None:
    """The same rule as the customer 360 (contact_center/api/scope.py, where it exists)."""
    try:
        from contact_center.api.scope import require_customer
    except ImportError:  # pragma: no cover - before the scoping module
        return
    await require_customer(request, customer_id)


# --- settings -------------------------------------------------------------------------------------------


async def get_settings(request: web.Request) -> web.Response:
    """The shop's criteria, thresholds and customer-value settings."""
    async with request.app[DB_KEY].session() as s:
        settings = await eval_repo.load_settings(s)
    return web.json_response({"settings": settings.to_json()})


async def put_settings(request: web.Request) -> web.Response:
    """Change the settings (a partial update); the queue re-ranks. Admins and supervisors."""
    _require(request, _STAFF)
    body = await read_json(request)
    db = request.app[DB_KEY]
    async with db.transaction() as s:
        current = await eval_repo.load_settings(s)
        try:
            new = eval_repo.merge_settings(current, body)
        except ElectreInputError as exc:
            raise BadRequest(str(exc), field=exc.field) from None
        saved = await eval_repo.save_settings(s, new, actor=_actor(request))
    await eval_repo.refresh_queue(db, request.app[CLOCK_KEY](), force=True)
    return web.json_response({"settings": saved.to_json()})


# --- the fulfilment queue -------------------------------------------------------------------------------


def _queue_item(r: Any) -> dict[str, Any]:
    return {
        "order_id": r.order_id, "position": r.position, "level": r.level, "batch": r.batch, "status": r.status,
        "customer_id": r.customer_id, "customer_name": r.customer_name, "channel": r.channel,
        "total_minor": r.total_minor, "currency": r.currency,
        "promised_date": r.promised_date.isoformat() if r.promised_date else None,
        "values": r.criteria_values, "raw": r.raw_values, "above": r.above, "tied_with": r.tied_with,
        "incomparable_with": r.incomparable_with, "notes": r.notes, "tie_break": r.tie_break,
        "ranked_at": r.ranked_at.isoformat() if r.ranked_at else None,
    }


async def fulfilment_queue(request: web.Request) -> web.Response:
    """The ranked fulfilment queue (re-ranked first if an order or a setting changed). Staff only."""
    _require(request, _STAFF)
    db = request.app[DB_KEY]
    refresh = await eval_repo.refresh_queue(db, request.app[CLOCK_KEY]())
    limit = query_int(request, "limit", 100, 1, 2000)
    offset = query_int(request, "offset", 0, 0, 10**7)
    async with db.session() as s:
        settings = await eval_repo.load_settings(s)
        rows, total = await eval_repo.read_queue(s, limit=limit, offset=offset)
    batches = max((r.batch for r in rows), default=0)
    return web.json_response({
        "orders": [_queue_item(r) for r in rows], "total": total, "criteria": eval_repo.criteria_meta(settings),
        "thresholds": {"concordance": list(settings.queue.concordance), "discordance": list(settings.queue.discordance)},
        "batch_size": settings.queue.batch_size, "batches_shown": batches, "reranked": refresh.ranked,
        "method": "ELECTRE II; levels from the intersection of the descending and ascending distillations; "
                  "within a level (tied or incomparable orders) by promised date, then order id (tie-break)",
    })


async def refresh_fulfilment_queue(request: web.Request) -> web.Response:
    """Re-rank the queue now."""
    _require(request, _STAFF)
    r = await eval_repo.refresh_queue(request.app[DB_KEY], request.app[CLOCK_KEY](), force=True)
    return web.json_response({"orders": r.orders, "seconds": round(r.seconds, 4)})


# --- alerts ---------------------------------------------------------------------------------------------

ALERT_SCAN_SECONDS = 15.0
_last_scan: dict[int, float] = {}


async def scan_alerts(app: web.Application, *, max_age: float = 0.0) -> alerts_repo.ScanResult | None:
    """Scan the order and stock conditions (raise each once, clear the ended) unless one ran ``max_age`` s ago."""
    import time

    key = id(app)
    if max_age and time.monotonic() - _last_scan.get(key, -1e9) < max_age:
        return None
    _last_scan[key] = time.monotonic()
    now = app[CLOCK_KEY]()
    return await alerts_repo.scan(app[DB_KEY], now.date(), now)


async def list_alerts(request: web.Request) -> web.Response:
    """Open order and stock alerts (``?all=true``: the cleared ones too), after a scan if none ran lately."""
    _require(request, _STAFF)
    await scan_alerts(request.app, max_age=2.0)
    limit = query_int(request, "limit", 200, 1, 1000)
    include = request.query.get("all", "").lower() in ("1", "true", "yes")
    async with request.app[DB_KEY].session() as s:
        found = await alerts_repo.open_alerts(s, limit=limit, include_cleared=include)
        lead = await alerts_repo.ship_lead_days(s)
    return web.json_response({"alerts": found, "ship_lead_days": lead})


# --- customer value and offers --------------------------------------------------------------------------


async def customer_value(request: web.Request) -> web.Response:
    """Who this customer is worth, what they are likely to want, what to say; their order alerts."""
    customer_id = path_int(request, "customer_id")
    await _require_customer(request, customer_id)
    channel = request.query.get("channel") or None
    sku = request.query.get("sku") or None
    async with request.app[DB_KEY].reader() as conn:
        from crm_store.repositories import customers as customers_repo

        cid = await customers_repo.survivor_id(conn, customer_id)
        view = await marketing.customer_value_view(conn, cid, request.app[CLOCK_KEY](), channel=channel, discussing_sku=sku)
    return web.json_response(view)


async def record_offer(request: web.Request) -> web.Response:
    """Mark an offer shown, offered, accepted or declined (a declined product is not suggested again)."""
    customer_id = path_int(request, "customer_id")
    await _require_customer(request, customer_id)
    body = await read_json(request)
    p = _principal(request)
    outcome, source = body.get("outcome"), body.get("source", "rule")
    sku, title, rule_id = body.get("sku"), body.get("title", ""), body.get("rule_id")
    errors = []
    if outcome not in marketing.OUTCOMES:
        errors.append(FieldError("outcome", f"must be one of {', '.join(marketing.OUTCOMES)}"))
    if source not in ("rule", "association"):
        errors.append(FieldError("source", "must be rule or association"))
    if sku is not None and (not isinstance(sku, str) or len(sku) > 40):
        errors.append(FieldError("sku", "must be a SKU"))
    if not isinstance(title, str):
        errors.append(FieldError("title", "must be text"))
    if rule_id is not None and (not isinstance(rule_id, int) or isinstance(rule_id, bool)):
        errors.append(FieldError("rule_id", "must be a rule id"))
    conv = body.get("conversation_id")
    if conv is not None and (not isinstance(conv, int) or isinstance(conv, bool)):
        errors.append(FieldError("conversation_id", "must be a conversation id"))
    if errors:
        raise ValidationFailed(errors)
    async with request.app[DB_KEY].transaction() as s:
        from crm_store.models import OfferRuleRow

        if rule_id is not None and (await s.get(OfferRuleRow, rule_id)) is None:
            raise ValidationFailed([FieldError("rule_id", f"no offer rule {rule_id}")])
        row = await marketing.record_offer_event(
            s, customer_id, outcome, source=source, sku=sku, title=title, rule_id=rule_id, actor=_actor(request),
            agent_id=p.agent_id if p else None, conversation_id=conv,
        )
    return web.json_response({"event": {"id": row.id, "outcome": row.outcome, "sku": row.sku, "rule_id": row.rule_id}},
                             status=201)


async def offer_stats(request: web.Request) -> web.Response:
    """Offers shown, offered, accepted, declined per rule and per agent."""
    _require(request, _STAFF)
    async with request.app[DB_KEY].session() as s:
        return web.json_response({"stats": await marketing.offer_stats(s)})


# --- rules ----------------------------------------------------------------------------------------------


def _invalid(exc: RuleInvalid) -> ValidationFailed:
    return ValidationFailed([FieldError(f, m) for f, m in exc.errors])


async def list_rules(request: web.Request) -> web.Response:
    async with request.app[DB_KEY].session() as s:
        return web.json_response({"rules": [marketing.rule_json(r) for r in await marketing.list_rules(s)]})


async def create_rule(request: web.Request) -> web.Response:
    """Add a rule; a broken one is refused (422) with every reason. Admins."""
    _require(request, {"admin"})
    body = await read_json(request)
    async with request.app[DB_KEY].transaction() as s:
        try:
            row = await marketing.save_rule(s, body, actor=_actor(request))
        except RuleInvalid as exc:
            raise _invalid(exc) from None
    return web.json_response({"rule": marketing.rule_json(row)}, status=201)


async def update_rule(request: web.Request) -> web.Response:
    _require(request, {"admin"})
    rule_id = path_int(request, "rule_id")
    body = await read_json(request)
    async with request.app[DB_KEY].transaction() as s:
        try:
            row = await marketing.save_rule(s, body, actor=_actor(request), rule_id=rule_id)
        except RuleInvalid as exc:
            raise _invalid(exc) from None
        except LookupError:
            raise web.HTTPNotFound(text='{"error": "not_found", "message": "no such rule"}', content_type="application/json") from None
    return web.json_response({"rule": marketing.rule_json(row)})


async def delete_rule(request: web.Request) -> web.Response:
    _require(request, {"admin"})
    rule_id = path_int(request, "rule_id")
    async with request.app[DB_KEY].transaction() as s:
        if not await marketing.delete_rule(s, rule_id):
            raise web.HTTPNotFound(text='{"error": "not_found", "message": "no such rule"}', content_type="application/json")
    return web.json_response({"deleted": rule_id})


# --- associations and recomputation ---------------------------------------------------------------------


async def associations(request: web.Request) -> web.Response:
    """The strongest product-to-product rules."""
    limit = query_int(request, "limit", 10, 1, 500)
    async with request.app[DB_KEY].session() as s:
        found = await marketing.top_associations(s, limit)
    return web.json_response({"rules": [
        {"if": {"sku": r.a_sku, "name": r.a_name}, "then": {"sku": r.b_sku, "name": r.b_name}, "count": r.count,
         "support": round(r.support, 5), "confidence": round(r.confidence, 4), "lift": round(r.lift, 3)} for r in found
    ]})


async def recompute(request: web.Request) -> web.Response:
    """Recompute customer values and/or associations now (``{"what": "values" | "associations" | "all"}``)."""
    _require(request, _STAFF)
    body = await read_json(request) if request.can_read_body else {}
    what = body.get("what", "all")
    if what not in ("values", "associations", "all"):
        raise BadRequest("what must be values, associations or all", field="what")
    db, now = request.app[DB_KEY], request.app[CLOCK_KEY]()
    out: dict[str, Any] = {}
    if what in ("values", "all"):
        v = await marketing.recompute_customer_values(db, now)
        out["values"] = {"customers": v.customers, "segments": v.segments, "tiers_changed": v.tiers_changed}
    if what in ("associations", "all"):
        a = await marketing.recompute_associations(db, now)
        out["associations"] = {"baskets": a.baskets, "itemsets": a.itemsets, "rules": a.rules, "stored": a.stored}
    await eval_repo.refresh_queue(db, now, force=True)
    return web.json_response(out)


# --- the timer ------------------------------------------------------------------------------------------


async def run_jobs_once(app: web.Application) -> None:
    """One pass of the timer: values and associations when stale, then the queue if anything changed."""
    db, now = app[DB_KEY], app[CLOCK_KEY]()
    async with db.session() as s:
        # min: a customer re-scored after an order (marketing.update_customer_value) is newer than the last full
        # run; the oldest row is when everyone was last scored together
        last = (await s.execute(select(func.min(CustomerValue.__table__.c.computed_at)))).scalar()  # type: ignore[attr-defined]
        any_order = (await s.execute(select(Order.__table__.c.id).limit(1))).first()  # type: ignore[attr-defined]
    if any_order is not None and (last is None or now - (last if last.tzinfo else last.replace(tzinfo=now.tzinfo)) > VALUES_MAX_AGE):
        await marketing.recompute_customer_values(db, now)
        await marketing.recompute_associations(db, now)
        if app[SETTINGS_KEY].demo_data:
            async with db.transaction() as s:
                await marketing.seed_demo_rules(s)
    await eval_repo.refresh_queue(db, now)
    await scan_alerts(app)


async def evaluation_jobs(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the timer task, cancelled when the app stops."""

    async def loop() -> None:
        await asyncio.sleep(2.0)
        ticks = 0
        while True:
            try:
                if ticks % max(1, round(QUEUE_REFRESH_SECONDS / ALERT_SCAN_SECONDS)) == 0:
                    await run_jobs_once(app)  # the queue, values and associations (and a scan) every minute
                else:
                    await scan_alerts(app)  # the alerts every ALERT_SCAN_SECONDS
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a failed pass is logged and retried on the next tick
                log.exception("evaluation jobs: a pass failed")
            ticks += 1
            await asyncio.sleep(ALERT_SCAN_SECONDS)

    task = asyncio.create_task(loop(), name="evaluation-jobs")
    yield
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


def evaluation_routes() -> tuple[Any, ...]:
    """The routes, in routes.py's :class:`Route` form (imported here to avoid an import cycle)."""
    from contact_center.api.routes import Param, Route

    cust = Param("customer_id", "path", "integer", "customer id", True)
    rule = Param("rule_id", "path", "integer", "offer rule id", True)
    staff = {200: "OK", 403: "admins and supervisors only"}
    return (
        Route("GET", "/api/evaluation/settings", get_settings, "The shop's fulfilment criteria, thresholds and customer-value settings", "evaluation"),
        Route("PUT", "/api/evaluation/settings", put_settings, "Change the criteria, weights, thresholds, RFM window, segment tiers, association thresholds", "evaluation",
              body={"type": "object"}, responses={200: "saved; the queue re-ranked", 400: "invalid setting, with the field", 403: "admins and supervisors only"}),
        Route("POST", "/api/evaluation/recompute", recompute, "Recompute customer values and/or associations now", "evaluation",
              body={"type": "object", "properties": {"what": {"type": "string", "enum": ["values", "associations", "all"]}}}, responses=staff),
        Route("GET", "/api/fulfilment/queue", fulfilment_queue, "The fulfilment queue ranked with ELECTRE II, with explanations", "evaluation",
              (Param("limit", type="integer"), Param("offset", type="integer")), responses=staff),
        Route("POST", "/api/fulfilment/queue/refresh", refresh_fulfilment_queue, "Re-rank the fulfilment queue now", "evaluation", responses=staff),
        Route("GET", "/api/customers/{customer_id}/value", customer_value, "The customer's RFM value, attrition, next best offers and order alerts", "customers",
              (cust, Param("channel"), Param("sku", description="the product being discussed")), responses={200: "OK", 404: "unknown customer"}),
        Route("POST", "/api/customers/{customer_id}/offers", record_offer, "Mark an offer shown, offered, accepted or declined", "customers", (cust,),
              body={"type": "object", "required": ["outcome"], "properties": {"outcome": {"type": "string"}, "source": {"type": "string"}, "sku": {"type": "string"}, "title": {"type": "string"}, "rule_id": {"type": "integer"}, "conversation_id": {"type": "integer"}}},
              responses={201: "recorded", 422: "invalid"}),
        Route("GET", "/api/evaluation/alerts", list_alerts, "Open order and stock alerts (at risk, overdue, low stock against the reorder point), raised once", "evaluation",
              (Param("limit", type="integer"), Param("all", description="true: the cleared alerts too")), responses=staff),
        Route("GET", "/api/offers/stats", offer_stats, "Offers shown, offered, accepted and declined per rule and agent", "evaluation", responses=staff),
        Route("GET", "/api/offer-rules", list_rules, "The next best offer's business rules", "evaluation"),
        Route("POST", "/api/offer-rules", create_rule, "Add a business rule (validated; a broken rule is refused with the reasons)", "evaluation",
              body={"type": "object"}, responses={201: "created", 403: "admins only", 422: "invalid rule, with every reason"}),
        Route("PUT", "/api/offer-rules/{rule_id}", update_rule, "Replace a business rule", "evaluation", (rule,), body={"type": "object"},
              responses={200: "saved", 403: "admins only", 404: "unknown rule", 422: "invalid rule"}),
        Route("DELETE", "/api/offer-rules/{rule_id}", delete_rule, "Delete a business rule", "evaluation", (rule,),
              responses={200: "deleted", 403: "admins only", 404: "unknown rule"}),
        Route("GET", "/api/associations", associations, "The strongest product-to-product rules", "evaluation", (Param("limit", type="integer"),)),
    )
