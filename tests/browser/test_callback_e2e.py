"""Web callback end to end in real Chromium, through the real Twilio stand-in mounted in the hub (``TWILIO_STANDIN=1``).

A shop visitor opens the widget, asks "Call me back" now with a topic: the widget confirms with their place in the
queue. alice (Available) gets the offer as a web callback with the topic, accepts: the stand-in's softphone answers
her leg in ``conv-<id>``, the hub dials the customer's number (the stand-in rings it; answered through ``/dev/phone``'s
API), both are in the conference and the call card shows Connected; the customer hangs up and the callback is
completed. alice then calls the customer back herself with "Call" on their record (click-to-call: refused in words
while the ended call is still hers, placed once she wrapped it up). Then a second request is cancelled from the widget. Last, the queue closed until tomorrow (its callback settings
through the API): the form says "We are closed now" and when, and a "now" request is confirmed for the opening. Screenshots ``test-artifacts/callback-e2e-*.png``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

import pytest

from tests.browser.harness import ARTIFACTS, chromium, free_port, http, running_hub, sync_api, watch

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TOKEN = "callback-e2e-token"
CUSTOMER = "+14155550142"
TIMEOUT = 45_000


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("callback-e2e")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"TWILIO_STANDIN": "1", "PUBLIC_BASE_URL": base, "RASA_URL": "", "CALLBACK_HOURS": "always",
           "MEDIA_DIR": str(tmp / "media")}
    with running_hub(tmp, "callback-e2e", TOKEN, env=env, port=port) as url:
        yield url


def _wait_for(page: Any, probe: Callable[[], Any], what: str, timeout_ms: int = TIMEOUT) -> Any:
    waited = 0
    while waited < timeout_ms:
        found = probe()
        if found:
            return found
        page.wait_for_timeout(250)
        waited += 250
    raise AssertionError(f"timed out waiting for {what}")


def _customer_call(base: str) -> str | None:
    status, body = http(f"{base}/dev/phone/api/calls?number={CUSTOMER.replace('+', '%2B')}")
    calls = body.get("calls") if status == 200 and isinstance(body, dict) else None
    ringing = [c for c in calls or [] if c.get("status") == "ringing"]
    return str(ringing[-1]["call_sid"]) if ringing else None


def test_a_visitor_asks_to_be_called_back_and_alice_calls(hub: str) -> None:
    expect = sync_api.expect
    expect.set_options(timeout=TIMEOUT)
    ARTIFACTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    errors: list[str] = []
    with chromium() as browser:
        ctx = browser.new_context()
        agent, shop = ctx.new_page(), ctx.new_page()
        agent.set_viewport_size({"width": 1360, "height": 900})
        for page in (agent, shop):
            watch(page, dialogs, errors)
        # alice, Available, with the stand-in's softphone
        agent.goto(f"{hub}/console")
        agent.get_by_test_id("login-username").fill("alice")
        agent.get_by_test_id("login-password").fill("demo-password")
        agent.get_by_test_id("login-submit").click()
        expect(agent.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        expect(agent.get_by_test_id("softphone-status")).to_have_attribute("data-state", "ready")
        agent.get_by_test_id("status-select").select_option("available")

        # the visitor's form: a bad number is said at once; then the real one, now, with a topic
        shop.goto(f"{hub}/shop")
        shop.get_by_test_id("cc-launcher").click()
        shop.get_by_test_id("cc-callback-button").click()
        form = shop.get_by_test_id("cc-callback")
        expect(form).to_be_visible()
        phone = shop.get_by_test_id("cc-callback-phone")
        phone.fill("call me <b>now</b>")
        expect(phone).to_have_attribute("aria-invalid", "true")
        expect(shop.get_by_test_id("cc-callback-hint")).to_contain_text("Digits only")
        phone.fill("(415) 555-0142")
        shop.get_by_test_id("cc-callback-topic").fill("Where is my <b>order</b>?")
        shop.get_by_test_id("cc-callback-submit").click()
        done = shop.get_by_test_id("cc-callback-done")
        expect(done).to_contain_text("We will call you as soon as an agent is free on +14155550142")
        shop.screenshot(path=str(ARTIFACTS / "callback-e2e-widget-booked.png"))

        # the console: the offer is a web callback with the topic (as text, never markup); alice accepts
        offer = agent.get_by_test_id("offer").filter(has=agent.locator('[data-channel="callback"]'))
        expect(offer).to_have_count(1)
        expect(offer).to_contain_text("Where is my <b>order</b>?")
        agent.screenshot(path=str(ARTIFACTS / "callback-e2e-console-offer.png"))
        offer.get_by_test_id("offer-accept").click()

        # her leg is answered by the stand-in softphone; the hub dials the customer, who answers
        sid = _wait_for(agent, lambda: _customer_call(hub), "the customer's phone to ring")
        assert http(f"{hub}/dev/phone/api/calls/{sid}/answer", {})[0] == 200
        card = agent.get_by_test_id("call-pane").get_by_test_id("call-card")
        expect(card).to_have_attribute("data-state", "connected")
        # a call owes no written reply: the request's line ("Callback: ...") does not make it "Needs reply"
        expect(agent.get_by_test_id("call-pane").get_by_test_id("call-transcript-head")).to_have_text(
            "Before you: the callback request and its attempts")
        expect(agent.locator("#conversations [data-testid=needs-reply]")).to_have_count(0)
        legs = _wait_for(agent, lambda: [leg for leg in http(f"{hub}/standin/twilio/dev/clients/agent_1")[1] or []
                                         if leg["status"] == "in-progress"] or [leg for leg in _all_agent_legs(hub) if leg["status"] == "in-progress"],
                         "alice's leg in the room")
        assert legs[0]["conference"].startswith("conv-")
        agent.screenshot(path=str(ARTIFACTS / "callback-e2e-console-connected.png"))
        # the customer hangs up: the card ends, the callback is completed
        assert http(f"{hub}/dev/phone/api/calls/{sid}/hangup", {})[0] == 200
        expect(card).to_have_attribute("data-state", "ended")
        shop.screenshot(path=str(ARTIFACTS / "callback-e2e-widget-after.png"))

        # click-to-call from the customer's record (the ended callback still open: it is this customer's, so it does
        # not count against her): refused in words while she is away, placed once she is available
        call = agent.get_by_test_id("customer-call")
        expect(call).to_be_visible()
        agent.get_by_test_id("status-select").select_option("away")
        call.click()
        expect(agent.locator("#toasts .toast.error").last).to_contain_text("set yourself Available")
        agent.get_by_test_id("status-select").select_option("available")
        call.click()
        expect(agent.locator("#toasts .toast").last).to_contain_text(f"Calling {CUSTOMER}")
        again = _wait_for(agent, lambda: _customer_call(hub), "the customer's phone to ring for alice's call")
        assert again != sid
        assert http(f"{hub}/dev/phone/api/calls/{again}/answer", {})[0] == 200
        card = agent.get_by_test_id("call-pane").get_by_test_id("call-card")
        expect(card).to_have_attribute("data-state", "connected")
        agent.screenshot(path=str(ARTIFACTS / "callback-e2e-click-to-call.png"))
        assert http(f"{hub}/dev/phone/api/calls/{again}/hangup", {})[0] == 200
        expect(card).to_have_attribute("data-state", "ended")

        # a second visitor books a slot and cancels it from the widget
        other = browser.new_context().new_page()  # another visitor: their own storage
        watch(other, dialogs, errors)
        other.goto(f"{hub}/shop")
        other.get_by_test_id("cc-launcher").click()
        other.get_by_test_id("cc-callback-button").click()
        when = other.get_by_test_id("cc-callback-when")
        expect(when.locator("option")).not_to_have_count(1)  # the slots arrived (shown in the browser's time zone)
        when.select_option(index=3)
        other.get_by_test_id("cc-callback-phone").fill("+1 415 555 0143")
        other.get_by_test_id("cc-callback-submit").click()
        expect(other.get_by_test_id("cc-callback-done")).to_contain_text("We will call you at")
        other.get_by_test_id("cc-callback-cancel").click()
        expect(other.get_by_test_id("cc-callback-hint")).to_have_text("Your callback is cancelled.")

        # the queue closed until tomorrow (its settings through the API): the form says so before and after "now"
        _put_settings(hub, {"callback_hours": f"{(datetime.now(timezone.utc) + timedelta(days=1)).weekday()} 09:00-17:00"})
        late = browser.new_context().new_page()
        watch(late, dialogs, errors)
        late.goto(f"{hub}/shop")
        late.get_by_test_id("cc-launcher").click()
        late.get_by_test_id("cc-callback-button").click()
        expect(late.get_by_test_id("cc-callback-hint")).to_contain_text("We are closed now: we will call you when we open")
        expect(late.get_by_test_id("cc-callback-when").locator('option[value="now"]')).to_contain_text("When we open (")
        late.get_by_test_id("cc-callback-phone").fill("+1 415 555 0144")
        late.get_by_test_id("cc-callback-submit").click()
        expect(late.get_by_test_id("cc-callback-done")).to_contain_text("We are closed now: we will call you when we open, at")
        late.screenshot(path=str(ARTIFACTS / "callback-e2e-widget-closed.png"))
        _put_settings(hub, {"callback_hours": ""})
    assert dialogs == [] and errors == [], (dialogs, errors)


def _put_settings(hub: str, body: dict[str, Any]) -> None:
    import json
    import urllib.request

    req = urllib.request.Request(f"{hub}/api/queues/support/callback-settings", data=json.dumps(body).encode(), method="PUT",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


def _all_agent_legs(hub: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for agent_id in range(1, 8):
        status, legs = http(f"{hub}/standin/twilio/dev/clients/agent_{agent_id}")
        if status == 200 and isinstance(legs, list):
            out.extend(legs)
    return out
