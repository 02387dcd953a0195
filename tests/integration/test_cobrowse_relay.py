"""The co-browsing relay over real Socket.IO: who may ask, who may send, what is relayed to whom, the errors,
the ends (agent, customer, no answer, closed conversation) and the timeline's record."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import socketio

from contact_center.cobrowse import COBROWSE_KEY
from contact_center.domain.cobrowse import MAX_CHUNK_CHARS
from crm_store.db import Database
from crm_store.repositories import interactions as interactions_repo
from tests.integration.test_hub_chat import _APPS, _login, hub  # noqa: F401 - the hub fixture
from tests.sio_helpers import Inbox, sio_client

AGENT_EVENTS = ("hello", "offer", "message", "cobrowse_state", "cobrowse_ended", "cobrowse_events", "conversation_closed")
CUSTOMER_EVENTS = ("session", "message", "agent_joined", "cobrowse_request", "cobrowse_ended", "cobrowse_checkout", "cobrowse_pointer", "closed")


async def _agent(base: str, username: str) -> tuple[socketio.AsyncClient, Inbox]:
    inbox = Inbox()
    sio = sio_client(inbox, "/agent", AGENT_EVENTS)
    await sio.connect(base, namespaces=["/agent"], headers={"Cookie": await _login(base, username)}, transports=["websocket"])
    await inbox.wait("hello")
    return sio, inbox


async def _customer(base: str, visitor: str) -> tuple[socketio.AsyncClient, Inbox]:
    inbox = Inbox()
    sio = sio_client(inbox, "/customer", CUSTOMER_EVENTS)
    await sio.connect(base, namespaces=["/customer"], auth={"visitor_id": visitor, "name": "Cara"}, transports=["websocket"])
    await inbox.wait("session")
    return sio, inbox


async def _chat(base: str, agent: socketio.AsyncClient, a_in: Inbox, visitor: str) -> tuple[socketio.AsyncClient, Inbox, int]:
    cust, c_in = await _customer(base, visitor)
    ack = await cust.call("message", {"client_msg_id": "m1", "text": "help me with this page"}, namespace="/customer")
    assert ack["ok"], ack
    cid = int(ack["message"]["conversation_id"])
    await a_in.wait("offer", lambda d: d["conversation_id"] == cid)
    ack = await agent.call("accept", {"conversation_id": cid}, namespace="/agent")
    assert ack["ok"], ack
    await c_in.wait("agent_joined")
    return cust, c_in, cid


def _piece(session_id: str, seq: int, events: list[dict[str, Any]]) -> dict[str, Any]:
    return {"session_id": session_id, "seq": seq, "part": 0, "parts": 1, "data": json.dumps(events)}


async def test_only_the_holding_agent_and_the_chats_customer_take_part(hub: str, db: Database) -> None:  # noqa: F811
    alice, a_in = await _agent(hub, "alice")
    assert (await alice.call("set_status", {"status": "available"}, namespace="/agent"))["ok"]
    bob, b_in = await _agent(hub, "bob")
    cust, c_in, cid = await _chat(hub, alice, a_in, "visitor_cobrowse_01")
    other, o_in = await _customer(hub, "visitor_cobrowse_02")

    # another agent may not ask, nor look, nor end it
    for event in ("cobrowse_start", "cobrowse_status", "cobrowse_end", "cobrowse_checkout"):
        ack = await bob.call(event, {"conversation_id": cid}, namespace="/agent")
        assert ack["ok"] is False and ack["error"]["code"] == "forbidden", (event, ack)
    assert (await alice.call("cobrowse_start", {"conversation_id": "x"}, namespace="/agent"))["error"]["code"] == "bad_request"
    assert (await alice.call("cobrowse_start", "nope", namespace="/agent"))["error"]["code"] == "bad_request"

    ack = await alice.call("cobrowse_start", {"conversation_id": cid}, namespace="/agent")
    assert ack["ok"] and ack["session"]["state"] == "pending", ack
    sid = ack["session"]["session_id"]
    asked = await c_in.wait("cobrowse_request")
    assert asked["session_id"] == sid and asked["agent_name"] == "Alice"
    assert not o_in.all("cobrowse_request")  # another customer is not asked
    again = await alice.call("cobrowse_start", {"conversation_id": cid}, namespace="/agent")
    assert again["session"]["session_id"] == sid  # asking twice is the same request

    # nothing is relayed before consent
    ack = await cust.call("cobrowse_events", _piece(sid, 0, [{"type": 4, "timestamp": 1}]), namespace="/customer")
    assert ack["ok"] is False and ack["error"]["code"] == "conflict"
    # another customer cannot answer, nor inject, even with the session id
    ack = await other.call("cobrowse_consent", {"session_id": sid, "accept": True}, namespace="/customer")
    assert ack["ok"] is False and ack["error"]["code"] == "not_found"

    ack = await cust.call("cobrowse_consent", {"session_id": sid, "accept": True}, namespace="/customer")
    assert ack["ok"] and ack["session"]["state"] == "live", ack
    live = await a_in.wait("cobrowse_state", lambda d: d["state"] == "live")
    assert live["conversation_id"] == cid

    events = [{"type": 4, "data": {"href": "https://shop.example/", "width": 800, "height": 600}, "timestamp": 1}]
    ack = await cust.call("cobrowse_events", _piece(sid, 0, events), namespace="/customer")
    assert ack == {"ok": True}
    got = await a_in.wait("cobrowse_events")
    assert got["conversation_id"] == cid and got["session_id"] == sid and json.loads(got["data"]) == events
    ack = await other.call("cobrowse_events", _piece(sid, 1, events), namespace="/customer")
    assert ack["ok"] is False and ack["error"]["code"] == "not_found"
    await asyncio.sleep(0.2)
    assert len(a_in.all("cobrowse_events")) == 1 and not b_in.all("cobrowse_events")

    # bad input: clear codes, the connection stays up
    for payload, code in (
        ({"session_id": "short", "seq": 1, "data": "[]"}, "bad_request"),
        ({"session_id": sid, "data": "[]"}, "bad_request"),
        ({"session_id": sid, "seq": 1, "part": 2, "parts": 2, "data": "[]"}, "bad_request"),
        ({"session_id": sid, "seq": 1, "data": ""}, "bad_request"),
        ({"session_id": sid, "seq": 1, "data": "x" * (MAX_CHUNK_CHARS + 1)}, "too_large"),
        ({"session_id": sid, "seq": 1, "data": "x" * 70_000}, "too_large"),  # over the packet limit: the hub's own refusal
        ("not an object", "bad_request"),
    ):
        ack = await cust.call("cobrowse_events", payload, namespace="/customer")
        assert ack["ok"] is False and ack["error"]["code"] == code, (str(payload)[:80], ack)

    # a late-joining view asks for a full snapshot; the pointer goes to the customer
    assert (await alice.call("cobrowse_checkout", {"conversation_id": cid}, namespace="/agent"))["ok"]
    assert (await c_in.wait("cobrowse_checkout"))["session_id"] == sid
    await alice.emit("cobrowse_pointer", {"conversation_id": cid, "x": 10, "y": 20, "highlight": True}, namespace="/agent")
    point = await c_in.wait("cobrowse_pointer")
    assert point == {"session_id": sid, "x": 10.0, "y": 20.0, "highlight": True, "hide": False}
    await bob.emit("cobrowse_pointer", {"conversation_id": cid, "x": 1, "y": 1}, namespace="/agent")
    await asyncio.sleep(0.2)
    assert len(c_in.all("cobrowse_pointer")) == 1

    # the agent ends it: both sides are told; what the customer still sends goes nowhere
    assert (await alice.call("cobrowse_end", {"conversation_id": cid}, namespace="/agent"))["ok"]
    ended = await c_in.wait("cobrowse_ended")
    assert ended["end_reason"] == "agent_ended"
    await a_in.wait("cobrowse_ended")
    ack = await cust.call("cobrowse_events", _piece(sid, 5, events), namespace="/customer")
    assert ack["ok"] is False and ack["error"]["code"] == "not_found"

    # the timeline: who, when, the answer, the end and why; no page content
    customer_id = await _customer_of(db, cid)
    async with db.session() as s:
        page = await interactions_repo.timeline(s, customer_id, kinds=["cobrowse"])
    rows = {r.payload["event"]: r for r in page.items}
    assert set(rows) == {"requested", "consent_given", "ended"}
    assert rows["ended"].payload["reason"] == "agent_ended" and rows["ended"].agent_id is not None
    assert all("shop.example" not in json.dumps(r.payload) for r in page.items)
    for s_ in (alice, bob, cust, other):
        await s_.disconnect()


async def _customer_of(db: Database, conversation_id: int) -> int:
    from crm_store.models import Conversation

    async with db.session() as s:
        conv = await s.get(Conversation, conversation_id)
        assert conv is not None
        return int(conv.customer_id)


async def test_no_answer_declines_and_closing_the_chat_ends_it(hub: str, db: Database) -> None:  # noqa: F811
    relay = _APPS[-1][COBROWSE_KEY]
    relay.consent_seconds = 0.3
    alice, a_in = await _agent(hub, "alice")
    assert (await alice.call("set_status", {"status": "available"}, namespace="/agent"))["ok"]
    cust, c_in, cid = await _chat(hub, alice, a_in, "visitor_cobrowse_03")

    ack = await alice.call("cobrowse_start", {"conversation_id": cid}, namespace="/agent")
    sid = ack["session"]["session_id"]
    ended = await a_in.wait("cobrowse_ended", timeout=5)
    assert ended["end_reason"] == "no_answer" and ended["session_id"] == sid
    ack = await cust.call("cobrowse_consent", {"session_id": sid, "accept": True}, namespace="/customer")
    assert ack["ok"] is False and ack["error"]["code"] == "not_found"  # too late

    relay.consent_seconds = 60.0
    ack = await alice.call("cobrowse_start", {"conversation_id": cid}, namespace="/agent")
    sid2 = ack["session"]["session_id"]
    assert sid2 != sid
    assert (await cust.call("cobrowse_consent", {"session_id": sid2, "accept": True}, namespace="/customer"))["ok"]
    ack = await alice.call("close", {"conversation_id": cid, "disposition": "resolved"}, namespace="/agent")
    assert ack["ok"], ack
    ended = await c_in.wait("cobrowse_ended", lambda d: d["session_id"] == sid2)
    assert ended["end_reason"] == "conversation_ended"

    customer_id = await _customer_of(db, cid)
    async with db.session() as s:
        page = await interactions_repo.timeline(s, customer_id, kinds=["cobrowse"])
    reasons = sorted(r.payload.get("reason", "") for r in page.items if r.payload["event"] in ("consent_refused", "ended"))
    assert reasons == ["conversation_ended", "no_answer"]
    for s_ in (alice, cust):
        await s_.disconnect()


async def test_a_customer_whose_pages_are_gone_has_left(hub: str, db: Database) -> None:  # noqa: F811
    relay = _APPS[-1][COBROWSE_KEY]
    relay.grace_seconds = 0.3
    alice, a_in = await _agent(hub, "alice")
    assert (await alice.call("set_status", {"status": "available"}, namespace="/agent"))["ok"]
    cust, c_in, cid = await _chat(hub, alice, a_in, "visitor_cobrowse_04")
    sid = (await alice.call("cobrowse_start", {"conversation_id": cid}, namespace="/agent"))["session"]["session_id"]
    assert (await cust.call("cobrowse_consent", {"session_id": sid, "accept": True}, namespace="/customer"))["ok"]

    # a navigation: the page goes, the next one comes back in time and goes on (no new consent)
    await cust.disconnect()
    cust, c_in = await _customer(hub, "visitor_cobrowse_04")
    status = await cust.call("cobrowse_status", {}, namespace="/customer")
    assert status["session"]["state"] == "live" and status["session"]["session_id"] == sid
    await asyncio.sleep(0.5)
    assert not a_in.all("cobrowse_ended")

    # the customer leaves the site: no page records within the grace period
    await cust.disconnect()
    ended = await a_in.wait("cobrowse_ended", timeout=5)
    assert ended["end_reason"] == "customer_left"
    await alice.disconnect()


async def test_only_the_holding_agent_pushes_and_only_its_customer_reports(hub: str, db: Database) -> None:  # noqa: F811
    from contact_center.documents import DOCUMENTS_KEY
    from contact_center.media_routes import MEDIA_KEY
    from crm_store.repositories import documents as documents_repo

    app = _APPS[-1]
    stored = await app[MEDIA_KEY].put(b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png", "chart.png")
    async with db.transaction() as s:
        doc = await documents_repo.add_document(s, "chart.png", "image/png", stored.size, stored.key, None)
    alice, a_in = await _agent(hub, "alice")
    assert (await alice.call("set_status", {"status": "available"}, namespace="/agent"))["ok"]
    bob, _ = await _agent(hub, "bob")
    inbox = Inbox()
    cust = sio_client(inbox, "/customer", CUSTOMER_EVENTS + ("document",))
    await cust.connect(hub, namespaces=["/customer"], auth={"visitor_id": "visitor_docpush_01", "name": "Dora"}, transports=["websocket"])
    await inbox.wait("session")
    ack = await cust.call("message", {"client_msg_id": "m1", "text": "send me the chart"}, namespace="/customer")
    cid = int(ack["message"]["conversation_id"])
    await a_in.wait("offer", lambda d: d["conversation_id"] == cid)
    assert (await alice.call("accept", {"conversation_id": cid}, namespace="/agent"))["ok"]
    other, _ = await _customer(hub, "visitor_docpush_02")

    ack = await bob.call("document_push", {"conversation_id": cid, "document_id": doc.id}, namespace="/agent")
    assert ack["ok"] is False and ack["error"]["code"] == "forbidden"
    for bad, code in (({"conversation_id": cid, "document_id": "1"}, "bad_request"), ({"conversation_id": cid, "document_id": 99999}, "not_found")):
        ack = await alice.call("document_push", bad, namespace="/agent")
        assert ack["ok"] is False and ack["error"]["code"] == code, ack
    ack = await alice.call("document_push", {"conversation_id": cid, "document_id": doc.id}, namespace="/agent")
    assert ack["ok"] and "url" not in ack["push"], ack
    got = await inbox.wait("document")
    assert got["name"] == "chart.png" and got["url"].startswith(f"/documents/push/{got['push_id']}?exp=")

    ack = await other.call("document_event", {"push_id": got["push_id"], "event": "opened"}, namespace="/customer")
    assert ack["ok"] is False and ack["error"]["code"] == "not_found"
    ack = await cust.call("document_event", {"push_id": got["push_id"], "event": "downloaded"}, namespace="/customer")
    assert ack["ok"] is False and ack["error"]["code"] == "bad_request"  # downloads are counted by the hub itself
    for _ in range(2):
        assert (await cust.call("document_event", {"push_id": got["push_id"], "event": "opened"}, namespace="/customer"))["ok"]

    async with aiohttp.ClientSession() as http:
        url = f"{hub}{got['url']}"
        assert (await http.get(url)).status == 403
        assert (await http.get(url, headers={"X-CC-Visitor": "visitor_docpush_02"})).status == 403
        r = await http.get(url, headers={"X-CC-Visitor": "visitor_docpush_01"})
        assert r.status == 200 and r.headers["Content-Type"] == "image/png" and "sandbox" in r.headers["Content-Security-Policy"]
        app[DOCUMENTS_KEY].clock = lambda: 10**12  # 15 minutes later, and more
        assert (await http.get(url, headers={"X-CC-Visitor": "visitor_docpush_01"})).status == 410

    customer_id = await _customer_of(db, cid)
    async with db.session() as s:
        page = await interactions_repo.timeline(s, customer_id, kinds=["document_push"])
    assert sorted(r.payload["event"] for r in page.items) == ["opened", "pushed"]  # the first `opened` only
    assert all(r.payload["sha256"] == stored.key for r in page.items)
    for s_ in (alice, bob, cust, other):
        await s_.disconnect()
