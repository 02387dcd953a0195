"""Agents, offers and assignment: an agent's console comes online, chooses a state, accepts or declines an
offer, and goes away; wrap-up after the last conversation closes.

The shared state's atomic claim (``StateStore.accept``) decides who gets a conversation; SQL then
records the assignment. Never two agents on one conversation.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from contact_center.domain import presence as presence_rules
from contact_center.domain.conversations import Move, sources, target
from contact_center.domain.routing import AgentStatus
from contact_center.ports import AgentPresence, ConversationRow, TimelineNote, Transition
from contact_center.usecases import outbound
from contact_center.usecases.context import Hub
from contact_center.usecases.errors import HubError, conv_id
from contact_center.usecases.views import conversation_json
from contact_center.usecases.inbound import history

log = logging.getLogger("contact_center.hub")


async def agent_online(hub: Hub, agent: Any) -> dict[str, Any]:
    """Register an agent's console: presence (kept if they reconnect), their conversations and offers."""
    row = await hub.repo.agent(agent.id)
    if row is None or not row.active:
        raise HubError("forbidden", "this agent account is not active")
    async with hub.presence_lock(agent.id):
        presence = await _ensure_presence(hub, agent.id, row)
    conversations = await agent_conversations(hub, agent.id)
    offers = [await offer_json(hub, o.conversation_id, o.expires_at, o.queue, o.channel) for o in await hub.store.offers_of(agent.id)]
    return {
        "agent": {"id": agent.id, "username": agent.username, "display_name": agent.display_name, "role": agent.role},
        "status": presence.status,
        "conversations": conversations,
        "offers": offers,
        "channels": hub.channels.describe(),
    }


async def _ensure_presence(hub: Hub, agent_id: int, row: Any) -> AgentPresence:
    """The agent's presence, created ``away`` if the shared state has none (under the agent's presence lock)."""
    presence = await hub.store.get_presence(agent_id)
    if presence is None:
        now = hub.clock()
        presence = AgentPresence(
            agent_id=agent_id, status=AgentStatus.AWAY.value, since=now, node=hub.node,
            load={}, capacity=dict(row.capacity or {}), skills=dict(row.skills or {}), idle_since=now,
        )
        await hub.store.set_presence(presence)
        await hub.log_state(agent_id, presence.status)
    return presence


async def agent_conversations(hub: Hub, agent_id: int) -> list[dict[str, Any]]:
    """The agent's open conversations (from SQL)."""
    rows = await hub.repo.assigned_to(agent_id)
    return [conversation_json(hub, c, cu, await outbound.point_of(hub, c)) for c, cu in rows]


async def offer_json(hub: Hub, conversation_id: int, expires_at: float, queue: str, channel: str) -> dict[str, Any]:
    """What the console shows of an offer."""
    found = await hub.repo.with_customer(conversation_id)
    conv, customer = found if found is not None else (None, None)
    last = await hub.repo.messages(conversation_id, 0, include_internal=False, limit=3) if conv else []
    spec = hub.channels.get(channel)
    return {
        "conversation_id": conversation_id,
        "customer": {"id": customer.id if customer else None, "display_name": (customer.display_name if customer else "") or "Visitor"},
        "channel": channel,
        "channel_label": spec.label if spec is not None else channel,
        "customer_address": (conv.customer_address or None) if conv else None,
        "queue": queue,
        "expires_at": expires_at,
        "preview": last[0].body[:200] if last else "",
    }


async def set_status(hub: Hub, agent: Any, status: Any) -> str:
    """Change an agent's presence (available / away / offline); becoming available triggers routing."""
    try:
        status = presence_rules.check_choosable(status)
    except presence_rules.NotChoosable as exc:
        raise HubError("bad_request", str(exc)) from None
    async with hub.presence_lock(agent.id):
        updated = await hub.store.set_status(agent.id, status, hub.clock())
        if updated is None:
            row = await hub.repo.agent(agent.id)
            if row is None or not row.active:
                raise HubError("forbidden", "this agent account is not active")
            await _ensure_presence(hub, agent.id, row)
            await hub.store.set_status(agent.id, status, hub.clock())
    await hub.log_state(agent.id, status)
    if status == AgentStatus.AVAILABLE.value:
        hub.kick()
    return status


