"""Co-browsing on a call over real Socket.IO: the agent on a phone call gets a six-digit code, the caller types it
into the widget (their consent), and that browser is linked to the call's session only: single use, 10 minutes,
wrong codes rate-limited per socket and per address, nothing of the call's conversation reaches the widget."""

from __future__ import annotations

import asyncio
import json

import socketio

from contact_center.cobrowse import COBROWSE_KEY
from contact_center.hub.service import room_conv
from crm_store.db import Database
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import conversations as conversations_repo
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import interactions as interactions_repo
from tests.integration.test_cobrowse_relay import _agent, _piece
from tests.integration.test_hub_chat import _APPS, hub  # noqa: F401 - the hub fixture
from tests.sio_helpers import Inbox, sio_client

CUSTOMER_EVENTS = ("session", "message", "agent_joined", "cobrowse_request", "cobrowse_ended", "cobrowse_checkout",
                   "cobrowse_pointer", "closed", "document", "typing", "queue")


async def _call_of(db: Database, username: str, number: str = "+12125550147") -> tuple[int, int]:
    """A phone call's conversation, answered by ``username`` (as the voice adapter leaves it)."""
    async with db.transaction() as s:
        agent = await agents_repo.get_agent_by_username(s, username)
        assert agent is not None
        res = await customers_repo.resolve_identity(s, "phone", number, display_name="Carl Caller")
        conv = await conversations_repo.open_conversation(s, int(res.customer.id), "phone", thread_key=f"CA{number[1:]}",
                                                          customer_address=number)
        conv.status, conv.assigned_agent_id = "assigned", agent.id
        await s.flush()
        return int(conv.id), int(res.customer.id)


async def _browser(base: str, visitor: str) -> tuple[socketio.AsyncClient, Inbox]:
    inbox = Inbox()
    sio = sio_client(inbox, "/customer", CUSTOMER_EVENTS)
    await sio.connect(base, namespaces=["/customer"], auth={"visitor_id": visitor}, transports=["websocket"])
    await inbox.wait("session")
    return sio, inbox


