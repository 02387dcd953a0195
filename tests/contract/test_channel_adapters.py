"""One contract for every channel adapter, run against the real hub: web chat (Socket.IO) and SMS (Twilio webhooks from the stand-in).

Each adapter must: normalise what arrives into one conversation on the customer's record (the customer
found again by their address), store a repeat once, carry the agent's reply back to the customer with
a delivery status that never moves backwards, and refuse bad input with a clear error, storing nothing.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, AsyncIterator, Protocol

import aiohttp
import pytest
import socketio
from aiohttp.test_utils import TestServer
from sqlmodel import select

from contact_center.app import create_app
from contact_center.keys import DB_KEY, HUB_KEY
from contact_center.twilio_wiring import STANDIN_APP_KEY
from contact_center.settings import Settings
from crm_store.models import Conversation, Message
from crm_store.repositories import agents as agents_repo
from integrations.standins.twilio import STANDIN_KEY, TwilioStandin
from tests.sio_helpers import Inbox, sio_client

RANK = {None: -1, "queued": 0, "sent": 1, "delivered": 2, "undelivered": 2, "failed": 2, "read": 3}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Hub:
    """A running hub with the Twilio stand-in, an agent's console, and the database."""

    def __init__(self, base: str, app: Any) -> None:
        self.base, self.app = base, app
        self.agent: socketio.AsyncClient | None = None
        self.inbox = Inbox()

    @property
    def standin(self) -> TwilioStandin:
        return self.app[STANDIN_APP_KEY][STANDIN_KEY]

    async def agent_takes_next(self) -> int:
        if self.agent is None:
            async with aiohttp.ClientSession() as http:
                r = await http.post(f"{self.base}/auth/login", json={"username": "ann", "password": "pw-ann-123"})
                cookie = f"cc_session={r.cookies['cc_session'].value}"
            self.agent = sio_client(self.inbox, "/agent", ("hello", "offer", "message", "message_status"))
            await self.agent.connect(self.base, namespaces=["/agent"], headers={"Cookie": cookie}, transports=["websocket"])
            await self.inbox.wait("hello")
            await self.agent.call("set_status", {"status": "available"}, namespace="/agent")
        offer = await self.inbox.wait("offer")
        ack = await self.agent.call("accept", {"conversation_id": offer["conversation_id"]}, namespace="/agent")
        assert ack["ok"], ack
        return int(offer["conversation_id"])

    async def reply(self, conversation_id: int, text: str) -> dict[str, Any]:
        assert self.agent is not None
        ack = await self.agent.call("reply", {"conversation_id": conversation_id, "client_msg_id": f"r-{text}", "text": text}, namespace="/agent")
        assert ack["ok"], ack
        return dict(ack["message"])

    async def messages(self) -> list[Message]:
        async with self.app[DB_KEY].session() as s:
            return list((await s.exec(select(Message).order_by(Message.id))).all())

    async def conversations(self) -> list[Conversation]:
        async with self.app[DB_KEY].session() as s:
            return list((await s.exec(select(Conversation).order_by(Conversation.id))).all())


class Driver(Protocol):
    """A customer on one channel."""

    channel: str
    address: str  # the customer's address as the hub keeps it

    async def send(self, text: str) -> None: ...

    async def repeat_last(self) -> None: ...

    async def send_bad(self) -> str: ...  # the refusal's code or reason

    async def received(self, text: str) -> None: ...  # waits until the customer got this text

    async def close(self) -> None: ...


class WebChat:
    channel, address = "chat", "visitor_contract_01"

    def __init__(self, hub: Hub) -> None:
        self.hub, self.inbox, self.n = hub, Inbox(), 0
        self.sio = sio_client(self.inbox, "/customer", ("session", "message"))

    async def start(self) -> "WebChat":
        await self.sio.connect(self.hub.base, namespaces=["/customer"], auth={"visitor_id": self.address}, transports=["websocket"])
        await self.inbox.wait("session")
        return self

    async def send(self, text: str) -> None:
        self.n += 1
        ack = await self.sio.call("message", {"client_msg_id": f"c-{self.n}", "text": text}, namespace="/customer")
        assert ack["ok"], ack

    async def repeat_last(self) -> None:
        ack = await self.sio.call("message", {"client_msg_id": f"c-{self.n}", "text": "again"}, namespace="/customer")
        assert ack["ok"] and ack["message"]["client_msg_id"] == f"c-{self.n}"

    async def send_bad(self) -> str:
        ack = await self.sio.call("message", {"client_msg_id": "bad", "text": "   "}, namespace="/customer")
        assert ack["ok"] is False
        return str(ack["error"]["code"])

    async def received(self, text: str) -> None:
        await self.inbox.wait("message", lambda m: m["text"] == text)

    async def close(self) -> None:
        await self.sio.disconnect()


