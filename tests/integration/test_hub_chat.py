"""A whole web chat through the hub over real Socket.IO: customer widget protocol, routing, agent console."""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator

import aiohttp
import pytest
import socketio
from aiohttp.test_utils import TestServer

from contact_center.app import create_app
from contact_center.keys import HUB_KEY, SESSIONS_KEY, SIO_KEY
from contact_center.realtime import close_ended_sessions
from contact_center.settings import Settings
from crm_store.db import Database
from crm_store.repositories import agents as agents_repo
from tests.sio_helpers import Inbox, sio_client as _client

PASSWORD = "agent-password"
_APPS: list[Any] = []  # the running app of the `hub` fixture, for tests that look inside it


@pytest.fixture
async def hub(db: Database) -> AsyncIterator[str]:
    """A running hub (embedded state) on a real port over the test database, with two agents."""
    async with db.transaction() as s:
        await agents_repo.create_agent(s, "alice", PASSWORD, display_name="Alice", capacity={"chat": 3})
        await agents_repo.create_agent(s, "bob", PASSWORD, display_name="Bob", capacity={"chat": 1})
        await agents_repo.create_queue(s, "sales", channels=["chat"])
    settings = Settings(database_url=db.url, service_tokens=("t",), demo_data=False, auto_migrate=False, session_secret="s" * 32, offer_timeout_seconds=1.5)
    app = create_app(settings)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    _APPS.append(app)
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        _APPS.remove(app)
        await server.close()


async def _login(base: str, username: str) -> str:
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"{base}/auth/login", json={"username": username, "password": PASSWORD})
        assert resp.status == 200, await resp.text()
        return f"cc_session={resp.cookies['cc_session'].value}"


async def _agent(base: str, username: str) -> tuple[socketio.AsyncClient, Inbox]:
    return await _agent_with_cookie(base, await _login(base, username))


async def _agent_with_cookie(base: str, cookie: str) -> tuple[socketio.AsyncClient, Inbox]:
    inbox = Inbox()
    sio = _client(inbox, "/agent", ("hello", "offer", "offer_revoked", "message", "typing", "conversation_closed", "status", "logged_out"))
    await sio.connect(base, namespaces=["/agent"], headers={"Cookie": cookie}, transports=["websocket"])
    await inbox.wait("hello")
    return sio, inbox


async def _customer(base: str, visitor: str, last_seq: int = 0) -> tuple[socketio.AsyncClient, Inbox]:
    inbox = Inbox()
    sio = _client(inbox, "/customer", ("session", "message", "queue", "agent_joined", "typing", "closed"))
    await sio.connect(base, namespaces=["/customer"], auth={"visitor_id": visitor, "name": "Cara", "last_seq": last_seq}, transports=["websocket"])
    await inbox.wait("session")
    return sio, inbox


async def test_a_whole_chat_from_widget_to_console_and_back(hub: str) -> None:
    agent, a_in = await _agent(hub, "alice")
    ack = await agent.call("set_status", {"status": "available"}, namespace="/agent")
    assert ack == {"ok": True, "status": "available"}

    cust, c_in = await _customer(hub, "visitor_e2e_0001")
    ack = await cust.call("message", {"client_msg_id": "m1", "text": "Hello, where is my order?"}, namespace="/customer")
    assert ack["ok"] and ack["message"]["seq"] == 1
    again = await cust.call("message", {"client_msg_id": "m1", "text": "Hello, where is my order?"}, namespace="/customer")
    assert again["message"]["seq"] == 1  # a resend is not a second message

    offer = await a_in.wait("offer")
    cid = offer["conversation_id"]
    assert offer["preview"] == "Hello, where is my order?" and offer["customer"]["display_name"] == "Cara"
    accepted = await agent.call("accept", {"conversation_id": cid}, namespace="/agent")
    assert accepted["ok"] and [m["text"] for m in accepted["conversation"]["messages"]] == ["Hello, where is my order?"]
    assert (await c_in.wait("agent_joined"))["agent_name"] == "Alice"

    reply = await agent.call("reply", {"conversation_id": cid, "client_msg_id": "r1", "text": "Hi! Let me check."}, namespace="/agent")
    assert reply["ok"]
    got = await c_in.wait("message", lambda m: m["sender_kind"] == "agent")
    assert got["text"] == "Hi! Let me check." and got["sender_name"] == "Alice" and got["seq"] == 2

    note = await agent.call("note", {"conversation_id": cid, "client_msg_id": "n1", "text": "VIP, be nice"}, namespace="/agent")
    assert note["ok"] and note["message"]["internal"] is True
    html = "<img src=x onerror=alert(1)>"
    await cust.call("message", {"client_msg_id": "m2", "text": html}, namespace="/customer")
    assert (await a_in.wait("message", lambda m: m["seq"] == 4))["text"] == html  # stored and relayed as text
    await cust.disconnect()

    # the customer comes back having seen seq 1: they get 2 and 4, never the internal note (3)
    cust2, c2_in = await _customer(hub, "visitor_e2e_0001", last_seq=1)
    session = c2_in.all("session")[0]
    assert [m["seq"] for m in session["messages"]] == [2, 4]
    resumed = await cust2.call("resume", {"last_seq": 0}, namespace="/customer")
    assert [m["seq"] for m in resumed["messages"]] == [1, 2, 4]

    closed = await agent.call("close", {"conversation_id": cid, "disposition": "resolved", "note": "told them"}, namespace="/agent")
    assert closed == {"ok": True}
    assert (await c2_in.wait("closed"))["disposition"] == "resolved"
    await cust2.disconnect()
    await agent.disconnect()


