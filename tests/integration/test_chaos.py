"""Chaos on the real PostgreSQL and Redis with two hub processes (issue 19).

* ``kill -9`` of the node that the agents and half the customers are on, during a burst of numbered customer
  and agent messages: every acknowledged message is in SQL exactly once, the clients reconnect to the other
  node and catch up by ``resume``, and each conversation goes on with the same agent.
* Redis (a server of the test's own) killed during live chats and started again empty: both nodes say
  ``degraded`` on ``/healthz`` and keep serving (messages acknowledged at the first attempt, stored once, and
  delivered live on the agent's own node; a new chat is stored and queued in SQL); when Redis is back each
  node rebuilds the shared state from SQL, tells its consoles and widgets to ``resync`` (they resume), and the
  new chat is offered; nothing is offered twice.

The clients here do what the widget and the console do (``agent_console/static/widget.js``,
``console/core/socket.js``): a message is sent until it is acknowledged, with the same ``client_msg_id``
(the hub stores it once); after a reconnect they ``resume`` from the last ``seq`` they hold. A load balancer
in front of the nodes is played by reconnecting to the surviving node.

Printed (``-s``): the reconnect times (kill -> the new connection's ``session``/``hello``) and the counts.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import aiohttp
import pytest
import socketio
from sqlalchemy import text

from crm_store.db import Database
from crm_store.repositories import agents as agents_repo
from tests.cluster import HubCluster, free_port, hub_cluster
from tests.sio_helpers import Inbox, sio_client

PASSWORD = "agent-password"
AGENTS = ("alice", "bob")
CUSTOMERS = 6  # two agents x three chats
BURST = 30  # numbered messages per customer, and per agent per conversation (a widget may send 2 a second)
KILL_AFTER = 12  # acknowledged customer messages (of the first customer) before node 0 is killed


async def _seed(db: Database) -> None:
    async with db.transaction() as s:
        for name in AGENTS:
            await agents_repo.create_agent(s, name, PASSWORD, display_name=name.title(), capacity={"chat": 3})
        await agents_repo.create_queue(s, "sales", channels=["chat"])


@pytest.fixture
async def cluster() -> AsyncIterator[HubCluster]:
    async for c in hub_cluster(2, _seed, env={"OFFER_TIMEOUT_SECONDS": "30"}):
        yield c


async def _login(base: str, username: str) -> str:
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"{base}/auth/login", json={"username": username, "password": PASSWORD})
        assert resp.status == 200, await resp.text()
        return f"cc_session={resp.cookies['cc_session'].value}"


@dataclass
class Side:
    """One client (a customer's widget or an agent's console) that survives its node's death."""

    kind: str  # "customer" or "agent"
    name: str
    node: int
    cookie: str = ""
    inbox: Inbox = field(default_factory=Inbox)
    sio: socketio.AsyncClient | None = None
    acked: dict[str, int] = field(default_factory=dict)  # client_msg_id -> seq
    seen: dict[int, set[int]] = field(default_factory=dict)  # conversation id -> seqs received or resumed
    reconnect_seconds: float | None = None
    up: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def namespace(self) -> str:
        return "/customer" if self.kind == "customer" else "/agent"

    async def connect(self, cluster: HubCluster) -> None:
        self.inbox = Inbox()
        events = ("session", "message", "agent_joined", "queue", "resync") if self.kind == "customer" else ("hello", "offer", "message", "resync")
        sio = sio_client(self.inbox, self.namespace, events)
        sio.on("disconnect", self._lost, namespace=self.namespace)
        base = cluster.base(self.node)
        if self.kind == "customer":
            await sio.connect(base, namespaces=[self.namespace], transports=["websocket"],
                              auth={"visitor_id": f"visitor_chaos_{self.name}", "name": self.name.title()})
            await self.inbox.wait("session", timeout=15)
        else:
            await sio.connect(base, namespaces=[self.namespace], transports=["websocket"], headers={"Cookie": self.cookie})
            await self.inbox.wait("hello", timeout=15)
        self.sio = sio
        self.up.set()

    def _lost(self, *_: Any) -> None:
        self.up.clear()

    async def call(self, event: str, data: dict[str, Any], timeout: float = 5.0) -> Any:
        assert self.sio is not None
        return await self.sio.call(event, data, namespace=self.namespace, timeout=timeout)

    def note(self, cid: int, seq: int) -> None:
        self.seen.setdefault(cid, set()).add(seq)

    async def send_until_acked(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        """What the widget and the console do: the same client_msg_id until the hub acknowledges it."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            await asyncio.wait_for(self.up.wait(), 30)
            try:
                ack = await self.call(event, payload)
            except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError,
                    socketio.exceptions.DisconnectedError, ConnectionError):
                await asyncio.sleep(0.05)
                continue
            error = ack.get("error") or {}
            if not ack.get("ok") and error.get("code") in ("rate_limited", "unavailable"):  # the widget waits as told
                await asyncio.sleep(float(error.get("retry_after") or 0.5))
                continue
            assert ack.get("ok"), ack
            return ack
        raise AssertionError(f"{self.name}: {payload['client_msg_id']} never acknowledged")


async def _fail_over(side: Side, cluster: HubCluster, killed_at: float, to: int) -> None:
    """The client lost its node: connect to the surviving one (the load balancer's job), as the product's
    clients retry, and resume from the last seq held."""
    side.node = to
    deadline = time.monotonic() + 30
    while True:
        try:
            await side.connect(cluster)
            break
        except (socketio.exceptions.ConnectionError, asyncio.TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
    side.reconnect_seconds = time.monotonic() - killed_at


async def test_kill_9_of_a_node_during_a_burst_loses_no_acknowledged_message(cluster: HubCluster) -> None:
    agents = [Side("agent", name, node=0, cookie=await _login(cluster.base(0), name)) for name in AGENTS]
    # half the customers on the node that dies, half on the other
    customers = [Side("customer", f"cust{i}", node=0 if i < CUSTOMERS // 2 else 1) for i in range(CUSTOMERS)]
    for a in agents:
        await a.connect(cluster)
        assert (await a.call("set_status", {"status": "available"}))["ok"]

    # every customer's chat is offered and accepted; remember who serves whom
    conv_of: dict[str, int] = {}
    agent_of: dict[int, str] = {}
    for c in customers:
        await c.connect(cluster)
        ack = await c.call("message", {"client_msg_id": f"{c.name}-hello", "text": f"hello from {c.name}"})
        assert ack["ok"], ack
        conv_of[c.name] = ack["message"]["conversation_id"] if "conversation_id" in ack["message"] else ack["conversation_id"]
    pending = set(conv_of.values())
    deadline = time.monotonic() + 30
    while pending and time.monotonic() < deadline:
        for a in agents:
            for offer in a.inbox.all("offer"):
                cid = offer["conversation_id"]
                if cid in pending:
                    got = await a.call("accept", {"conversation_id": cid})
                    if got.get("ok"):
                        agent_of[cid] = a.name
                        pending.discard(cid)
        await asyncio.sleep(0.1)
    assert not pending, f"not accepted: {pending}"

    killed_at = 0.0
    killed = asyncio.Event()

    async def customer_burst(c: Side) -> None:
        cid = conv_of[c.name]
        for i in range(1, BURST + 1):
            ack = await c.send_until_acked("message", {"client_msg_id": f"{c.name}-{i:03d}", "text": f"{c.name} says {i}"})
            c.acked[f"{c.name}-{i:03d}"] = ack["message"]["seq"]
            c.note(cid, ack["message"]["seq"])
            if c is customers[0] and i == KILL_AFTER:
                killed.set()

    async def agent_burst(a: Side) -> None:
        mine = [cid for cid, who in agent_of.items() if who == a.name]
        for i in range(1, BURST + 1):
            for cid in mine:
                mid = f"{a.name}-{cid}-{i:03d}"
                ack = await a.send_until_acked("reply", {"conversation_id": cid, "client_msg_id": mid, "text": f"{a.name} answers {i}"})
                a.acked[mid] = ack["message"]["seq"]
                a.note(cid, ack["message"]["seq"])

    async def chaos() -> None:
        nonlocal killed_at
        await killed.wait()
        killed_at = time.monotonic()
        cluster.kill(0)
        lost = [s for s in (*agents, *customers) if s.node == 0]
        await asyncio.gather(*(_fail_over(s, cluster, killed_at, to=1) for s in lost))

    await asyncio.wait_for(asyncio.gather(chaos(), *(customer_burst(c) for c in customers), *(agent_burst(a) for a in agents)), 180)

    # catch up: each side resumes every conversation from seq 0 and must hold every acknowledged message
    for c in customers:
        got = await c.call("resume", {"last_seq": 0})
        assert got["ok"] and got["conversation_id"] == conv_of[c.name]
        seqs = {m["seq"] for m in got["messages"]}
        assert set(c.acked.values()) <= seqs
        assert {a_seq for a in agents for mid, a_seq in a.acked.items() if f"-{conv_of[c.name]}-" in mid} <= seqs
    for a in agents:
        for cid in (cid for cid, who in agent_of.items() if who == a.name):
            got = await a.call("resume", {"conversation_id": cid, "last_seq": 0})
            assert got["ok"], got
            seqs = {m["seq"] for m in got["messages"]}
            assert seqs == set(range(1, max(seqs) + 1))  # gapless

    # SQL: every acknowledged message exactly once, under its client_msg_id, at the seq its ack gave
    db = Database(cluster.url)
    try:
        async with db.session() as s:
            rows = (await s.execute(text(
                "SELECT client_msg_id, seq, conversation_id FROM messages WHERE client_msg_id IS NOT NULL"))).all()
            owners = dict((await s.execute(text(
                "SELECT c.id, a.username FROM conversations c JOIN agents a ON a.id = c.assigned_agent_id"))).all())
    finally:
        await db.dispose()
    stored: dict[str, list[int]] = {}
    for mid, seq, _cid in rows:
        stored.setdefault(mid, []).append(seq)
    acked = {mid: seq for side in (*agents, *customers) for mid, seq in side.acked.items()}
    assert len(acked) == CUSTOMERS * BURST * 2
    assert {mid: stored.get(mid) for mid in acked} == {mid: [seq] for mid, seq in acked.items()}
    # the conversations go on with the same agent
    assert {cid: owners.get(cid) for cid in agent_of} == agent_of
    # after the kill, the other node answers for everyone
    for a in agents:
        hello = a.inbox.all("hello")[-1]
        assert {c["id"] for c in hello["conversations"]} == {cid for cid, who in agent_of.items() if who == a.name}

    times = sorted(s.reconnect_seconds for s in (*agents, *customers) if s.reconnect_seconds is not None)
    print(f"\nchaos kill -9: {len(times)} clients failed over; reconnect s: "
          f"min {times[0]:.2f}, max {times[-1]:.2f} (target p99 < 2 s); "
          f"{len(acked)} acknowledged messages, {len(rows)} rows with a client_msg_id")
    assert times[-1] < 10.0  # the figure to watch is printed; this only catches a hang


# --- Redis stopped during live chats, and started again (empty) ---------------------------------------------


class OwnRedis:
    """A redis-server of this test's own (the shared one serves other tests): stopped and started at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
async def own_redis() -> AsyncIterator[OwnRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    r = OwnRedis()
    r.start()
    try:
        yield r
    finally:
        r.kill()


async def _health(base: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/healthz") as resp:
            return resp.status, await resp.json()


async def _until(check: Any, what: str, timeout: float = 40.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = await check()
        if got:
            return got
        await asyncio.sleep(0.2)
    raise AssertionError(f"never: {what}")


async def test_redis_stopped_during_live_chats_loses_no_message_and_offers_nothing_twice(own_redis: OwnRedis) -> None:
    async for cluster in hub_cluster(2, _seed, redis_url=own_redis.url, env={"OFFER_TIMEOUT_SECONDS": "30"}):
        alice = Side("agent", "alice", node=1, cookie=await _login(cluster.base(1), "alice"))
        await alice.connect(cluster)
        assert (await alice.call("set_status", {"status": "available"}))["ok"]
        far, near = Side("customer", "far", node=0), Side("customer", "near", node=1)
        conv: dict[str, int] = {}
        for c in (far, near):
            await c.connect(cluster)
            ack = await c.call("message", {"client_msg_id": f"{c.name}-0", "text": f"hello from {c.name}"})
            assert ack["ok"], ack
            conv[c.name] = ack["message"]["conversation_id"]
            offer = await alice.inbox.wait("offer", lambda o, cid=conv[c.name]: o["conversation_id"] == cid, timeout=15)
            assert (await alice.call("accept", {"conversation_id": offer["conversation_id"]}))["ok"]

        own_redis.kill()
        for i in (0, 1):  # each node says it is degraded (and still serves)
            status, body = await _until(lambda i=i: _degraded(cluster.base(i)), f"node {i} reports Redis lost")
            assert status == 200 and body["redis"] is False and body["database"] is True

        # during the outage: every message is stored and acknowledged; the agent on the customer's own node
        # gets it live
        during: dict[str, int] = {}
        for c in (far, near):
            for i in range(1, 4):
                mid = f"{c.name}-{i}"
                ack = await c.call("message", {"client_msg_id": mid, "text": f"{c.name} during {i}"})
                assert ack["ok"], ack  # at the first attempt: nothing here needs the shared state
                during[mid] = ack["message"]["seq"]
        for c in (far, near):
            mid = f"alice-{c.name}-1"
            ack = await alice.call("reply", {"conversation_id": conv[c.name], "client_msg_id": mid, "text": f"to {c.name} during the outage"})
            assert ack["ok"], ack
            during[mid] = ack["message"]["seq"]
        await alice.inbox.wait("message", lambda m: m.get("text") == "near during 3", timeout=10)
        # a new customer arrives while Redis is down: stored, and queued in SQL
        late = Side("customer", "late", node=0)
        await late.connect(cluster)
        ack = await late.call("message", {"client_msg_id": "late-0", "text": "anyone there?"})
        assert ack["ok"], ack  # stored and queued in SQL; the shared queue gets it when Redis is back
        conv["late"] = ack["message"]["conversation_id"]

        own_redis.start()  # empty: every shared record is gone
        back = time.monotonic()
        for i in (0, 1):
            await _until(lambda i=i: _healthy(cluster.base(i)), f"node {i} healthy again")
        offer = await alice.inbox.wait("offer", lambda o: o["conversation_id"] == conv["late"], timeout=40)
        offered_after = time.monotonic() - back
        assert (await alice.call("accept", {"conversation_id": offer["conversation_id"]}))["ok"]
        # the consoles and widgets are told to catch up (resync), and do, by resume
        await alice.inbox.wait("resync", timeout=10)
        await far.inbox.wait("resync", timeout=10)
        got = await alice.call("resume", {"conversation_id": conv["far"], "last_seq": 0})
        assert {m["text"] for m in got["messages"]} >= {"far during 1", "far during 2", "far during 3"}
        await asyncio.sleep(3)  # a few routing passes more: nothing is offered twice
        offered = [o["conversation_id"] for o in alice.inbox.all("offer")]
        assert sorted(offered) == sorted([conv["far"], conv["near"], conv["late"]]), offered
        got = await far.call("resume", {"last_seq": 0})
        assert "to far during the outage" in {m["text"] for m in got["messages"]}

        db = Database(cluster.url)
        try:
            async with db.session() as s:
                rows = dict((await s.execute(text(
                    "SELECT client_msg_id, COUNT(*) FROM messages WHERE client_msg_id IS NOT NULL GROUP BY client_msg_id"))).all())
                owners = dict((await s.execute(text("SELECT id, assigned_agent_id FROM conversations"))).all())
        finally:
            await db.dispose()
        assert all(rows.get(mid) == 1 for mid in during), {mid: rows.get(mid) for mid in during}
        print(f"\nchaos Redis: {len(during)} messages acknowledged during the outage, each stored once; the chat that "
              f"came during the outage offered {offered_after:.1f} s after Redis was back; offers {len(offered)} for 3 chats")
        assert len({owners[c] for c in conv.values()}) == 1 and None not in {owners[c] for c in conv.values()}


async def _degraded(base: str) -> tuple[int, dict[str, Any]] | None:
    status, body = await _health(base)
    return (status, body) if body.get("redis") is False else None


async def _healthy(base: str) -> bool:
    status, body = await _health(base)
    return status == 200 and body.get("status") == "ok"
