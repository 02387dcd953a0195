"""The two Twilio webhooks of the hub, over HTTP, with a recording core and in-memory receipts.

The hub is reached as ``https://hub.example.com`` (PUBLIC_BASE_URL, behind a TLS-terminating proxy)
while the test talks to it on a local port: the signatures are computed over the public URL, as
Twilio computes them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from multidict import MultiDict

from integrations.twilio.errors import AGENT_WORDS
from integrations.twilio.messaging import DEFAULT_HELP_TEXT, MEDIA_LOST_TEXT, add_messaging_routes
from integrations.twilio.receipts import MemoryWebhookReceipts
from integrations.twilio.signature import compute_signature
from tests.unit.test_twilio_messaging import CUSTOMER, TOKEN, FakeInbound, MemoryMedia, fixture_form, make_config

INBOUND = "/webhooks/twilio/messaging"
STATUS = "/webhooks/twilio/messaging/status"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'


class Hub:
    """The webhooks on an aiohttp test client, and what they handed the core."""

    def __init__(self, client: TestClient, inbound: FakeInbound, receipts: MemoryWebhookReceipts, media: MemoryMedia) -> None:
        self.client = client
        self.inbound = inbound
        self.receipts = receipts
        self.media = media

    async def post(self, path: str, form: MultiDict[str] | dict[str, str], *, signature: str | None = "good", **kw: Any) -> Any:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if signature == "good":
            signature = compute_signature(TOKEN, "https://hub.example.com" + path, form)
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        return await self.client.post(path, data=urlencode(list(form.items())), headers=headers, **kw)


@pytest.fixture
async def hub(aiohttp_client: Any) -> Hub:
    inbound, receipts, media = FakeInbound(), MemoryWebhookReceipts(), MemoryMedia()
    app = web.Application()
    add_messaging_routes(app, config=make_config(), inbound=inbound, media=media, receipts=receipts)
    return Hub(await aiohttp_client(app), inbound, receipts, media)


async def test_a_signed_message_is_stored_and_answered_with_empty_twiml(hub: Hub) -> None:
    resp = await hub.post(INBOUND, fixture_form("inbound_sms.txt"))
    assert resp.status == 200 and resp.content_type == "text/xml"
    assert await resp.text() == EMPTY_TWIML
    assert [(e.channel, e.customer_address, e.text) for e in hub.inbound.events] == [("sms", CUSTOMER, "Hi, where is my order?")]


@pytest.mark.parametrize("signature", [None, "", "bad-signature", compute_signature("another-token", "https://hub.example.com" + INBOUND, {})])
async def test_a_missing_or_bad_signature_is_403_and_writes_nothing(hub: Hub, signature: str | None) -> None:
    resp = await hub.post(INBOUND, fixture_form("inbound_sms.txt"), signature=signature)
    assert resp.status == 403
    assert hub.inbound.events == [] and hub.receipts.payloads == {}


async def test_a_signature_over_another_url_is_403(hub: Hub) -> None:
    form = fixture_form("inbound_sms.txt")
    resp = await hub.post(INBOUND, form, signature=compute_signature(TOKEN, "http://127.0.0.1:8080" + INBOUND, form))
    assert resp.status == 403 and hub.inbound.events == []


async def test_a_repeated_message_sid_is_one_message(hub: Hub) -> None:
    form = fixture_form("inbound_whatsapp.txt")
    for _ in range(3):
        resp = await hub.post(INBOUND, form)
        assert resp.status == 200 and await resp.text() == EMPTY_TWIML
    assert len(hub.inbound.events) == 1
    assert hub.receipts.payloads == {}  # a plain message: the core's idempotency on the MessageSid is enough


async def test_a_late_repeat_of_stop_does_not_opt_the_customer_out_again(hub: Hub) -> None:
    """STOP and START take a receipt: the core's idempotency keeps the message once, not the opt-out."""
    stop = fixture_form("inbound_sms.txt")
    stop["Body"] = "STOP"
    start = fixture_form("inbound_sms.txt")
    start.update({"Body": "START", "MessageSid": "SM" + "c" * 32})
    for form in (stop, start, stop):  # Twilio's retry of the STOP arrives after the START
        assert (await hub.post(INBOUND, form)).status == 200
    assert hub.inbound.opt_outs == [("sms", CUSTOMER, True), ("sms", CUSTOMER, False)]
    assert [e.text for e in hub.inbound.events] == ["STOP", "START"]
    assert sorted(key for _, _, key in hub.receipts.payloads) == sorted([stop["MessageSid"], start["MessageSid"]])


async def test_a_failing_core_forgets_the_receipt_of_a_stop(hub: Hub) -> None:
    form = fixture_form("inbound_sms.txt")
    form["Body"] = "stop"
    hub.inbound.fail = 1
    assert (await hub.post(INBOUND, form)).status == 500
    assert hub.receipts.payloads == {}
    assert (await hub.post(INBOUND, form)).status == 200
    assert hub.inbound.opt_outs == [("sms", CUSTOMER, True)] and len(hub.inbound.events) == 1


