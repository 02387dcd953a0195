"""Possible matches (issue 20): a customer who gives an address that is on file for another customer record.

The repository's rule (``customers_repo.possible_matches`` and ``note_given_elsewhere``) and the console's route
(``GET /console/customers/{id}/possible-matches``: scoped like the search; ``can_merge`` for supervisors only, since
the audited merge is back-office only), on SQLite and PostgreSQL (the ``db`` fixture). The widget's email, a phone
told to an agent and an order's email all leave the note; a merge makes the match go away.
"""

from __future__ import annotations

from typing import Any, AsyncIterator

import aiohttp
import pytest
import socketio
from aiohttp.test_utils import TestServer

from contact_center.app import create_app
from contact_center.settings import Settings
from crm_store import services
from crm_store.db import Database
from crm_store.models import Order
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import customers as customers_repo
from tests.sio_helpers import Inbox, sio_client

PASSWORD = "agent-password"


async def _orders(db: Database, customer_id: int, n: int) -> None:
    async with db.transaction() as s:
        for _ in range(n):
            s.add(Order(customer_id=customer_id, total_minor=1000, delivery_address="1 Main St"))


async def test_possible_matches_in_the_repository(db: Database) -> None:
    async with db.transaction() as s:
        camila = (await customers_repo.resolve_identity(s, "email", "camila@example.com", display_name="Camila Pérez")).customer
        other = (await customers_repo.resolve_identity(s, "whatsapp", "whatsapp:+14155550123", display_name="Wanda")).customer
        visitor = (await customers_repo.resolve_identity(s, "web", "visitor_pm_0001", display_name="Camila")).customer
        assert await customers_repo.possible_matches(s, visitor.id) == []  # a shared name is never a match
    await _orders(db, camila.id, 2)

    async with db.transaction() as s:
        # the visitor gives Camila's email (the widget), then tells the bot Wanda's number (with an order, say)
        note = await customers_repo.note_given_elsewhere(s, visitor.id, "email", "camila@example.com", camila.id,
                                                        channel="chat", source="in the chat")
        assert note is not None and "possible match" in note.summary and "#%d" % camila.id in note.summary
        assert await customers_repo.note_given_elsewhere(s, visitor.id, "email", "camila@example.com", camila.id,
                                                         channel="chat") is None  # once
        given = await services.link_given_contacts(s, visitor.id, phone="+1 415 555 0123", source="to the bot", channel="chat")
        assert given[0].taken_by == other.id

    async with db.session() as s:
        found = await customers_repo.possible_matches(s, visitor.id)
        assert [(m.id, m.display_name, m.orders) for m in found] == [(camila.id, "Camila Pérez", 2), (other.id, "Wanda", 0)]
        assert found[0].via == (("email", "camila@example.com"),) and found[1].via == (("phone", "+14155550123"),)
        # seen from Camila's side, nothing: she gave nothing of the visitor's
        assert await customers_repo.possible_matches(s, camila.id) == []

    async with db.transaction() as s:  # Camila's record joins the visitor's (the audited merge): no longer a match
        await customers_repo.merge_customers(s, camila.id, visitor.id, actor="test")
    async with db.session() as s:
        assert [m.id for m in await customers_repo.possible_matches(s, visitor.id)] == [other.id]
        assert [m.id for m in await customers_repo.possible_matches(s, camila.id)] == [other.id]  # a merged id: the survivor's

    async with db.transaction() as s:  # a number on two channels of two records is a match both ways
        sms = (await customers_repo.resolve_identity(s, "sms", "+14155550999")).customer
        wa = (await customers_repo.resolve_identity(s, "web", "visitor_pm_0002")).customer
        s.add(customers_repo.ContactPoint(customer_id=wa.id, kind="whatsapp", value="+14155550999", verified=True))
    async with db.session() as s:
        assert [m.id for m in await customers_repo.possible_matches(s, sms.id)] == [wa.id]
        assert [m.id for m in await customers_repo.possible_matches(s, wa.id)] == [sms.id]
        with pytest.raises(customers_repo.CustomerNotFound):
            await customers_repo.possible_matches(s, 999999)


class World:
    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies: dict[str, str] = {}
        self.sockets: list[socketio.AsyncClient] = []


