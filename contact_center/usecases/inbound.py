"""Inbound: what a customer sends, on any channel, stored once and handed to the bot or the router.

* :func:`receive_inbound`: a channel adapter's event (an SMS, a WhatsApp message, ...). The customer is
  found or created by their address on the channel; the conversation by the channel's policy (one open
  per customer and channel, one per thread, one per call); the message stored idempotently (provider
  id, client id).
* :func:`customer_message`: a connected customer's message on a live channel (web chat), who is
  already identified by their connection. A message into their open conversation takes the message
  log's fast path.
* :func:`customer_session`, :func:`identify_visitor`: a live channel's connect, and the first message.
* :func:`opt_out`: STOP / START.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contact_center.domain.channels import ChannelSpec, ConversationPolicy, pick_choice
from contact_center.domain.conversations import InboundPlan, plan_inbound
from contact_center.ports import ConversationRow, CustomerRow, InboundEvent, InboundPlanRequest, InboundResult, MessageRow, TimelineNote
from contact_center.usecases import bot_turns, outbound, router
from contact_center.usecases.context import Hub
from contact_center.usecases.errors import HubError, clean_text, client_id
from contact_center.usecases.views import buttons_of, message_json
from crm_store.domain.identity import ContactKind, InvalidAddress, normalize_address

log = logging.getLogger("contact_center.hub")


@dataclass(frozen=True)
class Inbound:
    """A customer's message on its way in, once checked (the fields of an InboundEvent the store needs)."""

    spec: ChannelSpec
    text: str
    client_id: str | None = None
    provider_id: str | None = None
    thread_key: str | None = None
    bot_text: str | None = None
    queue: str | None = None
    customer_address: str = ""
    our_address: str = ""
    attachments: list[dict[str, Any]] | None = None
    wake: bool = True
    subject: str | None = None
    opening: bool = False
    priority: int = 0
    queue_since: datetime | None = None
    pinned_agent: int | None = None
    held: bool = False


# --- a live channel's customer (web chat) ------------------------------------------------------------


async def customer_session(
    hub: Hub, visitor_id: str, name: str = "", email: str = "", last_seq: int = 0, *, channel: str | None = None
) -> dict[str, Any]:
    """Identify a connected customer (a web visitor) and return their open conversation and what they missed.

    A visitor the repository does not know yet gets an empty session (``customer_id`` None) and nothing
    is written: most page views never chat, and a connect must stay a read. The customer and their
    contact point are created by :func:`identify_visitor` at their first message.
    """
    spec = hub.live_channel(channel)
    customer: Any = await hub.repo.customer_by_address(spec.contact_kind, visitor_id)
    if customer is None:
        return {"customer_id": None, "conversation_id": None, "status": None, "agent_name": None, "queue": None, "messages": [],
                "availability": await router.availability(hub, spec.default_queue, spec.name)}
    if email or (name and not customer.display_name):
        customer = await identify_visitor(hub, visitor_id, name, email, channel=spec.name)  # what they just told us
    return await session_payload(hub, customer, last_seq, spec)


async def identify_visitor(hub: Hub, visitor_id: str, name: str = "", email: str = "", *, channel: str | None = None) -> CustomerRow:
    """Find or create the connected customer (race-safe), recording a name and an email they gave.

    The email is linked as an unverified contact point: a later email from that address finds them.
    """
    spec = hub.live_channel(channel)
    return await hub.repo.identify_visitor(spec.contact_kind, visitor_id, name, email)


async def session_payload(hub: Hub, customer: Any, last_seq: int, spec: ChannelSpec) -> dict[str, Any]:
    """The ``session`` event: the customer, their open conversation on the channel and what they missed."""
    assert customer.id is not None
    conv = await hub.repo.open_conversation(customer.id, spec.name)
    data: dict[str, Any] = {
        "customer_id": customer.id,
        "conversation_id": conv.id if conv else None,
        "status": conv.status if conv else None,
        "agent_name": None,
        "queue": None,
        "messages": [],
    }
    if conv is None:
        hub.open_chats.pop((customer.id, spec.name), None)
    else:
        assert conv.id is not None
        hub.remember_open(customer.id, spec.name, conv.id, customer.display_name or "Customer")
        data["messages"] = await history(hub, conv.id, last_seq, for_customer=True)
        data["agent_name"] = await hub.agent_name(conv.assigned_agent_id)
        data["queue"] = await router.queue_info(hub, conv.id) if conv.status == "queued" else None
    data["availability"] = await router.availability(hub, hub.queue_name(conv) if conv else spec.default_queue, spec.name)
    return data