class CountingDownloads:
    """Stands in for the REST client's media download: a JPEG, and how many were fetched."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    async def download_media(self, url: str, declared_type: str = "") -> tuple[bytes, str]:
        self.urls.append(url)
        return b"\xff\xd8\xff\xe0" + b"0" * 64, "image/jpeg"


async def test_a_repeated_picture_is_fetched_once(aiohttp_client: Any) -> None:
    """A message with media takes a receipt: a repeat must not download and store the files again."""
    inbound, receipts, media, downloads = FakeInbound(), MemoryWebhookReceipts(), MemoryMedia(), CountingDownloads()
    app = web.Application()
    add_messaging_routes(app, config=make_config(), inbound=inbound, media=media, receipts=receipts, client=downloads)  # type: ignore[arg-type]
    hub = Hub(await aiohttp_client(app), inbound, receipts, media)
    form = fixture_form("inbound_whatsapp_media.txt")
    for _ in range(2):
        assert (await hub.post(INBOUND, form)).status == 200
    assert len(downloads.urls) == 1 and len(inbound.events) == 1
    (event,) = inbound.events
    assert [a.content_type for a in event.attachments] == ["image/jpeg"]
    assert list(receipts.payloads) == [("twilio", "message", form["MessageSid"])]


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"NumMedia": "abc"}, "NumMedia 'abc' is not a number"),
        ({"From": "hello"}, "From 'hello' is not a phone number"),
        ({"To": "+12025550143"}, "To '+12025550143' is not one of this hub's numbers"),
        ({"MessageSid": ""}, "MessageSid is missing"),
    ],
)
async def test_a_malformed_message_is_400_with_the_reason(hub: Hub, changes: dict[str, str], reason: str) -> None:
    form = fixture_form("inbound_sms.txt")
    form.update(changes)
    if "MessageSid" in changes:
        form.popall("SmsMessageSid")
        form.popall("SmsSid")
    resp = await hub.post(INBOUND, form)
    assert resp.status == 400 and reason in await resp.text()
    assert hub.inbound.events == [] and hub.receipts.payloads == {}


async def test_a_body_that_is_not_a_form_is_400_and_a_huge_one_413(hub: Hub) -> None:
    resp = await hub.client.post(INBOUND, json={"MessageSid": "x"})
    assert resp.status == 400 and "not a form" in await resp.text()
    resp = await hub.post(INBOUND, {"Body": "x" * 70_000})
    assert resp.status == 413 and hub.inbound.events == []


async def test_stop_and_start_are_recorded_and_the_message_kept(hub: Hub) -> None:
    form = fixture_form("inbound_sms.txt")
    form["Body"] = "STOP"
    assert (await hub.post(INBOUND, form)).status == 200
    form.update({"Body": "start", "MessageSid": "SM" + "b" * 32})
    assert (await hub.post(INBOUND, form)).status == 200
    assert hub.inbound.opt_outs == [("sms", CUSTOMER, True), ("sms", CUSTOMER, False)]
    assert [e.text for e in hub.inbound.events] == ["STOP", "start"]
    assert hub.inbound.events[0].metadata["keyword"] == "stop"


async def test_help_is_answered_with_a_message(hub: Hub) -> None:
    form = fixture_form("inbound_whatsapp.txt")
    form["Body"] = "help"
    resp = await hub.post(INBOUND, form)
    assert await resp.text() == f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{DEFAULT_HELP_TEXT}</Message></Response>'
    assert hub.inbound.opt_outs == [] and len(hub.inbound.events) == 1


async def test_a_failing_core_is_500_and_twilio_s_retry_is_handled(hub: Hub) -> None:
    form = fixture_form("inbound_sms.txt")
    hub.inbound.fail = 1
    assert (await hub.post(INBOUND, form)).status == 500
    assert hub.receipts.payloads == {}  # forgotten, so the retry is not taken for a repeat
    assert (await hub.post(INBOUND, form)).status == 200
    assert len(hub.inbound.events) == 1


async def test_media_that_cannot_be_fetched_keeps_the_text(hub: Hub) -> None:
    form = fixture_form("inbound_whatsapp_media.txt")
    form["MediaUrl0"] = "https://evil.example.com/steal-credentials"
    resp = await hub.post(INBOUND, form)
    assert resp.status == 200
    (event,) = hub.inbound.events
    assert event.text == "Here is the label" and event.attachments == ()
    (failure,) = event.metadata["media_failures"]  # type: ignore[misc]
    assert failure["index"] == 0 and failure["declared_type"] == "image/jpeg"
    assert "not on Twilio's API" in failure["reason"]


async def test_status_callbacks_are_forwarded_once_each(hub: Hub) -> None:
    for name in ("status_sms_sent.txt", "status_sms_delivered.txt", "status_sms_delivered.txt", "status_whatsapp_failed.txt"):
        resp = await hub.post(STATUS, fixture_form(name))
        assert resp.status == 200
    sms_sid = fixture_form("status_sms_sent.txt")["MessageSid"]
    wa_sid = fixture_form("status_whatsapp_failed.txt")["MessageSid"]
    assert hub.inbound.updates == [
        ("sms", sms_sid, "sent", None, None),
        ("sms", sms_sid, "delivered", None, None),
        ("whatsapp", wa_sid, "failed", "63016", AGENT_WORDS["63016"]),
    ]


async def test_a_status_callback_needs_a_signature_and_a_status(hub: Hub) -> None:
    form = fixture_form("status_sms_undelivered.txt")
    assert (await hub.post(STATUS, form, signature="nope")).status == 403
    form.popall("MessageStatus")
    form.popall("SmsStatus")
    resp = await hub.post(STATUS, form)
    assert resp.status == 400 and "MessageStatus is missing" in await resp.text()
    assert hub.inbound.updates == []


async def test_a_failing_core_on_a_status_is_500_and_retried(hub: Hub) -> None:
    form = fixture_form("status_sms_undelivered.txt")
    hub.inbound.fail = 1
    assert (await hub.post(STATUS, form)).status == 500
    assert (await hub.post(STATUS, form)).status == 200
    assert hub.inbound.updates == [("sms", form["MessageSid"], "undelivered", "30003", AGENT_WORDS["30003"])]


async def test_a_refusal_of_the_core_is_400_with_its_reason(hub: Hub) -> None:
    hub.inbound.refuse = "this customer was erased"
    resp = await hub.post(INBOUND, fixture_form("inbound_sms.txt"))
    assert resp.status == 400 and await resp.text() == "this customer was erased"
    assert hub.receipts.payloads == {} and hub.inbound.events == []


async def test_status_receipts_keep_the_words_for_late_matching(hub: Hub) -> None:
    form = fixture_form("status_whatsapp_failed.txt")
    await hub.post(STATUS, form)
    payload = hub.receipts.payloads[("twilio", "status", f"{form['MessageSid']}:failed")]
    assert payload["MessageStatus"] == "failed" and payload["ErrorCode"] == "63016"
    assert payload["ErrorWords"] == AGENT_WORDS["63016"]


async def test_a_picture_alone_that_cannot_be_fetched_still_makes_a_message(hub: Hub) -> None:
    form = fixture_form("inbound_mms.txt")
    form.update({"Body": "", "MediaUrl0": "http://127.0.0.1:1/not-twilio"})
    assert (await hub.post(INBOUND, form)).status == 200
    (event,) = hub.inbound.events
    assert event.text == MEDIA_LOST_TEXT and event.metadata["media_failures"]


# --- the hub's receipts, in SQL ------------------------------------------------------------------------


async def test_sql_receipts_take_a_webhook_once_and_forget_it_on_failure(db: Any) -> None:
    """What the hub plugs into the webhooks (SQLite and PostgreSQL): one statement per call."""
    from crm_store.repositories import receipts as receipts_repo
    from crm_store.repositories.receipts import SqlWebhookReceipts

    receipts = SqlWebhookReceipts(db)
    sid = "SM" + "d" * 32
    form = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30003", "ErrorWords": "unreachable"}
    assert await receipts.first_time("twilio", "status", f"{sid}:undelivered", form) is True
    assert await receipts.first_time("twilio", "status", f"{sid}:undelivered", {"other": "copy"}) is False
    assert await receipts.first_time("twilio", "status", f"{sid}:sent", {"MessageSid": sid, "MessageStatus": "sent"}) is True
    assert await receipts.first_time("twilio", "message", sid, {"Body": "STOP"}) is True  # another kind, same key
    async with db.session() as s:  # the first payload is the one kept, for callbacks that came too early
        assert await receipts_repo.statuses_for(s, sid) == [("undelivered", "30003", "unreachable"), ("sent", None, None)]
    await receipts.forget("twilio", "status", f"{sid}:undelivered")
    await receipts.forget("twilio", "status", "SM-never-seen:sent")  # nothing to forget: no error
    assert await receipts.first_time("twilio", "status", f"{sid}:undelivered", form) is True  # Twilio's retry goes through
    assert await receipts.first_time("twilio", "message", sid, {}) is False


async def test_sql_receipts_race_to_one_winner(db: Any) -> None:
    import asyncio

    from crm_store.repositories.receipts import SqlWebhookReceipts

    receipts = SqlWebhookReceipts(db)
    results = await asyncio.gather(*(receipts.first_time("twilio", "status", "SMrace:delivered", {"n": str(i)}) for i in range(8)))
    assert sorted(results) == [False] * 7 + [True]
