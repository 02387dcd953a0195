"""What an order costs and when it arrives: line totals, shipping, and delivery dates counted in business days."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from crm_store.domain.validation import ValidLine, ValidOrder

TRANSIT_BUSINESS_DAYS = 2
FREE_SHIPPING_FROM_MINOR = 5000
SHIPPING_FEE_MINOR = 495

_SATURDAY = 5


@dataclass(frozen=True)
class PricedLine:
    """One line of a quote: what, how many, at what unit price, and the line total in minor units."""

    sku: str
    name: str
    options: Mapping[str, str]
    quantity: int
    unit_price_minor: int
    line_total_minor: int


@dataclass(frozen=True)
class Quote:
    """What the customer will pay and when the parcel should arrive."""

    lines: tuple[PricedLine, ...]
    subtotal_minor: int
    shipping_minor: int
    total_minor: int
    estimated_delivery: date


def is_business_day(day: date) -> bool:
    """True from Monday to Friday."""
    return day.weekday() < _SATURDAY


def add_business_days(start: date, days: int) -> date:
    """The date that many business days after start; a weekend start counts from the next Monday."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise ValueError(f"business days must be a whole number >= 0, got {days!r}")
    day = start
    while not is_business_day(day):
        day += timedelta(days=1)
    weeks, rest = divmod(days, 5)
    day += timedelta(weeks=weeks)
    while rest:
        day += timedelta(days=1)
        if is_business_day(day):
            rest -= 1
    return day


def estimate_delivery(lines: Sequence[ValidLine], placed_on: date) -> date:
    """When an order placed on that day should arrive: the slowest line's lead time plus transit, in business days."""
    lead = max((line.product.lead_time_days for line in lines), default=0)
    return add_business_days(placed_on, max(lead, 0) + TRANSIT_BUSINESS_DAYS)


def shipping_fee(subtotal_minor: int) -> int:
    """The shipping charge for a subtotal: free from FREE_SHIPPING_FROM_MINOR, otherwise SHIPPING_FEE_MINOR."""
    return 0 if subtotal_minor >= FREE_SHIPPING_FROM_MINOR else SHIPPING_FEE_MINOR


def quote(order: ValidOrder, placed_on: date) -> Quote:
    """Price a checked order placed on the given day: line totals, subtotal, shipping, total and delivery estimate."""
    priced = tuple(
        PricedLine(
            sku=line.product.sku,
            name=line.product.name,
            options=dict(line.options),
            quantity=line.quantity,
            unit_price_minor=line.product.price_minor,
            line_total_minor=line.product.price_minor * line.quantity,
        )
        for line in order.lines
    )
    subtotal = sum(p.line_total_minor for p in priced)
    shipping = shipping_fee(subtotal)
    return Quote(
        lines=priced,
        subtotal_minor=subtotal,
        shipping_minor=shipping,
        total_minor=subtotal + shipping,
        estimated_delivery=estimate_delivery(order.lines, placed_on),
    )