class Sms:
    channel, address = "sms", "+14155550142"

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def start(self) -> "Sms":
        return self

    async def send(self, text: str) -> None:
        outcome = await self.hub.standin.send_inbound("+1 415 555 0142", "+15005550006", text)
        assert outcome.hub_status == 200

    async def repeat_last(self) -> None:
        assert await self.hub.standin.repost(self.hub.standin.callbacks[-1]) == 200

    async def send_bad(self) -> str:
        async with aiohttp.ClientSession() as http:
            unsigned = await http.post(f"{self.hub.base}/webhooks/twilio/messaging", data={"MessageSid": "SM" + "0" * 32, "Body": "x"})
            assert unsigned.status == 403
            form = {"AccountSid": self.hub.standin.account_sid, "From": "+14155550142", "To": "+15005550006", "Body": "no sid"}
            url = f"{self.hub.base}/webhooks/twilio/messaging"
            bad = await http.post(url, data=form, headers={"X-Twilio-Signature": self.hub.standin.sign(url, form)})
            assert bad.status == 400
            return await bad.text()

    async def received(self, text: str) -> None:
        for _ in range(100):
            if any(e.direction == "out" and e.body == text for e in self.hub.standin.conversation(self.address)):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{text!r} never reached the phone")

    async def close(self) -> None:
        pass


@pytest.fixture
async def hub(tmp_path) -> AsyncIterator[Hub]:  # type: ignore[no-untyped-def]
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/contract.db", service_tokens=("t",), demo_data=False,
        session_secret="s" * 32, media_dir=str(tmp_path / "media"), twilio_standin=True, public_base_url=base,
        host="127.0.0.1", port=port, wrap_up_seconds=0,
    )
    app = create_app(settings)
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    async with app[DB_KEY].transaction() as s:
        await agents_repo.create_agent(s, "ann", "pw-ann-123", display_name="Ann", capacity={"chat": 3, "sms": 4, "whatsapp": 4})
        await agents_repo.create_queue(s, "support", channels=["chat", "sms", "whatsapp"])
    await app[HUB_KEY].load_queues()
    h = Hub(base, app)
    try:
        yield h
    finally:
        if h.agent is not None:
            await h.agent.disconnect()
        await server.close()


@pytest.fixture(params=["chat", "sms"])
async def customer(request: pytest.FixtureRequest, hub: Hub) -> AsyncIterator[Driver]:
    driver: Any = await (WebChat(hub) if request.param == "chat" else Sms(hub)).start()
    try:
        yield driver
    finally:
        await driver.close()


async def test_inbound_is_one_conversation_on_the_customers_record(hub: Hub, customer: Driver) -> None:
    await customer.send("hello")
    await customer.send("I have a question")
    convs = await hub.conversations()
    assert len(convs) == 1 and convs[0].channel == customer.channel
    if customer.channel != "chat":
        assert convs[0].customer_address == customer.address  # normalised to E.164
    assert [m.body for m in await hub.messages()] == ["hello", "I have a question"]


async def test_a_repeat_is_stored_once(hub: Hub, customer: Driver) -> None:
    await customer.send("only once")
    await customer.repeat_last()
    assert [m.body for m in await hub.messages()] == ["only once"]


async def test_the_reply_reaches_the_customer_and_its_status_only_moves_forward(hub: Hub, customer: Driver) -> None:
    await customer.send("can you help?")
    conversation_id = await hub.agent_takes_next()
    sent = await hub.reply(conversation_id, "Of course.")
    await customer.received("Of course.")
    if customer.channel == "chat":
        assert sent["delivery_status"] is None  # live: delivered as published
        return
    final = await hub.inbox.wait("message_status", lambda d: d["seq"] == sent["seq"] and d["delivery_status"] == "delivered")
    seen = [d["delivery_status"] for d in hub.inbox.all("message_status") if d["seq"] == sent["seq"]]
    assert [RANK[s] for s in seen] == sorted(RANK[s] for s in seen) and final["delivery_error"] is None
    late_sent = await hub.app[HUB_KEY].delivery_update(customer.channel, (await hub.messages())[-1].provider_id or "", "sent")
    assert late_sent is False


async def test_bad_input_gets_a_clear_refusal_and_stores_nothing(hub: Hub, customer: Driver) -> None:
    reason = await customer.send_bad()
    assert reason and reason != "internal"
    assert await hub.messages() == [] and await hub.conversations() == []
