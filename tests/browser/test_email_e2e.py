"""Email end to end in real Chromium, through the hub's own SMTP server (issue 16, "A browser test").

The hub runs as ``contact-center serve`` (``tests/browser/harness.py``) with the demo data and the email
settings of ``make run``: ``EMAIL_ADDRESSES=support@shop.example=support`` and ``SMTP_LISTEN`` on a free port,
no relay, so replies go to the local outbox (``<dir of MEDIA_DIR>/outbox``) and ``/dev/mail`` is served.

1. A demo customer (one with an email address and history on file) writes from ``/dev/mail``.
2. Agent ``alice`` goes Available, accepts the offer, reads the subject and the text in the email pane (and
   the customer's record in the 360), and replies.
3. The reply shows in ``/dev/mail``'s outbox as ``Re: <subject> [#<conversation>-<sig>]``, threaded on the
   customer's Message-ID (the ``.eml`` itself is checked too); the customer uses "Reply to this" and sends.
4. That second mail lands in the same conversation (the console's thread, the stored rows), with no new
   offer.

Screenshots: ``test-artifacts/email-e2e-devmail.png`` and ``email-e2e-console.png``.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Iterator

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

from tests.browser.harness import ARTIFACTS, chromium, free_port, http, running_hub, sync_api, watch  # noqa: E402

TOKEN = "email-e2e"
NAME = "email-e2e"
SHOP = "support@shop.example"
SUBJECT = "Question about my last order"
FIRST_TEXT = "Hello,\n\ncould you tell me when my last order will arrive? I am away next week.\n\nThanks"
AGENT_TEXT = "Hi, this is Alice. Your order leaves our warehouse tomorrow and arrives within three days."
SECOND_TEXT = "Thank you Alice, that works for me. Could it be left with a neighbour?"
_MID = re.compile(r"<[^<>\s]+@[^<>\s]+>")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The hub with the email channel on its own SMTP port; yields (base URL, its tmp dir)."""
    tmp = tmp_path_factory.mktemp(NAME)
    env = {
        "EMAIL_ADDRESSES": f"{SHOP}=support",
        "SMTP_LISTEN": f"127.0.0.1:{free_port()}",
        "SMTP_URL": "",
        "IMAP_URL": "",
        "MEDIA_DIR": str(tmp / "var" / "media"),
    }
    with running_hub(tmp, NAME, TOKEN, env=env) as base:
        yield base, tmp


@pytest.fixture(scope="module")
def browser(hub: tuple[str, Path]) -> Iterator[Any]:
    with chromium() as b:
        yield b


def _demo_customer_with_email(base: str) -> dict[str, Any]:
    """A demo customer with a name, a verified email address and earlier contact on file (so the 360 has history)."""
    for customer_id in range(1, 300):
        status, data = http(f"{base}/api/customers/{customer_id}", token=TOKEN)
        if status != 200:
            continue
        emails = [p["value"] for p in data["contact_points"] if p["kind"] == "email" and p.get("verified")]
        name = (data.get("customer") or {}).get("display_name") or ""
        if emails and name and data.get("orders") and data["timeline"]["items"]:
            return {"id": customer_id, "email": emails[0], "name": name}
    pytest.fail("no demo customer with a name, a verified email address, orders and a timeline")


def _sent_message_id(devmail: Any) -> str:
    """The customer's Message-ID, as /dev/mail's status line reports it once the hub's SMTP port took the mail."""
    status = devmail.locator("#status")
    sync_api.expect(status).to_contain_text("The hub took it", timeout=30_000)
    sync_api.expect(status).not_to_have_class(re.compile(r"\berror\b"))
    found = _MID.search(status.inner_text())
    assert found, status.inner_text()
    return found.group(0)


def _cell(detail: Any, header: str) -> Any:
    """The value of one header in /dev/mail's message view (its table: a ``th`` label, a ``td`` value)."""
    return detail.locator(f'tr:has(th:text-is("{header}")) td')


