"""The bot's turns: the customer's message to the bot, its replies out the same channel, the handover to a
person and the hand-back (``docs/subsystems/bot.md``)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Protocol, Sequence

from contact_center.domain.conversations import ANSWERED_BY_BOT, Move, bot_is_sure, sources, target
from contact_center.ports import NewMessage, TimelineNote, Transition
from contact_center.usecases import outbound, router
from contact_center.usecases.context import Hub
from contact_center.usecases.errors import HubError
from contact_center.usecases.views import message_json

log = logging.getLogger("contact_center.hub")

BOT_UNAVAILABLE_TEXT = "Our assistant is not available right now, so I'm passing you to a colleague. Please stay with us."


class BotReplyLike(Protocol):
    """One bot message (``integrations.rasa.client.BotReply``)."""

    text: str
    buttons: tuple[dict[str, str], ...]
    custom: dict[str, Any]

    @property
    def handoff(self) -> bool: ...


class Bot(Protocol):
    """The ordering bot, reached over HTTP (``integrations.rasa.client.RasaClient``)."""

    async def send(self, sender: str, text: str, metadata: dict[str, Any] | None = None) -> Sequence[BotReplyLike]: ...

    async def ready(self) -> bool: ...


class BotDown(Exception):
    """The bot could not take a turn."""


def bot_payload(raw: Any) -> str | None:
    """A button's payload sent with a customer's message ("/intent{...}" for the bot), if valid."""
    if isinstance(raw, str) and raw.startswith("/") and 1 < len(raw) <= 200 and "\x00" not in raw:
        return raw
    return None


def jsonable(value: Any) -> Any:
    """The bot's JSON, bounded, as plain JSON types (it comes from another process)."""
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        return None
    return json.loads(text) if len(text) <= 20_000 else None


_REASONS = {
    "customer_request": "the customer asked for a person", "fallback": "the bot did not understand twice",
    "bot_unavailable": "the bot was unavailable", "hub_unavailable": "the bot could not reach the shop",
    "order_rejected": "the order could not be placed", "identity_check": "the customer's identity needs checking",
    "bot_error": "the bot failed",
}
_NOT_SHOWN = ("customer_id", "conversation_id", "requested_slot", "handed_off", "failed_attempts")


def handoff_summary(reason: str, context: dict[str, Any], by: str = "Bot") -> str:
    """The internal note the agent reads first: why the bot handed over and what it already knows."""
    parts = [f"{by} handover: {_REASONS.get(reason, reason)}."]
    if context.get("intent"):
        parts.append(f"Intent: {context['intent']}.")
    slots = context.get("slots") if isinstance(context.get("slots"), dict) else {}
    filled = {k: v for k, v in slots.items() if v not in (None, "", [], {}) and k not in _NOT_SHOWN}
    if filled:
        parts.append("Known: " + ", ".join(f"{k}={v}" for k, v in list(filled.items())[:12]) + ".")
    draft = context.get("draft")
    if isinstance(draft, dict) and draft:
        lines = draft.get("lines") if isinstance(draft.get("lines"), list) else []
        desc = "; ".join(
            f"{ln.get('quantity', '?')} x {ln.get('name') or ln.get('sku') or '?'}" for ln in lines if isinstance(ln, dict)
        )
        parts.append(f"Order draft: {desc or draft}.")
    return " ".join(parts)[:2000]


def can_parse(hub: Hub) -> bool:
    """Whether the bot is up and can say how sure it is of one text (its NLU alone)."""
    return hub.bot is not None and hub.bot_ready and hasattr(hub.bot, "parse")


def start_if_sure(hub: Hub, conv: Any, customer: Any, text: str) -> None:
    """A new conversation on a channel where the bot answers only what it is sure of: decide in the background."""
    assert conv.id is not None
    hub.spawn(hub.bot_tasks, _answer_if_sure(hub, conv, customer, text), conv.id)


async def _answer_if_sure(hub: Hub, conv: Any, customer: Any, text: str) -> None:
    """Ask the NLU how sure it is; sure of an allowed intent: the bot answers and the conversation is closed as
    answered by the bot (the agent sees it all if the customer writes again); else it joins the queue."""
    spec = hub.channels.get(conv.channel)
    answered = False
    try:
        parsed = await hub.bot.parse(text)
        sure = spec is not None and bot_is_sure(
            str(parsed.get("intent") or ""), float(parsed.get("confidence") or 0.0), spec.bot_when_sure, spec.bot_sure_intents
        )
        if sure:
            answered = await _answer_alone(hub, conv, text, parsed)
    except Exception:  # noqa: BLE001 - logged; a person answers instead
        log.exception("the bot's sure answer failed; a person answers", extra={"conversation_id": conv.id})
    if not answered:
        current = await hub.repo.conversation(conv.id)
        if current is not None and current.status == "queued":
            await router.enqueue(hub, hub.entry(current, customer))


