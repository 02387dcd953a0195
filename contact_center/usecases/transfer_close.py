"""Transfer and close: an agent hands a conversation on or wraps it up; a waiting customer who leaves abandons."""

from __future__ import annotations

import logging
from typing import Any

from contact_center.domain.conversations import ABANDONED, DISPOSITIONS, Move, can_abandon, sources, target
from contact_center.ports import NewMessage, QueueEntry, TimelineNote, Transition
from contact_center.usecases import offers, outbound
from contact_center.usecases.context import Hub
from contact_center.usecases.errors import HubError, agent_id as check_agent_id
from contact_center.usecases.views import message_json

log = logging.getLogger("contact_center.hub")

TRANSFER_TEXT = "You are being transferred to a colleague who can help further."


async def close(hub: Hub, agent: Any, conversation_id: Any, disposition: Any, note: Any = "") -> None:
    """Wrap up a conversation with a disposition; the agent's capacity is freed."""
    if disposition not in DISPOSITIONS:
        raise HubError("bad_request", f"disposition must be one of {', '.join(DISPOSITIONS)}")
    note_text = note.strip()[:1000] if isinstance(note, str) else ""
    conv = await hub.assigned(agent, conversation_id)
    assert conv.id is not None
    moved = await hub.repo.move(
        conv.id, Transition(sources(Move.CLOSE), target(Move.CLOSE), close=True, disposition=disposition),
        note=TimelineNote(
            hub.kind(conv.channel), conv.channel,
            f"{hub.noun(conv.channel).capitalize()} closed ({disposition})" + (f": {note_text}" if note_text else ""),
            {"disposition": disposition, "note": note_text}, agent_id=agent.id,
        ),
    )
    if moved is None:
        raise HubError("conflict", "this conversation is closed")
    holder = await hub.store.release(conv.id, hub.clock())
    spec = hub.channels.get(conv.channel)
    if spec is not None and spec.connects_agent:  # closing a call ends it, if the caller is still on the line
        from contact_center.usecases import calls

        await calls.end_call(hub, moved.conversation, agent.id)
    await hub.tell_customer(conv.channel, conv.id, "closed", {"conversation_id": conv.id, "disposition": disposition})
    await hub.tell_agent(conv.assigned_agent_id or agent.id, "conversation_closed", {"conversation_id": conv.id})
    if holder is not None:
        await offers.start_wrap_up(hub, holder)
    hub.kick()


async def transfer(
    hub: Hub, agent: Any, conversation_id: Any, *, queue: Any = None, to_agent: Any = None, note: Any = ""
) -> dict[str, Any]:
    """Hand a conversation to another queue or a named agent; it keeps its place in line."""
    if queue is None and to_agent is None:
        raise HubError("bad_request", "give a queue or an agent to transfer to")
    if queue is not None and queue not in hub.rules:
        raise HubError("bad_request", f"queue must be one of {', '.join(sorted(hub.rules))}")
    target_agent = None
    if to_agent is not None:
        to_agent = check_agent_id(to_agent)
        target_agent = await hub.repo.agent(to_agent)
        if target_agent is None or not target_agent.active:
            raise HubError("not_found", "no such agent")
    note_text = note.strip()[:500] if isinstance(note, str) else ""
    conv = await hub.assigned(agent, conversation_id)
    assert conv.id is not None
    if to_agent is not None and to_agent == conv.assigned_agent_id:
        raise HubError("bad_request", "this conversation is already with that agent")
    holder = conv.assigned_agent_id
    current_queue = next((n for n, i in hub.queue_ids.items() if i == conv.queue_id), hub.default_queue)
    new_queue = queue or current_queue
    where = f"queue {new_queue}" if target_agent is None else f"agent {target_agent.display_name}"
    moved = await hub.repo.move(
        conv.id, Transition(sources(Move.TRANSFER), target(Move.TRANSFER), unassign=True, queue_id=hub.queue_ids.get(new_queue)),
        message=NewMessage("system", TRANSFER_TEXT),
        note=TimelineNote(
            hub.kind(conv.channel), conv.channel,
            f"Transferred by {agent.display_name} to {where}" + (f": {note_text}" if note_text else ""),
            {"event": "transferred", "queue": new_queue, "to_agent": to_agent, "note": note_text}, agent_id=agent.id,
        ),
    )
    if moved is None:
        raise HubError("conflict", "this conversation is closed")
    await hub.store.release(conv.id, hub.clock())
    entry = hub.entry(moved.conversation, moved.customer)
    await hub.store.enqueue(
        QueueEntry(entry.conversation_id, new_queue, entry.channel, entry.priority, entry.enqueued_at, frozenset(), to_agent)
    )
    spec = hub.channels.get(conv.channel)
    if spec is not None and spec.connects_agent:  # a call: the caller waits again until the next agent accepts
        from contact_center.usecases import calls

        await calls.back_to_queue(hub, moved.conversation)
    if moved.message is not None:
        await outbound.publish(hub, conv.id, None, message_json(moved.message), to_customer=spec)
    if holder is not None:
        await hub.tell_agent(holder, "conversation_closed", {"conversation_id": conv.id, "reason": "transferred"})
    hub.kick()
    return {"conversation_id": conv.id, "queue": new_queue, "agent_id": to_agent}


async def customer_left(hub: Hub, customer_id: int, *, channel: str | None = None) -> bool:
    """The customer's last connection went away and did not come back in time: a waiting conversation is abandoned.

    Only a conversation still waiting in a queue (never answered) is abandoned; one with an agent stays
    open for the agent to close. Only live channels (the customer is connected while they wait) abandon
    by absence. Returns whether a conversation was abandoned.
    """
    spec = hub.live_channel(channel)
    conv = await hub.repo.open_conversation(customer_id, spec.name)
    if conv is None or not can_abandon(conv.status, getattr(conv, "assigned_at", None) is not None):
        return False
    assert conv.id is not None
    moved = await hub.repo.move(
        conv.id, Transition(sources(Move.ABANDON), target(Move.ABANDON), close=True, abandoned=True, disposition=ABANDONED),
        note=TimelineNote(hub.kind(conv.channel), conv.channel, f"Left the {spec.noun} while waiting (abandoned)", {"event": "abandoned"}),
    )
    if moved is None:
        return False
    hub.open_chats.pop((customer_id, spec.name), None)
    hub.last_queue_info.pop(conv.id, None)
    offered_to = await hub.store.release(conv.id, hub.clock())
    if offered_to is not None:
        await hub.tell_agent(offered_to, "offer_revoked", {"conversation_id": conv.id})
    log.info("conversation abandoned", extra={"conversation_id": conv.id, "customer_id": customer_id})
    hub.kick()
    return True
