"""Who may read and change what through ``/api/`` (``docs/security.md``, "Scoped reads").

Three kinds of caller reach the API: a service (the bot's actions, ``SERVICE_TOKEN``), a supervisor's or an
admin's session, and an agent's session. Services, supervisors and admins see every customer. An agent sees:

* a customer's profile, contact points, timeline and orders-by-customer (``/api/customers/{id}``, ``.../timeline``,
  ``.../orders``, ``/api/orders?customer_id=``), and places or changes orders for them, only when the customer is
  that of a conversation assigned to the agent (open or closed: their own work) or offered to them now;
* no customer search, identity resolution, contact-point linking, merge, timeline writes or the overdue-order
  list (the back office's tools, never used by the console): 403;
* an order by its number, phone or email (``/api/orders/{id}``, ``.../track``, ``/api/orders?phone=|email=``):
  yes, any. That is the console's Orders tab, on purpose: a caller reads out their order number and the agent
  looks it up before any conversation ties them to a customer record.

Refusals are 403 ``forbidden`` (the same answer whether the customer exists or not is not needed: ids are
sequential and say nothing by themselves).
"""

from __future__ import annotations

from aiohttp import web
from sqlmodel import col, select

from contact_center.api.auth import PRINCIPAL_KEY, Principal
from contact_center.api.errors import Forbidden
from contact_center.keys import DB_KEY, HUB_KEY
from crm_store.models import Conversation
from crm_store.repositories import customers as customers_repo

SEE_ALL = frozenset({"supervisor", "admin"})


def sees_everything(principal: Principal | None) -> bool:
    """A service, a supervisor or an admin."""
    return principal is not None and (principal.kind == "service" or principal.role in SEE_ALL)


def principal_of(request: web.Request) -> Principal | None:
    return request.get(PRINCIPAL_KEY)


def require_back_office(request: web.Request) -> None:
    """Services, supervisors and admins only (agents: 403)."""
    if not sees_everything(principal_of(request)):
        raise Forbidden("supervisors, admins and services only")


async def agent_serves(request: web.Request, agent_id: int, customer_id: int) -> bool:
    """Whether a conversation of this customer (or of the one they were merged into) is assigned to the agent, or
    offered to them now."""
    async with request.app[DB_KEY].session() as s:
        try:
            survivor = await customers_repo.survivor_id(s, customer_id)
        except customers_repo.CustomerNotFound:
            return False
        held = (await s.exec(
            select(Conversation.id).where(Conversation.customer_id == survivor, Conversation.assigned_agent_id == agent_id).limit(1)
        )).first()
        if held is not None:
            return True
        hub = request.app.get(HUB_KEY)
        offered = [o.conversation_id for o in await hub.store.offers_of(agent_id)] if hub is not None else []
        if not offered:
            return False
        found = (await s.exec(
            select(Conversation.id).where(col(Conversation.id).in_(offered), Conversation.customer_id == survivor).limit(1)
        )).first()
        return found is not None


async def require_customer(request: web.Request, customer_id: int) -> None:
    """Everyone who sees everything; an agent only for the customers of their conversations (else 403)."""
    principal = principal_of(request)
    if sees_everything(principal):
        return
    if principal is None or principal.agent_id is None or not await agent_serves(request, principal.agent_id, customer_id):
        raise Forbidden("only the customers of your own conversations")


async def require_order(request: web.Request, order_id: int) -> None:
    """Changing an order: everyone who sees everything; an agent only for an order of one of their customers."""
    principal = principal_of(request)
    if sees_everything(principal):
        return
    from crm_store.models import Order

    async with request.app[DB_KEY].session() as s:
        order = await s.get(Order, order_id)
    if order is None:
        return  # the handler answers 404
    await require_customer(request, order.customer_id)
