"""The life of an order: its statuses, the legal moves between them, and what each status means for stock and promises."""

from __future__ import annotations

from datetime import date
from enum import StrEnum


class OrderStatus(StrEnum):
    """Where an order is in its life, from draft to refund."""

    DRAFT = "draft"
    PLACED = "placed"
    CONFIRMED = "confirmed"
    PICKING = "picking"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    RETURNED = "returned"
    REFUNDED = "refunded"


_S = OrderStatus

_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    _S.DRAFT: frozenset({_S.PLACED, _S.CANCELLED}),
    _S.PLACED: frozenset({_S.CONFIRMED, _S.CANCELLED}),
    _S.CONFIRMED: frozenset({_S.PICKING, _S.CANCELLED}),
    _S.PICKING: frozenset({_S.SHIPPED, _S.CANCELLED}),
    _S.SHIPPED: frozenset({_S.DELIVERED}),
    _S.DELIVERED: frozenset({_S.RETURNED}),
    _S.RETURNED: frozenset({_S.REFUNDED}),
    _S.CANCELLED: frozenset(),
    _S.REFUNDED: frozenset(),
}

# Reserved in the warehouse but not yet handed to the carrier.
OPEN_STATUSES: frozenset[OrderStatus] = frozenset({_S.PLACED, _S.CONFIRMED, _S.PICKING})

# No move leads out of these.
FINAL_STATUSES: frozenset[OrderStatus] = frozenset(s for s, nxt in _TRANSITIONS.items() if not nxt)


def _in_life_order(statuses: frozenset[OrderStatus]) -> list[OrderStatus]:
    order = list(OrderStatus)
    return sorted(statuses, key=order.index)


class IllegalTransition(ValueError):
    """An order was asked to move to a status its current status cannot lead to."""

    def __init__(self, current: OrderStatus, target: OrderStatus) -> None:
        self.current = OrderStatus(current)
        self.target = OrderStatus(target)
        allowed = _in_life_order(allowed_transitions(self.current))
        if allowed:
            tail = "allowed next steps are " + ", ".join(s.value for s in allowed)
        else:
            tail = f"{self.current.value} is final"
        super().__init__(
            f"cannot move an order from {self.current.value} to {self.target.value}: {tail}"
        )

    def __reduce__(self) -> tuple[type[IllegalTransition], tuple[OrderStatus, OrderStatus]]:
        return (type(self), (self.current, self.target))


def allowed_transitions(status: OrderStatus) -> frozenset[OrderStatus]:
    """The statuses an order in this status may move to next."""
    return _TRANSITIONS[OrderStatus(status)]


def check_transition(current: OrderStatus, target: OrderStatus) -> None:
    """Refuse a move the order's life does not allow (raises IllegalTransition)."""
    if OrderStatus(target) not in allowed_transitions(current):
        raise IllegalTransition(current, target)


def is_final(status: OrderStatus) -> bool:
    """True when nothing more can happen to the order (cancelled or refunded)."""
    return OrderStatus(status) in FINAL_STATUSES


def holds_stock(status: OrderStatus) -> bool:
    """True while the order keeps stock reserved that has not left the warehouse."""
    return OrderStatus(status) in OPEN_STATUSES


def releases_stock(current: OrderStatus, target: OrderStatus) -> bool:
    """True when this move cancels an order whose reserved stock goes back on the shelf."""
    return OrderStatus(target) is OrderStatus.CANCELLED and holds_stock(current)


def is_overdue(status: OrderStatus, promised: date, today: date) -> bool:
    """True when the order has not shipped and its promised date has passed."""
    return OrderStatus(status) in OPEN_STATUSES and today > promised


def is_at_risk(status: OrderStatus, promised: date, today: date, margin_days: int = 1) -> bool:
    """True when the order has not shipped, is not yet late, but its promised date is within the margin."""
    if OrderStatus(status) not in OPEN_STATUSES or today > promised:
        return False
    return (promised - today).days <= margin_days
