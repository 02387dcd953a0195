"""The fulfilment queue: validated orders rated on the shop's criteria and ranked with ELECTRE II. Pure.

Criteria (:data:`CRITERIA`; which are on, their weights, directions and scales are per-shop settings):

- ``customer_value``: the customer's RFM value, 0-100 (:func:`crm_store.domain.rfm.value_score`), max;
- ``total``: the order's total in major units, max;
- ``slack_days``: days from today to the promised date (negative: late), min (less slack ranks higher);
- ``stock_readiness``: 2 when every line's goods are in (its product's lead time has passed since the
  order was placed), 1 when some are, 0 when none, max;
- ``age_hours``: hours since the order was placed, max;
- ``channel``: 1 when the order came by one of the shop's ``preferred_channels``, else 0, max.

Values outside a criterion's scale are clipped to it (ELECTRE II needs every value on its scale), and the
queue shows both the raw and the clipped value. Past ``batch_size`` orders (2,000 by default) the orders
are cut into batches by promised date, between two dates, and ranked batch by batch: an order due
earlier is never behind one due later in another batch. Within a level (tied or incomparable orders)
the list shows them by promised date then order id, and says that this order is a tie-break.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Mapping, Sequence

import numpy as np

from crm_store.domain.electre import DIRECTIONS, Electre2Problem, Electre2Result, ElectreInputError, electre2

DEFAULT_BATCH_SIZE = 2000
MAX_EXPLAINED = 5  # tie and incomparability statements per order


@dataclass(frozen=True)
class CriterionSpec:
    """What a criterion is, and its demo-shop default."""

    key: str
    label: str
    unit: str
    direction: str
    scale: tuple[float, float]
    weight: float
    enabled: bool = True


CRITERIA: tuple[CriterionSpec, ...] = (
    CriterionSpec("customer_value", "customer value", "0-100", "max", (0, 100), 3),
    CriterionSpec("total", "order total", "major units", "max", (0, 300), 2),
    CriterionSpec("slack_days", "slack to promised date", "days", "min", (-5, 15), 4),
    CriterionSpec("stock_readiness", "stock readiness", "0 none, 1 partly, 2 all", "max", (0, 2), 2),
    CriterionSpec("age_hours", "order age", "hours", "max", (0, 168), 1),
    CriterionSpec("channel", "preferred channel", "1 yes, 0 no", "max", (0, 1), 1, enabled=False),
)
CRITERION_KEYS = tuple(c.key for c in CRITERIA)
DEFAULT_CONCORDANCE = (0.6, 0.75)
DEFAULT_DISCORDANCE = (0.3, 0.6)


@dataclass(frozen=True)
class Criterion:
    """One criterion as the shop set it."""

    key: str
    weight: float
    direction: str
    scale: tuple[float, float]
    enabled: bool = True
    label: str = ""


@dataclass(frozen=True)
class QueueSettings:
    """The shop's criteria and the four thresholds."""

    criteria: tuple[Criterion, ...]
    concordance: tuple[float, float] = DEFAULT_CONCORDANCE
    discordance: tuple[float, float] = DEFAULT_DISCORDANCE
    preferred_channels: tuple[str, ...] = ()
    batch_size: int = DEFAULT_BATCH_SIZE

    @property
    def enabled(self) -> tuple[Criterion, ...]:
        return tuple(c for c in self.criteria if c.enabled)

    def validate(self) -> None:
        """Raise :class:`ElectreInputError` naming the fault (checked when saved, not at ranking time)."""
        keys = [c.key for c in self.criteria]
        for k in keys:
            if k not in CRITERION_KEYS:
                raise ElectreInputError(f"unknown criterion {k!r} (known: {', '.join(CRITERION_KEYS)})", "criteria")
        if len(set(keys)) != len(keys):
            raise ElectreInputError("a criterion is given twice", "criteria")
        if not self.enabled:
            raise ElectreInputError("enable at least one criterion", "criteria")
        for c in self.criteria:
            if c.direction not in DIRECTIONS:
                raise ElectreInputError(f"{c.key}: direction must be max or min", "criteria")
            if not (np.isfinite(c.weight) and c.weight > 0):
                raise ElectreInputError(f"{c.key}: weight must be positive", "criteria")
            lo, hi = c.scale
            if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
                raise ElectreInputError(f"{c.key}: scale must be [min, max] with max > min", "criteria")
        if not 1 <= self.batch_size <= 5000:
            raise ElectreInputError("batch_size must be from 1 to 5000", "batch_size")
        # thresholds: the method's own checks
        Electre2Problem.build(["x"], [[c.scale[0] for c in self.enabled]], [c.weight for c in self.enabled],
                              [c.direction for c in self.enabled], [list(c.scale) for c in self.enabled],
                              self.concordance, self.discordance)


def default_settings() -> QueueSettings:
    """The demo shop's settings."""
    return QueueSettings(tuple(Criterion(c.key, c.weight, c.direction, c.scale, c.enabled, c.label) for c in CRITERIA))


def label_of(key: str) -> str:
    for c in CRITERIA:
        if c.key == key:
            return c.label
    return key


@dataclass(frozen=True)
class OrderFacts:
    """What the criteria are computed from, for one open order."""

    order_id: int
    customer_value: float
    total_minor: int
    promised_date: date | None
    created_at: datetime
    lines: int
    lines_ready: int
    channel: str
    customer_name: str = ""
    status: str = ""


