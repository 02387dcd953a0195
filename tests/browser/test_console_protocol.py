"""The agent console against the protocol additions of "Channels as adapters", before the hub sends them.

The real console (the built bundle, its HTML and CSS) runs in headless Chromium against a small stand-in
for the hub's ``/agent`` namespace (python-socketio + aiohttp in a thread, below) that speaks what
``docs/subsystems/realtime.md`` gains: ``hello.channels``; conversation summaries with ``channel_label``,
``queue``, ``customer_address``, ``address_verified``, ``last_message_at``, ``opted_out``; messages with
``delivery_status``, ``delivery_error`` and ``attachments``; the ``message_status`` event; ``reply`` refused
with ``opted_out`` and ``outside_window``. ``test_console_channels.py`` covers the real hub; once the hub
sends these fields, its tests take over and this stand-in can go.
Screenshots: ``test-artifacts/console-protocol-sms.png``, ``console-protocol-whatsapp.png``, ``console-protocol-optout.png``.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest

pytestmark = pytest.mark.browser

from tests.browser.harness import ARTIFACTS, ROOT, chromium, ensure_frontend, free_port, http, sync_api, watch  # noqa: E402

socketio = pytest.importorskip("socketio")
web = pytest.importorskip("aiohttp.web")

STATIC = ROOT / "agent_console" / "static"
PNG = base64.b64decode(  # a 2x2 blue square
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGNQTX4NRAwQCgAligXNFnxqAgAAAABJRU5ErkJggg=="
)
AGENT = {"id": 3, "username": "alice", "display_name": "Alice Martin", "role": "agent"}


def _iso(delta: timedelta) -> str:
    return (datetime.now(timezone.utc) + delta).isoformat()


def _msg(conv: int, seq: int, kind: str, text: str, ago_min: float, **extra: Any) -> dict[str, Any]:
    name = {"customer": None, "agent": "Alice Martin"}.get(kind)
    return {
        "conversation_id": conv, "seq": seq, "sender_kind": kind, "sender_name": name, "text": text, "internal": False,
        "created_at": _iso(-timedelta(minutes=ago_min)), "client_msg_id": None, **extra,
    }


class StandInHub:
    """Just enough of /agent for the console: hello, resume, reply (with refusals), and events on demand."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self.sio: Any = None
        self.replies: list[dict[str, Any]] = []
        self.conversations = [
            {"id": 21, "customer_id": 501, "customer_name": "Sam Carter", "channel": "sms", "channel_label": "SMS", "status": "assigned", "subject": None,
             "last_seq": 5, "queue": "support", "customer_address": "+15551234567", "address_verified": True, "opted_out": False,
             "last_message_at": _iso(-timedelta(minutes=2))},
            {"id": 22, "customer_id": 502, "customer_name": "Ana Souza", "channel": "whatsapp", "channel_label": "WhatsApp", "status": "assigned", "subject": None,
             "last_seq": 1, "queue": "sales", "customer_address": "+5511987654321", "address_verified": False, "opted_out": False,
             "last_message_at": _iso(-timedelta(hours=25))},
            {"id": 23, "customer_id": 503, "customer_name": "Olli Stop", "channel": "sms", "channel_label": "SMS", "status": "assigned", "subject": None,
             "last_seq": 1, "queue": "support", "customer_address": "+15557654321", "address_verified": True, "opted_out": True,
             "last_message_at": _iso(-timedelta(minutes=30))},
            {"id": 24, "customer_id": 504, "customer_name": "Faxy McFax", "channel": "fax", "status": "assigned", "subject": None,
             "last_seq": 1, "queue": "support", "customer_address": "+15550001111", "last_message_at": _iso(-timedelta(hours=3))},
        ]
        self.messages = {
            21: [
                _msg(21, 1, "customer", "Hi, my order has not arrived", 9),
                _msg(21, 2, "agent", "Let me check that for you", 8, delivery_status="delivered", delivery_error=None),
                _msg(21, 3, "agent", "Could you send a photo of the label?", 7, delivery_status="undelivered", delivery_error={"code": 30003, "message": None}),
                _msg(21, 4, "customer", "Here it is", 3, attachments=[
                    {"content_type": "image/png", "url": "/media/21/label.png", "name": "label.png", "size": 70},
                    {"content_type": "application/pdf", "url": "/media/21/invoice.pdf", "name": "invoice.pdf", "size": 48213},
                    {"content_type": "image/png", "url": "https://evil.example/track.png", "name": "track.png", "size": 10},
                ]),
                _msg(21, 5, "agent", "Thanks, got it", 2, delivery_status="read", delivery_error=None),
            ],
            22: [_msg(22, 1, "customer", "Olá! Do you have this in blue?", 25 * 60)],
            23: [_msg(23, 1, "customer", "STOP", 30)],
            24: [_msg(24, 1, "customer", "A fax, somehow", 180)],
        }

    # --- the stand-in server, in its own thread and loop

    def start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self._serve())
            ready.set()
            self.loop.run_forever()

        threading.Thread(target=run, name="stand-in-hub", daemon=True).start()
        assert ready.wait(15), "the stand-in hub did not start"

    async def _serve(self) -> None:
        sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins=[self.base])
        self.sio = sio
        app = web.Application()
        sio.attach(app)

        async def page(request: Any) -> Any:
            return web.FileResponse(STATIC / "console.html", headers={"Cache-Control": "no-cache"})

        async def me(request: Any) -> Any:
            return web.json_response({"agent": AGENT})

        async def customer(request: Any) -> Any:
            cid = int(request.match_info["id"])
            conv = next(c for c in self.conversations if c["customer_id"] == cid)
            return web.json_response({
                "customer": {"id": cid, "display_name": conv["customer_name"], "tier": "standard", "created_at": "2026-01-05T10:00:00+00:00"},
                "contact_points": [{"kind": "phone", "value": conv["customer_address"], "verified": bool(conv.get("address_verified"))}],
                "orders": [], "timeline": {"items": []},
            })

        async def media(request: Any) -> Any:
            name = request.match_info["name"]
            if name.endswith(".png"):
                return web.Response(body=PNG, content_type="image/png")
            return web.Response(body=b"%PDF-1.4\n%stand-in\n", content_type="application/pdf")

        async def canned(request: Any) -> Any:
            return web.json_response([])

        app.router.add_get("/console", page)
        app.router.add_get("/auth/me", me)
        app.router.add_get("/api/customers/{id}", customer)
        app.router.add_get("/console/canned.json", canned)
        app.router.add_get("/media/{conv}/{name}", media)
        app.router.add_static("/static/", STATIC)

        @sio.on("connect", namespace="/agent")
        async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
            await sio.emit("hello", {
                "agent": AGENT, "status": "available", "offers": [], "conversations": self.conversations,
                "channels": [
                    {"name": "chat", "label": "Web chat", "max_text": 4000, "segments": False, "buttons_as_text": False},
                    {"name": "sms", "label": "SMS", "max_text": 1600, "segments": True, "buttons_as_text": True},
                    {"name": "whatsapp", "label": "WhatsApp", "max_text": 4096, "segments": False, "buttons_as_text": True, "reply_window_seconds": 86400},
                ],
            }, to=sid, namespace="/agent")

        @sio.on("resume", namespace="/agent")
        async def resume(sid: str, data: dict[str, Any]) -> dict[str, Any]:
            after = int(data.get("last_seq") or 0)
            return {"ok": True, "messages": [m for m in self.messages.get(int(data["conversation_id"]), []) if m["seq"] > after]}

        @sio.on("reply", namespace="/agent")
        async def reply(sid: str, data: dict[str, Any]) -> dict[str, Any]:
            self.replies.append(data)
            conv = int(data["conversation_id"])
            if conv == 22:
                return {"ok": False, "error": {"code": "outside_window", "message": "WhatsApp refuses a free-form reply more than 24 hours after the customer's last message."}}
            if "#optout" in data["text"]:
                return {"ok": False, "error": {"code": "opted_out", "message": "The customer texted STOP: SMS to them is refused."}}
            seq = len(self.messages[conv]) + 1
            m = _msg(conv, seq, "agent", data["text"], 0, client_msg_id=data["client_msg_id"], delivery_status="queued", delivery_error=None)
            self.messages[conv].append(m)
            return {"ok": True, "message": m}

        @sio.on("*", namespace="/agent")
        async def other(event: str, sid: str, data: Any = None) -> dict[str, Any]:
            return {"ok": True}

        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()

    def emit(self, event: str, data: dict[str, Any]) -> None:
        """An event to every console (the stand-in's whole /agent namespace)."""
        asyncio.run_coroutine_threadsafe(self.sio.emit(event, data, namespace="/agent"), self.loop).result(10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture(scope="module")
def hub() -> Iterator[StandInHub]:
    ensure_frontend()
    stand_in = StandInHub()
    stand_in.start()
    assert http(f"{stand_in.base}/auth/me")[0] == 200
    try:
        yield stand_in
    finally:
        stand_in.stop()


@pytest.fixture(scope="module")
def browser(hub: StandInHub) -> Iterator[Any]:
    with chromium() as b:
        yield b


def test_sms_whatsapp_delivery_and_refusals(hub: StandInHub, browser: Any) -> None:
    expect = sync_api.expect
    expect.set_options(timeout=15_000)
    ARTIFACTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    errors: list[str] = []
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    page = ctx.new_page()
    watch(page, dialogs, errors)
    try:
        page.goto(f"{hub.base}/console")
        expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        items = page.get_by_test_id("conversation-item")
        expect(items).to_have_count(4)

        # --- channels: icons and labels from the hub; an unknown channel gets the generic icon and its name
        sms = items.filter(has_text="Sam Carter")
        expect(sms.get_by_test_id("channel-icon")).to_have_attribute("data-icon", "sms")
        expect(sms.get_by_test_id("channel-label")).to_have_text("SMS")
        expect(sms).to_contain_text("+15551234567")
        expect(items.filter(has_text="Ana Souza").get_by_test_id("channel-icon")).to_have_attribute("data-icon", "whatsapp")
        fax = items.filter(has_text="Faxy McFax")
        expect(fax.get_by_test_id("channel-icon")).to_have_attribute("data-icon", "generic")
        expect(fax.get_by_test_id("channel-label")).to_have_text("fax")
        # the filter offers the hub's channels and the unknown one; SMS shows the two SMS conversations
        channel = page.get_by_test_id("conversation-filter-channel")
        assert channel.locator("option").evaluate_all("els => els.map(e => e.value)") == ["", "chat", "sms", "whatsapp", "fax"]
        channel.select_option("sms")
        expect(items.filter(visible=True)).to_have_count(2)
        channel.select_option("")
        page.get_by_test_id("conversation-filter-queue").select_option("sales")
        expect(items.filter(visible=True)).to_have_count(1)
        page.get_by_test_id("conversation-filter-queue").select_option("")
        page.get_by_test_id("conversation-search").fill("555123")  # the customer's address
        expect(items.filter(visible=True)).to_have_count(1)
        expect(items.filter(visible=True)).to_contain_text("Sam Carter")
        page.get_by_test_id("conversation-search").fill("")

        # --- the SMS conversation: address (verified) in the header, ticks, the failure in words, attachments
        sms.get_by_role("button").click()
        expect(page.locator("#chat-title")).to_have_text("Sam Carter")
        expect(page.get_by_test_id("customer-address")).to_contain_text("+15551234567")
        expect(page.get_by_test_id("customer-address")).to_contain_text("verified")
        transcript = page.get_by_test_id("transcript")
        msg = lambda seq: transcript.locator(f'[data-testid="message"][data-seq="{seq}"]')  # noqa: E731
        expect(msg(2).get_by_test_id("delivery-status")).to_have_attribute("data-status", "delivered")
        expect(msg(2).get_by_test_id("delivery-status")).to_have_attribute("title", "Delivered")
        expect(msg(2).get_by_test_id("delivery-status")).to_contain_text("✓✓")
        failed = msg(3).get_by_test_id("delivery-status")
        expect(failed).to_have_attribute("data-status", "undelivered")
        expect(failed).to_contain_text("Not delivered: the phone is unreachable or switched off")
        expect(msg(5).get_by_test_id("delivery-status")).to_have_attribute("data-status", "read")
        expect(msg(1).get_by_test_id("delivery-status")).to_have_count(0)  # the customer's own: no ticks
        attachments = msg(4).get_by_test_id("attachment")
        expect(attachments).to_have_count(3)
        image = attachments.nth(0)
        expect(image).to_have_attribute("data-kind", "image")
        expect(image.locator("img")).to_have_attribute("src", "/media/21/label.png")
        page.wait_for_function("() => { const i = document.querySelector('[data-seq=\"4\"] img'); return i && i.complete && i.naturalWidth === 2; }")
        expect(attachments.nth(1)).to_have_attribute("data-kind", "file")
        expect(attachments.nth(1)).to_have_attribute("href", "/media/21/invoice.pdf")
        expect(attachments.nth(1)).to_contain_text("invoice.pdf")
        expect(attachments.nth(1)).to_contain_text("47 KB")
        expect(attachments.nth(2)).to_have_attribute("data-kind", "blocked")  # another site's URL: never loaded
        assert transcript.locator("img").count() == 1
        assert transcript.locator('[href*="evil"], [src*="evil"]').count() == 0

        # --- the SMS composer counts characters and segments (GSM-7 160/153, extended count 2, UCS-2 70/67)
        meter = page.get_by_test_id("composer-meter")
        reply = page.get_by_test_id("reply-input")
        expect(reply).to_have_attribute("maxlength", "1600")
        reply.fill("Hello")
        expect(meter).to_have_text("5/160 · 1 segment · GSM-7")
        reply.fill("a" * 161)
        expect(meter).to_have_text("161/306 · 2 segments · GSM-7")
        reply.fill("{" * 81)
        expect(meter).to_have_text("162/306 · 2 segments · GSM-7")
        reply.fill("Thanks 🙂")
        expect(meter).to_have_text("9/70 · 1 segment · UCS-2")
        expect(meter).to_have_attribute("data-encoding", "UCS-2")

        # --- a reply: queued, then the hub's statuses move it forward; a late older status is ignored
        reply.fill("Your parcel is on its way")
        reply.press("Enter")
        sent = transcript.locator('[data-testid="message"][data-seq="6"]')
        expect(sent.get_by_test_id("delivery-status")).to_have_attribute("data-status", "queued")
        for status in ("sent", "delivered", "read"):
            hub.emit("message_status", {"conversation_id": 21, "seq": 6, "delivery_status": status, "delivery_error": None})
            expect(sent.get_by_test_id("delivery-status")).to_have_attribute("data-status", status)
        hub.emit("message_status", {"conversation_id": 21, "seq": 6, "delivery_status": "sent", "delivery_error": None})
        hub.emit("message_status", {"conversation_id": 21, "seq": 2, "delivery_status": "failed", "delivery_error": {"code": 30005, "message": None}})
        page.wait_for_timeout(300)
        expect(sent.get_by_test_id("delivery-status")).to_have_attribute("data-status", "read")
        expect(msg(2).get_by_test_id("delivery-status")).to_have_attribute("data-status", "delivered")  # failures only before delivery
        hub.emit("message_status", {"conversation_id": 21, "seq": 5, "delivery_status": "delivered", "delivery_error": None})
        page.wait_for_timeout(300)
        expect(msg(5).get_by_test_id("delivery-status")).to_have_attribute("data-status", "read")
        page.screenshot(path=str(ARTIFACTS / "console-protocol-sms.png"))

        # --- a refusal because the customer opted out: said next to the composer, which then closes
        reply.fill("One more thing #optout")
        reply.press("Enter")
        error = page.get_by_test_id("chat-error")
        expect(error).to_have_attribute("data-code", "opted_out")
        expect(error).to_contain_text("The customer texted STOP: SMS to them is refused.")
        expect(page.get_by_test_id("channel-banner")).to_have_attribute("data-kind", "opted_out")
        expect(reply).to_be_disabled()
        expect(page.get_by_test_id("reply-send")).to_be_disabled()
        expect(page.get_by_test_id("note-input")).to_be_enabled()

        # --- WhatsApp: the 24-hour note (closed: the customer wrote 25 hours ago), and the hub's refusal
        items.filter(has_text="Ana Souza").get_by_role("button").click()
        banner = page.get_by_test_id("channel-banner")
        expect(banner).to_have_attribute("data-kind", "warn")
        expect(banner).to_contain_text("24-hour")
        expect(banner).to_contain_text("templates are not supported yet")
        expect(meter).to_be_hidden()  # no segments on WhatsApp
        expect(page.get_by_test_id("customer-address")).to_contain_text("not verified")
        reply.fill("Yes, we have it in blue!")
        reply.press("Enter")
        expect(error).to_have_attribute("data-code", "outside_window")
        expect(error).to_contain_text("Not sent: WhatsApp refuses a free-form reply")
        expect(transcript.locator(".msg.failed")).to_contain_text("Not sent:")
        expect(reply).to_be_enabled()  # a template may come; the window may reopen
        page.screenshot(path=str(ARTIFACTS / "console-protocol-whatsapp.png"))

        # --- a conversation whose customer opted out before: banner, composer off with the reason
        items.filter(has_text="Olli Stop").get_by_role("button").click()
        expect(banner).to_have_attribute("data-kind", "opted_out")
        expect(banner).to_contain_text("texted STOP")
        expect(reply).to_be_disabled()
        expect(reply).to_have_attribute("placeholder", "Replies are off: the customer opted out (STOP). Internal notes still work.")
        page.screenshot(path=str(ARTIFACTS / "console-protocol-optout.png"))

        # --- the unknown channel still gets the transcript and a composer
        fax.get_by_role("button").click()
        expect(transcript.locator('[data-testid="message"]', has_text="A fax, somehow")).to_have_count(1)
        expect(banner).to_be_hidden()
        expect(reply).to_be_enabled()

        assert [r["conversation_id"] for r in hub.replies] == [21, 21, 22], hub.replies
        assert dialogs == [], dialogs
        assert errors == [], errors
    except Exception:
        try:
            page.screenshot(path=str(ARTIFACTS / "console-protocol-failure.png"))
        except Exception:  # noqa: BLE001 - best effort while reporting the real failure
            pass
        raise
    finally:
        ctx.close()
