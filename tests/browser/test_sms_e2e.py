"""SMS end to end in real Chromium, with the real Rasa bot: a customer texts from /dev/phone, orders with
numbered choices, asks for a person; the agent answers in the console; the reply reaches the phone and the
console shows its delivery status. Screenshots of both sides go to test-artifacts/.

Runs with the bot's tests (`-m rasa`: Rasa's environment and a trained model are needed).
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.bot.helpers import BOT, RASA_BIN, free_port, http, process, require_rasa, wait_until
from tests.browser.harness import ARTIFACTS, ROOT, chromium, ensure_frontend, sync_api

pytestmark = [pytest.mark.rasa, pytest.mark.browser, pytest.mark.slow]
expect = sync_api.expect


def _model() -> Path:
    models = sorted((BOT / "models").glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not models:
        pytest.fail("no trained model in bot/models: scripts/train-bot makes it")
    return models[-1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The hub (demo shop, Twilio stand-in, the bot first on SMS), Rasa and its action server."""
    require_rasa()
    ensure_frontend()
    tmp = tmp_path_factory.mktemp("sms-e2e")
    hub_port, rasa_port, actions_port = free_port(), free_port(), free_port()
    base, rasa = f"http://127.0.0.1:{hub_port}", f"http://127.0.0.1:{rasa_port}"
    token, rasa_token = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    endpoints = tmp / "endpoints.yml"
    endpoints.write_text(f'action_endpoint:\n  url: "http://127.0.0.1:{actions_port}/webhook"\n')
    bot_env = {**os.environ, "HUB_URL": base, "HUB_SERVICE_TOKEN": token, "RASA_TELEMETRY_ENABLED": "false"}
    hub_env = {
        **os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/sms.db", "HOST": "127.0.0.1", "PORT": str(hub_port),
        "SERVICE_TOKEN": token, "DEMO_DATA": "true", "REDIS_URL": "", "TWILIO_STANDIN": "1", "PUBLIC_BASE_URL": base,
        "BOT_CHANNELS": "chat,sms", "RASA_URL": rasa, "RASA_TOKEN": rasa_token, "MEDIA_DIR": str(tmp / "media"),
    }
    python = str(ROOT / ".venv" / "bin" / "python")
    with process([python, "-m", "contact_center.cli", "serve"], cwd=ROOT, env=hub_env, log_path=tmp / "sms-e2e-hub.log") as hub, \
         process([str(RASA_BIN), "run", "actions", "--actions", "actions", "-p", str(actions_port)],
                 cwd=BOT, env=bot_env, log_path=tmp / "sms-e2e-actions.log") as actions, \
         process([str(RASA_BIN), "run", "--model", str(_model()), "--endpoints", str(endpoints),
                  "--credentials", str(BOT / "credentials.yml"), "-i", "127.0.0.1", "-p", str(rasa_port),
                  "--enable-api", f"--auth-token={rasa_token}"],
                 cwd=BOT, env=bot_env, log_path=tmp / "sms-e2e-rasa.log") as rasa_proc:
        wait_until(lambda: http(f"{base}/healthz", timeout=2)[0] == 200, "the hub", hub, tmp / "sms-e2e-hub.log", 90)
        wait_until(lambda: http(f"http://127.0.0.1:{actions_port}/health", timeout=2)[0] == 200,
                   "the action server", actions, tmp / "sms-e2e-actions.log", 120)
        wait_until(lambda: bool(http(f"{rasa}/status?token={rasa_token}", timeout=2)[1].get("model_file")),
                   "rasa", rasa_proc, tmp / "sms-e2e-rasa.log", 240)
        wait_until(lambda: http(f"{base}/healthz", timeout=2)[1].get("bot") == "ready",
                   "the hub to see the bot ready", hub, tmp / "sms-e2e-hub.log", 30)
        yield base


def _phone_says(phone: Any, text: str, answer: str | re.Pattern[str], timeout: float = 60_000) -> None:
    """The customer texts, and waits for the shop's answer."""
    before = phone.locator(".bubble.out").count()
    phone.locator("#body").fill(text)
    phone.get_by_role("button", name="Send").click()
    expect(phone.locator(".bubble.in", has_text=text).last).to_be_visible()
    expect(phone.locator(".bubble.out").nth(before)).to_be_visible(timeout=timeout)
    expect(phone.locator(".bubble.out", has_text=answer).last).to_be_visible(timeout=timeout)


def test_a_customer_orders_by_sms_then_an_agent_answers(stack: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with chromium() as browser:
        phone = browser.new_page(viewport={"width": 480, "height": 900})
        agent = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        for page in (phone, agent):
            page.on("pageerror", lambda exc: errors.append(str(exc)))

        agent.goto(f"{stack}/console")
        agent.get_by_test_id("login-username").fill("alice")
        agent.get_by_test_id("login-password").fill("demo-password")
        agent.get_by_test_id("login-submit").click()
        expect(agent.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        agent.get_by_test_id("status-select").select_option("available")

        phone.goto(f"{stack}/dev/phone")
        expect(phone.locator("#shop")).to_have_value("+15005550006")
        _phone_says(phone, "hi", re.compile(r"\S"))
        _phone_says(phone, "I'd like two large red t-shirts", "delivery address")
        _phone_says(phone, "12 Oak Street, Boston MA 02110", "phone number or email")
        _phone_says(phone, "my email is sam.sms@example.com", "Reply 1 or 2")
        confirm = phone.locator(".bubble.out", has_text="Reply 1 or 2").last
        expect(confirm).to_contain_text("2 x Classic T-shirt (size L, colour red)")
        expect(confirm).to_contain_text(re.compile(r"1\. \w+"))
        _phone_says(phone, "1", re.compile(r"Your order number is \d+"))
        _phone_says(phone, "I want to talk to a person", "colleague")

        offer = agent.get_by_test_id("offer").first
        expect(offer).to_be_visible(timeout=30_000)
        offer.get_by_test_id("offer-accept").click()
        transcript = agent.get_by_test_id("transcript")
        expect(transcript.locator('[data-testid="message"][data-sender="customer"]', has_text="I want to talk to a person")).to_be_visible()
        expect(agent.get_by_test_id("channel-icon").first).to_have_attribute("data-channel", "sms")
        agent.get_by_test_id("reply-input").fill("Hi, this is Alice. Your t-shirts ship tomorrow.")
        agent.get_by_test_id("reply-send").click()

        expect(phone.locator(".bubble.out", has_text="this is Alice")).to_be_visible(timeout=30_000)
        sent = transcript.locator('[data-testid="message"][data-sender="agent"]', has_text="this is Alice")
        expect(sent).to_have_attribute("data-delivery", "delivered", timeout=30_000)
        expect(sent.get_by_test_id("delivery-status")).to_have_attribute("data-status", "delivered")
        phone.screenshot(path=str(ARTIFACTS / "sms-e2e-phone.png"), full_page=True)
        agent.screenshot(path=str(ARTIFACTS / "sms-e2e-console.png"))
        assert errors == []
