"""Speed of issue 18's pure core and of the next-best-offer lookup.

1. RFM + attrition (``crm_store.domain.rfm.compute``) on 100,000 customers and 1,000,000 orders (synthetic
   arrays, seed 7: orders per customer geometric, ages uniform over two years, totals log-normal).
2. Apriori itemsets and rules (``crm_store.domain.associations``) on the same 1,000,000 orders' baskets
   (1-4 lines from 500 products, popularity Zipf-like, a few planted pairs).
3. The fulfilment queue (``crm_store.domain.fulfilment.rank_queue``): 500 and 2,000 open orders, and
   5,000 (three batches by due date).
4. The next-best-offer lookup (``crm_store.repositories.marketing.customer_value_view``) on the demo shop
   (1,000 customers) in SQLite, after scoring, 1,000 lookups one at a time: p50 / p99 against 20 ms.

It reads no database for 1-3 (the SQL read of 1M rows is measured by ``contact-center customer-value``
on a real database, which prints each step's time). Prints a table, PASS/MISS and a JSON line; exits 0.

    .venv/bin/python bench/customer_value.py
    .venv/bin/python bench/customer_value.py --customers 10000 --orders 100000 --lookups 200
"""

from __future__ import annotations

import argparse
import os
import asyncio
import json
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crm_store.domain import associations as assoc  # noqa: E402
from crm_store.domain import fulfilment as fq  # noqa: E402
from crm_store.domain import rfm  # noqa: E402

NOW = datetime(2026, 11, 23, 10, tzinfo=timezone.utc)


def bench_rfm(customers: int, orders: int, rng: np.random.Generator) -> dict[str, float]:
    cust = rng.integers(1, customers + 1, orders)
    age = rng.uniform(0, 730, orders)
    amount = np.exp(rng.normal(8.3, 0.7, orders)).astype(np.int64)
    t0 = time.perf_counter()
    v = rfm.compute(rfm.CustomerOrders.build(cust, age, amount))
    dt = time.perf_counter() - t0
    return {"seconds": dt, "customers": float(v.customer.size)}


def bench_itemsets(orders: int, products: int, rng: np.random.Generator) -> dict[str, float]:
    sizes = rng.choice([1, 2, 3, 4], orders, p=[0.45, 0.3, 0.17, 0.08])
    weights = 1.0 / np.arange(1, products + 1) ** 0.8
    weights /= weights.sum()
    order_ids = np.repeat(np.arange(orders), sizes)
    product_ids = rng.choice(products, order_ids.size, p=weights)
    # planted pairs: product k's buyers often add product k + 250
    plant = (product_ids < 20) & (rng.random(order_ids.size) < 0.4)
    order_ids = np.concatenate([order_ids, order_ids[plant]])
    product_ids = np.concatenate([product_ids, product_ids[plant] + 250])
    t0 = time.perf_counter()
    items = assoc.frequent_itemsets(order_ids, product_ids, min_support=0.0005, max_len=3)
    rules = assoc.rules(items, min_confidence=0.05, min_lift=1.2)
    dt = time.perf_counter() - t0
    return {"seconds": dt, "lines": float(order_ids.size), "itemsets": float(len(items.counts)), "rules": float(len(rules))}


def bench_queue(n: int, rng: np.random.Generator, repeat: int = 3) -> dict[str, float]:
    facts = [
        fq.OrderFacts(i, float(rng.uniform(0, 100)), int(rng.integers(500, 40000)),
                      NOW.date() + timedelta(days=int(rng.integers(-3, 12))), NOW - timedelta(hours=float(rng.uniform(0, 100))),
                      int(k := rng.integers(1, 4)), int(rng.integers(0, k + 1)), "web")
        for i in range(1, n + 1)
    ]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        entries = fq.rank_queue(facts, fq.default_settings(), NOW)
        times.append(time.perf_counter() - t0)
    return {"median": float(np.median(times)), "worst": max(times), "batches": float(max(e.batch for e in entries)),
            "levels": float(max(e.level for e in entries))}


