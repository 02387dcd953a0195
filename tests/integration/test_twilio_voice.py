"""The phone over Twilio Voice: signed webhook requests against the real hub core (HubService on SQLite and
PostgreSQL, a scripted bot), answered with TwiML, and the adapter's REST calls checked by a small fake of
Twilio's API (Calls, Conferences' Participants) until the local stand-in serves them.

The hub is reached as ``https://hub.example.com`` (PUBLIC_BASE_URL) while the test talks to it on a local
port: the signatures are computed over the public URL, as Twilio computes them.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode
from xml.etree import ElementTree

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from multidict import MultiDict
from sqlmodel import col, select

from contact_center.channels import VOICE, ChannelRegistry
from contact_center.hub.service import AgentRef, HubService
from contact_center.ports import CallAction, OutboundMessage
from contact_center.state.memory import MemoryStateStore
from crm_store.db import Database
from crm_store.models import Conversation, Message, Order
from crm_store.repositories import agents as agents_repo
from crm_store.repositories.customers import resolve_identity
from integrations.twilio import ivr
from integrations.twilio.config import TwilioConfig, parse_numbers
from integrations.twilio.receipts import MemoryWebhookReceipts
from integrations.twilio.signature import compute_signature
from integrations.twilio.voice import (
    CALLBACK_TAKEN_TEXT,
    FALLBACK_TEXT,
    HIDDEN_NUMBER_TEXT,
    NOT_SPOKEN_WORDS,
    VoiceAdapter,
    VoiceSettings,
    add_voice_routes,
    parse_call,
)
from integrations.twilio.voice_rest import VoiceRestClient
from tests.factories import add_product

BASE = "https://hub.example.com"
ACCOUNT_SID = "ACa1b2c3d4e5f60718293a4b5c6d7e8f90"
TOKEN = "stand-in-auth-token"
SHOP = "+15005550006"
CALLER = "+14155550100"
OTHER_CALLER = "+14155550111"
TODAY = date(2025, 6, 10)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "twilio" / "voice"


def sid(n: int, prefix: str = "CA") -> str:
    return f"{prefix}{n:032x}"


# --- a scripted bot -------------------------------------------------------------------------------------


@dataclass
class Reply:
    text: str
    buttons: tuple[dict[str, str], ...] = ()
    custom: dict[str, Any] = field(default_factory=dict)

    @property
    def handoff(self) -> bool:
        return bool(self.custom.get("handoff"))


class ShopBot:
    """Answers like the ordering bot would, and records what it was sent."""

    def __init__(self, delay: float = 0.0) -> None:
        self.got: list[str] = []
        self.delay = delay

    async def ready(self) -> bool:
        return True

    async def send(self, sender: str, text: str, metadata: dict[str, Any] | None = None) -> list[Reply]:
        self.got.append(text)
        if self.delay:
            await asyncio.sleep(self.delay)
        if text == "/order_product":
            return [Reply("What would you like to order?")]
        if text.startswith("/track_order{"):
            return [Reply("Order 10234 is confirmed and waiting to be picked. Expected delivery: Wednesday 11 June 2025.")]
        if text == "/track_order":
            return [Reply("Sure. What is your order number?")]
        if "t-shirt" in text.lower():
            return [Reply("Two red t-shirts, great.", ()), Reply("Which size?", (
                {"title": "Small", "payload": '/choose{"size": "S"}'}, {"title": "Large", "payload": '/choose{"size": "L"}'},
            ))]
        if text.startswith("/choose"):
            return [Reply("Two large red t-shirts come to 30 euros and arrive on Friday. Shall I place the order?")]
        if "manager" in text.lower():
            return [Reply("Let me find a colleague for you."), Reply("", custom={"handoff": True, "reason": "customer_request",
                                                                                   "intent": "complaint"})]
        return [Reply(f"You said: {text}")]


# --- a fake of Twilio's call-control API -----------------------------------------------------------------


class FakeTwilioApi:
    """Twilio's Calls, Conferences (list) and Participants endpoints, checking credentials and recording the
    forms. As on Twilio, only Participants create takes a conference's friendly name; an update needs its SID."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, MultiDict[str]]] = []
        self.refuse: dict[str, tuple[int, int, str]] = {}  # path fragment -> (HTTP status, code, message)
        self.legs = 0
        self.conferences: dict[str, str] = {}  # friendly name -> CF SID (made by a participant's create)
        self.app = web.Application()
        prefix = "/2010-04-01/Accounts/{account}"
        self.app.router.add_post(prefix + "/Calls/{call}.json", self.call)
        self.app.router.add_get(prefix + "/Conferences.json", self.list_conferences)
        self.app.router.add_post(prefix + "/Conferences/{conference}/Participants.json", self.add_participant)
        self.app.router.add_post(prefix + "/Conferences/{conference}/Participants/{leg}.json", self.participant)

    async def _form(self, request: web.Request) -> MultiDict[str]:
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{TOKEN}".encode()).decode()
        assert request.headers.get("Authorization") == expected
        assert request.match_info["account"] == ACCOUNT_SID
        form = MultiDict(parse_qsl(await request.text(), keep_blank_values=True))
        self.requests.append((request.path, form))
        return form

    def _refused(self, path: str) -> web.Response | None:
        for fragment, (status, code, message) in self.refuse.items():
            if fragment in path:
                return web.json_response({"code": code, "message": message, "status": status, "more_info": ""}, status=status)
        return None

    async def call(self, request: web.Request) -> web.Response:
        await self._form(request)
        refused = self._refused(request.path)
        if refused is not None:
            return refused
        return web.json_response({"sid": request.match_info["call"], "account_sid": ACCOUNT_SID, "status": "in-progress"})

    async def add_participant(self, request: web.Request) -> web.Response:
        await self._form(request)
        refused = self._refused(request.path)
        if refused is not None:
            return refused
        self.legs += 1
        name = request.match_info["conference"]
        conference = name if name.startswith("CF") else self.conferences.setdefault(name, sid(100 + len(self.conferences), "CF"))
        return web.json_response({"call_sid": sid(900 + self.legs), "conference_sid": conference, "account_sid": ACCOUNT_SID,
                                  "status": "queued", "label": "agent"}, status=201)

    async def list_conferences(self, request: web.Request) -> web.Response:
        await self._form(request)
        assert request.query.get("Status") == "in-progress"
        name = request.query.get("FriendlyName")
        rows = [{"sid": c, "friendly_name": n, "status": "in-progress", "account_sid": ACCOUNT_SID}
                for n, c in self.conferences.items() if n == name]
        return web.json_response({"conferences": rows, "page": 0, "page_size": 50, "next_page_uri": None, "uri": request.path})

    async def participant(self, request: web.Request) -> web.Response:
        await self._form(request)
        if not re.fullmatch(r"CF[0-9a-f]{32}", request.match_info["conference"]):
            return web.json_response({"code": 20404, "message": "not found", "status": 404, "more_info": ""}, status=404)
        refused = self._refused(request.path)
        if refused is not None:
            return refused
        return web.json_response({"call_sid": request.match_info["leg"], "conference_sid": request.match_info["conference"],
                                  "status": "connected"})

    def of(self, fragment: str) -> list[tuple[str, MultiDict[str]]]:
        return [(p, f) for p, f in self.requests if fragment in p]