@pytest.fixture
async def world(db: Database) -> AsyncIterator[World]:
    async with db.transaction() as s:
        await agents_repo.create_agent(s, "alice", PASSWORD, display_name="Alice", capacity={"chat": 2})
        await agents_repo.create_agent(s, "bob", PASSWORD, display_name="Bob", capacity={"chat": 2})
        await agents_repo.create_agent(s, "sam", PASSWORD, display_name="Sam", role="supervisor", capacity={"chat": 1})
        await agents_repo.create_queue(s, "support", channels=["chat"])
    settings = Settings(database_url=db.url, service_tokens=("t",), demo_data=False, auto_migrate=False, session_secret="s" * 32,
                        bot_channels=())
    app = create_app(settings)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    w = World(str(server.make_url("")).rstrip("/"))
    try:
        for name in ("alice", "bob", "sam"):
            async with aiohttp.ClientSession() as http:
                resp = await http.post(f"{w.base}/auth/login", json={"username": name, "password": PASSWORD})
                assert resp.status == 200, await resp.text()
                w.cookies[name] = f"cc_session={resp.cookies['cc_session'].value}"
        yield w
    finally:
        for sio in w.sockets:
            if sio.connected:
                await sio.disconnect()
        await server.close()


async def _http(w: World, method: str, path: str, who: str | None = None, json: Any = None) -> tuple[int, Any]:
    headers = {"Cookie": w.cookies[who]} if who else {}
    async with aiohttp.ClientSession() as http:
        async with http.request(method, f"{w.base}{path}", json=json, headers=headers, timeout=aiohttp.ClientTimeout(total=20)) as r:
            return r.status, await r.json(content_type=None)


async def test_the_console_route_on_both_databases(world: World, db: Database) -> None:
    async with db.transaction() as s:
        camila = (await customers_repo.resolve_identity(s, "email", "camila@example.com", display_name="Camila Pérez")).customer
    await _orders(db, camila.id, 2)

    # Alice takes the chat of a visitor who typed Camila's name and email in the widget
    a_in = Inbox()
    alice = sio_client(a_in, "/agent", ("hello", "offer"))
    await alice.connect(world.base, namespaces=["/agent"], headers={"Cookie": world.cookies["alice"]}, transports=["websocket"])
    world.sockets.append(alice)
    await a_in.wait("hello")
    assert (await alice.call("set_status", {"status": "available"}, namespace="/agent", timeout=10))["ok"]
    c_in = Inbox()
    cust = sio_client(c_in, "/customer", ("session", "message"))
    await cust.connect(world.base, namespaces=["/customer"], transports=["websocket"],
                       auth={"visitor_id": "visitor_pm_route_01", "name": "Camila Pérez", "email": "Camila@Example.com"})
    world.sockets.append(cust)
    await c_in.wait("session")
    ack = await cust.call("message", {"client_msg_id": "m1", "text": "where is my order?"}, namespace="/customer", timeout=10)
    assert ack["ok"], ack
    cid = ack["message"]["conversation_id"]
    await a_in.wait("offer", lambda o: o["conversation_id"] == cid, timeout=15)
    accepted = await alice.call("accept", {"conversation_id": cid}, namespace="/agent", timeout=10)
    assert accepted["ok"], accepted
    visitor = accepted["conversation"]["customer_id"]
    assert visitor != camila.id

    path = f"/console/customers/{visitor}/possible-matches"
    assert (await _http(world, "GET", path))[0] == 401
    status, body = await _http(world, "GET", path, "alice")
    assert status == 200, body
    assert body["can_merge"] is False and body["customer_id"] == visitor
    assert body["matches"] == [{"id": camila.id, "display_name": "Camila Pérez", "orders": 2,
                                "via": [{"kind": "email", "value": "camila@example.com"}]}]
    # the timeline says what happened to the typed email
    status, view = await _http(world, "GET", f"/api/customers/{visitor}", "alice")
    assert any("camila@example.com given in the chat" in i["summary"] for i in view["timeline"]["items"])

    # not Bob's customer (403 whether or not it exists); a supervisor sees it and may merge
    assert (await _http(world, "GET", path, "bob"))[0] == 403
    assert (await _http(world, "GET", "/console/customers/999999/possible-matches", "bob"))[0] == 403
    assert (await _http(world, "GET", "/console/customers/999999/possible-matches", "sam"))[0] == 404
    status, body = await _http(world, "GET", path, "sam")
    assert status == 200 and body["can_merge"] is True and [m["id"] for m in body["matches"]] == [camila.id]

    # the merge is the existing audited route: an agent may not, a supervisor may
    merge = f"/api/customers/{camila.id}/merge"
    assert (await _http(world, "POST", merge, "alice", {"into": visitor}))[0] == 403
    status, done = await _http(world, "POST", merge, "sam", {"into": visitor, "reason": "confirmed with the customer in chat"})
    assert status == 200, done
    assert done["merge"]["moved"]["orders"] == 2 and done["merge"]["actor"]
    status, body = await _http(world, "GET", path, "alice")
    assert status == 200 and body["matches"] == []
    status, view = await _http(world, "GET", f"/api/customers/{visitor}", "alice")
    assert len(view["orders"]) == 2 and any(p["value"] == "camila@example.com" for p in view["contact_points"])
