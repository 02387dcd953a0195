"""A local stand-in of Twilio Programmable Messaging (SMS and WhatsApp) and Voice, on Twilio's own wire protocol.

It serves the REST API the hub calls (``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` with
HTTP Basic credentials and a form; ``GET .../Messages/{MessageSid}.json``; the media of inbound
messages behind Basic credentials and a redirect), refuses what Twilio refuses with Twilio's codes,
and calls the hub back the way Twilio does: a signed "A message comes in" webhook for what a
customer sends (:meth:`TwilioStandin.send_inbound`, or the ``/dev/phone`` page) and signed status
callbacks (sent, delivered, read, failed, undelivered) for what the hub sends. As on Twilio, the
initial ``queued`` status gets no callback.

Voice (calls, TwiML, conferences, the Calls/Conferences/Participants resources) is :mod:`.voice`
(``standin.voice``) and :mod:`.voice_api`.

Mount it in the hub (``app.add_subapp("/standin/twilio", create_twilio_standin(...))`` with
``TWILIO_API_BASE_URL=http://127.0.0.1:8080/standin/twilio``) or run it on its own port in tests.
See docs/subsystems/twilio-standin.md.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Coroutine, Iterable, Sequence
from xml.etree import ElementTree

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped,unused-ignore]

from integrations.standins import twilio_wire as wire
from integrations.standins.dev_phone import add_routes as _add_dev_phone_routes
from integrations.standins.voice import VoiceEngine
from integrations.standins.voice_api import add_voice_routes

log = logging.getLogger(__name__)

INBOUND_PATH = "/webhooks/twilio/messaging"
WHATSAPP_WINDOW_SECONDS = 24 * 3600
MEDIA_LIMIT = 5 * 1024 * 1024  # what Twilio takes for the media of one message
MEDIA_TYPES = ("image/", "video/", "audio/", "application/pdf", "text/vcard", "text/x-vcard")
_PREFIX = "/2010-04-01/Accounts/{account_sid}"
# Twilio's standard opt-out keywords (SMS): Twilio acts on them before forwarding the message.
_OPT_KEYWORDS = {
    **{w: True for w in ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT")},
    **{w: False for w in ("START", "YES", "UNSTOP")},
}


@dataclass
class PhoneEntry:
    """One message between a customer's phone and a shop number, as the ``/dev/phone`` page shows it.

    :param customer: the customer's address as Twilio writes it (``+1...`` or ``whatsapp:+1...``).
    :param direction: ``in`` (customer to shop) or ``out`` (shop to customer).
    :param status: for ``out``, the message's Twilio status; for ``in``, ``received``.
    :param hub_status: for ``in``, the HTTP status the hub answered the webhook with.
    """

    id: int
    customer: str
    shop: str
    direction: str
    body: str
    sid: str
    status: str
    at: str
    media: list[dict[str, str]] = field(default_factory=list)
    error_code: str | None = None
    hub_status: int | None = None

    def wire(self) -> dict[str, Any]:
        """The entry as the page's JSON."""
        words = wire.LATER_ERRORS.get(self.error_code or "", "") if self.error_code else ""
        return {"id": self.id, "customer": self.customer, "shop": self.shop, "direction": self.direction,
                "body": self.body, "sid": self.sid, "status": self.status, "at": self.at, "media": self.media,
                "error_code": self.error_code, "error_words": words, "hub_status": self.hub_status}


@dataclass
class _Outbound:
    """A message sent from a shop number: its JSON resource and what the stand-in needs to deliver it."""

    resource: dict[str, Any]
    entry: PhoneEntry
    status_callback: str | None
    media_urls: list[str]

    @property
    def sid(self) -> str:
        return str(self.resource["sid"])


@dataclass(frozen=True)
class StoredFile:
    """Media the stand-in holds: an inbound attachment (served like Twilio's) or an outbound one it fetched."""

    sid: str
    message_sid: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class InboundOutcome:
    """What happened to a message a customer sent: its SID, the hub's HTTP answer and the TwiML replies."""

    sid: str
    hub_status: int | None
    replies: tuple[str, ...]


@dataclass(frozen=True)
class CallbackRecord:
    """A webhook the stand-in posted (tests look at these)."""

    url: str
    form: dict[str, str]
    signature: str
    hub_status: int | None


