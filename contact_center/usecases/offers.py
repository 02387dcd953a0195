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
    reason = await status_reason(hub, agent.id) if presence.status == AgentStatus.AWAY.value else None
    return {
        "agent": {"id": agent.id, "username": agent.username, "display_name": agent.display_name, "role": agent.role},
        "status": presence.status,
        "status_reason": dict(reason) if reason else None,
        "conversations": conversations,
        "offers": offers,
        # "bot": the bot answers on this channel now (so the console offers "Back to bot" only then)
        "channels": [{**c, "bot": bool(c.get("bot")) and hub.bot_ready} for c in hub.channels.describe()],
    }


# --- missed offers: two in a row and the agent is set Away (domain/presence.py) ----------------------------
#
# The count of offers missed in a row and the reason the hub set an agent Away are in the shared state: with
# several hub processes, each offer may expire on a different one, and the agent's console may be on a third.


async def status_reason(hub: Hub, agent_id: int) -> dict[str, Any] | None:
    """Why the hub (not the agent) set the agent's state: ``{reason, missed, since}``, or None."""
    return (await hub.store.status_reasons()).get(agent_id)


async def offer_answered(hub: Hub, agent_id: int) -> None:
    """The agent accepted or declined an offer: they are at their desk, the missed streak starts again."""
    await hub.store.reset_missed(agent_id)


async def state_chosen(hub: Hub, agent_id: int) -> None:
    """The agent (or a supervisor) chose a state: the hub's reason for the last one no longer holds."""
    await hub.store.set_status_reason(agent_id, None)
    await hub.store.reset_missed(agent_id)


async def offer_missed(hub: Hub, agent_id: int, conversation_id: int) -> bool:
    """An offer to the agent timed out. After :data:`presence_rules.MISSED_OFFERS_AWAY` in a row the agent is
    set Away (reason ``missed_offers``), their consoles are told (``status`` with the reason) and so are the
    supervisors (an alert in the snapshot). Returns whether the agent was set Away."""
    streak = await hub.store.offer_missed(agent_id)
    async with hub.presence_lock(agent_id):
        presence = await hub.store.get_presence(agent_id)
        if not presence_rules.away_for_missed(streak, presence.status if presence else None):
            return False
        now = hub.clock()
        await hub.store.set_status(agent_id, AgentStatus.AWAY.value, now)
    await hub.store.reset_missed(agent_id)
    reason = {"reason": presence_rules.REASON_MISSED_OFFERS, "missed": streak, "since": now}
    await hub.store.set_status_reason(agent_id, reason)
    await hub.log_state(agent_id, AgentStatus.AWAY.value)
    await hub.tell_agent(agent_id, "status", {"status": AgentStatus.AWAY.value, **reason})
    log.warning("agent set away: missed offers in a row",
                extra={"agent_id": agent_id, "missed": streak, "conversation_id": conversation_id})
    return True


async def _ensure_presence(hub: Hub, agent_id: int, row: Any) -> AgentPresence:
    """The agent's presence, created ``away`` if the shared state has none (under the agent's presence lock)."""
    presence = await hub.store.get_presence(agent_id)
    if presence is None:
        now = hub.clock()
        presence = AgentPresence(
            agent_id=agent_id, status=AgentStatus.AWAY.value, since=now, node=hub.node,
            load={}, capacity=presence_rules.capacity_of(row.capacity), skills=dict(row.skills or {}), idle_since=now,
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
    await state_chosen(hub, agent.id)
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
    await offer_answered(hub, agent.id)
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
    back = await hub.store.decline(cid, agent.id, hub.clock())
    if back is None:
        raise HubError("conflict", "there is no offer of this conversation to you")
    await offer_answered(hub, agent.id)
    if back.pin_strict:  # their own call (click-to-call): nobody else may take it, so it is withdrawn
        await pin_refused(hub, cid)
    hub.kick()
    return {"conversation_id": cid, "skip_seconds": hub.decline_skip}


async def pin_refused(hub: Hub, conversation_id: int) -> None:
    """The one agent a contact was pinned to (strictly: click-to-call) declined it or let it time out: it leaves the
    queue (its callback cancelled), since nobody else may take it."""
    from contact_center.usecases import callbacks  # (callbacks -> calls -> this module)

    await callbacks.withdraw_pinned(hub, conversation_id)


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