async def test_offer_times_out_to_the_next_agent_and_declines_keep_the_place(hub: str) -> None:
    alice, a_in = await _agent(hub, "alice")
    bob, b_in = await _agent(hub, "bob")
    await alice.call("set_status", {"status": "available"}, namespace="/agent")
    await bob.call("set_status", {"status": "available"}, namespace="/agent")
    cust, c_in = await _customer(hub, "visitor_timeout01")
    await cust.call("message", {"client_msg_id": "x", "text": "anyone there?"}, namespace="/customer")

    first = await asyncio.wait_for(asyncio.wait({asyncio.ensure_future(a_in.wait("offer")), asyncio.ensure_future(b_in.wait("offer"))}, return_when=asyncio.FIRST_COMPLETED), 10)
    assert first[0]
    first_inbox, second_inbox = (a_in, b_in) if a_in.all("offer") else (b_in, a_in)
    cid = first_inbox.all("offer")[0]["conversation_id"]
    # the first agent lets it time out: it is revoked and offered to the other agent
    await first_inbox.wait("offer_revoked", lambda d: d["conversation_id"] == cid, timeout=10)
    offer2 = await second_inbox.wait("offer", lambda d: d["conversation_id"] == cid, timeout=10)
    second = bob if second_inbox is b_in else alice
    first_sock = alice if second is bob else bob
    late = await first_sock.call("accept", {"conversation_id": cid}, namespace="/agent")
    assert late["ok"] is False and late["error"]["code"] == "conflict"
    ok = await second.call("accept", {"conversation_id": offer2["conversation_id"]}, namespace="/agent")
    assert ok["ok"]
    for s in (alice, bob, cust):
        await s.disconnect()


async def test_queue_position_is_told_while_waiting(hub: str) -> None:
    c1, in1 = await _customer(hub, "visitor_queue_001")
    c2, in2 = await _customer(hub, "visitor_queue_002")
    await c1.call("message", {"client_msg_id": "a", "text": "first"}, namespace="/customer")
    await asyncio.sleep(0.05)
    await c2.call("message", {"client_msg_id": "b", "text": "second"}, namespace="/customer")
    assert (await in1.wait("queue"))["position"] == 1
    assert (await in2.wait("queue"))["position"] == 2
    agent, a_in = await _agent(hub, "bob")  # capacity one chat: takes the first, the second moves up
    await agent.call("set_status", {"status": "available"}, namespace="/agent")
    offer = await a_in.wait("offer")
    await agent.call("accept", {"conversation_id": offer["conversation_id"]}, namespace="/agent")
    assert (await in2.wait("queue", lambda d: d["position"] == 1))["position"] == 1
    for s in (c1, c2, agent):
        await s.disconnect()


