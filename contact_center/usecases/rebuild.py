"""Set-up and the rebuild from SQL: the queues' rules, and whatever the shared state lost (a Redis flush or
restart loses no conversation: SQL is the truth)."""

from __future__ import annotations

import logging
from typing import Sequence

from contact_center.domain import presence as presence_rules
from contact_center.domain.routing import QueueRule
from contact_center.ports import AgentPresence, ConversationRow, CustomerRow
from contact_center.usecases.context import Hub

log = logging.getLogger("contact_center.hub")


async def load_queues(hub: Hub) -> None:
    """Read queue rules from SQL; each channel's default queue is the first one that serves it."""
    queues = list(await hub.repo.queues())
    names = {q.id: q.name for q in queues}
    hub.rules = {
        q.name: QueueRule(
            name=q.name,
            skills_required=frozenset(q.skills_required or []),
            sl_target_seconds=q.sl_target_seconds,
            overflow_to=names.get(q.overflow_queue_id) if q.overflow_queue_id else None,
            overflow_after_seconds=q.overflow_after_seconds,
        )
        for q in queues
    }
    hub.queue_ids = {q.name: q.id for q in queues if q.id is not None}
    fallback = queues[0].name if queues else "general"
    defaults: dict[str, str] = {}
    for spec in hub.channels.specs():
        serving = [q.name for q in queues if spec.name in (q.channels or [])]
        defaults[spec.name] = serving[0] if serving else fallback
    hub.channels.with_defaults(default_queues=defaults)
    hub.default_queue = fallback
    for name in {*defaults.values(), fallback}:
        hub.rules.setdefault(name, QueueRule(name=name, skills_required=frozenset()))


async def rebuild_state(hub: Hub) -> int:
    """Rebuild what the shared state lost from SQL; the number of conversations re-queued.

    In this order, each step a no-op for what the store still knows:

    1. the presence of every agent whose console is connected to this node, in the state SQL last
       recorded for them (``agent_state_log``; ``away`` if none), their capacity and skills;
    2. the assignments of the conversations SQL says an agent is handling, with one unit of load each,
       so nobody is offered past their capacity;
    3. the conversations SQL says are waiting, back into their queues;
    4. the hold on a colleague whose presence step 1 restored and who is being consulted on a call
       (SQL keeps the consultation's steps), so the router does not offer them contacts meanwhile;
    5. this process's marker in the store (``seal``), by which the routing loop sees a later loss.
    """
    back = await _restore_presences(hub)
    assigned = await _restore_assignments(hub)
    await _restore_consult_holds(hub, back, assigned)
    restored = 0
    for conv, customer in await hub.repo.conversations_with_customers("queued"):
        if await hub.store.enqueue(hub.entry(conv, customer)):
            restored += 1
    await hub.store.seal(hub.node)
    if restored:
        # the shared state was lost (or this process just started): its customers' "last seen" records may
        # be gone too, so absence is counted from now (connected customers are seen again within seconds)
        hub.presence_known_since = max(hub.presence_known_since, hub.clock())
        log.info("re-queued conversations from SQL", extra={"count": restored})
        hub.kick()
    return restored


async def _restore_presences(hub: Hub) -> set[int]:
    """Presences of this node's connected agents that the store lost, in their last recorded state (their ids)."""
    known = {p.agent_id for p in await hub.store.all_presence()}
    missing = sorted(set(hub.connected_agents()) - known)
    if not missing:
        return set()
    now = hub.clock()
    last_state = await hub.repo.last_agent_states(missing)
    for row in await hub.repo.agents(missing):
        assert row.id is not None
        recorded = last_state.get(row.id)
        status = presence_rules.restored_status(recorded)
        await hub.store.set_presence(AgentPresence(
            agent_id=row.id, status=status, since=now, node=hub.node, load={},
            capacity=presence_rules.capacity_of(row.capacity), skills=dict(row.skills or {}), idle_since=now,
        ))
        if status != (recorded or "away"):
            await hub.log_state(row.id, status)
            await hub.tell_agent(row.id, "status", {"status": status})
        log.info("restored an agent's presence from SQL", extra={"agent_id": row.id, "status": status})
    hub.kick()
    return set(missing)


async def _restore_consult_holds(hub: Hub, agents: set[int], assigned: Sequence[tuple[ConversationRow, CustomerRow]]) -> None:
    """Reserve again the colleagues among ``agents`` whose consultation (ringing or talking) SQL says is open.

    The hold itself lives only in the shared state; the consultation's steps are the call's internal
    messages. Only when presences came back from SQL (the store lost them), so this reads the assigned
    calls' (``assigned``: the conversations step 2 read) recent messages at most once per loss.
    """
    if not agents:
        return
    from contact_center.domain import calls as call_rules
    from contact_center.usecases.calls import current_consult  # (calls imports the router, which imports this)

    for conv, _ in assigned:
        spec = hub.channels.get(conv.channel)
        if spec is None or "consult" not in spec.call_actions:
            continue
        c = await current_consult(hub, conv)
        if c is None or not c.open or c.target_agent not in agents:
            continue
        if await hub.store.hold_agent(c.target_agent, call_rules.CONSULT_HOLD, conv.channel):
            log.info("restored a consulted colleague's hold from SQL", extra={"agent_id": c.target_agent, "conversation_id": conv.id})


async def _restore_assignments(hub: Hub) -> Sequence[tuple[ConversationRow, CustomerRow]]:
    """Assignments SQL knows and the store lost; re-checked in SQL afterwards (a close may have raced).
    The assigned conversations (with their customers) as SQL listed them."""
    restored: dict[int, int] = {}
    assigned = await hub.repo.conversations_with_customers("assigned")
    for conv, customer in assigned:
        if conv.assigned_agent_id is None:
            continue
        assert conv.id is not None
        if await hub.store.restore_assignment(hub.entry(conv, customer), conv.assigned_agent_id):
            restored[conv.id] = conv.assigned_agent_id
    if not restored:
        return assigned
    now_rows = await hub.repo.conversations(list(restored))
    still = {c.id for c in now_rows if c.status == "assigned" and c.assigned_agent_id == restored.get(c.id or 0)}
    for cid in set(restored) - still:  # closed or moved while we restored it: give the load back
        await hub.store.release(cid, hub.clock())
    log.info("restored assignments from SQL", extra={"count": len(still)})
    return assigned
