"""The Twilio stand-in on a real local port, with the hub's REST client and webhooks talking to it.

What is pinned down: a send gets a SID and Twilio-signed status callbacks that the hub's verifier
accepts; Twilio's refusals (21610 after STOP, 21211, 401/20003, 63016 outside the WhatsApp window);
retries on 503 and 429; the per-number send rate; media downloads (credentials, redirect, size and
type checks); the stand-in's payloads have exactly the field sets of the recorded fixtures; and the
``/dev/phone`` page's endpoints.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass, replace
from typing import Any, AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port

from contact_center.ports import OutboundMessage
from integrations.standins.twilio import STANDIN_KEY, TwilioStandin, add_dev_phone_routes, create_twilio_standin
from integrations.twilio.config import TwilioConfig
from integrations.twilio.errors import AGENT_WORDS
from integrations.twilio.media import MediaRefused
from integrations.twilio.messaging import DEFAULT_HELP_TEXT, MessagingAdapter, add_messaging_routes
from integrations.twilio.receipts import MemoryWebhookReceipts
from integrations.twilio.rest import TwilioRestClient, basic_authorization
from integrations.twilio.signature import is_valid_signature
from tests.unit.test_twilio_messaging import (
    ACCOUNT_SID,
    CUSTOMER,
    FIXTURES,
    JPEG,
    PDF,
    PNG,
    SMS_NUMBER,
    TOKEN,
    WHATSAPP_NUMBER,
    FakeInbound,
    MemoryMedia,
    fixture_form,
    make_config,
)

WA_CUSTOMER = "+12025550143"


@dataclass
class Rig:
    """The stand-in and a hub (its Twilio webhooks only) on two local ports, wired to each other."""

    standin: TwilioStandin
    config: TwilioConfig
    client: TwilioRestClient
    inbound: FakeInbound
    media: MemoryMedia
    hub_url: str
    standin_url: str

    async def send(self, to: str = CUSTOMER, body: str = "Your order has shipped", from_: str = SMS_NUMBER, **kw: Any) -> Any:
        return await self.client.send_message(from_=from_, to=to, body=body, **kw)


def hub_app(inbound: FakeInbound, media: MemoryMedia, config: TwilioConfig, client: TwilioRestClient) -> web.Application:
    """The hub's Twilio webhooks, and its ``/media/<key>`` for the outbound MediaUrls."""
    app = web.Application()
    add_messaging_routes(app, config=config, inbound=inbound, media=media, receipts=MemoryWebhookReceipts(), client=client)

    async def hub_media(request: web.Request) -> web.Response:
        found = await media.get(request.match_info["key"])
        if found is None:
            raise web.HTTPNotFound()
        return web.Response(body=found[1], content_type=found[0].content_type)

    app.router.add_get("/media/{key}", hub_media)
    return app


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    standin_app = create_twilio_standin(account_sid=ACCOUNT_SID, auth_token=TOKEN, webhook_base_url="http://127.0.0.1:9",
                                        numbers=[SMS_NUMBER, WHATSAPP_NUMBER], status_delay=0.01)
    standin_server = TestServer(standin_app)
    await standin_server.start_server()
    standin_url = str(standin_server.make_url("")).rstrip("/")
    hub_port = unused_port()
    hub_url = f"http://127.0.0.1:{hub_port}"
    config = make_config(public_base_url=hub_url, api_base_url=standin_url, send_rate=1000.0)
    standin = standin_app[STANDIN_KEY]
    standin.webhook_base_url, standin.api_base_url = hub_url, standin_url
    client = TwilioRestClient(config, backoff=0.01)
    inbound, media = FakeInbound(), MemoryMedia()
    hub = hub_app(inbound, media, config, client)
    add_dev_phone_routes(hub, standin_app)
    hub_server = TestServer(hub, port=hub_port)
    await hub_server.start_server()
    yield Rig(standin, config, client, inbound, media, hub_url, standin_url)
    await client.close()
    await hub_server.close()
    await standin_server.close()


# --- sending -------------------------------------------------------------------------------------


async def test_a_send_gets_a_sid_and_signed_status_callbacks(rig: Rig) -> None:
    report = await rig.send()
    assert report.status == "queued" and report.provider_id and report.provider_id.startswith("SM")
    assert len(report.provider_id) == 34
    await rig.standin.drain()
    callbacks = [c for c in rig.standin.callbacks if c.url == rig.config.status_callback_url]
    assert [c.form["MessageStatus"] for c in callbacks] == ["sent", "delivered"]  # no callback for "queued"
    for callback in callbacks:
        assert callback.hub_status == 200
        assert is_valid_signature(TOKEN, rig.config.public_base_url, "/webhooks/twilio/messaging/status", callback.form, callback.signature)
    assert rig.inbound.updates == [("sms", report.provider_id, "sent", None, None), ("sms", report.provider_id, "delivered", None, None)]
    (request,) = rig.standin.create_requests
    assert request["StatusCallback"] == [rig.config.status_callback_url] and request["From"] == [SMS_NUMBER]


