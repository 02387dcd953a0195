"""The pages run under their Content-Security-Policy (``contact_center/security.py``) with no violation.

A real hub (the Twilio stand-in on, as ``make run`` has it, so the console's softphone runs in its stand-in mode)
and Debian's Chromium. An init script records every ``securitypolicyviolation`` event of every page, and the
browser's console messages about the Content Security Policy are kept too. Then: the console, logged in as alice,
Available, taking a chat from the shop's widget and answering it; the supervisor view, logged in as sam; the shop
with the widget open and a message sent; /dev/phone. Any violation fails the test. A control first shows the
policy is on and the recorder hears it: a script injected inline into the console is refused and reported. The
console's one inline handler (the "script missing" notice) runs, allowed by its hash; the console and the supervisor
view refuse to be framed by another page.
Screenshots: ``test-artifacts/csp-*.png``.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

import pytest

from tests.browser.harness import ARTIFACTS, chromium, free_port, running_hub, sync_api, watch  # noqa: E402

TOKEN = "csp-test-token"
expect = sync_api.expect

RECORDER = """
(() => {
  document.addEventListener("securitypolicyviolation", (e) => {
    window.__reportCsp({
      page: location.pathname, directive: e.violatedDirective, blocked: e.blockedURI,
      source: e.sourceFile, line: e.lineNumber, sample: e.sample, disposition: e.disposition,
    });
  });
})();
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"TWILIO_STANDIN": "1", "PUBLIC_BASE_URL": base, "RASA_URL": ""}
    with running_hub(tmp_path_factory.mktemp("csp"), "csp", TOKEN, env, port=port) as url:
        yield url


class Recorder:
    """What a browser context saw: CSP violation events, CSP console messages, page errors."""

    def __init__(self) -> None:
        self.violations: list[dict[str, Any]] = []
        self.console: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []

    def context(self, browser: Any) -> Any:
        ctx = browser.new_context(viewport={"width": 1400, "height": 900})
        ctx.expose_binding("__reportCsp", lambda _source, v: self.violations.append(v))
        ctx.add_init_script(RECORDER)
        return ctx

    def page(self, ctx: Any) -> Any:
        page = ctx.new_page()
        watch(page, self.dialogs, self.errors)
        page.on("console", lambda msg: self.console.append(msg.text) if "Content Security Policy" in msg.text else None)
        return page

    def problems(self) -> list[str]:
        return [f"violation: {v}" for v in self.violations] + [f"console: {m}" for m in self.console] + [f"page error: {e}" for e in self.errors]


def _login(page: Any, hub: str, username: str) -> None:
    page.goto(f"{hub}/console")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill("demo-password")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("agent-name")).not_to_be_empty()


def test_every_page_runs_under_its_policy_without_a_violation(hub: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    rec = Recorder()
    with chromium() as browser:
        # --- the console, logged in: its modules run (socket, softphone in stand-in mode, views)
        agent_ctx = rec.context(browser)
        agent = rec.page(agent_ctx)
        response = agent.goto(f"{hub}/console")
        assert response is not None and "script-src 'self'" in response.headers["content-security-policy"]
        _login(agent, hub, "alice")
        expect(agent.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        expect(agent.get_by_test_id("softphone-status")).to_have_attribute("data-state", "ready")

        # control: an inline script is refused, and the recorder hears of it
        agent.evaluate("""() => { const s = document.createElement("script"); s.textContent = "window.__ran = 1";
                                  document.body.append(s); }""")
        agent.wait_for_timeout(300)
        assert agent.evaluate("() => window.__ran") is None
        assert any(v["directive"].startswith("script-src") and v["blocked"] == "inline" for v in rec.violations), rec.violations
        rec.violations.clear()
        rec.console.clear()

        agent.get_by_test_id("status-select").select_option("available")
        expect(agent.get_by_test_id("status-select")).to_have_attribute("data-confirmed", "available")

        # --- the shop, with the widget open: the customer writes
        shop_ctx = rec.context(browser)
        shop = rec.page(shop_ctx)
        response = shop.goto(f"{hub}/shop")
        assert response is not None and "script-src 'self'" in response.headers["content-security-policy"]
        expect(shop.get_by_test_id("product").first).to_be_visible()  # shop.js ran
        shop.get_by_test_id("cc-launcher").click()
        shop.get_by_test_id("cc-name").fill("Csp Tester")
        shop.get_by_test_id("cc-input").fill("Hello from a page with a policy")
        shop.get_by_test_id("cc-send").click()

        # --- the agent takes it and answers
        offer = agent.get_by_test_id("offer")
        expect(offer).to_have_count(1, timeout=20_000)
        offer.get_by_test_id("offer-accept").click()
        expect(agent.get_by_test_id("conversation-item")).to_have_count(1)
        agent.get_by_test_id("reply-input").fill("Hello, the policy lets us talk.")
        agent.get_by_test_id("reply-input").press("Enter")
        expect(shop.locator(".ccw")).to_contain_text("Hello, the policy lets us talk.")
        agent.wait_for_timeout(1500)  # the softphone's polling, the 360, the orders tab settle
        agent.screenshot(path=str(ARTIFACTS / "csp-console.png"))
        shop.screenshot(path=str(ARTIFACTS / "csp-shop.png"))

        # --- the supervisor view, as sam
        boss_ctx = rec.context(browser)
        boss = rec.page(boss_ctx)
        _login(boss, hub, "sam")
        response = boss.goto(f"{hub}/supervisor")
        assert response is not None and "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
        expect(boss.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        expect(boss.get_by_test_id("updated-at")).not_to_have_text("–")
        expect(boss.get_by_test_id("kpi-agents")).to_have_text(re.compile(r"^\d+"))
        boss.wait_for_timeout(1000)
        boss.screenshot(path=str(ARTIFACTS / "csp-supervisor.png"))

        # --- /dev/phone (the stand-in's phone in the browser)
        dev_ctx = rec.context(browser)
        dev = rec.page(dev_ctx)
        dev.goto(f"{hub}/dev/phone")
        dev.wait_for_timeout(1500)
        dev.screenshot(path=str(ARTIFACTS / "csp-dev-phone.png"))

        # --- the console's one inline handler (its "script missing" notice) runs: allowed by its hash
        bare = rec.page(dev_ctx)
        bare.route("**/static/console/dist/console.js", lambda route: route.abort())
        bare.goto(f"{hub}/console")
        expect(bare.locator("#boot-error")).to_be_visible()
        bare.close()

        # --- the agents' pages are never framed by another site (frame-ancestors 'none')
        frame_ctx = browser.new_context()
        framer = frame_ctx.new_page()
        said: list[str] = []
        framer.on("console", lambda msg: said.append(msg.text))
        framer.set_content(f'<iframe src="{hub}/console"></iframe><iframe src="{hub}/supervisor"></iframe>')
        framer.wait_for_timeout(1500)
        refused = [m for m in said if "frame-ancestors" in m]
        assert len(refused) == 2, said

        problems = rec.problems()
        for ctx in (agent_ctx, shop_ctx, boss_ctx, dev_ctx, frame_ctx):
            ctx.close()
    assert problems == [], "\n".join(problems)
