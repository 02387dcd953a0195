"""SMS and WhatsApp through Twilio: the two webhooks in, the core's replies out.

In: ``POST /webhooks/twilio/messaging`` (Twilio's "A message comes in") and
``POST /webhooks/twilio/messaging/status`` (the ``StatusCallback`` of what the hub sends). Each one
is read with a size limit, its ``X-Twilio-Signature`` checked (403 and nothing written if it is
missing or wrong), parsed (400 with the reason if it is malformed, never a 500), then handed to the
core through :class:`~contact_center.ports.InboundPort`. Out: :class:`MessagingAdapter` sends what
the core asks through :class:`~integrations.twilio.rest.TwilioRestClient`.

Repeats. The core stores a ``MessageSid`` once (``messages.provider_id`` is unique; a repeat comes
back ``created=False`` and sends nothing), so a plain inbound message needs no receipt of its own:
it costs the hub no write transaction besides the core's. A receipt (``WebhookReceipts``, kind
``message``) is still taken for what the core's idempotency does not cover: a message with media
(a repeat would download and store the files again before the core sees it) and STOP/START (a late
repeat of a STOP, after a START, must not opt the customer out again). Status callbacks always take
one (kind ``status``): the core needs their payload for callbacks that arrive before the send's answer.

When the core fails, the webhook answers 500 and its receipt, if it took one, is forgotten: a retry
by Twilio (see docs/subsystems/sms-whatsapp.md for when Twilio retries) is handled from the start,
and since the core stores a MessageSid only once, handling it again cannot make a second message.
When the core refuses the event (``bad_request``), the answer is 400 with its reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import re
from typing import Mapping, NamedTuple
from urllib.parse import parse_qsl

from aiohttp import web
from multidict import MultiDict
from twilio.twiml.messaging_response import MessagingResponse  # type: ignore[import-untyped,unused-ignore]

from contact_center.domain.channels import DeliveryStatus, delivery_status
from contact_center.ports import (
    DeliveryReport,
    InboundAttachment,
    InboundEvent,
    InboundPort,
    MediaStore,
    OutboundMessage,
)
from crm_store.domain.identity import InvalidAddress, normalize_phone
from integrations.twilio.config import INBOUND_PATH, STATUS_PATH, WHATSAPP_PREFIX, TwilioConfig, channel_for
from integrations.twilio.errors import agent_words
from integrations.twilio.keywords import Keyword, keyword_of
from integrations.twilio.media import MediaRefused, extension_for
from integrations.twilio.ports import WebhookReceipts
from integrations.twilio.rest import TwilioRestClient
from integrations.twilio.signature import SIGNATURE_HEADER, is_valid_signature

log = logging.getLogger(__name__)

PROVIDER = "twilio"
MESSAGE_KIND = "message"  # receipts of inbound messages, keyed by MessageSid
STATUS_KIND = "status"  # receipts of status callbacks, keyed by "MessageSid:MessageStatus"
CHANNELS = ("sms", "whatsapp")
MAX_FORM_BYTES = 64 * 1024
MAX_MEDIA = 10  # Twilio's own limit for one message
DEFAULT_HELP_TEXT = (
    "You are writing to our customer service: send your question and we will answer here. "
    "Reply STOP to unsubscribe, START to subscribe again."
)
MEDIA_LOST_TEXT = "[The customer sent an attachment that the hub could not receive.]"
_SID = re.compile(r"[A-Za-z]{2}[0-9a-fA-F]{32}")
_ERROR_CODE = re.compile(r"[0-9]{1,6}")
_NUMBER = re.compile(r"[0-9]{1,3}")


class BadWebhook(ValueError):
    """A webhook that is not what Twilio sends; answered with HTTP 400 and the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MediaRef(NamedTuple):
    """One attachment of an inbound message, still at Twilio."""

    position: int  # N of MediaUrl{N}
    url: str
    content_type: str


