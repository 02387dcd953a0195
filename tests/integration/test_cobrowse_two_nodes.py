"""Co-browsing and document push across two hub processes (real `contact-center serve` on PostgreSQL + Redis):
the customer's sockets on node A, the agent's on node B. The sessions, codes, wrong-code counts and pushes are in
the shared store; the relay's emits cross the nodes through python-socketio's Redis manager."""

from __future__ import annotations

import asyncio
import json
import tempfile
from typing import Any, AsyncIterator

import aiohttp
import pytest
import socketio

from crm_store.db import Database
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import conversations as conversations_repo
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import interactions as interactions_repo
from tests.cluster import HubCluster, hub_cluster
from tests.sio_helpers import Inbox, sio_client

PASSWORD = "agent-password"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
CUSTOMER_EVENTS = ("session", "message", "agent_joined", "cobrowse_request", "cobrowse_ended", "cobrowse_checkout",
                   "cobrowse_pointer", "closed", "document", "queue")
AGENT_EVENTS = ("hello", "offer", "message", "cobrowse_state", "cobrowse_events", "cobrowse_ended")


async def _seed(db: Database) -> None:
    async with db.transaction() as s:
        await agents_repo.create_agent(s, "alice", PASSWORD, display_name="Alice", capacity={"chat": 3})
        await agents_repo.create_queue(s, "sales", channels=["chat"])


@pytest.fixture
async def cluster() -> AsyncIterator[HubCluster]:
    media = tempfile.mkdtemp(prefix="cc-media-")  # one media store for both nodes (as a shared volume would be)
    async for c in hub_cluster(2, _seed, env={"MEDIA_DIR": media}):
        yield c


def _piece(session_id: str, seq: int, events: list[dict[str, Any]]) -> dict[str, Any]:
    return {"session_id": session_id, "seq": seq, "part": 0, "parts": 1, "data": json.dumps(events)}


async def _login(base: str) -> str:
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"{base}/auth/login", json={"username": "alice", "password": PASSWORD})
        assert resp.status == 200
        return f"cc_session={resp.cookies['cc_session'].value}"


async def _agent(base: str, cookie: str) -> tuple[socketio.AsyncClient, Inbox]:
    inbox = Inbox()
    sio = sio_client(inbox, "/agent", AGENT_EVENTS)
    await sio.connect(base, namespaces=["/agent"], headers={"Cookie": cookie}, transports=["websocket"])
    await inbox.wait("hello")
    return sio, inbox


async def _customer(base: str, visitor: str) -> tuple[socketio.AsyncClient, Inbox]:
    inbox = Inbox()
    sio = sio_client(inbox, "/customer", CUSTOMER_EVENTS)
    await sio.connect(base, namespaces=["/customer"], auth={"visitor_id": visitor, "name": "Nia"}, transports=["websocket"])
    await inbox.wait("session")
    return sio, inbox


async def _timeline(db: Database, customer_id: int, kind: str) -> list[str]:
    async with db.session() as s:
        page = await interactions_repo.timeline(s, customer_id, kinds=[kind])
    return sorted(str(r.payload["event"]) for r in page.items)


