"""The supervisor dashboard in a real headless Chromium, updating live against a running hub.

The hub runs as a subprocess (``python -m contact_center.cli serve``, demo data, ``ABANDON_GRACE_SECONDS=1``).
Supervisor ``sam`` watches ``/supervisor`` while a shop visitor waits (waiting 1), agent ``alice`` answers
(waiting 0, handled 1), sam watches the chat and whispers to alice, sets alice away, and a second visitor
leaves while waiting (abandoned 1, abandonment 50%). Screenshots: ``test-artifacts/supervisor-dashboard.png``
(the end state) and ``test-artifacts/supervisor-watch.png`` (a chat being watched).

Needs the ``playwright`` Python package and Debian's Chromium (skipped when either is missing).
"""

from __future__ import annotations

import os
from typing import Any, Iterator
from unittest import mock

import pytest

pytestmark = pytest.mark.browser

from tests.browser.harness import ARTIFACTS, chromium, running_hub, sync_api, watch  # noqa: E402

TOKEN = "sup-e2e"
XSS = "<img src=x onerror=alert(1)> still there?"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A hub on a free port with the demo data and a one-second abandon grace; yields its base URL."""
    with mock.patch.dict(os.environ, {"ABANDON_GRACE_SECONDS": "1", "WRAP_UP_SECONDS": "0"}):
        with running_hub(tmp_path_factory.mktemp("sup"), "supervisor", TOKEN) as base:
            yield base


@pytest.fixture(scope="module")
def browser(hub: str) -> Iterator[Any]:
    with chromium() as b:
        yield b


def _login(page: Any, hub: str, username: str) -> None:
    page.goto(f"{hub}/console")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill("demo-password")
    page.get_by_test_id("login-submit").click()
    sync_api.expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "online")


def _visitor_writes(page: Any, hub: str, name: str, text: str) -> None:
    page.goto(f"{hub}/shop")
    page.get_by_test_id("cc-launcher").click()
    sync_api.expect(page.get_by_test_id("cc-panel")).to_be_visible()
    page.get_by_test_id("cc-name").fill(name)
    page.get_by_test_id("cc-input").fill(text)
    page.get_by_test_id("cc-send").click()
    sync_api.expect(page.locator('[data-testid="cc-message"][data-sender="customer"]', has_text=text)).to_have_count(1)


def test_dashboard_follows_a_wait_an_answer_and_an_abandon(hub: str, browser: Any) -> None:
    expect = sync_api.expect
    expect.set_options(timeout=20_000)
    ARTIFACTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    errors: list[str] = []
    contexts = [browser.new_context(viewport={"width": 1440, "height": 1000}) for _ in range(3)]
    sup_ctx, agent_ctx, shop_ctx = contexts
    boss, agent, shop = sup_ctx.new_page(), agent_ctx.new_page(), shop_ctx.new_page()
    pages = [(boss, "supervisor-failure.png"), (agent, "supervisor-agent-failure.png"), (shop, "supervisor-shop-failure.png")]
    for page in (boss, agent, shop):
        watch(page, dialogs, errors)
    try:
        # --- not signed in: sent to the console's sign-in; an agent is not let in
        boss.goto(f"{hub}/supervisor")
        expect(boss).to_have_url(f"{hub}/console?next=/supervisor")
        _login(agent, hub, "alice")
        assert agent.request.get(f"{hub}/supervisor").status == 403
        assert agent.request.get(f"{hub}/api/supervisor/snapshot").status == 403

        # --- the supervisor signs in and opens the dashboard
        _login(boss, hub, "sam")
        boss.goto(f"{hub}/supervisor")
        expect(boss.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        expect(boss.get_by_test_id("supervisor-name")).to_contain_text("Sam Okafor")
        expect(boss.get_by_test_id("kpi-waiting")).to_have_text("0")
        expect(boss.get_by_test_id("kpi-handled")).to_have_text("0")
        expect(boss.locator('[data-testid="queue-row"]')).to_have_count(4)  # the demo shop's queues
        expect(boss.locator('[data-testid="agent-row"]')).to_have_count(6)
        expect(boss.get_by_test_id("interval-chart-svg")).to_be_visible()

        # --- a customer waits
        _visitor_writes(shop, hub, "Wanda Waiting", "Hello, where is my order?")
        expect(boss.get_by_test_id("kpi-waiting")).to_have_text("1")
        sales = boss.locator('[data-testid="queue-row"][data-queue="sales"]')
        expect(sales.locator('[data-field="waiting"]')).to_have_text("1")
        waiting_row = boss.locator('[data-testid="conversation-row"][data-status="queued"]')
        expect(waiting_row).to_have_count(1)
        expect(waiting_row.locator('[data-field="customer"]')).to_contain_text("Wanda Waiting")
        conversation_id = waiting_row.get_attribute("data-conversation-id")
        assert conversation_id and conversation_id.isdigit()

        # --- alice becomes available and answers
        agent.get_by_test_id("status-select").select_option("available")
        offer = agent.get_by_test_id("offer")
        expect(offer).to_have_count(1)
        offer.get_by_test_id("offer-accept").click()
        expect(agent.get_by_test_id("conversation-item")).to_have_count(1)
        expect(boss.get_by_test_id("kpi-waiting")).to_have_text("0")
        expect(boss.get_by_test_id("kpi-handled")).to_have_text("1")
        expect(boss.get_by_test_id("kpi-offered")).to_have_text("of 1 offered")
        expect(sales.locator('[data-field="handled"]')).to_have_text("1")
        expect(boss.get_by_test_id("kpi-asa")).not_to_have_text("–")
        row = boss.locator(f'[data-testid="conversation-row"][data-conversation-id="{conversation_id}"]')
        expect(row).to_have_attribute("data-status", "assigned")
        expect(row.locator('[data-field="agent"]')).to_have_text("Alice Martin")
        alice = boss.locator('[data-testid="agent-row"]', has_text="Alice Martin")
        expect(alice).to_have_attribute("data-state", "busy")

        # --- the supervisor watches the chat: transcript now, messages live, markup shown as text
        row.get_by_test_id("conversation-watch").click()
        panel = boss.get_by_test_id("watch-panel")
        expect(panel).to_be_visible()
        transcript = boss.get_by_test_id("watch-transcript")
        expect(transcript.locator('[data-testid="watch-message"][data-sender="customer"]', has_text="Hello, where is my order?")).to_have_count(1)
        shop.get_by_test_id("cc-input").fill(XSS)
        shop.get_by_test_id("cc-send").click()
        live = transcript.locator('[data-testid="watch-message"][data-sender="customer"]', has_text="onerror")
        expect(live).to_have_count(1)
        expect(live.locator(".msg-body")).to_have_text(XSS)
        assert transcript.locator("img").count() == 0
        agent.get_by_test_id("reply-input").fill("Let me look that up.")
        agent.get_by_test_id("reply-input").press("Enter")
        expect(transcript.locator('[data-testid="watch-message"][data-sender="agent"]', has_text="Let me look that up.")).to_have_count(1)

        # --- a whisper: alice sees it, the customer never does
        boss.get_by_test_id("whisper-input").fill("Offer free shipping")
        boss.get_by_test_id("whisper-send").click()
        expect(transcript.locator('[data-testid="watch-message"][data-internal="true"]', has_text="Offer free shipping")).to_have_count(1)
        expect(agent.get_by_test_id("transcript")).to_contain_text("Offer free shipping")
        boss.screenshot(path=str(ARTIFACTS / "supervisor-watch.png"), full_page=True)
        shop.wait_for_timeout(500)
        expect(shop.locator('[data-testid="cc-message"]', has_text="Offer free shipping")).to_have_count(0)
        boss.get_by_test_id("watch-close").click()
        expect(panel).to_be_hidden()

        # --- the supervisor sets alice away (so the next visitor waits)
        alice.get_by_test_id("agent-state-select").select_option("away")
        alice.get_by_test_id("agent-state-set").click()
        expect(alice).to_have_attribute("data-state", "away")

        # --- a second customer waits, then leaves: abandoned after the hub's grace period
        leaver_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
        leaver = leaver_ctx.new_page()
        watch(leaver, dialogs, errors)
        _visitor_writes(leaver, hub, "Lee Leaving", "Is anyone there?")
        expect(boss.get_by_test_id("kpi-waiting")).to_have_text("1")
        expect(boss.locator('[data-testid="conversation-row"][data-status="queued"]')).to_have_count(1)
        leaver_ctx.close()
        expect(boss.get_by_test_id("kpi-abandoned")).to_have_text("1 abandoned")
        expect(boss.get_by_test_id("kpi-abandonment")).to_have_text("50%")
        expect(boss.get_by_test_id("kpi-waiting")).to_have_text("0")
        expect(boss.get_by_test_id("kpi-offered")).to_have_text("of 2 offered")
        expect(sales.locator('[data-field="abandonment"]')).to_have_text("50% (1)")
        expect(boss.locator('[data-testid="conversation-row"][data-status="queued"]')).to_have_count(0)
        # today's chart counts both contacts (summed over its bars: the test may straddle a half hour)
        boss.wait_for_function(
            """() => {
                const bars = [...document.querySelectorAll('[data-testid="interval-bar"]')];
                const sum = (k) => bars.reduce((a, e) => a + Number(e.dataset[k]), 0);
                return sum('offered') === 2 && sum('handled') === 1 && sum('abandoned') === 1;
            }""",
            timeout=20_000,
        )
        # Erlang C per interval: a busy interval needs an agent and shows the figure; an idle one needs none
        needs = boss.eval_on_selector_all(
            '[data-testid="interval-bar"]', "els => els.map(e => [Number(e.dataset.offered), Number(e.dataset.agentsNeeded)])"
        )
        assert any(offered > 0 for offered, _ in needs), needs
        assert all((need > 0) == (offered > 0) for offered, need in needs), needs
        assert boss.get_by_test_id("interval-need").count() == sum(1 for offered, _ in needs if offered > 0)
        # the demo shop has overdue orders: the banner says so
        expect(boss.locator('[data-testid="alert"][data-kind="overdue_orders"]')).to_have_count(1)

        boss.screenshot(path=str(ARTIFACTS / "supervisor-dashboard.png"), full_page=True)
        assert dialogs == [], dialogs
        assert errors == [], errors
    except Exception:
        for page, name in pages:
            try:
                page.screenshot(path=str(ARTIFACTS / name), full_page=True)
            except Exception:  # noqa: BLE001 - best effort
                pass
        raise
    finally:
        for ctx in contexts:
            ctx.close()
