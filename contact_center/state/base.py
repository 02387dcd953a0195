"""What both state stores share: normalising values, ordering, the bookkeeping rules and the record format.

The behaviour of the store is written once, here, as pure functions: how an offer reserves load, how
a release frees it and when ``idle_since`` moves, how a decline marks the entry, how an agent goes
offline, and in what order lists come back. :mod:`contact_center.state.memory` applies these
functions in-process under one ``asyncio.Lock``; :mod:`contact_center.state.redis_store` applies the
same rules inside Lua scripts (each script names the function it mirrors) on records in the format
defined at the end of this module, and sorts what it reads with the same keys. The contract suite
(``tests/contract/test_state_store.py``) runs one set of assertions and one model-based randomized
test against both, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Iterable, Mapping

from contact_center.ports import AgentPresence, Offer, QueueEntry

AVAILABLE = "available"
BUSY = "busy"
OFFLINE = "offline"

# Weight of one priority step in the Redis waiting score: larger than any enqueued_at in epoch
# seconds (1e10 s is the year 2286), so higher priority sorts first and enqueued_at breaks ties.
PRIORITY_WEIGHT = 1e10


# --- normalising what callers pass in --------------------------------------------------------------


def clean_load(load: Mapping[str, int]) -> dict[str, int]:
    """A load mapping with int values and without channels at zero (negative counts become zero)."""
    return {str(ch): int(n) for ch, n in load.items() if int(n) > 0}


def normalize_presence(p: AgentPresence) -> AgentPresence:
    """A private copy of ``p`` with plain types (the caller may go on mutating its dicts)."""
    return AgentPresence(
        agent_id=int(p.agent_id),
        status=str(p.status),
        since=float(p.since),
        node=str(p.node),
        load=clean_load(p.load),
        capacity={str(k): int(v) for k, v in p.capacity.items()},
        skills={str(k): int(v) for k, v in p.skills.items()},
        idle_since=float(p.idle_since),
    )


def copy_presence(p: AgentPresence) -> AgentPresence:
    """A copy whose dicts the caller can mutate without touching the stored record."""
    return replace(p, load=dict(p.load), capacity=dict(p.capacity), skills=dict(p.skills))


def normalize_entry(e: QueueEntry) -> QueueEntry:
    """``e`` with plain types."""
    return QueueEntry(
        conversation_id=int(e.conversation_id),
        queue=str(e.queue),
        channel=str(e.channel),
        priority=int(e.priority),
        enqueued_at=float(e.enqueued_at),
        declined_by=frozenset(int(a) for a in e.declined_by),
        pinned_agent=None if e.pinned_agent is None else int(e.pinned_agent),
        declined_at=float(e.declined_at),
        pin_strict=bool(e.pin_strict),
    )


# --- ordering --------------------------------------------------------------------------------------


def waiting_order(e: QueueEntry) -> tuple[int, float, int]:
    """Sort key of waiting conversations: higher priority first, then first come, then lower id."""
    return (-e.priority, e.enqueued_at, e.conversation_id)


def offer_order(o: Offer) -> tuple[float, int]:
    """Sort key of offers: soonest to expire first, then lower conversation id."""
    return (o.expires_at, o.conversation_id)


def queue_score(priority: int, enqueued_at: float) -> float:
    """The Redis sorted-set score of a waiting entry: same order as :func:`waiting_order` (approximately:
    a double cannot hold both exactly, so readers always re-sort with :func:`waiting_order`)."""
    return -priority * PRIORITY_WEIGHT + enqueued_at


def sort_waiting(entries: Iterable[QueueEntry]) -> list[QueueEntry]:
    """Entries in waiting order (:func:`waiting_order`'s key, computed inline: the router sorts 10,000 a pass)."""
    keyed = [(-e.priority, e.enqueued_at, e.conversation_id, i, e) for i, e in enumerate(entries)]
    keyed.sort()
    return [k[4] for k in keyed]


def sort_offers_by_expiry(offers: Iterable[Offer]) -> list[Offer]:
    """Offers by (expires_at, conversation_id)."""
    return sorted(offers, key=offer_order)


def sort_offers_by_conversation(offers: Iterable[Offer]) -> list[Offer]:
    """Offers by conversation id."""
    return sorted(offers, key=lambda o: o.conversation_id)


# --- the bookkeeping rules (mirrored line by line by the Lua in redis_store.py) ---------------------


def is_free(load: Mapping[str, int]) -> bool:
    """True when the agent holds nothing on any channel."""
    return all(n <= 0 for n in load.values())


def reserve(p: AgentPresence, channel: str) -> AgentPresence:
    """One more conversation on ``channel`` (an offer reserves it; accepting keeps it)."""
    load = dict(p.load)
    load[channel] = load.get(channel, 0) + 1
    return replace(p, load=load)


def has_room(p: AgentPresence | None, channel: str) -> bool:
    """Whether an offer with ``check_capacity`` may reserve a unit of ``channel`` for this agent."""
    return p is not None and p.load.get(channel, 0) < p.capacity.get(channel, 0)


def can_hold(p: AgentPresence | None, channel: str) -> bool:
    """Whether ``hold_agent`` may reserve the whole agent: they take contacts, take ``channel`` and hold nothing."""
    return (p is not None and p.status in (AVAILABLE, BUSY) and is_free(p.load)
            and p.capacity.get(channel, 0) >= 1)


def unreserve(p: AgentPresence, channel: str, now: float | None) -> AgentPresence:
    """One conversation fewer on ``channel`` (never below zero; the channel is dropped at zero).

    ``now`` is given for a finished assignment: if the agent is then free, ``idle_since=now``. A
    withdrawn or declined offer passes None: the agent never started working, so keeps their idle time.
    """
    load = dict(p.load)
    left = load.get(channel, 0) - 1
    if left > 0:
        load[channel] = left
    else:
        load.pop(channel, None)
    idle_since = now if now is not None and is_free(load) else p.idle_since
    return replace(p, load=load, idle_since=idle_since)


def with_status(p: AgentPresence, status: str, now: float) -> AgentPresence:
    """The new status since ``now``; becoming available while free restarts the idle clock.

    The same status again is not a change: ``since`` (and ``idle_since``) stay.
    """
    if status == p.status:
        return p
    idle_since = now if status == AVAILABLE and is_free(p.load) else p.idle_since
    return replace(p, status=status, since=now, idle_since=idle_since)


def gone_offline(p: AgentPresence, now: float) -> AgentPresence:
    """The agent is gone: nothing held any more, status offline (``since`` moves only if it changed)."""
    return replace(with_status(p, OFFLINE, now), load={})


CUSTOMER_SEEN_TTL = 86_400.0
"""Seconds a customer's "last seen connected" record is kept."""


def declined(e: QueueEntry, agent_id: int, now: float) -> QueueEntry:
    """The entry after ``agent_id`` declined it or let the offer expire at ``now`` (enqueued_at kept)."""
    return replace(e, declined_by=e.declined_by | {agent_id}, declined_at=now)


# --- the record format (JSON in Redis) -----------------------------------------------------------
#
# Ids and times are JSON strings: Redis's Lua cjson prints numbers with 14 significant digits, which
# would round an epoch time like 1700000000.123456 when a script re-encodes a record; strings pass
# through unchanged, and Python's repr() of a float reads back as exactly the same float (in Python,
# in Lua's tonumber and in Redis's score parser). Counts (load, capacity, skills) stay JSON numbers.


def fnum(x: float) -> str:
    """A float as the exact text the records hold."""
    return repr(float(x))


def dumps(record: Mapping[str, Any]) -> str:
    """Compact JSON."""
    return json.dumps(record, separators=(",", ":"), sort_keys=True)


def _text(raw: str | bytes) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _counts(value: Any) -> dict[str, int]:
    # cjson writes an empty table as {} and could, in theory, write one as []: accept both.
    if not value:
        return {}
    return {str(k): int(v) for k, v in value.items()}


def presence_record(p: AgentPresence) -> dict[str, Any]:
    """The stored form of a presence."""
    return {
        "agent_id": str(p.agent_id),
        "status": p.status,
        "since": fnum(p.since),
        "node": p.node,
        "load": dict(p.load),
        "capacity": dict(p.capacity),
        "skills": dict(p.skills),
        "idle_since": fnum(p.idle_since),
    }


def presence_from_json(raw: str | bytes) -> AgentPresence:
    """Read a stored presence."""
    d = json.loads(_text(raw))
    return AgentPresence(
        agent_id=int(d["agent_id"]),
        status=str(d["status"]),
        since=float(d["since"]),
        node=str(d["node"]),
        load=clean_load(_counts(d.get("load"))),
        capacity=_counts(d.get("capacity")),
        skills=_counts(d.get("skills")),
        idle_since=float(d["idle_since"]),
    )


def entry_record(e: QueueEntry) -> dict[str, Any]:
    """The stored form of a queue entry, with its sorted-set score precomputed (Lua only copies it)."""
    return {
        "conversation_id": str(e.conversation_id),
        "queue": e.queue,
        "channel": e.channel,
        "priority": str(e.priority),
        "enqueued_at": fnum(e.enqueued_at),
        "declined_by": [str(a) for a in sorted(e.declined_by)],
        "pinned_agent": None if e.pinned_agent is None else str(e.pinned_agent),
        "declined_at": fnum(e.declined_at),
        "pin_strict": bool(e.pin_strict),
        "score": fnum(queue_score(e.priority, e.enqueued_at)),
    }


def entry_from_json(raw: str | bytes) -> QueueEntry:
    """Read a stored queue entry."""
    d = json.loads(_text(raw))
    declined_by = d.get("declined_by") or []
    if isinstance(declined_by, dict):  # an empty Lua table re-encoded by cjson
        declined_by = list(declined_by.values())
    pinned = d.get("pinned_agent")
    return QueueEntry(
        conversation_id=int(d["conversation_id"]),
        queue=str(d["queue"]),
        channel=str(d["channel"]),
        priority=int(d["priority"]),
        enqueued_at=float(d["enqueued_at"]),
        declined_by=frozenset(int(a) for a in declined_by),
        pinned_agent=None if pinned is None else int(pinned),
        declined_at=float(d.get("declined_at") or 0.0),
        pin_strict=bool(d.get("pin_strict")),
    )


def offer_from_json(raw: str | bytes) -> Offer:
    """Read a stored offer (written by the Lua ``offer`` script)."""
    d = json.loads(_text(raw))
    return Offer(
        conversation_id=int(d["conversation_id"]),
        agent_id=int(d["agent_id"]),
        expires_at=float(d["expires_at"]),
        queue=str(d["queue"]),
        channel=str(d["channel"]),
    )
