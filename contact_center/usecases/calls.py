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

from contact_center.domain import calls as call_rules
from contact_center.domain.calls import Consultation
from contact_center.domain.conversations import ABANDONED, Move, sources, target
from contact_center.domain.routing import AgentSnapshot, AgentStatus, QueueRule, WaitingContact, can_take, pick_agent
from contact_center.ports import CallAction, ConversationRow, DeliveryReport, NewMessage, Notice, TimelineNote, Transition
from contact_center.usecases import bot_turns, outbound, router
from contact_center.usecases.context import SUPERVISOR_ROLES, Hub
from contact_center.usecases.errors import HubError, conv_id
from contact_center.usecases.views import conversation_json, message_json

log = logging.getLogger("contact_center.hub")

CUSTOMER_ENDED = "customer_ended"
"""The disposition of a call the customer ended before an agent closed it (while in self-service)."""


def _control(hub: Hub, channel: str) -> Any:
    """The channel's adapter if it takes call actions."""
    adapter = hub.channels.adapter(channel) if hub.channels.get(channel) is not None else None
    return adapter if adapter is not None and hasattr(adapter, "act") else None


async def act(
    hub: Hub, conv: ConversationRow, kind: str, agent_id: int | None, target_: str | None = None, *,
    mode: str | None = None, leg: str | None = None, record: bool = False,
) -> DeliveryReport:
    """Ask the conversation's adapter to do ``kind`` to the live contact."""
    adapter = _control(hub, conv.channel)
    if adapter is None or conv.id is None or not conv.thread_key:
        return DeliveryReport("failed", error_code="no_call", error_message="this conversation has no live call")
    target_agent = _agent_of_target(target_)
    return await adapter.act(CallAction(
        kind=kind, conversation_id=conv.id, thread_key=conv.thread_key, agent_id=agent_id,
        customer_address=conv.customer_address, our_address=conv.our_address, target=target_, mode=mode, leg=leg,
        record=record, agent_phone=await own_phone(hub, agent_id),
        target_phone=await own_phone(hub, target_agent) if target_agent is not None else "",
    ))


async def own_phone(hub: Hub, agent_id: int | None) -> str:
    """The number the agent takes calls on instead of the console's softphone ("" : the softphone)."""
    if agent_id is None:
        return ""
    row = await hub.repo.agent(agent_id)
    return str(getattr(row, "phone_number", None) or "") if row is not None else ""


def _agent_of_target(target_: str | None) -> int | None:
    if target_ and target_.startswith("agent:") and target_[6:].isdigit() and len(target_) <= 18:
        return int(target_[6:])
    return None


async def connect_agent(hub: Hub, conv: ConversationRow, agent_id: int) -> None:
    """The agent accepted a call: the adapter bridges them to the caller; a failure is told to the agent."""
    try:
        from contact_center.usecases import callbacks  # a callback: the hub dials the customer (agent first)

        called_back = await callbacks.connect(hub, conv, agent_id)
        report = called_back or await act(hub, conv, "connect_agent", agent_id, record=await records_calls(hub, conv))
    except Exception as exc:  # noqa: BLE001 - logged and told: the agent must not wait for a call that never comes
        log.exception("connecting the agent failed", extra={"conversation_id": conv.id})
        report = DeliveryReport("failed", error_code="error", error_message=str(exc)[:200])
    if report.status == "failed":
        await hub.tell_agent(agent_id, "call_status", {
            "conversation_id": conv.id, "status": "failed",
            "detail": {"code": report.error_code, "message": report.error_message or "the call could not be connected"},
        })


async def records_calls(hub: Hub, conv: ConversationRow) -> bool:
    """Whether the call's queue records calls (``queues.record_calls``, off by default): read at each bridge, so a
    change takes effect for the next call without a restart."""
    if conv.queue_id is None:
        return False
    try:
        queues = await hub.repo.queues()
    except Exception:  # noqa: BLE001 - not recording is the safe side
        log.warning("could not read whether the queue records calls", exc_info=True)
        return False
    return any(getattr(q, "id", None) == conv.queue_id and bool(getattr(q, "record_calls", False)) for q in queues)


