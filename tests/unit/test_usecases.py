"""The conversation use cases on in-memory fakes of their ports: no database, no sockets, no provider.

Each test builds a Hub context over the fake repository and notifier (tests/unit/fakes/hub.py), the
in-process state store, and a channel registry, and drives the use cases the way the adapters do.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest

from contact_center.channels import SMS, WEB_CHAT, ChannelRegistry
from contact_center.domain.channels import ChannelSpec, ConversationPolicy
from contact_center.ports import InboundEvent
from contact_center.state.memory import MemoryStateStore
from contact_center.usecases import inbound, offers, outbound, rebuild, replies, router, transfer_close
from contact_center.usecases.context import Hub
from contact_center.usecases.errors import HubError
from tests.unit.fakes.hub import MemoryConversations, RecordingAdapter, RecordingNotifier

ALICE = SimpleNamespace(id=7, username="alice", display_name="Alice", role="agent")
BOB = SimpleNamespace(id=8, username="bob", display_name="Bob", role="agent")

# a per-thread channel the hub has never heard of, registered by the test alone: no use case changes
LETTERS = ChannelSpec(
    name="letters", label="Letters", contact_kind="sms", interaction_kind="note",
    policy=ConversationPolicy.PER_THREAD, concurrency=2.0, max_text=10_000, noun="letter thread",
)


async def _hub(*, bot: Any = None) -> tuple[Hub, MemoryConversations, RecordingNotifier, RecordingAdapter]:
    repo, notify, adapter = MemoryConversations(), RecordingNotifier(), RecordingAdapter()
    channels = ChannelRegistry()
    channels.register(WEB_CHAT)
    channels.register(SMS, adapter)
    channels.register(LETTERS, adapter)
    hub = Hub(repo, MemoryStateStore(), notify, channels=channels, wrap_up_seconds=0)
    hub.bot, hub.bot_ready = bot, bot is not None
    repo.add_agent(ALICE.id, ALICE.display_name)
    repo.add_agent(BOB.id, BOB.display_name)
    await rebuild.load_queues(hub)
    return hub, repo, notify, adapter


async def _settle(hub: Hub) -> None:
    for _ in range(5):
        await asyncio.gather(*hub.delivery_tasks, *hub.bot_tasks)
        await asyncio.sleep(0)


async def _online(hub: Hub, agent: Any) -> None:
    await offers.agent_online(hub, agent)
    await offers.set_status(hub, agent, "available")


def _sms(text: str, sid: str, frm: str = "+14155550123", **kw: Any) -> InboundEvent:
    return InboundEvent(channel="sms", customer_address=frm, our_address="+15005550006", text=text, provider_id=sid, **kw)


async def test_an_sms_opens_one_conversation_per_customer_and_a_repeat_stores_nothing() -> None:
    hub, repo, notify, _ = await _hub()
    first = await inbound.receive_inbound(hub, _sms("hello", "SM1"))
    again = await inbound.receive_inbound(hub, _sms("hello", "SM1"))
    second = await inbound.receive_inbound(hub, _sms("more", "SM2"))
    assert first.created and not again.created and second.created
    assert first.conversation_id == again.conversation_id == second.conversation_id
    assert [m.body for m in repo.of(first.conversation_id)] == ["hello", "more"]
    assert [e.conversation_id for e in await hub.store.waiting()] == [first.conversation_id]
    assert [n.kind for _, _, n in repo.timeline] == ["sms"]  # one "started" entry, not one per message


async def test_a_bad_address_is_refused_and_nothing_is_stored() -> None:
    hub, repo, _, _ = await _hub()
    with pytest.raises(HubError) as err:
        await inbound.receive_inbound(hub, _sms("hi", "SM1", frm="not-a-number"))
    assert err.value.code == "bad_request"
    assert repo.msgs == [] and repo.convs == {}


async def test_a_new_message_in_a_closed_thread_reopens_it_into_the_queue() -> None:
    hub, repo, _, _ = await _hub()
    res = await inbound.receive_inbound(hub, InboundEvent(channel="letters", customer_address="+14155550124", text="dear shop",
                                                          thread_key="T-1", provider_id="L1"))
    repo.convs[res.conversation_id].status = "closed"
    await hub.store.release(res.conversation_id, hub.clock())
    again = await inbound.receive_inbound(hub, InboundEvent(channel="letters", customer_address="+14155550124", text="PS",
                                                            thread_key="T-1", provider_id="L2"))
    other = await inbound.receive_inbound(hub, InboundEvent(channel="letters", customer_address="+14155550124", text="new topic",
                                                            thread_key="T-2", provider_id="L3"))
    assert again.conversation_id == res.conversation_id
    assert repo.convs[res.conversation_id].status == "queued"
    assert other.conversation_id != res.conversation_id  # one conversation per thread, not per customer
    assert {e.conversation_id for e in await hub.store.waiting()} == {res.conversation_id, other.conversation_id}


async def test_offer_accept_reply_delivers_through_the_adapter_and_status_only_moves_forward() -> None:
    hub, repo, notify, adapter = await _hub()
    res = await inbound.receive_inbound(hub, _sms("where is my order?", "SM1"))
    await _online(hub, ALICE)
    assert await router.route_once(hub) == 1
    assert notify.events("agent").count("offer") == 1
    joined = await offers.accept(hub, ALICE, res.conversation_id)
    assert joined["status"] == "assigned" and joined["customer_name"] == "+14155550123"
    sent = await replies.reply(hub, ALICE, res.conversation_id, "c-1", "It ships today")
    await _settle(hub)
    assert [m.text for m in adapter.delivered] == ["It ships today"]
    assert adapter.delivered[0].to_address == "+14155550123" and adapter.delivered[0].from_address == "+15005550006"
    assert sent["delivery_status"] == "queued"
    assert await outbound.delivery_update(hub, "sms", "P1", "delivered")
    assert not await outbound.delivery_update(hub, "sms", "P1", "sent")  # late: never backwards
    assert (await repo.message_at(res.conversation_id, sent["seq"])).delivery_status == "delivered"
    assert "message_status" in notify.events("agent")


async def test_a_resent_reply_is_stored_once() -> None:
    hub, repo, _, adapter = await _hub()
    res = await inbound.receive_inbound(hub, _sms("hi", "SM1"))
    await _online(hub, ALICE)
    await router.route_once(hub)
    await offers.accept(hub, ALICE, res.conversation_id)
    a = await replies.reply(hub, ALICE, res.conversation_id, "same", "Hello")
    b = await replies.reply(hub, ALICE, res.conversation_id, "same", "Hello")
    await _settle(hub)
    assert a["seq"] == b["seq"] and len(adapter.delivered) == 1


async def test_opted_out_customers_get_nothing_and_the_agent_is_told_why() -> None:
    hub, repo, _, adapter = await _hub()
    res = await inbound.receive_inbound(hub, _sms("hi", "SM1"))
    await _online(hub, ALICE)
    await router.route_once(hub)
    await offers.accept(hub, ALICE, res.conversation_id)
    await inbound.opt_out(hub, "sms", "+14155550123", True)
    with pytest.raises(HubError) as err:
        await replies.reply(hub, ALICE, res.conversation_id, "c-1", "Hello?")
    assert err.value.code == "opted_out" and "START" in str(err.value)
    assert [m.sender_kind for m in repo.of(res.conversation_id)] == ["customer"] and adapter.delivered == []


async def test_only_the_assigned_agent_may_reply_and_a_closed_conversation_takes_nothing() -> None:
    hub, repo, _, _ = await _hub()
    res = await inbound.receive_inbound(hub, _sms("hi", "SM1"))
    await _online(hub, ALICE)
    await router.route_once(hub)
    await offers.accept(hub, ALICE, res.conversation_id)
    with pytest.raises(HubError) as err:
        await replies.reply(hub, BOB, res.conversation_id, "x", "mine now")
    assert err.value.code == "forbidden"
    await transfer_close.close(hub, ALICE, res.conversation_id, "resolved")
    with pytest.raises(HubError) as err:
        await transfer_close.close(hub, ALICE, res.conversation_id, "resolved")
    assert err.value.code == "conflict"
    assert repo.convs[res.conversation_id].disposition == "resolved"
    assert await hub.store.assignment_of(res.conversation_id) is None


async def test_an_accept_after_the_conversation_was_closed_is_refused_and_the_claim_given_back() -> None:
    hub, repo, _, _ = await _hub()
    res = await inbound.receive_inbound(hub, _sms("hi", "SM1"))
    await _online(hub, ALICE)
    await router.route_once(hub)
    repo.convs[res.conversation_id].status = "closed"  # closed by another node meanwhile
    with pytest.raises(HubError) as err:
        await offers.accept(hub, ALICE, res.conversation_id)
    assert err.value.code == "conflict"
    presence = await hub.store.get_presence(ALICE.id)
    assert presence is not None and not presence.load  # Alice's capacity is free again


async def test_a_transfer_keeps_the_place_in_line_and_tells_the_customer() -> None:
    hub, repo, notify, adapter = await _hub()
    res = await inbound.receive_inbound(hub, _sms("hi", "SM1"))
    enqueued_at = (await hub.store.waiting())[0].enqueued_at
    await _online(hub, ALICE)
    await router.route_once(hub)
    await offers.accept(hub, ALICE, res.conversation_id)
    await transfer_close.transfer(hub, ALICE, res.conversation_id, to_agent=BOB.id, note="billing")
    await _settle(hub)
    waiting = await hub.store.waiting()
    assert [(e.conversation_id, e.enqueued_at, e.pinned_agent) for e in waiting] == [(res.conversation_id, enqueued_at, BOB.id)]
    assert repo.convs[res.conversation_id].status == "queued" and repo.convs[res.conversation_id].assigned_agent_id is None
    assert [m.text for m in adapter.delivered] == ["You are being transferred to a colleague who can help further."]


async def test_an_agent_who_goes_away_loses_no_conversation() -> None:
    hub, repo, _, _ = await _hub()
    res = await inbound.receive_inbound(hub, _sms("hi", "SM1"))
    await _online(hub, ALICE)
    await router.route_once(hub)
    await offers.accept(hub, ALICE, res.conversation_id)
    assert await offers.agent_gone(hub, ALICE.id) == 1
    assert repo.convs[res.conversation_id].status == "queued"
    assert [e.conversation_id for e in await hub.store.waiting()] == [res.conversation_id]


class _Bot:
    def __init__(self, replies_: list[Any]) -> None:
        self.replies, self.seen = replies_, []

    async def send(self, sender: str, text: str, metadata: dict[str, Any] | None = None) -> list[Any]:
        self.seen.append(text)
        return self.replies

    async def ready(self) -> bool:
        return True


def _reply(text: str = "", buttons: tuple[dict[str, str], ...] = (), handoff: bool = False, **custom: Any) -> Any:
    return SimpleNamespace(text=text, buttons=buttons, custom=custom, handoff=handoff)


async def test_the_bot_answers_first_with_numbered_choices_and_a_bare_number_picks_one() -> None:
    bot = _Bot([_reply("Which size?", ({"title": "Small", "payload": "/size{\"s\":\"S\"}"}, {"title": "Large", "payload": "/size{\"s\":\"L\"}"}))])
    hub, repo, _, adapter = await _hub(bot=bot)
    hub.channels.with_defaults(bot_channels=["sms"])
    res = await inbound.receive_inbound(hub, _sms("a t-shirt", "SM1"))
    await _settle(hub)
    assert repo.convs[res.conversation_id].status == "bot"
    assert adapter.delivered[0].text == "Which size?\n1. Small\n2. Large\nReply 1 or 2."
    await inbound.receive_inbound(hub, _sms("2", "SM2"))
    await _settle(hub)
    assert bot.seen == ["a t-shirt", "/size{\"s\":\"L\"}"]
    assert await hub.store.waiting() == []  # with the bot, not in a queue


async def test_a_handoff_queues_the_conversation_with_the_bots_context_for_the_agent() -> None:
    bot = _Bot([_reply("Passing you to a colleague."), _reply(handoff=True, reason="customer_request", intent="order",
                                                               slots={"product": "t-shirt", "quantity": 2})])
    hub, repo, _, _ = await _hub(bot=bot)
    hub.channels.with_defaults(bot_channels=["sms"])
    res = await inbound.receive_inbound(hub, _sms("a person please", "SM1"))
    await _settle(hub)
    conv = repo.convs[res.conversation_id]
    assert conv.status == "queued" and conv.queued_at is not None
    note = [m for m in repo.of(res.conversation_id) if m.internal][0]
    assert "the customer asked for a person" in note.body and "product=t-shirt" in note.body
    assert [e.conversation_id for e in await hub.store.waiting()] == [res.conversation_id]


async def test_bot_down_hands_over_and_the_customer_is_told() -> None:
    class Down(_Bot):
        async def send(self, sender: str, text: str, metadata: dict[str, Any] | None = None) -> list[Any]:
            raise ConnectionError("refused")

    hub, repo, _, adapter = await _hub(bot=Down([]))
    hub.channels.with_defaults(bot_channels=["sms"])
    res = await inbound.receive_inbound(hub, _sms("hi", "SM1"))
    await _settle(hub)
    assert repo.convs[res.conversation_id].status == "queued"
    assert "not available" in adapter.delivered[0].text


async def test_web_chat_customers_get_events_on_their_connection_and_abandon_when_they_leave() -> None:
    hub, repo, notify, adapter = await _hub()
    customer = await inbound.identify_visitor(hub, "visitor-1", "Ann")
    sent = await inbound.customer_message(hub, customer.id, "c-1", "hello", origin_sid="sid-1")
    again = await inbound.customer_message(hub, customer.id, "c-1", "hello", origin_sid="sid-1")
    assert sent["created"] and not again["created"] and sent["message"]["seq"] == again["message"]["seq"]
    assert adapter.delivered == []  # a live channel has no adapter
    hub.abandon_grace = 0  # the grace period is over
    assert await transfer_close.customer_left(hub, customer.id)
    assert repo.convs[sent["conversation_id"]].disposition == "abandoned"
    fresh = await inbound.customer_message(hub, customer.id, "c-2", "back again")
    assert fresh["conversation_id"] != sent["conversation_id"]


async def test_a_supervisor_watch_gets_the_messages_live() -> None:
    from contact_center.usecases import supervision

    hub, repo, notify, _ = await _hub()
    sam = SimpleNamespace(id=9, username="sam", display_name="Sam", role="supervisor")
    res = await inbound.receive_inbound(hub, _sms("hi", "SM1"))
    with pytest.raises(HubError):
        await supervision.monitor(hub, ALICE, res.conversation_id, "w1")
    watched = await supervision.monitor(hub, sam, res.conversation_id, "w1")
    assert [m["text"] for m in watched["messages"]] == ["hi"]
    await inbound.receive_inbound(hub, _sms("still there?", "SM2"))
    assert [n.data["text"] for n in notify.sent if n.audience == "watchers"] == ["still there?"]


def test_adding_a_channel_is_data() -> None:
    # the per-thread LETTERS channel above went through inbound, routing and delivery with no use case
    # knowing it; this asserts the registry is the only place a channel is named
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2] / "contact_center" / "usecases"
    for path in root.glob("*.py"):
        text = path.read_text()
        for name in ('"chat"', '"sms"', '"whatsapp"', '"voice"', '"email"'):
            assert name not in text, f"{path.name} names the channel {name}"
    assert replace(LETTERS, name="x").policy is ConversationPolicy.PER_THREAD


async def test_a_returning_texter_into_an_open_conversation_takes_the_hot_path() -> None:
    hub, repo, notify, _ = await _hub()
    first = await inbound.receive_inbound(hub, _sms("hello", "SM1"))
    assert repo.resolves == 1 and repo.fast_appends == 0
    second = await inbound.receive_inbound(hub, _sms("second", "SM2"))
    repeat = await inbound.receive_inbound(hub, _sms("second", "SM2"))
    assert repo.resolves == 1 and repo.fast_appends == 2  # a point read and one append each, no transaction
    assert second.conversation_id == first.conversation_id and second.created and not repeat.created
    assert [m.body for m in repo.of(first.conversation_id)] == ["hello", "second"]
    # written to another of our numbers: the full path (replies must go from the number last written to)
    other = await inbound.receive_inbound(hub, replace(_sms("third", "SM3"), our_address="+15005550007"))
    assert other.conversation_id == first.conversation_id and repo.fast_appends == 2
    assert repo.convs[first.conversation_id].our_address == "+15005550007"
    # closed meanwhile (another node): the hot path misses and a new conversation opens
    repo.convs[first.conversation_id].status = "closed"
    fresh = await inbound.receive_inbound(hub, replace(_sms("new day", "SM4"), our_address="+15005550007"))
    assert fresh.conversation_id != first.conversation_id


def _letter(text: str, mid: str, thread: str, **kw: Any) -> InboundEvent:
    return InboundEvent(channel="letters", customer_address="+14155550124", text=text, thread_key=thread, provider_id=mid, **kw)


async def test_a_thread_closed_longer_than_the_window_is_continued_by_a_linked_new_conversation() -> None:
    hub, repo, _, _ = await _hub()
    hub.channels.register(replace(LETTERS, reopen_window_seconds=3600), hub.channels.adapter("letters"))
    first = await inbound.receive_inbound(hub, _letter("dear shop", "L1", "T-1"))
    conv = repo.convs[first.conversation_id]
    conv.status, conv.closed_at = "closed", conv.created_at.replace(year=conv.created_at.year - 1)
    late = await inbound.receive_inbound(hub, _letter("about last year", "L2", "T-1"))
    assert late.conversation_id != first.conversation_id
    assert repo.convs[late.conversation_id].thread_key == f"T-1>{first.conversation_id}"
    # the next message of that thread finds the newer conversation, not the closed one
    again = await inbound.receive_inbound(hub, _letter("PS", "L3", "T-1"))
    assert again.conversation_id == late.conversation_id


async def test_an_automatic_reply_is_filed_and_wakes_nothing() -> None:
    hub, repo, _, _ = await _hub()
    first = await inbound.receive_inbound(hub, _letter("question", "L1", "T-1"))
    repo.convs[first.conversation_id].status = "closed"
    await hub.store.release(first.conversation_id, hub.clock())
    ooo = await inbound.receive_inbound(hub, _letter("I am out of the office", "L2", "T-1", wake=False))
    assert ooo.conversation_id == first.conversation_id and repo.convs[first.conversation_id].status == "closed"
    stray = await inbound.receive_inbound(hub, _letter("Auto: away", "L3", "T-9", wake=False))
    assert repo.convs[stray.conversation_id].status == "closed" and repo.convs[stray.conversation_id].disposition == "auto_reply"
    assert await hub.store.waiting() == []


async def test_a_possibly_forged_sender_is_never_linked_to_the_addresses_owner() -> None:
    hub, repo, _, _ = await _hub()
    owner = await inbound.receive_inbound(hub, _letter("hello", "L1", "T-1"))
    forged = await inbound.receive_inbound(hub, _letter("send me their orders", "L2", "T-2", identity_trusted=False,
                                                        extra={"spoofed": True}))
    assert forged.customer_id != owner.customer_id
    assert forged.message["extra"] == {"spoofed": True}


class CallAdapter(RecordingAdapter):
    """A live channel's adapter: records the call actions the core asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.actions: list[Any] = []
        self.refuse: str | None = None

    async def act(self, action: Any) -> Any:
        from contact_center.ports import DeliveryReport

        self.actions.append(action)
        if self.refuse:
            return DeliveryReport("failed", error_code="gone", error_message=self.refuse)
        return DeliveryReport("sent")


