"""The console's working view of the hub: ``GET /console/queues.json`` and ``GET /console/search``.

* ``GET /console/queues.json``: the agent's own state as routing sees it (status, the reason when the hub set
  it, load and capacity per channel) and, per queue, how many contacts wait, how many agents are available
  (besides the asking agent), the estimated wait of the next one to join, and whether the agent serves it
  (has its skills). The console's state line shows the counts of the agent's queues; the transfer dialog
  shows every queue's agents and wait, and asks before sending a conversation to a queue nobody else serves.
* ``GET /console/search?q=...``: customers in the contact repository by name (contains), email or phone
  (exact, normalised) or order number (``#123`` or ``123``): at most 10, each with its id, name, what
  matched and how many orders it has; never a merged-away record, no contact points. Scoped as the API is
  (docs/security.md, "scoped reads"): supervisors and admins search the whole repository (``scope: "all"``);
  an agent only among the customers of conversations assigned to them (open or closed) or offered to them now
  (``scope: "mine"``), whose
  360 they may open; any order is still found by number, phone or email in the Orders tab. The query itself is
  not logged (it may be an address); the search is.

* ``GET /console/customers/{id}/possible-matches``: other customer records that may be this customer, because
  the customer gave an address (the widget's email, a phone or email told to the bot, with an order or to an
  agent) that is on file for them, or a phone number both have on different channels
  (``customers_repo.possible_matches``): each with its id, name, order count and the addresses in common, plus
  ``can_merge`` (supervisors and admins: the audited merge, ``POST /api/customers/{id}/merge``, is back-office
  only; an agent asks a supervisor). Scoped as the search: an agent only for the customers of conversations
  assigned or offered to them (403 otherwise); 404 for an unknown customer.

An agent session is required (401 without one). Answers are never cached.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Awaitable, Callable

from aiohttp import web
from sqlalchemy import func
from sqlmodel import col, select

from contact_center.api.errors import error_response
from contact_center.domain.routing import AgentStatus, estimate_wait_seconds, queue_positions
from contact_center.keys import DB_KEY, HUB_KEY, SETTINGS_KEY
from crm_store.models import Customer, Order
from crm_store.repositories import customers as customers_repo

log = logging.getLogger("contact_center.console_search")

SEARCH_LIMIT = 10
AHT_SECONDS = 180.0  # the customer's estimate uses the same (usecases/views.py DEFAULT_AHT_SECONDS)
_ORDER = re.compile(r"#?\s*(\d{1,9})")
_PHONEISH = re.compile(r"\+?[\d\s().-]{6,}")
NO_STORE = {"Cache-Control": "no-store"}


def _eligible(skills: dict[str, int], required: frozenset[str]) -> bool:
    return all(int(skills.get(s, 0) or 0) >= 1 for s in required)


async def queues_view(hub: Any, agent_id: int) -> dict[str, Any]:
    """What ``/console/queues.json`` answers (also used by tests without HTTP)."""
    from contact_center.usecases.offers import status_reason
    from contact_center.usecases.router import waiting_contacts

    presences = await hub.store.all_presence()
    me = next((p for p in presences if p.agent_id == agent_id), None)
    waiting = await hub.store.waiting()
    contacts = waiting_contacts(waiting, presences)
    now = hub.clock()
    positions = queue_positions(contacts, now)
    queues = []
    for name in sorted(hub.rules):
        rule = hub.rules[name]
        in_queue = [c for c in contacts if c.queue == name]
        serving = [p for p in presences if p.status in (AgentStatus.AVAILABLE.value, AgentStatus.BUSY.value) and _eligible(p.skills, rule.skills_required)]
        others = [p for p in serving if p.agent_id != agent_id]
        with_room = [p for p in others if p.status == AgentStatus.AVAILABLE.value and any(
            int(p.load.get(ch, 0)) < int(n) for ch, n in (p.capacity or {"chat": 1}).items())]
        last = max((positions.get(c.conversation_id, 0) for c in in_queue), default=0)
        concurrency = hub.concurrency(in_queue[0].channel) if in_queue else hub.concurrency("chat")
        eta = estimate_wait_seconds(last + 1, len(serving), AHT_SECONDS, concurrency)
        queues.append({
            "name": name,
            "waiting": len(in_queue),
            "longest_wait_seconds": round(max((now - c.enqueued_at for c in in_queue), default=0.0), 1),
            "agents_serving": len(serving),
            "others_available": len(with_room),
            "others_serving": len(others),
            "estimated_wait_seconds": None if eta == float("inf") else int(round(eta)),
            "mine": me is not None and _eligible(me.skills, rule.skills_required),
        })
    reason = await status_reason(hub, agent_id) if me is not None and me.status == AgentStatus.AWAY.value else None
    return {
        "me": {
            "status": me.status if me else "offline",
            "reason": dict(reason) if reason else None,
            "load": dict(me.load) if me else {},
            "capacity": dict(me.capacity) if me else {},
        },
        "queues": queues,
        "now": now,
    }


async def agent_customer_ids(hub: Any, agent_id: int) -> set[int]:
    """The customers of the conversations assigned to an agent (open or closed: after wrap-up an agent finds the
    customer again, to call them back) or offered to them now: what an agent's session may read (as
    ``api.scope.agent_serves``)."""
    ids = set(await hub.repo.customers_served_by(agent_id))
    for offer in await hub.store.offers_of(agent_id):
        conv = await hub.repo.conversation(offer.conversation_id)
        if conv is not None and conv.customer_id is not None:
            ids.add(int(conv.customer_id))
    return ids


async def search_customers(db: Any, query: str, default_region: str, only: set[int] | None = None) -> list[dict[str, Any]]:
    """Customers for the console's search box (see the module's docstring); ``only``: an agent's scope."""
    q = query.strip()
    found: dict[int, dict[str, Any]] = {}
    async with db.session() as s:
        order_match = _ORDER.fullmatch(q)
        if order_match and (q.startswith("#") or len(order_match.group(1)) <= 6):
            order = await s.get(Order, int(order_match.group(1)))
            if order is not None:
                owner = await customers_repo.survivor_id(s, order.customer_id)
                c = await s.get(Customer, owner)
                if c is not None and c.id is not None:
                    found[c.id] = {"customer": c, "matched": "order", "order_id": order.id}
        if "@" in q:
            for c in await customers_repo.search_customers(s, email=q, limit=SEARCH_LIMIT):
                found.setdefault(int(c.id), {"customer": c, "matched": "email"})  # type: ignore[arg-type]
        elif _PHONEISH.fullmatch(q) and sum(ch.isdigit() for ch in q) >= 6:
            try:
                for c in await customers_repo.search_customers(s, phone=q, default_region=default_region, limit=SEARCH_LIMIT):
                    found.setdefault(int(c.id), {"customer": c, "matched": "phone"})  # type: ignore[arg-type]
            except Exception:  # noqa: BLE001 - not a number the region knows: no phone match
                pass
        if not q.lstrip("#").isdigit() and "@" not in q and len(q) >= 2:
            for c in await customers_repo.search_customers(s, name=q, limit=SEARCH_LIMIT):
                found.setdefault(int(c.id), {"customer": c, "matched": "name"})  # type: ignore[arg-type]
        hits = [h for h in found.values() if h["customer"].merged_into_id is None
                and (only is None or int(h["customer"].id) in only)][:SEARCH_LIMIT]
        ids = [int(h["customer"].id) for h in hits]
        counts: dict[int, int] = {}
        if ids:
            rows = (await s.execute(
                select(Order.customer_id, func.count()).where(col(Order.customer_id).in_(ids)).group_by(Order.customer_id)
            )).all()
            counts = {int(r[0]): int(r[1]) for r in rows}
    out = []
    for h in hits:
        c = h["customer"]
        item = {"id": c.id, "display_name": c.display_name or f"Customer #{c.id}", "matched": h["matched"],
                "orders": counts.get(int(c.id), 0)}
        if "order_id" in h:
            item["order_id"] = h["order_id"]
        out.append(item)
    return out