def connect_later(hub: Hub, conv: ConversationRow, agent_id: int) -> None:
    """Bridge the agent in the background (the accept answers at once)."""
    hub.spawn(hub.delivery_tasks, connect_agent(hub, conv, agent_id))


async def call_action(hub: Hub, agent: Any, conversation_id: Any, kind: Any, target_: Any = None) -> dict[str, Any]:
    """An agent's action on their live call (hold, mute, hang up...), as the channel allows."""
    conv = await hub.assigned(agent, conversation_id)
    spec = hub.channels.get(conv.channel)
    if spec is None or not spec.call_actions:
        raise HubError("bad_request", "this conversation has no call")
    if kind in _RECORDING and spec.connects_agent:
        return await _RECORDING[kind](hub, agent, conv)
    if kind not in spec.call_actions:
        raise HubError("bad_request", f"action must be one of {', '.join(spec.call_actions)}")
    if target_ is not None and (not isinstance(target_, str) or not target_.startswith(("agent:", "queue:")) or len(target_) > 80):
        raise HubError("bad_request", "target must be agent:<id> or queue:<name>")
    if kind in _WARM:
        return await _WARM[kind](hub, agent, conv, target_)
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
    if conv is None or conv.id is None:
        return False
    if conv.status == "closed":
        if getattr(conv, "disposition", None) == ABANDONED:  # a repeat: finishes a callback a failure left unmade
            await _call_back_abandoned(hub, conv)
        return False
    note = TimelineNote(hub.kind(conv.channel), conv.channel, f"The customer ended the {hub.noun(conv.channel)} ({reason})",
                        {"event": "ended", "reason": reason})
    if conv.status == "assigned":
        await hub.repo.record(conv.customer_id, conv.id, note)
        c = await current_consult(hub, conv)
        if c is not None and c.open:  # the conference ended with the caller: the colleague's leg with it
            await _record_consult(hub, conv, c.moved(call_rules.CANCELLED), "The caller hung up during the consultation.",
                                  f"The consultation with {c.target_name} ended: the caller hung up", None)
            await _release_colleague(hub, c.target_agent)
            await hub.tell_agent(c.target_agent, "consult_ended", {"conversation_id": conv.id, "reason": "caller_left"})
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
        await hub.tell_agent(offered_to, "offer_revoked", {"conversation_id": conv.id, "reason": "customer_left"})
    hub.kick()
    if t.abandoned:
        await _call_back_abandoned(hub, conv)
    return True


async def _call_back_abandoned(hub: Hub, conv: ConversationRow) -> None:
    """A caller who hung up after waiting long enough is called back (``callbacks.from_abandoned``: once per call).
    A failure raises: the provider's status callback is answered "try again", and its repeat finishes it."""
    from contact_center.usecases import callbacks

    if callbacks.enabled(hub):
        await callbacks.from_abandoned(hub, conv)


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


# --- warm transfer: consult a colleague while the caller is held, then complete or cancel -------------------
#
# The use case decides (who may, whom to, what it means for the assignment and the timeline); the adapter does
# the provider's part (hold the caller, ring the colleague into the call's conference, drop the first agent).
# The consultation is recorded as internal messages of the conversation (contact_center.domain.calls): SQL
# holds it, so whichever hub process hears the colleague's leg answer (or not) finds it.

CONSULT_SCAN = 200  # the last messages read for the consultation's latest record


async def current_consult(hub: Hub, conv: ConversationRow) -> Consultation | None:
    """The conversation's latest consultation (open or not), from its recent internal messages."""
    if conv.id is None:
        return None
    rows = await hub.repo.messages(conv.id, max(0, int(conv.last_seq or 0) - CONSULT_SCAN), include_internal=True, limit=CONSULT_SCAN + 50)
    return call_rules.latest(getattr(m, "attachments", None) for m in rows if getattr(m, "internal", False))