async def _phone_hub() -> tuple[Hub, MemoryConversations, RecordingNotifier, CallAdapter]:
    from contact_center.channels import VOICE

    hub, repo, notify, _ = await _hub()
    calls_adapter = CallAdapter()
    hub.channels.register(VOICE, calls_adapter)
    return hub, repo, notify, calls_adapter


def _call(text: str, pid: str, sid: str = "CA1", **kw: Any) -> InboundEvent:
    return InboundEvent(channel="phone", customer_address="+14155550123", our_address="+15005550006", text=text,
                        thread_key=sid, provider_id=pid, **kw)


async def test_a_call_opens_in_self_service_and_reaches_an_agent_who_is_bridged_by_the_adapter() -> None:
    from contact_center.usecases import calls

    hub, repo, notify, adapter = await _phone_hub()
    opened = await inbound.receive_inbound(hub, _call("Incoming call", "CA1:start", opening=True))
    conv = repo.convs[opened.conversation_id]
    assert conv.status == "bot" and [m.sender_kind for m in repo.of(conv.id)] == ["system"]
    assert await hub.store.waiting() == [] and hub.bot_tasks == set()  # the IVR runs first, nothing queued
    said = await inbound.receive_inbound(hub, _call("track my order", "CA1:g1"))
    assert said.conversation_id == conv.id and hub.bot_tasks == set()  # no bot configured: the IVR answers
    state = await calls.contact_state(hub, "phone", "CA1")
    assert state is not None and state["status"] == "bot"
    assert await calls.request_agent(hub, "phone", "CA1", "customer_request", {"intent": "track_order"})
    state = await calls.contact_state(hub, "phone", "CA1")
    assert state is not None and state["status"] == "queued" and state["queue"]["position"] == 1
    await _online(hub, ALICE)
    await router.route_once(hub)
    await offers.accept(hub, ALICE, conv.id)
    await _settle(hub)
    assert [(a.kind, a.thread_key, a.agent_id) for a in adapter.actions] == [("connect_agent", "CA1", ALICE.id)]
    held = await calls.call_action(hub, ALICE, conv.id, "hold")
    assert held["status"] == "sent" and adapter.actions[-1].kind == "hold"
    with pytest.raises(HubError):
        await calls.call_action(hub, ALICE, conv.id, "teleport")
    with pytest.raises(HubError):
        await calls.call_action(hub, BOB, conv.id, "hold")  # not Bob's call
    adapter.refuse = "the caller has hung up"
    with pytest.raises(HubError, match="hung up"):
        await calls.call_action(hub, ALICE, conv.id, "mute")


