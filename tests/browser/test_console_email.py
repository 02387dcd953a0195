"""An agent works an email thread in the console, in a real headless Chromium against a running hub.

The SMTP side is not needed (others build it): the hub runs as a subprocess like the other browser tests'
(``tests/browser/harness.py``: a fresh SQLite file with the demo data, no bot), started by ``serve_hub`` below,
which is ``contact-center serve`` plus, for this test only,

* the email channel (``contact_center.channels.EMAIL``) registered with a recording adapter when the hub has
  none (the real one, ``integrations/email/outbound.py``, is not wired yet); what it was asked to deliver is
  at ``GET /test/email/outbox``;
* ``POST /test/email``: an email as the ingest hands it to the core. The sanitised HTML and the files go into
  the hub's media store, then the hub's inbound port (``HubService.receive_inbound``) gets the
  ``InboundEvent`` with the message's ``extra`` (``docs/subsystems/email.md``): stored, routed and offered
  like any contact.

A customer writes about a damaged order (HTML part, a PDF and an SVG, an .exe left out); a second email in
the thread fails DMARC and quotes the first. Agent ``alice`` accepts: she sees the subject, the first-response
clock, the "possibly spoofed" label, the quote folded, the omitted file in words and the files as download
links; she opens the HTML version (a sandboxed frame: the scripts left in it on purpose do not run) and lets
remote images load; the list's search finds the thread by subject and by address; she writes with a canned
response, previews, attaches a PDF, copies two addresses (a wrong one is refused in words) and sends. The
adapter receives the reply with the copies and the file. Screenshots: ``test-artifacts/console-email.png``,
``console-email-html.png`` (the HTML view) and ``console-email-reply.png``.
"""

from __future__ import annotations

import base64
import contextlib
import re
from pathlib import Path
from typing import Any, Iterator

import pytest

pytestmark = pytest.mark.browser

from tests.browser.harness import ARTIFACTS, chromium, http, running_hub, sync_api, watch  # noqa: E402

TOKEN = "console-email"
CUSTOMER = "cleo.customer@example.com"
THREAD = "<first.7d1@mail.example.com>"
SUBJECT = "Order 10234 arrived damaged"
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(\'svg\')"><script>alert(1)</script><rect width="9" height="9"/></svg>'
# What the sanitiser would never let through; the route's CSP sandbox and the frame's sandbox must hold anyway.
HTML = (
    "<div style=\"font-family:Georgia;color:#1f3b5a\"><h2>Hello from the HTML part</h2>"
    "<p>The <b>box</b> was <i>crushed</i>, photos attached.</p>"
    "<table border=1><tr><td>Order</td><td>10234</td></tr></table>"
    "<img src=\"https://images.example.net/pixel.gif\" alt=\"remote pixel\">"
    "<img src=x onerror=\"alert('onerror')\">"
    "<script>document.body.setAttribute('data-script-ran','yes');parent.postMessage('script ran','*');alert('script')</script>"
    "</div>"
)
FIRST_TEXT = "Hello,\n\nmy order 10234 arrived today and the box was crushed. Photos attached.\n\nCleo"
QUOTE = "On Mon, 7 Dec 2026 at 09:12, Cleo <cleo.customer@example.com> wrote:\n> Hello,\n> my order 10234 arrived today and the box was crushed."
SECOND_TEXT = "Also the parcel had been opened.\n\n" + QUOTE


# ------------------------------------------------------------------ the hub, with an email channel for this test


def serve_hub() -> None:
    """Run in the hub's subprocess: ``contact-center serve`` plus the email channel and ``/test/email``."""
    from aiohttp import web

    from contact_center.app import CHANNELS_KEY, create_app
    from contact_center.channels import EMAIL
    from contact_center.keys import HUB_KEY
    from contact_center.logs import setup_logging
    from contact_center.media_routes import MEDIA_KEY
    from contact_center.ports import DeliveryReport, InboundAttachment, InboundEvent, OutboundMessage
    from contact_center.settings import Settings

    settings = Settings.from_env().with_generated_secrets()
    setup_logging(settings.log_level)
    app = create_app(settings)
    outbox: list[dict[str, Any]] = []

    class RecordingEmail:
        """The email channel's adapter for this test: keeps what it is asked to send, says "sent"."""

        async def deliver(self, message: OutboundMessage) -> DeliveryReport:
            outbox.append({"to": message.to_address, "from": message.from_address, "text": message.text,
                           "extra": message.extra, "media_keys": list(message.media_keys), "thread_key": message.thread_key})
            return DeliveryReport("sent", provider_id=f"em:test-{message.conversation_id}-{message.seq}")

    channels = app[CHANNELS_KEY]
    if channels.get("email") is None:
        channels.register(EMAIL, RecordingEmail())

    async def inject(request: web.Request) -> web.Response:
        body = await request.json()
        media = request.app[MEDIA_KEY]
        html_key = None
        if body.get("html"):
            html_key = (await media.put(body["html"].encode(), "text/html", "message.html")).key
        files = []
        for f in body.get("files", []):
            data = base64.b64decode(f["data"])
            stored = await media.put(data, f["content_type"], f["name"])
            files.append(InboundAttachment(stored.content_type, stored.size, f"/media/{stored.key}", stored.name))
        extra = {
            "kind": "email", "subject": body["subject"], "from": {"address": body["from"], "name": body.get("name", "")},
            "to": ["support@shop.example"], "cc": body.get("cc", []), "reply_to": None, "message_id": body["message_id"],
            "html_key": html_key, "quote_at": body.get("quote_at"), "spoofed": bool(body.get("spoofed")),
            "auth": "fail" if body.get("spoofed") else "pass", "auto": body.get("auto"), "omitted": body.get("omitted", []),
            "bounce": None,
        }
        result = await request.app[HUB_KEY].receive_inbound(InboundEvent(
            channel="email", customer_address=body["from"], our_address="support@shop.example", thread_key=body["thread_key"],
            provider_id=f"em:{body['message_id']}", text=body["text"], display_name=body.get("name", ""), queue="support",
            attachments=tuple(files), identity_trusted=not body.get("spoofed"), extra=extra,
        ))
        return web.json_response({"conversation_id": result.conversation_id, "seq": result.message.get("seq")})

    async def sent(request: web.Request) -> web.Response:
        return web.json_response({"messages": outbox})

    app.router.add_post("/test/email", inject)
    app.router.add_get("/test/email/outbox", sent)
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None, shutdown_timeout=5)