def _rows(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as conn:
        return conn.execute(sql, args).fetchall()


def test_a_customer_mails_an_agent_replies_and_the_reply_threads(hub: tuple[str, Path], browser: Any) -> None:
    base, tmp = hub
    expect = sync_api.expect
    expect.set_options(timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    customer = _demo_customer_with_email(base)
    dialogs: list[str] = []
    errors: list[str] = []
    agent_ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    mail_ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    agent, devmail = agent_ctx.new_page(), mail_ctx.new_page()
    watch(agent, dialogs, errors)
    watch(devmail, dialogs, errors)
    try:
        # --- the agent is ready first
        agent.goto(f"{base}/console")
        agent.get_by_test_id("login-username").fill("alice")
        agent.get_by_test_id("login-password").fill("demo-password")
        agent.get_by_test_id("login-submit").click()
        expect(agent.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        agent.get_by_test_id("status-select").select_option("available")

        # --- (1) the customer writes from /dev/mail
        devmail.goto(f"{base}/dev/mail")
        expect(devmail.locator("#to")).to_have_value(SHOP)  # the page read its setup
        expect(devmail.locator("#where")).to_contain_text("SMTP 127.0.0.1:")
        devmail.locator("#from").fill(customer["email"])
        devmail.locator("#from_name").fill(customer["name"])
        devmail.locator("#subject").fill(SUBJECT)
        devmail.locator("#text").fill(FIRST_TEXT)
        devmail.get_by_role("button", name="Send", exact=True).click()
        first_mid = _sent_message_id(devmail)

        # --- (2) the agent accepts the offer, reads it in the email pane, replies
        offer = agent.get_by_test_id("offer").filter(has_text=customer["name"])
        expect(offer).to_have_count(1)
        expect(offer).to_have_attribute("data-channel", "email")
        conv_id = offer.get_attribute("data-conversation-id")
        assert conv_id and conv_id.isdigit(), conv_id
        offer.get_by_test_id("offer-accept").click()
        expect(agent.get_by_test_id("offer")).to_have_count(0)

        pane = agent.get_by_test_id("email-pane")
        expect(pane).to_be_visible()
        expect(pane.get_by_test_id("email-thread-subject")).to_have_text(SUBJECT)
        expect(agent.get_by_test_id("handback")).to_be_hidden()  # the bot does not answer email
        emails = pane.get_by_test_id("email-message")
        expect(emails).to_have_count(1)
        first = emails.nth(0)
        expect(first).to_have_attribute("data-sender", "customer")
        expect(first.get_by_test_id("email-field-from")).to_contain_text(f"<{customer['email']}>")
        expect(first.get_by_test_id("email-field-to")).to_contain_text(SHOP)
        expect(first.get_by_test_id("email-field-subject")).to_contain_text(SUBJECT)
        expect(first.get_by_test_id("email-text")).to_contain_text("when my last order will arrive")
        # the demo customer's record, with their history
        expect(agent.get_by_test_id("customer-name")).to_have_text(customer["name"])
        expect(agent.get_by_test_id("timeline-item").first).to_be_visible()
        item = agent.locator(f'[data-testid="conversation-item"][data-conversation-id="{conv_id}"]')
        expect(item).to_have_attribute("data-channel", "email")

        box = pane.get_by_test_id("email-reply-input")
        box.fill(AGENT_TEXT)
        expect(pane.get_by_test_id("email-reply-subject")).to_have_text(f"Re: {SUBJECT}")
        pane.get_by_test_id("email-send").click()
        sent = pane.locator('[data-testid="email-message"][data-sender="agent"][data-seq]')
        expect(sent).to_have_count(1)
        expect(sent).to_contain_text("this is Alice")
        expect(sent).to_have_attribute("data-delivery", "sent")
        expect(box).to_have_value("")

        # --- (3) the reply in the outbox, threaded and tokened; the customer answers it
        reply_row = devmail.locator("#list li", has_text=f"Re: {SUBJECT}")
        expect(reply_row).to_have_count(1)  # the page polls the outbox every 3 s
        subject_shown = reply_row.locator(".subject").inner_text()
        token = re.fullmatch(re.escape(f"Re: {SUBJECT}") + r" \[#(\d+)-[0-9a-f]+\]", subject_shown)
        assert token, subject_shown
        assert token.group(1) == conv_id  # the token names the conversation
        reply_row.click()
        detail = devmail.locator("#detail")
        expect(detail.locator("pre")).to_contain_text("this is Alice")
        expect(_cell(detail, "In-Reply-To")).to_have_text(first_mid)
        expect(_cell(detail, "References")).to_contain_text(first_mid)
        expect(_cell(detail, "Reply-To")).to_contain_text(re.compile(r"support\+c\d+-[0-9a-f]+@shop\.example", re.I))

        # the .eml on disk: threaded on the customer's Message-ID
        outbox = tmp / "var" / "outbox"
        (eml,) = sorted(outbox.glob("*.eml"))
        msg = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
        assert str(msg["Subject"]) == subject_shown
        assert str(msg["To"]) == customer["email"]
        assert str(msg["In-Reply-To"]).strip() == first_mid
        assert first_mid in str(msg["References"]).split()
        assert _MID.fullmatch(str(msg["Message-ID"]).strip()), msg["Message-ID"]
        reply_mid = str(msg["Message-ID"]).strip()

        detail.get_by_role("button", name="Reply to this").click()
        expect(devmail.locator("#from")).to_have_value(customer["email"])
        expect(devmail.locator("#to")).to_have_value(re.compile(r"^support\+c\d+-[0-9a-f]+@shop\.example$", re.I))
        expect(devmail.locator("#subject")).to_have_value(subject_shown)
        expect(devmail.locator("#threading")).to_have_text(f"In reply to {reply_mid}")
        quoted = devmail.locator("#text").input_value()
        assert "> Hi, this is Alice." in quoted, quoted
        devmail.locator("#text").fill(SECOND_TEXT + quoted)
        devmail.get_by_role("button", name="Send", exact=True).click()
        expect(devmail.locator("#status")).to_contain_text(re.compile(r"The hub took it: sent to support\+c", re.I))
        second_mid = _sent_message_id(devmail)
        assert second_mid != first_mid

        # --- (4) the same conversation in the console; no new offer
        customer_msgs = pane.locator('[data-testid="email-message"][data-sender="customer"]')
        expect(customer_msgs).to_have_count(2)
        second = customer_msgs.nth(1)
        expect(second.get_by_test_id("email-text")).to_contain_text("left with a neighbour")
        expect(second.get_by_test_id("email-field-subject")).to_contain_text(f"Re: {SUBJECT}")
        expect(pane.get_by_test_id("email-message")).to_have_count(3)
        expect(item).to_be_visible()
        expect(agent.locator('[data-testid="conversation-item"][data-channel="email"]')).to_have_count(1)
        expect(agent.get_by_test_id("offer")).to_have_count(0)

        # the stored rows agree: both inbound mails and our reply are in that one conversation
        db = tmp / f"{NAME}.db"
        rows = _rows(db, "SELECT direction, message_id, state, conversation_id FROM email_messages ORDER BY id")
        by_mid = {f"<{mid}>": (direction, state, conv) for direction, mid, state, conv in rows}
        assert by_mid.get(first_mid) == ("in", "stored", int(conv_id)), rows
        assert by_mid.get(second_mid) == ("in", "stored", int(conv_id)), rows
        assert by_mid.get(reply_mid) == ("out", "sent", int(conv_id)), rows
        convs = _rows(db, "SELECT id FROM conversations WHERE channel = 'email'")
        assert convs == [(int(conv_id),)], convs

        pane.get_by_test_id("email-thread").evaluate("(b) => { b.scrollTop = b.scrollHeight; }")
        agent.screenshot(path=str(ARTIFACTS / "email-e2e-console.png"))
        devmail.screenshot(path=str(ARTIFACTS / "email-e2e-devmail.png"))
        assert dialogs == [], dialogs
        assert errors == [], errors
    except Exception:
        with contextlib.suppress(Exception):
            agent.screenshot(path=str(ARTIFACTS / "email-e2e-console-failure.png"))
            devmail.screenshot(path=str(ARTIFACTS / "email-e2e-devmail-failure.png"))
        raise
    finally:
        agent_ctx.close()
        mail_ctx.close()