# --- the hub and the phone ----------------------------------------------------------------------------


class Emits:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any, str | None]] = []

    async def emit(self, event: str, data: Any = None, *, to: str | None = None, namespace: str | None = None, skip_sid: str | None = None) -> None:
        self.events.append((event, data, to))

    async def emit_many(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            await self.emit(**item)

    def of(self, event: str) -> list[Any]:
        return [d for e, d, _ in self.events if e == event]


class TwiML:
    """A TwiML answer, read."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.root = ElementTree.fromstring(text)
        assert self.root.tag == "Response"

    @property
    def says(self) -> list[str]:
        return [e.text or "" for e in self.root.iter("Say")]

    @property
    def said(self) -> str:
        return " ".join(self.says)

    @property
    def gather(self) -> ElementTree.Element | None:
        return self.root.find("Gather")

    @property
    def redirect(self) -> str | None:
        found = self.root.find("Redirect")
        return found.text if found is not None else None

    @property
    def hangs_up(self) -> bool:
        return self.root.find("Hangup") is not None


def local(url: str) -> str:
    assert url.startswith(BASE), url
    return url[len(BASE):]


class Phone:
    """Twilio's side of calls to the shop: signed webhook requests, and the TwiML that answers them."""

    def __init__(self, client: TestClient[Any, Any], hub: HubService, adapter: VoiceAdapter, api: FakeTwilioApi, emits: Emits,
                 bot: ShopBot, receipts: MemoryWebhookReceipts, agent: AgentRef) -> None:
        self.client, self.hub, self.adapter, self.api, self.emits, self.bot = client, hub, adapter, api, emits, bot
        self.receipts, self.agent = receipts, agent

    def form(self, call_sid: str, frm: str = CALLER, **fields: str) -> dict[str, str]:
        base = {"AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": call_sid, "CallStatus": "in-progress",
                "Called": SHOP, "Caller": frm, "Direction": "inbound", "From": frm, "To": SHOP}
        base.update(fields)
        return base

    async def post(self, path_qs: str, form: dict[str, str] | MultiDict[str], *, signature: str | None = "good") -> Any:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if signature == "good":
            signature = compute_signature(TOKEN, BASE + path_qs, form)
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        return await self.client.post(path_qs, data=urlencode(list(form.items())), headers=headers)

    async def twiml(self, path_qs: str, call_sid: str, frm: str = CALLER, **fields: str) -> TwiML:
        resp = await self.post(path_qs, self.form(call_sid, frm, **fields))
        assert resp.status == 200, await resp.text()
        assert resp.content_type == "text/xml"
        return TwiML(await resp.text())

    async def ring(self, call_sid: str, frm: str = CALLER) -> TwiML:
        """A call rings; a holding message (a slow first database connection under a short deadline) is followed."""
        answer = await self.twiml("/webhooks/twilio/voice", call_sid, frm, CallStatus="ringing")
        for _ in range(5):
            if answer.says != [ivr.HOLDING]:
                break
            answer = await self.answer(answer, call_sid, frm=frm)
        return answer

    async def answer(self, answer: TwiML, call_sid: str, *, digits: str = "", speech: str = "", frm: str = CALLER) -> TwiML:
        """Answer a <Gather> (or follow a <Redirect>) as Twilio does."""
        gather = answer.gather
        if gather is not None:
            fields = {"Digits": digits} if digits else {}
            if speech:
                fields.update(SpeechResult=speech, Confidence="0.91")
            return await self.twiml(local(gather.attrib["action"]), call_sid, frm, **fields)
        assert answer.redirect is not None, answer.text
        return await self.twiml(local(answer.redirect), call_sid, frm)

    async def status(self, call_sid: str, status: str, seq: int, *, query: str = "") -> int:
        form = self.form(call_sid, CallStatus=status, SequenceNumber=str(seq), CallDuration="42")
        return int((await self.post("/webhooks/twilio/voice/status" + query, form)).status)

    async def conversation(self, call_sid: str) -> Conversation:
        async with self.hub.db.session() as s:
            return (await s.exec(select(Conversation).where(Conversation.thread_key == call_sid))).one()

    async def messages(self, conversation_id: int) -> list[Message]:
        async with self.hub.db.session() as s:
            return list((await s.exec(select(Message).where(Message.conversation_id == conversation_id).order_by(col(Message.seq)))).all())

    async def settle(self) -> None:
        for _ in range(200):
            if not self.hub._delivery_tasks and not self.hub._bot_tasks:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("background work did not finish")

    async def accept(self, conversation_id: int) -> None:
        await self.hub.agent_online(self.agent)
        await self.hub.set_status(self.agent, "available")
        assert await self.hub.route_once() >= 1
        await self.hub.accept(self.agent, conversation_id)
        await self.settle()


def make_config(api_base_url: str) -> TwilioConfig:
    return TwilioConfig(account_sid=ACCOUNT_SID, auth_token=TOKEN, public_base_url=BASE,
                        numbers=parse_numbers(f"{SHOP}=support"), api_base_url=api_base_url)


async def _phone(db: Database, aiohttp_client: Any, aiohttp_server: Any, *, settings: VoiceSettings | None = None,
                 bot: ShopBot | None = None) -> Phone:
    async with db.transaction() as s:
        agent = await agents_repo.create_agent(s, "alice", "pw-alice-1", display_name="Alice", capacity={"phone": 1})
        await agents_repo.create_queue(s, "general", channels=["chat"])
        await agents_repo.create_queue(s, "support", channels=["phone"])
    api = FakeTwilioApi()
    server = await aiohttp_server(api.app)
    config = make_config(str(server.make_url("")).rstrip("/"))
    client = VoiceRestClient(config, backoff=0.01)
    adapter = VoiceAdapter(config, client, settings or VoiceSettings())
    channels = ChannelRegistry()
    channels.register(VOICE, adapter)
    emits = Emits()
    hub = HubService(db, MemoryStateStore(), emits, channels=channels, wrap_up_seconds=0)
    hub.bot, hub.bot_ready = bot or ShopBot(), True
    await hub.load_queues()
    receipts = MemoryWebhookReceipts()
    app = web.Application()
    add_voice_routes(app, config, lambda: hub, adapter, receipts=receipts, today=lambda: TODAY)

    async def _close(_: web.Application) -> None:
        # the hub's background work (bot turns, deliveries) ends with the test, never with the event loop
        tasks = [*hub._bot_tasks, *hub._delivery_tasks, *hub.wrap_up_tasks.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        await asyncio.wait_for(client.close(), timeout=5)

    app.on_cleanup.append(_close)
    assert agent.id is not None
    return Phone(await aiohttp_client(app), hub, adapter, api, emits, hub.bot, receipts,
                 AgentRef(agent.id, "alice", "Alice", "agent"))


@pytest.fixture
async def phone(db: Database, aiohttp_client: Any, aiohttp_server: Any) -> Phone:
    return await _phone(db, aiohttp_client, aiohttp_server)


async def _customer_with_orders(db: Database) -> int:
    """Dana, known by the caller's number, with a delivered order (newest) and an open one."""
    async with db.transaction() as s:
        found = await resolve_identity(s, "phone", CALLER, display_name="Dana Scully", verified=True)
        customer_id = found.customer.id
        assert customer_id is not None
        now = datetime.now(timezone.utc)
        s.add(Order(id=10234, customer_id=customer_id, status="confirmed", promised_date=TODAY + timedelta(days=1),
                    created_at=now - timedelta(days=2)))
        s.add(Order(id=10301, customer_id=customer_id, status="delivered", promised_date=TODAY - timedelta(days=1),
                    created_at=now - timedelta(days=1)))
    return customer_id


# --- the caller's side ------------------------------------------------------------------------------------


async def test_an_unsigned_or_badly_signed_call_is_403_and_opens_nothing(phone: Phone) -> None:
    form = phone.form(sid(1))
    for signature in (None, "", "bad", compute_signature("another-token", BASE + "/webhooks/twilio/voice", form),
                      compute_signature(TOKEN, "http://127.0.0.1:8080/webhooks/twilio/voice", form)):
        resp = await phone.post("/webhooks/twilio/voice", form, signature=signature)
        assert resp.status == 403
    for path in ("/webhooks/twilio/voice/gather?turn=1&mode=menu", "/webhooks/twilio/voice/wait", "/webhooks/twilio/voice/status",
                 "/webhooks/twilio/voice/conference", "/webhooks/twilio/voice/fallback"):
        assert (await phone.post(path, form, signature=None)).status == 403
    # the signature covers the query: a turn number changed on the way is refused
    signed = compute_signature(TOKEN, BASE + "/webhooks/twilio/voice/gather?turn=1&mode=menu", form)
    assert (await phone.post("/webhooks/twilio/voice/gather?turn=2&mode=menu", form, signature=signed)).status == 403
    async with phone.hub.db.session() as s:
        assert (await s.exec(select(Conversation))).all() == []


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"CallSid": ""}, "CallSid is missing"),
        ({"CallSid": "CA123"}, "is not a Twilio call SID"),
        ({"AccountSid": "AC" + "f" * 32}, "is not this hub's Twilio account"),
        ({"To": "+12025550143"}, "is not one of this hub's numbers"),
        ({"Digits": "12<script>"}, "are not keypad digits"),
    ],
)
async def test_a_malformed_call_is_400_with_the_reason(phone: Phone, changes: dict[str, str], reason: str) -> None:
    form = {**phone.form(sid(2)), **changes}
    resp = await phone.post("/webhooks/twilio/voice", form)
    assert resp.status == 400 and reason in await resp.text()
    resp = await phone.client.post("/webhooks/twilio/voice", json={"CallSid": sid(2)})
    assert resp.status == 400 and "not a form" in await resp.text()


