"""What supervisors do to conversations and agents: set an agent's state, reassign, whisper, watch.

Supervisors and admins only; each action is recorded on the customer's timeline or the state log.
"""

from __future__ import annotations

import logging
from typing import Any

from contact_center.domain import presence as presence_rules
from contact_center.domain.routing import AgentStatus
from contact_center.ports import NewMessage, TimelineNote
from contact_center.usecases import offers, outbound, transfer_close
from contact_center.usecases.context import SUPERVISOR_ROLES, Hub
from contact_center.usecases.errors import HubError, agent_id as check_agent_id, clean_text, conv_id
from contact_center.usecases.inbound import history
from contact_center.usecases.views import message_json
from crm_store.domain.interactions import InteractionKind

log = logging.getLogger("contact_center.hub")


def require_supervisor(actor: Any) -> None:
    """Refuse anyone but supervisors and admins."""
    if actor.role not in SUPERVISOR_ROLES:
        raise HubError("forbidden", "supervisors only")


async def set_agent_status(hub: Hub, actor: Any, agent_id: Any, status: Any) -> str:
    """A supervisor changes an agent's state; the agent's console is told. Recorded on the state log."""
    require_supervisor(actor)
    agent_id = check_agent_id(agent_id)
    try:
        status = presence_rules.check_choosable(status)
    except presence_rules.NotChoosable as exc:
        raise HubError("bad_request", str(exc)) from None
    if await hub.store.set_status(agent_id, status, hub.clock()) is None:
        raise HubError("not_found", "that agent is not logged in")
    await offers.state_chosen(hub, agent_id)
    await hub.log_state(agent_id, status)
    await hub.tell_agent(agent_id, "status", {"status": status, "by": actor.display_name})
    if status == AgentStatus.AVAILABLE.value:
        hub.kick()
    log.info("supervisor set agent state", extra={"actor": actor.id, "agent_id": agent_id, "status": status})
    return status


async def reassign(hub: Hub, actor: Any, conversation_id: Any, *, to_agent: Any = None, to_queue: Any = None) -> dict[str, Any]:
    """A supervisor moves a conversation to another agent or queue (a transfer on their authority)."""
    require_supervisor(actor)
    return await transfer_close.transfer(
        hub, actor, conversation_id, queue=to_queue, to_agent=to_agent, note=f"reassigned by supervisor {actor.display_name}"
    )


async def whisper(hub: Hub, actor: Any, conversation_id: Any, raw_text: Any) -> dict[str, Any]:
    """A supervisor's note to the agent in a conversation: the agent sees it, the customer never does."""
    require_supervisor(actor)
    text = clean_text(raw_text)
    conv = await hub.assigned(actor, conversation_id)
    assert conv.id is not None
    msg, _ = await hub.repo.append(
        conv.id, NewMessage("supervisor", text, sender_id=str(actor.id), internal=True),
        note=TimelineNote(InteractionKind.NOTE.value, conv.channel, f"Whisper from {actor.display_name}: {text[:250]}",
                          {"event": "whisper"}, agent_id=actor.id),
    )
    payload = message_json(msg, actor.display_name)
    await outbound.publish(hub, conv.id, conv.assigned_agent_id, payload, to_customer=None)
    return payload


async def monitor(hub: Hub, actor: Any, conversation_id: Any, watcher: str) -> dict[str, Any]:
    """A supervisor starts watching a conversation silently: its transcript now, its messages live after.

    The caller (the supervisors' namespace) puts the connection among the conversation's watchers. Recorded.
    """
    require_supervisor(actor)
    cid = conv_id(conversation_id)
    conv = await hub.repo.conversation(cid)
    if conv is None:
        raise HubError("not_found", "conversation not found")
    await hub.repo.record(conv.customer_id, cid, TimelineNote(
        InteractionKind.NOTE.value, conv.channel, f"{actor.display_name} watched the {hub.noun(conv.channel)}",
        {"event": "monitor"}, agent_id=actor.id,
    ))
    await hub.store.add_watcher(cid, watcher)
    hub.watched.add(cid)
    return {"conversation_id": cid, "status": conv.status, "messages": await history(hub, cid, 0, for_customer=False)}


async def unmonitor(hub: Hub, conversation_id: int, watcher: str) -> None:
    """The watcher stops watching (their connection left, or they closed the view)."""
    await hub.store.remove_watcher(conversation_id, watcher)