async def test_a_caller_who_hangs_up_while_waiting_has_abandoned() -> None:
    from contact_center.usecases import calls

    hub, repo, notify, _ = await _phone_hub()
    opened = await inbound.receive_inbound(hub, _call("Incoming call", "CA2:start", sid="CA2", opening=True))
    await calls.request_agent(hub, "phone", "CA2", "customer_request")
    await _online(hub, ALICE)
    await router.route_once(hub)  # offered to Alice
    assert await calls.contact_ended(hub, "phone", "CA2", "completed")
    conv = repo.convs[opened.conversation_id]
    assert (conv.status, conv.disposition) == ("closed", "abandoned")
    assert "offer_revoked" in notify.events("agent")
    assert not await calls.contact_ended(hub, "phone", "CA2", "completed")  # a repeat changes nothing


async def test_a_hang_up_with_an_agent_leaves_the_wrap_up_to_the_agent_and_a_transfer_puts_the_caller_back() -> None:
    from contact_center.usecases import calls

    hub, repo, notify, adapter = await _phone_hub()
    opened = await inbound.receive_inbound(hub, _call("Incoming call", "CA3:start", sid="CA3", opening=True))
    await calls.request_agent(hub, "phone", "CA3", "customer_request")
    await _online(hub, ALICE)
    await router.route_once(hub)
    await offers.accept(hub, ALICE, opened.conversation_id)
    await transfer_close.transfer(hub, ALICE, opened.conversation_id, queue="support")
    assert adapter.actions[-1].kind == "requeue"
    await _online(hub, BOB)
    await offers.set_status(hub, ALICE, "away")
    await router.route_once(hub)
    await offers.accept(hub, BOB, opened.conversation_id)
    await _settle(hub)
    assert adapter.actions[-1].kind == "connect_agent" and adapter.actions[-1].agent_id == BOB.id
    with pytest.raises(HubError, match="cannot be handed back"):
        from contact_center.usecases import bot_turns

        hub.bot, hub.bot_ready = object(), True
        await bot_turns.hand_back(hub, BOB, opened.conversation_id)
    assert not await calls.contact_ended(hub, "phone", "CA3", "completed")
    assert repo.convs[opened.conversation_id].status == "assigned"
    assert [n.data["status"] for n in notify.sent if n.event == "call_status"] == ["ended"]
    await transfer_close.close(hub, BOB, opened.conversation_id, "resolved")
    assert adapter.actions[-1].kind == "hang_up"


