"""The console's "Call back…" (issue 15): alice books a callback for the customer on screen, in headless Chromium.

A shop visitor chats; alice accepts; she adds the phone number the customer gave her (the contact form), and
"Call back…" opens with that number prefilled. A bad number is refused in words under the form; then a slot with a
topic is booked: the panel says so, and the hub has the callback (source agent, scheduled, the topic) with its
timeline entry. Screenshot: test-artifacts/console-callback-booking.png.
"""

from __future__ import annotations

import re
from typing import Iterator

import pytest

from tests.browser.harness import ARTIFACTS, chromium, free_port, http, running_hub, sync_api, watch

pytestmark = pytest.mark.browser

TOKEN = "console-callback-booking"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("callback-booking")
    port = free_port()
    env = {"TWILIO_STANDIN": "1", "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", "RASA_URL": "", "CALLBACK_HOURS": "always",
           "MEDIA_DIR": str(tmp / "media")}
    with running_hub(tmp, "callback-booking", TOKEN, env=env, port=port) as base:
        yield base


def test_alice_books_a_callback_from_the_customer_panel(hub: str) -> None:
    expect = sync_api.expect
    expect.set_options(timeout=20_000)
    ARTIFACTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    errors: list[str] = []
    with chromium() as browser:
        agent = browser.new_context(viewport={"width": 1360, "height": 950}).new_page()
        shop = browser.new_context().new_page()
        watch(agent, dialogs, errors)
        watch(shop, dialogs, errors)
        shop.goto(f"{hub}/shop")
        shop.get_by_test_id("cc-launcher").click()
        shop.get_by_test_id("cc-name").fill("Callback Booker")
        shop.get_by_test_id("cc-input").fill("Can someone call me about my delivery?")
        shop.get_by_test_id("cc-send").click()
        expect(shop.locator('[data-testid="cc-message"][data-sender="customer"]')).to_have_attribute("data-seq", re.compile(r"^\d+$"))

        agent.goto(f"{hub}/console")
        agent.get_by_test_id("login-username").fill("alice")
        agent.get_by_test_id("login-password").fill("demo-password")
        agent.get_by_test_id("login-submit").click()
        expect(agent.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        agent.get_by_test_id("status-select").select_option("available")
        agent.get_by_test_id("offer-accept").click()
        panel = agent.get_by_test_id("customer-360")
        expect(panel.get_by_test_id("contact-add-address")).to_be_visible()  # the chat's customer on screen
        # the number the customer gave goes on the record; "Call back…" then offers it
        panel.get_by_test_id("contact-add-address").fill("(415) 555-0142")
        panel.get_by_test_id("contact-add-submit").click()
        expect(panel.get_by_test_id("contact-point").filter(has_text="+14155550142")).to_be_visible()
        booking = panel.get_by_test_id("callback-booking")
        booking.get_by_test_id("callback-book-open").click()
        expect(booking.get_by_test_id("callback-book-number")).to_have_value("+14155550142")
        when = booking.get_by_test_id("callback-book-when")
        expect(when.locator("option")).not_to_have_count(1)  # the slots arrived beside "as soon as possible"
        # a bad number: said in words, nothing booked
        booking.get_by_test_id("callback-book-number").fill("12")
        booking.get_by_test_id("callback-book-submit").click()
        expect(booking.get_by_test_id("callback-book-error")).to_contain_text("This phone number is not valid")
        # the record's number, a slot, a topic
        booking.get_by_test_id("callback-book-number").fill("+14155550142")
        slot = when.locator("option").nth(1).get_attribute("value")
        assert slot and slot != "now"
        when.select_option(slot)
        booking.get_by_test_id("callback-book-topic").fill("Delivery <b>date</b>")
        booking.get_by_test_id("callback-book-submit").click()
        result = booking.get_by_test_id("callback-book-result")
        expect(result).to_contain_text("Callback booked at")
        expect(result).to_contain_text("+14155550142: Delivery <b>date</b>")  # text, never markup
        assert booking.locator("b").count() == 0
        expect(booking.get_by_test_id("callback-book-error")).to_be_hidden()
        agent.screenshot(path=str(ARTIFACTS / "console-callback-booking.png"))

    status, found = http(f"{hub}/api/customers?phone=%2B14155550142", token=TOKEN)
    assert status == 200 and len(found["customers"]) == 1, found
    status, record = http(f"{hub}/api/customers/{found['customers'][0]['id']}", token=TOKEN)
    items = record["timeline"]["items"] if isinstance(record["timeline"], dict) else record["timeline"]
    summaries = [str(i.get("summary") or i.get("text") or i) for i in items]
    assert any("Callback requested by alice" in s for s in summaries), summaries
    assert errors == [] and dialogs == [], (errors, dialogs)
