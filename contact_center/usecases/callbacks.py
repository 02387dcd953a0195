"""Web callback (docs/subsystems/callback.md): a customer asks to be called back, now or at a chosen time; the
callback waits in SQL, enters its queue when due, is offered to an agent like a call, and once the agent accepts the
hub dials the customer and bridges them. Busy, no answer, a failed call or an answering machine: tried again later,
up to the policy's attempts; after the last, the customer is told we could not reach them.

The rules are in :mod:`contact_center.domain.callbacks`; SQL is reached through ``hub.callbacks`` (a
:class:`~contact_center.ports.CallbackStore`), the dialling through the ``callback`` channel's adapter (a
``CallControl``). Every move is a conditional update in SQL, so two hub processes never queue the same callback
twice nor dial the same attempt twice; a callback that fell due while every process was down is claimed by the
first :func:`tick` after they come back.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from contact_center.domain import callbacks as rules
from contact_center.domain.conversations import Move, sources, target
from contact_center.ports import (
    CallAction, ConversationRow, DeliveryReport, InboundEvent, NoticeSender, OutboundMessage, TimelineNote, Transition,
)
from contact_center.usecases import bot_turns, calls, inbound, router
from contact_center.usecases.context import Hub
from contact_center.usecases.errors import HubError

log = logging.getLogger("contact_center.callbacks")

CHANNEL = "callback"
THREAD_PREFIX = "cb-"


class CallbackError(HubError):
    """A refused request, with the rule's short ``reason`` (``bad_number``, ``country``, ``premium``, ``past``,
    ``closed``, ``number_rate``, ``visitor_rate``, ``too_many_open``...) beside the words."""

    def __init__(self, code: str, message: str, reason: str) -> None:
        super().__init__(code, message)
        self.reason = reason


CONFIRM_TEXT = "We will call you back {when} on this number. To cancel: {link}"
NOT_REACHED_TEXT = ("We tried to call you back {attempts} time(s) but could not reach you. "
                    "Reply to this message, chat with us or call us when it suits you.")


@dataclass
class CallbackConfig:
    """The settings of web callback (``CALLBACK_*``; docs/subsystems/callback.md)."""

    policy: rules.RetryPolicy = field(default_factory=rules.RetryPolicy)
    limits: rules.CallbackLimits = field(default_factory=rules.CallbackLimits)
    hours: rules.OpeningHours | None = field(default_factory=rules.OpeningHours)
    horizon_days: int = rules.DEFAULT_HORIZON_DAYS
    lease_seconds: float = 60.0
    stale_dialling_seconds: float = 600.0  # an attempt with no news this long is failed (and retried): never stuck
    claim_batch: int = 20
    queue: str = "support"
    caller_id: str = ""  # our published number, the caller ID the customer sees
    notify_channel: str = ""  # the channel that texts "we could not reach you" (the wiring names it; "": none)
    confirm_text: bool = True  # a web request is confirmed by a text with its cancel link (when notify_channel is set)
    email_channel: str = ""  # the channel that emails the same words where the customer has an address (the wiring names
    # it; used when the registry has it at send time: "": none)
    on_abandon_seconds: float = rules.DEFAULT_ON_ABANDON_SECONDS  # a caller who hung up after this long waiting: called back (0: off)


def now_utc(hub: Hub) -> datetime:
    return datetime.fromtimestamp(hub.clock(), timezone.utc)


def _store(hub: Hub) -> Any:
    store = getattr(hub, "callbacks", None)
    if store is None:
        raise HubError("unavailable", "callbacks are not set up on this hub")
    return store


def enabled(hub: Hub) -> bool:
    """Whether this hub calls back: a callback store and the ``callback`` channel (the phone wired its dialler)."""
    return getattr(hub, "callbacks", None) is not None and hub.channels.get(CHANNEL) is not None


def _config(hub: Hub) -> CallbackConfig:
    config = getattr(hub, "callback_config", None)
    return config if isinstance(config, CallbackConfig) else CallbackConfig()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def thread_key(callback_id: int, n: int) -> str:
    """The callback channel's conversation of attempt ``n`` (one conversation per attempt: each is one contact)."""
    return f"{THREAD_PREFIX}{int(callback_id)}-{int(n)}"


def parse_thread(key: str) -> tuple[int, int] | None:
    if not key.startswith(THREAD_PREFIX):
        return None
    a, _, b = key[len(THREAD_PREFIX):].partition("-")
    return (int(a), int(b)) if a.isdigit() and b.isdigit() else None


def cancel_link(hub: Hub, callback_id: int, token: str) -> str:
    """The customer's cancel page (``GET /callbacks/<id>/cancel?token=``: a page with one button)."""
    return f"{hub.public_base_url}/callbacks/{int(callback_id)}/cancel?token={token}"


@dataclass(frozen=True)
class QueueCallbackSettings:
    """A queue's own callback settings (``queues.callback_mode``, ``callback_voicemail``, ``callback_hours``)."""

    mode: str = rules.AGENT_FIRST
    voicemail: str = ""
    hours: rules.OpeningHours | None = None
    own_hours: bool = False  # False: the hub's CALLBACK_* hours apply


