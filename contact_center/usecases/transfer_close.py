"""Transfer and close: an agent hands a conversation on or wraps it up; a waiting customer who leaves abandons."""

from __future__ import annotations

import logging
from typing import Any, Sequence

from contact_center.domain.conversations import (
    DISPOSITIONS,
    Move,
    absent_long_enough,
    can_abandon,
    departure,
    sources,
    target,
)
from contact_center.ports import NewMessage, QueueEntry, StateUnavailable, TimelineNote, Transition
from contact_center.usecases import offers, outbound, router
from contact_center.usecases.context import Hub
from contact_center.usecases.errors import HubError, agent_id as check_agent_id
from contact_center.usecases.views import message_json

log = logging.getLogger("contact_center.hub")

TRANSFER_TEXT = "You are being transferred to a colleague who can help further."

TRANSFER_SENDER_SKIP_SECONDS = 600.0
"""A conversation transferred to a queue is not offered back to the agent who sent it for this long, when someone
else serves that queue now (available or busy, with its skills). When nobody else does, the sender stays eligible:
the console asks them first ("nobody else is available: it may come back to you")."""


async def _others_serve(hub: Hub, queue: str, sender: int) -> bool:
    """Whether an agent other than ``sender`` takes contacts now (available or busy) with the queue's skills."""
    from contact_center.domain.routing import AgentStatus

    rule = hub.rules.get(queue)
    required = rule.skills_required if rule is not None else frozenset()
    for p in await hub.store.all_presence():
        if p.agent_id == sender or p.status not in (AgentStatus.AVAILABLE.value, AgentStatus.BUSY.value):
            continue
        if all(int(p.skills.get(s, 0) or 0) >= 1 for s in required):
            return True
    return False


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
    entry = hub.entry(moved.conversation, moved.customer)
    try:
        await hub.store.release(conv.id, hub.clock())
        skip_sender = holder is not None and to_agent is None and await _others_serve(hub, new_queue, holder)
    except StateUnavailable:  # SQL has it queued: the rebuild puts it in the shared queue when Redis is back
        skip_sender = False
    now = hub.clock()
    await router.enqueue(hub, QueueEntry(
        entry.conversation_id, new_queue, entry.channel, entry.priority, entry.enqueued_at,
        frozenset({holder}) if skip_sender and holder is not None else frozenset(), to_agent,
        # the router skips the agents in declined_by while now - declined_at < decline_skip: this keeps the
        # sender skipped for TRANSFER_SENDER_SKIP_SECONDS (a later decline by someone else restarts the usual skip)
        declined_at=now + TRANSFER_SENDER_SKIP_SECONDS - hub.decline_skip if skip_sender else 0.0,
    ))
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
    """The customer's last connection to this process went away the grace period ago: unless they are
    connected to some process since, their waiting conversation is given up (see :func:`give_up`).
    Returns whether one was."""
    spec = hub.live_channel(channel)
    if customer_id in set(hub.connected_customers()):
        return False
    seen = (await hub.store.customers_last_seen([customer_id])).get(customer_id)
    if not absent_long_enough(hub.clock(), seen, hub.presence_known_since, hub.abandon_grace):
        return False
    conv = await hub.repo.open_conversation(customer_id, spec.name)
    if conv is None:
        return False
    return await give_up(hub, conv, customer_id)


async def give_up(hub: Hub, conv: Any, customer_id: int) -> bool:
    """A waiting conversation of a live channel whose customer is gone is closed.

    Only one waiting in a queue (offered included: the offer is revoked); one with an agent stays open for
    the agent to close. Never answered: abandoned. Answered before and back in the queue since (the agent
    left, a transfer, a declined or missed offer): closed as ``customer_left``, not counted as abandoned.
    The move is a compare-and-set on the state, so two processes never both give it up.
    """
    if not can_abandon(conv.status):
        return False
    assert conv.id is not None
    spec = hub.spec(conv.channel)
    disposition, abandoned = departure(getattr(conv, "assigned_at", None) is not None)
    text = (f"Left the {spec.noun} while waiting (abandoned)" if abandoned
            else f"Left the {spec.noun} while waiting again for an agent")
    moved = await hub.repo.move(
        conv.id, Transition(sources(Move.ABANDON), target(Move.ABANDON), close=True, abandoned=abandoned, disposition=disposition),
        note=TimelineNote(hub.kind(conv.channel), conv.channel, text, {"event": "abandoned" if abandoned else "customer_left"}),
    )
    if moved is None:
        return False
    hub.open_chats.pop((customer_id, spec.name), None)
    hub.last_queue_info.pop(conv.id, None)
    offered_to = await hub.store.release(conv.id, hub.clock())
    if offered_to is not None:
        await hub.tell_agent(offered_to, "offer_revoked", {"conversation_id": conv.id, "reason": "customer_left"})
    log.info("waiting conversation given up: the customer left",
             extra={"conversation_id": conv.id, "customer_id": customer_id, "disposition": disposition})
    hub.kick()
    return True


async def customer_seen(hub: Hub, customer_id: int) -> None:
    """One of the customer's widgets connected, or their last one went: they were here now."""
    await hub.store.customers_seen([customer_id], hub.clock())


async def customers_connected(hub: Hub) -> None:
    """Say in the shared state that the customers connected to this process are here now (every few
    seconds; each process for its own, so a customer on any process counts as present)."""
    ids = list(hub.connected_customers())
    if ids:
        await hub.store.customers_seen(ids, hub.clock())


async def give_up_absent(hub: Hub, waiting: Sequence[tuple[Any, Any]] | None = None) -> int:
    """Give up the waiting conversations of live channels whose customer has been gone for the grace
    period (``hub.abandon_grace``), on any process: the sweep behind every way back to the queue.

    ``waiting``: the queued conversations with their customers, if the caller has just read them. A
    customer connected to this process is present whatever the shared state says; one with no record
    counts as gone since ``hub.presence_known_since`` (this process's start, or the last rebuild of a lost
    shared state). Returns how many were given up.
    """
    if waiting is None:
        waiting = await hub.repo.conversations_with_customers("queued")
    candidates = []
    for conv, customer in waiting:
        spec = hub.channels.get(conv.channel)
        if spec is None or not spec.tracks_presence or customer is None or customer.id is None:
            continue
        candidates.append((conv, int(customer.id)))
    if not candidates:
        return 0
    here = set(hub.connected_customers())
    seen = await hub.store.customers_last_seen([c for _, c in candidates if c not in here])
    now = hub.clock()
    done = 0
    for conv, customer_id in candidates:
        if customer_id in here:
            continue
        if not absent_long_enough(now, seen.get(customer_id), hub.presence_known_since, hub.abandon_grace):
            continue
        try:
            done += await give_up(hub, conv, customer_id)
        except Exception:  # noqa: BLE001 - one conversation's failure never stops the sweep; logged
            log.exception("could not give up a waiting conversation", extra={"conversation_id": conv.id})
    return done
