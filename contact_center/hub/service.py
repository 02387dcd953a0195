"""Conversation use cases of the hub: store first (SQL), then update shared state, then publish.

Every write goes to SQL before anything is emitted, so a client that misses an emit gets the message
back from ``resume`` (catch-up by sequence number). Routing state (queues, offers, presence) lives in
the :class:`~contact_center.ports.StateStore`; it is derived and can be rebuilt from SQL.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, Protocol, Sequence

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from contact_center.domain.routing import (
    AgentSnapshot,
    AgentStatus,
    QueueRule,
    WaitingContact,
    estimate_wait_seconds,
    plan_assignments,
    queue_position,
    queue_positions,
)
from contact_center.channels import WEB_CHAT, ChannelRegistry
from contact_center.domain.channels import (
    ChannelSpec,
    ConversationPolicy,
    DeliveryStatus,
    UnknownChannel,
    delivery_status,
    moves_forward,
    numbered_choices,
    pick_choice,
)
from contact_center.ports import (
    AgentPresence,
    DeliveryReport,
    InboundEvent,
    InboundResult,
    MediaStore,
    OutboundMessage,
    QueueEntry,
    StateStore,
)
from crm_store.db import Database
from crm_store.message_log import MessageLog, SessionMessageLog
from crm_store.point_reads import CustomerRef, PointReads
from crm_store.domain.identity import ContactKind, InvalidAddress
from crm_store.domain.interactions import InteractionKind
from crm_store.models import Agent, Conversation, Customer, Message, Queue, utcnow
from crm_store.repositories import receipts as receipts_repo
from crm_store.repositories import conversations as conv_repo
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import stats as stats_repo
from crm_store.repositories.interactions import record_interaction

log = logging.getLogger("contact_center.hub")

OFFER_TIMEOUT_SECONDS = 20.0
DEFAULT_AHT_SECONDS = 180.0
MAX_TEXT = 4000
DISPOSITIONS = ("resolved", "order_placed", "no_answer", "escalated", "other")
TIER_PRIORITY = {"gold": 2, "silver": 1}


class HubError(Exception):
    """A request the hub refuses, with a code for the client (bad_request, not_found, forbidden, conflict)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    def as_ack(self) -> dict[str, Any]:
        """The Socket.IO acknowledgement for this error."""
        return {"ok": False, "error": {"code": self.code, "message": str(self)}}


class Emitter(Protocol):
    """Publishes an event to a room of a namespace (python-socketio's ``AsyncServer.emit``)."""

    def emit(
        self, event: str, data: Any = None, *, to: str | None = None, namespace: str | None = None, skip_sid: str | None = None
    ) -> Awaitable[None]: ...

    def emit_many(self, items: list[dict[str, Any]]) -> Awaitable[None]:
        """Several emits (each ``emit``'s arguments by name), in order; across processes as one publish."""
        ...


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


BOT_UNAVAILABLE_TEXT = "Our assistant is not available right now, so I'm passing you to a colleague. Please stay with us."


@dataclass(frozen=True)
class AgentRef:
    """The logged-in agent performing an action."""

    id: int
    username: str
    display_name: str
    role: str


def message_json(m: Message, sender_name: str = "") -> dict[str, Any]:
    """The wire shape of a message (text is plain text; clients must not render it as HTML)."""
    return {
        "conversation_id": m.conversation_id,
        "seq": m.seq,
        "sender_kind": m.sender_kind,
        "sender_name": sender_name,
        "text": m.body,
        "internal": m.internal,
        "created_at": m.created_at.isoformat() if m.created_at else None,
        "client_msg_id": m.client_msg_id,
        "delivery_status": getattr(m, "delivery_status", None),
        "delivery_error": _delivery_error(m),
        **_attachment_fields(getattr(m, "attachments", None)),
    }


def _delivery_error(m: Any) -> dict[str, Any] | None:
    """Why an outbound message failed, in words, when it did."""
    words = getattr(m, "delivery_error", None)
    code = getattr(m, "delivery_error_code", None)
    return {"code": code, "message": words or "the message could not be delivered"} if (words or code) else None


def _attachment_fields(attachments: Any) -> dict[str, Any]:
    """Buttons (bot replies) and the bot's handover context (internal notes), when a message has them."""
    out: dict[str, Any] = {}
    for a in attachments or ():
        if isinstance(a, dict) and a.get("type") == "buttons":
            out["buttons"] = a.get("buttons") or []
        elif isinstance(a, dict) and a.get("type") == "handoff":
            out["handoff"] = {"reason": a.get("reason"), "context": a.get("context")}
        elif isinstance(a, dict) and a.get("type") == "media":
            out.setdefault("attachments", []).append(
                {k: a.get(k) for k in ("content_type", "url", "name", "size")}
            )
    return out


@dataclass(frozen=True)
class _Inbound:
    """A customer's message on its way in, once checked (the fields of an InboundEvent the store needs)."""

    spec: ChannelSpec
    text: str
    client_id: str | None = None
    provider_id: str | None = None
    thread_key: str | None = None
    bot_text: str | None = None
    queue: str | None = None
    customer_address: str = ""
    our_address: str = ""
    attachments: list[dict[str, Any]] | None = None


class BotDown(Exception):
    """The bot could not take a turn."""


def bot_payload(raw: Any) -> str | None:
    """A button's payload sent with a customer's message ("/intent{...}" for the bot), if valid."""
    if isinstance(raw, str) and raw.startswith("/") and 1 < len(raw) <= 200 and "\x00" not in raw:
        return raw
    return None


def _jsonable(value: Any) -> Any:
    """The bot's JSON, bounded, as plain JSON types (it comes from another process)."""
    import json

    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        return None
    return json.loads(text) if len(text) <= 20_000 else None


def handoff_summary(reason: str, context: dict[str, Any]) -> str:
    """The internal note the agent reads first: why the bot handed over and what it already knows."""
    reasons = {
        "customer_request": "the customer asked for a person", "fallback": "the bot did not understand twice",
        "bot_unavailable": "the bot was unavailable", "hub_unavailable": "the bot could not reach the shop",
        "order_rejected": "the order could not be placed", "identity_check": "the customer's identity needs checking",
        "bot_error": "the bot failed",
    }
    parts = [f"Bot handover: {reasons.get(reason, reason)}."]
    if context.get("intent"):
        parts.append(f"Intent: {context['intent']}.")
    slots = context.get("slots") if isinstance(context.get("slots"), dict) else {}
    filled = {k: v for k, v in slots.items() if v not in (None, "", [], {}) and k not in ("customer_id", "conversation_id", "requested_slot", "handed_off", "failed_attempts")}
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


def clean_text(raw: Any, max_text: int = MAX_TEXT, *, allow_empty: bool = False) -> str:
    """A message text: a non-empty string of bounded length (kept as typed, never interpreted)."""
    if not isinstance(raw, str):
        raise HubError("bad_request", "text must be a string")
    text = raw.replace("\x00", "").strip()
    if not text and not allow_empty:
        raise HubError("bad_request", "text is empty")
    if len(text) > max_text:
        raise HubError("bad_request", f"text is longer than {max_text} characters")
    return text


def client_id(raw: Any) -> str:
    """A client message id: 1..100 printable characters."""
    if not isinstance(raw, str) or not 1 <= len(raw) <= 100 or not raw.isprintable():
        raise HubError("bad_request", "client_msg_id must be 1 to 100 printable characters")
    return raw


def room_monitor(conversation_id: int) -> str:
    """The /supervisor room of the supervisors watching a conversation."""
    return f"monitor:{conversation_id}"


def room_conv(conversation_id: int) -> str:
    """The customer-side room of a conversation."""
    return f"conv:{conversation_id}"


def room_agent(agent_id: int) -> str:
    """The room of all of one agent's console tabs."""
    return f"agent:{agent_id}"