async def test_chat_co_browsing_and_a_pushed_document_across_nodes(cluster: HubCluster) -> None:
    node_a, node_b = cluster.base(0), cluster.base(1)
    cookie = await _login(node_b)
    alice, a_in = await _agent(node_b, cookie)
    assert (await alice.call("set_status", {"status": "available"}, namespace="/agent"))["ok"]
    cust, c_in = await _customer(node_a, "visitor_twonode_cb1")
    assert (await cust.call("message", {"client_msg_id": "m1", "text": "help me choose"}, namespace="/customer"))["ok"]
    cid = (await a_in.wait("offer", timeout=15))["conversation_id"]
    assert (await alice.call("accept", {"conversation_id": cid}, namespace="/agent"))["ok"]
    await c_in.wait("agent_joined", timeout=10)

    # request on B -> prompt on A -> consent on A -> live on B
    ack = await alice.call("cobrowse_start", {"conversation_id": cid}, namespace="/agent")
    assert ack["ok"] and ack["session"]["state"] == "pending", ack
    session_id = ack["session"]["session_id"]
    assert (await c_in.wait("cobrowse_request", timeout=10))["session_id"] == session_id
    ack = await cust.call("cobrowse_consent", {"session_id": session_id, "accept": True}, namespace="/customer")
    assert ack["ok"] and ack["session"]["state"] == "live", ack
    await a_in.wait("cobrowse_state", lambda d: d["state"] == "live", timeout=10)
    # asking again on A's peer B returns the same session (one per conversation, shared)
    assert (await alice.call("cobrowse_status", {"conversation_id": cid}, namespace="/agent"))["session"]["session_id"] == session_id

    # the page's events from A reach the agent on B; the checkout and the pointer from B reach the page on A
    events = [{"type": 4, "data": {"href": "https://shop.example/", "width": 800, "height": 600}, "timestamp": 1}]
    assert (await cust.call("cobrowse_events", _piece(session_id, 0, events), namespace="/customer")) == {"ok": True}
    got = await a_in.wait("cobrowse_events", timeout=10)
    assert got["session_id"] == session_id and json.loads(got["data"]) == events
    assert (await alice.call("cobrowse_checkout", {"conversation_id": cid}, namespace="/agent"))["ok"]
    await c_in.wait("cobrowse_checkout", timeout=10)
    await alice.emit("cobrowse_pointer", {"conversation_id": cid, "x": 10, "y": 20}, namespace="/agent")
    assert (await c_in.wait("cobrowse_pointer", timeout=10))["x"] == 10

    # the customer's next page lands on node B: it resumes without asking, and the old page on A closes
    page2, p2_in = await _customer(node_b, "visitor_twonode_cb1")
    status = await page2.call("cobrowse_status", {}, namespace="/customer")
    assert status["ok"] and status["session"]["state"] == "live" and status["session"]["session_id"] == session_id
    await cust.disconnect()
    assert (await page2.call("cobrowse_events", _piece(session_id, 1, events), namespace="/customer")) == {"ok": True}
    await a_in.wait("cobrowse_events", lambda d: d["seq"] == 1, timeout=10)

    # a document of the agent's own, uploaded through node A, pushed from node B, opened on node A
    form = aiohttp.FormData()
    form.add_field("file", PNG, filename="photo.png", content_type="application/octet-stream")
    async with aiohttp.ClientSession() as http:
        r = await http.post(f"{node_a}/console/documents/own", data=form, headers={"Cookie": cookie})
        assert r.status == 201, await r.text()
        upload_id = (await r.json())["upload_id"]
    ack = await alice.call("document_push", {"conversation_id": cid, "upload_id": upload_id}, namespace="/agent")
    assert ack["ok"], ack
    doc = await p2_in.wait("document", timeout=10)
    async with aiohttp.ClientSession() as http:
        r = await http.get(f"{node_a}{doc['url']}", headers={"X-CC-Visitor": "visitor_twonode_cb1"})
        assert r.status == 200 and await r.read() == PNG
        assert (await http.get(f"{node_a}{doc['url']}", headers={"X-CC-Visitor": "visitor_someone_else"})).status == 403
        for base in (node_a, node_b, node_a):  # downloaded once on the timeline, whichever node serves it
            r = await http.get(f"{base}{doc['url']}&download=1", headers={"X-CC-Visitor": "visitor_twonode_cb1"})
            assert r.status == 200
    for _ in range(2):
        assert (await page2.call("document_event", {"push_id": doc["push_id"], "event": "opened"}, namespace="/customer"))["ok"]

    # the agent ends on B: the page on B hears it, the timeline has one end
    assert (await alice.call("cobrowse_end", {"conversation_id": cid}, namespace="/agent"))["ok"]
    assert (await p2_in.wait("cobrowse_ended", timeout=10))["end_reason"] == "agent_ended"
    await a_in.wait("cobrowse_ended", timeout=10)
    ack = await page2.call("cobrowse_events", _piece(session_id, 2, events), namespace="/customer")
    assert ack["ok"] is False and ack["error"]["code"] == "not_found"

    db = Database(cluster.url)
    try:
        from crm_store.models import Conversation

        async with db.session() as s:
            conv = await s.get(Conversation, cid)
            customer_id = int(conv.customer_id)
        assert await _timeline(db, customer_id, "cobrowse") == ["consent_given", "ended", "requested"]
        assert await _timeline(db, customer_id, "document_push") == ["downloaded", "opened", "pushed"]
    finally:
        await db.dispose()
    await page2.disconnect()
    await alice.disconnect()