class ParsedInbound(NamedTuple):
    """An inbound webhook in the core's words, and the attachments still to fetch."""

    event: InboundEvent
    media: tuple[MediaRef, ...]


@dataclasses.dataclass(frozen=True)
class StatusUpdate:
    """A status callback: a message the hub sent moved on (``status`` in the core's words)."""

    channel: str
    message_sid: str
    status: str
    raw_status: str
    error_code: str | None = None
    error_message: str | None = None


# --- parsing ------------------------------------------------------------------------------------


def _field(form: Mapping[str, str], name: str) -> str:
    return (form.get(name) or "").strip()


def _message_sid(form: Mapping[str, str]) -> str:
    sid = _field(form, "MessageSid") or _field(form, "SmsMessageSid") or _field(form, "SmsSid")
    if not sid:
        raise BadWebhook("MessageSid is missing")
    if not _SID.fullmatch(sid):
        raise BadWebhook(f"MessageSid {sid[:40]!r} is not a Twilio SID")
    return sid


def _check_account(form: Mapping[str, str], config: TwilioConfig) -> None:
    account = _field(form, "AccountSid")
    if account != config.account_sid:
        raise BadWebhook(f"AccountSid {account[:40]!r} is not this hub's Twilio account")


@functools.lru_cache(maxsize=8192)
def _normalized(raw: str, region: str) -> str:
    """``normalize_phone``, remembered: customers text again and again from the same number (a failure is not kept)."""
    return normalize_phone(raw, region)


def _customer_number(raw: str, config: TwilioConfig) -> str:
    try:
        return _normalized(raw, config.default_region)
    except InvalidAddress as exc:
        raise BadWebhook(f"From {raw[:40]!r} is not a phone number ({exc.reason})") from None


def _num_media(form: Mapping[str, str]) -> int:
    raw = _field(form, "NumMedia") or "0"
    if not _NUMBER.fullmatch(raw) or int(raw) > MAX_MEDIA:
        raise BadWebhook(f"NumMedia {raw[:10]!r} is not a number from 0 to {MAX_MEDIA}")
    return int(raw)


def _media_refs(form: Mapping[str, str]) -> tuple[MediaRef, ...]:
    refs = []
    for index in range(_num_media(form)):
        url = _field(form, f"MediaUrl{index}")
        if not url.startswith(("https://", "http://")):
            raise BadWebhook(f"MediaUrl{index} is missing or not a URL")
        refs.append(MediaRef(index, url, _field(form, f"MediaContentType{index}")))
    return tuple(refs)


def _twilio_metadata(form: Mapping[str, str]) -> dict[str, object]:
    names = {"AccountSid": "account_sid", "NumSegments": "num_segments", "WaId": "wa_id",
             "FromCountry": "from_country", "MessagingServiceSid": "messaging_service_sid"}
    return {key: _field(form, name) for name, key in names.items() if _field(form, name)}


def parse_inbound(form: Mapping[str, str], config: TwilioConfig) -> ParsedInbound:
    """Twilio's inbound message webhook as an :class:`InboundEvent` and its media (raises BadWebhook)."""
    sid = _message_sid(form)
    _check_account(form, config)
    sender, recipient = _field(form, "From"), _field(form, "To")
    channel = channel_for(sender)
    if channel_for(recipient) != channel:
        raise BadWebhook("From and To are not on the same channel (one is whatsapp:, the other not)")
    ours = config.number(recipient)
    if ours is None:
        raise BadWebhook(f"To {recipient[:40]!r} is not one of this hub's numbers (TWILIO_NUMBERS)")
    body = form.get("Body") or ""
    metadata: dict[str, object] = {"twilio": _twilio_metadata(form)}
    keyword = keyword_of(body)
    if keyword is not None:
        metadata["keyword"] = keyword.value
    event = InboundEvent(
        channel=channel,
        customer_address=_customer_number(sender, config),
        text=body,
        our_address=ours.address,
        provider_id=sid,
        display_name=_field(form, "ProfileName"),
        queue=ours.queue,
        metadata=metadata,
    )
    return ParsedInbound(event, _media_refs(form))