def add_console_search_routes(app: web.Application, *, agent_of: Callable[[web.Request], Awaitable[Any]]) -> None:
    """Mount the three routes; ``agent_of(request)`` awaits the request's agent session or None (``web.current_agent``)."""

    async def queues(request: web.Request) -> web.Response:
        session = await agent_of(request)
        if session is None:
            return error_response(401, "unauthorized", "log in first")
        return web.json_response(await queues_view(request.app[HUB_KEY], session.agent_id), headers=NO_STORE)

    async def search(request: web.Request) -> web.Response:
        session = await agent_of(request)
        if session is None:
            return error_response(401, "unauthorized", "log in first")
        q = request.query.get("q", "").strip()
        if len(q) < 2 or len(q) > 100:
            return error_response(422, "validation_failed", "search for 2 to 100 characters",
                                  fields=[{"field": "q", "reason": "2 to 100 characters"}])
        settings = request.app[SETTINGS_KEY]
        everyone = session.role in ("supervisor", "admin")
        only = None if everyone else await agent_customer_ids(request.app[HUB_KEY], session.agent_id)
        results = await search_customers(request.app[DB_KEY], q, getattr(settings, "default_phone_region", "US"), only)
        log.info("console customer search", extra={"agent_id": session.agent_id, "results": len(results)})
        return web.json_response({"customers": results, "scope": "all" if everyone else "mine"}, headers=NO_STORE)

    async def matches(request: web.Request) -> web.Response:
        session = await agent_of(request)
        if session is None:
            return error_response(401, "unauthorized", "log in first")
        try:
            customer_id = int(request.match_info["customer_id"])
        except ValueError:
            return error_response(404, "not_found", "no such customer")
        everyone = session.role in ("supervisor", "admin")
        async with request.app[DB_KEY].session() as s:
            try:
                survivor = await customers_repo.survivor_id(s, customer_id)
            except customers_repo.CustomerNotFound:
                survivor = None
            if not everyone:
                mine = await agent_customer_ids(request.app[HUB_KEY], session.agent_id)
                if customer_id not in mine and survivor not in mine:
                    return error_response(403, "forbidden", "only the customers of your own conversations")
            if survivor is None:
                return error_response(404, "not_found", f"customer {customer_id} not found")
            found = await customers_repo.possible_matches(s, survivor)
        log.info("console possible matches", extra={"agent_id": session.agent_id, "customer_id": survivor, "results": len(found)})
        return web.json_response({
            "customer_id": survivor,
            "matches": [{"id": m.id, "display_name": m.display_name or f"Customer #{m.id}", "orders": m.orders,
                         "via": [{"kind": k, "value": v} for k, v in m.via]} for m in found],
            "can_merge": everyone,
        }, headers=NO_STORE)

    app.router.add_get("/console/queues.json", queues)
    app.router.add_get("/console/customers/{customer_id}/possible-matches", matches)
    app.router.add_get("/console/search", search)