async def test_a_calls_code_issued_on_one_node_is_used_once_on_the_other(cluster: HubCluster) -> None:
    node_a, node_b = cluster.base(0), cluster.base(1)
    db = Database(cluster.url)
    try:
        async with db.transaction() as s:
            agent = await agents_repo.get_agent_by_username(s, "alice")
            res = await customers_repo.resolve_identity(s, "phone", "+12125550199", display_name="Carl Caller")
            conv = await conversations_repo.open_conversation(s, int(res.customer.id), "phone", thread_key="CA2125550199",
                                                              customer_address="+12125550199")
            conv.status, conv.assigned_agent_id = "assigned", agent.id
            await s.flush()
            cid, caller_id = int(conv.id), int(res.customer.id)

        alice, a_in = await _agent(node_b, await _login(node_b))
        ack = await alice.call("cobrowse_start", {"conversation_id": cid}, namespace="/agent")
        assert ack["ok"] and ack["session"]["via_code"], ack
        code, session_id = ack["code"], ack["session"]["session_id"]
        # the code is shown again from the shared session (a reloaded console on the other node would see it too)
        assert (await alice.call("cobrowse_status", {"conversation_id": cid}, namespace="/agent"))["code"] == code

        caller, c_in = await _customer(node_a, "visitor_twonode_call")
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        ack = await caller.call("cobrowse_join", {"code": wrong}, namespace="/customer")
        assert ack["ok"] is False and ack["error"]["code"] == "not_found"
        ack = await caller.call("cobrowse_join", {"code": code}, namespace="/customer")
        assert ack["ok"] and ack["session"]["session_id"] == session_id and ack["session"]["state"] == "live", ack
        await a_in.wait("cobrowse_state", lambda d: d["state"] == "live", timeout=10)
        # single use across the nodes: another browser on B gets nothing
        other, _ = await _customer(node_b, "visitor_twonode_othr")
        ack = await other.call("cobrowse_join", {"code": code}, namespace="/customer")
        assert ack["ok"] is False and ack["error"]["code"] == "not_found"

        events = [{"type": 4, "data": {"href": "https://shop.example/", "width": 800, "height": 600}, "timestamp": 1}]
        assert (await caller.call("cobrowse_events", _piece(session_id, 0, events), namespace="/customer")) == {"ok": True}
        assert json.loads((await a_in.wait("cobrowse_events", timeout=10))["data"]) == events
        # the caller's next page, on node B: found by its visitor id, without a code
        page2, p2_in = await _customer(node_b, "visitor_twonode_call")
        status = await page2.call("cobrowse_status", {}, namespace="/customer")
        assert status["session"]["session_id"] == session_id and "conversation_id" not in status["session"]
        # wrong tries are counted on every node: 4 more on B lock this address on A too
        for _ in range(4):
            await other.call("cobrowse_join", {"code": wrong}, namespace="/customer")
        ack = await caller.call("cobrowse_join", {"code": wrong}, namespace="/customer")
        assert ack["ok"] is False and ack["error"]["code"] == "rate_limited", ack

        ack = await caller.call("cobrowse_end", {"session_id": session_id}, namespace="/customer")
        assert ack["ok"], ack
        assert (await a_in.wait("cobrowse_ended", timeout=10))["end_reason"] == "customer_ended"
        await p2_in.wait("cobrowse_ended", timeout=10)
        await asyncio.sleep(0.2)
        assert await _timeline(db, caller_id, "cobrowse") == ["consent_given", "ended", "requested"]
        for s_ in (alice, caller, other, page2):
            await s_.disconnect()
    finally:
        await db.dispose()