async def test_the_caller_joins_with_the_code_once_and_sees_only_the_session(hub: str, db: Database) -> None:  # noqa: F811
    alice, a_in = await _agent(hub, "alice")
    bob, _ = await _agent(hub, "bob")
    cid, caller_id = await _call_of(db, "alice")

    assert (await bob.call("cobrowse_start", {"conversation_id": cid}, namespace="/agent"))["error"]["code"] == "forbidden"
    ack = await alice.call("cobrowse_start", {"conversation_id": cid}, namespace="/agent")
    assert ack["ok"] and ack["session"]["state"] == "pending" and ack["session"]["via_code"], ack
    code, session_id = ack["code"], ack["session"]["session_id"]
    assert len(code) == 6 and code.isdigit() and ack["code_expires_at"] - ack["session"]["consent_deadline"] < 1
    again = await alice.call("cobrowse_start", {"conversation_id": cid}, namespace="/agent")
    assert again["code"] == code and again["session"]["session_id"] == session_id  # the same code, read out again
    assert (await alice.call("cobrowse_status", {"conversation_id": cid}, namespace="/agent"))["code"] == code

    caller, c_in = await _browser(hub, "visitor_caller_0001")
    stranger, s_in = await _browser(hub, "visitor_stranger_01")
    # nobody is asked on a call: the browser is not known until the code is typed
    await asyncio.sleep(0.2)
    assert not c_in.all("cobrowse_request") and not s_in.all("cobrowse_request")
    for bad in ({"code": "12345"}, {"code": 123456}, "123456", {}):
        ack = await caller.call("cobrowse_join", bad, namespace="/customer")
        assert ack["ok"] is False and ack["error"]["code"] == "bad_request", (bad, ack)
    # the stranger cannot act on the session by its id before or after
    ack = await stranger.call("cobrowse_events", _piece(session_id, 0, [{"type": 4}]), namespace="/customer")
    assert ack["error"]["code"] == "not_found"

    ack = await caller.call("cobrowse_join", {"code": f"{code[:3]} {code[3:]}"}, namespace="/customer")
    assert ack["ok"] and ack["session"]["state"] == "live" and ack["session"]["session_id"] == session_id, ack
    assert "conversation_id" not in ack["session"]  # nothing of the call's conversation
    live = await a_in.wait("cobrowse_state", lambda d: d["state"] == "live")
    assert live["conversation_id"] == cid
    # single use: the code opens nothing a second time (another browser, or the same)
    ack = await stranger.call("cobrowse_join", {"code": code}, namespace="/customer")
    assert ack["ok"] is False and ack["error"]["code"] == "not_found"
    ack = await alice.call("cobrowse_start", {"conversation_id": cid}, namespace="/agent")
    assert "code" not in ack  # live: no code any more

    # the relay: the caller's page goes to alice; the pointer and the checkout come to the caller only
    events = [{"type": 4, "data": {"href": "https://shop.example/", "width": 800, "height": 600}, "timestamp": 1}]
    assert (await caller.call("cobrowse_events", _piece(session_id, 0, events), namespace="/customer")) == {"ok": True}
    got = await a_in.wait("cobrowse_events")
    assert got["conversation_id"] == cid and json.loads(got["data"]) == events
    assert (await stranger.call("cobrowse_events", _piece(session_id, 1, events), namespace="/customer"))["error"]["code"] == "not_found"
    await alice.emit("cobrowse_pointer", {"conversation_id": cid, "x": 5, "y": 6}, namespace="/agent")
    assert (await c_in.wait("cobrowse_pointer"))["session_id"] == session_id
    assert (await alice.call("cobrowse_checkout", {"conversation_id": cid}, namespace="/agent"))["ok"]
    await c_in.wait("cobrowse_checkout")

    # the call's conversation never reaches the browser: it is not in the conversation's room
    await _APPS[-1][COBROWSE_KEY].sio.emit("message", {"conversation_id": cid, "text": "the call's"}, to=room_conv(cid), namespace="/customer")
    await alice.call("reply", {"conversation_id": cid, "client_msg_id": "n1", "text": "on the call"}, namespace="/agent")
    await asyncio.sleep(0.3)
    assert not c_in.all("message") and not s_in.all("message") and not s_in.all("cobrowse_pointer")

    # a navigation: the next page of the same browser (same visitor id) resumes without a code
    await caller.disconnect()
    caller, c_in = await _browser(hub, "visitor_caller_0001")
    status = await caller.call("cobrowse_status", {}, namespace="/customer")
    assert status["session"]["state"] == "live" and status["session"]["session_id"] == session_id
    assert "conversation_id" not in status["session"]
    assert (await stranger.call("cobrowse_status", {}, namespace="/customer"))["session"] is None

    # the caller ends it with the banner's End
    assert (await caller.call("cobrowse_end", {"session_id": session_id}, namespace="/customer"))["ok"]
    ended = await a_in.wait("cobrowse_ended")
    assert ended["end_reason"] == "customer_ended"
    assert "conversation_id" not in (await c_in.wait("cobrowse_ended"))
    assert (await caller.call("cobrowse_status", {}, namespace="/customer"))["session"] is None

    async with db.session() as s:
        page = await interactions_repo.timeline(s, caller_id, kinds=["cobrowse"])
    rows = {r.payload["event"]: r for r in page.items}
    assert set(rows) == {"requested", "consent_given", "ended"}
    assert rows["consent_given"].payload["via"] == "code" and rows["requested"].conversation_id == cid
    assert all(code not in json.dumps(r.payload) for r in page.items)  # the code is not kept
    for s_ in (alice, bob, caller, stranger):
        await s_.disconnect()