async def _record_consult(hub: Hub, conv: ConversationRow, c: Consultation, text: str, summary: str, actor_id: int | None) -> None:
    """One step of the consultation: an internal message for the agent (its record) and a timeline entry."""
    assert conv.id is not None
    msg, _ = await hub.repo.append(
        conv.id, NewMessage("system", text, internal=True, attachments=[c.attachment()]),
        note=TimelineNote(hub.kind(conv.channel), conv.channel, summary, {"event": f"consult_{c.state}", **c.json()}, agent_id=actor_id),
    )
    await outbound.publish(hub, conv.id, conv.assigned_agent_id, message_json(msg), to_customer=None)


async def _free_agent(hub: Hub, agent_id: int, channel: str) -> bool:
    """Whether the agent is online with room for one more contact on the channel (a call takes them whole)."""
    p = await hub.store.get_presence(agent_id)
    if p is None or p.status == AgentStatus.OFFLINE.value:
        return False
    try:
        status = AgentStatus(p.status)
    except ValueError:
        return False
    return can_take(AgentSnapshot(p.agent_id, status, p.skills, p.capacity, p.load, p.idle_since), channel)


async def _consult_target(hub: Hub, agent: Any, conv: ConversationRow, target_: Any) -> tuple[int, str]:
    """The colleague to consult (id, name): a named agent who is free, or a queue's next available agent."""
    if not isinstance(target_, str) or not target_.startswith(("agent:", "queue:")):
        raise HubError("bad_request", "target must be agent:<id> or queue:<name>")
    kind, _, value = target_.partition(":")
    if kind == "agent":
        if not value.isdigit() or len(value) > 12:
            raise HubError("bad_request", "target must be agent:<id> or queue:<name>")
        agent_id = int(value)
        refused = call_rules.refuse_start(None, agent.id, agent.id, agent_id)
        if refused is not None:
            raise HubError(*refused)
        row = await hub.repo.agent(agent_id)
        if row is None or not row.active:
            raise HubError("not_found", "no such agent")
        if not await _free_agent(hub, agent_id, conv.channel):
            raise HubError("conflict", f"{row.display_name} cannot take a call now (away, offline or on another call)")
        return agent_id, row.display_name
    if value not in hub.rules:
        raise HubError("bad_request", f"queue must be one of {', '.join(sorted(hub.rules))}")
    now = hub.clock()
    snapshots = []
    for p in await hub.store.all_presence():
        try:
            snapshots.append(AgentSnapshot(p.agent_id, AgentStatus(p.status), p.skills, p.capacity, p.load, p.idle_since))
        except ValueError:
            continue
    assert conv.id is not None
    contact = WaitingContact(conv.id, value, conv.channel, now, declined_by=frozenset({agent.id}))
    rules: dict[str, QueueRule] = {value: hub.rules[value]}
    picked = pick_agent(contact, snapshots, rules, now)
    if picked is None:
        raise HubError("conflict", f"nobody in the {value} queue is free to take a call now")
    row = await hub.repo.agent(picked)
    return picked, (row.display_name if row is not None else f"agent {picked}")


async def _release_colleague(hub: Hub, agent_id: int) -> None:
    """The consultation is over (cancelled, failed, completed, the call ended): the colleague's hold goes, and
    the router may offer them contacts again."""
    try:
        if await hub.store.release_hold(agent_id, call_rules.CONSULT_HOLD, hub.clock()):
            hub.kick()
    except Exception:  # noqa: BLE001 - logged; a rebuild of the shared state drops it too (presence from SQL)
        log.exception("releasing a consulted colleague failed", extra={"agent_id": agent_id})