async def test_a_caller_is_recognised_by_name_with_their_latest_open_orders_status(phone: Phone) -> None:
    customer_id = await _customer_with_orders(phone.hub.db)
    await add_product(phone.hub.db, "TSHIRT-RED", name="Red T-shirt")
    answer = await phone.ring(sid(3))
    gather = answer.gather
    assert gather is not None and answer.root.find("Say") is None  # everything said inside the Gather: the caller may barge in
    assert answer.says[0] == "Hello Dana Scully, thanks for calling. Your order 10234 is confirmed and should arrive tomorrow."
    assert answer.says[1] == ivr.MENU_PROMPT
    assert gather.attrib["input"] == "dtmf speech" and gather.attrib["actionOnEmptyResult"] == "true"
    assert gather.attrib["finishOnKey"] == "#" and gather.attrib["speechTimeout"] == "auto"
    assert local(gather.attrib["action"]) == "/webhooks/twilio/voice/gather?turn=1&mode=menu"
    assert "agent" in gather.attrib["hints"]
    conv = await phone.conversation(sid(3))
    assert (conv.channel, conv.status, conv.customer_id, conv.our_address) == ("phone", "bot", customer_id, SHOP)
    assert [m.sender_kind for m in await phone.messages(conv.id or 0)] == ["system"]  # the opening note; no bot turn
    assert phone.bot.got == []
    # a repeated ring (Twilio's retry) opens nothing new; by then the catalogue's names are speech hints
    await asyncio.sleep(0.05)
    again = await phone.ring(sid(3))
    assert "Red T-shirt" in (again.gather.attrib["hints"] if again.gather is not None else "")
    async with phone.hub.db.session() as s:
        assert len((await s.exec(select(Conversation))).all()) == 1


async def test_a_new_caller_is_greeted_without_a_name_and_a_hidden_number_is_told_why_not(phone: Phone) -> None:
    answer = await phone.ring(sid(4), frm=OTHER_CALLER)
    assert answer.says[0] == "Hello, thanks for calling."
    hidden = await phone.ring(sid(5), frm="anonymous")
    assert hidden.says == [HIDDEN_NUMBER_TEXT] and hidden.hangs_up


async def test_the_menu_by_digit_and_by_speech(phone: Phone) -> None:
    menu = await phone.ring(sid(6))
    ordering = await phone.answer(menu, sid(6), digits="1")
    assert ordering.says == ["What would you like to order?"]
    assert ordering.gather is not None and "turn=2&mode=bot" in ordering.gather.attrib["action"]
    menu = await phone.ring(sid(7))
    tracking = await phone.answer(menu, sid(7), speech="Track my order.")
    assert tracking.says == ["Sure. What is your order number?"]
    menu = await phone.ring(sid(8))
    typed = await phone.answer(menu, sid(8), digits="10234")  # typed and ended with '#': Twilio leaves the '#' out
    assert typed.says[0].startswith("Order 10234 is confirmed")
    assert phone.bot.got == ["/order_product", "/track_order", '/track_order{"order_id": "10234"}']
    conv = await phone.conversation(sid(8))
    assert [(m.sender_kind, m.body) for m in await phone.messages(conv.id or 0)][1] == ("customer", "10234")


async def test_free_speech_goes_to_the_bot_normalised_for_the_phone(phone: Phone) -> None:
    menu = await phone.ring(sid(9))
    answer = await phone.answer(menu, sid(9), speech="my order is one oh two three four")
    assert answer.says == ["You said: my order is 10234"]
    conv = await phone.conversation(sid(9))
    assert (await phone.messages(conv.id or 0))[1].body == "my order is one oh two three four"  # stored as said


