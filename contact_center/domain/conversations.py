"""The conversation lifecycle, pure: its states, the legal moves between them, and the rules around them.

Written the way the order state machine is (``crm_store/domain/orders.py``): a table of moves, each
from a set of states to one state, and a function that refuses an illegal move. The use cases ask it
which state a conversation goes to; the repository writes that state with a compare-and-set on the
states the move starts from, so two hub processes never both make a move that only one may make.

::

                 hand_over              accept
      (new) -> bot ------> queued <---------> assigned -- close --> closed
        |       ^            |  ^  transfer /    |                  |  ^
        |       |  hand_back |  |  agent lost    |                  |  |
        |       +------------+--+----------------+                  |  |
        +-> queued          abandon ---------------------------------+  |
                                        reopen (a new message in a closed thread)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ConversationStatus(StrEnum):
    """Where a conversation is: with the bot, waiting for an agent, with an agent, or finished."""

    BOT = "bot"
    QUEUED = "queued"
    ASSIGNED = "assigned"
    CLOSED = "closed"


class Move(StrEnum):
    """What can happen to a conversation."""

    HAND_OVER = "hand_over"  # the bot passes it to a person
    ACCEPT = "accept"  # an agent accepts the offer
    HAND_BACK = "hand_back"  # the agent gives it back to the bot
    TRANSFER = "transfer"  # to another queue or a named agent
    AGENT_LOST = "agent_lost"  # the agent's console went away: back in the queue
    CLOSE = "close"  # the agent wraps it up with a disposition
    ABANDON = "abandon"  # the customer left while waiting (never answered, or back in the queue)
    REOPEN = "reopen"  # a new message in a finished thread (per-thread channels)


_S = ConversationStatus

MOVES: dict[Move, tuple[frozenset[ConversationStatus], ConversationStatus]] = {
    Move.HAND_OVER: (frozenset({_S.BOT}), _S.QUEUED),
    Move.ACCEPT: (frozenset({_S.QUEUED, _S.ASSIGNED}), _S.ASSIGNED),
    Move.HAND_BACK: (frozenset({_S.ASSIGNED, _S.QUEUED}), _S.BOT),
    Move.TRANSFER: (frozenset({_S.BOT, _S.QUEUED, _S.ASSIGNED}), _S.QUEUED),
    Move.AGENT_LOST: (frozenset({_S.ASSIGNED}), _S.QUEUED),
    Move.CLOSE: (frozenset({_S.BOT, _S.QUEUED, _S.ASSIGNED}), _S.CLOSED),
    Move.ABANDON: (frozenset({_S.QUEUED}), _S.CLOSED),
    Move.REOPEN: (frozenset({_S.CLOSED}), _S.QUEUED),
}
"""Each move: the states it may start from, and the state it leads to.

``accept`` may start from ``assigned``: a transfer to a named agent is accepted by that agent while SQL
still says the previous one (the atomic claim in the shared state decides who gets an offer).
"""

OPEN_STATUSES = frozenset({_S.BOT, _S.QUEUED, _S.ASSIGNED})
"""The states of an open conversation (at most one per customer and channel on per-customer channels)."""

DISPOSITIONS = ("resolved", "order_placed", "no_answer", "escalated", "other")
"""How an agent may close a conversation."""

ABANDONED = "abandoned"
"""The disposition of a conversation the customer left while waiting, before anyone answered."""

CUSTOMER_LEFT = "customer_left"
"""The disposition of a conversation an agent had answered, back in the queue (the agent left, a transfer,
a declined or missed offer) when its customer left: handled, so not an abandoned contact."""


class IllegalMove(ValueError):
    """A move the conversation's state does not allow."""

    def __init__(self, status: str, move: Move) -> None:
        super().__init__(f"a {status} conversation cannot {move.value.replace('_', ' ')}")
        self.status = status
        self.move = move


def sources(move: Move) -> frozenset[str]:
    """The states (as stored) a move may start from: the compare-and-set condition of its write."""
    return frozenset(s.value for s in MOVES[move][0])


def target(move: Move) -> str:
    """The state (as stored) a move leads to."""
    return MOVES[move][1].value


def apply(status: str, move: Move) -> str:
    """The state after ``move`` from ``status``; :class:`IllegalMove` if the move is not allowed there."""
    allowed, to = MOVES[move]
    if status not in {s.value for s in allowed}:
        raise IllegalMove(status, move)
    return to.value


def is_open(status: str) -> bool:
    """Whether a conversation in this state is still open."""
    return status in {s.value for s in OPEN_STATUSES}


