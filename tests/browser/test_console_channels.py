"""The agent console's one list for every channel, in a real headless Chromium against a running hub.

Same set-up as ``test_chat_e2e.py`` (``tests/browser/harness.py``): the hub runs as a subprocess on a fresh
SQLite file with the demo data, with the Twilio stand-in on as ``make run`` has it (so the hub serves SMS and
WhatsApp beside web chat); two shop visitors chat from ``/shop`` (real widgets, nothing mocked on the
server) and agent ``alice`` works both from ``/console``. With what the hub sends today (web chat only):
each conversation has its channel icon and label, the channel filter hides and shows, the status filter
follows who spoke last, unread counts grow for the conversation not on screen and clear when it opens,
the search box finds by customer name and by transcript text, and the list works from the keyboard.
The console's pure modules (SMS segments, delivery-status order, attachment URLs) are loaded as they
are in the page and checked against the hub's reference (``contact_center/domain/channels.py``).
Screenshots: ``test-artifacts/console-channels.png`` and ``console-channels-filtered.png`` (1280x800).
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterator
from unittest import mock

import pytest

pytestmark = pytest.mark.browser

from contact_center.domain import channels as channels_domain  # noqa: E402 - the reference the console mirrors
from tests.browser.harness import ARTIFACTS, chromium, running_hub, sync_api, watch  # noqa: E402

TOKEN = "console-channels"


SMS_SAMPLES = [
    "",
    "Hello",
    "a" * 160,
    "a" * 161,
    "a" * 306,
    "a" * 307,
    "{" * 80,  # extended characters count two: 160 units
    "{" * 81,
    "€ and [brackets] ~ | ^ \\",
    "Grüße aus Köln",  # ü, ö are GSM-7
    "café ça",  # ç is not: UCS-2
    "Thanks 🙂",  # an emoji: UCS-2, two code units
    "🙂" * 35,  # 70 code units
    "🙂" * 36,
    "x" * 67 + "ł",
    "Line one\nline two\r\n",
]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A hub on a free port with the demo data; yields its base URL."""
    tmp = tmp_path_factory.mktemp("console-channels")
    with mock.patch.dict(os.environ, {"TWILIO_STANDIN": "1", "MEDIA_DIR": str(tmp / "media")}):
        with running_hub(tmp, "console-channels", TOKEN) as base:
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
    _say(page, text)


def _say(page: Any, text: str) -> None:
    page.get_by_test_id("cc-input").fill(text)
    page.get_by_test_id("cc-send").click()
    sync_api.expect(page.locator('[data-testid="cc-message"][data-sender="customer"][data-seq]', has_text=text)).to_have_count(1)


