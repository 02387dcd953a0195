"""End to end in a real headless Chromium: the shop's chat widget and the agent console against a running hub.

The hub runs as a subprocess (``python -m contact_center.cli serve``) on a fresh SQLite file with the demo
data; one browser context is the customer on ``/shop``, another is agent ``alice`` on ``/console``, a third
is agent ``bob``, to whom alice transfers the chat before he wraps it up.
Screenshots go to ``test-artifacts/`` (customer.png, agent.png, console-transfer.png, console-transfer-bob.png).

Needs the ``playwright`` Python package and Debian's Chromium at ``/usr/bin/chromium`` (no
``playwright install``); the module is skipped when either is missing.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

import pytest

pytestmark = pytest.mark.browser

from tests.browser.harness import ARTIFACTS, chromium, http, running_hub, sync_api, watch  # noqa: E402

TOKEN = "e2e"
XSS = "<img src=x onerror=alert(1)> is this safe?"


def _http(url: str, body: Any = None, *, token: str | None = TOKEN, timeout: float = 10) -> tuple[int, Any]:
    """A JSON call to the hub, with this module's service token unless told otherwise."""
    return http(url, body, token=token, timeout=timeout)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A hub on a free port with the demo data; yields its base URL."""
    with running_hub(tmp_path_factory.mktemp("e2e"), "e2e", TOKEN) as base:
        yield base


@pytest.fixture(scope="module")
def browser(hub: str) -> Iterator[Any]:
    with chromium() as b:
        yield b


_watch = watch


def _place_order_for(hub: str, customer_id: int) -> dict[str, Any]:
    """Give the chatting customer an order through the API, so the customer 360 has one to show."""
    status, products = _http(f"{hub}/api/products")
    assert status == 200, products
    items = products["products"] if isinstance(products, dict) else products
    product = next(p for p in items if p["stock"] > 5)
    options = {name: values[0] for name, values in (product.get("options") or {}).items() if values}
    status, order = _http(
        f"{hub}/api/orders",
        {
            "customer_id": customer_id,
            "lines": [{"sku": product["sku"], "quantity": 1, "options": options}],
            "delivery_address": "12 Market Street, Springfield",
            "email": "erin.e2e@example.com",
            "channel": "web",
        },
    )
    assert status in (200, 201), order
    return order


def _seqs(page: Any, selector: str) -> list[int]:
    return [int(s) for s in page.eval_on_selector_all(selector, "els => els.map(e => e.getAttribute('data-seq')).filter(Boolean)")]


def test_customer_and_agent_chat_end_to_end(hub: str, browser: Any) -> None:
    expect = sync_api.expect
    expect.set_options(timeout=20_000)
    ARTIFACTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    errors: list[str] = []

    agent_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    customer_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    contexts = [agent_ctx, customer_ctx]
    agent = agent_ctx.new_page()
    shop = customer_ctx.new_page()
    pages = [(agent, "agent-failure.png"), (shop, "customer-failure.png")]
    _watch(agent, dialogs, errors)
    _watch(shop, dialogs, errors)

    try:
        # --- the agent signs in (a wrong password first)
        agent.goto(f"{hub}/console")
        agent.get_by_test_id("login-username").fill("alice")
        agent.get_by_test_id("login-password").fill("not-her-password")
        agent.get_by_test_id("login-submit").click()
        expect(agent.get_by_test_id("login-error")).to_have_text("wrong username or password")
        agent.get_by_test_id("login-password").fill("demo-password")
        agent.get_by_test_id("login-submit").click()
        expect(agent.get_by_test_id("status-select")).to_be_visible()
        expect(agent.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        expect(agent.get_by_test_id("agent-name")).to_have_text("Alice Martin")
        agent_name = agent.get_by_test_id("agent-name").inner_text().strip()

        # --- a shop visitor opens the widget and writes (the agent is still away: the visitor queues)
        shop.goto(f"{hub}/shop")
        expect(shop.get_by_test_id("product").first).to_be_visible()
        shop.get_by_test_id("cc-launcher").click()
        expect(shop.get_by_test_id("cc-panel")).to_be_visible()
        shop.get_by_test_id("cc-name").fill("Erin Lindqvist")
        shop.get_by_test_id("cc-input").fill("Hello, where is my order?")
        shop.get_by_test_id("cc-send").click()
        first = shop.locator('[data-testid="cc-message"][data-sender="customer"]', has_text="Hello, where is my order?")
        expect(first).to_have_count(1)
        expect(first).to_have_attribute("data-seq", re.compile(r"^\d+$"))
        expect(shop.get_by_test_id("cc-status")).to_have_attribute("data-state", "online")
        expect(shop.get_by_test_id("cc-queue")).to_contain_text("You are number 1 in the queue")
        visitor_id = shop.evaluate("localStorage.getItem('cc_visitor_id')")
        assert re.fullmatch(r"[A-Za-z0-9_-]{24}", visitor_id or ""), visitor_id

        # the customer 360 will show an order of this customer
        status, found = _http(f"{hub}/api/customers?q=Erin%20Lindqvist")
        assert status == 200, found
        matches = [c for c in found["customers"] if c["display_name"] == "Erin Lindqvist"]
        assert len(matches) == 1, found
        customer_id = int(matches[0]["id"])
        _place_order_for(hub, customer_id)

        # --- the agent becomes available, gets the offer, accepts
        agent.get_by_test_id("status-select").select_option("available")
        expect(agent.get_by_test_id("status-select")).to_have_attribute("data-confirmed", "available")
        offer = agent.get_by_test_id("offer")
        expect(offer).to_have_count(1)
        expect(offer).to_contain_text("Hello, where is my order?")
        expect(offer.get_by_test_id("offer-countdown")).to_have_text(re.compile(r"^\d+s$"))
        conversation_id = offer.get_attribute("data-conversation-id")
        assert conversation_id and conversation_id.isdigit()
        offer.get_by_test_id("offer-accept").click()
        expect(agent.get_by_test_id("offer")).to_have_count(0)
        expect(agent.get_by_test_id("conversation-item")).to_have_count(1)

        transcript = agent.get_by_test_id("transcript")
        expect(transcript.locator('[data-testid="message"][data-sender="customer"] .bubble')).to_have_text(["Hello, where is my order?"])
        c360 = agent.get_by_test_id("customer-360")
        expect(c360.get_by_test_id("customer-name")).to_have_text("Erin Lindqvist")
        expect(c360.get_by_test_id("contact-point").first).to_be_visible()
        expect(c360.get_by_test_id("order-item")).to_have_count(1)
        expect(c360.get_by_test_id("order-item")).to_contain_text("EUR")
        expect(c360.get_by_test_id("timeline-item").first).to_be_visible()

        # the customer learns who is answering; the queue notice goes
        expect(shop.get_by_test_id("cc-agent-name")).to_contain_text(agent_name)
        expect(shop.get_by_test_id("cc-queue")).to_be_hidden()

        # --- typing shows on both sides
        shop.get_by_test_id("cc-input").press_sequentially("Still th", delay=20)
        expect(agent.get_by_test_id("typing")).to_contain_text("is typing")
        shop.get_by_test_id("cc-input").fill("")
        agent.get_by_test_id("reply-input").press_sequentially("Hi", delay=20)
        expect(shop.get_by_test_id("cc-typing")).to_contain_text(f"{agent_name} is typing")

        # --- canned responses: "/" opens the picker, choosing fills the box
        agent.get_by_test_id("reply-input").fill("")
        agent.get_by_test_id("reply-input").press_sequentially("/che", delay=20)
        picker = agent.get_by_test_id("canned-picker")
        expect(picker).to_be_visible()
        picker.get_by_test_id("canned-item").first.click()
        expect(picker).to_be_hidden()
        assert not agent.get_by_test_id("reply-input").input_value().startswith("/")

        # --- the agent replies (Enter sends)
        agent.get_by_test_id("reply-input").fill("Hi! Let me check.")
        agent.get_by_test_id("reply-input").press("Enter")
        expect(transcript.locator('[data-testid="message"][data-sender="agent"]', has_text="Hi! Let me check.")).to_have_attribute("data-seq", re.compile(r"^\d+$"))
        reply = shop.locator('[data-testid="cc-message"][data-sender="agent"]', has_text="Hi! Let me check.")
        expect(reply).to_have_count(1)
        expect(reply).to_contain_text(agent_name)
        expect(shop.get_by_test_id("cc-typing")).to_have_text("")

        # --- an internal note: highlighted for the agent, never shown to the customer
        agent.get_by_test_id("note-input").fill("VIP: check the courier first")
        agent.get_by_test_id("note-send").click()
        note = transcript.locator('[data-testid="message"][data-internal="true"]', has_text="VIP: check the courier first")
        expect(note).to_have_count(1)
        expect(note).to_contain_text("internal note — the customer does not see this")
        expect(note).to_have_attribute("data-seq", re.compile(r"^\d+$"))

        # --- markup from the customer is shown as text, never run
        shop.get_by_test_id("cc-input").fill(XSS)
        shop.get_by_test_id("cc-send").click()
        shown = transcript.locator('[data-testid="message"][data-sender="customer"]', has_text="<img src=x onerror=alert(1)>")
        expect(shown).to_have_count(1)
        expect(shown.locator(".bubble")).to_have_text(XSS)
        assert transcript.locator("img").count() == 0
        assert shop.get_by_test_id("cc-messages").locator("img").count() == 0
        expect(shop.locator('[data-testid="cc-message"][data-sender="customer"]', has_text="onerror")).to_have_attribute("data-seq", re.compile(r"^\d+$"))

        # --- a network drop: written while down, sent once on reconnect with the same client_msg_id
        shop.evaluate(
            """() => {
                window.ccWidget.socket.io.engine.close();
                const input = document.querySelector('[data-testid="cc-input"]');
                input.value = 'Sent while offline';
                document.querySelector('[data-testid="cc-send"]').click();
            }"""
        )
        offline = shop.locator('[data-testid="cc-message"][data-sender="customer"]', has_text="Sent while offline")
        expect(offline).to_have_count(1)
        expect(offline).to_have_attribute("data-seq", re.compile(r"^\d+$"))
        expect(shop.get_by_test_id("cc-status")).to_have_attribute("data-state", "online")
        expect(transcript.locator('[data-testid="message"]', has_text="Sent while offline")).to_have_count(1)
        agent.get_by_test_id("reply-input").fill("Got it, thanks.")
        agent.get_by_test_id("reply-send").click()
        expect(shop.locator('[data-testid="cc-message"][data-sender="agent"]', has_text="Got it, thanks.")).to_have_count(1)

        # --- the customer reloads: the whole conversation again, each seq exactly once
        msg_sel = '[data-testid="cc-message"][data-seq]'
        before = _seqs(shop, msg_sel)
        assert len(before) == len(set(before)), before
        shop.reload()
        expect(shop.get_by_test_id("cc-status")).to_have_attribute("data-state", "online")
        expect(shop.get_by_test_id("cc-panel")).to_be_visible()  # it was open: it opens again by itself (issue 20)
        expect(shop.locator(msg_sel)).to_have_count(len(before))
        shop.wait_for_timeout(1000)  # let the session replay land: it must not add duplicates
        after = _seqs(shop, msg_sel)
        assert sorted(after) == sorted(before) and len(after) == len(set(after)), (before, after)
        assert after == sorted(after), after
        for text in ("Hello, where is my order?", "Hi! Let me check.", "Sent while offline", "Got it, thanks."):
            expect(shop.locator('[data-testid="cc-message"]', has_text=text)).to_have_count(1)
        expect(shop.locator('[data-testid="cc-message"]', has_text="VIP: check the courier")).to_have_count(0)
        expect(shop.get_by_test_id("cc-agent-name")).to_contain_text(agent_name)
        shop.get_by_test_id("cc-input").fill("Thanks, I'll wait.")
        shop.get_by_test_id("cc-send").click()
        expect(transcript.locator('[data-testid="message"]', has_text="Thanks, I'll wait.")).to_have_count(1)
        agent_seqs = _seqs(agent, '[data-testid="transcript"] [data-testid="message"][data-seq]')
        assert len(agent_seqs) == len(set(agent_seqs)), agent_seqs

        # --- the agent reloads the console: still signed in, the chat and its transcript (notes too) come back
        agent.reload()
        expect(agent.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        expect(agent.get_by_test_id("conversation-item")).to_have_count(1)
        expect(transcript.locator('[data-testid="message"][data-seq]')).to_have_count(len(agent_seqs))
        assert sorted(_seqs(agent, '[data-testid="transcript"] [data-testid="message"][data-seq]')) == sorted(agent_seqs)
        expect(transcript.locator('[data-testid="message"][data-internal="true"]')).to_have_count(1)
        expect(agent.get_by_test_id("customer-360").get_by_test_id("order-item")).to_have_count(1)

        agent.screenshot(path=str(ARTIFACTS / "agent.png"))
        shop.screenshot(path=str(ARTIFACTS / "customer.png"))

        # --- a colleague, bob, signs in (third context) and becomes available
        bob_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
        contexts.append(bob_ctx)
        bob = bob_ctx.new_page()
        pages.append((bob, "bob-failure.png"))
        _watch(bob, dialogs, errors)
        bob.goto(f"{hub}/console")
        bob.get_by_test_id("login-username").fill("bob")
        bob.get_by_test_id("login-password").fill("demo-password")
        bob.get_by_test_id("login-submit").click()
        expect(bob.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        expect(bob.get_by_test_id("agent-name")).to_have_text("Bob Novak")
        bob.get_by_test_id("status-select").select_option("available")
        expect(bob.get_by_test_id("status-select")).to_have_attribute("data-confirmed", "available")
        expect(bob.get_by_test_id("offer")).to_have_count(0)

        # --- alice opens Transfer: queues and colleagues (with presence) from the directory
        agent.get_by_test_id("transfer-open").click()
        queue_select = agent.get_by_test_id("transfer-queue")
        agent_select = agent.get_by_test_id("transfer-agent")
        expect(agent_select).to_be_enabled()
        queue_values = queue_select.locator("option").evaluate_all("els => els.map(e => e.value).filter(Boolean)")
        assert "sales" in queue_values and "support" in queue_values, queue_values
        bob_option = agent_select.locator("option", has_text="Bob Novak")
        expect(bob_option).to_have_count(1)
        expect(bob_option).to_contain_text("available")
        expect(agent_select.locator("option", has_text="Alice Martin")).to_have_count(0)  # not herself
        expect(agent.get_by_test_id("transfer-submit")).to_be_disabled()

        # an error from the hub is shown in the dialog (a colleague who no longer exists)
        agent_select.evaluate("s => s.add(new Option('Gone Agent — available', '999999'))")
        agent_select.select_option("999999")
        agent.get_by_test_id("transfer-submit").click()
        expect(agent.get_by_test_id("transfer-error")).to_have_text("no such agent")
        expect(agent.get_by_test_id("conversation-item")).to_have_count(1)

        # choosing a queue clears the colleague and the other way round; then bob, by name, with a note
        queue_select.select_option("support")
        expect(agent_select).to_have_value("")
        agent_select.select_option(bob_option.get_attribute("value"))
        expect(queue_select).to_have_value("")
        agent.get_by_test_id("transfer-note").fill("Wants the courier's tracking link")
        expect(agent.get_by_test_id("transfer-error")).to_be_hidden()
        agent.screenshot(path=str(ARTIFACTS / "console-transfer.png"))
        agent.get_by_test_id("transfer-submit").click()
        expect(agent.get_by_test_id("conversation-item")).to_have_count(0)
        expect(agent.locator("#transfer-dialog")).to_be_hidden()
        expect(agent.locator("#chat-empty")).to_be_visible()

        # --- bob gets the offer (only he may take it), accepts, and sees the whole transcript, notes included
        offer = bob.get_by_test_id("offer")
        expect(offer).to_have_count(1)
        expect(offer).to_have_attribute("data-conversation-id", conversation_id)
        offer.get_by_test_id("offer-accept").click()
        expect(bob.get_by_test_id("conversation-item")).to_have_count(1)
        bob_transcript = bob.get_by_test_id("transcript")
        transferred = bob_transcript.locator('[data-testid="message"][data-sender="system"]', has_text="transferred")
        expect(transferred).to_have_count(1)
        bob_seqs = _seqs(bob, '[data-testid="transcript"] [data-testid="message"][data-seq]')
        assert set(agent_seqs) < set(bob_seqs) and len(bob_seqs) == len(set(bob_seqs)), (agent_seqs, bob_seqs)
        assert bob_seqs == sorted(bob_seqs), bob_seqs
        for text in ("Hello, where is my order?", "Hi! Let me check.", "Sent while offline", "Got it, thanks.", "Thanks, I'll wait."):
            expect(bob_transcript.locator('[data-testid="message"]', has_text=text)).to_have_count(1)
        expect(bob_transcript.locator('[data-testid="message"][data-internal="true"]', has_text="VIP: check the courier first")).to_have_count(1)
        expect(bob_transcript.locator("img")).to_have_count(0)
        bob_360 = bob.get_by_test_id("customer-360")
        expect(bob_360.get_by_test_id("customer-name")).to_have_text("Erin Lindqvist")
        expect(bob_360.get_by_test_id("timeline-item").filter(has_text="Wants the courier's tracking link")).to_have_count(1)
        expect(shop.get_by_test_id("cc-messages")).to_contain_text("transferred")
        expect(shop.get_by_test_id("cc-agent-name")).to_contain_text("Bob Novak")
        bob.get_by_test_id("reply-input").fill("Hi, Bob here: I have the tracking link.")
        bob.get_by_test_id("reply-input").press("Enter")
        expect(shop.locator('[data-testid="cc-message"][data-sender="agent"]', has_text="Bob here")).to_have_count(1)
        bob.screenshot(path=str(ARTIFACTS / "console-transfer-bob.png"))

        # --- bob wraps up
        bob.get_by_test_id("close-disposition").select_option("resolved")
        bob.get_by_test_id("close-note").fill("Order located, customer informed")
        bob.get_by_test_id("close-submit").click()
        expect(bob.get_by_test_id("conversation-item")).to_have_count(0)
        expect(agent.get_by_test_id("conversation-item")).to_have_count(0)
        expect(shop.get_by_test_id("cc-messages")).to_contain_text("This conversation has ended")
        expect(shop.get_by_test_id("cc-agent-name")).to_have_text("")
        shop.screenshot(path=str(ARTIFACTS / "customer-closed.png"))

        status, c360_json = _http(f"{hub}/api/customers/{customer_id}")
        assert status == 200
        summaries = [i["summary"] for i in c360_json["timeline"]["items"]]
        assert any("resolved" in s for s in summaries), summaries

        assert dialogs == [], dialogs
        assert errors == [], errors
    except Exception:
        for page, name in pages:
            try:
                page.screenshot(path=str(ARTIFACTS / name))
            except Exception:  # noqa: BLE001 - best effort while reporting the real failure
                pass
        raise
    finally:
        for ctx in contexts:
            ctx.close()
