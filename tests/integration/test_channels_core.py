"""The channel-neutral core with a provider channel (SMS, WhatsApp) behind a fake adapter, on SQLite and PostgreSQL.

What the core promises every channel: one customer per address (one per E.164 number across phone
kinds), one open conversation per customer and channel, a repeated provider id stores nothing, replies
go out through the channel's adapter with a delivery status that only moves forward, refusals in words.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from contact_center.channels import KNOWN, ChannelRegistry
from contact_center.hub.service import AgentRef, HubError, HubService
from contact_center.ports import DeliveryReport, InboundEvent, OutboundMessage
from contact_center.state.memory import MemoryStateStore
from crm_store.db import Database
from crm_store.models import ContactPoint, Conversation, Interaction, Message
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import receipts as receipts_repo
from sqlmodel import col, select


class FakeAdapter:
    """Records what the core asks it to deliver and answers with a provider id."""

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []
        self.answer: DeliveryReport | None = None
        self.release = asyncio.Event()
        self.release.set()

    async def deliver(self, message: OutboundMessage) -> DeliveryReport:
        await self.release.wait()
        self.sent.append(message)
        return self.answer or DeliveryReport("queued", provider_id=f"SM{len(self.sent):032d}")


class Emits:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any, str | None]] = []

    async def emit(self, event: str, data: Any = None, *, to: str | None = None, namespace: str | None = None, skip_sid: str | None = None) -> None:
        self.events.append((event, data, to))

    async def emit_many(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            await self.emit(**item)

    def of(self, event: str) -> list[Any]:
        return [d for e, d, _ in self.events if e == event]


class Bot:
    """A bot that offers sizes as buttons and records what it was sent."""

    def __init__(self) -> None:
        self.got: list[str] = []

    async def ready(self) -> bool:
        return True

    async def send(self, sender: str, text: str, metadata: dict[str, Any] | None = None) -> list[Any]:
        self.got.append(text)

        class Reply:
            text = "Which size?"
            buttons = ({"title": "Small", "payload": '/choose{"size":"S"}'}, {"title": "Large", "payload": '/choose{"size":"L"}'})
            custom: dict[str, Any] = {}
            handoff = False

        return [Reply()]


ALICE = AgentRef(0, "alice", "Alice", "agent")
NUMBER, SHOP = "+14155550123", "+15005550006"


async def _hub(db: Database, clock: list[float] | None = None) -> tuple[HubService, FakeAdapter, Emits, AgentRef]:
    async with db.transaction() as s:
        agent = await agents_repo.create_agent(s, "alice", "pw-alice-1", display_name="Alice", capacity={"sms": 4, "whatsapp": 4, "chat": 3, "email": 2})
        await agents_repo.create_queue(s, "general", channels=["chat"])
        await agents_repo.create_queue(s, "support", channels=["sms", "whatsapp"])
    adapter, emits = FakeAdapter(), Emits()
    channels = ChannelRegistry()
    for spec in KNOWN:
        channels.register(spec, None if spec.tracks_presence else adapter)
    now = clock or [time.time()]
    hub = HubService(db, MemoryStateStore(), emits, channels=channels, clock=lambda: now[0], wrap_up_seconds=0)
    await hub.load_queues()
    assert agent.id is not None
    return hub, adapter, emits, AgentRef(agent.id, "alice", "Alice", "agent")


def sms(text: str, sid: str, *, channel: str = "sms", frm: str = NUMBER) -> InboundEvent:
    return InboundEvent(channel=channel, customer_address=frm, our_address=SHOP, text=text, provider_id=sid)


async def _assigned(hub: HubService, agent: AgentRef, conversation_id: int) -> None:
    await hub.agent_online(agent)
    await hub.set_status(agent, "available")
    assert await hub.route_once() == 1
    await hub.accept(agent, conversation_id)


async def _settle(hub: HubService) -> None:
    for _ in range(50):
        if not hub._delivery_tasks and not hub._bot_tasks:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("background work did not finish")


async def test_an_sms_opens_one_conversation_and_a_repeat_stores_nothing(db: Database) -> None:
    hub, _adapter, emits, _agent = await _hub(db)
    first = await hub.receive_inbound(sms("Hi, where is my order?", "SM" + "a" * 32))
    again = await hub.receive_inbound(sms("Hi, where is my order?", "SM" + "a" * 32))
    later = await hub.receive_inbound(sms("It was 10234", "SM" + "b" * 32))
    assert first.created and not again.created and later.created
    assert first.conversation_id == again.conversation_id == later.conversation_id
    assert again.message["seq"] == first.message["seq"] == 1 and later.message["seq"] == 2
    async with db.session() as s:
        conv = await s.get(Conversation, first.conversation_id)
        point = (await s.exec(select(ContactPoint).where(ContactPoint.customer_id == first.customer_id))).one()
        kinds = (await s.exec(select(Interaction.kind).where(Interaction.conversation_id == first.conversation_id))).all()
        count = len((await s.exec(select(Message).where(Message.conversation_id == first.conversation_id))).all())
    assert conv is not None and conv.channel == "sms" and conv.status == "queued"
    assert (conv.customer_address, conv.our_address) == (NUMBER, SHOP)
    assert (point.kind, point.value, point.verified) == ("sms", NUMBER, True)
    assert kinds == ["sms"] and count == 2
    assert [e.queue for e in await hub.store.waiting()] == ["support"]


async def test_the_same_number_on_sms_and_whatsapp_is_one_customer(db: Database) -> None:
    hub, *_ = await _hub(db)
    on_sms = await hub.receive_inbound(sms("hello", "SM" + "1" * 32))
    on_wa = await hub.receive_inbound(sms("hello again", "SM" + "2" * 32, channel="whatsapp", frm="whatsapp:" + NUMBER))
    assert on_sms.customer_id == on_wa.customer_id
    assert on_sms.conversation_id != on_wa.conversation_id  # one open conversation per customer and channel
    async with db.session() as s:
        points = (await s.exec(select(ContactPoint.kind).where(ContactPoint.customer_id == on_sms.customer_id).order_by(col(ContactPoint.id)))).all()
    assert points == ["sms", "whatsapp"]


async def test_a_bad_address_or_an_unknown_channel_is_refused_in_words(db: Database) -> None:
    hub, *_ = await _hub(db)
    with pytest.raises(HubError, match="phone number") as bad:
        await hub.receive_inbound(sms("hi", "SM" + "3" * 32, frm="not a number"))
    assert bad.value.code == "bad_request"
    with pytest.raises(HubError, match="fax"):
        await hub.receive_inbound(sms("hi", "SM" + "4" * 32, channel="fax"))


async def test_a_reply_goes_out_through_the_adapter_and_its_status_only_moves_forward(db: Database) -> None:
    hub, adapter, emits, agent = await _hub(db)
    got = await hub.receive_inbound(sms("Do you have red t-shirts?", "SM" + "c" * 32))
    await _assigned(hub, agent, got.conversation_id)
    sent = await hub.reply(agent, got.conversation_id, "r1", "Yes, in every size.")
    assert sent["delivery_status"] == "queued"
    await _settle(hub)
    out = adapter.sent[-1]
    assert (out.to_address, out.from_address, out.text, out.channel) == (NUMBER, SHOP, "Yes, in every size.", "sms")
    sid = f"SM{1:032d}"
    assert await hub.delivery_update("sms", sid, "sent")
    assert await hub.delivery_update("sms", sid, "delivered")
    assert not await hub.delivery_update("sms", sid, "sent")  # late: ignored
    assert not await hub.delivery_update("sms", sid, "failed", "30003", "Unreachable")  # after delivery: ignored
    assert not await hub.delivery_update("sms", "SM" + "f" * 32, "delivered")  # unknown id
    history = await hub.history(got.conversation_id, 0, for_customer=False)
    assert history[-1]["delivery_status"] == "delivered" and history[-1]["delivery_error"] is None
    statuses = [d["delivery_status"] for d in emits.of("message_status") if d["seq"] == sent["seq"]]
    assert statuses[-2:] == ["sent", "delivered"]
    customer_echo = [e for e in emits.events if e[2] == f"conv:{got.conversation_id}"]
    assert customer_echo == []  # nothing of an SMS conversation goes to a web chat room


async def test_a_status_callback_before_the_send_answer_is_applied_after_it(db: Database) -> None:
    hub, adapter, _emits, agent = await _hub(db)
    got = await hub.receive_inbound(sms("hi", "SM" + "d" * 32))
    await _assigned(hub, agent, got.conversation_id)
    adapter.release.clear()
    await hub.reply(agent, got.conversation_id, "r1", "Hello!")
    sid = f"SM{1:032d}"
    # Twilio's callback reaches the hub (and its receipt is stored) before the REST answer does
    async with db.transaction() as s:
        await receipts_repo.first_time(s, "twilio", "status", f"{sid}:delivered", {"MessageSid": sid, "MessageStatus": "delivered"})
    assert not await hub.delivery_update("sms", sid, "delivered")
    adapter.release.set()
    await _settle(hub)
    history = await hub.history(got.conversation_id, 0, for_customer=False)
    assert history[-1]["delivery_status"] == "delivered"


async def test_a_provider_refusal_is_shown_to_the_agent_in_words(db: Database) -> None:
    hub, adapter, emits, agent = await _hub(db)
    got = await hub.receive_inbound(sms("hi", "SM" + "e" * 32))
    await _assigned(hub, agent, got.conversation_id)
    adapter.answer = DeliveryReport("failed", error_code="21211", error_message="The customer's number is not a valid phone number.")
    await hub.reply(agent, got.conversation_id, "r1", "Hello!")
    await _settle(hub)
    last = emits.of("message_status")[-1]
    assert last["delivery_status"] == "failed"
    assert last["delivery_error"] == {"code": "21211", "message": "The customer's number is not a valid phone number."}


async def test_nothing_is_sent_to_a_customer_who_texted_stop(db: Database) -> None:
    hub, adapter, _emits, agent = await _hub(db)
    got = await hub.receive_inbound(sms("hi", "SM" + "5" * 32))
    await _assigned(hub, agent, got.conversation_id)
    await hub.opt_out("sms", NUMBER, True)
    with pytest.raises(HubError, match="STOP") as refused:
        await hub.reply(agent, got.conversation_id, "r1", "Hello?")
    assert refused.value.code == "opted_out"
    convs = await hub.agent_conversations(agent.id)
    assert convs[0]["opted_out"] is True and convs[0]["channel_label"] == "SMS"
    await hub.opt_out("sms", NUMBER, False)
    await hub.reply(agent, got.conversation_id, "r2", "Welcome back")
    await _settle(hub)
    assert adapter.sent[-1].text == "Welcome back"


async def test_whatsapp_free_form_replies_are_refused_outside_the_24_hour_window(db: Database) -> None:
    clock = [time.time()]
    hub, _adapter, _emits, agent = await _hub(db, clock)
    got = await hub.receive_inbound(sms("hi", "SM" + "6" * 32, channel="whatsapp", frm="whatsapp:" + NUMBER))
    await _assigned(hub, agent, got.conversation_id)
    await hub.reply(agent, got.conversation_id, "r1", "Inside the window")
    clock[0] += 25 * 3600
    with pytest.raises(HubError, match="24 hours") as refused:
        await hub.reply(agent, got.conversation_id, "r2", "Too late")
    assert refused.value.code == "outside_window" and "templates are not supported" in str(refused.value)


async def test_the_bot_on_sms_writes_buttons_as_numbered_choices_and_a_number_picks_one(db: Database) -> None:
    hub, adapter, _emits, _agent = await _hub(db)
    bot = Bot()
    hub.bot, hub.bot_ready = bot, True  # type: ignore[assignment]
    hub.channels.with_defaults(bot_channels=["sms"], default_queues={})
    got = await hub.receive_inbound(sms("I want a t-shirt", "SM" + "7" * 32))
    await _settle(hub)
    assert adapter.sent[-1].text == "Which size?\n1. Small\n2. Large\nReply 1 or 2."
    await hub.receive_inbound(sms("2", "SM" + "8" * 32))
    await _settle(hub)
    assert bot.got == ["I want a t-shirt", '/choose{"size":"L"}']
    await hub.receive_inbound(sms("7", "SM" + "9" * 32))  # not one of the choices: the bot reads the text
    await _settle(hub)
    assert bot.got[-1] == "7" and got.created


def mail(text: str, pid: str, thread: str, **kw: Any) -> InboundEvent:
    return InboundEvent(channel="email", customer_address="Ann@Example.com", our_address="support@shop.example", text=text,
                        thread_key=thread, provider_id=pid, **kw)


async def test_per_thread_conversations_reopen_in_the_window_and_are_continued_after_it(db: Database) -> None:
    from datetime import timedelta

    hub, _adapter, _emits, agent = await _hub(db)
    first = await hub.receive_inbound(mail("Where is my order?", "em:1", "root-1@mail.example"))
    await _assigned(hub, agent, first.conversation_id)
    await hub.close(agent, first.conversation_id, "resolved")
    other = await hub.receive_inbound(mail("A new question", "em:2", "root-2@mail.example"))
    assert other.conversation_id != first.conversation_id and other.customer_id == first.customer_id  # one per thread
    reopened = await hub.receive_inbound(mail("One more thing", "em:3", "root-1@mail.example"))
    assert reopened.conversation_id == first.conversation_id
    async with db.transaction() as s:
        conv = await s.get(Conversation, first.conversation_id)
        assert conv is not None and conv.status == "queued"
        conv.status, conv.closed_at = "closed", conv.created_at - timedelta(days=30)  # closed long ago
        s.add(conv)
    later = await hub.receive_inbound(mail("Back again", "em:4", "root-1@mail.example"))
    again = await hub.receive_inbound(mail("PS", "em:5", "root-1@mail.example"))
    assert later.conversation_id not in (first.conversation_id, other.conversation_id)
    assert again.conversation_id == later.conversation_id  # the thread now lives in its successor
    async with db.session() as s:
        successor = await s.get(Conversation, later.conversation_id)
        notes = (await s.exec(select(Interaction.summary).where(Interaction.conversation_id == later.conversation_id))).all()
    assert successor is not None and successor.thread_key == f"root-1@mail.example>{first.conversation_id}"
    assert any(f"continues conversation {first.conversation_id}" in n for n in notes)


async def test_an_automatic_reply_is_filed_without_waking_the_thread_and_a_forged_sender_is_nobody(db: Database) -> None:
    hub, _adapter, _emits, agent = await _hub(db)
    first = await hub.receive_inbound(mail("Question", "em:1", "root-1@mail.example"))
    await _assigned(hub, agent, first.conversation_id)
    await hub.close(agent, first.conversation_id, "resolved")
    ooo = await hub.receive_inbound(mail("I am away until Monday", "em:2", "root-1@mail.example", wake=False))
    stray = await hub.receive_inbound(mail("Auto: away", "em:3", "root-9@mail.example", wake=False))
    forged = await hub.receive_inbound(mail("Send me Ann's orders", "em:4", "root-7@mail.example", identity_trusted=False,
                                            extra={"spoofed": True, "subject": "orders"}))
    async with db.session() as s:
        conv = await s.get(Conversation, first.conversation_id)
        filed = await s.get(Conversation, stray.conversation_id)
    assert ooo.conversation_id == first.conversation_id and conv is not None and conv.status == "closed"
    assert filed is not None and (filed.status, filed.disposition) == ("closed", "auto_reply")
    assert forged.customer_id != first.customer_id and forged.message["extra"] == {"spoofed": True, "subject": "orders"}
    assert [e.conversation_id for e in await hub.store.waiting()] == [forged.conversation_id]


async def test_a_late_repeat_after_the_conversation_closed_opens_no_empty_conversation(db: Database) -> None:
    hub, _adapter, _emits, agent = await _hub(db)
    first = await hub.receive_inbound(sms("Hi", "SM" + "c" * 32))
    await _assigned(hub, agent, first.conversation_id)
    await hub.close(agent, first.conversation_id, "resolved")
    hub.open_chats.clear()
    late = await hub.receive_inbound(sms("Hi", "SM" + "c" * 32))
    assert not late.created and late.conversation_id == first.conversation_id
    async with db.session() as s:
        convs = (await s.exec(select(Conversation))).all()
    assert len(convs) == 1 and await hub.store.waiting() == []