async def queue_settings(hub: Hub, queue: str) -> QueueCallbackSettings:
    """The queue's callback settings, read from SQL at each use (a change applies to the next callback without a
    restart). Unknown, unreadable or malformed: the defaults (agent first, no voicemail, the hub's hours)."""
    try:
        rows = await hub.repo.queues()
    except Exception:  # noqa: BLE001 - the defaults are the safe side
        log.warning("could not read the queue's callback settings", exc_info=True)
        return QueueCallbackSettings()
    row = next((q for q in rows if getattr(q, "name", None) == queue), None)
    if row is None:
        return QueueCallbackSettings()
    mode = str(getattr(row, "callback_mode", "") or rules.AGENT_FIRST)
    voicemail = " ".join(str(getattr(row, "callback_voicemail", "") or "").split())[:500]
    raw_hours = str(getattr(row, "callback_hours", "") or "").strip()
    hours, own = None, False
    if raw_hours:
        try:
            hours, own = rules.parse_hours(raw_hours), True
        except ValueError as exc:
            log.warning("the queue's callback hours are not understood: the hub's apply", extra={"queue": queue, "reason": str(exc)})
    return QueueCallbackSettings(mode if mode in rules.CALLBACK_MODES else rules.AGENT_FIRST, voicemail, hours, own)


async def hours_for(hub: Hub, queue: str) -> rules.OpeningHours | None:
    """The opening hours for slots of ``queue``: its own (``queues.callback_hours``) else the hub's."""
    settings = await queue_settings(hub, queue)
    return settings.hours if settings.own_hours else _config(hub).hours


def callback_json(cb: Any) -> dict[str, Any]:
    """What the customer and the console see of a callback (never the token's hash)."""
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None
    return {
        "id": cb.id, "state": cb.state, "number": cb.number, "topic": cb.topic, "queue": cb.queue, "source": cb.source,
        "requested_for": iso(cb.requested_for), "due_at": iso(cb.due_at), "attempts": cb.attempts,
        "max_attempts": cb.max_attempts, "last_outcome": cb.last_outcome, "conversation_id": cb.conversation_id,
    }


# --- the customer's request -----------------------------------------------------------------------------------

async def request_callback(hub: Hub, *, number: Any, when: Any = "now", topic: Any = None, queue: str | None = None,
                           visitor: str = "", source: str = rules.SOURCE_WEB, customer_id: int | None = None,
                           actor: str = "") -> dict[str, Any]:
    """The form's request: checked (number, slot, limits), written, and for "now" put in the queue at once.
    Returns the callback, its cancel token (shown once) and, for "now", its place and estimated wait.

    ``source="agent"`` (an agent books "call this customer back tomorrow at 10" for ``customer_id``): the same checks
    of the number and the slot, but no request rates and no confirmation text (the agent tells the customer)."""
    config, store, now = _config(hub), _store(hub), now_utc(hub)
    queue_name = queue if queue in hub.rules else config.queue
    try:
        e164 = rules.check_number(number, hub.default_region, config.limits.countries)
        clean = rules.clean_topic(topic)
        slot: datetime | None = None
        if when not in (None, "", "now"):
            if not isinstance(when, str):
                raise rules.CallbackRefused("bad_time", "when must be 'now' or an ISO 8601 time")
            try:
                slot = datetime.fromisoformat(when.replace("Z", "+00:00"))
            except ValueError:
                raise rules.CallbackRefused("bad_time", "when must be 'now' or an ISO 8601 time") from None
            rules.check_slot(slot, now, await hours_for(hub, queue_name), config.horizon_days)
            slot = slot.astimezone(timezone.utc)
    except rules.CallbackRefused as exc:
        raise CallbackError("bad_request", exc.words, exc.code) from None
    closed = False
    if slot is None:  # "now" while the queue is closed: booked at its next opening (a slot's priority), not left waiting
        opening = rules.next_opening(now, await hours_for(hub, queue_name))
        if opening is not None:
            slot, closed = opening, True
    hour_ago = now - timedelta(hours=1)
    by_agent = source == rules.SOURCE_AGENT
    if not by_agent and await store.recent(number=e164, since=hour_ago) >= config.limits.per_number_per_hour:
        raise CallbackError("rate_limited", "too many callback requests for this number: try again later", "number_rate")
    if not by_agent and visitor and await store.recent(visitor=visitor[:80], since=hour_ago) >= config.limits.per_visitor_per_hour:
        raise CallbackError("rate_limited", "too many callback requests from you: try again later", "visitor_rate")
    if customer_id is None:
        customer_id, _ = await hub.repo.resolve_customer("phone", e164, display_name="", region=hub.default_region, verified=False)
    token = secrets.token_urlsafe(24)
    row = store.new_row(
        customer_id=customer_id, number=e164, topic=clean, queue=queue_name, source=source,
        state=rules.SCHEDULED if slot else rules.REQUESTED, requested_for=slot, due_at=slot or now,
        enqueued_at=None if slot else now, max_attempts=config.policy.max_attempts, visitor=visitor[:80],
        cancel_token_hash=token_hash(token), created_at=now, updated_at=now,
    )
    try:
        cb = await store.create(row, max_open=config.limits.max_open_per_customer)
    except Exception as exc:  # noqa: BLE001 - the store's TooManyOpen (the use case names no SQL type)
        if type(exc).__name__ != "TooManyOpen":
            raise
        raise CallbackError("conflict", f"you already have {config.limits.max_open_per_customer} callbacks booked: "
                            "cancel one or wait for our call", "too_many_open") from None
    when_words = f"at {slot.isoformat()}" if slot else "now"
    if closed and slot is not None:
        when_words = f"now; we are closed: at the opening, {slot.isoformat()}"
    who = f" by {actor[:80]}" if by_agent and actor else ""
    await hub.repo.record(customer_id, None, TimelineNote(
        hub.kind(CHANNEL), CHANNEL, f"Callback requested{who} ({when_words}){': ' + clean if clean else ''}",
        {"event": "callback_requested", "callback_id": cb.id, "source": source, "number": e164, "when": when_words},
    ))
    out: dict[str, Any] = {"callback": callback_json(cb), "cancel_token": token, "cancel_url": cancel_link(hub, cb.id, token)}
    if closed and slot is not None:
        out.update(closed=True, scheduled_for=slot.isoformat(), message=rules.closed_words(slot))
    if config.confirm_text and source == rules.SOURCE_WEB:
        when_text = "as soon as an agent is free" if slot is None else f"at {slot.strftime('%Y-%m-%d %H:%M')} UTC"
        if closed and slot is not None:
            when_text = f"when we open, at {slot.strftime('%Y-%m-%d %H:%M')} UTC"
        confirmation = CONFIRM_TEXT.format(when=when_text, link=out["cancel_url"])
        if closed:
            confirmation = "We are closed now. " + confirmation
        await _text(hub, cb, confirmation, "callback_confirmation_text")
        await _email(hub, cb, "Your callback is booked", confirmation.replace(" on this number", f" on {cb.number}"),
                     "callback_confirmation_email")
    if slot is None:
        fresh = await _into_queue_now(hub, cb.id)
        if fresh is not None:
            out["callback"] = callback_json(fresh)
            if fresh.conversation_id is not None:
                out["queue"] = await router.queue_info(hub, fresh.conversation_id)
    return out