def _status_channel(form: Mapping[str, str]) -> str:
    if _field(form, "ChannelPrefix").lower() == "whatsapp":
        return "whatsapp"
    return channel_for(_field(form, "From") or _field(form, "To"))


def parse_status(form: Mapping[str, str], config: TwilioConfig) -> StatusUpdate | None:
    """A status callback in the core's words; None for a status the core does not track (raises BadWebhook)."""
    sid = _message_sid(form)
    _check_account(form, config)
    raw_status = _field(form, "MessageStatus") or _field(form, "SmsStatus")
    if not raw_status:
        raise BadWebhook("MessageStatus is missing")
    status = delivery_status(raw_status)
    if status is None:
        return None
    code = _field(form, "ErrorCode") or None
    if code is not None and not _ERROR_CODE.fullmatch(code):
        raise BadWebhook(f"ErrorCode {code[:10]!r} is not a number")
    detail = _field(form, "ErrorMessage") or _field(form, "ChannelStatusMessage") or None
    words = agent_words(code, detail) if code else None
    return StatusUpdate(_status_channel(form), sid, status.value, raw_status.lower(), code, words)


_OPT_OUT_KEYWORDS = (Keyword.STOP, Keyword.START)


def needs_receipt(parsed: ParsedInbound, keyword: Keyword | None) -> bool:
    """Whether an inbound message takes a receipt before the core sees it (see the module docstring).

    A plain message does not: the core's idempotency on the MessageSid makes a repeat one message.
    Media (downloaded before the core is called) and STOP/START (an opt-out a late repeat must not
    redo) do.
    """
    return bool(parsed.media) or keyword in _OPT_OUT_KEYWORDS


def refusal_reason(exc: BaseException) -> str | None:
    """The reason of a refusal by the core (its ``HubError("bad_request", ...)``), or None for a failure.

    Matched by its ``code`` attribute: adapters may not import the hub's service module.
    """
    return str(exc) if getattr(exc, "code", None) == "bad_request" else None


# --- out: the channel adapter -------------------------------------------------------------------


def on_channel(channel: str, address: str) -> str:
    """``address`` written the way Twilio wants it on ``channel`` (``whatsapp:+1...`` or ``+1...``)."""
    bare = address.strip()
    for scheme in (WHATSAPP_PREFIX, "sms:", "tel:"):
        if bare.lower().startswith(scheme):
            bare = bare[len(scheme):].strip()
    return WHATSAPP_PREFIX + bare if channel == "whatsapp" else bare


class MessagingAdapter:
    """The SMS and WhatsApp channels' outbound face (:class:`contact_center.ports.ChannelAdapter`)."""

    def __init__(self, config: TwilioConfig, client: TwilioRestClient) -> None:
        self.config = config
        self.client = client

    def _sender(self, message: OutboundMessage) -> str | None:
        named = self.config.number(on_channel(message.channel, message.from_address)) if message.from_address else None
        number = named or self.config.sender_for(message.channel)
        return number.address if number else None

    async def deliver(self, message: OutboundMessage) -> DeliveryReport:
        """Send one message through Twilio (``MediaUrl`` for its files); refusals are ``failed`` reports."""
        if message.channel not in CHANNELS:
            return _failed(f"Twilio messaging cannot carry a {message.channel!r} message.")
        sender = self._sender(message)
        if sender is None:
            return _failed(f"No Twilio number is set up for {message.channel} (TWILIO_NUMBERS).")
        return await self.client.send_message(
            from_=sender,
            to=on_channel(message.channel, message.to_address),
            body=message.text,
            media_urls=message.media,
        )


def _failed(words: str) -> DeliveryReport:
    return DeliveryReport(status=DeliveryStatus.FAILED.value, error_message=words)


# --- in: the webhooks ---------------------------------------------------------------------------


