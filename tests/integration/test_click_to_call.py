"""Click-to-call end to end (docs/subsystems/phone.md, "Click-to-call"): a whole hub application (``create_app``) and
the local Twilio stand-in as its own server.

* an agent's ``POST /api/customers/{id}/calls``: the call is theirs at once (no offer, nobody else), their leg rings,
  the customer is dialled and both are bridged in one conference; the timeline says "Alice called the customer";
* the refusals in words: not logged in, offline, away, already on a call, a number that is not the customer's, a
  customer with no number, a customer outside the agent's scope;
* the pin lives in SQL: a click-to-call's contact waiting in the queue is never offered to another agent, also after
  the shared state is lost and rebuilt from SQL.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, AsyncIterator

import aiohttp
import pytest
from sqlmodel import col, select

from contact_center.hub.service import AgentRef
from crm_store.db import Database
from crm_store.models import Callback, ContactPoint, Conversation, Customer, Interaction
from crm_store.repositories import agents as agents_repo
from tests.integration.test_callback_e2e import CUSTOMER, CallbackPhones, _customer_calls, _state
from tests.integration.test_phone_nodes import hub_of, offered, until

PASSWORD = "pw-agents-1"


@pytest.fixture
async def phones(db: Database) -> AsyncIterator[CallbackPhones]:
    p = CallbackPhones(db, redis=False)
    await p.start_standin()
    try:
        yield p
    finally:
        await p.close()


async def _setup(db: Database) -> tuple[AgentRef, AgentRef, int, int]:
    """alice and bob (phone agents), a customer of alice's (a closed conversation of hers) with a phone number, and one
    with no number. Returns alice, bob, the customer's id and the other's."""
    async with db.transaction() as s:
        rows = [await agents_repo.create_agent(s, name, PASSWORD, display_name=name.capitalize(), capacity={"phone": 1, "chat": 3})
                for name in ("alice", "bob")]
        await agents_repo.create_queue(s, "support", channels=["phone", "callback"])
        ids = []
        for phone in (CUSTOMER, None):
            customer = Customer(display_name="Carol" if phone else "Nobody")
            s.add(customer)
            await s.flush()
            if phone:
                s.add(ContactPoint(customer_id=customer.id, kind="phone", value=phone, verified=True))
            s.add(Conversation(customer_id=customer.id, channel="sms", status="closed", assigned_agent_id=rows[0].id))
            ids.append(customer.id)
    alice, bob = (AgentRef(r.id, r.username, r.display_name, r.role) for r in rows)  # type: ignore[arg-type]
    return alice, bob, ids[0], ids[1]


async def _call(http: aiohttp.ClientSession, base: str, customer_id: int, body: Any = None) -> tuple[int, Any]:
    async with http.post(f"{base}/api/customers/{customer_id}/calls", json=body if body is not None else {}) as resp:
        return resp.status, await resp.json(content_type=None)


async def _login(base: str, username: str) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    r = await http.post(f"{base}/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status == 200, await r.text()
    return http


async def _summaries(db: Database, customer_id: int) -> list[str]:
    async with db.session() as s:
        rows = (await s.exec(select(Interaction).where(Interaction.customer_id == customer_id).order_by(col(Interaction.id)))).all()
    return [r.summary for r in rows]


async def test_an_agent_calls_a_customer_from_their_record(db: Database, phones: CallbackPhones) -> None:
    alice, bob, customer_id, no_number = await _setup(db)
    hub = hub_of(await phones.start_hub())
    phones.engine.phones[CUSTOMER] = "answer"
    async with aiohttp.ClientSession() as anonymous:
        status, _ = await _call(anonymous, phones.base, customer_id)
        assert status == 401
    http = await _login(phones.base, "alice")
    try:
        status, body = await _call(http, phones.base, customer_id)
        assert (status, body["reason"]) == (409, "agent_offline"), body
        await hub.agent_online(alice)
        status, body = await _call(http, phones.base, customer_id)
        assert (status, body["reason"]) == (409, "agent_unavailable") and "set yourself Available" in body["message"]
        await hub.set_status(alice, "available")
        await hub.agent_online(bob)
        await hub.set_status(bob, "available")
        for bad, reason in (({"number": "+14155550199"}, "not_customers_number"), ({"number": 42}, "bad_number")):
            status, body = await _call(http, phones.base, customer_id, bad)
            assert (status, body["reason"]) == (400, reason), body
        status, body = await _call(http, phones.base, no_number)
        assert (status, body["reason"]) == (400, "no_number")
        async with http.post(f"{phones.base}/api/customers/{customer_id}/calls", data="not json",
                             headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 400
        assert await _summaries(db, customer_id) == []  # nothing was written by a refusal
        # the call: assigned to alice at once, her leg rings, the customer is dialled into her conference
        status, body = await _call(http, phones.base, customer_id)
        assert status == 201, body
        conv = body["conversation"]
        cid = conv["id"]
        assert conv["channel"] == "callback" and conv["status"] == "assigned" and conv["customer_id"] == customer_id
        assert body["callback"]["number"] == CUSTOMER
        assert await hub.store.assignment_of(cid) == alice.id and await hub.store.offers_of(bob.id) == []
        legs = await until(lambda: [leg for leg in phones.engine.client_legs(f"agent_{alice.id}") if leg["status"] == "ringing"],
                           "alice's leg to ring")
        phones.engine.answer(legs[0]["call_sid"])
        customer = (await until(lambda: _customer_calls(phones), "the customer dialled"))[0]
        await until(lambda: customer.participant is not None and customer.participant.conference.started, "the bridge")
        room = customer.participant.conference
        assert room.friendly_name == f"conv-{cid}"
        assert {p.call.to for p in room.participants.values()} == {CUSTOMER, f"client:agent_{alice.id}"}
        cb_id = body["callback"]["id"]
        await until(lambda: _state(db, cb_id, "connected"), "the call connected")
        # on a call: a second one is refused in words
        status, body = await _call(http, phones.base, customer_id)
        assert (status, body["reason"]) == (409, "agent_busy"), body
        phones.engine.hang_up(customer.sid)
        await until(lambda: _state(db, cb_id, "completed"), "the call completed")

        async def told_completed() -> list[str] | None:  # the timeline's note follows the state's commit
            summaries = await _summaries(db, customer_id)
            return summaries if "Call completed" in summaries else None

        summaries = await until(told_completed, "the timeline's 'Call completed'")
        assert f"Alice called the customer ({CUSTOMER})" in summaries and "Call completed" in summaries
        async with db.session() as s:
            row = await s.get(Callback, cb_id)
            stored = await s.get(Conversation, cid)
        assert row is not None and (row.source, row.attempts, row.max_attempts, row.pinned_agent_id) == ("agent_call", 1, 1, alice.id)
        assert stored is not None and stored.pinned_agent_id == alice.id
        assert await hub.store.offers_of(bob.id) == []
        assert [(e.code, e.url) for e in phones.engine.errors] == []
    finally:
        await http.close()
    # bob may not call alice's customer (not one of his conversations)
    other = await _login(phones.base, "bob")
    try:
        status, _ = await _call(other, phones.base, customer_id)
        assert status == 403
    finally:
        await other.close()


async def test_a_pinned_call_waits_for_its_agent_only_also_after_a_rebuild(db: Database, phones: CallbackPhones) -> None:
    """A click-to-call whose contact waits in the queue (its agent's request did not claim it: a process that died
    in between) is offered to that agent only; the pin is in SQL, so a rebuild of the lost shared state keeps it."""
    from crm_store.repositories import callbacks as repo

    alice, bob, customer_id, _ = await _setup(db)
    hub = hub_of(await phones.start_hub())
    await hub.agent_online(alice)  # away: still reachable, so the contact waits for her
    await hub.agent_online(bob)
    await hub.set_status(bob, "available")
    now = datetime.now(timezone.utc)
    cb = await repo.create(db, Callback(
        customer_id=customer_id, number=CUSTOMER, queue="support", source="agent_call", state="requested", due_at=now,
        enqueued_at=now, max_attempts=1, pinned_agent_id=alice.id, created_at=now, updated_at=now), max_open=5)

    async def queued() -> int | None:
        async with db.session() as s:
            row = await s.get(Callback, cb.id)
        return row.conversation_id if row is not None else None

    cid = await until(queued, "the call's contact queued")
    waiting = await until(lambda: _waiting(hub, cid), "in the shared queue")
    assert waiting.pinned_agent == alice.id
    assert await hub.route_once() == 0 and await hub.store.offers_of(bob.id) == []
    await hub.store.clear()  # the shared state is lost (a Redis restarted empty)
    from contact_center.usecases.rebuild import rebuild_state

    await rebuild_state(hub)
    waiting = await until(lambda: _waiting(hub, cid), "back in the shared queue from SQL")
    assert waiting.pinned_agent == alice.id
    await hub.agent_online(bob)  # (their presences were lost with it)
    await hub.set_status(bob, "available")
    assert await hub.route_once() == 0 and await hub.store.offers_of(bob.id) == []
    await hub.agent_online(alice)
    await hub.set_status(alice, "available")
    await until(lambda: offered(hub, alice, cid), "offered to alice, its agent")
    assert await hub.store.offers_of(bob.id) == []
    # she declines it: nobody else may take it, so it is withdrawn (the callback cancelled, its contact closed)
    await hub.decline(alice, cid)
    await until(lambda: _state(db, cb.id, "cancelled"), "the call cancelled")
    async with db.session() as s:
        conv = await s.get(Conversation, cid)
    assert conv is not None and conv.status == "closed" and conv.disposition == "cancelled"
    assert await _waiting(hub, cid) is None and await hub.store.offers_of(bob.id) == []
    assert "Call not placed: the agent declined it" in await _summaries(db, customer_id)


async def _waiting(hub: Any, cid: int) -> Any:
    return next((e for e in await hub.store.waiting() if e.conversation_id == cid), None)


async def test_an_agent_on_their_own_phone_places_the_call_there(db: Database, phones: CallbackPhones) -> None:
    """The same CallAction machinery: an agent who takes calls on their own number is rung there, not in the browser."""
    from crm_store.models import Agent

    alice, _, customer_id, _ = await _setup(db)
    own = "+15005550177"
    async with db.transaction() as s:
        row = await s.get(Agent, alice.id)
        assert row is not None
        row.phone_number = own
        s.add(row)
    hub = hub_of(await phones.start_hub())
    phones.engine.phones[CUSTOMER] = "answer"
    phones.engine.phones[own] = "answer"
    await hub.agent_online(alice)
    await hub.set_status(alice, "available")
    http = await _login(phones.base, "alice")
    try:
        status, body = await _call(http, phones.base, customer_id)
        assert status == 201, body
    finally:
        await http.close()
    customer = (await until(lambda: _customer_calls(phones), "the customer dialled"))[0]
    await until(lambda: customer.participant is not None and customer.participant.conference.started, "the bridge")
    assert {p.call.to for p in customer.participant.conference.participants.values()} == {CUSTOMER, own}
    assert phones.engine.client_legs(f"agent_{alice.id}") == []
    await until(lambda: _state(db, body["callback"]["id"], "connected"), "connected")
    phones.engine.hang_up(customer.sid)
    await until(lambda: _state(db, body["callback"]["id"], "completed"), "completed")