@contextlib.contextmanager
def running_email_hub(tmp: Path, name: str) -> Iterator[str]:
    """``harness.running_hub`` with this module's ``serve_hub`` as the hub; the log is ``test-artifacts/<name>-hub.log``."""
    env = {"BOT_CHANNELS": "", "MEDIA_DIR": str(tmp / "media")}
    with running_hub(tmp, name, TOKEN, env, serve="tests.browser.test_console_email") as base:
        yield base


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_email_hub(tmp_path_factory.mktemp("console-email"), "console-email") as base:
        yield base


@pytest.fixture(scope="module")
def browser(hub: str) -> Iterator[Any]:
    with chromium() as b:
        yield b


def _email(hub: str, **fields: Any) -> dict[str, Any]:
    status, body = http(f"{hub}/test/email", {"from": CUSTOMER, "name": "Cleo Customer", "thread_key": THREAD, **fields})
    assert status == 200, body
    return body


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ------------------------------------------------------------------ the test


def test_an_agent_answers_an_email_thread(hub: str, browser: Any) -> None:
    expect = sync_api.expect
    expect.set_options(timeout=20_000)
    ARTIFACTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    errors: list[str] = []
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    agent = ctx.new_page()
    watch(agent, dialogs, errors)
    try:
        agent.goto(f"{hub}/console")
        agent.get_by_test_id("login-username").fill("alice")
        agent.get_by_test_id("login-password").fill("demo-password")
        agent.get_by_test_id("login-submit").click()
        expect(agent.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        agent.evaluate("window.addEventListener('message', (e) => { window.__framePosted = String(e.data); })")
        title = agent.title()

        # --- the customer writes; a second email in the thread fails DMARC and quotes the first
        first = _email(
            hub, message_id="first.7d1@mail.example.com", subject=SUBJECT, text=FIRST_TEXT, html=HTML,
            files=[{"name": "damage-report.pdf", "content_type": "application/pdf", "data": _b64(PDF)},
                   {"name": "drawing.svg", "content_type": "image/svg+xml", "data": _b64(SVG)}],
            omitted=[{"name": "invoice.exe", "reason": "programs are not accepted"}],
        )
        second = _email(hub, message_id="second.9f2@mail.example.com", subject=f"Re: {SUBJECT}", text=SECOND_TEXT,
                        quote_at=SECOND_TEXT.index("On Mon"), spoofed=True)
        assert second["conversation_id"] == first["conversation_id"]  # one thread, one conversation
        conv_id = first["conversation_id"]

        agent.get_by_test_id("status-select").select_option("available")
        offer = agent.get_by_test_id("offer").filter(has_text="Cleo Customer")
        expect(offer).to_have_count(1)
        expect(offer.get_by_test_id("channel-tag")).to_have_attribute("data-channel", "email")
        offer.get_by_test_id("offer-accept").click()

        # --- the email pane, not the chat transcript
        pane = agent.get_by_test_id("email-pane")
        expect(pane).to_be_visible()
        expect(agent.get_by_test_id("transcript")).to_be_hidden()
        expect(agent.get_by_test_id("reply-input")).to_be_hidden()
        expect(pane.get_by_test_id("email-thread-subject")).to_have_text(SUBJECT)
        emails = pane.get_by_test_id("email-message")
        expect(emails).to_have_count(2)
        one, two = emails.nth(0), emails.nth(1)
        expect(one.get_by_test_id("email-field-from")).to_contain_text(f"Cleo Customer <{CUSTOMER}>")
        expect(one.get_by_test_id("email-field-to")).to_contain_text("support@shop.example")
        expect(one.get_by_test_id("email-field-subject")).to_contain_text(SUBJECT)
        expect(two.get_by_test_id("email-field-subject")).to_contain_text(f"Re: {SUBJECT}")

        # the first-response clock runs against the queue's target
        clock = pane.get_by_test_id("first-response")
        expect(clock).to_have_attribute("data-state", re.compile(r"^(running|due|overdue)$"))
        expect(clock).to_contain_text(re.compile(r"First response"))

        # spoofing: on the message and over the thread
        expect(two.get_by_test_id("email-spoofed")).to_have_text(re.compile("possibly spoofed", re.I))
        expect(two).to_have_attribute("data-spoofed", "true")
        expect(one.get_by_test_id("email-spoofed")).to_have_count(0)
        expect(pane.get_by_test_id("email-spoof-banner")).to_be_visible()

        # the quoted history is folded
        expect(two.get_by_test_id("email-text")).to_have_text("Also the parcel had been opened.")
        quote = two.get_by_test_id("email-quote")
        expect(quote).to_be_hidden()
        toggle = two.get_by_test_id("email-quote-toggle")
        expect(toggle).to_have_text("show quoted text")
        expect(toggle).to_have_attribute("aria-expanded", "false")
        agent.screenshot(path=str(ARTIFACTS / "console-email-folded.png"))
        toggle.click()
        expect(quote).to_be_visible()
        expect(quote).to_contain_text("Cleo <cleo.customer@example.com> wrote:")
        expect(toggle).to_have_text("hide quoted text")
        expect(one.get_by_test_id("email-quote-toggle")).to_have_count(0)  # nothing quoted there

        # files: download links only (the SVG is never drawn); what was left out, in words
        files = one.get_by_test_id("attachment")
        expect(files).to_have_count(2)
        for name in ("damage-report.pdf", "drawing.svg"):
            link = files.filter(has_text=name)
            expect(link).to_have_attribute("href", re.compile(r"^/media/[0-9a-f]{64}$"))
            expect(link).to_have_attribute("download", name)
        assert one.locator("img, svg:not(.ch-icon), object, embed").count() == 0
        expect(one.get_by_test_id("email-omitted")).to_contain_text("“invoice.exe”: programs are not accepted")

        # --- the HTML version: a sandboxed frame from the hub's route; its scripts do not run
        expect(two.get_by_test_id("email-html-toggle")).to_have_count(0)  # no HTML part
        one.get_by_test_id("email-html-toggle").click()
        frame_el = one.get_by_test_id("email-html")
        expect(frame_el).to_be_visible()
        expect(frame_el).to_have_attribute("sandbox", "")
        expect(frame_el).to_have_attribute("src", f"/console/conversations/{conv_id}/messages/{first['seq']}/html")
        frame = agent.frame_locator('[data-testid="email-html"]')
        expect(frame.locator("h2")).to_have_text("Hello from the HTML part")
        expect(frame.locator("td").nth(1)).to_have_text("10234")
        agent.wait_for_timeout(500)  # time for a script to run, if one could
        expect(frame.locator("body")).not_to_have_attribute("data-script-ran", "yes")
        assert agent.evaluate("window.__framePosted") is None
        assert dialogs == [], dialogs
        assert agent.title() == title
        headers = agent.evaluate(
            "(u) => fetch(u, {credentials: 'same-origin'}).then((r) => ({csp: r.headers.get('content-security-policy'), "
            "type: r.headers.get('content-type'), nosniff: r.headers.get('x-content-type-options')}))",
            f"/console/conversations/{conv_id}/messages/{first['seq']}/html",
        )
        assert headers == {"csp": "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:",
                           "type": "text/html; charset=utf-8", "nosniff": "nosniff"}, headers
        one.get_by_test_id("email-html-view").screenshot(path=str(ARTIFACTS / "console-email-html.png"))
        images = one.get_by_test_id("email-load-images")
        expect(images).to_have_text("Load remote images")
        images.click()
        expect(frame_el).to_have_attribute("src", re.compile(r"/html\?images=1$"))
        expect(images).to_be_disabled()
        expect(frame.locator("h2")).to_have_text("Hello from the HTML part")
        expect(frame.locator("body")).not_to_have_attribute("data-script-ran", "yes")
        agent.screenshot(path=str(ARTIFACTS / "console-email.png"))

        # --- the list's search: by subject, by the customer's address
        search = agent.get_by_test_id("conversation-search")
        item = agent.get_by_test_id("conversation-item").filter(has_text="Cleo Customer")
        expect(item).to_have_attribute("data-channel", "email")
        search.fill("crushed 10234 DAMAGED")
        expect(item).to_be_visible()
        search.fill("cleo.customer@example")
        expect(item).to_be_visible()
        search.fill("no such words")
        expect(item).to_be_hidden()
        search.fill("")
        expect(item).to_be_visible()

        # --- the reply: a canned response, a preview, a file, copies
        box = pane.get_by_test_id("email-reply-input")
        box.click()
        box.press_sequentially("/check")
        picker = pane.get_by_test_id("email-canned-picker")
        expect(picker).to_be_visible()
        box.press("Enter")
        expect(picker).to_be_hidden()
        expect(box).to_have_value("Let me check that for you, one moment please.")
        box.press("End")
        box.press_sequentially("\n\nA replacement is on its way: https://shop.example/track/10234\n\n> the box was crushed\n\n-- \nAlice, Customer care")
        pane.get_by_test_id("email-preview-toggle").click()
        preview = pane.get_by_test_id("email-preview")
        expect(preview).to_be_visible()
        expect(preview.locator("a")).to_have_attribute("href", "https://shop.example/track/10234")
        expect(preview.locator("blockquote")).to_have_text("the box was crushed")
        expect(preview.locator(".email-signature")).to_have_text("Alice, Customer care")
        pane.get_by_test_id("email-write-tab").click()
        expect(box).to_be_visible()

        with agent.expect_file_chooser() as chooser:
            pane.get_by_test_id("email-attach-button").click()
        chooser.value.set_files([{"name": "Returns label.pdf", "mimeType": "application/pdf", "buffer": PDF}])
        expect(pane.get_by_test_id("attach-item").filter(has_text="Returns label.pdf")).to_have_attribute("data-state", "ready")

        cc = pane.get_by_test_id("email-cc")
        cc.fill("boss@example.com, not-an-address")
        box.click()  # leaving the field checks it
        expect(pane.get_by_test_id("email-cc-error")).to_have_text("“not-an-address” is not an email address.")
        pane.get_by_test_id("email-send").click()
        expect(pane.get_by_test_id("email-error")).to_contain_text("Check the copies")
        expect(pane.get_by_test_id("email-message")).to_have_count(2)  # nothing went
        cc.fill("Boss@Example.com; ops@example.com")
        expect(pane.get_by_test_id("email-cc-error")).to_be_hidden()
        expect(pane.get_by_test_id("email-error")).to_be_hidden()  # fixed: the complaint goes
        expect(pane.get_by_test_id("email-reply-subject")).to_have_text(f"Re: {SUBJECT}")
        agent.screenshot(path=str(ARTIFACTS / "console-email-compose.png"))
        pane.get_by_test_id("email-send").click()

        reply = pane.locator('[data-testid="email-message"][data-sender="agent"][data-seq]')
        expect(reply).to_have_count(1)
        expect(reply.get_by_test_id("email-field-cc")).to_contain_text("boss@example.com, ops@example.com")
        expect(reply.get_by_test_id("email-field-to")).to_contain_text(CUSTOMER)
        expect(reply.get_by_test_id("attachment")).to_contain_text("Returns label.pdf")
        expect(reply).to_have_attribute("data-delivery", "sent")
        expect(box).to_have_value("")
        expect(cc).to_have_value("")
        expect(pane.get_by_test_id("email-attach-tray")).to_be_hidden()
        expect(clock).to_have_attribute("data-state", re.compile(r"^(met|missed)$"))
        expect(clock).to_contain_text("First response in")

        status, out = http(f"{hub}/test/email/outbox")
        assert status == 200, out
        (sent,) = out["messages"]
        assert sent["to"] == CUSTOMER and sent["thread_key"] == THREAD
        assert sent["extra"] == {"cc": ["boss@example.com", "ops@example.com"]}
        assert sent["text"].startswith("Let me check that for you") and "Alice, Customer care" in sent["text"]
        assert len(sent["media_keys"]) == 1
        pane.get_by_test_id("email-thread").evaluate("(b) => { b.scrollTop = b.scrollHeight; }")
        agent.screenshot(path=str(ARTIFACTS / "console-email-reply.png"))

        assert dialogs == [], dialogs
        assert errors == [], errors
    except Exception:
        with contextlib.suppress(Exception):
            agent.screenshot(path=str(ARTIFACTS / "console-email-failure.png"))
        raise
    finally:
        ctx.close()