async def customer_session_for(hub: Hub, customer_id: int, *, channel: str | None = None) -> int | None:
    """The id of the customer's open conversation on a live channel, if any."""
    spec = hub.live_channel(channel)
    conv = await hub.repo.open_conversation(customer_id, spec.name)
    return conv.id if conv else None


async def history(hub: Hub, conversation_id: int, after_seq: int, *, for_customer: bool) -> list[dict[str, Any]]:
    """Messages after ``after_seq`` (internal notes only for agents), with sender names."""
    rows = await hub.repo.history(conversation_id, max(0, after_seq), include_internal=not for_customer)
    return [message_json(m, name) for m, name in rows]


async def customer_typing(hub: Hub, customer_id: int, typing: bool, *, channel: str | None = None) -> None:
    """Tell the agent on the customer's open conversation (a live channel) that they are typing."""
    spec = hub.live_channel(channel)
    conv = await hub.repo.open_conversation(customer_id, spec.name)
    if conv is not None and conv.assigned_agent_id is not None:
        await hub.tell_agent(conv.assigned_agent_id, "typing", {"conversation_id": conv.id, "typing": bool(typing)})


async def customer_message(
    hub: Hub, customer_id: int, raw_client_id: Any, raw_text: Any, *, origin_sid: str | None = None, raw_payload: Any = None,
    channel: str | None = None,
) -> dict[str, Any]:
    """Store a connected customer's message (opening a conversation if needed), queue it, publish it.

    ``origin_sid``: the connection it came from, which gets the stored message in its acknowledgement
    and so is left out of the echo to the customer's other tabs.
    """
    spec = hub.live_channel(channel)
    text, cid = clean_text(raw_text, spec.max_text), client_id(raw_client_id)
    bot_text = bot_turns.bot_payload(raw_payload) or text  # a clicked button sends its payload to the bot
    known = hub.open_chats.get((customer_id, spec.name))
    if known is not None:
        conv_id, name, _ = known
        logged = await hub.repo.append_fast(conv_id, "customer", text, sender_id=str(customer_id), client_msg_id=cid)
        if logged is not None:
            payload = message_json(logged.message, name)
            if logged.created:
                await outbound.publish(hub, conv_id, logged.assigned_agent_id, payload, to_customer=spec, skip=origin_sid)
                if logged.status == "bot":
                    bot_turns.start(hub, conv_id, customer_id, bot_text)
            return {"message": payload, "conversation_id": conv_id, "created": logged.created}
        hub.open_chats.pop((customer_id, spec.name), None)  # closed meanwhile: open a new conversation below
    conv, payload, created = await _ingest(hub, customer_id, Inbound(spec=spec, text=text, client_id=cid, bot_text=bot_text), origin_sid=origin_sid)
    return {"message": payload, "conversation_id": conv.id, "created": created}


# --- any channel's adapter ----------------------------------------------------------------------------


async def receive_inbound(hub: Hub, event: InboundEvent) -> InboundResult:
    """What a channel adapter received: stored once, then bot or router.

    The same E.164 number on the phone, SMS and WhatsApp is one customer. A repeat of the same provider
    id stores nothing and sends nothing. The bot turn and routing run after this returns.
    """
    spec = hub.spec(event.channel)
    text = clean_text(event.text, spec.max_text, allow_empty=bool(event.attachments) or event.opening)
    cid = client_id(event.client_id) if event.client_id is not None else None
    try:
        address = normalize_address(ContactKind(spec.contact_kind), event.customer_address, hub.default_region)
        # a returning customer is one point read; a new address (or a name to record) one transaction
        known: Any = await hub.repo.customer_by_address(spec.contact_kind, address) if event.identity_trusted else None
        if not event.identity_trusted:  # a forged sender is nobody we know: never linked, never merged
            customer_id = await hub.repo.new_customer(event.display_name[:200])
        elif known is not None and (known.display_name or not event.display_name):
            customer_id = int(known.id)
        else:
            customer_id, address = await hub.repo.resolve_customer(
                spec.contact_kind, event.customer_address, display_name=event.display_name[:200],
                region=hub.default_region, verified=True,
            )
    except InvalidAddress as exc:
        raise HubError("bad_request", str(exc)) from None
    attachments: list[dict[str, Any]] = [
        {"type": "media", "content_type": a.content_type, "url": a.url, "name": a.name, "size": a.size} for a in event.attachments
    ]
    if event.extra:
        attachments.append({"type": "channel", **event.extra})
    if event.metadata:  # what the channel knows of the message (speech confidence, the keys pressed): kept, bounded
        kept = bot_turns.jsonable(dict(event.metadata))
        if kept:
            attachments.append({"type": "metadata", "data": kept})
    fast = None if event.opening else await _into_open(hub, spec, customer_id, event, text, cid, attachments)
    if fast is not None:
        return fast
    inbound = Inbound(
        spec=spec, text=text, client_id=cid, provider_id=event.provider_id, thread_key=event.thread_key,
        bot_text=event.bot_text or text, queue=event.queue, customer_address=address, our_address=event.our_address,
        attachments=attachments, wake=event.wake, subject=event.subject, opening=event.opening, priority=event.priority,
        queue_since=event.queue_since, pinned_agent=event.pinned_agent, held=event.held,
    )
    conv, payload, created = await _ingest(hub, customer_id, inbound)
    assert conv.id is not None
    return InboundResult(customer_id=customer_id, conversation_id=conv.id, message=payload, created=created)


