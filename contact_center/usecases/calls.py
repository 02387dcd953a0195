"""Live contacts (the phone): what the channel's adapter tells the core about a call, and what an agent
asks the adapter to do to it.

The core never speaks a provider's protocol: it asks the conversation's adapter for a
:class:`~contact_center.ports.CallAction` (bridge the agent who accepted, hold, mute, hang up, put the
caller back in the queue) and hears back through :func:`contact_state`, :func:`request_agent`,
:func:`contact_ended` and :func:`call_status`. Which channels have calls, and which actions they allow,
is data in their ChannelSpec (``connects_agent``, ``call_actions``).
"""

from __future__ import annotations

import logging
from typing import Any

from contact_center.domain.conversations import ABANDONED, Move, sources, target
from contact_center.ports import CallAction, ConversationRow, DeliveryReport, Notice, TimelineNote, Transition
from contact_center.usecases import bot_turns, router
from contact_center.usecases.context import Hub
from contact_center.usecases.errors import HubError

log = logging.getLogger("contact_center.hub")

CUSTOMER_ENDED = "customer_ended"
"""The disposition of a call the customer ended before an agent closed it (while in self-service)."""


def _control(hub: Hub, channel: str) -> Any:
    """The channel's adapter if it takes call actions."""
    adapter = hub.channels.adapter(channel) if hub.channels.get(channel) is not None else None
    return adapter if adapter is not None and hasattr(adapter, "act") else None


async def act(hub: Hub, conv: ConversationRow, kind: str, agent_id: int | None, target_: str | None = None) -> DeliveryReport:
    """Ask the conversation's adapter to do ``kind`` to the live contact."""
    adapter = _control(hub, conv.channel)
    if adapter is None or conv.id is None or not conv.thread_key:
        return DeliveryReport("failed", error_code="no_call", error_message="this conversation has no live call")
    return await adapter.act(CallAction(
        kind=kind, conversation_id=conv.id, thread_key=conv.thread_key, agent_id=agent_id,
        customer_address=conv.customer_address, our_address=conv.our_address, target=target_,
    ))


async def connect_agent(hub: Hub, conv: ConversationRow, agent_id: int) -> None:
    """The agent accepted a call: the adapter bridges them to the caller; a failure is told to the agent."""
    try:
        report = await act(hub, conv, "connect_agent", agent_id)
    except Exception as exc:  # noqa: BLE001 - logged and told: the agent must not wait for a call that never comes
        log.exception("connecting the agent failed", extra={"conversation_id": conv.id})
        report = DeliveryReport("failed", error_code="error", error_message=str(exc)[:200])
    if report.status == "failed":
        await hub.tell_agent(agent_id, "call_status", {
            "conversation_id": conv.id, "status": "failed",
            "detail": {"code": report.error_code, "message": report.error_message or "the call could not be connected"},
        })


def connect_later(hub: Hub, conv: ConversationRow, agent_id: int) -> None:
    """Bridge the agent in the background (the accept answers at once)."""
    hub.spawn(hub.delivery_tasks, connect_agent(hub, conv, agent_id))


async def call_action(hub: Hub, agent: Any, conversation_id: Any, kind: Any, target_: Any = None) -> dict[str, Any]:
    """An agent's action on their live call (hold, mute, hang up...), as the channel allows."""
    conv = await hub.assigned(agent, conversation_id)
    spec = hub.channels.get(conv.channel)
    if spec is None or not spec.call_actions:
        raise HubError("bad_request", "this conversation has no call")
    if kind not in spec.call_actions:
        raise HubError("bad_request", f"action must be one of {', '.join(spec.call_actions)}")
    if target_ is not None and (not isinstance(target_, str) or not target_.startswith(("agent:", "queue:")) or len(target_) > 80):
        raise HubError("bad_request", "target must be agent:<id> or queue:<name>")
    report = await act(hub, conv, kind, agent.id, target_)
    if report.status == "failed":
        raise HubError("conflict", report.error_message or "the call could not do that now")
    return {"conversation_id": conv.id, "action": kind, "status": report.status}


async def _by_thread(hub: Hub, channel: str, thread_key: str) -> ConversationRow | None:
    return await hub.repo.thread(channel, thread_key)


