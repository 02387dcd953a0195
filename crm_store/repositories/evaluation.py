"""A shop's evaluation settings (ELECTRE II criteria and thresholds, RFM, associations) and the fulfilment queue.

The queue (``fulfilment_ranks``) is re-ranked by :func:`refresh_queue` whenever its *fingerprint* changed:
the set of open orders and their last change (count, sum of ids, newest ``updated_at``), the settings'
version, the last customer-value computation and the hour (orders age: the age criterion moves, and
the slack moves at midnight). Readers call :func:`refresh_queue` before reading, and a timer calls it
too, so an order that arrives, changes or ages past a step re-ranks the queue without the order use
cases having to know about it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Mapping, Sequence

from sqlalchemy import delete, func, insert, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_store.db import Database
from crm_store.domain import fulfilment as fq
from crm_store.domain.alerts import DEFAULT_SHIP_LEAD_DAYS
from crm_store.domain.associations import DEFAULT_MIN_CONFIDENCE, DEFAULT_MIN_LIFT, DEFAULT_MIN_SUPPORT
from crm_store.domain.electre import ElectreInputError
from crm_store.domain.orders import OPEN_STATUSES
from crm_store.domain.rfm import DEFAULT_SEGMENT_TIERS, DEFAULT_WINDOW_DAYS, ROUTING_TIERS, SEGMENTS
from crm_store.models import (
    Customer, CustomerValue, EvaluationSettings, FulfilmentRank, Order, OrderCriterion, OrderLine, Product, utcnow,
)
from crm_store.repositories.pg import Reader

SHOP = "default"
OPEN = tuple(sorted(s.value for s in OPEN_STATUSES))


@dataclass(frozen=True)
class ShopSettings:
    """Everything a shop set for evaluation and customer value (defaults where nothing is stored)."""

    queue: fq.QueueSettings
    rfm_window_days: int
    segment_tiers: dict[str, str]
    min_support: float
    min_confidence: float
    min_lift: float
    version: int
    updated_at: datetime | None
    updated_by: str
    ship_lead_days: int = DEFAULT_SHIP_LEAD_DAYS  # an open order not shipped this long before its promised date is at risk
    bot_cross_sell: bool = False  # the bot offers the top association once after an order confirmed on chat

    def to_json(self) -> dict[str, Any]:
        specs = {c.key: c for c in fq.CRITERIA}
        return {
            "criteria": [
                {"key": c.key, "label": specs[c.key].label, "unit": specs[c.key].unit, "weight": c.weight,
                 "direction": c.direction, "scale": list(c.scale), "enabled": c.enabled}
                for c in self.queue.criteria
            ],
            "concordance": list(self.queue.concordance), "discordance": list(self.queue.discordance),
            "batch_size": self.queue.batch_size, "preferred_channels": list(self.queue.preferred_channels),
            "rfm_window_days": self.rfm_window_days, "segment_tiers": self.segment_tiers,
            "associations": {"min_support": self.min_support, "min_confidence": self.min_confidence,
                             "min_lift": self.min_lift},
            "ship_lead_days": self.ship_lead_days, "bot_cross_sell": self.bot_cross_sell, "version": self.version,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None, "updated_by": self.updated_by,
        }


def default_shop_settings() -> ShopSettings:
    return ShopSettings(fq.default_settings(), DEFAULT_WINDOW_DAYS, dict(DEFAULT_SEGMENT_TIERS), DEFAULT_MIN_SUPPORT,
                        DEFAULT_MIN_CONFIDENCE, DEFAULT_MIN_LIFT, 0, None, "defaults")


async def load_settings(s: Reader, shop: str = SHOP) -> ShopSettings:
    """The shop's settings; the demo defaults for whatever is not stored."""
    t, ct = EvaluationSettings.__table__, OrderCriterion.__table__  # type: ignore[attr-defined]
    row = (await s.execute(select(t).where(t.c.shop == shop))).first()
    crit_rows = {r.key: r for r in (await s.execute(select(ct).where(ct.c.shop == shop))).all()}
    base = default_shop_settings()
    criteria = tuple(
        fq.Criterion(c.key, float(crit_rows[c.key].weight), crit_rows[c.key].direction,
                     (float(crit_rows[c.key].scale_min), float(crit_rows[c.key].scale_max)), bool(crit_rows[c.key].enabled))
        if c.key in crit_rows else c
        for c in base.queue.criteria
    )
    if row is None:
        return ShopSettings(fq.QueueSettings(criteria), base.rfm_window_days, base.segment_tiers, base.min_support,
                            base.min_confidence, base.min_lift, 0, None, base.updated_by)
    tiers = dict(DEFAULT_SEGMENT_TIERS)
    tiers.update(row.segment_tiers or {})
    return ShopSettings(
        fq.QueueSettings(criteria, (row.concordance_low, row.concordance_high), (row.discordance_low, row.discordance_high),
                         tuple(row.preferred_channels or ()), row.batch_size),
        row.rfm_window_days, tiers, row.min_support, row.min_confidence, row.min_lift, row.version, row.updated_at,
        row.updated_by, int(row.ship_lead_days), bool(row.bot_cross_sell),
    )