async def _into_queue_now(hub: Hub, callback_id: int, rounds: int = 40) -> Any | None:
    """A "now" callback just written: moved into its queue (this process's tick, or another hub's loop that claimed
    it first: then its conversation soon; polled ``rounds`` times 50 ms). The callback as it is then."""
    store = _store(hub)
    await tick(hub)
    fresh = await store.get(callback_id)
    for _ in range(rounds):  # another round (this process's loop, or another hub) may be moving it: its place soon
        if fresh is None or fresh.conversation_id is not None or fresh.state != rules.WAITING:
            break
        await asyncio.sleep(0.05)
        fresh = await store.get(callback_id)
    return fresh


# --- click-to-call: an agent calls the customer now -------------------------------------------------------------

async def call_customer(hub: Hub, agent: Any, customer_id: int, number: Any) -> dict[str, Any]:
    """Click-to-call (the console's "Call" on a customer's record): the hub calls ``number`` for ``agent`` now.

    It is a "now" callback **pinned** to the agent (``callbacks.pinned_agent_id``, then the attempt's conversation's
    ``pinned_agent_id``: SQL, so a rebuild of the shared state keeps it and no other agent is ever offered it), with
    one attempt and no text. Once it is in the queue, the agent's own request claims it (the shared state's atomic
    offer with the capacity check, then the ordinary accept): the accept rings the agent's leg (softphone or their own
    phone) and dials the customer, bridged in a conference, exactly as for an accepted callback. Refused in words when
    the agent cannot take a call now (offline, away, on another contact, no phone capacity) or the number is refused
    by the callback rules (not a number, a country not allowed, premium-rate). What the agent holds with this same
    customer (the chat in which they asked to be called) does not count against them: the call is its next step."""
    from contact_center.domain.routing import AgentSnapshot, AgentStatus, can_take
    from contact_center.usecases import offers  # (offers -> calls -> this module)

    if not enabled(hub):
        raise CallbackError("unavailable", "this hub has no phone line to call from", "no_phone")
    config, store, now = _config(hub), _store(hub), now_utc(hub)
    try:
        e164 = rules.check_number(number, hub.default_region, config.limits.countries)
    except rules.CallbackRefused as exc:
        raise CallbackError("bad_request", exc.words, exc.code) from None
    presence = await hub.store.get_presence(agent.id)
    free, discounted = False, False
    if presence is not None and presence.status in rules.TAKING_CALLS:
        # what they hold with this customer does not count (chatting with them, the agent calls them instead; a
        # callback call with them that is over, left for its wrap-up), but a call that may be live does
        load = dict(presence.load)
        for conv, _ in await hub.repo.assigned_to(agent.id) if load else ():
            if conv.customer_id != customer_id or load.get(conv.channel, 0) <= 0 or conv.id is None:
                continue
            spec = hub.channels.get(conv.channel)
            if spec is not None and spec.connects_agent and (conv.channel != CHANNEL or await store.open_for_conversation(conv.id) is not None):
                continue
            load[conv.channel] -= 1
            discounted = True
        free = can_take(AgentSnapshot(agent.id, AgentStatus(presence.status), presence.skills, presence.capacity,
                                      load, presence.idle_since), CHANNEL)
    refused = rules.refuse_agent_call(presence.status if presence is not None else None,
                                      presence is not None and presence.capacity.get(CHANNEL, 0) > 0, free)
    if refused is not None:
        raise CallbackError("conflict", refused[1], refused[0])
    row = store.new_row(
        customer_id=customer_id, number=e164, topic="", queue=config.queue, source=rules.SOURCE_AGENT_CALL,
        state=rules.REQUESTED, due_at=now, enqueued_at=now, max_attempts=1, pinned_agent_id=agent.id,
        visitor=f"agent:{agent.id}", cancel_token_hash=token_hash(secrets.token_urlsafe(24)), created_at=now, updated_at=now,
    )
    try:
        cb = await store.create(row, max_open=config.limits.max_open_per_customer + 1)
    except Exception as exc:  # noqa: BLE001 - the store's TooManyOpen
        if type(exc).__name__ != "TooManyOpen":
            raise
        raise CallbackError("conflict", "this customer already has callbacks under way: see their timeline", "too_many_open") from None
    await hub.repo.record(customer_id, None, TimelineNote(
        hub.kind(CHANNEL), CHANNEL, f"{agent.display_name} called the customer ({e164})",
        {"event": "click_to_call", "callback_id": cb.id, "number": e164, "agent_id": agent.id}, agent_id=agent.id))
    fresh = await _into_queue_now(hub, cb.id, rounds=100)  # the agent waits for it: a busy hub gets 5 s, not 2
    cid = fresh.conversation_id if fresh is not None else None
    if cid is None:
        await _give_up(hub, cb.id, None, "the call could not be queued")
        raise CallbackError("unavailable", "the call could not be placed now: try again in a moment", "not_queued")
    # the router may have offered it to them first (it is pinned to them): then this offer is refused and the accept
    # takes the router's; either way the claim is the store's, atomic across hub processes (re-checking the capacity
    # unless a call with this same customer was discounted above: the store counts per channel only)
    await hub.store.offer(cid, agent.id, hub.clock() + hub.offer_timeout, check_capacity=not discounted)
    try:
        conversation = await offers.accept(hub, agent, cid)
    except HubError:
        await _give_up(hub, cb.id, cid, "the agent could not take it")
        raise CallbackError("conflict", "you cannot take a call now (another contact reached you first): try again",
                            "agent_busy") from None
    return {"callback": callback_json(await store.get(cb.id) or fresh), "conversation": conversation}


