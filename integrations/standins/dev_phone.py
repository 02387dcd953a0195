"""The ``/dev/phone`` page: a pretend phone that texts and calls the shop through the Twilio stand-in.

A person picks a number (a demo one or their own) and SMS or WhatsApp, writes to one of the shop's
numbers (with a picture if they like) and sees the shop's replies with their delivery ticks. Or they
call the shop: a keypad, a box for what they say (typed, sent as ``SpeechResult`` with a
``Confidence``), the call's transcript (each ``<Say>`` shown and spoken by the browser), hang up; a
call from the shop to their number rings with answer and decline. The page polls ``api/messages``
and ``api/calls`` every second. It exists only while the stand-in is on.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from integrations.standins import twilio_wire as wire
from integrations.standins.voice import VoiceStateError

if TYPE_CHECKING:  # pragma: no cover
    from integrations.standins.twilio import TwilioStandin

PAGE_PATH = "/dev/phone"
STATIC = Path(__file__).parent / "static"
MAX_REQUEST_BYTES = 8 * 1024 * 1024  # one picture of 5 MB, in base64, and the rest
DEMO_PHONES: tuple[dict[str, str], ...] = (
    {"number": "+14155550100", "name": "Ana Silva (US)"},
    {"number": "+12025550143", "name": "Ben Okafor (US)"},
    {"number": "+33612345678", "name": "Chloé Martin (FR)"},
    {"number": "+447911123456", "name": "Dev Patel (UK)"},
)


class DevPhoneError(ValueError):
    """A request of the page that cannot be done (answered 400 with the reason)."""


def _bad(reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=400)


async def _json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, at most MAX_REQUEST_BYTES of it."""
    raw = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        raw += chunk
        if len(raw) > MAX_REQUEST_BYTES:
            raise DevPhoneError("the request is too large (5 MB of media at most)")
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        raise DevPhoneError("the request is not JSON") from None
    if not isinstance(data, dict):
        raise DevPhoneError("the request is not a JSON object")
    return data


def _media(items: Any) -> list[tuple[bytes, str]]:
    """The page's attachments: ``[{"content_type": "image/png", "data": "<base64>"}]``."""
    media = []
    for item in items or []:
        if not isinstance(item, dict) or not isinstance(item.get("data"), str):
            raise DevPhoneError("each attachment needs base64 data")
        try:
            data = base64.b64decode(item["data"], validate=True)
        except (binascii.Error, ValueError):
            raise DevPhoneError("an attachment is not valid base64") from None
        media.append((data, str(item.get("content_type") or "application/octet-stream")))
    return media[: wire.MAX_MEDIA]