async def _answer_alone(hub: Hub, conv: Any, text: str, parsed: dict[str, Any]) -> bool:
    """The bot's turn on its own; True if it answered and did not hand over (the conversation is then closed)."""
    moved = await hub.repo.move(conv.id, Transition(sources(Move.HAND_BACK), target(Move.HAND_BACK), unassign=True))
    if moved is None:
        return False
    replies = list(await hub.bot.send(f"conv-{conv.id}", text, {
        "customer_id": conv.customer_id, "conversation_id": conv.id, "channel": conv.channel, "answer_alone": True,
    }))
    handoff = next((dict(r.custom) for r in replies if r.handoff), None)
    said = False
    for reply in replies:
        if reply.text or reply.buttons:
            await says(hub, conv.id, reply.text, reply.buttons)
            said = True
    if handoff is not None or not said:
        await hand_over(hub, conv.id, str((handoff or {}).get("reason") or "bot_unsure"), handoff or {"reason": "bot_unsure"})
        return False
    closed = await hub.repo.move(
        conv.id, Transition(sources(Move.CLOSE), target(Move.CLOSE), close=True, disposition=ANSWERED_BY_BOT),
        note=TimelineNote(hub.kind(conv.channel), conv.channel,
                          f"The bot answered alone ({parsed.get('intent')}, {float(parsed.get('confidence') or 0):.0%} sure)",
                          {"event": "answered_by_bot", "intent": parsed.get("intent"), "confidence": parsed.get("confidence")}),
    )
    return closed is not None


def start(hub: Hub, conversation_id: int, customer_id: int, text: str) -> None:
    """Give the customer's message to the bot in the background (turns of one conversation stay in order)."""
    hub.spawn(hub.bot_tasks, turn(hub, conversation_id, customer_id, text), conversation_id)


async def turn(hub: Hub, conversation_id: int, customer_id: int, text: str) -> None:
    """One bot turn: send the text, publish the replies, hand over to a person when the bot says so.

    Rasa down, failing or slower than its limit: the customer is told and the conversation goes to an
    agent; the customer's message is already stored, so nothing is lost.
    """
    lock, users = hub.bot_locks.get(conversation_id) or (asyncio.Lock(), 0)
    hub.bot_locks[conversation_id] = (lock, users + 1)
    try:
        await _turn_locked(hub, lock, conversation_id, customer_id, text)
    finally:
        lock, users = hub.bot_locks[conversation_id]
        if users <= 1:
            del hub.bot_locks[conversation_id]
        else:
            hub.bot_locks[conversation_id] = (lock, users - 1)


async def _turn_locked(hub: Hub, lock: asyncio.Lock, conversation_id: int, customer_id: int, text: str) -> None:
    async with lock:
        try:
            conv = await hub.repo.conversation(conversation_id)
            if conv is None or conv.status != "bot":
                return  # handed over (or closed) meanwhile: the bot stays silent
            if hub.bot is None:
                raise BotDown("no bot is configured")
            try:
                replies = list(await hub.bot.send(f"conv-{conversation_id}", text, {
                    "customer_id": customer_id, "conversation_id": conversation_id, "channel": conv.channel,
                }))
            except Exception as exc:  # noqa: BLE001 - any failure of the bot means: a person takes over
                raise BotDown(str(exc)) from exc
            handoff: dict[str, Any] | None = None
            for reply in replies:
                if reply.handoff:
                    handoff = dict(reply.custom)
                if reply.text or reply.buttons:
                    await says(hub, conversation_id, reply.text, reply.buttons)
            if handoff is not None:
                await hand_over(hub, conversation_id, str(handoff.get("reason") or "bot"), handoff)
        except BotDown as exc:
            log.warning("bot unavailable; handing over", extra={"conversation_id": conversation_id, "reason": str(exc)})
            await says(hub, conversation_id, BOT_UNAVAILABLE_TEXT, ())
            await hand_over(hub, conversation_id, "bot_unavailable", {"reason": "bot_unavailable", "detail": str(exc)[:300]})
        except Exception:  # noqa: BLE001 - logged; the conversation must not be left with a silent bot
            log.exception("bot turn failed", extra={"conversation_id": conversation_id})
            await hand_over(hub, conversation_id, "bot_error", {"reason": "bot_error"})


