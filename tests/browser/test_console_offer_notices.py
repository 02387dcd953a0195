"""What the console says when an offer goes away (issue 21), in a real headless Chromium against a running hub.

- Declining: the card goes and a notice says so, and for how long the conversation will not be offered to
  this agent again, when the hub says (``skip_seconds`` in the decline's ack; without it, no duration).
- Letting an offer time out (``OFFER_TIMEOUT_SECONDS=4`` here): the card does not just vanish, a "Missed"
  notice says it went back to the queue (with the skip when ``offer_revoked`` carries ``reason: "expired"``
  and ``skip_seconds``).
- The notices can be dismissed, and axe finds nothing serious while they show.
- The notice's words (``console/views/offer-notice-text.js``) are checked on their own for every case.

The test reads the hub's Socket.IO frames, so it holds the console to what the hub actually sent, whichever
version of the hub runs. Screenshots: ``test-artifacts/console-offer-notices*.png``.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Iterator
from unittest import mock

import pytest

pytestmark = pytest.mark.browser

from tests.browser.harness import ARTIFACTS, chromium, running_hub, sync_api, watch  # noqa: E402
from tests.browser.test_accessibility import AXE_JS, axe_violations, describe  # noqa: E402

TOKEN = "offer-notices-e2e"
OFFER_TIMEOUT = 4


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {"WRAP_UP_SECONDS": "0", "OFFER_TIMEOUT_SECONDS": str(OFFER_TIMEOUT)}
    with mock.patch.dict(os.environ, env):
        with running_hub(tmp_path_factory.mktemp("offers"), "offer-notices", TOKEN) as base:
            yield base


@pytest.fixture(scope="module")
def browser(hub: str) -> Iterator[Any]:
    with chromium() as b:
        yield b


class Frames:
    """The /agent namespace's Socket.IO packets the page received: events and acks, decoded."""

    def __init__(self, page: Any) -> None:
        self.events: list[tuple[str, Any]] = []
        self.acks: list[Any] = []
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _frame(self, payload: Any) -> None:
        if not isinstance(payload, str):
            return
        m = re.match(r"^4([23])/agent,(\d*)(\[.*)$", payload, re.S)
        if not m:
            return
        data = json.loads(m.group(3))
        if m.group(1) == "2" and data:
            self.events.append((data[0], data[1] if len(data) > 1 else None))
        elif m.group(1) == "3" and data:
            self.acks.append(data[0])

    def event(self, name: str, conversation_id: str) -> dict[str, Any] | None:
        return next((p for n, p in self.events if n == name and str((p or {}).get("conversation_id")) == conversation_id), None)


def _visitor_writes(page: Any, hub: str, name: str, text: str) -> None:
    page.goto(f"{hub}/shop")
    page.get_by_test_id("cc-launcher").click()
    sync_api.expect(page.get_by_test_id("cc-panel")).to_be_visible()
    page.get_by_test_id("cc-name").fill(name)
    page.get_by_test_id("cc-input").fill(text)
    page.get_by_test_id("cc-send").click()
    sync_api.expect(page.locator('[data-testid="cc-message"][data-sender="customer"]', has_text=text)).to_have_count(1)


def _seconds(n: float) -> str:
    n = round(n)
    return f"{n} second{'' if n == 1 else 's'}"


def test_notice_words(hub: str, browser: Any) -> None:
    ctx = browser.new_context()
    page = ctx.new_page()
    try:
        page.goto(f"{hub}/console")
        got = page.evaluate(
            """async () => {
                const m = await import('/static/console/views/offer-notice-text.js');
                return [
                    m.noticeText('declined', 'Ada', 20), m.noticeText('declined', 'Ada', null), m.noticeText('declined', 'Ada', undefined),
                    m.noticeText('declined', 'Ada', 0), m.noticeText('missed', 'Ada', 90), m.noticeText('missed', 'Ada', null),
                    m.noticeText('missed', 'Ada', 1), m.noticeText('declined', 'Ada', 'soon'), m.noticeText('left', 'Ada', null),
                    m.duration(1), m.duration(59.6), m.duration(60), m.duration(61), m.duration(150), m.duration(0),
                ];
            }"""
        )
        assert got == [
            "You declined Ada. It is back in the queue for another agent. It will not be offered to you again for 20 seconds.",
            "You declined Ada. It is back in the queue for another agent.",
            "You declined Ada. It is back in the queue for another agent.",
            "You declined Ada. It is back in the queue for another agent. It may be offered to you again.",
            "Missed: Ada. The offer timed out and went back to the queue. It will not be offered to you again for 1 minute 30 seconds.",
            "Missed: Ada. The offer timed out and went back to the queue.",
            "Missed: Ada. The offer timed out and went back to the queue. It will not be offered to you again for 1 second.",
            "You declined Ada. It is back in the queue for another agent.",
            "Ada left before the offer was answered: nothing to do.",
            "1 second", "1 minute", "1 minute", "1 minute 1 second", "2 minutes 30 seconds", "1 second",
        ]
    finally:
        ctx.close()