async def test_settled_waits_for_the_bots_turn_and_what_it_delivers() -> None:
    class SlowBot(_Bot):
        async def send(self, sender: str, text: str, metadata: dict[str, Any] | None = None) -> list[Any]:
            await asyncio.sleep(0.05)
            return await super().send(sender, text, metadata)

    hub, repo, _, adapter = await _hub(bot=SlowBot([_reply("Your order ships tomorrow.")]))
    hub.channels.with_defaults(bot_channels=["sms"])
    res = await inbound.receive_inbound(hub, _sms("where is my order", "SM1"))
    assert adapter.delivered == []
    assert await hub.settled(res.conversation_id, 2.0)
    assert [m.text for m in adapter.delivered] == ["Your order ships tomorrow."]  # delivered before settled answers
    assert hub.pending == {} and await hub.settled(res.conversation_id, 0.01)


async def test_a_conversation_goes_back_to_the_bot_only_on_a_channel_the_bot_answers() -> None:
    bot = _Bot([_reply("Hello again")])
    hub, repo, _, _ = await _hub(bot=bot)
    res = await inbound.receive_inbound(hub, _sms("hi", "SM1"))  # SMS is not a bot channel in this hub
    await _online(hub, ALICE)
    await router.route_once(hub)
    await offers.accept(hub, ALICE, res.conversation_id)
    from contact_center.usecases import bot_turns

    with pytest.raises(HubError, match="does not answer on SMS"):
        await bot_turns.hand_back(hub, ALICE, res.conversation_id)
    assert repo.convs[res.conversation_id].status == "assigned"


async def test_a_repeat_of_a_message_whose_conversation_has_closed_opens_nothing() -> None:
    hub, repo, _, _ = await _hub()
    first = await inbound.receive_inbound(hub, _sms("hello", "SM1"))
    await _online(hub, ALICE)
    await router.route_once(hub)
    await offers.accept(hub, ALICE, first.conversation_id)
    await transfer_close.close(hub, ALICE, first.conversation_id, "resolved")
    hub.open_chats.clear()  # another node, or a restart: the full path
    late = await inbound.receive_inbound(hub, _sms("hello", "SM1"))  # Twilio retries the first webhook
    assert not late.created and late.conversation_id == first.conversation_id
    assert len(repo.convs) == 1 and await hub.store.waiting() == []


async def test_a_permanently_failing_address_refuses_replies_in_words_until_the_customer_writes_again() -> None:
    hub, repo, _, adapter = await _hub()
    first = await inbound.receive_inbound(hub, _letter("hello", "L1", "T-1"))
    await _online(hub, ALICE)
    await router.route_once(hub)
    await offers.accept(hub, ALICE, first.conversation_id)
    assert await inbound.address_undeliverable(hub, "letters", "+14155550124", "5.1.1 user unknown")
    assert not await inbound.address_undeliverable(hub, "letters", "+14155550199", "5.1.1 user unknown")  # nobody's
    with pytest.raises(HubError) as err:
        await replies.reply(hub, ALICE, first.conversation_id, "c-1", "Did you get this?")
    assert err.value.code == "undeliverable" and "5.1.1 user unknown" in str(err.value)
    await inbound.receive_inbound(hub, _letter("it works now", "L2", "T-1"))  # they wrote again from it
    sent = await replies.reply(hub, ALICE, first.conversation_id, "c-2", "Great")
    assert sent["delivery_status"] == "queued"
    assert any("could not be delivered" in n.summary for _, _, n in repo.timeline)


class _SureBot(_Bot):
    def __init__(self, replies_: list[Any], intent: str, confidence: float) -> None:
        super().__init__(replies_)
        self.intent, self.confidence = intent, confidence

    async def parse(self, text: str) -> dict[str, Any]:
        return {"intent": self.intent, "confidence": self.confidence, "entities": {}}


async def _sure_hub(bot: Any) -> tuple[Hub, MemoryConversations, RecordingAdapter]:
    hub, repo, _, adapter = await _hub(bot=bot)
    hub.channels.register(replace(LETTERS, bot_when_sure=0.9), adapter)
    return hub, repo, adapter


async def test_the_bot_answers_a_new_thread_alone_only_when_it_is_sure() -> None:
    bot = _SureBot([_reply("Your order 10234 ships tomorrow.")], "track_order", 0.97)
    hub, repo, adapter = await _sure_hub(bot)
    res = await inbound.receive_inbound(hub, _letter("where is my order 10234", "L1", "T-1"))
    await _settle(hub)
    conv = repo.convs[res.conversation_id]
    assert (conv.status, conv.disposition) == ("closed", "answered_by_bot")
    assert [m.text for m in adapter.delivered] == ["Your order 10234 ships tomorrow."]
    assert await hub.store.waiting() == []
    # the customer writes again: a person takes it (never the bot alone), and sees what the bot sent
    again = await inbound.receive_inbound(hub, _letter("thanks, and can I change the address?", "L2", "T-1"))
    await _settle(hub)
    assert again.conversation_id == conv.id and repo.convs[conv.id].status == "queued"
    assert bot.seen == ["where is my order 10234"]
    assert [e.conversation_id for e in await hub.store.waiting()] == [conv.id]


@pytest.mark.parametrize("intent,confidence", [("track_order", 0.6), ("place_order", 0.99)])
async def test_unsure_or_other_questions_go_to_a_person_untouched(intent: str, confidence: float) -> None:
    bot = _SureBot([_reply("...")], intent, confidence)
    hub, repo, adapter = await _sure_hub(bot)
    res = await inbound.receive_inbound(hub, _letter("hello there", "L1", "T-1"))
    await _settle(hub)
    assert repo.convs[res.conversation_id].status == "queued" and adapter.delivered == [] and bot.seen == []
    assert [e.conversation_id for e in await hub.store.waiting()] == [res.conversation_id]