async def test_bad_input_gets_clear_errors(hub: str) -> None:
    bad = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await bad.connect(hub, namespaces=["/customer"], auth={"visitor_id": "x"}, transports=["websocket"])
    noauth = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await noauth.connect(hub, namespaces=["/agent"], transports=["websocket"])
    cust, _ = await _customer(hub, "visitor_badinput1")
    for payload, code in (("text", "bad_request"), ({"client_msg_id": "a"}, "bad_request"), ({"client_msg_id": "a", "text": " "}, "bad_request"), ({"client_msg_id": "a", "text": "x" * 5000}, "bad_request")):
        ack = await cust.call("message", payload, namespace="/customer")
        assert ack["ok"] is False and ack["error"]["code"] == code
    agent, _ = await _agent(hub, "alice")
    ack = await agent.call("reply", {"conversation_id": 424242, "client_msg_id": "r", "text": "hi"}, namespace="/agent")
    assert ack["ok"] is False and ack["error"]["code"] == "not_found"
    ack = await agent.call("set_status", {"status": "sleeping"}, namespace="/agent")
    assert ack["ok"] is False
    async with aiohttp.ClientSession() as http:
        r = await http.post(f"{hub}/auth/login", json={"username": "alice", "password": "nope"})
        assert r.status == 401
    for s in (cust, agent):
        await s.disconnect()


async def test_transfer_to_a_named_agent_keeps_the_transcript(hub: str) -> None:
    alice, a_in = await _agent(hub, "alice")
    bob, b_in = await _agent(hub, "bob")
    await alice.call("set_status", {"status": "available"}, namespace="/agent")
    cust, c_in = await _customer(hub, "visitor_transfer1")
    await cust.call("message", {"client_msg_id": "t1", "text": "I want to return shoes"}, namespace="/customer")
    offer = await a_in.wait("offer")
    cid = offer["conversation_id"]
    assert (await alice.call("accept", {"conversation_id": cid}, namespace="/agent"))["ok"]
    bad = await alice.call("transfer", {"conversation_id": cid, "queue": "nowhere"}, namespace="/agent")
    assert bad["ok"] is False and bad["error"]["code"] == "bad_request"
    bob_id = (b_in.all("hello")[0])["agent"]["id"]
    moved = await alice.call("transfer", {"conversation_id": cid, "agent_id": bob_id, "note": "returns"}, namespace="/agent")
    assert moved["ok"] and moved["agent_id"] == bob_id
    await a_in.wait("conversation_closed", lambda d: d["conversation_id"] == cid)
    assert (await c_in.wait("message", lambda m: m["sender_kind"] == "system"))["text"].startswith("You are being transferred")
    await bob.call("set_status", {"status": "available"}, namespace="/agent")  # pinned: only Bob gets it
    offer2 = await b_in.wait("offer", lambda d: d["conversation_id"] == cid)
    accepted = await bob.call("accept", {"conversation_id": offer2["conversation_id"]}, namespace="/agent")
    assert [m["text"] for m in accepted["conversation"]["messages"]][0] == "I want to return shoes"
    assert len([o for o in a_in.all("offer") if o["conversation_id"] == cid]) == 1  # never re-offered to Alice
    for s in (alice, bob, cust):
        await s.disconnect()


async def test_wrap_up_after_the_last_chat_then_available_again(db: Database) -> None:
    async with db.transaction() as s:
        await agents_repo.create_agent(s, "alice", PASSWORD, display_name="Alice", capacity={"chat": 3})
    settings = Settings(database_url=db.url, service_tokens=("t",), demo_data=False, auto_migrate=False,
                        session_secret="s" * 32, wrap_up_seconds=0.8)
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    try:
        agent, a_in = await _agent(base, "alice")
        await agent.call("set_status", {"status": "available"}, namespace="/agent")
        cust, _ = await _customer(base, "visitor_wrapup_01")
        await cust.call("message", {"client_msg_id": "w", "text": "hi"}, namespace="/customer")
        offer = await a_in.wait("offer")
        await agent.call("accept", {"conversation_id": offer["conversation_id"]}, namespace="/agent")
        await agent.call("close", {"conversation_id": offer["conversation_id"], "disposition": "resolved"}, namespace="/agent")
        assert (await a_in.wait("status"))["status"] == "wrap_up"
        # a new customer waits during wrap-up, then is offered once the agent is available again
        cust2, _ = await _customer(base, "visitor_wrapup_02")
        await cust2.call("message", {"client_msg_id": "w2", "text": "me next"}, namespace="/customer")
        await asyncio.sleep(0.3)
        assert len(a_in.all("offer")) == 1
        await a_in.wait("status", lambda d: d["status"] == "available", timeout=5)
        assert (await a_in.wait("offer", lambda d: d["conversation_id"] != offer["conversation_id"]))["preview"] == "me next"
        for s in (agent, cust, cust2):
            await s.disconnect()
    finally:
        await server.close()