def test_declined_and_missed_offers_are_said(hub: str, browser: Any) -> None:
    expect = sync_api.expect
    expect.set_options(timeout=20_000)
    ARTIFACTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    errors: list[str] = []
    agent_ctx = browser.new_context(viewport={"width": 1440, "height": 900}, bypass_csp=True)  # axe is injected inline
    shop_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    contexts = [agent_ctx, shop_ctx]
    agent, shop = agent_ctx.new_page(), shop_ctx.new_page()
    for page in (agent, shop):
        watch(page, dialogs, errors)
    frames = Frames(agent)
    notices = agent.get_by_test_id("offer-notice")
    try:
        agent.goto(f"{hub}/console")
        agent.get_by_test_id("login-username").fill("alice")
        agent.get_by_test_id("login-password").fill("demo-password")
        agent.get_by_test_id("login-submit").click()
        expect(agent.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        agent.get_by_test_id("status-select").select_option("available")
        expect(agent.get_by_test_id("status-select")).to_have_attribute("data-confirmed", "available")

        # --- declined: the card goes, a notice says so (and for how long, when the hub says)
        _visitor_writes(shop, hub, "Dee Decliner", "Hi, a question about sizes")
        offer = agent.get_by_test_id("offer").filter(has_text="Dee Decliner")
        expect(offer).to_have_count(1)
        declined_id = offer.get_attribute("data-conversation-id")
        assert declined_id
        acks_before = len(frames.acks)
        offer.get_by_test_id("offer-decline").click()
        expect(offer).to_have_count(0)
        notice = agent.locator(f'[data-testid="offer-notice"][data-conversation-id="{declined_id}"]')
        expect(notice).to_have_attribute("data-kind", "declined")
        ack = next((a for a in frames.acks[acks_before:] if isinstance(a, dict) and a.get("ok")), None)
        assert ack is not None, frames.acks
        text = "You declined Dee Decliner. It is back in the queue for another agent."
        if ack.get("skip_seconds") is not None and float(ack["skip_seconds"]) > 0:
            text += f" It will not be offered to you again for {_seconds(float(ack['skip_seconds']))}."
        expect(notice.get_by_test_id("offer-notice-text")).to_have_text(text)
        expect(agent.get_by_test_id("offer-notices")).to_have_attribute("role", "status")

        # --- missed: another visitor's offer runs out; the card is replaced by a "Missed" notice
        shop2_ctx = browser.new_context(viewport={"width": 1280, "height": 900})  # another visitor: their own storage
        contexts.append(shop2_ctx)
        shop2 = shop2_ctx.new_page()
        watch(shop2, dialogs, errors)
        _visitor_writes(shop2, hub, "Tim Timeout", "Anyone there?")
        offer = agent.get_by_test_id("offer").filter(has_text="Tim Timeout")
        expect(offer).to_have_count(1)
        missed_id = offer.get_attribute("data-conversation-id")
        assert missed_id
        missed = agent.locator(f'[data-testid="offer-notice"][data-conversation-id="{missed_id}"]')
        expect(missed).to_have_attribute("data-kind", "missed", timeout=(OFFER_TIMEOUT + 10) * 1000)
        expect(offer).to_have_count(0)
        expect(missed).to_contain_text("Missed: Tim Timeout. The offer timed out and went back to the queue.")
        revoked = frames.event("offer_revoked", missed_id)
        if revoked and revoked.get("skip_seconds") is not None and float(revoked["skip_seconds"]) > 0:
            expect(missed.get_by_test_id("offer-notice-text")).to_have_text(
                "Missed: Tim Timeout. The offer timed out and went back to the queue."
                f" It will not be offered to you again for {_seconds(float(revoked['skip_seconds']))}."
            )
        expect(notices).to_have_count(2)
        expect(notices.first).to_have_attribute("data-conversation-id", missed_id)  # newest first
        agent.screenshot(path=str(ARTIFACTS / "console-offer-notices.png"))

        # nothing serious for axe while they show
        if AXE_JS.is_file():
            violations = axe_violations(agent, AXE_JS.read_text(encoding="utf-8"))
            assert not violations, describe("/console (offer notices)", violations)

        # --- dismissed, one at a time
        missed.get_by_test_id("offer-notice-dismiss").click()
        expect(missed).to_have_count(0)
        expect(notices).to_have_count(1)
        notice.get_by_role("button", name="Dismiss").click()
        expect(notices).to_have_count(0)

        assert not errors, f"uncaught page errors: {errors}"
        assert not dialogs, f"unexpected dialogs: {dialogs}"
    except Exception:
        try:
            agent.screenshot(path=str(ARTIFACTS / "console-offer-notices-failure.png"))
        except Exception:  # noqa: BLE001 - best effort
            pass
        raise
    finally:
        for ctx in contexts:
            ctx.close()
