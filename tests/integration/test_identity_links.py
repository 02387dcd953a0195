"""One customer across channels: a phone or email a chat customer gave (with an order, or to an agent) is
linked to them as an unverified contact point, and a later SMS from that number reaches the same customer.

Runs the real hub with the Twilio stand-in (as the channel contract does): the web chat customer over
Socket.IO, the order over the HTTP API with the bot's service token, the SMS as a signed webhook.
"""

from __future__ import annotations

import logging
import socket
from typing import Any, AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlmodel import select

from contact_center.app import create_app
from contact_center.keys import DB_KEY, HUB_KEY
from contact_center.settings import Settings
from contact_center.twilio_wiring import STANDIN_APP_KEY
from crm_store.models import Conversation
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import customers as customers_repo
from integrations.standins.twilio import STANDIN_KEY, TwilioStandin
from tests.factories import add_product
from tests.sio_helpers import Inbox, sio_client

AUTH = {"Authorization": "Bearer t"}
SHOP = "+15005550006"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Hub:
    def __init__(self, base: str, app: Any) -> None:
        self.base, self.app = base, app
        self.clients: list[Any] = []  # Socket.IO clients to disconnect

    @property
    def standin(self) -> TwilioStandin:
        return self.app[STANDIN_APP_KEY][STANDIN_KEY]

    async def chat_customer(self, visitor_id: str, text: str = "hi, I'd like to order") -> int:
        """A web chat visitor says something; their customer id."""
        inbox = Inbox()
        sio = sio_client(inbox, "/customer", ("session", "message"))
        self.clients.append(sio)
        await sio.connect(self.base, namespaces=["/customer"], auth={"visitor_id": visitor_id}, transports=["websocket"])
        await inbox.wait("session")
        ack = await sio.call("message", {"client_msg_id": "c-1", "text": text}, namespace="/customer")
        assert ack["ok"], ack
        return (await self.conversation(int(ack["message"]["conversation_id"]))).customer_id

    async def conversation(self, conversation_id: int) -> Conversation:
        async with self.app[DB_KEY].session() as s:
            conv = await s.get(Conversation, conversation_id)
            assert conv is not None
            return conv

    async def sms_conversations(self) -> list[Conversation]:
        async with self.app[DB_KEY].session() as s:
            return list((await s.exec(select(Conversation).where(Conversation.channel == "sms"))).all())

    async def order(self, http: aiohttp.ClientSession, **body: Any) -> dict[str, Any]:
        r = await http.post(f"{self.base}/api/orders", headers=AUTH, json={
            "lines": [{"sku": "TSHIRT", "quantity": 1}], "delivery_address": "1 Main St, Springfield", "channel": "chat", **body,
        })
        assert r.status == 201, await r.text()
        return dict((await r.json())["order"])

    async def points(self, http: aiohttp.ClientSession, customer_id: int) -> dict[tuple[str, str], bool]:
        view = await (await http.get(f"{self.base}/api/customers/{customer_id}", headers=AUTH)).json()
        return {(p["kind"], p["value"]): p["verified"] for p in view["contact_points"]}

    async def timeline(self, http: aiohttp.ClientSession, customer_id: int) -> list[str]:
        view = await (await http.get(f"{self.base}/api/customers/{customer_id}", headers=AUTH)).json()
        return [i["summary"] for i in view["timeline"]["items"]]



@pytest.fixture
async def hub(tmp_path) -> AsyncIterator[Hub]:  # type: ignore[no-untyped-def]
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/links.db", service_tokens=("t",), demo_data=False,
        session_secret="s" * 32, media_dir=str(tmp_path / "media"), twilio_standin=True, public_base_url=base,
        host="127.0.0.1", port=port, wrap_up_seconds=0, bot_channels=(),
    )
    app = create_app(settings)
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    async with app[DB_KEY].transaction() as s:
        await agents_repo.create_agent(s, "ann", "pw-ann-123", display_name="Ann", capacity={"chat": 3, "sms": 4})
        await agents_repo.create_agent(s, "bob", "pw-bob-123", display_name="Bob", capacity={"chat": 3, "sms": 4})
        await agents_repo.create_agent(s, "sue", "pw-sue-123", display_name="Sue", role="supervisor")
        await agents_repo.create_queue(s, "support", channels=["chat", "sms"])
    await app[HUB_KEY].load_queues()
    await add_product(app[DB_KEY], "TSHIRT", stock=20)
    h = Hub(base, app)
    try:
        yield h
    finally:
        for sio in h.clients:
            await sio.disconnect()
        await server.close()