async def test_lost_shared_state_is_rebuilt_from_sql(hub: str, db: Database) -> None:
    """Redis (or the in-process store) forgetting the queue loses no customer: SQL puts them back."""
    cust, c_in = await _customer(hub, "visitor_rebuild01")
    await cust.call("message", {"client_msg_id": "r", "text": "still there?"}, namespace="/customer")
    await c_in.wait("queue")
    from contact_center.keys import HUB_KEY

    app = next(iter(_APPS))
    hub_service = app[HUB_KEY]
    await hub_service.store.clear()
    assert await hub_service.store.waiting() == []
    assert await hub_service.rebuild_state() == 1
    waiting = await hub_service.store.waiting()
    assert len(waiting) == 1 and waiting[0].queue == "sales"
    agent, a_in = await _agent(hub, "alice")
    await agent.call("set_status", {"status": "available"}, namespace="/agent")
    assert (await a_in.wait("offer"))["preview"] == "still there?"
    for s in (cust, agent):
        await s.disconnect()


async def test_lost_presences_and_assignments_come_back_from_sql(hub: str) -> None:
    """A flush while Bob (one chat at most) is busy: his presence and his chat come back, so no second offer."""
    bob, b_in = await _agent(hub, "bob")
    await bob.call("set_status", {"status": "available"}, namespace="/agent")
    c1, _ = await _customer(hub, "visitor_restore01")
    await c1.call("message", {"client_msg_id": "x1", "text": "first"}, namespace="/customer")
    cid = (await b_in.wait("offer"))["conversation_id"]
    assert (await bob.call("accept", {"conversation_id": cid}, namespace="/agent"))["ok"]
    bob_id = b_in.all("hello")[0]["agent"]["id"]

    hub_service = next(iter(_APPS))[HUB_KEY]
    await hub_service.store.clear()
    assert await hub_service.store.get_presence(bob_id) is None
    await hub_service.rebuild_state()
    presence = await hub_service.store.get_presence(bob_id)
    assert presence is not None and presence.status == "available"  # the state SQL last recorded for him
    assert presence.load == {"chat": 1} and presence.capacity == {"chat": 1}
    assert await hub_service.store.assignment_of(cid) == bob_id
    await hub_service.rebuild_state()  # a second pass changes nothing
    assert (await hub_service.store.get_presence(bob_id)).load == {"chat": 1}

    c2, c2_in = await _customer(hub, "visitor_restore02")
    await c2.call("message", {"client_msg_id": "x2", "text": "second"}, namespace="/customer")
    await c2_in.wait("queue")
    await asyncio.sleep(1.0)
    assert [o["conversation_id"] for o in b_in.all("offer")] == [cid]  # full: the restored chat counts
    # his chat still works (SQL knew it all along), and closing it frees him for the next customer
    assert (await bob.call("reply", {"conversation_id": cid, "client_msg_id": "rb", "text": "still here"}, namespace="/agent"))["ok"]
    assert (await bob.call("close", {"conversation_id": cid, "disposition": "resolved"}, namespace="/agent"))["ok"]
    assert (await hub_service.store.get_presence(bob_id)).load == {}
    for s in (bob, c1, c2):
        await s.disconnect()


async def test_a_declined_transfer_to_a_named_agent_goes_back_to_the_queue(hub: str) -> None:
    alice, a_in = await _agent(hub, "alice")
    bob, b_in = await _agent(hub, "bob")
    await alice.call("set_status", {"status": "available"}, namespace="/agent")
    cust, _ = await _customer(hub, "visitor_transfer2")
    await cust.call("message", {"client_msg_id": "d1", "text": "help"}, namespace="/customer")
    cid = (await a_in.wait("offer"))["conversation_id"]
    await alice.call("accept", {"conversation_id": cid}, namespace="/agent")
    bob_id = b_in.all("hello")[0]["agent"]["id"]
    assert (await alice.call("transfer", {"conversation_id": cid, "agent_id": bob_id}, namespace="/agent"))["ok"]
    await bob.call("set_status", {"status": "available"}, namespace="/agent")
    await b_in.wait("offer", lambda d: d["conversation_id"] == cid)
    assert (await bob.call("decline", {"conversation_id": cid}, namespace="/agent"))["ok"]
    # Bob said no: the conversation is not stuck waiting for him, Alice (still available) is offered it
    again = await a_in.wait("offer", lambda d: d["conversation_id"] == cid and d is not a_in.all("offer")[0])
    assert again["conversation_id"] == cid
    for s in (alice, bob, cust):
        await s.disconnect()