async def consult(hub: Hub, agent: Any, conv: ConversationRow, target_: Any) -> dict[str, Any]:
    """The agent on the call consults a colleague: the caller is held (music) and the colleague's phone rings
    into the call; the colleague is told (``consult_request``)."""
    assert conv.id is not None
    current = await current_consult(hub, conv)
    refused = call_rules.refuse_start(current, agent.id, conv.assigned_agent_id if conv.status == "assigned" else None)
    if refused is not None:
        raise HubError(*refused)
    target_id, target_name = await _consult_target(hub, agent, conv, target_)
    # reserved before their phone rings (atomic: of two consultations, or a consultation and an offer, one wins)
    if not await hub.store.hold_agent(target_id, call_rules.CONSULT_HOLD, conv.channel):
        raise HubError("conflict", f"{target_name} cannot take a call now (away, offline or on another call)")
    try:
        report = await act(hub, conv, "consult", agent.id, f"agent:{target_id}")
    except Exception:
        await _release_colleague(hub, target_id)
        raise
    if report.status == "failed":
        await _release_colleague(hub, target_id)
        raise HubError("conflict", report.error_message or "the colleague could not be called")
    c = Consultation(agent.id, target_id, target_name, call_rules.RINGING, report.provider_id)
    await _record_consult(
        hub, conv, c, f"Consulting {target_name}: their phone rings; the caller is on hold.",
        f"{agent.display_name} consulted {target_name} (the caller on hold)", agent.id,
    )
    found = await hub.repo.with_customer(conv.id)
    customer = found[1] if found else None
    await hub.tell_agent(target_id, "consult_request", {
        "conversation_id": conv.id, "from_agent_id": agent.id, "from_agent_name": agent.display_name,
        "customer_name": customer.display_name if customer is not None else "", "customer_address": conv.customer_address,
        "channel": conv.channel, "leg": c.leg,
    })
    return {"conversation_id": conv.id, "action": "consult", "status": "sent", "consult": c.json()}


async def complete_consult(hub: Hub, agent: Any, conv: ConversationRow, target_: Any = None) -> dict[str, Any]:
    """The consulting agent completes the warm transfer: they drop out, the colleague has the call (the
    assignment moves; the timeline says "transferred to X after consultation")."""
    from contact_center.usecases import offers  # (offers imports this module)
    from contact_center.usecases.inbound import history

    assert conv.id is not None
    c = await current_consult(hub, conv)
    refused = call_rules.refuse_complete(c, agent.id)
    if refused is not None:
        raise HubError(*refused)
    assert c is not None
    report = await act(hub, conv, "complete_transfer", agent.id, f"agent:{c.target_agent}", leg=c.leg)
    if report.status == "failed":
        raise HubError("conflict", report.error_message or "the transfer could not be completed")
    done = c.moved(call_rules.COMPLETED)
    moved = await hub.repo.move(
        conv.id, Transition(frozenset({"assigned"}), "assigned", assign_to=c.target_agent, only_if_agent=agent.id),
        message=NewMessage("system", f"Transferred to {c.target_name} after consultation.", internal=True,
                           attachments=[done.attachment()]),
        note=TimelineNote(
            hub.kind(conv.channel), conv.channel, f"{agent.display_name} transferred to {c.target_name} after consultation",
            {"event": "transferred", "warm": True, "from_agent": agent.id, "to_agent": c.target_agent}, agent_id=agent.id,
        ),
    )
    if moved is None:
        raise HubError("conflict", "this call is closed or no longer yours")
    await hub.store.release(conv.id, hub.clock())
    await hub.store.restore_assignment(hub.entry(moved.conversation, moved.customer), c.target_agent)
    await _release_colleague(hub, c.target_agent)  # after: the call's own unit of load holds them now
    payload = {**conversation_json(hub, moved.conversation, moved.customer, await outbound.point_of(hub, moved.conversation)),
               "messages": await history(hub, conv.id, 0, for_customer=False), "leg": c.leg,
               "from_agent_name": agent.display_name}
    await hub.tell_agent(agent.id, "conversation_closed", {"conversation_id": conv.id, "reason": "transferred"})
    await hub.tell_agent(c.target_agent, "conversation_assigned", payload)
    if conv.id in hub.watched and moved.message is not None:
        await hub.tell(Notice("watchers", conv.id, "message", message_json(moved.message)))
    await offers.start_wrap_up(hub, agent.id)
    hub.kick()
    return {"conversation_id": conv.id, "action": "complete_transfer", "status": "sent", "agent_id": c.target_agent}


