"""Issue 18: a customer's RFM value re-scored alone when an order of theirs is placed or delivered (SQLite and
PostgreSQL): the same scores as the full computation at the same instant, the routing tier follows, and the
order use cases call it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from crm_store.db import Database
from crm_store.demo import seed_demo
from crm_store.domain.orders import OrderStatus
from crm_store.domain.validation import LineRequest, OrderRequest
from crm_store.models import Customer, CustomerValue, Product
from crm_store.repositories import marketing
from crm_store.services import place_order, transition_order

NOW = datetime(2026, 11, 23, 10, tzinfo=timezone.utc)


async def _value(db: Database, cid: int) -> CustomerValue | None:
    async with db.session() as s:
        return (await s.execute(select(CustomerValue).where(CustomerValue.customer_id == cid))).scalar_one_or_none()  # type: ignore[arg-type]


async def test_one_customer_is_scored_like_the_full_run(db: Database) -> None:
    await seed_demo(db, customers=150, today=NOW.date())
    await marketing.recompute_customer_values(db, NOW)
    async with db.session() as s:
        ids = [r[0] for r in (await s.execute(select(CustomerValue.customer_id).order_by(CustomerValue.customer_id))).all()]  # type: ignore[call-overload]
    full = {cid: await _value(db, cid) for cid in ids[:40]}
    for cid, before in full.items():
        assert before is not None
        async with db.transaction() as s:
            one = await marketing.update_customer_value(s, cid, NOW)
        after = await _value(db, cid)
        assert after is not None
        assert (after.r, after.f, after.m, after.segment) == (before.r, before.f, before.m, before.segment), cid
        assert (after.frequency, after.monetary_minor, after.orders_total, after.attrition) == (
            before.frequency, before.monetary_minor, before.orders_total, before.attrition)
        assert one.segment == before.segment and one.scores == (before.r, before.f, before.m)


async def test_placing_and_delivering_rescore_the_customer(db: Database) -> None:
    await seed_demo(db, customers=150, today=NOW.date())
    await marketing.recompute_customer_values(db, NOW - timedelta(days=1))
    async with db.session() as s:
        row = (await s.execute(select(CustomerValue).where(CustomerValue.segment.in_(["at_risk", "lost", "hibernating"]))  # type: ignore[attr-defined]
                               .order_by(CustomerValue.customer_id).limit(1))).scalar_one()
        cid = row.customer_id
        sku = next(p.sku for p in (await s.execute(select(Product).order_by(Product.id))).scalars()  # type: ignore[arg-type]
                   if p.active and p.stock > 5 and not p.options)
        before_at = row.computed_at
    placed = await place_order(db, OrderRequest(lines=(LineRequest(sku=sku, quantity=1),), delivery_address="1 Main St, Springfield",
                                                  email="rescore.test@example.com"),
                               today=NOW.date(), customer_id=cid, actor="test")
    after = await _value(db, cid)
    assert after is not None and after.computed_at > before_at
    assert after.r == 5 and after.recency_days < 0.1  # just ordered
    assert after.segment in ("champions", "loyal", "promising") and after.segment != row.segment
    async with db.session() as s:
        tier = (await s.execute(select(Customer.tier).where(Customer.id == cid))).scalar_one()  # type: ignore[arg-type]
    assert tier == {"champions": "gold", "loyal": "silver"}.get(after.segment, "standard")
    # cancelled: the order no longer counts, the customer falls back
    assert placed.view.order.id is not None
    await transition_order(db, placed.view.order.id, OrderStatus.CANCELLED, actor="test")
    again = await _value(db, cid)
    assert again is not None and again.frequency == after.frequency - 1 and again.r < 5


async def test_an_accepted_offer_counts_the_order_it_led_to(db: Database) -> None:
    await seed_demo(db, customers=60, today=NOW.date())
    async with db.session() as s:
        products = [p for p in (await s.execute(select(Product).order_by(Product.id))).scalars()  # type: ignore[arg-type]
                    if p.active and p.stock > 5 and not p.options][:2]
        cid = (await s.execute(select(Customer.id).order_by(Customer.id).limit(1))).scalar_one()  # type: ignore[arg-type]
    offered, other = products
    async with db.transaction() as s:
        await marketing.record_offer_event(s, cid, "accepted", source="association", sku=offered.sku, title="t",
                                           rule_id=None, actor="agent:alice")
        await marketing.record_offer_event(s, cid, "declined", source="association", sku=other.sku, title="t",
                                           rule_id=None, actor="agent:bob")
    req = OrderRequest(lines=(LineRequest(sku=offered.sku, quantity=1),), delivery_address="1 Main St, Springfield",
                       email="offer.result@example.com")
    placed = await place_order(db, req, today=NOW.date(), customer_id=cid, actor="test")
    # an order without the offered product is not the offer's result
    await place_order(db, OrderRequest(lines=(LineRequest(sku=other.sku, quantity=1),), delivery_address="1 Main St, Springfield",
                                       email="offer.result@example.com"), today=NOW.date(), customer_id=cid, actor="test")
    async with db.session() as s:
        stats = await marketing.offer_stats(s)
    alice = next(x for x in stats if x["actor"] == "agent:alice")
    bob = next(x for x in stats if x["actor"] == "agent:bob")
    assert alice["accepted"] == 1 and alice["orders"] == 1
    assert alice["orders_value_minor"] == placed.view.order.total_minor and alice["currency"] == placed.view.order.currency
    assert bob["declined"] == 1 and bob["orders"] == 0