async def test_other_tabs_get_the_echo_and_a_closed_chat_starts_a_new_one(hub: str) -> None:
    agent, a_in = await _agent(hub, "alice")
    await agent.call("set_status", {"status": "available"}, namespace="/agent")
    tab1, t1_in = await _customer(hub, "visitor_two_tabs_01")
    first = await tab1.call("message", {"client_msg_id": "t1", "text": "first"}, namespace="/customer")
    cid = first["message"]["conversation_id"]
    tab2, t2_in = await _customer(hub, "visitor_two_tabs_01")  # same visitor, a second tab, joins the open chat
    assert tab2 is not tab1 and t2_in.all("session")[0]["conversation_id"] == cid
    ack = await tab1.call("message", {"client_msg_id": "t2", "text": "from tab one"}, namespace="/customer")
    assert ack["ok"] and ack["message"]["seq"] == 2
    echoed = await t2_in.wait("message", lambda m: m["client_msg_id"] == "t2")
    assert echoed["text"] == "from tab one" and echoed["seq"] == 2
    await asyncio.sleep(0.2)
    assert [m for m in t1_in.all("message") if m["client_msg_id"] == "t2"] == []  # the sender has it in its ack

    offer = await a_in.wait("offer")
    await agent.call("accept", {"conversation_id": offer["conversation_id"]}, namespace="/agent")
    assert (await agent.call("close", {"conversation_id": cid, "disposition": "resolved"}, namespace="/agent")) == {"ok": True}
    await t1_in.wait("closed")
    # the hub's fast path still remembers the closed chat: the message must open a new conversation
    again = await tab1.call("message", {"client_msg_id": "t3", "text": "one more question"}, namespace="/customer")
    assert again["ok"] and again["message"]["conversation_id"] != cid and again["message"]["seq"] == 1
    for sio in (tab1, tab2, agent):
        await sio.disconnect()


async def test_a_waiting_customer_who_leaves_abandons_and_the_figures_say_so(db: Database) -> None:
    from datetime import timedelta

    from crm_store.models import Conversation, utcnow
    from crm_store.repositories import stats as stats_repo

    async with db.transaction() as s:
        await agents_repo.create_queue(s, "sales", channels=["chat"])
    settings = Settings(database_url=db.url, service_tokens=("t",), demo_data=False, auto_migrate=False,
                        session_secret="s" * 32, abandon_grace_seconds=0.3)
    app = create_app(settings)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    try:
        # one customer drops and comes back within the grace: nothing is abandoned
        cust, _ = await _customer(base, "visitor_comes_back_1")
        ack = await cust.call("message", {"client_msg_id": "a1", "text": "anyone?"}, namespace="/customer")
        kept = ack["message"]["conversation_id"]
        await cust.disconnect()
        cust, c_in = await _customer(base, "visitor_comes_back_1")
        assert c_in.all("session")[0]["conversation_id"] == kept
        # another leaves for good
        gone, _ = await _customer(base, "visitor_leaves_for_good")
        ack = await gone.call("message", {"client_msg_id": "g1", "text": "hello?"}, namespace="/customer")
        left = ack["message"]["conversation_id"]
        await gone.disconnect()
        await asyncio.sleep(1.0)
        async with db.session() as s:
            stayed, abandoned = await s.get(Conversation, kept), await s.get(Conversation, left)
        assert stayed is not None and stayed.status == "queued" and stayed.queued_at is not None
        assert abandoned is not None and abandoned.status == "closed" and abandoned.disposition == "abandoned"
        assert abandoned.abandoned_at is not None and abandoned.assigned_at is None
        waiting = await app[HUB_KEY].store.waiting()
        assert [e.conversation_id for e in waiting] == [kept]
        rows = await stats_repo.contact_records(db, utcnow() - timedelta(hours=1), utcnow() + timedelta(minutes=1))
        by_id = {r.conversation_id: r for r in rows}
        assert by_id[left].abandoned and not by_id[kept].abandoned
        await cust.disconnect()
    finally:
        await server.close()


