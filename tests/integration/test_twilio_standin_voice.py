"""The Twilio stand-in's voice engine, driven against a tiny TwiML app written here.

The app (:class:`Shop`) checks every request's ``X-Twilio-Signature`` with the ``twilio`` package's own
``RequestValidator``, and answers TwiML per path. The REST calls go through the ``twilio`` package's
client, pointed at the stand-in, as the hub's adapter does. What is pinned down: an incoming call's
webhook, DTMF and speech gathers, an empty gather with ``actionOnEmptyResult``, a ``<Redirect>`` loop,
``<Hangup>``, call progress callbacks in Twilio's order and each sent once, TwiML Twilio would refuse
(with its code, the fallback URL and the spoken application error), a conference with a ``client:``
leg answered through the dev API, hold/mute/coaching through Participants, 21220 for an update to a
completed call, the dev phone's call endpoints; and the recorded-style fixtures of what the stand-in
posts (tests/fixtures/twilio/voice/: ``WRITE_TWILIO_FIXTURES=1`` rewrites them).
"""

from __future__ import annotations

import asyncio

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from twilio.base.exceptions import TwilioException, TwilioRestException  # type: ignore[import-untyped,unused-ignore]
from twilio.http.async_http_client import AsyncTwilioHttpClient  # type: ignore[import-untyped,unused-ignore]
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped,unused-ignore]
from twilio.rest import Client  # type: ignore[import-untyped,unused-ignore]
from twilio.twiml.voice_response import VoiceResponse  # type: ignore[import-untyped,unused-ignore]

from integrations.standins.twilio import STANDIN_KEY, TwilioStandin, create_twilio_standin
from integrations.standins.voice import Call, VoiceEngine, VoiceRequest

ACCOUNT_SID = "ACa1b2c3d4e5f60718293a4b5c6d7e8f90"  # the fixtures' account (tests/fixtures/twilio/README.md)
TOKEN = "stand-in-auth-token"
SHOP = "+15005550006"
WHATSAPP = "whatsapp:+14155238886"
CUSTOMER = "+14155550100"
AGENT = "agent_7"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "twilio" / "voice"
FIXTURE_BASE = "https://hub.example.com"  # the PUBLIC_BASE_URL the fixtures are signed for
SCALE = 0.05  # the stand-in's seconds per Twilio second here


def xml(response: VoiceResponse | str) -> str:
    return response if isinstance(response, str) else response.to_xml()


