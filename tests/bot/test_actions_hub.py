"""The bot's actions against the hub's real API (not mocked): a form run places a real order.

The hub runs as a subprocess with the demo shop and its own SQLite file; the action classes run in-process in
.venv-rasa (tests/bot/drive_actions.py), turn by turn as Rasa's order form calls them. The order they place is
then read back from SQL and from the API.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.bot.helpers import RASA_PYTHON, ROOT, free_port, http, require_rasa, running_hub

TOKEN = "bot-test-token"
DRIVER = Path(__file__).with_name("drive_actions.py")


def drive(base: str, *args: Any) -> dict[str, Any]:
    env = {**os.environ, "HUB_URL": base, "HUB_SERVICE_TOKEN": TOKEN}
    proc = subprocess.run([str(RASA_PYTHON), str(DRIVER), *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-6000:]
    return json.loads(proc.stdout)


def texts(step: dict[str, Any]) -> str:
    return "\n".join(m.get("text") or "" for m in step["messages"])


def slot_events(step: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in step["events"] if e.get("event") == "slot"}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Any:
    require_rasa()
    with running_hub(tmp_path_factory.mktemp("bothub"), "bot-actions", TOKEN) as (base, db):
        yield base, db


def test_a_form_run_places_a_real_order(hub: tuple[str, Path]) -> None:
    base, db = hub
    customer_id = 5
    result = drive(base, "order_with_correction", customer_id)
    steps = {s["action"]: s for s in result["log"]}

    first = slot_events(steps["validate (two large red t-shirts)"])
    assert first["product"] == "TSH-CLASSIC" and first["quantity"] == "2"
    assert first["size"] == "L" and first["color"] == "red"
    assert first["requested_slot"] == "delivery_address"
    corrected = slot_events(steps["validate (make that three)"])
    assert corrected["quantity"] == "3" and corrected["delivery_address"] is None
    assert corrected["requested_slot"] == "delivery_address"
    refused = steps["validate (phone the hub refuses)"]
    assert slot_events(refused)["contact"] is None
    assert "phone number doesn't look right" in texts(refused)
    summary = texts(steps["action_ask_confirm_order"])
    assert "3 x Classic T-shirt (size L, colour red) at 19.99 EUR = 59.97 EUR" in summary
    assert "total 59.97 EUR" in summary and "Estimated delivery:" in summary

    placed = result["placed"]
    custom = next(m["custom"] for m in placed["messages"] if m.get("custom"))
    order_id = custom["order_placed"]["order_id"]
    assert f"Your order number is {order_id}" in texts(placed)
    assert custom["order_placed"] == {"order_id": order_id, "total_minor": 5997, "currency": "EUR", "replayed": False}
    retry = next(m["custom"] for m in result["retry"]["messages"] if m.get("custom"))
    assert retry["order_placed"]["order_id"] == order_id and retry["order_placed"]["replayed"] is True

    with sqlite3.connect(db) as conn:
        order = conn.execute(
            "SELECT customer_id, status, channel, subtotal_minor, shipping_minor, total_minor, currency, "
            "delivery_address, contact_email, idempotency_key FROM orders WHERE id = ?", (order_id,)).fetchone()
        lines = conn.execute(
            "SELECT sku, name, options, quantity, unit_price_minor, line_total_minor FROM order_lines "
            "WHERE order_id = ?", (order_id,)).fetchall()
        same_key = conn.execute("SELECT count(*) FROM orders WHERE idempotency_key = ?", (order[9],)).fetchone()[0]
    assert order[:9] == (customer_id, "placed", "chat", 5997, 0, 5997, "EUR", "12 Oak Street, Boston MA 02110",
                         "anna.bot@example.com")
    assert order[9].startswith("rasa-") and same_key == 1
    assert [(sku, name, json.loads(opts), qty, unit, total) for sku, name, opts, qty, unit, total in lines] == [
        ("TSH-CLASSIC", "Classic T-shirt", {"size": "L", "color": "red"}, 3, 1999, 5997)]

    status, body = http(f"{base}/api/orders/{order_id}", token=TOKEN)
    assert status == 200 and body["order"]["total_minor"] == 5997 and body["order"]["customer_id"] == customer_id


def test_tracking_and_cancelling_through_the_hub(hub: tuple[str, Path]) -> None:
    base, db = hub
    customer_id = 7
    status, body = http(f"{base}/api/orders", {"lines": [{"sku": "MUG-CLASSIC", "quantity": 1}],
                                               "delivery_address": "1 Main Street, Springfield 12345",
                                               "email": "bot.cancel@example.com", "customer_id": customer_id},
                        token=TOKEN)
    assert status == 201, body
    order_id = body["order"]["id"]
    log = drive(base, "track_and_cancel", customer_id, order_id)["log"]
    track, prepare, cancel, again, foreign = log
    assert f"Your latest order: Order {order_id} has been placed" in texts(track)
    assert "Expected delivery:" in texts(track)
    assert f"Order {order_id}: 1 x Classic Logo Mug" in texts(prepare) and "Shall I cancel it?" in texts(prepare)
    assert slot_events(prepare)["cancel_order_id"] == str(order_id)
    assert f"Order {order_id} is cancelled" in texts(cancel)
    assert "can't be cancelled any more" in texts(again)
    assert "I can't find an order with the number 1" in texts(foreign)  # order 1 is another customer's
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status FROM orders WHERE id = ?", (order_id,)).fetchone()[0] == "cancelled"


def test_the_hubs_stock_rule_reaches_the_customer(hub: tuple[str, Path]) -> None:
    base, _db = hub
    status, body = http(f"{base}/api/products", token=TOKEN)
    low = min((p for p in body["products"] if not p["options"] and p["stock"] > 0), key=lambda p: p["stock"])
    assert low["stock"] < 100  # the demo shop keeps some products scarce
    step = drive(base, "not_enough_stock", low["sku"], low["stock"])["step"]
    assert slot_events(step)["quantity"] is None and slot_events(step)["product"] == low["sku"]
    assert f"only {low['stock']} left of {low['name']}" in texts(step)
    assert slot_events(step)["requested_slot"] == "quantity"


def test_an_unreachable_hub_hands_the_customer_over() -> None:
    require_rasa()
    step = drive(f"http://127.0.0.1:{free_port()}", "handoff_when_hub_down")["step"]
    custom = next(m["custom"] for m in step["messages"] if m.get("custom"))
    assert custom["handoff"] is True and custom["reason"] == "hub_unavailable"
    assert custom["slots"]["product"] == "HOD-ZIP" and custom["intent"] == "order_product"
    assert "I can't reach our order system" in texts(step)
    assert slot_events(step)["handed_off"] is True
