"""Orders, their lines and status history: reads and the low-level writes the order use cases call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Sequence

from typing import Any

from sqlalchemy import select as sa_select
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_store.domain.orders import OPEN_STATUSES
from crm_store.models import ContactPoint, Order, OrderEvent, OrderLine, utcnow
from crm_store.repositories import pg
from crm_store.repositories.pg import Reader

_ORDER_COLUMNS = tuple(c.name for c in Order.__table__.columns)  # type: ignore[attr-defined]


class OrderNotFound(LookupError):
    """No order has this id."""

    def __init__(self, order_id: int) -> None:
        super().__init__(f"order {order_id} not found")
        self.order_id = order_id


@dataclass(frozen=True)
class OrderView:
    """An order with its lines and its status history, oldest event first."""

    order: Any  # read-only rows with the columns of Order, OrderLine and OrderEvent
    lines: Sequence[Any]
    events: Sequence[Any]


async def rows(s: Reader, stmt: Any) -> Sequence[Any]:
    """Run a Core select and return plain rows (attribute access by column name, no ORM identity map).

    Read views use this: hydrating ORM objects cost ~0.5 ms per statement in the lookup benchmark.
    """
    return (await s.execute(stmt)).all()


_ORDER_VIEW_PG = """
SELECT o.*,
  (SELECT json_agg(l ORDER BY l.id) FROM order_lines l WHERE l.order_id = o.id) AS lines_json,
  CASE WHEN $2 THEN (SELECT json_agg(e ORDER BY e.id) FROM order_events e WHERE e.order_id = o.id) END AS events_json
FROM orders o WHERE o.id = $1
"""


async def get_order(s: Reader, order_id: int, *, with_events: bool = True) -> OrderView:
    """Load one order with its lines (and history), as read-only rows.

    On PostgreSQL this is one statement (see :mod:`crm_store.repositories.pg`); elsewhere three.
    """
    order_t, lines_t, events_t = Order.__table__, OrderLine.__table__, OrderEvent.__table__  # type: ignore[attr-defined]
    if pg.is_postgres(s):
        record = await pg.fetchrow(s, _ORDER_VIEW_PG, order_id, with_events)
        if record is None:
            raise OrderNotFound(order_id)
        return OrderView(
            pg.record_row(record, _ORDER_COLUMNS),
            pg.json_rows(lines_t, record["lines_json"]),
            pg.json_rows(events_t, record["events_json"]) if with_events else (),
        )
    return await get_order_portable(s, order_id, with_events=with_events)


async def get_order_portable(s: Reader, order_id: int, *, with_events: bool = True) -> OrderView:
    """:func:`get_order` in three portable statements (SQLite; and the reference the tests hold PG to)."""
    order_t, lines_t, events_t = Order.__table__, OrderLine.__table__, OrderEvent.__table__  # type: ignore[attr-defined]
    found = await rows(s, sa_select(order_t).where(order_t.c.id == order_id))
    if not found:
        raise OrderNotFound(order_id)
    lines = await rows(s, sa_select(lines_t).where(lines_t.c.order_id == order_id).order_by(lines_t.c.id))
    events: Sequence[Any] = ()
    if with_events:
        events = await rows(s, sa_select(events_t).where(events_t.c.order_id == order_id).order_by(events_t.c.id))
    return OrderView(found[0], lines, events)


_ORDERS_OF_CUSTOMER_PG = "SELECT * FROM orders WHERE customer_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
_ORDERS_BY_CONTACT_PG = """
SELECT * FROM orders WHERE customer_id IN (SELECT customer_id FROM contact_points WHERE kind = $1 AND value = $2)
ORDER BY created_at DESC, id DESC LIMIT $3
"""


async def orders_of_customer(s: Reader, customer_id: int, limit: int = 50) -> Sequence[Order]:
    """A customer's orders, newest first."""
    if pg.is_postgres(s):
        found = await pg.fetch(s, _ORDERS_OF_CUSTOMER_PG, customer_id, max(1, min(limit, 200)))
        return [pg.record_row(r, _ORDER_COLUMNS) for r in found]  # type: ignore[misc]
    t = Order.__table__  # type: ignore[attr-defined]
    stmt = (
        sa_select(t)
        .where(t.c.customer_id == customer_id)
        .order_by(t.c.created_at.desc(), t.c.id.desc())
        .limit(max(1, min(limit, 200)))
    )
    return await rows(s, stmt)


async def orders_by_contact(s: Reader, kind: str, value: str, limit: int = 50) -> Sequence[Order]:
    """Orders of whoever owns this (normalised) contact address, newest first."""
    if pg.is_postgres(s):
        found = await pg.fetch(s, _ORDERS_BY_CONTACT_PG, kind, value, max(1, min(limit, 200)))
        return [pg.record_row(r, _ORDER_COLUMNS) for r in found]  # type: ignore[misc]
    owner = select(ContactPoint.customer_id).where(ContactPoint.kind == kind, ContactPoint.value == value)
    t = Order.__table__  # type: ignore[attr-defined]
    stmt = (
        sa_select(t)
        .where(t.c.customer_id.in_(owner))
        .order_by(t.c.created_at.desc(), t.c.id.desc())
        .limit(max(1, min(limit, 200)))
    )
    return await rows(s, stmt)


async def find_by_idempotency_key(s: AsyncSession, key: str) -> Order | None:
    """The order placed earlier with this idempotency key, if any."""
    return (await s.exec(select(Order).where(Order.idempotency_key == key))).first()


async def set_status_if(s: AsyncSession, order_id: int, expected: str, target: str) -> bool:
    """Move the order to ``target`` only if it is still in ``expected`` (compare-and-set)."""
    result = await s.execute(
        update(Order)
        .where(col(Order.id) == order_id, col(Order.status) == expected)
        .values(status=target, updated_at=utcnow())
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def overdue_orders(s: AsyncSession, today: date, limit: int = 500) -> Sequence[Order]:
    """Open (unshipped) orders whose promised date has passed, most overdue first."""
    stmt = (
        select(Order)
        .where(col(Order.status).in_([st.value for st in OPEN_STATUSES]), col(Order.promised_date) < today)
        .order_by(col(Order.promised_date), col(Order.id))
        .limit(limit)
    )
    return (await s.exec(stmt)).all()