class DevPhone:
    """The page's handlers over one stand-in."""

    def __init__(self, standin: TwilioStandin) -> None:
        self.standin = standin

    async def page(self, request: web.Request) -> web.Response:
        """The HTML, with the script's URL under wherever the page is mounted."""
        base = request.path.rstrip("/")
        text = (STATIC / "dev_phone.html").read_text(encoding="utf-8").replace("{{SCRIPT}}", html.escape(base + "/app.js"))
        return web.Response(text=text, content_type="text/html", headers={"Cache-Control": "no-store"})

    async def script(self, request: web.Request) -> web.Response:
        """The page's ES module."""
        return web.Response(text=(STATIC / "dev_phone.js").read_text(encoding="utf-8"), content_type="text/javascript",
                            headers={"Cache-Control": "no-store"})

    async def setup(self, request: web.Request) -> web.Response:
        """The shop's numbers and the demo phones."""
        shop = [{"address": n, "number": wire.bare(n), "channel": "whatsapp" if wire.is_whatsapp(n) else "sms"}
                for n in self.standin.numbers]
        return web.json_response({"shop_numbers": shop, "voice_numbers": list(self.standin.voice.voice_numbers),
                                  "demo_phones": list(DEMO_PHONES)})

    async def messages(self, request: web.Request) -> web.Response:
        """``?address=+1...`` (or ``whatsapp:+1...``): the conversation of that phone with the shop."""
        address = request.query.get("address", "").strip()
        entries = [e.wire() for e in self.standin.conversation(address)]
        return web.json_response({"version": self.standin.version, "messages": entries})

    async def send(self, request: web.Request) -> web.Response:
        """The phone sends: ``{"from", "to", "body", "profile_name", "media"}``."""
        try:
            data = await _json_body(request)
            sender, to = str(data.get("from", "")).strip(), str(data.get("to", "")).strip()
            if not wire.valid_number(sender):
                raise DevPhoneError(f"{sender!r} is not a phone number in international form (+...)")
            body, media = str(data.get("body", "")), _media(data.get("media"))
            if not body.strip() and not media:
                raise DevPhoneError("write something or attach a picture")
            outcome = await self.standin.send_inbound(sender, to, body, media, str(data.get("profile_name", "")))
        except (DevPhoneError, ValueError) as exc:
            return _bad(str(exc))
        return web.json_response({"sid": outcome.sid, "hub_status": outcome.hub_status, "replies": list(outcome.replies)})

    async def read(self, request: web.Request) -> web.Response:
        """The phone showed a WhatsApp message: ``{"sid"}`` becomes ``read``."""
        try:
            data = await _json_body(request)
        except DevPhoneError as exc:
            return _bad(str(exc))
        return web.json_response({"read": self.standin.mark_read(str(data.get("sid", "")))})

    # --- calls ---------------------------------------------------------------------------------------

    async def call(self, request: web.Request) -> web.Response:
        """The phone calls the shop: ``{"from", "to"}`` → ``{"call_sid", "status"}``."""
        try:
            data = await _json_body(request)
            call = self.standin.voice.incoming_call(str(data.get("from", "")).strip(), str(data.get("to", "")).strip())
        except (DevPhoneError, VoiceStateError) as exc:
            return _bad(str(exc))
        return web.json_response({"call_sid": call.sid, "status": call.status})

    async def calls(self, request: web.Request) -> web.Response:
        """``?number=+1...``: that phone's calls with the shop (each with its transcript), oldest first."""
        number = request.query.get("number", "").strip()
        voice = self.standin.voice
        return web.json_response({"version": voice.version, "calls": [voice.view(c) for c in voice.phone_calls(number)]})

    async def call_action(self, request: web.Request) -> web.Response:
        """``digits`` ``{"digits"}``, ``speech`` ``{"text", "confidence"}``, ``answer``, ``hangup`` on one call."""
        voice, sid, action = self.standin.voice, request.match_info["call_sid"], request.match_info["action"]
        try:
            data = await _json_body(request)
            if action == "digits":
                taken = voice.send_digits(sid, str(data.get("digits", "")).strip())
            elif action == "speech":
                confidence = data.get("confidence", 0.9)
                if not isinstance(confidence, (int, float)) or isinstance(confidence, bool):
                    raise DevPhoneError("the confidence is a number between 0 and 1")
                taken = voice.send_speech(sid, str(data.get("text", "")), float(confidence))
            elif action == "answer":
                voice.answer(sid)
                taken = True
            elif action == "hangup":
                voice.hang_up(sid)
                taken = True
            else:
                raise web.HTTPNotFound()
        except (DevPhoneError, VoiceStateError) as exc:
            return _bad(str(exc))
        return web.json_response({"accepted": taken, "status": voice.call(sid).status})

    async def media(self, request: web.Request) -> web.Response:
        """A picture of the conversation (the customer's own, or one the shop sent)."""
        stored = self.standin.files.get(request.match_info["media_sid"])
        if stored is None:
            raise web.HTTPNotFound()
        return web.Response(body=stored.data, content_type=stored.content_type,
                            headers={"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"})


def add_routes(app: web.Application, standin: TwilioStandin, path: str = PAGE_PATH) -> None:
    """The page and its JSON under ``path`` of ``app``."""
    phone = DevPhone(standin)
    app.router.add_get(path, phone.page)
    app.router.add_get(path + "/app.js", phone.script)
    app.router.add_get(path + "/api/setup", phone.setup)
    app.router.add_get(path + "/api/messages", phone.messages)
    app.router.add_post(path + "/api/send", phone.send)
    app.router.add_post(path + "/api/read", phone.read)
    app.router.add_get(path + "/api/media/{media_sid}", phone.media)
    app.router.add_post(path + "/api/call", phone.call)
    app.router.add_get(path + "/api/calls", phone.calls)
    app.router.add_post(path + "/api/calls/{call_sid}/{action}", phone.call_action)