async def bench_lookup(lookups: int, database_url: str | None = None, separately: bool = False) -> dict[str, float]:
    """``database_url``: an empty database to fill (PostgreSQL, say); default a temporary SQLite file."""
    from crm_store.db import Database
    from crm_store.demo import seed_demo
    from crm_store.repositories import marketing

    with tempfile.TemporaryDirectory() as tmp:
        db = Database(database_url or f"sqlite+aiosqlite:///{tmp}/b.db")
        await db.create_all()
        await seed_demo(db, today=NOW.date())
        await marketing.recompute_customer_values(db, NOW)
        await marketing.recompute_associations(db, NOW)
        async with db.transaction() as s:
            await marketing.seed_demo_rules(s)
        rng = np.random.default_rng(3)
        ns = []
        async with db.reader() as conn:
            for cid in rng.integers(1, 1001, lookups):
                t0 = time.perf_counter_ns()
                await marketing.customer_value_view(conn, int(cid), NOW, channel="chat", separately=separately)
                ns.append(time.perf_counter_ns() - t0)
        await db.dispose()
    ms = np.sort(np.asarray(ns)) / 1e6
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms[-1])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--orders", type=int, default=1_000_000)
    p.add_argument("--products", type=int, default=500)
    p.add_argument("--lookups", type=int, default=1000)
    p.add_argument("--only", choices=("lookup",), help="run only the next-best-offer lookup")
    p.add_argument("--separately", action="store_true", help="the lookup with one statement per part (the old way), to compare")
    p.add_argument("--database-url", help="the lookup on this empty database (e.g. PostgreSQL) instead of SQLite")
    a = p.parse_args()
    if a.only == "lookup":
        lk = asyncio.run(bench_lookup(a.lookups, a.database_url, a.separately))
        where = "PostgreSQL" if a.database_url and a.database_url.startswith("postgresql") else "SQLite"
        where += ", one statement per part" if a.separately else ", one statement"
        print(f"next best offer lookup ({where}, demo shop), {a.lookups:,} lookups: p50 {lk['p50_ms']:.2f} ms, "
              f"p99 {lk['p99_ms']:.2f} ms, max {lk['max_ms']:.2f} ms  {'PASS' if lk['p99_ms'] <= 20 else 'MISS'} (p99 <= 20 ms)"
              f"; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return
    rng = np.random.default_rng(7)
    out: dict[str, object] = {}
    r = bench_rfm(a.customers, a.orders, rng)
    out["rfm"] = r
    print(f"RFM + attrition, {a.customers:,} customers / {a.orders:,} orders: {r['seconds']:.2f} s "
          f"({int(r['customers']):,} scored)  {'PASS' if r['seconds'] < 60 else 'MISS'} (< 60 s with the SQL read)")
    i = bench_itemsets(a.orders, a.products, rng)
    out["itemsets"] = i
    print(f"Apriori up to triples + rules, {int(i['lines']):,} lines: {i['seconds']:.2f} s, "
          f"{int(i['itemsets']):,} itemsets, {int(i['rules']):,} rules")
    for n in (500, 2000, 5000):
        q = bench_queue(n, rng)
        out[f"queue_{n}"] = q
        verdict = (" PASS" if q["median"] < 1 else " MISS") if n == 500 else ""
        print(f"fulfilment queue, {n:,} orders: median {q['median']:.3f} s, worst {q['worst']:.3f} s, "
              f"{int(q['batches'])} batch(es), {int(q['levels'])} levels{verdict}")
    lk = asyncio.run(bench_lookup(a.lookups))
    out["next_best_offer"] = lk
    print(f"next best offer lookup (SQLite, demo shop), {a.lookups:,} lookups: p50 {lk['p50_ms']:.2f} ms, "
          f"p99 {lk['p99_ms']:.2f} ms, max {lk['max_ms']:.2f} ms  {'PASS' if lk['p99_ms'] <= 20 else 'MISS'} (p99 <= 20 ms)")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
