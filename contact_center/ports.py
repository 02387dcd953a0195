"""Ports the hub's core needs; adapters implement them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


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
    """

    conversation_id: int
    queue: str
    channel: str
    priority: int
    enqueued_at: float
    declined_by: frozenset[int] = frozenset()
    pinned_agent: int | None = None

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

    async def decline(self, conversation_id: int, agent_id: int) -> QueueEntry | None:
        """Cancel the agent's offer, free the load, re-queue with the agent in ``declined_by``.

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

    async def clear(self) -> None:
        """Remove everything this store holds (tests)."""
        ...