async def test_the_message_can_be_fetched_with_its_status(rig: Rig) -> None:
    report = await rig.send()
    await rig.standin.drain()
    auth = {"Authorization": basic_authorization(ACCOUNT_SID, TOKEN)}
    async with aiohttp.ClientSession() as http:
        url = f"{rig.standin_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{report.provider_id}.json"
        async with http.get(url, headers=auth) as resp:
            assert resp.status == 200
            data = await resp.json()
        async with http.get(url.replace(report.provider_id, "SM" + "0" * 32), headers=auth) as missing:
            assert missing.status == 404 and (await missing.json())["code"] == 20404
    assert data["status"] == "delivered" and data["sid"] == report.provider_id and data["date_sent"]


async def test_stop_makes_twilio_refuse_with_21610_until_start(rig: Rig) -> None:
    outcome = await rig.standin.send_inbound(CUSTOMER, SMS_NUMBER, "STOP")
    assert outcome.hub_status == 200
    assert rig.inbound.opt_outs == [("sms", CUSTOMER, True)]
    assert [e.text for e in rig.inbound.events] == ["STOP"]  # the agent still sees it
    report = await rig.send()
    assert (report.status, report.error_code, report.error_message) == ("failed", "21610", AGENT_WORDS["21610"])
    await rig.standin.send_inbound(CUSTOMER, SMS_NUMBER, "start")
    assert rig.inbound.opt_outs[-1] == ("sms", CUSTOMER, False)
    assert (await rig.send()).status == "queued"


@pytest.mark.parametrize(
    "to, code",
    [("+1555", "21211"), ("+15005550001", "21211"), ("+15005550002", "21612"), ("+15005550003", "21408"),
     ("+15005550004", "21610"), ("+15005550009", "21614")],
)
async def test_refused_numbers_get_twilio_s_codes(rig: Rig, to: str, code: str) -> None:
    report = await rig.send(to=to)
    assert (report.status, report.error_code, report.error_message) == ("failed", code, AGENT_WORDS[code])


async def test_other_refusals(rig: Rig) -> None:
    assert (await rig.send(body="")).error_code == "21602"
    assert (await rig.send(body="x" * 1601)).error_code == "21617"
    assert (await rig.send(from_="+12025550143")).error_code == "21606"
    assert (await rig.send(from_="whatsapp:+12025550143", to="whatsapp:" + CUSTOMER)).error_code == "63007"
    assert (await rig.send(to="whatsapp:" + CUSTOMER)).error_code == "21910"


async def test_wrong_credentials_are_401_with_twilio_s_body(rig: Rig) -> None:
    wrong = TwilioRestClient(replace(rig.config, auth_token="wrong"))
    try:
        report = await wrong.send_message(from_=SMS_NUMBER, to=CUSTOMER, body="hi")
    finally:
        await wrong.close()
    assert (report.status, report.error_code, report.error_message) == ("failed", "20003", AGENT_WORDS["20003"])
    async with aiohttp.ClientSession() as http:
        url = f"{rig.standin_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
        async with http.post(url, data={"To": CUSTOMER}, headers={"Authorization": basic_authorization(ACCOUNT_SID, "wrong")}) as resp:
            assert resp.status == 401
            assert await resp.json() == json.loads((FIXTURES / "error_20003.json").read_text())


async def test_503_and_429_are_retried_then_it_goes(rig: Rig) -> None:
    rig.standin.fail_next(503, times=2)
    rig.standin.fail_next(429)
    report = await rig.send()
    assert report.status == "queued" and len(rig.standin.create_requests) == 4


async def test_retries_are_bounded(rig: Rig) -> None:
    rig.standin.fail_next(503, times=10)
    report = await rig.send()
    assert report.status == "failed" and report.error_code == "20503" and "HTTP 503" in (report.error_message or "")
    assert len(rig.standin.create_requests) == 4


