"""The Twilio messaging adapter without a network: parsing Twilio's webhooks (the recorded fixtures and
malformed ones), opt-out keywords, status callbacks, media sniffing, the send rate, error words and the
outbound adapter. Also the fakes the integration tests share (a recording InboundPort, a media store).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import parse_qsl

import pytest
from multidict import MultiDict
from twilio.base.exceptions import TwilioRestException

from contact_center.ports import DeliveryReport, InboundEvent, InboundResult, OutboundMessage, StoredMedia
from integrations.twilio.config import TwilioConfig, parse_numbers
from integrations.twilio.errors import AGENT_WORDS, agent_words
from integrations.twilio.keywords import Keyword, keyword_of
from integrations.twilio.media import MediaRefused, checked_type, sniff
from integrations.twilio.messaging import (
    BadWebhook,
    MessagingAdapter,
    needs_receipt,
    on_channel,
    parse_inbound,
    parse_status,
    twiml,
)
from integrations.twilio.ratelimit import SendRateLimiter
from integrations.twilio.rest import accepted_report, refusal_report

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "twilio"
ACCOUNT_SID = "ACa1b2c3d4e5f60718293a4b5c6d7e8f90"  # the fixtures' account
TOKEN = "stand-in-auth-token"
SMS_NUMBER = "+15005550006"
WHATSAPP_NUMBER = "whatsapp:+14155238886"
CUSTOMER = "+14155550100"

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 40
PDF = b"%PDF-1.7\n" + b"0" * 40


def make_config(**changes: Any) -> TwilioConfig:
    """The configuration the tests use (the fixtures' account, the shop's SMS and WhatsApp numbers)."""
    values: dict[str, Any] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": TOKEN,
        "public_base_url": "https://hub.example.com",
        "numbers": parse_numbers(f"{SMS_NUMBER}=support,{WHATSAPP_NUMBER}=sales"),
    }
    values.update(changes)
    return TwilioConfig(**values)


def fixture_form(name: str) -> MultiDict[str]:
    """A recorded webhook body from tests/fixtures/twilio/ as a form."""
    text = (FIXTURES / name).read_text(encoding="utf-8").strip()
    return MultiDict(parse_qsl(text, keep_blank_values=True))


class Refused(Exception):
    """Like the hub's ``HubError("bad_request", ...)``."""

    code = "bad_request"


@dataclass
class FakeInbound:
    """An InboundPort that records what it is handed (a repeat provider id is ``created=False``)."""

    events: list[InboundEvent] = field(default_factory=list)
    updates: list[tuple[str, str, str, str | None, str | None]] = field(default_factory=list)
    opt_outs: list[tuple[str, str, bool]] = field(default_factory=list)
    fail: int = 0  # the next this many calls raise
    refuse: str | None = None  # the next call is refused with this reason

    def _maybe_fail(self) -> None:
        if self.refuse is not None:
            reason, self.refuse = self.refuse, None
            raise Refused(reason)
        if self.fail:
            self.fail -= 1
            raise RuntimeError("the core is down")

    async def receive_inbound(self, event: InboundEvent) -> InboundResult:
        self._maybe_fail()
        created = all(e.provider_id != event.provider_id for e in self.events)
        if created:
            self.events.append(event)
        return InboundResult(customer_id=1, conversation_id=1, message={"text": event.text}, created=created)

    async def delivery_update(
        self, channel: str, provider_id: str, status: str, error_code: str | None = None, error_message: str | None = None
    ) -> bool:
        self._maybe_fail()
        self.updates.append((channel, provider_id, status, error_code, error_message))
        return True

    async def opt_out(self, channel: str, customer_address: str, opted_out: bool) -> None:
        self._maybe_fail()
        self.opt_outs.append((channel, customer_address, opted_out))