async def _into_open(
    hub: Hub, spec: ChannelSpec, customer_id: int, event: InboundEvent, text: str, cid: str | None,
    attachments: list[dict[str, Any]],
) -> InboundResult | None:
    """The hot path: a message into the customer's open conversation (known to this process, reached at
    the same address of ours) is one append through the message log. None: take the full path."""
    known = hub.open_chats.get((customer_id, spec.name))
    if known is None or event.thread_key is not None or known[2] != event.our_address or not event.wake:
        return None
    conv_id, name, _ = known
    logged = await hub.repo.append_fast(
        conv_id, "customer", text, sender_id=str(customer_id), client_msg_id=cid, provider_id=event.provider_id,
        attachments=attachments or None,  # type: ignore[arg-type]
    )
    if logged is None:  # closed meanwhile: the full path opens a new conversation
        hub.open_chats.pop((customer_id, spec.name), None)
        return None
    payload = message_json(logged.message, name)
    if logged.created:
        await outbound.publish(hub, conv_id, logged.assigned_agent_id, payload, to_customer=spec)
        if logged.status == "bot":
            bot_text = event.bot_text or text
            if spec.buttons_as_text:
                bot_text = await _chosen_payload(hub, conv_id, logged.message.seq, text) or bot_text
            bot_turns.start(hub, conv_id, customer_id, bot_text)
    return InboundResult(customer_id=customer_id, conversation_id=conv_id, message=payload, created=logged.created)


def _lock_for(hub: Hub, customer_id: int, channel: str) -> asyncio.Lock:
    """One lock per customer and channel so two first messages do not open two conversations (per process)."""
    key = (customer_id, channel)
    lock = hub.customer_locks.get(key)
    if lock is None:
        lock = hub.customer_locks[key] = asyncio.Lock()
    return lock


async def _ingest(hub: Hub, customer_id: int, inbound: Inbound, *, origin_sid: str | None = None) -> tuple[ConversationRow, dict[str, Any], bool]:
    """The full path of a customer's message: find or open the conversation, store, publish, bot or queue."""
    spec = inbound.spec
    async with _lock_for(hub, customer_id, spec.name):
        stored = await _store(hub, customer_id, inbound)
    conv, msg, customer = stored.conversation, stored.message, stored.customer
    assert conv.id is not None
    name = customer.display_name or "Customer"
    if inbound.thread_key is None:
        hub.remember_open(customer_id, spec.name, conv.id, name, inbound.our_address)
    payload = message_json(msg, name if msg.sender_kind == "customer" else "")
    if stored.created:  # a contact's opening note is for the agents only: no adapter delivers it
        await outbound.publish(hub, conv.id, conv.assigned_agent_id, payload, to_customer=None if inbound.opening else spec,
                               skip=origin_sid)
        # with the bot: its turn (a bot that is down hands over with an apology), except in a channel's own
        # self-service while the bot is down (the adapter's menu answers) and for a contact's opening note
        self_served = spec.self_service_first and not (hub.bot is not None and hub.bot_ready)
        if conv.status == "bot" and not inbound.opening and not inbound.held and not self_served:
            bot_text = inbound.bot_text or inbound.text
            if spec.buttons_as_text:
                bot_text = await _chosen_payload(hub, conv.id, msg.seq, inbound.text) or bot_text
            bot_turns.start(hub, conv.id, customer_id, bot_text)
    if stored.new_conversation and conv.status == "queued":
        if (spec.bot_when_sure is not None and stored.created and inbound.wake and not stored.reopened
                and bot_turns.can_parse(hub)):
            bot_turns.start_if_sure(hub, conv, customer, inbound.bot_text or inbound.text)  # it queues what it won't answer
        else:
            await router.enqueue(hub, hub.entry(conv, customer))
    return conv, payload, stored.created


