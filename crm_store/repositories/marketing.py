"""Customer value (RFM, attrition), product associations, offer rules and the next best offer, in SQL.

The arithmetic is in the pure core (``crm_store.domain.rfm``, ``associations``, ``offers``); this module
reads the order history, writes the results, and assembles the customer's value and offers at contact time.

Orders that count: placed, confirmed, picking, shipped, delivered (not drafts, cancelled, returned or
refunded).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from sqlalchemy import and_, case, delete, func, insert, select, text, update
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_store.db import Database
from crm_store.domain import alerts as alerts_domain
from crm_store.domain import associations as assoc
from crm_store.domain.alerts import DEFAULT_SHIP_LEAD_DAYS
from crm_store.domain import offers as offers_domain
from crm_store.domain import rfm
from crm_store.models import (
    Customer, CustomerValue, EvaluationSettings, OfferEvent, OfferRuleRow, Order, OrderLine, Product, ProductAssociation, utcnow,
)
from crm_store.repositories import pg
from crm_store.repositories.evaluation import SHOP, load_settings
from crm_store.repositories.pg import Reader

COUNTED = ("placed", "confirmed", "picking", "shipped", "delivered")
OUTCOMES = ("shown", "offered", "accepted", "declined")
Progress = Callable[[str], None]


def _epoch_sql(dialect: str) -> str:
    if dialect == "postgresql":
        return "EXTRACT(EPOCH FROM created_at)"
    return "(julianday(created_at) - 2440587.5) * 86400.0"


async def _order_history(db: Database) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(customer ids, created_at as epoch seconds, totals) of every counted order, as numpy arrays."""
    statuses = ", ".join(f"'{s}'" for s in COUNTED)
    sql = f"SELECT customer_id, {_epoch_sql(db.dialect)} AS t, total_minor FROM orders WHERE status IN ({statuses})"
    async with db.session() as s:
        if db.dialect == "postgresql":
            records = await pg.fetch(s, sql)
            n = len(records)
            cust = np.fromiter((r[0] for r in records), dtype=np.int64, count=n)
            when = np.fromiter((float(r[1]) for r in records), dtype=np.float64, count=n)
            amount = np.fromiter((r[2] for r in records), dtype=np.int64, count=n)
            return cust, when, amount
        rows = (await s.execute(text(sql))).all()
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64)
    arr = np.asarray(rows, dtype=np.float64)
    return arr[:, 0].astype(np.int64), arr[:, 1], arr[:, 2].astype(np.int64)


def _score_customers(cust: np.ndarray, when: np.ndarray, amount: np.ndarray, now: datetime,
                     window_days: float) -> tuple[rfm.CustomerValues, list[dict[str, Any]]]:
    """RFM scores and the ``customer_values`` rows (pure; run in a worker thread)."""
    age = (now.timestamp() - when) / 86400.0
    values = rfm.compute(rfm.CustomerOrders.build(cust, age, amount), window_days=window_days)
    rows = []
    for i in range(values.customer.size):
        r, f, m = int(values.r[i]), int(values.f[i]), int(values.m[i])
        rows.append({
            "customer_id": int(values.customer[i]), "recency_days": round(float(values.recency_days[i]), 3),
            "frequency": int(values.frequency[i]), "monetary_minor": int(values.monetary[i]), "r": r, "f": f, "m": m,
            "segment": values.segment[i], "value_score": rfm.value_score(r, f, m),
            "orders_total": int(values.orders_total[i]), "usual_gap_days": round(float(values.usual_gap_days[i]), 2),
            "own_gap": bool(values.own_gap[i]), "attrition": values.attrition[i],
            "attrition_score": round(float(values.attrition_score[i]), 4), "reason": values.reason(i)[:300],
            "computed_at": now,
        })
    return values, rows


@dataclass(frozen=True)
class ValueRun:
    customers: int
    active: int
    segments: dict[str, int]
    tiers_changed: int
    seconds: dict[str, float]


