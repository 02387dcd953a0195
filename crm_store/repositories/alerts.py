"""Order and stock alerts in SQL: scan the conditions, raise each once, clear it when it ends.

The conditions are in the pure core (``crm_store.domain.alerts``). :func:`scan` reads the open orders with a
promised date and the products at or below their reorder point, compares them with the open alerts
(``evaluation_alerts`` with no ``cleared_at``) and writes only the difference, so a scan that finds the same
conditions writes nothing. Two hub processes scanning at once cannot raise one condition twice: ``key`` is
unique and a conflicting insert is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import case, func, select, update

from crm_store.db import Database, conflict_insert
from crm_store.domain import alerts as domain
from crm_store.models import Customer, EvaluationAlert, EvaluationSettings, Order, Product
from crm_store.repositories.pg import Reader

SHOP = "default"


async def ship_lead_days(s: Reader, shop: str = SHOP) -> int:
    """The shop's shipping lead time in days (the default when nothing is stored)."""
    t = EvaluationSettings.__table__  # type: ignore[attr-defined]
    v = (await s.execute(select(t.c.ship_lead_days).where(t.c.shop == shop))).scalar()
    return int(v) if v is not None else domain.DEFAULT_SHIP_LEAD_DAYS


async def current(s: Reader, today: date, lead_days: int, *, customer_id: int | None = None) -> dict[str, domain.Alert]:
    """The conditions that hold now (for one customer: only their orders)."""
    o, c, p = Order.__table__, Customer.__table__, Product.__table__  # type: ignore[attr-defined]
    q = (select(o.c.id, o.c.customer_id, o.c.status, o.c.promised_date, c.c.display_name)
         .select_from(o.join(c, c.c.id == o.c.customer_id))
         .where(o.c.status.in_(domain.OPEN_ORDER_STATUSES), o.c.promised_date.is_not(None),
                o.c.promised_date <= today.fromordinal(today.toordinal() + lead_days)))
    if customer_id is not None:
        q = q.where(o.c.customer_id == customer_id)
    orders = [domain.OpenOrder(r.id, r.customer_id, r.status, r.promised_date, r.display_name or "")
              for r in (await s.execute(q)).all()]
    stock: list[domain.StockLevel] = []
    if customer_id is None:
        rows = (await s.execute(
            select(p.c.id, p.c.sku, p.c.name, p.c.stock, p.c.low_stock_threshold)
            .where(p.c.active.is_(True), p.c.stock <= p.c.low_stock_threshold)
        )).all()
        stock = [domain.StockLevel(r.id, r.sku, r.name, int(r.stock), int(r.low_stock_threshold)) for r in rows]
    return domain.current_alerts(orders, stock, today, lead_days)


@dataclass(frozen=True)
class ScanResult:
    raised: tuple[domain.Alert, ...]
    cleared: int
    open: int


async def scan(db: Database, today: date, now: datetime, *, shop: str = SHOP) -> ScanResult:
    """Raise the conditions that hold and have no open alert; clear the open alerts whose condition ended."""
    t = EvaluationAlert.__table__  # type: ignore[attr-defined]
    async with db.transaction() as s:
        lead = await ship_lead_days(s, shop)
        now_alerts = await current(s, today, lead)
        open_keys = [r[0] for r in (await s.execute(select(t.c.key).where(t.c.cleared_at.is_(None)))).all()]
        diff = domain.changes(open_keys, now_alerts)
        raised: list[domain.Alert] = []
        for a in diff.raise_:
            values = dict(kind=a.kind, severity=a.severity, message=a.message[:300], order_id=a.order_id,
                          product_id=a.product_id, customer_id=a.customer_id)
            # a condition that ended and came back: the row is re-opened
            res = await s.execute(update(t).where(t.c.key == a.key, t.c.cleared_at.is_not(None))
                                  .values(cleared_at=None, raised_at=now, times_raised=t.c.times_raised + 1, **values))
            if res.rowcount:  # type: ignore[attr-defined]
                raised.append(a)
                continue
            ins = conflict_insert(db.dialect)(t).values(
                key=a.key, raised_at=now, times_raised=1, **values
            ).on_conflict_do_nothing(index_elements=["key"])
            res = await s.execute(ins)
            if res.rowcount:  # type: ignore[attr-defined]
                raised.append(a)
        if diff.clear:
            await s.execute(update(t).where(t.c.key.in_(diff.clear), t.c.cleared_at.is_(None)).values(cleared_at=now))
        still = (await s.execute(select(func.count()).select_from(t).where(t.c.cleared_at.is_(None)))).scalar() or 0
    return ScanResult(tuple(raised), len(diff.clear), int(still))


def alert_json(r: Any) -> dict[str, Any]:
    return {
        "id": r.id, "key": r.key, "kind": r.kind, "severity": r.severity, "message": r.message,
        "order_id": r.order_id, "product_id": r.product_id, "customer_id": r.customer_id,
        "times_raised": r.times_raised, "raised_at": r.raised_at.isoformat() if r.raised_at else None,
        "cleared_at": r.cleared_at.isoformat() if r.cleared_at else None,
    }


async def open_alerts(s: Reader, *, limit: int = 200, customer_id: int | None = None,
                      include_cleared: bool = False) -> list[dict[str, Any]]:
    """The open alerts, critical first, newest first (with ``include_cleared``, the cleared ones too)."""
    t = EvaluationAlert.__table__  # type: ignore[attr-defined]
    q = select(t)
    if not include_cleared:
        q = q.where(t.c.cleared_at.is_(None))
    if customer_id is not None:
        q = q.where(t.c.customer_id == customer_id)
    q = q.order_by((t.c.severity == "critical").desc(), t.c.raised_at.desc(), t.c.id.desc()).limit(limit)
    return [alert_json(r) for r in (await s.execute(q)).all()]


async def stamp(s: Reader) -> str:
    """Changes whenever an alert is raised or cleared (the supervisor page re-draws its list then)."""
    t = EvaluationAlert.__table__  # type: ignore[attr-defined]
    r = (await s.execute(select(func.count(), func.max(t.c.raised_at), func.max(t.c.cleared_at), func.max(t.c.id))
                         .where(t.c.id > 0))).one()
    open_n = (await s.execute(select(func.count()).select_from(t).where(t.c.cleared_at.is_(None)))).scalar()
    return f"{r[0]}:{r[3]}:{r[1]}:{r[2]}:{open_n}"


async def supervisor_extras(s: Reader) -> dict[str, Any]:
    """What the supervisor's snapshot carries for issue 18 (small: it is pushed every two seconds): how many
    alerts are open and critical, a stamp that changes whenever one is raised or cleared (the page then reads
    ``GET /api/evaluation/alerts``), and the fulfilment ranking's stamp (the page reads the queue again)."""
    from crm_store.models import FulfilmentRank

    t, ft = EvaluationAlert.__table__, FulfilmentRank.__table__  # type: ignore[attr-defined]
    ranked = (await s.execute(select(func.max(ft.c.ranked_at), func.count(), func.max(ft.c.fingerprint)))).one()
    counts = (await s.execute(select(func.count(), func.coalesce(func.sum(case((t.c.severity == "critical", 1), else_=0)), 0))
                              .where(t.c.cleared_at.is_(None)))).one()
    return {
        "order_alerts_open": int(counts[0]), "order_alerts_critical": int(counts[1]),
        "order_alerts_stamp": await stamp(s),
        "fulfilment_stamp": f"{ranked[0].isoformat() if ranked[0] else ''}:{ranked[1]}:{ranked[2] or ''}",
    }