async def withdraw_pinned(hub: Hub, conversation_id: int) -> None:
    """A click-to-call's contact its agent declined or let time out (it was offered to them, not claimed by their
    own request: a process died in between): cancelled, nobody else may take it."""
    cb = await _store(hub).open_for_conversation(conversation_id)
    if cb is not None:
        await _give_up(hub, cb.id, conversation_id, "the agent declined it")
    else:
        await _withdraw(hub, conversation_id, "cancelled")


async def _give_up(hub: Hub, callback_id: int, conversation_id: int | None, why: str) -> None:
    """A click-to-call its agent did not get: cancelled, its contact out of the queue (nobody else may take it)."""
    cb = await _store(hub).cancel(callback_id, now_utc(hub))
    await _withdraw(hub, conversation_id, "cancelled")
    if cb is not None:
        await hub.repo.record(cb.customer_id, conversation_id, TimelineNote(
            hub.kind(CHANNEL), CHANNEL, f"Call not placed: {why}", {"event": "click_to_call_cancelled", "callback_id": callback_id}))


async def cancel_callback(hub: Hub, callback_id: Any, token: Any) -> dict[str, Any]:
    """The customer cancels with the token they were given: only while it is not being dialled."""
    if not isinstance(callback_id, int) or not isinstance(token, str) or not token or len(token) > 100:
        raise HubError("bad_request", "a callback id and its cancel token are needed")
    store = _store(hub)
    cb = await store.cancel(callback_id, now_utc(hub), token_hash=token_hash(token))
    if cb is None:
        raise HubError("not_found", "no callback to cancel with this token (it may be done, being dialled, or cancelled)")
    await _withdraw(hub, cb.conversation_id, "cancelled")
    await hub.repo.record(cb.customer_id, cb.conversation_id, TimelineNote(
        hub.kind(CHANNEL), CHANNEL, "Callback cancelled by the customer", {"event": "callback_cancelled", "callback_id": cb.id}))
    return {"callback": callback_json(cb)}


async def _withdraw(hub: Hub, conversation_id: int | None, disposition: str) -> None:
    """A waiting contact that will not be dialled leaves its queue (closed, not counted as abandoned)."""
    if conversation_id is None:
        return
    t = Transition(sources(Move.CLOSE), target(Move.CLOSE), close=True, disposition=disposition)
    moved = await hub.repo.move(conversation_id, t)
    if moved is None:
        return
    hub.last_queue_info.pop(conversation_id, None)
    offered_to = await hub.store.release(conversation_id, hub.clock())
    if offered_to is not None:
        await hub.tell_agent(offered_to, "offer_revoked", {"conversation_id": conversation_id, "reason": "callback_" + disposition})
    hub.kick()


async def from_call(hub: Hub, channel: str, call_thread: str, source: str, number: str) -> dict[str, Any] | None:
    """A caller asked to be called back (the phone queue's "press 1", the fallback URL): a real callback that keeps
    the call's place in the queue (virtual hold), and the call's own conversation leaves the queue."""
    conv = await hub.repo.thread(channel, call_thread)
    if conv is None or conv.id is None or not enabled(hub):
        return None
    store, config, now = _store(hub), _config(hub), now_utc(hub)
    existing = await store.open_for_conversation(conv.id)
    if existing is not None:
        return callback_json(existing)
    try:
        e164 = rules.check_number(number, hub.default_region, config.limits.countries)
    except rules.CallbackRefused as exc:
        log.warning("a caller's callback request has no number we can call", extra={"reason": exc.code})
        return None
    since = getattr(conv, "queue_since", None) or getattr(conv, "created_at", None) or now
    row = store.new_row(
        customer_id=conv.customer_id, number=e164, topic="", queue=hub.queue_name(conv), source=source,
        state=rules.REQUESTED, due_at=now, enqueued_at=since, max_attempts=config.policy.max_attempts,
        origin_conversation_id=conv.id, visitor=f"call:{call_thread}"[:80], created_at=now, updated_at=now,
    )
    try:
        cb = await store.create(row, max_open=max(config.limits.max_open_per_customer, 1) + 1)
    except Exception as exc:  # noqa: BLE001
        if type(exc).__name__ != "TooManyOpen":
            raise
        log.warning("a caller asked for a callback but already has the most open ones", extra={"conversation_id": conv.id})
        return None
    await _withdraw(hub, conv.id, "callback")
    await tick(hub)
    return callback_json(cb)