async def test_an_unreachable_twilio_is_a_failed_report(rig: Rig) -> None:
    nowhere = TwilioRestClient(replace(rig.config, api_base_url=f"http://127.0.0.1:{unused_port()}"), tries=2, backoff=0.01)
    try:
        report = await nowhere.send_message(from_=SMS_NUMBER, to=CUSTOMER, body="hi")
    finally:
        await nowhere.close()
    assert report.status == "failed" and "could not reach Twilio" in (report.error_message or "")


async def test_the_per_number_rate_spaces_sends(rig: Rig) -> None:
    slow = TwilioRestClient(replace(rig.config, send_rate=10.0))
    try:
        started = time.monotonic()
        reports = await asyncio.gather(*(slow.send_message(from_=SMS_NUMBER, to=CUSTOMER, body=f"n{i}") for i in range(3)))
        elapsed = time.monotonic() - started
    finally:
        await slow.close()
    assert all(r.status == "queued" for r in reports)
    assert elapsed >= 0.19  # three sends at 10 a second: two gaps of 0.1 s
    assert [r["Body"] for r in rig.standin.create_requests] == [["n0"], ["n1"], ["n2"]]


async def test_the_adapter_sends_whatsapp_with_media_inside_the_window(rig: Rig) -> None:
    stored = await rig.media.put(PNG, "image/png", "label.png")
    await rig.standin.send_inbound(WA_CUSTOMER, WHATSAPP_NUMBER, "hi", profile_name="Ben")
    adapter = MessagingAdapter(rig.config, rig.client)
    message = OutboundMessage(conversation_id=1, seq=3, channel="whatsapp", to_address=WA_CUSTOMER,
                              from_address=WHATSAPP_NUMBER, text="Here it is", media=(f"{rig.hub_url}/media/{stored.key}",))
    report = await adapter.deliver(message)
    assert report.status == "queued" and report.provider_id and report.provider_id.startswith("MM")
    assert rig.standin.create_requests[-1]["MediaUrl"] == [f"{rig.hub_url}/media/{stored.key}"]
    assert rig.standin.create_requests[-1]["To"] == ["whatsapp:" + WA_CUSTOMER]
    await rig.standin.drain()
    assert rig.standin.mark_read(report.provider_id)
    await rig.standin.drain()
    statuses = [u[2] for u in rig.inbound.updates if u[1] == report.provider_id]
    assert statuses == ["sent", "delivered", "read"]
    (entry,) = [e for e in rig.standin.conversation("whatsapp:" + WA_CUSTOMER) if e.direction == "out"]
    assert entry.media and rig.standin.files[entry.media[0]["sid"]].data == PNG


async def test_whatsapp_outside_the_24_hour_window_fails_with_63016(rig: Rig) -> None:
    report = await rig.send(from_=WHATSAPP_NUMBER, to="whatsapp:+12025550199", body="Are you still there?")
    assert report.status == "queued"  # Twilio takes it, then fails it
    await rig.standin.drain()
    assert rig.inbound.updates == [("whatsapp", report.provider_id, "failed", "63016", AGENT_WORDS["63016"])]
    rig.standin.last_whatsapp["+12025550143"] = time.time() - 25 * 3600  # wrote yesterday, too long ago
    report = await rig.send(from_=WHATSAPP_NUMBER, to="whatsapp:+12025550143", body="hello")
    await rig.standin.drain()
    assert rig.inbound.updates[-1][2:4] == ("failed", "63016")


async def test_an_undeliverable_number_ends_undelivered(rig: Rig) -> None:
    rig.standin.fail_delivery(CUSTOMER, "30003")
    report = await rig.send()
    await rig.standin.drain()
    assert [u[2:4] for u in rig.inbound.updates] == [("sent", None), ("undelivered", "30003")]
    assert rig.standin.outbound[report.provider_id or ""].resource["error_code"] == 30003


async def test_an_unfetchable_media_url_fails_the_message(rig: Rig) -> None:
    report = await rig.send(media_urls=[f"{rig.hub_url}/media/nothing-here"])
    await rig.standin.drain()
    assert rig.inbound.updates == [("sms", report.provider_id, "failed", "11200", AGENT_WORDS["11200"])]


# --- receiving -----------------------------------------------------------------------------------


async def test_an_inbound_picture_is_downloaded_sniffed_and_stored(rig: Rig) -> None:
    outcome = await rig.standin.send_inbound(WA_CUSTOMER, WHATSAPP_NUMBER, "the label", [(PNG, "image/png")], "Ben Okafor")
    assert outcome.hub_status == 200 and outcome.sid.startswith("MM")
    (event,) = rig.inbound.events
    assert (event.channel, event.customer_address, event.display_name) == ("whatsapp", WA_CUSTOMER, "Ben Okafor")
    (attachment,) = event.attachments
    assert attachment.content_type == "image/png" and attachment.size == len(PNG)
    key = attachment.url.removeprefix("/media/")
    assert attachment.url.startswith("/media/") and (await rig.media.get(key)) is not None