_EMPTY_TWIML = str(MessagingResponse()).encode()  # built once: every plain message is answered with it


def twiml(reply: str | None = None) -> web.Response:
    """A TwiML answer: empty, or one ``<Message>`` back to the customer."""
    if not reply:
        return web.Response(body=_EMPTY_TWIML, content_type="text/xml", charset="utf-8")
    response = MessagingResponse()
    response.message(reply)
    return web.Response(text=str(response), content_type="text/xml")


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    body = bytearray()
    while chunk := await request.content.read(limit + 1 - len(body)):
        body += chunk
        if len(body) > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    return bytes(body)


async def read_form(request: web.Request, limit: int = MAX_FORM_BYTES) -> MultiDict[str]:
    """The webhook's form, at most ``limit`` bytes of it (raises BadWebhook or 413)."""
    if request.content_type != "application/x-www-form-urlencoded":
        raise BadWebhook("the body is not a form (application/x-www-form-urlencoded)")
    raw = await _read_body(request, limit)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadWebhook("the form is not UTF-8") from None
    return MultiDict(parse_qsl(text, keep_blank_values=True))


class _Webhooks:
    """The two webhook handlers and what they need."""

    def __init__(
        self,
        config: TwilioConfig,
        inbound: InboundPort,
        media: MediaStore,
        receipts: WebhookReceipts,
        client: TwilioRestClient,
        help_text: str | None,
        max_form_bytes: int,
    ) -> None:
        self.config = config
        self.inbound = inbound
        self.media = media
        self.receipts = receipts
        self.client = client
        self.help_text = help_text
        self.max_form_bytes = max_form_bytes

    async def _verified_form(self, request: web.Request) -> MultiDict[str]:
        """The form, once its signature is Twilio's (raises 403, 413 or BadWebhook)."""
        form = await read_form(request, self.max_form_bytes)
        signature = request.headers.get(SIGNATURE_HEADER)
        if not is_valid_signature(self.config.auth_token, self.config.public_base_url, request.raw_path, form, signature):
            log.warning("twilio webhook refused: bad signature", extra={"path": request.path, "signed": bool(signature)})
            raise web.HTTPForbidden(text="missing or invalid X-Twilio-Signature")
        return form

    async def message(self, request: web.Request) -> web.Response:
        """``POST /webhooks/twilio/messaging``: a customer's SMS or WhatsApp message."""
        try:
            form = await self._verified_form(request)
            parsed = parse_inbound(form, self.config)
        except BadWebhook as exc:
            return web.Response(status=400, text=exc.reason)
        sid = parsed.event.provider_id or ""
        keyword = keyword_of(parsed.event.text)
        receipt = needs_receipt(parsed, keyword)
        if receipt and not await self.receipts.first_time(PROVIDER, MESSAGE_KIND, sid, dict(form)):
            return twiml()
        try:
            await self._store(parsed, keyword)
        except Exception as exc:
            return await self._failed(MESSAGE_KIND, sid, exc, forget=receipt)
        return twiml(self.help_text if keyword is Keyword.HELP else None)

    async def _failed(self, kind: str, key: str, exc: Exception, *, forget: bool = True) -> web.Response:
        """The core did not take a webhook: forget its receipt; 400 if the core refused it, else 500."""
        if forget:
            await self.receipts.forget(PROVIDER, kind, key)
        reason = refusal_reason(exc)
        if reason is not None:
            log.warning("twilio webhook refused by the core", extra={"kind": kind, "key": key, "reason": reason})
            return web.Response(status=400, text=reason)
        log.error("twilio webhook not handled", extra={"kind": kind, "key": key}, exc_info=exc)
        return web.Response(status=500, text=f"the hub could not handle the {kind}")

    async def _store(self, parsed: ParsedInbound, keyword: Keyword | None) -> None:
        """Fetch the media (if any), store the message, record an opt-out."""
        event = await self._with_media(parsed) if parsed.media else parsed.event
        await self.inbound.receive_inbound(event)
        if keyword in _OPT_OUT_KEYWORDS:
            await self.inbound.opt_out(event.channel, event.customer_address, keyword is Keyword.STOP)

    async def _with_media(self, parsed: ParsedInbound) -> InboundEvent:
        """The event with its attachments kept in the hub; a file that fails is noted, the message kept."""
        results = await asyncio.gather(*(self._keep(parsed.event.provider_id or "", ref) for ref in parsed.media))
        attachments = tuple(r for r in results if isinstance(r, InboundAttachment))
        failures = [r for r in results if isinstance(r, dict)]
        metadata = dict(parsed.event.metadata)
        text = parsed.event.text
        if failures:
            metadata["media_failures"] = failures
            if not text.strip() and not attachments:
                text = MEDIA_LOST_TEXT  # an empty message would say nothing of what was sent
        return dataclasses.replace(parsed.event, text=text, attachments=attachments, metadata=metadata)

    async def _keep(self, sid: str, ref: MediaRef) -> InboundAttachment | dict[str, object]:
        """One attachment downloaded and stored, or what went wrong with it."""
        try:
            data, content_type = await self.client.download_media(ref.url, ref.content_type)
            name = f"{sid}-{ref.position}.{extension_for(content_type)}"
            stored = await self.media.put(data, content_type, name)
        except MediaRefused as exc:
            reason = exc.reason
        except Exception as exc:  # a full disk must not lose the customer's words
            log.exception("twilio media not stored", extra={"message_sid": sid, "index": ref.position})
            reason = f"the hub could not store it ({type(exc).__name__})"
        else:
            return InboundAttachment(content_type=stored.content_type, size=stored.size, url=f"/media/{stored.key}", name=name)
        log.warning("twilio media refused", extra={"message_sid": sid, "index": ref.position, "reason": reason})
        return {"index": ref.position, "declared_type": ref.content_type, "reason": reason}

    async def status(self, request: web.Request) -> web.Response:
        """``POST /webhooks/twilio/messaging/status``: a message the hub sent moved on."""
        try:
            form = await self._verified_form(request)
            update = parse_status(form, self.config)
        except BadWebhook as exc:
            return web.Response(status=400, text=exc.reason)
        if update is None:
            return web.Response(status=200)
        key = f"{update.message_sid}:{update.raw_status}"
        payload = {**form, "ErrorWords": update.error_message} if update.error_message else dict(form)
        if not await self.receipts.first_time(PROVIDER, STATUS_KIND, key, payload):
            return web.Response(status=200)
        try:
            await self.inbound.delivery_update(
                update.channel, update.message_sid, update.status, update.error_code, update.error_message
            )
        except Exception as exc:
            return await self._failed(STATUS_KIND, key, exc)
        return web.Response(status=200)


def add_messaging_routes(
    app: web.Application,
    *,
    config: TwilioConfig,
    inbound: InboundPort,
    media: MediaStore,
    receipts: WebhookReceipts,
    client: TwilioRestClient | None = None,
    help_text: str | None = DEFAULT_HELP_TEXT,
    max_form_bytes: int = MAX_FORM_BYTES,
) -> None:
    """Add ``POST /webhooks/twilio/messaging`` and ``POST /webhooks/twilio/messaging/status`` to ``app``.

    :param client: the REST client for media downloads (share the :class:`MessagingAdapter`'s);
        without one a client is made here and closed with the app.
    :param help_text: the answer to HELP/INFO (None: no answer, e.g. when Twilio's Advanced
        Opt-Out already answers it).
    """
    if client is None:
        own = client = TwilioRestClient(config)

        async def _close(_: web.Application) -> None:
            await own.close()

        app.on_cleanup.append(_close)
    hooks = _Webhooks(config, inbound, media, receipts, client, help_text, max_form_bytes)
    app.router.add_post(INBOUND_PATH, hooks.message)
    app.router.add_post(STATUS_PATH, hooks.status)
