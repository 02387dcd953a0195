"""Issue 18's alerts in SQL (SQLite and PostgreSQL) and through the API: orders at risk of missing the promised
date (the shop's shipping lead time), overdue orders, low stock against the reorder point; raised once, cleared
when the condition ends, re-opened when it comes back; the customer's own order alerts; the supervisor snapshot."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from contact_center.app import create_app
from contact_center.settings import Settings
from crm_store.db import Database
from crm_store.models import Customer, EvaluationAlert, Order, Product
from crm_store.repositories import alerts as alerts_repo
from crm_store.repositories import evaluation as eval_repo
from crm_store.repositories import marketing

NOW = datetime(2026, 11, 23, 10, tzinfo=timezone.utc)
TODAY = NOW.date()
TOKEN = "test-service-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def _setup(db: Database) -> dict[str, int]:
    """Two customers, three products (one low, one out), orders: overdue, due tomorrow, due in a week, shipped late."""
    ids: dict[str, int] = {}
    async with db.transaction() as s:
        c1, c2 = Customer(display_name="Ada Lovelace"), Customer(display_name="Alan Turing")
        s.add_all([c1, c2])
        prods = {sku: Product(sku=sku, name=f"The {sku.lower()}", price_minor=1000, stock=stock, low_stock_threshold=point)
                 for sku, stock, point in (("MUG", 50, 5), ("CAP", 3, 5), ("TEE", 0, 2))}
        s.add_all(prods.values())
        await s.flush()
        assert c1.id is not None and c2.id is not None
        orders = {}
        for name, cust, status, due in (("late", c1.id, "confirmed", TODAY - timedelta(days=2)),
                                        ("soon", c1.id, "placed", TODAY + timedelta(days=1)),
                                        ("later", c2.id, "picking", TODAY + timedelta(days=7)),
                                        ("gone", c2.id, "shipped", TODAY - timedelta(days=3))):
            orders[name] = Order(customer_id=cust, status=status, promised_date=due, total_minor=5000)
        s.add_all(orders.values())
        await s.flush()
        ids.update({k: int(v.id) for k, v in prods.items()})  # type: ignore[arg-type]
        ids.update({k: int(v.id) for k, v in orders.items()})  # type: ignore[arg-type]
        ids["c1"], ids["c2"] = int(c1.id), int(c2.id)
    return ids


async def test_alerts_are_raised_once_cleared_and_reopened(db: Database) -> None:
    ids = await _setup(db)
    first = await alerts_repo.scan(db, TODAY, NOW)
    keys = {a.key for a in first.raised}
    assert keys == {f"overdue:order:{ids['late']}", f"at_risk:order:{ids['soon']}",
                    f"low_stock:product:{ids['CAP']}", f"low_stock:product:{ids['TEE']}"}
    by_key = {a.key: a for a in first.raised}
    assert by_key[f"overdue:order:{ids['late']}"].severity == "critical"
    assert "2 days past its promised date" in by_key[f"overdue:order:{ids['late']}"].message
    assert "out of stock" in by_key[f"low_stock:product:{ids['TEE']}"].message
    # a second scan finds the same conditions: nothing raised, nothing written
    again = await alerts_repo.scan(db, TODAY, NOW + timedelta(minutes=1))
    assert again.raised == () and again.cleared == 0 and again.open == 4

    # the order due in a week comes within the lead time (2 days) five days later; the overdue one ships;
    # the cap is restocked
    async with db.transaction() as s:
        await s.execute(update(Order).where(Order.id == ids["late"]).values(status="picking"))  # type: ignore[arg-type]
        await s.execute(update(Order).where(Order.id == ids["late"]).values(status="shipped"))  # type: ignore[arg-type]
        await s.execute(update(Product).where(Product.id == ids["CAP"]).values(stock=40))  # type: ignore[arg-type]
    later = await alerts_repo.scan(db, TODAY + timedelta(days=5), NOW + timedelta(days=5))
    assert {a.key for a in later.raised} == {f"at_risk:order:{ids['later']}", f"overdue:order:{ids['soon']}"}
    assert later.cleared == 3  # overdue late (shipped), at_risk soon (now overdue), low stock cap
    # the cap runs low again: the same row is re-opened, counted twice
    async with db.transaction() as s:
        await s.execute(update(Product).where(Product.id == ids["CAP"]).values(stock=1))  # type: ignore[arg-type]
    back = await alerts_repo.scan(db, TODAY + timedelta(days=5), NOW + timedelta(days=5, minutes=1))
    assert [a.key for a in back.raised] == [f"low_stock:product:{ids['CAP']}"]
    async with db.session() as s:
        row = (await s.execute(select(EvaluationAlert).where(EvaluationAlert.key == f"low_stock:product:{ids['CAP']}"))).scalar_one()  # type: ignore[arg-type]
        assert row.times_raised == 2 and row.cleared_at is None
        listed = await alerts_repo.open_alerts(s)
        everything = await alerts_repo.open_alerts(s, include_cleared=True)
    assert [a["kind"] for a in listed][:2] == ["overdue", "low_stock"]  # critical first
    assert len(everything) == len(listed) + 2

    # the customer's panel: their own order alerts, with the shop's lead time
    async with db.session() as s:
        mine = await marketing.customer_alerts(s, ids["c1"], TODAY)  # "late" has shipped
        theirs = await marketing.customer_alerts(s, ids["c2"], TODAY)
        mine_later = await marketing.customer_alerts(s, ids["c1"], TODAY + timedelta(days=5))
    assert [(a["kind"], a["order_id"]) for a in mine] == [("at_risk", ids["soon"])]
    assert theirs == []
    assert [(a["kind"], a["order_id"]) for a in mine_later] == [("overdue", ids["soon"])]


async def test_lead_time_is_a_setting(db: Database) -> None:
    ids = await _setup(db)
    async with db.transaction() as s:
        cur = await eval_repo.load_settings(s)
        with pytest.raises(Exception) as err:
            eval_repo.merge_settings(cur, {"ship_lead_days": -1})
        assert getattr(err.value, "field", None) == "ship_lead_days"
        saved = await eval_repo.save_settings(s, eval_repo.merge_settings(cur, {"ship_lead_days": 7}), actor="test")
    assert saved.ship_lead_days == 7 and saved.to_json()["ship_lead_days"] == 7
    raised = await alerts_repo.scan(db, TODAY, NOW)
    assert f"at_risk:order:{ids['later']}" in {a.key for a in raised.raised}


@pytest.fixture
async def client(tmp_path: Path, aiohttp_client: Any) -> AsyncIterator[TestClient]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/cc.db")
    await db.create_all()
    await _setup(db)
    await db.dispose()
    settings = Settings(database_url=db.url, service_tokens=(TOKEN,), demo_data=False, auto_migrate=False)
    yield await aiohttp_client(create_app(settings, clock=lambda: NOW))


async def test_alerts_api_and_snapshot(client: TestClient) -> None:
    r = await client.get("/api/evaluation/alerts", headers=AUTH)
    assert r.status == 200, await r.text()
    body = await r.json()
    assert {a["kind"] for a in body["alerts"]} == {"overdue", "at_risk", "low_stock"} and body["ship_lead_days"] == 2
    first_ids = sorted(a["id"] for a in body["alerts"])
    again = await (await client.get("/api/evaluation/alerts", headers=AUTH)).json()
    assert sorted(a["id"] for a in again["alerts"]) == first_ids  # raised once
    snap = await (await client.get("/api/supervisor/snapshot", headers=AUTH)).json()
    assert snap["order_alerts_open"] == len(first_ids) and snap["order_alerts_critical"] >= 1 and snap["order_alerts_stamp"]
    assert "fulfilment_stamp" in snap
    spec = await (await client.get("/api/openapi.json")).json()
    assert "/api/evaluation/alerts" in spec["paths"]