@pytest.fixture
async def quick_cluster() -> AsyncIterator[HubCluster]:
    """Two nodes whose consent timeout and customer-left grace are short (COBROWSE_CONSENT/GRACE_SECONDS)."""
    async for c in hub_cluster(2, _seed, env={"COBROWSE_CONSENT_SECONDS": "1.5", "COBROWSE_GRACE_SECONDS": "1.5"}):
        yield c


async def test_timers_work_across_nodes_and_fire_once(quick_cluster: HubCluster) -> None:
    cluster = quick_cluster
    node_a, node_b = cluster.base(0), cluster.base(1)
    alice, a_in = await _agent(node_b, await _login(node_b))
    assert (await alice.call("set_status", {"status": "available"}, namespace="/agent"))["ok"]
    cust, c_in = await _customer(node_a, "visitor_twonode_tm1")
    assert (await cust.call("message", {"client_msg_id": "m1", "text": "hi"}, namespace="/customer"))["ok"]
    cid = (await a_in.wait("offer", timeout=15))["conversation_id"]
    assert (await alice.call("accept", {"conversation_id": cid}, namespace="/agent"))["ok"]
    await c_in.wait("agent_joined", timeout=10)

    # 1. live; the page on A goes and the next page comes back on B within the grace: A's timer finds it recording
    ack = await alice.call("cobrowse_start", {"conversation_id": cid}, namespace="/agent")
    session_id = ack["session"]["session_id"]
    assert (await cust.call("cobrowse_consent", {"session_id": session_id, "accept": True}, namespace="/customer"))["ok"]
    await cust.disconnect()  # node A starts its grace timer
    page2, p2_in = await _customer(node_b, "visitor_twonode_tm1")
    assert (await page2.call("cobrowse_status", {}, namespace="/customer"))["session"]["state"] == "live"
    await asyncio.sleep(2.5)  # past node A's timer
    assert not a_in.all("cobrowse_ended")
    assert (await alice.call("cobrowse_status", {"conversation_id": cid}, namespace="/agent"))["session"]["state"] == "live"
    # the page on B goes and none comes back: the session ends customer_left, once
    await page2.disconnect()
    ended = await a_in.wait("cobrowse_ended", timeout=10)
    assert ended["end_reason"] == "customer_left"

    # 2. no answer: node B's consent timer ends it; the customer on A hears it
    cust, c_in = await _customer(node_a, "visitor_twonode_tm1")
    ack = await alice.call("cobrowse_start", {"conversation_id": cid}, namespace="/agent")
    second = ack["session"]["session_id"]
    await c_in.wait("cobrowse_request", lambda d: d["session_id"] == second, timeout=10)
    assert (await c_in.wait("cobrowse_ended", lambda d: d["session_id"] == second, timeout=10))["end_reason"] == "no_answer"

    # 3. the node that set the timer dies: the next look at the session (on A) ends it lazily, once
    ack = await alice.call("cobrowse_start", {"conversation_id": cid}, namespace="/agent")
    third = ack["session"]["session_id"]
    await c_in.wait("cobrowse_request", lambda d: d["session_id"] == third, timeout=10)
    cluster.kill(1)
    await asyncio.sleep(2.0)
    ack = await cust.call("cobrowse_consent", {"session_id": third, "accept": True}, namespace="/customer")
    assert ack["ok"] is False and ack["error"]["code"] == "not_found", ack
    assert (await c_in.wait("cobrowse_ended", lambda d: d["session_id"] == third, timeout=10))["end_reason"] == "no_answer"

    db = Database(cluster.url)
    try:
        from crm_store.models import Conversation

        async with db.session() as s:
            customer_id = int((await s.get(Conversation, cid)).customer_id)
        events = await _timeline(db, customer_id, "cobrowse")
        assert events.count("consent_refused") == 2 and events.count("ended") == 1 and events.count("requested") == 3, events
    finally:
        await db.dispose()
    await cust.disconnect()
