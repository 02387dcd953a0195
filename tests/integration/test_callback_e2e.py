"""Web callback end to end: whole hub applications (``create_app``) and the local Twilio stand-in as its own server.

* a "now" callback from ``POST /api/callbacks``, offered to an agent, who accepts: the hub rings the agent's leg and
  dials the customer (Calls create with MachineDetection): a person answers and both are in one conference;
* a busy customer: the attempt is on the timeline, retried after the (test's short) spacing, then reached;
* an answering machine counts as not reached; after the last attempt the callback fails;
* a scheduled callback that falls due while the hub is down enters the queue when it comes back;
* "press 1" in the phone queue makes a callback that keeps the caller's place ahead of a later caller;
* the webhooks: unsigned 403, malformed 400, repeats and late statuses change nothing; the public form's refusals.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator

import aiohttp
import pytest
from sqlmodel import col, select

from contact_center.hub.service import AgentRef
from contact_center.settings import Settings
from crm_store.db import Database
from crm_store.models import Agent, Callback, CallbackAttempt, Interaction
from crm_store.repositories import agents as agents_repo
from tests.integration.test_phone_nodes import ACCOUNT_SID, SHOP, TOKEN, WAIT, Phones, hub_of, offered, said, signed_post, until

CUSTOMER = "+14155550142"


class CallbackPhones(Phones):
    retry_seconds = 1
    max_attempts = 3
    on_abandon_seconds = 30

    def settings(self, public: str) -> Settings:
        base = super().settings(public)
        extra = {**base.extra, "CALLBACK_HOURS": "always", "CALLBACK_RETRY_SECONDS": str(self.retry_seconds),
                 "CALLBACK_MAX_ATTEMPTS": str(self.max_attempts), "CALLBACK_CPS": "5", "CALLBACK_PER_NUMBER_HOUR": "20",
                 "VOICE_CALLBACK_OFFER_AFTER": "0", "CALLBACK_ON_ABANDON_SECONDS": str(self.on_abandon_seconds)}
        return Settings(**{**base.__dict__, "extra": extra, "callback_interval_seconds": 0.2})


@pytest.fixture
async def phones(db: Database) -> AsyncIterator[CallbackPhones]:
    p = CallbackPhones(db, redis=False)
    await p.start_standin()
    try:
        yield p
    finally:
        await p.close()


async def _alice(db: Database) -> AgentRef:
    async with db.transaction() as s:
        row = await agents_repo.create_agent(s, "alice", "pw-alice-1", display_name="Alice", capacity={"phone": 1})
        await agents_repo.create_queue(s, "support", channels=["phone", "callback"])
    return AgentRef(row.id, row.username, row.display_name, row.role)  # type: ignore[arg-type]


async def _post(phones: Phones, path: str, body: Any, method: str = "POST") -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, phones.base + path, json=body) as resp:
            return resp.status, await resp.json(content_type=None)


async def _callback(db: Database, callback_id: int) -> Callback:
    async with db.session() as s:
        row = await s.get(Callback, callback_id)
        assert row is not None
        return row


async def _events(db: Database) -> list[dict[str, Any]]:
    async with db.session() as s:
        rows = (await s.exec(select(Interaction).order_by(col(Interaction.id)))).all()
    return [dict(r.payload or {}) for r in rows]


async def _events_once(db: Database, event: str, times: int = 1) -> list[str] | None:
    events = [str(e.get("event")) for e in await _events(db)]
    return events if events.count(event) >= times else None


def _customer_calls(phones: Phones) -> list[Any]:
    return [c for c in phones.engine.calls.values() if c.to == CUSTOMER]


async def _accept_and_answer_leg(phones: Phones, hub: Any, alice: AgentRef, cid: int) -> None:
    await until(lambda: offered(hub, alice, cid), f"the callback's contact {cid} offered to alice")
    accepted = await hub.accept(alice, cid)
    assert accepted["channel"] == "callback"
    legs = await until(lambda: [leg for leg in phones.engine.client_legs(f"agent_{alice.id}") if leg["status"] == "ringing"],
                       "alice's leg to ring")
    phones.engine.answer(legs[0]["call_sid"])


async def test_a_now_callback_from_the_form_ends_in_a_bridged_call(db: Database, phones: CallbackPhones) -> None:
    alice = await _alice(db)
    hub = hub_of(await phones.start_hub())
    phones.engine.phones[CUSTOMER] = "answer"
    status, body = await _post(phones, "/api/callbacks", {"number": "(415) 555-0142", "when": "now", "topic": "My order 42"})
    assert status == 201, body
    cb = body["callback"]
    assert cb["number"] == CUSTOMER and cb["state"] == "waiting" and body["queue"]["position"] == 1 and body["cancel_token"]
    cid = cb["conversation_id"]
    await hub.agent_online(alice)
    await hub.set_status(alice, "available")
    await _accept_and_answer_leg(phones, hub, alice, cid)
    customer = (await until(lambda: _customer_calls(phones), "the customer dialled"))[0]
    assert customer.from_ == SHOP and customer.machine_detection == "Enable"
    await until(lambda: customer.participant is not None and customer.participant.conference.started, "the bridge")
    room = customer.participant.conference
    assert room.friendly_name == f"conv-{cid}"
    assert {p.call.to for p in room.participants.values()} == {CUSTOMER, f"client:agent_{alice.id}"}
    await until(lambda: _state(db, cb["id"], "connected"), "the callback connected")
    # the whisper: alice alone heard who and what (her participant's AnnounceUrl), the customer did not
    agent_leg = next(c for c in phones.engine.calls.values() if c.to == f"client:agent_{alice.id}")
    heard = await until(lambda: [t for t in said(agent_leg) if t.startswith("Callback for")], "the agent's whisper")
    assert heard == ["Callback for 1 4 1 5 5 5 5 0 1 4 2: My order 42"]
    assert not [t for t in said(customer) if t.startswith("Callback for")]
    phones.engine.hang_up(customer.sid)
    await until(lambda: _state(db, cb["id"], "completed"), "the callback completed")
    row = await _callback(db, cb["id"])
    assert row.attempts == 1 and row.last_outcome == "connected"
    events = await until(lambda: _events_once(db, "callback_completed"), "the completion on the timeline")
    assert events.count("callback_requested") == 1 and "callback_dialling" in events
    assert [(e.code, e.url) for e in phones.engine.errors] == []
    # the supervisor's snapshot counts it, with its service level
    async with aiohttp.ClientSession() as http:
        async with http.get(phones.base + "/api/supervisor/snapshot", headers={"Authorization": "Bearer t"}) as resp:
            figures = (await resp.json())["callbacks"]
    assert figures["completed"] == 1 and figures["waiting"] == 0 and figures["connected_today"] == 1
    assert figures["median_seconds_to_connect"] is not None and figures["median_seconds_to_connect"] < WAIT
    # cancelling a finished callback is refused; a wrong token too
    status, body = await _post(phones, f"/api/callbacks/{cb['id']}?token=nope", None, method="DELETE")
    assert status == 404


async def _state(db: Database, callback_id: int, state: str) -> bool:
    return (await _callback(db, callback_id)).state == state


async def test_a_busy_customer_is_retried_then_reached(db: Database, phones: CallbackPhones) -> None:
    alice = await _alice(db)
    hub = hub_of(await phones.start_hub())
    status, body = await _post(phones, "/api/callbacks", {"number": CUSTOMER, "when": "now"})
    assert status == 201, body
    cb_id, first = body["callback"]["id"], body["callback"]["conversation_id"]
    await hub.agent_online(alice)
    await hub.set_status(alice, "available")
    await _accept_and_answer_leg(phones, hub, alice, first)
    # the customer's phone declines (busy) once alice's leg is up: a phone set to "busy" from the start could end
    # the attempt, and alice's leg with it, before the test saw that leg ring (a flake of 1 run in 5)
    ringing = await until(lambda: [c for c in _customer_calls(phones) if c.status == "ringing"], "the customer's phone ringing")
    phones.engine.hang_up(ringing[0].sid)
    await until(lambda: _state(db, cb_id, "scheduled"), "the busy attempt rescheduled")
    row = await _callback(db, cb_id)
    assert row.attempts == 1 and row.last_outcome == "busy"
    await hub.close(alice, first, "no_answer")  # alice wraps the failed attempt up
    phones.engine.phones[CUSTOMER] = "answer"
    # after the spacing the hub queues attempt 2 as a new contact: offered, accepted, reached
    second = await until(lambda: _conversation_of(db, cb_id, first), "attempt 2 queued", timeout=WAIT)
    await _accept_and_answer_leg(phones, hub, alice, second)
    await until(lambda: _state(db, cb_id, "connected"), "the customer reached on attempt 2")
    async with db.session() as s:
        attempts = (await s.exec(select(CallbackAttempt).where(CallbackAttempt.callback_id == cb_id).order_by(col(CallbackAttempt.n)))).all()
    assert [(a.n, a.outcome) for a in attempts] == [(1, "busy"), (2, "connected")]
    await until(lambda: _events_once(db, "callback_attempt", 2), "both attempts on the timeline")
    outcomes = [e.get("outcome") for e in await _events(db) if e.get("event") == "callback_attempt"]
    assert outcomes == ["busy", "connected"]
    # a repeated busy for attempt 1 (Twilio retrying its callback) changes nothing
    sid = attempts[0].call_sid
    form = {"AccountSid": ACCOUNT_SID, "CallSid": sid, "CallStatus": "busy", "SequenceNumber": "9", "From": SHOP, "To": CUSTOMER}
    assert (await signed_post(phones, f"/webhooks/twilio/callback/status?cb={cb_id}&n=1&leg=customer", form))[0] == 200
    assert (await _callback(db, cb_id)).state == "connected"


async def _queued(db: Database, cb_id: int) -> Callback | None:
    row = await _callback(db, cb_id)
    return row if row.state == "waiting" and row.conversation_id is not None else None


async def _conversation_of(db: Database, cb_id: int, not_this: int) -> int | None:
    row = await _callback(db, cb_id)
    return row.conversation_id if row.state == "waiting" and row.conversation_id not in (None, not_this) else None


async def test_a_machine_is_not_reached_and_the_last_attempt_fails(db: Database, phones: CallbackPhones) -> None:
    phones.max_attempts = 1
    alice = await _alice(db)
    hub = hub_of(await phones.start_hub())
    phones.engine.phones[CUSTOMER] = "machine"
    status, body = await _post(phones, "/api/callbacks", {"number": CUSTOMER, "when": "now"})
    cb_id, cid = body["callback"]["id"], body["callback"]["conversation_id"]
    await hub.agent_online(alice)
    await hub.set_status(alice, "available")
    await _accept_and_answer_leg(phones, hub, alice, cid)
    await until(lambda: _state(db, cb_id, "failed"), "the callback failed")
    row = await _callback(db, cb_id)
    assert row.last_outcome == "machine" and row.attempts == 1
    customer = _customer_calls(phones)[0]
    await until(lambda: customer.over, "the machine hung up on")
    assert customer.answered_by == "machine_start"
    # after the last attempt the customer gets a text (the hub has SMS on the same number)
    texts = await until(lambda: _texts(db), "the 'could not reach you' text on the timeline")
    assert texts == ["sent"] or texts == ["queued"] or texts == ["accepted"], texts


async def _texts(db: Database) -> list[str] | None:
    found = [str(e.get("status")) for e in await _events(db) if e.get("event") == "callback_not_reached_text"]
    return found or None


async def test_a_scheduled_callback_due_while_the_hub_was_down_runs_when_it_comes_back(db: Database, phones: CallbackPhones) -> None:
    alice = await _alice(db)
    first = await phones.start_hub()
    when = (datetime.now(timezone.utc) + timedelta(seconds=2)).isoformat()
    status, body = await _post(phones, "/api/callbacks", {"number": CUSTOMER, "when": when, "topic": "later"})
    assert status == 201, body
    cb_id = body["callback"]["id"]
    assert body["callback"]["state"] == "scheduled" and "queue" not in body
    await phones.stop_hub(first)
    await asyncio.sleep(2.5)  # it falls due while no hub runs
    assert (await _callback(db, cb_id)).state == "scheduled"
    hub = hub_of(await phones.start_hub())
    row = await until(lambda: _queued(db, cb_id), "the callback queued by the restarted hub")
    conv = await hub.repo.conversation(row.conversation_id)
    assert conv.channel == "callback" and conv.priority > 0  # a booked time: ahead of new contacts
    await hub.agent_online(alice)
    await hub.set_status(alice, "available")
    await until(lambda: offered(hub, alice, row.conversation_id), "the scheduled callback offered")


async def test_press_1_in_the_phone_queue_keeps_the_callers_place(db: Database, phones: CallbackPhones) -> None:
    await _alice(db)
    hub = hub_of(await phones.start_hub())
    phones.engine.play_seconds = 400.0
    first_call, first_conv = await phones.queued_call()
    second = phones.engine.incoming_call("+14155550177", SHOP)
    await phones.engine.wait_for(lambda: second.listening, timeout=WAIT)
    assert phones.engine.send_digits(second.sid, "0")
    second_conv = await until(lambda: phones._queued(second.sid), "the second caller queued")
    form = {"AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": first_call.sid, "CallStatus": "in-progress",
            "Direction": "inbound", "From": "+14155550100", "To": SHOP, "Digits": "1"}
    status, twiml = await signed_post(phones, "/webhooks/twilio/voice/wait?n=3&t0=1&cb=1", form)
    assert status == 200 and "call you back" in twiml
    async with db.session() as s:
        cb_id = (await s.exec(select(Callback.id).where(Callback.origin_conversation_id == first_conv))).one()
    cb = await until(lambda: _queued(db, cb_id), "the callback in the queue")  # this tick or the hub's loop moves it
    assert cb.source == "wait_offer" and cb.state == "waiting" and cb.conversation_id is not None
    waiting = [e.conversation_id for e in await hub.store.waiting("support")]
    assert waiting == [cb.conversation_id, second_conv.id]  # the callback kept the first caller's place
    old = await hub.repo.conversation(first_conv)
    assert old.status == "closed" and old.disposition == "callback"


async def test_a_caller_who_hangs_up_after_waiting_is_called_back_once_keeping_their_place(
        db: Database, phones: CallbackPhones) -> None:
    phones.on_abandon_seconds = 2
    await _alice(db)
    hub = hub_of(await phones.start_hub())
    phones.engine.play_seconds = 400.0
    first_call, first_conv = await phones.queued_call()
    await asyncio.sleep(2.2)  # the first caller waits past CALLBACK_ON_ABANDON_SECONDS
    second = phones.engine.incoming_call("+14155550177", SHOP)
    await phones.engine.wait_for(lambda: second.listening, timeout=WAIT)
    assert phones.engine.send_digits(second.sid, "0")
    second_conv = await until(lambda: phones._queued(second.sid), "the second caller queued")
    phones.engine.hang_up(first_call.sid)  # the stand-in posts the call's completed status: abandoned
    cb_id = await until(lambda: _callback_from(db, first_conv), "an automatic callback from the abandoned call")
    cb = await until(lambda: _queued(db, cb_id), "the callback in the queue")
    assert (cb.source, cb.number, cb.origin_conversation_id) == ("abandoned", "+14155550100", first_conv)
    waiting = [e.conversation_id for e in await hub.store.waiting("support")]
    assert waiting == [cb.conversation_id, second_conv.id]  # it kept the first caller's place
    old = await hub.repo.conversation(first_conv)
    assert (old.status, old.disposition) == ("closed", "abandoned")  # the caller did abandon: counted as such
    # Twilio repeating the completed status (a new SequenceNumber) makes no second callback
    form = {"AccountSid": ACCOUNT_SID, "CallSid": first_call.sid, "CallStatus": "completed", "SequenceNumber": "7",
            "From": "+14155550100", "To": SHOP, "Direction": "inbound", "ApiVersion": "2010-04-01"}
    assert (await signed_post(phones, "/webhooks/twilio/voice/status", form))[0] == 200
    async with db.session() as s:
        made = (await s.exec(select(Callback).where(Callback.source == "abandoned"))).all()
    assert [c.id for c in made] == [cb_id]
    notes = [e for e in await _events(db) if e.get("event") == "callback_requested" and e.get("source") == "abandoned"]
    assert len(notes) == 1 and notes[0]["waited_seconds"] >= 2
    # a caller who hangs up at once is not called back; nor is one with a hidden number (never queued: refused)
    third = phones.engine.incoming_call("+14155550188", SHOP)
    await phones.engine.wait_for(lambda: third.listening, timeout=WAIT)
    assert phones.engine.send_digits(third.sid, "0")
    third_conv = await until(lambda: phones._queued(third.sid), "the third caller queued")
    phones.engine.hang_up(third.sid)
    await until(lambda: _closed(hub, third_conv.id), "the third call abandoned")
    await asyncio.sleep(0.3)
    assert await _callback_from(db, third_conv.id) is None


async def _callback_from(db: Database, conversation_id: int) -> int | None:
    async with db.session() as s:
        return (await s.exec(select(Callback.id).where(Callback.origin_conversation_id == conversation_id))).first()


async def _closed(hub: Any, conversation_id: int) -> bool:
    conv = await hub.repo.conversation(conversation_id)
    return conv is not None and conv.status == "closed"


async def _queue_settings(db: Database, **values: Any) -> None:
    from crm_store.models import Queue

    async with db.transaction() as s:
        row = (await s.exec(select(Queue).where(Queue.name == "support"))).one()
        for k, v in values.items():
            setattr(row, k, v)
        s.add(row)


async def test_customer_first_dials_the_customer_then_offers_the_agent_who_hears_the_whisper(
        db: Database, phones: CallbackPhones) -> None:
    alice = await _alice(db)
    await _queue_settings(db, callback_mode="customer_first")
    hub = hub_of(await phones.start_hub())
    await hub.agent_online(alice)
    await hub.set_status(alice, "available")
    status, body = await _post(phones, "/api/callbacks", {"number": CUSTOMER, "when": "now", "topic": "the refund"})
    assert status == 201, body
    cb_id = body["callback"]["id"]
    customer = (await until(lambda: _customer_calls(phones), "the customer dialled first"))[0]
    await until(lambda: customer.status == "ringing", "the customer's phone ringing")
    row = await _callback(db, cb_id)
    conv = await hub.repo.conversation(row.conversation_id)
    assert row.state == "dialling" and conv.status == "bot"  # held out of the queue: nobody offered it yet
    assert not await offered(hub, alice, conv.id) and phones.engine.client_legs(f"agent_{alice.id}") == []
    assert customer.machine_detection == "Enable"
    phones.engine.answer(customer.sid)  # a person answers: they wait in the room, and now an agent is offered it
    await until(lambda: customer.participant is not None, "the customer waiting in the room")
    await until(lambda: any("an agent will be with you" in t for t in said(customer)), "the customer told to hold")
    await until(lambda: _state(db, cb_id, "connected"), "the callback connected (the customer is on the line)")
    await until(lambda: offered(hub, alice, conv.id), "offered to alice once the customer answered")
    await hub.accept(alice, conv.id)
    legs = await until(lambda: [leg for leg in phones.engine.client_legs(f"agent_{alice.id}") if leg["status"] == "ringing"], "alice's leg")
    phones.engine.answer(legs[0]["call_sid"])
    await until(lambda: customer.participant is not None and f"client:agent_{alice.id}" in
                {p.call.to for p in customer.participant.conference.participants.values()}, "alice with the customer")
    agent_leg = phones.engine.calls[legs[0]["call_sid"]]
    await until(lambda: "Callback for 1 4 1 5 5 5 5 0 1 4 2: the refund" in said(agent_leg), "alice's whisper")
    assert len(_customer_calls(phones)) == 1 and (await _callback(db, cb_id)).attempts == 1  # dialled once
    phones.engine.hang_up(customer.sid)
    await until(lambda: _state(db, cb_id, "completed"), "the callback completed")
    attempts = [e for e in await _events(db) if e.get("event") == "callback_dialling"]
    assert [a.get("mode") for a in attempts] == ["customer_first"]


async def test_a_customer_first_callback_never_dialled_is_dialled_by_the_next_sweep(
        db: Database, phones: CallbackPhones, monkeypatch: pytest.MonkeyPatch) -> None:
    from contact_center.usecases import callbacks as usecase

    await _alice(db)
    await _queue_settings(db, callback_mode="customer_first")
    hub = hub_of(await phones.start_hub())

    async def dies_before_dialling(*args: Any, **kwargs: Any) -> None:
        return None  # the process that attached the held contact died before its dial

    real = usecase._dial_first
    monkeypatch.setattr(usecase, "_dial_first", dies_before_dialling)
    status, body = await _post(phones, "/api/callbacks", {"number": CUSTOMER, "when": "now"})
    cb_id = body["callback"]["id"]
    row = await until(lambda: _queued(db, cb_id), "the held contact attached")
    assert (await hub.repo.conversation(row.conversation_id)).status == "bot" and _customer_calls(phones) == []
    monkeypatch.setattr(usecase, "_dial_first", real)
    async with db.transaction() as s:
        stale = await s.get(Callback, cb_id)
        stale.updated_at = datetime.now(timezone.utc) - timedelta(minutes=5)
        s.add(stale)
    hub._callback_first_sweep = 0.0  # the sweep runs once a lease: now
    await usecase.tick(hub)
    await until(lambda: _customer_calls(phones), "the customer dialled by the sweep")
    await usecase.tick(hub)
    row = await _callback(db, cb_id)
    assert row.state == "dialling" and row.attempts == 1 and len(_customer_calls(phones)) == 1


async def test_a_queue_voicemail_is_left_after_the_beep_and_the_attempt_counts_as_machine(
        db: Database, phones: CallbackPhones) -> None:
    phones.max_attempts = 1
    await _alice(db)
    message = "Hello, this is the shop returning your call. We will try again, or call us back when it suits you."
    await _queue_settings(db, callback_mode="customer_first", callback_voicemail=message)
    await phones.start_hub()
    phones.engine.phones[CUSTOMER] = "machine"
    status, body = await _post(phones, "/api/callbacks", {"number": CUSTOMER, "when": "now"})
    assert status == 201, body
    cb_id = body["callback"]["id"]
    customer = (await until(lambda: _customer_calls(phones), "the customer dialled"))[0]
    assert customer.machine_detection == "DetectMessageEnd"  # the message is played after the beep
    await until(lambda: customer.over, "the voicemail left and the call ended")
    assert customer.answered_by == "machine_end_beep" and message in said(customer)
    await until(lambda: _state(db, cb_id, "failed"), "the last attempt counted as not reached")
    row = await _callback(db, cb_id)
    assert row.last_outcome == "machine"
    notes = [e for e in await _events(db) if e.get("event") == "callback_attempt"]
    assert [(e["outcome"], e.get("voicemail_left")) for e in notes] == [("machine", True)]


async def test_a_queue_s_own_opening_hours_decide_its_slots(db: Database, phones: CallbackPhones) -> None:
    await _alice(db)  # the hub's hours: always open (CALLBACK_HOURS=always); the queue's: weekdays 09:00-17:00 UTC
    await _queue_settings(db, callback_hours="0-4 09:00-17:00")
    await phones.start_hub()
    async with aiohttp.ClientSession() as http:
        async with http.get(phones.base + "/api/callbacks/slots?queue=support") as resp:
            body = await resp.json()
    slots = [datetime.fromisoformat(t) for t in body["slots"]]
    assert body["always_open"] is False and slots
    assert all(t.weekday() < 5 and 9 <= t.hour < 17 for t in slots)
    today = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    saturday = today + timedelta(days=(5 - today.weekday()) % 7 or 7)
    status, refused = await _post(phones, "/api/callbacks", {"number": CUSTOMER, "when": saturday.replace(hour=10).isoformat()})
    assert (status, refused.get("reason")) == (400, "closed")
    monday = saturday + timedelta(days=2)
    status, booked = await _post(phones, "/api/callbacks", {"number": CUSTOMER, "when": monday.replace(hour=10).isoformat()})
    assert status == 201, booked


async def test_a_now_callback_while_the_queue_is_closed_is_booked_at_the_next_opening(db: Database, phones: CallbackPhones) -> None:
    await _alice(db)
    tomorrow = datetime.now(timezone.utc) + timedelta(days=1)  # the queue opens only tomorrow (its weekday), 09:00-17:00 UTC
    await _queue_settings(db, callback_hours=f"{tomorrow.weekday()} 09:00-17:00")
    await phones.start_hub()
    opening = tomorrow.replace(hour=9, minute=0, second=0, microsecond=0)
    async with aiohttp.ClientSession() as http:
        async with http.get(phones.base + "/api/callbacks/slots?queue=support") as resp:
            slots = await resp.json()
    assert (slots["open_now"], slots["next_opening"]) == (False, opening.isoformat())
    status, body = await _post(phones, "/api/callbacks", {"number": CUSTOMER, "when": "now", "topic": "my order"})
    assert status == 201, body
    assert body["closed"] is True and body["scheduled_for"] == opening.isoformat()
    assert body["message"] == f"We are closed now: we will call you back when we open, at {opening:%Y-%m-%d %H:%M} UTC"
    assert "queue" not in body  # not waiting in the queue for an agent who is not there
    cb = body["callback"]
    assert (cb["state"], cb["conversation_id"], cb["requested_for"]) == ("scheduled", None, opening.isoformat())
    row = await _callback(db, cb["id"])
    assert row.state == "scheduled" and row.requested_for is not None  # enters with a booked slot's priority when due
    async with db.session() as s:
        texts = [r.summary for r in (await s.exec(select(Interaction))).all()
                 if (r.payload or {}).get("event") in ("callback_confirmation_text", "callback_requested")]
    assert any(t.startswith("Callback requested (now; we are closed: at the opening") for t in texts), texts
    assert any(t == f"Text sent: We are closed now. We will call you back when we open, at {opening:%Y-%m-%d %H:%M} UTC on this number."
               for t in texts), texts
    await asyncio.sleep(0.5)  # the hub's loop does not queue it before the opening
    assert (await _callback(db, cb["id"])).state == "scheduled"


async def _as(phones: Phones, username: str, password: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.post(phones.base + "/auth/login", json={"username": username, "password": password}) as resp:
            assert resp.status == 200, await resp.text()
            cookie = f"cc_session={resp.cookies['cc_session'].value}"
        async with http.request(method, phones.base + path, json=body, headers={"Cookie": cookie, "Origin": phones.base}) as resp:
            return resp.status, await resp.json(content_type=None)


async def test_a_queue_s_callback_settings_through_the_api_apply_to_the_next_callback(db: Database, phones: CallbackPhones) -> None:
    await _alice(db)
    async with db.transaction() as s:
        await agents_repo.create_agent(s, "sam", "pw-sam-1", display_name="Sam", role="supervisor", capacity={"phone": 1})
        await agents_repo.create_agent(s, "ada", "pw-ada-1", display_name="Ada", role="admin", capacity={})
    await phones.start_hub()
    path = "/api/queues/support/callback-settings"
    # an agent may neither read nor change them
    assert (await _as(phones, "alice", "pw-alice-1", "GET", path))[0] == 403
    status, refused = await _as(phones, "alice", "pw-alice-1", "PUT", path, {"callback_mode": "customer_first"})
    assert (status, refused["error"]) == (403, "forbidden")
    status, current = await _as(phones, "sam", "pw-sam-1", "GET", path)
    assert status == 200 and (current["callback_mode"], current["callback_voicemail"], current["callback_hours"]) == ("agent_first", "", "")
    assert current["hours"] == {"source": "hub", "always_open": True, "effective": "always", "open_now": True, "next_opening": None}
    # bad values: a reason per field, and nothing written (the good field of the same request neither)
    status, bad = await _as(phones, "sam", "pw-sam-1", "PUT", path, {"callback_mode": "robot", "callback_hours": "0-4 17:00-09:00",
                                                                    "callback_voicemail": "fine"})
    assert status == 400 and {f["field"] for f in bad["fields"]} == {"callback_mode", "callback_hours"}, bad
    assert "open before they close" in next(f["reason"] for f in bad["fields"] if f["field"] == "callback_hours")
    assert (await _as(phones, "sam", "pw-sam-1", "GET", path))[1]["callback_voicemail"] == ""
    assert (await _as(phones, "ada", "pw-ada-1", "PUT", "/api/queues/nowhere/callback-settings", {"callback_mode": "agent_first"}))[0] == 404
    status, bad = await _as(phones, "ada", "pw-ada-1", "PUT", path, ["customer_first"])
    assert status == 400 and bad["reason"] == "bad_settings"
    # closed until tomorrow: the next "now" callback is booked at the opening, with no restart
    tomorrow = datetime.now(timezone.utc) + timedelta(days=1)
    status, saved = await _as(phones, "ada", "pw-ada-1", "PUT", path, {"callback_hours": f" {tomorrow.weekday()}  09:00-17:00 "})
    assert status == 200 and saved["callback_hours"] == f"{tomorrow.weekday()} 09:00-17:00" and saved["hours"]["source"] == "queue"
    assert saved["hours"]["open_now"] is False
    status, body = await _post(phones, "/api/callbacks", {"number": CUSTOMER, "when": "now"})
    assert status == 201 and body["closed"] is True and body["callback"]["state"] == "scheduled"
    status, _ = await _post(phones, f"/api/callbacks/{body['callback']['id']}", {"token": body["cancel_token"]}, method="DELETE")
    assert status == 200
    # always open, customer first, a voicemail: the next "now" callback dials the customer before any agent accepts
    status, saved = await _as(phones, "sam", "pw-sam-1", "PUT", path, {"callback_hours": "always", "callback_mode": "customer_first",
                                                                      "callback_voicemail": "  The shop\ncalling back. "})
    assert status == 200 and (saved["callback_mode"], saved["callback_voicemail"], saved["callback_hours"]) == (
        "customer_first", "The shop calling back.", "always")
    phones.engine.phones[CUSTOMER] = "busy"
    status, body = await _post(phones, "/api/callbacks", {"number": CUSTOMER, "when": "now"})
    assert status == 201 and "closed" not in body
    customer = (await until(lambda: _customer_calls(phones), "the customer dialled, customer first"))[0]
    assert customer.machine_detection == "DetectMessageEnd"  # the queue's voicemail: detection waits for the beep


class EmailPhones(CallbackPhones):
    """The hub also has the email channel (no relay: the local outbox under the test's own folder)."""

    folder = ""

    def settings(self, public: str) -> Settings:
        base = super().settings(public)
        extra = {**base.extra, "EMAIL_ADDRESSES": "support@shop.example=support"}
        return Settings(**{**base.__dict__, "extra": extra, "media_dir": f"{self.folder}/media"})


async def _email_notes(db: Database, count: int) -> list[dict[str, Any]] | None:
    notes = [e for e in await _events(db) if str(e.get("event", "")).endswith("_email")]
    return notes if len(notes) >= count else None


def _outbox(folder: str) -> list[Any]:
    import email
    from email import policy
    from pathlib import Path

    found = []
    for path in sorted(Path(folder, "outbox").glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        found.append((str(msg["To"]), str(msg["Subject"]), msg.get_body(("plain",)).get_content(), str(msg["Auto-Submitted"])))
    return found


async def test_agent_first_leaves_the_queue_voicemail_too(db: Database, phones: CallbackPhones) -> None:
    phones.max_attempts = 2
    alice = await _alice(db)
    await _queue_settings(db, callback_voicemail="This is the shop calling you back about your order.")
    hub = hub_of(await phones.start_hub())
    phones.engine.phones[CUSTOMER] = "machine"
    status, body = await _post(phones, "/api/callbacks", {"number": CUSTOMER, "when": "now"})
    cb_id, cid = body["callback"]["id"], body["callback"]["conversation_id"]
    await hub.agent_online(alice)
    await hub.set_status(alice, "available")
    await _accept_and_answer_leg(phones, hub, alice, cid)
    customer = (await until(lambda: _customer_calls(phones), "the customer dialled"))[0]
    assert customer.machine_detection == "DetectMessageEnd"
    await until(lambda: _state(db, cb_id, "scheduled"), "the machine attempt rescheduled")
    await until(lambda: customer.over, "the voicemail left")
    assert "This is the shop calling you back about your order." in said(customer)
    notes = [e for e in await _events(db) if e.get("event") == "callback_attempt"]
    assert [(e["outcome"], e.get("voicemail_left"), e["next"]) for e in notes] == [("machine", True, "scheduled")]


async def test_a_customer_with_an_email_address_is_confirmed_and_told_by_email_too(db: Database, tmp_path: Any) -> None:
    from crm_store.models import ContactPoint, Customer

    phones = EmailPhones(db, redis=False)
    phones.folder, phones.max_attempts = str(tmp_path), 1
    await phones.start_standin()
    try:
        await _alice(db)
        await _queue_settings(db, callback_mode="customer_first")  # no agent needed to reach the machine
        async with db.transaction() as s:
            customer = Customer(display_name="Ann Example")
            s.add(customer)
            await s.flush()
            s.add(ContactPoint(customer_id=customer.id, kind="phone", value=CUSTOMER, verified=True))
            s.add(ContactPoint(customer_id=customer.id, kind="email", value="ann@example.com", verified=True))
        await phones.start_hub()
        phones.engine.phones[CUSTOMER] = "machine"
        status, body = await _post(phones, "/api/callbacks", {"number": CUSTOMER, "when": "now"})
        assert status == 201, body
        cb_id = body["callback"]["id"]
        await until(lambda: _state(db, cb_id, "failed"), "the only attempt reached a machine")
        mails = await until(lambda: len(_outbox(phones.folder)) >= 2 and _outbox(phones.folder), "both emails in the outbox")
        (to1, subject1, text1, auto1), (to2, subject2, text2, auto2) = mails
        assert (to1, subject1, auto1) == ("ann@example.com", "Your callback is booked", "auto-replied")
        assert f"as soon as an agent is free on {CUSTOMER}" in text1 and body["cancel_url"] in text1
        assert (to2, subject2) == ("ann@example.com", "We could not reach you") and "1 time(s)" in text2
        notes = await until(lambda: _email_notes(db, 2), "both emails on the timeline")
        assert [(e["event"], e["status"]) for e in notes] == [("callback_confirmation_email", "sent"), ("callback_not_reached_email", "sent")]
        async with db.session() as s:
            summaries = [i.summary for i in (await s.exec(select(Interaction))).all()]
        assert not any(body["cancel_token"] in (x or "") for x in summaries)  # the link never on the timeline
    finally:
        await phones.close()


async def test_the_webhooks_and_the_form_refuse_what_they_should(db: Database, phones: CallbackPhones) -> None:
    await _alice(db)
    await phones.start_hub()
    form = {"AccountSid": ACCOUNT_SID, "CallSid": "CA" + "0" * 32, "CallStatus": "busy", "From": SHOP, "To": CUSTOMER}
    async with aiohttp.ClientSession() as http:
        async with http.post(phones.base + "/webhooks/twilio/callback/status?cb=1&n=1&leg=customer", data=form) as resp:
            assert resp.status == 403  # unsigned
    assert (await signed_post(phones, "/webhooks/twilio/callback/status?cb=x&n=1&leg=customer", form))[0] == 400
    assert (await signed_post(phones, "/webhooks/twilio/callback/status?cb=1&n=1&leg=customer", {**form, "CallStatus": "sideways"}))[0] == 400
    assert (await signed_post(phones, "/webhooks/twilio/callback/status?cb=1&n=1&leg=customer", {**form, "CallSid": "nope"}))[0] == 400
    assert (await signed_post(phones, "/webhooks/twilio/callback/answer?cb=1&n=1&conv=1", {**form, "AnsweredBy": "robot"}))[0] == 400
    # a status for a callback that does not exist is taken and changes nothing
    assert (await signed_post(phones, "/webhooks/twilio/callback/status?cb=999&n=1&leg=customer", form))[0] == 200
    for body, reason in [({"number": "12"}, "bad_number"), ({"number": "+19005550123"}, "premium"),
                         ({"number": "+447911123456"}, "country"), ({"number": CUSTOMER, "when": "2020-01-01T10:00:00+00:00"}, "past"),
                         ({"number": CUSTOMER, "when": "tomorrow"}, "bad_time"), ({"number": CUSTOMER, "topic": 5}, "bad_topic")]:
        status, answer = await _post(phones, "/api/callbacks", body)
        assert (status, answer.get("reason")) == (400, reason), (body, answer)
    status, answer = await _post(phones, "/api/callbacks", "not an object")
    assert status == 400
    # at most N open per customer (2 by default), each request checked
    made = [await _post(phones, "/api/callbacks", {"number": "+14155550199", "when": (datetime.now(timezone.utc) + timedelta(hours=i + 1)).isoformat()})
            for i in range(3)]
    assert [m[0] for m in made] == [201, 201, 409] and made[2][1]["reason"] == "too_many_open"
    # cancelling with the token frees a place
    first = made[0][1]
    status, _ = await _post(phones, f"/api/callbacks/{first['callback']['id']}", {"token": first["cancel_token"]}, method="DELETE")
    assert status == 200
    assert (await _callback(db, first["callback"]["id"])).state == "cancelled"
    # the confirmation text's link: a page with one button, then cancelled
    second = made[1][1]
    assert second["cancel_url"].startswith(phones.base + f"/callbacks/{second['callback']['id']}/cancel?token=")
    async with aiohttp.ClientSession() as http:
        async with http.get(second["cancel_url"]) as resp:
            page = await resp.text()
            assert resp.status == 200 and 'data-testid="cancel-callback"' in page
        async with http.post(phones.base + f"/callbacks/{second['callback']['id']}/cancel", data={"token": second["cancel_token"]},
                             headers={"Origin": phones.base}) as resp:
            assert resp.status == 200 and "cancelled" in await resp.text()
        async with http.post(phones.base + f"/callbacks/{second['callback']['id']}/cancel", data={"token": "wrong"},
                             headers={"Origin": phones.base}) as resp:
            assert resp.status == 404
    assert (await _callback(db, second["callback"]["id"])).state == "cancelled"
    # each web request was confirmed by a text (its cancel token never on the timeline)
    confirmations = [e for e in await _events(db) if e.get("event") == "callback_confirmation_text"]
    assert len(confirmations) == 2


@pytest.fixture
async def two_nodes(db: Database) -> AsyncIterator[CallbackPhones]:
    if db.dialect != "postgresql":
        pytest.skip("two hub processes share PostgreSQL and Redis")
    p = CallbackPhones(db, redis=True)
    await p.start_standin()
    try:
        yield p
    finally:
        await p.close()


async def test_two_hub_processes_queue_a_callback_once_and_dial_it_once(db: Database, two_nodes: CallbackPhones) -> None:
    from contact_center.usecases import callbacks as usecase
    from crm_store.models import Conversation

    phones = two_nodes
    alice = await _alice(db)
    first = hub_of(await phones.start_hub())
    second = hub_of(await phones.start_hub(port=_other_port()))
    phones.engine.phones[CUSTOMER] = "answer"
    # booked a second ahead: both hubs' loops find it due at the same moment
    when = (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat()
    status, body = await _post(phones, "/api/callbacks", {"number": CUSTOMER, "when": when})
    assert status == 201, body
    cb_id = body["callback"]["id"]
    row = await until(lambda: _queued(db, cb_id), "the callback queued")
    await asyncio.sleep(1.0)  # more rounds of both loops: nothing more happens
    async with db.session() as s:
        convs = (await s.exec(select(Conversation).where(Conversation.channel == "callback"))).all()
    assert [c.thread_key for c in convs] == [f"cb-{cb_id}-1"]
    conv = await first.repo.conversation(row.conversation_id)
    # both processes are asked to dial it at once (as if both had been told of the accept): one dials
    reports = await asyncio.gather(usecase.connect(first, conv, alice.id), usecase.connect(second, conv, alice.id))
    assert sorted(r.status for r in reports) == ["failed", "sent"], reports
    assert [r.error_code for r in reports if r.status == "failed"] == ["claimed"]
    await until(lambda: len(_customer_calls(phones)) >= 1, "the customer dialled")
    await asyncio.sleep(0.5)
    assert len(_customer_calls(phones)) == 1  # one call to the customer, never two
    async with db.session() as s:
        attempts = (await s.exec(select(CallbackAttempt).where(CallbackAttempt.callback_id == cb_id))).all()
    assert [(a.n, a.call_sid is not None) for a in attempts] == [(1, True)]


def _other_port() -> int:
    from tests.integration.test_phone_nodes import _free_port

    return _free_port()


async def test_a_connected_callback_transferred_keeps_the_customer_on_the_line(db: Database, phones: CallbackPhones) -> None:
    alice = await _alice(db)
    async with db.transaction() as s:
        row = await agents_repo.create_agent(s, "bob", "pw-bob-1", display_name="Bob", capacity={"phone": 1})
    bob = AgentRef(row.id, row.username, row.display_name, row.role)  # type: ignore[arg-type]
    hub = hub_of(await phones.start_hub())
    phones.engine.phones[CUSTOMER] = "answer"
    status, body = await _post(phones, "/api/callbacks", {"number": CUSTOMER, "when": "now"})
    cb_id, cid = body["callback"]["id"], body["callback"]["conversation_id"]
    await hub.agent_online(alice)
    await hub.set_status(alice, "available")
    await _accept_and_answer_leg(phones, hub, alice, cid)
    customer = (await until(lambda: _customer_calls(phones), "the customer dialled"))[0]
    await until(lambda: _state(db, cb_id, "connected"), "the callback connected")
    # alice passes the customer to the queue; bob takes it: the customer holds, then joins bob, never dialled again
    await hub.agent_online(bob)
    await hub.set_status(bob, "available")
    await hub.transfer(alice, cid, queue="support")
    await until(lambda: customer.participant is None and not customer.over, "the customer on hold out of the room")
    await until(lambda: offered(hub, bob, cid), "the callback offered to bob")
    await hub.accept(bob, cid)
    legs = await until(lambda: [leg for leg in phones.engine.client_legs(f"agent_{bob.id}") if leg["status"] == "ringing"], "bob's leg")
    phones.engine.answer(legs[0]["call_sid"])
    await until(lambda: customer.participant is not None and f"client:agent_{bob.id}" in
                {p.call.to for p in customer.participant.conference.participants.values()}, "the customer with bob")
    room = customer.participant.conference
    assert f"client:agent_{alice.id}" not in {p.call.to for p in room.participants.values()}
    assert len(_customer_calls(phones)) == 1 and not customer.over
    assert (await _callback(db, cb_id)).attempts == 1


async def test_a_connected_callback_is_warm_transferred_after_a_consultation(db: Database, phones: CallbackPhones) -> None:
    """The phone's warm transfer on a callback: alice consults bob (the customer held with music in the same room,
    bob's leg rung into it and reported through the callback's webhook), cancels once, consults again and completes:
    the customer talks with bob, alice's leg is gone, the customer was dialled once and the callback completes when
    bob hangs up."""
    alice = await _alice(db)
    async with db.transaction() as s:
        row = await agents_repo.create_agent(s, "bob", "pw-bob-1", display_name="Bob", capacity={"phone": 1})
    bob = AgentRef(row.id, row.username, row.display_name, row.role)  # type: ignore[arg-type]
    hub = hub_of(await phones.start_hub())
    phones.engine.phones[CUSTOMER] = "answer"
    status, body = await _post(phones, "/api/callbacks", {"number": CUSTOMER, "when": "now"})
    cb_id, cid = body["callback"]["id"], body["callback"]["conversation_id"]
    for agent in (alice, bob):
        await hub.agent_online(agent)
    await hub.set_status(alice, "available")
    await _accept_and_answer_leg(phones, hub, alice, cid)
    customer = (await until(lambda: _customer_calls(phones), "the customer dialled"))[0]
    await until(lambda: _state(db, cb_id, "connected"), "the callback connected")
    await until(lambda: customer.participant is not None, "the customer in the room")
    room = customer.participant.conference
    await hub.set_status(bob, "available")

    def labels(sid: str) -> set[str]:
        members = room.participants
        return {members[s].label or s for s in phones.engine.who_hears(room).get(sid, [])}

    def live_leg(agent: AgentRef) -> str | None:
        return next((leg["call_sid"] for leg in phones.engine.client_legs(f"agent_{agent.id}") if leg["status"] == "in-progress"), None)

    async def ring_and_answer_bob() -> str:
        legs = await until(lambda: [leg for leg in phones.engine.client_legs(f"agent_{bob.id}") if leg["status"] == "ringing"], "bob's leg rings")
        phones.engine.answer(legs[0]["call_sid"])
        return str(legs[0]["call_sid"])

    async def consult_state(state: str, times: int = 1) -> bool:
        async with db.session() as s:
            rows = (await s.exec(select(Interaction).where(Interaction.conversation_id == cid))).all()
        return sum((r.payload or {}).get("event") == f"consult_{state}" for r in rows) >= times

    result = await hub.call_action(alice, cid, "consult", f"agent:{bob.id}")
    assert result["consult"]["state"] == "ringing"
    await until(lambda: customer.participant is not None and customer.participant.hold, "the customer on hold")
    await ring_and_answer_bob()
    await until(lambda: consult_state("talking"), "bob's answer heard through the callback's webhook")
    alice_leg = live_leg(alice)
    assert alice_leg is not None and labels(alice_leg) == {f"agent_{bob.id}"} and labels(customer.sid) == set()
    await hub.call_action(alice, cid, "cancel_consult")  # the customer back with alice
    await until(lambda: not [leg for leg in phones.engine.client_legs(f"agent_{bob.id}") if leg["status"] == "in-progress"], "bob's leg removed")
    await until(lambda: not customer.participant.hold, "the customer off hold")
    await until(lambda: consult_state("cancelled"), "the consultation cancelled")
    assert labels(customer.sid) == {f"agent_{alice.id}"}
    presence = await hub.store.get_presence(bob.id)
    assert presence is not None and presence.load == {}  # his hold went with the consultation
    # again, and this time completed: bob has the customer, alice is out
    await hub.call_action(alice, cid, "consult", f"agent:{bob.id}")
    bob_leg = await ring_and_answer_bob()
    await until(lambda: consult_state("talking", 2), "bob answered again")
    await hub.call_action(alice, cid, "complete_transfer")
    await until(lambda: live_leg(alice) is None, "alice's leg gone")
    await until(lambda: customer.participant is not None and not customer.participant.hold, "the customer off hold")
    assert labels(customer.sid) == {f"agent_{bob.id}"}
    async with db.session() as s:
        from crm_store.models import Conversation

        conv = await s.get(Conversation, cid)
    assert conv is not None and conv.status == "assigned" and conv.assigned_agent_id == bob.id
    assert len(_customer_calls(phones)) == 1 and (await _callback(db, cb_id)).attempts == 1
    # bob's line now ends the call (EndConferenceOnExit moved to him): the callback completes
    phones.engine.hang_up(bob_leg)
    await until(lambda: _state(db, cb_id, "completed"), "the callback completed")
    assert [(e.code, e.detail) for e in phones.engine.errors] == []


async def test_an_agent_books_a_callback_for_tomorrow(db: Database, phones: CallbackPhones) -> None:
    await _alice(db)
    await phones.start_hub()
    status, body = await _post(phones, "/api/callbacks", {"number": CUSTOMER, "when": "now"})
    customer_id = (await _callback(db, body["callback"]["id"])).customer_id
    when = (datetime.now(timezone.utc) + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0).isoformat()
    async with aiohttp.ClientSession() as http:
        async with http.post(phones.base + f"/api/customers/{customer_id}/callbacks", json={"number": CUSTOMER, "when": when, "topic": "the refund"}) as resp:
            assert resp.status == 401  # agents and services only
        async with http.post(phones.base + f"/api/customers/{customer_id}/callbacks", headers={"Authorization": "Bearer t"},
                             json={"number": CUSTOMER, "when": when, "topic": "the refund"}) as resp:
            booked = await resp.json()
            assert resp.status == 201, booked
        async with http.post(phones.base + "/api/customers/999999/callbacks", headers={"Authorization": "Bearer t"},
                             json={"number": CUSTOMER, "when": when}) as resp:
            assert resp.status == 404
    row = await _callback(db, booked["callback"]["id"])
    assert (row.source, row.state, row.customer_id, row.topic) == ("agent", "scheduled", customer_id, "the refund")
    notes = [e for e in await _events(db) if e.get("event") == "callback_requested" and e.get("source") == "agent"]
    assert len(notes) == 1
    # "as soon as an agent is free" while the queue is closed: booked at its next opening too (no text: the agent says it)
    tomorrow = datetime.now(timezone.utc) + timedelta(days=1)
    await _queue_settings(db, callback_hours=f"{tomorrow.weekday()} 09:00-17:00")
    assert (await _post(phones, f"/api/callbacks/{body['callback']['id']}", {"token": body["cancel_token"]}, method="DELETE"))[0] == 200
    async with aiohttp.ClientSession() as http:
        async with http.post(phones.base + f"/api/customers/{customer_id}/callbacks", headers={"Authorization": "Bearer t"},
                             json={"number": CUSTOMER, "when": "now"}) as resp:
            closed = await resp.json()
    opening = tomorrow.replace(hour=9, minute=0, second=0, microsecond=0).isoformat()
    assert closed["closed"] is True and closed["scheduled_for"] == opening and closed["callback"]["requested_for"] == opening


async def test_an_attempt_with_no_news_is_failed_and_retried_not_stuck(db: Database, phones: CallbackPhones) -> None:
    from crm_store.repositories import callbacks as repo

    await _alice(db)
    hub = hub_of(await phones.start_hub())
    status, body = await _post(phones, "/api/callbacks", {"number": CUSTOMER, "when": "now"})
    cb_id = body["callback"]["id"]
    await until(lambda: _queued(db, cb_id), "queued")
    # a process claimed attempt 1 and died before dialling (no CallSid, no status callback will ever come)
    long_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    assert await repo.start_attempt(db, cb_id, agent_id=None, conversation_id=None, claimed_by="dead", now=long_ago) is not None
    async with db.transaction() as s:
        row = await s.get(Callback, cb_id)
        row.updated_at = long_ago
        s.add(row)
    await until(lambda: _state(db, cb_id, "scheduled"), "the stuck attempt failed and the callback rescheduled")
    row = await _callback(db, cb_id)
    assert row.attempts == 1 and row.last_outcome == "failed"


async def test_an_agent_on_their_own_phone_is_rung_there_for_a_callback(db: Database, phones: CallbackPhones) -> None:
    """Issue 14's own number with issue 15's agent-first dial: the agent's leg rings their number, not a softphone."""
    alice = await _alice(db)
    own = "+15005550177"
    async with db.transaction() as s:
        row = await s.get(Agent, alice.id)
        assert row is not None
        row.phone_number = own
        s.add(row)
    hub = hub_of(await phones.start_hub())
    phones.engine.phones[CUSTOMER] = "answer"
    phones.engine.phones[own] = "answer"
    status, body = await _post(phones, "/api/callbacks", {"number": "(415) 555-0142", "when": "now"})
    assert status == 201, body
    cid = body["callback"]["conversation_id"]
    await hub.agent_online(alice)
    await hub.set_status(alice, "available")
    await until(lambda: offered(hub, alice, cid), f"the callback's contact {cid} offered to alice")
    await hub.accept(alice, cid)
    customer = (await until(lambda: _customer_calls(phones), "the customer dialled"))[0]
    await until(lambda: customer.participant is not None and customer.participant.conference.started, "the bridge")
    assert {p.call.to for p in customer.participant.conference.participants.values()} == {CUSTOMER, own}
    assert phones.engine.client_legs(f"agent_{alice.id}") == []
    await until(lambda: _state(db, body["callback"]["id"], "connected"), "the callback connected")
    phones.engine.hang_up(customer.sid)
    assert [(e.code, e.url) for e in phones.engine.errors] == []
