"""Offers that cannot be missed, state that explains itself, focus that stays (issue 20), in a real headless
Chromium against a running hub (``OFFER_TIMEOUT_SECONDS=4``, ``WRAP_UP_SECONDS=3``).

- A new offer beeps (Web Audio; the page counts the beeps it started in ``data-beeps``), is announced in an
  assertive live region and, once the agent allowed it, shows a desktop notification while the console is not
  in front. The permission is asked when the agent chooses Available, never on load. The sound's off switch
  and volume are remembered across a reload.
- Two offers let time out in a row: the hub sets the agent Away, the state line says "Away: missed offers",
  the notices say "Missed" with the time, and the supervisor view raises an alert.
- Back to Available: the state line shows the waiting counts; Alt+A accepts (the first opens, since none was
  open); the second is added and highlighted as New but does not steal the focus.
- Closing the last one: "Wrap-up 0:0N" counts down, then Available again.
- The console closed for longer than the hub's grace and reopened on the same session comes back Available (as
  left), and explains the chat that went back to the queue meanwhile.

The browser's Notification is a stand-in (headless Chromium shows none): it records what would be shown.
Screenshots: ``test-artifacts/console-alerts-*.png`` at 1280x800, 768x1024 and 390x844.
"""

from __future__ import annotations

import os
import time
from typing import Any, Iterator
from unittest import mock

import pytest

pytestmark = pytest.mark.browser

from tests.browser.harness import ARTIFACTS, chromium, running_hub, sync_api, watch  # noqa: E402

TOKEN = "offer-alerts-e2e"
OFFER_TIMEOUT = 4