async def test_a_lying_attachment_is_refused_and_the_text_kept(rig: Rig) -> None:
    await rig.standin.send_inbound(CUSTOMER, SMS_NUMBER, "see attached", [(b"MZ\x90\x00 not a picture", "image/jpeg"), (JPEG, "image/jpeg")])
    (event,) = rig.inbound.events
    assert event.text == "see attached" and [a.content_type for a in event.attachments] == ["image/jpeg"]
    (failure,) = event.metadata["media_failures"]  # type: ignore[misc]
    assert failure["index"] == 0 and "not of a type the hub keeps" in failure["reason"]


async def test_media_download_needs_credentials_follows_the_redirect_and_checks_size_and_type(rig: Rig) -> None:
    await rig.standin.send_inbound(CUSTOMER, SMS_NUMBER, "", [(PDF, "application/pdf")])
    url = rig.standin.callbacks[-1].form["MediaUrl0"]
    assert await rig.client.download_media(url, "application/pdf") == (PDF, "application/pdf")
    async with aiohttp.ClientSession() as http, http.get(url) as anonymous:
        assert anonymous.status == 401
    with pytest.raises(MediaRefused, match="says it is image/jpeg but its bytes are application/pdf"):
        await rig.client.download_media(url, "image/jpeg")
    small = TwilioRestClient(replace(rig.config, media_max_bytes=len(PDF) - 1))
    try:
        with pytest.raises(MediaRefused, match="larger than"):
            await small.download_media(url)
    finally:
        await small.close()
    with pytest.raises(MediaRefused, match="not on Twilio's API"):
        await rig.client.download_media(rig.hub_url + "/media/x")


async def test_help_gets_the_hub_s_twiml_reply_on_the_phone(rig: Rig) -> None:
    outcome = await rig.standin.send_inbound(CUSTOMER, SMS_NUMBER, "HELP")
    assert outcome.replies == (DEFAULT_HELP_TEXT,)
    await rig.standin.drain()
    entries = rig.standin.conversation(CUSTOMER)
    assert [(e.direction, e.body, e.status) for e in entries] == [("in", "HELP", "received"), ("out", DEFAULT_HELP_TEXT, "delivered")]
    assert entries[0].hub_status == 200


async def test_a_wrong_token_on_the_stand_in_is_refused_by_the_hub(rig: Rig) -> None:
    rig.standin.auth_token = "not-the-hub-s"
    outcome = await rig.standin.send_inbound(CUSTOMER, SMS_NUMBER, "hello")
    assert outcome.hub_status == 403 and rig.inbound.events == []


# --- the stand-in's payloads are Twilio's --------------------------------------------------------


def _fields(name: str) -> set[str]:
    return set(fixture_form(name).keys())


async def test_inbound_webhooks_have_the_recorded_field_sets(rig: Rig) -> None:
    await rig.standin.send_inbound(CUSTOMER, SMS_NUMBER, "hi")
    await rig.standin.send_inbound(CUSTOMER, SMS_NUMBER, "pic", [(JPEG, "image/jpeg")])
    await rig.standin.send_inbound(WA_CUSTOMER, WHATSAPP_NUMBER, "hola", profile_name="Ben")
    await rig.standin.send_inbound(WA_CUSTOMER, WHATSAPP_NUMBER, "pic", [(JPEG, "image/jpeg")], "Ben")
    forms = [c.form for c in rig.standin.callbacks]
    names = ["inbound_sms.txt", "inbound_mms.txt", "inbound_whatsapp.txt", "inbound_whatsapp_media.txt"]
    assert [set(f) for f in forms] == [_fields(n) for n in names]
    assert forms[2]["WaId"] == "12025550143" and forms[2]["From"] == "whatsapp:" + WA_CUSTOMER


