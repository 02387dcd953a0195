"""The demo shop seeder on SQLite and PostgreSQL: believable, consistent, repeatable, and safe to run twice."""

from __future__ import annotations

import time
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import text

from crm_store.db import Database
from crm_store.demo import DEMO_PASSWORD, DemoSummary, main_summary_line, seed_demo
from crm_store.domain.identity import normalize_phone
from crm_store.domain.validation import LineRequest, OrderRequest
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import orders as orders_repo
from crm_store.repositories import products as products_repo
from crm_store.services import place_order

TODAY = date(2026, 11, 23)  # a Monday
TABLES = ("products", "customers", "contact_points", "orders", "order_lines", "order_events", "interactions",
          "agents", "queues")


async def _rows(db: Database, sql: str) -> list[Any]:
    """All rows of a query."""
    async with db.session() as s:
        return list((await s.execute(text(sql))).all())


async def _scalar(db: Database, sql: str) -> Any:
    """The single value of a query."""
    async with db.session() as s:
        return (await s.execute(text(sql))).scalar_one()


async def _counts(db: Database) -> dict[str, int]:
    """Row count of every seeded table."""
    return {t: int(await _scalar(db, f"SELECT COUNT(*) FROM {t}")) for t in TABLES}


async def _max_ids(db: Database) -> dict[str, int]:
    """Highest id of every seeded table."""
    return {t: int(await _scalar(db, f"SELECT COALESCE(MAX(id), 0) FROM {t}")) for t in TABLES}