def criteria_values(o: OrderFacts, now: datetime, preferred_channels: Sequence[str] = ()) -> dict[str, float]:
    """The raw value of every criterion for one order."""
    today = now.date()
    slack = float((o.promised_date - today).days) if o.promised_date else 30.0
    readiness = 2.0 if o.lines and o.lines_ready >= o.lines else 1.0 if o.lines_ready > 0 else 0.0
    return {
        "customer_value": float(o.customer_value),
        "total": o.total_minor / 100.0,
        "slack_days": slack,
        "stock_readiness": readiness,
        "age_hours": max(0.0, (now - o.created_at).total_seconds() / 3600.0),
        "channel": 1.0 if o.channel in preferred_channels else 0.0,
    }


@dataclass
class QueueEntry:
    """One order's place in the queue, its values and the explanation of its place."""

    order_id: int
    position: int  # 1-based, the list order (levels, then the tie-break)
    level: int  # global level: 1 + levels of earlier batches + level in its batch
    batch: int
    values: dict[str, float]
    raw: dict[str, float]
    above: str | None = None  # "ranks above #X because ..."
    tied_with: list[int] = field(default_factory=list)
    incomparable_with: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # ties and incomparabilities, with the reason
    tie_break: bool = False  # its place within the level came from the tie-break (promised date, id)
    promised_date: date | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id, "position": self.position, "level": self.level, "batch": self.batch,
            "values": self.values, "raw": self.raw, "above": self.above, "tied_with": self.tied_with,
            "incomparable_with": self.incomparable_with, "notes": self.notes, "tie_break": self.tie_break,
            "promised_date": self.promised_date.isoformat() if self.promised_date else None,
        }


def batches(facts: Sequence[OrderFacts], size: int) -> list[list[OrderFacts]]:
    """Cut orders sorted by promised date into batches of at most ``size``, between two dates where possible."""
    ordered = sorted(facts, key=lambda o: (o.promised_date or date.max, o.order_id))
    out: list[list[OrderFacts]] = []
    start = 0
    while start < len(ordered):
        end = min(start + size, len(ordered))
        if end < len(ordered):
            cut = end
            # back off to the first order of the date at the cut, unless one date fills the whole batch
            while cut > start and ordered[cut].promised_date == ordered[cut - 1].promised_date:
                cut -= 1
            end = cut if cut > start else end
        out.append(list(ordered[start:end]))
        start = end
    return out


def _clip(v: float, lo: float, hi: float) -> float:
    return min(hi, max(lo, v))


def rank_queue(facts: Sequence[OrderFacts], settings: QueueSettings, now: datetime) -> list[QueueEntry]:
    """Rank open orders into the fulfilment queue, batch by batch, with explanations."""
    crit = settings.enabled
    out: list[QueueEntry] = []
    level_offset = 0
    for b, batch in enumerate(batches(facts, settings.batch_size), start=1):
        raw = [criteria_values(o, now, settings.preferred_channels) for o in batch]
        perf = [[_clip(r[c.key], *c.scale) for c in crit] for r in raw]
        names = [f"#{o.order_id}" for o in batch]
        problem = Electre2Problem.build(
            names, perf, [c.weight for c in crit], [c.direction for c in crit], [list(c.scale) for c in crit],
            settings.concordance, settings.discordance, [c.label or label_of(c.key) for c in crit],
        )
        result = electre2(problem)
        entries = _explain_batch(batch, raw, perf, crit, result, b, level_offset)
        level_offset += int(result.level.max())
        out.extend(entries)
    for i, e in enumerate(out, start=1):
        e.position = i
    return out


def _explain_batch(batch: Sequence[OrderFacts], raw: Sequence[Mapping[str, float]], perf: Sequence[Sequence[float]],
                   crit: Sequence[Criterion], result: Electre2Result, b: int, level_offset: int) -> list[QueueEntry]:
    n = len(batch)
    level = result.level
    order = sorted(range(n), key=lambda i: (int(level[i]), batch[i].promised_date or date.max, batch[i].order_id))
    pref = result.preferred()
    inc = result.incomparable()
    d, a = result.descending_rank, result.ascending_rank
    same = (d[:, None] == d[None, :]) & (a[:, None] == a[None, :])
    entries: list[QueueEntry] = []
    by_level: dict[int, list[int]] = {}
    for i in order:
        by_level.setdefault(int(level[i]), []).append(i)
    # "ranks above X": the first order in list order that this one is preferred to (preferred implies a
    # lower level, so that is in a later level), found for every row at once
    perm = np.asarray(order, dtype=np.intp)
    pref_sorted = pref[:, perm]
    has_below = np.asarray(pref_sorted.any(axis=1), dtype=bool).reshape(-1)
    first_below = perm[np.argmax(pref_sorted, axis=1)]
    for i in order:
        lv = int(level[i])
        e = QueueEntry(
            order_id=batch[i].order_id, position=0, level=level_offset + lv, batch=b,
            values={c.key: float(perf[i][k]) for k, c in enumerate(crit)},
            raw={c.key: round(float(raw[i][c.key]), 3) for c in crit},
            promised_date=batch[i].promised_date,
        )
        if has_below[i]:
            j = int(first_below[i])
            e.above = f"ranks above #{batch[j].order_id} because {result.why_pair(i, j)}"
        ties = [j for j in np.flatnonzero(same[i]).tolist() if j != i]
        incs = np.flatnonzero(inc[i]).tolist()
        e.tied_with = sorted(batch[j].order_id for j in ties)
        e.incomparable_with = sorted(batch[j].order_id for j in incs)
        for j in ties[:MAX_EXPLAINED]:
            e.notes.append(f"tied with #{batch[j].order_id}: {result.why_pair(i, j)}")
        for j in incs[:MAX_EXPLAINED]:
            e.notes.append(
                f"incomparable with #{batch[j].order_id} (descending class {int(d[i])} vs {int(d[j])}, "
                f"ascending {int(a[i])} vs {int(a[j])}): {result.why_pair(i, j)}"
            )
        e.tie_break = len(by_level[lv]) > 1
        entries.append(e)
    return entries