def _pair(value: Any, field: str) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise ElectreInputError("must be [low, high]", field)
    return float(value[0]), float(value[1])


def merge_settings(current: ShopSettings, body: Mapping[str, Any]) -> ShopSettings:
    """Apply a partial update (the admin API's body) to the settings, validating everything.

    :raises ElectreInputError: naming the field at fault.
    """
    known = {"criteria", "concordance", "discordance", "batch_size", "preferred_channels", "rfm_window_days",
             "segment_tiers", "associations", "ship_lead_days", "bot_cross_sell"}
    for k in body:
        if k not in known:
            raise ElectreInputError(f"unknown setting (known: {', '.join(sorted(known))})", k)
    q = current.queue
    criteria = {c.key: c for c in q.criteria}
    if "criteria" in body:
        if not isinstance(body["criteria"], list):
            raise ElectreInputError("must be a list of criteria", "criteria")
        for i, item in enumerate(body["criteria"]):
            if not isinstance(item, Mapping) or item.get("key") not in criteria:
                raise ElectreInputError(f"criteria[{i}]: key must be one of {', '.join(fq.CRITERION_KEYS)}", "criteria")
            old = criteria[item["key"]]
            extra = set(item) - {"key", "weight", "direction", "scale", "enabled", "label", "unit"}
            if extra:
                raise ElectreInputError(f"criteria[{i}]: unknown field(s) {', '.join(sorted(extra))}", "criteria")
            weight = item.get("weight", old.weight)
            if not isinstance(weight, (int, float)) or isinstance(weight, bool):
                raise ElectreInputError(f"criteria[{i}]: weight must be a number", "criteria")
            enabled = item.get("enabled", old.enabled)
            if not isinstance(enabled, bool):
                raise ElectreInputError(f"criteria[{i}]: enabled must be true or false", "criteria")
            scale = _pair(item["scale"], "criteria") if "scale" in item else old.scale
            criteria[old.key] = fq.Criterion(old.key, float(weight), str(item.get("direction", old.direction)), scale, enabled)
    conc = _pair(body["concordance"], "concordance") if "concordance" in body else q.concordance
    disc = _pair(body["discordance"], "discordance") if "discordance" in body else q.discordance
    batch = body.get("batch_size", q.batch_size)
    if not isinstance(batch, int) or isinstance(batch, bool):
        raise ElectreInputError("must be a whole number", "batch_size")
    channels = body.get("preferred_channels", list(q.preferred_channels))
    if not isinstance(channels, list) or not all(isinstance(c, str) and c for c in channels):
        raise ElectreInputError("must be a list of channel names", "preferred_channels")
    queue = fq.QueueSettings(tuple(criteria[k] for k in fq.CRITERION_KEYS), conc, disc, tuple(channels), batch)
    queue.validate()
    window = body.get("rfm_window_days", current.rfm_window_days)
    if not isinstance(window, int) or isinstance(window, bool) or not 7 <= window <= 3650:
        raise ElectreInputError("must be a whole number of days from 7 to 3650", "rfm_window_days")
    tiers = dict(current.segment_tiers)
    if "segment_tiers" in body:
        given = body["segment_tiers"]
        if not isinstance(given, Mapping):
            raise ElectreInputError("must map segments to tiers", "segment_tiers")
        for seg, tier in given.items():
            if seg not in SEGMENTS:
                raise ElectreInputError(f"unknown segment {seg!r} (known: {', '.join(SEGMENTS)})", "segment_tiers")
            if tier not in ROUTING_TIERS:
                raise ElectreInputError(f"{seg}: tier must be one of {', '.join(ROUTING_TIERS)}", "segment_tiers")
            tiers[seg] = tier
    assoc = body.get("associations", {})
    if not isinstance(assoc, Mapping) or set(assoc) - {"min_support", "min_confidence", "min_lift"}:
        raise ElectreInputError("must be {min_support, min_confidence, min_lift}", "associations")
    sup = assoc.get("min_support", current.min_support)
    conf = assoc.get("min_confidence", current.min_confidence)
    lift = assoc.get("min_lift", current.min_lift)
    for name, v, lo, hi in (("min_support", sup, 1e-6, 1.0), ("min_confidence", conf, 0.0, 1.0), ("min_lift", lift, 0.0, 100.0)):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not lo <= v <= hi:
            raise ElectreInputError(f"{name} must be a number from {lo:g} to {hi:g}", "associations")
    lead = body.get("ship_lead_days", current.ship_lead_days)
    if not isinstance(lead, int) or isinstance(lead, bool) or not 0 <= lead <= 60:
        raise ElectreInputError("must be a whole number of days from 0 to 60", "ship_lead_days")
    cross = body.get("bot_cross_sell", current.bot_cross_sell)
    if not isinstance(cross, bool):
        raise ElectreInputError("must be true or false", "bot_cross_sell")
    return ShopSettings(queue, window, tiers, float(sup), float(conf), float(lift), current.version,
                        current.updated_at, current.updated_by, lead, cross)