async def test_wrong_codes_are_limited_and_an_unused_code_expires(hub: str, db: Database) -> None:  # noqa: F811
    relay = _APPS[-1][COBROWSE_KEY]
    alice, a_in = await _agent(hub, "alice")
    cid, _ = await _call_of(db, "alice", "+12125550148")
    code = (await alice.call("cobrowse_start", {"conversation_id": cid}, namespace="/agent"))["code"]
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"

    guesser, _ = await _browser(hub, "visitor_guesser_01")
    for _ in range(5):
        ack = await guesser.call("cobrowse_join", {"code": wrong}, namespace="/customer")
        assert ack["ok"] is False and ack["error"]["code"] == "not_found", ack
    ack = await guesser.call("cobrowse_join", {"code": code}, namespace="/customer")  # even the right one, now
    assert ack["ok"] is False and ack["error"]["code"] == "rate_limited" and ack["error"]["retry_after"] > 60, ack
    # a new socket from the same address is refused too (the address is counted, not only the socket)
    guesser2, _ = await _browser(hub, "visitor_guesser_02")
    ack = await guesser2.call("cobrowse_join", {"code": code}, namespace="/customer")
    assert ack["ok"] is False and ack["error"]["code"] == "rate_limited"
    assert (await relay.session_of(cid)).state.value == "pending"  # the guesses opened nothing

    # the lock lifts; the code expires unused: the session ends (code_expired) and the code opens nothing
    for key in [k for k in relay.store._data if k.startswith("lock:")]:  # the memory store's locks
        del relay.store._data[key]
    assert (await alice.call("cobrowse_end", {"conversation_id": cid}, namespace="/agent"))["ok"]
    relay.code_seconds = 0.3
    code2 = (await alice.call("cobrowse_start", {"conversation_id": cid}, namespace="/agent"))["code"]
    ended = await a_in.wait("cobrowse_ended", lambda d: d["end_reason"] == "code_expired", timeout=5)
    assert ended["conversation_id"] == cid
    ack = await guesser2.call("cobrowse_join", {"code": code2}, namespace="/customer")
    assert ack["ok"] is False and ack["error"]["code"] == "not_found"
    assert await relay.store.take_code(relay.code_key(code)) is None and await relay.store.take_code(relay.code_key(code2)) is None
    for s_ in (alice, guesser, guesser2):
        await s_.disconnect()


async def test_a_web_chat_conversation_has_no_code_and_email_cannot_co_browse(hub: str, db: Database) -> None:  # noqa: F811
    alice, _ = await _agent(hub, "alice")
    async with db.transaction() as s:
        agent = await agents_repo.get_agent_by_username(s, "alice")
        assert agent is not None
        res = await customers_repo.resolve_identity(s, "email", "eve@example.com")
        conv = await conversations_repo.open_conversation(s, int(res.customer.id), "email", thread_key="t-1")
        conv.status, conv.assigned_agent_id = "assigned", agent.id
        await s.flush()
        email_id = int(conv.id)
    ack = await alice.call("cobrowse_start", {"conversation_id": email_id}, namespace="/agent")
    assert ack["ok"] is False and ack["error"]["code"] == "bad_request"
    await alice.disconnect()