async def test_status_callbacks_have_the_recorded_field_sets(rig: Rig) -> None:
    await rig.standin.send_inbound(WA_CUSTOMER, WHATSAPP_NUMBER, "hi")
    rig.standin.fail_delivery("+14155550111")
    sms = await rig.send()
    undelivered = await rig.send(to="+14155550111")
    whatsapp = await rig.send(from_=WHATSAPP_NUMBER, to="whatsapp:" + WA_CUSTOMER)
    late = await rig.send(from_=WHATSAPP_NUMBER, to="whatsapp:+14155550122")
    await rig.standin.drain()
    rig.standin.mark_read(whatsapp.provider_id or "")
    await rig.standin.drain()
    by_status = {(c.form["MessageSid"], c.form["MessageStatus"]): set(c.form) for c in rig.standin.callbacks if "MessageStatus" in c.form}
    assert by_status[(sms.provider_id, "sent")] == _fields("status_sms_sent.txt")
    assert by_status[(sms.provider_id, "delivered")] == _fields("status_sms_delivered.txt")
    assert by_status[(undelivered.provider_id, "undelivered")] == _fields("status_sms_undelivered.txt")
    assert by_status[(whatsapp.provider_id, "sent")] == _fields("status_whatsapp_sent.txt")
    assert by_status[(whatsapp.provider_id, "read")] == _fields("status_whatsapp_read.txt")
    assert by_status[(late.provider_id, "failed")] == _fields("status_whatsapp_failed.txt")


async def test_api_answers_have_the_recorded_shapes(rig: Rig) -> None:
    auth = {"Authorization": basic_authorization(ACCOUNT_SID, TOKEN)}
    url = f"{rig.standin_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data={"To": CUSTOMER, "From": SMS_NUMBER, "Body": "hi"}, headers=auth) as created:
            assert created.status == 201
            message = await created.json()
        async with http.post(url, data={"To": "+1555", "From": SMS_NUMBER, "Body": "hi"}, headers=auth) as refused:
            assert refused.status == 400
            error = await refused.json()
    expected = json.loads((FIXTURES / "message_created.json").read_text())
    assert set(message) == set(expected) and set(message["subresource_uris"]) == {"media"}
    assert message["status"] == "queued" and message["direction"] == "outbound-api" and message["num_segments"] == "1"
    assert error == json.loads((FIXTURES / "error_21211.json").read_text())
    for name in ("error_21606.json", "error_21610.json"):
        assert set(json.loads((FIXTURES / name).read_text())) == set(error)


# --- the dev phone -------------------------------------------------------------------------------


async def test_the_dev_phone_texts_the_shop_and_sees_the_reply(rig: Rig) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{rig.hub_url}/dev/phone") as page:
            html = await page.text()
            assert page.status == 200 and 'src="/dev/phone/app.js"' in html
        async with http.get(f"{rig.standin_url}/dev/phone") as own:
            assert own.status == 200  # the stand-in serves it under its own path too
        async with http.get(f"{rig.hub_url}/dev/phone/app.js") as script:
            assert script.status == 200 and "textContent" in await script.text()
            assert "innerHTML" not in await script.text()
        async with http.get(f"{rig.hub_url}/dev/phone/api/setup") as setup:
            data = await setup.json()
            assert {n["channel"] for n in data["shop_numbers"]} == {"sms", "whatsapp"} and data["demo_phones"]
        payload = {"from": WA_CUSTOMER, "to": WHATSAPP_NUMBER, "body": "<b>hi</b>", "profile_name": "Ben",
                   "media": [{"content_type": "image/png", "data": base64.b64encode(PNG).decode()}]}
        async with http.post(f"{rig.hub_url}/dev/phone/api/send", json=payload) as sent:
            assert sent.status == 200 and (await sent.json())["hub_status"] == 200
        async with http.post(f"{rig.hub_url}/dev/phone/api/send", json={"from": "nope", "to": WHATSAPP_NUMBER, "body": "x"}) as bad:
            assert bad.status == 400 and "not a phone number" in (await bad.json())["error"]
        assert rig.inbound.events[-1].text == "<b>hi</b>" and rig.inbound.events[-1].attachments
        reply = await rig.send(from_=WHATSAPP_NUMBER, to="whatsapp:" + WA_CUSTOMER, body="Thanks Ben")
        await rig.standin.drain()
        async with http.get(f"{rig.hub_url}/dev/phone/api/messages", params={"address": "whatsapp:" + WA_CUSTOMER}) as listed:
            entries = (await listed.json())["messages"]
        assert [(e["direction"], e["body"], e["status"]) for e in entries] == [
            ("in", "<b>hi</b>", "received"), ("out", "Thanks Ben", "delivered")]
        async with http.get(f"{rig.hub_url}/dev/phone/api/media/{entries[0]['media'][0]['sid']}") as picture:
            assert picture.status == 200 and await picture.read() == PNG
        async with http.post(f"{rig.hub_url}/dev/phone/api/read", json={"sid": reply.provider_id}) as read:
            assert (await read.json())["read"] is True
        await rig.standin.drain()
    assert rig.inbound.updates[-1][1:3] == (reply.provider_id, "read")