class HubService:
    """The hub's conversation use cases, shared by every channel adapter.

    :param db: the contact repository (truth).
    :param store: shared routing state (memory or Redis).
    :param emitter: the Socket.IO server (or anything with its ``emit``).
    :param node: this process's name (for presence).
    """

    def __init__(
        self,
        db: Database,
        store: StateStore,
        emitter: Emitter,
        *,
        node: str = "node-1",
        clock: Callable[[], float] = time.time,
        offer_timeout: float = OFFER_TIMEOUT_SECONDS,
        wrap_up_seconds: float = 10.0,
        messages: MessageLog | None = None,
        reads: PointReads | None = None,
        channels: ChannelRegistry | None = None,
        default_region: str = "US",
        public_base_url: str = "",
    ) -> None:
        self.db, self.store, self.emitter, self.node, self.clock = db, store, emitter, node, clock
        if channels is None:  # web chat only: a provider's channel comes with its adapter
            channels = ChannelRegistry()
            channels.register(WEB_CHAT)
        self.channels = channels
        self.default_region = default_region
        self.media: MediaStore | None = None  # where attachments live (set by the composition root)
        # ``/media/<key>`` -> the absolute link a provider fetches it from (signed by the composition root)
        self.media_link: Callable[[str], str] = lambda path: f"{self.public_base_url}{path}"
        self.public_base_url = public_base_url.rstrip("/")
        # outbound deliveries run in the background, one conversation's in order
        self._delivery_locks: dict[int, asyncio.Lock] = {}
        self._delivery_tasks: set[asyncio.Task[None]] = set()
        self.messages: MessageLog = messages if messages is not None else SessionMessageLog(db)
        self.reads = reads if reads is not None else PointReads(db)  # the visitor lookup of every connect
        # (customer id, channel) -> (open conversation id, display name): lets a message into an open one go
        # straight to the message log (one statement or one group-commit batch). The log itself checks
        # the conversation is still open, so a stale entry costs one retry through the full path.
        self._open_chats: dict[tuple[int, str], tuple[int, str]] = {}
        # conversations some supervisor watches (any node): refreshed from the state store every router
        # tick, and at once on this node when a watch starts here
        self._watched: set[int] = set()
        self.abandon_grace = 60.0
        # the ordering bot: new chats go to it first while it is ready (see docs/subsystems/bot.md)
        self.bot: Bot | None = None
        self.bot_ready = False
        self._bot_locks: dict[int, tuple[asyncio.Lock, int]] = {}  # conversation -> (lock, turns using it)
        self._bot_tasks: set[asyncio.Task[None]] = set()
        self.offer_timeout = offer_timeout
        self.wrap_up_seconds = wrap_up_seconds
        self._wrap_up_tasks: dict[int, asyncio.Task[None]] = {}
        self._rules: dict[str, QueueRule] = {}
        self._queue_ids: dict[str, int] = {}
        self._default_queue = "general"
        self._last_queue_info: dict[int, tuple[int, int]] = {}
        self._customer_locks: dict[int, asyncio.Lock] = {}
        self._route_lock = asyncio.Lock()
        self._kick = asyncio.Event()
        # the agents whose console is connected to this process (the /agent namespace sets it)
        self.connected_agents: Callable[[], Iterable[int]] = lambda: ()

    # --- set-up --------------------------------------------------------------------------------

    async def load_queues(self) -> None:
        """Read queue rules from SQL; each channel's default queue is the first one that serves it."""
        async with self.db.session() as s:
            queues = (await s.exec(select(Queue).order_by(col(Queue.id)))).all()
        names = {q.id: q.name for q in queues}
        self._rules = {
            q.name: QueueRule(
                name=q.name,
                skills_required=frozenset(q.skills_required or []),
                sl_target_seconds=q.sl_target_seconds,
                overflow_to=names.get(q.overflow_queue_id) if q.overflow_queue_id else None,
                overflow_after_seconds=q.overflow_after_seconds,
            )
            for q in queues
        }
        self._queue_ids = {q.name: q.id for q in queues if q.id is not None}
        fallback = queues[0].name if queues else "general"
        defaults: dict[str, str] = {}
        for spec in self.channels.specs():
            serving = [q.name for q in queues if spec.name in (q.channels or [])]
            defaults[spec.name] = serving[0] if serving else fallback
        self.channels.with_defaults(default_queues=defaults)
        self._default_queue = fallback
        for name in {*defaults.values(), fallback}:
            self._rules.setdefault(name, QueueRule(name=name, skills_required=frozenset()))

    def queue_names(self) -> list[str]:
        """The names of the queues a conversation can be transferred to."""
        return sorted(self._rules)

    async def rebuild_state(self) -> int:
        """Rebuild what the shared state lost (a Redis flush or restart) from SQL; the number of conversations re-queued.

        In this order, each step a no-op for what the store still knows:

        1. the presence of every agent whose console is connected to this node, in the state SQL last
           recorded for them (``agent_state_log``; ``away`` if none), their capacity and skills;
        2. the assignments of the conversations SQL says an agent is handling, with one unit of load
           each, so nobody is offered past their capacity;
        3. the conversations SQL says are waiting, back into their queues.
        """
        await self._restore_presences()
        await self._restore_assignments()
        restored = 0
        for conv, customer in await self._conversations_with_customers("queued"):
            assert conv.id is not None
            entry = self._entry(conv, customer)
            if await self.store.enqueue(entry):
                restored += 1
        if restored:
            log.info("re-queued conversations from SQL", extra={"count": restored})
            self.kick()
        return restored

    async def _conversations_with_customers(self, status: str) -> Sequence[tuple[Conversation, Customer]]:
        """The conversations in ``status`` (SQL), each with its customer."""
        async with self.db.session() as s:
            return (
                await s.exec(
                    select(Conversation, Customer)
                    .join(Customer, col(Customer.id) == col(Conversation.customer_id))
                    .where(Conversation.status == status)
                )
            ).all()

    async def _restore_presences(self) -> None:
        """Presences of this node's connected agents that the store lost, in their last recorded state."""
        known = {p.agent_id for p in await self.store.all_presence()}
        missing = sorted(set(self.connected_agents()) - known)
        if not missing:
            return
        now = self.clock()
        last_state = await stats_repo.open_agent_states(self.db, missing)
        async with self.db.session() as s:
            rows = (await s.exec(select(Agent).where(col(Agent.id).in_(missing)))).all()
        for row in rows:
            assert row.id is not None
            state = last_state.get(row.id, AgentStatus.AWAY.value)
            status = AgentStatus.AVAILABLE.value if state == AgentStatus.BUSY.value else state
            if status not in (AgentStatus.AVAILABLE.value, AgentStatus.AWAY.value, AgentStatus.WRAP_UP.value):
                status = AgentStatus.AWAY.value
            await self.store.set_presence(AgentPresence(
                agent_id=row.id, status=status, since=now, node=self.node, load={},
                capacity=dict(row.capacity or {}), skills=dict(row.skills or {}), idle_since=now,
            ))
            if status != state:
                await self._log_state(row.id, status)
                await self.emitter.emit("status", {"status": status}, to=room_agent(row.id), namespace="/agent")
            log.info("restored an agent's presence from SQL", extra={"agent_id": row.id, "status": status})
        self.kick()

    async def _restore_assignments(self) -> None:
        """Assignments SQL knows and the store lost; re-checked in SQL afterwards (a close may have raced)."""
        restored: dict[int, int] = {}
        for conv, customer in await self._conversations_with_customers("assigned"):
            if conv.assigned_agent_id is None:
                continue
            assert conv.id is not None
            if await self.store.restore_assignment(self._entry(conv, customer), conv.assigned_agent_id):
                restored[conv.id] = conv.assigned_agent_id
        if not restored:
            return
        async with self.db.session() as s:
            now_rows = (await s.exec(select(Conversation).where(col(Conversation.id).in_(list(restored))))).all()
        still = {c.id for c in now_rows if c.status == "assigned" and c.assigned_agent_id == restored.get(c.id or 0)}
        for cid in set(restored) - still:  # closed or moved while we restored it: give the load back
            await self.store.release(cid, self.clock())
        log.info("restored assignments from SQL", extra={"count": len(still)})

    def _entry(self, conv: Conversation, customer: Customer) -> QueueEntry:
        """The queue entry of a waiting conversation."""
        queue = self._queue_name(conv)
        return QueueEntry(
            conversation_id=conv.id,  # type: ignore[arg-type]
            queue=queue,
            channel=conv.channel,
            priority=TIER_PRIORITY.get(customer.tier, 0) + conv.priority,
            enqueued_at=conv.created_at.timestamp(),
            declined_by=frozenset(),
            pinned_agent=None,
        )

    def _queue_name(self, conv: Conversation) -> str:
        """The name of the queue a conversation is in (its channel's default when it has none)."""
        found = next((n for n, i in self._queue_ids.items() if i == conv.queue_id), None)
        if found is not None:
            return found
        spec = self.channels.get(conv.channel)
        return spec.default_queue if spec is not None else self._default_queue

    async def _to_live_customer(self, channel: str, conversation_id: int, event: str, data: dict[str, Any]) -> None:
        """An event for the customer's widgets, on a live channel only (others have no socket to tell)."""
        spec = self.channels.get(channel)
        if spec is not None and self.channels.adapter(spec.name) is None:
            await self.emitter.emit(event, data, to=room_conv(conversation_id), namespace="/customer")

    def _noun(self, channel: str) -> str:
        """What a conversation on this channel is called in the contact repository's summaries."""
        spec = self.channels.get(channel)
        return spec.noun if spec is not None else "conversation"

    def _kind(self, channel: str) -> str:
        """The interaction kind the contact repository records for a channel's conversations."""
        spec = self.channels.get(channel)
        return spec.interaction_kind if spec is not None else InteractionKind.NOTE.value

    def _spec(self, channel: str) -> ChannelSpec:
        """A registered channel's spec; an unknown one is the caller's error."""
        try:
            return self.channels.spec(channel)
        except UnknownChannel as exc:
            raise HubError("bad_request", str(exc)) from None

    def _live_channel(self, channel: str | None) -> ChannelSpec:
        """The channel of a connected customer (web chat's socket), by name or the first live one."""
        if channel is not None:
            return self._spec(channel)
        live = self.channels.live()
        if not live:
            raise HubError("bad_request", "no live channel is registered")
        return live[0]

    # --- customers -----------------------------------------------------------------------------

    async def customer_session(
        self, visitor_id: str, name: str = "", email: str = "", last_seq: int = 0, *, channel: str | None = None
    ) -> dict[str, Any]:
        """Identify a connected customer (a web visitor) and return their open conversation and what they missed.

        A visitor the repository does not know yet gets an empty session (``customer_id`` None) and
        nothing is written: most page views never chat, and a connect must stay a read. The customer
        and their contact point are created by :meth:`identify_visitor` at their first message.
        """
        spec = self._live_channel(channel)
        customer = await self._known_visitor(visitor_id, spec)
        if customer is None:
            return {"customer_id": None, "conversation_id": None, "status": None, "agent_name": None, "queue": None, "messages": []}
        if email or (name and not customer.display_name):
            customer = await self.identify_visitor(visitor_id, name, email, channel=spec.name)  # record what they just told us
        return await self._session_payload(customer, last_seq, spec)

    async def identify_visitor(self, visitor_id: str, name: str = "", email: str = "", *, channel: str | None = None) -> Customer:
        """Find or create the connected customer (race-safe), recording a name and an email they gave.

        The email is linked as an unverified contact point: a later email from that address finds them.
        """
        spec = self._live_channel(channel)
        async with self.db.transaction() as s:
            res = await customers_repo.resolve_identity(s, spec.contact_kind, visitor_id, display_name=name[:200])
            customer = res.customer
            assert customer.id is not None
            if name and not customer.display_name:
                customer.display_name = name.strip()[:200]
                s.add(customer)
            if email:
                try:
                    await customers_repo.link_contact_point(s, customer.id, ContactKind.EMAIL, email, verified=False)
                except (customers_repo.ContactPointTaken, InvalidAddress) as exc:
                    log.info("given email not linked", extra={"customer_id": customer.id, "reason": str(exc)})
        return customer

    async def _known_visitor(self, visitor_id: str, spec: ChannelSpec) -> CustomerRef | None:
        """A returning visitor found with one point read (no session, no write lock): every connect asks."""
        return await self.reads.customer_by_contact(ContactKind(spec.contact_kind), visitor_id)

    async def _session_payload(self, customer: Customer | CustomerRef, last_seq: int, spec: ChannelSpec) -> dict[str, Any]:
        """The ``session`` event: the customer, their open conversation on the channel and what they missed."""
        assert customer.id is not None
        async with self.db.session() as s:
            conv = await conv_repo.find_open_conversation(s, customer.id, spec.name)
        data: dict[str, Any] = {
            "customer_id": customer.id,
            "conversation_id": conv.id if conv else None,
            "status": conv.status if conv else None,
            "agent_name": None,
            "queue": None,
            "messages": [],
        }
        if conv is None:
            self._open_chats.pop((customer.id, spec.name), None)
        else:
            assert conv.id is not None
            self._remember_open(customer.id, spec.name, conv.id, customer.display_name or "Customer")
            data["messages"] = await self.history(conv.id, last_seq, for_customer=True)
            data["agent_name"] = await self._agent_name(conv.assigned_agent_id)
            data["queue"] = await self.queue_info(conv.id) if conv.status == "queued" else None
        return data

    async def queue_info(self, conversation_id: int) -> dict[str, Any] | None:
        """A waiting conversation's place in its queue and estimated wait (None if not waiting)."""
        presences = await self.store.all_presence()
        contacts = waiting_contacts(await self.store.waiting(), presences)
        pos = queue_position(contacts, conversation_id, self.clock())
        if pos is None:
            return None
        channel = next(c.channel for c in contacts if c.conversation_id == conversation_id)
        return queue_update(conversation_id, pos, serving_agents(presences), self._concurrency(channel))

    def _concurrency(self, channel: str) -> float:
        """How many conversations of a channel an agent works at once (for wait estimates)."""
        spec = self.channels.get(channel)
        return spec.concurrency if spec is not None else 1.0

    async def customer_session_for(self, customer_id: int, *, channel: str | None = None) -> int | None:
        """The id of the customer's open conversation on a live channel, if any."""
        spec = self._live_channel(channel)
        async with self.db.session() as s:
            conv = await conv_repo.find_open_conversation(s, customer_id, spec.name)
        return conv.id if conv else None

    async def history(self, conversation_id: int, after_seq: int, *, for_customer: bool) -> list[dict[str, Any]]:
        """Messages after ``after_seq`` (internal notes only for agents), with sender names."""
        async with self.db.session() as s:
            msgs = await conv_repo.messages_after(s, conversation_id, max(0, after_seq), include_internal=not for_customer)
            names = await self._sender_names(s, msgs)
        return [message_json(m, names.get(m.sender_id or "", "")) for m in msgs]

    async def _sender_names(self, s: Any, msgs: Sequence[Message]) -> dict[str, str]:
        """Display names of the agents who wrote these messages."""
        ids = {int(m.sender_id) for m in msgs if m.sender_kind == "agent" and m.sender_id and m.sender_id.isdigit()}
        if not ids:
            return {}
        agents = (await s.exec(select(Agent).where(col(Agent.id).in_(ids)))).all()
        return {str(a.id): a.display_name for a in agents}

    async def _agent_name(self, agent_id: int | None) -> str | None:
        """An agent's display name."""
        if agent_id is None:
            return None
        async with self.db.session() as s:
            agent = await s.get(Agent, agent_id)
        return agent.display_name if agent else None

    def _lock_for(self, customer_id: int, channel: str) -> asyncio.Lock:
        """One lock per customer and channel so two first messages do not open two conversations (per process)."""
        key = (customer_id, channel)
        lock = self._customer_locks.get(key)
        if lock is None:
            lock = self._customer_locks[key] = asyncio.Lock()
        return lock

    async def customer_message(
        self, customer_id: int, raw_client_id: Any, raw_text: Any, *, origin_sid: str | None = None, raw_payload: Any = None,
        channel: str | None = None,
    ) -> dict[str, Any]:
        """Store a connected customer's message (opening a conversation if needed), queue it, publish it.

        The live channels' entry (web chat): the customer is already identified by their socket.
        ``origin_sid``: the customer socket it came from, which gets the stored message in its
        acknowledgement and so is left out of the echo to the customer's other tabs.
        """
        spec = self._live_channel(channel)
        text, cid = clean_text(raw_text, spec.max_text), client_id(raw_client_id)
        bot_text = bot_payload(raw_payload) or text  # a clicked button sends its payload to the bot
        known = self._open_chats.get((customer_id, spec.name))
        if known is not None:
            conv_id, name = known
            logged = await self.messages.append(conv_id, "customer", text, sender_id=str(customer_id), client_msg_id=cid)
            if logged is not None:
                payload = message_json(logged.message, name)
                if logged.created:
                    await self._publish(conv_id, logged.assigned_agent_id, payload, to_customer=spec, skip_sid=origin_sid)
                    if logged.status == "bot":
                        self._start_bot_turn(conv_id, customer_id, bot_text)
                return {"message": payload, "conversation_id": conv_id, "created": logged.created}
            self._open_chats.pop((customer_id, spec.name), None)  # closed meanwhile: open a new conversation below
        inbound = _Inbound(spec=spec, text=text, client_id=cid, bot_text=bot_text)
        conv, payload, created = await self._ingest(customer_id, inbound, origin_sid=origin_sid)
        return {"message": payload, "conversation_id": conv.id, "created": created}

    async def receive_inbound(self, event: InboundEvent) -> InboundResult:
        """What a channel adapter received (an SMS, a WhatsApp message, ...): stored once, then bot or router.

        The customer is found (or created) by their address on the channel; the same E.164 number on
        the phone, SMS and WhatsApp is one customer. A repeat of the same provider id stores nothing
        and sends nothing. The bot turn and routing run after this returns.
        """
        spec = self._spec(event.channel)
        text = clean_text(event.text, spec.max_text, allow_empty=bool(event.attachments))
        cid = client_id(event.client_id) if event.client_id is not None else None
        try:
            async with self.db.transaction() as s:
                res = await customers_repo.resolve_identity(
                    s, spec.contact_kind, event.customer_address, display_name=event.display_name[:200],
                    default_region=self.default_region, verified=True,
                )
                if event.display_name and not res.customer.display_name:
                    res.customer.display_name = event.display_name.strip()[:200]
                    s.add(res.customer)
                customer_id, address = res.customer.id, res.contact_point.value
        except InvalidAddress as exc:
            raise HubError("bad_request", str(exc)) from None
        assert customer_id is not None
        inbound = _Inbound(
            spec=spec, text=text, client_id=cid, provider_id=event.provider_id, thread_key=event.thread_key,
            bot_text=event.bot_text or text, queue=event.queue, customer_address=address, our_address=event.our_address,
            attachments=[{"type": "media", "content_type": a.content_type, "url": a.url, "name": a.name, "size": a.size}
                         for a in event.attachments],
        )
        conv, payload, created = await self._ingest(customer_id, inbound)
        assert conv.id is not None
        return InboundResult(customer_id=customer_id, conversation_id=conv.id, message=payload, created=created)

    async def _ingest(
        self, customer_id: int, inbound: "_Inbound", *, origin_sid: str | None = None
    ) -> tuple[Conversation, dict[str, Any], bool]:
        """The full path of a customer's message: find or open the conversation, store, publish, bot or queue."""
        spec = inbound.spec
        async with self._lock_for(customer_id, spec.name):
            for attempt in range(3):
                try:
                    conv, msg, created, new_conv, customer = await self._store_inbound(customer_id, inbound)
                    break
                except IntegrityError:
                    if attempt == 2:
                        raise
        assert conv.id is not None
        name = customer.display_name or "Customer"
        if inbound.thread_key is None:
            self._remember_open(customer_id, spec.name, conv.id, name)
        payload = message_json(msg, name)
        if created:
            await self._publish(conv.id, conv.assigned_agent_id, payload, to_customer=spec, skip_sid=origin_sid)
            if conv.status == "bot":
                bot_text = inbound.bot_text or inbound.text
                if spec.buttons_as_text:
                    bot_text = await self._chosen_payload(conv.id, msg.seq, inbound.text) or bot_text
                self._start_bot_turn(conv.id, customer_id, bot_text)
        if new_conv and conv.status == "queued":
            await self.store.enqueue(self._entry(conv, customer))
            self.kick()
        return conv, payload, created

    async def _chosen_payload(self, conversation_id: int, seq: int, text: str) -> str | None:
        """A bare number answering the bot's last numbered choices: that button's payload."""
        async with self.db.session() as s:
            recent = await conv_repo.messages_after(s, conversation_id, max(0, seq - 6), include_internal=False)
        for m in reversed([m for m in recent if m.seq < seq]):
            if m.sender_kind == "customer":
                return None  # the customer already answered the last choices
            buttons = next((a.get("buttons") for a in m.attachments or () if isinstance(a, dict) and a.get("type") == "buttons"), None)
            if m.sender_kind == "bot" and buttons:
                choice = pick_choice(text, len(buttons))
                return None if choice is None else str(buttons[choice].get("payload") or buttons[choice].get("title") or "")
        return None

    def _remember_open(self, customer_id: int, channel: str, conversation_id: int, name: str) -> None:
        """Cache the customer's open conversation for the fast path (bounded: the oldest entries go first)."""
        if len(self._open_chats) >= 50_000:
            for key in list(self._open_chats)[:5_000]:
                del self._open_chats[key]
        self._open_chats[(customer_id, channel)] = (conversation_id, name)

    async def _publish(
        self, conversation_id: int, agent_id: int | None, payload: dict[str, Any], *, to_customer: ChannelSpec | None,
        skip_sid: str | None = None,
    ) -> None:
        """Send a stored message to the assigned agent, watchers, and the customer (unless internal).

        ``to_customer`` is the conversation's channel, or None for what only agents see. A live channel
        (web chat) gets it in the customer's room, in the same batch: across hub processes the rooms are
        reached by one pub/sub message. Any other channel's adapter delivers what the shop sends (not
        the customer's own messages), in the background, and reports its delivery status.
        """
        items: list[dict[str, Any]] = []
        live = to_customer is not None and self.channels.adapter(to_customer.name) is None
        if live:
            items.append({"event": "message", "data": payload, "to": room_conv(conversation_id), "namespace": "/customer", "skip_sid": skip_sid})
        if agent_id is not None:
            items.append({"event": "message", "data": payload, "to": room_agent(agent_id), "namespace": "/agent"})
        if conversation_id in self._watched:
            items.append({"event": "message", "data": payload, "to": room_monitor(conversation_id), "namespace": "/supervisor"})
        await self.emitter.emit_many(items)
        if to_customer is not None and not live and payload.get("sender_kind") != "customer" and not payload.get("internal"):
            self._deliver_later(conversation_id, int(payload["seq"]))

    async def _store_inbound(
        self, customer_id: int, inbound: "_Inbound"
    ) -> tuple[Conversation, Message, bool, bool, Customer]:
        """The SQL part of a customer message, in one transaction: the conversation by the channel's policy."""
        spec = inbound.spec
        queue = inbound.queue if inbound.queue in self._rules else spec.default_queue
        async with self.db.transaction() as s:
            customer = await customers_repo.get_customer(s, customer_id)
            reopened = False
            if spec.policy is ConversationPolicy.PER_CUSTOMER or inbound.thread_key is None:
                conv = await conv_repo.find_open_conversation(s, customer_id, spec.name)
            else:
                conv = await conv_repo.find_thread(s, spec.name, inbound.thread_key)
                if conv is not None and conv.status == "closed":  # a new message in a finished thread reopens it
                    conv.status, conv.closed_at, conv.disposition, conv.assigned_agent_id = "queued", None, None, None
                    conv.queued_at, reopened = utcnow(), True
                    s.add(conv)
            new_conv = conv is None or reopened
            if conv is None:
                conv = await conv_repo.open_conversation(
                    s, customer_id, spec.name, subject=inbound.text[:120], queue_id=self._queue_ids.get(queue),
                    thread_key=inbound.thread_key if spec.policy is not ConversationPolicy.PER_CUSTOMER else None,
                    customer_address=inbound.customer_address, our_address=inbound.our_address,
                )
                if spec.bot_first and self.bot is not None and self.bot_ready:
                    conv.status = "bot"  # the bot answers first; queued_at is set when it hands over
                else:
                    conv.status, conv.queued_at = "queued", utcnow()
                s.add(conv)
                await record_interaction(
                    s, customer_id, spec.interaction_kind, spec.name, f"{spec.label} started: {inbound.text[:200]}",
                    {"queue": queue, "with": "bot" if conv.status == "bot" else "queue"}, conversation_id=conv.id,
                )
            elif inbound.our_address and conv.our_address != inbound.our_address:
                conv.our_address = inbound.our_address  # replies go from the number the customer last wrote to
                s.add(conv)
            assert conv.id is not None
            appended = await conv_repo.append_message(
                s, conv.id, "customer", inbound.text, sender_id=str(customer_id), client_msg_id=inbound.client_id,
                provider_id=inbound.provider_id, attachments=inbound.attachments or None,
            )
        return conv, appended.message, appended.created, new_conv, customer


    # --- the bot -------------------------------------------------------------------------------

    def _start_bot_turn(self, conversation_id: int, customer_id: int, text: str) -> None:
        """Give the customer's message to the bot in the background (turns of one chat stay in order)."""
        task = asyncio.get_running_loop().create_task(self.bot_turn(conversation_id, customer_id, text))
        self._bot_tasks.add(task)
        task.add_done_callback(self._bot_tasks.discard)

    async def bot_turn(self, conversation_id: int, customer_id: int, text: str) -> None:
        """One bot turn: send the text, publish the replies, hand over to a person when the bot says so.

        Rasa down, failing or slower than its limit: the customer is told and the chat goes to an
        agent; the customer's message is already stored, so nothing is lost.
        """
        lock, users = self._bot_locks.get(conversation_id) or (asyncio.Lock(), 0)
        self._bot_locks[conversation_id] = (lock, users + 1)
        try:
            await self._bot_turn_locked(lock, conversation_id, customer_id, text)
        finally:
            lock, users = self._bot_locks[conversation_id]
            if users <= 1:
                del self._bot_locks[conversation_id]
            else:
                self._bot_locks[conversation_id] = (lock, users - 1)

    async def _bot_turn_locked(self, lock: asyncio.Lock, conversation_id: int, customer_id: int, text: str) -> None:
        async with lock:
            try:
                async with self.db.session() as s:
                    conv = await s.get(Conversation, conversation_id)
                if conv is None or conv.status != "bot":
                    return  # handed over (or closed) meanwhile: the bot stays silent
                if self.bot is None:
                    raise BotDown("no bot is configured")
                try:
                    replies = list(await self.bot.send(f"conv-{conversation_id}", text, {
                        "customer_id": customer_id, "conversation_id": conversation_id, "channel": conv.channel,
                    }))
                except Exception as exc:  # noqa: BLE001 - any failure of the bot means: a person takes over
                    raise BotDown(str(exc)) from exc
                handoff: dict[str, Any] | None = None
                for reply in replies:
                    if reply.handoff:
                        handoff = dict(reply.custom)
                    if reply.text or reply.buttons:
                        await self._bot_says(conversation_id, reply.text, reply.buttons)
                if handoff is not None:
                    await self.hand_over(conversation_id, str(handoff.get("reason") or "bot"), handoff)
            except BotDown as exc:
                log.warning("bot unavailable; handing over", extra={"conversation_id": conversation_id, "reason": str(exc)})
                await self._bot_says(conversation_id, BOT_UNAVAILABLE_TEXT, ())
                await self.hand_over(conversation_id, "bot_unavailable", {"reason": "bot_unavailable", "detail": str(exc)[:300]})
            except Exception:  # noqa: BLE001 - logged; the chat must not be left with a silent bot
                log.exception("bot turn failed", extra={"conversation_id": conversation_id})
                await self.hand_over(conversation_id, "bot_error", {"reason": "bot_error"})

    async def _bot_says(self, conversation_id: int, text: str, buttons: Sequence[dict[str, str]]) -> None:
        """Store a bot message (with its buttons) and send it to the customer (and any watcher)."""
        attachments = [{"type": "buttons", "buttons": list(buttons)}] if buttons else []
        async with self.db.transaction() as s:
            conv = await s.get(Conversation, conversation_id)
            spec = self.channels.get(conv.channel) if conv is not None else None
            appended = await conv_repo.append_message(
                s, conversation_id, "bot", text or "", sender_id="bot", attachments=attachments,
                delivery_status=self._initial_status(spec),
            )
        await self._publish(conversation_id, None, message_json(appended.message, "Assistant"), to_customer=spec)

    async def hand_over(self, conversation_id: int, reason: str, context: dict[str, Any]) -> bool:
        """The bot passes the chat to a person: queued for an agent with what the bot knew.

        The agent gets the bot's context (intent, slots, order draft) as an internal note at the top of
        what they see, so the customer never repeats anything. Returns False if the chat was not with
        the bot any more.
        """
        summary = handoff_summary(reason, context)
        async with self.db.transaction() as s:
            conv = await s.get(Conversation, conversation_id)
            if conv is None or conv.status != "bot":
                return False
            now = utcnow()
            conv.status, conv.updated_at = "queued", now
            conv.queued_at = conv.queued_at or now
            s.add(conv)
            customer = await customers_repo.get_customer(s, conv.customer_id)
            await conv_repo.append_message(
                s, conversation_id, "bot", summary, sender_id="bot", internal=True,
                attachments=[{"type": "handoff", "reason": reason, "context": _jsonable(context)}],
            )
            await record_interaction(
                s, conv.customer_id, self._kind(conv.channel), conv.channel, f"Bot handed over to an agent ({reason})",
                {"event": "handoff", "reason": reason, "intent": context.get("intent"), "slots": _jsonable(context.get("slots") or {}),
                 "draft": _jsonable(context.get("draft"))}, conversation_id=conversation_id,
            )
        await self.store.enqueue(self._entry(conv, customer))
        self.kick()
        return True

    async def hand_back(self, agent: AgentRef, conversation_id: Any) -> dict[str, Any]:
        """The agent gives the chat back to the bot, which resumes where it stopped (an open form goes on)."""
        if self.bot is None or not self.bot_ready:
            raise HubError("conflict", "the bot is not available")
        conv = await self._assigned(agent, conversation_id)
        assert conv.id is not None
        async with self.db.transaction() as s:
            row = await s.get(Conversation, conv.id)
            assert row is not None
            row.status, row.assigned_agent_id, row.updated_at = "bot", None, utcnow()
            s.add(row)
            await record_interaction(
                s, row.customer_id, self._kind(row.channel), row.channel, f"{agent.display_name} handed the {self._noun(row.channel)} back to the bot",
                {"event": "to_bot"}, agent_id=agent.id, conversation_id=conv.id,
            )
        holder = await self.store.release(conv.id, self.clock())
        await self.emitter.emit("conversation_closed", {"conversation_id": conv.id, "reason": "to_bot"}, to=room_agent(holder or agent.id), namespace="/agent")
        if holder is not None:
            await self._start_wrap_up(holder)
        self._start_bot_turn(conv.id, conv.customer_id, "/resume_bot")
        self.kick()
        return {"conversation_id": conv.id, "status": "bot"}

    async def watch_bot(self, interval: float = 5.0) -> None:
        """Keep ``bot_ready`` true only while the bot answers its status check."""
        while True:
            if self.bot is not None:
                ready = await self.bot.ready()
                if ready != self.bot_ready:
                    log.info("bot %s", "ready" if ready else "not ready: new chats go to agents")
                self.bot_ready = ready
            await asyncio.sleep(interval)

    async def customer_typing(self, customer_id: int, typing: bool, *, channel: str | None = None) -> None:
        """Tell the agent on the customer's open conversation (a live channel) that they are typing."""
        spec = self._live_channel(channel)
        async with self.db.session() as s:
            conv = await conv_repo.find_open_conversation(s, customer_id, spec.name)
        if conv is not None and conv.assigned_agent_id is not None:
            await self.emitter.emit(
                "typing", {"conversation_id": conv.id, "typing": bool(typing)}, to=room_agent(conv.assigned_agent_id), namespace="/agent"
            )

    # --- agents --------------------------------------------------------------------------------

    async def agent_online(self, agent: AgentRef) -> dict[str, Any]:
        """Register an agent's console: presence (kept if they reconnect), their chats and offers."""
        async with self.db.session() as s:
            row = await s.get(Agent, agent.id)
        if row is None or not row.active:
            raise HubError("forbidden", "this agent account is not active")
        now = self.clock()
        presence = await self.store.get_presence(agent.id)
        if presence is None:
            presence = AgentPresence(
                agent_id=agent.id, status=AgentStatus.AWAY.value, since=now, node=self.node,
                load={}, capacity=dict(row.capacity or {}), skills=dict(row.skills or {}), idle_since=now,
            )
            await self.store.set_presence(presence)
            await self._log_state(agent.id, presence.status)
        conversations = await self.agent_conversations(agent.id)
        offers = [await self._offer_json(o.conversation_id, o.expires_at, o.queue, o.channel) for o in await self.store.offers_of(agent.id)]
        return {
            "agent": {"id": agent.id, "username": agent.username, "display_name": agent.display_name, "role": agent.role},
            "status": presence.status,
            "conversations": conversations,
            "offers": offers,
            "channels": self.channels.describe(),
        }

    async def agent_conversations(self, agent_id: int) -> list[dict[str, Any]]:
        """The agent's open conversations (from SQL)."""
        async with self.db.session() as s:
            rows = (
                await s.exec(
                    select(Conversation, Customer)
                    .join(Customer, col(Customer.id) == col(Conversation.customer_id))
                    .where(Conversation.assigned_agent_id == agent_id, Conversation.status == "assigned")
                    .order_by(col(Conversation.id))
                )
            ).all()
            points = await self._address_points(s, [c for c, _ in rows])
        return [self._conv_json(c, cu, points.get(c.id or 0)) for c, cu in rows]

    async def _address_points(self, s: Any, convs: Sequence[Conversation]) -> dict[int, Any]:
        """Conversation id -> the contact point of the customer's address on it (verified? opted out?)."""
        return {conv.id: await self._point_of(s, conv) for conv in convs if conv.id is not None}

    async def _point_of(self, s: Any, conv: Conversation) -> Any:
        """The contact point of the customer's address on the conversation's channel (None if it has none)."""
        spec = self.channels.get(conv.channel)
        if spec is None or not conv.customer_address:
            return None
        return await customers_repo.find_contact_point(s, spec.contact_kind, conv.customer_address)

    def _conv_json(self, conv: Conversation, customer: Customer, point: Any = None) -> dict[str, Any]:
        """A conversation summary for the console."""
        spec = self.channels.get(conv.channel)
        return {
            "id": conv.id,
            "customer_id": customer.id,
            "customer_name": customer.display_name or f"Visitor {customer.id}",
            "channel": conv.channel,
            "channel_label": spec.label if spec is not None else conv.channel,
            "status": conv.status,
            "subject": conv.subject,
            "last_seq": conv.last_seq,
            "queue_id": conv.queue_id,
            "queue": self._queue_name(conv),
            "customer_address": conv.customer_address or None,
            "address_verified": bool(point.verified) if point is not None else None,
            "opted_out": bool(point is not None and point.opted_out_at is not None),
            "last_message_at": conv.updated_at.isoformat() if conv.updated_at else None,
        }

    async def set_status(self, agent: AgentRef, status: Any) -> str:
        """Change an agent's presence (available / away / offline); becoming available triggers routing."""
        allowed = (AgentStatus.AVAILABLE.value, AgentStatus.AWAY.value, AgentStatus.OFFLINE.value)
        if status not in allowed:
            raise HubError("bad_request", f"status must be one of {', '.join(allowed)}")
        updated = await self.store.set_status(agent.id, status, self.clock())
        if updated is None:
            await self.agent_online(agent)
            updated = await self.store.set_status(agent.id, status, self.clock())
        await self._log_state(agent.id, status)
        if status == AgentStatus.AVAILABLE.value:
            self.kick()
        return status

    async def _log_state(self, agent_id: int, state: str) -> None:
        """Record an agent's state change in SQL (time in state, occupancy); never fails the caller."""
        try:
            await stats_repo.record_agent_state(self.db, agent_id, state)
        except Exception:  # noqa: BLE001 - a lost statistic must not lose the action
            log.exception("could not record the agent state", extra={"agent_id": agent_id, "state": state})

    # --- supervisors ---------------------------------------------------------------------------

    @staticmethod
    def _supervisor(actor: AgentRef) -> None:
        if actor.role not in ("supervisor", "admin"):
            raise HubError("forbidden", "supervisors only")

    async def supervisor_set_status(self, actor: AgentRef, agent_id: Any, status: Any) -> str:
        """A supervisor changes an agent's state; the agent's console is told. Recorded on the state log."""
        self._supervisor(actor)
        if isinstance(agent_id, bool) or not isinstance(agent_id, int):
            raise HubError("bad_request", "agent_id must be an agent's id")
        allowed = (AgentStatus.AVAILABLE.value, AgentStatus.AWAY.value, AgentStatus.OFFLINE.value)
        if status not in allowed:
            raise HubError("bad_request", f"status must be one of {', '.join(allowed)}")
        if await self.store.set_status(agent_id, status, self.clock()) is None:
            raise HubError("not_found", "that agent is not logged in")
        await self._log_state(agent_id, status)
        await self.emitter.emit("status", {"status": status, "by": actor.display_name}, to=room_agent(agent_id), namespace="/agent")
        if status == AgentStatus.AVAILABLE.value:
            self.kick()
        log.info("supervisor set agent state", extra={"actor": actor.id, "agent_id": agent_id, "status": status})
        return status

    async def reassign(self, actor: AgentRef, conversation_id: Any, *, to_agent: Any = None, to_queue: Any = None) -> dict[str, Any]:
        """A supervisor moves a conversation to another agent or queue (a transfer on their authority)."""
        self._supervisor(actor)
        return await self.transfer(actor, conversation_id, queue=to_queue, to_agent=to_agent, note=f"reassigned by supervisor {actor.display_name}")

    async def whisper(self, actor: AgentRef, conversation_id: Any, raw_text: Any) -> dict[str, Any]:
        """A supervisor's note to the agent in a conversation: the agent sees it, the customer never does."""
        self._supervisor(actor)
        text = clean_text(raw_text)
        conv = await self._assigned(actor, conversation_id)
        assert conv.id is not None
        async with self.db.transaction() as s:
            appended = await conv_repo.append_message(s, conv.id, "supervisor", text, sender_id=str(actor.id), internal=True)
            await record_interaction(
                s, conv.customer_id, InteractionKind.NOTE, conv.channel, f"Whisper from {actor.display_name}: {text[:250]}",
                {"event": "whisper"}, agent_id=actor.id, conversation_id=conv.id,
            )
        payload = message_json(appended.message, actor.display_name)
        await self._publish(conv.id, conv.assigned_agent_id, payload, to_customer=None)
        return payload

    async def monitor(self, actor: AgentRef, conversation_id: Any, watcher: str) -> dict[str, Any]:
        """A supervisor starts watching a conversation silently: its transcript now, its messages live after.

        The caller (the /supervisor namespace) puts the socket in ``room_monitor(id)``. Recorded.
        """
        self._supervisor(actor)
        cid = self._conv_id(conversation_id)
        async with self.db.transaction() as s:
            conv = await s.get(Conversation, cid)
            if conv is None:
                raise HubError("not_found", "conversation not found")
            await record_interaction(
                s, conv.customer_id, InteractionKind.NOTE, conv.channel, f"{actor.display_name} watched the {self._noun(conv.channel)}",
                {"event": "monitor"}, agent_id=actor.id, conversation_id=cid,
            )
        await self.store.add_watcher(cid, watcher)
        self._watched.add(cid)
        return {"conversation_id": cid, "status": conv.status, "messages": await self.history(cid, 0, for_customer=False)}

    async def unmonitor(self, conversation_id: int, watcher: str) -> None:
        """The watcher stops watching (their socket left, or they closed the view)."""
        await self.store.remove_watcher(conversation_id, watcher)

    # --- customers leaving -----------------------------------------------------------------------

    async def customer_left(self, customer_id: int, *, channel: str | None = None) -> bool:
        """The customer's last widget went away and did not come back in time: a waiting chat is abandoned.

        Only a conversation still waiting in a queue (never answered) is abandoned; one with an agent
        stays open for the agent to close. Only live channels (the customer is connected while they
        wait) abandon by absence. Returns whether a conversation was abandoned.
        """
        spec = self._live_channel(channel)
        async with self.db.transaction() as s:
            conv = await conv_repo.find_open_conversation(s, customer_id, spec.name)
            if conv is None or conv.status != "queued" or conv.assigned_at is not None:
                return False
            now = utcnow()
            conv.status, conv.disposition, conv.abandoned_at, conv.closed_at, conv.updated_at = "closed", "abandoned", now, now, now
            s.add(conv)
            await record_interaction(
                s, customer_id, self._kind(conv.channel), conv.channel, f"Left the {spec.noun} while waiting (abandoned)",
                {"event": "abandoned"}, conversation_id=conv.id,
            )
        assert conv.id is not None
        self._open_chats.pop((customer_id, spec.name), None)
        self._last_queue_info.pop(conv.id, None)
        offered_to = await self.store.release(conv.id, self.clock())
        if offered_to is not None:
            await self.emitter.emit("offer_revoked", {"conversation_id": conv.id}, to=room_agent(offered_to), namespace="/agent")
        log.info("chat abandoned", extra={"conversation_id": conv.id, "customer_id": customer_id})
        self.kick()
        return True

    async def accept(self, agent: AgentRef, conversation_id: Any) -> dict[str, Any]:
        """Accept an offer: the atomic claim in the state store decides; SQL then records the assignment."""
        cid = self._conv_id(conversation_id)
        if not await self.store.accept(cid, agent.id):
            raise HubError("conflict", "this offer is no longer yours (it timed out or was taken)")
        async with self.db.transaction() as s:
            conv = await s.get(Conversation, cid)
            if conv is None:
                raise HubError("not_found", "conversation not found")
            # assigned_at is the first answer (service level, speed of answer); a transfer keeps it
            conv.status, conv.assigned_agent_id, conv.updated_at = "assigned", agent.id, utcnow()
            conv.assigned_at = conv.assigned_at or conv.updated_at
            s.add(conv)
            customer = await customers_repo.get_customer(s, conv.customer_id)
            await record_interaction(
                s, conv.customer_id, self._kind(conv.channel), conv.channel, f"{agent.display_name} joined the {self._noun(conv.channel)}",
                {"event": "accepted"}, agent_id=agent.id, conversation_id=cid,
            )
        self._last_queue_info.pop(cid, None)
        await self._to_live_customer(conv.channel, cid, "agent_joined", {"conversation_id": cid, "agent_name": agent.display_name})
        async with self.db.session() as s:
            points = await self._address_points(s, [conv])
        return {**self._conv_json(conv, customer, points.get(cid)), "messages": await self.history(cid, 0, for_customer=False)}

    async def decline(self, agent: AgentRef, conversation_id: Any) -> None:
        """Decline an offer: the conversation goes back to the queue, keeping its place."""
        cid = self._conv_id(conversation_id)
        if await self.store.decline(cid, agent.id) is None:
            raise HubError("conflict", "there is no offer of this conversation to you")
        self.kick()

    async def _assigned(self, agent: AgentRef, conversation_id: Any) -> Conversation:
        """The open conversation, if this agent holds it (supervisors may act on any)."""
        cid = self._conv_id(conversation_id)
        async with self.db.session() as s:
            conv = await s.get(Conversation, cid)
        if conv is None:
            raise HubError("not_found", "conversation not found")
        if conv.status == "closed":
            raise HubError("conflict", "this conversation is closed")
        if conv.assigned_agent_id != agent.id and agent.role not in ("supervisor", "admin"):
            raise HubError("forbidden", "this conversation is not assigned to you")
        return conv

    async def reply(
        self, agent: AgentRef, conversation_id: Any, raw_client_id: Any, raw_text: Any, *, internal: bool = False,
        raw_media: Any = None,
    ) -> dict[str, Any]:
        """Store an agent's reply (or internal note) and publish it; a resend returns the first copy.

        On a channel with an adapter (SMS, WhatsApp) the reply is refused before it is stored when the
        channel cannot carry it: the customer opted out, or the channel's reply window has closed. It is
        then delivered in the background; its delivery status follows in ``message_status`` events.
        """
        conv = await self._assigned(agent, conversation_id)
        assert conv.id is not None
        spec = self.channels.get(conv.channel)
        media = await self._media_attachments(raw_media)
        if media and (spec is None or self.channels.adapter(spec.name) is None):
            raise HubError("bad_request", "files can be sent on SMS and WhatsApp only (on web chat: push a document, coming with co-browsing)")
        text = clean_text(raw_text, spec.max_text if spec else MAX_TEXT, allow_empty=bool(media) and not internal)
        cid = client_id(raw_client_id) if raw_client_id is not None else None
        if not internal and spec is not None and self.channels.adapter(spec.name) is None and not media:
            # a live channel: one append through the message log
            logged = await self.messages.append(conv.id, "agent", text, sender_id=str(agent.id), client_msg_id=cid)
            if logged is None:
                raise HubError("conflict", "this conversation is closed")
            payload = message_json(logged.message, agent.display_name)
            if logged.created:
                await self._publish(conv.id, logged.assigned_agent_id or agent.id, payload, to_customer=spec)
            return payload
        if not internal:
            await self._check_can_send(conv, spec)
        async with self.db.transaction() as s:  # a note also goes on the customer's timeline, atomically
            appended = await conv_repo.append_message(
                s, conv.id, "agent", text, sender_id=str(agent.id), client_msg_id=cid, internal=internal,
                attachments=media or None, delivery_status=None if internal else self._initial_status(spec),
            )
            if appended.created and internal:
                await record_interaction(
                    s, conv.customer_id, InteractionKind.NOTE, conv.channel, text[:300], {}, agent_id=agent.id, conversation_id=conv.id
                )
        payload = message_json(appended.message, agent.display_name)
        if appended.created:
            await self._publish(conv.id, conv.assigned_agent_id or agent.id, payload, to_customer=None if internal else spec)
        return payload

    async def _media_attachments(self, raw: Any) -> list[dict[str, Any]]:
        """The files an agent attaches to a reply: keys of uploads in the media store (at most 5)."""
        if raw is None or raw == []:
            return []
        if not isinstance(raw, list) or len(raw) > 5 or not all(isinstance(k, str) and 0 < len(k) <= 100 for k in raw):
            raise HubError("bad_request", "media must be a list of at most 5 upload keys")
        if self.media is None:
            raise HubError("bad_request", "this hub keeps no media")
        out: list[dict[str, Any]] = []
        for key in raw:
            found = await self.media.get(key)
            if found is None:
                raise HubError("not_found", f"no upload with the key {key}")
            stored = found[0]
            out.append({"type": "media", "content_type": stored.content_type, "url": f"/media/{stored.key}", "name": stored.name, "size": stored.size})
        return out

    # --- delivery on channels with an adapter ------------------------------------------------------

    def _initial_status(self, spec: ChannelSpec | None) -> str | None:
        """The delivery status an outbound message starts with: ``queued`` where an adapter delivers it."""
        if spec is None or self.channels.adapter(spec.name) is None:
            return None
        return DeliveryStatus.QUEUED.value

    async def _check_can_send(self, conv: Conversation, spec: ChannelSpec | None) -> None:
        """Refuse, with the reason in words, a reply the channel would not carry."""
        if spec is None:
            raise HubError("bad_request", f"no channel named {conv.channel!r}")
        async with self.db.session() as s:
            point = await self._point_of(s, conv)
            last = await conv_repo.last_customer_message_at(s, conv.id) if spec.reply_window_seconds else None
        if point is not None and point.opted_out_at is not None:
            raise HubError(
                "opted_out",
                f"The customer replied STOP on {spec.label}: nothing can be sent to {conv.customer_address} until they text START.",
            )
        if spec.reply_window_seconds and (last is None or self.clock() - last.timestamp() > spec.reply_window_seconds):
            hours = spec.reply_window_seconds // 3600
            raise HubError(
                "outside_window",
                f"{spec.label} allows free-form replies only within {hours} hours of the customer's last message; "
                "message templates are not supported yet.",
            )

    def _deliver_later(self, conversation_id: int, seq: int) -> None:
        """Hand a stored outbound message to its channel's adapter in the background."""
        task = asyncio.get_running_loop().create_task(self._deliver(conversation_id, seq))
        self._delivery_tasks.add(task)
        task.add_done_callback(self._delivery_tasks.discard)

    async def _deliver(self, conversation_id: int, seq: int) -> None:
        """Deliver one outbound message (a conversation's messages go out in order) and record the outcome."""
        lock = self._delivery_locks.setdefault(conversation_id, asyncio.Lock())
        try:
            async with lock:
                report = await self._deliver_one(conversation_id, seq)
                if report is not None:
                    await self._record_delivery(conversation_id, seq, report)
        except Exception:  # noqa: BLE001 - logged; the message is stored and stays "queued" for the agent to see
            log.exception("delivery failed", extra={"conversation_id": conversation_id, "seq": seq})
        finally:
            if not lock.locked() and self._delivery_locks.get(conversation_id) is lock:
                del self._delivery_locks[conversation_id]

    async def _deliver_one(self, conversation_id: int, seq: int) -> DeliveryReport | None:
        """Ask the adapter to send the message; a refusal we know before sending is a ``failed`` report."""
        async with self.db.session() as s:
            conv = await s.get(Conversation, conversation_id)
            msg = await conv_repo.message_at(s, conversation_id, seq)
            point = await self._point_of(s, conv) if conv is not None else None
        if conv is None or msg is None or msg.internal or msg.delivery_status not in (None, DeliveryStatus.QUEUED.value):
            return None
        spec = self.channels.spec(conv.channel)
        adapter = self.channels.adapter(spec.name)
        if adapter is None:
            return None
        if point is not None and point.opted_out_at is not None:
            return DeliveryReport("failed", error_code="opted_out", error_message="the customer replied STOP; nothing is sent to them")
        buttons = next((a.get("buttons") for a in msg.attachments or () if isinstance(a, dict) and a.get("type") == "buttons"), None) or []
        text = numbered_choices(msg.body, [str(b.get("title", "")) for b in buttons]) if spec.buttons_as_text else msg.body
        media = tuple(
            self.media_link(a["url"]) for a in msg.attachments or ()
            if isinstance(a, dict) and a.get("type") == "media" and isinstance(a.get("url"), str)
        )
        return await adapter.deliver(OutboundMessage(
            conversation_id=conversation_id, seq=seq, channel=spec.name, to_address=conv.customer_address,
            from_address=conv.our_address, text=text, media=media,
            buttons=() if spec.buttons_as_text else tuple(buttons),
        ))

    async def _record_delivery(self, conversation_id: int, seq: int, report: DeliveryReport) -> None:
        """Store what the adapter said (its id for the status callbacks, a failure's reason), then any status that came first."""
        async with self.db.transaction() as s:
            msg = await conv_repo.message_at(s, conversation_id, seq)
            if msg is None:
                return
            if report.provider_id and not msg.provider_id:
                msg.provider_id = report.provider_id[:100]
            status = delivery_status(report.status)
            if status is not None and moves_forward(msg.delivery_status, status):
                msg.delivery_status = status.value
                if report.error_code or report.error_message:
                    msg.delivery_error_code = (report.error_code or "")[:20] or None
                    msg.delivery_error = (report.error_message or "")[:300] or None
            s.add(msg)
            early = await receipts_repo.statuses_for(s, msg.provider_id) if msg.provider_id else []
        for status_word, code, words in early:  # status callbacks that arrived before we knew the id
            await self.delivery_update("", msg.provider_id or "", status_word, code, words, _emit=False)
        await self._emit_status(conversation_id, msg.provider_id, seq)

    async def delivery_update(
        self, channel: str, provider_id: str, status: str, error_code: str | None = None, error_message: str | None = None,
        *, _emit: bool = True,
    ) -> bool:
        """A provider's status callback: the message's status moves forward only (a late "sent" never
        overwrites "delivered"); True if it moved. Unknown ids are kept by the adapter's receipt and applied
        once the send's answer has stored the id."""
        new = delivery_status(status)
        if new is None or not provider_id:
            return False
        async with self.db.transaction() as s:
            msg = await conv_repo.message_by_provider_id(s, provider_id)
            if msg is None or msg.sender_kind == "customer" or not moves_forward(msg.delivery_status, new):
                return False
            msg.delivery_status = new.value
            if error_code or error_message:
                msg.delivery_error_code = (error_code or "")[:20] or None
                msg.delivery_error = (error_message or "")[:300] or None
            s.add(msg)
            conversation_id, seq = msg.conversation_id, msg.seq
        if _emit:
            await self._emit_status(conversation_id, provider_id, seq)
        return True

    async def _emit_status(self, conversation_id: int, provider_id: str | None, seq: int) -> None:
        """Tell the conversation's agent (and watchers) a message's delivery status."""
        async with self.db.session() as s:
            conv = await s.get(Conversation, conversation_id)
            m = await conv_repo.message_at(s, conversation_id, seq)
        if conv is None or m is None:
            return
        data = {"conversation_id": conversation_id, "seq": seq, "delivery_status": m.delivery_status, "delivery_error": _delivery_error(m)}
        items: list[dict[str, Any]] = []
        if conv.assigned_agent_id is not None:
            items.append({"event": "message_status", "data": data, "to": room_agent(conv.assigned_agent_id), "namespace": "/agent"})
        if conversation_id in self._watched:
            items.append({"event": "message_status", "data": data, "to": room_monitor(conversation_id), "namespace": "/supervisor"})
        await self.emitter.emit_many(items)

    async def opt_out(self, channel: str, customer_address: str, opted_out: bool) -> None:
        """The customer texted STOP (nothing more is sent to that address on that channel) or START."""
        spec = self._spec(channel)
        try:
            async with self.db.transaction() as s:
                res = await customers_repo.resolve_identity(
                    s, spec.contact_kind, customer_address, default_region=self.default_region, verified=True
                )
                point, address = res.contact_point, res.contact_point.value
                point.opted_out_at = utcnow() if opted_out else None
                s.add(point)
                await record_interaction(
                    s, res.customer.id, spec.interaction_kind, spec.name,  # type: ignore[arg-type]
                    f"{'Opted out of' if opted_out else 'Opted back in to'} {spec.label} messages from {address}",
                    {"event": "opt_out" if opted_out else "opt_in", "address": address},
                )
        except InvalidAddress as exc:
            raise HubError("bad_request", str(exc)) from None
        log.info("opt-out recorded", extra={"channel": channel, "opted_out": opted_out})

    async def agent_typing(self, agent: AgentRef, conversation_id: Any, typing: bool) -> None:
        """Tell the customer the agent is typing."""
        conv = await self._assigned(agent, conversation_id)
        assert conv.id is not None
        await self._to_live_customer(conv.channel, conv.id, "typing", {"typing": bool(typing), "agent_name": agent.display_name})

    async def close(self, agent: AgentRef, conversation_id: Any, disposition: Any, note: Any = "") -> None:
        """Wrap up a conversation with a disposition; the agent's capacity is freed."""
        if disposition not in DISPOSITIONS:
            raise HubError("bad_request", f"disposition must be one of {', '.join(DISPOSITIONS)}")
        note_text = note.strip()[:1000] if isinstance(note, str) else ""
        conv = await self._assigned(agent, conversation_id)
        assert conv.id is not None
        async with self.db.transaction() as s:
            row = await s.get(Conversation, conv.id)
            assert row is not None
            row.status, row.disposition, row.closed_at, row.updated_at = "closed", disposition, utcnow(), utcnow()
            s.add(row)
            await record_interaction(
                s, conv.customer_id, self._kind(conv.channel), conv.channel,
                f"{self._noun(conv.channel).capitalize()} closed ({disposition})" + (f": {note_text}" if note_text else ""),
                {"disposition": disposition, "note": note_text}, agent_id=agent.id, conversation_id=conv.id,
            )
        holder = await self.store.release(conv.id, self.clock())
        await self._to_live_customer(conv.channel, conv.id, "closed", {"conversation_id": conv.id, "disposition": disposition})
        await self.emitter.emit("conversation_closed", {"conversation_id": conv.id}, to=room_agent(conv.assigned_agent_id or agent.id), namespace="/agent")
        if holder is not None:
            await self._start_wrap_up(holder)
        self.kick()

    async def _start_wrap_up(self, agent_id: int) -> None:
        """After their last conversation closes, an available agent gets a short wrap-up before new offers."""
        if self.wrap_up_seconds <= 0 or await self.store.assignments_of(agent_id):
            return
        presence = await self.store.get_presence(agent_id)
        if presence is None or presence.status != AgentStatus.AVAILABLE.value:
            return
        await self.store.set_status(agent_id, AgentStatus.WRAP_UP.value, self.clock())
        await self._log_state(agent_id, AgentStatus.WRAP_UP.value)
        until = self.clock() + self.wrap_up_seconds
        await self.emitter.emit("status", {"status": "wrap_up", "until": until}, to=room_agent(agent_id), namespace="/agent")
        old = self._wrap_up_tasks.pop(agent_id, None)
        if old is not None:
            old.cancel()
        self._wrap_up_tasks[agent_id] = asyncio.get_running_loop().create_task(self._end_wrap_up(agent_id))

    async def _end_wrap_up(self, agent_id: int) -> None:
        """Back to available when wrap-up time is over, unless the agent chose another status meanwhile."""
        await asyncio.sleep(self.wrap_up_seconds)
        self._wrap_up_tasks.pop(agent_id, None)
        presence = await self.store.get_presence(agent_id)
        if presence is not None and presence.status == AgentStatus.WRAP_UP.value:
            await self.store.set_status(agent_id, AgentStatus.AVAILABLE.value, self.clock())
            await self._log_state(agent_id, AgentStatus.AVAILABLE.value)
            await self.emitter.emit("status", {"status": "available"}, to=room_agent(agent_id), namespace="/agent")
            self.kick()

    async def transfer(
        self, agent: AgentRef, conversation_id: Any, *, queue: Any = None, to_agent: Any = None, note: Any = ""
    ) -> dict[str, Any]:
        """Hand a conversation to another queue or a named agent; it keeps its place in line."""
        if queue is None and to_agent is None:
            raise HubError("bad_request", "give a queue or an agent to transfer to")
        if queue is not None and queue not in self._rules:
            raise HubError("bad_request", f"queue must be one of {', '.join(sorted(self._rules))}")
        if to_agent is not None:
            if isinstance(to_agent, bool) or not isinstance(to_agent, int):
                raise HubError("bad_request", "agent_id must be an agent's id")
            async with self.db.session() as s:
                target = await s.get(Agent, to_agent)
            if target is None or not target.active:
                raise HubError("not_found", "no such agent")
        note_text = note.strip()[:500] if isinstance(note, str) else ""
        conv = await self._assigned(agent, conversation_id)
        assert conv.id is not None
        if to_agent is not None and to_agent == conv.assigned_agent_id:
            raise HubError("bad_request", "this conversation is already with that agent")
        holder = conv.assigned_agent_id
        current_queue = next((n for n, i in self._queue_ids.items() if i == conv.queue_id), self._default_queue)
        new_queue = queue or current_queue
        where = f"queue {new_queue}" if to_agent is None else f"agent {target.display_name}"
        async with self.db.transaction() as s:
            row = await s.get(Conversation, conv.id)
            assert row is not None
            customer = await customers_repo.get_customer(s, row.customer_id)
            row.status, row.assigned_agent_id, row.updated_at = "queued", None, utcnow()
            row.queue_id = self._queue_ids.get(new_queue, row.queue_id)
            s.add(row)
            system = await conv_repo.append_message(s, conv.id, "system", "You are being transferred to a colleague who can help further.")
            await record_interaction(
                s, row.customer_id, self._kind(row.channel), row.channel,
                f"Transferred by {agent.display_name} to {where}" + (f": {note_text}" if note_text else ""),
                {"event": "transferred", "queue": new_queue, "to_agent": to_agent, "note": note_text},
                agent_id=agent.id, conversation_id=conv.id,
            )
        await self.store.release(conv.id, self.clock())
        entry = self._entry(row, customer)
        await self.store.enqueue(
            QueueEntry(entry.conversation_id, new_queue, entry.channel, entry.priority, entry.enqueued_at, frozenset(), to_agent)
        )
        await self._publish(conv.id, None, message_json(system.message), to_customer=self.channels.get(row.channel))
        if holder is not None:
            await self.emitter.emit("conversation_closed", {"conversation_id": conv.id, "reason": "transferred"}, to=room_agent(holder), namespace="/agent")
        self.kick()
        return {"conversation_id": conv.id, "queue": new_queue, "agent_id": to_agent}

    async def agent_gone(self, agent_id: int) -> int:
        """The agent's last console went away: their offers and chats go back to the queue, none lost."""
        entries = await self.store.requeue_agent(agent_id, self.clock())
        await self._log_state(agent_id, AgentStatus.OFFLINE.value)
        ids = [e.conversation_id for e in entries]
        if ids:
            async with self.db.transaction() as s:
                for cid in ids:
                    conv = await s.get(Conversation, cid)
                    if conv is not None and conv.status == "assigned" and conv.assigned_agent_id == agent_id:
                        conv.status, conv.assigned_agent_id = "queued", None
                        s.add(conv)
                        await record_interaction(
                            s, conv.customer_id, self._kind(conv.channel), conv.channel, "Agent disconnected; back in the queue",
                            {"event": "requeued", "agent_id": agent_id}, conversation_id=cid,
                        )
            self.kick()
        return len(ids)

    @staticmethod
    def _conv_id(raw: Any) -> int:
        """A conversation id from a client payload."""
        if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
            raise HubError("bad_request", "conversation_id must be a positive integer")
        return raw

    # --- routing -------------------------------------------------------------------------------

    def kick(self) -> None:
        """Ask the router to run soon."""
        self._kick.set()

    async def _offer_json(self, conversation_id: int, expires_at: float, queue: str, channel: str) -> dict[str, Any]:
        """What the console shows of an offer."""
        async with self.db.session() as s:
            conv = await s.get(Conversation, conversation_id)
            customer = await s.get(Customer, conv.customer_id) if conv else None
            last = await conv_repo.messages_after(s, conversation_id, 0, limit=3, include_internal=False) if conv else []
        return {
            "conversation_id": conversation_id,
            "customer": {"id": customer.id if customer else None, "display_name": (customer.display_name if customer else "") or "Visitor"},
            "channel": channel,
            "channel_label": spec.label if (spec := self.channels.get(channel)) is not None else channel,
            "customer_address": (conv.customer_address or None) if conv else None,
            "queue": queue,
            "expires_at": expires_at,
            "preview": last[0].body[:200] if last else "",
        }

    async def route_once(self) -> int:
        """One routing pass: expire stale offers, offer waiting contacts to the best agents, update queue positions."""
        async with self._route_lock:
            now = self.clock()
            for offer in await self.store.expired_offers(now):
                if await self.store.expire(offer.conversation_id, now) is not None:
                    await self.emitter.emit("offer_revoked", {"conversation_id": offer.conversation_id}, to=room_agent(offer.agent_id), namespace="/agent")
            waiting = await self.store.waiting()
            if not waiting:
                return 0
            presences = await self.store.all_presence()
            agents = [
                AgentSnapshot(
                    agent_id=p.agent_id, status=AgentStatus(p.status), skills=p.skills, capacity=p.capacity,
                    load=p.load, idle_since=p.idle_since,
                )
                for p in presences
            ]
            contacts = waiting_contacts(waiting, presences)
            rules = dict(self._rules)
            for c in contacts:
                rules.setdefault(c.queue, QueueRule(name=c.queue, skills_required=frozenset()))
            made = 0
            offered: set[int] = set()
            for a in plan_assignments(contacts, agents, rules, now):
                offer = await self.store.offer(a.conversation_id, a.agent_id, now + self.offer_timeout, check_capacity=True)
                if offer is None:
                    continue  # another hub process offered it first
                made += 1
                offered.add(a.conversation_id)
                await self.emitter.emit("offer", await self._offer_json(offer.conversation_id, offer.expires_at, offer.queue, offer.channel), to=room_agent(a.agent_id), namespace="/agent")
            await self._publish_queue_positions(
                [c for c in contacts if c.conversation_id not in offered], serving_agents(presences), now
            )
            return made

    async def _publish_queue_positions(self, contacts: list[WaitingContact], serving: int, now: float) -> None:
        """Tell each waiting customer their place and estimated wait, when it changed."""
        positions = queue_positions(contacts, now)
        for c in contacts:
            update = queue_update(c.conversation_id, positions[c.conversation_id], serving, self._concurrency(c.channel))
            seen = (update["position"], update["estimated_wait_seconds"])
            if self._last_queue_info.get(c.conversation_id) != seen:
                self._last_queue_info[c.conversation_id] = seen
                await self._to_live_customer(c.channel, c.conversation_id, "queue", update)

    async def run_router(self, interval: float = 1.0, reconcile_every: float = 15.0) -> None:
        """The routing loop: runs on every kick and at least every ``interval`` seconds (offer timeouts).

        Every ``reconcile_every`` seconds it also re-queues conversations that SQL says are waiting but
        the shared state has lost (a Redis restart loses no customer).
        """
        last_reconcile = self.clock()
        while True:
            try:
                await asyncio.wait_for(self._kick.wait(), timeout=interval)
            except asyncio.TimeoutError:
                pass
            self._kick.clear()
            try:
                if self.clock() - last_reconcile >= reconcile_every:
                    last_reconcile = self.clock()
                    await self.rebuild_state()
                await self.route_once()
                self._watched = await self.store.watched()
            except Exception:  # noqa: BLE001 - the loop must survive a bad pass; it is logged
                log.exception("routing pass failed")


