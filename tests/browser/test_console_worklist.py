"""The working console and the widget (issue 20), in a real headless Chromium against a running hub.

- The widget's header tells the truth: "No one is available right now" before any agent is Available, "Agents
  available now" after; a panel open before a reload is open after it; on a 390 px phone it is a full-screen sheet.
- Links on both sides: http(s) URLs become links opening a new tab with rel="noopener noreferrer"; a
  ``javascript:`` URL stays text.
- The console: ``?`` opens the shortcuts' help (Escape closes it); the search finds the agent's own customers in
  the contact repository (an agent's scope: someone else's order number finds nobody) and opens one; the transfer dialog says who is available per queue and asks before a
  transfer to a queue nobody else serves.
- Below 1024 px the columns are tabs. Screenshots ``test-artifacts/console-worklist-*.png`` at 1280, 768 and 390 px.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

import pytest

pytestmark = pytest.mark.browser

from tests.browser.harness import ARTIFACTS, chromium, running_hub, sync_api, watch  # noqa: E402

TOKEN = "worklist-e2e"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_hub(tmp_path_factory.mktemp("worklist"), "worklist", TOKEN) as base:
        yield base


@pytest.fixture(scope="module")
def browser(hub: str) -> Iterator[Any]:
    with chromium() as b:
        yield b


def test_links_are_safe_case_by_case(hub: str, browser: Any) -> None:
    ctx = browser.new_context()
    page = ctx.new_page()
    try:
        page.goto(f"{hub}/console")
        got = page.evaluate(
            """async () => {
                const m = await import('/static/console/core/linkify.js');
                const parts = (t) => [...m.linkify(t).childNodes].map((n) => n.nodeType === 1 ? `<${n.getAttribute('href')}|${n.textContent}|${n.target}|${n.rel}>` : n.textContent);
                return [
                    parts('see https://example.com/a?b=1.'),
                    parts('javascript:alert(1) and data:text/html,x'),
                    parts('mail ann@example.com or mailto:bob@example.com'),
                    parts('https://good.example@evil.example/x'),
                    parts('www.example.org/path), done'),
                    parts('<img src=x onerror=alert(1)> http://x.example/"><b>'),
                ];
            }"""
        )
        assert got[0] == ["see ", "<https://example.com/a?b=1|https://example.com/a?b=1|_blank|noopener noreferrer>", "."]
        assert got[1] == ["javascript:alert(1) and data:text/html,x"]
        assert got[2] == ["mail ", "<mailto:ann@example.com|ann@example.com|_blank|noopener noreferrer>", " or ",
                          "<mailto:bob@example.com|mailto:bob@example.com|_blank|noopener noreferrer>"]
        assert got[3] == ["https://good.example@evil.example/x"]
        assert got[4][0] == "<https://www.example.org/path|www.example.org/path|_blank|noopener noreferrer>"
        assert got[5][0] == "<img src=x onerror=alert(1)> " and got[5][1].startswith("<http://x.example/|")
    finally:
        ctx.close()


def test_widget_truth_links_search_transfer_and_narrow_screens(hub: str, browser: Any) -> None:
    expect = sync_api.expect
    expect.set_options(timeout=20_000)
    ARTIFACTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    errors: list[str] = []
    agent_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    phone_ctx = browser.new_context(viewport={"width": 390, "height": 844})
    agent, shop = agent_ctx.new_page(), phone_ctx.new_page()
    for page in (agent, shop):
        watch(page, dialogs, errors)
    try:
        # nobody is Available yet: the widget says so (it is connected: data-state online)
        shop.goto(f"{hub}/shop")
        shop.get_by_test_id("cc-launcher").click()
        status = shop.get_by_test_id("cc-status")
        expect(status).to_have_attribute("data-agents", "none")
        expect(status).to_contain_text("No one is available right now")
        panel = shop.get_by_test_id("cc-panel")
        box = panel.bounding_box()
        assert box and box["width"] >= 389 and box["height"] >= 800, box  # a full-screen sheet on a phone
        shop.screenshot(path=str(ARTIFACTS / "console-worklist-widget-390.png"))

        agent.goto(f"{hub}/console")
        agent.get_by_test_id("login-username").fill("alice")
        agent.get_by_test_id("login-password").fill("demo-password")
        agent.get_by_test_id("login-submit").click()
        expect(agent.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        agent.get_by_test_id("status-select").select_option("available")
        expect(agent.get_by_test_id("status-select")).to_have_attribute("data-confirmed", "available")

        # the panel stays open across a reload, and now says someone is there
        shop.reload()
        expect(panel).to_be_visible()
        expect(status).to_have_attribute("data-agents", "available")
        expect(status).to_contain_text("Agents available now")
        shop.get_by_test_id("cc-name").fill("Lena Links")
        shop.get_by_test_id("cc-input").fill("Tracking https://example.com/track?id=7 says javascript:alert(1)")
        shop.get_by_test_id("cc-input").press("Enter")
        expect(shop.locator('[data-testid="cc-message"][data-sender="customer"]')).to_have_count(1)

        offer = agent.get_by_test_id("offer").filter(has_text="Lena Links")
        offer.get_by_test_id("offer-accept").click()
        link = agent.get_by_test_id("transcript").locator('a[href="https://example.com/track?id=7"]')
        expect(link).to_have_attribute("target", "_blank")
        expect(link).to_have_attribute("rel", "noopener noreferrer")
        expect(agent.get_by_test_id("transcript").locator('a[href^="javascript"]')).to_have_count(0)
        agent.get_by_test_id("reply-input").fill("Here it is: https://shop.example/t/9")
        agent.get_by_test_id("reply-input").press("Enter")
        wlink = shop.locator('[data-testid="cc-message"][data-sender="agent"] a[href="https://shop.example/t/9"]')
        expect(wlink).to_have_attribute("rel", "noopener noreferrer")
        expect(wlink).to_have_attribute("target", "_blank")

        # ? opens the shortcuts' help, not while typing
        agent.get_by_test_id("reply-input").press("?")
        expect(agent.get_by_test_id("shortcuts-dialog")).to_be_hidden()
        agent.get_by_test_id("reply-input").fill("")
        agent.locator("body").click(position={"x": 5, "y": 300})
        agent.keyboard.press("?")
        expect(agent.get_by_test_id("shortcuts-dialog")).to_be_visible()
        expect(agent.get_by_test_id("shortcuts-dialog")).to_contain_text("Accept the incoming offer")
        agent.screenshot(path=str(ARTIFACTS / "console-worklist-shortcuts-1280.png"))
        agent.keyboard.press("Escape")
        expect(agent.get_by_test_id("shortcuts-dialog")).to_be_hidden()

        # the search finds customers in the contact repository, as far as an agent may read (her own customers);
        # an order of someone else is for the Orders tab
        agent.get_by_test_id("conversation-search").fill("#1")
        expect(agent.get_by_test_id("customer-hits-scope")).to_be_visible()
        expect(agent.get_by_test_id("customer-hit")).to_have_count(0)
        agent.get_by_test_id("conversation-search").fill("Lena Lin")
        hit = agent.get_by_test_id("customer-hit").first
        expect(hit).to_contain_text(re.compile(r"Lena Links \(#\d+\)\s*0 orders · matched by name"))
        hit.click()
        expect(agent.get_by_test_id("customer-360")).to_contain_text("Lena Links")
        agent.get_by_test_id("conversation-search").press("Escape")
        expect(agent.get_by_test_id("customer-hits")).to_be_hidden()

        # the transfer dialog: nobody else is available, so it asks first
        agent.get_by_test_id("conversation-item").first.get_by_test_id("conversation-open").click()
        agent.get_by_test_id("transfer-open").click()
        agent.get_by_test_id("transfer-queue").select_option("support")
        expect(agent.get_by_test_id("transfer-queue-info")).to_contain_text("Nobody else is taking")
        expect(agent.get_by_test_id("transfer-confirm")).to_be_visible()
        expect(agent.get_by_test_id("transfer-submit")).to_be_disabled()
        agent.get_by_test_id("transfer-confirm-check").check()
        expect(agent.get_by_test_id("transfer-submit")).to_be_enabled()
        agent.screenshot(path=str(ARTIFACTS / "console-worklist-transfer-1280.png"))
        agent.keyboard.press("Escape")

        # narrow screens: tabs, nothing wider than the window
        for w, h in ((768, 1024), (390, 844)):
            agent.set_viewport_size({"width": w, "height": h})
            expect(agent.get_by_test_id("panel-tabs" if False else "panel-tab-chat")).to_be_visible()
            agent.get_by_test_id("panel-tab-chat").click()
            expect(agent.get_by_test_id("reply-input")).to_be_visible()
            expect(agent.get_by_test_id("close-submit")).to_be_in_viewport()
            assert agent.evaluate("document.documentElement.scrollWidth") <= w
            agent.screenshot(path=str(ARTIFACTS / f"console-worklist-chat-{w}.png"))
            agent.get_by_test_id("panel-tab-list").click()
            expect(agent.get_by_test_id("conversation-item").first).to_be_visible()
            agent.screenshot(path=str(ARTIFACTS / f"console-worklist-list-{w}.png"))
        agent.set_viewport_size({"width": 1280, "height": 800})
        expect(agent.get_by_test_id("panel-tab-chat")).to_be_hidden()
        agent.screenshot(path=str(ARTIFACTS / "console-worklist-chat-1280.png"))
        assert not errors, errors
        assert not dialogs, dialogs
    finally:
        agent_ctx.close()
        phone_ctx.close()