async def save_settings(s: AsyncSession, new: ShopSettings, *, actor: str, shop: str = SHOP) -> ShopSettings:
    """Store the settings (validated by :func:`merge_settings`) and bump the version: the queue re-ranks."""
    t, ct = EvaluationSettings.__table__, OrderCriterion.__table__  # type: ignore[attr-defined]
    q = new.queue
    values = dict(
        concordance_low=q.concordance[0], concordance_high=q.concordance[1],
        discordance_low=q.discordance[0], discordance_high=q.discordance[1], batch_size=q.batch_size,
        preferred_channels=list(q.preferred_channels), rfm_window_days=new.rfm_window_days,
        segment_tiers=new.segment_tiers, min_support=new.min_support, min_confidence=new.min_confidence,
        min_lift=new.min_lift, ship_lead_days=new.ship_lead_days, bot_cross_sell=new.bot_cross_sell,
        updated_by=actor[:120], updated_at=utcnow(),
    )
    res = await s.execute(update(t).where(t.c.shop == shop).values(version=t.c.version + 1, **values))
    if res.rowcount == 0:  # type: ignore[attr-defined]
        await s.execute(insert(t).values(shop=shop, version=1, **values))
    await s.execute(delete(ct).where(ct.c.shop == shop))
    await s.execute(insert(ct), [
        {"shop": shop, "key": c.key, "weight": c.weight, "direction": c.direction, "scale_min": c.scale[0],
         "scale_max": c.scale[1], "enabled": c.enabled} for c in q.criteria
    ])
    return await load_settings(s, shop)


# --- the fulfilment queue -----------------------------------------------------------------------------


async def _fingerprint(s: Reader, settings: ShopSettings, now: datetime) -> str:
    o, cv = Order.__table__, CustomerValue.__table__  # type: ignore[attr-defined]
    row = (await s.execute(
        select(func.count(), func.coalesce(func.sum(o.c.id), 0), func.max(o.c.updated_at)).where(o.c.status.in_(OPEN))
    )).one()
    newest = row[2]
    if isinstance(newest, datetime):
        newest = newest.replace(tzinfo=None).isoformat()
    values_at = (await s.execute(select(func.max(cv.c.computed_at)))).scalar()
    if isinstance(values_at, datetime):
        values_at = values_at.replace(tzinfo=None).isoformat(timespec="seconds")
    return f"{row[0]}:{row[1]}:{newest}:{settings.version}:{values_at}:{now:%Y%m%d%H}"[:120]