async def test_seed_loads_a_consistent_believable_shop(db: Database) -> None:
    summary = await seed_demo(db, seed=7, customers=200, today=TODAY)
    counts = await _counts(db)
    assert not summary.skipped
    assert summary == DemoSummary(
        products=counts["products"], customers=counts["customers"], contact_points=counts["contact_points"],
        orders=counts["orders"], interactions=counts["interactions"], agents=counts["agents"],
        queues=counts["queues"], skipped=False,
    )

    # catalogue: enough products, distinct realistic names, upper-case SKUs, options, today's stock
    async with db.session() as s:
        products = await products_repo.list_products(s, include_inactive=True)
        low = await products_repo.low_stock(s)
    assert len(products) >= 60
    assert len({p.name for p in products}) == len(products)
    assert all(p.sku == p.sku.upper() and p.price_minor > 0 and 1 <= p.lead_time_days <= 7 for p in products)
    assert sum(1 for p in products if p.options) >= 50
    assert all(isinstance(v, list) and v for p in products for v in p.options.values())
    assert len({p.category for p in products}) >= 10
    assert sum(1 for p in products if p.stock == 0) >= 2
    assert 3 <= len(low) <= 10
    assert sum(p.stock for p in products) > 1000
    classic = next(p for p in products if p.sku == "TSH-CLASSIC")
    assert set(classic.options) == {"size", "color"}

    # customers: all of them, each reachable, tiers known, histories
    assert counts["customers"] == 200
    assert await _scalar(
        db,
        "SELECT COUNT(*) FROM customers c"
        " WHERE NOT EXISTS (SELECT 1 FROM contact_points p WHERE p.customer_id = c.id)",
    ) == 0
    assert {r[0] for r in await _rows(db, "SELECT DISTINCT tier FROM customers")} <= {"standard", "silver", "gold"}
    assert 400 <= counts["orders"] <= 800  # about three per customer
    assert await _scalar(db, "SELECT COUNT(*) FROM orders WHERE contact_phone IS NULL AND contact_email IS NULL") == 0

    # money adds up in every order: lines, subtotal, shipping rule, total
    assert await _scalar(
        db, "SELECT COUNT(*) FROM order_lines WHERE line_total_minor <> unit_price_minor * quantity"
    ) == 0
    assert await _scalar(db, """
        SELECT COUNT(*) FROM orders o
        WHERE o.subtotal_minor <> (
                SELECT COALESCE(SUM(l.line_total_minor), -1) FROM order_lines l WHERE l.order_id = o.id)
           OR o.total_minor <> o.subtotal_minor + o.shipping_minor
           OR o.shipping_minor <> CASE WHEN o.subtotal_minor >= 5000 THEN 0 ELSE 495 END
    """) == 0
    assert await _scalar(db, """
        SELECT COUNT(*) FROM order_lines l JOIN products p ON p.id = l.product_id
        WHERE l.sku <> p.sku OR l.unit_price_minor <> p.price_minor
    """) == 0

    # status histories: start with placed, times increase, end in the order's status
    orders = {r[0]: r for r in await _rows(db, "SELECT id, status, created_at, promised_date FROM orders")}
    events: dict[int, list[Any]] = {}
    sql = "SELECT order_id, from_status, to_status, occurred_at FROM order_events ORDER BY order_id, id"
    for r in await _rows(db, sql):
        events.setdefault(r[0], []).append(r)
    assert set(events) == set(orders)
    statuses = set()
    for order_id, history in events.items():
        assert history[0][1] is None and history[0][2] == "placed"
        assert all(a[2] == b[1] for a, b in zip(history, history[1:]))
        times = [_naive(h[3]) for h in history]
        assert times == sorted(times) and len(set(times)) == len(times)
        assert history[-1][2] == orders[order_id][1]
        statuses.add(orders[order_id][1])
    assert {"delivered", "cancelled", "refunded", "shipped"} <= statuses
    assert statuses & {"placed", "confirmed", "picking"}
    assert await _scalar(db, "SELECT COUNT(*) FROM order_events") == await _scalar(
        db, "SELECT COUNT(*) FROM interactions WHERE kind = 'order_event'"
    )

    # timelines across channels, some handled by agents, nothing in the future
    kinds = {r[0] for r in await _rows(db, "SELECT DISTINCT kind FROM interactions")}
    assert {"call", "chat", "email", "web_callback", "page_view", "note", "order_event"} <= kinds
    assert await _scalar(db, "SELECT COUNT(*) FROM interactions WHERE agent_id IS NOT NULL") > 50
    latest = _naive(await _scalar(db, "SELECT MAX(occurred_at) FROM interactions"))
    assert latest < datetime(TODAY.year, TODAY.month, TODAY.day)

    # agents log in with the documented password; queues are there
    async with db.transaction() as s:
        for username in ("admin", "sam", "alice", "bob", "chen", "dana"):
            agent = await agents_repo.authenticate(s, username, DEMO_PASSWORD)
            assert agent is not None and agent.username == username
        assert await agents_repo.authenticate(s, "alice", "wrong-password") is None
        roles = {a.username: a.role for a in await agents_repo.list_agents(s)}
        queues = {q.name: q for q in await agents_repo.list_queues(s)}
    assert roles["admin"] == "admin" and roles["sam"] == "supervisor" and roles["alice"] == "agent"
    assert set(queues) == {"sales", "support", "returns", "german"}
    assert queues["sales"].skills_required == ["orders"]
    assert (queues["sales"].sl_target_seconds, queues["sales"].sl_target_ratio) == (20, 0.8)
    assert queues["returns"].skills_required == ["returns"] and queues["returns"].sl_target_seconds == 60
    assert queues["german"].skills_required == ["german"]
    assert all(q.channels for q in queues.values())


