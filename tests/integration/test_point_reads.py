"""The connect path's point read (crm_store.point_reads): same answers as the repository, on both databases."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from sqlalchemy.engine import make_url

from crm_store.db import Database
from crm_store.point_reads import CustomerRef, PointReads
from crm_store.repositories import customers as cust_repo


async def test_a_visitor_is_found_by_their_address_and_a_stranger_is_not(db: Database) -> None:
    async with db.transaction() as s:
        kim = (await cust_repo.resolve_identity(s, "web", "visitor-kim-0001", display_name="Kim Lee")).customer
        anon = (await cust_repo.resolve_identity(s, "web", "visitor-anon-002")).customer
    reads = PointReads(db)
    try:
        assert await reads.customer_by_contact("web", "visitor-kim-0001") == CustomerRef(kim.id, "Kim Lee")
        assert await reads.customer_by_contact("web", "visitor-anon-002") == CustomerRef(anon.id, "")
        assert await reads.customer_by_contact("web", "visitor-nobody-3") is None
        assert await reads.customer_by_contact("email", "visitor-kim-0001") is None  # the kind is part of the key
        # quotes and SQL in an address are data, never SQL
        assert await reads.customer_by_contact("web", "x' OR '1'='1") is None
        assert reads.fallbacks == 0
    finally:
        reads.close()


async def test_a_new_contact_point_is_seen_at_once(db: Database) -> None:
    reads = PointReads(db)
    try:
        assert await reads.customer_by_contact("web", "visitor-late-0001") is None  # the inline connection is open now
        async with db.transaction() as s:
            cust = (await cust_repo.resolve_identity(s, "web", "visitor-late-0001", display_name="Lena")).customer
        assert await reads.customer_by_contact("web", "visitor-late-0001") == CustomerRef(cust.id, "Lena")
    finally:
        reads.close()


async def test_an_address_of_a_merged_customer_leads_to_the_survivor(db: Database) -> None:
    async with db.transaction() as s:
        keep = (await cust_repo.resolve_identity(s, "email", "keep@example.com", display_name="Kim")).customer
        dup = (await cust_repo.resolve_identity(s, "web", "visitor-dup-0001")).customer
    async with db.transaction() as s:
        await cust_repo.merge_customers(s, dup.id, keep.id, actor="admin:1")
    reads = PointReads(db)
    try:
        assert await reads.customer_by_contact("web", "visitor-dup-0001") == CustomerRef(keep.id, "Kim")
    finally:
        reads.close()


async def test_sqlite_busy_falls_back_to_the_pooled_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A connection holding SQLite exclusively makes the inline read fail fast; the pooled one waits and answers."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/cc.db")
    await db.create_all()
    async with db.transaction() as s:
        cust = (await cust_repo.resolve_identity(s, "web", "visitor-busy-0001", display_name="Bo")).customer
    path = make_url(db.url).database
    await db.dispose()  # no pooled connection open: the holder can take SQLite exclusively (the pool reopens later)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE customers SET display_name = display_name")
    holder.execute("COMMIT")  # in exclusive locking mode the lock stays held after the write
    reads = PointReads(db)
    try:
        task = asyncio.ensure_future(reads.customer_by_contact("web", "visitor-busy-0001"))
        await asyncio.sleep(0.3)
        assert reads.fallbacks == 1 and not task.done()  # the inline read gave up at once; the pooled one waits
        holder.close()
        assert await asyncio.wait_for(task, 15) == CustomerRef(cust.id, "Bo")
    finally:
        reads.close()
        await db.dispose()


async def test_the_latest_open_order_of_a_caller_in_one_read(db: Database) -> None:
    """The phone greeting's order (integrations/twilio/voice.py): the newest order in an open status, with its
    promised date as a date on both databases; other customers' orders and closed ones are not it."""
    from datetime import date, datetime, timedelta, timezone

    from crm_store.models import Order
    from crm_store.point_reads import OrderRef

    t0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
    async with db.transaction() as s:
        ada = (await cust_repo.resolve_identity(s, "phone", "+15005550100", display_name="Ada")).customer
        bob = (await cust_repo.resolve_identity(s, "phone", "+15005550101", display_name="Bob")).customer
        s.add(Order(id=501, customer_id=ada.id, status="confirmed", promised_date=date(2026, 12, 9), created_at=t0))
        s.add(Order(id=502, customer_id=ada.id, status="shipped", promised_date=date(2026, 12, 8), created_at=t0 + timedelta(days=1)))
        s.add(Order(id=503, customer_id=ada.id, status="delivered", created_at=t0 + timedelta(days=2)))  # newest, closed
        s.add(Order(id=504, customer_id=bob.id, status="placed", created_at=t0 + timedelta(days=3)))
    reads = PointReads(db)
    try:
        open_ = ("placed", "confirmed", "picking", "shipped")
        assert await reads.latest_order_in(ada.id, open_) == OrderRef(502, "shipped", date(2026, 12, 8))
        assert await reads.latest_order_in(ada.id, ("confirmed",)) == OrderRef(501, "confirmed", date(2026, 12, 9))
        assert await reads.latest_order_in(bob.id, open_) == OrderRef(504, "placed", None)
        assert await reads.latest_order_in(ada.id, ("cancelled",)) is None
        assert await reads.latest_order_in(ada.id, ()) is None
        assert await reads.latest_order_in(ada.id, ("x' OR '1'='1",)) is None  # statuses are data
        assert reads.fallbacks == 0
    finally:
        reads.close()
