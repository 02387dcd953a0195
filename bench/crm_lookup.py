"""Latency of the contact repository's hot lookups on PostgreSQL, at the repository and HTTP layers.

Builds a throw-away database (``cc_bench``), migrates it with the project's migrations, bulk-loads a
realistic shop (customers with a phone and an email, orders with lines and status history, products,
interactions) with ``COPY``, then times random lookups one at a time:

* repository layer (``crm_store.repositories`` over ``crm_store.db.Database``): order by id, orders
  by customer phone, customer 360;
* HTTP layer (the real ``contact_center.app`` served by aiohttp in this process, one keep-alive
  client, one request at a time): the same three lookups, plus a bare aiohttp handler returning a
  constant JSON (the baseline round trip) and a constant handler mounted inside the real app (the
  cost of its middlewares).

For reading those figures it also times, in the same run: the very same SQL on a bare asyncpg
connection (the floor: PostgreSQL plus the wire), an empty ``db.session()`` with ``SELECT 1`` (the fixed
cost of a session), and the repository lookups with autocommit read sessions and no pool pre-ping (a
what-if). All lookups are timed interleaved, round-robin, so other work on a shared machine hits every
row alike.

It prints p50 / p99 / max latency (ms) and throughput per lookup, PASS/MISS against the targets
(p99 < 5 ms repository, < 15 ms HTTP), the EXPLAIN ANALYZE of every statement behind the repository
lookups, and a final JSON line with every figure. It is a measurement, not a test: it exits 0 whatever
the figures.

    .venv/bin/python bench/crm_lookup.py --quick          # 10k customers, 100k orders, 500 samples
    .venv/bin/python bench/crm_lookup.py                  # 100k customers, 1M orders, 2000 samples

See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import platform
import random
import sys
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence
from urllib.parse import quote, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import phonenumbers  # noqa: E402

REPO_TARGET_MS = 5.0
HTTP_TARGET_MS = 15.0
TOKEN = "bench-token"
REF = datetime(2026, 5, 1, tzinfo=timezone.utc)  # "now" of the generated data (fixed: reproducible)
LOAD_TABLES = ("customers", "contact_points", "products", "orders", "order_lines", "order_events", "interactions")


# --- configuration -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """Sizes and places of one run."""

    customers: int
    orders: int
    samples: int
    warmup: int
    products: int
    interactions_per_customer: float
    seed: int
    keep: bool
    explain: bool
    http: bool
    admin_url: str
    db_name: str
    max_load: float
    max_wait: float

    @property
    def pg_url(self) -> str:
        """libpq URL of the bench database (for asyncpg)."""
        parts = urlsplit(self.admin_url)
        return urlunsplit((parts.scheme, parts.netloc, "/" + self.db_name, parts.query, ""))

    @property
    def sa_url(self) -> str:
        """SQLAlchemy async URL of the bench database."""
        parts = urlsplit(self.admin_url)
        return urlunsplit(("postgresql+asyncpg", parts.netloc, "/" + self.db_name, "", ""))


def parse_args(argv: Sequence[str] | None = None) -> Config:
    """Read the command line; ``--quick`` changes the defaults, explicit sizes still win."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--customers", type=int, help="customers to load (default 100000; quick 10000)")
    p.add_argument("--orders", type=int, help="orders to load (default 1000000; quick 100000)")
    p.add_argument("--samples", type=int, help="timed lookups per measurement (default 2000; quick 500)")
    p.add_argument("--warmup", type=int, default=200, help="untimed lookups before each measurement (default 200)")
    p.add_argument("--products", type=int, default=50, help="catalogue size (default 50)")
    p.add_argument("--interactions-per-customer", type=float, default=5.0, help="mean interactions per customer (default 5)")
    p.add_argument("--seed", type=int, default=42, help="random seed of the data and of the lookups (default 42)")
    p.add_argument("--quick", action="store_true", help="smoke run: 10k customers, 100k orders, 500 samples")
    p.add_argument("--keep", action="store_true", help="keep the bench database at the end (default: drop it)")
    p.add_argument("--explain", action="store_true", help="print the full EXPLAIN ANALYZE of every repository query")
    p.add_argument("--no-http", dest="http", action="store_false", help="skip the HTTP layer")
    p.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/test",
                   help="an existing database to connect to for CREATE/DROP DATABASE")
    p.add_argument("--db-name", default="cc_bench", help="name of the throw-away database (default cc_bench)")
    p.add_argument("--max-load", type=float, default=1.0,
                   help="before timing, wait until the 1-minute load average is below this (default 1.0)")
    p.add_argument("--max-wait", type=float, default=120.0,
                   help="longest wait for --max-load, in seconds, then measure anyway (default 120; 0: no wait)")
    a = p.parse_args(argv)
    quick = a.quick
    cfg = Config(
        customers=a.customers or (10_000 if quick else 100_000),
        orders=a.orders if a.orders is not None else (100_000 if quick else 1_000_000),
        samples=a.samples or (500 if quick else 2000),
        warmup=a.warmup,
        products=a.products,
        interactions_per_customer=a.interactions_per_customer,
        seed=a.seed,
        keep=a.keep,
        explain=a.explain,
        http=a.http,
        admin_url=a.pg_admin_url,
        db_name=a.db_name,
        max_load=a.max_load,
        max_wait=a.max_wait,
    )
    if cfg.customers < 1 or cfg.orders < 1 or cfg.samples < 1 or cfg.products < 1:
        p.error("sizes must be positive")
    if not cfg.db_name.replace("_", "").isalnum():
        p.error("--db-name: letters, digits and _ only")
    return cfg


# --- database lifecycle --------------------------------------------------------------------------