class MemoryMedia:
    """A MediaStore in a dict (the same bytes give the same key)."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[StoredMedia, bytes]] = {}

    async def put(self, data: bytes, content_type: str, name: str = "") -> StoredMedia:
        key = hashlib.sha256(data).hexdigest()[:32]
        stored = StoredMedia(key=key, content_type=content_type, size=len(data), name=name)
        self.files[key] = (stored, data)
        return stored

    async def get(self, key: str) -> tuple[StoredMedia, bytes] | None:
        return self.files.get(key)


# --- inbound -------------------------------------------------------------------------------------


def test_a_recorded_sms_becomes_an_inbound_event() -> None:
    event, media = parse_inbound(fixture_form("inbound_sms.txt"), make_config())
    assert (event.channel, event.customer_address, event.our_address) == ("sms", CUSTOMER, SMS_NUMBER)
    assert event.provider_id == "SM5ab7891328b440f04b7c83b459fc85fd"
    assert event.text == "Hi, where is my order?" and event.queue == "support"
    assert event.display_name == "" and media == ()
    assert event.metadata["twilio"] == {"account_sid": ACCOUNT_SID, "num_segments": "1", "from_country": "US"}


def test_a_recorded_whatsapp_message_keeps_the_profile_name() -> None:
    event, media = parse_inbound(fixture_form("inbound_whatsapp.txt"), make_config())
    assert (event.channel, event.customer_address, event.our_address) == ("whatsapp", CUSTOMER, WHATSAPP_NUMBER)
    assert event.display_name == "Ana Silva" and event.queue == "sales"
    assert event.text == "Olá! Do you deliver on Sundays?"
    assert event.metadata["twilio"]["wa_id"] == "14155550100"  # type: ignore[index]


@pytest.mark.parametrize("name", ["inbound_whatsapp_media.txt", "inbound_mms.txt"])
def test_recorded_media_are_listed_to_fetch(name: str) -> None:
    event, media = parse_inbound(fixture_form(name), make_config())
    assert len(media) == 1 and media[0].position == 0 and media[0].content_type == "image/jpeg"
    assert media[0].url.startswith(f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM")
    assert event.provider_id and event.provider_id.startswith("MM")


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"MessageSid": None, "SmsMessageSid": None, "SmsSid": None}, "MessageSid is missing"),
        ({"MessageSid": "SM123"}, "MessageSid 'SM123' is not a Twilio SID"),
        ({"AccountSid": "AC" + "f" * 32}, "is not this hub's Twilio account"),
        ({"From": "+1555"}, "From '+1555' is not a phone number"),
        ({"From": "my phone"}, "From 'my phone' is not a phone number"),
        ({"To": "+12025550143"}, "To '+12025550143' is not one of this hub's numbers"),
        ({"To": "whatsapp:+15005550006"}, "not on the same channel"),
        ({"NumMedia": "two"}, "NumMedia 'two' is not a number"),
        ({"NumMedia": "11"}, "NumMedia '11' is not a number from 0 to 10"),
        ({"NumMedia": "²"}, "NumMedia '²' is not a number"),
        ({"NumMedia": "1"}, "MediaUrl0 is missing"),
    ],
)
def test_malformed_inbound_webhooks_say_why(changes: dict[str, str | None], reason: str) -> None:
    form = fixture_form("inbound_sms.txt")
    for name, value in changes.items():
        form.popall(name, None)
        if value is not None:
            form[name] = value
    with pytest.raises(BadWebhook) as caught:
        parse_inbound(form, make_config())
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    "body, keyword",
    [("STOP", Keyword.STOP), (" stop\n", Keyword.STOP), ("StopAll", Keyword.STOP), ("unsubscribe", Keyword.STOP),
     ("cancel", Keyword.STOP), ("END", Keyword.STOP), ("quit", Keyword.STOP),
     ("start", Keyword.START), ("YES", Keyword.START), ("unstop", Keyword.START),
     ("help", Keyword.HELP), ("Info", Keyword.HELP),
     ("stop it", None), ("please stop", None), ("yes please", None), ("", None), (None, None)],
)
def test_keywords_are_the_whole_message_in_any_case(body: str | None, keyword: Keyword | None) -> None:
    assert keyword_of(body) is keyword


def test_a_keyword_is_noted_on_the_event_and_the_text_kept() -> None:
    form = fixture_form("inbound_sms.txt")
    form["Body"] = "Stop"
    event, _ = parse_inbound(form, make_config())
    assert event.text == "Stop" and event.metadata["keyword"] == "stop"


@pytest.mark.parametrize(
    "name, body, receipt",
    [
        ("inbound_sms.txt", None, False),  # plain text: the core's idempotency on the MessageSid suffices
        ("inbound_whatsapp.txt", "help", False),  # HELP only changes the answer
        ("inbound_sms.txt", "STOP", True),  # an opt-out a late repeat must not redo
        ("inbound_sms.txt", "yes", True),
        ("inbound_mms.txt", None, True),  # media are fetched before the core sees the message
        ("inbound_whatsapp_media.txt", None, True),
    ],
)
def test_only_media_and_opt_outs_take_a_receipt(name: str, body: str | None, receipt: bool) -> None:
    form = fixture_form(name)
    if body is not None:
        form["Body"] = body
    parsed = parse_inbound(form, make_config())
    assert needs_receipt(parsed, keyword_of(parsed.event.text)) is receipt


def test_the_shop_s_number_is_found_as_twilio_writes_it_or_written_otherwise() -> None:
    config = make_config()
    assert config.number(SMS_NUMBER) is config.numbers[0]
    assert config.number("+1 (500) 555-0006") is config.numbers[0]
    assert config.number(WHATSAPP_NUMBER) is config.numbers[1]
    assert config.number("+15005550006".replace("6", "7")) is None and config.number("whatsapp:+15005550006") is None


def test_the_empty_answer_is_twilio_s_empty_twiml() -> None:
    from twilio.twiml.messaging_response import MessagingResponse  # type: ignore[import-untyped,unused-ignore]

    empty, again, help_ = twiml(), twiml(None), twiml("Reply STOP <to> stop")
    assert empty.body == again.body == str(MessagingResponse()).encode()
    assert empty.content_type == "text/xml" and empty.charset == "utf-8"
    assert help_.text == '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Reply STOP &lt;to&gt; stop</Message></Response>'


# --- status callbacks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, channel, status, code",
    [
        ("status_sms_sent.txt", "sms", "sent", None),
        ("status_sms_delivered.txt", "sms", "delivered", None),
        ("status_sms_undelivered.txt", "sms", "undelivered", "30003"),
        ("status_whatsapp_sent.txt", "whatsapp", "sent", None),
        ("status_whatsapp_read.txt", "whatsapp", "read", None),
        ("status_whatsapp_failed.txt", "whatsapp", "failed", "63016"),
    ],
)
def test_recorded_status_callbacks_parse(name: str, channel: str, status: str, code: str | None) -> None:
    update = parse_status(fixture_form(name), make_config())
    assert update is not None
    assert (update.channel, update.status, update.error_code) == (channel, status, code)
    assert update.message_sid == fixture_form(name)["MessageSid"]
    assert (update.error_message is None) == (code is None)
    if code:
        assert update.error_message == AGENT_WORDS[code]


def test_statuses_are_in_the_core_words_and_unknown_ones_ignored() -> None:
    form = fixture_form("status_sms_sent.txt")
    form["MessageStatus"] = "sending"
    assert parse_status(form, make_config()).status == "queued"  # type: ignore[union-attr]
    form["MessageStatus"] = "receiving"
    assert parse_status(form, make_config()) is None
    form["MessageStatus"] = ""
    form["SmsStatus"] = ""
    with pytest.raises(BadWebhook, match="MessageStatus is missing"):
        parse_status(form, make_config())
    form["MessageStatus"] = "failed"
    form["ErrorCode"] = "oops"
    with pytest.raises(BadWebhook, match="ErrorCode 'oops' is not a number"):
        parse_status(form, make_config())


def test_an_unknown_error_code_keeps_twilio_s_words() -> None:
    form = fixture_form("status_sms_sent.txt")
    form.update({"MessageStatus": "failed", "ErrorCode": "30999", "ErrorMessage": "Something odd"})
    update = parse_status(form, make_config())
    assert update is not None and update.error_message == "Twilio refused the message (Twilio error 30999): Something odd"


# --- errors in words -----------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["21610", "21211", "21614", "63016", "21408", "21612", "20003", "21602", "21617"])
def test_the_errors_agents_meet_have_words(code: str) -> None:
    assert agent_words(code) == AGENT_WORDS[code] and "Twilio error" not in AGENT_WORDS[code]


def test_refusals_of_the_api_become_failed_reports() -> None:
    exc = TwilioRestException(400, "https://api.twilio.com/x", "Unable to create record: The message From/To pair violates a blacklist rule.", code=21610)
    report = refusal_report(exc)
    assert report == DeliveryReport(status="failed", error_code="21610", error_message=AGENT_WORDS["21610"])
    unknown = refusal_report(TwilioRestException(400, "u", "Unable to create record: Odd thing", code=21999))
    assert unknown.error_message == "Twilio refused the message (Twilio error 21999): Odd thing"
    down = refusal_report(TwilioRestException(503, "u", "Unable to create record: Service Unavailable", code=20503))
    assert down.error_code == "20503" and "HTTP 503" in (down.error_message or "")


def test_an_accepted_message_is_queued_with_its_sid() -> None:
    class Created:
        sid = "SM" + "1" * 32
        status = "queued"

    assert accepted_report(Created()) == DeliveryReport(status="queued", provider_id="SM" + "1" * 32)


# --- media sniffing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, kind",
    [
        (JPEG, "image/jpeg"), (PNG, "image/png"), (b"GIF89a" + b"\x00" * 10, "image/gif"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"), (PDF, "application/pdf"),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00", "video/mp4"), (b"\x00\x00\x00\x18ftyp3gp4\x00\x00", "video/3gpp"),
        (b"\x00\x00\x00\x18ftypM4A \x00\x00", "audio/mp4"), (b"OggS\x00\x02" + b"\x00" * 10, "audio/ogg"),
        (b"#!AMR\n" + b"\x00" * 10, "audio/amr"), (b"ID3\x04\x00" + b"\x00" * 10, "audio/mpeg"),
        (b"MZ\x90\x00" + b"\x00" * 10, None), (b"<html><script>", None), (b"", None),
    ],
)
def test_types_are_read_from_the_bytes(data: bytes, kind: str | None) -> None:
    assert sniff(data) == kind


def test_declared_types_must_agree_with_the_bytes() -> None:
    assert checked_type(JPEG, ["image/jpeg", "image/jpg; charset=binary", None, "application/octet-stream"]) == "image/jpeg"
    assert checked_type(b"OggS" + b"\x00" * 20, ["audio/ogg; codecs=opus"]) == "audio/ogg"
    with pytest.raises(MediaRefused, match="says it is image/jpeg but its bytes are application/pdf"):
        checked_type(PDF, ["image/jpeg"])
    with pytest.raises(MediaRefused, match="not of a type the hub keeps"):
        checked_type(b"MZ\x90\x00executable", ["image/jpeg"])
    with pytest.raises(MediaRefused, match="not of a type the hub keeps \\(image/png\\)"):
        checked_type(PNG, [], allowed=frozenset({"image/jpeg"}))
    with pytest.raises(MediaRefused, match="empty"):
        checked_type(b"")


# --- the send rate -------------------------------------------------------------------------------


async def test_the_token_bucket_spaces_each_sender_on_its_own() -> None:
    now = [0.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(round(seconds, 6))
        now[0] += seconds

    limiter = SendRateLimiter(2.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        await limiter.acquire("+15005550006")
    assert waits == [0.5, 0.5]
    await limiter.acquire("whatsapp:+14155238886")  # another sender has its own bucket
    assert waits == [0.5, 0.5]
    now[0] += 10
    await limiter.acquire("+15005550006")  # a quiet spell refills, up to the burst
    assert waits == [0.5, 0.5]
    with pytest.raises(ValueError):
        SendRateLimiter(0)


# --- out -----------------------------------------------------------------------------------------


class RecordingClient:
    """Stands in for TwilioRestClient.send_message."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send_message(self, *, from_: str, to: str, body: str, media_urls: Sequence[str] = ()) -> DeliveryReport:
        self.sent.append({"from_": from_, "to": to, "body": body, "media_urls": tuple(media_urls)})
        return DeliveryReport(status="queued", provider_id="SM" + "2" * 32)


