"""Two hub processes on real PostgreSQL and Redis: the customer on one, the agent on the other."""

from __future__ import annotations

from typing import AsyncIterator

import aiohttp
import pytest

from crm_store.db import Database
from crm_store.repositories import agents as agents_repo
from tests.cluster import hub_cluster
from tests.sio_helpers import Inbox, sio_client

PASSWORD = "agent-password"


async def _seed(db: Database) -> None:
    async with db.transaction() as s:
        await agents_repo.create_agent(s, "alice", PASSWORD, display_name="Alice", capacity={"chat": 3})
        await agents_repo.create_queue(s, "sales", channels=["chat"])


@pytest.fixture
async def two_hubs() -> AsyncIterator[tuple[str, str]]:
    """Two `contact-center serve` processes sharing one PostgreSQL database and one Redis prefix."""
    async for cluster in hub_cluster(2, _seed):
        yield cluster.base(0), cluster.base(1)


async def test_customer_on_one_node_agent_on_the_other(two_hubs: tuple[str, str]) -> None:
    node_a, node_b = two_hubs
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"{node_b}/auth/login", json={"username": "alice", "password": PASSWORD})
        assert resp.status == 200
        cookie = f"cc_session={resp.cookies['cc_session'].value}"

    a_in = Inbox()
    agent = sio_client(a_in, "/agent", ("hello", "offer", "message", "conversation_closed"))
    await agent.connect(node_b, namespaces=["/agent"], headers={"Cookie": cookie}, transports=["websocket"])
    await a_in.wait("hello")
    assert (await agent.call("set_status", {"status": "available"}, namespace="/agent"))["ok"]

    c_in = Inbox()
    cust = sio_client(c_in, "/customer", ("session", "message", "agent_joined", "closed", "queue"))
    await cust.connect(node_a, namespaces=["/customer"], auth={"visitor_id": "visitor_twonodes1", "name": "Nia"}, transports=["websocket"])
    await c_in.wait("session")
    ack = await cust.call("message", {"client_msg_id": "m1", "text": "hello from node A"}, namespace="/customer")
    assert ack["ok"]
    acked = [ack["message"]]

    offer = await a_in.wait("offer", timeout=15)
    cid = offer["conversation_id"]
    accepted = await agent.call("accept", {"conversation_id": cid}, namespace="/agent")
    assert accepted["ok"], accepted
    assert (await c_in.wait("agent_joined", timeout=10))["agent_name"] == "Alice"

    for i in range(5):
        await agent.call("reply", {"conversation_id": cid, "client_msg_id": f"r{i}", "text": f"answer {i} from node B"}, namespace="/agent")
        acked.append((await cust.call("message", {"client_msg_id": f"m{i + 2}", "text": f"question {i}"}, namespace="/customer"))["message"])
    await c_in.wait("message", lambda m: m["text"] == "answer 4 from node B", timeout=10)
    await a_in.wait("message", lambda m: m["text"] == "question 4", timeout=10)
    agent_side = sorted({m["seq"] for m in a_in.all("message")})
    customer_side = sorted({m["seq"] for m in c_in.all("message") + acked})
    assert customer_side == list(range(1, 12))  # every message, in one gapless sequence, across the nodes
    assert set(agent_side) >= set(range(2, 12))

    assert (await agent.call("close", {"conversation_id": cid, "disposition": "resolved"}, namespace="/agent"))["ok"]
    await c_in.wait("closed", timeout=10)
    await cust.disconnect()
    await agent.disconnect()