async def test_zero_reaches_a_person_at_any_time(phone: Phone) -> None:
    menu = await phone.ring(sid(10))
    ordering = await phone.answer(menu, sid(10), digits="1")
    queued = await phone.answer(ordering, sid(10), digits="0")
    assert queued.says == [ivr.TO_AGENT, "You are next in the queue. Someone will be with you in under a minute."] or \
        queued.says == [ivr.TO_AGENT, "You are next in the queue."]
    assert queued.redirect is not None and "/webhooks/twilio/voice/wait" in queued.redirect
    conv = await phone.conversation(sid(10))
    assert conv.status == "queued"
    handoff = [m for m in await phone.messages(conv.id or 0) if m.internal]
    assert handoff and handoff[0].body.startswith("Phone menu handover: the customer asked for a person.")
    # saying it works as well, from the first menu
    said = await phone.answer(await phone.ring(sid(11)), sid(11), speech="Can I speak to someone, please?")
    assert ivr.TO_AGENT in said.says and "number 2 in the queue" in said.said


async def test_two_silent_reprompts_then_a_person(phone: Phone) -> None:
    menu = await phone.ring(sid(12))
    first = await phone.answer(menu, sid(12))
    assert first.says == [ivr.REPROMPT, ivr.MENU_PROMPT] and first.gather is not None
    assert "miss=1" in first.gather.attrib["action"]
    second = await phone.answer(first, sid(12), digits="7")  # no such option: asked again too
    assert second.says == [ivr.NOT_AN_OPTION, ivr.MENU_PROMPT] and "miss=2" in (second.gather.attrib["action"] if second.gather is not None else "")
    third = await phone.answer(second, sid(12))
    assert third.gather is None and ivr.TO_AGENT in third.says and third.redirect is not None
    conv = await phone.conversation(sid(12))
    assert conv.status == "queued" and phone.bot.got == []
    handoff = [m for m in await phone.messages(conv.id or 0) if m.internal]
    assert "no_input" in handoff[0].body


async def test_a_bot_turn_speaks_numbered_choices_and_a_digit_or_words_pick_one(phone: Phone) -> None:
    menu = await phone.ring(sid(13))
    sizes = await phone.answer(menu, sid(13), speech="I'd like two large red t-shirts")
    assert sizes.says == ["Two red t-shirts, great.", "Which size? Say or press 1 for Small, 2 for Large."]
    gather = sizes.gather
    assert gather is not None and "mode=choices" in gather.attrib["action"] and gather.attrib["numDigits"] == "1"
    picked = await phone.answer(sizes, sid(13), digits="2")
    assert picked.says == ["Two large red t-shirts come to 30 euros and arrive on Friday. Shall I place the order?"]
    assert phone.bot.got == ["I'd like two large red t-shirts", '/choose{"size": "L"}']  # the core picked the button's payload
    # and by words, on another call
    sizes = await phone.answer(await phone.ring(sid(14)), sid(14), speech="two red t-shirts please")
    await phone.answer(sizes, sid(14), speech="The small one.")
    assert phone.bot.got[-1] == '/choose{"size": "S"}'
    # what the caller heard is marked delivered for the agent
    await asyncio.sleep(0.05)
    conv = await phone.conversation(sid(13))
    bot_messages = [m for m in await phone.messages(conv.id or 0) if m.sender_kind == "bot"]
    assert bot_messages and all(m.delivery_status == "delivered" for m in bot_messages)


async def test_the_bot_hands_over_and_the_wait_loop_reads_the_place_again(phone: Phone) -> None:
    first = await phone.answer(await phone.ring(sid(15)), sid(15), digits="0")
    assert "You are next in the queue" in first.said
    handed = await phone.answer(await phone.ring(sid(16), frm=OTHER_CALLER), sid(16), frm=OTHER_CALLER, speech="I want the manager")
    assert handed.says[0] == "Let me find a colleague for you." and "You are number 2 in the queue." in handed.said
    assert handed.redirect is not None and "n=1" in handed.redirect
    loop1 = await phone.answer(handed, sid(16), frm=OTHER_CALLER)  # just told: music first, no second announcement
    assert loop1.says == [] and loop1.root.find("Play") is not None
    assert local(loop1.root.find("Play").text or "") == "/webhooks/twilio/voice/hold-music.wav"  # type: ignore[union-attr]
    assert phone.api.requests == []
    # the first caller hangs up: abandoned; the second moves up
    assert await phone.status(sid(15), "completed", 3) == 200
    assert (await phone.conversation(sid(15))).status == "closed"
    loop2 = await phone.answer(loop1, sid(16), frm=OTHER_CALLER)
    assert loop2.says[0].startswith("You are next in the queue.")
    assert loop2.redirect is not None and "n=3" in loop2.redirect
    music = await phone.client.get("/webhooks/twilio/voice/hold-music.wav")
    assert music.status == 200 and music.content_type == "audio/wav" and (await music.read())[:4] == b"RIFF"


async def test_an_agent_accepts_and_the_adapter_bridges_the_call_through_twilio(phone: Phone) -> None:
    await phone.answer(await phone.ring(sid(17)), sid(17), digits="0")
    conv = await phone.conversation(sid(17))
    await phone.accept(conv.id or 0)
    moved, added = phone.api.of(f"/Calls/{sid(17)}.json"), phone.api.of("/Participants.json")
    assert len(moved) == 1 and len(added) == 1
    twiml = TwiML(moved[0][1]["Twiml"])
    conference = twiml.root.find("Dial/Conference")
    assert conference is not None and conference.text == f"conv-{conv.id}"  # named by our conversation, never a number
    assert conference.attrib["startConferenceOnEnter"] == "false" and conference.attrib["endConferenceOnExit"] == "true"
    assert conference.attrib["participantLabel"] == "customer"
    assert local(conference.attrib["statusCallback"]) == f"/webhooks/twilio/voice/conference?call={sid(17)}"
    path, form = added[0]
    assert path.endswith(f"/Conferences/conv-{conv.id}/Participants.json")
    assert form["To"] == f"client:agent_{phone.agent.id}" and form["From"] == SHOP and form["Label"] == f"agent_{phone.agent.id}"
    assert local(form["StatusCallback"]) == f"/webhooks/twilio/voice/status?leg=agent&call={sid(17)}"
    assert form.getall("StatusCallbackEvent") == ["initiated", "ringing", "answered", "completed"]
    assert phone.adapter.with_agent(sid(17))
    # the call card: hold (with music) and mute go to the conference's participants
    await phone.hub.call_action(phone.agent, conv.id, "hold")
    held_path, held = phone.api.requests[-1]
    room_sid = phone.api.conferences[f"conv-{conv.id}"]  # asked by FriendlyName: no conference callback came here
    assert phone.api.requests[-2][0].endswith("/Conferences.json")
    assert held_path.endswith(f"/Conferences/{room_sid}/Participants/{sid(17)}.json") and held["Hold"] == "true"
    assert local(held["HoldUrl"]) == "/webhooks/twilio/voice/hold-music.wav"
    await phone.hub.call_action(phone.agent, conv.id, "mute")
    assert phone.api.requests[-1][0].endswith(f"/Conferences/{room_sid}/Participants/{sid(901)}.json")  # the SID kept: no list again
    assert phone.api.requests[-1][1]["Muted"] == "true" and len(phone.api.of("/Conferences.json")) == 1
    # a text for a caller who is with an agent is not spoken
    report = await phone.adapter.deliver(OutboundMessage(conv.id or 0, 9, "phone", CALLER, SHOP, "hello", thread_key=sid(17)))
    assert report.status == "failed" and report.error_message == NOT_SPOKEN_WORDS
    # closing the conversation hangs the call up
    await phone.hub.close(phone.agent, conv.id, "resolved")
    await phone.settle()
    assert phone.api.requests[-1][0].endswith(f"/Calls/{sid(17)}.json") and phone.api.requests[-1][1]["Status"] == "completed"