async def contact_state(hub: Hub, channel: str, thread_key: str) -> dict[str, Any] | None:
    """The conversation of a live contact: what the adapter needs to decide what the caller hears."""
    conv = await _by_thread(hub, channel, thread_key)
    if conv is None or conv.id is None:
        return None
    found = await hub.repo.with_customer(conv.id)
    customer = found[1] if found else None
    return {
        "conversation_id": conv.id,
        "status": conv.status,
        "customer_id": conv.customer_id,
        "customer_name": customer.display_name if customer is not None else "",
        "agent_id": conv.assigned_agent_id,
        "agent_name": await hub.agent_name(conv.assigned_agent_id),
        "queue": await router.queue_info(hub, conv.id) if conv.status == "queued" else None,
    }


async def request_agent(hub: Hub, channel: str, thread_key: str, reason: str, context: dict[str, Any] | None = None) -> bool:
    """The self-service asks for a person: queued with what it knew (as the bot's handover)."""
    conv = await _by_thread(hub, channel, thread_key)
    if conv is None or conv.id is None:
        return False
    spec = hub.channels.get(conv.channel)
    by = f"{spec.label} menu" if spec is not None else "Menu"  # the channel's self-service, not the bot
    return await bot_turns.hand_over(hub, conv.id, reason, dict(context or {"reason": reason}), by=by)


async def contact_ended(hub: Hub, channel: str, thread_key: str, reason: str) -> bool:
    """The customer hung up. Waiting and never answered: abandoned. In self-service: closed. With an agent:
    the agent is told and wraps up (they close it with a disposition). True if the conversation moved."""
    conv = await _by_thread(hub, channel, thread_key)
    if conv is None or conv.id is None or conv.status == "closed":
        return False
    note = TimelineNote(hub.kind(conv.channel), conv.channel, f"The customer ended the {hub.noun(conv.channel)} ({reason})",
                        {"event": "ended", "reason": reason})
    if conv.status == "assigned":
        await hub.repo.record(conv.customer_id, conv.id, note)
        await hub.tell(Notice("agent", conv.assigned_agent_id or 0, "call_status",
                              {"conversation_id": conv.id, "status": "ended", "detail": {"reason": reason}}))
        return False
    answered = getattr(conv, "assigned_at", None) is not None
    if conv.status == "queued" and not answered:
        t = Transition(sources(Move.ABANDON), target(Move.ABANDON), close=True, abandoned=True, disposition=ABANDONED)
    else:
        t = Transition(sources(Move.CLOSE), target(Move.CLOSE), close=True, disposition=CUSTOMER_ENDED)
    moved = await hub.repo.move(conv.id, t, note=note)
    if moved is None:
        return False
    hub.last_queue_info.pop(conv.id, None)
    offered_to = await hub.store.release(conv.id, hub.clock())
    if offered_to is not None:
        await hub.tell_agent(offered_to, "offer_revoked", {"conversation_id": conv.id})
    hub.kick()
    return True


async def call_status(hub: Hub, channel: str, thread_key: str, status: str, detail: dict[str, Any] | None = None) -> None:
    """Tell the call's agent (and watchers) what the provider says of it."""
    conv = await _by_thread(hub, channel, thread_key)
    if conv is None or conv.id is None:
        return
    data = {"conversation_id": conv.id, "status": str(status)[:30], "detail": dict(detail or {})}
    notices = []
    if conv.assigned_agent_id is not None:
        notices.append(Notice("agent", conv.assigned_agent_id, "call_status", data))
    if conv.id in hub.watched:
        notices.append(Notice("watchers", conv.id, "call_status", data))
    await hub.tell(*notices)


async def back_to_queue(hub: Hub, conv: ConversationRow) -> None:
    """The agent's leg is gone (transfer, lost console): the caller waits again, on hold music."""
    if _control(hub, conv.channel) is None:
        return
    try:
        report = await act(hub, conv, "requeue", None)
        if report.status == "failed":
            log.warning("the caller could not be put back in the queue", extra={"conversation_id": conv.id, "reason": report.error_message})
    except Exception:  # noqa: BLE001 - logged; the conversation is queued in SQL either way
        log.exception("putting the caller back in the queue failed", extra={"conversation_id": conv.id})



async def end_call(hub: Hub, conv: ConversationRow, agent_id: int) -> None:
    """The agent closed the conversation of a call: hang it up if it is still live (best effort)."""
    if _control(hub, conv.channel) is None:
        return
    try:
        await act(hub, conv, "hang_up", agent_id)
    except Exception:  # noqa: BLE001 - logged; the conversation is closed in SQL either way
        log.exception("hanging up the closed call failed", extra={"conversation_id": conv.id})