async def test_supervisor_actions_whisper_monitor_reassign_and_set_state(hub: str, db: Database) -> None:
    from contact_center.hub.service import AgentRef, HubError, room_monitor
    from contact_center.keys import SIO_KEY
    from crm_store.models import Interaction

    app = _APPS[-1]
    service = app[HUB_KEY]
    async with db.transaction() as s:
        boss_row = await agents_repo.create_agent(s, "boss", PASSWORD, display_name="Boss", role="supervisor")
        pat_row = await agents_repo.create_agent(s, "pat", PASSWORD, display_name="Pat")
    boss = AgentRef(id=boss_row.id, username="boss", display_name="Boss", role="supervisor")
    plain = AgentRef(id=pat_row.id, username="pat", display_name="Pat", role="agent")

    class Watch(socketio.AsyncNamespace):  # stands in for the dashboard's namespace: joins the monitor room
        async def on_connect(self, sid: str, environ: Any, auth: Any = None) -> None:
            await self.enter_room(sid, room_monitor(int(auth["conversation_id"])))

    alice, a_in = await _agent(hub, "alice")
    await alice.call("set_status", {"status": "available"}, namespace="/agent")
    cust, c_in = await _customer(hub, "visitor_supervised_1")
    ack = await cust.call("message", {"client_msg_id": "s1", "text": "help me"}, namespace="/customer")
    cid = ack["message"]["conversation_id"]
    offer = await a_in.wait("offer")
    await alice.call("accept", {"conversation_id": offer["conversation_id"]}, namespace="/agent")

    with pytest.raises(HubError) as refused:
        await service.whisper(plain, cid, "psst")
    assert refused.value.code == "forbidden"
    watched = await service.monitor(boss, cid, "watcher-1")
    assert [m["text"] for m in watched["messages"]] == ["help me"]
    app[SIO_KEY].register_namespace(Watch("/supervisor"))
    w_in = Inbox()
    watcher = _client(w_in, "/supervisor", ("message",))
    await watcher.connect(hub, namespaces=["/supervisor"], auth={"conversation_id": cid}, transports=["websocket"])

    whisper = await service.whisper(boss, cid, "offer them free shipping")
    assert whisper["internal"] is True and whisper["sender_kind"] == "supervisor"
    got = await a_in.wait("message", lambda m: m["text"] == "offer them free shipping")
    assert got["sender_name"] == "Boss"
    await cust.call("message", {"client_msg_id": "s2", "text": "still there?"}, namespace="/customer")
    assert (await w_in.wait("message", lambda m: m["text"] == "still there?"))["seq"] == 3
    assert (await w_in.wait("message", lambda m: m["text"] == "offer them free shipping"))["internal"] is True
    await asyncio.sleep(0.2)
    assert all(m["text"] != "offer them free shipping" for m in c_in.all("message"))  # never to the customer

    bob, b_in = await _agent(hub, "bob")
    await bob.call("set_status", {"status": "available"}, namespace="/agent")
    bob_id = (b_in.all("hello")[0])["agent"]["id"]
    moved = await service.reassign(boss, cid, to_agent=bob_id)
    assert moved["agent_id"] == bob_id
    assert (await a_in.wait("conversation_closed"))["reason"] == "transferred"
    assert (await b_in.wait("offer"))["conversation_id"] == cid

    assert await service.supervisor_set_status(boss, bob_id, "away") == "away"
    assert (await b_in.wait("status", lambda d: d.get("status") == "away"))["by"] == "Boss"
    with pytest.raises(HubError):
        await service.supervisor_set_status(plain, bob_id, "available")
    async with db.session() as s:
        from sqlmodel import select

        notes = [i.summary for i in (await s.exec(select(Interaction).where(Interaction.conversation_id == cid))).all()]
    assert any("Whisper from Boss" in n for n in notes) and any("watched the chat" in n for n in notes)
    assert any("reassigned by supervisor Boss" in n for n in notes)
    for sio in (watcher, cust, alice, bob):
        await sio.disconnect()


