"""A waiting chat whose customer left is given up, by every path back to the queue, on one node and on two.

Through real Socket.IO against whole hub apps: on SQLite with the in-process state (one node), and on
PostgreSQL with Redis as two hub processes (two apps sharing the database and a Redis prefix), where the
customer's widget and the agent's console sit on different nodes. The grace period is 1.5 s here.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
import socketio
from aiohttp.test_utils import TestServer

from contact_center import realtime
from contact_center.app import create_app
from contact_center.keys import HUB_KEY
from contact_center.settings import Settings
from crm_store.db import Database
from crm_store.models import Conversation
from crm_store.repositories import agents as agents_repo
from tests.sio_helpers import Inbox, sio_client

PASSWORD = "agent-password"
GRACE = 1.5
REDIS_URL = "redis://127.0.0.1:6379/0"


class Nodes:
    """One or two running hubs over one database: ``agent_node`` serves the consoles, ``customer_node``
    the widgets (the same node on SQLite)."""

    def __init__(self, db: Database, two: bool) -> None:
        self.db, self.two = db, two
        self.prefix = f"cc:{{test-{uuid.uuid4().hex[:8]}}}:"
        self.servers: list[TestServer] = []
        self.clients: list[socketio.AsyncClient] = []

    def settings(self) -> Settings:
        return Settings(
            database_url=self.db.url, service_tokens=("t",), demo_data=False, auto_migrate=False, session_secret="s" * 32,
            offer_timeout_seconds=1.0, abandon_grace_seconds=GRACE,
            redis_url=REDIS_URL if self.two else "", redis_prefix=self.prefix,
        )

    async def start(self) -> str:
        server = TestServer(create_app(self.settings()), host="127.0.0.1")
        await server.start_server()
        self.servers.append(server)
        return str(server.make_url("")).rstrip("/")

    async def stop(self, server: TestServer) -> None:
        self.servers.remove(server)
        await server.close()

    @property
    def agent_node(self) -> str:
        return str(self.servers[0].make_url("")).rstrip("/")

    @property
    def customer_node(self) -> str:
        return str(self.servers[-1].make_url("")).rstrip("/")

    def hub(self, i: int = 0) -> Any:
        return self.servers[i].app[HUB_KEY]

    async def agent(self, username: str) -> tuple[socketio.AsyncClient, Inbox]:
        async with aiohttp.ClientSession() as http:
            resp = await http.post(f"{self.agent_node}/auth/login", json={"username": username, "password": PASSWORD})
            assert resp.status == 200, await resp.text()
            cookie = f"cc_session={resp.cookies['cc_session'].value}"
        inbox = Inbox()
        sio = sio_client(inbox, "/agent", ("hello", "offer", "offer_revoked", "conversation_closed", "status"))
        await sio.connect(self.agent_node, namespaces=["/agent"], headers={"Cookie": cookie}, transports=["websocket"])
        await inbox.wait("hello")
        self.clients.append(sio)
        ack = await sio.call("set_status", {"status": "available"}, namespace="/agent")
        assert ack["ok"], ack
        return sio, inbox

    async def customer(self, visitor: str, text: str = "hello?") -> tuple[socketio.AsyncClient, int]:
        inbox = Inbox()
        sio = sio_client(inbox, "/customer", ("session", "message", "queue", "agent_joined", "closed"))
        await sio.connect(self.customer_node, namespaces=["/customer"], auth={"visitor_id": visitor, "name": "Cara"},
                          transports=["websocket"])
        await inbox.wait("session")
        self.clients.append(sio)
        ack = await sio.call("message", {"client_msg_id": "m1", "text": text}, namespace="/customer")
        assert ack["ok"], ack
        return sio, int(ack["message"]["conversation_id"])

    async def conversation(self, cid: int) -> Conversation:
        async with self.db.session() as s:
            conv = await s.get(Conversation, cid)
        assert conv is not None
        return conv

    async def closed(self, cid: int, timeout: float = 10.0) -> Conversation:
        """The conversation once it is closed (fails after ``timeout``)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            conv = await self.conversation(cid)
            if conv.status == "closed" or asyncio.get_running_loop().time() > deadline:
                return conv
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        for sio in self.clients:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sio.disconnect(), 5)
        for server in list(self.servers):
            await server.close()
        if self.two:  # the Redis keys of this test
            import redis.asyncio as aioredis

            client = aioredis.from_url(REDIS_URL)
            keys = [k async for k in client.scan_iter(match=self.prefix.replace("{", "\\{").replace("}", "\\}") + "*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()


@pytest.fixture
async def nodes(db: Database, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Nodes]:
    monkeypatch.setattr(realtime, "AGENT_GRACE_SECONDS", 0.2)  # an agent whose console closed is gone at once
    async with db.transaction() as s:
        await agents_repo.create_agent(s, "alice", PASSWORD, display_name="Alice", capacity={"chat": 3})
        await agents_repo.create_agent(s, "bob", PASSWORD, display_name="Bob", capacity={"chat": 3})
        await agents_repo.create_queue(s, "sales", channels=["chat"])
        await agents_repo.create_queue(s, "billing", channels=["chat"])
    two = db.dialect == "postgresql"
    n = Nodes(db, two)
    await n.start()
    if two:
        await n.start()  # the customer's widget on the second node
    try:
        yield n
    finally:
        await n.close()


async def _accepted(nodes: Nodes, visitor: str) -> tuple[socketio.AsyncClient, Inbox, socketio.AsyncClient, int]:
    alice, a_in = await nodes.agent("alice")
    cust, cid = await nodes.customer(visitor)
    offer = await a_in.wait("offer", lambda o: o["conversation_id"] == cid, timeout=10)
    ack = await alice.call("accept", {"conversation_id": offer["conversation_id"]}, namespace="/agent")
    assert ack["ok"], ack
    return alice, a_in, cust, cid


async def _agent_leaves(nodes: Nodes, alice: socketio.AsyncClient, cid: int) -> None:
    await alice.disconnect()
    for _ in range(200):  # back in the queue (or already given up, when its customer was gone before)
        if (await nodes.conversation(cid)).status in ("queued", "closed"):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the agent's chat did not go back to the queue")


async def _transfer(nodes: Nodes, alice: socketio.AsyncClient, cid: int) -> None:
    ack = await alice.call("transfer", {"conversation_id": cid, "queue": "billing"}, namespace="/agent")
    assert ack["ok"], ack


Path = Callable[[Nodes, socketio.AsyncClient, int], Awaitable[None]]


@pytest.mark.parametrize("order", ["customer_then_agent", "agent_then_customer"])
@pytest.mark.parametrize("back_to_queue", [_agent_leaves, _transfer], ids=["agent_gone", "transfer"])
async def test_an_answered_chat_back_in_the_queue_without_its_customer_is_closed(
    nodes: Nodes, back_to_queue: Path, order: str
) -> None:
    alice, _, cust, cid = await _accepted(nodes, f"visitor_{uuid.uuid4().hex[:12]}")
    if order == "customer_then_agent":  # the customer's tab closed while the agent had the chat: it stays
        await cust.disconnect()
        await asyncio.sleep(GRACE * 2)
        assert (await nodes.conversation(cid)).status == "assigned"
        await back_to_queue(nodes, alice, cid)
    else:
        await back_to_queue(nodes, alice, cid)
        await cust.disconnect()
    conv = await nodes.closed(cid)
    assert (conv.status, conv.disposition) == ("closed", "customer_left"), (conv.status, conv.disposition)
    assert conv.abandoned_at is None and conv.assigned_at is not None  # answered: never also abandoned
    assert await nodes.hub().store.waiting() == []


@pytest.mark.parametrize("how", ["declined", "offer_timed_out"])
async def test_a_chat_declined_or_missed_while_its_customer_left_is_abandoned(nodes: Nodes, how: str) -> None:
    alice, a_in = await nodes.agent("alice")
    cust, cid = await nodes.customer(f"visitor_{uuid.uuid4().hex[:12]}")
    await a_in.wait("offer", lambda o: o["conversation_id"] == cid, timeout=10)
    await cust.disconnect()
    if how == "declined":
        ack = await alice.call("decline", {"conversation_id": cid}, namespace="/agent")
        assert ack["ok"] and ack["skip_seconds"] > 0, ack
    else:
        revoked = await a_in.wait("offer_revoked", lambda o: o["conversation_id"] == cid, timeout=10)
        assert revoked["reason"] in ("expired", "customer_left"), revoked
    conv = await nodes.closed(cid)
    assert (conv.status, conv.disposition) == ("closed", "abandoned")
    assert conv.abandoned_at is not None


async def test_a_customer_who_comes_back_within_the_grace_on_another_node_keeps_their_place(nodes: Nodes) -> None:
    alice, _, cust, cid = await _accepted(nodes, visitor := f"visitor_{uuid.uuid4().hex[:12]}")
    await _agent_leaves(nodes, alice, cid)
    assert (await nodes.conversation(cid)).status == "queued"
    await cust.disconnect()
    await asyncio.sleep(GRACE / 3)
    back = Inbox()
    again = sio_client(back, "/customer", ("session", "queue"))
    await again.connect(nodes.agent_node, namespaces=["/customer"], auth={"visitor_id": visitor}, transports=["websocket"])
    nodes.clients.append(again)
    assert (await back.wait("session"))["conversation_id"] == cid
    await asyncio.sleep(GRACE * 4)  # every node's timers and sweeps have run by now
    assert (await nodes.conversation(cid)).status == "queued"


async def test_after_a_restart_a_waiting_chat_whose_customer_never_returns_is_given_up(nodes: Nodes) -> None:
    alice, _, cust, cid = await _accepted(nodes, f"visitor_{uuid.uuid4().hex[:12]}")
    await _agent_leaves(nodes, alice, cid)
    await cust.disconnect()
    for server in list(nodes.servers):  # every node stops before its timers fire (a deploy, a crash)
        await nodes.stop(server)
    assert (await nodes.conversation(cid)).status == "queued"
    await nodes.start()  # rebuilds the queue from SQL; nobody reconnects
    conv = await nodes.closed(cid)
    assert (conv.status, conv.disposition) == ("closed", "customer_left")
