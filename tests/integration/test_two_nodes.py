"""Two hub processes on real PostgreSQL and Redis: the customer on one, the agent on the other."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from typing import Any, AsyncIterator

import aiohttp
import pytest
import redis.asyncio as aioredis

from crm_store.db import Database
from crm_store.repositories import agents as agents_repo
from tests.conftest import PG_ADMIN_URL, _in_thread, _pg_admin
from tests.sio_helpers import Inbox, sio_client

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PASSWORD = "agent-password"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(port: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"hub on {port} died: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"hub on {port} did not come up")


@pytest.fixture
async def two_hubs() -> AsyncIterator[tuple[str, str]]:
    """Two `contact-center serve` processes sharing one PostgreSQL database and one Redis prefix."""
    name = f"cc_2n_{uuid.uuid4().hex[:8]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    from crm_store.migrate import upgrade

    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    async with db.transaction() as s:
        await agents_repo.create_agent(s, "alice", PASSWORD, display_name="Alice", capacity={"chat": 3})
        await agents_repo.create_queue(s, "sales", channels=["chat"])
    await db.dispose()
    prefix = f"cctest:{{{uuid.uuid4().hex[:8]}}}:"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": prefix,
        "SESSION_SECRET": "shared-secret-" + uuid.uuid4().hex,
        "SERVICE_TOKEN": "two-nodes",
        "DEMO_DATA": "false",
        "AUTO_MIGRATE": "false",
        "LOG_LEVEL": "WARNING",
    }
    ports = [_free_port(), _free_port()]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "contact_center.cli", "serve", "--port", str(p)],
            env={**env, "NODE_NAME": f"node-{i}"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        for i, p in enumerate(ports)
    ]
    try:
        for p, proc in zip(ports, procs):
            await asyncio.to_thread(_wait_healthy, p, proc)
        yield f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        r = aioredis.from_url(REDIS_URL)
        keys = [k async for k in r.scan_iter(match=f"{prefix}*")]
        if keys:
            await r.delete(*keys)
        await r.aclose()
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