def outbound(channel: str, to: str, from_: str = "", media: tuple[str, ...] = ()) -> OutboundMessage:
    return OutboundMessage(conversation_id=1, seq=2, channel=channel, to_address=to, from_address=from_, text="Hello", media=media)


async def test_the_adapter_writes_addresses_for_the_channel() -> None:
    client = RecordingClient()
    adapter = MessagingAdapter(make_config(), client)  # type: ignore[arg-type]
    report = await adapter.deliver(outbound("whatsapp", CUSTOMER, "+14155238886", ("https://hub.example.com/media/k?sig=1",)))
    assert report.provider_id == "SM" + "2" * 32
    assert client.sent[-1] == {"from_": WHATSAPP_NUMBER, "to": "whatsapp:" + CUSTOMER, "body": "Hello",
                               "media_urls": ("https://hub.example.com/media/k?sig=1",)}
    await adapter.deliver(outbound("sms", "whatsapp:" + CUSTOMER))  # no From: the channel's first number
    assert client.sent[-1]["from_"] == SMS_NUMBER and client.sent[-1]["to"] == CUSTOMER


async def test_the_adapter_refuses_what_it_cannot_send() -> None:
    client = RecordingClient()
    only_sms = make_config(numbers=parse_numbers(SMS_NUMBER))
    report = await MessagingAdapter(only_sms, client).deliver(outbound("whatsapp", CUSTOMER))  # type: ignore[arg-type]
    assert report.status == "failed" and "No Twilio number is set up for whatsapp" in (report.error_message or "")
    report = await MessagingAdapter(only_sms, client).deliver(outbound("email", "a@b.example"))  # type: ignore[arg-type]
    assert report.status == "failed" and client.sent == []


def test_on_channel() -> None:
    assert on_channel("whatsapp", "+1") == "whatsapp:+1" == on_channel("whatsapp", "WhatsApp:+1")
    assert on_channel("sms", "whatsapp:+1") == "+1" == on_channel("sms", "tel:+1")
