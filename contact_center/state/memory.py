"""The in-process state store: one hub process alone, everything in dicts behind one asyncio.Lock."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Collection, Mapping

from contact_center.ports import AgentPresence, Offer, QueueEntry
from contact_center.state.base import (
    CUSTOMER_SEEN_TTL,
    can_hold,
    copy_presence,
    declined,
    gone_offline,
    has_room,
    normalize_entry,
    normalize_presence,
    reserve,
    sort_offers_by_conversation,
    sort_offers_by_expiry,
    sort_waiting,
    unreserve,
    with_status,
)


class MemoryStateStore:
    """:class:`~contact_center.ports.StateStore` in memory (the embedded, single-process mode).

    Every conversation the store knows has an entry in ``_entries`` and is in exactly one of
    ``_waiting``, ``_offers`` or ``_assigned``. Each method runs under one lock, so each is atomic
    with respect to the others (there is no ``await`` inside, the lock states the intent and keeps
    it true if one is ever added).
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._presence: dict[int, AgentPresence] = {}
        self._entries: dict[int, QueueEntry] = {}
        self._waiting: set[int] = set()
        self._offers: dict[int, Offer] = {}
        self._assigned: dict[int, int] = {}
        self._watchers: dict[int, set[str]] = {}
        self._customers_seen: dict[int, float] = {}
        self._missed: dict[int, int] = {}
        self._sealed: set[str] = set()
        self._reasons: dict[int, dict[str, Any]] = {}

    # --- presence ------------------------------------------------------------------------------

    async def set_presence(self, p: AgentPresence) -> None:
        async with self._lock:
            p = normalize_presence(p)
            self._presence[p.agent_id] = p

    async def get_presence(self, agent_id: int) -> AgentPresence | None:
        async with self._lock:
            p = self._presence.get(int(agent_id))
            return None if p is None else copy_presence(p)

    async def all_presence(self) -> list[AgentPresence]:
        async with self._lock:
            return [copy_presence(self._presence[a]) for a in sorted(self._presence)]

    async def set_status(self, agent_id: int, status: str, now: float) -> AgentPresence | None:
        async with self._lock:
            p = self._presence.get(int(agent_id))
            if p is None:
                return None
            p = self._presence[p.agent_id] = with_status(p, str(status), float(now))
            return copy_presence(p)

    async def remove_presence(self, agent_id: int) -> None:
        async with self._lock:
            self._presence.pop(int(agent_id), None)

    # --- queue ---------------------------------------------------------------------------------

    async def enqueue(self, e: QueueEntry) -> bool:
        async with self._lock:
            e = normalize_entry(e)
            if e.conversation_id in self._entries:
                return False
            self._entries[e.conversation_id] = e
            self._waiting.add(e.conversation_id)
            return True

    async def waiting(self, queue: str | None = None) -> list[QueueEntry]:
        async with self._lock:
            entries = (self._entries[c] for c in self._waiting)
            return sort_waiting(e for e in entries if queue is None or e.queue == queue)

    async def remove_from_queue(self, conversation_id: int) -> QueueEntry | None:
        async with self._lock:
            cid = int(conversation_id)
            if cid not in self._waiting:
                return None
            self._waiting.discard(cid)
            return self._entries.pop(cid)

    async def queue_lengths(self) -> dict[str, int]:
        async with self._lock:
            lengths: dict[str, int] = {}
            for cid in self._waiting:
                q = self._entries[cid].queue
                lengths[q] = lengths.get(q, 0) + 1
            return lengths

    # --- offers --------------------------------------------------------------------------------

    async def offer(
        self, conversation_id: int, agent_id: int, expires_at: float, *, check_capacity: bool = False
    ) -> Offer | None:
        async with self._lock:
            cid, aid = int(conversation_id), int(agent_id)
            if cid not in self._waiting:
                return None
            e = self._entries[cid]
            p = self._presence.get(aid)
            if check_capacity and not has_room(p, e.channel):
                return None
            self._waiting.discard(cid)
            o = self._offers[cid] = Offer(cid, aid, float(expires_at), e.queue, e.channel)
            if p is not None:
                self._presence[aid] = reserve(p, e.channel)
            return o

    async def accept(self, conversation_id: int, agent_id: int) -> bool:
        async with self._lock:
            cid, aid = int(conversation_id), int(agent_id)
            o = self._offers.get(cid)
            if o is None or o.agent_id != aid:
                return False
            del self._offers[cid]
            self._assigned[cid] = aid
            return True

    def _decline(self, o: Offer, now: float) -> QueueEntry:
        """Cancel an existing offer and re-queue its conversation (lock held)."""
        del self._offers[o.conversation_id]
        p = self._presence.get(o.agent_id)
        if p is not None:
            self._presence[o.agent_id] = unreserve(p, o.channel, None)
        e = self._entries[o.conversation_id] = declined(self._entries[o.conversation_id], o.agent_id, now)
        self._waiting.add(o.conversation_id)
        return e

    async def decline(self, conversation_id: int, agent_id: int, now: float) -> QueueEntry | None:
        async with self._lock:
            o = self._offers.get(int(conversation_id))
            if o is None or o.agent_id != int(agent_id):
                return None
            return self._decline(o, float(now))

    async def expired_offers(self, now: float) -> list[Offer]:
        async with self._lock:
            return sort_offers_by_expiry(o for o in self._offers.values() if o.expires_at <= now)

    async def expire(self, conversation_id: int, now: float) -> QueueEntry | None:
        async with self._lock:
            o = self._offers.get(int(conversation_id))
            if o is None or o.expires_at > now:
                return None
            return self._decline(o, float(now))

    async def offers_of(self, agent_id: int) -> list[Offer]:
        async with self._lock:
            aid = int(agent_id)
            return sort_offers_by_conversation(o for o in self._offers.values() if o.agent_id == aid)

    # --- assignments ---------------------------------------------------------------------------

    async def assignment_of(self, conversation_id: int) -> int | None:
        async with self._lock:
            return self._assigned.get(int(conversation_id))

    async def release(self, conversation_id: int, now: float) -> int | None:
        async with self._lock:
            cid = int(conversation_id)
            e = self._entries.get(cid)
            if e is None:
                return None
            agent: int | None = None
            idle_now: float | None = None
            if cid in self._assigned:
                agent, idle_now = self._assigned.pop(cid), float(now)
            elif cid in self._offers:
                agent = self._offers.pop(cid).agent_id
            else:
                self._waiting.discard(cid)
            del self._entries[cid]
            if agent is not None:
                p = self._presence.get(agent)
                if p is not None:
                    self._presence[agent] = unreserve(p, e.channel, idle_now)
            return agent

    async def restore_assignment(self, e: QueueEntry, agent_id: int) -> bool:
        async with self._lock:
            e = normalize_entry(e)
            cid, aid = e.conversation_id, int(agent_id)
            if cid in self._entries:
                return False
            self._entries[cid] = e
            self._assigned[cid] = aid
            p = self._presence.get(aid)
            if p is not None:
                self._presence[aid] = reserve(p, e.channel)
            return True

    async def assignments_of(self, agent_id: int) -> list[int]:
        async with self._lock:
            aid = int(agent_id)
            return sorted(c for c, a in self._assigned.items() if a == aid)

    # --- holds ---------------------------------------------------------------------------------

    async def hold_agent(self, agent_id: int, hold: str, channel: str) -> bool:
        async with self._lock:
            aid = int(agent_id)
            p = self._presence.get(aid)
            if p is None or not can_hold(p, str(channel)):
                return False
            self._presence[aid] = reserve(p, str(hold))
            return True

    async def release_hold(self, agent_id: int, hold: str, now: float) -> bool:
        async with self._lock:
            aid = int(agent_id)
            p = self._presence.get(aid)
            if p is None or p.load.get(str(hold), 0) <= 0:
                return False
            self._presence[aid] = unreserve(p, str(hold), float(now))
            return True

    # --- agent loss ----------------------------------------------------------------------------

    async def requeue_agent(self, agent_id: int, now: float) -> list[QueueEntry]:
        async with self._lock:
            aid = int(agent_id)
            back: list[QueueEntry] = []
            for o in [o for o in self._offers.values() if o.agent_id == aid]:
                del self._offers[o.conversation_id]
                e = self._entries[o.conversation_id] = declined(self._entries[o.conversation_id], aid, float(now))
                self._waiting.add(o.conversation_id)
                back.append(e)
            for cid in [c for c, a in self._assigned.items() if a == aid]:
                del self._assigned[cid]
                self._waiting.add(cid)
                back.append(self._entries[cid])
            p = self._presence.get(aid)
            if p is not None:
                self._presence[aid] = gone_offline(p, float(now))
            return sort_waiting(back)

    async def add_watcher(self, conversation_id: int, watcher: str) -> None:
        self._watchers.setdefault(int(conversation_id), set()).add(watcher)

    async def remove_watcher(self, conversation_id: int, watcher: str) -> None:
        watchers = self._watchers.get(int(conversation_id))
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self._watchers[int(conversation_id)]

    async def watched(self) -> set[int]:
        return set(self._watchers)

    async def customers_seen(self, customer_ids: Collection[int], now: float) -> None:
        for c in customer_ids:
            self._customers_seen[int(c)] = float(now)
        if len(self._customers_seen) > 10_000:  # forget those not seen for a day
            horizon = float(now) - CUSTOMER_SEEN_TTL
            self._customers_seen = {c: t for c, t in self._customers_seen.items() if t >= horizon}

    async def customers_last_seen(self, customer_ids: Collection[int]) -> dict[int, float]:
        return {int(c): self._customers_seen[int(c)] for c in customer_ids if int(c) in self._customers_seen}

    async def seal(self, node: str) -> None:
        self._sealed.add(node)

    async def sealed(self, node: str) -> bool:
        return node in self._sealed

    async def offer_missed(self, agent_id: int) -> int:
        n = self._missed[int(agent_id)] = self._missed.get(int(agent_id), 0) + 1
        return n

    async def reset_missed(self, agent_id: int) -> None:
        self._missed.pop(int(agent_id), None)

    async def set_status_reason(self, agent_id: int, reason: Mapping[str, Any] | None) -> None:
        if reason is None:
            self._reasons.pop(int(agent_id), None)
        else:
            self._reasons[int(agent_id)] = json.loads(json.dumps(dict(reason)))  # what Redis would give back

    async def status_reasons(self) -> dict[int, dict[str, Any]]:
        return {a: dict(r) for a, r in self._reasons.items()}

    async def clear(self) -> None:
        async with self._lock:
            self._watchers.clear()
            self._customers_seen.clear()
            self._missed.clear()
            self._reasons.clear()
            self._sealed.clear()
            self._presence.clear()
            self._entries.clear()
            self._waiting.clear()
            self._offers.clear()
            self._assigned.clear()