def _naive(value: Any) -> datetime:
    """A timestamp read with raw SQL, as a naive UTC datetime (SQLite gives text, PostgreSQL aware values)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    assert isinstance(value, datetime)
    return value


async def test_every_phone_contact_point_is_valid_e164(db: Database) -> None:
    await seed_demo(db, seed=11, customers=200, today=TODAY)
    sql = "SELECT value FROM contact_points WHERE kind IN ('phone', 'sms', 'whatsapp')"
    phones = [r[0] for r in await _rows(db, sql)]
    assert len(phones) > 100
    for phone in phones:
        assert phone.startswith("+") and normalize_phone(phone) == phone
        assert not (phone.startswith("+1") and phone[5:8] == "555")
    order_phones = [r[0] for r in await _rows(db, "SELECT contact_phone FROM orders WHERE contact_phone IS NOT NULL")]
    assert all(normalize_phone(p) == p for p in order_phones)
    emails = [r[0] for r in await _rows(db, "SELECT value FROM contact_points WHERE kind = 'email'")]
    assert all(e.split("@")[1].endswith(("example.com", "example.org", "example.net")) for e in emails)


async def _snapshot(url: str, seed: int) -> dict[str, list[tuple[Any, ...]]]:
    """Seed a fresh SQLite database and read back what makes the data what it is."""
    db = Database(url)
    await db.create_all()
    try:
        await seed_demo(db, seed=seed, customers=120, today=TODAY)
        queries = {
            "customers": "SELECT id, display_name, tier, created_at FROM customers ORDER BY id",
            "contact_points": "SELECT id, customer_id, kind, value, verified FROM contact_points ORDER BY id",
            "orders": "SELECT id, customer_id, status, total_minor, promised_date, created_at FROM orders ORDER BY id",
            "lines": "SELECT order_id, sku, options, quantity FROM order_lines ORDER BY id",
            "products": "SELECT sku, stock, lead_time_days FROM products ORDER BY id",
            "interactions": "SELECT customer_id, kind, occurred_at, summary, agent_id FROM interactions ORDER BY id",
        }
        return {name: [tuple(r) for r in await _rows(db, sql)] for name, sql in queries.items()}
    finally:
        await db.dispose()


async def test_same_seed_and_day_give_identical_data_and_another_seed_does_not(tmp_path: Path) -> None:
    first = await _snapshot(f"sqlite+aiosqlite:///{tmp_path}/a.db", seed=5)
    second = await _snapshot(f"sqlite+aiosqlite:///{tmp_path}/b.db", seed=5)
    other = await _snapshot(f"sqlite+aiosqlite:///{tmp_path}/c.db", seed=6)
    assert first == second
    assert len(first["customers"]) == 120
    assert first["customers"] != other["customers"]
    assert first["contact_points"] != other["contact_points"]
    assert first["orders"] != other["orders"]


async def test_second_seed_is_skipped_and_writes_nothing(db: Database) -> None:
    summary = await seed_demo(db, seed=3, customers=60, today=TODAY)
    before, ids_before = await _counts(db), await _max_ids(db)
    again = await seed_demo(db, seed=99, customers=500, today=TODAY)
    assert again.skipped
    assert again == DemoSummary(**{**summary.__dict__, "skipped": True})
    assert await _counts(db) == before and await _max_ids(db) == ids_before
    assert "skipped" in main_summary_line(again)
    line = main_summary_line(summary)
    assert "60 customers" in line and DEMO_PASSWORD in line and "\n" not in line


async def test_new_orders_follow_the_seeded_ones_and_overdue_orders_show(db: Database) -> None:
    await seed_demo(db, seed=42, customers=200, today=TODAY)
    ids_before = await _max_ids(db)
    async with db.session() as s:
        overdue = await orders_repo.overdue_orders(s, TODAY)
        product = next(p for p in await products_repo.list_products(s) if p.stock > 5 and p.options)
    assert overdue and all(o.status in ("placed", "confirmed", "picking") for o in overdue)
    assert all(o.promised_date is not None and o.promised_date < TODAY for o in overdue)

    request = OrderRequest(
        lines=[LineRequest(sku=product.sku, quantity=2, options={k: v[0] for k, v in product.options.items()})],
        delivery_address="1 Main St, Springfield",
        phone="+1 415 555 2671",  # a fictional number: never one of the demo customers'
    )
    placed = await place_order(db, request, today=TODAY, idempotency_key="demo-test-1")
    assert not placed.replayed
    assert placed.view.order.id is not None and placed.view.order.id > ids_before["orders"]
    assert placed.view.order.customer_id > ids_before["customers"]  # a new customer, from the new phone
    ids_after = await _max_ids(db)
    for table in ("customers", "contact_points", "orders", "order_lines", "order_events", "interactions"):
        assert ids_after[table] == ids_before[table] + 1, table
    async with db.session() as s:
        assert (await products_repo.get_by_sku(s, product.sku)).stock == product.stock - 2  # type: ignore[union-attr]


async def test_default_seed_of_a_thousand_customers_on_sqlite(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/big.db")
    await db.create_all()
    try:
        started = time.perf_counter()
        summary = await seed_demo(db, today=TODAY)
        elapsed = time.perf_counter() - started
        print(f"\nseed_demo(customers=1000) on SQLite: {elapsed:.2f} s -> {main_summary_line(summary)}")
        assert summary.customers == 1000 and not summary.skipped
        assert summary.orders > 2000 and summary.interactions > summary.orders
    finally:
        await db.dispose()
