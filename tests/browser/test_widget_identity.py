"""The demo shop's "Log in as a demo customer" switch in headless Chromium (issue 19): the hub's dev route signs a
token, the widget reconnects with it, is verified, and shows the customer's own orders (and nothing for a guest);
logging out goes back to an anonymous, empty chat. The shop runs under its CSP: no violation is allowed."""

from __future__ import annotations

from typing import Iterator

import pytest

pytestmark = pytest.mark.browser

from tests.browser.harness import chromium, http, running_hub, sync_api, watch  # noqa: E402

TOKEN = "widget-identity"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_hub(tmp_path_factory.mktemp("widget-identity"), "widget-identity", TOKEN, {"WIDGET_IDENTITY_SECRET": ""}) as base:
        yield base


def test_demo_login_shows_the_customers_own_orders_in_the_widget(hub: str) -> None:
    expect = sync_api.expect
    expect.set_options(timeout=20_000)
    status, offer = http(f"{hub}/dev/widget-identity")
    assert status == 200 and offer["customers"], offer
    first = offer["customers"][0]
    status, orders = http(f"{hub}/api/orders?customer_id={first['customer_id']}", token=TOKEN)
    assert status == 200 and orders["orders"]

    dialogs: list[str] = []
    errors: list[str] = []
    with chromium() as browser:
        page = browser.new_page()
        watch(page, dialogs, errors)
        csp: list[str] = []
        page.on("console", lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None)
        page.goto(f"{hub}/shop")
        page.get_by_test_id("cc-launcher").click()
        expect(page.get_by_test_id("cc-account")).to_be_hidden()  # a guest has no orders view

        switch = page.get_by_test_id("demo-login")
        expect(switch).to_have_text("Log in as a demo customer")
        switch.click()
        expect(switch).to_contain_text(f"Signed in as {first['display_name']}")
        account = page.get_by_test_id("cc-account")
        expect(account).to_be_visible()
        expect(account).to_contain_text(first["display_name"])
        page.get_by_test_id("cc-orders-button").click()
        shown = page.get_by_test_id("cc-order")
        expect(shown).to_have_count(len(orders["orders"]))
        assert shown.evaluate_all("els => els.map(e => Number(e.dataset.orderId))") == [o["id"] for o in orders["orders"]]
        expect(shown.first).to_contain_text(f"Order #{orders['orders'][0]['id']}")
        page.get_by_test_id("cc-orders-button").click()  # back to the chat
        expect(page.get_by_test_id("cc-messages")).to_be_visible()

        # a reload keeps the shop's login (sessionStorage) and the widget is verified again
        page.reload()
        page.wait_for_function("() => !!window.ccWidget")
        page.evaluate("() => window.ccWidget.open()")  # (a reload may reopen it by itself)
        expect(page.get_by_test_id("cc-account")).to_be_visible()

        page.get_by_test_id("demo-login").click()  # log out
        expect(page.get_by_test_id("demo-login")).to_have_text("Log in as a demo customer")
        expect(page.get_by_test_id("cc-account")).to_be_hidden()
        assert not errors, errors
        assert not csp, csp