async def open_order_facts(s: Reader, now: datetime) -> list[fq.OrderFacts]:
    """What the criteria need, for every order in the queue (placed, confirmed, picking)."""
    o, c, cv = Order.__table__, Customer.__table__, CustomerValue.__table__  # type: ignore[attr-defined]
    lt, pt = OrderLine.__table__, Product.__table__  # type: ignore[attr-defined]
    orders = (await s.execute(
        select(o.c.id, o.c.total_minor, o.c.promised_date, o.c.created_at, o.c.channel, o.c.status,
               c.c.display_name, cv.c.value_score)
        .select_from(o.join(c, c.c.id == o.c.customer_id).outerjoin(cv, cv.c.customer_id == o.c.customer_id))
        .where(o.c.status.in_(OPEN))
    )).all()
    lines = (await s.execute(
        select(lt.c.order_id, pt.c.lead_time_days)
        .select_from(lt.join(pt, pt.c.id == lt.c.product_id).join(o, o.c.id == lt.c.order_id))
        .where(o.c.status.in_(OPEN))
    )).all()
    by_order: dict[int, list[int]] = {}
    for line in lines:
        by_order.setdefault(line.order_id, []).append(int(line.lead_time_days))
    facts = []
    for r in orders:
        created = r.created_at if r.created_at.tzinfo else r.created_at.replace(tzinfo=timezone.utc)
        waited = (now - created).total_seconds() / 86400.0
        leads = by_order.get(r.id, [])
        facts.append(fq.OrderFacts(
            order_id=r.id, customer_value=float(r.value_score or 0.0), total_minor=r.total_minor,
            promised_date=r.promised_date, created_at=created, lines=len(leads),
            lines_ready=sum(1 for d in leads if d <= waited), channel=r.channel, customer_name=r.display_name,
            status=r.status,
        ))
    return facts


@dataclass(frozen=True)
class QueueRefresh:
    ranked: bool  # False: the stored ranking was still current
    orders: int
    fingerprint: str
    seconds: float


async def refresh_queue(db: Database, now: datetime, *, force: bool = False, shop: str = SHOP) -> QueueRefresh:
    """Re-rank the queue if anything it depends on changed (or ``force``), in one transaction."""
    import time

    t0 = time.perf_counter()
    ft = FulfilmentRank.__table__  # type: ignore[attr-defined]
    async with db.session() as s:
        settings = await load_settings(s, shop)
        fp = await _fingerprint(s, settings, now)
        held = (await s.execute(select(ft.c.fingerprint).limit(1))).scalar()
        count = (await s.execute(select(func.count()).select_from(ft))).scalar() or 0
    if not force and (held == fp or (held is None and fp.startswith("0:"))):
        return QueueRefresh(False, int(count), fp, time.perf_counter() - t0)
    async with db.transaction() as s:
        facts = await open_order_facts(s, now)
        # ELECTRE II is pure CPU work: in a worker thread, so the hub's event loop keeps serving meanwhile
        entries = await asyncio.to_thread(fq.rank_queue, facts, settings.queue, now) if facts else []
        await s.execute(delete(ft))
        rows = [
            {"order_id": e.order_id, "position": e.position, "level": e.level, "batch": e.batch,
             "criteria_values": e.values, "raw_values": e.raw, "above": e.above, "notes": e.notes,
             "tied_with": e.tied_with, "incomparable_with": e.incomparable_with, "tie_break": e.tie_break,
             "fingerprint": fp, "ranked_at": now}
            for e in entries
        ]
        for i in range(0, len(rows), 1000):
            await s.execute(insert(ft), rows[i:i + 1000])
    return QueueRefresh(True, len(entries), fp, time.perf_counter() - t0)


async def read_queue(s: Reader, *, limit: int = 100, offset: int = 0) -> tuple[list[Any], int]:
    """The ranked queue with each order's summary, by position; and how many orders it holds."""
    ft, o, c = FulfilmentRank.__table__, Order.__table__, Customer.__table__  # type: ignore[attr-defined]
    total = (await s.execute(select(func.count()).select_from(ft))).scalar() or 0
    rows = (await s.execute(
        select(ft, o.c.status, o.c.total_minor, o.c.currency, o.c.promised_date, o.c.created_at, o.c.channel,
               o.c.customer_id, c.c.display_name.label("customer_name"))
        .select_from(ft.join(o, o.c.id == ft.c.order_id).join(c, c.c.id == o.c.customer_id))
        .order_by(ft.c.position).limit(limit).offset(offset)
    )).all()
    return list(rows), int(total)


def criteria_meta(settings: ShopSettings) -> list[dict[str, Any]]:
    """The enabled criteria with labels, for showing a queue's values."""
    specs = {c.key: c for c in fq.CRITERIA}
    return [{"key": c.key, "label": specs[c.key].label, "unit": specs[c.key].unit, "direction": c.direction,
             "weight": c.weight, "scale": list(c.scale)} for c in settings.queue.enabled]