def test_one_list_for_every_channel(hub: str, browser: Any) -> None:
    expect = sync_api.expect
    expect.set_options(timeout=20_000)
    ARTIFACTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    errors: list[str] = []
    contexts = [browser.new_context(viewport={"width": 1280, "height": 800}) for _ in range(3)]
    agent, kai, lena = (ctx.new_page() for ctx in contexts)
    pages = [(agent, "console-channels-failure.png"), (kai, "console-channels-kai-failure.png"), (lena, "console-channels-lena-failure.png")]
    for page in (agent, kai, lena):
        watch(page, dialogs, errors)
    try:
        # --- alice signs in; two visitors write while she is away
        agent.goto(f"{hub}/console")
        agent.get_by_test_id("login-username").fill("alice")
        agent.get_by_test_id("login-password").fill("demo-password")
        agent.get_by_test_id("login-submit").click()
        expect(agent.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        expect(agent.get_by_test_id("conversation-filter-channel")).to_be_hidden()  # no conversations: no filters (the search box finds customers too)
        _visitor_writes(kai, hub, "Kai Nakamura", "Hi, do you ship to Norway?")
        _visitor_writes(lena, hub, "Lena Fischer", "My parcel arrived damaged")

        # --- she becomes available and accepts both: the first opens; the second is added as New, and the focus
        # stays on the first (issue 20) until she opens it
        agent.get_by_test_id("status-select").select_option("available")
        for name in ("Kai Nakamura", "Lena Fischer"):
            offer = agent.get_by_test_id("offer").filter(has_text=name)
            expect(offer).to_have_count(1)
            expect(offer.get_by_test_id("channel-tag")).to_have_attribute("data-channel", "chat")
            offer.get_by_test_id("offer-accept").click()
            expect(agent.get_by_test_id("conversation-item").filter(has_text=name)).to_have_count(1)
            expect(agent.locator("#chat-title")).to_have_text("Kai Nakamura")
        items = agent.get_by_test_id("conversation-item")
        expect(items).to_have_count(2)
        kai_item = items.filter(has_text="Kai Nakamura")
        lena_item = items.filter(has_text="Lena Fischer")
        expect(lena_item.get_by_test_id("fresh-label")).to_have_text("New")
        lena_item.get_by_test_id("conversation-open").click()
        expect(agent.locator("#chat-title")).to_have_text("Lena Fischer")
        expect(lena_item.get_by_role("button")).to_have_attribute("aria-current", "true")

        # --- every conversation shows its channel: an icon (an SVG) and the channel's label
        for item in (kai_item, lena_item):
            icon = item.get_by_test_id("channel-icon")
            expect(icon).to_be_visible()
            expect(icon).to_have_attribute("data-channel", "chat")
            expect(icon).to_have_attribute("data-icon", "chat")
            expect(icon.locator("svg")).to_have_count(1)
            expect(item.get_by_test_id("channel-label")).to_have_text("Chat")
            expect(item.get_by_role("button")).to_have_accessible_name(re.compile(r"Web chat|Chat"))
        expect(agent.locator("#chat-sub").get_by_test_id("channel-tag")).to_have_attribute("data-channel", "chat")
        expect(agent.locator("#chat-sub")).not_to_contain_text("null")

        # --- unread: messages for the conversation not on screen count up; the open one stays at zero
        _say(kai, "It's for an order to Oslo")
        expect(kai_item.get_by_test_id("unread-badge")).to_have_text("1")
        _say(kai, "Order 1042")
        expect(kai_item.get_by_test_id("unread-badge")).to_have_text("2")
        expect(agent.get_by_test_id("unread-total")).to_have_text("2")
        expect(agent).to_have_title(re.compile(r"^\(2\) "))
        expect(kai_item).to_have_attribute("data-unread", "2")
        _say(lena, "The box was crushed")
        expect(agent.get_by_test_id("transcript").locator('[data-testid="message"]', has_text="The box was crushed")).to_have_count(1)
        expect(lena_item.get_by_test_id("unread-badge")).to_have_text("")
        # the newest activity is on top
        expect(items.first).to_contain_text("Lena Fischer")
        agent.screenshot(path=str(ARTIFACTS / "console-channels.png"))

        # --- opening it clears the count
        kai_item.get_by_role("button").click()
        expect(agent.locator("#chat-title")).to_have_text("Kai Nakamura")
        expect(kai_item.get_by_test_id("unread-badge")).to_have_text("")
        expect(kai_item).to_have_attribute("data-unread", "0")
        expect(agent.get_by_test_id("unread-total")).to_be_hidden()
        expect(agent).to_have_title(re.compile(r"^Agent console"))
        expect(agent.get_by_test_id("transcript").locator('[data-testid="message"][data-sender="customer"]')).to_have_count(3)
        expect(agent.get_by_test_id("customer-360").get_by_test_id("customer-name")).to_have_text("Kai Nakamura")

        # --- the channel filter hides what is not of that channel and shows it again
        channel = agent.get_by_test_id("conversation-filter-channel")
        values = channel.locator("option").evaluate_all("els => els.map(e => e.value)")
        assert values[0] == "" and "chat" in values and "sms" in values, values  # the hub's channels (hello.channels)
        other = "sms"
        channel.select_option(other)
        expect(kai_item).to_be_hidden()
        expect(lena_item).to_be_hidden()
        expect(agent.get_by_test_id("conversations-no-match")).to_be_visible()
        expect(agent.get_by_test_id("conversation-filter-summary")).to_have_text("0 of 2 conversations shown")
        channel.select_option("chat")
        expect(kai_item).to_be_visible()
        expect(lena_item).to_be_visible()
        expect(agent.get_by_test_id("conversations-no-match")).to_be_hidden()
        channel.select_option(other)
        agent.get_by_test_id("conversation-filter-clear").click()  # "Clear filters" shows everything again
        expect(channel).to_have_value("")
        expect(kai_item).to_be_visible()
        expect(lena_item).to_be_visible()

        # --- the status filter: "Needs reply" while the customer spoke last
        agent.get_by_test_id("reply-input").fill("Yes, we ship to Norway.")
        agent.get_by_test_id("reply-input").press("Enter")
        expect(agent.get_by_test_id("transcript").locator('[data-testid="message"][data-sender="agent"][data-seq]')).to_have_count(1)
        status = agent.get_by_test_id("conversation-filter-status")
        status.select_option("needs_reply")
        expect(kai_item).to_be_hidden()
        expect(lena_item).to_be_visible()
        status.select_option("")
        # the queue filter lists the queues of the conversations (when the hub names them)
        queues = agent.get_by_test_id("conversation-filter-queue").locator("option").evaluate_all("els => els.map(e => e.value)")
        assert queues[0] == "", queues

        # --- search: by customer name (any case, any accent), by transcript text, nothing; Escape clears
        search = agent.get_by_test_id("conversation-search")
        search.fill("kai")
        expect(kai_item).to_be_visible()
        expect(lena_item).to_be_hidden()
        search.fill("FISCHER")
        expect(lena_item).to_be_visible()
        expect(kai_item).to_be_hidden()
        search.fill("crushed")  # only in Lena's transcript
        expect(lena_item).to_be_visible()
        expect(kai_item).to_be_hidden()
        expect(lena_item.locator(".conv-preview")).to_have_text("The box was crushed")
        search.fill("oslo 1042")  # every word, across Kai's messages
        expect(kai_item).to_be_visible()
        expect(lena_item).to_be_hidden()
        agent.screenshot(path=str(ARTIFACTS / "console-channels-filtered.png"))
        search.fill("zanzibar")
        expect(kai_item).to_be_hidden()
        expect(lena_item).to_be_hidden()
        expect(agent.get_by_test_id("conversations-no-match")).to_be_visible()
        search.press("Escape")
        expect(search).to_have_value("")
        expect(kai_item).to_be_visible()
        expect(lena_item).to_be_visible()

        # --- the keyboard: items are buttons; arrows move between them, Enter opens
        buttons = agent.get_by_test_id("conversation-open")
        buttons.first.focus()
        agent.keyboard.press("ArrowDown")
        second = buttons.nth(1)
        expect(second).to_be_focused()
        agent.keyboard.press("Home")
        expect(buttons.first).to_be_focused()
        agent.keyboard.press("End")
        expect(second).to_be_focused()
        agent.keyboard.press("Enter")
        expect(second).to_have_attribute("aria-current", "true")
        expect(agent.get_by_test_id("reply-input")).to_be_focused()  # opening a conversation puts the agent in its composer

        # --- the pure modules, as the page loads them, agree with the hub's reference
        got = agent.evaluate(
            "async (samples) => { const m = await import('/static/console/channels/sms.js');"
            " return samples.map((t) => { const s = m.smsSegments(t); return [s.segments, s.encoding]; }); }",
            SMS_SAMPLES,
        )
        want = [list(channels_domain.sms_segments(t)) for t in SMS_SAMPLES]
        assert got == want, list(zip(SMS_SAMPLES, got, want))
        statuses = [None, "queued", "sent", "delivered", "read", "failed", "undelivered"]
        pairs = [(a, b) for a in statuses for b in statuses[1:]]
        got = agent.evaluate(
            "async (pairs) => { const m = await import('/static/console/channels/delivery.js');"
            " return pairs.map(([a, b]) => m.movesForward(a, b)); }",
            pairs,
        )
        assert got == [channels_domain.moves_forward(a, b) for a, b in pairs], pairs
        urls = agent.evaluate(
            "async () => { const m = await import('/static/console/core/media.js'); return ["
            " m.mediaUrl('/media/a/photo.jpg'), m.mediaUrl(location.origin + '/media/x.pdf?v=1'),"
            " m.mediaUrl('https://evil.example/media/x.jpg'), m.mediaUrl('javascript:alert(1)'),"
            " m.mediaUrl('/media/../api/customers'), m.mediaUrl('/static/x.png'), m.mediaUrl('//evil.example/media/x')]; }"
        )
        assert urls == ["/media/a/photo.jpg", "/media/x.pdf?v=1", None, None, None, None, None], urls

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