@dataclass
class Seen:
    """One request the TwiML app received: its path, query, form and whether its signature was valid."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    valid: bool


Handler = Callable[[dict[str, str], dict[str, str]], "str | VoiceResponse | web.Response"]


@dataclass
class Shop:
    """The tiny TwiML app: TwiML per path, every request's signature checked with twilio's RequestValidator."""

    routes: dict[str, Handler] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        form = {k: str(v) for k, v in (await request.post()).items()} if request.method == "POST" else {}
        signature = request.headers.get("X-Twilio-Signature", "")
        valid = bool(RequestValidator(TOKEN).validate(str(request.url), form, signature))
        query = dict(request.query)
        self.seen.append(Seen(request.method, request.path, query, form, valid))
        handler = self.routes.get(request.path)
        if handler is None:
            return web.Response(status=204) if request.path.endswith(("/status", "/conference")) else web.Response(status=404)
        answer = handler(form or query, query)
        if isinstance(answer, web.Response):
            return answer
        return web.Response(text=xml(answer), content_type="text/xml")

    def at(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]


@dataclass
class Rig:
    standin: TwilioStandin
    voice: VoiceEngine
    shop: Shop
    hub_url: str
    standin_url: str
    twilio: Client

    async def call(self, from_: str = CUSTOMER) -> Call:
        return self.voice.incoming_call(from_, SHOP)

    async def listening(self, call: Call) -> None:
        await self.voice.wait_for(lambda: call.listening is not None or call.over)

    async def over(self, call: Call) -> None:
        await self.voice.wait_for(lambda: call.over, timeout=10)
        await self.standin.drain()

    def says(self, call: Call) -> list[str]:
        return [e.text for e in call.transcript if e.kind == "say"]

    def requests(self, kind: str, call: Call | None = None) -> list[VoiceRequest]:
        return [r for r in self.voice.requests if r.kind == kind and (call is None or r.call_sid == call.sid)]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    shop = Shop()
    hub = web.Application()
    hub.router.add_route("*", "/{tail:.*}", shop.handle)
    hub_server = TestServer(hub)
    await hub_server.start_server()
    hub_url = str(hub_server.make_url("")).rstrip("/")
    standin_app = create_twilio_standin(account_sid=ACCOUNT_SID, auth_token=TOKEN, webhook_base_url=hub_url,
                                        numbers=[SHOP, WHATSAPP], status_delay=0.01, time_scale=SCALE)
    standin_server = TestServer(standin_app)
    await standin_server.start_server()
    standin_url = str(standin_server.make_url("")).rstrip("/")
    standin = standin_app[STANDIN_KEY]
    standin.api_base_url = standin_url
    http = AsyncTwilioHttpClient()
    client = Client(ACCOUNT_SID, TOKEN, http_client=http, environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""})
    client.api.base_url = standin_url
    yield Rig(standin, standin.voice, shop, hub_url, standin_url, client)
    await http.close()
    await standin_server.close()
    await hub_server.close()


def greeting(action: str = "/webhooks/twilio/voice/gather", **gather: Any) -> VoiceResponse:
    response = VoiceResponse()
    options = {"input": "dtmf speech", "action": action, "timeout": 10, **gather}
    response.gather(**options).say("Welcome to the shop. Press 1 to order, or say what you want.")
    response.say("We did not hear you. Goodbye.")
    return response


def hang_up(text: str) -> VoiceResponse:
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return response


# --- an incoming call and its gathers ------------------------------------------------------------


async def test_an_incoming_call_posts_twilio_s_signed_webhook_and_runs_the_twiml(rig: Rig) -> None:
    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: greeting()
    call = await rig.call()
    await rig.listening(call)
    (first,) = rig.shop.at("/webhooks/twilio/voice")
    assert first.valid and first.method == "POST"
    assert first.form["CallSid"] == call.sid and first.form["CallStatus"] == "ringing"
    assert first.form["Direction"] == "inbound" and first.form["From"] == CUSTOMER and first.form["To"] == SHOP
    assert first.form["AccountSid"] == ACCOUNT_SID and first.form["ApiVersion"] == "2010-04-01"
    assert first.form["CallToken"] and first.form["FromCountry"] == "US" and first.form["Caller"] == CUSTOMER
    assert call.status == "in-progress" and call.start_time is not None
    assert rig.says(call) == ["Welcome to the shop. Press 1 to order, or say what you want."]
    assert call.listening is not None and call.listening.inputs == {"dtmf", "speech"}


async def test_a_dtmf_gather_posts_its_action_with_the_digits(rig: Rig) -> None:
    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: greeting(finish_on_key="#")
    rig.shop.routes["/webhooks/twilio/voice/gather"] = lambda form, q: hang_up(f"You typed {form.get('Digits')}.")
    call = await rig.call()
    await rig.listening(call)
    assert rig.voice.send_digits(call.sid, "1023") is True
    assert rig.voice.send_digits(call.sid, "4#") is True
    await rig.over(call)
    (action,) = rig.shop.at("/webhooks/twilio/voice/gather")
    assert action.valid and action.form["Digits"] == "10234" and action.form["FinishedOnKey"] == "#"
    assert action.form["msg"] == "Gather End" and action.form["CallStatus"] == "in-progress"
    assert "CallToken" not in action.form  # only the first webhook of the call has it
    assert rig.says(call)[-1] == "You typed 10234."
    assert call.status == "completed"


async def test_num_digits_ends_a_gather_without_the_finish_key(rig: Rig) -> None:
    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: greeting(num_digits=1)
    rig.shop.routes["/webhooks/twilio/voice/gather"] = lambda form, q: hang_up("ok")
    call = await rig.call()
    await rig.listening(call)
    rig.voice.send_digits(call.sid, "29")
    await rig.over(call)
    (action,) = rig.shop.at("/webhooks/twilio/voice/gather")
    assert action.form["Digits"] == "2" and action.form["FinishedOnKey"] == ""


async def test_a_speech_gather_posts_speech_result_and_confidence(rig: Rig) -> None:
    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: greeting(hints="t-shirt, order, track my order")
    rig.shop.routes["/webhooks/twilio/voice/gather"] = lambda form, q: hang_up(f"You said {form.get('SpeechResult')}")
    call = await rig.call()
    await rig.listening(call)
    assert call.listening is not None and call.listening.hints == ("t-shirt", "order", "track my order")
    assert rig.voice.send_speech(call.sid, "I'd like two large  red t-shirts", 0.87) is True
    await rig.over(call)
    (action,) = rig.shop.at("/webhooks/twilio/voice/gather")
    assert action.valid and action.form["SpeechResult"] == "I'd like two large red t-shirts"
    assert action.form["Confidence"] == "0.87" and "Digits" not in action.form
    assert [e.text for e in call.transcript if e.kind == "you"] == ["said “I'd like two large red t-shirts”"]


async def test_speech_is_not_taken_by_a_dtmf_only_gather_nor_digits_outside_one(rig: Rig) -> None:
    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: greeting(input="dtmf")
    call = await rig.call()
    await rig.listening(call)
    assert rig.voice.send_speech(call.sid, "hello") is False
    rig.shop.routes["/webhooks/twilio/voice/gather"] = lambda form, q: '<Response><Pause length="60"/></Response>'
    rig.voice.send_digits(call.sid, "5#")
    await rig.voice.wait_for(lambda: rig.shop.at("/webhooks/twilio/voice/gather"))
    await rig.voice.wait_for(lambda: call.listening is None)
    assert rig.voice.send_digits(call.sid, "7") is False  # nobody listens during a <Pause>
    assert call.transcript[-1].text == "pressed 7 (nothing was listening)"


async def test_an_empty_gather_falls_through_or_posts_its_action_with_action_on_empty_result(rig: Rig) -> None:
    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: greeting(timeout=1)
    call = await rig.call()
    await rig.over(call)
    assert rig.shop.at("/webhooks/twilio/voice/gather") == []
    assert rig.says(call)[-1] == "We did not hear you. Goodbye."  # on to the next verb, then the TwiML runs out
    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: greeting(timeout=1, action_on_empty_result=True)
    rig.shop.routes["/webhooks/twilio/voice/gather"] = lambda form, q: hang_up("Still there?")
    second = await rig.call()
    await rig.over(second)
    (action,) = rig.shop.at("/webhooks/twilio/voice/gather")
    assert action.valid and action.form["msg"] == "Gather End"
    assert "Digits" not in action.form and "SpeechResult" not in action.form
    assert rig.says(second)[-1] == "Still there?"


async def test_a_redirect_loop_fetches_each_document_with_its_query_then_hangs_up(rig: Rig) -> None:
    def wait(form: dict[str, str], query: dict[str, str]) -> VoiceResponse:
        turn = int(query.get("turn", "0"))
        response = VoiceResponse()
        if turn >= 3:
            response.say("Thanks for waiting.")
            response.hangup()
            response.say("never said")
            return response
        response.say(f"You are number {3 - turn} in line.")
        response.pause(length=1)
        response.redirect(f"/webhooks/twilio/voice/wait?turn={turn + 1}", method="GET" if turn == 1 else "POST")
        return response

    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: "<Response><Redirect>/webhooks/twilio/voice/wait</Redirect></Response>"
    rig.shop.routes["/webhooks/twilio/voice/wait"] = wait
    call = await rig.call()
    await rig.over(call)
    loops = rig.shop.at("/webhooks/twilio/voice/wait")
    assert [(s.method, s.query.get("turn")) for s in loops] == [("POST", None), ("POST", "1"), ("GET", "2"), ("POST", "3")]
    assert all(s.valid for s in loops)
    assert loops[2].query["CallSid"] == call.sid  # GET: Twilio's parameters in the query, signed with the URL
    assert rig.says(call) == ["You are number 3 in line.", "You are number 2 in line.", "You are number 1 in line.",
                              "Thanks for waiting."]
    assert call.status == "completed"


async def test_hangup_ends_the_call_and_the_number_s_status_callback_gets_completed_once(rig: Rig) -> None:
    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: hang_up("Goodbye.")
    call = await rig.call()
    await rig.over(call)
    assert call.status == "completed" and rig.says(call) == ["Goodbye."]
    (status,) = rig.shop.at("/webhooks/twilio/voice/status")  # an incoming call: only "completed" there
    assert status.valid and status.form["CallStatus"] == "completed" and status.form["SequenceNumber"] == "0"
    assert status.form["CallbackSource"] == "call-progress-events" and status.form["Timestamp"].endswith("+0000")
    assert status.form["CallDuration"].isdigit() and status.form["Duration"].isdigit()


async def test_the_caller_hanging_up_during_a_gather_ends_the_call_without_an_action(rig: Rig) -> None:
    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: greeting()
    call = await rig.call()
    await rig.listening(call)
    rig.voice.hang_up(call.sid)
    await rig.over(call)
    assert call.status == "completed" and rig.shop.at("/webhooks/twilio/voice/gather") == []
    assert [s.form["CallStatus"] for s in rig.shop.at("/webhooks/twilio/voice/status")] == ["completed"]


# --- TwiML Twilio would refuse ---------------------------------------------------------------------


@pytest.mark.parametrize(("twiml", "code"), [
    ("<Response><Say>unclosed</Response>", 12100),
    ("<Response><Sya>typo</Sya></Response>", 12200),
    ('<Response><Say colour="red">Hi</Say></Response>', 12200),
    ("<Response><Gather><Dial>+14155550100</Dial></Gather></Response>", 13320),
    ('<Response><Gather timeout="soon"/></Response>', 13313),
    ('<Response><Gather finishOnKey="ab"/></Response>', 13310),
    ("<Response><Pause length=\"0\"/></Response>", 13910),
    ("<Response><Dial><Conference>a</Conference><Client>b</Client></Dial></Response>", 13215),
    ("<Say>no Response</Say>", 12102),
])
async def test_twiml_twilio_refuses_is_an_application_error_with_its_code_and_the_fallback(rig: Rig, twiml: str, code: int) -> None:
    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: twiml
    rig.shop.routes["/webhooks/twilio/voice/fallback"] = lambda form, q: hang_up("Sorry, we are having trouble.")
    call = await rig.call()
    await rig.over(call)
    assert [e.code for e in call.errors] == [code]
    (fallback,) = rig.shop.at("/webhooks/twilio/voice/fallback")
    assert fallback.valid and fallback.form["ErrorCode"] == str(code)
    assert fallback.form["ErrorUrl"] == rig.hub_url + "/webhooks/twilio/voice"
    assert rig.says(call) == ["Sorry, we are having trouble."]


async def test_without_a_working_fallback_the_caller_hears_twilio_s_application_error(rig: Rig) -> None:
    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: "<Response><Sya>typo</Sya></Response>"
    rig.shop.routes["/webhooks/twilio/voice/fallback"] = lambda form, q: web.Response(status=500)
    call = await rig.call()
    await rig.over(call)
    assert [e.code for e in call.errors] == [12200, 11200]
    assert rig.says(call) == ["We are sorry, an application error has occurred. Goodbye."]
    assert call.status == "completed"
    rig.voice.numbers[SHOP] = {"fallback_url": ""}
    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: web.Response(text="<Response/>", content_type="application/json")
    second = await rig.call()
    await rig.over(second)
    assert [e.code for e in second.errors] == [12300] and rig.shop.at("/webhooks/twilio/voice/fallback")[1:] == []


async def test_audio_as_the_answer_is_played_and_large_twiml_is_11750(rig: Rig) -> None:
    rig.voice.numbers[SHOP] = {"fallback_url": ""}
    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: web.Response(body=b"\xff\xfb" * 50_000, content_type="audio/mpeg")
    call = await rig.call()
    await rig.over(call)
    assert not call.errors and [e.text for e in call.transcript if e.kind == "play"] == [f"♪ {rig.hub_url}/webhooks/twilio/voice"]
    # fetched with GET (as hold music is), the call's parameters ride in the query: what is played is the URL as given
    rig.voice.numbers[SHOP] = {"fallback_url": "", "voice_method": "GET", "voice_url": rig.hub_url + "/webhooks/twilio/voice?tune=1"}
    call = await rig.call()
    await rig.over(call)
    assert rig.shop.at("/webhooks/twilio/voice")[-1].query["CallSid"] == call.sid
    assert not call.errors and [e.text for e in call.transcript if e.kind == "play"] == [f"♪ {rig.hub_url}/webhooks/twilio/voice?tune=1"]
    rig.voice.numbers[SHOP] = {"fallback_url": ""}
    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: "<Response>" + "<Pause/>" * 10_000 + "</Response>"
    second = await rig.call()
    await rig.over(second)
    assert [e.code for e in second.errors] == [11750], [(e.code, e.detail, e.url) for e in second.errors]


async def test_an_action_url_that_fails_is_11200_and_unsupported_twiml_is_named(rig: Rig) -> None:
    rig.voice.numbers[SHOP] = {"fallback_url": ""}
    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: greeting(action="/webhooks/twilio/voice/missing")
    call = await rig.call()
    await rig.listening(call)
    rig.voice.send_digits(call.sid, "1#")
    await rig.over(call)
    assert [(e.code, e.url) for e in call.errors] == [(11200, rig.hub_url + "/webhooks/twilio/voice/missing")]
    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: "<Response><Connect><Stream url=\"wss://x\"/></Connect></Response>"
    second = await rig.call()
    await rig.over(second)
    assert second.errors[0].code is None and "does not imitate" in second.errors[0].detail


# --- status callbacks of the legs the REST API makes ----------------------------------------------


async def test_status_callbacks_come_in_twilio_s_order_each_once_with_a_sequence_number(rig: Rig) -> None:
    rig.voice.phones[CUSTOMER] = "answer"
    rig.shop.routes["/calls/answered"] = lambda form, q: hang_up("This is the shop calling you back.")
    created = await rig.twilio.calls.create_async(
        to=CUSTOMER, from_=SHOP, url=rig.hub_url + "/calls/answered", status_callback=rig.hub_url + "/calls/status",
        status_callback_event=["initiated", "ringing", "answered", "completed"])
    assert created.status == "queued" and created.direction == "outbound-api" and created.sid.startswith("CA")
    call = rig.voice.call(created.sid)
    await rig.over(call)
    statuses = rig.shop.at("/calls/status")
    assert [(s.form["CallStatus"], s.form["SequenceNumber"]) for s in statuses] == [
        ("initiated", "0"), ("ringing", "1"), ("in-progress", "2"), ("completed", "3")]
    assert all(s.valid for s in statuses) and all(s.form["CallbackSource"] == "call-progress-events" for s in statuses)
    assert "CallDuration" in statuses[-1].form and "CallDuration" not in statuses[0].form
    (answered,) = rig.shop.at("/calls/answered")
    assert answered.form["Direction"] == "outbound-api" and answered.form["CallStatus"] == "in-progress"
    fetched = await rig.twilio.calls(created.sid).fetch_async()
    assert fetched.status == "completed" and fetched.duration is not None and fetched.end_time is not None


async def test_a_busy_number_and_a_no_answer_end_the_call_that_way(rig: Rig) -> None:
    rig.voice.phones["+14155550111"] = "busy"
    busy = await rig.twilio.calls.create_async(to="+14155550111", from_=SHOP, twiml="<Response><Say>hi</Say></Response>",
                                               status_callback=rig.hub_url + "/calls/status")
    nobody = await rig.twilio.calls.create_async(to="+14155550122", from_=SHOP, twiml="<Response><Say>hi</Say></Response>",
                                                 status_callback=rig.hub_url + "/calls/status", timeout=2)
    await rig.over(rig.voice.call(busy.sid))
    await rig.over(rig.voice.call(nobody.sid))
    got = {s.form["CallSid"]: s.form["CallStatus"] for s in rig.shop.at("/calls/status")}
    assert got == {busy.sid: "busy", nobody.sid: "no-answer"}  # only "completed" events were asked for


async def test_rest_refusals_have_twilio_s_codes(rig: Rig) -> None:
    for kwargs, code in (
        ({"to": CUSTOMER, "from_": SHOP}, 21205),
        ({"to": "12", "from_": SHOP, "twiml": "<Response/>"}, 21211),
        ({"to": CUSTOMER, "from_": "+14155550199", "twiml": "<Response/>"}, 21210),
    ):
        with pytest.raises(TwilioRestException) as refused:
            await rig.twilio.calls.create_async(**kwargs)
        assert refused.value.code == code and refused.value.status == 400
    with pytest.raises(TwilioRestException) as missing:
        await rig.twilio.calls("CA" + "0" * 32).fetch_async()
    assert missing.value.status == 404 and missing.value.code == 20404
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{rig.standin_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json", data={"To": CUSTOMER}) as anon:
            assert anon.status == 401 and (await anon.json())["code"] == 20003


async def test_an_update_to_a_completed_call_is_refused_with_21220(rig: Rig) -> None:
    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: hang_up("Bye.")
    call = await rig.call()
    await rig.over(call)
    for kwargs in ({"twiml": "<Response><Say>again</Say></Response>"}, {"status": "completed"}):
        with pytest.raises(TwilioRestException) as refused:
            await rig.twilio.calls(call.sid).update_async(**kwargs)
        assert refused.value.code == 21220 and refused.value.status == 400
        assert "not in-progress" in refused.value.msg


async def test_a_rest_update_replaces_the_twiml_of_a_live_call_and_completed_hangs_it_up(rig: Rig) -> None:
    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: greeting()
    rig.shop.routes["/moved"] = lambda form, q: '<Response><Gather input="speech" timeout="30"><Say>Moved.</Say></Gather></Response>'
    call = await rig.call()
    await rig.listening(call)
    updated = await rig.twilio.calls(call.sid).update_async(url=rig.hub_url + "/moved", method="POST")
    assert updated.status == "in-progress"
    await rig.voice.wait_for(lambda: "Moved." in rig.says(call))
    (moved,) = rig.shop.at("/moved")
    assert moved.valid and moved.form["CallStatus"] == "in-progress"
    assert rig.shop.at("/webhooks/twilio/voice/gather") == []  # the first Gather was cut short, not posted
    done = await rig.twilio.calls(call.sid).update_async(status="completed")
    assert done.status == "completed"
    await rig.over(call)
    assert call.status == "completed"


# --- conferences, client legs and the dev API -------------------------------------------------------


def wait_in_conference(room: str) -> VoiceResponse:
    response = VoiceResponse()
    response.say("Please hold, an agent will be with you shortly.")
    dial = response.dial(action="/webhooks/twilio/voice/after")
    dial.conference(room, start_conference_on_enter=False, end_conference_on_exit=True, beep=False,
                    wait_url="/webhooks/twilio/voice/wait", wait_method="POST", participant_label="customer",
                    status_callback="/webhooks/twilio/voice/conference",
                    status_callback_event="start end join leave mute hold modify")
    return response


def music(form: dict[str, str], query: dict[str, str]) -> VoiceResponse:
    response = VoiceResponse()
    response.say("You are first in line.")
    response.play("https://cdn.example.com/music.mp3")
    return response


async def joined(rig: Rig, call: Call) -> None:
    await rig.voice.wait_for(lambda: call.participant is not None and call.participant.status == "connected")


async def test_a_caller_waits_in_a_conference_and_a_client_leg_answered_through_the_dev_api_joins(rig: Rig) -> None:
    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: wait_in_conference("conv-42")
    rig.shop.routes["/webhooks/twilio/voice/wait"] = music
    rig.shop.routes["/webhooks/twilio/voice/after"] = lambda form, q: hang_up("The agent has left. Goodbye.")
    call = await rig.call()
    await joined(rig, call)
    await rig.voice.wait_for(lambda: "You are first in line." in rig.says(call))
    (conference,) = await rig.twilio.conferences.list_async(friendly_name="conv-42", status="init")
    assert conference.sid.startswith("CF") and conference.status == "init"

    participant = await rig.twilio.conferences("conv-42").participants.create_async(
        from_=SHOP, to=f"client:{AGENT}", label="agent", early_media=True, end_conference_on_exit=True,
        status_callback=rig.hub_url + "/webhooks/twilio/voice/status",
        status_callback_event=["initiated", "ringing", "answered", "completed"])
    assert participant.status == "queued" and participant.conference_sid == conference.sid
    leg = rig.voice.call(participant.call_sid)
    async with aiohttp.ClientSession() as http:
        base = f"{rig.standin_url}/dev/clients/{AGENT}"
        await rig.voice.wait_for(lambda: leg.status == "ringing")
        async with http.get(base) as listed:
            assert listed.status == 200
            assert await listed.json() == [{"call_sid": leg.sid, "status": "ringing", "from": SHOP, "to": f"client:{AGENT}",
                                            "conference": "conv-42", "muted": False, "hold": False, "label": "agent",
                                            "coaching": False, "hears": []}]
        async with http.get(f"{rig.standin_url}/dev/clients/nobody") as other:
            assert await other.json() == []
        async with http.post(f"{base}/calls/{leg.sid}/answer") as answered:
            assert answered.status == 200 and (await answered.json())["status"] == "in-progress"
        async with http.post(f"{base}/calls/{leg.sid}/answer") as again:
            assert again.status == 409
        await joined(rig, leg)
        fetched = await rig.twilio.conferences(conference.sid).fetch_async()
        assert fetched.status == "in-progress"
        listed_participants = await rig.twilio.conferences(conference.sid).participants.list_async()
        assert {p.label for p in listed_participants} == {"customer", "agent"}
        async with http.post(f"{base}/calls/{leg.sid}/hangup") as hung:
            assert (await hung.json())["status"] == "completed"
    await rig.voice.wait_for(lambda: call.participant is None)
    await rig.over(call)
    events = [(s.form["StatusCallbackEvent"], s.form.get("CallSid"), s.form["SequenceNumber"])
              for s in rig.shop.at("/webhooks/twilio/voice/conference")]
    assert events == [("participant-join", call.sid, "0"), ("participant-join", leg.sid, "1"), ("conference-start", None, "2"),
                      ("participant-leave", leg.sid, "3"), ("participant-leave", call.sid, "4"), ("conference-end", None, "5")]
    assert all(s.valid for s in rig.shop.at("/webhooks/twilio/voice/conference"))
    leave = rig.shop.at("/webhooks/twilio/voice/conference")[3].form
    assert leave["ReasonParticipantLeft"] == "participant_hung_up" and leave["ParticipantCallStatus"] == "completed"
    assert leave["ParticipantLabel"] == "agent" and leave["EndConferenceOnExit"] == "true"
    end = rig.shop.at("/webhooks/twilio/voice/conference")[5].form
    assert end["ReasonConferenceEnded"] == "participant-with-end-conference-on-exit-left" and end["CallSidEndingConference"] == leg.sid
    leg_statuses = [s.form["CallStatus"] for s in rig.shop.at("/webhooks/twilio/voice/status") if s.form["CallSid"] == leg.sid]
    assert leg_statuses == ["initiated", "ringing", "in-progress", "completed"]
    (after,) = rig.shop.at("/webhooks/twilio/voice/after")  # the caller's <Dial> went on: its action
    assert after.form["DialCallStatus"] == "completed"
    assert rig.says(call)[-1] == "The agent has left. Goodbye."


async def test_the_caller_leaving_ends_a_conference_with_end_conference_on_exit(rig: Rig) -> None:
    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: wait_in_conference("conv-43")
    call = await rig.call()
    await joined(rig, call)
    created = await rig.twilio.conferences("conv-43").participants.create_async(from_=SHOP, to=f"client:{AGENT}")
    leg = rig.voice.call(created.call_sid)
    await rig.voice.wait_for(lambda: leg.status == "ringing")
    rig.voice.answer(leg.sid)
    await joined(rig, leg)
    rig.voice.hang_up(call.sid)
    await rig.over(leg)
    conference = next(iter(rig.voice.conferences.values()))
    assert conference.status == "completed" and leg.status == "completed"
    assert conference.reason_ended == "participant-with-end-conference-on-exit-left"
    events = [s.form for s in rig.shop.at("/webhooks/twilio/voice/conference")]
    assert [e["StatusCallbackEvent"] for e in events][-3:] == ["participant-leave", "participant-leave", "conference-end"]
    assert events[-1]["ReasonConferenceEnded"] == "participant-with-end-conference-on-exit-left"
    assert events[-1]["CallSidEndingConference"] == call.sid and events[-1]["ParticipantLabelEndingConference"] == "customer"


async def test_hold_mute_and_coaching_through_participants(rig: Rig) -> None:
    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: wait_in_conference("conv-44")
    rig.shop.routes["/hold-music"] = lambda form, q: "<Response><Say>Your call is important to us.</Say></Response>"
    call = await rig.call()
    await joined(rig, call)
    agent = await rig.twilio.conferences("conv-44").participants.create_async(from_=SHOP, to=f"client:{AGENT}", label="agent")
    leg = rig.voice.call(agent.call_sid)
    await rig.voice.wait_for(lambda: leg.status == "ringing")
    rig.voice.answer(leg.sid)
    await joined(rig, leg)
    conference = call.participant.conference if call.participant else None
    assert conference is not None
    with pytest.raises(TwilioRestException) as by_name:  # only Participants create takes the friendly name
        await rig.twilio.conferences("conv-44").participants(call.sid).update_async(hold=True)
    assert by_name.value.status == 404 and by_name.value.code == 20404
    with pytest.raises(TwilioException, match="405.*20004"):  # the package reports a list's failure this way
        await rig.twilio.conferences("conv-44").participants.list_async()
    held = await rig.twilio.conferences(conference.sid).participants(call.sid).update_async(
        hold=True, hold_url=rig.hub_url + "/hold-music", hold_method="GET")
    assert held.hold is True
    await rig.voice.wait_for(lambda: "Your call is important to us." in rig.says(call))
    (hold_request,) = rig.shop.at("/hold-music")[:1]
    assert hold_request.method == "GET" and hold_request.valid
    await rig.twilio.conferences(conference.sid).participants("customer").update_async(hold=False)
    muted = await rig.twilio.conferences(conference.sid).participants("agent").update_async(muted=True)
    assert muted.muted is True
    supervisor = await rig.twilio.conferences(conference.sid).participants.create_async(
        from_=SHOP, to="client:supervisor_1", label="supervisor", coaching=True, call_sid_to_coach=leg.sid)
    sup = rig.voice.call(supervisor.call_sid)
    await rig.voice.wait_for(lambda: sup.status == "ringing")
    rig.voice.answer(sup.sid)
    await joined(rig, sup)
    barged = await rig.twilio.conferences(conference.sid).participants(sup.sid).update_async(coaching=False)
    assert barged.coaching is False and barged.call_sid_to_coach is None
    with pytest.raises(TwilioRestException) as refused:
        await rig.twilio.conferences(conference.sid).participants(sup.sid).update_async(coaching=True)
    assert refused.value.status == 400
    await rig.twilio.conferences(conference.sid).participants(sup.sid).delete_async()
    with pytest.raises(TwilioRestException) as gone:
        await rig.twilio.conferences(conference.sid).participants(sup.sid).fetch_async()
    assert gone.value.code == 20404
    await rig.voice.wait_for(lambda: sup.over)
    await rig.standin.drain()
    events = [(s.form["StatusCallbackEvent"], s.form.get("CallSid"), s.form.get("Hold"), s.form.get("Muted"),
               s.form.get("Coaching")) for s in rig.shop.at("/webhooks/twilio/voice/conference")]
    assert events[3:] == [
        ("participant-hold", call.sid, "true", "false", "false"),
        ("participant-unhold", call.sid, "false", "false", "false"),
        ("participant-mute", leg.sid, "false", "true", "false"),
        ("participant-join", sup.sid, "false", "false", "true"),
        ("participant-modify", sup.sid, "false", "false", "false"),
        ("participant-leave", sup.sid, "false", "false", "false"),
    ]
    join = [s.form for s in rig.shop.at("/webhooks/twilio/voice/conference")][6]
    assert join["CallSidToCoach"] == leg.sid
    assert rig.shop.at("/webhooks/twilio/voice/conference")[-1].form["ReasonParticipantLeft"] == "participant_kicked"
    await rig.twilio.conferences(conference.sid).update_async(status="completed")
    await rig.over(call)
    await rig.over(leg)
    assert conference.reason_ended == "conference-ended-via-api"


async def test_an_announcement_to_one_participant_is_heard_by_them_alone_once_and_only_in_the_room(rig: Rig) -> None:
    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: wait_in_conference("conv-45")
    rig.shop.routes["/whisper"] = lambda form, q: "<Response><Say>Callback for Ann: the refund</Say></Response>"
    call = await rig.call()
    await joined(rig, call)
    conference = call.participant.conference if call.participant else None
    assert conference is not None
    agent = await rig.twilio.conferences("conv-45").participants.create_async(from_=SHOP, to=f"client:{AGENT}", label="agent")
    leg = rig.voice.call(agent.call_sid)
    await rig.voice.wait_for(lambda: leg.status == "ringing")
    with pytest.raises(TwilioRestException) as ringing:  # still ringing: nobody in the room to hear it
        await rig.twilio.conferences(conference.sid).participants(leg.sid).update_async(announce_url=rig.hub_url + "/whisper")
    assert ringing.value.status == 400 and ringing.value.code == 20001
    rig.voice.answer(leg.sid)
    await joined(rig, leg)
    await rig.twilio.conferences(conference.sid).participants(leg.sid).update_async(
        announce_url=rig.hub_url + "/whisper", announce_method="POST")
    await rig.voice.wait_for(lambda: "Callback for Ann: the refund" in rig.says(leg))
    await asyncio.sleep(0.3)
    assert rig.says(leg).count("Callback for Ann: the refund") == 1  # played once, not looped like hold music
    assert "Callback for Ann: the refund" not in rig.says(call)  # the other participant heard nothing of it
    (request,) = rig.shop.at("/whisper")
    assert request.method == "POST" and request.valid and request.form["CallSid"] == leg.sid


async def test_moving_a_live_call_into_a_conference_by_rest_leaves_its_gather(rig: Rig) -> None:
    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: greeting()
    call = await rig.call()
    await rig.listening(call)
    twiml = VoiceResponse()
    twiml.dial().conference("conv-45", status_callback=rig.hub_url + "/webhooks/twilio/voice/conference",
                            status_callback_event="join leave", wait_url="")
    await rig.twilio.calls(call.sid).update_async(twiml=twiml.to_xml())
    await joined(rig, call)
    assert call.listening is None and call.participant is not None
    await rig.twilio.calls(call.sid).update_async(twiml="<Response><Say>Back to the menu.</Say></Response>")
    await rig.over(call)
    leave = rig.shop.at("/webhooks/twilio/voice/conference")[-1].form
    assert leave["StatusCallbackEvent"] == "participant-leave"
    assert leave["ReasonParticipantLeft"] == "participant_updated_via_api"
    assert rig.says(call)[-1] == "Back to the menu."


async def test_dial_client_rings_the_agent_and_bridges_until_one_hangs_up(rig: Rig) -> None:
    def connect(form: dict[str, str], query: dict[str, str]) -> VoiceResponse:
        response = VoiceResponse()
        dial = response.dial(action="/webhooks/twilio/voice/dialled", timeout=20)
        dial.client(AGENT, status_callback="/webhooks/twilio/voice/status", status_callback_event="ringing answered completed")
        return response

    rig.shop.routes["/webhooks/twilio/voice"] = connect
    rig.shop.routes["/webhooks/twilio/voice/dialled"] = lambda form, q: hang_up("Thanks for calling.")
    call = await rig.call()
    legs = await rig.voice.wait_for(lambda: rig.voice.client_legs(AGENT))
    (leg,) = legs
    child = rig.voice.call(leg["call_sid"])
    assert child.parent_call_sid == call.sid and child.direction == "outbound-dial"
    rig.voice.answer(child.sid)
    await rig.voice.wait_for(lambda: call.bridge is child)
    rig.voice.hang_up(child.sid)
    await rig.over(call)
    (dialled,) = rig.shop.at("/webhooks/twilio/voice/dialled")
    assert dialled.form["DialCallStatus"] == "completed" and dialled.form["DialCallSid"] == child.sid
    child_statuses = [s.form for s in rig.shop.at("/webhooks/twilio/voice/status") if s.form["CallSid"] == child.sid]
    assert [s["CallStatus"] for s in child_statuses] == ["ringing", "in-progress", "completed"]
    assert child_statuses[0]["ParentCallSid"] == call.sid and child_statuses[0]["Direction"] == "outbound-dial"


async def test_a_rest_update_of_the_dialled_leg_unbridges_it_and_the_caller_goes_on(rig: Rig) -> None:
    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: (
        f'<Response><Dial action="/webhooks/twilio/voice/dialled"><Client>{AGENT}</Client></Dial></Response>')
    rig.shop.routes["/webhooks/twilio/voice/dialled"] = lambda form, q: greeting(input="speech", timeout=30)
    call = await rig.call()
    (leg,) = await rig.voice.wait_for(lambda: rig.voice.client_legs(AGENT))
    child = rig.voice.call(leg["call_sid"])
    rig.voice.answer(child.sid)
    await rig.voice.wait_for(lambda: call.bridge is child)
    await rig.twilio.calls(child.sid).update_async(twiml="<Response><Pause length=\"60\"/></Response>")
    await rig.listening(call)
    assert child.status == "in-progress" and call.bridge is None and child.bridge is None
    (dialled,) = rig.shop.at("/webhooks/twilio/voice/dialled")
    assert dialled.form["DialCallStatus"] == "completed" and dialled.form["DialCallSid"] == child.sid
    rig.voice.hang_up(child.sid)
    rig.voice.hang_up(call.sid)
    await rig.over(call)


async def test_dial_client_nobody_answers_is_no_answer(rig: Rig) -> None:
    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: (
        '<Response><Dial timeout="1" action="/webhooks/twilio/voice/dialled"><Client>nobody_here</Client></Dial></Response>')
    rig.shop.routes["/webhooks/twilio/voice/dialled"] = lambda form, q: hang_up("Nobody is free.")
    call = await rig.call()
    await rig.over(call)
    (dialled,) = rig.shop.at("/webhooks/twilio/voice/dialled")
    assert dialled.form["DialCallStatus"] == "no-answer"


async def test_enqueue_and_dial_queue_bridge_the_first_caller(rig: Rig) -> None:
    def enqueue(form: dict[str, str], query: dict[str, str]) -> VoiceResponse:
        response = VoiceResponse()
        response.enqueue("support", wait_url="/queue-wait", action="/queue-done")
        return response

    rig.shop.routes["/webhooks/twilio/voice"] = enqueue
    rig.shop.routes["/queue-wait"] = lambda form, q: f"<Response><Say>You are number {form['QueuePosition']}.</Say></Response>"
    rig.shop.routes["/queue-done"] = lambda form, q: hang_up(f"Queue result {form['QueueResult']}.")
    call = await rig.call()
    await rig.voice.wait_for(lambda: "You are number 1." in rig.says(call))
    agent_twiml = VoiceResponse()
    agent_twiml.dial().queue("support")
    rig.voice.phones["+14155550123"] = "answer"
    agent = await rig.twilio.calls.create_async(to="+14155550123", from_=SHOP, twiml=agent_twiml.to_xml())
    agent_call = rig.voice.call(agent.sid)
    await rig.voice.wait_for(lambda: call.bridge is agent_call or agent_call.bridge is call)
    rig.voice.hang_up(agent_call.sid)
    await rig.over(call)
    (done,) = rig.shop.at("/queue-done")
    assert done.form["QueueResult"] == "bridged" and done.form["QueueSid"].startswith("QU")
    waits = rig.shop.at("/queue-wait")
    assert waits and waits[0].form["QueuePosition"] == "1" and waits[0].form["CurrentQueueSize"] == "1"


async def test_record_posts_a_recording_url(rig: Rig) -> None:
    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: (
        '<Response><Say>Leave a message after the beep.</Say><Record action="/recorded" finishOnKey="#" timeout="5"/></Response>')
    rig.shop.routes["/recorded"] = lambda form, q: hang_up("Thanks.")
    call = await rig.call()
    await rig.voice.wait_for(lambda: call.listening is not None and call.listening.kind == "record")
    rig.voice.send_speech(call.sid, "please call me back tomorrow")
    rig.voice.send_digits(call.sid, "#")
    await rig.over(call)
    (recorded,) = rig.shop.at("/recorded")
    assert recorded.form["RecordingSid"].startswith("RE") and recorded.form["Digits"] == "#"
    assert recorded.form["RecordingUrl"].startswith(rig.standin_url + f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/RE")
    assert rig.voice.recordings[recorded.form["RecordingSid"]]["text"] == "please call me back tomorrow"


# --- the dev phone ----------------------------------------------------------------------------------


async def test_the_dev_phone_calls_the_shop_presses_keys_says_words_and_hangs_up(rig: Rig) -> None:
    rig.shop.routes["/webhooks/twilio/voice"] = lambda form, q: greeting()
    rig.shop.routes["/webhooks/twilio/voice/gather"] = lambda form, q: greeting(action="/webhooks/twilio/voice/gather")
    async with aiohttp.ClientSession() as http:
        page = f"{rig.standin_url}/dev/phone"
        async with http.get(page) as html:
            text = await html.text()
            assert html.status == 200 and 'id="call-button"' in text and 'id="keypad"' in text
        async with http.get(page + "/app.js") as script:
            code = await script.text()
            assert "speechSynthesis" in code and "innerHTML" not in code
        async with http.get(page + "/api/setup") as setup:
            assert (await setup.json())["voice_numbers"] == [SHOP]
        async with http.post(page + "/api/call", json={"from": CUSTOMER, "to": WHATSAPP}) as bad:
            assert bad.status == 400
        async with http.post(page + "/api/call", json={"from": CUSTOMER, "to": SHOP}) as started:
            sid = (await started.json())["call_sid"]
        call = rig.voice.call(sid)
        await rig.listening(call)
        async with http.post(f"{page}/api/calls/{sid}/digits", json={"digits": "1#"}) as pressed:
            assert (await pressed.json())["accepted"] is True
        await rig.voice.wait_for(lambda: len(rig.shop.at("/webhooks/twilio/voice/gather")) == 1 and call.listening)
        async with http.post(f"{page}/api/calls/{sid}/speech", json={"text": "track my order", "confidence": 0.75}) as said:
            assert (await said.json())["accepted"] is True
        async with http.post(f"{page}/api/calls/{sid}/speech", json={"text": "x", "confidence": 2}) as wrong:
            assert wrong.status == 400
        await rig.voice.wait_for(lambda: len(rig.shop.at("/webhooks/twilio/voice/gather")) == 2)
        async with http.post(f"{page}/api/calls/{sid}/hangup", json={}) as hung:
            assert (await hung.json())["status"] == "completed"
        async with http.get(page + "/api/calls", params={"number": CUSTOMER}) as listed:
            (shown,) = (await listed.json())["calls"]
    speech = rig.shop.at("/webhooks/twilio/voice/gather")[1].form
    assert speech["SpeechResult"] == "track my order" and speech["Confidence"] == "0.75"
    kinds = [e["kind"] for e in shown["transcript"]]
    assert shown["status"] == "completed" and "say" in kinds and kinds.count("you") == 2


# --- recorded-style fixtures for the hub's adapter tests ------------------------------------------------

_SID = re.compile(r"\b(CA|CF|RE|PN|QU)[0-9a-f]{32}\b")
_FIXED_TIME = "Tue, 02 Jun 2026 10:00:00 +0000"


class _Canon:
    """Replaces what changes from run to run (SIDs, tokens, times) with fixed fictional values."""

    def __init__(self) -> None:
        self.sids: dict[str, str] = {}

    def sid(self, match: re.Match[str]) -> str:
        real = match.group(0)
        if real not in self.sids:
            prefix = real[:2]
            count = sum(1 for s in self.sids if s.startswith(prefix)) + 1
            self.sids[real] = f"{prefix}{count:02d}" + "5e7f3c0a9b8d4e6f1a2b3c4d5e6f70"
        return self.sids[real]

    def form(self, form: dict[str, str]) -> dict[str, str]:
        fixed = {}
        for key, value in form.items():
            if key == "CallToken":
                value = '{"parentCallInfoToken":"eyJhbGciOiJFUzI1NiJ9.c3RhbmQtaW4.stand-in","identityHeaderTokens":[]}'
            elif key == "Timestamp":
                value = _FIXED_TIME
            elif key in ("CallDuration", "RecordingDuration"):
                value = "42"
            elif key == "Duration":
                value = "1"
            fixed[key] = _SID.sub(self.sid, value)
        return fixed


def _fixture(canon: _Canon, record: VoiceRequest) -> tuple[str, dict[str, str], str]:
    parts = urlsplit(record.url)
    form = canon.form(record.form)
    if record.method == "GET":
        query = canon.form(dict(parse_qsl(parts.query, keep_blank_values=True)))
        url = FIXTURE_BASE + parts.path + "?" + urlencode(query)
        return url, {}, str(RequestValidator(TOKEN).compute_signature(url, {}))
    url = FIXTURE_BASE + parts.path + (f"?{parts.query}" if parts.query else "")
    return url, form, str(RequestValidator(TOKEN).compute_signature(url, form))


async def test_recorded_style_fixtures_of_what_the_stand_in_posts(rig: Rig) -> None:
    """A whole call: greeting, DTMF, speech, an empty gather, the wait in a conference, the agent's client leg with
    every progress event, hold, both hanging up; the stand-in's posts must keep the committed fixtures' field sets."""
    gathers = iter(["dtmf", "speech", "empty"])

    def gather(form: dict[str, str], query: dict[str, str]) -> VoiceResponse:
        step = next(gathers, None)
        if step is None:
            return wait_in_conference("conv-7")
        return greeting(timeout=1 if step == "empty" else 10, action_on_empty_result=True)

    rig.shop.routes["/webhooks/twilio/voice"] = gather
    rig.shop.routes["/webhooks/twilio/voice/gather"] = gather
    rig.shop.routes["/webhooks/twilio/voice/wait"] = music
    call = await rig.call()
    await rig.listening(call)
    rig.voice.send_digits(call.sid, "10234#")
    await rig.voice.wait_for(lambda: len(rig.shop.at("/webhooks/twilio/voice/gather")) == 1 and call.listening)
    rig.voice.send_speech(call.sid, "I'd like two large red t-shirts", 0.91)
    await joined(rig, call)
    created = await rig.twilio.conferences("conv-7").participants.create_async(
        from_=SHOP, to=f"client:{AGENT}", label="agent", status_callback=rig.hub_url + "/webhooks/twilio/voice/status",
        status_callback_event=["initiated", "ringing", "answered", "completed"])
    leg = rig.voice.call(created.call_sid)
    await rig.voice.wait_for(lambda: leg.status == "ringing")
    rig.voice.answer(leg.sid)
    await joined(rig, leg)
    conference_sid = call.participant.conference.sid if call.participant else ""
    await rig.twilio.conferences(conference_sid).participants(call.sid).update_async(hold=True)
    await rig.twilio.conferences(conference_sid).participants(call.sid).update_async(hold=False)
    rig.voice.hang_up(leg.sid)
    await rig.voice.wait_for(lambda: leg.over)
    rig.voice.hang_up(call.sid)
    await rig.over(call)
    assert all(s.valid for s in rig.shop.seen) and not call.errors

    def only(kind: str, who: Call, **match: str) -> VoiceRequest:
        found = [r for r in rig.requests(kind, who) if all(r.form.get(k) == v for k, v in match.items())]
        assert found, (kind, match)
        return found[0]

    gathers_posted = rig.requests("action", call)
    conference_posts = [r for r in rig.voice.requests if r.kind == "conference"]

    def event(name: str, who: Call | None = None) -> VoiceRequest:
        return next(r for r in conference_posts if r.form["StatusCallbackEvent"] == name and (who is None or r.call_sid == who.sid))

    wanted: dict[str, tuple[VoiceRequest, str]] = {
        "incoming_call": (rig.requests("voice", call)[0], "A call comes in (the number's voice URL): CallStatus=ringing, CallToken"),
        "gather_dtmf": (gathers_posted[0], "A <Gather> action after the caller typed 10234#"),
        "gather_speech": (gathers_posted[1], "A <Gather> action with SpeechResult and Confidence"),
        "gather_empty": (gathers_posted[2], "A <Gather> action with no input (actionOnEmptyResult=true)"),
        "status_inbound_completed": (only("status", call), "The number's status callback when the incoming call ends"),
        "status_leg_initiated": (only("status", leg, CallStatus="initiated"), "An agent's client leg (Participants API): initiated"),
        "status_leg_ringing": (only("status", leg, CallStatus="ringing"), "... ringing"),
        "status_leg_answered": (only("status", leg, CallStatus="in-progress"), "... answered (CallStatus=in-progress)"),
        "status_leg_completed": (only("status", leg, CallStatus="completed"), "... completed"),
        "conference_participant_join": (event("participant-join", call), "The caller joins the conference"),
        "conference_agent_join": (event("participant-join", leg), "The agent's leg joins"),
        "conference_start": (event("conference-start"), "The conference starts (a participant with startConferenceOnEnter)"),
        "conference_participant_hold": (event("participant-hold", call), "The caller is put on hold (Participants update)"),
        "conference_participant_unhold": (event("participant-unhold", call), "... and taken off hold"),
        "conference_agent_leave": (event("participant-leave", leg), "The agent hangs up"),
        "conference_participant_leave": (event("participant-leave", call), "The caller hangs up"),
        "conference_end": (event("conference-end"), "The conference ends (the caller had endConferenceOnExit)"),
    }
    canon = _Canon()
    manifest_path = FIXTURES / "signatures.json"
    if os.environ.get("WRITE_TWILIO_FIXTURES") == "1":
        FIXTURES.mkdir(parents=True, exist_ok=True)
        entries = {}
        for name, (record, what) in wanted.items():
            url, form, signature = _fixture(canon, record)
            (FIXTURES / f"{name}.txt").write_text(urlencode(form) + "\n", encoding="utf-8")
            entries[f"{name}.txt"] = {"url": url, "method": record.method, "signature": signature, "what": what}
        manifest = {"auth_token": TOKEN, "public_base_url": FIXTURE_BASE, "fixtures": entries}
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert manifest["auth_token"] == TOKEN and set(manifest["fixtures"]) == {f"{n}.txt" for n in wanted}
    for name, (record, _what) in wanted.items():
        entry = manifest["fixtures"][f"{name}.txt"]
        recorded = parse_qsl((FIXTURES / f"{name}.txt").read_text(encoding="utf-8").strip(), keep_blank_values=True)
        assert [k for k, _ in recorded] == list(record.form), name  # the same fields, in the same order
        assert RequestValidator(TOKEN).validate(entry["url"], dict(recorded), entry["signature"]), name
        assert urlsplit(entry["url"]).path == urlsplit(record.url).path
