"""Composite read views: the customer 360 that the console opens beside every contact."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Sequence

from crm_store.models import ContactPoint, Customer, Interaction, Order
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import interactions as interactions_repo
from crm_store.repositories import orders as orders_repo
from crm_store.repositories import pg
from crm_store.repositories.interactions import TimelinePage
from crm_store.repositories.pg import Reader

_CUSTOMER_COLUMNS = tuple(c.name for c in Customer.__table__.columns)  # type: ignore[attr-defined]

# One round trip on PostgreSQL: the customer, every address, the newest timeline page (one row more
# than asked, to know whether there is a next page) and the newest orders.
_CUSTOMER_360_PG = """
SELECT c.*,
  (SELECT json_agg(p ORDER BY p.id) FROM contact_points p WHERE p.customer_id = c.id) AS points_json,
  (SELECT json_agg(t ORDER BY t.occurred_at DESC, t.id DESC) FROM (
     SELECT * FROM interactions i WHERE i.customer_id = c.id ORDER BY i.occurred_at DESC, i.id DESC LIMIT $2
  ) t) AS timeline_json,
  (SELECT json_agg(t ORDER BY t.created_at DESC, t.id DESC) FROM (
     SELECT * FROM orders o WHERE o.customer_id = c.id ORDER BY o.created_at DESC, o.id DESC LIMIT $3
  ) t) AS orders_json
FROM customers c WHERE c.id = $1
"""


@dataclass(frozen=True)
class Customer360:
    """Everything the console shows about a customer at a glance (read-only rows)."""

    customer: Any
    contact_points: Sequence[Any]
    timeline: TimelinePage
    orders: Sequence[Any]
    merged_from: int | None  # the id asked for, when it had been merged into ``customer``


async def customer_360(s: Reader, customer_id: int, *, timeline_limit: int = 20, orders_limit: int = 20) -> Customer360:
    """The customer (following merges), their addresses, the first timeline page and latest orders.

    :raises CustomerNotFound: no customer has this id.
    """
    timeline_limit = max(1, min(timeline_limit, 200))
    orders_limit = max(1, min(orders_limit, 200))
    if pg.is_postgres(s):
        found = await _customer_360_pg(s, customer_id, timeline_limit, orders_limit)
        if found is not None:
            return found
        # A merged customer: follow the merge chain, then read the survivor in one statement.
        survivor = await customers_repo.survivor_id(s, customer_id)
        found = await _customer_360_pg(s, survivor, timeline_limit, orders_limit)
        if found is None:  # merged again in between: read it the portable way
            return await customer_360_portable(s, customer_id, timeline_limit, orders_limit)
        return Customer360(found.customer, found.contact_points, found.timeline, found.orders, customer_id)
    return await customer_360_portable(s, customer_id, timeline_limit, orders_limit)


async def customer_360_portable(s: Reader, customer_id: int, timeline_limit: int, orders_limit: int) -> Customer360:
    """The 360 in three portable statements (SQLite; and the reference the tests hold PG to)."""
    c, points = await customers_repo.customer_with_contact_points(s, customer_id)
    page = await interactions_repo.timeline(s, c.id, limit=timeline_limit)
    orders = await orders_repo.orders_of_customer(s, c.id, limit=orders_limit)
    return Customer360(c, points, page, orders, customer_id if c.id != customer_id else None)


async def _customer_360_pg(s: Reader, customer_id: int, timeline_limit: int, orders_limit: int) -> Customer360 | None:
    """The 360 in one statement; None when the customer was merged into another."""
    record = await pg.fetchrow(s, _CUSTOMER_360_PG, customer_id, timeline_limit + 1, orders_limit)
    if record is None:
        raise customers_repo.CustomerNotFound(customer_id)
    if record["merged_into_id"] is not None:
        return None
    items: list[SimpleNamespace] = pg.json_rows(Interaction.__table__, record["timeline_json"])  # type: ignore[attr-defined]
    more = len(items) > timeline_limit
    items = items[:timeline_limit]
    page = TimelinePage(items, interactions_repo.encode_cursor(items[-1]) if more and items else None)
    return Customer360(
        pg.record_row(record, _CUSTOMER_COLUMNS),
        pg.json_rows(ContactPoint.__table__, record["points_json"]),  # type: ignore[attr-defined]
        page,
        pg.json_rows(Order.__table__, record["orders_json"]),  # type: ignore[attr-defined]
        None,
    )