FAKE_NOTIFICATION = """
(() => {
  window.__notes = []; window.__asked = 0;
  class FakeNotification {
    constructor(title, options) { window.__notes.push({ title, ...(options || {}) }); this.onclick = null; }
    close() {}
  }
  FakeNotification.permission = localStorage.getItem('fake-permission') || 'default';
  FakeNotification.requestPermission = (cb) => {
    window.__asked += 1; FakeNotification.permission = 'granted'; localStorage.setItem('fake-permission', 'granted');
    if (cb) cb('granted'); return Promise.resolve('granted');
  };
  window.Notification = FakeNotification;
  document.hasFocus = () => false;  // the agent is in another window
})();
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {"WRAP_UP_SECONDS": "3", "OFFER_TIMEOUT_SECONDS": str(OFFER_TIMEOUT)}
    with mock.patch.dict(os.environ, env):
        with running_hub(tmp_path_factory.mktemp("alerts"), "offer-alerts", TOKEN) as base:
            yield base


@pytest.fixture(scope="module")
def browser(hub: str) -> Iterator[Any]:
    with chromium() as b:
        yield b


def _visitor_writes(page: Any, hub: str, name: str, text: str) -> None:
    page.goto(f"{hub}/shop")
    page.get_by_test_id("cc-launcher").click()
    sync_api.expect(page.get_by_test_id("cc-panel")).to_be_visible()
    page.get_by_test_id("cc-name").fill(name)
    page.get_by_test_id("cc-input").fill(text)
    page.get_by_test_id("cc-send").click()
    sync_api.expect(page.locator('[data-testid="cc-message"][data-sender="customer"]', has_text=text)).to_have_count(1)


def _login(page: Any, hub: str, user: str = "alice", path: str = "/console") -> None:
    page.goto(f"{hub}{path}")
    page.get_by_test_id("login-username").fill(user)
    page.get_by_test_id("login-password").fill("demo-password")
    page.get_by_test_id("login-submit").click()


def _shots(page: Any, name: str) -> None:
    for w, h in ((1280, 800), (768, 1024), (390, 844)):
        page.set_viewport_size({"width": w, "height": h})
        page.screenshot(path=str(ARTIFACTS / f"console-alerts-{name}-{w}.png"))
        assert page.evaluate("document.documentElement.scrollWidth") <= w, f"{name} overflows at {w} px"
    page.set_viewport_size({"width": 1280, "height": 800})


def _poll(fn: Any, timeout: float = 40.0, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            return got
        time.sleep(every)


def test_state_words_are_pure(hub: str, browser: Any) -> None:
    ctx = browser.new_context()
    page = ctx.new_page()
    try:
        page.goto(f"{hub}/console")
        got = page.evaluate(
            """async () => {
                const m = await import('/static/console/views/state-text.js');
                const view = (load, cap) => ({ me: { load: { chat: load }, capacity: { chat: cap } }, queues: [] });
                return [
                    m.describeState({ status: 'available' }, view(1, 3)),
                    m.describeState({ status: 'available' }, view(3, 3)),
                    m.describeState({ status: 'wrap_up', until: 1008 }, null, 1000),
                    m.describeState({ status: 'away', reason: { reason: 'missed_offers', missed: 2 } }, null),
                    m.describeState({ status: 'away', by: 'Sam' }, null),
                    m.describeState({ status: 'offline' }, null),
                    m.clock(8), m.clock(75.2),
                ].map((d) => (typeof d === 'string' ? d : `${d.state}|${d.text}`));
            }"""
        )
        assert got == [
            "available|Available", "capacity|At capacity 3/3", "wrap_up|Wrap-up 0:08", "away|Away: missed offers",
            "away|Away (set by Sam)", "offline|Offline", "0:08", "1:16",
        ]
    finally:
        ctx.close()


def test_offers_ring_two_misses_set_away_and_focus_stays(hub: str, browser: Any) -> None:
    expect = sync_api.expect
    expect.set_options(timeout=20_000)
    ARTIFACTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    errors: list[str] = []
    agent_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    agent_ctx.add_init_script(FAKE_NOTIFICATION)
    sup_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    shops = [browser.new_context(viewport={"width": 1280, "height": 800}) for _ in range(2)]
    agent = agent_ctx.new_page()
    watch(agent, dialogs, errors)
    try:
        _login(agent, hub)
        expect(agent.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        expect(agent.get_by_test_id("state-text")).to_have_text("Away")  # a new presence starts Away
        expect(agent.get_by_test_id("chat-empty-title")).to_have_text("Away")
        expect(agent.get_by_test_id("empty-available")).to_be_visible()
        assert agent.evaluate("window.__asked") == 0  # never asked on load

        # the sound's settings: off, then a reload remembers it; on again with a lower volume
        agent.get_by_test_id("alerts-toggle").click()
        expect(agent.get_by_test_id("alert-settings")).to_be_visible()
        expect(agent.get_by_test_id("notify-allow")).to_be_visible()
        agent.get_by_test_id("sound-on").uncheck()
        agent.reload()
        expect(agent.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        expect(agent.get_by_test_id("alerts-toggle")).to_have_attribute("data-sound", "off")
        agent.get_by_test_id("alerts-toggle").click()
        expect(agent.get_by_test_id("sound-on")).not_to_be_checked()
        agent.get_by_test_id("sound-on").check()
        agent.get_by_test_id("sound-volume").fill("40")
        agent.keyboard.press("Escape")
        expect(agent.get_by_test_id("alert-settings")).to_be_hidden()
        assert agent.evaluate("JSON.parse(localStorage.getItem('cc.console.sound'))") == {"on": True, "volume": 0.4}

        # choosing Available is when the browser's permission is asked
        agent.get_by_test_id("status-select").select_option("available")
        expect(agent.get_by_test_id("status-select")).to_have_attribute("data-confirmed", "available")
        assert agent.evaluate("window.__asked") == 1
        expect(agent.get_by_test_id("state-text")).to_have_text("Available")
        expect(agent.get_by_test_id("chat-empty-title")).to_have_text("Ready for the next customer")
        beeps_before = int(agent.evaluate("document.documentElement.dataset.beeps || '0'"))

        # two customers write; both offers ring, are announced and notified, and both time out
        shop_pages = [c.new_page() for c in shops]
        _visitor_writes(shop_pages[0], hub, "Maria Lopez", "Where is my order?")
        _visitor_writes(shop_pages[1], hub, "Tim Later", "Do you ship to Spain?")
        expect(agent.get_by_test_id("offer")).to_have_count(2)
        expect(agent.get_by_test_id("offer-announce")).to_contain_text("offer from")
        assert int(agent.evaluate("document.documentElement.dataset.beeps || '0'")) >= beeps_before + 2
        notes = agent.evaluate("window.__notes")
        assert {n["title"] for n in notes} >= {"New Web chat: Maria Lopez", "New Web chat: Tim Later"}, notes
        _shots(agent, "offers")

        expect(agent.get_by_test_id("offer")).to_have_count(0, timeout=(OFFER_TIMEOUT + 15) * 1000)
        expect(agent.get_by_test_id("state-text")).to_have_text("Away: missed offers")
        expect(agent.get_by_test_id("status-select")).to_have_attribute("data-confirmed", "away")
        missed = agent.locator('[data-testid="offer-notice"][data-kind="missed"]')
        expect(missed).to_have_count(2)
        expect(missed.first.get_by_test_id("offer-notice-at")).to_have_text(__import__("re").compile(r"\d{1,2}:\d{2}"))
        expect(agent.get_by_test_id("chat-empty-title")).to_have_text("Away: missed offers")
        expect(agent.get_by_test_id("queue-count").first).to_be_visible()
        _shots(agent, "away")

        # the supervisor is told
        sup = sup_ctx.new_page()
        _login(sup, hub, "sam", "/supervisor")
        expect(sup.get_by_test_id("alert").filter(has_text="Alice Martin was set Away after missing 2 offers in a row")).to_have_count(1)
        sup.screenshot(path=str(ARTIFACTS / "console-alerts-supervisor.png"))

        # back: Available from the empty state's button; the two chats are offered again after the skip
        agent.get_by_test_id("empty-available").click()
        expect(agent.get_by_test_id("status-select")).to_have_attribute("data-confirmed", "available")
        expect(agent.get_by_test_id("state-text")).to_have_text("Available")
        expect(agent.get_by_test_id("offer")).to_have_count(2, timeout=40_000)
        agent.keyboard.press("Alt+A")  # accepts the one that runs out first; nothing was open: it opens
        expect(agent.get_by_test_id("conversation-item")).to_have_count(1)
        expect(agent.get_by_test_id("reply-input")).to_be_visible()
        first_id = agent.get_by_test_id("conversation-item").first.get_attribute("data-conversation-id")
        agent.get_by_test_id("reply-input").fill("Hello, one moment")  # typing: Alt+A still works (made for it)
        agent.keyboard.press("Alt+A")
        expect(agent.get_by_test_id("conversation-item")).to_have_count(2)
        fresh = agent.locator(".conv-item.fresh")
        expect(fresh).to_have_count(1)
        expect(fresh.get_by_test_id("fresh-label")).to_have_text("New")
        expect(fresh.get_by_test_id("needs-reply")).to_contain_text("Needs reply")
        # focus stayed: the first is still open, with what the agent was typing
        expect(agent.locator(".conv-item.active")).to_have_attribute("data-conversation-id", first_id or "")
        expect(agent.get_by_test_id("reply-input")).to_have_value("Hello, one moment")
        expect(agent.get_by_test_id("state-detail")).to_contain_text("2 of")
        _shots(agent, "fresh")

        # close both: wrap-up counts down, then Available again
        for _ in range(2):
            agent.get_by_test_id("close-submit").click()
            agent.keyboard.press("Alt+ArrowDown")
        expect(agent.get_by_test_id("state-text")).to_have_text(__import__("re").compile(r"^Wrap-up 0:0[0-3]$"))
        _shots(agent, "wrapup")
        expect(agent.get_by_test_id("state-text")).to_have_text("Available", timeout=15_000)
        assert not errors, errors
        assert not dialogs, dialogs
    finally:
        for c in (agent_ctx, sup_ctx, *shops):
            c.close()


def test_a_reopened_console_restores_the_state_and_explains_a_chat_gone_meanwhile(hub: str, browser: Any) -> None:
    expect = sync_api.expect
    expect.set_options(timeout=20_000)
    errors: list[str] = []
    dialogs: list[str] = []
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    shop_ctx = browser.new_context()
    try:
        page = ctx.new_page()
        watch(page, dialogs, errors)
        _login(page, hub, "bob")
        expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        page.get_by_test_id("status-select").select_option("available")
        expect(page.get_by_test_id("status-select")).to_have_attribute("data-confirmed", "available")
        _visitor_writes(shop_ctx.new_page(), hub, "Rita Returns", "Hello, anyone?")
        page.get_by_test_id("offer").filter(has_text="Rita Returns").get_by_test_id("offer-accept").click()
        expect(page.get_by_test_id("conversation-item")).to_have_count(1)
        page.get_by_test_id("status-select").select_option("away")  # a break: nothing new is offered meanwhile
        expect(page.get_by_test_id("status-select")).to_have_attribute("data-confirmed", "away")
        page.close()  # the console is closed: after the hub's 15 s grace, bob is offline and the chat re-queued

        def offline() -> bool:
            r = ctx.request.get(f"{hub}/console/queues.json")
            return r.ok and r.json()["me"]["status"] == "offline"

        assert _poll(offline, timeout=60), "the hub never took bob offline"
        page = ctx.new_page()
        watch(page, dialogs, errors)
        page.goto(f"{hub}/console")  # the same session: no sign-in
        expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        expect(page.get_by_test_id("status-select")).to_have_attribute("data-confirmed", "away")  # as bob left it
        expect(page.get_by_test_id("state-text")).to_have_text("Away")
        ended = page.locator('[data-testid="offer-notice"][data-kind="ended"]')
        expect(ended).to_contain_text("While you were away, your conversation with Rita Returns ended or went back to the queue")
        page.screenshot(path=str(ARTIFACTS / "console-alerts-reopened.png"))
        # a deliberate logout forgets it: the next sign-in starts offline
        page.get_by_test_id("logout").click()
        expect(page.get_by_test_id("login-username")).to_be_visible()
        kept = page.evaluate("Object.keys(localStorage).filter((k) => k.startsWith('cc.console.lastStatus.') || k.startsWith('cc.console.open.'))")
        assert kept == [], kept
        assert not errors, errors
    finally:
        ctx.close()
        shop_ctx.close()