async def _store(hub: Hub, customer_id: int, inbound: Inbound) -> Any:
    """The conversation by the channel's policy and the message, in one repository call (one transaction)."""
    spec = inbound.spec
    queue = inbound.queue if inbound.queue in hub.rules else spec.default_queue
    per_thread = spec.policy is not ConversationPolicy.PER_CUSTOMER and inbound.thread_key is not None
    bot_ready = hub.bot is not None and hub.bot_ready

    def decide(found: str | None, closed_age: float | None) -> InboundPlan:
        return plan_inbound(
            found, per_thread=per_thread, bot_first=spec.bot_first, bot_ready=bot_ready, closed_age_seconds=closed_age,
            reopen_window_seconds=spec.reopen_window_seconds, wake=inbound.wake,
            self_service_first=spec.self_service_first or inbound.held,
        )

    def opened(status: str) -> TimelineNote:
        return TimelineNote(
            spec.interaction_kind, spec.name, f"{spec.noun[:1].upper()}{spec.noun[1:]} started: {inbound.text[:200]}",
            {"queue": queue, "with": {"bot": "bot", "closed": "filed"}.get(status, "queue")},
        )

    return await hub.repo.store_inbound(InboundPlanRequest(
        customer_id=customer_id, channel=spec.name, thread_key=inbound.thread_key if per_thread else None,
        decide=decide, queue_id=hub.queue_ids.get(queue), subject=(inbound.subject or inbound.text)[:120],
        customer_address=inbound.customer_address, our_address=inbound.our_address, text=inbound.text,
        client_id=inbound.client_id, provider_id=inbound.provider_id, attachments=inbound.attachments or None,
        opened_note=opened, sender_kind="system" if inbound.opening else "customer", priority=inbound.priority,
        queue_since=inbound.queue_since, pinned_agent=inbound.pinned_agent,
    ))


async def _chosen_payload(hub: Hub, conversation_id: int, seq: int, text: str) -> str | None:
    """A bare number answering the bot's last numbered choices: that button's payload."""
    recent: list[MessageRow] = list(await hub.repo.messages(conversation_id, max(0, seq - 6), include_internal=False))
    for m in reversed([m for m in recent if m.seq < seq]):
        if m.sender_kind == "customer":
            return None  # the customer already answered the last choices
        buttons = buttons_of(m)
        if m.sender_kind == "bot" and buttons:
            choice = pick_choice(text, len(buttons))
            return None if choice is None else str(buttons[choice].get("payload") or buttons[choice].get("title") or "")
    return None


async def address_undeliverable(hub: Hub, channel: str, customer_address: str, reason: str) -> bool:
    """A permanent delivery failure: replies to that address are refused (in words) until the customer writes
    from it again; recorded on their timeline. False if the address is nobody's."""
    spec = hub.spec(channel)
    try:
        address = normalize_address(ContactKind(spec.contact_kind), customer_address, hub.default_region)
    except InvalidAddress:
        return False

    def note(value: str) -> TimelineNote:
        return TimelineNote(spec.interaction_kind, spec.name, f"{spec.label} to {value} could not be delivered: {reason[:200]}",
                            {"event": "undeliverable", "address": value, "reason": reason[:300]})

    return await hub.repo.set_undeliverable(spec.contact_kind, address, reason=reason, note=note)


async def opt_out(hub: Hub, channel: str, customer_address: str, opted_out: bool) -> None:
    """The customer texted STOP (nothing more is sent to that address on that channel) or START."""
    spec = hub.spec(channel)

    def note(address: str) -> TimelineNote:
        return TimelineNote(
            spec.interaction_kind, spec.name,
            f"{'Opted out of' if opted_out else 'Opted back in to'} {spec.label} messages from {address}",
            {"event": "opt_out" if opted_out else "opt_in", "address": address},
        )

    try:
        await hub.repo.set_opt_out(spec.contact_kind, customer_address, region=hub.default_region, opted_out=opted_out, note=note)
    except InvalidAddress as exc:
        raise HubError("bad_request", str(exc)) from None
    log.info("opt-out recorded", extra={"channel": channel, "opted_out": opted_out})