def waiting_contacts(waiting: Sequence[QueueEntry], presences: Sequence[AgentPresence]) -> list[WaitingContact]:
    """The routing core's view of the queue entries.

    A transfer to a named agent falls back to its queue when that agent declined it or is not online.
    """
    reachable = {p.agent_id for p in presences if p.status != AgentStatus.OFFLINE.value}
    return [
        WaitingContact(
            conversation_id=e.conversation_id, queue=e.queue, channel=e.channel, enqueued_at=e.enqueued_at,
            priority=e.priority, declined_by=e.declined_by,
            pinned_agent=e.pinned_agent if e.pinned_agent in reachable and e.pinned_agent not in e.declined_by else None,
        )
        for e in waiting
    ]


def serving_agents(presences: Sequence[AgentPresence]) -> int:
    """How many agents are taking contacts now (available or busy)."""
    return sum(1 for p in presences if p.status in (AgentStatus.AVAILABLE.value, AgentStatus.BUSY.value))


def queue_update(conversation_id: int, position: int, serving: int, concurrency: float) -> dict[str, Any]:
    """The ``queue`` event: place in line and estimated wait (None while no agent is serving).

    ``concurrency``: conversations of this channel an agent works at once (its ChannelSpec).
    """
    eta = estimate_wait_seconds(position, serving, DEFAULT_AHT_SECONDS, concurrency)
    return {
        "conversation_id": conversation_id,
        "position": position,
        "estimated_wait_seconds": None if eta == float("inf") else int(round(eta)),
    }