async def test_a_status_chosen_while_the_console_is_still_registering_is_kept() -> None:
    """The console's connect registers the agent (away) while the agent already picked Available: the
    registration must not overwrite the choice (a CI run saw the agent stay away and miss the offer)."""
    hub, repo, _, _ = await _hub()

    class SlowStore(MemoryStateStore):  # the connect's first read is slow (Redis, a busy node): the choice overtakes it
        calls = 0

        async def get_presence(self, agent_id: int) -> Any:
            SlowStore.calls += 1
            found = await super().get_presence(agent_id)
            await asyncio.sleep(0.05 if SlowStore.calls == 1 else 0)  # the answer is slow to come back
            return found

    hub.store = SlowStore()
    online = asyncio.ensure_future(offers.agent_online(hub, ALICE))
    chosen = asyncio.ensure_future(offers.set_status(hub, ALICE, "available"))
    await asyncio.gather(online, chosen)
    presence = await hub.store.get_presence(ALICE.id)
    assert presence is not None and presence.status == "available"


# --- a waiting chat whose customer left is given up, however it came back to the queue (issue 21) -------


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def _chat_hub() -> tuple[Hub, MemoryConversations, RecordingNotifier, _Clock]:
    clock = _Clock()
    repo, notify = MemoryConversations(), RecordingNotifier()
    channels = ChannelRegistry()
    channels.register(WEB_CHAT)
    hub = Hub(repo, MemoryStateStore(), notify, channels=channels, wrap_up_seconds=0, clock=clock)
    hub.abandon_grace, hub.decline_skip = 60.0, 20.0
    repo.add_agent(ALICE.id, ALICE.display_name)
    repo.add_agent(BOB.id, BOB.display_name)
    await rebuild.load_queues(hub)
    return hub, repo, notify, clock


async def _answered_chat(hub: Hub, connected: set[int]) -> tuple[int, int]:
    """A chat Alice accepted; its customer is connected to this process while ``connected`` holds them."""
    customer = await inbound.identify_visitor(hub, "visitor-21", "Ann")
    assert customer.id is not None
    connected.add(customer.id)
    hub.connected_customers = lambda: set(connected)
    await transfer_close.customer_seen(hub, customer.id)
    sent = await inbound.customer_message(hub, customer.id, "c-1", "hello")
    await _online(hub, ALICE)
    assert await router.route_once(hub) == 1
    await offers.accept(hub, ALICE, sent["conversation_id"])
    return customer.id, sent["conversation_id"]


async def _customer_goes(hub: Hub, connected: set[int], customer_id: int) -> None:
    connected.discard(customer_id)
    await transfer_close.customer_seen(hub, customer_id)


@pytest.mark.parametrize("path", ["agent_gone", "transfer", "left_first_then_agent_gone"])
async def test_every_way_back_to_the_queue_starts_the_clock_of_a_customer_who_left(path: str) -> None:
    hub, repo, _, clock = await _chat_hub()
    connected: set[int] = set()
    customer_id, cid = await _answered_chat(hub, connected)
    if path == "left_first_then_agent_gone":  # the customer's tab closed while the agent still had the chat
        await _customer_goes(hub, connected, customer_id)
        clock.now += 120
        assert not await transfer_close.customer_left(hub, customer_id)  # with an agent: stays open
        assert await offers.agent_gone(hub, ALICE.id) == 1
    else:
        if path == "agent_gone":
            assert await offers.agent_gone(hub, ALICE.id) == 1
        else:
            await transfer_close.transfer(hub, ALICE, cid, queue="support")
        await _customer_goes(hub, connected, customer_id)
    assert repo.convs[cid].status == "queued"
    if path != "left_first_then_agent_gone":  # gone 120 s already: given up at the first sweep
        clock.now += 30
        assert await transfer_close.give_up_absent(hub) == 0  # within the grace period
        clock.now += 31
    assert await transfer_close.give_up_absent(hub) == 1
    conv = repo.convs[cid]
    # an answered contact is never counted as abandoned: it is closed as "customer left"
    assert (conv.status, conv.disposition) == ("closed", "customer_left")
    assert await hub.store.waiting() == []
    assert await transfer_close.give_up_absent(hub) == 0  # once


async def test_a_customer_connected_here_or_seen_by_another_process_keeps_their_place() -> None:
    hub, repo, _, clock = await _chat_hub()
    connected: set[int] = set()
    customer_id, cid = await _answered_chat(hub, connected)
    assert await offers.agent_gone(hub, ALICE.id) == 1
    clock.now += 600
    assert await transfer_close.give_up_absent(hub) == 0  # connected to this process: present
    connected.discard(customer_id)
    await hub.store.customers_seen([customer_id], clock.now - 5)  # another process saw them 5 s ago
    assert await transfer_close.give_up_absent(hub) == 0
    assert not await transfer_close.customer_left(hub, customer_id)  # this process's own timer agrees
    clock.now += 60
    assert await transfer_close.customer_left(hub, customer_id)
    assert repo.convs[cid].disposition == "customer_left"


async def test_without_any_record_absence_counts_from_the_start_or_the_last_rebuild() -> None:
    hub, repo, _, clock = await _chat_hub()
    connected: set[int] = set()
    customer_id, cid = await _answered_chat(hub, connected)
    assert await offers.agent_gone(hub, ALICE.id) == 1
    connected.clear()
    await hub.store.clear()  # the shared state was lost (a Redis restart)...
    clock.now += 600
    assert await rebuild.rebuild_state(hub) == 1  # ... and rebuilt from SQL: absence counts from now
    assert await transfer_close.give_up_absent(hub) == 0
    clock.now += 61
    assert await transfer_close.give_up_absent(hub) == 1
    assert repo.convs[cid].status == "closed"


async def test_a_never_answered_chat_offered_to_an_agent_is_abandoned_and_the_offer_revoked() -> None:
    hub, repo, notify, clock = await _chat_hub()
    customer = await inbound.identify_visitor(hub, "visitor-22", "Ann")
    assert customer.id is not None
    sent = await inbound.customer_message(hub, customer.id, "c-1", "hello")
    await transfer_close.customer_seen(hub, customer.id)
    await _online(hub, ALICE)
    assert await router.route_once(hub) == 1
    clock.now += 61
    assert await transfer_close.give_up_absent(hub) == 1
    conv = repo.convs[sent["conversation_id"]]
    assert (conv.status, conv.disposition) == ("closed", "abandoned")
    revoked = [n for n in notify.sent if n.event == "offer_revoked"]
    assert revoked and revoked[-1].data == {"conversation_id": conv.id, "reason": "customer_left"}


async def test_a_declined_offer_skips_the_agent_for_a_while_then_offers_it_again() -> None:
    hub, repo, notify, clock = await _chat_hub()
    customer = await inbound.identify_visitor(hub, "visitor-23", "Ann")
    assert customer.id is not None
    sent = await inbound.customer_message(hub, customer.id, "c-1", "hello")
    await _online(hub, ALICE)
    assert await router.route_once(hub) == 1
    ack = await offers.decline(hub, ALICE, sent["conversation_id"])
    assert ack == {"conversation_id": sent["conversation_id"], "skip_seconds": 20.0}
    clock.now += 19
    assert await router.route_once(hub) == 0  # Alice, the only agent, is skipped for 20 s
    await _online(hub, BOB)
    assert await router.route_once(hub) == 1  # anyone else may take it at once
    assert [o.agent_id for o in await hub.store.offers_of(BOB.id)] == [BOB.id]
    await offers.decline(hub, BOB, sent["conversation_id"])
    clock.now += 21
    assert await router.route_once(hub) == 1  # after the skip, offered again
    # an offer nobody answers expires: the agent is told why, and for how long they are skipped
    clock.now += hub.offer_timeout + 1
    await router.route_once(hub)
    expired = [n.data for n in notify.sent if n.event == "offer_revoked"]
    assert expired[-1]["reason"] == "expired" and expired[-1]["skip_seconds"] == 20.0


