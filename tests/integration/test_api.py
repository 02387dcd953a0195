"""The HTTP API end to end: auth, customers, catalogue, orders, errors, OpenAPI, health and metrics."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from contact_center.api.openapi import build_openapi
from contact_center.app import create_app
from contact_center.settings import Settings
from crm_store.db import Database
from tests.factories import add_product

TOKEN = "test-service-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)  # a Monday


@pytest.fixture
async def client(db: Database, aiohttp_client: Any) -> TestClient:
    """A test client of the hub over the same database as ``db`` (SQLite and PostgreSQL)."""
    settings = Settings(database_url=db.url, service_tokens=(TOKEN,), demo_data=False, auto_migrate=False)
    return await aiohttp_client(create_app(settings, clock=lambda: NOW))


def _order(**extra: Any) -> dict[str, Any]:
    body = {
        "lines": [{"sku": "TSHIRT", "quantity": 2, "options": {"size": "M"}}],
        "delivery_address": "221B Baker Street, London",
        "phone": "+44 20 7946 0958",
    }
    body.update(extra)
    return body


async def test_api_needs_a_service_token(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        resp = await client.get("/api/products", headers=headers)
        assert resp.status == 401
        assert (await resp.json())["error"] == "unauthorized"
    assert (await client.get("/api/products", headers=AUTH)).status == 200
    assert (await client.get("/api/openapi.json")).status == 200  # the contract itself is public


async def test_order_lifecycle_over_http(client: TestClient, db: Database) -> None:
    await add_product(db, "TSHIRT", price_minor=1500, stock=5, options={"size": ["S", "M", "L"]})
    resp = await client.post("/api/orders", json=_order(), headers=AUTH)
    assert resp.status == 201, await resp.text()
    order = (await resp.json())["order"]
    assert order["status"] == "placed" and order["total_minor"] == 3000 + 495
    assert order["lines"][0]["line_total_minor"] == 3000 and order["promised_date"] == "2026-11-26"
    oid, cid = order["id"], order["customer_id"]

    local = await client.get("/api/orders", params={"phone": "020 7946 0958"}, headers=AUTH)
    assert local.status == 422  # a UK number in local format is not a valid number in the default region (US)
    by_phone = await (await client.get("/api/orders", params={"phone": "+442079460958"}, headers=AUTH)).json()
    assert [o["id"] for o in by_phone["orders"]] == [oid]

    track = await (await client.get(f"/api/orders/{oid}/track", headers=AUTH)).json()
    assert track["status"] == "placed" and track["overdue"] is False
    assert (await client.post(f"/api/orders/{oid}/status", json={"status": "confirmed"}, headers=AUTH)).status == 200
    bad = await client.post(f"/api/orders/{oid}/status", json={"status": "delivered"}, headers=AUTH)
    assert bad.status == 409 and (await bad.json())["error"] == "illegal_transition"
    cancelled = await client.post(f"/api/orders/{oid}/cancel", json={"reason": "too slow"}, headers=AUTH)
    assert cancelled.status == 200 and (await cancelled.json())["order"]["status"] == "cancelled"
    product = await (await client.get("/api/products/tshirt", headers=AUTH)).json()
    assert product["product"]["stock"] == 5

    view = await (await client.get(f"/api/customers/{cid}", headers=AUTH)).json()
    assert [p["value"] for p in view["contact_points"]] == ["+442079460958"]
    assert [o["status"] for o in view["orders"]] == ["cancelled"]
    summaries = [i["summary"] for i in view["timeline"]["items"]]
    assert summaries[0].startswith(f"Order {oid} cancelled") and any("placed" in s for s in summaries)


async def test_invalid_orders_get_422_with_fields_and_nothing_is_written(client: TestClient, db: Database) -> None:
    await add_product(db, "TSHIRT", stock=1, options={"size": ["S", "M"]})
    resp = await client.post(
        "/api/orders",
        json={"lines": [{"sku": "TSHIRT", "quantity": 0}, {"sku": "GHOST", "quantity": 1}], "email": "nope"},
        headers=AUTH,
    )
    assert resp.status == 422
    fields = {f["field"] for f in (await resp.json())["fields"]}
    assert {"lines[0].quantity", "lines[1].sku", "delivery_address", "email"} <= fields
    for body in (b"{not json", b"[1,2]"):
        r = await client.post("/api/orders", data=body, headers={**AUTH, "Content-Type": "application/json"})
        assert r.status == 400 and "JSON" in (await r.json())["message"]
    r = await client.post("/api/orders", json={"lines": "TSHIRT"}, headers=AUTH)
    assert r.status == 422
    customers = await (await client.get("/api/customers", params={"email": "nope@example.com"}, headers=AUTH)).json()
    assert customers == {"customers": []}


async def test_idempotency_key_header_replays(client: TestClient, db: Database) -> None:
    await add_product(db, "TSHIRT", stock=5, options={"size": ["M"]})
    headers = {**AUTH, "Idempotency-Key": "abc-123"}
    first = await client.post("/api/orders", json=_order(), headers=headers)
    second = await client.post("/api/orders", json=_order(), headers=headers)
    assert (first.status, second.status) == (201, 200)
    assert (await first.json())["order"]["id"] == (await second.json())["order"]["id"]


async def test_customer_search_resolve_link_and_merge(client: TestClient) -> None:
    a = await client.post("/api/customers/resolve", json={"kind": "email", "address": "Mia@Example.com", "display_name": "Mia"}, headers=AUTH)
    assert a.status == 201
    again = await client.post("/api/customers/resolve", json={"kind": "email", "address": "mia@example.com"}, headers=AUTH)
    assert again.status == 200
    a_id = (await a.json())["customer"]["id"]
    b = await client.post("/api/customers/resolve", json={"kind": "phone", "address": "+1 212 555"}, headers=AUTH)
    assert b.status == 422 and (await b.json())["fields"][0]["field"] == "phone"
    b = await client.post("/api/customers/resolve", json={"kind": "phone", "address": "+1 212 736 5000"}, headers=AUTH)
    b_id = (await b.json())["customer"]["id"]
    taken = await client.post(f"/api/customers/{a_id}/contact-points", json={"kind": "phone", "address": "+12127365000"}, headers=AUTH)
    assert taken.status == 409
    found = await (await client.get("/api/customers", params={"q": "mi"}, headers=AUTH)).json()
    assert [c["id"] for c in found["customers"]] == [a_id]
    merged = await client.post(f"/api/customers/{b_id}/merge", json={"into": a_id, "reason": "same person"}, headers=AUTH)
    assert merged.status == 200 and (await merged.json())["merge"]["moved"]["contact_points"] == 1
    view = await (await client.get(f"/api/customers/{b_id}", headers=AUTH)).json()
    assert view["customer"]["id"] == a_id and view["merged_from"] == b_id
    assert sorted(p["kind"] for p in view["contact_points"]) == ["email", "phone"]


async def test_customer_text_is_returned_as_data_not_markup(client: TestClient) -> None:
    name = '<img src=x onerror="alert(1)">'
    r = await client.post("/api/customers/resolve", json={"kind": "email", "address": "x@example.com", "display_name": name}, headers=AUTH)
    assert r.headers["Content-Type"].startswith("application/json")
    assert (await r.json())["customer"]["display_name"] == name


@pytest.mark.parametrize(
    "path",
    ["/api/customers/999999", "/api/orders/999999", "/api/orders/abc", "/api/customers/1x/timeline", "/api/products/NOPE", "/api/nothing"],
)
async def test_unknown_things_are_json_404s(client: TestClient, path: str) -> None:
    resp = await client.get(path, headers=AUTH)
    assert resp.status == 404
    assert (await resp.json())["error"] in {"not_found"}


async def test_bad_query_parameters_are_400s(client: TestClient) -> None:
    r = await client.get("/api/customers/1/timeline", params={"limit": "lots"}, headers=AUTH)
    assert r.status in (400, 404)
    r = await client.get("/api/customers", headers=AUTH)
    assert r.status == 400 and (await r.json())["fields"][0]["field"] == "q"
    r = await client.get("/api/orders", params={"phone": "12"}, headers=AUTH)
    assert r.status == 422


async def test_openapi_documents_every_route(client: TestClient) -> None:
    doc = await (await client.get("/api/openapi.json")).json()
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    app: web.Application = client.server.app  # type: ignore[attr-defined]
    mounted = {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None and r.resource.canonical.startswith("/api/") and r.method != "HEAD"
        and r.resource.canonical != "/api/openapi.json"
    }
    assert mounted and mounted == documented
    assert doc == build_openapi()


async def test_health_and_metrics(client: TestClient) -> None:
    health = await client.get("/healthz")
    assert health.status == 200 and (await health.json())["database"] is True
    await client.get("/api/products", headers=AUTH)
    text = await (await client.get("/metrics")).text()
    assert 'cc_http_requests_total{method="GET",route="/api/products",status="200"} 1.0' in text
    assert "cc_database_up 1.0" in text