async def recompute_customer_values(db: Database, now: datetime, *, progress: Progress | None = None,
                                    shop: str = SHOP) -> ValueRun:
    """RFM, segments and attrition for every customer with an order; routing tiers from the segments."""
    say = progress or (lambda _m: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    async with db.session() as s:
        settings = await load_settings(s, shop)
    cust, when, amount = await _order_history(db)
    timings["read"] = time.perf_counter() - t0
    say(f"read {len(cust):,} orders in {timings['read']:.1f} s")
    t1 = time.perf_counter()
    # The scoring and the rows are pure CPU work: in a worker thread, so the hub's event loop keeps serving.
    values, rows = await asyncio.to_thread(_score_customers, cust, when, amount, now, settings.rfm_window_days)
    timings["score"] = time.perf_counter() - t1
    say(f"scored {values.customer.size:,} customers in {timings['score']:.2f} s")
    t2 = time.perf_counter()
    cv, c = CustomerValue.__table__, Customer.__table__  # type: ignore[attr-defined]
    changed = 0
    async with db.transaction() as s:
        await s.execute(delete(cv))
        if db.dialect == "postgresql" and rows:
            raw = await pg.driver(s)
            cols = list(rows[0].keys())
            await raw.copy_records_to_table("customer_values", records=[tuple(r[k] for k in cols) for r in rows], columns=cols)
        else:
            for i in range(0, len(rows), 5000):
                await s.execute(insert(cv), rows[i:i + 5000])
                if i and i % 50_000 == 0:
                    say(f"  wrote {i:,} customers")
        # Routing tiers (customers.tier, read by the hub's routing priority) from the segments.
        by_tier: dict[str, list[str]] = {}
        for seg, tier in settings.segment_tiers.items():
            by_tier.setdefault(tier, []).append(seg)
        for tier, segs in by_tier.items():
            res = await s.execute(
                update(c).where(c.c.id.in_(select(cv.c.customer_id).where(cv.c.segment.in_(segs))), c.c.tier != tier)
                .values(tier=tier)
            )
            changed += int(res.rowcount or 0)  # type: ignore[attr-defined]
        new_tier = settings.segment_tiers.get("new", "standard")
        res = await s.execute(
            update(c).where(~c.c.id.in_(select(cv.c.customer_id)), c.c.tier != new_tier, c.c.merged_into_id.is_(None))
            .values(tier=new_tier)
        )
        changed += int(res.rowcount or 0)  # type: ignore[attr-defined]
    timings["write"] = time.perf_counter() - t2
    say(f"wrote {len(rows):,} customer values and {changed:,} tier changes in {timings['write']:.1f} s")
    segments: dict[str, int] = {}
    for seg in values.segment:
        segments[seg] = segments.get(seg, 0) + 1
    return ValueRun(len(rows), int((values.r > 0).sum()), segments, changed, timings)


@dataclass(frozen=True)
class OneUpdate:
    customer_id: int
    segment: str
    tier: str | None  # the routing tier now (None: the customer row is gone)
    scores: tuple[int, int, int]


async def update_customer_value(s: AsyncSession, customer_id: int, now: datetime, *, shop: str = SHOP) -> OneUpdate:
    """Re-score one customer after an order of theirs was placed, delivered, cancelled or returned: their
    orders, and one aggregate over the stored values of the others (how many are worse on R, F and M), not
    the whole recompute. Writes their ``customer_values`` row and routing tier. In the caller's transaction.

    The others are as last scored (the nightly run, or their own last update); the nightly run puts
    everyone back on one footing.
    """
    o, cv, c = Order.__table__, CustomerValue.__table__, Customer.__table__  # type: ignore[attr-defined]
    et = EvaluationSettings.__table__  # type: ignore[attr-defined]
    # the two settings it needs, not load_settings (which reads the criteria too)
    srow = (await s.execute(select(et.c.rfm_window_days, et.c.segment_tiers).where(et.c.shop == shop))).first()
    window = int(srow.rfm_window_days) if srow is not None else rfm.DEFAULT_WINDOW_DAYS
    tiers = {**rfm.DEFAULT_SEGMENT_TIERS, **((srow.segment_tiers or {}) if srow is not None else {})}
    rows = (await s.execute(
        select(o.c.created_at, o.c.total_minor).where(o.c.customer_id == customer_id, o.c.status.in_(COUNTED))
    )).all()
    if not rows:
        await s.execute(delete(cv).where(cv.c.customer_id == customer_id))
        tier = tiers.get("new", "standard")
        await s.execute(update(c).where(c.c.id == customer_id, c.c.tier != tier).values(tier=tier))
        return OneUpdate(customer_id, "new", tier, (0, 0, 0))
    ages = []
    for r in rows:
        at = r.created_at if r.created_at.tzinfo else r.created_at.replace(tzinfo=timezone.utc)
        ages.append((now - at).total_seconds() / 86400.0)
    recency, freq, money, total, oldest = rfm.measure_one(ages, [int(r.total_minor) for r in rows], window_days=window)
    active = cv.c.r > 0
    rec = round(recency, 3)
    agg = (await s.execute(
        select(
            func.coalesce(func.sum(case((active, 1), else_=0)), 0),
            func.coalesce(func.sum(case((and_(active, cv.c.recency_days > rec), 1), else_=0)), 0),
            func.coalesce(func.sum(case((and_(active, cv.c.frequency < freq), 1), else_=0)), 0),
            func.coalesce(func.sum(case((and_(active, cv.c.monetary_minor < money), 1), else_=0)), 0),
            func.max(case((cv.c.own_gap.is_(False), cv.c.usual_gap_days), else_=None)),
        ).where(cv.c.customer_id != customer_id)
    )).one()
    shop_gap = float(agg[4]) if agg[4] is not None else rfm.DEFAULT_SHOP_GAP_DAYS
    v = rfm.score_one(recency, freq, money, total, oldest, rfm.Population(int(agg[0]), int(agg[1]), int(agg[2]), int(agg[3]), shop_gap))
    values = {
        "recency_days": rec, "frequency": v.frequency, "monetary_minor": v.monetary, "r": v.r, "f": v.f, "m": v.m,
        "segment": v.segment, "value_score": rfm.value_score(v.r, v.f, v.m), "orders_total": v.orders_total,
        "usual_gap_days": round(v.usual_gap_days, 2), "own_gap": v.own_gap, "attrition": v.attrition,
        "attrition_score": round(v.attrition_score, 4), "reason": v.reason[:300], "computed_at": now,
    }
    res = await s.execute(update(cv).where(cv.c.customer_id == customer_id).values(**values))
    if not res.rowcount:  # type: ignore[attr-defined]
        await s.execute(insert(cv).values(customer_id=customer_id, **values))
    tier = tiers.get(v.segment, "standard")
    await s.execute(update(c).where(c.c.id == customer_id, c.c.tier != tier).values(tier=tier))
    return OneUpdate(customer_id, v.segment, tier, (v.r, v.f, v.m))


async def update_customer_value_after(db: Database, customer_id: int, now: datetime | None = None) -> OneUpdate | None:
    """:func:`update_customer_value` in its own transaction, after an order use case committed; a failure is
    logged and leaves the order alone (the nightly run scores the customer anyway)."""
    import logging

    try:
        async with db.transaction() as s:
            return await update_customer_value(s, customer_id, now or utcnow())
    except Exception:  # noqa: BLE001 - the order is placed; its customer's score can wait for the night
        logging.getLogger(__name__).exception("could not update the customer's value", extra={"customer_id": customer_id})
        return None


def _mine(order_ids: np.ndarray, product_ids: np.ndarray, min_support: float, min_confidence: float,
          min_lift: float) -> tuple[assoc.Itemsets, list[assoc.Rule]]:
    """Frequent itemsets and their rules (pure; run in a worker thread)."""
    items = assoc.frequent_itemsets(order_ids, product_ids, min_support=min_support, max_len=3)
    return items, assoc.rules(items, min_confidence=min_confidence, min_lift=min_lift)


@dataclass(frozen=True)
class AssociationRun:
    baskets: int
    itemsets: int
    rules: int
    stored: int
    seconds: dict[str, float]
    top: list[assoc.Rule]


async def recompute_associations(db: Database, now: datetime, *, progress: Progress | None = None,
                                 shop: str = SHOP) -> AssociationRun:
    """Frequent itemsets and rules from the baskets of counted orders; the one-to-one rules are stored."""
    say = progress or (lambda _m: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    async with db.session() as s:
        settings = await load_settings(s, shop)
        statuses = ", ".join(f"'{st}'" for st in COUNTED)
        sql = (f"SELECT l.order_id, l.product_id FROM order_lines l JOIN orders o ON o.id = l.order_id "
               f"WHERE o.status IN ({statuses}) ORDER BY l.order_id")
        if db.dialect == "postgresql":
            records = await pg.fetch(s, sql)
            n = len(records)
            order_ids = np.fromiter((r[0] for r in records), dtype=np.int64, count=n)
            product_ids = np.fromiter((r[1] for r in records), dtype=np.int64, count=n)
        else:
            found = (await s.execute(text(sql))).all()
            arr = np.asarray(found, dtype=np.int64).reshape(-1, 2)
            order_ids, product_ids = arr[:, 0], arr[:, 1]
    timings["read"] = time.perf_counter() - t0
    say(f"read {order_ids.size:,} order lines in {timings['read']:.1f} s")
    t1 = time.perf_counter()
    items, found_rules = await asyncio.to_thread(_mine, order_ids, product_ids, settings.min_support,
                                                 settings.min_confidence, settings.min_lift)
    timings["mine"] = time.perf_counter() - t1
    pairs = [r for r in found_rules if len(r.antecedent) == 1]
    say(f"{items.baskets:,} baskets: {len(items.counts):,} frequent itemsets, {len(found_rules):,} rules "
        f"({len(pairs):,} one-to-one) in {timings['mine']:.2f} s")
    t2 = time.perf_counter()
    pa = ProductAssociation.__table__  # type: ignore[attr-defined]
    async with db.transaction() as s:
        await s.execute(delete(pa))
        rows = [{"antecedent_id": r.antecedent[0], "consequent_id": r.consequent, "count": r.count,
                 "support": r.support, "confidence": r.confidence, "lift": r.lift, "computed_at": now} for r in pairs]
        for i in range(0, len(rows), 2000):
            await s.execute(insert(pa), rows[i:i + 2000])
    timings["write"] = time.perf_counter() - t2
    return AssociationRun(items.baskets, len(items.counts), len(found_rules), len(pairs), timings, found_rules[:10])


async def top_associations(s: Reader, limit: int = 10) -> list[Any]:
    """The strongest stored rules with product names, best first (lift, confidence)."""
    pa, p1, p2 = ProductAssociation.__table__, Product.__table__.alias("a"), Product.__table__.alias("b")  # type: ignore[attr-defined]
    return list((await s.execute(
        select(pa, p1.c.sku.label("a_sku"), p1.c.name.label("a_name"), p2.c.sku.label("b_sku"), p2.c.name.label("b_name"))
        .select_from(pa.join(p1, p1.c.id == pa.c.antecedent_id).join(p2, p2.c.id == pa.c.consequent_id))
        .order_by(pa.c.lift.desc(), pa.c.confidence.desc(), pa.c.id).limit(limit)
    )).all())


# --- offer rules --------------------------------------------------------------------------------------


async def known_skus(s: Reader) -> frozenset[str]:
    p = Product.__table__  # type: ignore[attr-defined]
    return frozenset(r[0] for r in (await s.execute(select(p.c.sku))).all())


def _rule_from_row(row: Any) -> offers_domain.OfferRule:
    return offers_domain.OfferRule(
        name=row.name, priority=row.priority, conditions=dict(row.conditions or {}), offer=row.offer,
        script=row.script, offer_sku=row.offer_sku, active=row.active, valid_from=row.valid_from,
        valid_until=row.valid_until, id=row.id,
    )


def rule_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id, "name": row.name, "priority": row.priority, "active": row.active,
        "valid_from": row.valid_from.isoformat() if row.valid_from else None,
        "valid_until": row.valid_until.isoformat() if row.valid_until else None,
        "conditions": dict(row.conditions or {}), "offer_sku": row.offer_sku, "offer": row.offer, "script": row.script,
        "updated_by": row.updated_by,
    }


async def list_rules(s: Reader) -> list[Any]:
    t = OfferRuleRow.__table__  # type: ignore[attr-defined]
    return list((await s.execute(select(t).order_by(t.c.priority.desc(), t.c.name, t.c.id))).all())


async def save_rule(s: AsyncSession, data: Mapping[str, Any], *, actor: str, rule_id: int | None = None) -> Any:
    """Validate and store a rule (new, or replacing ``rule_id``); :class:`offers.RuleInvalid` when broken.

    :raises LookupError: ``rule_id`` names no rule.
    """
    rule = offers_domain.validate_rule(data, await known_skus(s))
    t = OfferRuleRow.__table__  # type: ignore[attr-defined]
    values = {"name": rule.name, "priority": rule.priority, "active": rule.active, "valid_from": rule.valid_from,
              "valid_until": rule.valid_until, "conditions": dict(rule.conditions), "offer_sku": rule.offer_sku,
              "offer": rule.offer, "script": rule.script, "updated_by": actor[:120], "updated_at": utcnow()}
    if rule_id is None:
        new_id = (await s.execute(insert(t).values(created_at=values["updated_at"], **values).returning(t.c.id))).scalar_one()
    else:
        res = await s.execute(update(t).where(t.c.id == rule_id).values(**values))
        if res.rowcount != 1:  # type: ignore[attr-defined]
            raise LookupError(f"no offer rule {rule_id}")
        new_id = rule_id
    return (await s.execute(select(t).where(t.c.id == new_id))).one()


async def delete_rule(s: AsyncSession, rule_id: int) -> bool:
    t, e = OfferRuleRow.__table__, OfferEvent.__table__  # type: ignore[attr-defined]
    await s.execute(update(e).where(e.c.rule_id == rule_id).values(rule_id=None))
    res = await s.execute(delete(t).where(t.c.id == rule_id))
    return bool(res.rowcount)  # type: ignore[attr-defined]


DEMO_RULES: tuple[dict[str, Any], ...] = (
    {"name": "Win back a good customer", "priority": 100,
     "conditions": {"segments": ["at_risk", "hibernating"], "attrition": ["medium", "high"]},
     "offer": "10 % off the next order, this week",
     "script": "It has been a while since your last order. As a thank-you for shopping with us before, "
               "I can take 10 % off your next order if you place it this week."},
    {"name": "Thank a champion", "priority": 80, "conditions": {"segments": ["champions"]},
     "offer": "Free express shipping on this order",
     "script": "You are one of our best customers: I will upgrade this order to express shipping, free."},
    {"name": "Second order for a newcomer", "priority": 50, "conditions": {"segments": ["promising"], "days_since_last_order_max": 60},
     "offer": "Free shipping on the second order",
     "script": "Glad you liked your first order. Your second one ships free."},
)


async def seed_demo_rules(s: AsyncSession) -> int:
    """The demo shop's rules, when there are none (idempotent)."""
    t = OfferRuleRow.__table__  # type: ignore[attr-defined]
    if (await s.execute(select(func.count()).select_from(t))).scalar():
        return 0
    for data in DEMO_RULES:
        await save_rule(s, data, actor="system:demo")
    return len(DEMO_RULES)


# --- the customer's value and offers at contact time ------------------------------------------------------


async def record_offer_event(s: AsyncSession, customer_id: int, outcome: str, *, source: str, sku: str | None,
                             title: str, rule_id: int | None, actor: str, agent_id: int | None = None,
                             conversation_id: int | None = None) -> Any:
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
    if source not in ("rule", "association"):
        raise ValueError("source must be rule or association")
    e = OfferEvent.__table__  # type: ignore[attr-defined]
    new_id = (await s.execute(insert(e).values(
        customer_id=customer_id, outcome=outcome, source=source, sku=sku, title=title[:200], rule_id=rule_id,
        actor=actor[:120], agent_id=agent_id, conversation_id=conversation_id, created_at=utcnow(),
    ).returning(e.c.id))).scalar_one()
    return (await s.execute(select(e).where(e.c.id == new_id))).one()


@dataclass
class ValueFacts:
    """What the customer's panel is assembled from (one statement, :func:`_value_facts`; or the separate
    portable statements, :func:`_value_facts_separately`, kept as the reference the tests compare with)."""

    value: Any  # their customer_values row, or None
    latest: Any  # (id, created_at) of their latest counted order, or None
    bought: list[Any]  # (product_id, order_id, sku, name) of every line of their counted orders
    declined: frozenset[str]  # SKUs they declined
    pairs: list[tuple[int, int, int, float, float, float]]  # association rules from what they bought
    stock: list[Any]  # (id, sku, name, stock, active) of the rules' consequents
    rules: list[Any]  # the active offer rules
    lead_days: int  # the shop's shipping lead time
    open_orders: list[Any]  # (id, status, promised_date) of their open orders with a promised date


_COUNTED_SQL = ", ".join(f"'{st}'" for st in COUNTED)
_OPEN_SQL = "'placed', 'confirmed', 'picking'"
_FACTS_SQL = """
SELECT {obj}(
 'value', {j}((SELECT {obj}('segment', segment, 'usual_gap_days', {f}(usual_gap_days), 'own_gap', own_gap,
     'recency_days', {f}(recency_days), 'r', r, 'f', f, 'm', m, 'value_score', {f}(value_score), 'frequency', frequency,
     'monetary_minor', monetary_minor, 'orders_total', orders_total, 'computed_at', computed_at)
   FROM customer_values WHERE customer_id = {cid})),
 'latest', {j}((SELECT {obj}('id', id, 'created_at', created_at) FROM orders
   WHERE customer_id = {cid} AND status IN ({counted}) ORDER BY created_at DESC, id DESC LIMIT 1)),
 'bought', {j}((SELECT {agg}({obj}('product_id', l.product_id, 'order_id', l.order_id, 'sku', p.sku, 'name', p.name))
   FROM order_lines l JOIN orders o ON o.id = l.order_id JOIN products p ON p.id = l.product_id
   WHERE o.customer_id = {cid} AND o.status IN ({counted}))),
 'declined', {j}((SELECT {agg}(sku) FROM offer_events
   WHERE customer_id = {cid} AND outcome = 'declined' AND sku IS NOT NULL)),
 'pairs', {j}((SELECT {agg}({obj}('a', pa.antecedent_id, 'c', pa.consequent_id, 'n', pa.count, 's', {f}(pa.support),
     'conf', {f}(pa.confidence), 'lift', {f}(pa.lift), 'sku', p.sku, 'name', p.name, 'stock', p.stock, 'active', p.active))
   FROM product_associations pa JOIN products p ON p.id = pa.consequent_id
   WHERE pa.antecedent_id IN (SELECT l.product_id FROM order_lines l JOIN orders o ON o.id = l.order_id
                              WHERE o.customer_id = {cid} AND o.status IN ({counted})))),
 'rules', {j}((SELECT {agg}({obj}('id', id, 'name', name, 'priority', priority, 'conditions', {j}(conditions),
     'offer', offer, 'script', script, 'offer_sku', offer_sku, 'active', active, 'valid_from', valid_from,
     'valid_until', valid_until)) FROM offer_rules WHERE active = {true})),
 'lead', (SELECT ship_lead_days FROM evaluation_settings WHERE shop = '{shop}'),
 'open', {j}((SELECT {agg}({obj}('id', id, 'status', status, 'promised_date', promised_date)) FROM orders
   WHERE customer_id = {cid} AND status IN ({open}) AND promised_date IS NOT NULL))
)
"""
_FACTS = {
    # PostgreSQL: json_build_object / json_agg, sent to asyncpg directly (one round trip, no SQLAlchemy layer)
    "postgresql": _FACTS_SQL.format(obj="json_build_object", agg="json_agg", j="", f="", cid="$1", counted=_COUNTED_SQL,
                                    open=_OPEN_SQL, true="TRUE", shop=SHOP),
    # SQLite: json_object / json_group_array; json() keeps a nested value JSON across the subquery boundary;
    # reals as text with 17 digits (its JSON writes 15, which can round a lift of 7.05 to 7.0499999999999998)
    "sqlite": _FACTS_SQL.replace("{f}(", "printf('%!.17g', ").format(obj="json_object", agg="json_group_array", j="json", cid=":cid", counted=_COUNTED_SQL,
                                open=_OPEN_SQL, true="1", shop=SHOP),
}


def _when(v: Any) -> datetime | None:
    if v is None:
        return None
    t = v if isinstance(v, datetime) else datetime.fromisoformat(str(v))
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def _day(v: Any) -> date | None:
    return None if v is None else (v if isinstance(v, date) else date.fromisoformat(str(v)[:10]))


async def _value_facts(s: Reader, customer_id: int) -> ValueFacts:
    """Everything the panel needs about one customer, in one statement (PostgreSQL and SQLite)."""
    import json
    from types import SimpleNamespace as NS

    if pg.is_postgres(s):
        raw = (await pg.fetchrow(s, _FACTS["postgresql"], customer_id))[0]
    else:
        raw = (await s.execute(text(_FACTS["sqlite"]), {"cid": customer_id})).scalar()
    d = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
    v = d.get("value")
    value = None
    if v:
        v["own_gap"], v["computed_at"] = bool(v["own_gap"]), _when(v["computed_at"])
        for k in ("usual_gap_days", "recency_days", "value_score"):
            v[k] = float(v[k])
        value = NS(**v)
    lt = d.get("latest")
    latest = NS(id=lt["id"], created_at=_when(lt["created_at"])) if lt else None
    pairs, stock, seen = [], [], set()
    for x in d.get("pairs") or ():
        pairs.append((int(x["a"]), int(x["c"]), int(x["n"]), float(x["s"]), float(x["conf"]), float(x["lift"])))
        if x["c"] not in seen:
            seen.add(x["c"])
            stock.append(NS(id=x["c"], sku=x["sku"], name=x["name"], stock=x["stock"], active=bool(x["active"])))
    rules = [NS(**{**r, "active": bool(r["active"]), "valid_from": _day(r["valid_from"]), "valid_until": _day(r["valid_until"]),
                   "conditions": r["conditions"] if isinstance(r["conditions"], dict) else json.loads(r["conditions"] or "{}")})
             for r in d.get("rules") or ()]
    lead = d.get("lead")
    return ValueFacts(
        value=value, latest=latest, bought=[NS(**b) for b in d.get("bought") or ()],
        declined=frozenset(d.get("declined") or ()), pairs=pairs, stock=stock, rules=rules,
        lead_days=int(lead) if lead is not None else DEFAULT_SHIP_LEAD_DAYS,
        open_orders=[NS(id=o["id"], status=o["status"], promised_date=_day(o["promised_date"])) for o in d.get("open") or ()],
    )


async def _value_facts_separately(s: Reader, customer_id: int) -> ValueFacts:
    """The same facts as :func:`_value_facts`, one portable statement each (the reference for the tests)."""
    from crm_store.repositories import alerts as alerts_repo

    cv, o, lt, p = CustomerValue.__table__, Order.__table__, OrderLine.__table__, Product.__table__  # type: ignore[attr-defined]
    pa, rt, e = ProductAssociation.__table__, OfferRuleRow.__table__, OfferEvent.__table__  # type: ignore[attr-defined]
    value = (await s.execute(select(cv).where(cv.c.customer_id == customer_id))).first()
    latest = (await s.execute(
        select(o.c.id, o.c.created_at).where(o.c.customer_id == customer_id, o.c.status.in_(COUNTED))
        .order_by(o.c.created_at.desc(), o.c.id.desc()).limit(1)
    )).first()
    bought = list((await s.execute(
        select(lt.c.product_id, lt.c.order_id, p.c.sku, p.c.name).select_from(lt.join(o, o.c.id == lt.c.order_id).join(p, p.c.id == lt.c.product_id))
        .where(o.c.customer_id == customer_id, o.c.status.in_(COUNTED))
    )).all())
    declined = frozenset(r[0] for r in (await s.execute(
        select(e.c.sku).where(e.c.customer_id == customer_id, e.c.outcome == "declined", e.c.sku.is_not(None))
    )).all())
    bought_ids = sorted({int(r.product_id) for r in bought})
    pairs: list[tuple[int, int, int, float, float, float]] = []
    stock: list[Any] = []
    if bought_ids:
        # by position: a Row's ``.count`` is tuple.count, not the column
        pairs = [(int(a), int(c), int(n), float(sup), float(conf), float(lift)) for a, c, n, sup, conf, lift in (await s.execute(
            select(pa.c.antecedent_id, pa.c.consequent_id, pa.c.count, pa.c.support, pa.c.confidence, pa.c.lift)
            .where(pa.c.antecedent_id.in_(bought_ids))
        )).all()]
        candidates = sorted({c for _a, c, *_r in pairs})
        if candidates:
            stock = list((await s.execute(select(p.c.id, p.c.sku, p.c.name, p.c.stock, p.c.active).where(p.c.id.in_(candidates)))).all())
    rules = list((await s.execute(select(rt).where(rt.c.active.is_(True)))).all())
    lead = await alerts_repo.ship_lead_days(s)
    open_orders = list((await s.execute(
        select(o.c.id, o.c.status, o.c.promised_date).where(
            o.c.customer_id == customer_id, o.c.status.in_(("placed", "confirmed", "picking")), o.c.promised_date.is_not(None))
    )).all())
    return ValueFacts(value, latest, bought, declined, pairs, stock, rules, lead, open_orders)


async def customer_value_view(s: Reader, customer_id: int, now: datetime, *, channel: str | None = None,
                              discussing_sku: str | None = None, separately: bool = False) -> dict[str, Any]:
    """Who this customer is worth, what they are likely to want, what to say: the console's panel.

    One statement reads everything (:func:`_value_facts`); ``separately`` reads it with one portable
    statement per part instead (the tests check that both give the same panel).
    """
    facts = await (_value_facts_separately(s, customer_id) if separately else _value_facts(s, customer_id))
    value, latest, bought = facts.value, facts.latest, facts.bought
    days_since: int | None = None
    if latest is not None:
        at = latest.created_at if latest.created_at.tzinfo else latest.created_at.replace(tzinfo=timezone.utc)
        days_since = max(0, int((now - at).total_seconds() // 86400))
    if value is not None:
        segment, usual, own = value.segment, float(value.usual_gap_days), bool(value.own_gap)
        ratio = (days_since if days_since is not None else value.recency_days) / max(usual, 1.0)
        attrition = rfm.attrition_level(ratio)
        reason = rfm.attrition_reason(float(days_since if days_since is not None else value.recency_days), usual, own)
        scores = {"r": value.r, "f": value.f, "m": value.m}
        explanation = (f"{segment.replace('_', ' ').capitalize()}: recency {value.r}/5, frequency {value.f}/5, "
                       f"monetary {value.m}/5 — {rfm.segment_meaning(segment)}" if value.r else
                       f"{segment.replace('_', ' ').capitalize()}: no order in the last window — {rfm.segment_meaning(segment)}")
        value_json: dict[str, Any] = {
            "segment": segment, "scores": scores, "value_score": round(float(value.value_score), 2), "frequency": value.frequency,
            "monetary_minor": value.monetary_minor, "orders_total": value.orders_total,
            "attrition": attrition, "attrition_reason": reason, "explanation": explanation,
            "computed_at": value.computed_at.isoformat() if value.computed_at else None,
        }
    else:
        segment, attrition = "new", "low"
        value_json = {"segment": segment, "scores": None, "value_score": 0.0, "attrition": attrition,
                      "attrition_reason": "no orders yet" if latest is None else "not scored yet (the nightly job scores new customers)",
                      "explanation": "New: no scored orders yet"}

    bought_ids = {int(r.product_id) for r in bought}
    last_ids = {int(r.product_id) for r in bought if latest is not None and r.order_id == latest.id}
    names = {int(r.product_id): (r.sku, r.name) for r in bought}

    suggestions: list[offers_domain.Offer] = []
    if bought_ids:
        pair_rules = [assoc.Rule((a,), c, n, sup, conf, lift) for a, c, n, sup, conf, lift in facts.pairs]
        in_stock = {int(r.id): bool(r.active and r.stock > 0) for r in facts.stock}
        prod = {int(r.id): (r.sku, r.name) for r in facts.stock}
        for sug in assoc.propensity(bought_ids, pair_rules, exclude=last_ids, in_stock=in_stock, limit=5):
            sku, name = prod[sug.product_id]
            _bsku, bname = names[sug.because]
            suggestions.append(offers_domain.Offer(
                "association", f"Suggest {name}", assoc.describe(sug.confidence, sug.lift, bname, name),
                f"Customers who bought the {bname} often add the {name}. Would you like me to add one?",
                sku, None, sug.score, {"confidence": round(sug.confidence, 4), "lift": round(sug.lift, 3),
                                       "support": round(sug.support, 5), "because_sku": _bsku},
            ))
    ctx = offers_domain.ContactContext(
        today=now.date(), segment=segment, attrition=attrition, days_since_last_order=days_since,
        bought_skus=frozenset(sku for sku, _n in names.values()), discussing_sku=discussing_sku, channel=channel,
    )
    chosen = offers_domain.next_best_offers([_rule_from_row(r) for r in facts.rules], ctx, suggestions,
                                            declined_skus=facts.declined)
    return {
        "customer_id": customer_id, "value": value_json, "last_order_days": days_since,
        "offers": [{"source": x.source, "title": x.title, "why": x.why, "script": x.script, "sku": x.sku,
                    "rule_id": x.rule_id, **({"measures": x.extra} if x.extra else {})} for x in chosen],
        "alerts": _order_alerts(facts.open_orders, customer_id, now.date(), facts.lead_days),
    }


def _order_alerts(rows: Sequence[Any], customer_id: int, today: date, lead_days: int) -> list[dict[str, Any]]:
    """The alerts on a customer's open orders (``crm_store.domain.alerts``), overdue first."""
    found = [a for a in (alerts_domain.order_alert(alerts_domain.OpenOrder(int(r.id), customer_id, r.status, r.promised_date), today, lead_days)
                         for r in rows) if a is not None]
    order = {"overdue": 0, "at_risk": 1}
    return [{"kind": a.kind, "order_id": a.order_id, "severity": a.severity, "text": a.message}
            for a in sorted(found, key=lambda a: (order.get(a.kind, 2), a.order_id or 0))]


async def customer_alerts(s: Reader, customer_id: int, today: date, lead_days: int | None = None) -> list[dict[str, Any]]:
    """The customer's open orders that are overdue or at risk of missing the promised date (the same rule as
    the supervisor's alerts, ``crm_store.domain.alerts``, with the shop's shipping lead time), evaluated live."""
    from crm_store.repositories import alerts as alerts_repo

    o = Order.__table__  # type: ignore[attr-defined]
    lead = lead_days if lead_days is not None else await alerts_repo.ship_lead_days(s)
    rows = (await s.execute(
        select(o.c.id, o.c.status, o.c.promised_date).where(
            o.c.customer_id == customer_id, o.c.status.in_(("placed", "confirmed", "picking")), o.c.promised_date.is_not(None))
    )).all()
    return _order_alerts(rows, customer_id, today, lead)


ATTRIBUTION_DAYS = 14
"""An order counts as an accepted offer's result when the customer places it within this many days after
accepting, and it holds the offered product (any order, for an offer without a product)."""


async def offer_stats(s: Reader) -> list[dict[str, Any]]:
    """Offers shown, offered, accepted and declined per rule (or association) and per agent, and the orders
    the accepted ones led to (:data:`ATTRIBUTION_DAYS`; each order once per rule and agent)."""
    e, rt = OfferEvent.__table__, OfferRuleRow.__table__  # type: ignore[attr-defined]
    o, lt = Order.__table__, OrderLine.__table__  # type: ignore[attr-defined]
    rows = (await s.execute(
        select(e.c.source, e.c.rule_id, rt.c.name, e.c.actor, e.c.outcome, func.count())
        .select_from(e.outerjoin(rt, rt.c.id == e.c.rule_id))
        .group_by(e.c.source, e.c.rule_id, rt.c.name, e.c.actor, e.c.outcome)
    )).all()
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for source, rule_id, name, actor, outcome, n in rows:
        k = (source, rule_id, name, actor)
        item = out.setdefault(k, {"source": source, "rule_id": rule_id, "rule": name, "actor": actor,
                                  **{x: 0 for x in OUTCOMES}, "orders": 0, "orders_value_minor": 0, "currency": None})
        item[outcome] = int(n)
    accepted = (await s.execute(
        select(e.c.source, e.c.rule_id, rt.c.name, e.c.actor, e.c.customer_id, e.c.sku, e.c.created_at)
        .select_from(e.outerjoin(rt, rt.c.id == e.c.rule_id)).where(e.c.outcome == "accepted")
    )).all()
    if accepted:
        def utc(t: datetime) -> datetime:
            return t if t.tzinfo else t.replace(tzinfo=timezone.utc)

        since = min(utc(a.created_at) for a in accepted)
        customers = sorted({int(a.customer_id) for a in accepted})
        orders = (await s.execute(
            select(o.c.id, o.c.customer_id, o.c.created_at, o.c.total_minor, o.c.currency)
            .where(o.c.customer_id.in_(customers), o.c.created_at >= since, o.c.status.in_(COUNTED))
        )).all()
        skus: dict[int, set[str]] = {}
        if orders:
            for oid, sku in (await s.execute(select(lt.c.order_id, lt.c.sku).where(lt.c.order_id.in_([r.id for r in orders])))).all():
                skus.setdefault(int(oid), set()).add(sku)
        by_customer: dict[int, list[Any]] = {}
        for r in orders:
            by_customer.setdefault(int(r.customer_id), []).append(r)
        window = ATTRIBUTION_DAYS * 86400.0
        seen: dict[tuple[Any, ...], set[int]] = {}
        for a in accepted:
            k = (a.source, a.rule_id, a.name, a.actor)
            at = utc(a.created_at)
            for r in by_customer.get(int(a.customer_id), []):
                delta = (utc(r.created_at) - at).total_seconds()
                if 0 <= delta <= window and (a.sku is None or a.sku in skus.get(int(r.id), set())):
                    if int(r.id) in seen.setdefault(k, set()):
                        continue
                    seen[k].add(int(r.id))
                    item = out[k]
                    item["orders"] += 1
                    item["orders_value_minor"] += int(r.total_minor)
                    item["currency"] = item["currency"] or r.currency
    return sorted(out.values(), key=lambda d: (d["source"], d["rule"] or "", d["actor"]))


def progress_printer(stream: Any) -> Progress:
    def say(message: str) -> None:
        print(message, file=stream, flush=True)
    return say
