"""Co-browsing on a call, in headless Chromium: alice answers a phone call in the console, clicks Co-browse and
reads out the six-digit code; the caller, on the demo shop, types it into the widget ("Have a code from our
agent?"): the banner shows with End, alice sees the caller's page live. A wrong code is refused in words; the used
code opens nothing a second time. Then guided control, the second consent: alice asks, the caller allows; a click on
a category button in alice's view presses it on the caller's page; the card-number field (blocked) can be neither
clicked nor filled (the caller's page refuses, alice reads why), an ordinary field is filled; the caller takes
control back from the banner and alice's next click is refused by the hub. Screenshots: ``test-artifacts/cobrowse-call-*.png``.

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

        _guided_control(agent, shop)

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


def _point(shop: Any, frame: Any, selector: str) -> tuple[float, float]:
    """Where an element of the caller's page is in alice's view (the console page's coordinates): its place in the
    caller's viewport, scaled as the view is (a blocked element has no attributes left in the view to find it by)."""
    r = shop.locator(selector).first.evaluate("el => { const r = el.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; }")
    box = frame.frame_element().bounding_box()
    scale = box["width"] / shop.evaluate("() => document.documentElement.clientWidth")
    return box["x"] + (r[0] + r[2] / 2) * scale, box["y"] + (r[1] + r[3] / 2) * scale


def _guided_control(agent: Any, shop: Any) -> None:
    expect = sync_api.expect
    result = agent.get_by_test_id("cobrowse-control-result")
    agent.get_by_test_id("cobrowse-control").click()
    expect(agent.get_by_test_id("cobrowse-control")).to_have_text("Asking for control…")
    expect(shop.get_by_test_id("cc-control-question")).to_contain_text("asks to guide you on this page")
    shop.screenshot(path=str(ARTIFACTS / "cobrowse-call-control-ask.png"))
    shop.get_by_test_id("cc-control-allow").click()
    expect(shop.get_by_test_id("cc-cobrowse-banner-text")).to_contain_text("is guiding you on this page")
    expect(shop.get_by_test_id("cc-control-revoke")).to_be_visible()
    expect(agent.get_by_test_id("cobrowse-control")).to_have_text("Release control")
    expect(agent.get_by_test_id("cobrowse-fill")).to_be_visible()

    # a normal button: the category filter is pressed on the caller's page
    frame = _replay_frame(agent)
    category = shop.locator("#filters button[data-category]").first
    name = category.get_attribute("data-category")
    assert category.get_attribute("aria-pressed") == "false"
    agent.mouse.click(*_point(shop, frame, f'#filters button[data-category="{name}"]'))
    expect(category).to_have_attribute("aria-pressed", "true")
    expect(result).to_have_text("Done on the customer's page.")

    # the wheel over the view scrolls the caller's page
    box = agent.get_by_test_id("cobrowse-frame").bounding_box()
    agent.mouse.move(box["x"] + box["width"] / 3, box["y"] + box["height"] / 2)
    agent.mouse.wheel(0, 300)
    for _ in range(50):
        if shop.evaluate("() => scrollY") > 0:
            break
        agent.wait_for_timeout(100)
    assert shop.evaluate("() => scrollY") > 0, "the agent's wheel did not scroll the caller's page"

    # the checkout: the caller scrolls there; the card field is blocked on their side
    shop.get_by_test_id("checkout-card").scroll_into_view_if_needed()
    card_box = None
    want = shop.evaluate("() => scrollY")
    for _ in range(80):  # the view follows the caller's scroll (smoothly): wait until it is there
        frame = _replay_frame(agent)
        try:
            at = frame.evaluate("() => scrollY") if frame else -1
            card_box = frame.locator('[data-testid="checkout-gift"]').bounding_box() if at == want else None
        except Exception:  # noqa: BLE001 - being rebuilt
            card_box = None
        if card_box:
            break
        agent.wait_for_timeout(100)
    agent.wait_for_timeout(300)
    assert card_box, "the checkout did not come into the agent's view"
    agent.mouse.click(*_point(shop, frame, '[name="card"]'))
    expect(result).to_contain_text("Refused: a private field")
    agent.get_by_test_id("cobrowse-fill-input").fill("4111111111111111")
    agent.get_by_test_id("cobrowse-fill-submit").click()
    expect(result).to_contain_text("Refused: a private field")
    assert shop.get_by_test_id("checkout-card").input_value() == ""
    # the one-time code and data-private fields neither
    for selector, testid in (('[name="otp"]', "checkout-otp"), ('[name="loyalty"]', "checkout-loyalty")):
        agent.mouse.click(*_point(shop, frame, selector))
        expect(result).to_contain_text("Refused: a private field")
        agent.get_by_test_id("cobrowse-fill-submit").click()
        expect(result).to_contain_text("Refused: a private field")
        assert shop.get_by_test_id(testid).input_value() == ""
    # an ordinary field is filled
    agent.mouse.click(*_point(shop, frame, '[name="gift"]'))
    expect(result).to_have_text("Done on the customer's page.")
    agent.get_by_test_id("cobrowse-fill-input").fill("Happy birthday")
    agent.get_by_test_id("cobrowse-fill-submit").click()
    expect(shop.get_by_test_id("checkout-gift")).to_have_value("Happy birthday")
    expect(result).to_have_text("Done on the customer's page.")
    agent.screenshot(path=str(ARTIFACTS / "cobrowse-call-control.png"))

    # the caller takes control back: the hub refuses the agent's next action
    shop.get_by_test_id("cc-control-revoke").click()
    expect(shop.get_by_test_id("cc-cobrowse-banner-text")).to_contain_text("is viewing this page")
    expect(agent.get_by_test_id("cobrowse-control")).to_have_text("Ask for control")
    expect(agent.get_by_test_id("cobrowse-fill")).to_be_hidden()