async def _end_consult(hub: Hub, conv: ConversationRow, c: Consultation, state: str, text: str, summary: str, actor_id: int | None) -> None:
    """The consultation is over without a transfer: the colleague's leg goes, the caller is taken off hold."""
    assert conv.id is not None
    report = await act(hub, conv, "cancel_consult", c.by_agent, f"agent:{c.target_agent}", leg=c.leg)
    if report.status == "failed":
        log.warning("the consultation could not be undone on the call", extra={"conversation_id": conv.id, "reason": report.error_message})
    await _record_consult(hub, conv, c.moved(state), text, summary, actor_id)
    await _release_colleague(hub, c.target_agent)
    await hub.tell_agent(c.target_agent, "consult_ended", {"conversation_id": conv.id, "reason": state})
    await hub.tell_agent(c.by_agent, "call_status", {"conversation_id": conv.id, "status": f"consult_{state}",
                                                     "detail": {"agent_name": c.target_name}})


async def cancel_consult(hub: Hub, agent: Any, conv: ConversationRow, target_: Any = None) -> dict[str, Any]:
    """The consulting agent (or a supervisor) cancels: the colleague's leg is removed, the caller unheld."""
    c = await current_consult(hub, conv)
    refused = call_rules.refuse_cancel(c, agent.id, agent.role in SUPERVISOR_ROLES)
    if refused is not None:
        raise HubError(*refused)
    assert c is not None and conv.id is not None
    await _end_consult(hub, conv, c, call_rules.CANCELLED, f"Consultation with {c.target_name} cancelled: the caller is back with you.",
                       f"{agent.display_name} cancelled the consultation with {c.target_name}", agent.id)
    return {"conversation_id": conv.id, "action": "cancel_consult", "status": "sent"}


_WARM = {"consult": consult, "complete_transfer": complete_consult, "cancel_consult": cancel_consult}


async def consult_leg(hub: Hub, channel: str, thread_key: str, leg: str, status: str) -> None:
    """The provider's word on the consulted colleague's leg: answered (they talk), or gone (no answer, busy,
    hung up: the consultation ends and the caller is taken off hold)."""
    conv = await _by_thread(hub, channel, thread_key)
    if conv is None or conv.id is None:
        return
    if conv.status == "closed":  # closed with the consultation open: its colleague's leg ends it; they are free
        c = await current_consult(hub, conv)
        if c is not None and c.open and c.leg == leg and status in ("completed", "busy", "failed", "no-answer", "canceled"):
            await _release_colleague(hub, c.target_agent)
        return
    c = await current_consult(hub, conv)
    if c is not None and c.state == call_rules.COMPLETED and c.leg == leg and c.target_agent == conv.assigned_agent_id:
        # after the transfer this leg is the call's agent leg: its news is the agent's
        await hub.tell_agent(c.target_agent, "call_status", {"conversation_id": conv.id, "status": f"agent_{status.replace('-', '_')}",
                                                              "detail": {"call_sid": leg}})
        return
    state = call_rules.after_leg_status(c, leg, status)
    if state is None or c is None:
        return
    if state == call_rules.TALKING:
        await _record_consult(hub, conv, c.moved(state, leg), f"{c.target_name} answered: you are talking with them; the caller is on hold.",
                              f"{c.target_name} answered the consultation", c.target_agent)
        await hub.tell_agent(c.by_agent, "call_status", {"conversation_id": conv.id, "status": "consult_answered",
                                                         "detail": {"agent_name": c.target_name}})
        return
    if state == call_rules.FAILED:
        words = {"busy": "declined", "no-answer": "did not answer", "failed": "could not be reached", "canceled": "was not reached"}.get(status, status)
        await _end_consult(hub, conv, c, state, f"{c.target_name} {words}: the caller is back with you.",
                           f"Consultation with {c.target_name} failed: {words}", None)
        return
    await _end_consult(hub, conv, c, state, f"{c.target_name} left the consultation: the caller is back with you.",
                       f"{c.target_name} left the consultation", None)


# --- supervisors on a call: listen, whisper, barge ---------------------------------------------------------