# --- the phone: warm transfer and supervisors on a call (contact_center/usecases/calls.py) ---------------


SAM = SimpleNamespace(id=9, username="sam", display_name="Sam", role="supervisor")


class LegAdapter(CallAdapter):
    """The call adapter, giving the consulted colleague's leg a CallSid as the voice adapter does."""

    async def act(self, action: Any) -> Any:
        from contact_center.ports import DeliveryReport

        report = await super().act(action)
        if report.status == "sent" and action.kind == "consult":
            return DeliveryReport("sent", provider_id=f"CAleg{len(self.actions)}")
        return report


async def _call_with_alice(sid: str = "CA7") -> tuple[Hub, MemoryConversations, RecordingNotifier, LegAdapter, int]:
    from contact_center.channels import VOICE
    from contact_center.usecases import calls

    hub, repo, notify, _ = await _hub()
    adapter = LegAdapter()
    hub.channels.register(VOICE, adapter)
    repo.add_agent(SAM.id, SAM.display_name)
    opened = await inbound.receive_inbound(hub, _call("Incoming call", f"{sid}:start", sid=sid, opening=True))
    await calls.request_agent(hub, "phone", sid, "customer_request")
    await _online(hub, ALICE)
    await router.route_once(hub)
    await offers.accept(hub, ALICE, opened.conversation_id)
    await _settle(hub)
    await _online(hub, BOB)
    return hub, repo, notify, adapter, opened.conversation_id


def _to(notify: RecordingNotifier, agent: Any, event: str) -> list[dict[str, Any]]:
    return [n.data for n in notify.sent if n.audience == "agent" and n.target == agent.id and n.event == event]


async def test_a_warm_transfer_consults_then_completes_and_the_assignment_moves() -> None:
    from contact_center.usecases import calls

    hub, repo, notify, adapter, cid = await _call_with_alice()
    started = await calls.call_action(hub, ALICE, cid, "consult", f"agent:{BOB.id}")
    assert started["consult"] == {"by_agent": ALICE.id, "target_agent": BOB.id, "target_name": "Bob", "state": "ringing", "leg": "CAleg2"}
    act = adapter.actions[-1]
    assert (act.kind, act.agent_id, act.target) == ("consult", ALICE.id, f"agent:{BOB.id}")
    assert _to(notify, BOB, "consult_request")[-1]["from_agent_name"] == "Alice"
    with pytest.raises(HubError, match="has not answered"):  # nothing to complete while bob's phone rings
        await calls.call_action(hub, ALICE, cid, "complete_transfer")
    await calls.consult_leg(hub, "phone", "CA7", "CAleg2", "in-progress")
    assert _to(notify, ALICE, "call_status")[-1]["status"] == "consult_answered"
    with pytest.raises(HubError) as not_his:
        await calls.call_action(hub, BOB, cid, "complete_transfer")
    assert not_his.value.code == "forbidden"
    done = await calls.call_action(hub, ALICE, cid, "complete_transfer")
    assert done["agent_id"] == BOB.id
    assert (adapter.actions[-1].kind, adapter.actions[-1].leg) == ("complete_transfer", "CAleg2")
    conv = repo.convs[cid]
    assert (conv.status, conv.assigned_agent_id) == ("assigned", BOB.id)
    assert await hub.store.assignment_of(cid) == BOB.id and await hub.store.assignments_of(ALICE.id) == []
    assert _to(notify, ALICE, "conversation_closed")[-1] == {"conversation_id": cid, "reason": "transferred"}
    assert _to(notify, BOB, "conversation_assigned")[-1]["id"] == cid
    summaries = [n.summary for _, c, n in repo.timeline if c == cid]
    assert "Alice transferred to Bob after consultation" in summaries
    assert (await calls.current_consult(hub, repo.convs[cid])).state == "completed"  # type: ignore[union-attr]
    # after the transfer, bob's leg is the call's agent leg: its end is bob's news
    await calls.consult_leg(hub, "phone", "CA7", "CAleg2", "completed")
    assert _to(notify, BOB, "call_status")[-1]["status"] == "agent_completed"


async def test_a_consulted_colleague_is_reserved_again_when_the_shared_state_is_rebuilt() -> None:
    """Redis lost everything while Bob's phone rang for a consultation: his presence comes back from SQL with the
    hold (the consultation's steps are in SQL), so the router offers him nothing until it ends."""
    from contact_center.domain import calls as call_rules
    from contact_center.usecases import calls

    hub, repo, notify, adapter, cid = await _call_with_alice()
    hub.connected_agents = lambda: (ALICE.id, BOB.id)
    await calls.call_action(hub, ALICE, cid, "consult", f"agent:{BOB.id}")
    assert (await hub.store.get_presence(BOB.id)).load == {call_rules.CONSULT_HOLD: 1}  # type: ignore[union-attr]
    await hub.store.clear()  # the shared state was lost (a Redis restart)...
    await rebuild.rebuild_state(hub)  # ... and rebuilt from SQL
    bob = await hub.store.get_presence(BOB.id)
    assert bob is not None and bob.status == "available" and bob.load == {call_rules.CONSULT_HOLD: 1}
    assert await hub.store.assignment_of(cid) == ALICE.id
    await calls.call_action(hub, ALICE, cid, "cancel_consult")  # the consultation ends: the hold goes
    assert (await hub.store.get_presence(BOB.id)).load.get(call_rules.CONSULT_HOLD, 0) == 0  # type: ignore[union-attr]
    await hub.store.clear()
    await rebuild.rebuild_state(hub)  # an ended consultation holds nobody after a rebuild
    assert (await hub.store.get_presence(BOB.id)).load.get(call_rules.CONSULT_HOLD, 0) == 0  # type: ignore[union-attr]


async def test_a_consultation_cancelled_or_unanswered_gives_the_caller_back_to_the_first_agent() -> None:
    from contact_center.usecases import calls

    hub, repo, notify, adapter, cid = await _call_with_alice()
    await calls.call_action(hub, ALICE, cid, "consult", f"agent:{BOB.id}")
    with pytest.raises(HubError, match="already under way"):
        await calls.call_action(hub, ALICE, cid, "consult", f"agent:{BOB.id}")
    await calls.call_action(hub, ALICE, cid, "cancel_consult")
    assert adapter.actions[-1].kind == "cancel_consult" and adapter.actions[-1].target == f"agent:{BOB.id}"
    assert _to(notify, BOB, "consult_ended")[-1]["reason"] == "cancelled"
    assert repo.convs[cid].assigned_agent_id == ALICE.id
    # a late status of the cancelled leg changes nothing
    actions = len(adapter.actions)
    await calls.consult_leg(hub, "phone", "CA7", "CAleg2", "completed")
    assert len(adapter.actions) == actions
    # again, and bob does not answer: the consultation fails by itself and the caller is unheld
    await calls.call_action(hub, ALICE, cid, "consult", "queue:support")
    leg = (await calls.current_consult(hub, repo.convs[cid])).leg  # type: ignore[union-attr]
    await calls.consult_leg(hub, "phone", "CA7", str(leg), "no-answer")
    assert adapter.actions[-1].kind == "cancel_consult"
    assert _to(notify, ALICE, "call_status")[-1]["status"] == "consult_failed"
    assert any(n.summary == "Consultation with Bob failed: did not answer" for _, _, n in repo.timeline)
    with pytest.raises(HubError):
        await calls.call_action(hub, ALICE, cid, "complete_transfer")