async def test_a_caller_who_hung_up_cannot_be_bridged_and_the_agent_is_told_why(phone: Phone) -> None:
    await phone.answer(await phone.ring(sid(18)), sid(18), digits="0")
    conv = await phone.conversation(sid(18))
    phone.api.refuse[f"/Calls/{sid(18)}"] = (400, 21220, "Call is not in-progress. Cannot redirect.")
    await phone.accept(conv.id or 0)
    assert phone.api.of("/Participants") == []  # the agent's phone is not rung for nobody
    told = [d for d in phone.emits.of("call_status") if d["status"] == "failed"]
    assert told and told[0]["detail"]["message"] == "The caller has already hung up."


async def test_refusals_of_the_adapter_are_words(phone: Phone) -> None:
    action = CallAction("transfer", 1, sid(19), 1, target="agent:2")
    report = await phone.adapter.act(action)
    assert report.status == "failed" and "cold transfer" in (report.error_message or "")
    assert (await phone.adapter.act(CallAction("consult", 1, sid(19), 1, target="queue:support"))).status == "failed"  # the core picks the agent
    assert (await phone.adapter.act(CallAction("supervise", 1, sid(19), 3, target="agent:1", mode="shout"))).status == "failed"
    assert (await phone.adapter.act(CallAction("hold", 1, "not-a-call", 1))).status == "failed"
    held = await phone.adapter.act(CallAction("hold", 1, sid(19), 1))  # no live conference conv-1
    assert held.status == "failed" and "no longer bridged" in (held.error_message or "")
    assert not any("/Participants/" in p for p, _ in phone.api.requests)  # never a friendly name where the SID goes
    phone.api.conferences["conv-1"] = sid(9, "CF")
    phone.api.refuse["/Participants/"] = (404, 20404, "not found")
    held = await phone.adapter.act(CallAction("hold", 1, sid(19), 1))
    assert held.status == "failed" and "hung up" in (held.error_message or "")
    phone.api.refuse.clear()
    phone.api.refuse[f"/Calls/{sid(19)}"] = (404, 20404, "not found")
    assert (await phone.adapter.act(CallAction("hang_up", 1, sid(19), 1))).status == "sent"  # already gone: done


async def test_status_callbacks_twice_and_out_of_order_move_forward_only(phone: Phone) -> None:
    # a caller with an agent: the agent is told once of each new status and of the end; the call stays for wrap-up
    await phone.answer(await phone.ring(sid(20)), sid(20), digits="0")
    conv = await phone.conversation(sid(20))
    await phone.accept(conv.id or 0)
    before = len(phone.emits.of("call_status"))
    for status, seq in (("in-progress", 2), ("in-progress", 2), ("ringing", 1), ("completed", 3), ("completed", 3), ("ringing", 1)):
        assert await phone.status(sid(20), status, seq) == 200
    told = [d["status"] for d in phone.emits.of("call_status")][before:]
    assert told == ["in-progress", "ended"]
    assert (await phone.conversation(sid(20))).status == "assigned"  # the agent closes it with a disposition
    # the agent's leg reports as the agent's
    assert await phone.status(sid(901), "ringing", 1, query=f"?leg=agent&call={sid(20)}") == 200
    assert phone.emits.of("call_status")[-1]["status"] == "agent_ringing"
    # a waiting caller who hangs up has abandoned; the repeat and a late ringing change nothing
    await phone.answer(await phone.ring(sid(21), frm=OTHER_CALLER), sid(21), frm=OTHER_CALLER, digits="0")
    for status, seq in (("completed", 4), ("completed", 4), ("ringing", 1), ("in-progress", 2)):
        assert await phone.status(sid(21), status, seq) == 200
    waiting = await phone.conversation(sid(21))
    assert (waiting.status, waiting.disposition) == ("closed", "abandoned")
    assert await phone.hub.store.waiting() == []
    # malformed
    assert await phone.status(sid(21), "", 5) == 400
    assert await phone.status(sid(21), "completed", 5, query="?leg=nobody") == 400
    assert await phone.status(sid(21), "completed", 5, query="?leg=agent&call=CA1") == 400


async def test_a_slow_bot_gives_a_holding_message_and_a_redirect_that_joins_the_turn(
    db: Database, aiohttp_client: Any, aiohttp_server: Any,
) -> None:
    phone = await _phone(db, aiohttp_client, aiohttp_server, settings=VoiceSettings(answer_deadline=0.2, settle_timeout=0.2),
                         bot=ShopBot(delay=0.5))
    menu = await phone.ring(sid(22))
    started = time.monotonic()
    holding = await phone.answer(menu, sid(22), digits="1")
    assert time.monotonic() - started < 0.45  # answered at the deadline, not when the bot is done
    assert holding.says == [ivr.HOLDING] and holding.gather is None
    assert holding.redirect is not None and "pending=1" in holding.redirect and "hold=1" in holding.redirect
    answer = holding
    for _ in range(4):
        answer = await phone.answer(answer, sid(22))
        if answer.says != [ivr.HOLDING]:
            break
    assert answer.says == ["What would you like to order?"] and answer.gather is not None
    assert "turn=2" in answer.gather.attrib["action"]
    assert phone.bot.got == ["/order_product"]  # the redirects joined the turn: one bot turn