async def supervise(hub: Hub, actor: Any, conversation_id: Any, mode: Any) -> dict[str, Any]:
    """A supervisor joins a live call: ``listen`` (nobody hears them), ``whisper`` (only the agent hears them),
    ``barge`` (everyone does), or ``leave``. The supervisor's phone (``client:agent_<id>``) rings into the call's
    conference the first time; later modes change how it is in the call. Recorded on the timeline."""
    from contact_center.usecases.supervision import require_supervisor

    require_supervisor(actor)
    if mode != "leave" and mode not in call_rules.SUPERVISE_MODES:
        raise HubError("bad_request", f"mode must be one of {', '.join(call_rules.SUPERVISE_MODES)} or leave")
    cid = conv_id(conversation_id)
    conv = await hub.repo.conversation(cid)
    if conv is None:
        raise HubError("not_found", "conversation not found")
    spec = hub.channels.get(conv.channel)
    if spec is None or not spec.connects_agent:
        raise HubError("bad_request", "this conversation has no call")
    if conv.status != "assigned" or conv.assigned_agent_id is None:
        raise HubError("conflict", "this call has ended" if conv.status == "closed" else "this call has no agent on it yet")
    if mode == "leave":
        report = await act(hub, conv, "end_supervision", actor.id, f"agent:{conv.assigned_agent_id}")
        return {"conversation_id": cid, "mode": "leave", "status": report.status}
    report = await act(hub, conv, "supervise", actor.id, f"agent:{conv.assigned_agent_id}", mode=str(mode))
    if report.status == "failed":
        raise HubError("conflict", report.error_message or "the supervisor could not join the call")
    agent_name = await hub.agent_name(conv.assigned_agent_id) or "the agent"
    await hub.repo.record(conv.customer_id, cid, TimelineNote(
        hub.kind(conv.channel), conv.channel, f"{actor.display_name} {call_rules.SUPERVISE_WORDS[str(mode)]} the call with {agent_name}",
        {"event": f"supervisor_{mode}", "supervisor": actor.id, "agent_id": conv.assigned_agent_id}, agent_id=actor.id,
    ))
    if mode != "listen":  # listening is silent; a whisper or a barge is heard, so the agent is told
        await hub.tell_agent(conv.assigned_agent_id, "call_status", {
            "conversation_id": cid, "status": f"supervisor_{mode}", "detail": {"supervisor_name": actor.display_name},
        })
    log.info("supervisor on a call", extra={"actor": actor.id, "conversation_id": cid, "mode": mode})
    return {"conversation_id": cid, "mode": mode, "status": report.status, "leg": report.provider_id}


# --- call recording: the provider's news, and the agent's pause while the caller types digits --------------
#
# Whether a call is recorded is its queue's (``queues.record_calls``); the adapter does the provider's part (the
# consent notice, the recorded conference, pausing). The recording's states are kept as internal messages of the
# conversation (contact_center.domain.calls: SQL holds them, any hub process finds them) and on the timeline.

RECORDING_SCAN = 200


async def current_recording(hub: Hub, conv: ConversationRow) -> call_rules.Recording | None:
    """The call's latest recording state, from its recent internal messages."""
    if conv.id is None:
        return None
    rows = await hub.repo.messages(conv.id, max(0, int(conv.last_seq or 0) - RECORDING_SCAN), include_internal=True,
                                   limit=RECORDING_SCAN + 50)
    return call_rules.latest_recording(getattr(m, "attachments", None) for m in rows if getattr(m, "internal", False))


def _recording_summary(rec: call_rules.Recording, by: str | None = None) -> str:
    if rec.state == call_rules.REC_IN_PROGRESS:
        return f"{by} resumed the call's recording" if by else "The call is being recorded (the caller heard the consent notice)"
    if rec.state == call_rules.REC_PAUSED:
        return f"{by} paused the call's recording while the caller typed digits" if by else "The call's recording was paused"
    if rec.state == call_rules.REC_COMPLETED:
        length = f" ({rec.duration // 60} min {rec.duration % 60} s)" if rec.duration is not None else ""
        return f"Call recording{length}: {rec.url or rec.sid}"
    return call_rules.RECORDING_WORDS[rec.state]


