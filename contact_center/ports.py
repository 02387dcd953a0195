"""Ports the hub's core needs; adapters implement them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Collection, Mapping, Protocol, Sequence, runtime_checkable


@dataclass(frozen=True)
class AgentPresence:
    """An agent as routing sees them, shared by every hub process.

    :param agent_id: the agent's id in SQL.
    :param status: ``available``, ``busy``, ``wrap_up``, ``away`` or ``offline`` (the store only gives
        ``available`` and ``offline`` a meaning).
    :param since: when the status last changed (caller's clock, seconds).
    :param node: the hub process the agent's console is connected to.
    :param load: channel -> conversations offered to or assigned to the agent now; the store keeps
        it (offers reserve a unit, release/decline free it); channels at zero are dropped.
    :param capacity: channel -> how many conversations of that channel the agent takes at once.
    :param skills: skill -> level.
    :param idle_since: when the agent last became free (load all zero).
    """

    agent_id: int
    status: str
    since: float
    node: str
    load: dict[str, int] = field(default_factory=dict)
    capacity: dict[str, int] = field(default_factory=dict)
    skills: dict[str, int] = field(default_factory=dict)
    idle_since: float = 0.0


@dataclass(frozen=True)
class QueueEntry:
    """A conversation waiting for an agent (it keeps this entry while offered and assigned too).

    :param enqueued_at: when it joined the queue; kept when it comes back after a decline, an expired
        offer or a lost agent, so it never loses its place.
    :param declined_by: agents who declined it or let its offer expire.
    :param pinned_agent: an agent the router should prefer (e.g. the customer's last agent).
    :param declined_at: when the last of them declined (or let the offer expire): the router skips them
        for a while after it (``Hub.decline_skip``), then they may be offered it again.
    :param pin_strict: the pin never falls back to the queue (a transfer's does when its agent declines or is
        offline): the contact is that agent's only (click-to-call, pinned in SQL); declined or let time out by
        them, it is withdrawn.
    """

    conversation_id: int
    queue: str
    channel: str
    priority: int
    enqueued_at: float
    declined_by: frozenset[int] = frozenset()
    pinned_agent: int | None = None
    declined_at: float = 0.0
    pin_strict: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.declined_by, frozenset):
            object.__setattr__(self, "declined_by", frozenset(self.declined_by))


@dataclass(frozen=True)
class Offer:
    """A conversation offered to one agent until ``expires_at`` (caller's clock, seconds)."""

    conversation_id: int
    agent_id: int
    expires_at: float
    queue: str
    channel: str


class StateUnavailable(RuntimeError):
    """The shared state cannot be reached (Redis down or unreachable). Nothing is lost: SQL is the truth, and
    the hub rebuilds the shared state from it when it is back. Callers that can do without it (a widget's
    availability line, a heartbeat) carry on; others answer ``unavailable``."""


@runtime_checkable
class StateStore(Protocol):
    """Routing state shared by the hub processes: presence, queues, offers and assignments.

    Everything in it is derived: SQL is the truth and the hub rebuilds this state from SQL. Times are
    the caller's ``now`` (float seconds); the store never reads a clock. A conversation is in exactly
    one of three states while the store knows it: waiting, offered (to one agent) or assigned (to one
    agent). ``offer``, ``accept``, ``decline``, ``expire``, ``release`` and ``requeue_agent`` are
    atomic, also between hub processes sharing one Redis.
    """

    # --- presence ------------------------------------------------------------------------------

    async def set_presence(self, p: AgentPresence) -> None:
        """Create or replace an agent's presence (the whole record, ``load`` included)."""
        ...

    async def get_presence(self, agent_id: int) -> AgentPresence | None:
        """The agent's presence, or None if unknown."""
        ...

    async def all_presence(self) -> list[AgentPresence]:
        """Every known agent, by agent id."""
        ...

    async def set_status(self, agent_id: int, status: str, now: float) -> AgentPresence | None:
        """Change the status (``since=now``); becoming ``available`` with no load sets ``idle_since=now``.

        Setting the status the agent already has changes nothing. None if the agent is unknown.
        """
        ...

    async def remove_presence(self, agent_id: int) -> None:
        """Forget the agent's presence (their offers and assignments stay; see ``requeue_agent``)."""
        ...

    # --- queue ---------------------------------------------------------------------------------

    async def enqueue(self, e: QueueEntry) -> bool:
        """Queue a conversation; False (nothing changes) if it is already waiting, offered or assigned."""
        ...

    async def waiting(self, queue: str | None = None) -> list[QueueEntry]:
        """Waiting conversations (of one queue, or all), by (-priority, enqueued_at, conversation_id)."""
        ...

    async def remove_from_queue(self, conversation_id: int) -> QueueEntry | None:
        """Take a waiting conversation out of the queue; None if it is not waiting."""
        ...

    async def queue_lengths(self) -> dict[str, int]:
        """Queue name -> number of waiting conversations (queues with none are left out)."""
        ...

    # --- offers --------------------------------------------------------------------------------

    async def offer(
        self, conversation_id: int, agent_id: int, expires_at: float, *, check_capacity: bool = False
    ) -> Offer | None:
        """Atomically move a waiting conversation to "offered to agent_id" and reserve one unit of load.

        None if the conversation is not waiting (offered, assigned or unknown): of two processes
        offering one conversation at once exactly one wins. With ``check_capacity`` the offer is also
        refused (None) unless the agent has a presence whose load on the channel is below its
        capacity, checked in the same atomic step (so two processes cannot overfill one agent).
        """
        ...

    async def accept(self, conversation_id: int, agent_id: int) -> bool:
        """Turn the agent's offer into an assignment; False if that offer no longer exists."""
        ...

    async def decline(self, conversation_id: int, agent_id: int, now: float) -> QueueEntry | None:
        """Cancel the agent's offer, free the load, re-queue with the agent in ``declined_by`` (and
        ``declined_at=now``).

        The entry keeps its original ``enqueued_at``. None if there is no such offer.
        """
        ...

    async def expired_offers(self, now: float) -> list[Offer]:
        """Offers with ``expires_at <= now``, by (expires_at, conversation_id)."""
        ...

    async def expire(self, conversation_id: int, now: float) -> QueueEntry | None:
        """``decline`` on behalf of the offered agent if the offer's ``expires_at <= now``; else None."""
        ...

    async def offers_of(self, agent_id: int) -> list[Offer]:
        """The agent's pending offers, by conversation id."""
        ...

    # --- assignments ---------------------------------------------------------------------------

    async def assignment_of(self, conversation_id: int) -> int | None:
        """The agent the conversation is assigned to, if any."""
        ...

    async def release(self, conversation_id: int, now: float) -> int | None:
        """Forget a conversation (closed or transferred) and free its agent's load.

        For an assigned conversation: frees the unit, sets ``idle_since=now`` if the agent is then
        fully free, returns the agent. An offered one is withdrawn (load freed, ``idle_since`` kept)
        and the agent returned; a waiting one leaves the queue (None); unknown: None.
        """
        ...

    async def assignments_of(self, agent_id: int) -> list[int]:
        """Conversation ids assigned to the agent, ascending."""
        ...

    async def restore_assignment(self, e: QueueEntry, agent_id: int) -> bool:
        """Rebuild from SQL: record a conversation the store does not know as assigned to ``agent_id``.

        One unit of the channel's load is added to the agent's presence (if there is one). False, and
        nothing changes, if the store already knows the conversation (waiting, offered or assigned).
        Used after the shared state was lost (a Redis flush), so agents are never offered more than
        their capacity.
        """
        ...

    # --- holds: an agent reserved without a conversation of their own (a consulted colleague) -----

    async def hold_agent(self, agent_id: int, hold: str, channel: str) -> bool:
        """Reserve the whole agent for ``hold`` (a consultation ringing their phone), atomically: only when
        they take contacts (``available`` or ``busy``), take ``channel`` (capacity above 0) and hold nothing
        now. One unit of load on the pseudo-channel ``hold``, which routing weighs as a whole agent (an
        unknown channel takes all of them), so the router offers them nothing until :meth:`release_hold`.
        False, and nothing changes, when the agent is unknown or not free. Gone with the agent's load
        (``requeue_agent``)."""
        ...

    async def release_hold(self, agent_id: int, hold: str, now: float) -> bool:
        """Free the agent's ``hold`` (``idle_since=now`` if they are then free); False if they hold none."""
        ...

    # --- agent loss ----------------------------------------------------------------------------

    async def requeue_agent(self, agent_id: int, now: float) -> list[QueueEntry]:
        """The agent is gone: their offers and assignments go back to the queue, nothing lost.

        Entries keep their ``enqueued_at``; the agent joins ``declined_by`` for offers only. The load
        becomes empty and the presence (if any) ``offline``. Returns the re-queued entries in
        waiting order.
        """
        ...

    # --- supervisors watching conversations ---------------------------------------------------

    async def add_watcher(self, conversation_id: int, watcher: str) -> None:
        """A supervisor (``watcher``: any unique id of their socket) starts watching a conversation."""
        ...

    async def remove_watcher(self, conversation_id: int, watcher: str) -> None:
        """The watcher stops watching (unknown pairs are ignored)."""
        ...

    async def watched(self) -> set[int]:
        """The conversations at least one watcher is watching."""
        ...

    # --- customers connected to some hub process (live channels: web chat's widget) -------------

    async def customers_seen(self, customer_ids: Collection[int], now: float) -> None:
        """These customers have a widget connected to some hub process at ``now`` (each process says so
        for its own customers every few seconds, and when one's last widget goes). Records are kept
        about a day after the last time."""
        ...

    async def customers_last_seen(self, customer_ids: Collection[int]) -> dict[int, float]:
        """When each of these customers was last seen connected (customers without a record left out)."""
        ...

    # --- whether the store still holds what the hub put there -------------------------------------------

    async def seal(self, node: str) -> None:
        """Mark the store as rebuilt from SQL by hub process ``node`` (a marker that goes with everything else
        if the backend loses its data: a Redis restarted empty, a failover to a replica that lagged)."""
        ...

    async def sealed(self, node: str) -> bool:
        """Whether ``node``'s marker is there: False means the shared state was lost since its last :meth:`seal`
        (each process checks its own: it restores its own agents' presence and tells its own clients)."""
        ...

    # --- why an agent is away: offers let time out in a row, and the reason the hub set a state ------------

    async def offer_missed(self, agent_id: int) -> int:
        """One more offer the agent let time out: how many in a row now (shared, so a streak counts
        whichever hub process saw each offer expire)."""
        ...

    async def reset_missed(self, agent_id: int) -> None:
        """The agent answered an offer or chose a state: the count in a row starts again."""
        ...

    async def set_status_reason(self, agent_id: int, reason: Mapping[str, Any] | None) -> None:
        """Why the hub (not the agent) set the agent's state (``{reason, missed, since}``); None: no reason."""
        ...

    async def status_reasons(self) -> dict[int, dict[str, Any]]:
        """Agent id -> the reason the hub set their state, for every agent with one."""
        ...

    async def clear(self) -> None:
        """Remove everything this store holds (tests)."""
        ...


# --- channels: what every channel adapter hands the core, and what the core hands it back -----------


@dataclass(frozen=True)
class InboundAttachment:
    """A file that came with an inbound message, already stored by the adapter.

    :param url: where the hub serves it (``/media/<key>``), never the provider's URL.
    """

    content_type: str
    size: int
    url: str
    name: str = ""


@dataclass(frozen=True)
class InboundEvent:
    """One thing a customer sent, on any channel, in the core's words.

    :param channel: a registered channel's name (``chat``, ``sms``, ``whatsapp``...).
    :param customer_address: the customer's address on it (a web visitor id, ``+15551234567``,
        an email address), as the provider gave it; the core normalises it.
    :param our_address: the shop's address it reached (the Twilio number, the mailbox); picks the queue.
    :param thread_key: for per-thread and per-call channels, the key of the conversation (an email
        thread's root Message-ID, a CallSid); None for per-customer channels.
    :param provider_id: the provider's id of the message (MessageSid, Message-ID): a repeat is one message.
    :param client_id: the client's id of the message (web chat's ``client_msg_id``): a resend is one message.
    :param text: what the customer wrote or said (plain text, kept as written).
    :param bot_text: what the bot should get instead of ``text`` (a button's payload), if anything.
    :param display_name: a name the channel gave (WhatsApp's ProfileName, an email's From name).
    :param queue: the queue to join when the adapter knows it (from ``our_address``); else the channel's default.
    :param metadata: anything else the adapter wants on the message (kept as JSON).
    :param wake: False for an automatic message (an out-of-office reply): filed with its conversation,
        it neither reopens nor queues anything.
    :param identity_trusted: False when the sender's address may be forged (email failing DMARC): the
        message gets a customer of its own and is never linked to the address's owner.
    :param extra: the channel's own parts of the message, kept with it as one attachment of type
        ``channel`` (email: subject, sender, recipients, the sanitised HTML's link, the spoofing label).
    """

    channel: str
    customer_address: str
    text: str
    our_address: str = ""
    thread_key: str | None = None
    provider_id: str | None = None
    client_id: str | None = None
    bot_text: str | None = None
    display_name: str = ""
    queue: str | None = None
    attachments: tuple[InboundAttachment, ...] = ()
    metadata: dict[str, object] = field(default_factory=dict)
    wake: bool = True
    identity_trusted: bool = True
    extra: dict[str, object] | None = None
    subject: str | None = None  # what a new conversation is titled (an email's subject); else its first text
    opening: bool = False  # a contact that starts without a customer's message (a ringing call): ``text`` is
    # stored as a system note of it; no bot turn, no queue (the channel's self-service runs first)
    priority: int = 0  # a new conversation's own priority in its queue (a callback due at its chosen time: ahead)
    queue_since: datetime | None = None  # a new conversation's place in its queue, when not now (virtual hold)
    pinned_agent: int | None = None  # a new conversation only this agent may be offered until answered (click-to-call)
    held: bool = False  # a new conversation waits out of the queue, as the channel's self-service does, until the
    # adapter asks for an agent (a customer-first callback: dialled before any agent is offered it)


@dataclass(frozen=True)
class InboundResult:
    """What the core made of an inbound event."""

    customer_id: int
    conversation_id: int
    message: dict[str, object]  # the stored message's wire shape
    created: bool  # False: a repeat (same provider or client id); nothing new was stored or sent


@dataclass(frozen=True)
class OutboundMessage:
    """A stored message the core asks a channel adapter to deliver to the customer.

    :param text: the text as the channel should carry it (buttons already written out as numbered
        choices where the channel has none).
    :param media: hub URLs of files to send (absolute, from ``PUBLIC_BASE_URL``).
    """

    conversation_id: int
    seq: int
    channel: str
    to_address: str
    from_address: str
    text: str
    media: tuple[str, ...] = ()
    buttons: tuple[dict[str, str], ...] = ()
    extra: dict[str, object] | None = None  # the channel's own parts (email: cc), as the agent gave them
    media_keys: tuple[str, ...] = ()  # the media store's keys of ``media`` (an adapter that attaches the bytes)
    thread_key: str | None = None
    sender_kind: str = "agent"


@dataclass(frozen=True)
class DeliveryReport:
    """What an adapter says of one delivery: its status, the provider's id, and why it failed.

    :param status: a :class:`contact_center.domain.channels.DeliveryStatus` value.
    :param error_code: the provider's code (``21610``), when it failed.
    :param error_message: the reason in words, for the agent.
    """

    status: str
    provider_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None


class ChannelAdapter(Protocol):
    """The outbound face of a channel: delivers what the core sends."""

    async def deliver(self, message: OutboundMessage) -> DeliveryReport:
        """Send one message; never raises for a provider's refusal (that is a ``failed`` report)."""
        ...


@dataclass(frozen=True)
class CallAction:
    """Something the core asks a live contact's adapter to do (the phone: bridge the agent, hold, transfer...).

    :param kind: ``connect_agent`` (the agent accepted: bridge them to the customer), or one of the
        channel's ``call_actions`` (``hold``, ``unhold``, ``mute``, ``unmute``, ``hang_up``, ``transfer``,
        ``consult``, ``complete_transfer``, ``cancel_consult``); or ``supervise`` / ``end_supervision`` (a
        supervisor on the call: ``agent_id`` is the supervisor, ``target`` the agent on the call, ``mode``).
        For ``consult`` the target is always ``agent:<id>`` (the core picks a queue's agent itself); for
        ``complete_transfer`` and ``cancel_consult``, ``agent_id`` is the consulting agent and ``target`` the
        consulted one; ``leg`` the consulted one's leg, when the core knows it.
    :param target: a transfer's or consultation's target: ``agent:<id>`` or ``queue:<name>``.
    :param mode: ``supervise``'s ``listen`` / ``whisper`` / ``barge``.
    :param record: ``connect_agent`` of a call whose queue records calls: the caller hears the consent notice
        and the bridge is recorded. ``pause_recording`` / ``resume_recording``: ``leg`` is the recording's id.
    :param agent_phone: the E.164 number ``agent_id`` takes calls on instead of the console's softphone ("" : the
        softphone); ``target_phone`` the same for an ``agent:<id>`` target (a consultation's colleague).
    ``dial_customer`` (a customer-first callback): dial the customer into the conversation's room, no agent yet.
    """

    kind: str
    conversation_id: int
    thread_key: str
    agent_id: int | None
    customer_address: str = ""
    our_address: str = ""
    target: str | None = None
    mode: str | None = None
    leg: str | None = None
    record: bool = False
    agent_phone: str = ""
    target_phone: str = ""
    voicemail: bool = False  # a callback's dial (``connect_agent``, ``dial_customer``): a message is left on a machine


class NoticeSender(Protocol):
    """A channel adapter that sends a standalone notice outside any conversation (email: a callback's confirmation)."""

    async def notice(self, to_address: str, subject: str, text: str) -> DeliveryReport:
        """Send it; a refusal is a ``failed`` report with the reason in words, never an exception."""
        ...


class CallControl(Protocol):
    """The live face of a channel that has one (its adapter implements both)."""

    async def act(self, action: CallAction) -> DeliveryReport:
        """Do it; a refusal (the caller already hung up) is a ``failed`` report with the reason in words."""
        ...


class InboundPort(Protocol):
    """What the core offers every channel adapter's inbound face."""

    async def receive_inbound(self, event: InboundEvent) -> InboundResult:
        """Store what arrived (idempotently) and hand it to the bot or the router."""
        ...

    async def delivery_update(
        self, channel: str, provider_id: str, status: str, error_code: str | None = None, error_message: str | None = None
    ) -> bool:
        """A provider's status callback; True if it moved the message's status forward."""
        ...

    async def opt_out(self, channel: str, customer_address: str, opted_out: bool) -> None:
        """The customer texted STOP (True) or START (False) from this address."""
        ...

    async def address_undeliverable(self, channel: str, customer_address: str, reason: str) -> bool:
        """A permanent delivery failure to this address (an email's 5.x.x bounce); True if we know the address."""
        ...


class LiveContactPort(Protocol):
    """What the core offers a live contact's adapter (the phone) beside :class:`InboundPort`."""

    async def contact_state(self, channel: str, thread_key: str) -> dict[str, object] | None:
        """The conversation of a call: its id, state, customer (id, name), queue place and agent; None if unknown."""
        ...

    async def request_agent(self, channel: str, thread_key: str, reason: str, context: dict[str, object] | None = None) -> bool:
        """The self-service (IVR) asks for a person: the conversation is queued with what it knew."""
        ...

    async def contact_ended(self, channel: str, thread_key: str, reason: str) -> bool:
        """The customer hung up (or the call failed): waiting, it is abandoned; with an agent, the agent wraps up."""
        ...

    async def call_status(self, channel: str, thread_key: str, status: str, detail: dict[str, object] | None = None) -> None:
        """The live contact's state as the provider tells it (ringing, in progress, on hold, ...), for the agent."""
        ...

    async def consult_leg(self, channel: str, thread_key: str, leg: str, status: str) -> None:
        """The provider's status of a consultation's leg (the consulted agent's): answered, or gone (no answer,
        busy, hung up). The core moves the consultation on (and takes the caller off hold if it ended)."""
        ...

    async def call_recording(self, channel: str, thread_key: str, recording_id: str, state: str,
                             detail: dict[str, object] | None = None) -> bool:
        """The provider's news of the call's recording (``in-progress``, ``completed``, ``absent``, ``failed``; with
        its ``url`` and ``duration`` once complete): kept with the conversation and on the customer's timeline. True
        if it changed what was known (a repeat changes nothing)."""
        ...

    async def callback_requested(self, channel: str, thread_key: str, source: str, number: str) -> None:
        """The caller asked to be called back (``source``: ``wait_offer``, ``fallback``): on the customer's timeline."""
        ...

    async def settled(self, conversation_id: int, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until the bot's turn on this conversation and the deliveries it started are
        done on this process: then everything the caller should hear next has reached the adapter."""
        ...


@dataclass(frozen=True)
class StoredMedia:
    """A file the hub keeps (an inbound MMS or WhatsApp image, a PDF an agent sends).

    :param key: its opaque key; the hub serves it at ``/media/<key>`` (agents' sessions, or a signed link).
    """

    key: str
    content_type: str
    size: int
    name: str = ""


class MediaStore(Protocol):
    """Where attachments' bytes live (files under ``var/media`` in the embedded mode)."""

    async def put(self, data: bytes, content_type: str, name: str = "") -> StoredMedia:
        """Keep the bytes; the same bytes give the same key."""
        ...

    async def get(self, key: str) -> tuple[StoredMedia, bytes] | None:
        """The file with this key, if any."""
        ...


# --- what the conversation use cases need: the contact repository and the notifier ---------------------
#
# The use cases (contact_center/usecases/) speak to SQL only through a ConversationRepository and to
# browsers only through a Notifier. The repository hands back the stored rows; the use cases read their
# attributes (the shapes below) and never change them: every write is one repository call, one
# transaction.


class ConversationRow(Protocol):
    """A stored conversation as the use cases read it."""

    id: int | None
    customer_id: int
    channel: str
    status: str
    assigned_agent_id: int | None
    queue_id: int | None
    priority: int
    subject: str
    last_seq: int
    customer_address: str
    our_address: str
    thread_key: str | None


class CustomerRow(Protocol):
    """A stored customer as the use cases read it."""

    id: int | None
    display_name: str
    tier: str


class MessageRow(Protocol):
    """A stored message as the use cases read it (``attachments``: buttons, handoff context, media)."""

    conversation_id: int
    seq: int
    sender_kind: str
    sender_id: str | None
    body: str
    internal: bool
    client_msg_id: str | None


class ContactPointRow(Protocol):
    """A customer's address on a channel: verified? opted out?"""

    value: str
    verified: bool


class AgentRow(Protocol):
    """A stored agent account."""

    id: int | None
    display_name: str
    active: bool


@dataclass(frozen=True)
class TimelineNote:
    """An interaction for the customer's timeline in the contact repository."""

    kind: str
    channel: str
    summary: str
    data: dict[str, object] = field(default_factory=dict)
    agent_id: int | None = None


@dataclass(frozen=True)
class NewMessage:
    """A message to store with a conversation's move (a transfer's system message, a handoff's note)."""

    sender_kind: str
    text: str
    sender_id: str | None = None
    internal: bool = False
    attachments: list[dict[str, object]] | None = None


@dataclass(frozen=True)
class Transition:
    """One move of a conversation, written with a compare-and-set on the states it may start from.

    :param sources: the states the stored conversation must be in (else nothing is written).
    :param status: the state it goes to.
    :param assign_to: the agent it is now assigned to; ``unassign`` clears the assignment.
    :param only_if_agent: also require that this agent holds it (an agent's console went away).
    :param queue_id: the queue it moves to (None: it stays in its queue).
    :param stamp_queued / stamp_assigned: set ``queued_at`` / ``assigned_at`` to now unless already set.
    :param close: set ``closed_at`` (and ``abandoned_at`` with ``abandoned``) and the disposition.
    :param reopen: clear ``closed_at``, the disposition and the assignment, and queue it from now.
    """

    sources: frozenset[str]
    status: str
    assign_to: int | None = None
    unassign: bool = False
    only_if_agent: int | None = None
    queue_id: int | None = None
    stamp_queued: bool = False
    stamp_assigned: bool = False
    close: bool = False
    abandoned: bool = False
    disposition: str | None = None

    def allows(self, row: Any) -> bool:
        """Whether the stored conversation may make this move (the compare-and-set's condition)."""
        return row.status in self.sources and (self.only_if_agent is None or row.assigned_agent_id == self.only_if_agent)

    def apply_to(self, row: Any, now: Any) -> None:
        """Make the move on a stored conversation's fields (the repository's write, whatever stores it)."""
        row.status, row.updated_at = self.status, now
        if self.assign_to is not None:
            row.assigned_agent_id = self.assign_to
        if self.unassign:
            row.assigned_agent_id = None
        if self.queue_id is not None:
            row.queue_id = self.queue_id
        if self.stamp_queued:
            row.queued_at = row.queued_at or now
        if self.stamp_assigned:
            row.assigned_at = row.assigned_at or now
        if self.close:
            row.closed_at, row.disposition = now, self.disposition
            if self.abandoned:
                row.abandoned_at = now


@dataclass(frozen=True)
class Moved:
    """A conversation after a move, with its customer and the message stored with the move (if any)."""

    conversation: ConversationRow
    customer: CustomerRow
    message: MessageRow | None = None


@dataclass(frozen=True)
class InboundPlanRequest:
    """What the repository needs to store a customer's message by the channel's policy, in one transaction.

    :param decide: the core's rule (``contact_center.domain.conversations.plan_inbound`` with the channel's
        flags bound): given the state of the conversation found (or None) and, for a closed one, how many
        seconds ago it closed, what to do (an ``InboundPlan``).
    :param thread_key: None on per-customer channels (the customer's open conversation is found); else
        the thread's or call's key.
    """

    customer_id: int
    channel: str
    thread_key: str | None
    decide: Callable[[str | None, float | None], object]
    queue_id: int | None
    subject: str
    customer_address: str
    our_address: str
    text: str
    client_id: str | None
    provider_id: str | None
    attachments: list[dict[str, object]] | None
    opened_note: Callable[[str], TimelineNote]  # the timeline entry of a new conversation, given its status
    sender_kind: str = "customer"  # "system" for a contact's opening note (a ringing call)
    priority: int = 0  # a new conversation's priority (InboundEvent.priority)
    queue_since: datetime | None = None  # InboundEvent.queue_since
    pinned_agent: int | None = None  # InboundEvent.pinned_agent


@dataclass(frozen=True)
class InboundStored:
    """The outcome of storing a customer's message."""

    conversation: ConversationRow
    message: MessageRow
    created: bool  # False: a repeat (same provider or client id); nothing new was stored
    new_conversation: bool  # opened or reopened now: it must join a queue (unless with the bot)
    customer: CustomerRow
    reopened: bool = False  # a closed thread came back (a person takes it, never the bot alone)


@dataclass(frozen=True)
class FastAppend:
    """A message appended through the message log (the hot path of an open conversation)."""

    message: MessageRow
    created: bool
    status: str  # the conversation's state
    assigned_agent_id: int | None


class ConversationRepository(Protocol):
    """The contact repository as the conversation use cases need it (SQL in ``contact_center.hub.sql``)."""

    # --- reads ---------------------------------------------------------------------------------
    async def queues(self) -> Sequence[Any]: ...
    async def conversation(self, conversation_id: int) -> ConversationRow | None: ...
    async def conversations(self, ids: Sequence[int]) -> Sequence[ConversationRow]: ...
    async def conversations_with_customers(self, status: str) -> Sequence[tuple[ConversationRow, CustomerRow]]: ...
    async def open_conversation(self, customer_id: int, channel: str) -> ConversationRow | None: ...
    async def thread(self, channel: str, thread_key: str) -> ConversationRow | None: ...
    async def agent(self, agent_id: int) -> Any | None: ...
    async def agents(self, ids: Sequence[int]) -> Sequence[Any]: ...
    async def last_agent_states(self, ids: Sequence[int]) -> dict[int, str]: ...
    async def customer_by_address(self, kind: str, value: str) -> Any | None: ...
    async def contact_point(self, kind: str, value: str) -> Any | None: ...
    async def history(self, conversation_id: int, after_seq: int, *, include_internal: bool) -> list[tuple[MessageRow, str]]: ...
    async def messages(self, conversation_id: int, after_seq: int, *, include_internal: bool, limit: int | None = None) -> Sequence[MessageRow]: ...
    async def message_at(self, conversation_id: int, seq: int) -> Any | None: ...
    async def last_customer_message_at(self, conversation_id: int) -> Any: ...
    async def assigned_to(self, agent_id: int) -> list[tuple[ConversationRow, CustomerRow]]: ...
    async def customers_served_by(self, agent_id: int) -> set[int]: ...  # any conversation ever assigned to them, open or closed
    async def with_customer(self, conversation_id: int) -> tuple[ConversationRow, CustomerRow] | None: ...

    # --- writes (each one transaction) ---------------------------------------------------------
    async def record_agent_state(self, agent_id: int, state: str) -> None: ...
    async def new_customer(self, display_name: str) -> int: ...
    async def resolve_customer(self, kind: str, address: str, *, display_name: str, region: str, verified: bool) -> tuple[int, str]: ...
    async def identify_visitor(self, kind: str, visitor_id: str, name: str, email: str) -> CustomerRow: ...
    async def store_inbound(self, req: InboundPlanRequest) -> InboundStored: ...
    async def append_fast(
        self, conversation_id: int, sender_kind: str, text: str, *, sender_id: str, client_msg_id: str | None,
        provider_id: str | None = None, attachments: list[dict[str, object]] | None = None,
    ) -> FastAppend | None: ...
    async def append(self, conversation_id: int, msg: NewMessage, *, client_msg_id: str | None = None, delivery_status: str | None = None, note: TimelineNote | None = None) -> tuple[MessageRow, bool]: ...
    async def move(self, conversation_id: int, t: Transition, *, message: NewMessage | None = None, note: TimelineNote | None = None) -> Moved | None: ...
    async def record(self, customer_id: int, conversation_id: int | None, note: TimelineNote) -> None: ...
    async def record_sent(self, conversation_id: int, seq: int, report: DeliveryReport) -> tuple[str | None, list[tuple[str, str | None, str | None]]] | None: ...
    async def update_delivery(self, provider_id: str, status: str, error_code: str | None, error_message: str | None) -> tuple[int, int] | None: ...
    async def set_undeliverable(self, kind: str, address: str, *, reason: str, note: Callable[[str], TimelineNote]) -> bool: ...
    async def set_opt_out(self, kind: str, address: str, *, region: str, opted_out: bool, note: Callable[[str], TimelineNote]) -> None: ...


@dataclass(frozen=True)
class Notice:
    """One event for one audience: a conversation's customer (live channels), an agent, or its watchers.

    ``skip``: a customer connection that already has it (the one that sent it).
    """

    audience: str  # "customer" | "agent" | "watchers" | "all_agents" | "all_customers"
    target: int  # a conversation id (customer, watchers) or an agent id (0 for everyone)
    event: str
    data: dict[str, Any]
    skip: str | None = None


class Notifier(Protocol):
    """Tells browsers what happened (the Socket.IO adapter: rooms, namespaces, fan-out between nodes)."""

    async def send(self, notices: Sequence[Notice]) -> None:
        """Deliver these notices in order (across hub processes as one publish)."""
        ...


class CallbackStore(Protocol):
    """Web callbacks in SQL (``contact_center/hub/callbacks_sql.py`` on ``crm_store/repositories/callbacks.py``).

    Every move is atomic between hub processes: of two that claim the same callback or the same attempt, one wins
    (the other gets nothing back). Rows are the repository's (``Callback``, ``CallbackAttempt``)."""

    async def create(self, row: Any, *, max_open: int) -> Any: ...  # raises TooManyOpen
    async def get(self, callback_id: int) -> Any | None: ...
    async def open_for_conversation(self, conversation_id: int) -> Any | None: ...
    async def from_origin(self, conversation_id: int) -> Any | None: ...  # any state: one callback per call
    async def customer_email(self, customer_id: int) -> str | None: ...  # where a confirmation can be emailed
    async def recent(self, *, number: str | None = None, visitor: str | None = None, since: datetime) -> int: ...
    async def claim_due(self, now: datetime, owner: str, *, lease_seconds: float, limit: int) -> list[Any]: ...
    async def attach_conversation(self, callback_id: int, owner: str, conversation_id: int, now: datetime) -> bool: ...
    async def start_attempt(self, callback_id: int, *, agent_id: int | None, conversation_id: int | None, claimed_by: str,
                            now: datetime) -> Any | None: ...
    async def attempt_dialled(self, callback_id: int, n: int, call_sid: str) -> None: ...
    async def attempt(self, callback_id: int, n: int) -> Any | None: ...
    async def finish_attempt(self, callback_id: int, n: int, outcome: str, now: datetime, *, state: str,
                             due_at: datetime | None = None) -> bool: ...
    async def complete(self, callback_id: int, now: datetime) -> bool: ...
    async def cancel(self, callback_id: int, now: datetime, *, token_hash: str | None = None) -> Any | None: ...
    async def counts(self, since: datetime | None = None) -> dict[str, int]: ...
    async def stale_dialling(self, before: datetime) -> list[tuple[int, int]]: ...
    async def stale_waiting(self, queues: list[str], before: datetime) -> list[Any]: ...
    def new_row(self, **fields: Any) -> Any: ...


@runtime_checkable
class CobrowseStore(Protocol):
    """What co-browsing and document push share between hub processes. ``ttl`` in seconds; ``now`` is the caller's."""

    async def create_session(self, conversation_id: int, record: dict[str, Any], ttl: float) -> tuple[bool, dict[str, Any]]:
        """Store ``record`` as the conversation's session unless it has one: ``(created, the stored record)``."""
    async def get_session(self, conversation_id: int) -> dict[str, Any] | None: ...
    async def swap_session(self, conversation_id: int, old: dict[str, Any], new: dict[str, Any] | None, ttl: float) -> bool:
        """Replace (or, ``new`` None, delete) the session only if it is still exactly ``old``: one winner."""
    async def put_code(self, code_key: str, record: dict[str, Any], ttl: float) -> bool:
        """A new code, unless that code is already waiting (then False)."""
    async def take_code(self, code_key: str) -> dict[str, Any] | None:
        """Get and delete at once: a code is used once, across processes."""
    async def drop_code(self, code_key: str) -> None: ...
    async def code_wait(self, keys: tuple[str, ...], now: float) -> float:
        """Seconds until these keys (a socket, an address) may try a code again (0: now)."""
    async def code_failed(self, keys: tuple[str, ...], now: float) -> None:
        """One wrong code for each key; the ``CODE_MAX_FAILURES``-th locks the key for ``CODE_LOCKOUT_SECONDS``."""
    async def code_forget(self, key: str) -> None: ...
    async def set_link(self, visitor: str, conversation_id: int, ttl: float) -> None: ...
    async def get_link(self, visitor: str) -> int | None: ...
    async def drop_link(self, visitor: str, conversation_id: int) -> None:
        """Forget the link only if it still names that conversation."""
    async def recording_add(self, session_id: str, sid: str, ttl: float) -> None: ...
    async def recording_remove(self, session_id: str, sid: str) -> int:
        """Remove one recording socket; how many are left (on every process)."""
    async def recording_count(self, session_id: str) -> int: ...
    async def recording_clear(self, session_id: str) -> None: ...
    async def put_record(self, kind: str, key: str, record: dict[str, Any], ttl: float) -> None:
        """A push (``kind="push"``) or an agent's own file (``"own"``)."""
    async def get_record(self, kind: str, key: str) -> dict[str, Any] | None: ...
    async def first_event(self, push_id: str, event: str, ttl: float) -> bool:
        """True for the first ``event`` of this push only (across processes)."""
