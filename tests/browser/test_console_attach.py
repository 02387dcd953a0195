"""An agent attaches files to an SMS reply in the console, in a real headless Chromium against a running hub.

The hub runs as a subprocess (``tests/browser/harness.py``) with the demo data and the Twilio stand-in, and
without the bot (``BOT_CHANNELS`` empty), so a text goes straight to the agents. A customer with a number
the shop does not know texts from ``/dev/phone``; agent ``alice`` sees them by their number (not "Visitor N"),
accepts, is refused a file that is not what it claims (in words), attaches a PNG and a PDF with the upload's
pending state, and sends. The transcript shows the image as a thumbnail and the PDF as a link, the phone
receives one message with both files, and the delivery ticks reach "delivered". In the customer 360 she
records the email the customer told her: it is listed as "unverified". On web chat the attach button is hidden.
Screenshots: ``test-artifacts/console-attach.png`` (console), ``console-attach-pending.png`` (the composer while
the files upload) and ``console-attach-phone.png`` (the phone).
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from typing import Any, Iterator
from unittest import mock

import pytest

pytestmark = pytest.mark.browser

from tests.browser.harness import ARTIFACTS, chromium, http, running_hub, sync_api, watch  # noqa: E402

TOKEN = "console-attach"
NUMBER = "+14155550188"


def _png(width: int = 96, height: int = 64) -> bytes:
    """A real PNG (RGBA): a blue-to-green gradient with a white stripe."""
    def pixel(x: int, y: int) -> bytes:
        return b"\xff\xff\xff\xff" if 28 <= y < 36 else bytes((30, 80 + x, 220 - x, 255))

    rows = b"".join(b"\x00" + b"".join(pixel(x, y) for x in range(width)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("console-attach")
    with mock.patch.dict(os.environ, {"TWILIO_STANDIN": "1", "MEDIA_DIR": str(tmp / "media"), "BOT_CHANNELS": ""}):
        with running_hub(tmp, "console-attach", TOKEN) as base:
            yield base


@pytest.fixture(scope="module")
def browser(hub: str) -> Iterator[Any]:
    with chromium() as b:
        yield b


def _choose(page: Any, files: list[dict[str, Any]]) -> None:
    """Click the paperclip and pick files in the file chooser, as an agent does."""
    with page.expect_file_chooser() as chooser:
        page.get_by_test_id("attach-button").click()
    chooser.value.set_files(files)


def _loaded_width(page: Any, img: Any) -> int:
    """The natural width of an image once it has loaded (a broken one times out)."""
    handle = img.element_handle()
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=handle, timeout=10_000)
    return int(page.evaluate("(img) => img.naturalWidth", handle))


def test_an_agent_attaches_a_png_and_a_pdf_to_an_sms(hub: str, browser: Any) -> None:
    expect = sync_api.expect
    expect.set_options(timeout=20_000)
    ARTIFACTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    errors: list[str] = []
    agent_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    phone_ctx = browser.new_context(viewport={"width": 480, "height": 900})
    shop_ctx = browser.new_context(viewport={"width": 1000, "height": 800})
    agent, phone, shop = agent_ctx.new_page(), phone_ctx.new_page(), shop_ctx.new_page()
    for page in (agent, phone, shop):
        watch(page, dialogs, errors)
    try:
        agent.goto(f"{hub}/console")
        agent.get_by_test_id("login-username").fill("alice")
        agent.get_by_test_id("login-password").fill("demo-password")
        agent.get_by_test_id("login-submit").click()
        expect(agent.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        agent.get_by_test_id("status-select").select_option("available")

        # --- a number the shop does not know texts in
        phone.goto(f"{hub}/dev/phone")
        expect(phone.locator("#shop")).to_have_value("+15005550006")
        phone.locator("#phone").select_option("__custom__")
        phone.locator("#custom").fill(NUMBER)
        phone.locator("#body").fill("Hi, can you send me the return label?")
        phone.get_by_role("button", name="Send").click()
        expect(phone.locator(".bubble.in", has_text="return label")).to_be_visible()

        # --- no name: the console shows the number, not "Visitor N"
        offer = agent.get_by_test_id("offer").filter(has_text=NUMBER)
        expect(offer).to_have_count(1)
        expect(offer.locator(".offer-name")).to_have_text(NUMBER)
        offer.get_by_test_id("offer-accept").click()
        expect(agent.locator("#chat-title")).to_have_text(NUMBER)
        expect(agent.get_by_test_id("conversation-item").filter(has_text=NUMBER).locator(".conv-name")).to_have_text(NUMBER)
        expect(agent.locator("#conversations")).not_to_contain_text("Visitor")
        expect(agent.get_by_test_id("customer-name")).to_have_text(NUMBER)  # the 360 names them the same way

        # --- the composer offers files, with the limit shown before any is picked
        attach = agent.get_by_test_id("attach-button")
        expect(attach).to_be_visible()
        expect(agent.get_by_test_id("attach-hint")).to_have_text(re.compile(r"Images \(JPEG, PNG, GIF, WebP\) or PDF, up to 5\.0 MB each"))

        limits = agent.evaluate("fetch('/console/media', {credentials: 'same-origin'}).then((r) => r.json())")
        assert limits == {"max_bytes": 5 * 1024 * 1024, "types": ["application/pdf", "image/gif", "image/jpeg", "image/png", "image/webp"]}

        # a file the console can tell is not allowed never leaves the browser; the reason is in words
        _choose(agent, [{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}])
        item = agent.get_by_test_id("attach-item").filter(has_text="notes.txt")
        expect(item).to_have_attribute("data-state", "error")
        expect(item.get_by_test_id("attach-status")).to_have_text(re.compile(r"“notes\.txt” cannot be sent: only JPEG, PNG, GIF, WebP images and PDF files can\."))
        item.get_by_test_id("attach-remove").click()
        expect(agent.get_by_test_id("attach-tray")).to_be_hidden()
        # a file that only claims to be a PNG: the hub reads its bytes and refuses it, and the console says why
        _choose(agent, [{"name": "<b>fake</b>.png", "mimeType": "image/png", "buffer": b"<script>alert(1)</script>"}])
        fake = agent.get_by_test_id("attach-item").filter(has_text="<b>fake</b>.png")  # the name as text, never markup
        expect(fake).to_have_attribute("data-state", "error")
        expect(fake.get_by_test_id("attach-status")).to_contain_text("was refused: only JPEG, PNG, GIF, WebP images and PDF files can be sent")
        assert agent.locator("#attach-tray b").count() == 0
        fake.get_by_test_id("attach-remove").click()

        # --- the real files: pending while they upload, then ready
        held: list[Any] = []  # the uploads, held back a moment so their pending state can be seen
        agent.route("**/console/media", lambda route: held.append(route) if route.request.method == "POST" else route.continue_())
        _choose(agent, [
            {"name": "return-label.png", "mimeType": "image/png", "buffer": _png()},
            {"name": "Return form.pdf", "mimeType": "application/pdf", "buffer": PDF},
        ])
        items = agent.get_by_test_id("attach-item")
        expect(items).to_have_count(2)
        expect(items.filter(has_text="return-label.png")).to_have_attribute("data-state", "uploading")
        expect(items.filter(has_text="return-label.png").get_by_test_id("attach-status")).to_have_text(re.compile(r"Uploading \d+%"))
        expect(agent.get_by_test_id("reply-send")).to_be_disabled()  # the reply waits for its files
        expect(agent.get_by_test_id("reply-send")).to_have_text("Uploading…")
        for _ in range(100):
            if len(held) == 2:
                break
            agent.wait_for_timeout(50)
        assert len(held) == 2, held
        agent.locator(".composer").screenshot(path=str(ARTIFACTS / "console-attach-pending.png"))
        for route in held:
            route.continue_()
        expect(items.filter(has_text="return-label.png")).to_have_attribute("data-state", "ready")
        expect(items.filter(has_text="Return form.pdf")).to_have_attribute("data-state", "ready")
        expect(items.filter(has_text="return-label.png").locator("img.attach-thumb")).to_be_visible()
        agent.unroute("**/console/media")
        expect(agent.get_by_test_id("reply-send")).to_be_enabled()
        expect(agent.get_by_test_id("reply-send")).to_have_text("Send")
        agent.get_by_test_id("reply-input").fill("Here is your return label and the form.")
        agent.get_by_test_id("reply-send").click()
        expect(agent.get_by_test_id("attach-tray")).to_be_hidden()

        # --- the transcript: a thumbnail for the image, a link for the PDF, then "delivered"
        sent = agent.get_by_test_id("transcript").locator('[data-testid="message"][data-sender="agent"][data-seq]', has_text="return label")
        expect(sent).to_have_count(1)
        image = sent.locator('[data-testid="attachment"][data-kind="image"] img')
        expect(image).to_be_visible()
        expect(image).to_have_attribute("src", re.compile(r"^/media/[0-9a-f]{64}$"))
        assert _loaded_width(agent, image) == 96  # the picture itself, not a broken-image icon
        pdf = sent.locator('[data-testid="attachment"][data-kind="file"]')
        expect(pdf).to_contain_text("Return form.pdf")
        expect(pdf).to_have_attribute("href", re.compile(r"^/media/[0-9a-f]{64}$"))
        expect(sent).to_have_attribute("data-delivery", "delivered", timeout=30_000)

        # --- the phone receives one message with both files
        out = phone.locator(".bubble.out", has_text="return label")
        expect(out).to_be_visible(timeout=30_000)
        expect(out.locator("img")).to_be_visible()
        expect(out.locator("a", has_text="application/pdf")).to_have_count(1)
        assert _loaded_width(phone, out.locator("img")) == 96
        status, log = http(f"{hub}/dev/phone/api/messages?address={NUMBER.replace('+', '%2B')}")
        assert status == 200, log
        (entry,) = [m for m in log["messages"] if m["direction"] == "out" and "return label" in m["body"]]
        assert sorted(m["content_type"] for m in entry["media"]) == ["application/pdf", "image/png"]

        # --- the customer told her their email: recorded as an unverified contact point
        agent.get_by_test_id("tab-customer").click()
        c360 = agent.get_by_test_id("customer-360")
        expect(c360.get_by_test_id("contact-point").filter(has_text=NUMBER)).to_contain_text("✓ verified")
        c360.get_by_test_id("contact-add-address").fill("Rosa.Return@Example.com")
        c360.get_by_test_id("contact-add-submit").click()
        given = c360.get_by_test_id("contact-point").filter(has_text="rosa.return@example.com")
        expect(given).to_have_count(1)
        expect(given.get_by_test_id("contact-unverified")).to_have_text("unverified")
        c360.get_by_test_id("contact-add-address").fill("not a phone")
        c360.get_by_test_id("contact-add-submit").click()
        expect(c360.get_by_test_id("contact-add-error")).to_contain_text("Phone:")
        c360.get_by_test_id("contact-add-address").fill("")
        agent.get_by_test_id("transcript").evaluate("(b) => { b.scrollTop = b.scrollHeight; }")
        agent.screenshot(path=str(ARTIFACTS / "console-attach.png"))
        phone.screenshot(path=str(ARTIFACTS / "console-attach-phone.png"), full_page=True)

        # --- web chat: no attach button (the hub refuses files there)
        shop.goto(f"{hub}/shop")
        shop.get_by_test_id("cc-launcher").click()
        shop.get_by_test_id("cc-name").fill("Wen Chat")
        shop.get_by_test_id("cc-input").fill("Do you have this in blue?")
        shop.get_by_test_id("cc-send").click()
        chat_offer = agent.get_by_test_id("offer").filter(has_text="Wen Chat")
        chat_offer.get_by_test_id("offer-accept").click()
        # accepting while the SMS is open keeps the agent there (issue 20): the new chat is opened from the list
        agent.get_by_test_id("conversation-item").filter(has_text="Wen Chat").get_by_test_id("conversation-open").click()
        expect(agent.locator("#chat-title")).to_have_text("Wen Chat")
        expect(agent.get_by_test_id("attach-button")).to_be_hidden()
        expect(agent.get_by_test_id("attach-hint")).to_be_hidden()
        # back on the SMS conversation it returns
        agent.get_by_test_id("conversation-item").filter(has_text=NUMBER).get_by_test_id("conversation-open").click()
        expect(agent.get_by_test_id("attach-button")).to_be_visible()

        assert dialogs == [], dialogs
        assert errors == [], errors
    except Exception:
        for page, name in ((agent, "console-attach-failure.png"), (phone, "console-attach-phone-failure.png"), (shop, "console-attach-shop-failure.png")):
            try:
                page.screenshot(path=str(ARTIFACTS / name))
            except Exception:  # noqa: BLE001 - best effort while reporting the real failure
                pass
        raise
    finally:
        for ctx in (agent_ctx, phone_ctx, shop_ctx):
            ctx.close()
