"""Order and stock alerts: which conditions hold now, and what to raise or clear (pure, no I/O).

- **overdue**: an open order (placed, confirmed, picking) past its promised date. Critical.
- **at_risk**: an open order not yet late whose promised date is within the shop's shipping lead time
  (``ship_lead_days``): it has not shipped by the day it should have, to arrive in time.
- **low_stock**: an active product whose stock is at or below its reorder point
  (``products.low_stock_threshold``): a replenishment alert.

Each condition has a stable key (``overdue:order:12``). The store keeps one row per key: a key that holds
now and is not open is *raised* (once), an open key that no longer holds is *cleared*. So a refresh that
finds the same conditions raises nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Iterable

OPEN_ORDER_STATUSES = ("confirmed", "picking", "placed")
DEFAULT_SHIP_LEAD_DAYS = 2
KINDS = ("overdue", "at_risk", "low_stock")


@dataclass(frozen=True)
class OpenOrder:
    order_id: int
    customer_id: int
    status: str
    promised_date: date | None
    customer_name: str = ""


@dataclass(frozen=True)
class StockLevel:
    product_id: int
    sku: str
    name: str
    stock: int
    reorder_point: int
    active: bool = True


@dataclass(frozen=True)
class Alert:
    key: str
    kind: str
    severity: str
    message: str
    order_id: int | None = None
    product_id: int | None = None
    customer_id: int | None = None


def order_alert(o: OpenOrder, today: date, lead_days: int = DEFAULT_SHIP_LEAD_DAYS) -> Alert | None:
    """The alert an open order calls for today, if any (overdue wins over at risk)."""
    if o.status not in OPEN_ORDER_STATUSES or o.promised_date is None:
        return None
    days = (o.promised_date - today).days
    who = f" for {o.customer_name}" if o.customer_name else ""
    if days < 0:
        late = -days
        return Alert(f"overdue:order:{o.order_id}", "overdue", "critical",
                     f"Order #{o.order_id}{who} is {late} day{'s' if late != 1 else ''} past its promised date "
                     f"{o.promised_date.isoformat()} and not shipped ({o.status})",
                     order_id=o.order_id, customer_id=o.customer_id)
    if days <= lead_days:
        when = "today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
        return Alert(f"at_risk:order:{o.order_id}", "at_risk", "warning",
                     f"Order #{o.order_id}{who} is due {when} ({o.promised_date.isoformat()}) and not shipped yet "
                     f"({o.status}); shipping takes {lead_days} day{'s' if lead_days != 1 else ''}",
                     order_id=o.order_id, customer_id=o.customer_id)
    return None


def stock_alert(p: StockLevel) -> Alert | None:
    """A replenishment alert when an active product's stock is at or below its reorder point."""
    if not p.active or p.stock > p.reorder_point:
        return None
    severity = "critical" if p.stock <= 0 else "warning"
    level = "out of stock" if p.stock <= 0 else f"{p.stock} left"
    return Alert(f"low_stock:product:{p.product_id}", "low_stock", severity,
                 f"{p.name} ({p.sku}): {level}, reorder point {p.reorder_point}: replenish",
                 product_id=p.product_id)


def current_alerts(orders: Iterable[OpenOrder], stock: Iterable[StockLevel], today: date,
                   lead_days: int = DEFAULT_SHIP_LEAD_DAYS) -> dict[str, Alert]:
    """Every condition that holds now, by key."""
    if lead_days < 0:
        raise ValueError("lead_days must be 0 or more")
    out: dict[str, Alert] = {}
    for o in orders:
        a = order_alert(o, today, lead_days)
        if a is not None:
            out[a.key] = a
    for p in stock:
        b = stock_alert(p)
        if b is not None:
            out[b.key] = b
    return out


@dataclass(frozen=True)
class AlertChanges:
    raise_: tuple[Alert, ...]  # conditions that hold and have no open alert: raise them (once)
    clear: tuple[str, ...]  # open alerts whose condition ended


def changes(open_keys: Iterable[str], now: dict[str, Alert]) -> AlertChanges:
    """What to raise and what to clear, given the keys of the open alerts and the conditions that hold now."""
    held = set(open_keys)
    return AlertChanges(
        tuple(a for k, a in sorted(now.items()) if k not in held),
        tuple(sorted(k for k in held if k not in now)),
    )