async def says(hub: Hub, conversation_id: int, text: str, buttons: Sequence[dict[str, str]]) -> None:
    """Store a bot message (with its buttons) and send it to the customer (and any watcher)."""
    conv = await hub.repo.conversation(conversation_id)
    spec = hub.channels.get(conv.channel) if conv is not None else None
    attachments: list[dict[str, object]] = [{"type": "buttons", "buttons": list(buttons)}] if buttons else []
    msg, _ = await hub.repo.append(
        conversation_id, NewMessage("bot", text or "", sender_id="bot", attachments=attachments),
        delivery_status=hub.initial_status(spec),
    )
    await outbound.publish(hub, conversation_id, None, message_json(msg, "Assistant"), to_customer=spec)


async def hand_over(hub: Hub, conversation_id: int, reason: str, context: dict[str, Any], *, by: str = "Bot") -> bool:
    """The bot passes the conversation to a person: queued for an agent with what the bot knew.

    The agent gets the bot's context (intent, slots, order draft) as an internal note at the top of what
    they see, so the customer never repeats anything. False if it was not with the bot any more.
    """
    conv = await hub.repo.conversation(conversation_id)
    if conv is None or conv.status != "bot":
        return False
    moved = await hub.repo.move(
        conversation_id, Transition(sources(Move.HAND_OVER), target(Move.HAND_OVER), stamp_queued=True),
        message=NewMessage(
            "bot", handoff_summary(reason, context, by), sender_id="bot", internal=True,
            attachments=[{"type": "handoff", "reason": reason, "context": jsonable(context)}],
        ),
        note=TimelineNote(
            hub.kind(conv.channel), conv.channel, f"{by} handed over to an agent ({reason})",
            {"event": "handoff", "reason": reason, "intent": context.get("intent"), "slots": jsonable(context.get("slots") or {}),
             "draft": jsonable(context.get("draft"))},
        ),
    )
    if moved is None:
        return False
    await router.enqueue(hub, hub.entry(moved.conversation, moved.customer))
    return True


async def hand_back(hub: Hub, agent: Any, conversation_id: Any) -> dict[str, Any]:
    """The agent gives the conversation back to the bot, which resumes where it stopped (an open form goes on)."""
    from contact_center.usecases import offers

    if hub.bot is None or not hub.bot_ready:
        raise HubError("conflict", "the bot is not available")
    conv = await hub.assigned(agent, conversation_id)
    assert conv.id is not None
    spec = hub.channels.get(conv.channel)
    if spec is not None and spec.connects_agent:
        raise HubError("bad_request", f"a {spec.noun} cannot be handed back to the bot; transfer it instead")
    if spec is not None and not spec.bot_first:
        raise HubError("bad_request", f"the bot does not answer on {spec.label}")
    moved = await hub.repo.move(
        conv.id, Transition(sources(Move.HAND_BACK), target(Move.HAND_BACK), unassign=True),
        note=TimelineNote(
            hub.kind(conv.channel), conv.channel, f"{agent.display_name} handed the {hub.noun(conv.channel)} back to the bot",
            {"event": "to_bot"}, agent_id=agent.id,
        ),
    )
    if moved is None:
        raise HubError("conflict", "this conversation cannot go back to the bot now")
    holder = await hub.store.release(conv.id, hub.clock())
    await hub.tell_agent(holder or agent.id, "conversation_closed", {"conversation_id": conv.id, "reason": "to_bot"})
    if holder is not None:
        await offers.start_wrap_up(hub, holder)
    start(hub, conv.id, conv.customer_id, "/resume_bot")
    hub.kick()
    return {"conversation_id": conv.id, "status": "bot"}


async def watch_bot(hub: Hub, interval: float = 5.0) -> None:
    """Keep ``bot_ready`` true only while the bot answers its status check."""
    while True:
        if hub.bot is not None:
            ready = await hub.bot.ready()
            if ready != hub.bot_ready:
                log.info("bot %s", "ready" if ready else "not ready: new conversations go to agents")
            hub.bot_ready = ready
        await asyncio.sleep(interval)