async def test_a_consulted_colleague_is_reserved_while_ringing_and_talking_and_free_after() -> None:
    """While bob's phone rings (and while he talks) for alice's consultation the router offers him nothing; once it
    is cancelled, fails or completes, he is free again (or holds exactly the transferred call)."""
    from contact_center.usecases import calls

    hub, repo, notify, adapter, cid = await _call_with_alice()
    waiting = await inbound.receive_inbound(hub, _sms("hi", "SM1"))  # a contact waiting for anyone free
    await hub.store.remove_from_queue(waiting.conversation_id)  # (parked while the consultation starts)
    await calls.call_action(hub, ALICE, cid, "consult", f"agent:{BOB.id}")
    assert (await hub.store.get_presence(BOB.id)).load == {"consult": 1}  # type: ignore[union-attr]
    await router.enqueue(hub, hub.entry(repo.convs[waiting.conversation_id], repo.customers[repo.convs[waiting.conversation_id].customer_id]))
    assert await router.route_once(hub) == 0  # ringing: not offered
    await calls.consult_leg(hub, "phone", "CA7", "CAleg2", "in-progress")
    assert await router.route_once(hub) == 0  # talking: not offered
    assert not await hub.store.hold_agent(BOB.id, "consult", "phone")  # nor held twice (another consultation)
    await calls.call_action(hub, ALICE, cid, "cancel_consult")
    assert (await hub.store.get_presence(BOB.id)).load == {}  # type: ignore[union-attr]
    assert await router.route_once(hub) == 1  # free again: the waiting contact is offered to him
    assert (await hub.store.offers_of(BOB.id))[0].conversation_id == waiting.conversation_id
    await offers.decline(hub, BOB, waiting.conversation_id)
    await hub.store.remove_from_queue(waiting.conversation_id)
    # a consultation that fails (no answer) frees him too
    await calls.call_action(hub, ALICE, cid, "consult", f"agent:{BOB.id}")
    leg = (await calls.current_consult(hub, repo.convs[cid])).leg  # type: ignore[union-attr]
    assert (await hub.store.get_presence(BOB.id)).load == {"consult": 1}  # type: ignore[union-attr]
    await calls.consult_leg(hub, "phone", "CA7", str(leg), "busy")
    assert (await hub.store.get_presence(BOB.id)).load == {}  # type: ignore[union-attr]
    # completed: the hold becomes the call itself
    await calls.call_action(hub, ALICE, cid, "consult", f"agent:{BOB.id}")
    leg = (await calls.current_consult(hub, repo.convs[cid])).leg  # type: ignore[union-attr]
    await calls.consult_leg(hub, "phone", "CA7", str(leg), "in-progress")
    await calls.call_action(hub, ALICE, cid, "complete_transfer")
    assert (await hub.store.get_presence(BOB.id)).load == {"phone": 1}  # type: ignore[union-attr]
    assert (await hub.store.get_presence(ALICE.id)).load == {}  # type: ignore[union-attr]


async def test_consult_refusals_are_decided_by_the_core() -> None:
    from contact_center.usecases import calls

    hub, repo, notify, adapter, cid = await _call_with_alice()
    for target, code in ((f"agent:{ALICE.id}", "bad_request"), ("agent:999", "not_found"), ("queue:nowhere", "bad_request"),
                         ("agent:x", "bad_request")):
        with pytest.raises(HubError) as refused:
            await calls.call_action(hub, ALICE, cid, "consult", target)
        assert refused.value.code == code, target
    await offers.set_status(hub, BOB, "away")
    with pytest.raises(HubError, match="cannot take a call now"):
        await calls.call_action(hub, ALICE, cid, "consult", f"agent:{BOB.id}")
    with pytest.raises(HubError, match="nobody in the support queue"):
        await calls.call_action(hub, ALICE, cid, "consult", "queue:support")
    assert [a.kind for a in adapter.actions] == ["connect_agent"]  # nothing was asked of the call
    adapter.refuse = "the caller has hung up"
    await offers.set_status(hub, BOB, "available")
    with pytest.raises(HubError, match="hung up"):
        await calls.call_action(hub, ALICE, cid, "consult", f"agent:{BOB.id}")
    assert await calls.current_consult(hub, repo.convs[cid]) is None  # a refused consultation is not recorded


async def test_a_supervisor_listens_whispers_and_barges_through_the_adapter_and_it_is_recorded() -> None:
    from contact_center.usecases import calls

    hub, repo, notify, adapter, cid = await _call_with_alice()
    with pytest.raises(HubError) as agent:
        await calls.supervise(hub, BOB, cid, "listen")
    assert agent.value.code == "forbidden"
    with pytest.raises(HubError):
        await calls.supervise(hub, SAM, cid, "shout")
    for mode in ("listen", "whisper", "barge"):
        await calls.supervise(hub, SAM, cid, mode)
        act = adapter.actions[-1]
        assert (act.kind, act.agent_id, act.target, act.mode) == ("supervise", SAM.id, f"agent:{ALICE.id}", mode)
    assert [d["status"] for d in _to(notify, ALICE, "call_status")] == ["supervisor_whisper", "supervisor_barge"]  # listening is silent
    summaries = [n.summary for _, c, n in repo.timeline if c == cid]
    assert {"Sam listened to the call with Alice", "Sam whispered to the agent on the call with Alice",
            "Sam barged into the call with Alice"} <= set(summaries)
    await calls.supervise(hub, SAM, cid, "leave")
    assert adapter.actions[-1].kind == "end_supervision"
    await transfer_close.close(hub, ALICE, cid, "resolved")
    with pytest.raises(HubError, match="ended") as ended:  # no barging into a call that ended
        await calls.supervise(hub, SAM, cid, "barge")
    assert ended.value.code == "conflict"


# --- missed offers: two in a row and the agent is set Away, the supervisors told (issue 20) -----------------


async def _offered_chat(hub: Hub, visitor: str) -> int:
    customer = await inbound.identify_visitor(hub, visitor, "Maria Lopez")
    assert customer.id is not None
    sent = await inbound.customer_message(hub, customer.id, "c-1", "hello")
    return int(sent["conversation_id"])


async def test_two_missed_offers_in_a_row_set_the_agent_away_with_the_reason_and_a_supervisor_alert() -> None:
    from contact_center.domain.supervision import build_alerts, _reason_of

    hub, repo, notify, clock = await _chat_hub()
    hub.decline_skip = 0.0
    await _online(hub, ALICE)
    first = await _offered_chat(hub, "visitor-31")
    assert await router.route_once(hub) == 1
    clock.now += hub.offer_timeout + 1
    await router.route_once(hub)  # missed once (and offered again: the skip is off)
    assert (await hub.store.get_presence(ALICE.id)).status == "available"  # type: ignore[union-attr]
    assert await hub.store.offer_missed(ALICE.id) == 2 and not await hub.store.reset_missed(ALICE.id)  # it was 1
    await hub.store.offer_missed(ALICE.id)  # (back to one in a row)
    assert [o.conversation_id for o in await hub.store.offers_of(ALICE.id)] == [first]
    clock.now += hub.offer_timeout + 1
    await router.route_once(hub)  # missed twice in a row: Away
    presence = await hub.store.get_presence(ALICE.id)
    assert presence is not None and presence.status == "away"
    told = [n.data for n in notify.sent if n.event == "status" and n.target == ALICE.id]
    assert told[-1]["status"] == "away" and told[-1]["reason"] == "missed_offers" and told[-1]["missed"] == 2
    assert await hub.store.offers_of(ALICE.id) == []  # nothing more is offered to an agent who is not there
    assert [e.conversation_id for e in await hub.store.waiting()] == [first]  # the customer keeps their place
    # a reopened console learns why it is Away
    hello = await offers.agent_online(hub, ALICE)
    assert hello["status"] == "away" and hello["status_reason"]["reason"] == "missed_offers"
    # the supervisors' snapshot: the agent row's reason and an alert
    reason = _reason_of(await hub.store.status_reasons(), ALICE.id, "away")
    alerts = build_alerts([], {}, [], 0, agents=[{"id": ALICE.id, "display_name": "Alice", "reason": reason}])
    assert [a["kind"] for a in alerts] == ["agent_away"]
    assert alerts[0]["message"] == "Alice was set Away after missing 2 offers in a row"
    assert _reason_of(await hub.store.status_reasons(), ALICE.id, "available") is None
    # choosing a state again clears the reason
    await offers.set_status(hub, ALICE, "available")
    assert await hub.store.status_reasons() == {} and (await offers.agent_online(hub, ALICE))["status_reason"] is None