def twiml_messages(xml_text: str) -> list[str]:
    """The texts of the ``<Message>`` verbs of a TwiML answer (none if it is not TwiML)."""
    try:
        root = ElementTree.fromstring(xml_text)
    except ElementTree.ParseError:
        return []
    texts = []
    for message in root.iter("Message"):
        body = message.find("Body")
        text = (body.text if body is not None else message.text) or ""
        if text.strip():
            texts.append(text.strip())
    return texts


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _address(number: str) -> str:
    """A shop number as the stand-in keys it (``whatsapp:`` in lower case)."""
    text = number.strip()
    return wire.WHATSAPP + wire.bare(text) if wire.is_whatsapp(text) else text


class TwilioStandin:
    """The state of one stand-in Twilio account, and what it does.

    :param numbers: the account's senders (``+15005550006``, ``whatsapp:+14155238886``).
    :param webhook_base_url: where the hub is (``PUBLIC_BASE_URL``): webhooks go to its
        ``/webhooks/twilio/messaging``.
    :param api_base_url: where this stand-in is reached (the base of the media URLs it hands out);
        by default ``webhook_base_url + "/standin/twilio"``, where the hub mounts it.
    :param status_delay: seconds between a message's status changes.
    :param clock: seconds since the epoch (the WhatsApp 24-hour window).
    :param time_scale: real seconds per Twilio second in calls (:class:`~.voice.VoiceEngine`).
    """

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        webhook_base_url: str,
        numbers: Iterable[str],
        api_base_url: str | None = None,
        status_delay: float = 0.5,
        clock: Callable[[], float] = time.time,
        time_scale: float = 1.0,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.webhook_base_url = webhook_base_url.rstrip("/")
        self.api_base_url = (api_base_url or self.webhook_base_url + "/standin/twilio").rstrip("/")
        self.numbers: tuple[str, ...] = tuple(_address(n) for n in numbers)
        self.status_delay = status_delay
        self.clock = clock
        self.entries: list[PhoneEntry] = []
        self.version = 0
        self.outbound: dict[str, _Outbound] = {}
        self.files: dict[str, StoredFile] = {}
        self.cdn: dict[str, str] = {}  # token -> media SID
        self.opted_out: set[tuple[str, str]] = set()  # (shop number, customer number), SMS
        self.last_whatsapp: dict[str, float] = {}  # customer number -> when they last wrote
        self.undeliverable: dict[str, str] = {}  # customer number -> ErrorCode of the undelivered status
        self.callbacks: list[CallbackRecord] = []
        self.create_requests: list[dict[str, list[str]]] = []
        self._inject: deque[int] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None
        self.voice = VoiceEngine(self, time_scale=time_scale)

    # --- test controls --------------------------------------------------------------------------

    def fail_next(self, status: int = 503, times: int = 1) -> None:
        """Answer the next ``times`` Messages.create with this HTTP status (429, 500 or 503) and Twilio's error body."""
        if status not in wire.STATUS_CODES:
            raise ValueError(f"inject one of {sorted(wire.STATUS_CODES)}")
        self._inject.extend([status] * times)

    def fail_delivery(self, customer_number: str, error_code: str = "30003") -> None:
        """Messages to this number are sent, then ``undelivered`` with ``error_code``."""
        self.undeliverable[wire.bare(customer_number)] = error_code

    async def drain(self) -> None:
        """Wait until every status change and callback under way is done."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop what is under way (calls included) and close the HTTP session."""
        await self.voice.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._http is not None:
            await self._http.close()
            self._http = None

    # --- the phone log ----------------------------------------------------------------------------

    def _log(self, **fields: Any) -> PhoneEntry:
        entry = PhoneEntry(id=len(self.entries) + 1, at=_now().isoformat(timespec="seconds"), **fields)
        self.entries.append(entry)
        self.version += 1
        return entry

    def conversation(self, customer: str) -> list[PhoneEntry]:
        """Every message between this customer address and the shop, oldest first."""
        return [e for e in self.entries if e.customer == customer]

    def _keep_file(self, message_sid: str, data: bytes, content_type: str) -> StoredFile:
        stored = StoredFile(wire.new_sid("ME"), message_sid, content_type, data)
        self.files[stored.sid] = stored
        return stored

    # --- HTTP out -------------------------------------------------------------------------------

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        return self._http

    def sign(self, url: str, form: dict[str, str]) -> str:
        """``X-Twilio-Signature`` for a POST of ``form`` to ``url``, computed as Twilio does."""
        return str(RequestValidator(self.auth_token).compute_signature(url, form))

    async def _post_signed(self, url: str, form: dict[str, str]) -> tuple[int | None, str]:
        """POST a webhook the way Twilio does; the hub's status and body (None: it could not be reached)."""
        signature = self.sign(url, form)
        headers = {"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1",
                   "I-Twilio-Idempotency-Token": wire.new_sid("ID")[2:]}
        try:
            async with self._session().post(url, data=form, headers=headers) as resp:
                status, text = resp.status, await resp.text()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            log.warning("stand-in webhook failed", extra={"url": url, "error": type(exc).__name__})
            status, text = None, ""
        self.callbacks.append(CallbackRecord(url, form, signature, status))
        return status, text

    async def repost(self, record: CallbackRecord) -> int | None:
        """Post a webhook again, exactly as before (Twilio retries; tests check a repeat does nothing twice)."""
        status, _text = await self._post_signed(record.url, record.form)
        return status

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("stand-in task failed", exc_info=task.exception())

    # --- a customer writes ----------------------------------------------------------------------

    def _shop(self, to: str) -> str:
        address = _address(to)
        if address not in self.numbers:
            raise ValueError(f"{to} is not one of the stand-in's numbers {self.numbers}")
        return address

    def _note_inbound(self, customer: str, shop: str, body: str) -> None:
        """What Twilio itself does with an inbound message: opt-out keywords (SMS), the WhatsApp window."""
        number = wire.bare(customer)
        if wire.is_whatsapp(shop):
            self.last_whatsapp[number] = self.clock()
            return
        choice = _OPT_KEYWORDS.get(body.strip().upper())
        if choice is True:
            self.opted_out.add((shop, number))
        elif choice is False:
            self.opted_out.discard((shop, number))

    async def send_inbound(
        self, from_: str, to: str, body: str, media: Sequence[tuple[bytes, str]] = (), profile_name: str = ""
    ) -> InboundOutcome:
        """A customer texts (or WhatsApps) ``to``: post the signed webhook to the hub, as Twilio would.

        :param from_: the customer's number (``+1...``; ``whatsapp:`` is added when ``to`` is a WhatsApp number).
        :param media: (bytes, content type) of each attachment; the hub gets Twilio-style media URLs.
        """
        shop = self._shop(to)
        customer = wire.WHATSAPP + wire.bare(from_) if wire.is_whatsapp(shop) else wire.bare(from_)
        sid = wire.new_sid("MM" if media else "SM")
        files = [self._keep_file(sid, data, content_type) for data, content_type in media]
        urls = [(self.media_url(sid, f.sid), f.content_type) for f in files]
        if wire.is_whatsapp(shop):
            form = wire.inbound_whatsapp_form(account_sid=self.account_sid, sid=sid, from_=customer, to=shop,
                                              body=body, media=urls, profile_name=profile_name)
        else:
            form = wire.inbound_sms_form(account_sid=self.account_sid, sid=sid, from_=customer, to=shop, body=body, media=urls)
        entry = self._log(customer=customer, shop=shop, direction="in", body=body, sid=sid, status="received",
                          media=[{"sid": f.sid, "content_type": f.content_type} for f in files])
        self._note_inbound(customer, shop, body)
        status, text = await self._post_signed(self.webhook_base_url + INBOUND_PATH, form)
        entry.hub_status = status
        self.version += 1
        replies = tuple(twiml_messages(text)) if status == 200 else ()
        for reply in replies:
            self._accept(shop, customer, reply, [], None, direction="outbound-reply")
        return InboundOutcome(sid, status, replies)

    def media_url(self, message_sid: str, media_sid: str) -> str:
        """Where Twilio would serve an inbound message's media (Basic credentials required)."""
        return f"{self.api_base_url}{_PREFIX.format(account_sid=self.account_sid)}/Messages/{message_sid}/Media/{media_sid}"

    # --- the shop sends -------------------------------------------------------------------------

    def _refusal(self, to: str, from_: str, body: str, media: list[str]) -> int | None:
        """The error code Twilio answers a Messages.create it refuses outright with (the first rule broken)."""
        sms = not wire.is_whatsapp(to)
        rules: tuple[tuple[Callable[[], bool], int], ...] = (
            (lambda: not to, 21604),
            (lambda: not from_, 21603),
            (lambda: not body and not media, 21602),
            (lambda: len(body) > wire.MAX_BODY, 21617),
            (lambda: len(media) > wire.MAX_MEDIA or not all(u.startswith(("http://", "https://")) for u in media), 21620),
            (lambda: wire.is_whatsapp(to) != wire.is_whatsapp(from_), 21910),
            (lambda: not sms and _address(from_) not in self.numbers, 63007),
            (lambda: sms and not wire.valid_number(from_), 21212),
            (lambda: sms and from_ not in self.numbers, 21606),
            (lambda: not wire.valid_number(to), 21211),
            (lambda: sms and to in wire.MAGIC_TO, wire.MAGIC_TO.get(to, 0)),
            (lambda: sms and (from_, to) in self.opted_out, 21610),
        )
        return next((code for broken, code in rules if broken()), None)

    def _accept(
        self, shop: str, customer: str, body: str, media: list[str], status_callback: str | None,
        direction: str = "outbound-api",
    ) -> _Outbound:
        """Take a message (status ``queued``) and start moving it on in the background."""
        sid = wire.new_sid("MM" if media else "SM")
        resource = wire.message_resource(account_sid=self.account_sid, sid=sid, from_=shop, to=customer, body=body,
                                         num_media=len(media), status="queued", now=_now(), direction=direction)
        entry = self._log(customer=customer, shop=shop, direction="out", body=body, sid=sid, status="queued")
        outbound = _Outbound(resource, entry, status_callback, media)
        self.outbound[sid] = outbound
        self._spawn(self._progress(outbound))
        return outbound

    async def _progress(self, out: _Outbound) -> None:
        """queued -> sent -> delivered (or failed, or undelivered), with a status callback for each."""
        await asyncio.sleep(self.status_delay)
        code = self._outside_window(out) or await self._fetch_media(out)
        if code:
            await self._set_status(out, "failed", code)
            return
        await self._set_status(out, "sent")
        await asyncio.sleep(self.status_delay)
        code = self.undeliverable.get(wire.bare(str(out.resource["to"])))
        await self._set_status(out, "undelivered" if code else "delivered", code)

    def _outside_window(self, out: _Outbound) -> str | None:
        """63016 for a WhatsApp message more than 24 hours after the customer last wrote."""
        to = str(out.resource["to"])
        if not wire.is_whatsapp(to):
            return None
        last = self.last_whatsapp.get(wire.bare(to))
        return "63016" if last is None or self.clock() - last > WHATSAPP_WINDOW_SECONDS else None

    async def _fetch_media(self, out: _Outbound) -> str | None:
        """Fetch the hub's MediaUrls as Twilio does before sending; the ErrorCode if one cannot be used."""
        for url in out.media_urls:
            try:
                status, content_type, data = await self._download(url)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                return "11200"
            if status != 200:
                return "11200"
            if not content_type.startswith(MEDIA_TYPES):
                return "12300"
            if len(data) > MEDIA_LIMIT:
                return "30019"
            stored = self._keep_file(out.sid, data, content_type)
            out.entry.media.append({"sid": stored.sid, "content_type": content_type})
        return None

    async def _download(self, url: str) -> tuple[int, str, bytes]:
        """GET a public URL: status, base content type and at most MEDIA_LIMIT + 1 bytes."""
        async with self._session().get(url) as resp:
            data = bytearray()
            async for chunk in resp.content.iter_chunked(64 * 1024):
                data += chunk
                if len(data) > MEDIA_LIMIT:
                    break
            content_type = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
            return resp.status, content_type, bytes(data)

    async def _set_status(self, out: _Outbound, status: str, error_code: str | None = None) -> None:
        """Move a message to ``status`` and call its StatusCallback, signed."""
        now = _now()
        out.resource.update(status=status, date_updated=wire.rfc2822(now))
        if status == "sent":
            out.resource["date_sent"] = wire.rfc2822(now)
        if error_code:
            out.resource.update(error_code=int(error_code), error_message=wire.LATER_ERRORS.get(error_code))
        out.entry.status, out.entry.error_code = status, error_code
        self.version += 1
        if out.status_callback:
            form = wire.status_form(account_sid=self.account_sid, sid=out.sid, from_=str(out.resource["from"]),
                                    to=str(out.resource["to"]), status=status, error_code=error_code, now=now)
            await self._post_signed(out.status_callback, form)

    def mark_read(self, sid: str) -> bool:
        """The customer read a WhatsApp message: status ``read`` and its callback (False if it cannot be read)."""
        out = self.outbound.get(sid)
        if out is None or not wire.is_whatsapp(str(out.resource["to"])) or out.entry.status not in ("sent", "delivered"):
            return False
        self._spawn(self._set_status(out, "read"))
        return True

    # --- the REST API ---------------------------------------------------------------------------

    def _authorised(self, request: web.Request) -> web.Response | None:
        """None if the request has this account's credentials and path, else Twilio's error answer."""
        if _basic_credentials(request.headers.get("Authorization", "")) != (self.account_sid, self.auth_token):
            return _error(20003)
        if request.match_info["account_sid"] != self.account_sid:
            return _error(20404, path=request.path)
        return None

    async def create_message(self, request: web.Request) -> web.Response:
        """``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``."""
        refused = self._authorised(request)
        if refused is not None:
            return refused
        form = await request.post()
        self.create_requests.append({k: [str(v) for v in form.getall(k)] for k in form.keys()})
        if self._inject:
            return _error(wire.STATUS_CODES[self._inject.popleft()])
        to, from_ = str(form.get("To", "")).strip(), str(form.get("From", "")).strip()
        body, media = str(form.get("Body", "")), [str(u) for u in form.getall("MediaUrl", [])]
        code = self._refusal(to, from_, body, media)
        if code is not None:
            return _error(code, to=to, from_=from_)
        callback = str(form.get("StatusCallback", "")) or None
        outbound = self._accept(_address(from_), to, body, media, callback)
        return web.json_response(outbound.resource, status=201)

    async def fetch_message(self, request: web.Request) -> web.Response:
        """``GET /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}.json``."""
        refused = self._authorised(request)
        if refused is not None:
            return refused
        out = self.outbound.get(request.match_info["message_sid"])
        if out is None:
            return _error(20404, path=request.path)
        return web.json_response(out.resource)

    async def media(self, request: web.Request) -> web.Response:
        """An inbound attachment's media URL: Basic credentials, then a redirect to the "CDN", as on Twilio."""
        refused = self._authorised(request)
        if refused is not None:
            return refused
        stored = self.files.get(request.match_info["media_sid"])
        if stored is None or stored.message_sid != request.match_info["message_sid"]:
            return _error(20404, path=request.path)
        token = wire.new_sid("CD")[2:]
        self.cdn[token] = stored.sid
        location = request.app.router["standin-twilio-cdn"].url_for(token=token)
        raise web.HTTPTemporaryRedirect(location=str(location))

    async def cdn_file(self, request: web.Request) -> web.Response:
        """The media bytes behind the redirect (no credentials, like Twilio's pre-signed CDN links)."""
        stored = self.files.get(self.cdn.get(request.match_info["token"], ""))
        if stored is None:
            raise web.HTTPNotFound()
        return web.Response(body=stored.data, content_type=stored.content_type)


