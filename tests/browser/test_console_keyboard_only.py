"""Keyboard only (issue 20): an agent works five chats (as many at once as routing allows: three, a chat being a
third of an agent, ``contact_center/domain/routing.py`` CHANNEL_WEIGHT), misses an offer, transfers one to a colleague,
sees a possible match and closes one, without touching the mouse, in a real headless Chromium against a running hub
with the demo data (``OFFER_TIMEOUT_SECONDS=6``, ``DECLINE_SKIP_SECONDS=2``).

Only the agent's page is keyboard-only: the customers (widgets) and the colleague who receives the transfer are
driven as usual. The agent moves with Tab, the shortcuts (Alt+A accept, Alt+↓/↑ next/previous, Alt+R reply box,
Alt+T transfer, Alt+X close, ``?`` help) and type-ahead in selects. Screenshots ``test-artifacts/console-keyboard-*.png``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

pytestmark = pytest.mark.browser

from tests.browser.harness import ARTIFACTS, chromium, running_hub, screenshots_on_failure, sync_api, watch  # noqa: E402
from tests.browser.test_console_possible_match import demo_customer_with_orders  # noqa: E402

TOKEN = "keyboard-e2e"
NAME = "keyboard"


@pytest.fixture(scope="module")
def hub_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp(NAME)
    env = {"OFFER_TIMEOUT_SECONDS": "6", "DECLINE_SKIP_SECONDS": "2", "WRAP_UP_SECONDS": "0"}
    with running_hub(tmp, NAME, TOKEN, env) as base:
        yield base, tmp / f"{NAME}.db"


@pytest.fixture(scope="module")
def browser(hub_db: tuple[str, Path]) -> Iterator[Any]:
    with chromium() as b:
        yield b


def focused(page: Any) -> str:
    return str(page.evaluate("() => { const e = document.activeElement; return e ? (e.dataset.testid || e.id || e.tagName) : '' }"))


def tab_to(page: Any, testid: str, *, back: bool = False, limit: int = 120) -> None:
    """Press Tab (or Shift+Tab) until the element with this test id has the focus."""
    for _ in range(limit):
        if focused(page) == testid:
            return
        page.keyboard.press("Shift+Tab" if back else "Tab")
    raise AssertionError(f"{testid} cannot be reached with Tab (focus stays on {focused(page)!r})")


def test_five_chats_a_missed_offer_a_transfer_a_possible_match_and_a_close_by_keyboard(hub_db: tuple[str, Path], browser: Any) -> None:
    hub, _db = hub_db
    expect = sync_api.expect
    expect.set_options(timeout=20_000)
    ARTIFACTS.mkdir(exist_ok=True)
    camila = demo_customer_with_orders(hub, TOKEN)

    dialogs: list[str] = []
    errors: list[str] = []
    agent_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    bob_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    agent, bob = agent_ctx.new_page(), bob_ctx.new_page()
    shops: list[Any] = []
    for page in (agent, bob):
        watch(page, dialogs, errors)

    def customer(name: str, text: str, email: str = "") -> Any:
        ctx = browser.new_context(viewport={"width": 1280, "height": 800})
        shops.append(ctx)
        shop = ctx.new_page()
        watch(shop, dialogs, errors)
        shop.goto(f"{hub}/shop")
        shop.get_by_test_id("cc-launcher").click()
        shop.get_by_test_id("cc-name").fill(name)
        if email:
            shop.get_by_test_id("cc-email").fill(email)
        shop.get_by_test_id("cc-input").fill(text)
        shop.get_by_test_id("cc-input").press("Enter")
        expect(shop.locator('[data-testid="cc-message"][data-sender="customer"]')).to_have_count(1)
        return shop

    try:
        with screenshots_on_failure():
            # Bob (mouse) is there to receive the transfer
            bob.goto(f"{hub}/console")
            bob.get_by_test_id("login-username").fill("bob")
            bob.get_by_test_id("login-password").fill("demo-password")
            bob.get_by_test_id("login-submit").click()
            expect(bob.get_by_test_id("connection")).to_have_attribute("data-state", "online")

            # Alice signs in and goes Available with the keyboard only
            agent.goto(f"{hub}/console")
            tab_to(agent, "login-username")
            agent.keyboard.type("alice")
            agent.keyboard.press("Tab")
            agent.keyboard.type("demo-password")
            agent.keyboard.press("Enter")
            expect(agent.get_by_test_id("connection")).to_have_attribute("data-state", "online")
            tab_to(agent, "status-select")
            agent.keyboard.type("Available")
            expect(agent.get_by_test_id("status-select")).to_have_attribute("data-confirmed", "available")
            expect(agent.get_by_test_id("state-detail")).to_contain_text("0 of 3")

            # ? shows the shortcuts (not while a field has the keys: Tab on to a button first); Escape hides them
            agent.keyboard.press("Tab")
            agent.keyboard.press("?")
            expect(agent.get_by_test_id("shortcuts-dialog")).to_be_visible()
            agent.screenshot(path=str(ARTIFACTS / "console-keyboard-help-1280.png"))
            agent.keyboard.press("Escape")
            expect(agent.get_by_test_id("shortcuts-dialog")).to_be_hidden()

            # a missed offer: nobody presses anything for 6 s
            shops_by_name: dict[str, Any] = {}
            shops_by_name["Mia Missed"] = customer("Mia Missed", "Hello? Anyone?")
            expect(agent.get_by_test_id("offer")).to_have_count(1)
            notice = agent.get_by_test_id("offer-notice").filter(has_text="Mia Missed")
            expect(notice).to_contain_text("Missed", timeout=30_000)

            # each offer accepted with Alt+A as it comes (the missed one comes back after the skip)
            def accept(name: str, count: int) -> None:
                expect(agent.get_by_test_id("offer").filter(has_text=name)).to_have_count(1, timeout=30_000)
                agent.keyboard.press("Alt+A")
                expect(agent.get_by_test_id("conversation-item")).to_have_count(count)
                expect(agent.get_by_test_id("conversation-item").filter(has_text=name)).to_have_count(1)

            def open_by_keys(name: str) -> None:
                for _ in range(6):
                    if agent.locator(".conv-item.active").filter(has_text=name).count():
                        return
                    agent.keyboard.press("Alt+ArrowDown")
                    agent.wait_for_timeout(200)
                expect(agent.locator(".conv-item.active").filter(has_text=name)).to_have_count(1)

            def reply(name: str) -> None:
                open_by_keys(name)
                agent.keyboard.press("Alt+R")
                expect(agent.get_by_test_id("reply-input")).to_be_focused()
                agent.keyboard.type(f"Hi {name.split()[0]}, I am on it")
                agent.keyboard.press("Enter")
                expect(shops_by_name[name].locator('[data-testid="cc-message"][data-sender="agent"]')).to_contain_text(f"Hi {name.split()[0]}")

            accept("Mia Missed", 1)
            for i, (name, text) in enumerate((("Kai One", "My parcel is late"), ("Lou Two", "Wrong size")), start=2):
                shops_by_name[name] = customer(name, text)
                accept(name, i)
            expect(agent.get_by_test_id("state-text")).to_have_text("At capacity 3/3")  # a chat is a third of an agent
            for name in list(shops_by_name):  # Alt+↓ to move, Alt+R to the reply box, Enter to send
                reply(name)
            agent.keyboard.press("Alt+ArrowUp")
            agent.screenshot(path=str(ARTIFACTS / "console-keyboard-three-1280.png"))

            # a transfer: Alt+T, a colleague by type-ahead, a note, Tab to Transfer, Enter
            bob.get_by_test_id("status-select").select_option("available")
            expect(bob.get_by_test_id("status-select")).to_have_attribute("data-confirmed", "available")
            open_by_keys("Lou Two")
            agent.keyboard.press("Alt+T")
            expect(agent.locator("#transfer-dialog")).to_be_visible()
            expect(agent.get_by_test_id("transfer-queue")).to_be_focused()
            tab_to(agent, "transfer-agent")
            agent.keyboard.type("Bob")
            expect(agent.get_by_test_id("transfer-agent")).not_to_have_value("")
            agent.keyboard.press("Tab")
            agent.keyboard.type("Wrong size, wants an exchange")
            tab_to(agent, "transfer-submit")
            agent.screenshot(path=str(ARTIFACTS / "console-keyboard-transfer-1280.png"))
            agent.keyboard.press("Enter")
            expect(agent.locator("#transfer-dialog")).to_be_hidden()
            expect(agent.get_by_test_id("conversation-item")).to_have_count(2)
            bob.get_by_test_id("offer").filter(has_text="Lou Two").get_by_test_id("offer-accept").click()
            expect(bob.get_by_test_id("conversation-item").filter(has_text="Lou Two")).to_have_count(1)
            bob.get_by_test_id("status-select").select_option("away")  # the next customers are Alice's
            expect(bob.get_by_test_id("status-select")).to_have_attribute("data-confirmed", "away")

            # the possible match: a returning customer's 360 names her other record; an agent asks a supervisor
            shops_by_name[camila["name"]] = customer(camila["name"], "Where is my order?", camila["email"])
            accept(camila["name"], 3)
            open_by_keys(camila["name"])
            match = agent.get_by_test_id("possible-match")
            expect(match).to_be_visible()
            expect(match.get_by_test_id("possible-match-text")).to_contain_text(f"Possible match: {camila['name']} (#{camila['id']})")
            expect(match.get_by_test_id("possible-match-ask")).to_contain_text("ask a supervisor")
            reply(camila["name"])
            agent.screenshot(path=str(ARTIFACTS / "console-keyboard-match-1280.png"))

            # a fifth customer waits (at capacity); a close: Alt+X puts the focus on the outcome, type-ahead picks
            # one, Tab to the note, Enter closes; the waiting one is offered and taken with Alt+A
            shops_by_name["Noa Five"] = customer("Noa Five", "Invoice please")
            expect(agent.get_by_test_id("state-line")).to_contain_text("sales 1")
            open_by_keys("Kai One")
            agent.keyboard.press("Alt+X")
            expect(agent.get_by_test_id("close-disposition")).to_be_focused()
            agent.keyboard.type("Resolved")
            agent.keyboard.press("Tab")
            expect(agent.get_by_test_id("close-note")).to_be_focused()
            agent.keyboard.type("Parcel found")
            agent.keyboard.press("Enter")
            expect(agent.get_by_test_id("conversation-item").filter(has_text="Kai One")).to_have_count(0)
            expect(shops_by_name["Kai One"].get_by_test_id("cc-panel")).to_contain_text("This conversation has ended")
            accept("Noa Five", 3)
            reply("Noa Five")

            # and the work goes on from the keyboard
            agent.keyboard.press("Alt+ArrowDown")
            agent.keyboard.press("Alt+R")
            expect(agent.get_by_test_id("reply-input")).to_be_focused()
            agent.screenshot(path=str(ARTIFACTS / "console-keyboard-after-1280.png"))
            assert not errors, errors
            assert not dialogs, dialogs
    finally:
        for c in (agent_ctx, bob_ctx, *shops):
            c.close()