async def recreate_database(cfg: Config) -> None:
    """Drop (forcibly) and create the bench database."""
    conn = await asyncpg.connect(cfg.admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{cfg.db_name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{cfg.db_name}"')
    finally:
        await conn.close()


async def drop_database(cfg: Config) -> None:
    """Drop the bench database (forcibly: any leftover connection is closed)."""
    conn = await asyncpg.connect(cfg.admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{cfg.db_name}" WITH (FORCE)')
    finally:
        await conn.close()


def migrate(cfg: Config) -> float:
    """Run the project's migrations (blocking: Alembic runs its own event loop). Returns seconds."""
    from crm_store.migrate import upgrade

    t0 = time.perf_counter()
    upgrade(cfg.sa_url)
    return time.perf_counter() - t0


# --- data generation -----------------------------------------------------------------------------

FIRST = ("Ana", "Ben", "Chloe", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jamal", "Kira", "Liam",
         "Maya", "Noah", "Olga", "Pablo", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera", "Wen", "Yusuf", "Zoe")
LAST = ("Adams", "Baker", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Haddad", "Ito", "Jensen", "Kowalski",
        "Lopez", "Martin", "Nguyen", "Okafor", "Petrov", "Rossi", "Schmidt", "Tanaka", "Weber", "Young", "Zhang")
STREETS = ("Main St", "Broadway", "Park Ave", "5th Ave", "Lexington Ave", "Amsterdam Ave", "Canal St", "Wall St")
CATEGORIES = ("shirts", "trousers", "shoes", "bags", "accessories")
OPTION_SETS: tuple[dict[str, list[str]], ...] = (
    {"size": ["S", "M", "L", "XL"], "colour": ["black", "navy", "white"]},
    {"size": ["38", "40", "42", "44"]},
    {"colour": ["red", "green", "blue"]},
    {},
)
# Final status -> the path of statuses the order went through (its events), and how common it is.
STATUS_PATHS: dict[str, tuple[str, ...]] = {
    "placed": ("placed",),
    "confirmed": ("placed", "confirmed"),
    "picking": ("placed", "confirmed", "picking"),
    "shipped": ("placed", "confirmed", "picking", "shipped"),
    "delivered": ("placed", "confirmed", "picking", "shipped", "delivered"),
    "cancelled": ("placed", "cancelled"),
    "returned": ("placed", "confirmed", "picking", "shipped", "delivered", "returned"),
    "refunded": ("placed", "confirmed", "picking", "shipped", "delivered", "returned", "refunded"),
}
STATUS_WEIGHTS = {"placed": 3, "confirmed": 3, "picking": 3, "shipped": 6, "delivered": 72, "cancelled": 8,
                  "returned": 3, "refunded": 2}
ORDER_CHANNELS = ("web", "web", "web", "phone", "chat", "whatsapp")
# Interaction kind -> channel it arrives on.
INTERACTION_KINDS = (("call", "phone"), ("chat", "chat"), ("email", "email"), ("web_callback", "callback"),
                     ("page_view", "web"), ("page_view", "web"), ("note", "backoffice"), ("order_event", "web"),
                     ("sms", "sms"), ("whatsapp", "whatsapp"))


def us_phone_book(n: int, rng: random.Random) -> list[str]:
    """``n`` distinct valid US numbers in E.164 (+1 212 NXX XXXX, NXX 200..999 without 555 and N11)."""
    exchanges = [x for x in range(200, 1000) if x != 555 and x % 100 != 11]
    space = len(exchanges) * 10_000
    if n > space:
        raise SystemExit(f"at most {space} distinct phone numbers can be generated")
    picks = rng.sample(range(space), n)
    numbers = [f"+1212{exchanges[i // 10_000]}{i % 10_000:04d}" for i in picks]
    # Validity of a NANP number is decided by its area code and exchange: check one number of every
    # exchange in use, plus a random sample of the numbers themselves.
    used = {i // 10_000 for i in picks}
    probes = [f"+1212{exchanges[e]}0100" for e in sorted(used)] + rng.sample(numbers, min(n, 1000))
    bad = [p for p in probes if not phonenumbers.is_valid_number(phonenumbers.parse(p))]
    if bad:
        raise SystemExit(f"generated phone numbers that phonenumbers rejects: {bad[:5]}")
    return numbers


def national(e164: str) -> str:
    """How a US customer would type their number: (212) 234-5678."""
    d = e164[2:]
    return f"({d[:3]}) {d[3:6]}-{d[6:]}"


@dataclass
class Products:
    """The generated catalogue, as the order generator needs it."""

    rows: list[tuple[Any, ...]]
    sku: list[str]
    name: list[str]
    price: list[int]
    line_options: list[list[str]]  # per product: JSON texts of the option choices a line may carry


def make_products(n: int, rng: random.Random) -> Products:
    """``n`` products with prices, stock and options."""
    rows, skus, names, prices, line_opts = [], [], [], [], []
    for i in range(1, n + 1):
        category = CATEGORIES[i % len(CATEGORIES)]
        opts = OPTION_SETS[i % len(OPTION_SETS)]
        sku, name, price = f"SKU-{i:04d}", f"{category.title()[:-1]} model {i}", rng.randrange(900, 25_000, 100)
        rows.append((i, sku, name, f"A fine {category[:-1]}.", category, price, "EUR", rng.randrange(0, 500), 5,
                     rng.randrange(1, 6), json.dumps(opts), True))
        choices = [{}]  # type: list[dict[str, str]]
        for key, values in opts.items():
            choices = [dict(c, **{key: v}) for c in choices for v in values]
        skus.append(sku)
        names.append(name)
        prices.append(price)
        line_opts.append([json.dumps(c) for c in choices])
    return Products(rows, skus, names, prices, line_opts)


# --- loading -------------------------------------------------------------------------------------

COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("id", "display_name", "tier", "merged_into_id", "created_at", "updated_at"),
    "contact_points": ("id", "customer_id", "kind", "value", "verified", "created_at"),
    "products": ("id", "sku", "name", "description", "category", "price_minor", "currency", "stock",
                 "low_stock_threshold", "lead_time_days", "options", "active"),
    "orders": ("id", "customer_id", "status", "channel", "subtotal_minor", "shipping_minor", "total_minor", "currency",
               "delivery_address", "contact_phone", "contact_email", "notes", "promised_date", "idempotency_key",
               "created_at", "updated_at"),
    "order_lines": ("id", "order_id", "product_id", "sku", "name", "options", "quantity", "unit_price_minor",
                    "line_total_minor"),
    "order_events": ("id", "order_id", "from_status", "to_status", "actor", "note", "occurred_at"),
    "interactions": ("id", "customer_id", "kind", "channel", "occurred_at", "agent_id", "conversation_id", "order_id",
                     "summary", "payload"),
}


@dataclass
class LoadReport:
    """How long each part of the load took, and how many rows each table got."""

    rows: dict[str, int] = field(default_factory=dict)
    copy_s: dict[str, float] = field(default_factory=dict)
    generate_s: dict[str, float] = field(default_factory=dict)
    steps_s: dict[str, float] = field(default_factory=dict)
    total_s: float = 0.0

    def add(self, table: str, rows: int, gen_s: float, copy_s: float) -> None:
        self.rows[table] = self.rows.get(table, 0) + rows
        self.generate_s[table] = self.generate_s.get(table, 0.0) + gen_s
        self.copy_s[table] = self.copy_s.get(table, 0.0) + copy_s


class Loader:
    """Streams generated rows into the tables with COPY (binary), table by table, in chunks."""

    CHUNK = 50_000

    def __init__(self, conn: asyncpg.Connection, report: LoadReport) -> None:
        self.conn = conn
        self.report = report

    async def copy(self, table: str, rows: list[tuple[Any, ...]], gen_s: float) -> None:
        t0 = time.perf_counter()
        if rows:
            await self.conn.copy_records_to_table(table, records=rows, columns=list(COLUMNS[table]))
        self.report.add(table, len(rows), gen_s, time.perf_counter() - t0)


async def drop_secondary_indexes(conn: asyncpg.Connection) -> list[tuple[str, str]]:
    """Drop the loaded tables' indexes that back no constraint; return (name, definition) to rebuild them."""
    rows = await conn.fetch(
        """
        SELECT ic.relname AS name, pg_get_indexdef(i.indexrelid) AS def
        FROM pg_index i
        JOIN pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_class tc ON tc.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = tc.relnamespace
        WHERE n.nspname = 'public' AND tc.relname = ANY($1::text[])
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
        ORDER BY tc.relname, ic.relname
        """,
        list(LOAD_TABLES),
    )
    for r in rows:
        await conn.execute(f'DROP INDEX "{r["name"]}"')
    return [(r["name"], r["def"]) for r in rows]


async def load(cfg: Config) -> tuple[LoadReport, list[str]]:
    """Fill the bench database; return the load report and every customer's phone (index = id - 1)."""
    report = LoadReport()
    rng = random.Random(cfg.seed)
    t_all = time.perf_counter()
    conn = await asyncpg.connect(cfg.pg_url)
    try:
        # Bulk-load settings for this session only: no FK triggers (the generator keeps references
        # consistent), no wait for the WAL flush, more memory for the index builds.
        await conn.execute("SET session_replication_role = replica")
        await conn.execute("SET synchronous_commit = off")
        await conn.execute("SET maintenance_work_mem = '256MB'")
        t0 = time.perf_counter()
        indexes = await drop_secondary_indexes(conn)
        report.steps_s["drop secondary indexes"] = time.perf_counter() - t0
        loader = Loader(conn, report)

        t0 = time.perf_counter()
        phones = us_phone_book(cfg.customers, rng)
        report.steps_s["phone numbers (generate + validate)"] = time.perf_counter() - t0

        products = make_products(cfg.products, rng)
        await loader.copy("products", products.rows, 0.0)

        await load_customers(cfg, rng, loader, phones)
        await load_orders(cfg, rng, loader, phones, products)
        await load_interactions(cfg, rng, loader)

        t0 = time.perf_counter()
        for name, definition in indexes:
            t1 = time.perf_counter()
            await conn.execute(definition)
            report.steps_s[f"index {name}"] = time.perf_counter() - t1
        report.steps_s["rebuild secondary indexes (total)"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        for table in LOAD_TABLES:
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
        report.steps_s["setval sequences"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        await conn.execute("VACUUM (ANALYZE)")  # statistics, plus visibility map and hint bits as in steady state
        report.steps_s["VACUUM (ANALYZE)"] = time.perf_counter() - t0
    finally:
        await conn.close()
    report.total_s = time.perf_counter() - t_all
    return report, phones


async def load_customers(cfg: Config, rng: random.Random, loader: Loader, phones: list[str]) -> None:
    """Customers, each with a verified phone and an email contact point."""
    span = 3 * 365 * 86400
    oldest = REF - timedelta(days=6 * 365)
    tiers = ("standard",) * 8 + ("silver", "gold")
    for start in range(1, cfg.customers + 1, Loader.CHUNK):
        t0 = time.perf_counter()
        customers, points = [], []
        for cid in range(start, min(start + Loader.CHUNK, cfg.customers + 1)):
            created = oldest + timedelta(seconds=rng.randrange(span))
            customers.append((cid, f"{FIRST[rng.randrange(len(FIRST))]} {LAST[rng.randrange(len(LAST))]}",
                              tiers[rng.randrange(len(tiers))], None, created, created))
            points.append((2 * cid - 1, cid, "phone", phones[cid - 1], True, created))
            points.append((2 * cid, cid, "email", f"customer{cid}@example.com", rng.random() < 0.7, created))
        gen = time.perf_counter() - t0
        await loader.copy("customers", customers, gen * 0.5)
        await loader.copy("contact_points", points, gen * 0.5)


async def load_orders(cfg: Config, rng: random.Random, loader: Loader, phones: list[str], products: Products) -> None:
    """Orders spread at random over the customers, ids increasing with time, 1-3 lines, full status history."""
    statuses = list(STATUS_WEIGHTS)
    cum, acc = [], 0
    for s in statuses:
        acc += STATUS_WEIGHTS[s]
        cum.append(acc)
    span_s = 3 * 365 * 86400
    first = REF - timedelta(seconds=span_s)
    step = span_s / cfg.orders
    hours = [timedelta(hours=h) for h in range(1, 97)]
    n_products = cfg.products
    randrange, rand = rng.randrange, rng.random
    line_id = event_id = 0
    for start in range(1, cfg.orders + 1, Loader.CHUNK):
        t0 = time.perf_counter()
        stop = min(start + Loader.CHUNK, cfg.orders + 1)
        finals = rng.choices(statuses, cum_weights=cum, k=stop - start)
        orders: list[tuple[Any, ...]] = []
        lines: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        for oid, final in zip(range(start, stop), finals):
            cid = randrange(cfg.customers) + 1
            created = first + timedelta(seconds=(oid - 1) * step + rand() * step)
            subtotal = 0
            for _ in range(1 + (rand() < 0.45) + (rand() < 0.15)):
                p = randrange(n_products)
                qty = 1 + (rand() < 0.2)
                price = products.price[p]
                opts = products.line_options[p]
                line_id += 1
                lines.append((line_id, oid, p + 1, products.sku[p], products.name[p], opts[randrange(len(opts))],
                              qty, price, qty * price))
                subtotal += qty * price
            shipping = 0 if subtotal >= 5000 else 495
            when = created
            prev: str | None = None
            for status in STATUS_PATHS[final]:
                event_id += 1
                events.append((event_id, oid, prev, status, "system" if prev is None else "service:token", "", when))
                prev = status
                when = when + hours[randrange(96)]
            orders.append((oid, cid, final, ORDER_CHANNELS[randrange(6)], subtotal, shipping, subtotal + shipping, "EUR",
                           f"{cid % 900 + 10} {STREETS[cid % 8]}, New York, NY 10{cid % 300:03d}", phones[cid - 1],
                           f"customer{cid}@example.com", "", (created + timedelta(days=2 + randrange(4))).date(), None,
                           created, events[-1][6]))
        gen = time.perf_counter() - t0
        n = len(orders) + len(lines) + len(events)
        await loader.copy("orders", orders, gen * len(orders) / n)
        await loader.copy("order_lines", lines, gen * len(lines) / n)
        await loader.copy("order_events", events, gen * len(events) / n)


async def load_interactions(cfg: Config, rng: random.Random, loader: Loader) -> None:
    """About ``interactions_per_customer`` touches per customer (1..2*mean-1, uniform), over three years."""
    span_s = 3 * 365 * 86400
    hi = max(1, round(2 * cfg.interactions_per_customer - 1))
    randrange = rng.randrange
    payloads = ('{}', '{"duration_s": 184}', '{"url": "/products/SKU-0007"}', '{"rating": 5}')
    iid = 0
    for start in range(1, cfg.customers + 1, Loader.CHUNK // 5):
        t0 = time.perf_counter()
        rows = []
        for cid in range(start, min(start + Loader.CHUNK // 5, cfg.customers + 1)):
            for _ in range(1 + randrange(hi)):
                iid += 1
                kind, channel = INTERACTION_KINDS[randrange(len(INTERACTION_KINDS))]
                rows.append((iid, cid, kind, channel, REF - timedelta(seconds=randrange(span_s)), None, None, None,
                             f"{kind} with customer {cid}", payloads[randrange(4)]))
        await loader.copy("interactions", rows, time.perf_counter() - t0)


# --- measuring -----------------------------------------------------------------------------------


@dataclass
class Result:
    """Latency figures of one measured lookup."""

    layer: str  # repository / session / floor / what-if / http
    name: str
    target_ms: float | None
    samples: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    mean_ms: float = 0.0
    ops_per_s: float = 0.0
    empty: int = 0  # lookups that found nothing (should be ~0)
    error: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        if self.error:
            return "ERROR"
        if self.target_ms is None:
            return "-"
        return "PASS" if self.p99_ms < self.target_ms else "MISS"

    def as_json(self) -> dict[str, Any]:
        return {
            "layer": self.layer, "lookup": self.name, "samples": self.samples, "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3), "max_ms": round(self.max_ms, 3), "mean_ms": round(self.mean_ms, 3),
            "ops_per_s": round(self.ops_per_s, 1), "target_p99_ms": self.target_ms, "verdict": self.verdict,
            "empty_results": self.empty, "error": self.error, **self.notes,
        }


def percentile(sorted_ns: list[int], p: float) -> float:
    """Nearest-rank percentile of sorted nanosecond samples, in ms."""
    k = max(0, min(len(sorted_ns) - 1, math.ceil(p / 100 * len(sorted_ns)) - 1))
    return sorted_ns[k] / 1e6


Op = Callable[[int], Awaitable[bool]]


@dataclass
class Probe:
    """One lookup to time: its operation (returns whether it found something) and its keys."""

    result: Result
    op: Op
    keys: list[int]
    warm: list[int]
    samples_ns: list[int] = field(default_factory=list)


async def preflight(probe: Probe, tries: int = 3) -> None:
    """One call before anything is timed, so a broken lookup is reported once instead of per sample."""
    for attempt in range(tries):
        try:
            await probe.op(probe.keys[0])
            probe.result.error = None
            return
        except Exception as exc:  # noqa: BLE001 - a broken lookup is reported, the others still run
            probe.result.error = f"{type(exc).__name__}: {exc}"[:300]
            if attempt + 1 < tries:
                await asyncio.sleep(1)


async def run_interleaved(probes: list[Probe], samples: int, warmup: int) -> None:
    """Warm every probe up, then time them round-robin, one call at a time.

    Interleaving (round ``i`` calls every probe once, starting from a rotating position) spreads
    whatever else the machine is doing over all the rows alike, so they can be compared.
    """
    for p in probes:
        if p.result.error is None:
            await preflight(p)
    live = [p for p in probes if p.result.error is None]
    for i in range(warmup):
        for p in live:
            await p.op(p.warm[i])
    clock = time.perf_counter_ns
    n = len(live)
    for i in range(samples):
        for j in range(n):
            p = live[(i + j) % n]
            if p.result.error is not None:
                continue
            t0 = clock()
            try:
                found = await p.op(p.keys[i])
            except Exception as exc:  # noqa: BLE001
                p.result.error = f"{type(exc).__name__}: {exc}"[:300]
                continue
            p.samples_ns.append(clock() - t0)
            p.result.empty += not found
        if (i + 1) % max(1, samples // 4) == 0:
            print(f"  {i + 1}/{samples} rounds", flush=True)
    for p in live:
        finish(p.result, p.samples_ns)


def finish(result: Result, samples_ns: list[int]) -> None:
    """Fill in the figures from the raw samples."""
    if result.error is not None or not samples_ns:
        return
    ordered = sorted(samples_ns)
    result.samples = len(ordered)
    result.p50_ms = percentile(ordered, 50)
    result.p99_ms = percentile(ordered, 99)
    result.max_ms = ordered[-1] / 1e6
    result.mean_ms = sum(ordered) / len(ordered) / 1e6
    result.ops_per_s = 1e3 / result.mean_ms if result.mean_ms else 0.0  # one client, back to back


@dataclass(frozen=True)
class Keys:
    """Random lookup keys: timed ones and warm-up ones (disjoint draws from the same seed)."""

    order_ids: list[int]
    customer_ids: list[int]
    warm_order_ids: list[int]
    warm_customer_ids: list[int]


def draw_keys(cfg: Config, salt: int) -> Keys:
    """Lookup keys for one layer (a different salt per layer, so the layers do not replay the same rows)."""
    rng = random.Random(cfg.seed * 1000 + salt)
    return Keys(
        order_ids=[rng.randrange(cfg.orders) + 1 for _ in range(cfg.samples)],
        customer_ids=[rng.randrange(cfg.customers) + 1 for _ in range(cfg.samples)],
        warm_order_ids=[rng.randrange(cfg.orders) + 1 for _ in range(cfg.warmup)],
        warm_customer_ids=[rng.randrange(cfg.customers) + 1 for _ in range(cfg.warmup)],
    )


def repository_ops(db: Any, phones: list[str], session: bool = False) -> dict[str, Callable[[int], Awaitable[bool]]]:
    """The three repository lookups, each taking an order or customer id.

    They read through ``db.reader()`` (a bare pooled connection) as the app does, or through an ORM
    session (``db.session()``) with ``session=True``, to show what the session costs.
    """
    from crm_store.domain.identity import normalize_phone
    from crm_store.repositories import orders, views

    opener = db.session if session else db.reader

    async def order_by_id(order_id: int) -> bool:
        async with opener() as s:
            view = await orders.get_order(s, order_id)
        return view.order.id == order_id and len(view.lines) > 0

    async def orders_by_phone(customer_id: int) -> bool:
        value = normalize_phone(national(phones[customer_id - 1]))  # as typed by a caller, normalised
        async with opener() as s:
            found = await orders.orders_by_contact(s, "phone", value, limit=20)
        return len(found) > 0

    async def customer_360(customer_id: int) -> bool:
        async with opener() as s:
            view = await views.customer_360(s, customer_id, timeline_limit=20, orders_limit=20)
        return len(view.contact_points) == 2 and len(view.timeline.items) > 0 and view.orders is not None

    return {"order by id": order_by_id, "orders by phone": orders_by_phone, "customer 360": customer_360}


Captured = list[tuple[str, tuple[Any, ...]]]


async def capture_sql(db: Any, op: Callable[[int], Awaitable[bool]], key: int) -> Captured:
    """Run one lookup while recording every SQL statement it sends (text and parameters)."""
    from sqlalchemy import event

    from crm_store.repositories import pg

    captured: Captured = []

    def record(_conn: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        captured.append((statement, tuple(params or ())))

    direct = pg.fetchrow, pg.fetch

    async def record_row(s: Any, sql: str, *args: Any) -> Any:  # the one-statement views on asyncpg
        captured.append((sql, args))
        return await direct[0](s, sql, *args)

    async def record_rows(s: Any, sql: str, *args: Any) -> Any:
        captured.append((sql, args))
        return await direct[1](s, sql, *args)

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    pg.fetchrow, pg.fetch = record_row, record_rows  # type: ignore[assignment]
    try:
        await op(key)
    finally:
        pg.fetchrow, pg.fetch = direct  # type: ignore[assignment]
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)
    return captured


def floor_op(
    conn: asyncpg.Connection, template: Captured, key0: int, derive: Callable[[int], Any]
) -> Callable[[int], Awaitable[bool]]:
    """The same statements as a captured lookup, replayed on a bare asyncpg connection for any key.

    Parameters equal to ``derive(key0)`` (the sample's id, or its phone number) are replaced by
    ``derive(key)``; the others (kinds, limits) are kept.
    """
    marker = derive(key0)
    plan = []
    for sql, params in template:
        slots = [i for i, v in enumerate(params) if v == marker]
        if not slots:
            raise ValueError("a captured statement does not use the lookup key")
        plan.append((sql, list(params), slots))

    async def op(key: int) -> bool:
        value = derive(key)
        found = 0
        for sql, params, slots in plan:
            for i in slots:
                params[i] = value
            found += len(await conn.fetch(sql, *params))
        return found > 0

    return op


def key_derivers(phones: list[str]) -> dict[str, Callable[[int], Any]]:
    """How each lookup's SQL parameter follows from its key."""
    return {"order by id": lambda k: k, "orders by phone": lambda k: phones[k - 1], "customer 360": lambda k: k}


async def repository_probes(
    cfg: Config, phones: list[str], stack: contextlib.AsyncExitStack
) -> tuple[list[Probe], dict[str, Captured]]:
    """The repository lookups, the floor under them, the session cost and a what-if configuration.

    * ``repository``: the project's ``Database`` and repository functions, as the app uses them;
    * ``session``: opening a ``db.reader()``, one ``SELECT 1``, closing it (pool checkout, reset on
      return): the fixed cost every lookup pays;
    * ``floor``: the very same SQL statements on one bare asyncpg connection (no ORM, no pool, no
      transaction): what PostgreSQL and the wire cost;
    * ``what-if``: the repository lookups through an ORM session (``db.session()``) instead of a bare
      connection.

    Also returns the SQL each lookup sends (captured once), for the floor and for EXPLAIN.
    """
    from sqlalchemy import text

    from crm_store.db import Database

    db = Database(cfg.sa_url)
    stack.push_async_callback(db.dispose)
    conn = await asyncpg.connect(cfg.pg_url)
    stack.push_async_callback(conn.close)

    ops = repository_ops(db, phones)
    derive = key_derivers(phones)
    sample_key = {"order by id": cfg.orders, "orders by phone": cfg.customers, "customer 360": cfg.customers}
    templates = {name: await capture_sql(db, op, sample_key[name]) for name, op in ops.items()}

    def keyed(result: Result, op: Op, salt: int) -> Probe:
        k = draw_keys(cfg, salt)
        if result.name == "order by id":
            return Probe(result, op, k.order_ids, k.warm_order_ids)
        return Probe(result, op, k.customer_ids, k.warm_customer_ids)

    probes = []
    for name, op in ops.items():
        res = Result("repository", name, REPO_TARGET_MS)
        res.notes["sql_statements"] = len(templates[name])
        probes.append(keyed(res, op, 1))

    async def session_only(_key: int) -> bool:
        async with db.reader() as s:
            await s.execute(text("SELECT 1"))
        return True

    probes.append(keyed(Result("session", "db.reader() + SELECT 1", None), session_only, 5))
    for name in ops:
        res = Result("floor", name, None)
        try:
            fop = floor_op(conn, templates[name], sample_key[name], derive[name])
        except ValueError as exc:
            res.error = str(exc)  # reported as an ERROR row; the probe never runs
            fop = session_only
        probes.append(keyed(res, fop, 3))
    for name, op in repository_ops(db, phones, session=True).items():
        res = Result("what-if", name, REPO_TARGET_MS)
        res.notes["what_if"] = "through an ORM session (db.session()) instead of db.reader()"
        probes.append(keyed(res, op, 4))
    return probes, templates


# --- query plans ---------------------------------------------------------------------------------


def _walk(node: dict[str, Any], out: list[str]) -> None:
    """Flatten an EXPLAIN (FORMAT JSON) tree into short node descriptions."""
    kind = node["Node Type"]
    desc = kind
    if "Index Name" in node:
        desc += f" using {node['Index Name']}"
    if "Relation Name" in node:
        desc += f" on {node['Relation Name']}"
    if kind in ("Sort", "Incremental Sort") and "Sort Key" in node:
        desc += f" ({', '.join(node['Sort Key'])})"
    out.append(desc)
    for child in node.get("Plans", []):
        _walk(child, out)


async def explain_lookups(
    cfg: Config, conn: asyncpg.Connection, templates: dict[str, Captured], results: list[Result]
) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) every statement of every repository lookup (one sample key each).

    The full text plans are kept with ``--explain`` or when the lookup missed its target.
    """
    missed = {r.name for r in results if r.layer == "repository" and r.verdict == "MISS"}
    plans: dict[str, Any] = {}
    for name, statements in templates.items():
        entries = []
        for sql, params in statements:
            # Twice: the first run on a fresh connection also pays for loading the catalog caches.
            await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *params)
            raw = await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *params)
            doc = (json.loads(raw) if isinstance(raw, str) else raw)[0]
            nodes: list[str] = []
            _walk(doc["Plan"], nodes)
            entry: dict[str, Any] = {
                "sql": " ".join(sql.split()),
                "nodes": nodes,
                "planning_ms": doc.get("Planning Time"),
                "execution_ms": doc.get("Execution Time"),
                "seq_scan": any(n.startswith("Seq Scan") for n in nodes),
            }
            if cfg.explain or name in missed:
                entry["text"] = [r[0] for r in await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *params)]
            entries.append(entry)
        plans[name] = entries
        for r in results:
            if r.layer == "repository" and r.name == name:
                r.notes["server_exec_ms"] = round(sum(e["execution_ms"] or 0 for e in entries), 3)
    return plans


# --- HTTP ----------------------------------------------------------------------------------------


async def start_site(app: Any) -> tuple[Any, str]:
    """Serve an aiohttp app on 127.0.0.1 at a free port; return its runner and base URL."""
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)  # as `contact-center serve` runs it
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


async def http_probes(cfg: Config, phones: list[str], stack: contextlib.AsyncExitStack) -> list[Probe]:
    """The HTTP lookups against the real app, and the constant-JSON baselines, served in this process."""
    import aiohttp
    import yarl
    from aiohttp import web

    from contact_center.app import create_app
    from contact_center.settings import Settings

    constant = {"status": "ok", "service": "bench", "items": [1, 2, 3]}

    async def constant_handler(_request: web.Request) -> web.Response:
        return web.json_response(constant)

    bare = web.Application()
    bare.router.add_get("/ping", constant_handler)
    app = create_app(Settings(database_url=cfg.sa_url, service_tokens=(TOKEN,), demo_data=False, auto_migrate=False))
    # A constant handler inside the real app: its middlewares (metrics, errors, token) but no database.
    app.router.add_get("/api/_bench/ping", constant_handler)

    bare_runner, bare_base = await start_site(bare)
    stack.push_async_callback(bare_runner.cleanup)
    app_runner, base = await start_site(app)
    stack.push_async_callback(app_runner.cleanup)
    connector = aiohttp.TCPConnector(limit=1, keepalive_timeout=60)
    http = await stack.enter_async_context(
        aiohttp.ClientSession(connector=connector, headers={"Authorization": f"Bearer {TOKEN}"})
    )

    def getter(url_of: Callable[[int], str]) -> Op:
        async def op(key: int) -> bool:
            url = url_of(key)
            async with http.get(yarl.URL(url, encoded=True)) as r:
                body = await r.read()
                if r.status != 200:
                    raise RuntimeError(f"HTTP {r.status} from {url}: {body[:200]!r}")
                return len(body) > 2

        return op

    def phone_url(cid: int) -> str:
        return f"{base}/api/orders?phone={quote(phones[cid - 1], safe='')}&limit=20"

    keys = draw_keys(cfg, 2)
    lookups: list[tuple[str, Callable[[int], str], bool, float | None]] = [
        ("bare aiohttp (baseline)", lambda _k: f"{bare_base}/ping", False, None),
        ("app constant handler", lambda _k: f"{base}/api/_bench/ping", False, None),
        ("GET /api/orders/{id}", lambda k: f"{base}/api/orders/{k}", True, HTTP_TARGET_MS),
        ("GET /api/orders?phone=", phone_url, False, HTTP_TARGET_MS),
        ("GET /api/customers/{id}", lambda k: f"{base}/api/customers/{k}", False, HTTP_TARGET_MS),
    ]
    probes = []
    for name, url_of, by_order, target in lookups:
        res = Result("http", name, target)
        if by_order:
            probes.append(Probe(res, getter(url_of), keys.order_ids, keys.warm_order_ids))
        else:
            probes.append(Probe(res, getter(url_of), keys.customer_ids, keys.warm_customer_ids))
    return probes


def add_ratios(results: list[Result]) -> None:
    """Repository rows over the asyncpg floor; HTTP rows over the bare aiohttp round trip (p50)."""
    ok = [r for r in results if r.error is None and r.samples]
    floors = {r.name: r for r in ok if r.layer == "floor"}
    for r in ok:
        if r.layer in ("repository", "what-if") and r.name in floors:
            r.notes["x_floor_p50"] = round(r.p50_ms / floors[r.name].p50_ms, 2)
    bare = next((r for r in ok if r.layer == "http" and r.name.startswith("bare")), None)
    if bare is not None:
        for r in ok:
            if r.layer == "http" and r is not bare:
                r.notes["x_bare_p50"] = round(r.p50_ms / bare.p50_ms, 2)
                r.notes["x_bare_p99"] = round(r.p99_ms / bare.p99_ms, 2)
                r.notes["over_bare_p50_ms"] = round(r.p50_ms - bare.p50_ms, 3)
    repo = {r.name: r for r in ok if r.layer == "repository"}
    for r in ok:
        if r.layer == "http":
            same = {"GET /api/orders/{id}": "order by id", "GET /api/orders?phone=": "orders by phone",
                    "GET /api/customers/{id}": "customer 360"}.get(r.name)
            if same in repo:
                r.notes["over_repository_p50_ms"] = round(r.p50_ms - repo[same].p50_ms, 3)


async def wait_for_quiet(max_load: float, max_wait_s: float) -> float:
    """Wait (bounded) until the 1-minute load average is under ``max_load``; return the load then."""
    deadline = time.monotonic() + max_wait_s
    load = os.getloadavg()[0]
    if load >= max_load and max_wait_s > 0:
        print(f"  load average {load:.2f} >= {max_load:g}: waiting up to {max_wait_s:.0f} s for the machine "
              "to quieten", flush=True)
    while load >= max_load and time.monotonic() < deadline:
        await asyncio.sleep(5)
        load = os.getloadavg()[0]
    return load


# --- reporting -----------------------------------------------------------------------------------


def print_progress(res: Result) -> None:
    if res.error:
        print(f"  {res.layer:<10} {res.name:<26} ERROR {res.error}", flush=True)
    else:
        print(f"  {res.layer:<10} {res.name:<26} p50 {res.p50_ms:7.3f} ms  p99 {res.p99_ms:7.3f} ms  "
              f"max {res.max_ms:8.3f} ms  {res.ops_per_s:8.0f}/s", flush=True)


def print_load(report: LoadReport) -> None:
    print("\nLoad")
    print(f"  {'table':<16} {'rows':>10} {'generate s':>11} {'COPY s':>8} {'rows/s (COPY)':>14}")
    for table in LOAD_TABLES:
        rows, copy_s = report.rows.get(table, 0), report.copy_s.get(table, 0.0)
        rate = rows / copy_s if copy_s else 0.0
        print(f"  {table:<16} {rows:>10,} {report.generate_s.get(table, 0.0):>11.2f} {copy_s:>8.2f} {rate:>14,.0f}")
    for step, secs in report.steps_s.items():
        print(f"  {step:<44} {secs:>8.2f} s")
    print(f"  {'total load (generate + COPY + indexes + vacuum)':<44} {report.total_s:>8.2f} s")


def print_table(results: list[Result]) -> None:
    print("\nLookups (sequential, one at a time; ms). ratio: repository/what-if p50 over the asyncpg floor, "
          "HTTP p50 over the bare aiohttp round trip")
    header = (f"  {'layer':<10} {'lookup':<26} {'n':>5} {'p50':>7} {'p99':>7} {'max':>8} {'ops/s':>7} "
              f"{'target p99':>10}  {'result':<6} {'ratio':>7}")
    print(header)
    print("  " + "-" * (len(header) - 2))
    for r in results:
        if r.error:
            print(f"  {r.layer:<10} {r.name:<26} ERROR: {r.error}")
            continue
        target = f"< {r.target_ms:g}" if r.target_ms is not None else "-"
        ratio = r.notes.get("x_floor_p50") or r.notes.get("x_bare_p50")
        print(f"  {r.layer:<10} {r.name:<26} {r.samples:>5} {r.p50_ms:>7.3f} {r.p99_ms:>7.3f} {r.max_ms:>8.3f} "
              f"{r.ops_per_s:>7.0f} {target:>10}  {r.verdict:<6} {('%.1fx' % ratio) if ratio else '':>7}")


def print_plans(plans: dict[str, Any], full: bool) -> None:
    print("\nQuery plans of the repository lookups (one sample each, EXPLAIN ANALYZE)")
    for lookup, entries in plans.items():
        total = sum(e["execution_ms"] or 0 for e in entries)
        print(f"  {lookup}: {len(entries)} statements, execution {total:.3f} ms in all")
        for e in entries:
            flag = "  <-- Seq Scan" if e["seq_scan"] else ""
            print(f"    exec {e['execution_ms']:.3f} ms, plan {e['planning_ms']:.3f} ms: " + " > ".join(e["nodes"]) + flag)
            if full or "text" in e:
                print("      " + e["sql"][:400])
                for line in e.get("text", []):
                    print("        " + line)


async def server_facts(cfg: Config) -> dict[str, Any]:
    conn = await asyncpg.connect(cfg.pg_url)
    try:
        facts = {"server_version": await conn.fetchval("SHOW server_version")}
        for setting in ("shared_buffers", "work_mem", "random_page_cost", "effective_cache_size", "jit"):
            facts[setting] = await conn.fetchval(f"SHOW {setting}")
        facts["database_size"] = await conn.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
        return facts
    finally:
        await conn.close()


# --- main ----------------------------------------------------------------------------------------


async def run(cfg: Config, migrate_s: float) -> dict[str, Any]:
    print(f"Loading {cfg.customers:,} customers, {cfg.orders:,} orders, {cfg.products} products "
          f"(seed {cfg.seed}) into {cfg.db_name} ...", flush=True)
    report, phones = await load(cfg)
    print_load(report)
    facts = await server_facts(cfg)
    gc.collect()

    async with contextlib.AsyncExitStack() as stack:
        probes, templates = await repository_probes(cfg, phones, stack)
        if cfg.http:
            probes += await http_probes(cfg, phones, stack)
        load_before = await wait_for_quiet(cfg.max_load, cfg.max_wait)
        print(f"\nMeasuring {len(probes)} lookups interleaved: {cfg.samples} samples each after {cfg.warmup} "
              f"warm-up calls (load average {load_before:.2f}, {os.cpu_count()} CPUs)", flush=True)
        await run_interleaved(probes, cfg.samples, cfg.warmup)
        load_after = os.getloadavg()[0]
    results = [p.result for p in probes]
    add_ratios(results)
    for r in results:
        print_progress(r)
    conn = await asyncpg.connect(cfg.pg_url)
    try:
        plans = await explain_lookups(cfg, conn, templates, results)
    finally:
        await conn.close()
    facts["cpus"] = os.cpu_count()
    facts["loadavg_1m_before_after"] = [round(load_before, 2), round(load_after, 2)]

    print_table(results)
    print(f"  (1-minute load average {load_before:.2f} before, {load_after:.2f} after the measurements; other work "
          "on the machine inflates the tails)")
    print_plans(plans, cfg.explain)
    return {
        "bench": "crm_lookup",
        "config": {"customers": cfg.customers, "orders": cfg.orders, "products": cfg.products,
                   "samples": cfg.samples, "warmup": cfg.warmup, "seed": cfg.seed},
        "environment": {"python": platform.python_version(), "platform": platform.platform(), **facts},
        "load": {"rows": report.rows, "copy_s": {k: round(v, 3) for k, v in report.copy_s.items()},
                 "generate_s": {k: round(v, 3) for k, v in report.generate_s.items()},
                 "steps_s": {k: round(v, 3) for k, v in report.steps_s.items()},
                 "migrate_s": round(migrate_s, 3), "total_s": round(report.total_s, 3)},
        "targets_p99_ms": {"repository": REPO_TARGET_MS, "http": HTTP_TARGET_MS},
        "results": [r.as_json() for r in results],
        "plans": {k: [{kk: vv for kk, vv in e.items() if kk != "text"} for e in v] for k, v in plans.items()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    asyncio.run(recreate_database(cfg))
    summary: dict[str, Any] | None = None
    try:
        migrate_s = migrate(cfg)  # before our event loop: Alembic's env.py calls asyncio.run itself
        print(f"Database {cfg.db_name} created and migrated in {migrate_s:.2f} s", flush=True)
        summary = asyncio.run(run(cfg, migrate_s))
    finally:
        if cfg.keep:
            print(f"\nKeeping database {cfg.db_name} ({cfg.pg_url})")
        else:
            asyncio.run(drop_database(cfg))
            print(f"\nDropped database {cfg.db_name}")
    if summary is not None:
        print(json.dumps(summary, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
