"""The console's customer panel shows value, attrition and a next best offer (issue 18), in headless Chromium.

The hub runs with the demo data (its timer scores customers and adds the demo shop's offer rules at start).
A shop visitor chats; before alice accepts, the visitor's new record is merged into a demo customer at
high risk of attrition (the way a back office joins two records of one person), so the chat is that
customer's. Alice sees the segment, the three scores, the reason for the risk, the offers from the rules
with their scripts, marks one accepted and adds its product to an order draft in one click.
Screenshots: test-artifacts/console-customer-value.png, -panel.png (the section), -order.png (the draft).
"""

from __future__ import annotations

import re
import time
from typing import Any, Iterator

import pytest

pytestmark = pytest.mark.browser

from tests.browser.harness import ARTIFACTS, chromium, http, running_hub, sync_api, watch  # noqa: E402

TOKEN = "console-customer-value"


def _http(url: str, body: Any = None, *, method_token: str | None = TOKEN) -> tuple[int, Any]:
    return http(url, body, token=method_token)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_hub(tmp_path_factory.mktemp("console-value"), "console-value", TOKEN) as base:
        yield base


@pytest.fixture(scope="module")
def browser(hub: str) -> Iterator[Any]:
    with chromium() as b:
        yield b


def _at_risk_customer(hub: str) -> tuple[int, dict[str, Any]]:
    """A demo customer in the at-risk segment with high attrition (waits for the hub's first scoring)."""
    deadline = time.monotonic() + 60
    while True:
        status, data = _http(f"{hub}/api/customers/1/value")
        if status == 200 and data["value"].get("scores") is not None:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"customer values were not computed: {status} {data}")
        time.sleep(0.5)
    for cid in range(1, 600):
        status, data = _http(f"{hub}/api/customers/{cid}/value?channel=chat")
        if status == 200 and data["value"]["segment"] == "at_risk" and data["value"]["attrition"] == "high":
            return cid, data
    pytest.fail("no demo customer at risk")


def test_the_customer_panel_shows_value_and_a_next_best_offer(hub: str, browser: Any) -> None:
    expect = sync_api.expect
    expect.set_options(timeout=20_000)
    ARTIFACTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    errors: list[str] = []
    customer_id, value = _at_risk_customer(hub)

    # an admin rule with a product, first for at-risk customers: the offer the agent will add to an order
    status, catalogue = _http(f"{hub}/api/products")
    product = next(p for p in catalogue["products"] if p["stock"] >= 5 and not p["options"])
    status, made = _http(f"{hub}/api/offer-rules", {
        "name": "Welcome back gift", "priority": 500, "offer": f"{product['name']} at half price",
        "offer_sku": product["sku"], "script": f"Since you are back, the {product['name']} is half price today.",
        "conditions": {"segments": ["at_risk"], "attrition": ["high"]},
    })
    assert status == 201, made

    agent_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    shop_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    agent, shop = agent_ctx.new_page(), shop_ctx.new_page()
    watch(agent, dialogs, errors)
    watch(shop, dialogs, errors)
    try:
        shop.goto(f"{hub}/shop")
        shop.get_by_test_id("cc-launcher").click()
        shop.get_by_test_id("cc-name").fill("Returning Customer")
        shop.get_by_test_id("cc-email").fill("returning.e2e@example.com")
        shop.get_by_test_id("cc-input").fill("Hello, is the sale still on?")
        shop.get_by_test_id("cc-send").click()
        expect(shop.locator('[data-testid="cc-message"][data-sender="customer"]')).to_have_attribute("data-seq", re.compile(r"^\d+$"))
        status, found = _http(f"{hub}/api/customers?email=returning.e2e@example.com")
        assert status == 200 and len(found["customers"]) == 1, found
        visitor_id = int(found["customers"][0]["id"])
        status, merged = _http(f"{hub}/api/customers/{visitor_id}/merge", {"into": customer_id, "reason": "same person (browser test)"})
        assert status == 200, merged

        agent.goto(f"{hub}/console")
        agent.get_by_test_id("login-username").fill("alice")
        agent.get_by_test_id("login-password").fill("demo-password")
        agent.get_by_test_id("login-submit").click()
        expect(agent.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        agent.get_by_test_id("status-select").select_option("available")
        agent.get_by_test_id("offer-accept").click()

        panel = agent.get_by_test_id("customer-360").get_by_test_id("customer-value")
        expect(panel.get_by_test_id("value-segment")).to_have_text("At risk")
        scores = value["value"]["scores"]
        expect(panel.get_by_test_id("value-scores")).to_contain_text(f"R {scores['r']} · F {scores['f']} · M {scores['m']}")
        expect(panel.get_by_test_id("value-attrition")).to_contain_text("High attrition risk")
        expect(panel.get_by_test_id("value-attrition")).to_contain_text(re.compile(r"last order \d+ days ago"))
        offers = panel.get_by_test_id("nbo")
        expect(offers.first).to_be_visible()
        assert 1 <= offers.count() <= 3
        first = offers.first
        expect(first.get_by_test_id("nbo-title")).to_have_text(f"{product['name']} at half price")
        expect(first.get_by_test_id("nbo-why")).to_contain_text("rule 'Welcome back gift': segment at risk, attrition risk high")
        expect(first.get_by_test_id("nbo-script")).to_contain_text("half price today")
        # the demo shop's win-back rule comes next
        expect(offers.nth(1).get_by_test_id("nbo-title")).to_have_text("10 % off the next order, this week")
        agent.screenshot(path=str(ARTIFACTS / "console-customer-value.png"))
        panel.scroll_into_view_if_needed()
        panel.screenshot(path=str(ARTIFACTS / "console-customer-value-panel.png"))

        first.get_by_test_id("nbo-accepted").click()
        expect(first.get_by_test_id("nbo-status")).to_have_text("Accepted")
        first.get_by_test_id("nbo-add-to-order").click()
        expect(agent.get_by_test_id("new-order-product").first).to_have_value(product["sku"])
        agent.screenshot(path=str(ARTIFACTS / "console-customer-value-order.png"))

        status, stats = _http(f"{hub}/api/offers/stats")
        assert status == 200
        assert any(s["rule_id"] == made["rule"]["id"] and s["accepted"] == 1 and s["actor"] == "agent:alice" for s in stats["stats"]), stats
        # the supervisor's side: the ranked fulfilment queue with its explanations
        status, queue = _http(f"{hub}/api/fulfilment/queue?limit=5")
        assert status == 200 and queue["orders"] and queue["orders"][0]["position"] == 1
        assert not errors, errors
    finally:
        agent_ctx.close()
        shop_ctx.close()