async def accept(hub: Hub, agent: Any, conversation_id: Any) -> dict[str, Any]:
    """Accept an offer: the atomic claim in the state store decides; SQL then records the assignment."""
    cid = conv_id(conversation_id)
    if not await hub.store.accept(cid, agent.id):
        raise HubError("conflict", "this offer is no longer yours (it timed out or was taken)")
    conv = await hub.repo.conversation(cid)
    if conv is None:
        raise HubError("not_found", "conversation not found")
    moved = await hub.repo.move(
        cid, Transition(sources(Move.ACCEPT), target(Move.ACCEPT), assign_to=agent.id, stamp_assigned=True),
        note=TimelineNote(
            hub.kind(conv.channel), conv.channel, f"{agent.display_name} joined the {hub.noun(conv.channel)}",
            {"event": "accepted"}, agent_id=agent.id,
        ),
    )
    if moved is None:  # closed or handed back meanwhile: give the claim back
        await hub.store.release(cid, hub.clock())
        raise HubError("conflict", "this conversation is no longer waiting for an agent")
    conv, customer = moved.conversation, moved.customer
    hub.last_queue_info.pop(cid, None)
    spec = hub.channels.get(conv.channel)
    if spec is not None and spec.connects_agent:  # a call: the adapter bridges the agent to the caller
        from contact_center.usecases import calls

        calls.connect_later(hub, conv, agent.id)
    await hub.tell_customer(conv.channel, cid, "agent_joined", {"conversation_id": cid, "agent_name": agent.display_name})
    point = await outbound.point_of(hub, conv)
    return {**conversation_json(hub, conv, customer, point), "messages": await history(hub, cid, 0, for_customer=False)}


async def decline(hub: Hub, agent: Any, conversation_id: Any) -> dict[str, Any]:
    """Decline an offer: the conversation goes back to the queue, keeping its place, and is not offered to
    this agent again for ``hub.decline_skip`` seconds (then it may be, if nobody else took it)."""
    cid = conv_id(conversation_id)
    if await hub.store.decline(cid, agent.id, hub.clock()) is None:
        raise HubError("conflict", "there is no offer of this conversation to you")
    hub.kick()
    return {"conversation_id": cid, "skip_seconds": hub.decline_skip}


async def agent_gone(hub: Hub, agent_id: int) -> int:
    """The agent's last console went away: their offers and conversations go back to the queue, none lost."""
    entries = await hub.store.requeue_agent(agent_id, hub.clock())
    await hub.log_state(agent_id, AgentStatus.OFFLINE.value)
    ids = [e.conversation_id for e in entries]
    for cid in ids:
        conv: ConversationRow | None = await hub.repo.conversation(cid)
        if conv is None:
            continue
        moved = await hub.repo.move(
            cid, Transition(sources(Move.AGENT_LOST), target(Move.AGENT_LOST), unassign=True, only_if_agent=agent_id),
            note=TimelineNote(hub.kind(conv.channel), conv.channel, "Agent disconnected; back in the queue",
                              {"event": "requeued", "agent_id": agent_id}),
        )
        spec = hub.channels.get(conv.channel)
        if moved is not None and spec is not None and spec.connects_agent:  # the caller waits again
            from contact_center.usecases import calls

            await calls.back_to_queue(hub, moved.conversation)
    if ids:
        hub.kick()
    return len(ids)


async def start_wrap_up(hub: Hub, agent_id: int) -> None:
    """After their last conversation closes, an available agent gets a short wrap-up before new offers."""
    presence = await hub.store.get_presence(agent_id)
    if not presence_rules.starts_wrap_up(
        hub.wrap_up_seconds, len(await hub.store.assignments_of(agent_id)), presence.status if presence else None
    ):
        return
    await hub.store.set_status(agent_id, AgentStatus.WRAP_UP.value, hub.clock())
    await hub.log_state(agent_id, AgentStatus.WRAP_UP.value)
    until = hub.clock() + hub.wrap_up_seconds
    await hub.tell_agent(agent_id, "status", {"status": "wrap_up", "until": until})
    old = hub.wrap_up_tasks.pop(agent_id, None)
    if old is not None:
        old.cancel()
    hub.wrap_up_tasks[agent_id] = asyncio.get_running_loop().create_task(_end_wrap_up(hub, agent_id))


async def _end_wrap_up(hub: Hub, agent_id: int) -> None:
    """Back to available when wrap-up time is over, unless the agent chose another state meanwhile."""
    await asyncio.sleep(hub.wrap_up_seconds)
    hub.wrap_up_tasks.pop(agent_id, None)
    presence = await hub.store.get_presence(agent_id)
    if presence_rules.ends_wrap_up(presence.status if presence else None):
        await hub.store.set_status(agent_id, AgentStatus.AVAILABLE.value, hub.clock())
        await hub.log_state(agent_id, AgentStatus.AVAILABLE.value)
        await hub.tell_agent(agent_id, "status", {"status": "available"})
        hub.kick()