async def test_a_failing_core_is_an_apology_in_twiml_never_a_500(phone: Phone, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database gone")

    monkeypatch.setattr(phone.hub, "contact_state", broken)
    rung = await phone.ring(sid(40))
    assert rung.says == [f"{ivr.APOLOGY} {ivr.TO_AGENT}"] and rung.redirect is not None and "/wait" in rung.redirect
    waiting = await phone.answer(rung, sid(40))  # the wait loop plays music when the core cannot say the place
    assert waiting.root.find("Play") is not None and waiting.redirect is not None
    monkeypatch.setattr(phone.hub, "contact_ended", broken)
    assert await phone.status(sid(40), "completed", 1) == 503  # told to try again; its receipt forgotten
    assert phone.receipts.payloads == {} or all(k[1] != "call_status" for k in phone.receipts.payloads)


async def test_a_bot_that_never_answers_passes_the_caller_to_a_person(db: Database, aiohttp_client: Any, aiohttp_server: Any) -> None:
    # the deadline is for every step (the ring too): long enough for a loaded machine's database, far
    # shorter than the bot's delay
    phone = await _phone(db, aiohttp_client, aiohttp_server, settings=VoiceSettings(answer_deadline=1.0, settle_timeout=5.0, max_holds=1),
                         bot=ShopBot(delay=10.0))
    holding = await phone.answer(await phone.ring(sid(23)), sid(23), digits="1")
    assert holding.says == [ivr.HOLDING]
    gave_up = await phone.answer(holding, sid(23))
    assert ivr.TO_AGENT in gave_up.said and gave_up.redirect is not None and "/wait" in gave_up.redirect
    for _ in range(100):  # the hand-over to the queue is written in the background: at most a few seconds
        if (await phone.conversation(sid(23))).status == "queued":
            break
        await asyncio.sleep(0.05)
    assert (await phone.conversation(sid(23))).status == "queued"


async def test_without_the_bot_the_ivr_tells_the_callers_own_order_and_queues_the_rest(phone: Phone) -> None:
    await _customer_with_orders(phone.hub.db)
    phone.hub.bot_ready = False
    told = await phone.answer(await phone.ring(sid(24)), sid(24), digits="10234")
    assert told.says[0] == "Your order 10234 is confirmed and should arrive tomorrow. Is there anything else I can help you with?"
    queued = await phone.answer(told, sid(24), digits="1")
    assert ivr.TO_AGENT in queued.says
    conv = await phone.conversation(sid(24))
    note = [m for m in await phone.messages(conv.id or 0) if m.internal][0]
    assert "Intent: order_product." in note.body
    # someone else's order number is not read out
    other = await phone.answer(await phone.ring(sid(25), frm=OTHER_CALLER), sid(25), frm=OTHER_CALLER, digits="10234")
    assert "10234" not in other.said and ivr.TO_AGENT in other.says


async def test_a_callback_is_offered_after_a_while_and_keeps_the_place(db: Database, aiohttp_client: Any, aiohttp_server: Any) -> None:
    phone = await _phone(db, aiohttp_client, aiohttp_server, settings=VoiceSettings(callback_offer_after=0))
    queued = await phone.answer(await phone.ring(sid(26)), sid(26), digits="0")
    loop = await phone.answer(queued, sid(26))
    offer = loop.gather
    assert offer is not None and offer.attrib["numDigits"] == "1" and "cb=1" in offer.attrib["action"]
    taken = await phone.twiml(local(offer.attrib["action"]), sid(26), Digits="1")
    assert taken.says == [CALLBACK_TAKEN_TEXT] and taken.hangs_up
    assert await phone.status(sid(26), "completed", 5) == 200
    conv = await phone.conversation(sid(26))
    assert conv.status == "queued"  # not abandoned: they are called back
    assert any(m.body.startswith("[Callback requested]") for m in await phone.messages(conv.id or 0))


async def test_the_fallback_apologises_and_records_a_callback(phone: Phone) -> None:
    answer = await phone.twiml("/webhooks/twilio/voice/fallback", sid(27), ErrorCode="11200",
                               ErrorUrl=BASE + "/webhooks/twilio/voice")
    assert answer.says == [FALLBACK_TEXT] and answer.hangs_up
    for _ in range(100):
        await asyncio.sleep(0.01)
        async with phone.hub.db.session() as s:
            found = (await s.exec(select(Conversation).where(Conversation.thread_key == sid(27)))).first()
        if found is not None and found.status == "queued":
            break
    assert found is not None and found.status == "queued"
    assert any(m.body.startswith("[Callback requested]") for m in await phone.messages(found.id or 0))
    deadline = asyncio.get_running_loop().time() + 30  # the timeline entry is written just after the queueing
    while True:
        notes = await _timeline(phone, found.id or 0)
        if any(n.payload.get("event") == "callback_requested" for n in notes) or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert [n.payload.get("source") for n in notes if n.payload.get("event") == "callback_requested"] == ["fallback"]
    # Twilio posts the fallback again for the same call: one request, one note
    again = await phone.twiml("/webhooks/twilio/voice/fallback", sid(27), ErrorCode="11200")
    assert again.says == [FALLBACK_TEXT]
    await phone.settle()
    await asyncio.sleep(0.2)
    notes = await _timeline(phone, found.id or 0)
    assert [n.payload.get("event") for n in notes].count("callback_requested") == 1


async def _timeline(phone: Phone, conversation_id: int) -> list[Any]:
    from crm_store.models import Interaction

    async with phone.hub.db.session() as s:
        return list((await s.exec(select(Interaction).where(Interaction.conversation_id == conversation_id)
                                  .order_by(col(Interaction.id)))).all())


async def test_the_fallback_records_the_callback_even_when_the_hub_fails_at_first(
    db: Database, aiohttp_client: Any, aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    phone = await _phone(db, aiohttp_client, aiohttp_server, settings=VoiceSettings(fallback_retry_first=0.05))
    real = phone.hub.receive_inbound
    failures = {"left": 2}

    async def flaky(event: Any) -> Any:
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("the database is down")
        return await real(event)

    monkeypatch.setattr(phone.hub, "receive_inbound", flaky)
    answer = await phone.twiml("/webhooks/twilio/voice/fallback", sid(29), ErrorCode="11205")
    assert answer.says == [FALLBACK_TEXT] and answer.hangs_up  # at once, whatever the database does
    found = None
    deadline = asyncio.get_running_loop().time() + 30  # generous: a loaded machine
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
        async with phone.hub.db.session() as s:
            found = (await s.exec(select(Conversation).where(Conversation.thread_key == sid(29)))).first()
        if found is not None and found.status == "queued":
            notes = await _timeline(phone, found.id or 0)
            if any(n.payload.get("event") == "callback_requested" for n in notes):
                break
    assert found is not None and found.status == "queued" and failures["left"] == 0
    notes = await _timeline(phone, found.id or 0)
    assert any(n.payload.get("event") == "callback_requested" for n in notes)


async def test_conference_events_reach_the_agent(phone: Phone) -> None:
    await phone.answer(await phone.ring(sid(28)), sid(28), digits="0")
    conv = await phone.conversation(sid(28))
    await phone.accept(conv.id or 0)
    form = {"AccountSid": ACCOUNT_SID, "ConferenceSid": sid(5, "CF"), "FriendlyName": f"conv-{conv.id}", "CallSid": sid(777),
            "ParticipantLabel": f"agent_{phone.agent.id}", "StatusCallbackEvent": "participant-join", "SequenceNumber": "2",
            "Muted": "false", "Hold": "false", "Coaching": "false", "EndConferenceOnExit": "true", "StartConferenceOnEnter": "true"}
    path = f"/webhooks/twilio/voice/conference?call={sid(28)}"
    for _ in range(2):
        assert (await phone.post(path, form)).status == 200
    assert [d["status"] for d in phone.emits.of("call_status")].count("agent_joined") == 1
    await phone.hub.call_action(phone.agent, conv.id, "mute")
    # the leg the conference named, in the conference its callback named (its SID: no list asked)
    assert phone.api.requests[-1][0].endswith(f"/Conferences/{sid(5, 'CF')}/Participants/{sid(777)}.json")
    assert phone.api.of("/Conferences.json") == []
    # the conference ended and the call was bridged again (a new conference of the same name): asked again
    await phone.post(path, {**form, "StatusCallbackEvent": "conference-end", "SequenceNumber": "9"})
    phone.api.conferences[f"conv-{conv.id}"] = sid(6, "CF")
    await phone.hub.call_action(phone.agent, conv.id, "unmute")
    assert phone.api.requests[-1][0].endswith(f"/Conferences/{sid(6, 'CF')}/Participants/{sid(777)}.json")
    assert (await phone.post(path, {**form, "ConferenceSid": "nope"})).status == 400


def _fixture_forms() -> list[Path]:
    """The recorded call webhooks (the conference events are read by their handler's test)."""
    return sorted(p for p in FIXTURES.glob("*.txt") if not p.name.startswith("conference_")) if FIXTURES.is_dir() else []


def _signed_fixtures() -> dict[str, Any]:
    import json

    manifest = FIXTURES / "signatures.json"
    return dict(json.loads(manifest.read_text(encoding="utf-8"))["fixtures"]) if manifest.is_file() else {}


def _fixture(name: str) -> tuple[str, MultiDict[str], str]:
    """A recorded, signed webhook: (path, form, X-Twilio-Signature)."""
    entry = _signed_fixtures()[name]
    form = MultiDict(parse_qsl((FIXTURES / name).read_text(encoding="utf-8").strip(), keep_blank_values=True))
    return local(entry["url"]), form, entry["signature"]


needs_fixtures = pytest.mark.skipif(not _signed_fixtures(), reason="no recorded voice fixtures (tests/fixtures/twilio/voice/)")


@pytest.mark.skipif(not _fixture_forms(), reason="no recorded voice fixtures yet (tests/fixtures/twilio/voice/)")
@pytest.mark.parametrize("path", _fixture_forms(), ids=lambda p: p.name)
def test_recorded_voice_webhooks_parse(path: Path) -> None:
    form = MultiDict(parse_qsl(path.read_text(encoding="utf-8").strip(), keep_blank_values=True))
    call = parse_call(form, make_config("https://api.twilio.com"), need_numbers=False)
    assert call.call_sid == form["CallSid"] and call.status == form["CallStatus"]


@needs_fixtures
async def test_every_recorded_webhook_is_accepted_with_its_signature_and_refused_when_tampered(phone: Phone) -> None:
    for name in _signed_fixtures():
        path, form, signature = _fixture(name)
        resp = await phone.post(path, form, signature=signature)
        assert resp.status == 200, (name, resp.status, await resp.text())
        tampered = MultiDict(form)
        tampered["AccountSid"] = ACCOUNT_SID  # unchanged: still fine; a changed value is not
        tampered.add("Extra", "1")
        assert (await phone.post(path, tampered, signature=signature)).status == 403, name


@needs_fixtures
@pytest.mark.parametrize(
    "name, bot_got, said",
    [("gather_dtmf.txt", '/track_order{"order_id": "10234"}', "Order 10234 is confirmed"),
     ("gather_speech.txt", "I'd like two large red t-shirts", "Which size? Say or press 1 for Small, 2 for Large."),
     ("gather_empty.txt", None, ivr.REPROMPT)],
)
async def test_a_recorded_call_and_gathers_through_the_hub(phone: Phone, name: str, bot_got: str | None, said: str) -> None:
    path, form, signature = _fixture("incoming_call.txt")
    greeting = TwiML(await (await phone.post(path, form, signature=signature)).text())
    assert greeting.gather is not None and greeting.says[1] == ivr.MENU_PROMPT
    path, form, signature = _fixture(name)
    answer = TwiML(await (await phone.post(path, form, signature=signature)).text())
    assert any(s.startswith(said) for s in answer.says), answer.says
    assert phone.bot.got == ([bot_got] if bot_got else [])


@needs_fixtures
async def test_the_recorded_end_of_a_call_ends_it_once(phone: Phone) -> None:
    path, form, signature = _fixture("incoming_call.txt")
    assert (await phone.post(path, form, signature=signature)).status == 200
    path, form, signature = _fixture("status_inbound_completed.txt")
    for _ in range(2):
        assert (await phone.post(path, form, signature=signature)).status == 200
    conv = await phone.conversation(form["CallSid"])
    assert (conv.status, conv.disposition) == ("closed", "customer_ended")  # hung up in the IVR: closed, not abandoned


# --- a whole call through the local Twilio stand-in (its TwiML engine and its REST resources) -------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _said(call: Any) -> list[str]:
    return [e.text for e in call.transcript if e.kind == "say"]


@dataclass
class StandinCall:
    """A HubService with the voice adapter, its webhooks and the Twilio stand-in mounted on one test server."""

    hub: HubService
    engine: Any
    emits: Emits
    adapter: VoiceAdapter
    client: VoiceRestClient


async def _standin_hub(db: Database, aiohttp_server: Any) -> StandinCall:
    from integrations.standins.twilio import STANDIN_KEY, create_twilio_standin

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    config = TwilioConfig(account_sid=ACCOUNT_SID, auth_token=TOKEN, public_base_url=base,
                          numbers=parse_numbers(f"{SHOP}=support"), api_base_url=base + "/standin/twilio")
    client = VoiceRestClient(config, backoff=0.01)
    adapter = VoiceAdapter(config, client)
    channels = ChannelRegistry()
    channels.register(VOICE, adapter)
    emits = Emits()
    hub = HubService(db, MemoryStateStore(), emits, channels=channels, wrap_up_seconds=0)
    await hub.load_queues()
    standin_app = create_twilio_standin(account_sid=ACCOUNT_SID, auth_token=TOKEN, webhook_base_url=base, numbers=[SHOP],
                                        dev_page=False, api_base_url=base + "/standin/twilio", time_scale=0.05)
    app = web.Application()
    add_voice_routes(app, config, lambda: hub, adapter, receipts=MemoryWebhookReceipts(), today=lambda: TODAY)
    app.add_subapp("/standin/twilio", standin_app)
    await aiohttp_server(app, port=port)
    return StandinCall(hub, standin_app[STANDIN_KEY].voice, emits, adapter, client)


async def test_a_whole_call_through_the_twilio_standin(db: Database, aiohttp_server: Any) -> None:
    """The stand-in rings the hub, runs its TwiML verb by verb (refusing what Twilio would refuse), takes the
    caller's keys and words, and serves the REST calls that bridge the agent's client leg into the conference."""
    async with db.transaction() as s:
        created = await agents_repo.create_agent(s, "alice", "pw-alice-1", display_name="Alice", capacity={"phone": 1})
        await agents_repo.create_queue(s, "support", channels=["phone"])
    assert created.id is not None
    agent = AgentRef(created.id, "alice", "Alice", "agent")
    rig = await _standin_hub(db, aiohttp_server)
    hub, engine, emits, adapter, client = rig.hub, rig.engine, rig.emits, rig.adapter, rig.client
    hub.bot, hub.bot_ready = ShopBot(), True
    try:
        call = engine.incoming_call(CALLER, SHOP)
        await engine.wait_for(lambda: call.listening)
        assert call.listening is not None and call.listening.inputs == frozenset({"dtmf", "speech"})
        assert engine.send_digits(call.sid, "1#")
        await engine.wait_for(lambda: "What would you like to order?" in _said(call) and call.listening)
        assert engine.send_speech(call.sid, "I'd like two large red t-shirts", 0.87)
        await engine.wait_for(lambda: "Which size? Say or press 1 for Small, 2 for Large." in _said(call) and call.listening)
        assert call.listening is not None and call.listening.num_digits == 1
        assert engine.send_digits(call.sid, "2")
        await engine.wait_for(lambda: any(t.startswith("Two large red t-shirts come to") for t in _said(call)) and call.listening)
        assert hub.bot.got == ["/order_product", "I'd like two large red t-shirts", '/choose{"size": "L"}']
        assert engine.send_speech(call.sid, "agent please")
        await engine.wait_for(lambda: ivr.TO_AGENT in _said(call))
        async with db.session() as s:
            row = (await s.exec(select(Conversation).where(Conversation.thread_key == call.sid))).one()
        assert row.status == "queued"
        # the agent accepts: the caller is moved into conv-<id> and the agent's client leg rings into it
        await hub.agent_online(agent)
        await hub.set_status(agent, "available")
        assert await hub.route_once() == 1
        await hub.accept(agent, row.id)
        legs = await engine.wait_for(lambda: engine.client_legs(f"agent_{agent.id}"))
        engine.answer(legs[0]["call_sid"])
        await engine.wait_for(lambda: call.participant is not None and call.participant.conference.started)
        assert call.participant is not None and call.participant.conference.friendly_name == f"conv-{row.id}"
        # hold and back through Participants update, by the conference's CF SID (the stand-in refuses its name there)
        room = call.participant.conference
        await hub.call_action(agent, row.id, "hold")
        await engine.wait_for(lambda: call.participant is not None and call.participant.hold)
        assert (await adapter.conference_sid(f"conv-{row.id}")).sid == room.sid
        await hub.call_action(agent, row.id, "unhold")
        await engine.wait_for(lambda: call.participant is not None and not call.participant.hold)
        await hub.call_action(agent, row.id, "mute")
        await engine.wait_for(lambda: engine.client_legs(f"agent_{agent.id}")[0]["muted"])
        expected = {"agent_ringing", "agent_in_progress", "agent_joined", "bridged", "caller_on_hold"}
        for _ in range(200):
            if expected <= {d["status"] for d in emits.of("call_status")}:
                break
            await asyncio.sleep(0.02)
        assert expected <= {d["status"] for d in emits.of("call_status")}
        # the caller hangs up: the agent is told and wraps up; closing hangs up nothing more
        engine.hang_up(call.sid)
        for _ in range(100):
            if "ended" in [d["status"] for d in emits.of("call_status")]:
                break
            await asyncio.sleep(0.02)
        assert "ended" in [d["status"] for d in emits.of("call_status")]
        await hub.close(agent, row.id, "resolved")
        assert [(e.code, e.detail, e.url) for e in engine.errors] == []  # no TwiML Twilio would refuse, no webhook that failed
    finally:
        await client.close()


async def test_an_agent_who_takes_calls_on_their_own_phone_is_rung_there(db: Database, aiohttp_server: Any) -> None:
    """Issue 14: "an agent may instead take calls on their own phone number". With ``agents.phone_number`` set, the
    adapter rings that number for the agent's leg (not ``client:agent_<id>``); the agent answers it there and the
    caller is bridged in the conference, as with the softphone."""
    own = "+15005550123"
    async with db.transaction() as s:
        created = await agents_repo.create_agent(s, "olga", "pw-olga-1", display_name="Olga", capacity={"phone": 1})
        created.phone_number = own
        s.add(created)
        await agents_repo.create_queue(s, "support", channels=["phone"])
    assert created.id is not None
    agent = AgentRef(created.id, "olga", "Olga", "agent")
    rig = await _standin_hub(db, aiohttp_server)
    hub, engine, emits, client = rig.hub, rig.engine, rig.emits, rig.client
    engine.phones[own] = "answer"  # Olga picks up her phone
    try:
        call = engine.incoming_call(CALLER, SHOP)
        await engine.wait_for(lambda: call.listening)
        assert engine.send_digits(call.sid, "0")
        await engine.wait_for(lambda: ivr.TO_AGENT in _said(call))
        async with db.session() as s:
            row = (await s.exec(select(Conversation).where(Conversation.thread_key == call.sid))).one()
        await hub.agent_online(agent)
        await hub.set_status(agent, "available")
        assert await hub.route_once() == 1
        await hub.accept(agent, row.id)
        await engine.wait_for(lambda: call.participant is not None and call.participant.conference.started)
        legs = [c for c in engine.calls.values() if c.to == own]
        assert len(legs) == 1 and legs[0].from_ == SHOP and legs[0].direction == "outbound-api"
        assert engine.client_legs(f"agent_{agent.id}") == []  # nothing rang in a browser
        for _ in range(200):
            if {"agent_in_progress", "bridged"} <= {d["status"] for d in emits.of("call_status")}:
                break
            await asyncio.sleep(0.02)
        assert {"agent_in_progress", "bridged"} <= {d["status"] for d in emits.of("call_status")}
        engine.hang_up(call.sid)
        assert [(e.code, e.detail, e.url) for e in engine.errors] == []
    finally:
        await client.close()