def _basic_credentials(header: str) -> tuple[str, str] | None:
    """(login, password) of an HTTP Basic ``Authorization`` header, or None."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        login, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (login, password) if sep else None


def _error(code: int, **fill: str) -> web.Response:
    status, body = wire.error_body(code, **fill)
    return web.json_response(body, status=status)


STANDIN_KEY = web.AppKey("twilio_standin", TwilioStandin)


def create_twilio_standin(
    *,
    account_sid: str,
    auth_token: str,
    webhook_base_url: str,
    numbers: Iterable[str],
    dev_page: bool = True,
    api_base_url: str | None = None,
    status_delay: float = 0.5,
    time_scale: float = 1.0,
) -> web.Application:
    """The stand-in as an aiohttp application (its state at ``app[STANDIN_KEY]``).

    :param dev_page: also serve the ``/dev/phone`` page (and its JSON) inside this application.
    :param time_scale: real seconds per Twilio second in calls (a fraction in tests).
    """
    standin = TwilioStandin(account_sid=account_sid, auth_token=auth_token, webhook_base_url=webhook_base_url,
                            numbers=numbers, api_base_url=api_base_url, status_delay=status_delay, time_scale=time_scale)
    app = web.Application()
    app[STANDIN_KEY] = standin
    prefix = "/2010-04-01/Accounts/{account_sid}/Messages"
    app.router.add_post(prefix + ".json", standin.create_message)
    app.router.add_get(prefix + "/{message_sid}.json", standin.fetch_message)
    app.router.add_get(prefix + "/{message_sid}/Media/{media_sid}", standin.media)
    app.router.add_get("/cdn/{token}", standin.cdn_file, name="standin-twilio-cdn")
    add_voice_routes(app, standin, standin.voice)
    if dev_page:
        add_dev_phone_routes(app, standin)

    async def _close(_: web.Application) -> None:
        await standin.close()

    app.on_cleanup.append(_close)
    return app


def add_dev_phone_routes(app: web.Application, standin: web.Application | TwilioStandin) -> None:
    """Add ``/dev/phone`` (the page) and ``/dev/phone/api/...`` (its JSON) to ``app`` (the hub's, say).

    :param standin: the stand-in application (from :func:`create_twilio_standin`) or its state.
    """
    _add_dev_phone_routes(app, standin[STANDIN_KEY] if isinstance(standin, web.Application) else standin)