async def test_a_visitor_is_only_written_down_at_their_first_message(hub: str, db: Database) -> None:
    from sqlalchemy import func
    from sqlmodel import select

    from crm_store.models import ContactPoint, Customer

    async def customers() -> int:
        async with db.session() as s:
            return int((await s.exec(select(func.count()).select_from(Customer))).one())

    before = await customers()
    inbox = Inbox()
    sio = _client(inbox, "/customer", ("session", "message"))
    await sio.connect(hub, namespaces=["/customer"], transports=["websocket"],
                      auth={"visitor_id": "visitor_lazy_0001", "name": "Lou", "email": "Lou@Example.com"})
    session = await inbox.wait("session")
    assert session["customer_id"] is None and session["conversation_id"] is None and session["messages"] == []
    await sio.emit("typing", {"typing": True}, namespace="/customer")  # nobody to tell yet: no error, no write
    assert (await sio.call("resume", {"last_seq": 0}, namespace="/customer")) == {"ok": True, "conversation_id": None, "messages": []}
    assert await customers() == before  # browsing the shop writes nothing
    ack = await sio.call("message", {"client_msg_id": "l1", "text": "hi"}, namespace="/customer")
    assert ack["ok"] and ack["message"]["seq"] == 1
    assert await customers() == before + 1
    async with db.session() as s:
        points = (await s.exec(select(ContactPoint).order_by(ContactPoint.kind))).all()
        mine = {p.kind: p.value for p in points if p.value in ("visitor_lazy_0001", "lou@example.com")}
        who = (await s.exec(select(Customer).where(Customer.display_name == "Lou"))).all()
    assert mine == {"email": "lou@example.com", "web": "visitor_lazy_0001"} and len(who) == 1
    await sio.disconnect()
    again = Inbox()  # the returning visitor: found with a read, their chat comes back
    sio2 = _client(again, "/customer", ("session",))
    await sio2.connect(hub, namespaces=["/customer"], transports=["websocket"], auth={"visitor_id": "visitor_lazy_0001"})
    back = await again.wait("session")
    assert back["customer_id"] == who[0].id and [m["text"] for m in back["messages"]] == ["hi"]
    await sio2.disconnect()


async def test_first_messages_of_one_visitor_on_two_nodes_open_one_conversation(hub: str, db: Database) -> None:
    """Two hub processes over one database (here: two apps), the same visitor's first messages at once on each:
    one conversation holds both (the database allows one open chat per customer), none is lost."""
    from sqlmodel import select

    from crm_store.models import Conversation, Message

    settings = Settings(database_url=db.url, service_tokens=("t",), demo_data=False, auto_migrate=False, session_secret="s" * 32)
    other = TestServer(create_app(settings), host="127.0.0.1")
    await other.start_server()
    try:
        second = str(other.make_url("")).rstrip("/")
        for round_ in range(3):  # a race: tried a few times, each with a new visitor
            visitor = f"visitor_twonode_{round_:04d}"
            (a, _), (b, _) = await asyncio.gather(_customer(hub, visitor), _customer(second, visitor))
            acks = await asyncio.gather(
                a.call("message", {"client_msg_id": "x1", "text": "first on node one"}, namespace="/customer"),
                b.call("message", {"client_msg_id": "y1", "text": "first on node two"}, namespace="/customer"),
            )
            assert all(ack["ok"] for ack in acks), acks
            assert acks[0]["message"]["conversation_id"] == acks[1]["message"]["conversation_id"], acks
            assert sorted(ack["message"]["seq"] for ack in acks) == [1, 2]
            async with db.session() as s:
                conv_id = acks[0]["message"]["conversation_id"]
                conv = await s.get(Conversation, conv_id)
                assert conv is not None
                convs = (await s.exec(select(Conversation).where(Conversation.customer_id == conv.customer_id))).all()
                texts = (await s.exec(select(Message.body).where(Message.conversation_id == conv_id))).all()
            assert len(convs) == 1 and sorted(texts) == ["first on node one", "first on node two"]
            await a.disconnect()
            await b.disconnect()
    finally:
        await other.close()


