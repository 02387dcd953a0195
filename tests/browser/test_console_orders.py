"""The agent console's order tools in a real headless Chromium: order lookup and "New order" for a chatting customer.

Same set-up as ``test_chat_e2e.py`` (shared in ``tests/browser/harness.py``): the hub runs as a
subprocess on a fresh SQLite file with the demo data, agent ``alice`` uses ``/console`` and a shop visitor
chats from ``/shop``. Everything the console shows is checked again over the HTTP API with the service token.
Screenshots go to ``test-artifacts/`` (console-lookup.png, console-orders.png, console-orders-placed.png).
"""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Iterator

import pytest

from crm_store.domain.pricing import FREE_SHIPPING_FROM_MINOR, SHIPPING_FEE_MINOR

pytestmark = pytest.mark.browser

from tests.browser.harness import ARTIFACTS, chromium, http, running_hub, sync_api, watch  # noqa: E402

TOKEN = "console-orders"


def _http(url: str, body: Any = None, *, token: str | None = TOKEN, timeout: float = 10) -> tuple[int, Any]:
    """A JSON call to the hub, with this module's service token unless told otherwise."""
    return http(url, body, token=token, timeout=timeout)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A hub on a free port with the demo data; yields its base URL."""
    with running_hub(tmp_path_factory.mktemp("console-orders"), "console-orders", TOKEN) as base:
        yield base


@pytest.fixture(scope="module")
def browser(hub: str) -> Iterator[Any]:
    with chromium() as b:
        yield b


_watch = watch


def _money(minor: int, currency: str = "EUR") -> str:
    return f"{minor // 100}.{minor % 100:02d} {currency}"


def _demo_customer_with_phone_orders(hub: str) -> tuple[int, str, list[dict[str, Any]]]:
    """A demo customer who has a phone on file and orders: (id, phone in E.164, orders)."""
    for customer_id in range(1, 400):
        status, data = _http(f"{hub}/api/customers/{customer_id}")
        if status != 200:
            continue
        phones = [p["value"] for p in data["contact_points"] if p["kind"] == "phone"]
        if phones and data["orders"]:
            status, found = _http(f"{hub}/api/orders?phone={urllib.parse.quote(phones[0])}")
            assert status == 200, found
            if found["orders"]:
                return customer_id, phones[0], found["orders"]
    pytest.fail("no demo customer with a phone and orders")


def _spaced(e164: str) -> str:
    """+4930123456 -> "+49 3012 3456": how an agent might type it (the hub normalises)."""
    head, rest = e164[:3], e164[3:]
    return f"{head} {rest[: len(rest) // 2]} {rest[len(rest) // 2 :]}"


def _login(page: Any, hub: str, username: str) -> None:
    expect = sync_api.expect
    page.goto(f"{hub}/console")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill("demo-password")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "online")


def test_order_lookup_and_new_order_for_a_chatting_customer(hub: str, browser: Any) -> None:
    expect = sync_api.expect
    expect.set_options(timeout=20_000)
    ARTIFACTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    errors: list[str] = []

    agent_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    customer_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    agent = agent_ctx.new_page()
    shop = customer_ctx.new_page()
    _watch(agent, dialogs, errors)
    _watch(shop, dialogs, errors)

    try:
        _login(agent, hub, "alice")
        search = agent.get_by_test_id("order-search")
        results = agent.get_by_test_id("order-result")
        lookup_error = agent.get_by_test_id("order-search-error")

        # --- look up an order by its number: the card, then its lines and history
        demo_id, phone, phone_orders = _demo_customer_with_phone_orders(hub)
        order_id = phone_orders[0]["id"]
        status, full = _http(f"{hub}/api/orders/{order_id}")
        assert status == 200, full
        full = full["order"]
        search.fill(str(order_id))
        agent.get_by_test_id("order-search-submit").click()
        expect(results).to_have_count(1)
        expect(results).to_have_attribute("data-order-id", str(order_id))
        expect(results).to_contain_text(f"#{order_id}")
        expect(results).to_contain_text(full["total"])
        expect(results.locator(".status").first).to_have_text(re.compile(full["status"].replace("_", " "), re.I))
        if full["promised_date"]:
            expect(results).to_contain_text("promised")
        expect(results.get_by_test_id("order-overdue")).to_have_count(1 if full.get("overdue") else 0)
        detail = agent.get_by_test_id("order-detail")
        results.click()  # clicking the card shows (keeps) its lines and history
        expect(detail).to_be_visible()
        expect(detail.get_by_test_id("order-line")).to_have_count(len(full["lines"]))
        for line in full["lines"]:
            expect(detail).to_contain_text(line["name"])
        expect(detail.get_by_test_id("order-event")).to_have_count(len(full["events"]))
        expect(lookup_error).to_be_hidden()

        # --- by phone (typed with spaces): every order of that customer, newest first; a card opens its detail
        search.fill(_spaced(phone))
        search.press("Enter")
        expect(results).to_have_count(len(phone_orders))
        assert results.evaluate_all("els => els.map(e => Number(e.dataset.orderId))") == [o["id"] for o in phone_orders]
        expect(detail).to_have_count(0)
        results.first.click()
        expect(detail).to_be_visible()
        expect(detail).to_have_attribute("data-order-id", str(phone_orders[0]["id"]))
        agent.screenshot(path=str(ARTIFACTS / "console-lookup.png"))

        # --- errors read as sentences: an unknown order, an impossible phone, an email without a domain
        search.fill("99999999")
        agent.get_by_test_id("order-search-submit").click()
        expect(lookup_error).to_contain_text("No order #99999999")
        expect(results).to_have_count(0)
        search.fill("+1 555 12")
        agent.get_by_test_id("order-search-submit").click()
        expect(lookup_error).to_contain_text("Phone: not a valid phone number")
        search.fill("someone@")
        agent.get_by_test_id("order-search-submit").click()
        expect(lookup_error).to_contain_text("Email:")
        search.fill("hello there")
        agent.get_by_test_id("order-search-submit").click()
        expect(lookup_error).to_contain_text("Not an order number")

        # --- a shop visitor (with an email) writes; alice accepts
        shop.goto(f"{hub}/shop")
        shop.get_by_test_id("cc-launcher").click()
        shop.get_by_test_id("cc-name").fill("Nora Quinn")
        shop.get_by_test_id("cc-email").fill("nora.quinn.e2e@example.com")
        shop.get_by_test_id("cc-input").fill("Hi, I'd like to order something")
        shop.get_by_test_id("cc-send").click()
        expect(shop.locator('[data-testid="cc-message"][data-sender="customer"]')).to_have_attribute("data-seq", re.compile(r"^\d+$"))
        status, found = _http(f"{hub}/api/customers?email=nora.quinn.e2e@example.com")
        assert status == 200 and len(found["customers"]) == 1, found
        customer_id = int(found["customers"][0]["id"])

        agent.get_by_test_id("status-select").select_option("available")
        agent.get_by_test_id("offer-accept").click()
        c360 = agent.get_by_test_id("customer-360")
        expect(c360.get_by_test_id("customer-name")).to_have_text("Nora Quinn")
        expect(c360.get_by_test_id("contact-point").filter(has_text="nora.quinn.e2e@example.com")).to_have_count(1)
        expect(c360.get_by_test_id("order-item")).to_have_count(0)

        # --- the product: one with two options and enough stock, below the free-shipping threshold x2
        status, catalogue = _http(f"{hub}/api/products")
        assert status == 200, catalogue
        product = next(
            p for p in catalogue["products"] if len(p["options"]) >= 2 and p["stock"] >= 10 and p["price_minor"] * 2 < FREE_SHIPPING_FROM_MINOR
        )
        sku, unit, stock_before = product["sku"], product["price_minor"], product["stock"]
        choice = {name: values[-1] for name, values in product["options"].items()}
        out_of_stock = [p for p in catalogue["products"] if p["stock"] <= 0]
        qty = 2

        agent.get_by_test_id("new-order-open").click()
        expect(agent.get_by_test_id("new-order-email")).to_have_value("nora.quinn.e2e@example.com")
        expect(agent.get_by_test_id("new-order-phone")).to_have_value("")
        picker = agent.get_by_test_id("new-order-product")
        expect(picker.locator(f'option[value="{sku}"]')).to_have_count(1)
        expect(picker.locator(f'option[value="{sku}"]')).to_contain_text(product["price"])
        for p in out_of_stock:  # the demo catalogue has some: they cannot be picked
            expect(picker.locator(f'option[value="{p["sku"]}"]')).to_be_disabled()
        picker.select_option(sku)
        for name, value in choice.items():
            agent.get_by_test_id(f"new-order-option-{name}").select_option(value)
        agent.get_by_test_id("new-order-address").fill("7 Harbour Lane, Portland, ME 04101")

        # an invalid quantity: the hub's 422 is shown next to the quantity, nothing is placed
        agent.get_by_test_id("new-order-quantity").fill("0")
        agent.get_by_test_id("new-order-submit").click()
        qty_error = agent.get_by_test_id("new-order-line").first.locator('[data-testid="new-order-field-error"][data-field="lines[0].quantity"]')
        expect(qty_error).to_be_visible()
        expect(qty_error).to_contain_text("whole number from 1 to 100")
        expect(agent.get_by_test_id("new-order-quantity")).to_have_attribute("aria-invalid", "true")
        expect(agent.get_by_test_id("new-order-error")).to_contain_text("highlighted")
        box = agent.get_by_test_id("new-order-quantity").bounding_box()
        err_box = qty_error.bounding_box()
        assert box and err_box and 0 <= err_box["y"] - (box["y"] + box["height"]) < 40, (box, err_box)  # right below it
        assert _http(f"{hub}/api/orders?customer_id={customer_id}")[1]["orders"] == []

        # fixing the field clears its error; the quote is the hub's own
        agent.get_by_test_id("new-order-quantity").fill(str(qty))
        expect(qty_error).to_be_hidden()
        agent.get_by_test_id("new-order-quote").click()
        lines = [{"sku": sku, "quantity": qty, "options": choice}]
        status, quote = _http(
            f"{hub}/api/orders/quote", {"lines": lines, "delivery_address": "7 Harbour Lane, Portland, ME 04101", "email": "nora.quinn.e2e@example.com"}
        )
        assert status == 200, quote
        shipping = 0 if unit * qty >= FREE_SHIPPING_FROM_MINOR else SHIPPING_FEE_MINOR
        assert quote["shipping_minor"] == shipping
        assert quote["total_minor"] == unit * qty + shipping
        expect(agent.get_by_test_id("new-order-quote-total")).to_have_text(_money(unit * qty + shipping))
        expect(agent.get_by_test_id("new-order-quote-box")).to_contain_text(_money(shipping) if shipping else "free")
        expect(agent.get_by_test_id("new-order-quote-box")).to_contain_text(f"{qty} × {product['name']}")
        expect(agent.get_by_test_id("new-order-quote-delivery")).not_to_have_text("—")
        agent.screenshot(path=str(ARTIFACTS / "console-orders.png"))

        # --- place it (a double click must not place two orders)
        agent.get_by_test_id("new-order-submit").dblclick()
        result = agent.get_by_test_id("new-order-result")
        expect(result).to_have_text(re.compile(r"^Order #\d+ placed$"))
        new_id = int(re.search(r"#(\d+)", result.inner_text()).group(1))  # type: ignore[union-attr]
        expect(c360.get_by_test_id("order-item")).to_have_count(1)
        expect(c360.get_by_test_id("order-item")).to_have_attribute("data-order-id", str(new_id))
        expect(c360.get_by_test_id("timeline-item").filter(has_text=f"Order {new_id} placed")).to_have_count(1)
        expect(agent.get_by_test_id("close-disposition")).to_have_value("order_placed")
        agent.screenshot(path=str(ARTIFACTS / "console-orders-placed.png"))

        # --- the hub agrees: one order, for this customer, these lines, this total, and the stock went down
        status, mine = _http(f"{hub}/api/orders?customer_id={customer_id}")
        assert status == 200 and [o["id"] for o in mine["orders"]] == [new_id], mine
        status, placed = _http(f"{hub}/api/orders/{new_id}")
        assert status == 200, placed
        placed = placed["order"]
        assert placed["customer_id"] == customer_id
        assert placed["status"] == "placed"
        assert placed["total_minor"] == quote["total_minor"] == unit * qty + shipping
        assert placed["shipping_minor"] == shipping
        assert placed["contact_email"] == "nora.quinn.e2e@example.com"
        assert placed["delivery_address"] == "7 Harbour Lane, Portland, ME 04101"
        assert [(li["sku"], li["quantity"], li["options"], li["unit_price_minor"]) for li in placed["lines"]] == [(sku, qty, choice, unit)]
        assert placed["events"][0]["actor"] == "agent:alice", placed["events"]
        status, after = _http(f"{hub}/api/products/{sku}")
        assert status == 200 and after["product"]["stock"] == stock_before - qty, (stock_before, after)

        # --- the order card of the 360 opens the order in the Orders tab
        c360.get_by_test_id("order-item").click()
        expect(agent.get_by_test_id("order-detail")).to_be_visible()
        expect(agent.get_by_test_id("order-detail")).to_contain_text(product["name"])
        expect(search).to_have_value(str(new_id))

        assert dialogs == [], dialogs
        assert errors == [], errors
    except Exception:
        for page, name in ((agent, "console-orders-failure.png"), (shop, "console-orders-customer-failure.png")):
            try:
                page.screenshot(path=str(ARTIFACTS / name))
            except Exception:  # noqa: BLE001 - best effort while reporting the real failure
                pass
        raise
    finally:
        agent_ctx.close()
        customer_ctx.close()