async def _record_recording(hub: Hub, conv: ConversationRow, rec: call_rules.Recording, actor: Any = None) -> None:
    """One state of the recording: an internal message (the console's indicator, while the call is open) and a
    timeline entry (the link, once complete)."""
    assert conv.id is not None
    note = TimelineNote(hub.kind(conv.channel), conv.channel, _recording_summary(rec, getattr(actor, "display_name", None)),
                        {"event": f"recording_{rec.state.replace('-', '_')}", "recording": rec.json()},
                        agent_id=getattr(actor, "id", None))
    if conv.status == "closed":  # the recording completes after the call: the timeline keeps it
        await hub.repo.record(conv.customer_id, conv.id, note)
        return
    msg, _ = await hub.repo.append(
        conv.id, NewMessage("system", call_rules.RECORDING_WORDS[rec.state], internal=True, attachments=[rec.attachment()]), note=note,
    )
    await outbound.publish(hub, conv.id, conv.assigned_agent_id, message_json(msg), to_customer=None)


async def call_recording(hub: Hub, channel: str, thread_key: str, recording_id: str, state: str,
                         detail: dict[str, Any] | None = None) -> bool:
    """The provider's news of a call's recording: kept once, in order (a repeat or a late one changes nothing)."""
    conv = await _by_thread(hub, channel, thread_key)
    if conv is None or conv.id is None or not recording_id:
        return False
    current = await current_recording(hub, conv)
    if not call_rules.recording_moves(current, recording_id, state):
        return False
    detail = dict(detail or {})
    url, duration = detail.get("url"), detail.get("duration")
    rec = call_rules.Recording(recording_id[:64], state, str(url)[:500] if url else None,
                               int(duration) if isinstance(duration, (int, str)) and str(duration).isdigit() else None)
    await _record_recording(hub, conv, rec)
    return True


async def _set_recording(hub: Hub, agent: Any, conv: ConversationRow, pause: bool) -> dict[str, Any]:
    current = await current_recording(hub, conv)
    refused = call_rules.refuse_pause(current, pause)
    if refused is not None:
        raise HubError(*refused)
    assert current is not None
    kind = "pause_recording" if pause else "resume_recording"
    report = await act(hub, conv, kind, agent.id, leg=current.sid)
    if report.status == "failed":
        raise HubError("conflict", report.error_message or "the recording could not be changed now")
    rec = call_rules.Recording(current.sid, call_rules.REC_PAUSED if pause else call_rules.REC_IN_PROGRESS)
    await _record_recording(hub, conv, rec, agent)
    return {"conversation_id": conv.id, "action": kind, "status": "sent", "recording": rec.json()}


async def pause_recording(hub: Hub, agent: Any, conv: ConversationRow) -> dict[str, Any]:
    """The caller is about to type digits (a card number, a code): the recording skips them until resumed."""
    return await _set_recording(hub, agent, conv, True)


async def resume_recording(hub: Hub, agent: Any, conv: ConversationRow) -> dict[str, Any]:
    """The caller has typed their digits: the recording goes on."""
    return await _set_recording(hub, agent, conv, False)


_RECORDING = {"pause_recording": pause_recording, "resume_recording": resume_recording}


async def callback_requested(hub: Hub, channel: str, thread_key: str, source: str, number: str) -> None:
    """The caller asked to be called back: a timeline entry on the customer, and a real callback (issue 15) that
    keeps the call's place in the queue while the call's own conversation leaves it (``callbacks.from_call``)."""
    conv = await _by_thread(hub, channel, thread_key)
    if conv is None or conv.id is None:
        return
    words = {"fallback": "the hub could not answer the call", "wait_offer": "while waiting in the queue"}.get(source, source)
    await hub.repo.record(conv.customer_id, conv.id, TimelineNote(
        hub.kind(conv.channel), conv.channel, f"Callback requested ({words}): call {number or 'the customer'} back",
        {"event": "callback_requested", "source": source[:30], "number": number[:40]},
    ))
    from contact_center.usecases import callbacks

    if callbacks.enabled(hub):
        await callbacks.from_call(hub, channel, thread_key, source, number)