def _aware(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


async def from_abandoned(hub: Hub, conv: ConversationRow) -> dict[str, Any] | None:
    """A caller hung up while waiting in the phone queue (the call's conversation was closed as abandoned): when they
    waited at least ``on_abandon_seconds`` and their number is one we may call (not hidden, valid, allowed, not
    premium), an automatic "now" callback that keeps the call's place in the queue (as "press 1" does).

    Once per call: a callback already made from this call (whatever its state) is the answer, so a repeated status
    callback, or a second process hearing the same hang-up, makes nothing more. A customer who already has an open
    callback is not given a second one (no double dial). None when nothing was made."""
    if conv.id is None or conv.channel == CHANNEL or not enabled(hub):
        return None
    spec = hub.channels.get(conv.channel)
    if spec is None or not spec.connects_agent or spec.contact_kind != "phone":
        return None  # only calls: a chat's customer who left is not rung
    store, config, now = _store(hub), _config(hub), now_utc(hub)
    queued_at = _aware(getattr(conv, "queued_at", None))
    if queued_at is None or config.on_abandon_seconds <= 0:
        return None
    left_at = _aware(getattr(conv, "abandoned_at", None)) or now
    waited = max(0.0, (left_at - queued_at).total_seconds())
    if not rules.calls_back_abandoned(waited, config.on_abandon_seconds):
        return None
    if rules.is_hidden_number(conv.customer_address):
        log.info("an abandoned call from a hidden number: nobody to call back", extra={"conversation_id": conv.id})
        return None
    try:
        e164 = rules.check_number(conv.customer_address, hub.default_region, config.limits.countries)
    except rules.CallbackRefused as exc:
        log.info("an abandoned call from a number we do not call back", extra={"conversation_id": conv.id, "reason": exc.code})
        return None
    if await store.from_origin(conv.id) is not None:
        return None
    since = _aware(getattr(conv, "queue_since", None)) or queued_at
    row = store.new_row(
        customer_id=conv.customer_id, number=e164, topic="", queue=hub.queue_name(conv), source=rules.SOURCE_ABANDONED,
        state=rules.REQUESTED, due_at=now, enqueued_at=since, max_attempts=config.policy.max_attempts,
        origin_conversation_id=conv.id, visitor=f"call:{conv.thread_key or conv.id}"[:80], created_at=now, updated_at=now,
    )
    try:
        cb = await store.create(row, max_open=1)  # only when the customer has no open callback already
    except Exception as exc:  # noqa: BLE001 - the store's TooManyOpen
        if type(exc).__name__ != "TooManyOpen":
            raise
        log.info("an abandoned caller already has an open callback", extra={"conversation_id": conv.id})
        return None
    await hub.repo.record(conv.customer_id, conv.id, TimelineNote(
        hub.kind(CHANNEL), CHANNEL,
        f"Callback requested automatically: the caller hung up after {int(waited)} s in the queue; calling {e164} back",
        {"event": "callback_requested", "callback_id": cb.id, "source": rules.SOURCE_ABANDONED, "number": e164,
         "when": "now", "waited_seconds": int(waited)},
    ))
    await tick(hub)
    return callback_json(cb)


# --- the queue ------------------------------------------------------------------------------------------------

async def tick(hub: Hub) -> int:
    """Move every callback that is due into its queue (one conversation per attempt). Returns how many."""
    if not enabled(hub):
        return 0
    store, config = _store(hub), _config(hub)
    for callback_id, n in await store.stale_dialling(now_utc(hub) - timedelta(seconds=config.stale_dialling_seconds)):
        log.warning("a callback attempt had no news: counted as failed", extra={"callback_id": callback_id, "attempt": n})
        await attempt_news(hub, callback_id, n, "failed", None, {"reason": "no news of the call"})
    await _undialled_first(hub)
    moved = 0
    while True:
        claimed = await store.claim_due(now_utc(hub), hub.node, lease_seconds=config.lease_seconds, limit=config.claim_batch)
        for c in claimed:
            try:
                await _enter_queue(hub, c.callback, c.attempt_n)
                moved += 1
            except Exception:  # noqa: BLE001 - its lease runs out and the next tick (here or elsewhere) tries again
                log.exception("a due callback could not enter its queue", extra={"callback_id": c.callback.id})
        if len(claimed) < config.claim_batch:
            return moved


async def _enter_queue(hub: Hub, cb: Any, n: int) -> None:
    config = _config(hub)
    ahead = cb.requested_for is not None or n > 1  # booked for a time, or a retry: the customer already waited
    topic = f": {cb.topic}" if cb.topic else ""
    words = "Callback" + (f" (attempt {n} of {cb.max_attempts})" if n > 1 else "") + topic
    if cb.source == rules.SOURCE_AGENT_CALL:
        words = "Outbound call (click-to-call)"
    settings = await queue_settings(hub, cb.queue)
    # customer first only for what the customer asked for: a click-to-call rings the agent who clicked first
    first = settings.mode == rules.CUSTOMER_FIRST and cb.source != rules.SOURCE_AGENT_CALL
    result = await inbound.receive_inbound(hub, InboundEvent(
        channel=CHANNEL, customer_address=cb.number, our_address=config.caller_id, text=words,
        thread_key=thread_key(cb.id, n), provider_id=f"{thread_key(cb.id, n)}:start", queue=cb.queue,
        metadata={"callback": {"id": cb.id, "attempt": n, "number": cb.number, "topic": cb.topic}},
        priority=rules.SCHEDULED_PRIORITY if ahead else 0, queue_since=cb.enqueued_at if n == 1 else None,
        pinned_agent=getattr(cb, "pinned_agent_id", None),
        held=first,  # customer first: out of the queue until the customer answers
    ))
    if await _store(hub).attach_conversation(cb.id, hub.node, result.conversation_id, now_utc(hub)) and first:
        await _dial_first(hub, cb, result.conversation_id, bool(settings.voicemail))


async def _undialled_first(hub: Hub) -> None:
    """Never stuck, customer first: a callback whose held contact was attached but never dialled (its process died
    in between) is dialled by the next sweep of any hub, at most once a lease (``start_attempt`` claims it once)."""
    config, now = _config(hub), hub.clock()
    if now - getattr(hub, "_callback_first_sweep", 0.0) < config.lease_seconds:
        return
    setattr(hub, "_callback_first_sweep", now)  # noqa: B010 - the hub keeps this use case's last sweep
    try:
        first = [q.name for q in await hub.repo.queues() if getattr(q, "callback_mode", "") == rules.CUSTOMER_FIRST]
        stale = await _store(hub).stale_waiting(first, now_utc(hub) - timedelta(seconds=config.lease_seconds))
    except Exception:  # noqa: BLE001 - the next sweep tries again
        log.exception("the customer-first sweep failed")
        return
    for cb in stale:
        conv = await hub.repo.conversation(cb.conversation_id)
        if conv is not None and conv.status == "bot":  # still held: nobody dialled it
            log.warning("a customer-first callback was never dialled: dialling it now", extra={"callback_id": cb.id})
            await _dial_first(hub, cb, cb.conversation_id, bool((await queue_settings(hub, cb.queue)).voicemail))


async def _dial(hub: Hub, callback_id: int, action: CallAction) -> DeliveryReport:
    """The channel's adapter acts on a callback's attempt (agent first: ring the agent and dial the customer;
    customer first: dial the customer). Never raises: no telephony, or an adapter that failed, is a failed report."""
    adapter = hub.channels.adapter(CHANNEL)
    if adapter is None or not hasattr(adapter, "act"):
        return DeliveryReport("failed", error_code="no_dialler", error_message="the hub has no telephony to call back")
    try:
        report: DeliveryReport = await adapter.act(action)
    except Exception as exc:  # noqa: BLE001 - a failed attempt, retried by the policy; logged loudly
        log.exception("dialling a callback failed", extra={"callback_id": callback_id})
        return DeliveryReport("failed", error_code="error", error_message=str(exc)[:200])
    return report


async def _dial_first(hub: Hub, cb: Any, conversation_id: int, voicemail: bool) -> None:
    """Customer first (the queue's ``callback_mode``): the customer is dialled as the callback falls due; once a person
    answers they wait in the conference (a message, music) and the contact is offered to an agent
    (:func:`attempt_news` hands it over). The attempt is claimed once, across processes, as for agent first."""
    store = _store(hub)
    attempt = await store.start_attempt(cb.id, agent_id=None, conversation_id=conversation_id, claimed_by=hub.node, now=now_utc(hub))
    if attempt is None:
        return
    report = await _dial(hub, cb.id, CallAction(
        kind="dial_customer", conversation_id=conversation_id, thread_key=thread_key(cb.id, attempt.n), agent_id=None,
        customer_address=cb.number, our_address=_config(hub).caller_id, voicemail=voicemail,
    ))
    await hub.repo.record(cb.customer_id, conversation_id, TimelineNote(
        hub.kind(CHANNEL), CHANNEL, f"Callback attempt {attempt.n}: calling {cb.number} (customer first)",
        {"event": "callback_dialling", "callback_id": cb.id, "attempt": attempt.n, "mode": rules.CUSTOMER_FIRST}))
    if report.status != "failed" and report.provider_id:
        await store.attempt_dialled(cb.id, attempt.n, report.provider_id)
    elif report.status == "failed":
        await attempt_news(hub, cb.id, attempt.n, "failed", None, {"error": report.error_message or ""})


# --- the agent accepted: dial -----------------------------------------------------------------------------------

async def connect(hub: Hub, conv: ConversationRow, agent_id: int) -> DeliveryReport | None:
    """The agent accepted a callback's contact: claim its attempt (once, across processes) and have the callback
    channel's adapter ring the agent and dial the customer. None: this conversation is no callback."""
    if conv.channel != CHANNEL or conv.id is None:
        return None
    store = _store(hub)
    cb = await store.open_for_conversation(conv.id)
    if cb is None:
        return DeliveryReport("failed", error_code="no_callback", error_message="this callback is no longer open")
    if cb.state == rules.CONNECTED and conv.thread_key:  # transferred while talking: the next agent joins the customer
        ids = parse_thread(conv.thread_key)
        adapter = hub.channels.adapter(CHANNEL)
        if ids is None or adapter is None:
            return DeliveryReport("failed", error_code="no_call", error_message="this callback has no call")
        return await adapter.act(CallAction(  # type: ignore[attr-defined, no-any-return]
            kind="connect_agent", conversation_id=conv.id, thread_key=conv.thread_key, agent_id=agent_id,
            customer_address=cb.number, our_address=conv.our_address or _config(hub).caller_id, leg="customer",
            agent_phone=await calls.own_phone(hub, agent_id)))
    attempt = await store.start_attempt(cb.id, agent_id=agent_id, conversation_id=conv.id, claimed_by=hub.node, now=now_utc(hub))
    if attempt is None:
        return DeliveryReport("failed", error_code="claimed", error_message="this callback is no longer waiting (already dialled, or cancelled)")
    report = await _dial(hub, cb.id, CallAction(
        kind="connect_agent", conversation_id=conv.id, thread_key=thread_key(cb.id, attempt.n), agent_id=agent_id,
        customer_address=cb.number, our_address=conv.our_address or _config(hub).caller_id,
        agent_phone=await calls.own_phone(hub, agent_id),  # an agent who takes calls on their own phone
        voicemail=bool((await queue_settings(hub, cb.queue)).voicemail),  # a message after the beep
    ))
    await hub.repo.record(conv.customer_id, conv.id, TimelineNote(
        hub.kind(CHANNEL), CHANNEL, f"Calling {cb.number}" if cb.source == rules.SOURCE_AGENT_CALL
        else f"Callback attempt {attempt.n}: calling {cb.number}",
        {"event": "callback_dialling", "callback_id": cb.id, "attempt": attempt.n, "agent_id": agent_id},
        agent_id=agent_id))
    if report.status != "failed" and report.provider_id:
        await store.attempt_dialled(cb.id, attempt.n, report.provider_id)
    elif report.status == "failed":
        await attempt_news(hub, cb.id, attempt.n, "failed", None, {"error": report.error_message or ""})
    return report


async def attempt_news(hub: Hub, callback_id: int, n: int, call_status: str, answered_by: str | None,
                       detail: dict[str, Any] | None = None) -> str | None:
    """The provider's news of attempt ``n``'s call to the customer (already verified and deduplicated by the adapter).
    Returns the attempt's outcome when this news decided it (once: a repeat or a late one changes nothing)."""
    store, config, now = _store(hub), _config(hub), now_utc(hub)
    cb = await store.get(callback_id)
    if cb is None:
        return None
    attempt = await store.attempt(callback_id, n)
    conv = await hub.repo.conversation(attempt.conversation_id) if attempt is not None and attempt.conversation_id else None
    outcome = rules.attempt_outcome(call_status, answered_by)
    if outcome is None:
        if call_status == "completed" and await store.complete(callback_id, now):  # the connected call ended
            if conv is not None and conv.thread_key:
                await calls.contact_ended(hub, conv.channel, conv.thread_key, "completed")
            await hub.repo.record(cb.customer_id, cb.conversation_id, TimelineNote(
                hub.kind(CHANNEL), CHANNEL, "Call completed" if cb.source == rules.SOURCE_AGENT_CALL else "Callback completed", {"event": "callback_completed", "callback_id": cb.id, "attempt": n}))
        elif conv is not None and conv.thread_key and call_status in ("ringing", "initiated"):
            await calls.call_status(hub, conv.channel, conv.thread_key, f"customer_{call_status}", dict(detail or {}))
        return None
    agent_call = cb.source == rules.SOURCE_AGENT_CALL  # click-to-call: one attempt, no text
    after = rules.after_agent_call(outcome) if agent_call else rules.after_attempt(
        config.policy, n, outcome, now, await hours_for(hub, cb.queue) if outcome in rules.RETRYABLE else None)
    if not await store.finish_attempt(callback_id, n, outcome, now, state=after.state, due_at=after.due_at):
        return None
    customer_first = attempt is not None and attempt.agent_id is None
    voicemail_left = outcome == rules.MACHINE and bool((detail or {}).get("voicemail_left"))
    what = f"{outcome} (a voicemail was left)" if voicemail_left else outcome
    if agent_call:
        words = f"Call to {cb.number}: " + ("answered" if after.state == rules.CONNECTED else f"{what}, not reached")
    elif after.state == rules.CONNECTED:
        words = f"Callback attempt {n}: {cb.number} answered" + ("; waiting for an agent" if customer_first else "")
    elif after.state == rules.FAILED:
        words = f"Callback attempt {n}: {what}. Not reached after {n} attempts: the callback failed"
    else:
        words = f"Callback attempt {n}: {what}. Next try from {after.due_at.isoformat() if after.due_at else 'now'}"
    payload: dict[str, Any] = {"event": "callback_attempt", "callback_id": cb.id, "attempt": n, "outcome": outcome,
                               "next": after.state, "due_at": after.due_at.isoformat() if after.due_at else None}
    if voicemail_left:
        payload["voicemail_left"] = True
    await hub.repo.record(cb.customer_id, conv.id if conv is not None else cb.conversation_id, TimelineNote(
        hub.kind(CHANNEL), CHANNEL, words, payload))
    if customer_first and after.state == rules.CONNECTED and conv is not None and conv.id is not None:
        # the customer is on the line, waiting in the room: now the contact is offered to an agent
        await bot_turns.hand_over(hub, conv.id, "callback answered", {"reason": "callback answered", "callback_id": cb.id},
                                  by="Callback (customer first)")
    if conv is not None and conv.thread_key:
        await calls.call_status(hub, conv.channel, conv.thread_key, "customer_answered" if outcome == rules.CONNECTED_OUTCOME
                              else f"customer_{outcome.replace('-', '_')}", {"attempt": n, "outcome": outcome, "next": after.state})
        if after.state != rules.CONNECTED:
            await calls.contact_ended(hub, conv.channel, conv.thread_key, outcome)
    if after.tell_customer:
        await _tell_not_reached(hub, cb, n)
    return outcome


async def _tell_not_reached(hub: Hub, cb: Any, attempts: int) -> None:
    """After the last attempt: a text to the number, where the hub has SMS (logged when not)."""
    await _text(hub, cb, NOT_REACHED_TEXT.format(attempts=attempts), "callback_not_reached_text")
    await _email(hub, cb, "We could not reach you", NOT_REACHED_TEXT.format(attempts=attempts).replace(
        "Reply to this message", "Write to us"), "callback_not_reached_email")


async def _email(hub: Hub, cb: Any, subject: str, text: str, event: str) -> None:
    """The same words by email where the customer has an address and the hub has the email channel (its adapter's
    ``notice``: the same relay or outbox as every reply); its fate on the timeline (never the cancel link); never
    raises."""
    channel = _config(hub).email_channel
    adapter = hub.channels.adapter(channel) if channel and hub.channels.get(channel) is not None else None
    if adapter is None or not hasattr(adapter, "notice"):
        return
    try:
        address = await _store(hub).customer_email(cb.customer_id)
        if not address:
            return
        sender: NoticeSender = adapter  # type: ignore[assignment]
        report = await sender.notice(address, subject, f"Hello,\n\n{text}\n")
    except Exception:  # noqa: BLE001 - a courtesy; the timeline keeps what was sent
        log.exception("the callback's email failed", extra={"callback_id": cb.id, "event": event})
        return
    shown = text.split(" To cancel: ")[0]
    await hub.repo.record(cb.customer_id, cb.conversation_id, TimelineNote(
        hub.kind(channel), channel,
        f"Email sent to {address}: {shown}" if report.status != "failed" else f"Email not sent: {report.error_message}",
        {"event": event, "callback_id": cb.id, "status": report.status}))


async def _text(hub: Hub, cb: Any, text: str, event: str) -> None:
    """A text to the callback's number on the notify channel (SMS), its fate on the timeline; never raises."""
    channel = _config(hub).notify_channel
    spec = hub.channels.get(channel) if channel else None
    adapter = hub.channels.adapter(channel) if spec is not None else None
    if adapter is None:
        log.info("no channel to text the callback's customer", extra={"callback_id": cb.id, "event": event})
        return
    try:
        report = await adapter.deliver(OutboundMessage(
            conversation_id=cb.conversation_id or 0, seq=0, channel=channel, to_address=cb.number,
            from_address=_config(hub).caller_id, text=text, sender_kind="system"))
    except Exception:  # noqa: BLE001 - the text is a courtesy; the timeline keeps the failure
        log.exception("the callback's text failed", extra={"callback_id": cb.id, "event": event})
        return
    shown = text.split(" To cancel: ")[0]  # the timeline never shows the cancel token
    await hub.repo.record(cb.customer_id, cb.conversation_id, TimelineNote(
        hub.kind(channel), channel, f"Text sent: {shown}" if report.status != "failed" else f"Text not sent: {report.error_message}",
        {"event": event, "callback_id": cb.id, "status": report.status}))


async def voicemail_text(hub: Hub, callback_id: int) -> str:
    """The message left on the customer's answering machine (the callback's queue's ``callback_voicemail``; "": none)."""
    cb = await _store(hub).get(callback_id)
    return (await queue_settings(hub, cb.queue)).voicemail if cb is not None else ""


WHISPER_TEXT = "Callback for {name}: {topic}"


async def whisper_text(hub: Hub, callback_id: int) -> str:
    """What the agent hears alone as their leg joins the callback's call, before the customer is bridged:
    "Callback for <name>: <topic>" (the number when the customer has no name; "no topic given")."""
    cb = await _store(hub).get(callback_id)
    if cb is None:
        return ""
    name = ""
    if cb.conversation_id is not None:
        found = await hub.repo.with_customer(cb.conversation_id)
        name = (getattr(found[1], "display_name", "") or "") if found is not None else ""
    spoken_number = " ".join(cb.number.lstrip("+")) if cb.number else "the customer"  # digit by digit
    return WHISPER_TEXT.format(name=" ".join(name.split())[:80] or spoken_number, topic=cb.topic[:200] or "no topic given")


async def leg_news(hub: Hub, callback_id: int, n: int, status: str, detail: dict[str, Any] | None = None) -> None:
    """The agent's leg of attempt ``n`` (its status callback): for the agent's call card."""
    attempt = await _store(hub).attempt(callback_id, n)
    if attempt is None or attempt.conversation_id is None:
        return
    conv = await hub.repo.conversation(attempt.conversation_id)
    if conv is not None and conv.thread_key:
        await calls.call_status(hub, conv.channel, conv.thread_key, f"agent_{status.replace('-', '_')}", dict(detail or {}))


async def counts(hub: Hub) -> dict[str, int]:
    """The supervisor's figures: waiting, scheduled, being attempted, completed and failed (today's final ones)."""
    now = now_utc(hub)
    by_state = await _store(hub).counts(now.replace(hour=0, minute=0, second=0, microsecond=0))
    return {
        "waiting": by_state.get(rules.WAITING, 0) + by_state.get(rules.REQUESTED, 0),
        "scheduled": by_state.get(rules.SCHEDULED, 0),
        "attempting": by_state.get(rules.DIALLING, 0) + by_state.get(rules.CONNECTED, 0),
        "completed": by_state.get(rules.COMPLETED, 0),
        "failed": by_state.get(rules.FAILED, 0),
        "cancelled": by_state.get(rules.CANCELLED, 0),
    }