async def test_two_missed_offers_seen_by_two_hub_processes_still_set_the_agent_away() -> None:
    """Each process's routing loop expires offers: the first missed offer expires on one process, the second
    on another; the streak is in the shared state, so the agent is Away and both processes know why."""
    hub, repo, notify, clock = await _chat_hub()
    other = Hub(repo, hub.store, notify, channels=hub.channels, wrap_up_seconds=0, clock=clock, node="node-b")
    other.abandon_grace, other.decline_skip = hub.abandon_grace, 0.0
    hub.decline_skip = 0.0
    await rebuild.load_queues(other)
    await _online(hub, ALICE)
    await _offered_chat(hub, "visitor-33")
    assert await router.route_once(hub) == 1
    clock.now += hub.offer_timeout + 1
    await router.route_once(other)  # missed once, on the other process (and offered again there)
    assert (await hub.store.get_presence(ALICE.id)).status == "available"  # type: ignore[union-attr]
    clock.now += hub.offer_timeout + 1
    await router.route_once(hub)  # missed twice in a row, on this one
    assert (await hub.store.get_presence(ALICE.id)).status == "away"  # type: ignore[union-attr]
    assert (await offers.agent_online(other, ALICE))["status_reason"]["missed"] == 2


async def test_an_answered_offer_resets_the_missed_streak_and_a_chosen_away_is_not_overridden() -> None:
    hub, repo, notify, clock = await _chat_hub()
    hub.decline_skip = 0.0
    await _online(hub, ALICE)
    cid = await _offered_chat(hub, "visitor-32")
    assert await router.route_once(hub) == 1
    clock.now += hub.offer_timeout + 1
    await router.route_once(hub)  # missed once, offered again
    await offers.decline(hub, ALICE, cid)  # answered: the streak starts again
    assert await hub.store.offer_missed(ALICE.id) == 1
    await hub.store.reset_missed(ALICE.id)
    await router.route_once(hub)
    clock.now += hub.offer_timeout + 1
    await router.route_once(hub)  # missed once more: still one in a row
    assert (await hub.store.get_presence(ALICE.id)).status == "available"  # type: ignore[union-attr]
    await offers.accept(hub, ALICE, cid)
    assert await hub.store.offer_missed(ALICE.id) == 1
    await hub.store.reset_missed(ALICE.id)
    # an agent who chose Away is never moved by the rule (nor told a reason)
    assert not await offers.offer_missed(hub, BOB.id, 999)
    assert not await offers.offer_missed(hub, BOB.id, 999)
    assert await hub.store.status_reasons() == {}


# --- transfers: the sender is not offered the conversation back while someone else serves the queue ---------


async def test_a_transfer_to_a_queue_goes_to_someone_else_and_back_to_the_sender_only_when_nobody_else_serves() -> None:
    hub, repo, notify, clock = await _chat_hub()
    await _online(hub, ALICE)
    cid = await _offered_chat(hub, "visitor-41")
    assert await router.route_once(hub) == 1
    await offers.accept(hub, ALICE, cid)
    # nobody else serves: the sender stays eligible (the console asked them first)
    await transfer_close.transfer(hub, ALICE, cid, queue="support")
    assert await router.route_once(hub) == 1
    assert [o.conversation_id for o in await hub.store.offers_of(ALICE.id)] == [cid]
    await offers.accept(hub, ALICE, cid)
    # Bob is there: it goes to Bob and never back to Alice, also after the usual decline skip
    await _online(hub, BOB)
    await transfer_close.transfer(hub, ALICE, cid, queue="support")
    await offers.set_status(hub, BOB, "away")  # Bob steps away before it reaches him
    clock.now += hub.decline_skip + 60
    assert await router.route_once(hub) == 0
    assert await hub.store.offers_of(ALICE.id) == []
    await offers.set_status(hub, BOB, "available")
    assert await router.route_once(hub) == 1
    assert [o.conversation_id for o in await hub.store.offers_of(BOB.id)] == [cid]
    assert transfer_close.TRANSFER_SENDER_SKIP_SECONDS > hub.decline_skip + 60


async def test_the_widgets_session_says_whether_anyone_serves_now_and_the_wait() -> None:
    hub, repo, notify, clock = await _chat_hub()
    before = await inbound.customer_session(hub, "visitor-51")
    assert before["customer_id"] is None
    assert before["availability"] == {"agents_available": 0, "estimated_wait_seconds": None}
    await _online(hub, ALICE)
    now = await inbound.customer_session(hub, "visitor-51")
    assert now["availability"]["agents_available"] == 1
    assert isinstance(now["availability"]["estimated_wait_seconds"], int)


async def test_an_agents_customer_scope_is_their_conversations_and_offers() -> None:
    from contact_center.console_search import agent_customer_ids

    hub, repo, notify, clock = await _chat_hub()
    await _online(hub, ALICE)
    first = await _offered_chat(hub, "visitor-61")
    assert await router.route_once(hub) == 1
    offered = {repo.convs[first].customer_id}
    assert await agent_customer_ids(hub, ALICE.id) == offered  # offered: in scope
    await offers.accept(hub, ALICE, first)
    assert await agent_customer_ids(hub, ALICE.id) == offered  # assigned: in scope
    assert await agent_customer_ids(hub, BOB.id) == set()
    await transfer_close.close(hub, ALICE, first, "resolved")
    assert await agent_customer_ids(hub, ALICE.id) == offered  # closed: still theirs to find again (as the API's scope)


async def test_hello_offers_the_bot_on_a_channel_only_while_the_bot_runs() -> None:
    hub, _, _, _ = await _hub()
    hub.channels.with_defaults(bot_channels=["sms"])
    hub.bot_ready = False
    hello = await offers.agent_online(hub, ALICE)
    assert {c["name"]: c["bot"] for c in hello["channels"]}["sms"] is False  # no "Back to bot" to a bot that is off
    hub.bot_ready = True
    hello = await offers.agent_online(hub, ALICE)
    assert {c["name"]: c["bot"] for c in hello["channels"]}["sms"] is True


def test_a_strict_pin_never_falls_back_to_the_queue_a_transfers_does() -> None:
    """router.waiting_contacts: a transfer's pin falls back when its agent is offline or declined; a click-to-call's
    (strict, from SQL) never does: the contact is that agent's only."""
    from contact_center.ports import AgentPresence, QueueEntry

    here = [AgentPresence(BOB.id, "available", 0.0, "n")]
    loose = QueueEntry(1, "support", "callback", 0, 0.0, pinned_agent=ALICE.id)
    strict = QueueEntry(2, "support", "callback", 0, 0.0, pinned_agent=ALICE.id, pin_strict=True)
    declined = QueueEntry(3, "support", "callback", 0, 0.0, frozenset({ALICE.id}), ALICE.id, pin_strict=True)
    got = {c.conversation_id: c.pinned_agent for c in router.waiting_contacts([loose, strict, declined], here)}
    assert got == {1: None, 2: ALICE.id, 3: ALICE.id}
