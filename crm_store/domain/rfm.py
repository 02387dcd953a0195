"""Customer value: RFM scores in quintiles, segments (tiers) and attrition risk. Pure numpy, no I/O.

- **RFM** over a window (default 365 days) of the orders that count (not drafts, not cancelled, not
  refunded): *recency* (days since the last order), *frequency* (orders in the window) and *monetary*
  (their total, minor units). Each is scored 1-5 in **quintiles over the shop's active customers** (those
  with an order in the window): ``score = 1 + floor(5 * below / n)`` where ``below`` counts the active
  customers strictly worse on that measure. Equal values always get equal scores (no silent tie-break by
  id), better values never a lower score, and with distinct values each quintile holds a fifth. Recency
  counts "fewer days" as better.
- **Segments**: :data:`SEGMENT_RULES`, first match wins, on R and FM = round((F + M) / 2). Every (R, FM)
  in 1..5 × 1..5 is covered (tested). A customer with orders, but none in the window, is ``lost`` with
  scores 0; one without orders is ``new``.
- **Attrition**: the days since the last order against the customer's own usual gap (mean gap between
  their orders, from at least :data:`MIN_ORDERS_FOR_OWN_GAP` orders ever), else the shop's median of those
  gaps. ``ratio = days_since / usual_gap``; risk ``low`` under 1.5, ``medium`` under 3, ``high`` from 3; the
  score ``min(1, max(0, (ratio - 1) / 3))`` orders customers within a level. The reason says it in words:
  "usually orders every 30 days, last order 95 days ago".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DEFAULT_WINDOW_DAYS = 365
MIN_ORDERS_FOR_OWN_GAP = 3
DEFAULT_SHOP_GAP_DAYS = 60.0  # when nobody has enough history to measure a gap
ATTRITION_LEVELS = ("low", "medium", "high")
_MEDIUM_RATIO = 1.5
_HIGH_RATIO = 3.0


@dataclass(frozen=True)
class SegmentRule:
    """One row of the segment table: R and FM ranges (inclusive), the segment and what it means."""

    segment: str
    r: tuple[int, int]
    fm: tuple[int, int]
    meaning: str


# The rules, in one place (docs/subsystems/customer-value.md prints this table). First match wins.
SEGMENT_RULES: tuple[SegmentRule, ...] = (
    SegmentRule("champions", (5, 5), (4, 5), "bought very recently, often, and spent the most"),
    SegmentRule("loyal", (3, 5), (3, 5), "buys regularly and spends well"),
    SegmentRule("promising", (4, 5), (1, 2), "recent, but few or small orders so far"),
    SegmentRule("needs_attention", (3, 3), (1, 2), "middling recency, small spend"),
    SegmentRule("at_risk", (1, 2), (3, 5), "was a good customer, has not ordered for a while"),
    SegmentRule("hibernating", (2, 2), (1, 2), "small and not recent"),
    SegmentRule("lost", (1, 1), (1, 2), "least recent, small: probably gone"),
)
SEGMENTS: tuple[str, ...] = tuple(r.segment for r in SEGMENT_RULES) + ("new",)
# Routing tiers (contact_center/usecases/context.py TIER_PRIORITY reads customers.tier) per segment: the
# default of the per-shop setting ``segment_tiers``.
DEFAULT_SEGMENT_TIERS: dict[str, str] = {
    "champions": "gold", "loyal": "silver", "at_risk": "silver", "promising": "standard",
    "needs_attention": "standard", "hibernating": "standard", "lost": "standard", "new": "standard",
}
ROUTING_TIERS = ("standard", "silver", "gold")


def quintile_scores(values: npt.ArrayLike, *, higher_is_better: bool = True) -> IntArray:
    """Score each value 1-5 by quintile: ``1 + floor(5 * below / n)``, ``below`` = how many are strictly worse.

    Equal values get equal scores; a better value never gets a lower score.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError("values must be one-dimensional")
    n = v.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.all(np.isfinite(v)):
        raise ValueError("values must be finite")
    key = v if higher_is_better else -v
    below = np.searchsorted(np.sort(key), key, side="left")  # how many are strictly worse
    out: IntArray = (1 + (5 * below) // n).astype(np.int64)
    return out


def segment_of(r: int, f: int, m: int) -> str:
    """The segment of one customer's scores (1-5 each; 0 for no order in the window: ``lost``)."""
    if r == 0:
        return "lost"
    fm = int(np.floor((f + m) / 2 + 0.5))
    for rule in SEGMENT_RULES:
        if rule.r[0] <= r <= rule.r[1] and rule.fm[0] <= fm <= rule.fm[1]:
            return rule.segment
    raise AssertionError(f"no segment rule covers R={r}, FM={fm}")  # pragma: no cover - tested exhaustive


def segment_meaning(segment: str) -> str:
    """The one-line meaning of a segment."""
    for rule in SEGMENT_RULES:
        if rule.segment == segment:
            return rule.meaning
    return "no orders yet" if segment == "new" else segment


@dataclass(frozen=True)
class CustomerOrders:
    """The order history of many customers as flat arrays (one row per counted order)."""

    customer: IntArray  # customer id of each order
    age_days: FloatArray  # days between the order and "now" (>= 0)
    amount: IntArray  # the order's total, minor units

    @classmethod
    def build(cls, customer: Sequence[int] | IntArray, age_days: Sequence[float] | FloatArray,
              amount: Sequence[int] | IntArray) -> CustomerOrders:
        c = np.asarray(customer, dtype=np.int64)
        a = np.asarray(age_days, dtype=np.float64)
        m = np.asarray(amount, dtype=np.int64)
        if not (c.shape == a.shape == m.shape) or c.ndim != 1:
            raise ValueError("customer, age_days and amount must be 1-d arrays of one length")
        return cls(c, np.maximum(a, 0.0), m)


@dataclass(frozen=True)
class CustomerValues:
    """RFM and attrition per customer (arrays aligned on ``customer``, sorted by id)."""

    customer: IntArray
    recency_days: FloatArray  # days since the last order ever
    frequency: IntArray  # orders in the window
    monetary: IntArray  # their total, minor units
    r: IntArray  # 1-5, 0 when no order in the window
    f: IntArray
    m: IntArray
    segment: tuple[str, ...]
    orders_total: IntArray  # orders ever (counted)
    usual_gap_days: FloatArray  # the gap the attrition is measured against
    own_gap: npt.NDArray[np.bool_]  # True: the customer's own gap; False: the shop's
    attrition_score: FloatArray  # 0..1
    attrition: tuple[str, ...]  # low / medium / high
    shop_gap_days: float

    def reason(self, i: int) -> str:
        """Why the attrition risk is what it is, in words."""
        return attrition_reason(float(self.recency_days[i]), float(self.usual_gap_days[i]), bool(self.own_gap[i]))

    def explanation(self, i: int) -> str:
        """One line: the segment, the three scores and what they mean."""
        seg = self.segment[i]
        if int(self.r[i]) == 0:
            return f"{seg}: no order in the window ({segment_meaning(seg)})"
        return (f"{seg.replace('_', ' ')}: R{int(self.r[i])} F{int(self.f[i])} M{int(self.m[i])} "
                f"({segment_meaning(seg)})")


def attrition_level(ratio: float) -> str:
    """low / medium / high from days-since-last over the usual gap."""
    if ratio < _MEDIUM_RATIO:
        return "low"
    if ratio < _HIGH_RATIO:
        return "medium"
    return "high"


def attrition_reason(days_since: float, usual_gap: float, own: bool) -> str:
    """'usually orders every 30 days, last order 95 days ago' (or the shop's usual gap)."""
    gap, since = int(round(usual_gap)), int(round(days_since))
    last = "last order today" if since == 0 else f"last order {since} day{'s' if since != 1 else ''} ago"
    if own:
        return f"usually orders every {gap} days, {last}"
    return f"too few orders to know their rhythm; customers usually order every {gap} days, {last}"


def compute(orders: CustomerOrders, *, window_days: float = DEFAULT_WINDOW_DAYS) -> CustomerValues:
    """RFM scores, segments and attrition for every customer that has at least one counted order."""
    if window_days <= 0:
        raise ValueError("window_days must be positive")
    cust, age, amount = orders.customer, orders.age_days, orders.amount
    ids, inv = np.unique(cust, return_inverse=True)
    k = ids.size
    recency = np.full(k, np.inf)
    np.minimum.at(recency, inv, age)
    oldest = np.zeros(k)
    np.maximum.at(oldest, inv, age)
    total_count = np.bincount(inv, minlength=k).astype(np.int64)
    in_window = age <= window_days
    freq = np.bincount(inv[in_window], minlength=k).astype(np.int64)
    money = np.bincount(inv[in_window], weights=amount[in_window].astype(np.float64), minlength=k)
    money_i = np.rint(money).astype(np.int64)

    active = freq > 0
    r = np.zeros(k, dtype=np.int64)
    f = np.zeros(k, dtype=np.int64)
    m = np.zeros(k, dtype=np.int64)
    if active.any():
        r[active] = quintile_scores(recency[active], higher_is_better=False)
        f[active] = quintile_scores(freq[active])
        m[active] = quintile_scores(money_i[active])
    segments = tuple(segment_of(int(a), int(b), int(c)) for a, b, c in zip(r, f, m))

    # Mean gap between one's orders: (oldest - newest) / (count - 1).
    enough = total_count >= MIN_ORDERS_FOR_OWN_GAP
    own_gap = np.zeros(k)
    own_gap[enough] = (oldest[enough] - recency[enough]) / (total_count[enough] - 1)
    measurable = enough & (own_gap > 0)
    shop_gap = float(np.median(own_gap[measurable])) if measurable.any() else DEFAULT_SHOP_GAP_DAYS
    shop_gap = max(shop_gap, 1.0)
    usual = np.where(measurable, np.maximum(own_gap, 1.0), shop_gap)
    ratio = recency / usual
    score = np.clip((ratio - 1.0) / 3.0, 0.0, 1.0)
    levels = tuple(attrition_level(float(x)) for x in ratio)
    return CustomerValues(
        customer=ids.astype(np.int64), recency_days=recency, frequency=freq, monetary=money_i, r=r, f=f, m=m,
        segment=segments, orders_total=total_count, usual_gap_days=usual, own_gap=measurable,
        attrition_score=score, attrition=levels, shop_gap_days=shop_gap,
    )


def value_score(r: int, f: int, m: int) -> float:
    """A customer's value on 0-100 for ELECTRE II's customer-value criterion: mean of F and M, R as a tie-breaker.

    ``(2F + 2M + R - 5) / 20 * 100``: 0 for no order in the window (scores 0), 100 for 5/5/5.
    """
    if r == 0:
        return 0.0
    return max(0.0, min(100.0, (2 * f + 2 * m + r - 5) / 20 * 100))


@dataclass(frozen=True)
class Population:
    """The shop's active customers as last scored, seen from one customer: how many of the *others* are
    strictly worse on each measure (``n`` = the others who are active)."""

    n: int
    r_below: int  # others whose recency is longer (worse)
    f_below: int  # others with fewer orders in the window
    m_below: int  # others who spent less in the window
    shop_gap_days: float


@dataclass(frozen=True)
class OneValue:
    """One customer's RFM and attrition, scored against the stored population (:func:`score_one`)."""

    recency_days: float
    frequency: int
    monetary: int
    r: int
    f: int
    m: int
    segment: str
    orders_total: int
    usual_gap_days: float
    own_gap: bool
    attrition_score: float
    attrition: str
    reason: str


def measure_one(age_days: Sequence[float], amount: Sequence[int], *, window_days: float = DEFAULT_WINDOW_DAYS
                ) -> tuple[float, int, int, int, float]:
    """(recency, frequency, monetary, orders ever, oldest age) of one customer's counted orders (not empty)."""
    if not age_days or len(age_days) != len(amount):
        raise ValueError("age_days and amount must be non-empty and of one length")
    ages = [max(0.0, float(a)) for a in age_days]
    inside = [i for i, a in enumerate(ages) if a <= window_days]
    return min(ages), len(inside), int(sum(int(amount[i]) for i in inside)), len(ages), max(ages)


def score_one(recency: float, frequency: int, monetary: int, orders_total: int, oldest: float,
              population: Population) -> OneValue:
    """Score one customer against the others as last scored: the same ``1 + floor(5 * below / n)`` as
    :func:`quintile_scores`, with ``n`` = the others + this customer. When the others' measures are those of
    the same instant, this equals the full computation's scores for this customer (tested)."""
    if frequency > 0:
        n = population.n + 1
        r = 1 + (5 * population.r_below) // n
        f = 1 + (5 * population.f_below) // n
        m = 1 + (5 * population.m_below) // n
    else:
        r = f = m = 0
    own = orders_total >= MIN_ORDERS_FOR_OWN_GAP and (oldest - recency) > 0
    usual = max((oldest - recency) / (orders_total - 1), 1.0) if own else max(population.shop_gap_days, 1.0)
    ratio = recency / usual
    return OneValue(
        recency_days=recency, frequency=frequency, monetary=monetary, r=r, f=f, m=m, segment=segment_of(r, f, m),
        orders_total=orders_total, usual_gap_days=usual, own_gap=own,
        attrition_score=float(min(1.0, max(0.0, (ratio - 1.0) / 3.0))), attrition=attrition_level(ratio),
        reason=attrition_reason(recency, usual, own),
    )