async def test_a_phone_given_with_an_order_brings_a_later_sms_to_the_same_customer(hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    erin = await hub.chat_customer("visitor_erin_0001")
    async with aiohttp.ClientSession() as http:
        # the bot places the order for the chatting customer with the phone and email they gave it
        order = await hub.order(http, customer_id=erin, phone="(415) 555-0142", email="Erin.Lee@Example.com")
        assert order["customer_id"] == erin and order["contact_phone"] == "+14155550142"
        points = await hub.points(http, erin)
        assert points[("phone", "+14155550142")] is False and points[("email", "erin.lee@example.com")] is False
        assert any(s == f"Phone +14155550142 given with order {order['id']} (unverified)" for s in await hub.timeline(http, erin))

        # a later text from that number is Erin's, on a new SMS conversation
        outcome = await hub.standin.send_inbound("+1 415 555 0142", SHOP, "where is my t-shirt?")
        assert outcome.hub_status == 200
        (sms,) = await hub.sms_conversations()
        assert sms.customer_id == erin and sms.customer_address == "+14155550142"
        points = await hub.points(http, erin)
        assert points[("sms", "+14155550142")] is True  # the carrier vouches for the sender
        assert points[("phone", "+14155550142")] is False  # what she told the bot stays unverified

        # a second order with the same contacts links nothing twice
        await hub.order(http, customer_id=erin, phone="+14155550142", email="erin.lee@example.com")
        assert sum("given with order" in s for s in await hub.timeline(http, erin)) == 2

        # an address that is someone else's is not taken from them: kept, logged, the order still placed
        await hub.standin.send_inbound("+1 415 555 0199", SHOP, "hello")
        async with hub.app[DB_KEY].session() as s:
            other = await customers_repo.find_contact_point(s, "sms", "+14155550199")
            assert other is not None and other.customer_id != erin
        caplog.set_level(logging.INFO, logger="crm_store.services")
        third = await hub.order(http, customer_id=erin, phone="415-555-0199")
        assert third["customer_id"] == erin
        assert ("phone", "+14155550199") not in await hub.points(http, erin)
        assert any("belongs to another customer" in r.getMessage() for r in caplog.records)
        async with hub.app[DB_KEY].session() as s:
            assert await customers_repo.find_contact_point(s, "phone", "+14155550199") is None


async def _login(hub: Hub, username: str) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    r = await http.post(f"{hub.base}/auth/login", json={"username": username, "password": f"pw-{username}-123"})
    assert r.status == 200
    return http


async def _accept_next(hub: Hub, http: aiohttp.ClientSession) -> int:
    inbox = Inbox()
    sio = sio_client(inbox, "/agent", ("hello", "offer"))
    hub.clients.append(sio)
    cookie = "; ".join(f"{c.key}={c.value}" for c in http.cookie_jar)
    await sio.connect(hub.base, namespaces=["/agent"], headers={"Cookie": cookie}, transports=["websocket"])
    await inbox.wait("hello")
    await sio.call("set_status", {"status": "available"}, namespace="/agent")
    offer = await inbox.wait("offer")
    ack = await sio.call("accept", {"conversation_id": offer["conversation_id"]}, namespace="/agent")
    assert ack["ok"], ack
    return int(offer["conversation_id"])


async def test_an_agent_records_what_the_customer_told_them(hub: Hub) -> None:
    noor = await hub.chat_customer("visitor_noor_0001", "can you call me back instead?")
    ann, bob, sue = await _login(hub, "ann"), await _login(hub, "bob"), await _login(hub, "sue")
    try:
        await _accept_next(hub, ann)
        url = f"{hub.base}/console/customers/{noor}/contact-points"
        async with aiohttp.ClientSession() as anon:
            assert (await anon.post(url, json={"kind": "phone", "address": "+14155550150"})).status == 401

        r = await ann.post(url, json={"kind": "phone", "address": "(415) 555-0150"})
        assert r.status == 201, await r.text()
        point = (await r.json())["contact_point"]
        assert point["value"] == "+14155550150" and point["verified"] is False and point["kind"] == "phone"
        again = await ann.post(url, json={"kind": "phone", "address": "+1 415 555 0150"})
        assert again.status == 200 and (await again.json())["created"] is False

        bad = await ann.post(url, json={"kind": "phone", "address": "12"})
        assert bad.status == 422 and (await bad.json())["fields"][0]["field"] == "phone"
        assert (await ann.post(url, json={"kind": "web", "address": "visitor_x"})).status == 422

        # not Bob's customer; a supervisor may
        assert (await bob.post(url, json={"kind": "email", "address": "noor@example.com"})).status == 403
        r = await sue.post(url, json={"kind": "email", "address": "Noor@Example.com"})
        assert r.status == 201 and (await r.json())["contact_point"]["value"] == "noor@example.com"
        assert (await sue.post(f"{hub.base}/console/customers/999999/contact-points", json={"kind": "email", "address": "x@example.com"})).status == 404

        # someone else's number stays theirs
        await hub.standin.send_inbound("+1 415 555 0177", SHOP, "hello")
        taken = await ann.post(url, json={"kind": "phone", "address": "+14155550177"})
        assert taken.status == 409 and "another customer" in (await taken.json())["message"]

        async with aiohttp.ClientSession() as http:
            points = await hub.points(http, noor)
            assert points[("phone", "+14155550150")] is False and points[("email", "noor@example.com")] is False
            assert ("phone", "+14155550177") not in points
            assert "Phone +14155550150 given to Ann (unverified)" in await hub.timeline(http, noor)

        # and the number she told Ann brings her text to her
        await hub.standin.send_inbound("+14155550150", SHOP, "it's Noor, from the chat")
        sms = [c for c in await hub.sms_conversations() if c.customer_address == "+14155550150"]
        assert len(sms) == 1 and sms[0].customer_id == noor
    finally:
        for http in (ann, bob, sue):
            await http.close()


async def test_link_given_contact_keeps_one_number_one_customer(db: Any) -> None:
    """The repository rule under the HTTP routes, on SQLite and PostgreSQL."""
    async with db.transaction() as s:
        ann = (await customers_repo.resolve_identity(s, "web", "visitor_ann_0001")).customer
        bob = (await customers_repo.resolve_identity(s, "whatsapp", "whatsapp:+14155550111")).customer
        old = (await customers_repo.resolve_identity(s, "web", "visitor_old_0001")).customer
        await customers_repo.merge_customers(s, old.id, ann.id, actor="test")

        given = await customers_repo.link_given_contact(s, old.id, "phone", "(415) 555-0123")  # a merged id leads to Ann
        assert given.created and given.point is not None and given.point.customer_id == ann.id and given.point.verified is False
        again = await customers_repo.link_given_contact(s, ann.id, "phone", "+14155550123")
        assert not again.created and again.point is not None and again.point.id == given.point.id

        # Bob texts from that number on WhatsApp: it is his, even as a plain phone point
        taken = await customers_repo.link_given_contact(s, ann.id, "phone", "+1 415 555 0111")
        assert taken.point is None and taken.taken_by == bob.id
        assert await customers_repo.find_contact_point(s, "phone", "+14155550111") is None
        # for Bob himself, his WhatsApp number becomes his phone too
        own = await customers_repo.link_given_contact(s, bob.id, "phone", "+14155550111")
        assert own.created and own.point is not None and own.point.customer_id == bob.id

        verified = await customers_repo.link_contact_point(s, ann.id, "email", "ann@example.com", verified=True)
        kept = await customers_repo.link_given_contact(s, ann.id, "email", "ANN@example.com")
        assert kept.point is not None and kept.point.id == verified.id and kept.point.verified is True
