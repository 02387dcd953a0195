"""Possible matches in the console (issue 20), in a real headless Chromium against a running hub with the demo data.

A visitor types the name and email of a demo customer with orders into the widget. The new chat's customer is a
new record (the email stays the demo customer's), and the 360 says "Possible match: NAME (#id), N orders". An
agent is told to ask a supervisor; the supervisor (Sam, who takes chats too) checks with the customer, merges
(the audited merge, with a reason), and the 360 then shows the orders and the email. Screenshots
``test-artifacts/console-possible-match-*.png``.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

pytestmark = pytest.mark.browser

from tests.browser.harness import ARTIFACTS, chromium, http, running_hub, screenshots_on_failure, sync_api, watch  # noqa: E402

TOKEN = "possible-match-e2e"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_hub(tmp_path_factory.mktemp("possible-match"), "possible-match", TOKEN) as base:
        yield base


@pytest.fixture(scope="module")
def browser(hub: str) -> Iterator[Any]:
    with chromium() as b:
        yield b


def demo_customer_with_orders(hub: str, token: str = TOKEN) -> dict[str, Any]:
    """A demo customer with a name, an email and at least one order (through the service API)."""
    status, body = http(f"{hub}/api/orders/overdue", token=token)
    assert status == 200, body
    ids = [o["customer_id"] for o in body.get("orders", body if isinstance(body, list) else [])]
    for cid in dict.fromkeys(ids):
        status, view = http(f"{hub}/api/customers/{cid}", token=token)
        emails = [p["value"] for p in view.get("contact_points", []) if p["kind"] == "email"]
        if status == 200 and emails and view["customer"].get("display_name") and len(view.get("orders", [])) >= 1:
            return {"id": cid, "name": view["customer"]["display_name"], "email": emails[0], "orders": len(view["orders"])}
    pytest.fail("the demo data has no customer with an email and an overdue order")


def test_a_returning_customer_is_recognised_and_merged_by_a_supervisor(hub: str, browser: Any) -> None:
    expect = sync_api.expect
    expect.set_options(timeout=20_000)
    ARTIFACTS.mkdir(exist_ok=True)
    camila = demo_customer_with_orders(hub)
    dialogs: list[str] = []
    errors: list[str] = []
    sup_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    shop_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    sup, shop = sup_ctx.new_page(), shop_ctx.new_page()
    for page in (sup, shop):
        watch(page, dialogs, errors)
    try:
        with screenshots_on_failure():
            sup.goto(f"{hub}/console")
            sup.get_by_test_id("login-username").fill("sam")
            sup.get_by_test_id("login-password").fill("demo-password")
            sup.get_by_test_id("login-submit").click()
            expect(sup.get_by_test_id("connection")).to_have_attribute("data-state", "online")
            sup.get_by_test_id("status-select").select_option("available")
            expect(sup.get_by_test_id("status-select")).to_have_attribute("data-confirmed", "available")

            # the visitor types the demo customer's name and email (in another case)
            shop.goto(f"{hub}/shop")
            shop.get_by_test_id("cc-launcher").click()
            shop.get_by_test_id("cc-name").fill(camila["name"])
            shop.get_by_test_id("cc-email").fill(camila["email"].upper())
            shop.get_by_test_id("cc-input").fill("Hi, where is my order?")
            shop.get_by_test_id("cc-input").press("Enter")
            expect(shop.locator('[data-testid="cc-message"][data-sender="customer"]')).to_have_count(1)

            offer = sup.get_by_test_id("offer").filter(has_text=camila["name"])
            offer.get_by_test_id("offer-accept").click()
            expect(sup.get_by_test_id("customer-name")).to_have_text(camila["name"])
            panel = sup.get_by_test_id("customer-360")
            expect(panel.get_by_test_id("order-item")).to_have_count(0)  # a new record: none of her orders yet
            match = sup.get_by_test_id("possible-match")
            expect(match).to_be_visible()
            n = camila["orders"]
            expect(match.get_by_test_id("possible-match-text")).to_have_text(
                f"Possible match: {camila['name']} (#{camila['id']}), {n} order{'' if n == 1 else 's'}")
            expect(match).to_contain_text(camila["email"])
            expect(match.get_by_test_id("possible-match-ask")).to_have_count(0)
            sup.screenshot(path=str(ARTIFACTS / "console-possible-match-1280.png"))

            # Merge… asks to check with the customer first; Cancel (or Escape) changes nothing
            merge = match.get_by_test_id("possible-match-merge")
            merge.click()
            form = match.get_by_test_id("possible-match-form")
            expect(form).to_be_visible()
            expect(form).to_contain_text("First check with the customer")
            expect(match.get_by_test_id("possible-match-reason")).to_be_focused()
            sup.keyboard.press("Escape")
            expect(form).to_be_hidden()
            expect(merge).to_be_focused()

            sup.get_by_test_id("reply-input").fill("Could you tell me the number of your last order, please?")
            sup.get_by_test_id("reply-input").press("Enter")
            expect(shop.locator('[data-testid="cc-message"][data-sender="agent"]')).to_have_count(1)
            merge.click()
            match.get_by_test_id("possible-match-reason").fill("customer confirmed her last order number in chat")
            sup.screenshot(path=str(ARTIFACTS / "console-possible-match-confirm-1280.png"))
            match.get_by_test_id("possible-match-confirm").click()

            # the 360 now shows her orders and her email; the match is gone; the timeline has the merge
            expect(panel.get_by_test_id("order-item")).to_have_count(n)
            expect(panel.get_by_test_id("contact-point").filter(has_text=camila["email"])).to_have_count(1)
            expect(sup.get_by_test_id("possible-match")).to_be_hidden()
            expect(panel.get_by_test_id("timeline-item").filter(has_text=f"customer {camila['id']} merged in")).to_have_count(1)
            expect(sup.get_by_test_id("customer-name")).to_have_text(camila["name"])
            sup.screenshot(path=str(ARTIFACTS / "console-possible-match-merged-1280.png"))

            # the conversation goes on as before
            shop.get_by_test_id("cc-input").fill("It was the blue mug")
            shop.get_by_test_id("cc-input").press("Enter")
            expect(sup.get_by_test_id("transcript")).to_contain_text("It was the blue mug")
            assert not errors, errors
            assert not dialogs, dialogs
    finally:
        sup_ctx.close()
        shop_ctx.close()