async def test_logout_ends_the_session_on_every_node_and_a_copied_cookie_is_refused(hub: str, db: Database) -> None:
    settings = Settings(database_url=db.url, service_tokens=("t",), demo_data=False, auto_migrate=False, session_secret="s" * 32)
    other = TestServer(create_app(settings), host="127.0.0.1")
    await other.start_server()
    try:
        second = str(other.make_url("")).rstrip("/")
        cookie = await _login(hub, "alice")  # one login, and a copy of its cookie
        other_login = await _login(hub, "alice")  # another browser of the same agent
        here, here_inbox = await _agent_with_cookie(second, cookie)  # consoles opened before the logout,
        there, there_inbox = await _agent_with_cookie(hub, cookie)  # on the node that takes it and on the other
        kept, _ = await _agent_with_cookie(hub, other_login)
        async with aiohttp.ClientSession() as http:
            for base in (hub, second):
                assert (await http.get(f"{base}/auth/me", headers={"Cookie": cookie})).status == 200
                assert (await http.get(f"{base}/api/products", headers={"Cookie": cookie})).status == 200
            assert (await http.post(f"{second}/auth/logout", headers={"Cookie": cookie})).status == 200
            for _ in range(250):  # the logout's node closes its sockets of the session at once
                if not here.connected:
                    break
                await asyncio.sleep(0.02)
            assert not here.connected and here_inbox.all("logged_out")
            assert there.connected  # the other node learns of it at its next sweep (SESSION_SWEEP_SECONDS)...
            hub_app = _APPS[-1]
            assert await close_ended_sessions(hub_app[SIO_KEY], hub_app[SESSIONS_KEY], time.time()) == 1  # ...this one
            for _ in range(250):
                if not there.connected:
                    break
                await asyncio.sleep(0.02)
            assert not there.connected and there_inbox.all("logged_out")
            assert kept.connected  # the agent's other login is not touched
            for base in (hub, second):
                me = await http.get(f"{base}/auth/me", headers={"Cookie": cookie})
                assert me.status == 401, base
                assert (await http.get(f"{base}/api/products", headers={"Cookie": cookie})).status == 401
                assert (await http.get(f"{base}/auth/me", headers={"Cookie": other_login})).status == 200
        still, _ = await _agent_with_cookie(hub, other_login)  # the other login still opens the console socket
        await still.disconnect()
        await kept.disconnect()
        refused = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError, match="failed to connect: /agent"):
            await refused.connect(hub, namespaces=["/agent"], headers={"Cookie": cookie}, transports=["websocket"])
    finally:
        await other.close()


async def test_a_closed_widget_socket_is_freed_without_a_garbage_collection(hub: str) -> None:
    """engineio's own websocket driver left every closed connection in a reference cycle (~17 KB each,
    freed only by a full collection: the hub grew by ~175 MB per 10,000 reconnects). With the hub's
    driver a closed connection is freed by reference counting: nothing of it is cyclic garbage."""
    import gc

    from engineio.async_drivers.aiohttp import WebSocket

    from contact_center.keys import SIO_KEY

    eio = _APPS[-1][SIO_KEY].eio
    gc.collect()
    gc.disable()  # so that no automatic collection can free the cycles before the check
    try:
        for i in range(3):
            sio, _ = await _customer(hub, f"visitor_gc_{i:04d}")
            await sio.disconnect()
        for _ in range(500):  # the server side closes asynchronously
            if not eio.sockets:
                break
            await asyncio.sleep(0.01)
        assert not eio.sockets
        await asyncio.sleep(0.05)
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        garbage, gc.garbage[:] = list(gc.garbage), []
    finally:
        gc.set_debug(0)
        gc.enable()
    leaked = [o for o in garbage if isinstance(o, (WebSocket, aiohttp.web.WebSocketResponse))]
    del garbage
    assert leaked == []


async def test_the_widget_still_upgrades_from_polling_to_a_websocket(hub: str) -> None:
    """Browsers start with long-polling and upgrade; the hub's websocket driver keeps that working."""
    inbox = Inbox()
    sio = _client(inbox, "/customer", ("session", "message"))
    await sio.connect(hub, namespaces=["/customer"], auth={"visitor_id": "visitor_upgrade_01"})  # polling first
    await inbox.wait("session")
    for _ in range(500):
        if sio.transport() == "websocket":
            break
        await asyncio.sleep(0.01)
    assert sio.transport() == "websocket"
    ack = await sio.call("message", {"client_msg_id": "u1", "text": "hello after the upgrade"}, namespace="/customer")
    assert ack["ok"] and ack["message"]["text"] == "hello after the upgrade"
    await sio.disconnect()