async def test_guided_control_needs_its_own_consent_and_the_hub_refuses_without_it(hub: str, db: Database) -> None:  # noqa: F811
    alice, a_in = await _agent(hub, "alice")
    bob, _ = await _agent(hub, "bob")
    cid, caller_id = await _call_of(db, "alice", "+12125550149")
    inbox = Inbox()
    caller = sio_client(inbox, "/customer", CUSTOMER_EVENTS + ("cobrowse_control_request", "cobrowse_control_action", "cobrowse_control_state"))
    await caller.connect(hub, namespaces=["/customer"], auth={"visitor_id": "visitor_control_01"}, transports=["websocket"])
    await inbox.wait("session")
    click = {"conversation_id": cid, "action": "click", "target": 12, "id": 1}

    # before the session is live: nothing to control
    code = (await alice.call("cobrowse_start", {"conversation_id": cid}, namespace="/agent"))["code"]
    assert (await alice.call("cobrowse_control_request", {"conversation_id": cid}, namespace="/agent"))["error"]["code"] == "conflict"
    session_id = (await caller.call("cobrowse_join", {"code": code}, namespace="/customer"))["session"]["session_id"]
    await a_in.wait("cobrowse_state", lambda d: d["state"] == "live")

    # live, but control not granted: the hub refuses every action (and the customer gets none)
    ack = await alice.call("cobrowse_control_action", click, namespace="/agent")
    assert ack["ok"] is False and ack["error"]["code"] == "forbidden", ack
    assert (await bob.call("cobrowse_control_request", {"conversation_id": cid}, namespace="/agent"))["error"]["code"] == "forbidden"
    # the customer cannot grant what was not asked
    assert (await caller.call("cobrowse_control", {"session_id": session_id, "grant": True}, namespace="/customer"))["error"]["code"] == "conflict"

    ack = await alice.call("cobrowse_control_request", {"conversation_id": cid}, namespace="/agent")
    assert ack["ok"] and ack["session"]["control"] == "requested"
    asked = await inbox.wait("cobrowse_control_request")
    assert asked["session_id"] == session_id and "conversation_id" not in asked
    assert (await alice.call("cobrowse_control_action", click, namespace="/agent"))["error"]["code"] == "forbidden"  # asked is not granted
    # a refusal: still no control
    assert (await caller.call("cobrowse_control", {"session_id": session_id, "grant": False}, namespace="/customer"))["ok"]
    assert (await alice.call("cobrowse_control_action", click, namespace="/agent"))["error"]["code"] == "forbidden"

    # asked again and granted: actions are checked and relayed
    await alice.call("cobrowse_control_request", {"conversation_id": cid}, namespace="/agent")
    ack = await caller.call("cobrowse_control", {"session_id": session_id, "grant": True}, namespace="/customer")
    assert ack["ok"] and ack["session"]["control"] == "granted"
    await a_in.wait("cobrowse_state", lambda d: d.get("control") == "granted")
    for bad in ({"action": "type", "target": 1}, {"action": "click"}, {"action": "fill", "target": 3, "value": "x" * 501},
                {"action": "scroll", "x": -5, "y": 0}, {"action": "click", "target": True}):
        ack = await alice.call("cobrowse_control_action", {"conversation_id": cid, **bad}, namespace="/agent")
        assert ack["ok"] is False and ack["error"]["code"] == "bad_request", (bad, ack)
    assert (await alice.call("cobrowse_control_action", click, namespace="/agent")) == {"ok": True}
    got = await inbox.wait("cobrowse_control_action")
    assert got == {"session_id": session_id, "action": "click", "target": 12, "id": 1}
    fill = {"conversation_id": cid, "action": "fill", "target": 14, "value": "Main Street 1"}
    assert (await alice.call("cobrowse_control_action", fill, namespace="/agent"))["ok"]
    assert (await inbox.wait("cobrowse_control_action", lambda d: d["action"] == "fill"))["value"] == "Main Street 1"
    assert (await bob.call("cobrowse_control_action", {**click, "conversation_id": cid}, namespace="/agent"))["error"]["code"] == "forbidden"
    # the page's answer goes back to the agent (the reason only from a fixed list)
    assert (await caller.call("cobrowse_control_result", {"session_id": session_id, "id": 1, "ok": False, "reason": "blocked"}, namespace="/customer"))["ok"]

    # the customer takes it back: actions are refused again
    assert (await caller.call("cobrowse_control_revoke", {"session_id": session_id}, namespace="/customer"))["ok"]
    assert (await inbox.wait("cobrowse_control_state", lambda d: d["control"] == "off"))["session_id"] == session_id
    assert (await alice.call("cobrowse_control_action", click, namespace="/agent"))["error"]["code"] == "forbidden"

    async with db.session() as s:
        page = await interactions_repo.timeline(s, caller_id, kinds=["cobrowse"])
    events = sorted(r.payload["event"] for r in page.items)
    assert events == ["consent_given", "control_granted", "control_refused", "control_revoked", "requested"], events
    assert all("Main Street" not in json.dumps(r.payload) for r in page.items)
    for s_ in (alice, bob, caller):
        await s_.disconnect()