def opening_status(bot_first: bool, bot_ready: bool, self_service_first: bool = False) -> str:
    """A new conversation starts with the bot when its channel sends contacts to the bot first and the
    bot is ready, or when the channel runs its own self-service first (the phone's IVR, which asks for a
    person itself); otherwise it waits for an agent."""
    return _S.BOT.value if (bot_first and bot_ready) or self_service_first else _S.QUEUED.value


def can_abandon(status: str) -> bool:
    """A conversation waiting in a queue is given up when its customer has left (by every path it came
    back to the queue: the agent left, a transfer, a declined or missed offer, a restart); one with an
    agent stays open for the agent to close."""
    return status == _S.QUEUED.value


def departure(ever_answered: bool) -> tuple[str, bool]:
    """The disposition of a waiting conversation whose customer left, and whether it counts as an
    abandoned contact (only if nobody had answered it: an answered contact is never also abandoned)."""
    return (CUSTOMER_LEFT, False) if ever_answered else (ABANDONED, True)


def absent_long_enough(now: float, last_seen: float | None, known_since: float, grace: float) -> bool:
    """Whether a customer of a live channel has been gone for the grace period.

    ``last_seen``: when a hub process last saw one of their widgets connected (None: no record);
    ``known_since``: since when the records can be trusted (the process's start, or the last time the
    shared state was found lost and rebuilt). Without a record, absence counts from then.
    """
    since = known_since if last_seen is None else max(last_seen, known_since)
    return now - since >= grace


AUTO_FILED = "auto_reply"
"""The disposition of a conversation opened only to file an automatic message (an out-of-office reply)."""


@dataclass(frozen=True)
class InboundPlan:
    """Where a customer's message goes, decided from what is stored.

    :param open_new: open a new conversation (none is open, or only a closed thread is not reopened).
    :param reopen: a closed thread comes back to the queue.
    :param status: the state a new conversation starts in.
    :param successor: the new conversation continues a closed thread (linked to it, with the thread's
        successor key: :func:`successor_key`).
    :param disposition: a new conversation that starts closed: why (an automatic message on no thread).
    """

    open_new: bool
    reopen: bool
    status: str | None
    successor: bool = False
    disposition: str | None = None


def plan_inbound(
    found_status: str | None, *, per_thread: bool, bot_first: bool, bot_ready: bool,
    closed_age_seconds: float | None = None, reopen_window_seconds: float | None = None, wake: bool = True,
    self_service_first: bool = False,
) -> InboundPlan:
    """What a customer's message does to the conversations it may belong to.

    ``found_status``: the state of the conversation found by the channel's policy (the customer's open
    one on per-customer channels; the thread's, open or closed, on per-thread and per-call channels),
    or None. ``closed_age_seconds``: how long ago a closed thread was closed.

    * No conversation: a new one (to the bot first where the channel wants it and the bot is ready).
    * A closed thread: reopened into the queue (the bot does not take over a thread an agent already
      answered) if it closed less than ``reopen_window_seconds`` ago (None: always); after that, a new
      conversation that continues it.
    * ``wake`` False (an automatic message: an out-of-office reply): it is filed with the conversation
      it belongs to and changes nothing; with none, it is filed in a new conversation that starts closed.
    """
    if not wake:
        if found_status is None:
            return InboundPlan(open_new=True, reopen=False, status=_S.CLOSED.value, disposition=AUTO_FILED)
        return InboundPlan(open_new=False, reopen=False, status=None)
    if found_status is None:
        return InboundPlan(open_new=True, reopen=False, status=opening_status(bot_first, bot_ready, self_service_first))
    if found_status == _S.CLOSED.value:
        if not per_thread:
            return InboundPlan(open_new=True, reopen=False, status=opening_status(bot_first, bot_ready, self_service_first))
        within = reopen_window_seconds is None or closed_age_seconds is None or closed_age_seconds <= reopen_window_seconds
        if within:
            return InboundPlan(open_new=False, reopen=True, status=apply(found_status, Move.REOPEN))
        return InboundPlan(open_new=True, reopen=False, status=_S.QUEUED.value, successor=True)
    return InboundPlan(open_new=False, reopen=False, status=None)


ANSWERED_BY_BOT = "answered_by_bot"
"""The disposition of a conversation the bot answered alone, sure of itself (a new message reopens it to a person)."""


def bot_is_sure(intent: str, confidence: float, threshold: float | None, intents: tuple[str, ...]) -> bool:
    """Whether the bot may answer a new conversation alone: one of the allowed intents, at least this sure."""
    return threshold is not None and intent in intents and confidence >= threshold


def successor_key(thread_key: str, conversation_id: int, limit: int = 200) -> str:
    """The thread key of the conversation that continues a closed thread (unique, found again by the
    next message of the thread, which follows the chain of successors)."""
    suffix = f">{conversation_id}"
    return thread_key[: limit - len(suffix)] + suffix
