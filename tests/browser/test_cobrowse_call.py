"""Co-browsing on a call, in headless Chromium: alice answers a phone call in the console, clicks Co-browse and
reads out the six-digit code; the caller, on the demo shop, types it into the widget ("Have a code from our
agent?"): the banner shows with End, alice sees the caller's page live. A wrong code is refused in words; the used
code opens nothing a second time. Screenshots: ``test-artifacts/cobrowse-call-*.png``.

The hub is the phone test's (``tests/browser/test_console_call.py``: ``serve_hub`` with ``/test/phone/call``)."""

from __future__ import annotations

import re

from typing import Any, Iterator

import pytest

pytestmark = pytest.mark.browser

from tests.browser.harness import ARTIFACTS, chromium, http, sync_api, watch  # noqa: E402
from tests.browser.test_console_call import FakeLegs, _login, _post, running_phone_hub  # noqa: E402


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_phone_hub(tmp_path_factory.mktemp("cobrowse-call"), "cobrowse-call") as base:
        yield base


@pytest.fixture(scope="module")
def browser(hub: str) -> Iterator[Any]:
    with chromium() as b:
        yield b


def _replay_frame(agent: Any) -> Any:
    for f in agent.frames:
        parent = f.parent_frame
        if parent is not None and parent.url.endswith("/console/cobrowse-frame"):
            return f
    return None


def test_the_caller_types_the_code_and_the_agent_sees_their_page(hub: str, browser: Any) -> None:
    expect = sync_api.expect
    expect.set_options(timeout=20_000)
    ARTIFACTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    errors: list[str] = []
    legs = FakeLegs()
    actx = browser.new_context(viewport={"width": 1360, "height": 900})
    actx.route(re.compile(r"/standin/twilio/dev/clients/"), legs.handle)
    agent = actx.new_page()
    watch(agent, dialogs, errors)
    sctx = browser.new_context(viewport={"width": 1200, "height": 860})
    shop = sctx.new_page()
    watch(shop, dialogs, errors)
    status, callers = http(f"{hub}/test/phone/callers?n=1")
    assert status == 200 and callers, callers
    try:
        _login(agent, hub, "alice")
        agent.get_by_test_id("status-select").select_option("available")
        expect(agent.get_by_test_id("status-select")).to_have_attribute("data-confirmed", "available")
        call = _post(hub, "/test/phone/call", {"call_sid": "CA" + "7" * 32, "from": callers[0]["phone"], "said": ["speak to someone"]})
        offer = agent.get_by_test_id("offer").filter(has=agent.locator('[data-channel="phone"]'))
        expect(offer).to_have_count(1)
        offer.get_by_test_id("offer-accept").click()
        expect(agent.get_by_test_id("call-pane")).to_be_visible()

        # the agent asks: a code to read out, no prompt anywhere
        agent.get_by_test_id("cobrowse-open").click()
        code_el = agent.get_by_test_id("cobrowse-code")
        expect(code_el).to_have_text(re.compile(r"^\d{3} \d{3}$"))
        code = code_el.inner_text().replace(" ", "")
        agent.screenshot(path=str(ARTIFACTS / "cobrowse-call-code.png"))

        # the caller is on the shop (no chat): the widget's code entry
        shop.goto(f"{hub}/shop")
        expect(shop.get_by_test_id("product").first).to_be_visible()
        shop.get_by_test_id("cc-launcher").click()
        expect(shop.get_by_test_id("cc-cobrowse-consent")).to_be_hidden()
        shop.get_by_test_id("cc-code-toggle").click()
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        shop.get_by_test_id("cc-code-input").fill(wrong)
        shop.get_by_test_id("cc-code-submit").click()
        expect(shop.get_by_test_id("cc-code-hint")).to_have_text("That code is not valid: ask the agent for a new one.")
        expect(shop.get_by_test_id("cc-cobrowse-banner")).to_have_count(0)
        shop.get_by_test_id("cc-code-input").fill(f"{code[:3]} {code[3:]}")
        shop.get_by_test_id("cc-code-submit").click()
        banner = shop.get_by_test_id("cc-cobrowse-banner")
        expect(banner).to_contain_text("is viewing this page")
        expect(shop.get_by_test_id("cc-code-form")).to_be_hidden()
        # alice sees it live
        expect(agent.get_by_test_id("cobrowse-view")).to_have_attribute("data-state", "live")
        deadline_ok = False
        for _ in range(100):
            frame = _replay_frame(agent)
            if frame is not None:
                try:
                    if frame.locator("[data-testid=product]").count() > 0:
                        deadline_ok = True
                        break
                except Exception:  # noqa: BLE001 - being rebuilt
                    pass
            agent.wait_for_timeout(100)
        assert deadline_ok, "the caller's page did not show in the console"
        agent.screenshot(path=str(ARTIFACTS / "cobrowse-call-live.png"))
        shop.screenshot(path=str(ARTIFACTS / "cobrowse-call-shop.png"))
        # the widget knows nothing of the call: no message, no conversation of it
        assert shop.get_by_test_id("cc-messages").locator(".ccw-msg").count() == 0

        # the next page of the caller's site resumes without a code
        shop.reload()
        expect(shop.get_by_test_id("cc-cobrowse-banner")).to_contain_text("is viewing this page")

        # a second browser cannot reuse the code
        other = sctx.browser.new_context().new_page()
        other.goto(f"{hub}/shop")
        other.get_by_test_id("cc-launcher").click()
        other.get_by_test_id("cc-code-toggle").click()
        other.get_by_test_id("cc-code-input").fill(code)
        other.get_by_test_id("cc-code-submit").click()
        expect(other.get_by_test_id("cc-code-hint")).to_have_text("That code is not valid: ask the agent for a new one.")
        other.context.close()

        # the caller ends it from the banner: the recorder stops, the agent's view goes
        shop.get_by_test_id("cc-cobrowse-end").click()
        expect(banner).to_have_count(0)
        expect(agent.get_by_test_id("cobrowse-view")).to_be_hidden()
        assert call["conversation_id"]
        assert not errors, errors
    finally:
        agent.screenshot(path=str(ARTIFACTS / "cobrowse-call-final.png"))
        actx.close()
        sctx.close()



